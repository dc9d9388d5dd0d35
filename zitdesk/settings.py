"""App settings: a versioned dataclass stored as JSON in the platform config folder.

Qt-free. ``QSettings`` holds only window geometry and splitter state (see ``ui/state.py``); every
user choice that matters lives here.

Loading is tolerant (after napari's settings): a file that cannot be parsed, or that holds values
of the wrong type, is copied to ``settings.json.bak`` untouched, the bad parts fall back to their
defaults, and :func:`load_settings` returns a plain sentence the UI shows once. The settings file is
never wiped. Older files are upgraded by the ordered :data:`MIGRATIONS` (after OneTrainer's
``BaseConfig``): each entry takes the dict of version *n* and returns the dict of version *n + 1*.

Writes go through :func:`zitdesk.io.atomic_write`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from zitdesk.engine.requests import MAX_SIDE, MIN_SIDE, MemoryMode
from zitdesk.io import atomic_write, keep_backup, user_dirs

log = logging.getLogger(__name__)

CURRENT_VERSION = 1
SETTINGS_FILE = "settings.json"
SEED_MODES = ("random", "fixed", "reuse")


@dataclass
class AppSettings:
    """Every persistent user choice. Add fields with defaults; bump the version only to migrate."""

    version: int = CURRENT_VERSION
    # Model: a diffusers folder, an HF-cache folder, a ComfyUI models tree or a folder of files.
    model_path: str = ""
    # The three ComfyUI files when chosen one by one (role → path); informational for the UI.
    model_files: dict[str, str] = field(default_factory=dict)
    extra_model_roots: list[str] = field(default_factory=list)
    output_dir: str = ""  # "" → zitdesk.io.default_output_dir()
    # Generate defaults (the form's last state)
    width: int = 1024
    height: int = 1024
    steps: int = 8
    seed_mode: str = "random"  # random | fixed | reuse
    seed: int = 0
    image_count: int = 1
    memory_mode: str = MemoryMode.GPU.value
    vae_tiling: bool = False
    unload_text_encoder: bool = False
    # Compile / fp8 compute where the GPU has them (GenerateRequest.speed "auto"); off: eager.
    fast_generation: bool = True
    guidance: float = 0.0
    shift: float = 3.0
    preview_every: int = 1
    last_lora_dir: str = ""
    strip_metadata: bool = False  # save images without parameters (nothing to share)
    generate_device: str = ""  # the card images are made on, "cuda:N" ("" = the default; #19)
    train_gpus: str = ""  # the Train tab's "Train on": "1" (one card) or "0,1" (data-parallel)
    # The form's last text and LoRA stack, restored on start. A LoRA is "weight<TAB>on<TAB>path".
    last_prompt: str = ""
    last_negative: str = ""
    last_loras: list[str] = field(default_factory=list)
    history_limit: int = 500
    # Auto-captioning (#18): the chosen WD tagger folder and vision-language model folder.
    caption_tagger_path: str = ""
    caption_vlm_path: str = ""
    # Z-Image variant per model path when the files do not say (zitdesk.models.variants):
    # model path → turbo | base | deturbo; and "fast Base": a distillation LoRA for Base.
    model_variants: dict[str, str] = field(default_factory=dict)
    fast_base_lora: str = ""
    fast_base_weight: float = 1.0
    fast_base_steps: int = 8

    @property
    def model_configured(self) -> bool:
        return bool(self.model_path.strip())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- validation ----------------------------------------------------------------------------------


def _check(name: str, value: Any) -> Any:
    """Return ``value`` converted to the field's type, or raise ValueError/TypeError."""
    default = _DEFAULTS[name]
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise TypeError("expected true/false")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("expected a whole number")
        if name in ("width", "height") and not (MIN_SIDE <= value <= MAX_SIDE and value % 16 == 0):
            raise ValueError(f"must be a multiple of 16 between {MIN_SIDE} and {MAX_SIDE}")
        if name == "steps" and not 1 <= value <= 200:
            raise ValueError("must be between 1 and 200")
        if name == "image_count" and not 1 <= value <= 64:
            raise ValueError("must be between 1 and 64")
        if name == "seed" and not 0 <= value < 2**63:
            raise ValueError("out of range")
        if name in ("preview_every", "history_limit") and value < 0:
            raise ValueError("cannot be negative")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError("expected a number")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise TypeError("expected text")
        if name == "memory_mode":
            MemoryMode(value)
        if name == "seed_mode" and value not in SEED_MODES:
            raise ValueError(f"must be one of {', '.join(SEED_MODES)}")
        return value
    if isinstance(default, list):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise TypeError("expected a list of text")
        return list(value)
    if isinstance(default, dict):
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise TypeError("expected a mapping of text")
        return dict(value)
    return value


