"""Background work for the Datasets workspace on a private ``QThreadPool``, without signals.

A :class:`TaskRunner` lives on the GUI thread. :meth:`TaskRunner.start` runs ``fn(*args)`` on its
own pool; the worker appends ``(ok, tag, result)`` to a thread-safe deque, and a GUI-thread
``QTimer`` (running only while jobs are outstanding) drains it and calls ``on_done(tag, result)``
or ``on_failed(tag, message)``. Functions run on the pool must not touch widgets; they return
plain data or ``QImage``.

Why no ``Signal.emit`` from the workers: in PySide6 6.12.0 every Python-side ``emit()`` leaks a
reference to ``True`` (``emit`` returns a borrowed bool), and after a few hundred emits the
interpreter aborts with "bool_dealloc: deallocating True or False". C++ signals (``QTimer``,
``dataChanged`` …) are unaffected, so results are polled instead; ``tick`` lets owners poll
progress values the same way. The pool is private so the workspace can wait for exactly its
own work on shutdown.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Slot

log = logging.getLogger(__name__)

DRAIN_MS = 15


_tls = threading.local()
WORKER_NICE = 10


def lower_thread_priority() -> None:
    """Run this pool thread at nice +10 (Linux: per-thread nice by thread id) so the GUI thread
    wins the CPU when workers keep both cores busy. Once per thread; silently a no-op where
    unsupported."""
    if getattr(_tls, "lowered", False):
        return
    _tls.lowered = True
    try:
        import os

        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, max(os.getpriority(os.PRIO_PROCESS, tid),
                                                 WORKER_NICE))
    except (AttributeError, OSError):
        pass


class _Job(QRunnable):
    def __init__(self, out: deque, tag: Any, fn: Callable[..., Any], args: tuple) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._out, self._tag, self._fn, self._args = out, tag, fn, args

    def run(self) -> None:
        lower_thread_priority()
        try:
            result = self._fn(*self._args)
        except Exception as exc:
            log.debug("dataset task %r failed", self._tag, exc_info=True)
            self._out.append((False, self._tag, str(exc) or type(exc).__name__))
            return
        self._out.append((True, self._tag, result))


class TaskRunner(QObject):
    """Runs short jobs on a private pool; results are delivered on the GUI thread."""

    def __init__(self, max_threads: int = 2, parent: QObject | None = None, *,
                 on_done: Callable[[Any, Any], None] | None = None,
                 on_failed: Callable[[Any, str], None] | None = None,
                 tick: Callable[[], None] | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max_threads)
        self.pool.setObjectName("zitdesk-datasets")
        self.on_done = on_done
        self.on_failed = on_failed
        self.tick = tick
        self._results: deque = deque()
        self._outstanding = 0
        self._lock = threading.Lock()
        self._timer = QTimer(self)
        self._timer.setInterval(DRAIN_MS)
        self._timer.timeout.connect(self.drain)

    def start(self, tag: Any, fn: Callable[..., Any], *args: Any) -> None:
        with self._lock:
            self._outstanding += 1
        self.pool.start(_Job(self._results, tag, fn, args))
        if not self._timer.isActive():
            self._timer.start()

    @Slot()
    def drain(self) -> None:
        """Deliver finished results (GUI thread); the timer stops when nothing is left."""
        if self.tick is not None:
            self.tick()
        while self._results:
            ok, tag, result = self._results.popleft()
            with self._lock:
                self._outstanding -= 1
            try:
                if ok and self.on_done is not None:
                    self.on_done(tag, result)
                elif not ok and self.on_failed is not None:
                    self.on_failed(tag, result)
            except Exception:
                log.exception("handling the result of %r failed", tag)
        with self._lock:
            idle = self._outstanding == 0
        if idle and not self._results:
            self._timer.stop()

    def wait(self, msecs: int = 30_000) -> bool:
        """Block until the pool is idle (results stay queued until :meth:`drain`)."""
        return self.pool.waitForDone(msecs)

    def discard(self) -> None:
        """Forget delivered-but-unhandled results (shutdown, after :meth:`wait`)."""
        self._timer.stop()
        with self._lock:
            self._outstanding -= len(self._results)
            self._results.clear()

    @property
    def active(self) -> int:
        with self._lock:
            return self._outstanding


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


class Progress:
    """A latest-value box a worker writes and the GUI reads (no signals, see module doc)."""

    def __init__(self) -> None:
        self.value: tuple[int, int] | None = None
        self._seen: tuple[int, int] | None = None

    def __call__(self, done: int, total: int) -> None:
        self.value = (done, total)

    def take(self) -> tuple[int, int] | None:
        """The value if it changed since the last call, else None."""
        v = self.value
        if v is None or v == self._seen:
            return None
        self._seen = v
        return v

    def reset(self) -> None:
        self.value = self._seen = None
