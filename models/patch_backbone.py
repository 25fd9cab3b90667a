"""A small transformer over image patches, for numeric-feature datasets such as MNIST-5k.

No pretrained weights for it ship in any package we may use, so its weights are a fixed,
seeded random initialisation (identical on every machine with the same torch version): a
frozen random-feature encoder that LoRA and the head adapt. Its ``weights_sha256`` pins it.
"""

from __future__ import annotations

from collections.abc import Sequence, Sized

import torch
from torch import nn

from models.backbone import Backbone, BackboneInput
from models.hashing import state_hash

INIT_SEED = 20240617


class PatchBackbone(Backbone):
    """Square images given as flat feature vectors, cut into ``patch x patch`` tiles."""

    def __init__(self, *, name: str, side: int = 28, patch: int = 7, hidden: int = 128) -> None:
        from transformers import BertConfig, BertModel

        if side % patch:
            raise ValueError(f"image side {side} is not a multiple of the patch size {patch}")
        self.side, self.patch = side, patch
        n_patches = (side // patch) ** 2
        # attn_implementation is a PreTrainedConfig keyword that BertConfig's generated
        # signature does not list.
        config = BertConfig(  # type: ignore[call-arg]
            vocab_size=2,
            hidden_size=hidden,
            num_hidden_layers=4,
            num_attention_heads=4,
            intermediate_size=4 * hidden,
            max_position_embeddings=n_patches,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
            attn_implementation="eager",
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(INIT_SEED)
            model = BertModel(config, add_pooling_layer=False)
            self.projection = nn.Linear(patch * patch, hidden)
        self.projection.requires_grad_(False)
        digest = state_hash(
            {
                **model.state_dict(),
                **{f"proj.{k}": v for k, v in self.projection.state_dict().items()},
            }
        )
        super().__init__(name=name, model=model, tokenizer=None, weights_sha256=digest)

    def prepare(self, items: Sequence[object], max_length: int) -> BackboneInput:
        rows = []
        for item in items:
            if (
                isinstance(item, str)
                or not isinstance(item, Sized)
                or len(item) != self.side * self.side
            ):
                raise ValueError(f"{self.name} takes {self.side * self.side} numeric features")
            rows.append(torch.tensor(item, dtype=torch.float32))
        images = torch.stack(rows).view(-1, self.side, self.side)
        p = self.patch
        patches = images.unfold(1, p, p).unfold(2, p, p).reshape(len(rows), -1, p * p)
        mask = torch.ones(patches.shape[:2], dtype=torch.long)
        return BackboneInput(patches, mask).to(self.device)

    def to(self, device: torch.device) -> None:
        super().to(device)
        self.projection.to(device)

    def embed(self, inputs: BackboneInput) -> torch.Tensor:
        embeddings = self.model.get_submodule("embeddings")
        out: torch.Tensor = embeddings(inputs_embeds=self.projection(inputs.input_ids))
        return out


def load_patch_backbone() -> Backbone:
    return PatchBackbone(name="patch-transformer-28")


__all__ = ["PatchBackbone", "load_patch_backbone"]
