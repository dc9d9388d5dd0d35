"""Base-weight precision for training: bf16/fp32, fp8 with block scales, NF4 (bitsandbytes).

The frozen base Linears of the transformer blocks (``layers``, ``noise_refiner``,
``context_refiner``; not the adaLN modulation, embedders or final layer — engine notes §10, §13 F)
are converted one module at a time *on the target device*, so the GPU never holds the full bf16
model next to the quantised one:

* ``fp8`` — float8 e4m3 weights with one scale per 64 input values (absmax / 448; per output
  channel when the width is not a multiple of 64), dequantised to the compute dtype inside
  ``forward``. Scaled storage keeps small weights out of e4m3's subnormal range, which a plain cast
  (diffusers' layerwise casting, the ComfyUI fp8 files) does not. ≈ 1.03 bytes per weight.
* ``nf4`` — ``bitsandbytes.nn.Linear4bit`` (NF4, bf16 compute), CUDA only, imported lazily.

A training adapter in merge mode is added to each full-precision weight right before that
module is quantised (one exact fp32 merge, never a merge/unmerge round trip on bf16 weights).
PEFT layers wrap these modules afterwards just as they wrap plain Linears (``base_layer``).
"""

from __future__ import annotations

import logging
import re
import types
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger(__name__)

FP8_MAX = 448.0
FP8_BLOCK = 64


class _Fp8Dtypes:
    """``weight.dtype in FP8_DTYPES`` without importing torch at module level."""

    def __contains__(self, dtype: object) -> bool:
        return str(dtype).startswith("torch.float8")


FP8_DTYPES = _Fp8Dtypes()
_QUANT_RE = re.compile(
    r"(?:layers|noise_refiner|context_refiner)\.\d+\.(?:attention\.(?:to_q|to_k|to_v|to_out\.0)"
    r"|feed_forward\.w[123])(?:\.base_layer)?"
)
_IN_BLOCK_RE = re.compile(
    r"(?:attention\.(?:to_q|to_k|to_v|to_out\.0)|feed_forward\.w[123])(?:\.base_layer)?"
)
_BLOCK_OF = re.compile(r"((?:layers|noise_refiner|context_refiner)\.\d+)\.")


def base_linears(transformer: Any, quantizable_only: bool = True, in_block: bool = False):
    """``(name, parent, child, module)`` of the frozen base Linears (PEFT wrappers seen through).

    ``in_block``: ``transformer`` is one block (names relative to it)."""
    import torch

    pattern = _IN_BLOCK_RE if in_block else _QUANT_RE
    for name, mod in list(transformer.named_modules()):
        if not isinstance(mod, torch.nn.Linear) or ".lora_" in name:
            continue
        if quantizable_only and not pattern.fullmatch(name):
            continue
        parent_name, _, child = name.rpartition(".")
        yield (
            name,
            transformer.get_submodule(parent_name) if parent_name else transformer,
            child,
            mod,
        )


def block_of(name: str) -> str:
    """``layers.3`` of ``layers.3.attention.to_q`` ("" outside the blocks)."""
    m = _BLOCK_OF.match(name)
    return m.group(1) if m else ""


def place(transformer: Any, device: str, skip: set[int] | None = None) -> None:
    """``transformer.to(device)`` except the tensors whose ``id`` is in ``skip`` (streamed
    weights stay where they are: they never visit the GPU whole)."""
    if not skip:
        transformer.to(device)
        return
    for mod in transformer.modules():
        for p in mod._parameters.values():
            if p is not None and id(p) not in skip:
                p.data = p.data.to(device)
        for key, b in mod._buffers.items():
            if b is not None and id(b) not in skip:
                mod._buffers[key] = b.to(device)


def module_key(name: str) -> str:
    """Diffusers module name without PEFT's ``.base_layer``."""
    return name.removesuffix(".base_layer")


