"""The widget-free parts of the New-run wizard: goal defaults, texts, and the checks it runs on
the thread pool (dataset survey, training adapter, model); see :mod:`ui.train.wizard`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zitdesk.errors import RequestError
from zitdesk.io import user_dirs
from zitdesk.train.presets import PRESETS

DETECT = "detect"
DATASETS_LAST_KEY = "datasets/last_folder"  # ui/datasets/workspace.py SETTINGS_KEY
PAGE_DATASET, PAGE_GOAL, PAGE_HARDWARE = range(3)


@dataclass(frozen=True)
class Goal:
    key: str
    label: str
    blurb: str
    rank: int
    caption_dropout: float
    steps: int
    timestep_mode: str
    prompts: tuple[str, ...]


#: What each goal sets. Sources: zimage-engine.md §13 E ("rank 32 (16–32), alpha = rank …
#: 2000–3000 steps for a character"; OneTrainer's Z-Image presets use rank 16), §13 B (caption
#: dropout 0.05, ai-toolkit's default) and §13 C / docs/training.md (timestep modes).
#:
#: * character: rank 32 and 2000 steps (the §13 E character recipe); ``weighted`` timesteps
#:   (ai-toolkit's Z-Image Turbo default) favour high noise, where identity and shape are decided.
#: * style: rank 16 (a look needs less capacity than a face, and a smaller file); caption dropout
#:   0.10 so the look also comes through from captions without the trigger; ``shift`` (s = 3)
#:   weighs every noise level equally — ``weighted`` halves the low-noise end where brushwork and
#:   texture live; 2500 steps, since styles are usually trained on more, more varied images.
#: * concept (object, outfit, pose): rank 16, dropout 0.05, ``weighted``, 1500 steps (one thing,
#:   less to learn than a whole character).
GOALS: dict[str, Goal] = {
    "character": Goal(
        "character",
        "Character",
        "A person, pet or figure: the same face and body in new scenes, outfits and poses.",
        32,
        0.05,
        2000,
        "weighted",
        ("a photo of [trigger], looking at the camera", "[trigger] walking in a park, full body"),
    ),
    "style": Goal(
        "style",
        "Style",
        "A look — colours, brushwork, lighting, film grain — applied to any subject.",
        16,
        0.10,
        2500,
        "shift",
        (
            "a lighthouse on a cliff at sunset, [trigger] style",
            "a portrait of an old fisherman, [trigger] style",
        ),
    ),
    "concept": Goal(
        "concept",
        "Concept",
        "An object, outfit, pose or idea that the model does not know yet.",
        16,
        0.05,
        1500,
        "weighted",
        ("a photo of [trigger] on a wooden table", "a woman holding [trigger] in a busy market"),
    ),
}

TURBO_EXPLANATION = (
    "Why Turbo needs it: Turbo is a distilled model — it draws in 8 steps because it learned "
    "shortcuts, and plain training undoes them. The adapter is applied while training and "
    "removed afterwards, so your LoRA learns only your subject and Turbo stays fast. Get it once "
    "from Hugging Face: ostris/zimage_turbo_training_adapter "
    "(zimage_turbo_training_adapter_v2.safetensors), then pick the file here."
)
TURBO_WARNING = (
    "Training Turbo without a training adapter: after a few hundred steps, images at 8 steps "
    "usually turn blurry or generic, and the LoRA only works with extra steps and guidance. "
    "Pick the adapter above, or train on the De-Turbo or Base model. (You can still start.)"
)


# --------------------------------------------------------------------------------------------
# Qt-free helpers (run on the thread pool or the GUI thread; no widgets)
# --------------------------------------------------------------------------------------------


def runs_root() -> Path:
    """Default parent folder of new runs: ENGINE's ``zitdesk.train.runs.runs_root()``."""
    try:
        from zitdesk.train.runs import runs_root as engine_runs_root
    except ImportError:  # runs.py not there yet
        return user_dirs()["data"] / "runs"
    return engine_runs_root()


_default_runs_root = runs_root


def app_datasets(root: Path | None = None, last: str | None = None) -> list[Path]:
    """The dataset folders the Datasets tab knows: the last one it opened (``last``; default:
    its QSettings key) and the sub-folders of its root (default ``user data/datasets``)."""
    base = root or (user_dirs()["data"] / "datasets")
    out: list[Path] = []
    if last is None:
        try:
            from PySide6.QtCore import QSettings

            last = str(QSettings().value(DATASETS_LAST_KEY, "") or "")
        except Exception:  # noqa: BLE001 - no settings backend: just the root's folders
            last = ""
    if last and Path(str(last)).is_dir():
        out.append(Path(str(last)))
    if base.is_dir():
        for p in sorted(base.iterdir(), key=lambda q: q.name.lower()):
            if p.is_dir() and not p.name.startswith(".") and p not in out:
                out.append(p)
    return out


