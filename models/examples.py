"""The training example: what a trainer needs of a record (no torch here)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Example:
    """What training needs of a record: its id (to find cached rows) and its label; for a
    language model, its token ids (what the cache holds rows of) and how many of them are
    the prompt (the loss covers the rest)."""

    record_id: str
    label: int
    tokens: tuple[int, ...] = ()
    n_prompt: int = 0
