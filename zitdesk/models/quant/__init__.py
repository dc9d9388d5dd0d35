"""Pre-quantised model files: GGUF, ComfyUI scaled fp8 / mixed (``comfy_quant``) and nvfp4.

Torch-free (headers only), like :mod:`zitdesk.models.validate`, which calls :func:`detect_quant`
for every DiT / Qwen3 safetensors file and :func:`gguf_header` for every ``.gguf`` file. The
torch side lives in :mod:`zitdesk.models.quant.packed` (scaled fp8, nvfp4) and
:mod:`zitdesk.models.quant.gguf_load` (GGUF), both imported by the loader only.

Formats (``FileCheck.quant``):

* ``""`` plain bf16/fp16/fp32; ``"fp8"`` plain ``float8_e4m3fn`` weights (cast up at load);
* ``"fp8-scaled"``: fp8 weights with a per-tensor (or per-row) scale: ComfyUI's ``scale_weight``
  files and the newer ``weight_scale`` + ``comfy_quant`` "mixed" files (e.g. Comfy-Org's
  ``qwen_3_4b_fp8_mixed``), where some layers stay bf16;
* ``"nvfp4"``: packed e2m1 pairs (uint8), e4m3 block scales per 16 values, a float32 global
  scale (``weight_scale_2``); ComfyUI stores the block scales in the cuBLAS tiled layout;
* ``"gguf-<TYPE>"``: a GGUF file (ComfyUI-GGUF layout for the DiT, llama.cpp names for Qwen3),
  ``TYPE`` being its main quantisation (Q8_0, Q6_K, Q5_K, Q4_K, Q4_0 …).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from zitdesk.errors import ModelError
from zitdesk.st_header import SafetensorsHeader, TensorInfo

# GGUF types zitdesk runs (diffusers dequantises them per layer); the rest are refused with a
# sentence. Q3_K / Q2_K and the IQ types lose too much for an 8-step distilled model.
GGUF_SUPPORTED = (
    "F32",
    "F16",
    "BF16",
    "Q8_0",
    "Q6_K",
    "Q5_K",
    "Q5_1",
    "Q5_0",
    "Q4_K",
    "Q4_1",
    "Q4_0",
)
GGUF_FLOAT = ("F32", "F16", "BF16")
# Bits per weight of each stored type (block scales included).
BITS_PER_WEIGHT = {
    "F32": 32.0,
    "F16": 16.0,
    "BF16": 16.0,
    "Q8_0": 8.5,
    "Q6_K": 6.5625,
    "Q5_K": 5.5,
    "Q5_1": 6.0,
    "Q5_0": 5.5,
    "Q4_K": 4.5,
    "Q4_1": 5.0,
    "Q4_0": 4.5,
    "Q3_K": 3.4375,
    "Q2_K": 2.625,
    "fp8": 8.0,
    "fp8-scaled": 8.0,
    "nvfp4": 4.5,
    "": 16.0,
}

# llama.cpp tensor names of a Qwen3 GGUF → transformers Qwen3Model names (no permutation: the
# Qwen2/Qwen3 converters store q/k unpermuted).
_LLAMA_QWEN3 = {
    "token_embd.weight": "embed_tokens.weight",
    "output_norm.weight": "norm.weight",
}
_LLAMA_QWEN3_BLOCK = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "attn_q_norm": "self_attn.q_norm",
    "attn_k_norm": "self_attn.k_norm",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}


def llama_to_hf(name: str) -> str | None:
    """``blk.3.attn_q.weight`` → ``layers.3.self_attn.q_proj.weight``; None for unknown names."""
    if name in _LLAMA_QWEN3:
        return _LLAMA_QWEN3[name]
    parts = name.split(".")
    if len(parts) == 4 and parts[0] == "blk" and parts[2] in _LLAMA_QWEN3_BLOCK:
        return f"layers.{parts[1]}.{_LLAMA_QWEN3_BLOCK[parts[2]]}.{parts[3]}"
    return None


@dataclass(frozen=True)
class GGUFTensor:
    """Where one tensor of a GGUF file lives (``name`` as stored, ``shape`` in torch order)."""

    name: str
    qtype: str
    shape: tuple[int, ...]
    offset: int
    n_bytes: int


def read_gguf(path: str | Path) -> tuple[dict[str, str], list[GGUFTensor]]:
    """The string metadata and tensor table of a GGUF file (memory-mapped; no tensor is read)."""
    p = Path(path)
    try:
        from gguf import GGUFReader
    except ImportError as exc:  # pragma: no cover - gguf is a runtime dependency
        raise ModelError(
            f"{p.name} is a GGUF file, but the gguf package is missing; reinstall zitdesk."
        ) from exc
    try:
        reader = GGUFReader(str(p))
    except Exception as exc:  # noqa: BLE001 - the reader raises many kinds on damaged files
        raise ModelError(f"{p.name} is not a readable GGUF file ({exc}).".splitlines()[0]) from exc
    meta: dict[str, str] = {}
    for key, fld in reader.fields.items():
        try:
            if fld.types and fld.types[0].name == "STRING" and len(fld.types) == 1:
                meta[key] = bytes(fld.parts[fld.data[0]]).decode("utf-8", "replace")
        except Exception:  # noqa: BLE001, S112 - metadata is informative only
            continue
    tensors = [
        GGUFTensor(
            t.name,
            t.tensor_type.name,
            tuple(int(x) for x in reversed(t.shape.tolist())),
            int(t.data_offset),
            int(t.n_bytes),
        )
        for t in reader.tensors
    ]
    return meta, tensors


def gguf_header(path: str | Path) -> SafetensorsHeader:
    """A GGUF file seen as a safetensors header: logical shapes, the GGUF type as ``dtype``.

    Qwen3 GGUFs (llama.cpp names) are renamed to transformers' names, so the same classifier and
    config inference serve both formats; ``metadata["format"]`` is ``"gguf"``.
    """
    p = Path(path)
    meta, tensors = read_gguf(p)
    llama = any(t.name.startswith("blk.") for t in tensors)
    out: dict[str, TensorInfo] = {}
    for t in tensors:
        name = t.name
        if llama:
            if name == "output.weight":
                continue  # the untied LM head; Qwen3Model has none
            mapped = llama_to_hf(name)
            if mapped is None:
                continue
            name = mapped
        out[name] = TensorInfo(t.qtype, t.shape, t.offset, t.offset + t.n_bytes)
    info = {"format": "gguf", "gguf_names": "llama" if llama else "original"}
    if "general.architecture" in meta:
        info["architecture"] = meta["general.architecture"]
    return SafetensorsHeader(p, out, info, p.stat().st_size, 0)


def gguf_main_type(header: SafetensorsHeader) -> str:
    """The quantisation most of a GGUF file's weight bytes use (``Q4_K`` …; ``F16`` when none)."""
    by_bytes: dict[str, int] = {}
    for t in header.tensors.values():
        if t.dtype not in GGUF_FLOAT:
            by_bytes[t.dtype] = by_bytes.get(t.dtype, 0) + (t.end - t.start)
    return max(by_bytes, key=lambda k: by_bytes[k]) if by_bytes else "F16"


