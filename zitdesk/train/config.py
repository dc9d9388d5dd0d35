"""The training configuration: a versioned, frozen dataclass that round-trips through TOML.

A config file looks like this (every key is optional; omitted keys take the defaults below)::

    version = 1
    [model]
    path = "/models/Z-Image-Turbo"
    training_adapter = "/loras/zimage_turbo_training_adapter_v2.safetensors"
    [data]
    folder = "/datasets/my_cat"
    trigger = "mycat"
    [optim]
    steps = 2000
    [save]
    output_dir = "/runs/my_cat"

Loading is tolerant (napari/OneTrainer style): unknown keys are reported as warnings and
dropped, older versions are upgraded by the ordered :data:`MIGRATIONS`, a file from a *newer*
zitdesk is refused with a plain sentence. :meth:`TrainConfig.validate` raises
:class:`~zitdesk.errors.RequestError` for values that cannot work.

:class:`TrainSpec` is the request the engine thread runs (code-style §3): the config plus
``resume`` and a job id.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import typing
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from zitdesk.engine.requests import new_job_id
from zitdesk.errors import RequestError

CONFIG_VERSION = 1

VARIANTS = ("turbo", "deturbo", "base")
ADAPTER_MODES = ("auto", "side", "merge")
PRECISIONS = ("auto", "bf16", "fp32", "fp8", "nf4")
TARGET_GROUPS = ("attention", "feed_forward", "adaln")
OPTIMIZERS = ("adamw", "adamw8bit")
SCHEDULES = ("constant", "cosine", "linear")
TIMESTEP_MODES = ("weighted", "shift", "logit_normal", "uniform_shift", "turbo_anchors")
CHECKPOINTING = ("full", "auto", "off")
LATENT_MODES = ("mode", "sample")


@dataclass(frozen=True)
class ModelSection:
    """The base model and how it is held in memory."""

    path: str = ""  # diffusers folder, HF-cache entry or folder of ComfyUI files
    variant: str = "turbo"  # turbo | deturbo | base: recorded in the LoRA (zitdesk_base_variant)
    training_adapter: str = ""  # LoRA applied while training and removed for samples/output
    adapter_mode: str = "auto"  # auto | side (frozen PEFT adapter) | merge (into base weights)
    # auto = bf16, with fp8 for as many blocks as the card's memory needs (memplan, per block)
    base_precision: str = "auto"  # auto | bf16 | fp32 | fp8 | nf4 (CUDA only)
    device: str = "auto"  # auto | cuda | cuda:N | cpu


@dataclass(frozen=True)
class DataSection:
    """A folder of images with same-name caption files."""

    folder: str = ""
    trigger: str = ""  # replaces "[trigger]" in captions, else is prepended
    caption_ext: str = ".txt"
    resolutions: tuple[int, ...] = (512, 768, 1024)  # one copy of the dataset per resolution
    caption_dropout: float = 0.05  # probability of training a sample on the empty caption
    latent_mode: str = "mode"  # VAE posterior mode (diffusers) or a sample (ai-toolkit)
    cache_dir: str = ""  # "" = the app's cache folder (shared between runs; content-keyed)


@dataclass(frozen=True)
class LoraSection:
    rank: int = 32
    alpha: float = 32.0  # the saved file bakes alpha/rank into lora_B (alpha = rank)
    targets: tuple[str, ...] = ("attention", "feed_forward", "adaln")
    include_refiners: bool = False


@dataclass(frozen=True)
class OptimSection:
    optimizer: str = "adamw"  # adamw | adamw8bit (bitsandbytes, CUDA only)
    learning_rate: float = 1e-4
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    schedule: str = "constant"  # after warm-up: constant | cosine | linear (to 0)
    warmup_steps: int = 0
    grad_clip: float = 1.0  # 0 = off
    batch_size: int = 1
    grad_accum: int = 1
    steps: int = 2000  # optimizer steps
    seed: int = 42


@dataclass(frozen=True)
class TimestepSection:
    mode: str = "weighted"
    shift: float = 3.0  # shift / uniform_shift / turbo_anchors ladder
    anchor_steps: int = 8  # turbo_anchors: the sampler's step count
    jitter: float = 0.02  # turbo_anchors: ± uniform jitter on σ
    differential_guidance: bool = False
    differential_scale: float = 3.0


@dataclass(frozen=True)
class MemorySection:
    preset: str = ""  # the VRAM tier these values came from (informational)
    gradient_checkpointing: str = "full"  # full | auto (as many blocks as VRAM needs) | off
    vram_budget_gb: float = 0.0  # "auto" checkpointing budget; 0 = the GPU's free memory
    compile: bool = False  # torch.compile of the repeated blocks (CUDA only)
    attention_backend: str = ""  # "" = diffusers' default (native SDPA)
    offload_vae: bool = True  # the VAE waits in RAM between sample rounds (0.17 GB of VRAM)


@dataclass(frozen=True)
class SaveSection:
    output_dir: str = ""
    name: str = "lora"
    every: int = 250  # checkpoint + LoRA file every N steps (0 = only at the end)
    keep_last: int = 4  # checkpoints and step files kept
    export_kohya: bool = False  # also write <name>_kohya.safetensors at the end


@dataclass(frozen=True)
class SampleSection:
    every: int = 250  # 0 = never
    prompts: tuple[str, ...] = ()  # "[trigger]" is replaced by the trigger word
    seeds: tuple[int, ...] = (42,)  # cycled over the prompts
    width: int = 0  # 0 = the largest training resolution
    height: int = 0
    steps: int = 8
    guidance: float = 0.0
    shift: float = 3.0
    at_start: bool = False  # also sample before the first step
    vae_tiling: bool = False


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; frozen so it can cross threads and processes."""

    version: int = CONFIG_VERSION
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    lora: LoraSection = field(default_factory=LoraSection)
    optim: OptimSection = field(default_factory=OptimSection)
    timesteps: TimestepSection = field(default_factory=TimestepSection)
    memory: MemorySection = field(default_factory=MemorySection)
    save: SaveSection = field(default_factory=SaveSection)
    sample: SampleSection = field(default_factory=SampleSection)

    # -- conversion ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        def plain(v: Any) -> Any:
            if isinstance(v, tuple):
                return [plain(x) for x in v]
            return v

        out: dict[str, Any] = {"version": self.version}
        for f in fields(self):
            if f.name == "version":
                continue
            sec = getattr(self, f.name)
            out[f.name] = {sf.name: plain(getattr(sec, sf.name)) for sf in fields(sec)}
        return out

    def to_toml(self) -> str:
        import tomli_w

        return tomli_w.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any], warnings: list[str] | None = None) -> TrainConfig:
        """Build from a (possibly old or partial) dict; unknown keys go to ``warnings``."""
        warn = warnings if warnings is not None else []
        data = migrate(dict(data), warn)
        sections: dict[str, Any] = {}
        hints = typing.get_type_hints(cls)
        raw_sample: dict[str, Any] = (
            dict(data["sample"]) if isinstance(data.get("sample"), dict) else {}
        )
        for f in fields(cls):
            if f.name == "version":
                continue
            sec_cls = hints[f.name]
            raw = data.pop(f.name, {}) or {}
            if not isinstance(raw, dict):
                warn.append(f"[{f.name}] should be a table; ignored")
                raw = {}
            sections[f.name] = _section_from_dict(sec_cls, raw, f.name, warn)
        data.pop("version", None)
        for key in data:
            warn.append(f"unknown setting '{key}' ignored")
        sections["sample"] = _variant_sampling(
            sections["model"].variant, sections["sample"], raw_sample
        )
        return cls(version=CONFIG_VERSION, **sections)

    @classmethod
    def from_toml(cls, text: str, warnings: list[str] | None = None) -> TrainConfig:
        try:
            data = tomllib.loads(text.removeprefix("\ufeff"))
        except tomllib.TOMLDecodeError as exc:
            raise RequestError(f"The training config is not valid TOML: {exc}.") from exc
        return cls.from_dict(data, warnings)

    @classmethod
    def load(cls, path: str | Path, warnings: list[str] | None = None) -> TrainConfig:
        p = Path(path)
        try:
            raw = p.read_bytes()
        except OSError as exc:
            from zitdesk.errors import describe_os_error

            raise RequestError(
                f"Cannot read the training config: {describe_os_error(exc, p)}"
            ) from exc
        try:
            text = raw.decode("utf-8-sig")  # a leading UTF-8 BOM (Windows editors) is fine
        except UnicodeDecodeError:
            text = ""
        if not text and raw or "\x00" in text:
            raise RequestError(
                f"The training config {p.name} is not a text file (it holds binary data); give a "
                "TOML file, e.g. one written by 'zitdesk train CONFIG --init'."
            )
        return cls.from_toml(text, warnings)

    def write(self, path: str | Path) -> Path:
        from zitdesk.io import atomic_write

        return atomic_write(path, self.to_toml())

    def with_changes(self, **sections: dict[str, Any]) -> TrainConfig:
        """``cfg.with_changes(optim={"steps": 10})``: a copy with some section fields replaced."""
        new = {name: replace(getattr(self, name), **vals) for name, vals in sections.items()}
        return replace(self, **new)

    # -- checks ---------------------------------------------------------------------------------
    def validate(self) -> TrainConfig:
        """Raise :class:`RequestError` with one plain sentence for the first unusable value."""
        m, d, lo, o, t, s, sm = (
            self.model,
            self.data,
            self.lora,
            self.optim,
            self.timesteps,
            self.save,
            self.sample,
        )
        _check_fields(self)
        if m.base_precision in ("fp16", "float16"):
            raise RequestError("fp16 training overflows and does not learn on Z-Image; use bf16.")
        _choice("model.variant", m.variant, VARIANTS)
        _choice("model.adapter_mode", m.adapter_mode, ADAPTER_MODES)
        _choice("model.base_precision", m.base_precision, PRECISIONS)
        if not m.path:
            raise RequestError("No base model is set (model.path).")
        if not d.folder:
            raise RequestError("No dataset folder is set (data.folder).")
        if not s.output_dir:
            raise RequestError("No output folder is set (save.output_dir).")
        if not d.resolutions or any(r < 64 or r > 2048 or r % 16 for r in d.resolutions):
            raise RequestError("Training resolutions must be multiples of 16 between 64 and 2048.")
        if not 0.0 <= d.caption_dropout < 1.0:
            raise RequestError("Caption dropout must be between 0 and 1.")
        _choice("data.latent_mode", d.latent_mode, LATENT_MODES)
        if not d.caption_ext.startswith("."):
            raise RequestError('data.caption_ext must start with a dot, e.g. ".txt".')
        if not 1 <= lo.rank <= 1024:
            raise RequestError("LoRA rank must be between 1 and 1024 (16–32 is typical).")
        if not (lo.alpha > 0 and math.isfinite(lo.alpha)):
            raise RequestError("LoRA alpha must be a positive number (usually equal to the rank).")
        if not lo.targets or any(x not in TARGET_GROUPS for x in lo.targets):
            raise RequestError(f"lora.targets must be some of {', '.join(TARGET_GROUPS)}.")
        _choice("optim.optimizer", o.optimizer, OPTIMIZERS)
        _choice("optim.schedule", o.schedule, SCHEDULES)
        if not (0 < o.learning_rate < 1):
            raise RequestError("The learning rate must be between 0 and 1 (1e-4 is typical).")
        if o.steps < 1 or o.batch_size < 1 or o.grad_accum < 1 or o.warmup_steps < 0:
            raise RequestError("Steps, batch size and gradient accumulation must be at least 1.")
        if o.grad_clip < 0 or o.weight_decay < 0:
            raise RequestError("Gradient clipping and weight decay cannot be negative.")
        if not 0 <= o.seed < 2**63:
            raise RequestError("The seed must be between 0 and 2^63 − 1.")
        _choice("timesteps.mode", t.mode, TIMESTEP_MODES)
        if t.shift <= 0 or t.anchor_steps < 1 or not 0 <= t.jitter < 0.5:
            raise RequestError(
                "Timestep shift must be positive, anchor steps ≥ 1, jitter in [0, 0.5)."
            )
        _choice("memory.gradient_checkpointing", self.memory.gradient_checkpointing, CHECKPOINTING)
        if s.every < 0 or s.keep_last < 1:
            raise RequestError(
                "save.every cannot be negative and save.keep_last must be at least 1."
            )
        if not s.name or any(c in s.name for c in '/\\:*?"<>|'):
            raise RequestError("save.name must be a plain file name.")
        if sm.every < 0 or not 1 <= sm.steps <= 200 or sm.guidance < 0 or sm.shift <= 0:
            raise RequestError(
                "Sample settings are out of range (every ≥ 0, 1–200 steps, guidance ≥ 0)."
            )
        for v in (sm.width, sm.height):
            if v and (v % 16 or not 64 <= v <= 2048):
                raise RequestError("Sample width/height must be 0 or a multiple of 16 in 64–2048.")
        if sm.prompts and not sm.seeds:
            raise RequestError("Give at least one sample seed.")
        return self

    def sample_size(self) -> tuple[int, int]:
        side = max(self.data.resolutions)
        return (self.sample.width or side, self.sample.height or side)


