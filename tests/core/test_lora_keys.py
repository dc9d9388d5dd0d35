"""Torch-free tests of LoRA key parsing (zitdesk.lora.keys), file inspection (zitdesk.lora.inspect),
the Z-Image module tree (zitdesk.models.zimage_tree) and checkpoint families (zitdesk.models.families),
with fabricated safetensors headers."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.samples import write_safetensors
from zitdesk.errors import FileFormatError, LoraError, ZitdeskError
from zitdesk.lora.inspect import coverage, extract_trigger_words, inspect_json, inspect_lora
from zitdesk.lora.keys import detect_arch, detect_dialect, normalize_key
from zitdesk.models.families import detect_checkpoint_family
from zitdesk.models.zimage_tree import (
    QKV_MARKER,
    expand_module,
    expected_targets,
    full_size_linear_names,
    full_size_linear_shapes,
)

FULL = full_size_linear_shapes()

# ---------------------------------------------------------------------------------------------
# A torch-free safetensors writer (header + zero-filled data, optional scalar values)
# ---------------------------------------------------------------------------------------------


def write_st(path: Path, tensors: dict[str, tuple], metadata: dict[str, str] | None = None) -> Path:
    """``tensors``: name → (shape,) or (shape, dtype) or (shape, dtype, scalar_value); dtype F32
    unless given. Written by the library's sample writer (sparse zeros, real header layout)."""
    specs = {k: (v[0], v[1] if len(v) > 1 else "F32", *v[2:]) for k, v in tensors.items()}
    return write_safetensors(path, specs, metadata or None)


def lora_pair(
    prefix: str, module: str, rank: int, shapes=FULL, style: str = "A/B"
) -> dict[str, tuple]:
    out_f, in_f = shapes[module]
    down, up = {
        "A/B": ("lora_A.weight", "lora_B.weight"),
        "kohya": ("lora_down.weight", "lora_up.weight"),
        "dot": ("lora.down.weight", "lora.up.weight"),
        "peft": ("lora_A.default.weight", "lora_B.default.weight"),
    }[style]
    return {f"{prefix}{module}.{down}": ((rank, in_f),), f"{prefix}{module}.{up}": ((out_f, rank),)}


def kohya_name(module: str) -> str:
    return "lora_unet_" + module.replace(".", "_")


# musubi's 210 + ai-toolkit's adaLN = 240 modules (engine notes §6)
AITK_240 = sorted(m for m in FULL if m.startswith("layers.") and not m.endswith(("mlp.0", "mlp.2")))


# ---------------------------------------------------------------------------------------------
# Module names and key normalisation
# ---------------------------------------------------------------------------------------------


def test_full_size_names_match_the_architecture():
    names = full_size_linear_names()
    assert len(names) == 34 * 7 + 32 + 6 == 276
    assert len(AITK_240) == 240
    assert FULL["layers.29.adaLN_modulation.0"] == (15360, 256)
    assert FULL["layers.0.feed_forward.w2"] == (3840, 10240)
    assert "context_refiner.1.adaLN_modulation.0" not in names
    assert "noise_refiner.1.adaLN_modulation.0" in names
    assert expected_targets(names) == names
    # non-targets and PEFT internals are not LoRA targets
    assert (
        expected_targets(names | {"layers.0.attention.norm_q", "siglip_embedder.1", "x"}) == names
    )


