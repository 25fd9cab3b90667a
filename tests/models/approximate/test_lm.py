"""The tiny GPT-2 family and the language-model evidence (NLL, ROUGE-L, Min-K%, flags)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from functools import partial

import pytest
import torch
from torch import nn

from models.approximate.base import Examples, UnlearningError
from models.approximate.lm import BOS_ID, EOS_ID, PAD_ID, TinyGPT2Family, detokenize, lr_factor
from models.approximate.lm_evidence import (
    auc,
    flags,
    gaps,
    greedy_continue,
    lcs_length,
    lm_evidence,
    min_k_score,
    rouge_l,
    token_logprobs,
    verbatim_rouge_l,
)
from models.data import load_dataset

# Few texts and many epochs: memorises 24 snippets in ~300 steps (a few seconds).
TINY = TinyGPT2Family(
    n_layer=1,
    n_embd=64,
    n_head=2,
    max_length=32,
    epochs=100,
    batch_size=8,
    lr=5e-3,  # 1e-2 stalled at NLL 0.69 on some CPUs (verbatim recall 0.08 instead of 1.0)
    warmup_steps=10,
)
PREFIX, CONTINUATION = 8, 24


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """Ops this small run faster on one thread, and far faster on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def texts() -> tuple[list[str], list[str]]:
    """24 training and 48 held-out Rotten Tomatoes snippets (disjoint)."""
    records = load_dataset("rotten-tomatoes").subset(72, 7).records
    all_texts = [r.text or "" for r in records]
    return all_texts[:24], all_texts[24:]


@pytest.fixture(scope="module")
def trained(texts: tuple[list[str], list[str]]) -> nn.Module:
    train, _ = texts
    return TINY.fit(TINY.build(0), TINY.encode_texts(train), seed=1)


def _weights(model: nn.Module) -> dict[str, bytes]:
    return {k: v.detach().numpy().tobytes() for k, v in model.state_dict().items()}


# -- family ------------------------------------------------------------------------------------


def test_build_is_deterministic_and_leaves_the_global_rng_alone() -> None:
    before = torch.get_rng_state()
    first, again, other = TINY.build(3), TINY.build(3), TINY.build(4)
    assert torch.equal(torch.get_rng_state(), before)
    assert _weights(first) == _weights(again)
    assert _weights(first) != _weights(other)
    assert not first.training


def test_encode_texts_shifts_pads_masks_and_cuts() -> None:
    family = TinyGPT2Family(max_length=8, n_embd=16, n_head=2)
    ex = family.encode_texts(["ab", "héllo world"])
    assert ex.inputs.shape == ex.targets.shape == (2, 8)
    assert ex.inputs[0].tolist() == [BOS_ID, ord("a"), ord("b"), *[PAD_ID] * 5]
    assert ex.targets[0].tolist() == [ord("a"), ord("b"), EOS_ID, *[PAD_ID] * 5]
    assert ex.mask is not None
    assert ex.mask[0].tolist() == [1, 1, 1, 0, 0, 0, 0, 0]
    # cut to max_length + 1 tokens: no EOS, every target counts
    assert ex.mask[1].sum() == 8
    assert torch.equal(ex.inputs[1, 1:], ex.targets[1, :-1])
    assert detokenize([BOS_ID, *"héllo".encode(), EOS_ID, 120]) == "héllo"


def test_forward_output_shapes() -> None:
    batch = next(TINY.encode_texts(["a film", "a longer film review"]).batches(2))
    out = TINY.forward(TINY.build(0), batch)
    assert out.logits.shape == (2, TINY.max_length, 259)
    assert batch.mask is not None
    assert torch.equal(out.mask, batch.mask)


def test_fit_twice_with_the_same_seed_gives_identical_weights() -> None:
    family = TinyGPT2Family(n_layer=1, n_embd=16, n_head=2, max_length=16, epochs=2)
    data = family.encode_texts([f"review number {i} was fine" for i in range(20)])
    first = family.fit(family.build(0), data, seed=5)
    again = family.fit(family.build(0), data, seed=5)
    other = family.fit(family.build(0), data, seed=6)
    assert _weights(first) == _weights(again)
    assert _weights(first) != _weights(other)
    assert not first.training


def test_fit_rejects_no_data_and_bad_sizes() -> None:
    empty = Examples(torch.zeros(0, 4, dtype=torch.long), torch.zeros(0, 4, dtype=torch.long))
    with pytest.raises(UnlearningError):
        TINY.fit(TINY.build(0), empty, seed=0)
    with pytest.raises(UnlearningError, match="multiple of n_head"):
        TinyGPT2Family(n_embd=30, n_head=4)


def test_lr_warms_up_then_decays_to_zero() -> None:
    factors = [lr_factor(s, 4, 20) for s in range(20)]
    assert factors[0] == pytest.approx(0.2)
    assert max(factors) == factors[4]
    assert factors[-1] == pytest.approx(1 / 20)


# -- memorisation ------------------------------------------------------------------------------


def test_training_text_is_memorised(trained: nn.Module, texts: tuple[list[str], list[str]]) -> None:
    train, held = texts
    ev = lm_evidence(
        TINY, trained, train, train, held, prefix_tokens=PREFIX, continuation_tokens=CONTINUATION
    )
    x = {k: float(v) for k, v in ev.items() if not isinstance(v, str)}
    assert x["forget_nll"] < x["held_out_nll"] - 1.0
    assert x["forget_min_k"] > x["held_out_min_k"]
    assert x["min_k_auc"] > 0.9
    assert x["forget_rouge_l"] > x["held_out_rouge_l"] + 0.2
    assert ev["under_unlearning"] is True
    assert ev["over_unlearning"] is False
    json.dumps(ev, allow_nan=False)


