"""Predict a generation job's peak GPU memory before it runs, and plan an out-of-memory retry.

Qt-free and torch-free. The estimate is a simple sum of the weights a memory mode keeps on the GPU
plus activations that grow with the image's pixel count, from the measurements in
``docs/zimage-engine.md`` §10/§12 (bf16, H100): 8-step 1024² all-on-GPU without the text encoder
peaks at 14.15 GiB, fp8 storage at 8.4 GiB, block streaming at 2.6 GiB. Every finished job's
measured peak (``JobFinished.peak_vram_bytes``, torch's ``max_memory_allocated``) refines later
predictions for the same memory mode: the latest measurement at the same size wins, otherwise the
estimate is scaled by the median measured/estimated ratio of earlier jobs.

Numbers are torch-allocated bytes; :func:`fit_verdict` adds the CUDA context that NVML also counts.
"""

from __future__ import annotations

import functools
import json
import logging
import statistics
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from zitdesk.engine.memory import NEXT_TIER
from zitdesk.engine.requests import MIN_SIDE, GenerateRequest, MemoryMode
from zitdesk.io import atomic_write

log = logging.getLogger(__name__)

GIB = 2**30
DIT_PARAMS = 6_154_908_736
DIT_BYTES = DIT_PARAMS * 2  # bf16 DiT (11.5 GiB)
DEQUANT_WORK = int(0.15 * GIB)  # a packed DiT's largest layer dequantised to bf16 for one forward
TEXT_ENCODER_BYTES = 4_022_468_096 * 2  # bf16 Qwen3-4B (7.5 GiB)
VAE_BYTES = 168_000_000
BLOCK_BYTES = DIT_BYTES // 30  # one of the 30 main DiT layers
CUDA_CONTEXT_BYTES = int(0.5 * GIB)  # counted by NVML, not by torch's allocator
DENOISE_PER_MPIX = 1.2 * GIB  # activations of one DiT forward per megapixel
DECODE_PER_MPIX = 2.4 * GIB  # untiled VAE decode buffers per megapixel (§12: 2.5 GiB at 1024²)
DECODE_TILED = 0.35 * GIB
ENCODE_ACTIVATIONS = 0.3 * GIB  # Qwen3 forward over 512 tokens
MAX_SAMPLES = 24
TIGHT_FRACTION = 0.9

# Short names for buttons and one-line messages (MemoryMode.label is the long form).
MODE_SHORT = {
    MemoryMode.GPU: "everything on GPU",
    MemoryMode.FP8: "fp8 weights",
    MemoryMode.MODEL_OFFLOAD: "model offload",
    MemoryMode.GROUP_OFFLOAD: "block streaming",
    MemoryMode.SEQUENTIAL: "sequential offload",
}


def _mode_key(request: GenerateRequest, dit_format: str = "") -> str:
    """Measurements are only comparable within the same placement: mode, tiling, text encoder,
    and the DiT file's format (a GGUF Q4_K DiT keeps 3.5 GB resident, bf16 11.5 GiB)."""
    from zitdesk.engine.edit.options import CONTROLNET, CONTROLNET_INPAINT, UPSCALE, mode_of

    edit = {UPSCALE: "+tiles", CONTROLNET: "+cn", CONTROLNET_INPAINT: "+cn"}.get(
        mode_of(request), ""
    )
    return (
        f"{request.memory_mode.value}{'+tiled' if request.vae_tiling else ''}"
        f"{'+te-ram' if request.unload_text_encoder else ''}"
        f"{'+' + dit_format if dit_format else ''}{edit}"
    )


def _estimate(request: GenerateRequest, dit_format: str = "") -> int:
    # Edit modes (zitdesk.engine.edit): a tiled upscale works one tile at a time; a ControlNet
    # adds its weights on top.
    from zitdesk.engine.edit.options import controlnet_bytes, work_size

    width, height = work_size(request)
    return estimate_peak(
        width,
        height,
        request.memory_mode,
        request.vae_tiling,
        request.unload_text_encoder,
        dit_format,
    ) + controlnet_bytes(request)