@pytest.mark.parametrize(
    "key, expected",
    [
        (
            "diffusion_model.layers.12.attention.to_q.lora_A.weight",
            ("layers.12.attention.to_q", "lora_A"),
        ),
        (
            "model.diffusion_model.layers.1.attention.to_out.0.lora_B.weight",
            ("layers.1.attention.to_out.0", "lora_B"),
        ),
        (
            "lora_unet_layers_0_attention_to_q.lora_down.weight",
            ("layers.0.attention.to_q", "lora_A"),
        ),
        ("lora_unet_layers_0_attention_to_q.alpha", ("layers.0.attention.to_q", "alpha")),
        (
            "lora_unet_layers_3_attention_to_out_0.lora_up.weight",
            ("layers.3.attention.to_out.0", "lora_B"),
        ),
        (
            "lora_unet_layers_3_attention_out.lora_up.weight",
            ("layers.3.attention.to_out.0", "lora_B"),
        ),
        (
            "lora_unet_layers_3_attention_qkv.lora_up.weight",
            (f"layers.3.attention.{QKV_MARKER}", "lora_B"),
        ),
        (
            "lora_unet_noise_refiner_1_adaLN_modulation_0.lora_down.weight",
            ("noise_refiner.1.adaLN_modulation.0", "lora_A"),
        ),
        (
            "lora_unet_context_refiner_0_feed_forward_w3.lora_down.weight",
            ("context_refiner.0.feed_forward.w3", "lora_A"),
        ),
        ("lora_unet_all_x_embedder_2-1.lora_down.weight", ("all_x_embedder.2-1", "lora_A")),
        ("lora_unet_x_embedder.lora_down.weight", ("all_x_embedder.2-1", "lora_A")),
        ("lora_unet_final_layer_linear.lora_down.weight", ("all_final_layer.2-1.linear", "lora_A")),
        (
            "lora_unet_all_final_layer_2-1_adaLN_modulation_1.alpha",
            ("all_final_layer.2-1.adaLN_modulation.1", "alpha"),
        ),
        ("lora_unet_cap_embedder_1.lora_up.weight", ("cap_embedder.1", "lora_B")),
        ("lora_unet_t_embedder_mlp_2.lora_up.weight", ("t_embedder.mlp.2", "lora_B")),
        ("layers.0.attention.to.q.lora.down.weight", ("layers.0.attention.to_q", "lora_A")),
        ("layers.0.attention.qkv.lora.up.weight", (f"layers.0.attention.{QKV_MARKER}", "lora_B")),
        (
            "transformer.layers.4.feed_forward.w2.lora_B.weight",
            ("layers.4.feed_forward.w2", "lora_B"),
        ),
        (
            "base_model.model.layers.4.feed_forward.w2.lora_A.default.weight",
            ("layers.4.feed_forward.w2", "lora_A"),
        ),
        (
            "layers.4.feed_forward.w2.lora_B.my_adapter.weight",
            ("layers.4.feed_forward.w2", "lora_B"),
        ),
        ("diffusion_model.layers.0.attention.to_q.lokr_w1", ("layers.0.attention.to_q", "lokr_w1")),
        (
            "diffusion_model.layers.0.attention.to_q.lokr_w2_b",
            ("layers.0.attention.to_q", "lokr_w2_b"),
        ),
        ("lycoris_layers_0_feed_forward_w1.hada_w2_a", ("layers.0.feed_forward.w1", "hada_w2_a")),
        (
            "lora_unet_layers_0_feed_forward_w1.dora_scale",
            ("layers.0.feed_forward.w1", "dora_scale"),
        ),
        ("lycoris_layers_0_feed_forward_w1.diff", ("layers.0.feed_forward.w1", "diff")),
        # not Z-Image modules / not LoRA parts
        ("lora_unet_layers_0_self_attn_q_proj.lora_down.weight", None),
        ("diffusion_model.layers.0.attention.norm_q.lora_A.weight", None),
        ("lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight", None),
        ("layers.0.attention.to_q.weight", None),
        ("", None),
        (".alpha", None),
    ],
)
def test_normalize_key(key, expected):
    assert normalize_key(key) == expected


def test_expand_module():
    assert expand_module(f"layers.3.attention.{QKV_MARKER}") == [
        "layers.3.attention.to_q",
        "layers.3.attention.to_k",
        "layers.3.attention.to_v",
    ]
    assert expand_module("layers.3.attention.to_q") == ["layers.3.attention.to_q"]


# ---------------------------------------------------------------------------------------------
# Dialects
# ---------------------------------------------------------------------------------------------

DIALECT_KEYS = {
    "aitoolkit": [
        "diffusion_model.layers.0.attention.to_q.lora_A.weight",
        "diffusion_model.layers.0.attention.to_q.lora_B.weight",
    ],
    "kohya": [
        "lora_unet_layers_0_attention_to_q.lora_down.weight",
        "lora_unet_layers_0_attention_to_q.lora_up.weight",
        "lora_unet_layers_0_attention_to_q.alpha",
        "lora_unet_layers_0_attention_qkv.lora_down.weight",
    ],
    "dot": [
        "layers.0.attention.to.q.lora.down.weight",
        "layers.0.attention.to.q.lora.up.weight",
        "layers.0.attention.qkv.lora.down.weight",
        "layers.0.attention.to.q.alpha",
    ],
    "diffusers": [
        "transformer.layers.0.attention.to_q.lora_A.weight",
        "transformer.layers.0.attention.to_q.lora_B.weight",
    ],
    "peft": [
        "layers.0.attention.to_q.lora_A.default.weight",
        "base_model.model.layers.0.attention.to_k.lora_B.weight",
    ],
    "lokr": [
        "diffusion_model.layers.0.attention.to_q.lokr_w1",
        "diffusion_model.layers.0.attention.to_q.lokr_w2_a",
        "diffusion_model.layers.0.attention.to_q.lokr_w2_b",
        "diffusion_model.layers.0.attention.to_q.alpha",
    ],
    "loha": [
        "lycoris_layers_0_attention_to_q.hada_w1_a",
        "lycoris_layers_0_attention_to_q.hada_w1_b",
    ],
    "full": ["lycoris_layers_0_attention_to_q.diff"],
    "mixed": [
        "diffusion_model.layers.0.attention.to_q.lora_A.weight",
        "lora_unet_layers_0_attention_to_k.lora_down.weight",
    ],
    "unknown": ["layers.0.attention.to_q.weight", "something"],
}


