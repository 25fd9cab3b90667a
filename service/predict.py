"""Turning class logits into the answer of a prediction (both kinds' classifiers)."""

from __future__ import annotations

import torch

from service.kind import Prediction
from service.lineage.served import Route


def classify(
    logits: torch.Tensor,
    label_names: list[str],
    routing_version: int,
    routes: list[Route],
    model_version: int | None = None,
) -> Prediction:
    probs = torch.softmax(logits, dim=-1)
    return Prediction(
        labels=[label_names[i] for i in probs.argmax(dim=-1).tolist()],
        probabilities=[[round(p, 6) for p in row] for row in probs.tolist()],
        routing_version=routing_version,
        routes=routes,
        model_version=model_version,
        label_names=list(label_names),
    )
