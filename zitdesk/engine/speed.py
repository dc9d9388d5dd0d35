"""Speed features of the generation engine: what to compile, fp8 compute, caches, background work.

:func:`plan_speed` turns a request's ``speed`` setting (``auto`` | ``fp8`` | ``off``; the
``ZITDESK_SPEED`` environment variable overrides it) and the detected hardware into a
:class:`SpeedPlan`:

- **compile** the repeated DiT blocks (``compile_repeated_blocks``) on CUDA with
  Triton; without Triton (a Windows install without ``triton-windows``) the job runs eager with a
  one-line note. Compiled artefacts (inductor FX graphs, Triton kernels, autotune results) go to
  the app's cache folder, one folder per torch version and GPU, so a restart reuses them.
- **fp8 compute**: the DiT's attention and feed-forward linears hold fp8 e4m3 weights with one
  scale per output row and multiply through ``torch._scaled_mm`` with per-row activation scales
  (:class:`Fp8Linear`), on cards with fp8 tensor cores (compute capability ≥ 8.9: Ada, Hopper,
  Blackwell). ``auto`` uses it for the fp8 memory mode (the weights are fp8 there anyway),
  ``fp8`` for every resident mode; elsewhere the job computes in bf16 with a note. On a CPU the
  module computes with the dequantised weight (same numbers, no speed-up): that path is what the
  CPU tests run.

When a compiled or fp8 pipeline fails on the machine (Triton without a C compiler, a kernel the
card lacks), the engine says so once and makes the job, and later ones, the plain way
(``GenerationEngine._fast_path_failed``). cuDNN attention is opt-in (``ZITDESK_ATTENTION=cudnn``)
until it is measured here.

It also holds the prompt-embedding LRU, the asynchronous GPU previews and the PNG writer thread.
Nothing here imports Qt; torch is imported inside the functions.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zitdesk.engine.requests import SPEEDS, MemoryMode

log = logging.getLogger(__name__)

RESIDENT = (MemoryMode.GPU, MemoryMode.FP8)  # modes whose DiT stays on the GPU
F8_MAX = 448.0  # largest finite float8_e4m3fn


@dataclass(frozen=True)
class SpeedPlan:
    """What the engine does for one job's pipeline (part of the pipeline's cache key)."""

    compile: bool = False
    fp8_compute: bool = False
    notes: tuple[str, ...] = ()  # one sentence each, shown as job warnings

    @property
    def key(self) -> tuple[bool, bool]:
        return (self.compile, self.fp8_compute)


def has_triton() -> bool:
    """Triton importable (torch.compile's GPU code generator)."""
    try:
        from torch.utils._triton import has_triton as torch_has_triton

        return bool(torch_has_triton())
    except Exception:  # noqa: BLE001 - older torch: look for the package
        return importlib.util.find_spec("triton") is not None


def fp8_capable(device: str) -> bool:
    """CUDA card with fp8 tensor cores (compute capability ≥ 8.9) and ``torch._scaled_mm``."""
    if not device.startswith("cuda"):
        return False
    import torch

    if not torch.cuda.is_available() or not hasattr(torch, "_scaled_mm"):
        return False
    index = torch.device(device).index or 0
    return tuple(torch.cuda.get_device_capability(index)) >= (8, 9)


def requested_speed(value: str) -> str:
    forced = os.environ.get("ZITDESK_SPEED", "").strip().lower()
    return forced if forced in SPEEDS else value


def plan_speed(request, device: str) -> SpeedPlan:
    """The plan for ``request`` on ``device`` (see the module doc)."""
    speed = requested_speed(getattr(request, "speed", "auto"))
    mode = request.memory_mode
    cuda = device.startswith("cuda")
    notes: list[str] = []
    want_compile = bool(request.compile) or speed in ("auto", "fp8")
    compile_ = False
    if want_compile and cuda and mode in RESIDENT:
        if has_triton():
            compile_ = True
        else:
            notes.append(
                "Triton is not installed, so images are made without compilation (slower); "
                "install triton (triton-windows on Windows) to speed them up."
            )
    want_fp8 = speed == "fp8" or (speed == "auto" and mode is MemoryMode.FP8)
    fp8 = False
    if want_fp8 and cuda and mode in RESIDENT and fp8_capable(device):
        fp8 = True
    elif speed == "fp8":
        notes.append(
            "fp8 compute needs an NVIDIA GPU with fp8 tensor cores (RTX 40xx, Hopper or newer) in "
            "a resident memory mode; computing in bf16 instead."
        )
    return SpeedPlan(compile=compile_, fp8_compute=fp8, notes=tuple(notes))


# -- compile ----------------------------------------------------------------------------------

# Cache locations the user chose (set before this module was imported, i.e. before any compile).
_USER_CACHE_VARS = {v for v in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR") if v in os.environ}


def compile_cache_dir(device: str) -> Path:
    """The app-cache folder for compiled artefacts of this torch build and GPU."""
    import torch

    from zitdesk.io import user_dirs

    gpu = "cpu"
    if device.startswith("cuda") and torch.cuda.is_available():
        index = torch.device(device).index or 0
        major, minor = torch.cuda.get_device_capability(index)
        gpu = f"{torch.cuda.get_device_name(index)}-sm{major}{minor}"
    name = re.sub(r"[^A-Za-z0-9._+-]+", "_", f"torch{torch.__version__}-{gpu}")
    return user_dirs()["cache"] / "compile" / name


def use_compile_cache(device: str) -> Path:
    """Point inductor's and Triton's caches at :func:`compile_cache_dir` (unless the user set
    them before the app started: torch itself writes its default into the environment) and turn
    on the FX-graph and AOT caches, so a restarted app reuses compiled code."""
    root = compile_cache_dir(device)
    root.mkdir(parents=True, exist_ok=True)
    for var, sub in (("TORCHINDUCTOR_CACHE_DIR", "inductor"), ("TRITON_CACHE_DIR", "triton")):
        if var not in _USER_CACHE_VARS:
            os.environ[var] = str(root / sub)
    try:
        import torch._inductor.config as iconf

        iconf.fx_graph_cache = True
        if hasattr(iconf, "autotune_local_cache"):
            iconf.autotune_local_cache = True
        import torch._functorch.config as fconf

        if hasattr(fconf, "enable_autograd_cache"):
            fconf.enable_autograd_cache = True
    except Exception:  # noqa: BLE001 - caching is an optimisation only
        log.exception("could not enable the compile caches")
    return root


def compile_dit(pipe, device: str, fullgraph: bool = False) -> str:
    """Regional compile of the repeated DiT blocks, with the persistent cache; CPU: skipped.

    ``fullgraph=False``: the same code as diffusers' ``fullgraph=True`` knob when a block has no
    graph break, and still compiles when a LoRA stack adds one."""
    if not device.startswith("cuda"):
        return "compile skipped on CPU"
    import torch

    use_compile_cache(device)
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 16)
    pipe.transformer.compile_repeated_blocks(fullgraph=fullgraph, dynamic=False)
    return "DiT blocks compiled (the first image of a size takes longer)"


def is_compiled(module) -> bool:
    return any(getattr(m, "_compiled_call_impl", None) is not None for m in module.modules())


def uncompile(module) -> None:
    """Undo ``Module.compile`` on ``module`` and its children (training takes the eager model)."""
    for m in module.modules():
        if getattr(m, "_compiled_call_impl", None) is not None:
            m._compiled_call_impl = None


def set_fast_attention(pipe, device: str) -> str:
    """cuDNN's fused attention on Hopper and newer when ``ZITDESK_ATTENTION=cudnn`` (PyTorch
    reports it faster than flash-attention 2 there; not measured here yet, so not the default);
    else diffusers' default SDPA. Returns a note ("" when nothing changed)."""
    if not device.startswith("cuda") or os.environ.get("ZITDESK_ATTENTION", "") != "cudnn":
        return ""
    import torch

    index = torch.device(device).index or 0
    if torch.cuda.get_device_capability(index)[0] < 9:
        return ""
    setter = getattr(pipe.transformer, "set_attention_backend", None)
    if setter is None:
        return ""
    try:
        setter("_native_cudnn")
        return "cuDNN attention"
    except Exception:  # noqa: BLE001 - keep the default backend
        log.info("cuDNN attention unavailable", exc_info=True)
        return ""


# -- fp8 compute ------------------------------------------------------------------------------


def quantize_rows(t, dim: int = 1):
    """fp8 e4m3 values and float32 scales (one per row along ``dim``) with ``t ≈ q * scale``."""
    import torch

    amax = t.detach().abs().amax(dim=dim, keepdim=True).float().clamp_(min=1e-12)
    scale = amax / F8_MAX
    q = (t.float() / scale).clamp_(-F8_MAX, F8_MAX).to(torch.float8_e4m3fn)
    return q.contiguous(), scale


def fp8_matmul(x2, wq, w_scale, out_dtype):
    """``x2 @ (wq * w_scale[:, None]).T`` for 2-D ``x2`` (M, K) through ``torch._scaled_mm``:
    ``x2`` is quantised per row; ``wq`` is (N, K) fp8, ``w_scale`` (N,) float32."""
    import torch

    xq, scale_a = quantize_rows(x2)
    return torch._scaled_mm(
        xq, wq.t(), scale_a=scale_a, scale_b=w_scale.view(1, -1), out_dtype=out_dtype
    )


def _fp8_linear_cls():
    import torch
    import torch.nn.functional as F  # noqa: N812

    class Fp8Linear(torch.nn.Linear):
        """nn.Linear with an fp8 e4m3 weight and a float32 scale per output row.

        CUDA with fp8 tensor cores: activations are scaled per row to fp8 and multiplied by
        ``torch._scaled_mm`` (row-wise scales, output in the input's dtype). Elsewhere the
        dequantised weight is used. It stays an ``nn.Linear`` so PEFT wraps it for LoRAs.
        """

        weight_scale: torch.Tensor

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            w = self.weight
            if x.is_cuda and x.dtype in (torch.bfloat16, torch.float16):
                shape = x.shape
                y = fp8_matmul(x.reshape(-1, shape[-1]), w, self.weight_scale, x.dtype)
                if self.bias is not None:
                    y = y + self.bias
                return y.reshape(*shape[:-1], y.shape[-1])
            wd = w.to(x.dtype) * self.weight_scale.to(x.dtype)[:, None]
            return F.linear(x, wd, self.bias)

    return Fp8Linear


_FP8_CLS: Any = None


def fp8_linear_class():
    global _FP8_CLS
    if _FP8_CLS is None:
        _FP8_CLS = _fp8_linear_cls()
    return _FP8_CLS


FP8_PARTS = ("attention.", "feed_forward.")
BLOCK_LISTS = ("noise_refiner", "context_refiner", "layers")


def to_fp8_linears(transformer, device: str | None = None) -> int:
    """Turn the attention and feed-forward linears of the DiT blocks into :class:`Fp8Linear`
    (in place; each weight is quantised on ``device``, then stays there). Returns how many."""
    import torch

    cls = fp8_linear_class()
    n = 0
    with torch.no_grad():
        for list_name in BLOCK_LISTS:
            blocks = getattr(transformer, list_name, None)
            if blocks is None:
                continue
            for name, m in blocks.named_modules():
                if type(m) is not torch.nn.Linear or not any(p in name for p in FP8_PARTS):
                    continue
                if m.in_features % 16 or m.out_features % 16:
                    continue
                q, scale = quantize_rows(m.weight.detach().to(device or m.weight.device))
                m.weight = torch.nn.Parameter(q, requires_grad=False)
                m.register_buffer("weight_scale", scale.view(-1).contiguous(), persistent=False)
                if m.bias is not None and device:
                    m.bias.data = m.bias.data.to(device)
                m.__class__ = cls
                n += 1
    return n


# -- prompt embeddings ------------------------------------------------------------------------


class EmbeddingCache:
    """An LRU of prompt embeddings in RAM (or where the encoder left them), so re-rolling seeds or
    going back to an earlier prompt never runs the text encoder again."""

    def __init__(self, max_entries: int = 32) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[tuple, Any] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple) -> Any | None:
        if key in self._items:
            self._items.move_to_end(key)
            self.hits += 1
            return self._items[key]
        self.misses += 1
        return None

    def put(self, key: tuple, value: Any) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: tuple) -> bool:
        return key in self._items