@pytest.mark.parametrize("dialect", sorted(DIALECT_KEYS))
def test_detect_dialect(dialect):
    assert detect_dialect(DIALECT_KEYS[dialect]) == dialect
    if dialect not in ("unknown",):
        assert detect_arch(DIALECT_KEYS[dialect]) == "zimage"


# ---------------------------------------------------------------------------------------------
# Architectures (foreign LoRAs must be recognised, not hidden)
# ---------------------------------------------------------------------------------------------

FOREIGN = {
    "sdxl": [
        "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_down.weight",
        "lora_unet_output_blocks_2_1_transformer_blocks_1_ff_net_2.lora_up.weight",
        "lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight",
        "lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight",
    ],
    "sdxl_diffusers_names": [
        "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight",
        "lora_unet_down_blocks_2_attentions_0_transformer_blocks_5_attn2_to_k.lora_down.weight",
        "lora_te2_text_model_encoder_layers_11_mlp_fc1.lora_down.weight",
    ],
    "sd15": [
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight",
        "lora_unet_up_blocks_3_attentions_2_proj_out.lora_up.weight",
        "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight",
    ],
    "flux": [
        "lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight",
        "lora_unet_double_blocks_0_txt_mlp_0.lora_up.weight",
        "lora_unet_single_blocks_7_linear1.lora_down.weight",
        "lora_unet_single_blocks_7_linear1.alpha",
    ],
    "flux_diffusers": [
        "transformer.transformer_blocks.0.attn.to_q.lora_A.weight",
        "transformer.transformer_blocks.0.attn.add_k_proj.lora_A.weight",
        "transformer.single_transformer_blocks.3.proj_mlp.lora_B.weight",
    ],
    "flux_aitoolkit": [
        "diffusion_model.double_blocks.0.img_attn.qkv.lora_A.weight",
        "diffusion_model.single_blocks.0.linear2.lora_B.weight",
    ],
    "qwen_image": [
        "transformer.transformer_blocks.0.img_mlp.net.0.proj.lora_A.weight",
        "transformer.transformer_blocks.0.txt_mlp.net.2.lora_B.weight",
        "transformer.transformer_blocks.0.attn.add_q_proj.lora_A.weight",
        "transformer.transformer_blocks.0.img_mod.1.lora_A.weight",
    ],
    "qwen_image_kohya": [
        "lora_unet_transformer_blocks_0_img_mod_1.lora_down.weight",
        "lora_unet_transformer_blocks_0_attn_to_q.lora_down.weight",
    ],
    "sd3": [
        "transformer.transformer_blocks.0.attn.add_q_proj.lora_A.weight",
        "transformer.transformer_blocks.0.ff_context.net.0.proj.lora_A.weight",
        "transformer.transformer_blocks.0.attn.to_q.lora_A.weight",
    ],
    "wan": [
        "diffusion_model.blocks.0.self_attn.q.lora_A.weight",
        "diffusion_model.blocks.0.cross_attn.k.lora_B.weight",
        "diffusion_model.blocks.0.ffn.0.lora_A.weight",
    ],
    "hunyuan": [
        "lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight",
        "lora_unet_double_blocks_0_img_mod_linear.lora_down.weight",
        "lora_unet_single_blocks_0_modulation_linear.lora_down.weight",
    ],
    "lumina2": [
        "transformer.layers.0.attn.to_q.lora_A.weight",
        "transformer.layers.0.feed_forward.linear_1.lora_A.weight",
        "transformer.noise_refiner.0.attn.to_k.lora_A.weight",
    ],
}


@pytest.mark.parametrize("case", sorted(FOREIGN))
def test_detect_foreign_arch(case):
    expected = case.split("_diffusers")[0].split("_aitoolkit")[0].split("_kohya")[0]
    if case == "sdxl_diffusers_names":
        expected = "sdxl"
    assert detect_arch(FOREIGN[case]) == expected


