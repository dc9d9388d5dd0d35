"""Quantise / dequantise weights in the stored layouts zitdesk reads (torch; CPU or GPU).

* scaled fp8: ``q = (w / s).to(float8_e4m3fn)``, ``s = amax / 448`` (ComfyUI ``scale_weight`` /
  ``weight_scale``); ``w ≈ q * s``.
* nvfp4: two e2m1 codes per byte (the even column in the low nibble), one e4m3 scale per 16
  values and a float32 global scale: ``w ≈ e2m1 * block_scale * scale_2``; ComfyUI stores the
  block scales in the cuBLAS tiled layout (:func:`to_blocked` / :func:`from_blocked`).
* GGUF Q8_0, Q4_0, Q4_K, Q5_K, Q6_K: the ggml block layouts (``ggml-common.h``), written byte for
  byte so the ``gguf`` package's reference decoder and diffusers' GGUF kernels read them. The
  encoders are simple (no importance search like llama.cpp's), so the error is a little larger
  than a llama.cpp file of the same type; they exist for tests and the GPU benchmark, which
  quantise random full-size weights on the GPU in seconds.

Every ``quantize_*`` takes a 2-D float tensor ``[rows, cols]`` and returns uint8 ``[rows, bytes]``
(GGUF) or the tensors named above; rows must be whole blocks (32 or 256 columns for GGUF).
"""

from __future__ import annotations

from typing import Any

import torch

E4M3_MAX = 448.0
E2M1_MAX = 6.0
_E2M1 = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)

GGUF_BLOCK = {"Q8_0": (32, 34), "Q4_0": (32, 18), "Q4_K": (256, 144), "Q5_K": (256, 176)}
GGUF_BLOCK["Q6_K"] = (256, 210)


# -- scaled fp8 -------------------------------------------------------------------------------