#: Fields that fix the shape or meaning of the trained weights: a checkpoint only resumes under a
#: config that agrees on them.
LOCKED_FIELDS = (
    ("model", "variant"),
    ("model", "training_adapter"),
    ("lora", "rank"),
    ("lora", "alpha"),
    ("lora", "targets"),
    ("lora", "include_refiners"),
)
#: Fields that may change on resume (e.g. a lower VRAM preset after running out of memory) but
#: make the continuation differ from an uninterrupted run; the trainer reports them. A changed
#: optimizer starts with fresh moments.
SOFT_FIELDS = (
    ("model", "base_precision"),
    ("optim", "optimizer"),
    ("optim", "batch_size"),
    ("optim", "grad_accum"),
    ("optim", "seed"),
    ("data", "resolutions"),
    ("data", "trigger"),
)


def _differences(a: TrainConfig, b: TrainConfig, names: tuple[tuple[str, str], ...]) -> list[str]:
    out = []
    for sec, name in names:
        va, vb = getattr(getattr(a, sec), name), getattr(getattr(b, sec), name)
        if va != vb:
            out.append(f"{sec}.{name} ({vb!r} in the checkpoint, {va!r} now)")
    return out


def locked_differences(a: TrainConfig, b: TrainConfig) -> list[str]:
    """Locked fields where ``a`` (now) differs from ``b`` (the checkpoint's)."""
    return _differences(a, b, LOCKED_FIELDS)


