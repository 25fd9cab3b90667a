"""Jobs and serving in the application service: tell workers about jobs, run one, run (or
wait for) what a new model or a resolved request queued, the demo set-up, and predict.

Each function of ``service.jobs.runner`` is called from one place here.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from service.app.writes import Writes
from service.lineage.errors import LineageError
from service.states import CLOSED_REQUEST_STATES, JobState, ModelState, RequestState
from service.views import Prediction, RequestView

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from models.progress import Progress
    from service.app.queries import HeldOutScore
    from service.jobs.runner import LocalWorker, Send
    from service.usecases.evaluate import Evaluation

log = logging.getLogger(__name__)
POLL_S = 2.0
EVAL_WAIT_S = 120.0
DEMO_DATASET = "rotten-tomatoes"
DEMO_HELD_OUT = 500
ProgressBars = Callable[[], AbstractContextManager["Progress"]]


class JobFailed(LineageError):
    """A job that an operator command ran or waited for did not end ``done``."""

    status = 500
    title = "Job failed"


class Answer(Protocol):
    """What a model server answers (``service.serving.Prediction``)."""

    @property
    def labels(self) -> list[str]: ...
    @property
    def probabilities(self) -> list[list[float]]: ...
    @property
    def routing_version(self) -> int: ...
    @property
    def routes(self) -> Sequence[Any]: ...
    @property
    def model_version(self) -> int | None: ...
    @property
    def completions(self) -> list[str] | None: ...
    @property
    def label_names(self) -> list[str]: ...


class Predictor(Protocol):
    """The model server the API passes in (``service.serving.ModelServer``)."""

    def predict(self, model_id: int, inputs: Sequence[object]) -> Answer: ...


@contextmanager
def no_progress() -> Iterator[Progress]:
    from models.progress import NULL_PROGRESS

    yield NULL_PROGRESS


class Work(Writes):
    """Mixed into :class:`service.app.service.Service`, which holds these attributes."""

    predictor: Predictor | None

    def reconcile(self, send: Send, *, lease: dt.timedelta | None = None) -> list[int]:
        """Requeue jobs whose worker or message was lost, then dispatch them again (on the
        configured lease, ``UNLEARN_JOB_LEASE_S``, unless ``lease`` is given)."""
        from service.jobs.runner import reconcile_round

        return reconcile_round(self.db, self.settings, send, lease=lease)

    def run_job(self, job_id: int, progress: Progress | None = None) -> str:
        """Claim and run one job: ``done``, ``skipped``, ``lost``, ``queued`` or ``failed``."""
        from service.jobs.runner import run_job

        return run_job(self.db, self.settings, job_id, progress)

    def local_worker(self) -> LocalWorker:
        """The embedded default's worker thread (its ``send`` wakes it)."""
        from service.jobs.runner import LocalWorker

        return LocalWorker(self.db, self.settings)

    def finish_model(
        self, model_id: int, progress: ProgressBars = no_progress
    ) -> HeldOutScore | None:
        """Embedded: run the model's queued jobs here. With a broker: wait until it is
        ready (and, up to ``EVAL_WAIT_S``, for its held-out score). Returns the held-out
        score when the model has an eval dataset and one was recorded. Raises
        :class:`JobFailed` if a job does not end ``done``."""
        from service.app.queries import last_held_out_score, model_state
        from service.db.tables import ModelRow
        from service.jobs.runner import next_queued

        if self.settings.embedded:
            self._run_queued(lambda s: next_queued(s, model_id=model_id), progress, strict=True)
            with self.db.read() as s:
                return last_held_out_score(s, model_id)
        self._poll(lambda s: model_state(s, model_id) in (ModelState.READY, ModelState.FAILED))
        with self.db.read() as s:
            if model_state(s, model_id) == ModelState.FAILED:
                raise JobFailed(
                    f"model {model_id} failed to train; see `unlearn status --model {model_id}`"
                )
            row = s.get(ModelRow, model_id)
            if row is None or row.eval_dataset_id is None:
                return None
        # The worker scores the model after the job that made it ready.
        deadline = time.monotonic() + EVAL_WAIT_S
        while True:
            with self.db.read() as s:
                score = last_held_out_score(s, model_id)
            if score is not None or time.monotonic() >= deadline:
                return score
            time.sleep(POLL_S)

    def finish_request(self, public_id: str, progress: ProgressBars = no_progress) -> RequestView:
        """Embedded: run the request's queued jobs here (a failed attempt is queued again
        until its last). With a broker: wait until it leaves ``unlearning``."""
        from service.jobs.runner import next_queued

        if self.settings.embedded:
            self._run_queued(lambda s: next_queued(s, request_id=public_id), progress)
            return self.request(public_id)
        while True:
            view = self.request(public_id)
            if view.state in (*CLOSED_REQUEST_STATES, RequestState.NEEDS_REVIEW):
                return view
            time.sleep(POLL_S)

    def _run_queued(
        self,
        next_job: Callable[[Session], int | None],
        progress: ProgressBars,
        *,
        strict: bool = False,
    ) -> None:
        """Run jobs in this process until ``next_job`` finds none or one is skipped;
        ``strict``: raise unless every job ends ``done``."""
        from models.determinism import configure_determinism
        from service.jobs.runner import run_next

        configure_determinism()
        with progress() as bars:
            while True:
                ran = run_next(self.db, self.settings, next_job, bars)
                if ran is None:
                    return
                job_id, outcome = ran
                if strict and outcome != JobState.DONE:
                    raise JobFailed(f"job {job_id} ended {outcome}; see `unlearn status`")
                if outcome == "skipped":
                    return

    def _poll(self, done: Callable[[Session], bool]) -> None:
        while True:
            with self.db.read() as s:
                if done(s):
                    return
            time.sleep(POLL_S)

    def set_up_demo(
        self, n_records: int, *, progress: ProgressBars, say: Callable[[str], None]
    ) -> None:
        """On first start: import Rotten Tomatoes (and a held-out part) and train a small S3T
        model on it, here (embedded) or by a worker. Nothing if a model is ready."""
        from service.app.queries import has_dataset, has_ready_model

        with self.db.read() as s:
            if has_ready_model(s):
                return
            has_data = has_dataset(s, DEMO_DATASET)
        if not has_data:
            from models.data import load_dataset

            both = load_dataset(DEMO_DATASET).subset(n_records + DEMO_HELD_OUT, 0)
            data, held_out = both.split(DEMO_HELD_OUT, 1)
            self.import_dataset(DEMO_DATASET, data)
            self.import_dataset(f"{DEMO_DATASET}-held-out", held_out)
            say(
                f"demo: imported {len(data)} Rotten Tomatoes snippets (+{len(held_out)} held out "
                "for the audit report's accuracy plot)"
            )
        say("demo: training a 2-shard x 4-slice S3T model (a few minutes on a laptop CPU)")
        from models.config import TrainConfig

        model_id = self.create_s3t_model(
            DEMO_DATASET,
            shards=2,
            budget=2,
            selection="cyclic",
            deletion_probs=None,
            config=TrainConfig(n_slices=4, rank=8, epochs=1, max_length=64, seed=0),
            eval_dataset=f"{DEMO_DATASET}-held-out",
        )
        self.finish_model(model_id, progress)

    def predict(self, model_id: int, inputs: Sequence[object]) -> Prediction:
        """Labels and probabilities from what the model serves now (the routing version is
        read before and after, see ``service.serving``)."""
        if self.predictor is None:
            raise LineageError("this service was opened without a model server")
        result = self.predictor.predict(model_id, inputs)
        answer: dict[str, Any] = {
            "labels": result.labels,
            "probabilities": result.probabilities,
            "routing_version": result.routing_version,
            "routes": [r.__dict__ for r in result.routes],
        }
        if result.model_version is not None:
            answer["model_version"] = result.model_version
        if result.completions is not None:
            answer["completions"] = result.completions
        if result.label_names:
            answer["label_names"] = result.label_names
        return Prediction.model_validate(answer)

    def evaluate(self, model_id: int, dataset: str) -> Evaluation:
        """Score what the model serves now on ``dataset``'s active records: accuracy,
        per-class precision/recall/F1 and the confusion matrix, at one routing version."""
        from service.lineage.registry import get_model
        from service.usecases.evaluate import score, scoring_inputs

        predictor = self.predictor
        if predictor is None:
            raise LineageError("this service was opened without a model server")
        with self.db.snapshot() as s:
            label_names, inputs, truth = scoring_inputs(s, get_model(s, model_id), dataset)
        return score(
            model_id=model_id,
            dataset=dataset,
            label_names=label_names,
            inputs=inputs,
            truth=truth,
            predict=lambda batch: predictor.predict(model_id, batch),
        )
