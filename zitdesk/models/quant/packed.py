"""Scaled-fp8 and nvfp4 safetensors files kept packed in memory, dequantised per layer (torch).

A :class:`PackedLinear` replaces each quantised ``nn.Linear``: its ``weight`` is the file's bytes
(uint8, no gradient), its scales are buffers, and every forward dequantises the weight into the
input's dtype, so the GPU holds 8 (fp8) or 4.5 (nvfp4) bits per weight. It stays an
``nn.Linear`` (``in_features``/``out_features`` set), so PEFT LoRA layers wrap it as usual and the
LoRA factors keep their own float dtype (PEFT only casts adapters to floating base weights).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from zitdesk.errors import ModelError
from zitdesk.models.quant.codecs import dequantize_fp8_scaled, dequantize_nvfp4, from_blocked

log = logging.getLogger(__name__)

_SCALE_KEYS = ("weight_scale", "scale_weight", "weight_scale_2", "input_scale", "scale_input")


class PackedLinear(nn.Linear):
    """A Linear whose weight stays in the file's packed form (``fmt``: fp8-scaled | nvfp4)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        fmt: str,
        packed: torch.Tensor,
        scale: torch.Tensor,
        scale_2: torch.Tensor | None = None,
        bias: torch.Tensor | None = None,
    ) -> None:
        nn.Module.__init__(self)
        self.in_features, self.out_features, self.fmt = in_features, out_features, fmt
        self.weight = nn.Parameter(packed.contiguous().view(torch.uint8), requires_grad=False)
        # nvfp4: e4m3 block scales kept as their bytes (uint8), so ``.to(dtype)`` leaves them be
        self.register_buffer(
            "weight_scale", scale.view(torch.uint8) if fmt == "nvfp4" else scale.float()
        )
        self.register_buffer(
            "weight_scale_2", (scale_2 if scale_2 is not None else torch.ones(())).float()
        )
        # nn.Linear declares bias non-optional; None is what it stores without one
        self.bias = nn.Parameter(bias, requires_grad=False) if bias is not None else None  # type: ignore[assignment]

    def dequantize(self, dtype: Any = torch.bfloat16) -> torch.Tensor:
        scale: torch.Tensor = self.weight_scale  # type: ignore[assignment]  # a buffer
        scale_2: torch.Tensor = self.weight_scale_2  # type: ignore[assignment]  # a buffer
        if self.fmt == "nvfp4":
            return dequantize_nvfp4(self.weight, scale, scale_2, dtype)
        return dequantize_fp8_scaled(self.weight.view(torch.float8_e4m3fn), scale, dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias.to(x.dtype) if self.bias is not None else None
        return nn.functional.linear(x, self.dequantize(x.dtype), bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, fmt={self.fmt}"


def _comfy_quant_format(raw: torch.Tensor | None) -> str:
    if raw is None:
        return ""
    try:
        return str(json.loads(bytes(raw.tolist()).decode("utf-8")).get("format", ""))
    except (ValueError, AttributeError, UnicodeDecodeError):
        return ""


def read_packed(path: Path, prefix: str = "") -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """``(plain tensors, packed layers)`` of a scaled-fp8 / mixed / nvfp4 safetensors file.

    ``packed`` maps a layer name (``…qkv``) to ``{"fmt", "weight", "scale", "scale_2"}``, with
    nvfp4 block scales already in the plain ``[N, K/16]`` layout. Plain fp8 weights without a
    scale are cast up by the caller; scale and ``comfy_quant`` entries do not appear in ``plain``.
    """
    from safetensors import safe_open

    plain: dict[str, Any] = {}
    packed: dict[str, dict[str, Any]] = {}
    with safe_open(str(path), framework="pt") as fh:
        keys = [k for k in fh.keys() if k.startswith(prefix)]  # noqa: SIM118 - no __iter__
        have = set(keys)
        for key in keys:
            name = key[len(prefix) :]
            if name == "scaled_fp8" or name.endswith(".comfy_quant"):
                continue
            if name.rsplit(".", 1)[-1] in _SCALE_KEYS:
                continue
            if not name.endswith(".weight"):
                plain[name] = fh.get_tensor(key)
                continue
            layer = name[: -len(".weight")]
            scale_key = next(
                (
                    f"{prefix}{layer}.{s}"
                    for s in ("weight_scale", "scale_weight")
                    if f"{prefix}{layer}.{s}" in have
                ),
                None,
            )
            w = fh.get_tensor(key)
            if scale_key is None or w.dtype not in (torch.float8_e4m3fn, torch.uint8):
                plain[name] = w
                continue
            cq = f"{prefix}{layer}.comfy_quant"
            fmt = _comfy_quant_format(fh.get_tensor(cq) if cq in have else None)
            scale = fh.get_tensor(scale_key)
            if w.dtype == torch.uint8:
                s2_key = f"{prefix}{layer}.weight_scale_2"
                if s2_key not in have:
                    raise ModelError(f"{path.name}: {layer} has 4-bit weights but no global scale.")
                rows, cols = w.shape[0], w.shape[1] * 2 // 16
                blocks = scale.view(torch.uint8)
                if tuple(blocks.shape) != (rows, cols) or fmt == "nvfp4":
                    blocks = from_blocked(blocks, rows, cols)  # ComfyUI's cuBLAS tiles
                packed[layer] = {
                    "fmt": "nvfp4",
                    "weight": w,
                    "scale": blocks.contiguous(),
                    "scale_2": fh.get_tensor(s2_key),
                }
            else:
                packed[layer] = {"fmt": "fp8-scaled", "weight": w, "scale": scale, "scale_2": None}
    return plain, packed


def split_fused_rows(entry: dict[str, Any], parts: int) -> list[dict[str, Any]]:
    """A packed fused projection (qkv) split into ``parts`` row blocks (per-row layouts split
    exactly: fp8 rows, nvfp4 packed rows and their block scales; scalar scales are shared)."""
    out = []
    ws = torch.chunk(entry["weight"], parts, dim=0)
    scale = entry["scale"]
    ss = (
        torch.chunk(scale, parts, dim=0)
        if scale.ndim >= 1 and scale.numel() > 1
        else [scale] * parts
    )
    for w, s in zip(ws, ss, strict=True):
        out.append({**entry, "weight": w.contiguous(), "scale": s.contiguous()})
    return out


def install_packed(
    model: nn.Module,
    packed: dict[str, dict[str, Any]],
    biases: dict[str, torch.Tensor],
    dtype: Any,
) -> int:
    """Replace each named Linear of ``model`` (may be on the meta device) by a PackedLinear."""
    count = 0
    for name, entry in packed.items():
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        old = getattr(parent, child, None)
        if not isinstance(old, nn.Linear):
            raise ModelError(
                f"The file quantises {name}, which is not a linear layer of the model."
            )
        bias = biases.pop(name, None)
        new = PackedLinear(
            old.in_features,
            old.out_features,
            entry["fmt"],
            entry["weight"],
            entry["scale"],
            entry.get("scale_2"),
            bias.to(dtype) if bias is not None else None,
        )
        expect = old.out_features * old.in_features // (2 if entry["fmt"] == "nvfp4" else 1)
        if new.weight.numel() != expect:
            raise ModelError(f"The quantised {name} does not match the model's shape.")
        setattr(parent, child, new)
        count += 1
    return count


def packed_modules(model: nn.Module) -> Iterator[tuple[str, PackedLinear]]:
    for name, mod in model.named_modules():
        if isinstance(mod, PackedLinear):
            yield name, mod


def is_prequantised(model: Any) -> bool:
    """Whether ``model`` holds file-quantised layers (PackedLinear or diffusers GGUF)."""
    if model is None or not isinstance(model, nn.Module):
        return False
    for mod in model.modules():
        if isinstance(mod, PackedLinear) or type(mod).__name__ == "GGUFLinear":
            return True
    return False


def load_packed_transformer(
    path: Path, prefix: str, config: dict[str, Any], dtype: Any, rename: Callable[[str], str]
):
    """Build ``ZImageTransformer2DModel`` from a scaled-fp8 / nvfp4 DiT file, weights packed."""
    from diffusers import ZImageTransformer2DModel

    plain_raw, packed_raw = read_packed(path, prefix)
    plain: dict[str, Any] = {}
    for k, v in plain_raw.items():
        if k == "norm_final.weight":
            continue
        v = v.to(dtype) if v.is_floating_point() else v
        if k.endswith("qkv.weight"):
            for part, t in zip(("to_q", "to_k", "to_v"), torch.chunk(v, 3, dim=0), strict=True):
                plain[rename(k).replace("qkv", part)] = t.contiguous()
        else:
            plain[rename(k)] = v
    packed: dict[str, dict[str, Any]] = {}
    for layer, entry in packed_raw.items():
        if layer.endswith(".qkv"):
            for part, sub in zip(("to_q", "to_k", "to_v"), split_fused_rows(entry, 3), strict=True):
                packed[rename(layer + ".weight")[: -len(".weight")].replace("qkv", part)] = sub
        else:
            packed[rename(layer + ".weight")[: -len(".weight")]] = entry
    for tok in ("x_pad_token", "cap_pad_token"):
        if tok in plain and plain[tok].ndim == 1:
            plain[tok] = plain[tok].unsqueeze(0)  # some files store [dim]
    with torch.device("meta"):
        model = ZImageTransformer2DModel.from_config(config)
    biases = {k[: -len(".bias")]: v for k, v in plain.items() if k[: -len(".bias")] in packed}
    for k in list(biases):
        plain.pop(k + ".bias")
    install_packed(model, packed, biases, dtype)
    missing, unexpected = model.load_state_dict(plain, strict=False, assign=True)
    missing = [m for m in missing if not _is_packed_param(model, m)]
    if missing:
        raise ModelError(
            f"{path.name} is missing {len(missing)} DiT weights (e.g. {missing[0]}); the file is incomplete."
        )
    if unexpected:
        log.warning("%s: %d unused tensors (e.g. %s)", path.name, len(unexpected), unexpected[0])
    return model.eval()


def _is_packed_param(model: nn.Module, name: str) -> bool:
    parent = name.rpartition(".")[0]
    try:
        return isinstance(model.get_submodule(parent), PackedLinear)
    except AttributeError:
        return False


def load_packed_qwen3(model: nn.Module, path: Path, prefix: str, dtype: Any) -> dict[str, Any]:
    """Install a scaled-fp8 / mixed Qwen3 file's packed layers into ``model`` (meta device) and
    return the remaining plain state dict (cast to ``dtype``) for ``load_state_dict``."""
    plain_raw, packed = read_packed(path, prefix)
    plain = {
        k: (v.to(dtype) if v.is_floating_point() else v)
        for k, v in plain_raw.items()
        if not k.startswith("lm_head.")
    }
    packed = {k: v for k, v in packed.items() if not k.startswith("lm_head")}
    biases = {k[: -len(".bias")]: v for k, v in plain.items() if k[: -len(".bias")] in packed}
    for k in list(biases):
        plain.pop(k + ".bias")
    install_packed(model, packed, biases, dtype)
    return plain


def packed_base_label(model: Any) -> str:
    """``""`` for a float model; else what its file-quantised layers are (``gguf-Q4_K``,
    ``fp8-scaled``, ``nvfp4``; the most common one) — the frozen base of a LoRA training run.

    Such a base stays packed while training: nothing is merged into it or re-quantised, the
    adapter runs as a side branch, and the saved LoRA has the bf16 model's module names and
    shapes, so it applies to the bf16 file unchanged."""
    if model is None or not isinstance(model, nn.Module):
        return ""
    counts: dict[str, int] = {}
    for mod in model.modules():
        if isinstance(mod, PackedLinear):
            label = mod.fmt
        elif type(mod).__name__ == "GGUFLinear":
            qtype = getattr(getattr(mod, "weight", None), "quant_type", None)
            label = f"gguf-{getattr(qtype, 'name', qtype)}"
        else:
            continue
        counts[label] = counts.get(label, 0) + 1
    return max(counts, key=lambda k: counts[k]) if counts else ""
