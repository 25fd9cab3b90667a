"""How well a language model forgot, and what forgetting cost: the evidence for the LM family.

* **NLL** of the forget, retain and held-out texts (mean over texts of each text's mean token
  NLL). Retain NLL is the utility.
* **Verbatim memorisation**: greedy continuations of each text's first ``prefix_tokens`` tokens,
  scored against the true next ``continuation_tokens`` tokens with ROUGE-L F1 (as MUSE does).
  Held-out texts get the same score, as the level an unseen text reaches. The default window
  is short because a small model's greedy continuation drifts off a text within a few words
  unless it saw the text many times; a long window mostly adds noise.
* **Min-K%** (Shi et al.): a text's score is the mean of its ``k_percent`` lowest token
  log-probabilities; members score higher. ``min_k_auc`` is the ROC AUC of forget (positive)
  against held-out texts: 0.5 is what a model that never saw the forget set gets.

Flags are two-sided. ``under_unlearning``: the forget set still looks like members (AUC above
``0.5 + auc_margin``). ``over_unlearning``: it looks *less* like members than unseen text (AUC
below ``0.5 - auc_margin``, itself a membership signal, the Streisand effect), or, given the
original model's retain NLL, the retain NLL rose more than ``max_retain_nll_rise`` (relative).
With ``auc_z`` the margin widens to that many standard errors of a same-distribution AUC
(``evidence.auc_band``), recorded as ``auc_band``.

``reference`` is the evidence of the model retrained without the forget set, the target an
approximate method aims at; every metric then also gets ``gap_<metric>`` (this minus reference,
signed: the sign tells over- from under-shooting). Everything returned is a float (rounded to 4
places), int, bool or str, so the dict goes into JSON as is.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Protocol

import numpy as np
import torch
from torch import Tensor, nn

from models.approximate.base import Batch, Examples, Output, UnlearningError
from models.approximate.evidence import auc_band
from models.approximate.thresholds import AUC_Z_BEFORE_WIDENING, DEFAULT_THRESHOLDS

Evidence = dict[str, float | int | bool | str]

# The metrics a reference run is compared on (``gap_<name>``).
COMPARED = (
    "forget_nll",
    "retain_nll",
    "held_out_nll",
    "forget_rouge_l",
    "held_out_rouge_l",
    "forget_min_k",
    "held_out_min_k",
    "min_k_auc",
)


class TextFamily(Protocol):
    """What the evidence needs of a language-model family (``TinyGPT2Family`` has it)."""

    @property
    def max_length(self) -> int: ...

    def forward(self, model: nn.Module, batch: Batch) -> Output: ...

    def encode_texts(self, texts: Sequence[str]) -> Examples: ...

    def tokenize(self, text: str) -> list[int]:
        """The ids the model is trained on for ``text`` (BOS first, cut to the window)."""
        ...

    def detokenize(self, ids: Sequence[int]) -> str: ...


def lm_evidence(
    family: TextFamily,
    model: nn.Module,
    forget: Sequence[str],
    retain: Sequence[str],
    held_out: Sequence[str],
    *,
    prefix_tokens: int = 24,
    continuation_tokens: int = 16,
    k_percent: float = 20.0,
    max_decoded: int = 200,
    auc_margin: float = DEFAULT_THRESHOLDS.auc_margin,
    auc_z: float = AUC_Z_BEFORE_WIDENING,
    original_retain_nll: float | None = None,
    max_retain_nll_rise: float = DEFAULT_THRESHOLDS.max_retain_nll_rise,
    reference: Mapping[str, object] | None = None,
    batch_size: int = 128,
) -> Evidence:
    """The evidence dict of ``model`` (see the module docstring). Greedy decoding runs on the
    first ``max_decoded`` forget and held-out texts long enough to have a continuation."""
    for name, texts in (("forget", forget), ("retain", retain), ("held_out", held_out)):
        if not texts:
            raise UnlearningError(f"lm_evidence needs {name} texts")
    if not 0 < k_percent <= 100:
        raise UnlearningError(f"k_percent must be in (0, 100], got {k_percent}")
    with _eval_mode(model):
        forget_lp = token_logprobs(family, model, forget, batch_size=batch_size)
        retain_lp = token_logprobs(family, model, retain, batch_size=batch_size)
        held_lp = token_logprobs(family, model, held_out, batch_size=batch_size)
        rouge = {
            name: verbatim_rouge_l(
                family, model, texts, prefix_tokens, continuation_tokens, limit=max_decoded
            )
            for name, texts in (("forget", forget), ("held_out", held_out))
        }
    forget_mk = [min_k_score(lp, k_percent) for lp in forget_lp]
    held_mk = [min_k_score(lp, k_percent) for lp in held_lp]
    evidence: Evidence = {
        "n_forget": len(forget),
        "n_retain": len(retain),
        "n_held_out": len(held_out),
        "forget_nll": mean_nll(forget_lp),
        "retain_nll": mean_nll(retain_lp),
        "held_out_nll": mean_nll(held_lp),
        "forget_rouge_l": rouge["forget"][0],
        "held_out_rouge_l": rouge["held_out"][0],
        "n_decoded_forget": rouge["forget"][1],
        "n_decoded_held_out": rouge["held_out"][1],
        "forget_min_k": float(np.mean(forget_mk)),
        "held_out_min_k": float(np.mean(held_mk)),
        "min_k_auc": auc(forget_mk, held_mk),
        "k_percent": float(k_percent),
        "prefix_tokens": prefix_tokens,
        "continuation_tokens": continuation_tokens,
    }
    band = auc_band(len(forget_mk), len(held_mk), auc_margin, auc_z)
    evidence["auc_band"] = band
    evidence.update(
        flags(
            float(evidence["min_k_auc"]),
            float(evidence["retain_nll"]),
            original_retain_nll=original_retain_nll,
            auc_margin=band,
            max_retain_nll_rise=max_retain_nll_rise,
        )
    )
    if reference is not None:
        evidence.update(gaps(evidence, reference))
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in evidence.items()}


# -- scores -----------------------------------------------------------------------------------


def token_logprobs(
    family: TextFamily, model: nn.Module, texts: Sequence[str], *, batch_size: int = 128
) -> list[Tensor]:
    """Each text's counted target-token log-probabilities (1-D, in order)."""
    result: list[Tensor] = []
    with torch.no_grad():
        for batch in family.encode_texts(texts).batches(batch_size):
            out = family.forward(model, batch)
            logp = torch.log_softmax(out.logits.float(), dim=-1)
            picked = logp.gather(-1, out.targets.unsqueeze(-1)).squeeze(-1)
            result.extend(row[keep > 0] for row, keep in zip(picked, out.mask, strict=True))
    return result


