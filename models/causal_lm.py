"""Causal language modelling as an S3T task: records of ``prompt, completion`` (or plain
``text``, a completion with no prompt), tokenised once into the ids the activation cache
holds rows of and the loss predicts.

A record becomes ``prompt tokens + completion tokens + end token``, cut to ``max_length``;
the loss (``models.head.LMHead``) covers the completion and end tokens only. Step ``k``
trains group ``k`` on slices ``1..k`` from the cache below it, as for classification, and
the model's output layer stays frozen, so a checkpoint is its group's adapters alone.
"""

from __future__ import annotations

from typing import Any

from models.examples import Example


def lm_tokens(
    tokenizer: Any, prompt: str, completion: str, max_length: int
) -> tuple[tuple[int, ...], int]:
    """The record's token ids and how many of them are the prompt."""
    prompt_ids = list(tokenizer(prompt, add_special_tokens=True)["input_ids"]) if prompt else []
    completion_ids = list(tokenizer(completion, add_special_tokens=False)["input_ids"])
    eos = tokenizer.eos_token_id
    if eos is not None:
        completion_ids.append(int(eos))
    ids = (prompt_ids + completion_ids)[:max_length]
    return tuple(int(i) for i in ids), min(len(prompt_ids), len(ids))


def lm_example(
    record_id: str, tokenizer: Any, prompt: str, completion: str, max_length: int
) -> Example:
    tokens, n_prompt = lm_tokens(tokenizer, prompt, completion, max_length)
    return Example(record_id, 0, tokens, n_prompt)