def soft_differences(a: TrainConfig, b: TrainConfig) -> list[str]:
    return _differences(a, b, SOFT_FIELDS)


@dataclass(frozen=True)
class TrainSpec:
    """One training job for the engine thread: the config, resume flag and job id."""

    config: TrainConfig
    resume: bool = False
    job_id: str = field(default_factory=lambda: new_job_id("train"))
    config_path: str = ""  # where the config came from (shown in messages)
    # Data-parallel (#19): two or more CUDA card numbers train one LoRA in one process per card
    # (torchrun, NCCL, a child run of `zitdesk train --gpus`); ``processes`` > 1 does the same on
    # the CPU (gloo: tests and CPU boxes). Empty / 0: the engine thread trains in-process on
    # ``config.model.device``.
    gpus: tuple[int, ...] = ()
    processes: int = 0

    @property
    def data_parallel(self) -> bool:
        return len(self.gpus) > 1 or self.processes > 1


# ----------------------------------------------------------------------------------------------
# Migrations
# ----------------------------------------------------------------------------------------------


def _v0_to_v1(data: dict[str, Any], warn: list[str]) -> dict[str, Any]:
    """Version 0 = an unversioned file, possibly flat (``rank = 16`` at the top level).

    Flat keys are moved into the section that owns a field of that name; a few spellings used by
    other trainers are accepted (``lr``, ``network_dim``, ``network_alpha``, ``max_train_steps``).
    """
    aliases = {
        "lr": ("optim", "learning_rate"),
        "network_dim": ("lora", "rank"),
        "network_alpha": ("lora", "alpha"),
        "max_train_steps": ("optim", "steps"),
        "train_batch_size": ("optim", "batch_size"),
        "output_name": ("save", "name"),
        "dataset": ("data", "folder"),
        "pretrained_model": ("model", "path"),
    }
    owners: dict[str, str] = {}
    hints = typing.get_type_hints(TrainConfig)
    for f in fields(TrainConfig):
        if f.name != "version":
            for sf in fields(hints[f.name]):
                owners.setdefault(sf.name, f.name)
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.setdefault(key, {}).update(value)
            continue
        if key in aliases:
            sec, name = aliases[key]
        elif key in owners:
            sec, name = owners[key], key
        else:
            out[key] = value
            continue
        out.setdefault(sec, {})[name] = value
    out["version"] = 1
    return out


