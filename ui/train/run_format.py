"""A training run in words, for the run view and the Train overview: durations, file sizes, the
time left counting the sample rounds and checkpoint saves still to come, and the view's texts."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from zitdesk.train.events import TrainStep

GIB = 2**30
CANCEL_TEXT = (
    "Stop this training run?\n\n"
    "zitdesk finishes the current step, then saves a checkpoint and the LoRA as it is now, so "
    "nothing trained so far is lost. You can resume the run later from the Train tab."
)
PAUSE_TIP = "Finish the current step, then wait (the model stays loaded)"
PHASE_NAMES = {
    "loading": "Loading the model",
    "data": "Reading the dataset",
    "caching": "Caching latents and captions",
    "training": "Training",
    "sampling": "Rendering samples",
    "saving": "Saving a checkpoint",
    "resuming": "Resuming",
}
STATE_LABELS = {
    "idle": "",
    "running": "● training",
    "paused": "❚❚ paused",
    "finished": "✓ finished",
    "cancelled": "■ stopped",
    "failed": "✕ failed",
    "interrupted": "interrupted",
}


def fmt_duration(seconds: float) -> str:
    """``"45 s"``, ``"3 min 20 s"``, ``"1 h 05 min"``."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


def fmt_size(n: int) -> str:
    if n >= GIB:
        return f"{n / GIB:.2f} GiB"
    if n >= 2**20:
        return f"{n / 2**20:.1f} MiB"
    return f"{n / 1024:.0f} KiB"


def path_size(path: str | Path) -> int:
    """Bytes of a file, or of the files directly inside a folder (a checkpoint)."""
    p = Path(path)
    try:
        if p.is_dir():
            return sum(f.stat().st_size for f in p.iterdir() if f.is_file())
        return p.stat().st_size
    except OSError:
        return 0


def remaining_events(step: int, total: int, every: int) -> int:
    """How many multiples of ``every`` lie in (step, total) plus the one at the end."""
    if every <= 0 or step >= total:
        return 0
    return (total - 1) // every - step // every


def full_eta(ev: TrainStep, cfg: Any, sample_s: float, save_s: float) -> float:
    """Seconds left including sample rounds and checkpoint saves (see :func:`remaining_events`)."""
    engine_eta = float(getattr(ev, "phase_eta_s", 0.0) or 0.0)
    if engine_eta > 0:
        return engine_eta
    eta = float(ev.eta_s)
    if cfg is None:
        return eta
    n_samples = remaining_events(ev.step, ev.total, cfg.sample.every) if cfg.sample.prompts else 0
    if cfg.sample.prompts and cfg.sample.every and ev.step < ev.total:
        n_samples += 1  # the final round
    n_saves = remaining_events(ev.step, ev.total, cfg.save.every) + (1 if ev.step < ev.total else 0)
    return eta + n_samples * sample_s + n_saves * save_s