def packed_dit(dit_format: str) -> bool:
    """Whether the DiT file stays quantised on the GPU (GGUF, scaled fp8, nvfp4)."""
    return dit_format.startswith("gguf-") or dit_format in ("fp8-scaled", "nvfp4")


def dit_resident_bytes(mode: MemoryMode, dit_format: str = "") -> int:
    """GPU bytes of the DiT's weights in GPU / fp8 modes for a file of ``dit_format``."""
    if packed_dit(dit_format):
        from zitdesk.models.quant import resident_bytes

        return resident_bytes(DIT_PARAMS, dit_format) + DEQUANT_WORK
    return DIT_BYTES // 2 if mode is MemoryMode.FP8 else DIT_BYTES


def estimate_peak(
    width: int,
    height: int,
    mode: MemoryMode,
    vae_tiling: bool = False,
    unload_text_encoder: bool = False,
    dit_format: str = "",
) -> int:
    """The first-principles estimate in bytes (torch-allocated, no CUDA context).

    ``dit_format`` is the DiT file's format (``FileCheck.quant``): packed files (GGUF, scaled
    fp8, nvfp4) keep their own size resident in the GPU and fp8 modes."""
    mpix = width * height / 1_000_000
    denoise = DENOISE_PER_MPIX * mpix
    decode = DECODE_TILED if vae_tiling else DECODE_PER_MPIX * mpix
    work = max(denoise, decode)
    if mode in (MemoryMode.GPU, MemoryMode.FP8):
        resident = dit_resident_bytes(mode, dit_format) + VAE_BYTES
        # streamed from RAM: two groups of 4 of the 36 Qwen3 blocks on the GPU at a time
        encoder = TEXT_ENCODER_BYTES * 8 // 36 if unload_text_encoder else TEXT_ENCODER_BYTES
        peak = max(
            resident + encoder + ENCODE_ACTIVATIONS,
            resident + work + (0 if unload_text_encoder else TEXT_ENCODER_BYTES),
        )
    elif mode is MemoryMode.MODEL_OFFLOAD:  # one whole model on the GPU at a time
        dit = dit_resident_bytes(MemoryMode.GPU, dit_format)
        peak = max(TEXT_ENCODER_BYTES + ENCODE_ACTIVATIONS, dit + denoise, VAE_BYTES + decode)
    elif mode is MemoryMode.GROUP_OFFLOAD:  # a streamed block plus the one being prefetched
        block = dit_resident_bytes(MemoryMode.GPU, dit_format) // 30
        peak = 2 * block + VAE_BYTES + work
    else:  # SEQUENTIAL: one layer at a time
        peak = BLOCK_BYTES // 4 + work
    return int(peak)


@dataclass(frozen=True)
class Prediction:
    peak_bytes: int
    basis: str  # "estimate" | "measured" | "scaled"
    samples: int = 0  # measurements behind it

    @property
    def describe_basis(self) -> str:
        if self.basis == "measured":
            return "measured on an earlier job of this size"
        if self.basis == "scaled":
            plural = "s" if self.samples != 1 else ""
            return f"estimate corrected by {self.samples} earlier job{plural}"
        return "estimate"


@dataclass(frozen=True)
class FitVerdict:
    level: str  # fits | tight | too_big | unknown
    message: str
    room_bytes: int = 0  # what the job may use on the GPU (0 when unknown)


def fit_verdict(
    prediction: Prediction,
    total_bytes: int | None,
    used_bytes: int = 0,
    own_reserved_bytes: int | None = None,
) -> FitVerdict:
    """Will ``prediction`` fit on a GPU with ``total_bytes`` of which ``used_bytes`` are in use?

    Memory this process already reserved (``own_reserved_bytes``) is reusable by the job, so it
    is not counted as taken; other programs' use is.
    """
    need = (
        f"Next job: about {prediction.peak_bytes / GIB:.1f} GiB of GPU memory "
        f"({prediction.describe_basis})"
    )
    if not total_bytes:
        return FitVerdict(
            "unknown", "No NVIDIA GPU: jobs run on the CPU, which is very slow for the real model."
        )
    context = 0 if own_reserved_bytes is not None else CUDA_CONTEXT_BYTES
    taken = max(used_bytes - (own_reserved_bytes or 0), 0)
    room = max(total_bytes - taken - context, 0)
    free = f"{room / GIB:.1f} GiB free"
    if prediction.peak_bytes > room:
        return FitVerdict(
            "too_big",
            f"{need}; {free} — too much. Choose a lighter memory mode or a smaller size.",
            room,
        )
    if prediction.peak_bytes > TIGHT_FRACTION * room:
        return FitVerdict("tight", f"{need}; {free} — a tight fit.", room)
    return FitVerdict("fits", f"{need}; {free} — fits.", room)


