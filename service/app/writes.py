"""The write side of the application service: import, register models, accept and resolve
deletions. Each is one transaction; files are deleted and jobs dispatched after it commits."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from service.app.access import AccessOps
from service.app.reads import Reads
from service.views import Accepted, DatasetSummary, RequestView, plain

if TYPE_CHECKING:
    from collections.abc import Sequence

    from models.config import TrainConfig
    from models.data import Dataset
    from service.approximate.registry import ApproximateSpec
    from service.approximate.review import Action
    from service.audit.keys import Signer
    from service.db.group import GroupCommit
    from service.erasure.scrub import Scrubber
    from service.jobs.runner import Send
    from service.lineage.deletion import DeletionInput
    from service.lineage.registry import ModelSpec
    from service.usecases.accept_deletion import Submission

log = logging.getLogger(__name__)


class Writes(Reads, AccessOps):
    """Mixed into :class:`service.app.service.Service`, which holds these attributes."""

    send: Send
    signer: Signer
    intake: GroupCommit[Submission, Accepted]
    scrubber: Scrubber

    def import_dataset(self, name: str, dataset: Dataset) -> DatasetSummary:
        from service.lineage.datasets import store_dataset

        with self.write() as s:
            row = store_dataset(s, dataset, name, self.settings.secret())
            return self._summary(s, row)

    def check_upload(self, n_bytes: int) -> None:
        """An API key's dataset upload within ``UNLEARN_MAX_UPLOAD_BYTES``."""
        if self.principal.is_key:
            self.settings.caps.check_upload(n_bytes)

    def create_model(self, dataset: str, spec: ModelSpec) -> int:
        from service.lineage.registry import create_model

        with self.write() as s:
            config = spec.config
            self._check_model_count(s)
            self._check_params(
                {
                    "shards": spec.n_shards,
                    "budget": spec.budget,
                    "slices": config.n_slices,
                    "epochs": config.epochs,
                    "rank": config.rank,
                    "max_length": config.max_length,
                    "batch_size": config.batch_size,
                }
            )
            model = create_model(s, dataset, spec, self.settings.secret())
            model.created_by, model_id = self.principal.ref, model.id
        self.dispatch()
        return model_id

    def create_s3t_model(
        self,
        dataset: str,
        *,
        shards: int,
        budget: int,
        selection: str,
        deletion_probs: tuple[float, ...] | None,
        config: TrainConfig | None = None,
        backbone: str | None = None,
        eval_dataset: str | None = None,
    ) -> int:
        """An S3T model trained with ``config`` (default ``DEFAULT_TRAIN``) on ``backbone``
        (``None``: the dataset kind's default), with one class per label of the dataset:
        ``config``'s own ``backbone`` and ``n_classes`` are replaced."""
        import dataclasses

        from models.backbones import backbone_names, default_backbone
        from models.config import DEFAULT_TRAIN
        from models.folders import FolderError, is_folder_ref, resolve_folder
        from service.lineage.errors import Unprocessable
        from service.lineage.registry import ModelSpec

        ds = self.dataset(dataset)
        if backbone is not None and is_folder_ref(backbone):
            try:
                backbone = str(resolve_folder(backbone))  # absolute: no working directory
            except FolderError as exc:
                raise Unprocessable(str(exc)) from exc
        elif backbone is not None and backbone not in backbone_names():
            raise Unprocessable(
                f"unknown backbone {backbone!r}; known: {', '.join(backbone_names())}, or a "
                "path to a Hugging Face model folder"
            )
        try:
            resolved = dataclasses.replace(
                config or DEFAULT_TRAIN,
                backbone=backbone or default_backbone(ds.kind),
                n_classes=max(2, len(ds.label_names)),
            )
        except ValueError as exc:
            raise Unprocessable(str(exc)) from exc
        spec = ModelSpec(
            n_shards=shards,
            budget=budget,
            selection=selection,
            deletion_probs=deletion_probs,
            config=resolved,
            eval_dataset=eval_dataset,
        )
        return self.create_model(dataset, spec)

    def create_approximate_model(self, dataset: str, spec: ApproximateSpec) -> int:
        from service.approximate.registry import create_approximate_model

        with self.write() as s:
            self._check_model_count(s)
            self._check_params(spec.family_params, "family_params.")
            self._check_params(spec.method_params, "method_params.")
            model = create_approximate_model(s, dataset, spec)
            model.created_by, model_id = self.principal.ref, model.id
        self.dispatch()
        return model_id

    def resolve(
        self,
        public_id: str,
        action: Action,
        method: str | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> RequestView:
        """An operator's decision on a request in ``needs_review``; returns its view."""
        from service.approximate.review import resolve
        from service.approximate.store import version_store
        from service.jobs.hooks import HOOKS

        self._check_params(overrides or {}, "params.")
        with self.write() as s:
            req = self._get_request(s, public_id)
            done = resolve(s, req, action, method, overrides, hooks=HOOKS)
            view = self._request_view(s, req)
        store = version_store(self.settings.checkpoints_dir)
        for sha in done.delete:
            store.delete(sha)
        self.dispatch()
        return view

    def restore(self, model_id: int) -> list[int]:
        """Queue a retrain for every sequence of an S3T model below full depth that no open
        job rebuilds (after a model incident); returns the new job ids."""
        from service.exact.restore import restore_jobs
        from service.lineage.registry import get_model

        with self.write() as s:
            # Only S3T models have sequences: any other kind has nothing to restore.
            jobs = restore_jobs(s, get_model(s, model_id, lock=True))
        self.dispatch()
        return jobs

    def accept(self, req: DeletionInput, idempotency_key: str | None = None) -> Accepted:
        """Accept a deletion: erased and cut from serving when this returns. Concurrent calls
        are accepted together (``service.db.group``: one transaction for all the deletions
        that queued while the previous group was written)."""
        from service.usecases.accept_deletion import Submission

        return self.intake.submit(
            Submission(req, self.principal, idempotency_key), self._accept_group
        )

    def _accept_group(self, subs: Sequence[Submission]) -> list[Accepted | Exception]:
        """One transaction for the group, with each request's view; then the retired files
        go, the destroyed keys' old pages are scrubbed and the new jobs dispatched, once for
        the group. If the group's transaction fails, each request is tried alone: one
        request's failure (or a lost race) is never another's."""
        from service.lineage.deletion import Accepted as Done
        from service.usecases.accept_deletion import accept_deletions
        from service.usecases.views import request_views

        started = time.perf_counter()
        try:
            with self.write() as s:
                outcomes = accept_deletions(s, subs, secret=self.settings.secret())
                done = [o for o in outcomes if isinstance(o, Done)]
                views = iter(request_views(s, [o.request for o in done]))
        except Exception as exc:
            if len(subs) == 1:
                return [exc]
            log.warning("a group of %d deletions failed; accepting them one by one", len(subs))
            return [self._accept_group([sub])[0] for sub in subs]
        for o in done:
            for sha in o.retired:
                self.store.delete(sha)
        self.scrubber.soon()
        self.dispatch()
        took = 1e3 * (time.perf_counter() - started)
        log.debug("accepted a group of %d deletions in %.1f ms", len(subs), took)
        return [
            o
            if not isinstance(o, Done)
            else Accepted(
                request=RequestView.model_validate(next(views)),
                replayed=o.replayed,
                not_found=o.not_found,
                status_token=o.status_token,
            )
            for o in outcomes
        ]

    def delete(
        self, req: DeletionInput, idempotency_key: str | None = None
    ) -> tuple[dict[str, Any], bool, tuple[str, ...]]:
        """:meth:`accept` as (request view as a dict, replayed?, record ids not found)."""
        accepted = self.accept(req, idempotency_key)
        return plain(accepted.request), accepted.replayed, accepted.not_found

    def dispatch_to(self, send: Send) -> list[int]:
        """Send every queued job the broker has not been told about (the outbox)."""
        from service.jobs.runner import dispatch_pending

        return dispatch_pending(self.db, send)

    def dispatch(self) -> list[int]:
        """Tell workers about new jobs. Runs after a commit: a broker outage is logged, not
        raised (the request is already accepted; the reconciler sends the jobs later)."""
        try:
            return self.dispatch_to(self.send)
        except Exception:
            log.exception("could not dispatch jobs now; the reconciler will retry")
            return []