def test_sd_family_from_cross_attention_width():
    keys = [
        "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight",
        "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight",
    ]
    shp = {keys[0]: (4, 768), keys[1]: (320, 4)}
    assert detect_arch(keys, shp) == "sd15"
    assert detect_arch(keys, {keys[0]: (4, 1024), keys[1]: (320, 4)}) == "sd2"
    assert detect_arch(keys, {keys[0]: (4, 2048), keys[1]: (320, 4)}) == "sdxl"


def test_lumina2_original_tree_told_apart_by_width():
    keys = [
        "diffusion_model.layers.0.attention.qkv.lora_A.weight",
        "diffusion_model.layers.0.attention.qkv.lora_B.weight",
    ]
    assert detect_arch(keys, {keys[0]: (8, 2304), keys[1]: (3 * 2304, 8)}) == "lumina2"
    assert detect_arch(keys, {keys[0]: (8, 3840), keys[1]: (3 * 3840, 8)}) == "zimage"
    assert detect_arch(keys) == "zimage"
    # original-tree Lumina adaLN is Sequential(SiLU, Linear) → ".1"
    assert (
        detect_arch(keys + ["diffusion_model.layers.0.adaLN_modulation.1.lora_A.weight"])
        == "lumina2"
    )


def test_unknown_arch():
    assert detect_arch(["foo.bar.lora_A.weight", "baz"]) == "unknown"
    assert detect_arch([]) == "unknown"


@pytest.mark.parametrize(
    "case, label",
    [
        ("sdxl", "an SDXL"),
        ("sd15", "a Stable Diffusion 1.5"),
        ("flux", "a Flux"),
        ("qwen_image", "a Qwen-Image"),
        ("wan", "a Wan"),
    ],
)
def test_foreign_files_are_refused_with_a_sentence(tmp_path, case, label):
    path = write_st(tmp_path / f"{case}.safetensors", {k: ((4, 8),) for k in FOREIGN[case]})
    doc = inspect_json(path)
    assert doc["compatible"] is False
    assert doc["message"] == f"This is {label} LoRA; it cannot be used with Z-Image."
    assert doc["target_count"] == 0
    assert doc["unknown_key_count"] == len(FOREIGN[case])
    json.dumps(doc)


# ---------------------------------------------------------------------------------------------
# inspect_lora / coverage / inspect_json on fabricated files
# ---------------------------------------------------------------------------------------------


def test_aitoolkit_240_modules_full_coverage(tmp_path):
    tensors: dict = {}
    for m in AITK_240:
        tensors.update(lora_pair("diffusion_model.", m, 16))
    meta = {
        "format": "pt",
        "ss_base_model_version": "zimage",
        "zitdesk_base_precision": "bf16",
        "modelspec.trigger_phrase": "zxc style",
    }
    path = write_st(tmp_path / "aitk.safetensors", tensors, meta)
    info = inspect_lora(path)
    # no .alpha stored: the weights carry the scale, applied as alpha = rank
    assert (info.arch, info.dialect, info.rank, info.alpha) == ("zimage", "aitoolkit", 16, 16)
    assert info.alpha_source == "weights" and info.trained_alpha is None
    assert info.n_tensors == 480 and len(info.target_modules) == 240
    assert info.target_modules == sorted(AITK_240)
    assert info.base_model_version == "zimage" and info.base_precision == "bf16"
    assert info.trigger_words[0] == ("zxc style", "modelspec.trigger_phrase")
    cov = coverage(info, full_size_linear_names())
    assert (cov.matched, cov.total_in_file, cov.percent, cov.model_targets) == (
        240,
        240,
        100.0,
        276,
    )
    assert cov.badge == "240/240"
    doc = inspect_json(path)
    assert doc["compatible"] is True
    assert "240/240" in doc["message"] and doc["coverage"]["against"] == "z-image-turbo"
    assert doc["size_bytes"] == path.stat().st_size


def test_kohya_alpha_values_read_from_header_bytes(tmp_path):
    tensors: dict = {}
    for m in ("layers.0.attention.to_q", "layers.0.attention.to_k", "layers.1.feed_forward.w1"):
        tensors.update(lora_pair(kohya_name(m), "", 8, {"": FULL[m]}, "kohya"))
    # keys built with an empty module: fix the names
    tensors = {k.replace("..", "."): v for k, v in tensors.items()}
    tensors["lora_unet_layers_0_attention_to_q.alpha"] = ((), "F32", 4.0)
    tensors["lora_unet_layers_0_attention_to_k.alpha"] = ((), "BF16", 4.0)
    tensors["lora_unet_layers_1_feed_forward_w1.alpha"] = ((), "F16", 1.0)
    path = write_st(tmp_path / "k.safetensors", tensors, {"ss_network_alpha": "99"})
    info = inspect_lora(path)
    assert info.dialect == "kohya" and info.arch == "zimage"
    assert info.alpha == 4.0 and info.rank == 8
    assert info.target_modules == [
        "layers.0.attention.to_k",
        "layers.0.attention.to_q",
        "layers.1.feed_forward.w1",
    ]