def quantize_fp8_scaled(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(float8_e4m3fn weight, float32 scalar scale)``."""
    amax = w.detach().abs().amax().float().clamp_min(1e-12)
    scale = amax / E4M3_MAX
    q = (w.float() / scale).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn)
    return q, scale.reshape(())


def dequantize_fp8_scaled(q: torch.Tensor, scale: torch.Tensor, dtype: Any) -> torch.Tensor:
    """``q * scale`` for a scalar or per-row scale, in ``dtype`` (one full-size temporary)."""
    s = scale.to(dtype)
    if s.numel() > 1 and s.ndim == 1:
        s = s.reshape(-1, 1)
    return q.to(dtype) * s


# -- nvfp4 ------------------------------------------------------------------------------------


def _ceil(a: int, b: int) -> int:
    return (a + b - 1) // b


def to_blocked(scales: torch.Tensor) -> torch.Tensor:
    """Plain ``[rows, cols]`` block scales → the cuBLAS tiled layout, padded to 128 × 4 tiles,
    returned as ``[roundup(rows, 128), roundup(cols, 4)]``."""
    rows, cols = scales.shape
    rb, cb = _ceil(rows, 128), _ceil(cols, 4)
    padded = torch.zeros((rb * 128, cb * 4), dtype=scales.dtype, device=scales.device)
    padded[:rows, :cols] = scales
    tiles = padded.view(rb, 128, cb, 4).permute(0, 2, 1, 3)  # rb, cb, 128, 4
    tiles = tiles.reshape(-1, 4, 32, 4).transpose(1, 2).reshape(-1, 32, 16)
    return tiles.reshape(rb * 128, cb * 4)


def from_blocked(blocked: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """The inverse of :func:`to_blocked`: ``[rows, cols]`` plain block scales."""
    rb, cb = _ceil(rows, 128), _ceil(cols, 4)
    t = blocked.reshape(rb * cb, 32, 4, 4).transpose(1, 2)  # (-1, 4, 32, 4)
    t = t.reshape(rb, cb, 128, 4).permute(0, 2, 1, 3).reshape(rb * 128, cb * 4)
    return t[:rows, :cols]


def _e2m1_codes(x: torch.Tensor) -> torch.Tensor:
    """Nearest e2m1 code (sign in bit 3) of values already in [-6, 6]."""
    grid = torch.tensor(_E2M1, device=x.device, dtype=torch.float32)
    code = (x.abs().unsqueeze(-1) - grid).abs().argmin(dim=-1).to(torch.uint8)
    return torch.where((x < 0) & (code > 0), code | 8, code)


def quantize_nvfp4(
    w: torch.Tensor, blocked: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(packed uint8 [N, K/2], e4m3 block scales, float32 scalar scale_2)``; K % 16 == 0."""
    n, k = w.shape
    x = w.float().reshape(n, k // 16, 16)
    scale_2 = (w.detach().abs().amax().float() / (E4M3_MAX * E2M1_MAX)).clamp_min(1e-12)
    block = (x.abs().amax(dim=-1) / E2M1_MAX / scale_2).clamp(max=E4M3_MAX)
    block8 = block.to(torch.float8_e4m3fn)
    total = block8.float() * scale_2
    safe = torch.where(total == 0, torch.ones_like(total), total)
    vals = torch.where(total.unsqueeze(-1) == 0, 0.0, x / safe.unsqueeze(-1)).clamp(-6.0, 6.0)
    codes = _e2m1_codes(vals.reshape(n, k))
    packed = codes[:, 0::2] | (codes[:, 1::2] << 4)
    scales = to_blocked(block8) if blocked else block8
    return packed.contiguous(), scales.contiguous(), scale_2.reshape(())


_LUTS: dict[tuple[str, Any], torch.Tensor] = {}


def _e2m1_lut(device: torch.device, dtype: Any) -> torch.Tensor:
    """The 16 e2m1 values on ``device`` in ``dtype``, made once (no host copy per forward)."""
    key = (str(device), dtype)
    lut = _LUTS.get(key)
    if lut is None:
        lut = torch.tensor(_E2M1 + tuple(-v for v in _E2M1), dtype=torch.float32)
        lut = _LUTS[key] = lut.to(device=device, dtype=dtype)
    return lut


def dequantize_nvfp4(
    packed: torch.Tensor, block_scales: torch.Tensor, scale_2: torch.Tensor, dtype: Any
) -> torch.Tensor:
    """Packed nvfp4 with *plain* ``[N, K/16]`` e4m3 block scales → ``dtype`` ``[N, K]``.

    e2m1 values and e4m3 scales are exact in bf16; the global scale is folded into the small
    per-block tensor in fp32 first."""
    n = packed.shape[0]
    codes = torch.stack((packed & 0x0F, packed >> 4), dim=-1).reshape(n, -1, 16)
    vals = _e2m1_lut(packed.device, dtype)[codes.long()]
    scale = (block_scales.view(torch.float8_e4m3fn).float() * scale_2.float()).to(dtype)
    return (vals * scale.unsqueeze(-1)).reshape(n, -1)


# -- GGUF (ggml block layouts) ----------------------------------------------------------------


def _f16_bytes(x: torch.Tensor) -> torch.Tensor:
    """float → the two little-endian bytes of its fp16 value (shape [..., 2])."""
    return x.to(torch.float16).contiguous().view(torch.uint8).reshape(*x.shape, 2)


def _blocks(w: torch.Tensor, size: int) -> torch.Tensor:
    rows, cols = w.shape
    if cols % size:
        raise ValueError(f"rows of {cols} values are not whole {size}-value GGUF blocks")
    return w.float().reshape(rows, cols // size, size)


def _q8_0(w: torch.Tensor) -> torch.Tensor:
    x = _blocks(w, 32)
    d = x.abs().amax(dim=-1) / 127.0
    d16 = d.to(torch.float16).float()
    q = torch.where(d16.unsqueeze(-1) > 0, x / d16.clamp_min(1e-30).unsqueeze(-1), 0.0)
    q = q.round().clamp(-127, 127).to(torch.int8).view(torch.uint8)
    return torch.cat((_f16_bytes(d16), q), dim=-1)


def _q4_0(w: torch.Tensor) -> torch.Tensor:
    x = _blocks(w, 32)
    idx = x.abs().argmax(dim=-1, keepdim=True)
    mx = x.gather(-1, idx).squeeze(-1)  # the signed value of largest magnitude
    d16 = (mx / -8.0).to(torch.float16).float()
    inv = torch.where(d16 != 0, 1.0 / torch.where(d16 != 0, d16, 1.0), 0.0)
    q = (x * inv.unsqueeze(-1) + 8.5).floor().clamp(0, 15).to(torch.uint8)
    qs = q[..., :16] | (q[..., 16:] << 4)
    return torch.cat((_f16_bytes(d16), qs), dim=-1)


def _scale_min(x: torch.Tensor, levels: int):
    """K-quant sub-block affine codes: returns (d, dmin, sc[6 bit], m[6 bit], q) for ``x`` of
    shape [..., 8, 32]."""
    mn = x.amin(dim=-1).clamp(max=0.0)
    mx = x.amax(dim=-1)
    s = (mx - mn) / levels
    off = -mn
    d = (s.amax(dim=-1) / 63.0).to(torch.float16).float()
    dmin = (off.amax(dim=-1) / 63.0).to(torch.float16).float()
    sc = torch.where(d.unsqueeze(-1) > 0, s / d.clamp_min(1e-30).unsqueeze(-1), 0.0)
    sc = sc.round().clamp(0, 63)
    m = torch.where(dmin.unsqueeze(-1) > 0, off / dmin.clamp_min(1e-30).unsqueeze(-1), 0.0)
    m = m.round().clamp(0, 63)
    step = (d.unsqueeze(-1) * sc).unsqueeze(-1)
    base = (dmin.unsqueeze(-1) * m).unsqueeze(-1)
    q = torch.where(step > 0, (x + base) / step.clamp_min(1e-30), 0.0)
    q = q.round().clamp(0, levels).to(torch.uint8)
    return d, dmin, sc.to(torch.uint8), m.to(torch.uint8), q


def _pack_scales_k4(sc: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Eight 6-bit scales and mins → the 12 bytes ``get_scale_min_k4`` reads."""
    out = torch.empty((*sc.shape[:-1], 12), dtype=torch.uint8, device=sc.device)
    out[..., 0:4] = sc[..., 0:4] | ((sc[..., 4:8] >> 4) << 6)
    out[..., 4:8] = m[..., 0:4] | ((m[..., 4:8] >> 4) << 6)
    out[..., 8:12] = (sc[..., 4:8] & 0x0F) | ((m[..., 4:8] & 0x0F) << 4)
    return out


def _q4_k(w: torch.Tensor) -> torch.Tensor:
    x = _blocks(w, 256).reshape(w.shape[0], -1, 8, 32)
    d, dmin, sc, m, q = _scale_min(x, 15)
    q = q.reshape(*q.shape[:-2], 4, 2, 32)  # chunk of 64 = sub-blocks (2c, 2c+1)
    qs = (q[..., 0, :] | (q[..., 1, :] << 4)).reshape(*q.shape[:-3], 128)
    return torch.cat((_f16_bytes(d), _f16_bytes(dmin), _pack_scales_k4(sc, m), qs), dim=-1)


def _q5_k(w: torch.Tensor) -> torch.Tensor:
    x = _blocks(w, 256).reshape(w.shape[0], -1, 8, 32)
    d, dmin, sc, m, q = _scale_min(x, 31)
    low, high = q & 0x0F, q >> 4  # high: one bit
    low = low.reshape(*low.shape[:-2], 4, 2, 32)
    qs = (low[..., 0, :] | (low[..., 1, :] << 4)).reshape(*low.shape[:-3], 128)
    qh = torch.zeros((*q.shape[:-2], 32), dtype=torch.uint8, device=q.device)
    for j in range(8):  # sub-block j sets bit j of qh[l]
        qh |= high[..., j, :] << j
    return torch.cat((_f16_bytes(d), _f16_bytes(dmin), _pack_scales_k4(sc, m), qh, qs), dim=-1)


def _q6_k(w: torch.Tensor) -> torch.Tensor:
    x = _blocks(w, 256).reshape(w.shape[0], -1, 16, 16)
    s = x.abs().amax(dim=-1) / 31.0  # per 16 values
    d = (s.amax(dim=-1) / 127.0).to(torch.float16).float()
    sc = torch.where(d.unsqueeze(-1) > 0, s / d.clamp_min(1e-30).unsqueeze(-1), 0.0)
    sc = sc.round().clamp(0, 127)
    step = (d.unsqueeze(-1) * sc).unsqueeze(-1)
    q = torch.where(step > 0, x / step.clamp_min(1e-30), 0.0).round().clamp(-32, 31) + 32
    q = q.to(torch.uint8).reshape(*q.shape[:-2], 2, 4, 32)  # half h, group g, lane l
    lo, hi = q & 0x0F, q >> 4
    ql = torch.cat(
        (lo[..., 0, :] | (lo[..., 2, :] << 4), lo[..., 1, :] | (lo[..., 3, :] << 4)), dim=-1
    )  # [..., 2, 64]
    qh = hi[..., 0, :] | (hi[..., 1, :] << 2) | (hi[..., 2, :] << 4) | (hi[..., 3, :] << 6)
    lead = q.shape[:-3]
    return torch.cat(
        (
            ql.reshape(*lead, 128),
            qh.reshape(*lead, 64),
            sc.to(torch.int8).view(torch.uint8),
            _f16_bytes(d),
        ),
        dim=-1,
    )


_GGUF_ENCODERS = {"Q8_0": _q8_0, "Q4_0": _q4_0, "Q4_K": _q4_k, "Q5_K": _q5_k, "Q6_K": _q6_k}


def gguf_quantizable(shape: tuple[int, ...], qtype: str) -> bool:
    """Whether a weight of ``shape`` can be stored as ``qtype`` (2-D, whole blocks per row)."""
    return len(shape) == 2 and shape[0] > 1 and shape[1] % GGUF_BLOCK[qtype][0] == 0


def quantize_gguf(w: torch.Tensor, qtype: str) -> torch.Tensor:
    """uint8 ``[rows, bytes]`` in the ggml layout of ``qtype`` (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K)."""
    try:
        enc = _GGUF_ENCODERS[qtype]
    except KeyError:
        raise ValueError(f"no encoder for GGUF {qtype}") from None
    with torch.no_grad():
        out = enc(w.detach())
    return out.reshape(w.shape[0], -1).contiguous()
