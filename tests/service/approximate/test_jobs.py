"""The approximate jobs' guarantees: a version never drops an earlier forgetting (publish is a
compare-and-swap on the live version), records a version never saw need no unlearning, and
``unlearn verify`` catches weights or payloads left behind."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

import service.approximate.jobs as approximate_jobs
from service.approximate.registry import ApproximateSpec
from service.approximate.store import version_store
from service.core import Service
from service.db.tables import DeletionRequestRow, ForgetPayloadRow, JobRow, ModelVersionRow
from service.jobs.runner import run_job
from service.lineage.deletion import DeletionInput
from service.usecases.verify import verify
from tests.service.api.conftest import drain
from tests.service.approximate.conftest import CNN

# Margins nothing crosses: every result publishes without review.
NO_REVIEW = {"auc_margin": 0.5, "max_test_drop": 100.0}


def _spec(**extra: Any) -> ApproximateSpec:
    args: dict[str, Any] = {
        "family": "cnn-mnist",
        "eval_dataset": "digits-held-out",
        "family_params": CNN,
        "method": "l1-sparse",
        **NO_REVIEW,
        **extra,
    }
    return ApproximateSpec(**args)


def _delete(svc: Service, subject: str) -> tuple[str, int]:
    view, _, _ = svc.delete(DeletionInput(subject_id=subject))
    (job,) = [j["id"] for j in view["jobs"] if j["kind"] == "unlearn"]
    return view["id"], job


def _versions(svc: Service, model_id: int) -> list[ModelVersionRow]:
    with svc.db.read() as s:
        rows = s.scalars(
            select(ModelVersionRow)
            .where(ModelVersionRow.model_id == model_id)
            .order_by(ModelVersionRow.version)
        )
        return list(rows)


def _states(svc: Service) -> list[str]:
    with svc.db.read() as s:
        return list(s.scalars(select(DeletionRequestRow.state).order_by(DeletionRequestRow.id)))


def test_a_version_published_meanwhile_makes_the_job_start_again_from_it(
    images: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = images
    model_id = svc.create_approximate_model("digits", _spec())
    drain(svc)
    _, job_a = _delete(svc, "subject-0")
    _, job_b = _delete(svc, "subject-1")
    measure = approximate_jobs.measure
    raced: list[int] = []

    def racing(*args: Any, **kwargs: Any) -> Any:
        if not raced:  # while job A measures, job B publishes its version
            raced.append(1)
            assert run_job(svc.db, svc.settings, job_b) == "done"
        return measure(*args, **kwargs)

    monkeypatch.setattr(approximate_jobs, "measure", racing)
    assert run_job(svc.db, svc.settings, job_a) == "queued"  # lost the race: retried
    with svc.db.read() as s:
        job = s.get(JobRow, job_a)
        assert job is not None and "no longer live" in (job.error or "")
    drain(svc)
    v1, v_b, v_a = _versions(svc, model_id)
    assert (v_b.job_id, v_a.job_id) == (job_b, job_a)
    assert v_a.parent_id == v_b.id and v_b.parent_id == v1.id  # A's forgetting builds on B's
    assert v_a.state == "live" and v_b.state == v1.state == "retired"
    assert _states(svc) == ["completed", "completed"]
    store = version_store(svc.settings.checkpoints_dir)
    files = sorted(p.name for p in store.root.iterdir())
    assert files == [f"{v_a.sha256}.safetensors"]  # A's first result and the old versions gone
    with svc.db.read() as s:
        assert verify(s, svc.store).ok


def test_records_the_live_version_never_saw_need_no_unlearning(images: Service) -> None:
    svc = images
    model_id = svc.create_approximate_model("digits", _spec())
    request_id, _ = _delete(svc, "subject-0")  # before the fit job ran
    drain(svc)
    (v1,) = _versions(svc, model_id)
    assert v1.state == "live" and v1.method == "train"
    with svc.db.read() as s:
        req = s.scalar(select(DeletionRequestRow).where(DeletionRequestRow.public_id == request_id))
        assert req is not None and req.state == "completed"
        job = s.scalar(select(JobRow).where(JobRow.kind == "unlearn"))
        assert job is not None and job.evidence is not None
        assert job.evidence["method"] == "none" and job.evidence["exact"] is True
        fit = s.scalar(select(JobRow).where(JobRow.kind == "fit"))
        assert fit is not None and fit.evidence is not None
        assert fit.evidence["n_records"] == 197  # trained without the erased three


def test_verify_names_weights_and_payloads_left_behind(images: Service) -> None:
    svc = images
    model_id = svc.create_approximate_model("digits", _spec())
    drain(svc)
    _delete(svc, "subject-0")
    drain(svc)
    with svc.db.read() as s:
        assert verify(s, svc.store).ok
    v1, v2 = _versions(svc, model_id)
    store = version_store(svc.settings.checkpoints_dir)
    (store.root / f"{v1.sha256}.safetensors").write_bytes(b"the old weights, left behind")
    (store.root / f"{v2.sha256}.safetensors").write_bytes(b"corrupted")
    with svc.db.write() as s:
        req = s.scalar(select(DeletionRequestRow))
        assert req is not None
        s.add(ForgetPayloadRow(request_id=req.id, record_pk=1, label=0, payload={"x": 1}))
    with svc.db.read() as s:
        problems = verify(s, svc.store).violations
    assert any("retired version 1 still has its weights file" in p for p in problems), problems
    assert any("version 2" in p and "corrupt" in p for p in problems), problems
    assert any("forget payloads are still held" in p for p in problems), problems


def test_ssd_uses_the_importances_stored_at_training(images: Service) -> None:
    svc = images
    model_id = svc.create_approximate_model(
        "digits", _spec(method="SSD", method_params={"alpha": 1.0})
    )
    drain(svc)
    (v1,) = _versions(svc, model_id)
    saved = version_store(svc.settings.checkpoints_dir).get(v1.sha256)
    assert any(k.startswith(approximate_jobs.FISHER) for k in saved)
    _delete(svc, "subject-0")
    drain(svc)
    v1, v2 = _versions(svc, model_id)
    assert v2.method == "SSD" and v2.state == "live" and v2.sha256 != v1.sha256
    assert v2.evidence is not None and v2.evidence["steps"] == 0  # no training, one pass
    assert _states(svc) == ["completed"]


def test_utility_is_measured_against_the_last_exact_version(images: Service) -> None:
    """Drift over many deletions must not hide: each version's drop counts from the version
    trained from scratch, not from its (already unlearned) parent."""
    svc = images
    model_id = svc.create_approximate_model("digits", _spec())
    drain(svc)
    for subject in ("subject-0", "subject-1"):
        _delete(svc, subject)
        drain(svc)
    v1, v2, v3 = _versions(svc, model_id)
    assert v1.held_out is not None and v2.held_out is not None and v3.evidence is not None
    assert v3.evidence["TA_baseline"] == v1.held_out["TA"]
    assert v3.evidence["TA_before"] == v2.held_out["TA"]
    assert v2.evidence is not None and v2.held_out["TA"] == v2.evidence["TA"]  # cached


def test_a_fit_that_fails_for_good_marks_the_model_failed_and_frees_its_requests(
    images: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models.approximate.vision import CNNFamily

    svc = images

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("out of memory (simulated)")

    monkeypatch.setattr(CNNFamily, "fit", broken)
    model_id = svc.create_approximate_model("digits", _spec())
    request_id, _ = _delete(svc, "subject-0")  # waits on the model's unlearning
    drain(svc)
    with svc.db.read() as s:
        from service.lineage.registry import get_model
        from service.usecases.views import model_status

        status = model_status(s, get_model(s, model_id))
        assert status["status"] == "failed" and "simulated" in status["error"]
        assert status["live_version"] is None
        req = s.scalar(select(DeletionRequestRow).where(DeletionRequestRow.public_id == request_id))
        assert req is not None and req.state == "completed"
        assert s.scalar(select(ForgetPayloadRow)) is None
    # A later deletion leaves a failed model alone: nothing held, nothing queued.
    view, _, _ = svc.delete(DeletionInput(subject_id="subject-1"))
    assert view["state"] == "completed" and view["unlearning"] == []