def test_fused_and_dot_files_expand_qkv(tmp_path):
    tensors = {
        "lora_unet_layers_2_attention_qkv.lora_down.weight": ((4, 3840),),
        "lora_unet_layers_2_attention_qkv.lora_up.weight": ((3 * 3840, 4),),
        "lora_unet_layers_2_attention_qkv.alpha": ((), "F32", 2.0),
        "lora_unet_layers_2_attention_out.lora_down.weight": ((4, 3840),),
        "lora_unet_layers_2_attention_out.lora_up.weight": ((3840, 4),),
        "lora_unet_layers_2_feed_forward_w1.lora_down.weight": ((4, 3840),),
        "lora_unet_layers_2_feed_forward_w1.lora_up.weight": ((10240, 4),),
    }
    info = inspect_lora(write_st(tmp_path / "fused.safetensors", tensors))
    assert info.fused_qkv and info.dialect == "kohya"
    assert info.target_modules == sorted(
        f"layers.2.{s}"
        for s in (
            "attention.to_q",
            "attention.to_k",
            "attention.to_v",
            "attention.to_out.0",
            "feed_forward.w1",
        )
    )

    dot: dict = {}
    for p in "qkv":
        dot.update(
            lora_pair(
                "",
                f"layers.0.attention.to.{p}",
                4,
                {f"layers.0.attention.to.{p}": (3840, 3840)},
                "dot",
            )
        )
    dot.update(
        lora_pair("", "layers.0.attention.qkv", 4, {"layers.0.attention.qkv": (11520, 3840)}, "dot")
    )
    dot.update(lora_pair("", "layers.0.attention.to_out.0", 4, FULL, "dot"))
    dot.update(
        lora_pair("", "layers.0.attention.out", 4, {"layers.0.attention.out": (3840, 3840)}, "dot")
    )
    info = inspect_lora(write_st(tmp_path / "dot.safetensors", dot))
    assert info.dialect == "dot" and not info.unknown_keys
    assert len(info.target_modules) == 4


def test_diffusers_metadata_alpha_and_peft_and_lokr(tmp_path):
    meta = {
        "format": "pt",
        "lora_adapter_metadata": json.dumps(
            {
                "transformer.r": 4,
                "transformer.lora_alpha": 8,
                "transformer.target_modules": ["to_q"],
            }
        ),
    }
    info = inspect_lora(
        write_st(
            tmp_path / "d.safetensors",
            lora_pair("transformer.", "layers.0.attention.to_q", 4),
            meta,
        )
    )
    assert (info.dialect, info.alpha, info.rank) == ("diffusers", 8.0, 4)

    info = inspect_lora(
        write_st(
            tmp_path / "p.safetensors",
            lora_pair("base_model.model.", "layers.0.attention.to_q", 4, style="peft"),
        )
    )
    assert info.dialect == "peft" and info.target_modules == ["layers.0.attention.to_q"]

    lokr = {
        "diffusion_model.layers.0.attention.to_q.lokr_w1": ((4, 4),),
        "diffusion_model.layers.0.attention.to_q.lokr_w2_a": ((960, 16),),
        "diffusion_model.layers.0.attention.to_q.lokr_w2_b": ((16, 960),),
        "diffusion_model.layers.0.attention.to_q.alpha": ((), "F32", 8.0),
    }
    info = inspect_lora(write_st(tmp_path / "lokr.safetensors", lokr))
    assert (info.dialect, info.rank, info.alpha) == ("lokr", 16, 8.0)


def test_unknown_and_missing_keys_are_reported(tmp_path):
    tensors = lora_pair("diffusion_model.", "layers.0.attention.to_q", 4)
    tensors.update(lora_pair("diffusion_model.", "layers.0.attention.to_k", 4))
    tensors["diffusion_model.layers.0.attention.norm_q.lora_A.weight"] = ((4, 128),)
    tensors["lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight"] = ((4, 768),)
    tensors["diffusion_model.layers.0.attention.to_q.dora_scale"] = ((1, 3840),)
    path = write_st(tmp_path / "x.safetensors", tensors)
    info = inspect_lora(path)
    assert info.arch == "zimage"
    assert sorted(info.unknown_keys) == sorted(
        [
            "diffusion_model.layers.0.attention.norm_q.lora_A.weight",
            "lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight",
        ]
    )
    assert info.unsupported_keys == ["diffusion_model.layers.0.attention.to_q.dora_scale"]
    model = {"layers.0.attention.to_q", "layers.0.attention.to_v"}  # a model without to_k
    cov = coverage(info, model)
    assert (cov.matched, cov.total_in_file, cov.missing_in_model, cov.percent) == (
        1,
        2,
        ["layers.0.attention.to_k"],
        50.0,
    )
    doc = inspect_json(path, model)
    assert doc["compatible"] is True and doc["coverage"]["against"] == "model"
    assert doc["unknown_key_count"] == 2 and doc["unsupported_key_count"] == 1
    assert "1/2" in doc["message"] and "DoRA" in doc["message"]


