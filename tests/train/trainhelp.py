"""Helpers shared by the trainer tests (config builder, event recorder, job runner)."""

from __future__ import annotations

import os
from pathlib import Path

RED = (220, 30, 30)


def make_dataset(
    folder: Path, n: int = 4, color=RED, size=(64, 64), caption: str = "a photo of [trigger]"
) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", size, color).save(folder / f"img{i}.png")
        (folder / f"img{i}.txt").write_text(caption, encoding="utf-8")
    return folder


def make_config(model: Path, data: Path, out: Path, /, **sections):
    from zitdesk.train.config import TrainConfig

    base = {
        "model": {"path": str(model)},
        "data": {
            "folder": str(data),
            "trigger": "zxq",
            "resolutions": (64,),
            "caption_dropout": 0.0,
            "cache_dir": str(out.parent / (out.name + "-cache")),
        },
        "lora": {"rank": 8, "alpha": 8.0},
        "optim": {"steps": 6, "learning_rate": 3e-3, "seed": 7},
        "timesteps": {"mode": "shift"},
        "memory": {"gradient_checkpointing": "off"},
        "save": {"output_dir": str(out), "every": 0, "keep_last": 2},
        "sample": {"every": 0},
    }
    for name, vals in sections.items():
        base[name] = {**base.get(name, {}), **vals}
    return TrainConfig().with_changes(**base)


class Recorder:
    """Collects emitted events; ``of(Type)`` filters them."""

    def __init__(self, on_event=None) -> None:
        self.events: list = []
        self.on_event = on_event

    def __call__(self, ev) -> None:
        self.events.append(ev)
        if self.on_event is not None:
            self.on_event(ev)

    def of(self, cls) -> list:
        return [e for e in self.events if isinstance(e, cls)]

    @property
    def last(self):
        return self.events[-1]


def long_run_config(model: Path, data: Path, out: Path):
    """A run far longer than any test lets it go (5000 steps, a checkpoint every 2): for tests
    that stop it part-way (cancel, a killed process) and resume."""
    return make_config(
        model,
        data,
        out,
        optim={"steps": 5000, "batch_size": 1, "schedule": "constant"},
        save={"every": 2, "keep_last": 2},
    )


def run_job(cfg, resume: bool = False, cancel=None, on_event=None) -> Recorder:
    from zitdesk.engine.cancel import CancelToken
    from zitdesk.engine.events import JobFailed
    from zitdesk.train.config import TrainSpec
    from zitdesk.train.trainer import Trainer

    rec = Recorder(on_event)
    Trainer(device="cpu").run(TrainSpec(cfg, resume=resume), rec, cancel or CancelToken())
    if isinstance(rec.last, JobFailed) and os.environ.get("ZITDESK_DEBUG"):
        print(rec.last.traceback)
    return rec