#: ``MIGRATIONS[n]`` upgrades a version-``n`` dict to version ``n + 1``; applied in order.
MIGRATIONS: dict[int, Callable[[dict[str, Any], list[str]], dict[str, Any]]] = {0: _v0_to_v1}


def migrate(data: dict[str, Any], warn: list[str]) -> dict[str, Any]:
    version = data.get("version", 0)
    if not isinstance(version, int) or version < 0:
        raise RequestError("The training config has an invalid 'version'.")
    if version > CONFIG_VERSION:
        raise RequestError(
            f"This training config was written by a newer zitdesk (version {version}); "
            "update zitdesk."
        )
    while version < CONFIG_VERSION:
        data = MIGRATIONS[version](data, warn)
        version += 1
        data["version"] = version
    return data


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise RequestError(f"{name} = {value!r} is not one of {', '.join(allowed)}.")


_LIST_OF = {int: "whole numbers", float: "numbers"}
_LIST_EXAMPLE = {
    "data.resolutions": "[512, 768]",
    "sample.seeds": "[42, 7]",
    "optim.betas": "[0.9, 0.999]",
}


def _coerce(value: Any, typ: Any, where: str) -> Any:
    origin = typing.get_origin(typ)
    if origin is tuple:
        args = typing.get_args(typ)
        if isinstance(value, str) and args and args[0] is not str:
            raise TypeError(
                f"{where} should be a list of {_LIST_OF.get(args[0], 'values')} like "
                f"{_LIST_EXAMPLE.get(where, '[1, 2]')}"
            )
        if isinstance(value, (str, int, float)):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{where} should be a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], where) for v in value)
        if len(value) != len(args):
            raise TypeError(f"{where} should have {len(args)} values")
        return tuple(_coerce(v, a, where) for v, a in zip(value, args, strict=True))
    if typ is bool:
        if isinstance(value, bool):
            return value
        raise TypeError(f"{where} should be true or false")
    if typ is int:
        if isinstance(value, bool):
            raise TypeError(f"{where} should be a whole number")
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, int):
            return value
        raise TypeError(f"{where} should be a whole number")
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{where} should be a number")
        return float(value)
    if typ is str:
        if not isinstance(value, str):
            raise TypeError(f"{where} should be text")
        return value
    return value