def test_unknown_lora_is_not_compatible(tmp_path):
    path = write_st(
        tmp_path / "u.safetensors", {"foo.lora_A.weight": ((4, 8),), "foo.lora_B.weight": ((8, 4),)}
    )
    doc = inspect_json(path)
    assert doc["arch"] == "unknown" and doc["compatible"] is False
    assert "recognises" in doc["message"]


def test_unknown_keys_capped_at_50_in_json(tmp_path):
    tensors = {f"junk.{i}.weight": ((1,),) for i in range(120)}
    tensors.update(lora_pair("diffusion_model.", "layers.0.attention.to_q", 4))
    doc = inspect_json(write_st(tmp_path / "j.safetensors", tensors))
    assert len(doc["unknown_keys"]) == 50 and doc["unknown_key_count"] == 120


# ---------------------------------------------------------------------------------------------
# Trigger words
# ---------------------------------------------------------------------------------------------


def test_trigger_words_sources_and_order():
    meta = {
        "modelspec.trigger_phrase": "ohwx woman",
        "activation text": "ohwx woman, film grain",
        "trigger_word": json.dumps(["zkz", "ohwx woman"]),
        "ss_tag_frequency": json.dumps(
            {
                "10_ds": {"1girl": 40, "smile": 12, "ohwx woman": 50},
                "5_more": {"1girl": 5, "outdoors": 3},
            }
        ),
        "training_info": json.dumps({"config": {"process": [{"trigger_word": "p3rs0n"}]}}),
        "ss_output_name": "x",
    }
    words = extract_trigger_words(meta)
    assert words[0] == ("ohwx woman", "modelspec.trigger_phrase")
    assert ("zkz", "trigger_word") in words
    assert ("ohwx woman, film grain", "activation text") in words
    assert ("p3rs0n", "training_info:trigger_word") in words
    tags = [w for w, s in words if s == "ss_tag_frequency"]
    assert tags[:2] == ["1girl", "smile"]  # "ohwx woman" already came from a stronger source
    assert [w.lower() for w, _ in words].count("ohwx woman") == 1


def test_trigger_words_survive_garbage():
    assert extract_trigger_words({"ss_tag_frequency": "{not json", "trigger_word": ""}) == []
    assert extract_trigger_words({"ss_tag_frequency": json.dumps([1, 2])}) == []
    assert extract_trigger_words({"training_info": "[" * 5000}) == []


# ---------------------------------------------------------------------------------------------
# Hostile and wrong files
# ---------------------------------------------------------------------------------------------


def _good(tmp_path: Path) -> Path:
    return write_st(
        tmp_path / "good.safetensors", lora_pair("diffusion_model.", "layers.0.attention.to_q", 4)
    )


@pytest.mark.parametrize(
    "kind",
    [
        "truncated",
        "bad_json",
        "huge_header",
        "zero_header",
        "tiny",
        "empty",
        "list_header",
        "bad_entry",
        "negative_shape",
        "pickle_renamed",
        "zip_renamed",
        "no_tensors",
        "bad_utf8",
        "offsets_past_end",
    ],
)
def test_hostile_headers_raise_lora_error(tmp_path, kind):
    p = tmp_path / f"{kind}.safetensors"
    good = _good(tmp_path).read_bytes()
    n = struct.unpack("<Q", good[:8])[0]
    head = json.loads(good[8 : 8 + n])

    def with_header(h) -> bytes:
        raw = json.dumps(h).encode()
        return struct.pack("<Q", len(raw)) + raw + good[8 + n :]

    data = {
        "truncated": good[:-10],
        "bad_json": struct.pack("<Q", 5) + b"{abc}" + b"x" * 10,
        "huge_header": struct.pack("<Q", 2**62) + b"{}",
        "zero_header": struct.pack("<Q", 0),
        "tiny": b"abc",
        "empty": b"",
        "list_header": with_header([1, 2, 3]),
        "bad_entry": with_header({"a.lora_A.weight": {"dtype": "F32"}}),
        "negative_shape": with_header(
            {"a.lora_A.weight": {"dtype": "F32", "shape": [-1, 4], "data_offsets": [0, 16]}}
        ),
        "pickle_renamed": b"\x80\x02}q\x00." + b"\x00" * 20,
        "zip_renamed": b"PK\x03\x04" + b"\x00" * 40,
        "no_tensors": with_header({"__metadata__": {"a": "b"}}),
        "bad_utf8": struct.pack("<Q", 4) + b"\xff\xfe\xfd\xfc",
        "offsets_past_end": with_header(
            {
                **head,
                "x.lora_A.weight": {
                    "dtype": "F32",
                    "shape": [10**9],
                    "data_offsets": [0, 4 * 10**9],
                },
            }
        ),
    }[kind]
    p.write_bytes(data)
    with pytest.raises(LoraError) as exc:
        inspect_lora(p)
    msg = str(exc.value)
    assert p.name in msg and "\n" not in msg and "Traceback" not in msg
    with pytest.raises(LoraError):
        inspect_json(p)


