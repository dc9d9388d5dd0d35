"""Start the app under Xvfb and save screenshots of each workspace and of the first-run dialog.

    .venv/bin/python scripts/screenshots.py [--out out/screenshots] [--only all|app|train]
    xvfb-run -a -s "-screen 0 1366x768x24" .venv/bin/python scripts/screenshots.py --only train

``--only library`` saves the LoRA Library, populated, at 1366×768, 2560×1440 and the minimum
size to ``docs/img/library-*.png`` (``--train-out``).

``--only train`` saves the Train tab at 1366×768 to ``docs/img/train-*.png`` (``--train-out``):
the first screen, a run mid-way with its loss curve and samples, pause → try in Generate, and the
run history. A demo trainer replays training events (losses, samples, checkpoints, pause with
"try" generations served inside it) with procedurally drawn sample images and fabricated LoRA
headers (no torch).

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
        self.hold_at = 0  # DemoTrainer: wait at this step until paused (0 = never)

    def run(self, request, emit, cancel) -> None:
        if type(request).__name__ == "TrainSpec":
            DemoTrainer(self).run(request, emit, cancel)
            return
        self.generate(request, emit, cancel)

    def generate(self, request, emit, cancel) -> None:
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


GIB = 2**30


def demo_sample(step: int, index: int, size: int = 256):
    """A sample that "learns": noise and grey at step 0, a crisp subject late in training."""
    import numpy as np

    rng = np.random.default_rng(1000 * index + 7)
    y, x = np.mgrid[0:size, 0:size] / size
    learnt = min(1.0, step / 1500)
    palettes = [
        ((250, 160, 60), (40, 70, 120)),
        ((90, 200, 120), (30, 40, 50)),
        ((230, 90, 140), (240, 220, 190)),
    ]
    fg, bg = (np.array(c, np.float32) for c in palettes[index % len(palettes)])
    cx, cy, r = 0.5 + 0.12 * (index - 1), 0.55, 0.28
    d = np.sqrt((x - cx) ** 2 + ((y - cy) * 1.1) ** 2)
    dx = np.abs(x - cx)
    ear = (dx > 0.08) & (dx < 0.24) & (y > cy - r - 0.12) & (y < cy - r + 0.08)
    subject = ((d < r) | ear).astype(np.float32)[..., None]
    sky = bg * (0.7 + 0.3 * y[..., None])
    img = sky * (1 - subject) + fg * subject
    grey = np.full_like(img, 128.0)
    noise = rng.normal(0, 60, img.shape)
    out = grey * (1 - learnt) + img * learnt + noise * (1 - learnt) ** 2
    return out.clip(0, 255).astype(np.uint8)


class DemoTrainer:
    """Replays a training job: phases, a plausible loss curve, samples and checkpoints every 250
    steps, pause (with "try" generations served inside it) and resume. Holds at
    ``engine.hold_at`` until the script pauses it, so a mid-run screenshot is stable."""

    def __init__(self, engine: DemoEngine) -> None:
        self.engine = engine

    def try_image(self, request, emit, step: int) -> None:
        """A "try" generation served inside the paused run: the subject as of ``step``."""
        from PIL import Image

        from zitdesk.engine.events import ImageReady, JobFinished, JobStarted, StepProgress

        job = request.job_id
        emit(JobStarted(job, total_steps=request.steps))
        img = demo_sample(step + 300, 0, 512)
        for s in range(1, request.steps + 1):
            emit(StepProgress(job, step=s, total=request.steps, preview=img[::8, ::8].copy()))
        path = self.engine.out_dir / f"try-{request.seed}.png"
        self.engine.out_dir.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(path)
        emit(
            ImageReady(
                job, path=str(path), seed=request.seed, width=request.width, height=request.height
            )
        )
        emit(JobFinished(job, paths=(str(path),), elapsed_s=1.6))

    def run(self, spec, emit, cancel) -> None:
        import math

        import numpy as np
        from PIL import Image

        from tests.support.samples import make_lora, modelspec_metadata
        from zitdesk.engine.events import JobFinished, JobStarted, PhaseChanged
        from zitdesk.train.events import CheckpointSaved, Paused, Resumed, SampleReady, TrainStep
        from zitdesk.train.runs import RunLog

        cfg, job = spec.config, spec.job_id
        out = Path(cfg.save.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        cfg.write(out / "train_config.toml")
        runlog = RunLog.start(spec, out, cfg.model.path)
        total = cfg.optim.steps
        name = cfg.save.name
        meta = modelspec_metadata(name, trigger=cfg.data.trigger, description="zitdesk demo run")
        emit(JobStarted(job, kind="train", total_steps=total, detail=name))
        for phase, detail in (
            ("loading", f"Loading {cfg.model.path}"),
            ("data", "24 images (24 captioned), 72 samples in 5 buckets"),
            ("caching", "Encoding latents 72/72"),
            ("training", "cuda, base bf16, checkpointing 19/34 blocks, compiled"),
        ):
            emit(PhaseChanged(job, phase=phase, detail=detail))
        rng = np.random.default_rng(3)
        loss = 0.0
        it_s = 2.72
        prompts = list(cfg.sample.prompts)

        def lora_file(path: Path) -> str:
            return str(make_lora(path, rank=cfg.lora.rank, metadata=meta))

        def save(step: int) -> str:
            ck = out / "checkpoints" / f"{name}_{step:09d}"
            ck.mkdir(parents=True, exist_ok=True)
            (ck / "adapter.safetensors").write_bytes(b"\0" * 2_000_000)
            lora = lora_file(out / f"{name}_{step:09d}.safetensors")
            emit(CheckpointSaved(job, path=str(ck), step=step, lora_path=lora))
            runlog.update(steps_done=step, lora_path=lora, final_loss=loss)
            return lora

        def sample(step: int) -> None:
            folder = out / "samples" / f"{step:09d}"
            folder.mkdir(parents=True, exist_ok=True)
            paths = []
            for i, _p in enumerate(prompts):
                path = folder / f"{i}_{42 + i}.png"
                Image.fromarray(demo_sample(step, i)).save(path)
                paths.append(str(path))
            emit(SampleReady(job, paths=tuple(paths), step=step))
            runlog.update(last_sample=paths[-1])

        sample(0)
        for step in range(1, total + 1):
            if step == self.engine.hold_at:
                while not cancel.paused and not cancel.cancelled:
                    cancel.wait_for_work(0.05)
            if cancel.paused:
                lora = lora_file(out / f"{name}_paused.safetensors")
                emit(Paused(job, step=step - 1, lora_path=lora))
                runlog.update(status="paused")
                while cancel.paused and not cancel.cancelled:
                    item = cancel.take_interjected()
                    if item is not None:
                        self.try_image(item[0], emit, step - 1)
                        continue
                    cancel.wait_for_work(0.1)
                emit(Resumed(job, step=step - 1))
                runlog.update(status="running")
            warm = min(1.0, step / 100)
            lr = cfg.optim.learning_rate * warm * (0.5 + 0.5 * math.cos(math.pi * step / total))
            loss = 0.11 + 0.23 * math.exp(-step / 350) + abs(rng.normal(0, 0.035))
            eta = (total - step) / it_s
            emit(
                TrainStep(
                    job,
                    step=step,
                    total=total,
                    loss=loss,
                    lr=lr,
                    it_s=it_s,
                    eta_s=eta,
                    phase_eta_s=eta + 40 * ((total - step) // 250 + 1),
                    vram_bytes=int(20.9 * GIB),
                )
            )
            if step % 250 == 0 or step == total:
                emit(
                    PhaseChanged(
                        job, phase="sampling", detail=f"Step {step}: {len(prompts)} prompts"
                    )
                )
                sample(step)
                emit(PhaseChanged(job, phase="saving", detail=f"Step {step}"))
                lora = save(step)
                emit(PhaseChanged(job, phase="training", detail=""))
            if step % 50 == 0:
                time.sleep(0.01)  # let the GUI draw between bursts
        final = lora_file(out / f"{name}.safetensors")
        runlog.update(
            status="finished",
            steps_done=total,
            lora_path=final,
            final_loss=loss,
            ended_at=time.time(),
        )
        emit(
            JobFinished(
                job,
                paths=(final,),
                elapsed_s=812.0,
                peak_vram_bytes=int(20.9 * GIB),
                stats={"final_loss": loss},
            )
        )


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
    ap.add_argument(
        "--only", choices=("all", "app", "train", "library", "datasets", "generate"), default="all"
    )
    ap.add_argument(
        "--train-out",
        default=str(ROOT / "docs" / "img"),
        help="where the Train tab screenshots go (train-*.png)",
    )
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    xvfb = start_xvfb()
    home = Path(tempfile.mkdtemp(prefix="zitdesk-shots-"))
    os.environ["ZITDESK_HOME"] = str(home / "home")
    try:
        rc = 0
        if args.only in ("all", "app"):
            build_model_tree(home, tiny=not args.no_tiny)
            rc = shoot(out, home)
        if args.only in ("all", "train") and rc == 0:
            rc = shoot_train(Path(args.train_out), home)
        if args.only in ("all", "generate") and rc == 0:  # populated, docs/img/generate-*.png
            if args.only == "generate":
                build_model_tree(home, tiny=False)
            rc = shoot_generate(Path(args.train_out), home)
        if args.only in ("all", "library") and rc == 0:
            rc = shoot_library(Path(args.train_out), home)
        if args.only in ("all", "datasets") and rc == 0:  # populated, at 1366×768 in docs/img
            sys.path.insert(0, str(ROOT / "scripts"))
            from datasets_screenshots import main as shoot_datasets

            rc = shoot_datasets(["--out", str(out / "datasets"), "--laptop-out", args.train_out])
        return rc
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


def shoot_library(out: Path, home: Path) -> int:
    """The LoRA Library with cards (previews, trigger words, a zitdesk-trained LoRA, an SDXL file)
    at 1366×768 and 2560×1440, and at the window's minimum size (docs/img/library-*.png)."""
    from dataclasses import replace

    from PySide6.QtCore import QEventLoop, QThreadPool, QTimer
    from PySide6.QtWidgets import QApplication

    from tests.support.samples import build_sample_library, make_lora, png_bytes
    from ui.main_window import MainWindow
    from ui.theme import apply_dark_theme, prepare_high_dpi
    from zitdesk.library.store import LibraryStore
    from zitdesk.settings import AppSettings
    from zitdesk.train.config import TrainConfig
    from zitdesk.train.lora_io import build_metadata

    app = QApplication.instance()
    if app is None:
        prepare_high_dpi()
        app = QApplication(["zitdesk"])
        apply_dark_theme(app)
    out.mkdir(parents=True, exist_ok=True)

    def pump(ms: int = 300) -> None:
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    def wait_until(cond, timeout: float = 60.0) -> None:
        end = time.monotonic() + timeout
        while not cond() and time.monotonic() < end:
            pump(50)
        if not cond():
            raise SystemExit("screenshots: a condition was not met in time")

    lib = home / "lora-library"
    files = build_sample_library(lib)
    # A LoRA trained by zitdesk, saved under the default name "lora" in its run folder.
    cfg = TrainConfig()
    run = lib / "runs" / "mochi_cat_v1"
    cfg = replace(
        cfg,
        save=replace(cfg.save, name="lora", output_dir=str(run)),
        data=replace(cfg.data, trigger="mochicat"),
    )
    meta = build_metadata(
        cfg,
        step=1500,
        epoch=12,
        base_precision="bf16",
        resolution=(1024, 1024),
        tag_freq={"mochicat": 24, "cat": 24, "sofa": 9, "garden": 6},
        dataset_name="mochi",
    )
    trained = make_lora(run / "lora.safetensors", "aitoolkit", 16, metadata=meta)
    (run / "lora.preview.png").write_bytes(png_bytes(96, 96, (236, 170, 110)))
    store = LibraryStore()
    store.add_folder(str(lib))
    cat = next(str(p) for p in files if p.name.startswith("cat_character"))
    store.set_favourite(cat, True)
    store.set_rating(cat, 4)
    store.set_notes(cat, "Best at 0.8; add 'sitting' for full body.")
    store.set_favourite(str(trained), True)
    settings = AppSettings(model_path="")
    win = MainWindow(
        settings,
        engine_factory=lambda: DemoEngine(home / "outputs", []),
        snapshot_fn=fake_gpu_snapshot,
    )
    shots = ((1366, 768, "1366"), (2560, 1440, "2560"))
    for w, h, tag in shots:
        win.resize(w, h)
        win.show()
        win.switch_workspace(3)
        library = win.library
        wait_until(
            lambda lib_ws=library: (
                lib_ws.model.rowCount() >= len(files)
                and not lib_ws.controller.scanning
                and not lib_ws.controller.hashing
            )
        )
        library.select(str(trained))
        pump(700)
        win.grab().save(str(out / f"library-{tag}.png"))
        print("saved", out / f"library-{tag}.png")
        library.select(cat)
        pump(500)
        win.grab().save(str(out / f"library-{tag}-details.png"))
        print("saved", out / f"library-{tag}-details.png")
    minimum = win.minimumSizeHint().expandedTo(win.minimumSize())
    win.resize(minimum)
    pump(700)
    win.grab().save(str(out / "library-minimum.png"))
    print("saved", out / "library-minimum.png", minimum.toTuple())
    win.library.shutdown()
    QThreadPool.globalInstance().waitForDone(10_000)
    win.close()
    return 0


