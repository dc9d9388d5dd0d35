"""The engine thread and the controller that feeds it.

``EngineWorker`` (a QObject moved onto one long-lived ``QThread``) owns the GPU: it builds the
engine lazily on its first job (so torch/diffusers are imported there, never at start-up) and runs
one job at a time through the engine protocol (``run(request, emit, cancel)``). Every engine event
leaves the thread as ``Signal(object)`` carrying the engine's frozen dataclass.

``EngineController`` lives on the GUI thread. It owns the one job queue for every kind
(``generate``, ``train``, ``caption`` …) and one *lane* per GPU in use (:mod:`zitdesk.engine.lanes`:
the main lane is the engine's own device, ``cuda:N`` another card), each with its own engine thread
and engine. Jobs of one lane run one at a time in queue order, so a generation submitted while
training on the same card waits and runs after it; jobs of different lanes run at once (train on
card 1, generate on card 0). A data-parallel training job holds the lanes of all its cards, and a
queued job never overtakes an earlier one waiting for one of its cards. While a training job is
paused, :meth:`EngineController.try_generate` hands a generation to that job (kind ``try``:
rendered inside the paused trainer with the LoRA as of this step, its events under its own job
id); tries not served when the training job ends are queued as ordinary generations, first in
line. Cancel sets the job's :class:`CancelToken` directly: a queued "cancel" call would wait behind
the busy worker. Previews are throttled (about 4 per second) and turned into ``QImage``s here, on
the GUI thread (``job_preview`` says whose); widgets make the ``QPixmap``.

Thread rules: cross-thread connections go to ``@Slot`` methods only (no lambdas), and the worker
never touches widgets.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QDeadlineTimer, QObject, QThread, QTimer, Signal, Slot
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
from zitdesk.engine.lanes import lanes_of
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

    def __init__(self, engine_factory: EngineFactory, lane: str = "") -> None:
        super().__init__()
        self._factory = engine_factory
        self._lane = lane  # the card this worker's thread runs on ("" = the engine's own)
        self._bound = False
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
            if self._lane and not self._bound:  # this thread's current CUDA device = its card
                from zitdesk.engine.lanes import bind_thread

                self._bound = bind_thread(self._lane)
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
    def release(self) -> None:
        """Free this engine's models and memory (it loads again on its next job): its card is
        about to be used by a job of another lane (a data-parallel training run)."""
        try:
            if self._engine is not None:
                self._engine.shutdown()
        except Exception:  # noqa: BLE001
            log.exception("engine release failed")

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


class _Lane(QObject):
    """One GPU lane: its engine thread, its worker (own engine) and the job it runs."""

    dispatch = Signal(object)  # → EngineWorker.run_job (queued, this lane's thread)
    stop = Signal()  # → EngineWorker.shutdown
    release = Signal()  # → EngineWorker.release (free the card for another lane's job)

    def __init__(self, key: str, factory: EngineFactory, on_event: Callable[[Any], None]) -> None:
        super().__init__()
        self.key = key
        self.job: Job | None = None
        self.thread = QThread()
        self.thread.setObjectName(f"zitdesk-engine-{key}" if key else "zitdesk-engine")
        self.worker = EngineWorker(factory, key)
        self.worker.moveToThread(self.thread)
        self.dispatch.connect(self.worker.run_job)
        self.stop.connect(self.worker.shutdown)
        self.release.connect(self.worker.release)
        self.worker.event.connect(on_event)
        self.thread.finished.connect(self.worker.deleteLater)
        self.started_once = False


class EngineController(QObject):
    """GUI-thread queue and dispatcher; the single place job state changes."""

    job_queued = Signal(object)  # Job
    job_started = Signal(object)  # JobStarted
    phase_changed = Signal(object)  # PhaseChanged
    warning = Signal(object)  # JobWarning
    progress = Signal(object)  # StepProgress (every step; preview throttled separately)
    preview_ready = Signal(QImage)  # throttled live preview (of any job)
    job_preview = Signal(str, QImage)  # the same, with the job id it belongs to
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

    def __init__(
        self,
        engine_factory: EngineFactory | None = None,
        parent: QObject | None = None,
        preview_interval_ms: int = PREVIEW_INTERVAL_MS,
    ) -> None:
        super().__init__(parent)
        self._factory = engine_factory or default_engine_factory
        self._pending: list[Job] = []
        self._lanes: dict[str, _Lane] = {}
        self._jobs: dict[str, Job] = {}
        self._tries: dict[str, Job] = {}  # try jobs handed to the paused training job
        self._stopped = False
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(preview_interval_ms)
        self._preview_timer.timeout.connect(self._flush_preview)
        self._pending_preview: tuple[str, Any] | None = None
        # Lanes (and their threads) start with their first job, so a window that fails to build
        # never leaves a running QThread behind (destroying one aborts the process).

    def _lane(self, key: str) -> _Lane:
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane(key, self._factory, self._on_event)
        return lane

    # -- queries ------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """True while any job runs (on any GPU)."""
        return any(lane.job is not None for lane in self._lanes.values())

    @property
    def running_jobs(self) -> list[Job]:
        """The running (or paused) jobs, main lane first; a job on several cards once."""
        seen: list[Job] = []
        for key in sorted(self._lanes):
            job = self._lanes[key].job
            if job is not None and job not in seen:
                seen.append(job)
        return seen

    @property
    def current(self) -> Job | None:
        """The first running job (the main lane's when it has one)."""
        jobs = self.running_jobs
        return jobs[0] if jobs else None

    @property
    def pending(self) -> list[Job]:
        return list(self._pending)

    def job(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def lanes_of(self, job: Job) -> tuple[str, ...]:
        return lanes_of(job.request)

    def jobs_ahead(self, job: Job) -> int:
        """How many jobs end before ``job`` can start: the ones running on its cards and the ones
        queued before it for any of them (0 once it runs)."""
        if job.state != "queued" or job not in self._pending:
            return 0
        mine = set(lanes_of(job.request))
        running = {id(j) for k in mine if (j := self._lane_job(k)) is not None}
        before = self._pending[: self._pending.index(job)]
        return len(running) + sum(1 for j in before if mine & set(lanes_of(j.request)))

    def _lane_job(self, key: str) -> Job | None:
        lane = self._lanes.get(key)
        return lane.job if lane is not None else None

    def current_training(self) -> Job | None:
        """The running (or paused) training job, if any."""
        return next((j for j in self.running_jobs if j.kind == "train"), None)

    @property
    def tries(self) -> list[Job]:
        """Try jobs waiting in or running inside the paused training job."""
        return list(self._tries.values())

    @property
    def running(self) -> bool:
        """True while an engine thread is alive (each starts with its lane's first job)."""
        return any(lane.thread.isRunning() for lane in self._lanes.values())

    # -- commands -----------------------------------------------------------------------------
    def submit(self, request: Any, kind: str | None = None) -> Job:
        """Queue a request (a frozen engine dataclass); it runs when its GPU is free. ``kind``
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
        """Cancel a running job (default: every running one) or drop a queued one. Safe to call
        at any time."""
        if job_id is not None and job_id in self._tries:
            job = self._tries[job_id]
            train = self._jobs.get(job.parent)
            if job.state == "queued" and train is not None and train.token.withdraw(job_id):
                self._end_try(job, JobCancelled(job_id))
            else:
                job.token.cancel()  # running inside the trainer: it stops before decoding
            return
        for running in self.running_jobs:
            if job_id is None or running.job_id == job_id:
                running.token.cancel()  # set directly: the worker is busy
                if job_id is not None:
                    return
        if job_id is None:
            return
        for job in self._pending:
            if job.job_id == job_id:
                self._pending.remove(job)
                job.state = "cancelled"
                job.result = JobCancelled(job_id)
                self.job_cancelled.emit(job.result)
                self.job_ended.emit(job)
                self.queue_changed.emit()
                self._dispatch_next()  # a job behind it on another card may start now
                return

    def move(self, job_id: str, index: int) -> bool:
        """Move a queued job to position ``index`` of :attr:`pending` (clamped); True if it moved.

        Only waiting jobs move; running ones stay where they are."""
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
        self._dispatch_next()
        return True

    def cancel_all(self) -> None:
        for job in list(self._tries.values()):
            job.token.cancel()
        for job in list(self._pending):
            self.cancel(job.job_id)
        self.cancel()

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Cancel everything, free every engine and wait for the threads. True if they stopped."""
        if self._stopped:
            return not self.running
        self._stopped = True
        self.cancel_all()
        self._preview_timer.stop()
        stopped = True
        deadline = QDeadlineTimer(timeout_ms)
        for lane in self._lanes.values():
            if lane.thread.isRunning():
                lane.stop.emit()  # runs after the (cancelled) current job returns
            elif not lane.started_once:
                lane.worker.deleteLater()
        for lane in self._lanes.values():
            if lane.thread.isRunning():
                stopped = lane.thread.wait(deadline) and stopped
        if not stopped:
            log.error("an engine thread did not stop within %d ms", timeout_ms)
        return stopped

    def wait(self, timeout_ms: int | None = None) -> bool:
        """Wait for the engine threads to end (forever when ``timeout_ms`` is None)."""
        lanes = list(self._lanes.values())
        if timeout_ms is None:
            return all([lane.thread.wait() for lane in lanes])
        deadline = QDeadlineTimer(timeout_ms)
        return all([lane.thread.wait(deadline) for lane in lanes])

    # -- internals ----------------------------------------------------------------------------
    def _dispatch_next(self) -> None:
        """Start every queued job whose cards are free, in queue order: a job never overtakes an
        earlier one that waits for one of its cards, so each card's jobs keep their order."""
        if self._stopped:
            return
        claimed: set[str] = set()  # cards an earlier waiting job is first in line for
        for job in list(self._pending):
            lanes = set(lanes_of(job.request))
            if lanes & claimed or any(self._lane_job(k) is not None for k in lanes):
                claimed |= lanes
                continue
            self._pending.remove(job)
            job.state = "running"
            for key in lanes:
                self._lane(key).job = job
            lane = self._lane(min(lanes))  # the job runs on the thread of its first card
            for key in lanes - {lane.key}:  # the other cards' engines let go of their memory
                other = self._lanes.get(key)
                if other is not None and other.thread.isRunning():
                    other.release.emit()
            if not lane.thread.isRunning():
                lane.thread.start()
                lane.started_once = True
            self.queue_changed.emit()
            self.busy_changed.emit(True)
            lane.dispatch.emit(job)

    def _running_job(self, job_id: str) -> Job | None:
        return next((j for j in self.running_jobs if j.job_id == job_id), None)

    @Slot(object)
    def _on_event(self, ev: EngineEvent) -> None:
        try_job = self._tries.get(ev.job_id)
        job = try_job if try_job is not None else self._running_job(ev.job_id)
        if job is None:
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
                self._pending_preview = (ev.job_id, ev.preview)
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
        if self._pending_preview is not None and self._pending_preview[0] == job.job_id:
            self._pending_preview = None
        for lane in self._lanes.values():
            if lane.job is job:
                lane.job = None
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
        if not self._pending and not self.busy:
            self.busy_changed.emit(False)
        self._dispatch_next()

    @Slot()
    def _flush_preview(self) -> None:
        pending, self._pending_preview = self._pending_preview, None
        if pending is None:
            return
        job_id, array = pending
        image = preview_to_qimage(array)
        if image is not None:
            self.preview_ready.emit(image)
            self.job_preview.emit(job_id, image)
        self._preview_timer.start()