def gguf_problem(header: SafetensorsHeader) -> str:
    """One sentence when a GGUF file holds a type zitdesk does not run, else ``""``."""
    bad = sorted({t.dtype for t in header.tensors.values() if t.dtype not in GGUF_SUPPORTED})
    if not bad:
        return ""
    return (
        f"{header.path.name}: GGUF {bad[0]} is not supported: use Q4_K or better "
        "(Q8_0, Q6_K, Q5_K, Q4_K or Q4_0)."
    )


def detect_quant(header: SafetensorsHeader) -> tuple[str, str]:
    """``(format, problem)`` of a safetensors DiT / Qwen3 file from its key names and dtypes.

    ``format`` is one of the names in the module docstring; ``problem`` is a sentence when the
    file is pre-quantised in a way zitdesk cannot run (int8 "convrot", fp4 without scales …).
    """
    name = header.path.name
    keys = header.tensors
    weight_dtypes = {
        t.dtype for k, t in keys.items() if k.endswith(".weight") and len(t.shape) == 2
    }
    scaled = any(
        k.endswith((".scale_weight", ".weight_scale", ".comfy_quant")) or k == "scaled_fp8"
        for k in keys
    )
    if "I8" in weight_dtypes:
        return "int8", (
            f"{name} is an int8-quantised model (int8_convrot), which zitdesk cannot run; use the "
            "fp8 or a GGUF Q8_0 / Q4_K file instead."
        )
    if "U8" in weight_dtypes or "F4" in weight_dtypes:
        if any(k.endswith(".weight_scale_2") for k in keys) and "F4" not in weight_dtypes:
            return "nvfp4", ""
        return "fp4", (
            f"{name} is a 4-bit file in a layout zitdesk does not know (no nvfp4 block scales); "
            "use the nvfp4, fp8 or a GGUF Q4_K file instead."
        )
    if scaled:  # fp8 layers with scales; bf16 layers of a mixed file stay as they are
        return "fp8-scaled", ""
    if "F8_E5M2" in weight_dtypes:
        return "fp8", (
            f"{name} stores float8_e5m2 weights, which lose too much precision for Z-Image; use "
            "the bf16 or fp8_e4m3fn file."
        )
    if "F8_E4M3" in weight_dtypes:
        return "fp8", ""
    return "", ""


def quant_label(fmt: str) -> str:
    """``gguf-Q4_K`` → ``GGUF Q4_K``; ``fp8-scaled`` → ``scaled fp8`` (for lists and messages)."""
    if fmt.startswith("gguf-"):
        return "GGUF " + fmt[5:]
    return {
        "": "bf16",
        "fp8": "fp8 e4m3fn",
        "fp8-scaled": "scaled fp8",
        "nvfp4": "nvfp4",
        "int8": "int8",
    }.get(fmt, fmt)


def resident_bytes(params: int, fmt: str) -> int:
    """GPU bytes of ``params`` weights stored as ``fmt`` (GGUF/nvfp4/fp8 stay packed on the GPU)."""
    bits = BITS_PER_WEIGHT.get(fmt[5:] if fmt.startswith("gguf-") else fmt, 16.0)
    return int(params * bits / 8)


def logical_header(header: SafetensorsHeader) -> SafetensorsHeader:
    """An nvfp4 file's header with its packed weights at their real ``[N, K]`` shapes (the file
    lists ``[N, K/2]`` bytes), so config inference and shape checks read the model's sizes."""
    keys = header.tensors
    fixed: dict[str, TensorInfo] = {}
    for k, t in keys.items():
        if t.dtype == "U8" and len(t.shape) == 2 and f"{k[: -len('weight')]}weight_scale_2" in keys:
            fixed[k] = TensorInfo(t.dtype, (t.shape[0], t.shape[1] * 2), t.start, t.end)
        else:
            fixed[k] = t
    return SafetensorsHeader(
        header.path, fixed, dict(header.metadata), header.file_size, header.data_offset
    )
