"""The training job: :class:`Trainer` runs a :class:`~zitdesk.train.config.TrainSpec` end to end.

Runs on the one engine thread that owns the GPU and speaks the generation job protocol
(:class:`zitdesk.engine.protocol.Engine`): ``run(spec, emit, cancel)`` emits ``JobStarted``,
phase/step/sample/checkpoint events and exactly one terminal event, and **never raises**.

Order of work: load the base model (offline) → scan the dataset and plan buckets → cache
latents and caption embeddings (only what is missing) → free the text encoder and park the VAE
→ add the LoRA (and the training adapter), set the base precision, build the optimizer →
resume from the newest checkpoint if asked → train.

Control, checked between optimizer steps: ``cancel.pause()`` → :class:`Paused` … ``resume()`` →
:class:`Resumed`; ``cancel.cancel()`` finishes the current step, saves a checkpoint and the LoRA
at that step, and ends with ``JobCancelled(paths=(lora,))``. Failures become ``JobFailed``
(``kind="oom"`` with the next lower VRAM preset in ``retry_hint``); finished checkpoints stay,
so ``--resume`` continues from the last one. Randomness per micro-batch (σ, noise, caption
dropout) and the data order are pure functions of the seed and the step, and checkpoints hold
the exact fp32 LoRA, optimizer and scheduler state, so a resumed run repeats the uninterrupted
one.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import random
import time
import traceback
from pathlib import Path
from typing import Any

from zitdesk.engine.cancel import Cancelled, CancelToken
from zitdesk.engine.events import (
    EngineEvent,
    ImageReady,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobStarted,
    JobWarning,
    PhaseChanged,
    StepProgress,
)
from zitdesk.engine.protocol import Emit
from zitdesk.errors import LoraError, ModelError, RequestError, ZitdeskError
from zitdesk.io import user_dirs
from zitdesk.train import adapters as ad
from zitdesk.train.checkpoint import (
    checkpoints_dir,
    clean_leftovers,
    clean_temp_files,
    list_checkpoints,
    load_latest,
    prune_files,
    restore_rng,
    rng_state,
    save_checkpoint,
)
from zitdesk.train.config import TrainConfig, TrainSpec, locked_differences, soft_differences
from zitdesk.train.dataset import (
    BatchCursor,
    apply_trigger,
    derive_seed,
    plan_entries,
    scan_folder,
    tag_frequency,
)
from zitdesk.train.events import CheckpointSaved, Paused, Resumed, SampleReady, TrainStep
from zitdesk.train.presets import lower_preset
from zitdesk.train.timesteps import sample_sigmas

log = logging.getLogger(__name__)


class Diverged(ZitdeskError):
    """The loss became NaN or infinite."""


class LossReporter:
    """Turns per-step loss tensors into :class:`TrainStep` events without a GPU sync per step.

    On CUDA each loss is copied to pinned memory asynchronously and reported once its copy has
    landed (usually one step later); at most two steps are in flight. On CPU it is immediate.
    """

    def __init__(self, emit: Emit, job: str, total: int, cuda: bool, extra_eta: Any = None) -> None:
        self.emit, self.job, self.total, self.cuda = emit, job, total, cuda
        self.extra_eta = extra_eta  # step -> seconds of sampling/saving still due
        self.pending: collections.deque = collections.deque()
        self.times: collections.deque = collections.deque(maxlen=20)
        self.last_loss = float("nan")
        self.losses: list[tuple[int, float]] = []

    def reset_clock(self) -> None:
        self.times.clear()

    def add(self, step: int, loss: Any, lr: float) -> None:
        if self.cuda:
            import torch

            buf = torch.empty((), dtype=torch.float32, pin_memory=True)
            buf.copy_(loss.detach().float(), non_blocking=True)
            ev = torch.cuda.Event()
            ev.record()
            self.pending.append((step, buf, ev, lr))
            while self.pending and (self.pending[0][2].query() or len(self.pending) > 2):
                s, b, e, r = self.pending.popleft()
                e.synchronize()
                self._report(s, float(b), r)
        else:
            self._report(step, float(loss), lr)

    def flush(self) -> None:
        while self.pending:
            s, b, e, r = self.pending.popleft()
            e.synchronize()
            self._report(s, float(b), r)

    def _report(self, step: int, value: float, lr: float) -> None:
        import math

        if not math.isfinite(value):
            raise Diverged(
                f"Training diverged at step {step} (the loss is not a number); "
                "lower the learning rate and resume from the last checkpoint."
            )
        now = time.perf_counter()
        self.times.append(now)
        self.last_loss = value
        self.losses.append((step, value))
        it_s = 0.0
        if len(self.times) >= 2:
            it_s = (len(self.times) - 1) / max(self.times[-1] - self.times[0], 1e-9)
        eta = (self.total - step) / it_s if it_s > 0 else 0.0
        vram = 0
        if self.cuda:
            import torch

            vram = int(torch.cuda.memory_allocated())
        extra = float(self.extra_eta(step)) if self.extra_eta is not None else 0.0
        self.emit(
            TrainStep(
                self.job,
                step=step,
                total=self.total,
                loss=value,
                lr=lr,
                it_s=it_s,
                eta_s=eta,
                phase_eta_s=eta + extra if eta > 0 else 0.0,
                vram_bytes=vram,
            )
        )


class Trainer:
    """Engine for training jobs (see the module docstring). ``run`` never raises.

    ``models`` (optional, the generation engine inside :class:`~zitdesk.engine.studio.StudioEngine`)
    lends its loaded pipeline: ``lend_pipeline(source, device, dtype) -> pipe | None`` at the
    start and ``take_back(pipe | None)`` at the end (None: generation reloads).
    """

    def __init__(self, device: str | None = None, models: Any = None) -> None:
        self._device = device
        self.models = models

    def run(self, spec: TrainSpec, emit: Emit, cancel: CancelToken) -> None:
        job = spec.job_id
        run: _Run | None = None
        t0 = time.perf_counter()
        terminal: EngineEvent
        try:
            emit(
                JobStarted(
                    job,
                    kind="train",
                    total_steps=spec.config.optim.steps,
                    detail=spec.config.save.name,
                )
            )
            run = _Run(spec, self._device, emit, cancel, self.models)
            result = run.execute()
            if result["cancelled"]:
                terminal = JobCancelled(job, paths=tuple(result["paths"]))
            else:
                terminal = JobFinished(
                    job,
                    paths=tuple(result["paths"]),
                    elapsed_s=time.perf_counter() - t0,
                    peak_vram_bytes=result.get("peak_vram_bytes", 0),
                    stats=result["stats"],
                )
        except Cancelled:
            terminal = JobCancelled(job, paths=())
        except Exception as exc:  # noqa: BLE001 - every failure becomes an event
            terminal = _failure(job, spec.config, exc, run.phase if run else "starting")
        finally:
            if run is not None:
                run.finish_record(terminal)
                run.close(reusable=not isinstance(terminal, JobFailed))
            _free_memory()
        try:
            emit(terminal)
        except Exception:  # noqa: BLE001 - a broken listener must not escape the engine thread
            log.exception("the terminal event of %s could not be delivered", job)

    def shutdown(self) -> None:
        _free_memory()


def _complete_safetensors(path: Path) -> bool:
    """True when ``path`` is a safetensors file whose header and data are all there."""
    from zitdesk.st_header import read_header

    try:
        header = read_header(path)
    except Exception:  # noqa: BLE001 - missing, truncated or damaged: not complete
        return False
    return header is not None


_FAILURE_KINDS: dict[type[BaseException], str] = {
    ModelError: "model",
    LoraError: "lora",
    RequestError: "request",
}


def _free_memory() -> None:
    from zitdesk.engine.generate import free_memory

    free_memory()


def _failure(job: str, cfg: TrainConfig, exc: Exception, phase: str) -> JobFailed:
    from zitdesk.engine.generate import is_oom

    tb = traceback.format_exc()
    if is_oom(exc):
        _free_memory()
        lower = lower_preset(cfg)
        advice = (
            f"choose the '{lower}' VRAM preset"
            if lower
            else "lower the training resolution to 512 px"
        )
        return JobFailed(
            job,
            kind="oom",
            traceback=tb,
            retry_hint={"preset": lower} if lower else {},
            message=f"The GPU ran out of memory while {phase}; memory was freed — {advice}, "
            "then resume.",
        )
    kind = _FAILURE_KINDS.get(type(exc), "error")
    if isinstance(exc, ZitdeskError):
        return JobFailed(job, kind=kind, message=str(exc), traceback=tb)
    log.error("training failed:\n%s", tb)
    from zitdesk.errors import user_message

    return JobFailed(
        job,
        kind="error",
        traceback=tb,
        message=f"Training stopped while {phase}: {user_message(exc)}",
    )


def _try_failure(job: str, exc: Exception) -> JobFailed:
    from zitdesk.engine.generate import is_oom

    tb = traceback.format_exc()
    if is_oom(exc):
        _free_memory()
        return JobFailed(
            job,
            kind="oom",
            traceback=tb,
            message=(
                "The GPU ran out of memory for this image beside the paused training; try a smaller "
                "size, or resume and generate after training."
            ),
        )
    kind = _FAILURE_KINDS.get(type(exc), "error")
    if isinstance(exc, ZitdeskError):
        return JobFailed(job, kind=kind, message=str(exc), traceback=tb)
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    return JobFailed(
        job,
        kind="error",
        traceback=tb,
        message=f"The try image failed: {type(exc).__name__}: {first}",
    )


class _Run:
    """State of one training job (kept out of :class:`Trainer` so nothing leaks between jobs)."""

    def __init__(
        self,
        spec: TrainSpec,
        device: str | None,
        emit: Emit,
        cancel: CancelToken,
        models: Any = None,
    ) -> None:
        self.spec = spec
        self.models = models
        self.borrowed = False  # the pipeline came from the generation engine
        self.setup_state = ""  # "" | "started" | "done" (adapters injected into the model)
        self.text_encoder: Any = None  # parked in RAM while training (tries, giving back)
        self.record: Any = None  # runs.RunLog once the output folder is set up
        self.last_lora = ""
        self.last_sample = ""
        self.saved_step = -1
        self.sample_s = 0.0  # duration of the last sample round (for the ETA)
        self.save_s = 0.0
        self.cfg = spec.config.validate()
        self.job = spec.job_id
        self.emit = emit
        self.cancel = cancel
        self.phase = "starting"
        self.pipe: Any = None
        self.device = self._resolve_device(device)
        self.cuda = self.device.startswith("cuda")
        self.out = Path(self.cfg.save.output_dir).expanduser().resolve()
        self.ckroot = checkpoints_dir(self.out)
        self.samples_dir = self.out / "samples"
        self.step = 0
        self.sampled: set[int] = set()

    # -- helpers ------------------------------------------------------------------------------
    def _resolve_device(self, device: str | None) -> str:
        want = self.cfg.model.device
        if want and want != "auto":
            return want
        if device:
            return device
        from zitdesk.engine.generate import default_device

        return default_device()

    def _phase(self, phase: str, detail: str = "") -> None:
        self.phase = {
            "loading": "loading the model",
            "caching": "caching latents and captions",
            "training": "training",
            "sampling": "rendering samples",
            "saving": "saving",
            "data": "reading the dataset",
            "resuming": "resuming",
        }.get(phase, self.phase)
        self.emit(PhaseChanged(self.job, phase=phase, detail=detail))

    def warn(self, message: str) -> None:
        self.emit(JobWarning(self.job, message=message))

    def close(self, reusable: bool = True) -> None:
        """Drop the job's state; a borrowed pipeline goes back to generation (cleaned) or, when
        the base weights changed or the job failed, is dropped so generation reloads."""
        pipe, self.pipe = self.pipe, None
        self.runner: Any = None  # the StepRunner, built in _setup_training
        if self.models is None or not self.borrowed:
            return
        back = None
        try:
            if reusable and pipe is not None and self._restorable():
                back = self._restore_for_generation(pipe)
        except Exception:  # noqa: BLE001 - generation then reloads instead
            log.exception("could not hand the model back to generation")
            back = None
        self.models.take_back(back)

    def _restorable(self) -> bool:
        if self.setup_state == "started":
            return False  # set-up stopped half-way: the model is in an unknown state
        if self.setup_state == "":
            return True
        prec = self.cfg.model.base_precision
        prep = self.prepared
        return (
            prec not in ("fp8", "nf4")
            and prep.adapter_mode != "merge"
            and not self.cfg.memory.attention_backend
        )

    def _restore_for_generation(self, pipe: Any) -> Any:
        """Remove every PEFT layer (user LoRA, training adapter) and put the parts back."""
        tr = pipe.transformer
        if self.setup_state == "done":
            from zitdesk.train.core import block_lists

            for _, blk in block_lists(tr):  # compiled blocks back to eager (generation compiles
                if getattr(blk, "_compiled_call_impl", None) is not None:  # its own if asked)
                    blk._compiled_call_impl = None
            if getattr(tr, "gradient_checkpointing", False):
                tr.disable_gradient_checkpointing()
            tr.unload_lora()  # PEFT layers out: the plain base modules, exactly as before
        tr.requires_grad_(False)
        tr.eval()
        if pipe.text_encoder is None and self.text_encoder is not None:
            pipe.text_encoder = self.text_encoder.to(self.te_home)
        self.text_encoder = None
        pipe.vae.to(self.vae_home)
        return pipe

    # -- the job ------------------------------------------------------------------------------
    def execute(self) -> dict[str, Any]:
        self._prepare_output()
        self._load_model()
        self._load_data()
        self._build_caches()
        self._unload_encoders()
        self._setup_training()
        self._maybe_resume()
        return self._loop()

    def _prepare_output(self) -> None:
        cfg = self.cfg
        if cfg.optim.optimizer == "adamw8bit" and not self.cuda:
            raise RequestError(
                "8-bit AdamW needs an NVIDIA GPU (bitsandbytes); choose adamw on this machine."
            )
        if cfg.model.base_precision == "nf4" and not self.cuda:
            raise RequestError(
                "4-bit (NF4) base weights need an NVIDIA GPU; choose fp8 or bf16 here."
            )
        self.out.mkdir(parents=True, exist_ok=True)
        clean_leftovers(self.ckroot)
        for folder in [self.out, self.samples_dir, *self.samples_dir.glob("[0-9]" * 9)]:
            clean_temp_files(folder)  # half-written files of a killed run
        existing = list_checkpoints(self.ckroot)
        if existing and not self.spec.resume:
            raise RequestError(
                f"{self.out} already holds checkpoints of a run (up to step {existing[-1].step}); "
                "resume it (--resume) or choose another output folder."
            )
        cfg.write(self.out / "train_config.toml")
        from zitdesk.train.runs import RunLog

        self.record = RunLog.start(self.spec, self.out, cfg.model.path)

    def _load_model(self) -> None:
        import torch

        from zitdesk.models.discovery import resolve_model
        from zitdesk.models.loader import load_pipeline

        self._phase("loading", f"Loading {self.cfg.model.path}")
        prec = self.cfg.model.base_precision
        dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}.get(prec)
        if prec in ("fp8", "nf4") and self.cuda:
            dtype = torch.bfloat16
        source = resolve_model(self.cfg.model.path)
        self.source_label = source.label
        if self.models is not None:
            from zitdesk.models.loader import _is_big, pick_dtype

            want = dtype or pick_dtype(self.device, _is_big(source))
            self.pipe = self.models.lend_pipeline(source, self.device, want)
            if self.pipe is not None:
                self.borrowed = True
                self.te_home = next(self.pipe.text_encoder.parameters()).device
                self.vae_home = next(self.pipe.vae.parameters()).device
                self._phase("loading", f"Using {source.label}, already loaded for generation")
        if self.pipe is None:
            self.pipe = load_pipeline(source, device=self.device, dtype=dtype)
        self.cancel.raise_if_cancelled()

    def _load_data(self) -> None:
        cfg = self.cfg
        scan = scan_folder(cfg.data.folder, cfg.data.caption_ext)
        if not scan.items:
            raise RequestError(
                f"The dataset folder {cfg.data.folder} holds no images (png, jpg, webp, bmp)."
            )
        self.items = scan.items
        self.entries = plan_entries(scan.items, cfg.data.resolutions)
        if not self.entries:
            raise RequestError(
                "Every image of the dataset is smaller than 16 px; nothing to train on."
            )
        self.captions = [apply_trigger(it.caption, cfg.data.trigger) for it in scan.items]
        self.tag_freq = tag_frequency(self.captions)
        buckets = sorted({e.bucket for e in self.entries})
        detail = (
            f"{len(scan.items)} images ({scan.captioned} captioned), {len(self.entries)} samples "
            f"in {len(buckets)} buckets"
        )
        self._phase("data", detail)
        if scan.problems:  # unreadable images, skipped files …: the run goes on without them
            self.warn(
                " ".join(scan.problems[:3])
                + (f" (and {len(scan.problems) - 3} more)" if len(scan.problems) > 3 else "")
            )

    def _build_caches(self) -> None:
        from zitdesk.train.cache import build_caches
        from zitdesk.train.samples import sample_prompts

        cfg = self.cfg
        root = (
            Path(cfg.data.cache_dir).expanduser()
            if cfg.data.cache_dir
            else user_dirs()["cache"] / "train"
        )
        self._phase("caching", "Checking the latent and caption caches")
        prompts = [p for p, _ in sample_prompts(cfg)]

        def progress(what: str, done: int, total: int) -> None:
            self.emit(
                PhaseChanged(self.job, phase="caching", detail=f"Encoding {what} {done}/{total}")
            )

        self.cache = build_caches(
            self.pipe,
            root,
            self.items,
            self.entries,
            self.captions,
            prompts,
            self.device,
            cfg.data.latent_mode,
            progress,
            self.cancel.raise_if_cancelled,
        )
        keys = {*self.cache.caption_keys, self.cache.empty_key, *self.cache.prompt_keys.values()}
        self.text = {k: self.cache.text(k) for k in keys}

    def _unload_encoders(self) -> None:
        pipe = self.pipe
        if pipe.text_encoder is not None:
            # Prompts are cached; parked in RAM (frees ~8 GB of VRAM) for "try" prompts while
            # paused and for generation afterwards.
            self.text_encoder = pipe.text_encoder.to("cpu")
            pipe.text_encoder = None
        if self.cuda and self.cfg.memory.offload_vae:
            pipe.vae.to("cpu")
        _free_memory()

    def _setup_training(self) -> None:
        import torch

        from zitdesk.train.core import StepRunner
        from zitdesk.train.setup import prepare_transformer

        cfg = self.cfg
        tr = self.pipe.transformer
        self.setup_state = "started"
        self.prepared = prep = prepare_transformer(tr, cfg, self.device)
        if prep.adapter_message:
            self._phase("loading", f"Training adapter {prep.adapter_message}")
        elif cfg.model.variant == "turbo":
            self.warn(
                "Training Turbo without a training adapter breaks its 8-step "
                "distillation (blurry samples); set model.training_adapter, or train on "
                "the De-Turbo / Base model and set model.variant.",
            )
        self.base_precision = prep.base_precision
        self.runner = StepRunner(tr, cfg, self.device)
        image_tokens = max((b[0] // 16) * (b[1] // 16) for b in (e.bucket for e in self.entries))
        cap_tokens = max(int(t.shape[0]) for t in self.text.values())
        self.memory_plan = self.runner.configure(image_tokens, cap_tokens)
        self.cursor = BatchCursor(self.entries, cfg.optim.batch_size, cfg.optim.seed)
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        self.setup_state = "done"

    def _maybe_resume(self) -> None:
        if not self.spec.resume:
            return
        found = load_latest(self.ckroot)
        if found is None:
            self._phase("resuming", "No checkpoint found; starting from step 0")
            return
        info, (adapter, trainer_state, state) = found
        saved = TrainConfig.from_toml(state["config"])
        diffs = locked_differences(self.cfg, saved)
        if diffs:
            raise RequestError(
                "The checkpoint was trained with other settings: "
                + "; ".join(diffs)
                + ". Restore them or start a new run in another folder."
            )
        ad.load_user_state(self.pipe.transformer, adapter)
        soft = soft_differences(self.cfg, saved)
        if saved.optim.optimizer == self.cfg.optim.optimizer:
            self.runner.load_state_dict(trainer_state["runner"])
        else:
            self.runner.scheduler.load_state_dict(trainer_state["runner"]["scheduler"])
        if soft:
            self.warn(
                "Resuming with changed settings: "
                + "; ".join(soft)
                + ". The run continues, but differs from an uninterrupted one"
                + (" (the optimizer starts fresh)." if "optim.optimizer" in "".join(soft) else "."),
            )
        restore_rng(trainer_state.get("rng", {}), state.get("rng", {}))
        self.step = int(state["step"])
        self.cursor.epoch = int(state["cursor"]["epoch"])
        self.cursor.pos = int(state["cursor"]["pos"])
        self.sampled = set(state.get("sampled", []))
        # A kill between the checkpoint and its step LoRA leaves the checkpoint without its LoRA
        # file; the next steps would never write it: write it now, from the restored weights.
        if not _complete_safetensors(self._step_lora_path()):
            self._write_step_lora()
        self._phase("resuming", f"Resumed from {info.path.name} (step {self.step})")

    # -- loop ---------------------------------------------------------------------------------
    def _micro_batch(self, index: int):
        import torch

        from zitdesk.train.core import MicroBatch

        cfg = self.cfg
        batch = self.cursor.next()
        lat = torch.stack([self.cache.latent(i) for i in batch])
        rng = random.Random(derive_seed("dropout", cfg.optim.seed, index))
        embeds = []
        for i in batch:
            drop = cfg.data.caption_dropout > 0 and rng.random() < cfg.data.caption_dropout
            key = self.cache.empty_key if drop else self.cache.caption_keys[self.entries[i].item]
            embeds.append(self.text[key])
        t = cfg.timesteps
        sig, w = sample_sigmas(
            t.mode, len(batch), cfg.optim.seed, index, t.shift, t.anchor_steps, t.jitter
        )
        g = torch.Generator().manual_seed(derive_seed("noise", cfg.optim.seed, index))
        noise = torch.randn(lat.shape, generator=g, dtype=torch.float32)
        return MicroBatch(lat, noise, embeds, sig, w)

    def _one_step(self) -> Any:
        accum = self.cfg.optim.grad_accum
        cursor_state = self.cursor.state()
        mbs = [self._micro_batch(self.step * accum + a) for a in range(accum)]
        if not self.runner.compiled:
            return self.runner.train_step(mbs)
        try:
            return self.runner.train_step(mbs)
        except Exception as exc:  # a compiler failure (first step or a new bucket shape) must
            # not end the run: retry this step eagerly; a real error fails again, uncompiled
            from zitdesk.engine.generate import is_oom

            if is_oom(exc):
                raise
            log.exception("compiled step failed; continuing without torch.compile")
            self.runner.optimizer.zero_grad(set_to_none=True)
            self.runner.uncompile()
            self.cursor.epoch, self.cursor.pos = cursor_state["epoch"], cursor_state["pos"]
            self.warn(f"torch.compile failed ({type(exc).__name__}); training without it")
            mbs = [self._micro_batch(self.step * accum + a) for a in range(accum)]
            return self.runner.train_step(mbs)

    def _pause_point(self) -> None:
        """Pause: save the LoRA as of this step, serve interjected "try" generations with it
        until resumed or cancelled. Nothing here changes the training state (RNG included)."""
        if not self.cancel.paused:
            return
        self.reporter.flush()
        lora = self.last_lora if self.saved_step == self.step else ""
        if not lora:
            # Only the LoRA (a full checkpoint of the real model takes ~6 s to write; the next
            # scheduled one, or a cancel, writes it). The pause changes nothing of the training.
            self._phase("saving", f"Step {self.step} (paused)")
            lora = str(self._write_step_lora()[2])
            self.last_lora, self.saved_step = lora, self.step
        self._record(status="paused")
        self.emit(Paused(self.job, step=self.step, lora_path=lora))
        while not self.cancel.cancelled:
            item = self.cancel.take_interjected()
            if item is not None:
                self._serve_try(*item)
                continue
            if not self.cancel.paused:
                break
            self.cancel.wait_for_work(timeout=0.5)
        if not self.cancel.cancelled:
            self._record(status="running")
            self.emit(Resumed(self.job, step=self.step))
        self.reporter.reset_clock()

    # -- "try it" while paused ----------------------------------------------------------------
    def _serve_try(self, request: Any, token: CancelToken | None) -> None:
        """Render one interjected :class:`GenerateRequest` with the LoRA as of this step (training
        adapter off, as for samples) and emit its events under its own job id. Never raises:
        a failed try is that job's ``JobFailed``, the training job goes on."""
        from zitdesk.engine.generate import StopBeforeDecode, render_image, save_image
        from zitdesk.engine.requests import GenerateRequest
        from zitdesk.train.checkpoint import restore_rng, rng_state

        job = getattr(request, "job_id", "try")
        token = token or CancelToken()
        t0 = time.perf_counter()
        paths: list[str] = []
        emit = self.emit
        try:
            emit(
                JobStarted(
                    job,
                    kind="try",
                    total_steps=getattr(request, "steps", 0) * getattr(request, "count", 1),
                    detail=f"step {self.step}",
                )
            )
        except Exception:  # noqa: BLE001
            log.exception("try event delivery failed")
        rng = rng_state()
        tr = self.pipe.transformer
        try:
            if not isinstance(request, GenerateRequest):
                raise RequestError("Only image generations can run while training is paused.")
            request.validate()
            weight = self._try_weight(request)
            import torch

            scales = {**self.prepared.sample_scales, ad.USER: weight}
            ad.set_active(tr, scales)
            self.runner.set_lora_input_cast(True)
            tr.eval()
            if self.cuda:
                self.pipe.vae.to(self.device)
            emit(PhaseChanged(job, phase="encoding", detail="Encoding the prompt"))
            pos, neg = self._encode_try(request)
            stance = (
                torch.compiler.set_stance("force_eager")
                if self.runner.compiled
                else contextlib.nullcontext()
            )
            for index in range(request.count):
                token.raise_if_cancelled()

                def on_step(p, i, t, kwargs, index=index):
                    if token.cancelled or self.cancel.cancelled:
                        raise StopBeforeDecode()
                    emit(
                        StepProgress(
                            job,
                            step=i + 1,
                            total=request.steps,
                            image_index=index,
                            image_count=request.count,
                            elapsed_s=time.perf_counter() - t0,
                        )
                    )
                    return {}

                emit(
                    PhaseChanged(
                        job, phase="denoising", detail=f"Image {index + 1} of {request.count}"
                    )
                )
                try:
                    with stance:
                        image = render_image(self.pipe, request, index, pos, neg, on_step)
                except StopBeforeDecode:
                    raise Cancelled() from None
                seed = request.seed + index
                path = save_image(
                    image,
                    request,
                    seed,
                    index,
                    model_label=f"{self.source_label} + {self.cfg.save.name} step {self.step}",
                )
                paths.append(str(path))
                emit(
                    ImageReady(
                        job,
                        path=str(path),
                        seed=seed,
                        image_index=index,
                        width=image.width,
                        height=image.height,
                    )
                )
            emit(
                JobFinished(
                    job,
                    paths=tuple(paths),
                    elapsed_s=time.perf_counter() - t0,
                    stats={
                        "device": self.device,
                        "training_step": self.step,
                        "lora_weight": weight,
                    },
                )
            )
        except Cancelled:
            self._emit_safely(JobCancelled(job, paths=tuple(paths)))
        except Exception as exc:  # noqa: BLE001 - a failed try must never end the training job
            log.exception("try generation failed")
            self._emit_safely(_try_failure(job, exc))
        finally:
            try:
                ad.set_active(tr, self.prepared.train_scales)
                self.runner.set_lora_input_cast(not self.runner.autocast)
                tr.train()
                if self.cuda and self.cfg.memory.offload_vae:
                    self.pipe.vae.to("cpu")
            finally:
                restore_rng(rng["torch"], rng["json"])
                if self.cuda:  # no gc.collect here: it costs ~0.5 s of the resume
                    import torch

                    torch.cuda.empty_cache()

    def _emit_safely(self, ev: EngineEvent) -> None:
        try:
            self.emit(ev)
        except Exception:  # noqa: BLE001
            log.exception("try event delivery failed")

    def _try_weight(self, request: Any) -> float:
        """The request's weight for this run's LoRA (0 when it is not in the stack); other LoRAs
        of the stack are skipped with a warning (the paused model carries only this one)."""
        ours = {self._norm(p) for p in (self.last_lora,) if p}
        weight = 0.0
        skipped = []
        for lo in request.loras:
            if not lo.enabled:
                continue
            p = Path(lo.path)
            if self._norm(lo.path) in ours:
                weight = float(lo.weight)
            else:
                skipped.append(p.name)
        if skipped:
            self.emit(
                JobWarning(
                    request.job_id,
                    message=(
                        "While training is paused only the LoRA being trained is used; skipped "
                        + ", ".join(skipped)
                        + "."
                    ),
                )
            )
        return weight

    @staticmethod
    def _norm(path: str) -> str:
        import os

        return os.path.normcase(str(Path(path).expanduser().resolve()))

    def _encode_try(self, request: Any):
        """Prompt embeddings for a try: cached ones for the sample prompts, else the parked text
        encoder (on the GPU when it fits beside the paused training state, else on the CPU)."""
        import torch

        from zitdesk.engine.requests import TOKEN_BUDGET

        dev = self.pipe.transformer.device
        dtype = self.pipe.transformer.dtype
        cfg_on = request.guidance > 0
        key = self.cache.prompt_keys.get(request.prompt)
        if key is not None and not cfg_on:
            return [self.text[key].to(dev, dtype)], None
        te = self.text_encoder
        if te is None:
            raise RequestError("The text encoder is not available in this training job.")
        where = "cpu"
        if self.cuda:
            need = sum(p.numel() * p.element_size() for p in te.parameters())
            free, _ = torch.cuda.mem_get_info(torch.device(self.device))
            if free > need + (1 << 30):
                where = self.device
        # The CPU tensors stay as they are and are put back afterwards: no 8 GB copy back.
        params = [(p, p.data) for p in te.parameters()]
        buffers = [(m, k, b) for m in te.modules() for k, b in m._buffers.items() if b is not None]
        te.to(where)
        self.pipe.text_encoder = te
        try:
            with torch.no_grad():
                pos, neg = self.pipe.encode_prompt(
                    prompt=request.prompt,
                    device=torch.device(where),
                    do_classifier_free_guidance=cfg_on,
                    negative_prompt=request.negative_prompt or "",
                    max_sequence_length=TOKEN_BUDGET,
                )
        finally:
            self.pipe.text_encoder = None
            if where != "cpu":
                for p, data in params:
                    p.data = data
                for m, k, b in buffers:
                    m._buffers[k] = b
        pos = [p.to(dev, dtype) for p in pos]
        neg = [n.to(dev, dtype) for n in neg] if cfg_on and neg else None
        return pos, neg

    # -- the run record -----------------------------------------------------------------------
    def _record(self, **changes: Any) -> None:
        if self.record is None:
            return
        loss = self.reporter.last_loss if getattr(self, "reporter", None) else float("nan")
        import math

        self.record.update(
            steps_done=self.step,
            final_loss=loss if math.isfinite(loss) else self.record.record.final_loss,
            lora_path=self.last_lora or self.record.record.lora_path,
            last_sample=self.last_sample or self.record.record.last_sample,
            **changes,
        )

    def finish_record(self, terminal: EngineEvent) -> None:
        """The run's final record: finished / cancelled / failed (an OOM names the lower preset)."""
        if self.record is None:
            return
        try:
            end = time.time()
            if isinstance(terminal, JobFinished):
                self._record(status="finished", ended_at=end)
            elif isinstance(terminal, JobCancelled):
                self._record(status="cancelled", ended_at=end)
            elif isinstance(terminal, JobFailed):
                self._record(
                    status="failed",
                    ended_at=end,
                    error=terminal.message,
                    error_kind=terminal.kind,
                    retry_preset=str(terminal.retry_hint.get("preset", "") or ""),
                )
        except Exception:  # noqa: BLE001 - the record must never mask the job's result
            log.exception("could not write the run record")

    def _loop(self) -> dict[str, Any]:
        cfg = self.cfg
        total = cfg.optim.steps
        self.reporter = LossReporter(self.emit, self.job, total, self.cuda, self._extra_eta)
        plan = self.memory_plan
        self._phase(
            "training",
            f"{self.device}, base {self.base_precision}, "
            f"checkpointing {plan['checkpointed_blocks']}/{plan['blocks']} blocks"
            + (", compiled" if plan["compiled"] else ""),
        )
        t_start = time.perf_counter()
        start_step = self.step
        if cfg.sample.at_start and self.step == 0 and cfg.sample.prompts and 0 not in self.sampled:
            self._sample(0)
        cancelled = False
        while self.step < total:
            self._pause_point()
            if self.cancel.cancelled:
                cancelled = True
                break
            loss = self._one_step()
            self.step += 1
            self.reporter.add(self.step, loss, self.runner.lr)
            if self.step >= total:
                break
            if cfg.save.every and self.step % cfg.save.every == 0:
                self._save()
            if cfg.sample.every and cfg.sample.prompts and self.step % cfg.sample.every == 0:
                self._sample(self.step)
        self.reporter.flush()
        train_s = time.perf_counter() - t_start
        paths = self._save(final=not cancelled)
        if (
            not cancelled
            and cfg.sample.prompts
            and cfg.sample.every
            and self.step not in self.sampled
        ):
            self._sample(self.step)
            self._save_state_only()
        if not cancelled:
            self._write_preview(Path(paths[0]))
        stats = {
            "steps": self.step,
            "device": self.device,
            "base_precision": self.base_precision,
            "adapter_mode": self.prepared.adapter_mode,
            "final_loss": self.reporter.last_loss,
            "losses": self.reporter.losses[-2000:],
            "seconds_per_step": train_s / max(1, self.step - start_step),
            "cache": vars(self.cache.stats),
            "memory": self.memory_plan,
            "checkpoint": str(list_checkpoints(self.ckroot)[-1].path),
        }
        peak = 0
        if self.cuda:
            import torch

            peak = int(torch.cuda.max_memory_allocated(self.device))
        return {"cancelled": cancelled, "paths": paths, "stats": stats, "peak_vram_bytes": peak}

    def _extra_eta(self, step: int) -> float:
        """Seconds of sample rounds and saves still due after ``step`` (measured durations of the
        last ones; a first round not yet measured counts as 0)."""
        cfg = self.cfg
        total = cfg.optim.steps
        left = range(step + 1, total)
        saves = 1 + (sum(1 for s in left if s % cfg.save.every == 0) if cfg.save.every else 0)
        rounds = 0
        if cfg.sample.every and cfg.sample.prompts:
            rounds = sum(1 for s in left if s % cfg.sample.every == 0) + 1
        return saves * self.save_s + rounds * self.sample_s

    # -- saving and samples -------------------------------------------------------------------
    def _metadata(self, lora_format: str = "comfy") -> dict[str, str]:
        from zitdesk.train.lora_io import build_metadata

        return build_metadata(
            self.cfg,
            step=self.step,
            epoch=self.cursor.epoch,
            base_precision=self.base_precision,
            resolution=self.cfg.sample_size(),
            tag_freq=self.tag_freq,
            dataset_name=Path(self.cfg.data.folder).name,
            adapter_name=self.prepared.adapter_name,
            adapter_sha256=self.prepared.adapter_sha256,
            base_model=self.source_label,
            n_images=len(self.items),
            lora_format=lora_format,
        )

    def _state_doc(self) -> dict[str, Any]:
        return {
            "cursor": self.cursor.state(),
            "config": self.cfg.to_toml(),
            "sampled": sorted(self.sampled),
        }

    def _step_lora_path(self) -> Path:
        return self.out / f"{self.cfg.save.name}_{self.step:09d}.safetensors"

    def _write_step_lora(self):
        """``<name>_<step>.safetensors`` from the current weights; returns (pairs, metadata, path)."""
        from zitdesk.train.lora_io import baked_pairs, comfy_state_dict, save_lora

        cfg = self.cfg
        baked = baked_pairs(ad.user_pairs(self.pipe.transformer), cfg.lora.rank, cfg.lora.alpha)
        meta = self._metadata()
        step_file = save_lora(self._step_lora_path(), comfy_state_dict(baked), meta)
        prune_files(self.out, cfg.save.name, cfg.save.keep_last)
        return baked, meta, step_file

    def _save(self, final: bool = False) -> list[str]:
        """Checkpoint + ``<name>_<step>.safetensors``; at the end also ``<name>.safetensors``."""
        from zitdesk.train.lora_io import comfy_state_dict, kohya_state_dict, save_lora

        self.reporter.flush()
        cfg = self.cfg
        t_save = time.perf_counter()
        self._phase("saving", f"Step {self.step}")
        rng = rng_state()
        ckpt = save_checkpoint(
            self.ckroot,
            cfg.save.name,
            self.step,
            adapter=ad.user_state(self.pipe.transformer),
            trainer_state={"runner": self.runner.state_dict(), "rng": rng["torch"]},
            state={**self._state_doc(), "rng": rng["json"]},
            keep_last=cfg.save.keep_last,
        )
        baked, meta, step_file = self._write_step_lora()
        paths = [str(step_file)]
        if final:
            paths = [
                str(
                    save_lora(
                        self.out / f"{cfg.save.name}.safetensors", comfy_state_dict(baked), meta
                    )
                )
            ]
            if cfg.save.export_kohya:
                paths.append(
                    str(
                        save_lora(
                            self.out / f"{cfg.save.name}_kohya.safetensors",
                            kohya_state_dict(baked),
                            self._metadata("kohya"),
                        )
                    )
                )
        self.last_lora, self.saved_step = paths[0], self.step
        self.save_s = time.perf_counter() - t_save
        self._record()
        self.emit(CheckpointSaved(self.job, path=str(ckpt), step=self.step, lora_path=paths[0]))
        self._phase("training", "")
        return paths

    def _write_preview(self, lora: Path) -> None:
        """The newest sample beside the finished LoRA as ``<name>.preview.png`` (the library's
        preview naming, ``zitdesk.library.previews``)."""
        from zitdesk.io import atomic_write

        src = Path(self.last_sample) if self.last_sample else None
        if src is None or not src.is_file():
            return
        try:
            atomic_write(lora.with_name(lora.stem + ".preview.png"), src.read_bytes())
        except OSError as exc:
            log.warning("could not write the LoRA preview: %s", exc)

    def _save_state_only(self) -> None:
        """Record the final sample round in the newest checkpoint's state (no tensor rewrite)."""
        import json

        from zitdesk.io import atomic_write

        latest = list_checkpoints(self.ckroot)
        if latest and latest[-1].step == self.step:
            p = latest[-1].path / "state.json"
            doc = json.loads(p.read_text(encoding="utf-8"))
            doc["sampled"] = sorted(self.sampled)
            atomic_write(p, json.dumps(doc, indent=1))

    def _sample(self, step: int) -> None:
        import torch

        from zitdesk.train.samples import contact_sheet, render_samples

        self.reporter.flush()
        cfg = self.cfg
        t_sample = time.perf_counter()
        self._phase("sampling", f"Step {step}: {len(cfg.sample.prompts)} prompts")
        tr = self.pipe.transformer
        ad.set_active(tr, self.prepared.sample_scales)
        self.runner.set_lora_input_cast(True)
        tr.eval()
        if self.cuda:
            self.pipe.vae.to(self.device)
        stance = (
            torch.compiler.set_stance("force_eager")
            if self.runner.compiled
            else contextlib.nullcontext()
        )
        try:
            embeds = {p: self.text[k] for p, k in self.cache.prompt_keys.items()}
            with stance:
                paths = render_samples(
                    self.pipe,
                    cfg,
                    step,
                    embeds,
                    self.text[self.cache.empty_key],
                    self.samples_dir,
                    cfg.save.name,
                )
        finally:
            ad.set_active(tr, self.prepared.train_scales)
            self.runner.set_lora_input_cast(not self.runner.autocast)
            tr.train()
            if self.cuda and cfg.memory.offload_vae:
                self.pipe.vae.to("cpu")
            _free_memory()
        sheet = contact_sheet(self.samples_dir)
        self.sampled.add(step)
        if paths:
            self.last_sample = str(paths[0])
        self.sample_s = time.perf_counter() - t_sample
        self.emit(
            SampleReady(
                self.job,
                paths=tuple(str(p) for p in paths),
                contact_sheet=str(sheet or ""),
                step=step,
            )
        )
        self._phase("training", "")