@pytest.mark.parametrize("suffix", [".ckpt", ".pt", ".pth", ".bin"])
def test_pickles_refused_by_name(tmp_path, suffix):
    p = tmp_path / f"model{suffix}"
    p.write_bytes(b"\x80\x02" + b"\x00" * 64)
    with pytest.raises(LoraError, match="pickle"):
        inspect_lora(p)


def test_missing_file_and_gguf(tmp_path):
    with pytest.raises(LoraError):
        inspect_lora(tmp_path / "nope.safetensors")
    g = tmp_path / "x.gguf"
    g.write_bytes(b"GGUF" + b"\x00" * 20)
    with pytest.raises(LoraError, match="GGUF"):
        inspect_lora(g)


def test_lora_error_is_a_zitdesk_error_and_file_errors_are_wrapped():
    assert issubclass(LoraError, ZitdeskError) and not issubclass(FileFormatError, LoraError)


def test_weird_key_names_do_not_crash(tmp_path):
    tensors = {
        ".": ((1,),),
        "..lora_A.weight": ((1, 1),),
        "lora_A.weight": ((1, 1),),
        "a" * 5000 + ".lora_A.weight": ((1, 1),),
        "λ.attention.to_q.lora_B.weight": ((1, 1),),
        "layers.99999999999999999999.attention.to_q.lora_A.weight": ((1, 1),),
        "layers.-1.attention.to_q.lora_A.weight": ((1, 1),),
        "lora_unet_layers__attention_to_q.lora_down.weight": ((1, 1),),
        "diffusion_model.layers.0.attention.to_q.alpha": ((2, 2),),  # non-scalar alpha
        "diffusion_model.layers.0.attention.to_k.alpha": ((), "F32", float("nan")),
    }
    info = inspect_lora(write_st(tmp_path / "w.safetensors", tensors))
    assert info.n_tensors == len(tensors)
    assert info.alpha is None
    doc = inspect_json(tmp_path / "w.safetensors")
    json.dumps(doc)
    assert isinstance(doc["compatible"], bool)


def test_metadata_values_are_truncated_in_json(tmp_path):
    meta = {"modelspec.thumbnail": "data:image/png;base64," + "A" * 100_000}
    doc = inspect_json(
        write_st(
            tmp_path / "t.safetensors",
            lora_pair("diffusion_model.", "layers.0.attention.to_q", 4),
            meta,
        )
    )
    assert len(doc["metadata"]["modelspec.thumbnail"]) < 5000