def shoot_generate(out: Path, home: Path) -> int:
    """Generate populated (results of three aspects, a LoRA stack, the queue) at 1366×768 and
    2560×1440 (docs/img/generate-*.png)."""
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from tests.support.samples import make_lora
    from ui.main_window import MainWindow
    from ui.theme import apply_dark_theme, prepare_high_dpi
    from zitdesk.settings import AppSettings

    app = QApplication.instance()
    if app is None:
        prepare_high_dpi()
        app = QApplication(["zitdesk"])
        apply_dark_theme(app)
    out.mkdir(parents=True, exist_ok=True)

    def pump(ms: int = 300) -> None:
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    def wait_until(cond, timeout: float = 60.0) -> None:
        end = time.monotonic() + timeout
        while not cond() and time.monotonic() < end:
            pump(50)

    loras = home / "gen-loras"
    stack = [
        make_lora(loras / f"{n}.safetensors", "aitoolkit", 8)
        for n in ("ink_style", "mochi_cat_v1", "film_grain")
    ]
    settings = AppSettings(model_path="")
    win = MainWindow(
        settings,
        engine_factory=lambda: DemoEngine(home / "outputs", []),
        snapshot_fn=fake_gpu_snapshot,
    )
    settings.model_path = str(home / "tiny")
    win.resize(1366, 768)
    win.show()
    ws = win.generate
    form = ws.form
    form.prompt.set_text(
        "- a rainy street in Tokyo at night, neon signs, film photo\n- a black cat -- on the right"
    )
    for p, w in zip(stack, (0.8, 1.0, 0.5), strict=False):
        form.loras.add_lora(str(p), w)
    for w, h in ((512, 512), (768, 512), (512, 768)):
        form.size_picker.set_size(w, h)
        ws.generate()
    wait_until(lambda: ws.gallery_model.rowCount() >= 3 and not win.controller.busy)
    for _ in range(4):  # the queue: one running, three waiting
        ws.generate()
    for w, h, tag in ((1366, 768, "1366"), (2560, 1440, "2560")):
        win.resize(w, h)
        pump(600)
        win.grab().save(str(out / f"generate-{tag}.png"))
        print("saved", out / f"generate-{tag}.png", "queue:", ws.queue.texts()[:2])
    win.controller.cancel_all()
    wait_until(lambda: not win.controller.busy)
    win.close()
    return 0


