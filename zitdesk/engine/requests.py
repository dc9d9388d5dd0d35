"""Frozen request dataclasses the UI and CLI build and the engine only reads."""

from __future__ import annotations

import enum
import itertools
import json
import math
import os
import re
import threading
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from zitdesk.errors import RequestError
from zitdesk.models.tokenizer import DEFAULT_BUDGET

# Z-Image's official resolutions (Tongyi-MAI/Z-Image Space; ComfyUI-ZImageLatent), width × height.
SIZE_PRESETS: dict[str, tuple[int, int]] = {
    "1:1 — 1024×1024": (1024, 1024),
    "9:7 — 1152×896": (1152, 896),
    "7:9 — 896×1152": (896, 1152),
    "4:3 — 1152×864": (1152, 864),
    "3:4 — 864×1152": (864, 1152),
    "3:2 — 1248×832": (1248, 832),
    "2:3 — 832×1248": (832, 1248),
    "16:9 — 1280×720": (1280, 720),
    "9:16 — 720×1280": (720, 1280),
    "21:9 — 1344×576": (1344, 576),
    "9:21 — 576×1344": (576, 1344),
    "1:1 — 1280×1280": (1280, 1280),
    "1:1 — 1536×1536": (1536, 1536),
    "16:9 — 1536×864": (1536, 864),
    "9:16 — 864×1536": (864, 1536),
    "16:9 — 2048×1152": (2048, 1152),
    "9:16 — 1152×2048": (1152, 2048),
}

MAX_SIDE = 2048
MIN_SIDE = 64
TOKEN_BUDGET = DEFAULT_BUDGET  # max_sequence_length, the chat template included (one definition)
SPEEDS = ("auto", "fp8", "off")  # GenerateRequest.speed


class MemoryMode(str, enum.Enum):
    """How the model's weights are placed. Each mode falls back cleanly on a CPU-only machine."""

    GPU = "gpu"  # everything on the GPU (≈ 14 GiB peak for 1024² with the TE freed)
    MODEL_OFFLOAD = "model_offload"  # whole models moved to the GPU when used (accelerate hooks)
    GROUP_OFFLOAD = "group_offload"  # DiT blocks streamed from CPU RAM on a side stream (≈ 3 GiB)
    SEQUENTIAL = "sequential"  # every layer streamed (slowest, smallest)
    FP8 = "fp8"  # DiT weights stored as fp8 e4m3, computed in bf16 (≈ 8.4 GiB)

    @property
    def label(self) -> str:
        return {
            "gpu": "Everything on GPU (fastest, 24 GB)",
            "model_offload": "Model CPU offload (12 GB)",
            "group_offload": "Block streaming from RAM (8 GB)",
            "sequential": "Sequential offload (smallest, slowest)",
            "fp8": "fp8 weight storage (16 GB)",
        }[self.value]


@dataclass(frozen=True)
class LoraSpec:
    """One LoRA in the stack: a file path and its strength."""

    path: str
    weight: float = 1.0
    enabled: bool = True

    def validate(self) -> LoraSpec:
        """RequestError unless the path is text, the weight a finite number in range."""
        if not isinstance(self.path, str) or not self.path:
            raise RequestError("A LoRA in the stack has no file path.")
        name = os.path.basename(self.path)
        w = self.weight
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w):
            raise RequestError(f"The weight of LoRA {name} must be a finite number, e.g. 0.8.")
        if not LORA_WEIGHT_MIN <= w <= LORA_WEIGHT_MAX:
            raise RequestError(
                f"The weight of LoRA {name} is {w:g}; use a weight between {LORA_WEIGHT_MIN:g} and "
                f"{LORA_WEIGHT_MAX:g} (usually 0.5–1.2)."
            )
        if not isinstance(self.enabled, bool):
            raise RequestError(f"LoRA {name}: enabled must be true or false.")
        return self


_job_counter = itertools.count(1)
_job_lock = threading.Lock()


def new_job_id(prefix: str = "job") -> str:
    with _job_lock:
        return f"{prefix}-{next(_job_counter)}"