# ---------------------------------------------------------------------------------------------
# Base checkpoints
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "keys, shapes, family",
    [
        (
            [
                "layers.0.adaLN_modulation.0.weight",
                "layers.0.attention.qkv.weight",
                "cap_embedder.1.weight",
                "x_embedder.weight",
                "norm_final.weight",
            ],
            None,
            "zimage-dit",
        ),
        (
            [
                "model.diffusion_model.layers.0.adaLN_modulation.0.weight",
                "model.diffusion_model.cap_embedder.1.weight",
            ],
            None,
            "zimage-dit",
        ),
        (
            [
                "layers.0.adaLN_modulation.0.weight",
                "layers.0.attention.to_q.weight",
                "all_x_embedder.2-1.weight",
            ],
            None,
            "zimage-dit",
        ),
        (["layers.0.adaLN_modulation.1.weight", "cap_embedder.1.weight"], None, "lumina2-dit"),
        (
            ["double_blocks.0.img_attn.qkv.weight", "single_blocks.0.linear1.weight"],
            None,
            "flux-dit",
        ),
        (["transformer_blocks.0.img_mlp.net.0.proj.weight"], None, "qwen-image-dit"),
        (
            [
                "model.diffusion_model.input_blocks.0.0.weight",
                "conditioner.embedders.1.model.ln_final.weight",
            ],
            None,
            "sdxl",
        ),
        (
            ["model.diffusion_model.input_blocks.0.0.weight", "cond_stage_model.transformer.x"],
            None,
            "sd15",
        ),
        (
            [
                "model.embed_tokens.weight",
                "model.layers.0.self_attn.q_proj.weight",
                "model.layers.0.self_attn.q_norm.weight",
            ],
            None,
            "qwen3",
        ),
        (
            [
                "embed_tokens.weight",
                "layers.0.self_attn.q_proj.weight",
                "layers.0.self_attn.q_proj.bias",
            ],
            None,
            "qwen2",
        ),
        (["encoder.block.0.layer.0.SelfAttention.q.weight"], None, "t5"),
        (["text_model.encoder.layers.0.mlp.fc1.weight"], None, "clip"),
        (
            ["encoder.conv_out.weight", "decoder.conv_out.weight"],
            {"encoder.conv_out.weight": (32, 512, 3, 3)},
            "flux-vae",
        ),
        (
            ["encoder.conv_out.weight", "decoder.conv_out.weight"],
            {"encoder.conv_out.weight": (8, 512, 3, 3)},
            "sd-vae",
        ),
        (["blocks.0.self_attn.q.weight", "blocks.0.cross_attn.k.weight"], None, "wan-dit"),
        (["joint_blocks.0.x_block.attn.qkv.weight"], None, "sd3"),
        (["diffusion_model.layers.0.attention.to_q.lora_A.weight"], None, "lora"),
        (["whatever.weight"], None, "unknown"),
        ([], None, "unknown"),
    ],
)
def test_detect_checkpoint_family(keys, shapes, family):
    assert detect_checkpoint_family(keys, shapes) == family


# ---------------------------------------------------------------------------------------------
# Stays torch-free
# ---------------------------------------------------------------------------------------------


def test_keys_module_and_package_do_not_import_torch(tmp_path):
    path = _good(tmp_path)
    code = (
        "import sys, zitdesk.lora, zitdesk.lora.keys, zitdesk.models.families, zitdesk.models.validate\n"
        "import zitdesk.lora.inspect as k, zitdesk.models.zimage_tree as t\n"
        f"k.inspect_json({str(path)!r})\n"
        "t.expected_targets(t.full_size_linear_names())\n"
        "bad = [m for m in ('torch', 'diffusers', 'transformers', 'peft', 'safetensors.torch') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


def test_inspect_counts_only_pairs_the_loader_can_use(tmp_path):
    """What inspect counts, generate loads (issue 12, point 9): an A without its B, a rank that
    does not match, a B flattened wrongly or a 0-d A are skipped by the loader, so inspect does
    not count them as targets (they are listed as unknown keys)."""
    p = "diffusion_model.layers."
    tensors = {
        f"{p}0.attention.to_q.lora_A.weight": ((4, 3840),),  # good pair
        f"{p}0.attention.to_q.lora_B.weight": ((3840, 4),),
        f"{p}0.attention.to_k.lora_A.weight": ((4, 3840),),  # no B
        f"{p}0.attention.to_v.lora_A.weight": ((4, 3840),),  # rank 4 vs 8
        f"{p}0.attention.to_v.lora_B.weight": ((3840, 8),),
        f"{p}1.attention.to_q.lora_A.weight": ((1, 1, 4, 3840),),  # flattens to 1 row
        f"{p}1.attention.to_q.lora_B.weight": ((3840, 4),),
        f"{p}1.attention.to_k.lora_A.weight": ((),),  # 0-d
        f"{p}1.attention.to_k.lora_B.weight": ((3840, 1),),
    }
    info = inspect_lora(write_st(tmp_path / "mixed.safetensors", tensors))
    assert info.target_modules == ["layers.0.attention.to_q"]
    assert len(info.unknown_keys) == 7
    bad = {k: v for k, v in tensors.items() if "0.attention.to_q" not in k}
    doc = inspect_json(write_st(tmp_path / "bad.safetensors", bad))
    assert doc["compatible"] is False and doc["target_count"] == 0


def test_loader_refuses_a_zero_dim_pair_with_a_sentence(tmp_path):
    pytest.importorskip("torch")
    from zitdesk.lora.apply import load_normalized

    path = write_st(
        tmp_path / "zd.safetensors",
        {
            "diffusion_model.layers.0.attention.to_q.lora_A.weight": ((),),
            "diffusion_model.layers.0.attention.to_q.lora_B.weight": ((3840, 1),),
        },
    )
    with pytest.raises(LoraError) as err:
        load_normalized(path, FULL)
    assert "\n" not in str(err.value)
