"""The state of one training job: :class:`RunState`, the base of the job's parts.

The job (``trainer._Run``) is put together from parts with one task each, all over this state:
:mod:`~zitdesk.train.prepare` (output folder, model, data, caches, set-up, resume, giving the model
back), :mod:`~zitdesk.train.loop` (the step loop, pause), :mod:`~zitdesk.train.saving`
(checkpoints, LoRA files, preview) and :mod:`~zitdesk.train.render` (sample rounds, "try" images
while paused). Here: the attributes every part reads, phases, warnings and the run record.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from zitdesk.engine.cancel import CancelToken
from zitdesk.engine.events import (
    EngineEvent,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobWarning,
    PhaseChanged,
)
from zitdesk.engine.protocol import Emit
from zitdesk.train.checkpoint import checkpoints_dir
from zitdesk.train.config import TrainSpec

log = logging.getLogger(__name__)


class RunState:
    """State of one training job (kept out of :class:`~zitdesk.train.trainer.Trainer` so nothing
    leaks between jobs)."""

    # Set by the set-up steps (prepare.py) and the loop, in this order.
    source_label: str
    te_home: Any  # where the borrowed pipeline kept its text encoder and VAE
    vae_home: Any
    items: Any  # the scanned dataset items (a tuple of DatasetItem)
    entries: Any  # planned (item, bucket) samples
    captions: list[str]
    tag_freq: Any
    cache: Any  # train.cache.Caches
    text: dict[str, Any]  # cache key -> caption / prompt embedding
    prepared: Any  # train.setup.Prepared
    base_precision: str
    runner: Any  # the StepRunner, built in _setup_training
    memory_plan: dict[str, Any]
    cursor: Any  # train.dataset.BatchCursor
    reporter: Any  # train.reporter.LossReporter, built when the loop starts

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
        self.loss_history: list[tuple[int, float]] = []  # losses before a resume
        from zitdesk.train.distributed import current

        self.world = current()  # one process, or this rank of a data-parallel run (#19)
        self.accum = self.cfg.optim.grad_accum  # per process (a resume may keep the old total)
        self.stop_all = False  # a data-parallel run: some rank asked to stop
        self.stop_flags: list[Any] = []  # … the stop flag of each step's gradient sync

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

    # -- the run record -----------------------------------------------------------------------
    def _record(self, **changes: Any) -> None:
        if self.record is None:
            return
        self._write_losses()
        loss = self.reporter.last_loss if getattr(self, "reporter", None) else float("nan")
        import math

        self.record.update(
            steps_done=self.step,
            final_loss=loss if math.isfinite(loss) else self.record.record.final_loss,
            lora_path=self.last_lora or self.record.record.lora_path,
            last_sample=self.last_sample or self.record.record.last_sample,
            **changes,
        )

    def _write_losses(self) -> None:
        """``losses.csv`` beside ``run.json``: the curve so far (a failure only logs)."""
        from zitdesk.train.losses import write_losses

        reporter = getattr(self, "reporter", None)
        if reporter is None and not self.loss_history:
            return
        points = self.loss_history + (list(reporter.losses) if reporter is not None else [])
        try:
            write_losses(self.out, points)
        except OSError as exc:
            log.warning("could not write the loss curve: %s", exc)

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
