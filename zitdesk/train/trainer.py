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

The job is one :class:`_Run` put together from parts with one task each, over one state
(:mod:`~zitdesk.train.runstate`): :mod:`~zitdesk.train.prepare` (set-up, resume, giving the model
back), :mod:`~zitdesk.train.loop` (steps, pause), :mod:`~zitdesk.train.saving` (checkpoints, LoRA
files), :mod:`~zitdesk.train.render` (samples, "try" images); losses are reported by
:mod:`~zitdesk.train.reporter` and failures worded by :mod:`~zitdesk.train.failures`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from zitdesk.engine.cancel import Cancelled, CancelToken
from zitdesk.engine.events import EngineEvent, JobCancelled, JobFailed, JobFinished, JobStarted
from zitdesk.engine.protocol import Emit
from zitdesk.train.config import TrainSpec
from zitdesk.train.failures import failure, free_memory
from zitdesk.train.loop import LoopMixin
from zitdesk.train.prepare import PrepareMixin
from zitdesk.train.reporter import Diverged, LossReporter

__all__ = ["Diverged", "LossReporter", "Trainer"]

log = logging.getLogger(__name__)


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
            terminal = failure(job, spec.config, exc, run.phase if run else "starting")
        finally:
            if run is not None:
                run.finish_record(terminal)
                run.close(reusable=not isinstance(terminal, JobFailed))
            free_memory()
        try:
            emit(terminal)
        except Exception:  # noqa: BLE001 - a broken listener must not escape the engine thread
            log.exception("the terminal event of %s could not be delivered", job)

    def shutdown(self) -> None:
        free_memory()


class _Run(PrepareMixin, LoopMixin):
    """One training job: the set-up steps, then the loop (see the module docstring)."""

    def execute(self) -> dict[str, Any]:
        self._prepare_output()
        self._load_model()
        self._load_data()
        self._build_caches()
        self._unload_encoders()
        self._setup_training()
        self._maybe_resume()
        # data-parallel: every rank starts from rank 0's LoRA (its random init, or the resume)
        self.world.broadcast_params(self.runner.params)
        return self._loop()
