"""Header classification: the right Z-Image parts are recognised, everything else is refused plainly."""

import numpy as np
import pytest
from safetensors.numpy import save_file

from zitdesk.errors import ModelError
from zitdesk.models.validate import DIT, TEXT_ENCODER, VAE, classify_file


def _file(tmp_path, name, keys, dtype=np.float32, shapes=None):
    shapes = shapes or {}
    tensors = {k: np.zeros(shapes.get(k, (2, 2)), dtype=dtype) for k in keys}
    p = tmp_path / name
    save_file(tensors, str(p))
    return p


def test_tiny_comfy_files_classified(tiny_comfy):
    roles = {classify_file(f).role for f in tiny_comfy.glob("*.safetensors")}
    assert roles == {DIT, TEXT_ENCODER, VAE}


@pytest.mark.parametrize(
    "keys,needle",
    [
        (["double_blocks.0.img_attn.qkv.weight", "single_blocks.0.linear1.weight"], "Flux model"),
        (
            [
                "conditioner.embedders.1.model.ln_final.weight",
                "model.diffusion_model.input_blocks.0.0.weight",
            ],
            "SDXL",
        ),
        (
            [
                "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight",
                "model.diffusion_model.input_blocks.0.0.weight",
            ],
            "Stable Diffusion 1",
        ),
        (
            [
                "diffusion_model.layers.0.attention.to_q.lora_A.weight",
                "diffusion_model.layers.0.attention.to_q.lora_B.weight",
            ],
            "is a LoRA",
        ),
        (["transformer_blocks.0.img_mod.1.weight"], "Qwen-Image"),
        (["model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight"], "Qwen2"),
        (["text_model.encoder.layers.0.mlp.fc1.weight"], "CLIP/T5"),
        (["some.random.weight"], "not a Z-Image Turbo model file"),
    ],
)
def test_foreign_files_refused_with_reason(tmp_path, keys, needle):
    check = classify_file(_file(tmp_path, "x.safetensors", keys))
    assert check.role is None
    assert needle in check.message


def test_sd_vae_refused(tmp_path):
    keys = ["encoder.conv_out.weight", "decoder.conv_out.weight"]
    check = classify_file(
        _file(tmp_path, "sdxl_vae.safetensors", keys, shapes={"encoder.conv_out.weight": (8, 4)})
    )
    assert check.role is None and "16-channel Flux VAE" in check.message


def test_scaled_fp8_dit_accepted(tmp_path):
    keys = [
        "layers.0.adaLN_modulation.0.weight",
        "layers.0.attention.qkv.weight",
        "layers.0.attention.qkv.scale_weight",
    ]
    check = classify_file(_file(tmp_path, "z_image_turbo_fp8_scaled.safetensors", keys))
    assert check.role == DIT and check.quant == "fp8-scaled"  # issue #17: loaded packed


def test_prefixed_dit_accepted(tmp_path):
    keys = [
        "model.diffusion_model.layers.0.adaLN_modulation.0.weight",
        "model.diffusion_model.cap_embedder.1.weight",
    ]
    check = classify_file(_file(tmp_path, "zit.safetensors", keys))
    assert check.role == DIT and check.prefix == "model.diffusion_model."


def test_pickle_and_gguf_refused(tmp_path):
    ck = tmp_path / "model.ckpt"
    ck.write_bytes(b"\x80\x02}q\x00.")
    with pytest.raises(ModelError, match="pickle"):
        classify_file(ck)
    gg = tmp_path / "z.gguf"
    gg.write_bytes(b"GGUF")
    with pytest.raises(ModelError, match="GGUF"):
        classify_file(gg)
