"""The engine thread and the controller that feeds it.

``EngineWorker`` (a QObject moved onto one long-lived ``QThread``) owns the GPU: it builds the
engine lazily on its first job (so torch/diffusers are imported there, never at start-up) and runs
one job at a time through the engine protocol (``run(request, emit, cancel)``). Every engine event
leaves the thread as ``Signal(object)`` carrying the engine's frozen dataclass.

``EngineController`` lives on the GUI thread. It owns the one job queue for every kind
(``generate``, ``train``) and sends the next job only after the previous one's terminal event, so a
generation submitted while training runs waits and runs after it. While a training job is paused,
:meth:`EngineController.try_generate` hands a generation to that job (kind ``try``: rendered inside
the paused trainer with the LoRA as of this step, its events under its own job id); tries not
served when the training job ends are queued as ordinary generations, first in line. Cancel sets the job's :class:`CancelToken` directly: a
queued "cancel" call would wait behind the busy worker. Previews are throttled (about 4 per second)
and turned into ``QImage``s here, on the GUI thread; widgets make the ``QPixmap``.

Thread rules: cross-thread connections go to ``@Slot`` methods only (no lambdas), and the worker
never touches widgets.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot
from PySide6.QtGui import QImage

from zitdesk.caption.request import CaptionReady
from zitdesk.engine.cancel import CancelToken
from zitdesk.engine.events import (
    TERMINAL_EVENTS,
    EngineEvent,
    ImageReady,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobStarted,
    JobWarning,
    LoraReport,
    PhaseChanged,
    StepProgress,
)
from zitdesk.engine.protocol import Engine
from zitdesk.train.events import CheckpointSaved, Paused, Resumed, SampleReady, TrainStep

log = logging.getLogger(__name__)

EngineFactory = Callable[[], Engine]
PREVIEW_INTERVAL_MS = 250


def default_engine_factory() -> Engine:
    """The real engine (generation + training, one shared pipeline); built on the engine thread
    so torch and diffusers load there, late."""
    from zitdesk.engine.studio import StudioEngine

    return StudioEngine()


def kind_of(request: Any) -> str:
    """``generate`` for a GenerateRequest, ``train`` for a TrainSpec (by type name: no import of
    the training modules on the GUI thread)."""
    name = type(request).__name__
    kinds = {"GenerateRequest": "generate", "TrainSpec": "train", "CaptionRequest": "caption"}
    return kinds.get(name, "generate")


@dataclass(eq=False)
class Job:
    """One queued unit of engine work: kind ``generate``, ``train`` or ``try`` (a generation
    served inside a paused training job)."""

    request: Any
    kind: str = "generate"
    token: CancelToken = field(default_factory=CancelToken)
    state: str = "queued"  # queued | running | paused | finished | cancelled | failed
    result: Any = None  # the terminal event once the job ended
    parent: str = ""  # a try job: the training job that serves it

    @property
    def job_id(self) -> str:
        return self.request.job_id


def preview_to_qimage(array: Any) -> QImage | None:
    """An (H, W, 3) uint8 array as a deep-copied RGB888 ``QImage`` (None for anything else)."""
    shape = getattr(array, "shape", None)
    if shape is None or len(shape) != 3 or shape[2] != 3 or str(array.dtype) != "uint8":
        return None
    import numpy as np

    data = np.ascontiguousarray(array)
    h, w = int(shape[0]), int(shape[1])
    return QImage(data.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class EngineWorker(QObject):
    """Runs jobs on the engine thread. Never lets an exception escape a job."""

    event = Signal(object)  # EngineEvent, emitted on the engine thread

    def __init__(self, engine_factory: EngineFactory) -> None:
        super().__init__()
        self._factory = engine_factory
        self._engine: Engine | None = None
        self._job_id = ""
        self._terminal_sent = False

    def _emit(self, ev: EngineEvent) -> None:
        if isinstance(ev, TERMINAL_EVENTS) and ev.job_id == self._job_id:
            self._terminal_sent = True
        self.event.emit(ev)

    @Slot(object)
    def run_job(self, job: Job) -> None:
        self._job_id = job.job_id
        self._terminal_sent = False
        try:
            if job.token.cancelled:
                self._emit(JobCancelled(job.job_id))
                return
            if self._engine is None:
                self._engine = self._factory()
            self._engine.run(job.request, self._emit, job.token)
        except Exception as exc:  # noqa: BLE001 - a broken job must not kill the engine thread
            log.exception("engine job %s raised", job.job_id)
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            self._emit(
                JobFailed(
                    job.job_id,
                    kind="error",
                    traceback=traceback.format_exc(),
                    message=f"The engine stopped with an error: {type(exc).__name__}: {first}",
                )
            )
        finally:
            if not self._terminal_sent:
                # The protocol promises one terminal event; make sure the queue moves on.
                if job.token.cancelled:
                    self._emit(JobCancelled(job.job_id))
                else:
                    self._emit(
                        JobFailed(
                            job.job_id,
                            kind="error",
                            message="The engine ended the job without a result.",
                        )
                    )

    @Slot()
    def shutdown(self) -> None:
        """Free the engine (models, VRAM) and stop this thread's event loop."""
        try:
            if self._engine is not None:
                self._engine.shutdown()
        except Exception:  # noqa: BLE001
            log.exception("engine shutdown failed")
        finally:
            self._engine = None
            QThread.currentThread().quit()