@dataclass(frozen=True)
class GenerateRequest:
    """Everything one generation job needs. Sizes are validated by :meth:`validate`."""

    prompt: str
    width: int = 1024
    height: int = 1024
    steps: int = 8
    guidance: float = 0.0  # diffusers semantics: CFG on iff > 0 (ComfyUI's "CFG 1" = 0 here)
    shift: float = 3.0
    seed: int = 0
    count: int = 1
    negative_prompt: str = ""
    loras: tuple[LoraSpec, ...] = ()
    memory_mode: MemoryMode = MemoryMode.GPU
    vae_tiling: bool = False
    compile: bool = False  # regional torch.compile of the DiT blocks (CUDA; ≈ 20 s first run)
    # auto: compile and fp8 compute where the hardware has them (zitdesk.engine.speed); fp8: fp8
    # compute in every resident mode; off: eager bf16 (the off switch; ZITDESK_SPEED overrides).
    speed: str = "auto"
    unload_text_encoder: bool = (
        False  # keep Qwen3 in RAM, stream it in to encode (saves ≈ 8 GB VRAM)
    )
    # Variety (Turbo makes different seeds look alike): seeded noise on the prompt embedding,
    # 0 = off, up to 1 (zitdesk.engine.variety). CFG normalisation (Base, with guidance > 0)
    # caps the guided prediction's norm at the positive one's. ``variant`` is what the form was
    # set for (turbo | base | deturbo, "" = not said); it is recorded in the PNG.
    variety: float = 0.0
    cfg_normalization: bool = False
    variant: str = ""
    output_dir: str = ""
    model_path: str = ""  # empty: the configured / discovered model
    preview_every: int = 1  # latent preview every N steps (0 = none)
    write_metadata: bool = True  # False: PNGs without parameters (the "strip metadata" setting)
    # The card this job runs on (#19): "" / "auto" = the engine's own device; "cuda:1", "cpu" …
    device: str = ""
    # Edit modes (zitdesk.engine.edit): image-to-image, inpaint/outpaint, ControlNet, tiled upscale.
    init_image: str = ""  # the picture to start from (img2img, inpaint, upscale)
    strength: float = 0.6  # denoise strength with an init image: 0 keeps it, 1 ignores it
    mask_image: str = ""  # white = repaint (inpaint); needs init_image
    mask_blur: int = 4  # feather of the mask edge in pixels (also where the result is pasted back)
    outpaint: tuple[int, int, int, int] = (0, 0, 0, 0)  # pixels added left, top, right, bottom
    controlnet_path: str = ""  # a Z-Image ControlNet file or folder
    control_image: str = ""  # the picture the ControlNet follows
    control_type: str = "canny"  # how control_image becomes the map: canny, or none (a ready map)
    control_scale: float = 0.75
    control_start: float = 0.0  # fraction of the steps where the ControlNet starts / stops acting
    control_end: float = 1.0
    upscale: float = 1.0  # > 1: tiled img2img of init_image to this many times its size
    upscale_tile: int = 1024  # tile side in pixels
    upscale_overlap: int = 128  # tile overlap in pixels (seams blended across it)
    job_id: str = field(default_factory=new_job_id)

    def validate(self) -> GenerateRequest:
        """Raise :class:`RequestError` with a plain message for any invalid value.

        Every field is checked for its type and a sensible finite range (NaN, infinities,
        negative and huge values, text where a number belongs), here and nowhere else: the CLI,
        the app and replayed parameters all come through this method.
        """
        for name in ("prompt", "negative_prompt", "output_dir", "model_path"):
            if not isinstance(getattr(self, name), str):
                raise RequestError(f"{_LABELS[name]} must be text.")
        for name in ("vae_tiling", "compile", "unload_text_encoder", "write_metadata"):
            if not isinstance(getattr(self, name, False), bool):
                raise RequestError(f"{_LABELS[name]} must be true or false.")
        for name in ("width", "height", "steps", "seed", "count", "preview_every"):
            _whole(name, getattr(self, name))
        if self.speed not in SPEEDS:
            raise RequestError(f"Speed must be one of {', '.join(SPEEDS)}.")
        check_device(self.device)
        for name in ("guidance", "shift"):
            _number(name, getattr(self, name))
        for name, value in (("width", self.width), ("height", self.height)):
            if not MIN_SIDE <= value <= MAX_SIDE:
                raise RequestError(
                    f"{name.capitalize()} must be between {MIN_SIDE} and {MAX_SIDE} pixels."
                )
            if value % 16:
                lower, upper = value // 16 * 16, value // 16 * 16 + 16
                raise RequestError(
                    f"{name.capitalize()} {value} is not a multiple of 16; use {lower} or {upper}."
                )
        if not 1 <= self.steps <= MAX_STEPS:
            raise RequestError(f"Steps must be between 1 and {MAX_STEPS} (Turbo is made for 8).")
        if not 1 <= self.count <= MAX_COUNT:
            raise RequestError(f"Image count must be between 1 and {MAX_COUNT}.")
        if not 0 <= self.guidance <= MAX_GUIDANCE:
            raise RequestError(
                f"Guidance must be between 0 and {MAX_GUIDANCE:g} (0 turns CFG off, as Turbo expects)."
            )
        if not 0 < self.shift <= MAX_SHIFT:
            raise RequestError(f"Shift must be above 0 and at most {MAX_SHIFT:g} (Turbo uses 3).")
        if not 0 <= self.preview_every <= MAX_STEPS:
            raise RequestError(f"Preview every N steps must be between 0 (none) and {MAX_STEPS}.")
        _check_variety(self)
        if not self.prompt.strip():
            raise RequestError("The prompt is empty; describe the image you want.")
        if not 0 <= self.seed < 2**63:
            raise RequestError("Seed must be between 0 and 2^63 − 1.")
        if not isinstance(self.memory_mode, MemoryMode):
            raise RequestError(
                f"Memory mode must be one of {', '.join(m.value for m in MemoryMode)}."
            )
        if not isinstance(self.loras, tuple) or not all(
            isinstance(lo, LoraSpec) for lo in self.loras
        ):
            raise RequestError("The LoRA stack must be a list of LoRA files with weights.")
        if len(self.loras) > MAX_LORAS:
            raise RequestError(f"At most {MAX_LORAS} LoRAs can be stacked.")
        for lo in self.loras:
            lo.validate()
        if (
            self.output_dir
            and os.path.exists(self.output_dir)
            and not os.path.isdir(self.output_dir)
        ):
            raise RequestError(
                f"The output folder {self.output_dir} is a file; choose a folder (or a new name)."
            )
        from zitdesk.engine.edit.options import validate_edit

        validate_edit(self)
        return self

    def with_changes(self, **changes: Any) -> GenerateRequest:
        """A copy with ``changes`` and a fresh job id (for retries and 'reuse parameters')."""
        changes.setdefault("job_id", new_job_id())
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["memory_mode"] = self.memory_mode.value
        d["loras"] = [asdict(lo) for lo in self.loras]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerateRequest:
        """Tolerant: unknown keys are ignored, missing ones take defaults."""
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known and k != "job_id"}
        if "memory_mode" in kwargs:
            try:
                kwargs["memory_mode"] = MemoryMode(kwargs["memory_mode"])
            except ValueError:
                kwargs.pop("memory_mode")
        if "loras" in kwargs:
            kwargs["loras"] = tuple(
                LoraSpec(**{k: v for k, v in lo.items() if k in ("path", "weight", "enabled")})
                for lo in kwargs["loras"] or ()
            )
        if "outpaint" in kwargs:
            pads = kwargs["outpaint"]
            if isinstance(pads, (list, tuple)) and len(pads) == 4:
                kwargs["outpaint"] = tuple(pads)
            else:
                kwargs.pop("outpaint")
        return cls(**kwargs)