def dequantize_fp8(w8: Any, scale: Any) -> Any:
    """The compute-dtype weight of an e4m3 weight with block scales ``(out, n_blocks)``."""
    out_f, in_f = w8.shape
    blocks = scale.shape[1]
    return (w8.to(scale.dtype).view(out_f, blocks, in_f // blocks) * scale.unsqueeze(-1)).view(
        out_f, in_f
    )


_FP8_OP: list[Any] = []


def fp8_linear_op() -> Any:
    """``zitdesk::fp8_linear(x, w8, scale, bias)``: a custom op whose backward keeps only the fp8
    weight and its scales (the frozen base needs no weight gradient) and dequantises again.
    As a plain function, or traced into a compiled block, the dequantised bf16 weight would be
    saved for the backward instead (+2 bytes per weight for every block that is not
    checkpointed); torch.compile treats a custom op as opaque, so its partitioner cannot choose
    that either."""
    if _FP8_OP:
        return _FP8_OP[0]
    import torch
    import torch.nn.functional as F

    fused: list[Any] = []  # one Triton kernel for the dequantisation on CUDA (3 bytes a weight)

    def deq(w8: Any, scale: Any) -> Any:
        if w8.device.type == "cuda" and fused != [None]:
            try:
                if not fused:
                    fused.append(torch.compile(dequantize_fp8, dynamic=False))
                return fused[0](w8, scale)
            except Exception:  # noqa: BLE001 - no Triton (or a compiler failure): eager
                log.warning("fp8 dequantisation runs eagerly (torch.compile failed)")
                fused[:] = [None]
        return dequantize_fp8(w8, scale)

    # explicit schemas: this module's postponed annotations are strings to torch.library
    @torch.library.custom_op(
        "zitdesk::fp8_linear",
        mutates_args=(),
        schema="(Tensor x, Tensor w8, Tensor scale) -> Tensor",
    )
    def fp8_linear(x: Any, w8: Any, scale: Any) -> Any:
        w = deq(w8, scale)
        return F.linear(x.to(w.dtype), w)

    @fp8_linear.register_fake
    def _(x: Any, w8: Any, scale: Any) -> Any:
        return x.new_empty((*x.shape[:-1], w8.shape[0]), dtype=scale.dtype)

    @torch.library.custom_op(
        "zitdesk::fp8_linear_grad",
        mutates_args=(),
        schema="(Tensor g, Tensor w8, Tensor scale) -> Tensor",
    )
    def fp8_linear_grad(g: Any, w8: Any, scale: Any) -> Any:
        return g.to(scale.dtype) @ deq(w8, scale)

    @fp8_linear_grad.register_fake
    def _g(g: Any, w8: Any, scale: Any) -> Any:
        return g.new_empty((*g.shape[:-1], w8.shape[1]), dtype=scale.dtype)

    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        x, w8, scale = inputs
        ctx.save_for_backward(w8, scale)
        ctx.x_dtype = x.dtype

    def backward(ctx: Any, g: Any) -> Any:
        w8, scale = ctx.saved_tensors
        return fp8_linear_grad(g, w8, scale).to(ctx.x_dtype), None, None

    fp8_linear.register_autograd(backward, setup_context=setup_context)
    _FP8_OP.append(fp8_linear)
    return fp8_linear


def _fp8_forward(self: Any, x: Any) -> Any:
    out = fp8_linear_op()(x, self.weight, self.weight_scale)
    return out if self.bias is None else out + self.bias.to(out.dtype)


def quantize_fp8_module(mod: Any, weight: Any, compute_dtype: Any) -> None:
    """Replace ``mod``'s weight by e4m3 + block scales (``weight``: float source, any device)."""
    import torch

    w = weight.float()
    out_f, in_f = w.shape
    block = FP8_BLOCK if in_f % FP8_BLOCK == 0 else in_f
    wb = w.view(out_f, in_f // block, block)
    scale = (wb.abs().amax(dim=-1, keepdim=True) / FP8_MAX).clamp_min(1e-12)
    q = (wb / scale).clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn).view(out_f, in_f)
    mod.weight = torch.nn.Parameter(q, requires_grad=False)
    if "weight_scale" in mod._buffers:
        del mod._buffers["weight_scale"]
    mod.register_buffer("weight_scale", scale.squeeze(-1).to(compute_dtype))
    if mod.bias is not None:
        mod.bias = torch.nn.Parameter(
            mod.bias.detach().to(device=q.device, dtype=compute_dtype), requires_grad=False
        )
    mod.forward = types.MethodType(_fp8_forward, mod)


def nf4_module(mod: Any, weight: Any, device: str) -> Any:
    """A ``bitsandbytes`` NF4 ``Linear4bit`` with ``weight`` (bf16 compute); CUDA only."""
    import torch

    try:
        import bitsandbytes as bnb
    except ImportError as exc:  # pragma: no cover - CUDA machines only
        from zitdesk.errors import RequestError

        raise RequestError(
            "4-bit (NF4) training needs the bitsandbytes package and an NVIDIA GPU."
        ) from exc
    q = bnb.nn.Linear4bit(
        mod.in_features,
        mod.out_features,
        bias=mod.bias is not None,
        compute_dtype=torch.bfloat16,
        quant_type="nf4",
        device="cpu",
    )
    # quantised where the weight already is (on the GPU in prepare_base): no host round trip
    q.weight = bnb.nn.Params4bit(
        weight.detach().to(torch.bfloat16), requires_grad=False, quant_type="nf4"
    )
    if mod.bias is not None:
        q.bias = torch.nn.Parameter(mod.bias.detach().to(torch.bfloat16), requires_grad=False)
    return q.to(device)


def prepare_base(
    transformer: Any,
    precision: str,
    device: str,
    compute_dtype: Any,
    merge: Mapping[str, tuple[Any, Any]] | None = None,
    progress: Callable[[int, int], None] | None = None,
    blocks: set[str] | None = None,
    keep_off: set[str] | None = None,
) -> dict[str, Any]:
    """Merge (optional), quantise and place the transformer on ``device``; returns a summary.

    ``merge`` maps diffusers module names to ``(A, B)`` with scale 1 (``B @ A`` is added).
    For ``bf16``/``fp32`` the weights keep their dtype; merging still happens per module in fp32.
    ``blocks``: quantise only the Linears of these blocks ("layers.3", …; None = every block).
    ``keep_off``: blocks whose base Linear weights stay off the GPU (streamed from RAM later).
    """
    import torch

    merge = dict(merge or {})
    quant = precision in ("fp8", "nf4")
    keep_off = set(keep_off or ())
    mods = list(base_linears(transformer, quantizable_only=quant))
    if quant and blocks is not None:
        mods = [m for m in mods if block_of(m[0]) in blocks or module_key(m[0]) in merge]
    if not quant:
        mods = [m for m in mods if module_key(m[0]) in merge]
    in_block = {module_key(m[0]) for m in base_linears(transformer) if block_of(m[0])}
    merged = 0
    for i, (name, parent, child, mod) in enumerate(mods):
        key = module_key(name)
        off = block_of(name) in keep_off
        target = "cpu" if off else device
        w = mod.weight.detach().to(target)
        if key in merge:
            a, b = merge.pop(key)
            w = (w.float() + b.to(target).float() @ a.to(target).float()).to(w.dtype)
            merged += 1
        chosen = blocks is None or block_of(name) in blocks or key not in in_block
        if precision == "fp8" and chosen:
            quantize_fp8_module(mod, w, compute_dtype)
        elif precision == "nf4" and chosen:
            setattr(parent, child, nf4_module(mod, w, device))
        else:
            with torch.no_grad():
                mod.weight.data = w
        del w
        if progress:
            progress(i + 1, len(mods))
    if merge:
        # Adapter modules that are not quantised (e.g. adaLN): merge into their float weights.
        for name, _parent, _child, mod in list(base_linears(transformer, quantizable_only=False)):
            key = module_key(name)
            if key in merge:
                a, b = merge.pop(key)
                with torch.no_grad():
                    w = mod.weight.detach().to(device).float()
                    mod.weight.data = (w + b.to(device).float() @ a.to(device).float()).to(
                        mod.weight.dtype
                    )
                merged += 1
    skip: set[int] = set()
    if keep_off:
        for name, _parent, _child, mod in base_linears(transformer):
            if block_of(name) in keep_off:
                skip.update(id(t) for t in (mod.weight, mod.bias, mod._buffers.get("weight_scale")))
    place(transformer, device, skip)
    if merge:
        log.warning("training adapter: %d modules not found in the model", len(merge))
    return {"quantized": len(mods) if quant else 0, "merged": merged, "unmatched": len(merge)}


def base_dtype_label(precision: str, dtype: Any) -> str:
    import torch

    if precision in ("fp8", "nf4"):
        return precision
    return {torch.bfloat16: "bf16", torch.float32: "fp32", torch.float16: "fp16"}.get(
        dtype, str(dtype)
    )
