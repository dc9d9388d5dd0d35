"""GGUF files into the pipeline (torch): the DiT stays quantised, Qwen3 is dequantised once.

The DiT goes through diffusers' GGUF support: ``GGUFQuantizationConfig`` keeps every quantised
Linear as a ``GGUFLinear`` whose uint8 weight is dequantised per forward (that is what lets a
Q4_K DiT, 3.5 GB, fit an 8 GB card), and PEFT LoRAs wrap those layers like any Linear. The
tensors are read here first, so a pad token stored as ``[dim]`` (some converters) is reshaped and
the ComfyUI key prefix stripped before diffusers' Z-Image converter runs.

The text encoder (llama.cpp names) is dequantised to the compute dtype at load: it is streamed
from RAM in the low-VRAM modes, so its GPU cost does not depend on its file format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from zitdesk.errors import ModelError
from zitdesk.models.quant import GGUF_SUPPORTED, llama_to_hf


def _read_tensors(path: Path) -> dict[str, Any]:
    """``{name: tensor}``: float types as torch tensors, quantised ones as diffusers'
    ``GGUFParameter`` (uint8 bytes + ``quant_type``). Unsupported types are refused."""
    from diffusers.quantizers.gguf.utils import GGUFParameter
    from gguf import GGMLQuantizationType, GGUFReader

    reader = GGUFReader(str(path))
    out: dict[str, Any] = {}
    floats = (GGMLQuantizationType.F32, GGMLQuantizationType.F16)
    for t in reader.tensors:
        if t.tensor_type.name not in GGUF_SUPPORTED:
            raise ModelError(
                f"{path.name}: GGUF {t.tensor_type.name} is not supported: use Q4_K or better."
            )
        data = torch.from_numpy(t.data.copy())
        if t.tensor_type in floats:
            out[t.name] = data
        elif t.tensor_type == GGMLQuantizationType.BF16:
            out[t.name] = (
                data.view(torch.int16)
                .view(torch.bfloat16)
                .reshape(tuple(int(x) for x in reversed(t.shape.tolist())))
            )
        else:
            out[t.name] = GGUFParameter(data, quant_type=t.tensor_type)
    return out


def load_gguf_transformer(path: Path, config_dir: Path, prefix: str, dtype: Any):
    """``ZImageTransformer2DModel`` with its Linear weights still GGUF-quantised."""
    from diffusers import GGUFQuantizationConfig, ZImageTransformer2DModel

    raw = _read_tensors(path)
    ckpt = {(k[len(prefix) :] if prefix and k.startswith(prefix) else k): v for k, v in raw.items()}
    for tok in ("x_pad_token", "cap_pad_token"):
        if tok in ckpt and ckpt[tok].ndim == 1:
            ckpt[tok] = ckpt[tok].unsqueeze(0)
    return ZImageTransformer2DModel.from_single_file(
        ckpt,
        config=str(config_dir),
        quantization_config=GGUFQuantizationConfig(compute_dtype=dtype),
        local_files_only=True,
        dtype=dtype,
    )


def dequantized_state(path: Path, dtype: Any) -> dict[str, torch.Tensor]:
    """Every tensor of a GGUF file as a plain ``dtype`` tensor (llama.cpp names mapped to
    transformers' Qwen3 names; the untied LM head dropped)."""
    from diffusers.quantizers.gguf.utils import dequantize_gguf_tensor

    raw = _read_tensors(path)
    llama = any(k.startswith("blk.") for k in raw)
    out: dict[str, torch.Tensor] = {}
    for name, t in raw.items():
        key = name
        if llama:
            if name == "output.weight":
                continue
            mapped = llama_to_hf(name)
            if mapped is None:
                continue
            key = mapped
        value = dequantize_gguf_tensor(t) if hasattr(t, "quant_type") else t
        if hasattr(value, "as_tensor"):
            value = value.as_tensor()
        out[key] = value.to(dtype)
    return out