# Ranges (GenerateRequest.validate, LoraSpec.validate). Guidance, shift and LoRA weight take the
# bounds of ComfyUI's own nodes (KSampler cfg 0–100, ModelSamplingAuraFlow shift 0–100,
# LoraLoader strength −100–100): every recipe read from a ComfyUI or A1111 image that ComfyUI
# could run replays here, and values beyond them are nonsense, not a style.
MAX_STEPS = 200
MAX_COUNT = 64
MAX_GUIDANCE = 100.0
MAX_SHIFT = 100.0
LORA_WEIGHT_MIN, LORA_WEIGHT_MAX = -100.0, 100.0
MAX_LORAS = 32

_LABELS = {
    "prompt": "The prompt",
    "negative_prompt": "The negative prompt",
    "output_dir": "The output folder",
    "model_path": "The model path",
    "vae_tiling": "VAE tiling",
    "compile": "Compile",
    "unload_text_encoder": "Unload text encoder",
    "write_metadata": "Write metadata",
    "width": "Width",
    "height": "Height",
    "steps": "Steps",
    "seed": "Seed",
    "count": "Image count",
    "preview_every": "Preview every N steps",
    "guidance": "Guidance",
    "variety": "Variety",
    "cfg_normalization": "CFG normalisation",
    "shift": "Shift",
}

