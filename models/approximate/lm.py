"""A tiny byte-level GPT-2, trained here, standing in for the LLM family on a CPU.

It is small enough to train on a few thousand Rotten Tomatoes snippets in minutes and memorises
them measurably, which is what the language-model evidence of approximate unlearning measures.
With the defaults on 4,000 snippets (~90 s on 2 idle CPU cores), training text has a mean NLL
of ~1.37 nats/byte against ~1.63 for unseen text and a Min-K% AUC of ~0.75. Greedy verbatim
recall (ROUGE-L) barely beats unseen text at that exposure; texts seen ~50 times (a forget set
repeated 4x in training) reach ~0.2 against ~0.09.

Tokens are UTF-8 bytes plus three specials, so nothing is downloaded. An example is
``[BOS] + bytes + [EOS]`` cut to ``max_length + 1`` tokens; inputs are its first
``max_length`` tokens and targets the same sequence shifted by one, right-padded with ``PAD``
and masked there. Right padding needs no attention mask: a causal model never attends forward.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from transformers import GPT2Config, GPT2LMHeadModel

from models.approximate.base import Batch, Examples, Output, Task, UnlearningError
from models.determinism import generator

BOS_ID = 256
EOS_ID = 257
PAD_ID = 258
VOCAB_SIZE = 259


def tokenize(text: str) -> list[int]:
    """``[BOS] + UTF-8 bytes + [EOS]`` (uncut)."""
    return [BOS_ID, *text.encode("utf-8"), EOS_ID]


def detokenize(ids: Sequence[int]) -> str:
    """The text of the byte ids up to the first ``EOS``/``PAD``; other specials are dropped and
    a multi-byte character cut by truncation decodes to U+FFFD."""
    data = bytearray()
    for i in ids:
        if i in (EOS_ID, PAD_ID):
            break
        if i < 256:
            data.append(i)
    return data.decode("utf-8", errors="replace")


@dataclass
class TinyGPT2Family:
    """``Family`` of byte-level GPT-2 language models (task ``"lm"``): model size and training
    recipe. The defaults memorise ~4,000 snippets measurably in a few CPU minutes; tests pass
    a tiny size."""

    name: str = "gpt2-tiny"
    task: Task = "lm"
    n_layer: int = 2
    n_embd: int = 128
    n_head: int = 4
    max_length: int = 64  # tokens per example (inputs and targets each); = n_positions
    epochs: int = 12
    batch_size: int = 16
    lr: float = 5e-3  # peak; linear warm-up over warmup_steps, then linear decay to 0
    warmup_steps: int = 50
    weight_decay: float = 0.0  # decay fights memorisation, which this family exists to show
    grad_clip: float = 1.0

    def __post_init__(self) -> None:
        if min(self.n_layer, self.n_embd, self.n_head, self.epochs, self.batch_size) < 1:
            raise UnlearningError(f"sizes, epochs and batch size must be >= 1: {self}")
        if self.n_embd % self.n_head:
            raise UnlearningError(f"n_embd {self.n_embd} is not a multiple of n_head")
        if self.warmup_steps < 0 or self.lr <= 0:
            raise UnlearningError(f"lr must be > 0 and warmup_steps >= 0: {self}")
        if self.max_length < 2:
            raise UnlearningError(f"max_length must be >= 2, got {self.max_length}")

    def tokenize(self, text: str) -> list[int]:
        """The token ids the model trains on for ``text``: ``max_length + 1`` at most."""
        return tokenize(text)[: self.max_length + 1]

    def detokenize(self, ids: Sequence[int]) -> str:
        return detokenize(ids)

    def encode_texts(self, texts: Sequence[str]) -> Examples:
        """Inputs, next-token targets and target mask, each ``[len(texts), max_length]``."""
        length = self.max_length
        inputs = torch.full((len(texts), length), PAD_ID, dtype=torch.long)
        targets = torch.full((len(texts), length), PAD_ID, dtype=torch.long)
        mask = torch.zeros((len(texts), length), dtype=torch.float32)
        for row, text in enumerate(texts):
            ids = torch.tensor(self.tokenize(text), dtype=torch.long)
            n = ids.numel() - 1
            inputs[row, :n] = ids[:-1]
            targets[row, :n] = ids[1:]
            mask[row, :n] = 1.0
        return Examples(inputs, targets, mask)

    def build(self, seed: int) -> nn.Module:
        """A freshly initialised model; its weights depend only on ``seed`` and the config."""
        gpt_config = GPT2Config(
            vocab_size=VOCAB_SIZE,
            n_positions=self.max_length,
            n_embd=self.n_embd,
            n_layer=self.n_layer,
            n_head=self.n_head,
            # No dropout: it would draw from the global RNG in training, and memorising the
            # training text is the point.
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            bos_token_id=BOS_ID,
            eos_token_id=EOS_ID,
            # No pad_token_id: with one set, transformers warns on every padded batch without
            # an attention mask, which right padding does not need.
        )
        # fork_rng keeps the caller's global RNG stream untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = GPT2LMHeadModel(gpt_config)
        model.eval()  # type: ignore[no-untyped-call]  # transformers leaves eval() untyped
        return model

    def forward(self, model: nn.Module, batch: Batch) -> Output:
        logits = model(input_ids=batch.inputs).logits
        mask = batch.mask if batch.mask is not None else torch.ones_like(batch.targets)
        return Output(logits, batch.targets, mask.float())

    def fit(self, model: nn.Module, data: Examples, *, seed: int) -> nn.Module:
        """AdamW for ``epochs`` passes over ``data`` in a ``seed``-shuffled order, minimising the
        mean token NLL over the masked targets; returns ``model`` in eval mode.

        The rate warms up, then decays linearly to zero: the low-rate tail is where a small
        model drives its training loss down, i.e. memorises."""
        if len(data) == 0:
            raise UnlearningError("cannot fit a language model on no examples")
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=self.lr, weight_decay=self.weight_decay
        )
        total = self.epochs * math.ceil(len(data) / self.batch_size)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: lr_factor(step, self.warmup_steps, total)
        )
        order = generator(seed)
        model.train()
        for _ in range(self.epochs):
            for batch in data.batches(self.batch_size, generator=order):
                loss = token_nll(self.forward(model, batch))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                nn.utils.clip_grad_norm_(model.parameters(), self.grad_clip)
                optimizer.step()
                schedule.step()
        return model.eval()


def lr_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """Multiplier of the peak rate at optimiser step ``step`` (0-based) of ``total_steps``."""
    return min(1.0, (step + 1) / (warmup_steps + 1)) * (1.0 - step / total_steps)


def token_nll(out: Output) -> Tensor:
    """Mean NLL over all counted target tokens of a batch (each token weighs the same)."""
    logp = torch.log_softmax(out.logits.float(), dim=-1)
    picked = logp.gather(-1, out.targets.unsqueeze(-1)).squeeze(-1)
    return -(picked * out.mask).sum() / out.mask.sum().clamp(min=1)