def lighter_mode(
    predictor: MemoryPredictor, request: GenerateRequest, room_bytes: int
) -> tuple[MemoryMode, Prediction] | None:
    """The first lighter memory mode whose predicted peak fits comfortably in ``room_bytes``."""
    mode = NEXT_TIER.get(request.memory_mode)
    while mode is not None:
        pred = predictor.predict(replace(request, memory_mode=mode))
        if pred.peak_bytes <= TIGHT_FRACTION * room_bytes:
            return mode, pred
        mode = NEXT_TIER.get(mode)
    return None


class MemoryPredictor:
    """Estimates refined by measured peaks; persisted as JSON (``load`` / ``save``)."""

    def __init__(self, samples: dict[str, list[dict[str, Any]]] | None = None) -> None:
        # mode key → [{"w", "h", "peak", "est"}], newest last
        self._samples: dict[str, list[dict[str, Any]]] = samples or {}
        # The active DiT file's format (FileCheck.quant); set by whoever chose the model.
        self.dit_format = ""

    def _format(self, request: GenerateRequest, dit_format: str | None) -> str:
        if dit_format is not None:
            return dit_format
        return self.dit_format or model_dit_format(request.model_path)

    def predict(self, request: GenerateRequest, dit_format: str | None = None) -> Prediction:
        fmt = self._format(request, dit_format)
        est = _estimate(request, fmt)
        samples = self._samples.get(_mode_key(request, fmt), [])
        if not samples:
            return Prediction(est, "estimate")
        for s in reversed(samples):
            if s["w"] == request.width and s["h"] == request.height:
                return Prediction(int(s["peak"]), "measured", 1)
        ratio = statistics.median(s["peak"] / s["est"] for s in samples if s["est"] > 0)
        return Prediction(int(est * ratio), "scaled", len(samples))

    def record(
        self, request: GenerateRequest, peak_bytes: int, dit_format: str | None = None
    ) -> None:
        """Remember a finished job's measured peak (ignored when 0, i.e. on the CPU)."""
        if peak_bytes <= 0:
            return
        fmt = self._format(request, dit_format)
        est = _estimate(request, fmt)
        key = _mode_key(request, fmt)
        rows = self._samples.setdefault(key, [])
        rows.append({"w": request.width, "h": request.height, "peak": int(peak_bytes), "est": est})
        del rows[:-MAX_SAMPLES]

    def to_dict(self) -> dict[str, Any]:
        return {"version": 1, "samples": self._samples}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MemoryPredictor:
        good: dict[str, list[dict[str, Any]]] = {}
        for key, rows in (data.get("samples") or {}).items():
            if not isinstance(rows, list):
                continue
            ok = [
                r
                for r in rows
                if isinstance(r, dict)
                and all(isinstance(r.get(k), int) and r[k] > 0 for k in ("w", "h", "peak", "est"))
            ]
            if ok:
                good[str(key)] = ok[-MAX_SAMPLES:]
        return cls(good)

    @classmethod
    def load(cls, path: Path) -> MemoryPredictor:
        """Never raises: a missing or damaged file gives an empty predictor."""
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError, AttributeError) as exc:
            log.warning("ignoring damaged memory history %s: %s", path, exc)
            return cls()

    def save(self, path: Path) -> None:
        atomic_write(path, json.dumps(self.to_dict()))


# -- out-of-memory retry -------------------------------------------------------------------------


