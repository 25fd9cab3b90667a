"""Which device trains and serves: ``UNLEARN_DEVICE`` = ``auto`` (CUDA when present, else the
CPU), ``cpu``, ``cuda`` or ``cuda:N``.

Bit-identical retraining holds per device kind: a checkpoint trained on a GPU equals a GPU
retrain, not a CPU one (their floating-point kernels differ), so one model's jobs should run
on one kind of worker.
"""

from __future__ import annotations

import os

import torch


def resolve_device(spec: str | None = None) -> torch.device:
    spec = (spec or os.environ.get("UNLEARN_DEVICE") or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as exc:
        raise ValueError(
            f"UNLEARN_DEVICE={spec!r} is not a device (auto, cpu, cuda, cuda:N)"
        ) from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"UNLEARN_DEVICE={spec!r} but no CUDA device is available")
    return device
