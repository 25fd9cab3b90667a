"""The two job kinds: ``train`` (every shard of a new model) and ``retrain`` (one cut
sequence from its cut step). Both train from one DB snapshot and publish under the model
row lock, only while their attempt still owns the job."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from models.adapters import AdaptedEncoder
from models.cache import ActivationCache
from models.checkpoints import (
    CheckpointManifest,
    CheckpointStore,
    LocalCheckpointStore,
)
from models.config import TrainConfig
from models.progress import Progress
from models.s3t import S3TTrainer, ShardData, sequence_units, train_shard
from models.training import RowSource
from service.audit import log as audit
from service.db.engine import Database
from service.db.tables import JobRow, ModelRow, SequenceRow
from service.jobs.attempt import Attempt
from service.jobs.create import retrain_job
from service.jobs.evaluate import evaluate_served
from service.jobs.files import discarding_unused
from service.jobs.progress import DB_UNREACHABLE, JobProgress
from service.jobs.resume import (
    RecordingStore,
    kept,
    note_resumed,
    record_step,
    recorded,
    resumable,
    without_steps,
)
from service.jobs.shards import (
    ShardSnapshot,
    cache_dir,
    erased_ids,
    make_encoder,
    purge_cache,
    read_shard,
    shard_cache,
)
from service.jobs.totals import train_plan
from service.lineage.publish import publish_chain, sequence_chain, trained_steps
from service.lineage.registry import get_model, model_config
from service.lineage.routing import refresh_routing, served_depths, shard_sequences
from service.states import ModelState

log = logging.getLogger(__name__)


def _cleaning(db: Database, store: RecordingStore) -> AbstractContextManager[None]:
    """Whatever happens (published, lost, failed), leave no file of erased lineage behind:
    only what a live checkpoint publishes, or what a job that may still run recorded for
    its next attempt (``service.jobs.resume``), stays."""
    return discarding_unused(db, lambda: store.written, kept, store.inner.delete)


def _with_manifests(
    store: CheckpointStore, chain: tuple[str, ...]
) -> list[tuple[str, CheckpointManifest]]:
    return [(sha, store.get(sha)[1]) for sha in chain]


def _publish(
    ctx: Attempt,
    store: CheckpointStore,
    model_id: int,
    published: list[tuple[int, list[tuple[str, CheckpointManifest]]]],
    *,
    from_step: int,
    data_version: int,
    done: bool,
    evidence: dict[str, object] | None = None,
) -> None:
    """One transaction: publish ``(sequence id, chain)`` pairs, re-route, bump the version.

    The files are checked first: a lost job of another sequence sharing a prefix may have
    discarded one (the job then fails and its retry writes it again)."""
    missing = [sha for _, chain in published for sha, _ in chain if not store.exists(sha)]
    if missing:
        raise FileNotFoundError(f"checkpoint file(s) vanished before publishing: {missing}")
    with ctx.db.write() as s:
        # Model row first, then the job row: the order a deletion takes them in.
        model = get_model(s, model_id, lock=True)
        job = ctx.owned(s)
        followups = []
        shards = set()
        for seq_id, chain in published:
            seq = s.get(SequenceRow, seq_id)
            assert seq is not None
            depth = publish_chain(
                s, model, seq, chain, from_step=from_step, data_version=data_version
            )
            shards.add(seq.shard)
            if depth < len(seq.permutation):
                followups.append((seq, depth))
        refresh_routing(s, model, shards)
        model.routing_version += 1
        audit.append(
            s,
            "routing.published",
            {
                "model": model.id,
                "routing_version": model.routing_version,
                "job": job.id,
                "checkpoints": sorted({sha for _, chain in published for sha, _ in chain}),
                "served": served_depths(s, model.id),
            },
        )
        if done:
            job.evidence = evidence
            job.params = without_steps(job.params)  # published: nothing left to resume
            ctx.finish(s, job)
        for seq, depth in followups:
            retrain_job(s, model, seq.id, depth + 1)


def _cache(
    ctx: Attempt,
    model_id: int,
    encoder: AdaptedEncoder,
    snap: ShardSnapshot,
    max_length: int,
    progress: Progress,
) -> ActivationCache:
    """The shard's activation cache for ``snap``; records erased since the snapshot (whose
    purge job may have run before this cache was built) are dropped from it at once. This
    job trained on them, so its checkpoints that read them are cut when it publishes."""
    root = cache_dir(ctx.settings, model_id, snap.data.shard)
    cache = shard_cache(root, encoder, snap, max_length=max_length, progress=progress)
    with ctx.db.read() as s:
        late = erased_ids(s, model_id, snap.data.shard).get(snap.data.shard, set())
    purge_cache(root, late - snap.erased)
    return cache


def run_train(ctx: Attempt) -> None:
    db = ctx.db
    with db.read() as s:
        job_row = s.get(JobRow, ctx.job_id)
        assert job_row is not None
        model_id = job_row.model_id
    with db.write() as s:
        model = get_model(s, model_id, lock=True)
        ctx.owned(s)
        model.status = ModelState.TRAINING
        model_id, n_shards = model.id, model.n_shards
        config = model_config(model)
    encoder = make_encoder(config)
    with db.write() as s:
        get_model(s, model_id).backbone_sha256 = encoder.backbone.weights_sha256
    store = RecordingStore(LocalCheckpointStore(ctx.settings.checkpoints_dir))
    with _cleaning(db, store):
        _train_shards(ctx, model_id, n_shards, config, encoder, store)
    evaluate_served(db, store, model_id, encoder, ctx.progress)


def _train_shards(
    ctx: Attempt,
    model_id: int,
    n_shards: int,
    config: TrainConfig,
    encoder: AdaptedEncoder,
    store: RecordingStore,
) -> None:
    db = ctx.db
    trainer = S3TTrainer(encoder, config, store)
    with db.read() as s:
        plan = train_plan(s, model_id, n_shards, config)
    total = sum(p.cache + p.train for p in plan)
    tracker = _tracker(ctx, f"train model {model_id}", total)
    for work in plan:
        with db.snapshot() as s:
            seqs = shard_sequences(s, model_id, work.shard)
            if all(trained_steps(s, q.id) == config.n_slices for q in seqs):
                tracker.add(work.cache + work.train)
                continue  # published by an earlier attempt
            snap = read_shard(s, model_id, work.shard, config.n_slices)
            order = [(q.id, tuple(q.permutation)) for q in seqs]
        with tracker.stage(work.cache):
            cache = _cache(ctx, model_id, encoder, snap, config.max_length, tracker)
        with tracker.stage(work.train):
            chains = train_shard(trainer, snap.data, cache, [p for _, p in order], progress=tracker)
        _publish(
            ctx,
            store,
            model_id,
            [(qid, _with_manifests(store, c)) for (qid, _), c in zip(order, chains, strict=True)],
            from_step=1,
            data_version=snap.version,
            done=False,
        )
    with db.write() as s:
        model = get_model(s, model_id, lock=True)
        job = ctx.owned(s)
        model.status = ModelState.READY
        audit.append(
            s,
            "model.trained",
            {"model": model_id, "routing_version": model.routing_version, "job": job.id},
        )
        ctx.finish(s, job)


def _tracker(ctx: Attempt, what: str, total: int) -> JobProgress:
    return JobProgress(
        ctx.db, ctx.job_id, ctx.number, ctx.progress, total=total, label=f"job {ctx.job_id} {what}"
    )


def _recorder(ctx: Attempt) -> Callable[[CheckpointManifest, str], None]:
    """Record each finished step on the job row, for a later attempt to resume from. The
    row is only a shortcut: an unreachable database loses the note, not the step."""

    def record(manifest: CheckpointManifest, sha: str) -> None:
        try:
            record_step(ctx.db, ctx.job_id, ctx.number, manifest, sha)
        except DB_UNREACHABLE:
            log.warning("job %s: could not record step %s", ctx.job_id, manifest.step)

    return record


def run_retrain(ctx: Attempt) -> None:
    db, settings = ctx.db, ctx.settings
    with db.snapshot() as s:
        job = s.get(JobRow, ctx.job_id)
        assert job is not None and job.sequence_id is not None and job.from_step is not None
        model = s.get(ModelRow, job.model_id)
        seq = s.get(SequenceRow, job.sequence_id)
        assert model is not None and seq is not None
        config = model_config(model)
        from_step, seq_id, model_id = job.from_step, seq.id, model.id
        restored = tuple(c.sha256 for c in sequence_chain(s, seq, from_step - 1))
        snap = read_shard(s, model_id, seq.shard, config.n_slices)
        perm = tuple(seq.permutation)
        steps = recorded(job.params)
    sizes = [len(sl) for sl in snap.data.slices]
    units = sequence_units(sizes, perm, first_step=from_step, epochs=config.epochs)
    check = sequence_units(sizes, perm, epochs=config.epochs) if settings.check_retrain else 0
    what = f"retrain model {model_id} shard {snap.data.shard} from step {from_step}"
    tracker = _tracker(ctx, what, len(snap.inputs) + units + check)
    tracker.beat(force=True)  # the total is on the row from the start
    encoder = make_encoder(config)
    store = RecordingStore(LocalCheckpointStore(settings.checkpoints_dir), on_put=_recorder(ctx))
    with _cleaning(db, store):
        with tracker.stage(len(snap.inputs)):
            cache = _cache(ctx, model_id, encoder, snap, config.max_length, tracker)
        resumed = resumable(
            store,
            steps,
            restored,
            sequence=perm,
            examples=snap.data.examples,
            shard=snap.data.shard,
            config_hash=config.config_hash(),
            backbone_sha256=encoder.backbone.weights_sha256,
        )
        if len(resumed) > len(restored):
            store.written.update(resumed[len(restored) :])  # ours to publish or remove now
            note_resumed(db, ctx.job_id, ctx.number, range(len(restored) + 1, len(resumed) + 1))
            log.info("job %s resumes after step %s", ctx.job_id, len(resumed))
        with tracker.stage(units):
            # Steps an earlier attempt trained count as done from the start.
            prior = perm[: len(resumed)]
            tracker.add(sequence_units(sizes, prior, first_step=from_step, epochs=config.epochs))
            chain = S3TTrainer(encoder, config, store).train_sequence(
                snap.data, cache, perm, restored=resumed, progress=tracker
            )
        evidence = None
        if settings.check_retrain:
            with tracker.stage(check):
                evidence = _from_scratch_check(
                    encoder, config, snap.data, cache, perm, chain, tracker
                )
        _publish(
            ctx,
            store,
            model_id,
            [(seq_id, _with_manifests(store, chain))],
            from_step=from_step,
            data_version=snap.version,
            done=True,
            evidence=evidence,
        )
    evaluate_served(db, store, model_id, encoder, ctx.progress)


def _from_scratch_check(
    encoder: AdaptedEncoder,
    config: TrainConfig,
    data: ShardData,
    cache: RowSource,
    perm: tuple[int, ...],
    chain: tuple[str, ...],
    progress: Progress,
) -> dict[str, object]:
    """Train the whole sequence again from step 1 on the same (cleaned) data in a scratch
    store and compare every step's hash with the retrain's: the certificate's evidence that
    the retrain equals training without the erased records."""
    with tempfile.TemporaryDirectory(prefix="unlearn-check-") as tmp:
        scratch = S3TTrainer(encoder, config, LocalCheckpointStore(Path(tmp))).train_sequence(
            data, cache, perm, restored=(), progress=progress
        )
    match = tuple(scratch) == tuple(chain)
    if not match:
        log.error("retrain differs from training from scratch: %s vs %s", chain, scratch)
    return {"check": "from_scratch", "match": match, "from_scratch": list(scratch)}
