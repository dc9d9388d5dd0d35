"""Tiny pre-quantised model files for tests and the GPU benchmark: GGUF (ComfyUI-GGUF DiT
layout, llama.cpp Qwen3 names; real ggml quant types), ComfyUI scaled fp8 (``scale_weight``),
fp8 "mixed" (``weight_scale`` + ``comfy_quant``) and nvfp4 (packed e2m1, tiled e4m3 block
scales, ``weight_scale_2``).

The tiny components are wider than ``zitdesk.models.tiny``'s (dim 256) so every K-quant type
has whole 256-value blocks, as in the real 3840-wide model.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

QUANT_TRANSFORMER = {"dim": 256, "n_heads": 2, "n_kv_heads": 2, "axes_dims": [32, 48, 48]}
QUANT_TEXT_ENCODER = {
    "hidden_size": 256,
    "intermediate_size": 512,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 128,
}
_HF_TO_LLAMA_BLOCK = {
    "input_layernorm": "attn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "self_attn.q_norm": "attn_q_norm",
    "self_attn.k_norm": "attn_k_norm",
    "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}


def make_quant_components(seed: int = 0) -> dict[str, Any]:
    """The tiny pipeline parts with a 256-wide DiT and text encoder (cap_feat_dim 256)."""
    import torch
    from diffusers import ZImageTransformer2DModel
    from transformers import Qwen3Config, Qwen3Model

    from zitdesk.models import tiny

    comps = tiny.make_tiny_components(seed)
    torch.manual_seed(seed + 10)
    tr = ZImageTransformer2DModel(
        **{**tiny.TINY_TRANSFORMER, **QUANT_TRANSFORMER, "cap_feat_dim": 256}
    )
    with torch.no_grad():
        tr.x_pad_token.normal_(0.0, 0.5)
        tr.cap_pad_token.normal_(0.0, 0.5)
    torch.manual_seed(seed + 11)
    te = Qwen3Model(Qwen3Config(**{**tiny.TINY_TEXT_ENCODER, **QUANT_TEXT_ENCODER})).eval()
    comps.update(transformer=tr, text_encoder=te)
    return comps


def comfy_dit(comps: dict[str, Any]) -> dict[str, Any]:
    from zitdesk.models.tiny import comfy_dit_state_dict

    return {
        k: v.detach().float().contiguous()
        for k, v in comfy_dit_state_dict(comps["transformer"].state_dict()).items()
    }


def _quantize_target(name: str, shape: tuple[int, ...]) -> bool:
    """The Linear weights of the blocks (what ComfyUI's and city96's converters quantise)."""
    return (
        len(shape) == 2
        and name.endswith(".weight")
        and name.startswith(("layers.", "noise_refiner.", "context_refiner.", "model."))
        and "norm" not in name
    )


def write_gguf(path: Path, tensors: dict[str, Any], arch: str) -> Path:
    """``tensors``: name → float tensor (stored F32) or ``(uint8 bytes, "Q4_K")``."""
    from gguf import GGMLQuantizationType, GGUFWriter

    path.parent.mkdir(parents=True, exist_ok=True)
    w = GGUFWriter(str(path), arch)
    for name, value in tensors.items():
        if isinstance(value, tuple):
            data, qtype = value
            arr = data.cpu().numpy()
            qt = GGMLQuantizationType[qtype]
            w.add_tensor(name, arr, raw_shape=arr.shape, raw_dtype=qt)
        else:
            w.add_tensor(name, value.detach().float().cpu().numpy().astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def gguf_tensors(sd: dict[str, Any], qtype: str, target=_quantize_target) -> dict[str, Any]:
    from zitdesk.models.quant.codecs import gguf_quantizable, quantize_gguf

    out: dict[str, Any] = {}
    for k, v in sd.items():
        if target(k, tuple(v.shape)) and gguf_quantizable(tuple(v.shape), qtype):
            out[k] = (quantize_gguf(v, qtype), qtype)
        else:
            out[k] = v
    return out


def write_gguf_dit(
    comps: dict[str, Any], path: Path, qtype: str = "Q4_K", flat_pad: bool = False
) -> Path:
    sd = comfy_dit(comps)
    if flat_pad:
        for tok in ("x_pad_token", "cap_pad_token"):
            sd[tok] = sd[tok].reshape(-1)
    return write_gguf(path, gguf_tensors(sd, qtype), "lumina2")


def llama_qwen3(sd: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in sd.items():
        if k == "embed_tokens.weight":
            out["token_embd.weight"] = v
        elif k == "norm.weight":
            out["output_norm.weight"] = v
        elif k.startswith("layers."):
            _, idx, rest = k.split(".", 2)
            mod, _, leaf = rest.rpartition(".")
            out[f"blk.{idx}.{_HF_TO_LLAMA_BLOCK[mod]}.{leaf}"] = v
    return out


def write_gguf_te(comps: dict[str, Any], path: Path, qtype: str = "Q8_0") -> Path:
    sd = {k: v.detach().float() for k, v in comps["text_encoder"].state_dict().items()}
    tensors = gguf_tensors(
        llama_qwen3(sd),
        qtype,
        target=lambda k, s: len(s) == 2 and k.startswith(("blk.", "token_embd")),
    )
    return write_gguf(path, tensors, "qwen3")


def _comfy_quant(fmt: str):
    import torch

    return torch.tensor(list(json.dumps({"format": fmt}).encode()), dtype=torch.uint8)


def scaled_fp8_state(sd: dict[str, Any], style: str = "scale_weight", prefix: str = "") -> dict:
    """``style``: ``scale_weight`` (ComfyUI's first scaled-fp8 files, with a ``scaled_fp8``
    marker) or ``comfy_quant`` (``weight_scale`` + a ``comfy_quant`` JSON tensor per layer)."""
    import torch

    from zitdesk.models.quant.codecs import quantize_fp8_scaled

    out: dict[str, Any] = {}
    for k, v in sd.items():
        name = k[len(prefix) :]
        if _quantize_target(name, tuple(v.shape)) or (
            prefix and len(v.shape) == 2 and "norm" not in k and "embed" not in k
        ):
            q, s = quantize_fp8_scaled(v)
            out[k] = q
            layer = k[: -len(".weight")]
            if style == "comfy_quant":
                out[f"{layer}.weight_scale"] = s.float()
                out[f"{layer}.comfy_quant"] = _comfy_quant("float8_e4m3fn")
            else:
                out[f"{layer}.scale_weight"] = s.float()
        else:
            out[k] = v.to(torch.bfloat16)
    if style == "scale_weight":
        out["scaled_fp8"] = torch.zeros(2, dtype=torch.float8_e4m3fn)
    return out


def nvfp4_state(sd: dict[str, Any]) -> dict[str, Any]:
    import torch

    from zitdesk.models.quant.codecs import quantize_nvfp4

    out: dict[str, Any] = {}
    for k, v in sd.items():
        if _quantize_target(k, tuple(v.shape)) and v.shape[1] % 16 == 0:
            packed, scales, s2 = quantize_nvfp4(v)
            layer = k[: -len(".weight")]
            out[k] = packed
            out[f"{layer}.weight_scale"] = scales
            out[f"{layer}.weight_scale_2"] = s2.float()
            out[f"{layer}.comfy_quant"] = _comfy_quant("nvfp4")
        else:
            out[k] = v.to(torch.bfloat16)
    return out


def write_model_folder(out: Path, comps: dict[str, Any], dit: str = "", te: str = "") -> Path:
    """A ComfyUI folder with the tiny parts; ``dit`` / ``te`` choose the quantised variants:
    dit ``gguf-Q4_K`` (any GGUF type), ``fp8-scaled``, ``fp8-mixed``, ``nvfp4``; te ``gguf-Q8_0``,
    ``fp8-mixed``. The bf16 file of a replaced part is removed."""
    from zitdesk.io import atomic_save_tensors
    from zitdesk.models.tiny import COMFY_FILE_NAMES, save_tiny_model

    if out.exists():
        shutil.rmtree(out)
    save_tiny_model(out, "comfy", components=comps)
    if dit:
        (out / COMFY_FILE_NAMES["transformer"]).unlink()
        if dit.startswith("gguf-"):
            write_gguf_dit(comps, out / f"z_image_turbo-{dit[5:]}.gguf", dit[5:])
        elif dit == "nvfp4":
            atomic_save_tensors(
                out / "z_image_turbo_nvfp4.safetensors", nvfp4_state(comfy_dit(comps))
            )
        else:
            style = "comfy_quant" if dit == "fp8-mixed" else "scale_weight"
            atomic_save_tensors(
                out / "z_image_turbo_fp8_scaled.safetensors",
                scaled_fp8_state(comfy_dit(comps), style),
            )
    if te:
        (out / COMFY_FILE_NAMES["text_encoder"]).unlink()
        if te.startswith("gguf-"):
            write_gguf_te(comps, out / f"Qwen3-4B-{te[5:]}.gguf", te[5:])
        else:
            sd = {
                f"model.{k}": v.detach().float()
                for k, v in comps["text_encoder"].state_dict().items()
            }
            atomic_save_tensors(
                out / "qwen_3_4b_fp8_mixed.safetensors",
                scaled_fp8_state(sd, "comfy_quant", prefix="model."),
            )
    return out