def mean_nll(logprobs: Sequence[Tensor]) -> float:
    """Mean over texts of each text's mean token NLL (nats/token); a text without counted
    tokens is skipped."""
    per_text = [-float(lp.mean()) for lp in logprobs if lp.numel()]
    if not per_text:
        raise UnlearningError("no text has a counted token")
    return float(np.mean(per_text))


def min_k_score(logprobs: Tensor, k_percent: float) -> float:
    """Mean of the ``k_percent``% lowest token log-probabilities (at least one token); higher
    means more member-like. A text without tokens scores ``-inf`` (it ranks last)."""
    n = logprobs.numel()
    if n == 0:
        return -math.inf
    k = max(1, math.ceil(n * k_percent / 100))
    return float(torch.sort(logprobs.float()).values[:k].mean())


def auc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """ROC AUC: the probability that a random positive scores above a random negative, ties
    counting a half (the Mann-Whitney U statistic, normalised)."""
    if not positives or not negatives:
        raise UnlearningError("AUC needs at least one positive and one negative score")
    neg = np.sort(np.asarray(negatives, dtype=np.float64))
    pos = np.asarray(positives, dtype=np.float64)
    below = np.searchsorted(neg, pos, side="left")
    at_or_below = np.searchsorted(neg, pos, side="right")
    wins = below.sum() + 0.5 * (at_or_below - below).sum()
    return float(wins / (len(pos) * len(neg)))