_DEVICE_RX = re.compile(r"auto|cpu|cuda|cuda:\d{1,3}|mps")


def check_device(value: str | None) -> str:
    """``auto`` (also for None/empty), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``; else RequestError."""
    if value is None or value == "":
        return "auto"
    text = value.strip().lower() if isinstance(value, str) else value
    if not isinstance(text, str) or not _DEVICE_RX.fullmatch(text):
        raise RequestError(
            f"Device {str(value)[:40]!r} is not known; use auto, cpu, cuda, cuda:N (N = GPU number) "
            "or mps."
        )
    return text


def require_device(value: str | None) -> str:
    """:func:`check_device`, then refuse a device this machine's PyTorch cannot use (imports torch).

    ``cuda`` on a CPU-only PyTorch or without a usable NVIDIA driver, ``cuda:N`` beyond the GPUs
    present, ``mps`` off macOS: one sentence before any model is loaded.
    """
    device = check_device(value)
    if device in ("auto", "cpu"):
        return device
    import torch

    if device.startswith("cuda"):
        if not torch.backends.cuda.is_built():
            raise RequestError(
                f"--device {device}: this PyTorch build has no CUDA support (a CPU-only build); use "
                "--device cpu or auto, or install the CUDA build (see 'zitdesk doctor')."
            )
        if not torch.cuda.is_available():
            raise RequestError(
                f"--device {device}: no usable NVIDIA GPU was found (driver missing or too old); use "
                "--device cpu or auto (see 'zitdesk doctor')."
            )
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise RequestError(
                f"--device {device}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                f"numbered from 0; use --device cuda:0 … cuda:{torch.cuda.device_count() - 1}."
            )
    elif device == "mps" and not torch.backends.mps.is_available():
        raise RequestError(
            "--device mps: Apple's MPS backend is not available here; use --device cpu or auto."
        )
    return device


def _whole(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"{_LABELS[name]} must be a whole number.")


def _number(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RequestError(f"{_LABELS[name]} must be a finite number.")


def _check_variety(request: GenerateRequest) -> None:
    """Variety strength, CFG normalisation and the variant name (see the fields)."""
    _number("variety", request.variety)
    if not 0 <= request.variety <= MAX_VARIETY:
        raise RequestError(
            f"Variety must be between 0 (off) and {MAX_VARIETY:g}; 0.1–0.4 is usually enough."
        )
    if not isinstance(request.cfg_normalization, bool):
        raise RequestError("CFG normalisation must be true or false.")
    if not isinstance(request.variant, str) or request.variant not in ("", *VARIANT_NAMES):
        raise RequestError(
            f"The model variant must be one of {', '.join(VARIANT_NAMES)} (or left empty)."
        )


MAX_VARIETY = 1.0
VARIANT_NAMES = ("turbo", "base", "deturbo")
