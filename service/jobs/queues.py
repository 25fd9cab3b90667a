"""Which queue a job kind runs on (a job's row never names its queue; the kind decides).

``gpu``: training (train, retrain, fit, unlearn), which may hold a worker for hours.
``erasure``: the jobs that finish an erasure (``purge``): short, no GPU, never behind a
training. ``default``: the reconciler.
"""

from __future__ import annotations

from service.states import ERASURE_JOB_KINDS

GPU_QUEUE = "gpu"
ERASURE_QUEUE = "erasure"
DEFAULT_QUEUE = "default"
QUEUES = (GPU_QUEUE, ERASURE_QUEUE, DEFAULT_QUEUE)


def queue_of(kind: str) -> str:
    """The queue a job of ``kind`` is sent to."""
    return ERASURE_QUEUE if kind in ERASURE_JOB_KINDS else GPU_QUEUE