def shoot_train(out: Path, home: Path) -> int:
    """The Train tab at 1366×768: first screen, mid-run, pause → try, history (docs/img)."""
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from ui.main_window import MainWindow
    from ui.theme import apply_dark_theme, prepare_high_dpi
    from zitdesk.io import user_dirs
    from zitdesk.settings import AppSettings
    from zitdesk.train.config import TrainConfig
    from zitdesk.train.presets import apply_preset
    from zitdesk.train.runs import RunRecord, runs_root, write_run

    app = QApplication.instance()
    if app is None:
        prepare_high_dpi()
        app = QApplication(["zitdesk"])
        apply_dark_theme(app)
    out.mkdir(parents=True, exist_ok=True)

    def pump(ms: int = 300) -> None:
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    def wait_until(cond, timeout: float = 30.0) -> None:
        end = time.monotonic() + timeout
        while not cond() and time.monotonic() < end:
            pump(50)
        if not cond():
            raise SystemExit("screenshots: a condition was not met in time")

    def save(widget, name: str) -> None:
        pump(400)
        path = out / f"{name}.png"
        widget.grab().save(str(path))
        print("saved", path)

    # A configured model and one dataset, like a user who has done the Datasets tab.
    model = home / "models" / "Z-Image-Turbo"
    model.mkdir(parents=True, exist_ok=True)
    data = user_dirs()["data"] / "datasets" / "my-cat"
    data.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    for i in range(24):
        Image.fromarray(demo_sample(1500, i % 3, 128)).save(data / f"cat_{i:02d}.png")
        (data / f"cat_{i:02d}.txt").write_text("a photo of [trigger] cat", encoding="utf-8")
    settings = AppSettings(model_path=str(model), width=1024, height=1024)
    engine = DemoEngine(home / "outputs", [])
    engine.hold_at = 761
    win = MainWindow(settings, engine_factory=lambda: engine, snapshot_fn=fake_gpu_snapshot)
    win.resize(1366, 768)
    win.show()
    pump(500)
    win.switch_workspace(2)
    train = win.train
    wait_until(lambda: train.snapshot is not None)
    pump(300)
    save(win, "train-first-screen")

    # A run mid-way: the loss curve, learning rate, three sample rounds.
    cfg = apply_preset(TrainConfig(), "24gb").with_changes(
        model={
            "path": str(model),
            "training_adapter": str(home / "zimage_turbo_training_adapter_v2.safetensors"),
        },
        data={"folder": str(data), "trigger": "mycat"},
        optim={"steps": 2000, "warmup_steps": 100, "schedule": "cosine"},
        save={"output_dir": str(runs_root() / "my-cat"), "name": "my-cat", "every": 250},
        sample={
            "every": 250,
            "prompts": (
                "a photo of [trigger] on a sofa",
                "[trigger] in a garden, watercolor",
                "portrait of [trigger], studio light",
            ),
        },
    )
    train.start_config(cfg)
    view = train.run_view
    wait_until(lambda: view.loss_chart.point_count >= 760 and len(view.samples.steps) >= 4, 60)
    view.tabs.setCurrentIndex(0)
    save(win, "train-run-view")

    # Pause → try it: the LoRA as of this step in Generate, generated inside the paused run.
    view.pause_button.click()
    wait_until(lambda: view.state == "paused")
    save(win, "train-paused")
    view.try_button.click()
    gen = win.generate
    gen.form.prompt.set_text("a photo of mycat on a sofa, evening light")
    gen.form.size_picker.set_size(1024, 1024)
    gen.generate_button.click()
    wait_until(lambda: gen.gallery_model.rowCount() >= 1 and not win.controller.tries, 30)
    wait_until(lambda: gen._large.pixmap(gen._shown_path) is not None, 10)
    wait_until(lambda: win.thumbnails.pixmap(gen._shown_path) is not None, 10)
    pump(800)
    save(win, "train-try-in-generate")

    # Resume to the end, then the history with a few earlier runs beside it.
    win.switch_workspace(2)
    view.resume_button.click()
    wait_until(lambda: view.state == "finished", 60)
    now = time.time()
    for i, (name, status, done, total, loss, preset, err) in enumerate(
        (
            ("watercolor-style", "finished", 1500, 1500, 0.1342, "16gb", ""),
            (
                "portrait-1024",
                "failed",
                412,
                2000,
                0.1711,
                "24gb",
                "The GPU ran out of memory while training; memory was freed — choose the '16gb' VRAM "
                "preset, then resume.",
            ),
            ("my-dog", "cancelled", 600, 2000, 0.1528, "12gb", ""),
        )
    ):
        folder = runs_root() / name
        folder.mkdir(parents=True, exist_ok=True)
        cfg.with_changes(save={"output_dir": str(folder), "name": name}).write(
            folder / "train_config.toml"
        )
        lora = folder / f"{name}.safetensors"
        from tests.support.samples import make_lora

        make_lora(lora, rank=32)
        write_run(
            RunRecord(
                run_id=f"{name}-{i}",
                name=name,
                status=status,
                output_dir=str(folder),
                config_path=str(folder / "train_config.toml"),
                dataset=str(data.parent / name),
                preset=preset,
                steps_done=done,
                steps_total=total,
                final_loss=loss,
                lora_path=str(lora),
                started_at=now - 86400 * (i + 1),
                ended_at=now - 86400 * i,
                error=err,
                model_path=str(model),
                error_kind="oom" if err else "",
                retry_preset="16gb" if err else "",
            )
        )
    view.back_button.click()
    train.refresh_history()
    train.overview.history.select_run("portrait-1024-1")  # failed: out of memory → one tier down
    pump(300)
    save(win, "train-history")
    win.close()
    pump(200)
    return 0


if __name__ == "__main__":
    sys.exit(main())
