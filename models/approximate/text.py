"""The MiniLM text classifier with LoRA on every layer, trained on all its data at once: the
"normal" fine-tuned text model that approximate unlearning stands in for when a company did
not train it the S3T way."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from peft import LoraConfig, inject_adapter_in_model
from torch import nn

from models.approximate.base import (
    Batch,
    Examples,
    Output,
    Task,
    UnlearningError,
    classifier_output,
    train_epochs,
)
from models.backbone import Backbone, Tokenizer
from models.backbones import load_backbone
from models.head import ClassificationHead


class LoraTextClassifier(nn.Module):
    """Backbone with LoRA on query/value of every layer, mean pooling and a linear head.
    Inputs are ``[B, 2, T]``: token ids and the attention mask stacked."""

    def __init__(self, backbone: Backbone, n_classes: int, rank: int, alpha: float) -> None:
        super().__init__()
        targets = [t for layer in range(backbone.n_layers) for t in backbone.adapter_targets(layer)]
        # peft annotates lora_alpha as int but scales by alpha / r, so a float alpha is exact.
        config = LoraConfig(
            r=rank,
            lora_alpha=alpha,  # type: ignore[arg-type]
            lora_dropout=0.0,
            target_modules=targets,
        )
        self.encoder = inject_adapter_in_model(config, backbone.model)
        self.head = ClassificationHead(backbone.hidden_size, n_classes)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        ids, mask = inputs[:, 0], inputs[:, 1]
        hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        out: torch.Tensor = self.head(hidden, mask)
        return out


@dataclass
class LoraTextFamily:
    """AdamW on the LoRA and head weights only; the pretrained backbone stays frozen."""

    name: str = "minilm-lora-all"
    task: Task = "classifier"
    n_classes: int = 2
    rank: int = 8
    alpha: float = 16.0
    max_length: int = 64
    epochs: int = 2
    lr: float = 2e-3
    batch_size: int = 32
    _tokenizer: Tokenizer | None = field(default=None, repr=False)

    def build(self, seed: int) -> nn.Module:
        backbone = load_backbone("all-minilm-l6-v2")
        self._tokenizer = backbone.tokenizer
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # LoRA A matrices and the head draw from here
            model = LoraTextClassifier(backbone, self.n_classes, self.rank, self.alpha)
        for name, p in model.named_parameters():
            p.requires_grad_("lora_" in name or name.startswith("head."))
        return model.eval()

    def encode_texts(self, texts: Sequence[str], labels: Sequence[int]) -> Examples:
        if self._tokenizer is None:
            self._tokenizer = load_backbone("all-minilm-l6-v2").tokenizer
        if self._tokenizer is None:
            raise UnlearningError("backbone all-minilm-l6-v2 has no tokenizer")
        enc = self._tokenizer(
            list(texts),
            padding="max_length",
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        inputs = torch.stack([enc["input_ids"], enc["attention_mask"]], dim=1)
        return Examples(inputs, torch.tensor(list(labels), dtype=torch.long))

    def forward(self, model: nn.Module, batch: Batch) -> Output:
        return classifier_output(model(batch.inputs), batch)

    def fit(self, model: nn.Module, data: Examples, *, seed: int) -> nn.Module:
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trainable, lr=self.lr, weight_decay=0.0)
        return train_epochs(
            self, model, data, optimizer, epochs=self.epochs, batch_size=self.batch_size, seed=seed
        )