def detect_gpu() -> Any:
    from zitdesk.gpu import gpu_readings

    gpus, _err = gpu_readings()
    return gpus[0] if gpus else None


def guess_variant(model_path: str) -> str | None:
    """``turbo`` / ``deturbo`` / ``base`` when the model's name says so, else None."""
    parts = Path(model_path).parts
    hf = [p for p in parts if p.startswith("models--")]  # HF cache: models--Org--Z-Image-Turbo
    name = hf[-1] if hf else (parts[-1] if parts else "")
    from zitdesk.models.variants import variant_from_name  # the one name reader (Generate too)

    return variant_from_name(name)


def safe_name(text: str) -> str:
    from zitdesk.dataset.importer import safe_stem

    return safe_stem(text.strip()) or "lora"


def unique_output(root: Path, name: str) -> Path:
    """``root/name``, or ``root/name-2`` … when that folder already holds something."""
    out = root / name
    n = 2
    while out.exists() and any(out.iterdir()):
        out = root / f"{name}-{n}"
        n += 1
    return out


@dataclass(frozen=True)
class Survey:
    """What the Dataset page shows about a folder."""

    folder: str
    images: int = 0
    captioned: int = 0
    captions: tuple[str, ...] = ()
    report: Any = None  # zitdesk.dataset.check.CheckReport
    #: the training entries' buckets for each preset's resolutions (sorted tuple)
    buckets: dict[tuple[int, ...], list[tuple[int, int]]] = field(default_factory=dict)
    error: str = ""


def scan_survey(folder: str) -> Survey:
    """Images, captions and training buckets of ``folder`` as the trainer sees them (pool
    thread; image headers only, fast). The pre-flight check comes separately."""
    from zitdesk.train.dataset import plan_entries, scan_folder

    try:
        scan = scan_folder(folder)
    except RequestError as exc:
        return Survey(folder, error=str(exc))
    items = list(scan.items)
    buckets = {rs: [e.bucket for e in plan_entries(items, rs)] for rs in _preset_resolutions()}
    return Survey(
        folder,
        images=len(items),
        captioned=scan.captioned,
        captions=tuple(it.caption for it in items),
        buckets=buckets,
    )


def check_report(folder: str, resolutions: tuple[int, ...]) -> Any:
    """The Datasets tab's pre-flight check (``zitdesk.dataset.check``; hashes every image for
    duplicates, so it can take a while on a big folder; pool thread)."""
    from zitdesk.dataset.check import CheckOptions, check_folder

    return check_folder(folder, CheckOptions(resolutions=resolutions))


def survey_folder(folder: str, resolutions: tuple[int, ...]) -> Survey:
    """:func:`scan_survey` with the :func:`check_report` filled in (one call, for scripts)."""
    s = scan_survey(folder)
    return s if s.error else dataclasses.replace(s, report=check_report(folder, resolutions))


def _preset_resolutions() -> set[tuple[int, ...]]:
    return {tuple(sorted(p.changes["data"]["resolutions"])) for p in PRESETS.values()}


def captions_with_trigger(captions: tuple[str, ...], trigger: str) -> int:
    """Captions that already hold ``trigger`` (so training would prepend it a second time)."""
    from zitdesk.dataset.bulk import has_trigger
    from zitdesk.train.dataset import TRIGGER_PLACEHOLDER

    return sum(1 for c in captions if TRIGGER_PLACEHOLDER not in c and has_trigger(c, trigger))


def check_adapter(path: str) -> tuple[bool, str]:
    """``(usable, sentence)`` for a training adapter, as ``zitdesk lora inspect`` reads it."""
    from zitdesk.errors import LoraError
    from zitdesk.lora.inspect import inspect_json

    p = Path(path)
    if not p.is_file():
        return False, f"{p.name or path} does not exist; pick the adapter's .safetensors file."
    try:
        info = inspect_json(p)
    except LoraError as exc:
        return False, str(exc)
    if not info["compatible"]:
        return False, info["message"]
    rank = f", rank {info['rank']}" if info.get("rank") else ""
    return True, f"{info['message'][:-1]}{rank}."


def check_model(path: str) -> tuple[bool, str]:
    from zitdesk.models.discovery import resolve_model

    try:
        src = resolve_model(path)
    except Exception as exc:  # noqa: BLE001 - ModelError or unreadable: one sentence
        return False, str(exc) or f"{path} is not a Z-Image model."
    return src.complete, src.describe()
