"""The MiniLM LoRA-all-layers family: builds reproducibly, trains only LoRA and the head, and
takes the unlearning methods."""

from __future__ import annotations

import pytest
import torch

from models.approximate.evidence import scores
from models.approximate.run import unlearn
from models.approximate.text import LoraTextFamily
from tests.service.conftest import synthetic_dataset

FAMILY = LoraTextFamily(max_length=16, epochs=3, batch_size=16, rank=4)


@pytest.fixture(scope="module")
def trained() -> dict[str, object]:
    data = synthetic_dataset(n=64)
    texts = [r.text or "" for r in data.records]
    labels = [r.label for r in data.records]
    examples = FAMILY.encode_texts(texts, labels)
    model = FAMILY.build(0)
    before = scores(FAMILY, model, examples).loss.mean()
    model = FAMILY.fit(model, examples, seed=0)
    return {"model": model, "data": examples, "before": before}


def test_build_is_seeded_and_trains_only_lora_and_head() -> None:
    a, b = FAMILY.build(3), FAMILY.build(3)
    trainable = {n for n, p in a.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or n.startswith("head.") for n in trainable)
    assert any("layer.0." in n for n in trainable) and any("layer.5." in n for n in trainable)
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_fit_learns_and_npo_unlearns(trained: dict) -> None:
    model, data = trained["model"], trained["data"]
    assert scores(FAMILY, model, data).loss.mean() < trained["before"]
    forget, retain = data.take(torch.arange(8)), data.take(torch.arange(8, len(data)))
    before = scores(FAMILY, model, forget).loss.mean()
    result = unlearn(FAMILY, model, "NPO", forget, retain, seed=0, lr=5e-3, epochs=3)
    assert scores(FAMILY, result.model, forget).loss.mean() > before
    frozen = {n: p for n, p in model.named_parameters() if not p.requires_grad}
    after = dict(result.model.named_parameters())
    assert all(torch.equal(p, after[n]) for n, p in frozen.items())  # backbone untouched