def test_evidence_against_a_reference_and_the_original(
    trained: nn.Module, texts: tuple[list[str], list[str]]
) -> None:
    train, held = texts
    fresh = TINY.build(0)
    evidence = partial(
        lm_evidence, TINY, prefix_tokens=PREFIX, continuation_tokens=CONTINUATION, max_decoded=8
    )
    original = evidence(trained, train[:8], train[8:], held)
    ev = evidence(
        fresh,
        train[:8],
        train[8:],
        held,
        reference=original,
        original_retain_nll=float(original["retain_nll"]),
    )
    assert ev["n_decoded_forget"] == 8
    assert ev["gap_retain_nll"] == pytest.approx(
        float(ev["retain_nll"]) - float(original["retain_nll"]), abs=1e-3
    )
    assert ev["over_unlearning"] is True  # an untrained model lost all utility
    assert "utility" in str(ev["over_unlearning_reason"])
    json.dumps(ev, allow_nan=False)


def test_greedy_continue_extends_every_prefix(trained: nn.Module) -> None:
    prefixes = torch.tensor([TINY.tokenize("the film")[:4], TINY.tokenize("a script")[:4]])
    out = greedy_continue(TINY, trained, prefixes, 5)
    assert out.shape == (2, 5)
    assert torch.equal(out, greedy_continue(TINY, trained, prefixes, 5))


def test_verbatim_window_must_fit_the_model(trained: nn.Module) -> None:
    with pytest.raises(UnlearningError, match="must be <="):
        verbatim_rouge_l(TINY, trained, ["some text"], 16, 20, limit=4)
    assert verbatim_rouge_l(TINY, trained, ["ab"], 8, 8, limit=4) == (0.0, 0)


def test_token_logprobs_count_only_real_targets(trained: nn.Module) -> None:
    (lp,) = token_logprobs(TINY, trained, ["abc"])
    assert lp.shape == (4,)  # a, b, c, EOS
    assert bool((lp <= 0).all())


# -- ROUGE-L, Min-K%, AUC, flags ---------------------------------------------------------------


def test_rouge_l() -> None:
    assert rouge_l(["a", "b", "c"], ["a", "b", "c"]) == 1.0
    assert rouge_l(["a", "b"], ["c", "d"]) == 0.0
    assert rouge_l([], ["a"]) == 0.0
    assert rouge_l([], []) == 1.0
    # LCS("a b c d e", "a x c e") = "a c e": P = 3/5, R = 3/4, F1 = 2/3
    assert lcs_length("abcde", "axce") == 3
    assert rouge_l(list("abcde"), list("axce")) == pytest.approx(2 / 3)
    assert lcs_length("ABCBDAB", "BDCABA") == 4


def test_min_k_score() -> None:
    lp = torch.tensor([-1.0, -5.0, -2.0, -4.0, -3.0])
    assert min_k_score(lp, 20) == -5.0
    assert min_k_score(lp, 40) == -4.5
    assert min_k_score(lp, 100) == -3.0
    assert min_k_score(lp, 1) == -5.0  # at least one token
    assert min_k_score(torch.tensor([]), 20) == -math.inf


def test_auc() -> None:
    assert auc([3.0, 4.0], [1.0, 2.0]) == 1.0
    assert auc([1.0, 2.0], [3.0, 4.0]) == 0.0
    assert auc([1.0, 1.0], [1.0]) == 0.5
    # pairs: (2>1) (2<3) (4>1) (4>3) (3=3 half) (3>1) -> 4.5 / 6
    assert auc([2.0, 4.0, 3.0], [1.0, 3.0]) == pytest.approx(0.75)
    with pytest.raises(UnlearningError):
        auc([], [1.0])


@pytest.mark.parametrize(
    ("auc_value", "retain_nll", "original", "under", "over", "reason"),
    [
        (0.80, 1.0, None, True, False, ""),
        (0.52, 1.0, None, False, False, ""),
        (0.30, 1.0, None, False, True, "auc"),
        (0.50, 1.2, 1.0, False, True, "utility"),
        (0.50, 1.05, 1.0, False, False, ""),
        (0.30, 2.0, 1.0, False, True, "auc+utility"),
        (0.90, 2.0, 1.0, True, True, "utility"),
    ],
)
def test_flags(
    auc_value: float,
    retain_nll: float,
    original: float | None,
    under: bool,
    over: bool,
    reason: str,
) -> None:
    out = flags(
        auc_value,
        retain_nll,
        original_retain_nll=original,
        auc_margin=0.05,
        max_retain_nll_rise=0.10,
    )
    assert (out["under_unlearning"], out["over_unlearning"]) == (under, over)
    assert out["over_unlearning_reason"] == reason
    assert ("retain_nll_rise" in out) == (original is not None)


def test_gaps_are_signed_and_need_numbers() -> None:
    ev: dict[str, object] = {"forget_nll": 2.0, "min_k_auc": 0.6, "retain_nll": 1.0}
    ref: dict[str, object] = {"forget_nll": 2.5, "min_k_auc": 0.5}
    assert gaps(ev, ref) == pytest.approx({"gap_forget_nll": -0.5, "gap_min_k_auc": 0.1})
    with pytest.raises(UnlearningError):
        gaps(ev, {"forget_nll": "n/a"})
