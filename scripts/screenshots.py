"""Start the app under Xvfb and save screenshots of each workspace and of the first-run dialog.

    .venv/bin/python scripts/screenshots.py [--out out/screenshots]

Needs Xvfb (``apt-get install xvfb``) unless a display is already available (``DISPLAY`` set).
Everything runs in a temporary ``ZITDESK_HOME``, so your settings, history and outputs are not
touched. Generation uses a demo engine that replays engine events and writes gradient PNGs (no
model, no torch); the first-run dialog is shown over a temporary model tree with one complete
model (the tiny test model, which needs torch to build; skipped with ``--no-tiny``) and one
incomplete folder, so both states of the list are visible.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def start_xvfb() -> subprocess.Popen | None:
    """Start our own Xvfb on a free display number and point DISPLAY at it."""
    if os.environ.get("DISPLAY") or not shutil.which("Xvfb"):
        return None
    for n in range(90, 110):
        if Path(f"/tmp/.X11-unix/X{n}").exists() or Path(f"/tmp/.X{n}-lock").exists():
            continue
        proc = subprocess.Popen(
            ["Xvfb", f":{n}", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(50):
            if Path(f"/tmp/.X11-unix/X{n}").exists():
                os.environ["DISPLAY"] = f":{n}"
                return proc
            time.sleep(0.1)
        proc.terminate()
    raise SystemExit("could not start Xvfb")


class DemoEngine:
    """Implements the engine protocol with scripted events and gradient images."""

    def __init__(self, out_dir: Path, oom_next: list[bool]) -> None:
        self.out_dir = out_dir
        self.oom_next = oom_next

    def run(self, request, emit, cancel) -> None:
        import numpy as np
        from PIL import Image

        from zitdesk.engine.events import (
            ImageReady,
            JobFailed,
            JobFinished,
            JobStarted,
            PhaseChanged,
            StepProgress,
        )

        job = request.job_id
        emit(JobStarted(job, total_steps=request.steps * request.count))
        emit(PhaseChanged(job, phase="denoising", detail="Image 1 of 1"))
        if self.oom_next and self.oom_next.pop(0):
            emit(
                JobFailed(
                    job,
                    kind="oom",
                    retry_hint={"memory_mode": "fp8", "vae_tiling": True},
                    message=f"The GPU ran out of memory at {request.width}×{request.height}; "
                    "memory was freed — try 'fp8 weight storage (10–12 GB)'.",
                    traceback="torch.OutOfMemoryError: CUDA out of memory (demo)",
                )
            )
            return
        paths = []
        h, w = request.height // 4, request.width // 4
        for i in range(request.count):
            for s in range(1, request.steps + 1):
                emit(
                    StepProgress(
                        job,
                        step=s,
                        total=request.steps,
                        image_index=i,
                        image_count=request.count,
                        preview=np.full((h // 4, w // 4, 3), 40 * s % 255, np.uint8),
                    )
                )
                time.sleep(0.02)
            y, x = np.mgrid[0:h, 0:w] / max(h, w)
            seed = request.seed + i
            hue = (seed % 97) / 97
            img = (
                np.stack(
                    [60 + 150 * x * (0.5 + hue / 2), 40 + 120 * y, 110 + 120 * (1 - x) * y], -1
                )
                .clip(0, 255)
                .astype(np.uint8)
            )
            path = self.out_dir / f"demo-{seed}.png"
            self.out_dir.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(path)
            paths.append(str(path))
            emit(
                ImageReady(
                    job,
                    path=str(path),
                    seed=seed,
                    image_index=i,
                    width=request.width,
                    height=request.height,
                )
            )
        emit(JobFinished(job, paths=tuple(paths), elapsed_s=1.7, peak_vram_bytes=int(13.8 * 2**30)))

    def shutdown(self) -> None:
        pass


def fake_gpu_snapshot():
    from zitdesk.gpu import GpuReading, MemorySnapshot

    g = 2**30
    return MemorySnapshot(
        (GpuReading(0, "NVIDIA GeForce RTX 4090", int(3.1 * g), 24 * g, 12, 48, 60.0),),
        "",
        int(1.4 * g),
        11 * g,
        64 * g,
        None,
        None,
    )


def build_model_tree(base: Path, tiny: bool) -> None:
    """A models tree for the first-run dialog: one complete candidate, one incomplete one."""
    partial = base / "ComfyUI" / "models"
    (partial / "diffusion_models").mkdir(parents=True)
    (partial / "vae").mkdir(parents=True)
    if tiny:
        from zitdesk.models.tiny import hf_cache_layout, save_tiny_model

        diff = save_tiny_model(base / "tiny", "diffusers")
        hf_cache_layout(diff, base / "hf")
        comfy = save_tiny_model(base / "tiny-comfy", "comfy")
        shutil.copy(comfy / "z_image_turbo_bf16.safetensors", partial / "diffusion_models")
        shutil.copy(comfy / "ae.safetensors", partial / "vae")
    os.environ["HF_HUB_CACHE"] = str(base / "hf")
    os.environ["ZITDESK_MODEL_DIRS"] = str(partial)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", default=str(ROOT / "out" / "screenshots"))
    ap.add_argument("--no-tiny", action="store_true", help="do not build the tiny model (no torch)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    xvfb = start_xvfb()
    home = Path(tempfile.mkdtemp(prefix="zitdesk-shots-"))
    os.environ["ZITDESK_HOME"] = str(home / "home")
    try:
        build_model_tree(home, tiny=not args.no_tiny)
        return shoot(out, home)
    finally:
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(5)
        shutil.rmtree(home, ignore_errors=True)


def shoot(out: Path, home: Path) -> int:
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from ui.main_window import MainWindow
    from ui.theme import apply_dark_theme, prepare_high_dpi
    from zitdesk.settings import AppSettings

    prepare_high_dpi()
    app = QApplication(["zitdesk"])
    apply_dark_theme(app)
    print("platform:", app.platformName(), "screen:", app.primaryScreen().size().toTuple())

    def pump(ms: int = 300) -> None:
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    def wait_until(cond, timeout: float = 15.0) -> None:
        end = time.monotonic() + timeout
        while not cond() and time.monotonic() < end:
            pump(50)

    def save(widget, name: str) -> None:
        pump(250)
        path = out / f"{name}.png"
        widget.grab().save(str(path))
        print("saved", path)

    saved = []
    # 1. First start: no model configured → the setup dialog over the window.
    settings = AppSettings()
    oom: list[bool] = []
    win = MainWindow(
        settings,
        engine_factory=lambda: DemoEngine(home / "outputs", oom),
        snapshot_fn=fake_gpu_snapshot,
    )
    win.resize(1440, 900)
    win.show()
    pump(300)
    dlg = win.ensure_model_configured()
    wait_until(lambda: not dlg.busy and dlg.list.count() > 0, 20)
    save(dlg, "01-first-run-dialog")
    saved.append("01")
    save(win, "02-generate-first-start")
    dlg.reject()
    pump(200)
    save(win, "03-generate-no-model-banner")

    # 2. Model configured: generate a few demo images.
    settings.model_path = str(home / "tiny")
    form = win.generate.form
    form.prompt.load_tokenizer()
    form.prompt.set_text(
        "- a rainy street in Tokyo at night, neon signs, film photo\n"
        "- a girl -- short brown hair -- yellow raincoat -- on the left\n"
        "- a black cat -- on the right"
    )
    form.size_picker.set_size(1024, 1024)
    form.count.setValue(2)
    wait_until(lambda: form.prompt.tokenizer_ready, 30)
    pump(500)
    win.generate.generate()
    wait_until(lambda: win.generate.gallery_model.rowCount() >= 2 and not win.controller.busy)
    save(win, "04-generate-results")

    # 3. Out of memory: the banner with a one-click retry.
    oom.append(True)
    win.generate.generate()
    wait_until(lambda: win.generate.banner.isVisible() and not win.controller.busy)
    save(win, "05-generate-oom-retry")
    win.generate.banner.hide()

    # 4. Structured prompt helper.
    sdlg = win.generate.open_structure_dialog()
    save(sdlg, "06-structured-prompt")
    sdlg.reject()

    # 5. The other workspaces.
    for i, name in enumerate(("datasets", "train", "lora-library"), start=1):
        win.switch_workspace(i)
        save(win, f"{7 + i - 1:02d}-{name}")
    win.switch_workspace(0)
    # 6. Status bar close-up: the meter with a GPU and the ghost bar of the next job's peak.
    pump(1200)
    save(win.statusBar(), "10-status-bar-gpu")
    # 7. The CPU-only state of the meter (real readings of this machine).
    from zitdesk.gpu import MemorySnapshot, memory_snapshot

    win.poller.stop()
    win.meter.sparkline.clear()
    snap = memory_snapshot()
    if snap.gpus:  # a machine with a GPU: show the CPU state anyway
        snap = MemorySnapshot(
            (),
            "NVMLError_LibraryNotFound (demo)",
            snap.process_rss_bytes,
            snap.system_used_bytes,
            snap.system_total_bytes,
        )
    for _ in range(30):
        win.meter.set_snapshot(snap)
    save(win.statusBar(), "11-status-bar-cpu")
    win.close()
    pump(200)
    return 0


if __name__ == "__main__":
    sys.exit(main())
