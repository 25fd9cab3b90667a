"""The text families behind the service: the LoRA-on-all-layers MiniLM classifier and the
tiny GPT-2 language model, each trained, unlearned on a deletion and served."""

from __future__ import annotations

from typing import Any

import pytest

from service.approximate.registry import ApproximateSpec
from service.core import Service
from service.lineage.deletion import DeletionInput
from service.lineage.query import get_request
from service.serving import ModelServer
from service.usecases.views import request_view
from tests.service.api.conftest import drain
from tests.service.conftest import synthetic_dataset

FAMILIES = {
    "minilm-lora-all": (
        {"rank": 4, "epochs": 1, "batch_size": 16, "max_length": 24},
        ("UA", "RA", "TA", "MIA", "loss_auc"),
    ),
    "gpt2-tiny": (
        {"n_layer": 1, "n_embd": 32, "n_head": 2, "max_length": 32, "epochs": 2},
        ("forget_nll", "retain_nll", "forget_rouge_l", "min_k_auc", "retain_nll_before"),
    ),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_text_family_unlearns_and_serves(settings: Any, family: str) -> None:
    svc = Service.open(settings)
    svc.upgrade_schema()
    svc.import_dataset("snippets", synthetic_dataset(72, n_subjects=6, seed=0))
    svc.import_dataset("snippets-held-out", synthetic_dataset(24, n_subjects=0, seed=1))
    params, keys = FAMILIES[family]
    model_id = svc.create_approximate_model(
        "snippets",
        ApproximateSpec(family, "snippets-held-out", family_params=params, evidence_retain=40),
    )
    drain(svc)
    server = ModelServer(svc)
    before = server.predict(model_id, ["the film was great"])
    assert before.model_version == 1
    view, _, _ = svc.delete(DeletionInput(subject_id="subject-2"))
    assert view["state"] == "unlearning"
    drain(svc)
    with svc.db.read() as s:
        done = request_view(s, get_request(s, view["id"]))
    assert done["state"] in ("completed", "needs_review"), done
    (attempt,) = done["unlearning"]
    assert attempt["method"] == ("NPO" if family == "gpt2-tiny" else "l1-sparse")
    evidence = attempt["version"]["evidence"]
    assert evidence["n_forget"] == 3 and all(k in evidence for k in keys), evidence
    assert isinstance(evidence["under_unlearning"], bool)
    after = server.predict(model_id, ["the film was great"])
    if done["state"] == "completed":
        assert after.model_version == 2
    else:
        assert after.model_version == 1  # flagged: the old version serves until review
    if family == "gpt2-tiny":
        assert after.completions is not None and isinstance(after.completions[0], str)
        assert after.labels == []
    else:
        assert after.labels[0] in ("neg", "pos") and after.completions is None
    svc.db.dispose()