def smaller_size(width: int, height: int, factor: float = 0.75) -> tuple[int, int]:
    """Both sides scaled by ``factor``, rounded down to multiples of 16 (at least 64)."""

    def side(v: int) -> int:
        return max(MIN_SIDE, int(v * factor) // 16 * 16)

    return side(width), side(height)


def retry_plan(
    request: GenerateRequest, hint: dict[str, Any]
) -> tuple[GenerateRequest, str] | None:
    """The request one tier down after an OOM, and a plain description of what changes.

    Follows the engine's ``JobFailed.retry_hint`` (memory mode and/or VAE tiling); when the hint
    offers nothing new, the size goes down by a quarter. None when nothing lighter is left.
    """
    changes: dict[str, Any] = {}
    words: list[str] = []
    mode = hint.get("memory_mode")
    if mode:
        try:
            new_mode = MemoryMode(mode)
        except ValueError:
            new_mode = None
        if new_mode is not None and new_mode is not request.memory_mode:
            changes["memory_mode"] = new_mode
            words.append(MODE_SHORT[new_mode])
    if hint.get("vae_tiling") and not request.vae_tiling:
        changes["vae_tiling"] = True
        words.append("VAE tiling")
    if hint.get("unload_text_encoder") and not request.unload_text_encoder:
        changes["unload_text_encoder"] = True
        words.append("text encoder from RAM")
    if not changes:
        w, h = smaller_size(request.width, request.height)
        if (w, h) == (request.width, request.height):
            return None
        changes.update(width=w, height=h)
        words.append(f"{w}×{h}")
    return request.with_changes(**changes), "Retry with " + " + ".join(words)


# -- the placement ladder: one calibrated model for the pre-flight choice and the OOM retry ----

# Fastest first (docs/benchmarks.md: GPU 1.33 s, fp8 1.51 s, block streaming 2.2 s at 1024²;
# streaming the text encoder costs only on a new prompt). (mode, text encoder in RAM, VAE tiling)
LADDER: tuple[tuple[MemoryMode, bool, bool], ...] = (
    (MemoryMode.GPU, False, False),
    (MemoryMode.GPU, True, False),
    (MemoryMode.GPU, True, True),
    (MemoryMode.FP8, True, False),
    (MemoryMode.FP8, True, True),
    (MemoryMode.MODEL_OFFLOAD, False, True),
    (MemoryMode.GROUP_OFFLOAD, True, True),
    (MemoryMode.SEQUENTIAL, True, True),
)


def _rungs(dit_format: str) -> list[tuple[MemoryMode, bool, bool]]:
    # fp8 storage on an already-packed DiT changes nothing (the engine keeps it packed); a GGUF
    # DiT cannot take sequential offload (accelerate cannot move GGUF parameters: measured on an
    # H100, 2026-12-08), so block streaming is its last rung
    gguf = dit_format.startswith("gguf-")
    return [
        r
        for r in LADDER
        if not (packed_dit(dit_format) and r[0] is MemoryMode.FP8)
        and not (gguf and r[0] is MemoryMode.SEQUENTIAL)
    ]


def _placed(request: GenerateRequest, rung: tuple[MemoryMode, bool, bool]) -> GenerateRequest:
    mode, te_ram, tiled = rung
    return replace(request, memory_mode=mode, unload_text_encoder=te_ram, vae_tiling=tiled)


def _rung_of(request: GenerateRequest, rungs: list[tuple[MemoryMode, bool, bool]]) -> int:
    for i, (mode, te_ram, tiled) in enumerate(rungs):
        if (
            mode is request.memory_mode
            and te_ram >= request.unload_text_encoder
            and tiled >= request.vae_tiling
        ):
            return i
    return 0


def first_fit(
    request: GenerateRequest,
    room_bytes: int,
    predictor: MemoryPredictor | None = None,
    dit_format: str | None = None,
    start: int = 0,
    scale: float = 1.0,
) -> tuple[GenerateRequest, Prediction] | None:
    """The fastest placement (from rung ``start``) whose predicted peak × ``scale`` fits
    comfortably in ``room_bytes``; None when even sequential offload does not."""
    pred = predictor or MemoryPredictor()
    fmt = pred.dit_format if dit_format is None else dit_format
    rungs = _rungs(fmt)
    for rung in rungs[start:]:
        cand = _placed(request, rung)
        p = pred.predict(cand, fmt)
        if p.peak_bytes * scale <= TIGHT_FRACTION * room_bytes:
            return cand, p
    return None


def preflight(
    request: GenerateRequest,
    room_bytes: int,
    predictor: MemoryPredictor | None = None,
    dit_format: str | None = None,
) -> GenerateRequest:
    """The request placed on the fastest rung that fits this card (the first attempt)."""
    found = first_fit(request, room_bytes, predictor, dit_format)
    if found:
        return found[0]
    fmt = (predictor or MemoryPredictor()).dit_format if dit_format is None else dit_format
    return _placed(request, _rungs(fmt)[-1])


def after_oom(
    request: GenerateRequest,
    room_bytes: int,
    predictor: MemoryPredictor | None = None,
    dit_format: str | None = None,
) -> dict[str, Any]:
    """The retry hint after ``request`` ran out of memory in ``room_bytes``: the next rung that
    fits once the failed rung's under-estimate is applied to every prediction (the failure shows
    the real peak was above ``room_bytes``). ``{}`` when nothing lighter is left."""
    pred = predictor or MemoryPredictor()
    fmt = pred.dit_format if dit_format is None else dit_format
    rungs = _rungs(fmt)
    at = _rung_of(request, rungs)
    failed = pred.predict(request, fmt).peak_bytes
    scale = max(1.0, room_bytes / failed) if failed > 0 else 1.0
    found = first_fit(request, room_bytes, pred, fmt, start=at + 1, scale=scale)
    if found is None:
        if at + 1 >= len(rungs):
            return {}
        found = (_placed(request, rungs[-1]), pred.predict(_placed(request, rungs[-1]), fmt))
    nxt = found[0]
    return {
        "memory_mode": nxt.memory_mode.value,
        "vae_tiling": nxt.vae_tiling,
        "unload_text_encoder": nxt.unload_text_encoder,
    }


@functools.lru_cache(maxsize=32)
def _model_format(path: str, _stamp: int) -> str:
    from zitdesk.models.discovery import resolve_model

    try:
        return dit_format_of(resolve_model(path))
    except Exception:  # noqa: BLE001 - an unreadable model predicts like bf16
        return ""


def model_dit_format(model_path: str) -> str:
    """The DiT format of the model at ``model_path`` (headers only, cached per path and mtime);
    ``""`` for bf16, diffusers folders, an empty path or an unreadable model."""
    if not model_path:
        return ""
    try:
        stamp = Path(model_path).stat().st_mtime_ns
    except OSError:
        return ""
    return _model_format(str(model_path), stamp)


def dit_format_of(source: Any) -> str:
    """The DiT file's format of a resolved ``ModelSource`` (``""`` for bf16 / diffusers folders)."""
    checks = getattr(source, "checks", None) or {}
    check = checks.get("transformer")
    return str(getattr(check, "quant", "") or "")


def cuda_room_bytes(device: str = "cuda") -> int:
    """What this process may allocate on ``device``: the card's memory times the per-process
    fraction (``set_per_process_memory_fraction``, the caps of the benchmark); 0 without CUDA."""
    try:
        import torch

        if not device.startswith("cuda") or not torch.cuda.is_available():
            return 0
        dev = torch.device(device)
        total = torch.cuda.get_device_properties(dev).total_memory
        get_fraction = getattr(torch.cuda, "get_per_process_memory_fraction", None)
        fraction = float(get_fraction(dev)) if get_fraction is not None else 1.0
        return int(total * min(max(fraction, 0.0), 1.0))
    except Exception:  # noqa: BLE001 - a hint only; never fail the failure path
        return 0


def oom_hint(request: GenerateRequest, device: str, dit_format: str = "") -> dict[str, Any]:
    """The engine's ``retry_hint`` after an OOM: the calibrated ladder's next fitting rung on
    this card (:func:`after_oom`), ``{}`` when the card's room is unknown or nothing is left."""
    room = cuda_room_bytes(device)
    if room <= 0:
        return {}
    return after_oom(request, room, MemoryPredictor(), dit_format)


def _card_class(peak_bytes: int) -> int:
    """The smallest usual card size (GB) with room for ``peak_bytes`` plus the CUDA context."""
    for gb in (6, 8, 10, 12, 16, 20, 24, 32, 48, 80):
        if peak_bytes + CUDA_CONTEXT_BYTES <= TIGHT_FRACTION * gb * GIB:  # "10 GB" = 10 GiB
            return gb
    return 0


#: The mode names of :attr:`MemoryMode.label` without their card sizes (for packed DiT files).
MODE_NAMES = {
    MemoryMode.GPU: "Everything on GPU (fastest, ",
    MemoryMode.MODEL_OFFLOAD: "Model CPU offload (",
    MemoryMode.GROUP_OFFLOAD: "Block streaming from RAM (",
    MemoryMode.SEQUENTIAL: "Sequential offload (slowest, ",
    MemoryMode.FP8: "fp8 weight storage (",
}


def mode_label(
    mode: MemoryMode, dit_format: str = "", unload_text_encoder: bool = False, side: int = 1024
) -> str:
    """The Generate form's name for ``mode`` with the model's DiT file of ``dit_format``.

    A bf16 (or plain fp8) file keeps :attr:`MemoryMode.label` (its card sizes were measured); a
    pre-quantised file (GGUF, scaled fp8, nvfp4) gets the predicted GPU memory at ``side``²
    (:func:`mode_sizes_note` says so), e.g. ``Everything on GPU (fastest, ≈ 6.0 GiB)``; fp8
    storage places such a file like GPU mode (``zitdesk.engine.memory``), so it says so. Short
    enough for the form's column at 1366×768."""
    if not packed_dit(dit_format):
        return mode.label
    from zitdesk.models.quant import quant_label

    if mode is MemoryMode.FP8:
        return f"fp8 weight storage (as GPU for {quant_label(dit_format)})"
    peak = estimate_peak(side, side, mode, False, unload_text_encoder, dit_format)
    return f"{MODE_NAMES[mode]}≈ {peak / GIB:.1f} GiB)"


def mode_sizes_note(dit_format: str, side: int = 1024) -> str:
    """What the sizes in :func:`mode_label` are (``""`` for bf16 files: card sizes)."""
    if not packed_dit(dit_format):
        return ""
    from zitdesk.models.quant import quant_label

    return (
        f"The sizes are the GPU memory predicted at {side}×{side} for this model's "
        f"{quant_label(dit_format)} DiT."
    )


def candidate_line(dit_format: str, file_bytes: int, width: int = 1024, height: int = 1024) -> str:
    """One line for a model chooser: the DiT file's format, size and the GPU memory it needs to
    run without streaming (text encoder in RAM), e.g. ``GGUF Q4_K DiT, 3.4 GB — about 6.0 GiB
    of GPU memory at 1024² (8 GB cards and up)``."""
    from zitdesk.models.quant import quant_label

    peak = estimate_peak(width, height, MemoryMode.GPU, False, True, dit_format)
    fp8 = ""
    if not packed_dit(dit_format):  # bf16 / plain fp8 files run in fp8 storage on smaller cards
        fp8_peak = estimate_peak(width, height, MemoryMode.FP8, False, True, dit_format)
        fp8 = f", {fp8_peak / GIB:.1f} GiB with fp8 storage"
        peak_fp8_card = _card_class(fp8_peak)
    else:
        peak_fp8_card = 0
    card = min(c for c in (_card_class(peak), peak_fp8_card) if c) if _card_class(peak) else 0
    cards = f" ({card} GB cards and up)" if card else ""
    return (
        f"{quant_label(dit_format)} DiT, {file_bytes / 1e9:.1f} GB — about {peak / GIB:.1f} GiB of "
        f"GPU memory at {width}×{height}{fp8}{cards}"
    )
