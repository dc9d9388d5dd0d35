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


def cards_label(lanes: tuple[str, ...]) -> str:
    """Lanes for people: ``"GPU 1"``, ``"GPUs 0 + 1"``."""
    if len(lanes) == 1:
        return lane_label(lanes[0])
    return "GPUs " + " + ".join(lane_label(k).removeprefix("GPU ") for k in lanes)


def where_label(spec: Any) -> str:
    """Where a training spec runs: ``"GPU 1"``, ``"GPUs 0 + 1"``, ``"2 CPU processes"``, or
    ``""`` for the engine's own device."""
    if getattr(spec, "gpus", ()):
        return cards_label(lanes_of(spec))
    processes = int(getattr(spec, "processes", 0) or 0)
    return f"{processes} CPU processes" if processes > 1 else ""


def on_cards(spec: Any, ids: tuple[int, ...]) -> Any:
    """``spec`` (a TrainSpec) set to train on cards ``ids``: one card trains in-process on
    ``cuda:N`` (the config's device set to it); several are one data-parallel run."""
    from dataclasses import replace

    ids = tuple(int(i) for i in ids)
    config = spec.config
    if len(ids) == 1 and config.model.device != f"cuda:{ids[0]}":
        config = config.with_changes(model={"device": f"cuda:{ids[0]}"})
    return replace(spec, config=config, gpus=ids, processes=0)


def bind_thread(lane: str) -> bool:
    """Make ``lane``'s card the current CUDA device of the calling thread (an engine thread of
    that lane), so anything that says plain ``"cuda"`` (a library's kernels, a compiled graph)
    lands on it. True when bound; False for the main lane, without CUDA, or a card this machine
    does not have (the job's own device check then says so in a sentence). Imports torch."""
    head, _, index = lane.partition(":")
    if head != "cuda" or not index.isdigit():
        return False
    try:
        import torch

        if not torch.cuda.is_available() or int(index) >= torch.cuda.device_count():
            return False
        torch.cuda.set_device(int(index))  # per thread: the other lanes keep theirs
        return True
    except Exception:  # noqa: BLE001 - a broken driver is the job's to report
        return False
