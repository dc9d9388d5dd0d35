"""The loss curve of a run, kept in its output folder as ``losses.csv`` (``step,loss``).

The trainer rewrites it atomically whenever it updates the run record (checkpoints, pause,
resume, the end), so a run opened from the history later draws its curve; a resumed run keeps
the losses up to the step it resumes from. Reading is tolerant: a damaged line is skipped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

from zitdesk.io import atomic_write

LOSSES_NAME = "losses.csv"
MAX_POINTS = 1_000_000  # a run of a million steps; more is a foreign or damaged file


def losses_path(output_dir: str | Path) -> Path:
    return Path(output_dir) / LOSSES_NAME


def write_losses(output_dir: str | Path, points: Iterable[tuple[int, float]]) -> Path:
    """``points`` (step, loss) as ``losses.csv`` in ``output_dir``, atomically."""
    lines = ["step,loss"]
    lines += [f"{int(s)},{float(v)!r}" for s, v in points]
    path = losses_path(output_dir)
    atomic_write(path, "\n".join(lines) + "\n")
    return path


def read_losses(output_dir: str | Path) -> list[tuple[int, float]]:
    """The (step, loss) points of ``losses.csv`` in step order ([] when there is none)."""
    try:
        with open(losses_path(output_dir), encoding="utf-8", errors="replace") as fh:
            text = fh.read(64 * MAX_POINTS)
    except OSError:
        return []
    by_step: dict[int, float] = {}
    for line in text.splitlines()[: MAX_POINTS + 1]:
        step_s, _, loss_s = line.partition(",")
        try:
            step, loss = int(step_s), float(loss_s)
        except ValueError:
            continue  # the header, or a damaged line
        if step >= 0 and math.isfinite(loss):
            by_step[step] = loss
    return sorted(by_step.items())
