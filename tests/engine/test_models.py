"""Loading the tiny real model from every layout users have, through the real loaders."""

import shutil

import pytest
import torch

from zitdesk.errors import ModelError
from zitdesk.models.discovery import discover, resolve_model
from zitdesk.models.loader import load_pipeline
from zitdesk.models.tiny import hf_cache_layout, save_tiny_model


def _image(pipe, seed=3):
    g = torch.Generator().manual_seed(seed)
    return pipe(
        "a red fox",
        height=64,
        width=64,
        num_inference_steps=2,
        guidance_scale=0.0,
        generator=g,
        output_type="pt",
        max_sequence_length=64,
    ).images


@pytest.fixture(scope="module")
def reference_image(tiny_pipe):
    return _image(tiny_pipe)


def test_diffusers_folder(tiny_diffusers, reference_image):
    src = resolve_model(tiny_diffusers)
    assert src.kind == "diffusers" and src.complete
    img = _image(load_pipeline(src))
    assert img.shape == (1, 3, 64, 64) and torch.isfinite(img).all()
    assert torch.equal(img, reference_image)


def test_comfy_split_files_match_diffusers(tiny_comfy, reference_image):
    src = resolve_model(tiny_comfy)
    assert src.kind == "comfy" and src.complete, src.describe()
    assert set(src.files) == {"transformer", "text_encoder", "vae"}
    img = _image(load_pipeline(src))
    assert torch.allclose(img, reference_image, atol=1e-5)


def test_comfy_fp8_dit_loads(tmp_path, tiny_components, reference_image):
    d = save_tiny_model(
        tmp_path / "fp8", "comfy", components=tiny_components, dit_dtype="float8_e4m3fn"
    )
    assert any("fp8_e4m3fn" in f.name for f in d.iterdir())
    pipe = load_pipeline(resolve_model(d))
    img = _image(pipe)
    assert torch.isfinite(img).all()
    assert (img - reference_image).abs().max() < 0.25  # fp8 rounding only


def test_comfy_models_tree(tmp_path, tiny_comfy):
    models = tmp_path / "ComfyUI" / "models"
    for sub, name in (
        ("diffusion_models", "z_image_turbo_bf16.safetensors"),
        ("text_encoders", "qwen_3_4b.safetensors"),
        ("vae", "ae.safetensors"),
    ):
        (models / sub).mkdir(parents=True)
        shutil.copy(tiny_comfy / name, models / sub / name)
    shutil.copytree(tiny_comfy / "tokenizer", models / "tokenizer")
    src = resolve_model(models)
    assert src.complete and src.files["vae"].parent.name == "vae"


def test_hf_cache_layout_and_discovery(tmp_path, tiny_diffusers, monkeypatch, reference_image):
    hub = tmp_path / "hub"
    model_dir = hf_cache_layout(tiny_diffusers, hub)
    src = resolve_model(model_dir)
    assert src.complete and src.origin == "hf-cache"
    assert torch.equal(_image(load_pipeline(src)), reference_image)
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    found = discover()
    assert [s.label for s in found] == ["Tongyi-MAI/Z-Image-Turbo"]
    assert found[0].complete


def test_missing_part_is_reported(tmp_path, tiny_comfy):
    d = tmp_path / "partial"
    d.mkdir()
    shutil.copy(tiny_comfy / "z_image_turbo_bf16.safetensors", d)
    shutil.copy(tiny_comfy / "ae.safetensors", d)
    src = resolve_model(d)
    assert not src.complete
    assert src.missing == ["text encoder (Qwen3-4B)"]
    with pytest.raises(ModelError, match="missing text encoder"):
        load_pipeline(src)
    found = discover([d])
    assert found and "missing text encoder" in found[0].describe()


def test_diffusers_folder_missing_weights(tmp_path, tiny_diffusers):
    d = tmp_path / "broken"
    shutil.copytree(tiny_diffusers, d)
    shutil.rmtree(d / "vae")
    src = resolve_model(d)
    assert "vae/ weights" in src.missing


def test_other_pipeline_folder_refused(tmp_path):
    d = tmp_path / "flux"
    d.mkdir()
    (d / "model_index.json").write_text('{"_class_name": "FluxPipeline"}')
    src = resolve_model(d)
    assert not src.complete and "FluxPipeline" in src.problems[0]


def test_truncated_file_refused(tmp_path, tiny_comfy):
    d = tmp_path / "trunc"
    d.mkdir()
    for f in tiny_comfy.glob("*.safetensors"):
        shutil.copy(f, d)
    dit = d / "z_image_turbo_bf16.safetensors"
    dit.write_bytes(dit.read_bytes()[:-1000])
    src = resolve_model(d)
    assert not src.complete
    assert any("truncated" in p for p in src.problems)


def test_nonexistent_and_empty_paths(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        resolve_model(tmp_path / "nope")
    with pytest.raises(ModelError, match="No Z-Image Turbo model was found"):
        resolve_model(tmp_path)


def test_lora_chosen_as_base_model(tmp_path):
    import numpy as np
    from safetensors.numpy import save_file

    p = tmp_path / "my_lora.safetensors"
    save_file(
        {
            "diffusion_model.layers.0.attention.to_q.lora_A.weight": np.zeros((4, 32), np.float32),
            "diffusion_model.layers.0.attention.to_q.lora_B.weight": np.zeros((32, 4), np.float32),
        },
        str(p),
    )
    with pytest.raises(ModelError, match="is a LoRA, not a base model"):
        resolve_model(p)


def test_three_files_in_different_folders_via_manifest(tmp_path, tiny_comfy, reference_image):
    from zitdesk.models.discovery import write_manifest

    paths = {}
    for role, name in (
        ("transformer", "z_image_turbo_bf16.safetensors"),
        ("text_encoder", "qwen_3_4b.safetensors"),
        ("vae", "ae.safetensors"),
    ):
        d = tmp_path / role
        d.mkdir()
        shutil.copy(tiny_comfy / name, d / name)
        paths[role] = d / name
    # a decoy DiT beside the chosen one must not win
    shutil.copy(
        tiny_comfy / "z_image_turbo_bf16.safetensors",
        tmp_path / "transformer" / "z_image_other.safetensors",
    )
    manifest = write_manifest(paths, tmp_path)
    src = resolve_model(manifest)
    assert src.complete and src.files["transformer"] == paths["transformer"].resolve()
    # the tiny text encoder needs its own tokenizer; real ComfyUI users get the bundled Qwen one
    src.tokenizer_dir = tiny_comfy / "tokenizer"
    assert torch.allclose(_image(load_pipeline(src)), reference_image, atol=1e-5)
    bad = tmp_path / "broken.zitmodel.json"
    bad.write_text("{not json")
    with pytest.raises(ModelError, match="not a valid zitdesk model file"):
        resolve_model(bad)