def _default_of(f) -> Any:
    if f.default is not MISSING:
        return f.default
    return f.default_factory()


_DEFAULTS: dict[str, Any] = {f.name: _default_of(f) for f in fields(AppSettings)}


# -- migrations ----------------------------------------------------------------------------------


def _v0_to_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Pre-release files had no version, a ``model`` key and a ``size`` pair."""
    out = dict(data)
    if "model" in out and "model_path" not in out:
        out["model_path"] = out.pop("model")
    size = out.pop("size", None)
    if isinstance(size, (list, tuple)) and len(size) == 2:
        out.setdefault("width", size[0])
        out.setdefault("height", size[1])
    return out


# MIGRATIONS[n] upgrades a version-n dict to version n + 1; keep the list ordered.
MIGRATIONS: list[Callable[[dict[str, Any]], dict[str, Any]]] = [_v0_to_v1]


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Run every migration from the file's version up to :data:`CURRENT_VERSION`."""
    version = data.get("version", 0)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        version = 0
    while version < CURRENT_VERSION:
        data = MIGRATIONS[version](data)
        version += 1
    data["version"] = version  # a newer file keeps its number; unknown keys are dropped later
    return data


assert len(MIGRATIONS) == CURRENT_VERSION, "one migration per version step"


# -- load / save ---------------------------------------------------------------------------------


def settings_path() -> Path:
    return user_dirs()["config"] / SETTINGS_FILE


def _backup(path: Path) -> Path:
    return keep_backup(path) or path.with_name(path.name + ".bak")


def from_dict(data: dict[str, Any]) -> tuple[AppSettings, list[str]]:
    """Build settings from a (migrated) dict; returns the names of values that were rejected."""
    kwargs: dict[str, Any] = {}
    bad: list[str] = []
    for name in _DEFAULTS:
        if name == "version" or name not in data:
            continue
        try:
            kwargs[name] = _check(name, data[name])
        except (TypeError, ValueError) as exc:
            log.warning("settings: %s=%r rejected (%s); using the default", name, data[name], exc)
            bad.append(name)
    unknown = sorted(set(data) - set(_DEFAULTS))
    if unknown:
        log.info("settings: ignoring unknown keys %s", ", ".join(unknown))
    return AppSettings(**kwargs), bad


def load_settings(path: Path | None = None) -> tuple[AppSettings, str]:
    """Load settings; never raises. Returns ``(settings, notice)``, notice "" when all was well."""
    path = path or settings_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return AppSettings(), ""
    except OSError as exc:
        return (
            AppSettings(),
            f"Your settings file {path} could not be read ({exc.strerror}); defaults are used.",
        )
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        bak = _backup(path)
        log.warning("settings file %s is damaged: %s", path, exc)
        return AppSettings(), (
            f"Your settings file was damaged and could not be read, so defaults are used. "
            f"The old file was kept as {bak.name} in {bak.parent}."
        )
    newer = isinstance(data.get("version"), int) and data["version"] > CURRENT_VERSION
    data = migrate(data)
    settings, bad = from_dict(data)
    settings.version = CURRENT_VERSION
    if bad or newer:
        bak = _backup(path)
        if newer:
            return settings, (
                "Your settings were written by a newer zitdesk; unknown parts are ignored. "
                f"The original was kept as {bak.name}."
            )
        return settings, (
            f"Some settings had invalid values and were reset to their defaults "
            f"({', '.join(bad)}). "
            f"The original file was kept as {bak.name}."
        )
    return settings, ""


def save_settings(settings: AppSettings, path: Path | None = None) -> Path:
    """Write ``settings`` atomically as indented JSON."""
    path = path or settings_path()
    settings.version = CURRENT_VERSION
    return atomic_write(path, json.dumps(settings.to_dict(), indent=2, ensure_ascii=False) + "\n")