class EngineController(QObject):
    """GUI-thread queue and dispatcher; the single place job state changes."""

    job_queued = Signal(object)  # Job
    job_started = Signal(object)  # JobStarted
    phase_changed = Signal(object)  # PhaseChanged
    warning = Signal(object)  # JobWarning
    progress = Signal(object)  # StepProgress (every step; preview throttled separately)
    preview_ready = Signal(QImage)  # throttled live preview
    image_ready = Signal(object)  # ImageReady
    lora_report = Signal(object)  # LoraReport
    job_finished = Signal(object)  # JobFinished
    job_cancelled = Signal(object)  # JobCancelled
    job_failed = Signal(object)  # JobFailed
    job_ended = Signal(object)  # Job, after any terminal event
    busy_changed = Signal(bool)
    queue_changed = Signal()
    # training (every event carries its job id)
    train_step = Signal(object)  # TrainStep
    sample_ready = Signal(object)  # SampleReady
    checkpoint_saved = Signal(object)  # CheckpointSaved
    paused = Signal(object)  # Paused (with lora_path: the LoRA as of this step)
    resumed = Signal(object)  # Resumed
    caption_ready = Signal(object)  # CaptionReady (one image of a caption job)

    _dispatch = Signal(object)  # → EngineWorker.run_job (queued, engine thread)
    _shutdown_worker = Signal()  # → EngineWorker.shutdown

    def __init__(
        self,
        engine_factory: EngineFactory | None = None,
        parent: QObject | None = None,
        preview_interval_ms: int = PREVIEW_INTERVAL_MS,
    ) -> None:
        super().__init__(parent)
        self._pending: list[Job] = []
        self._current: Job | None = None
        self._jobs: dict[str, Job] = {}
        self._tries: dict[str, Job] = {}  # try jobs handed to the paused training job
        self._stopped = False
        self._thread = QThread()
        self._thread.setObjectName("zitdesk-engine")
        self._worker = EngineWorker(engine_factory or default_engine_factory)
        self._worker.moveToThread(self._thread)
        self._dispatch.connect(self._worker.run_job)
        self._shutdown_worker.connect(self._worker.shutdown)
        self._worker.event.connect(self._on_event)
        self._thread.finished.connect(self._worker.deleteLater)
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(preview_interval_ms)
        self._preview_timer.timeout.connect(self._flush_preview)
        self._pending_preview: Any = None
        # The thread starts with the first job, so a window that fails to build never leaves a
        # running QThread behind (destroying one aborts the process).

    def _ensure_thread(self) -> None:
        if not self._thread.isRunning() and not self._stopped:
            self._thread.start()

    # -- queries ------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._current is not None

    @property
    def current(self) -> Job | None:
        return self._current

    @property
    def pending(self) -> list[Job]:
        return list(self._pending)

    def job(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def current_training(self) -> Job | None:
        """The running (or paused) training job, if any."""
        job = self._current
        return job if job is not None and job.kind == "train" else None

    @property
    def tries(self) -> list[Job]:
        """Try jobs waiting in or running inside the paused training job."""
        return list(self._tries.values())

    @property
    def running(self) -> bool:
        """True while the engine thread is alive (it starts with the first job)."""
        return self._thread.isRunning()

    # -- commands -----------------------------------------------------------------------------
    def submit(self, request: Any, kind: str | None = None) -> Job:
        """Queue a request (a frozen engine dataclass); it runs when the engine is free. ``kind``
        defaults from the type: GenerateRequest → "generate", TrainSpec → "train"."""
        if self._stopped:
            raise RuntimeError("the engine has been shut down")
        job = Job(request, kind or kind_of(request))
        self._jobs[job.job_id] = job
        self._pending.append(job)
        self.job_queued.emit(job)
        self.queue_changed.emit()
        self._dispatch_next()
        return job

    def pause(self, job_id: str | None = None) -> bool:
        """Pause the running training job after its current step (``Paused`` follows).
        True if a training job was asked to pause."""
        job = self.current_training()
        if job is None or (job_id is not None and job.job_id != job_id):
            return False
        job.token.pause()
        return True

    def resume(self, job_id: str | None = None) -> bool:
        """Resume the paused training job (``Resumed`` follows)."""
        job = self.current_training()
        if job is None or (job_id is not None and job.job_id != job_id):
            return False
        job.token.resume()
        return True

    def try_generate(self, request: Any) -> Job:
        """Generate inside the paused training job (kind "try": same loaded model, the LoRA as of
        this step, training adapter off). With no paused training job: an ordinary submit."""
        train = self.current_training()
        if self._stopped or train is None or not train.token.paused or train.token.cancelled:
            return self.submit(request, "generate")
        job = Job(request, "try", parent=train.job_id)
        self._jobs[job.job_id] = job
        self._tries[job.job_id] = job
        self.job_queued.emit(job)
        train.token.interject(request, job.token)
        self.queue_changed.emit()
        return job

    def cancel(self, job_id: str | None = None) -> None:
        """Cancel the running job (default) or drop a queued one. Safe to call at any time."""
        if job_id is not None and job_id in self._tries:
            job = self._tries[job_id]
            train = self._jobs.get(job.parent)
            if job.state == "queued" and train is not None and train.token.withdraw(job_id):
                self._end_try(job, JobCancelled(job_id))
            else:
                job.token.cancel()  # running inside the trainer: it stops before decoding
            return
        if job_id is None or (self._current is not None and self._current.job_id == job_id):
            if self._current is not None:
                self._current.token.cancel()  # set directly: the worker is busy
            return
        for job in self._pending:
            if job.job_id == job_id:
                self._pending.remove(job)
                job.state = "cancelled"
                job.result = JobCancelled(job_id)
                self.job_cancelled.emit(job.result)
                self.job_ended.emit(job)
                self.queue_changed.emit()
                return

    def move(self, job_id: str, index: int) -> bool:
        """Move a queued job to position ``index`` of :attr:`pending` (clamped); True if it moved.

        Only waiting jobs move; the running one stays where it is."""
        for pos, job in enumerate(self._pending):  # noqa: B007 - pos is used after the loop
            if job.job_id == job_id:
                break
        else:
            return False
        index = max(0, min(int(index), len(self._pending) - 1))
        if index == pos:
            return False
        del self._pending[pos]
        self._pending.insert(index, job)
        self.queue_changed.emit()
        return True

    def cancel_all(self) -> None:
        for job in list(self._tries.values()):
            job.token.cancel()
        for job in list(self._pending):
            self.cancel(job.job_id)
        self.cancel()

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Cancel everything, free the engine and wait for the thread. True if it stopped."""
        if self._stopped:
            return not self._thread.isRunning()
        self._stopped = True
        self.cancel_all()
        self._preview_timer.stop()
        if self._thread.isRunning():
            self._shutdown_worker.emit()  # runs after the (cancelled) current job returns
            stopped = self._thread.wait(timeout_ms)
        else:
            stopped = True
            self._worker.deleteLater()
        if not stopped:
            log.error("the engine thread did not stop within %d ms", timeout_ms)
        return stopped

    def wait(self, timeout_ms: int | None = None) -> bool:
        """Wait for the engine thread to end (forever when ``timeout_ms`` is None)."""
        return self._thread.wait() if timeout_ms is None else self._thread.wait(timeout_ms)

    # -- internals ----------------------------------------------------------------------------
    def _dispatch_next(self) -> None:
        if self._current is not None or not self._pending or self._stopped:
            return
        self._ensure_thread()
        job = self._pending.pop(0)
        job.state = "running"
        self._current = job
        self.queue_changed.emit()
        self.busy_changed.emit(True)
        self._dispatch.emit(job)

    @Slot(object)
    def _on_event(self, ev: EngineEvent) -> None:
        job = self._current
        try_job = self._tries.get(ev.job_id)
        if try_job is not None:
            job = try_job
        elif job is None or ev.job_id != job.job_id:
            log.debug("ignoring event for inactive job %s", ev.job_id)
            return
        if isinstance(ev, TrainStep):
            self.train_step.emit(ev)
        elif isinstance(ev, SampleReady):
            self.sample_ready.emit(ev)
        elif isinstance(ev, CheckpointSaved):
            self.checkpoint_saved.emit(ev)
        elif isinstance(ev, Paused):
            job.state = "paused"
            self.paused.emit(ev)
        elif isinstance(ev, Resumed):
            job.state = "running"
            self.resumed.emit(ev)
        elif isinstance(ev, StepProgress):
            self.progress.emit(ev)
            if ev.preview is not None:
                self._pending_preview = ev.preview
                if not self._preview_timer.isActive():
                    self._flush_preview()
        elif isinstance(ev, JobStarted):
            if try_job is not None:
                try_job.state = "running"
            self.job_started.emit(ev)
        elif isinstance(ev, PhaseChanged):
            self.phase_changed.emit(ev)
        elif isinstance(ev, JobWarning):
            self.warning.emit(ev)
        elif isinstance(ev, ImageReady):
            self.image_ready.emit(ev)
        elif isinstance(ev, LoraReport):
            self.lora_report.emit(ev)
        elif isinstance(ev, CaptionReady):
            self.caption_ready.emit(ev)
        elif isinstance(ev, TERMINAL_EVENTS):
            if try_job is not None:
                self._end_try(try_job, ev)
            else:
                self._finish(job, ev)

    def _settle(self, job: Job, ev: EngineEvent) -> None:
        """Record a job's terminal event and announce it (typed signal, then ``job_ended``)."""
        job.result = ev
        if isinstance(ev, JobFinished):
            job.state = "finished"
            self.job_finished.emit(ev)
        elif isinstance(ev, JobCancelled):
            job.state = "cancelled"
            self.job_cancelled.emit(ev)
        else:
            job.state = "failed"
            self.job_failed.emit(ev)
        self.job_ended.emit(job)

    def _end_try(self, job: Job, ev: EngineEvent) -> None:
        self._tries.pop(job.job_id, None)
        self._settle(job, ev)
        self.queue_changed.emit()

    def _finish(self, job: Job, ev: EngineEvent) -> None:
        self._preview_timer.stop()
        self._pending_preview = None
        self._current = None
        if job.kind == "train":
            # Tries the trainer did not serve (it resumed or ended first) run next, as ordinary
            # generations, in the order they were asked for.
            leftovers = [
                self._tries.pop(r.job_id)
                for r, _ in job.token.drain_interjected()
                if getattr(r, "job_id", None) in self._tries
            ]
            for t in reversed(leftovers):
                t.kind, t.parent, t.state = "generate", "", "queued"
                if t.token.cancelled:
                    t.state, t.result = "cancelled", JobCancelled(t.job_id)
                    self.job_cancelled.emit(t.result)
                    self.job_ended.emit(t)
                    continue
                self._pending.insert(0, t)
        self._settle(job, ev)
        if not self._pending:
            self.busy_changed.emit(False)
        self._dispatch_next()

    @Slot()
    def _flush_preview(self) -> None:
        array, self._pending_preview = self._pending_preview, None
        if array is None:
            return
        image = preview_to_qimage(array)
        if image is not None:
            self.preview_ready.emit(image)
        self._preview_timer.start()
