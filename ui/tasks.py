"""Short background work off the GUI thread: the one worker API of the UI.

Never used for GPU work (that is the engine thread's job). Functions run on a pool thread must
not touch widgets; they return plain data or a ``QImage``. Results always reach the GUI thread
through queued signals.

* :func:`run_task` — one job on the global ``QThreadPool`` (or a given pool); the owner keeps a
  :class:`TaskSignals` (created on the GUI thread) and connects ``succeeded``/``failed`` to
  ``@Slot`` methods. Used for header reads, polls, thumbnails.
* :class:`TaskPool` — a private pool for an owner that must wait for exactly its own work on
  shutdown (the library's scans and hashing, the datasets workspace).
* :class:`TaskRunner` — a :class:`TaskPool` whose jobs report through its own ``done(tag,
  result)`` / ``failed(tag, message)`` signals, counts outstanding jobs and can deliver queued
  results synchronously (:meth:`TaskRunner.drain`) after :meth:`TaskPool.wait`.
* :class:`Progress` — a progress callback for a worker that reaches the GUI as a signal, only
  when the value changed; :class:`InteractionGate` lets workers step aside while the user
  scrolls or types.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QThreadPool, QTimer, Signal, Slot

log = logging.getLogger(__name__)

WORKER_NICE = 10
_tls = threading.local()


class TaskSignals(QObject):
    """Result channel of pool tasks: ``(tag, result)`` or ``(tag, error message)``."""

    succeeded = Signal(object, object)
    failed = Signal(object, object)


def lower_thread_priority() -> None:
    """Run this pool thread at nice +10 (Linux: per-thread nice by thread id) so the GUI thread
    wins the CPU when workers keep both cores busy. Once per thread; a no-op where unsupported."""
    if getattr(_tls, "lowered", False):
        return
    _tls.lowered = True
    try:
        import os

        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, max(os.getpriority(os.PRIO_PROCESS, tid), WORKER_NICE))
    except (AttributeError, OSError):
        pass


def _run(signals: TaskSignals, tag: Any, fn: Callable[..., Any], args: tuple) -> None:
    try:
        result = fn(*args)
    except Exception as exc:  # noqa: BLE001 - reported to the owner as a plain message
        log.debug("background task %r failed", tag, exc_info=True)
        message = str(exc) or type(exc).__name__
        with contextlib.suppress(RuntimeError):  # the owner was deleted meanwhile
            signals.failed.emit(tag, message)
        return
    with contextlib.suppress(RuntimeError):
        signals.succeeded.emit(tag, result)


class _Callable:
    """A plain callable for ``QThreadPool.start`` (no QRunnable subclass lifetime issues)."""

    __slots__ = ("fn", "args", "done", "nice")

    def __init__(self, fn: Callable[..., Any], args: tuple, nice: bool = False) -> None:
        self.fn, self.args, self.nice = fn, args, nice
        self.done = threading.Event()

    def __call__(self) -> None:
        try:
            if self.nice:
                lower_thread_priority()
            self.fn(*self.args)
        except Exception:  # noqa: BLE001 - a job must never take its pool thread down
            log.exception("background job failed")
        finally:
            self.done.set()


def run_task(
    signals: TaskSignals,
    tag: Any,
    fn: Callable[..., Any],
    *args: Any,
    pool: QThreadPool | None = None,
) -> None:
    """Run ``fn(*args)`` on ``pool`` (default: the global pool); the result goes to
    ``signals`` with ``tag``."""
    (pool or QThreadPool.globalInstance()).start(_Callable(_run, (signals, tag, fn, args)))


def wait_for_tasks(msecs: int = 5000) -> bool:
    """Block until the global pool is idle (shutdown and tests)."""
    return QThreadPool.globalInstance().waitForDone(msecs)


class TaskPool(QObject):
    """A private ``QThreadPool`` whose owner can wait for exactly its own jobs.

    ``nice``: run its threads at a lower priority (background work that must not compete with
    the GUI thread for the CPU)."""

    def __init__(
        self,
        max_threads: int = 2,
        name: str = "zitdesk-tasks",
        parent: QObject | None = None,
        *,
        nice: bool = False,
    ) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max_threads)
        self.pool.setObjectName(name)
        self._nice = nice

    def start(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` (no result: the job reports through its own signals)."""
        self.pool.start(_Callable(fn, args, self._nice))

    def wait(self, msecs: int = 30_000) -> bool:
        """Block until every job of this pool has ended."""
        return self.pool.waitForDone(msecs)

    def activeThreadCount(self) -> int:
        return self.pool.activeThreadCount()


