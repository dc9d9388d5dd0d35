"""The demo engine the screenshot scripts run the app with: scripted generation and training
events, gradient images and procedurally drawn samples (no model, no torch), a fake RTX 4090
memory reading, and a model tree for the first-run dialog.

``DemoEngine.hold_generation``: a running generation waits at its second step until it is
cleared (or cancelled), so a screenshot can show a running job with others waiting behind it;
``DemoEngine.hold_at``: a training run waits at that step until paused.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path


class DemoEngine:
    """Implements the engine protocol with scripted events and gradient images."""

    def __init__(self, out_dir: Path, oom_next: list[bool]) -> None:
        self.out_dir = out_dir
        self.oom_next = oom_next
        self.hold_at = 0  # DemoTrainer: wait at this step until paused (0 = never)
        self.hold_generation = False  # a generation waits at step 2 while this is set

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
            small = img[::4, ::4].astype(np.float32)
            for s in range(1, request.steps + 1):
                t = 0.4 + 0.6 * s / request.steps  # the latent preview clearing up
                preview = (small * t + 128 * (1 - t)).clip(0, 255).astype(np.uint8)
                emit(
                    StepProgress(
                        job,
                        step=s,
                        total=request.steps,
                        image_index=i,
                        image_count=request.count,
                        preview=preview,
                    )
                )
                while s == 2 and self.hold_generation and not cancel.cancelled:
                    time.sleep(0.05)
                time.sleep(0.02)
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


def demo_window(home: Path):
    """``(window, engine, settings)``: the main window on a :class:`DemoEngine` writing to
    ``home/outputs``, shown at 1366×768, with the tiny model (``home/tiny``) configured after
    the window is built, so no first-start dialog opens."""
    from ui.main_window import MainWindow
    from zitdesk.settings import AppSettings

    settings = AppSettings(model_path="")
    engine = DemoEngine(home / "outputs", [])
    win = MainWindow(settings, engine_factory=lambda: engine, snapshot_fn=fake_gpu_snapshot)
    settings.model_path = str(home / "tiny")
    win.resize(1366, 768)
    win.show()
    return win, engine, settings


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
