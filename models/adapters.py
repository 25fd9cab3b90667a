"""LoRA adapters (peft) on the attention projections (or every linear layer) of the adapted
layer groups.

One :class:`AdaptedEncoder` holds a backbone with LoRA injected into every layer that belongs to
a group. Which groups are *on* (adapters applied) and which are *trainable* are separate switches:
a model of depth ``d`` has groups ``1..d`` on and every lower group off (plain backbone).
"""

from __future__ import annotations

import math

import torch
from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.lora import LoraLayer

from models.backbone import Backbone
from models.backbones import load_backbone
from models.config import TrainConfig
from models.hashing import state_hash
from models.layout import GroupLayout

GroupState = dict[str, torch.Tensor]


class AdaptedEncoder:
    """A backbone with one LoRA adapter per adapted layer, addressed by top-down group."""

    def __init__(
        self,
        backbone: Backbone,
        *,
        n_groups: int,
        rank: int,
        alpha: float,
        lora_targets: str = "attention",
    ) -> None:
        self.backbone = backbone
        self.layout = GroupLayout(backbone.n_layers, n_groups)
        targets = [
            name
            for layer in self.layout.adapted_layers
            for name in backbone.adapter_targets(layer, lora_targets)
        ]
        # Parameter names use a target's last name part (``query``) unless two targets of a
        # layer share it (all linear layers of BERT end in ``dense``): then its whole path.
        leaves = [t.rsplit(".", 1)[-1] for t in backbone.architecture.targets(lora_targets)]
        self._short_names = len(set(leaves)) == len(leaves)
        # peft annotates lora_alpha as int but scales by alpha / r, so a float alpha is exact.
        config = LoraConfig(
            r=rank,
            lora_alpha=alpha,  # type: ignore[arg-type]
            lora_dropout=0.0,
            target_modules=targets,
            fan_in_fan_out=backbone.architecture.fan_in_fan_out,
        )
        inject_adapter_in_model(config, backbone.model)
        self._lora_layers: dict[int, list[tuple[str, LoraLayer]]] = {}
        for name, module in backbone.model.named_modules():
            if isinstance(module, LoraLayer):
                layer = backbone.layer_of(name)
                group = None if layer is None else self.layout.group_of(layer)
                if group is None or name not in targets:
                    raise RuntimeError(f"LoRA injected outside the adapted layers: {name}")
                self._lora_layers.setdefault(group, []).append((name, module))
        missing = set(range(1, n_groups + 1)) - set(self._lora_layers)
        if missing or sum(len(v) for v in self._lora_layers.values()) != len(targets):
            raise RuntimeError("LoRA injection did not match the layer groups")
        self.set_active_groups(0)
        self.set_trainable_groups(())

    @property
    def device(self) -> torch.device:
        return self.backbone.device

    def to(self, device: torch.device) -> AdaptedEncoder:
        self.backbone.to(device)
        return self

    @property
    def n_groups(self) -> int:
        return self.layout.n_groups

    # -- switches -----------------------------------------------------------------------------
    def set_active_groups(self, depth: int) -> None:
        """Adapters of groups ``1..depth`` on, all lower groups off (plain backbone)."""
        for group, modules in self._lora_layers.items():
            for _, module in modules:
                module.enable_adapters(group <= depth)
        self._freeze_all()

    def set_trainable_groups(self, groups: tuple[int, ...]) -> None:
        """Only the LoRA weights of ``groups`` require grad; everything else is frozen."""
        self._freeze_all()
        for group in groups:
            for param in self.group_parameters(group).values():
                param.requires_grad_(True)

    def _freeze_all(self) -> None:
        for param in self.backbone.model.parameters():
            param.requires_grad_(False)

    # -- weights ------------------------------------------------------------------------------
    def group_parameters(self, group: int) -> dict[str, torch.nn.Parameter]:
        """LoRA parameters of ``group``, named ``layer{i}.{target}.lora_{A|B}`` (``target``:
        e.g. ``query``, ``value``)."""
        params: dict[str, torch.nn.Parameter] = {}
        prefix = self.backbone.architecture.layers + "."
        for name, module in self._lora_layers[group]:
            layer = self.backbone.layer_of(name)
            within = name[len(prefix) :].split(".", 1)[1]
            target = within.rsplit(".", 1)[-1] if self._short_names else within
            key = f"layer{layer}.{target}"
            params[f"{key}.lora_A"] = _weight(module.lora_A["default"])
            params[f"{key}.lora_B"] = _weight(module.lora_B["default"])
        return params

    def group_state(self, group: int) -> GroupState:
        """A CPU copy (what checkpoints store, whatever device trains)."""
        return {k: v.detach().cpu().clone() for k, v in self.group_parameters(group).items()}

    def load_group_state(self, group: int, state: GroupState) -> None:
        params = self.group_parameters(group)
        if set(params) != set(state):
            raise ValueError(f"group {group} state has keys {sorted(state)}, need {sorted(params)}")
        with torch.no_grad():
            for key, param in params.items():
                param.copy_(state[key])

    def reset_group(self, group: int, generator: torch.Generator) -> None:
        """Fresh LoRA init for ``group`` from ``generator``: A ~ Kaiming-uniform, B = 0."""
        with torch.no_grad():
            for key, param in sorted(self.group_parameters(group).items()):
                if key.endswith("lora_A"):
                    # Drawn on the CPU from the CPU generator, then copied: the same initial
                    # weights on every device.
                    bound = 1.0 / math.sqrt(param.shape[1])
                    values = torch.empty(param.shape, dtype=param.dtype)
                    param.copy_(values.uniform_(-bound, bound, generator=generator))
                else:
                    param.zero_()

    def group_hash(self, group: int) -> str:
        return state_hash(self.group_parameters(group))

    # -- forward ------------------------------------------------------------------------------
    def forward_from(
        self, hidden: torch.Tensor, attention_mask: torch.Tensor | None, start: int
    ) -> torch.Tensor:
        """Run layers ``start..top`` (with whatever adapters are on) and the final norm."""
        backbone = self.backbone
        return backbone.top(backbone.run_layers(hidden, attention_mask, start, backbone.n_layers))


def build_encoder(config: TrainConfig) -> AdaptedEncoder:
    """A fresh encoder for ``config``: its backbone, one LoRA group per slice, on the CPU.

    The one place an encoder is built from a config (training, serving, evaluation and the
    benchmarks), so every caller gets the same groups, rank and alpha.
    """
    return AdaptedEncoder(
        load_backbone(config.backbone),
        n_groups=config.n_slices,
        rank=config.rank,
        alpha=config.alpha,
        lora_targets=config.lora_targets,
    )


def _weight(factor: torch.nn.Module) -> torch.nn.Parameter:
    """The weight of a LoRA factor (A or B), a layer whose weight is a parameter."""
    weight = factor.weight
    if not isinstance(weight, torch.nn.Parameter):
        raise TypeError(f"LoRA factor {type(factor).__name__} has no weight parameter")
    return weight