# -- previews ---------------------------------------------------------------------------------


class AsyncPreview:
    """Latent → RGB previews without stalling the GPU queue.

    On CUDA the projection runs on the GPU and the small uint8 result is copied to pinned memory
    with an event; :meth:`ready` hands it over once the event has passed (a step or so later), so
    the step loop never waits for the device. On a CPU the preview is computed at once.
    """

    def __init__(self, coef) -> None:
        self.coef = coef
        self._dev_coef: Any = None
        self._pending: Any = None  # (event, host tensor)

    def submit(self, latents) -> Any | None:
        """Start a preview of ``latents``; returns the array at once on a CPU, else None."""
        import torch

        if not latents.is_cuda:
            from zitdesk.engine.preview import latents_to_rgb

            return latents_to_rgb(latents, self.coef)
        if self._pending is not None:
            return None  # one in flight is enough
        z = latents.detach()
        if z.ndim == 5:
            z = z[:, :, 0]
        if z.ndim == 4:
            z = z[0]
        c = z.shape[0]
        if self._dev_coef is None or self._dev_coef.device != z.device:
            self._dev_coef = torch.as_tensor(self.coef, device=z.device, dtype=torch.float32)
        rgb = torch.einsum("chw,ck->hwk", z.float(), self._dev_coef[:c]) + self._dev_coef[c]
        img = (rgb.clamp_(0, 1) * 255).to(torch.uint8)
        host = torch.empty(img.shape, dtype=torch.uint8, pin_memory=True)
        host.copy_(img, non_blocking=True)
        ev = torch.cuda.Event()
        ev.record(torch.cuda.current_stream(z.device))  # the stream the copy went on
        self._pending = (ev, host)
        return None

    def ready(self, wait: bool = False) -> Any | None:
        """The finished preview as a (h, w, 3) uint8 array, or None while it is in flight."""
        if self._pending is None:
            return None
        ev, host = self._pending
        if not wait and not ev.query():
            return None
        ev.synchronize()
        self._pending = None
        return host.numpy().copy()


# -- PNG writer -------------------------------------------------------------------------------


class ImageWriter:
    """One background thread that encodes and fsyncs PNGs while the GPU makes the next image.

    :meth:`submit` returns a future of the written path; the engine emits ``ImageReady`` when
    it is done (on the engine thread) and waits for all of them before the job ends.
    """

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def submit(self, fn: Callable[[], Path]) -> Future:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="zitdesk-png")
            return self._pool.submit(fn)

    def shutdown(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