class TaskRunner(TaskPool):
    """A :class:`TaskPool` whose jobs return results: ``done(tag, result)`` or ``failed(tag,
    message)`` on the GUI thread. :attr:`active` counts jobs whose result was not delivered."""

    done = Signal(object, object)
    failed = Signal(object, object)

    def __init__(
        self,
        max_threads: int = 2,
        parent: QObject | None = None,
        *,
        name: str = "zitdesk-tasks",
        nice: bool = True,
    ) -> None:
        super().__init__(max_threads, name, parent, nice=nice)
        self._signals = TaskSignals(self)
        self._signals.succeeded.connect(self._on_succeeded)
        self._signals.failed.connect(self._on_failed)
        self._outstanding = 0

    def run(self, tag: Any, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)``; its result or error is delivered with ``tag``."""
        self._outstanding += 1
        self.start(_run, self._signals, tag, fn, args)

    @Slot(object, object)
    def _on_succeeded(self, tag: object, result: object) -> None:
        self._outstanding -= 1
        self.done.emit(tag, result)

    @Slot(object, object)
    def _on_failed(self, tag: object, message: object) -> None:
        self._outstanding -= 1
        self.failed.emit(tag, message)

    def drain(self) -> None:
        """Deliver results that are already queued, now (after :meth:`wait`; GUI thread)."""
        QCoreApplication.sendPostedEvents(self._signals, QEvent.Type.MetaCall)

    def discard(self) -> None:
        """Drop queued, undelivered results (shutdown, after :meth:`wait`)."""
        QCoreApplication.removePostedEvents(self._signals, QEvent.Type.MetaCall)
        self._outstanding = 0

    @property
    def active(self) -> int:
        return self._outstanding


class Progress(QObject):
    """A progress callback for a worker: ``progress(done, total)`` reaches the GUI thread as
    ``changed(done, total)``, only when the value changed since the last call."""

    changed = Signal(int, int)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._last: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def __call__(self, done: int, total: int) -> None:
        with self._lock:
            if (done, total) == self._last:
                return
            self._last = (done, total)
        with contextlib.suppress(RuntimeError):
            self.changed.emit(done, total)

    def reset(self) -> None:
        with self._lock:
            self._last = None


class InteractionGate(QObject):
    """Lets background work step aside while the user scrolls or types.

    Python threads share one GIL: a worker running Python code makes the GUI thread wait for it
    at every callback (``data()``, delegate ``paint``), which adds up to visible stalls while a
    view repaints. Views call :meth:`hold` on scroll/filter activity; workers call
    :meth:`wait` between items (never in the middle of one), so during interaction they pause
    and resume :data:`HOLD_MS` after the last activity. ``wait`` gives up after a second, so a
    worker never hangs on a gate that is not reopened.
    """

    HOLD_MS = 200

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._open = threading.Event()
        self._open.set()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(self.HOLD_MS)
        self._timer.timeout.connect(self._open.set)

    @Slot()
    def hold(self, *_args) -> None:
        self._open.clear()
        self._timer.start()

    def release(self) -> None:
        self._timer.stop()
        self._open.set()

    def wait(self, timeout: float = 1.0) -> None:
        self._open.wait(timeout)

    @property
    def is_open(self) -> bool:
        return self._open.is_set()
