"""Which GPU a job needs: the engine's lanes (#19).

The app runs one engine worker per card in use. A *lane* names one: ``""`` is the main lane (the
engine's own device: the first CUDA card, or the CPU), ``"cuda:N"`` (N ≥ 1) another card. Jobs of
one lane run one at a time in the order they were queued; jobs of different lanes run at once, so
a LoRA can train on card 1 while images are made on card 0. A data-parallel training job (two or
more cards) holds the lane of every card it uses. No torch here: the GUI thread asks this.
"""

from __future__ import annotations

from typing import Any

MAIN = ""


def lane_of_device(device: str | None) -> str:
    """``"cuda:N"`` for a named card other than the first, else the main lane (``""``, ``auto``,
    ``cuda``, ``cuda:0``, ``cpu``, ``mps``: the main engine's device)."""
    d = (device or "").strip().lower()
    head, _, index = d.partition(":")
    if head == "cuda" and index.isdigit() and int(index) > 0:
        return f"cuda:{int(index)}"
    return MAIN


def lanes_of(request: Any) -> tuple[str, ...]:
    """The lanes a request holds while it runs (sorted, at least one)."""
    gpus = tuple(getattr(request, "gpus", ()) or ())
    if gpus:
        return tuple(sorted({lane_of_device(f"cuda:{int(g)}") for g in gpus}))
    config = getattr(request, "config", None)  # a TrainSpec: the config names the card
    model = getattr(config, "model", None)
    device = getattr(model, "device", None) if model is not None else None
    if device is None:
        device = getattr(request, "device", "")
    return (lane_of_device(str(device or "")),)


def lane_label(lane: str) -> str:
    """A lane for people: ``"GPU 1"``; the main lane is ``"GPU 0"``."""
    return f"GPU {lane.partition(':')[2]}" if lane else "GPU 0"