def _section_from_dict(sec_cls: type, raw: dict[str, Any], name: str, warn: list[str]) -> Any:
    hints = typing.get_type_hints(sec_cls)
    known = {f.name for f in dataclasses.fields(sec_cls)}
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            warn.append(f"unknown setting '{name}.{key}' ignored")
            continue
        try:
            kwargs[key] = _coerce(value, hints[key], f"{name}.{key}")
        except TypeError as exc:
            raise RequestError(f"In the training config, {exc}.") from None
    return sec_cls(**kwargs)


# Upper bounds of TrainConfig.validate(): far above any real run, low enough that a typo
# (steps = 1e30) is refused instead of training forever.
MAX_TRAIN_STEPS = 1_000_000
# (Fields that validate() checks with their own sentence — rank, learning rate, caption dropout,
# resolutions, sample size and steps — are not repeated here.)
_RANGES: dict[str, tuple[float, float, bool]] = {  # field → (low, high, low is exclusive)
    "lora.alpha": (0.0, 65536.0, True),
    "optim.weight_decay": (0.0, 10.0, False),
    "optim.betas": (0.0, 0.999999, False),
    "optim.eps": (0.0, 0.1, True),
    "optim.warmup_steps": (0, MAX_TRAIN_STEPS, False),
    "optim.grad_clip": (0.0, 1e6, False),
    "optim.batch_size": (1, 64, False),
    "optim.grad_accum": (1, 1024, False),
    "optim.steps": (1, MAX_TRAIN_STEPS, False),
    "optim.seed": (0, 2**63 - 1, False),
    "timesteps.shift": (0.0, 100.0, True),
    "timesteps.anchor_steps": (1, 200, False),
    "timesteps.jitter": (0.0, 0.499, False),
    "timesteps.differential_scale": (0.0, 100.0, False),
    "memory.vram_budget_gb": (0.0, 4096.0, False),
    "save.every": (0, MAX_TRAIN_STEPS, False),
    "save.keep_last": (1, 1000, False),
    "sample.every": (0, MAX_TRAIN_STEPS, False),
    "sample.seeds": (0, 2**63 - 1, False),
    "sample.guidance": (0.0, 100.0, False),
    "sample.shift": (0.0, 100.0, True),
}