def lcs_length(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Length of the longest common subsequence (one DP row, O(len(a) * len(b)) time)."""
    if len(a) < len(b):
        a, b = b, a
    row = [0] * (len(b) + 1)
    for x in a:
        diagonal = 0  # row[j - 1] of the previous row
        for j, y in enumerate(b, start=1):
            above = row[j]
            row[j] = diagonal + 1 if x == y else max(row[j], row[j - 1])
            diagonal = above
    return row[-1]


def rouge_l(candidate: Sequence[Hashable], reference: Sequence[Hashable]) -> float:
    """ROUGE-L F1 (beta = 1): harmonic mean of LCS precision and recall; 0 if either is empty,
    1 if both are."""
    if not candidate and not reference:
        return 1.0
    lcs = lcs_length(candidate, reference)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(candidate), lcs / len(reference)
    return 2 * precision * recall / (precision + recall)


# -- verbatim memorisation ---------------------------------------------------------------------


def verbatim_rouge_l(
    family: TextFamily,
    model: nn.Module,
    texts: Sequence[str],
    prefix_tokens: int,
    continuation_tokens: int,
    *,
    limit: int,
) -> tuple[float, int]:
    """Mean ROUGE-L F1 of greedy continuations against the true ones, and how many texts were
    scored (the first ``limit`` with at least one token after the prefix).

    Scored over whitespace-separated words of the decoded text, not bytes: any two English
    strings share a long byte subsequence, which would drown the memorisation signal."""
    if prefix_tokens < 1 or continuation_tokens < 1:
        raise UnlearningError("prefix_tokens and continuation_tokens must be >= 1")
    if prefix_tokens + continuation_tokens > family.max_length + 1:
        raise UnlearningError(
            f"prefix_tokens + continuation_tokens must be <= {family.max_length + 1} "
            "(the model's window plus its last target)"
        )
    ids = [family.tokenize(t) for t in texts]
    chosen = [i for i in ids if len(i) > prefix_tokens][:limit]
    if not chosen:
        return 0.0, 0
    prefixes = torch.tensor([i[:prefix_tokens] for i in chosen], dtype=torch.long)
    generated = greedy_continue(family, model, prefixes, continuation_tokens)
    scores = [
        rouge_l(
            family.detokenize(gen).split(),
            family.detokenize(i[prefix_tokens : prefix_tokens + continuation_tokens]).split(),
        )
        for gen, i in zip(generated.tolist(), chosen, strict=True)
    ]
    return float(np.mean(scores)), len(chosen)


def greedy_continue(family: TextFamily, model: nn.Module, prefixes: Tensor, n: int) -> Tensor:
    """``n`` greedily decoded tokens after each row of ``prefixes`` (``[B, P]``, all real
    tokens), ``[B, n]``. Full forward passes through ``family.forward`` (no KV cache): slower,
    but works for any family."""
    ids = prefixes
    with torch.no_grad():
        for _ in range(n):
            dummy = torch.zeros_like(ids)  # targets are not used, only the logits
            logits = family.forward(model, Batch(ids, dummy, dummy.float())).logits
            ids = torch.cat([ids, logits[:, -1].argmax(dim=-1, keepdim=True)], dim=1)
    return ids[:, prefixes.shape[1] :]


# -- flags and reference gaps -------------------------------------------------------------------


def flags(
    min_k_auc: float,
    retain_nll: float,
    *,
    original_retain_nll: float | None,
    auc_margin: float,
    max_retain_nll_rise: float,
) -> Evidence:
    """``under_unlearning``, ``over_unlearning`` and why (``over_unlearning_reason``: ``""``,
    ``"auc"``, ``"utility"`` or ``"auc+utility"``); with the original model's retain NLL also
    ``retain_nll_rise``, the relative rise over it."""
    out: Evidence = {"under_unlearning": min_k_auc > 0.5 + auc_margin}
    reasons = ["auc"] if min_k_auc < 0.5 - auc_margin else []
    if original_retain_nll is not None:
        if original_retain_nll <= 0:
            raise UnlearningError(f"original_retain_nll must be > 0, got {original_retain_nll}")
        rise = (retain_nll - original_retain_nll) / original_retain_nll
        out["retain_nll_rise"] = rise
        if rise > max_retain_nll_rise:
            reasons.append("utility")
    out["over_unlearning"] = bool(reasons)
    out["over_unlearning_reason"] = "+".join(reasons)
    return out


def gaps(evidence: Mapping[str, object], reference: Mapping[str, object]) -> Evidence:
    """``gap_<metric>`` = evidence minus reference for every compared metric the reference has."""
    return {
        f"gap_{name}": _number(evidence, name) - _number(reference, name)
        for name in COMPARED
        if name in reference
    }


def _number(evidence: Mapping[str, object], name: str) -> float:
    value = evidence.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UnlearningError(f"evidence has no number {name!r}: {value!r}")
    return float(value)


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)
