"""Screenshot (#19): generating on GPU 0 while a LoRA trains on GPU 1, at 1366×768.

The window runs over a scripted engine (tests/ui/fakes.py): the training job on card 1 holds its
lane, the generation on the default card runs beside it with live progress; the queue names the
card of each job and the status bar meter shows both cards (fake readings).

    python scripts/lanes_screenshot.py [--out docs/img/generate-while-training-1366.png]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests" / "ui"))

from shotkit import save_png, start_xvfb, stop_xvfb, themed_app, wait_until  # noqa: E402

GIB = 2**30


def two_cards():
    from zitdesk.gpu import GpuReading, MemorySnapshot

    return MemorySnapshot(
        (
            GpuReading(0, "NVIDIA GeForce RTX 4090", int(0.9 * GIB), 24 * GIB, 97, 61, 310.0),
            GpuReading(1, "NVIDIA GeForce RTX 3090", int(19.6 * GIB), 24 * GIB, 99, 70, 330.0),
        ),
        "",
        int(6.1 * GIB),
        23 * GIB,
        64 * GIB,
        None,
        None,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--out", default=str(ROOT / "docs" / "img" / "generate-while-training-1366.png")
    )
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="zit-lanes-shot-"))
    os.environ["ZITDESK_HOME"] = str(home)
    xvfb = start_xvfb()
    try:
        themed_app()
        from fakes import FakeEngine

        from ui.main_window import MainWindow
        from zitdesk.engine.events import JobCancelled, JobStarted
        from zitdesk.models.tiny import save_tiny_model
        from zitdesk.settings import AppSettings
        from zitdesk.train.config import TrainConfig, TrainSpec

        class Engine(FakeEngine):
            """A training spec holds its card until cancelled; generations step slowly."""

            def run(self, request, emit, cancel) -> None:
                if not isinstance(request, TrainSpec):
                    return super().run(request, emit, cancel)
                self.requests.append(request)
                emit(JobStarted(request.job_id, total_steps=request.config.optim.steps))
                self.blocking.set()
                while not cancel.cancelled:
                    time.sleep(0.05)
                emit(JobCancelled(request.job_id))

        model = save_tiny_model(home / "tiny", "diffusers")
        engine = Engine("finish", image_dir=home / "out", step_delay=0.4)
        settings = AppSettings(model_path="")
        win = MainWindow(settings, engine_factory=lambda: engine, snapshot_fn=two_cards)
        settings.model_path = str(model)
        win.resize(1366, 768)
        win.show()
        cfg = TrainConfig().with_changes(
            model={"device": "cuda:1"}, save={"name": "my_cat"}, optim={"steps": 2000}
        )
        win.controller.submit(TrainSpec(config=cfg, gpus=(1,)))
        wait_until(engine.blocking.is_set, what="the training job to start")
        ws = win.generate
        ws.form.prompt.set_text("ohwx cat asleep on a windowsill, soft morning light")
        ws.generate()
        wait_until(lambda: len(engine.requests) == 2, what="the generation to start")
        wait_until(lambda: ws.progress.isVisible(), timeout=10, strict=False)
        from shotkit import pump

        pump(1500)  # a few steps with previews
        save_png(win, Path(args.out))
        win.controller.cancel_all()
        win.shutdown()
    finally:
        stop_xvfb(xvfb)


if __name__ == "__main__":
    main()