def _check_value(where: str, value: Any, typ: Any) -> None:
    if typing.get_origin(typ) is tuple:
        args = typing.get_args(typ)
        if not isinstance(value, tuple):
            raise RequestError(
                f"{where} should be a list, e.g. [{'512, 768' if where == 'data.resolutions' else '…'}]."
            )
        items = (
            list(zip(value, [args[0]] * len(value), strict=True))
            if args[-1] is Ellipsis
            else list(zip(value, args, strict=False))
        )
        for v, t in items:
            _check_value(where, v, t)
        return
    if typ is bool and not isinstance(value, bool):
        raise RequestError(f"{where} should be true or false.")
    if typ is str and not isinstance(value, str):
        raise RequestError(f"{where} should be text.")
    if typ is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise RequestError(f"{where} should be a whole number.")
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RequestError(f"{where} should be a number.")
        if not math.isfinite(value):
            raise RequestError(f"{where} should be a finite number, not {value}.")
    if where in _RANGES and typ in (int, float):
        lo, hi, open_low = _RANGES[where]
        if value < lo or value > hi or (open_low and value == lo):
            low = f"above {_fmt(lo)}" if open_low else f"at least {_fmt(lo)}"
            raise RequestError(
                f"{where} = {_fmt(value)} is out of range; it should be {low} and at most {_fmt(hi)}."
            )


def _fmt(x: float) -> str:
    return f"{x:,}" if isinstance(x, int) and abs(x) < 10**12 else f"{x:g}"


def _check_fields(cfg: TrainConfig) -> None:
    """Every field has its declared type, every number is finite and within :data:`_RANGES`."""
    hints = typing.get_type_hints(TrainConfig)
    for f in fields(TrainConfig):
        if f.name == "version":
            continue
        sec = getattr(cfg, f.name)
        sec_hints = typing.get_type_hints(hints[f.name])
        for sf in fields(sec):
            _check_value(f"{f.name}.{sf.name}", getattr(sec, sf.name), sec_hints[sf.name])
    from zitdesk.engine.requests import check_device

    check_device(cfg.model.device)


def _variant_sampling(variant: str, sample: SampleSection, raw: dict[str, Any]) -> SampleSection:
    """Samples of a Base / De-Turbo run use that variant's sampling (steps, guidance, shift;
    ``zitdesk.models.variants.DEFAULTS``) unless the file sets them."""
    if variant == "turbo":
        return sample
    from zitdesk.models.variants import defaults_for

    d = defaults_for(variant)
    wanted: dict[str, Any] = {"steps": d.steps, "guidance": d.guidance, "shift": d.shift}
    return replace(sample, **{k: v for k, v in wanted.items() if k not in raw})
