"""Background work for the Datasets workspace on a private ``QThreadPool``.

A :class:`TaskRunner` lives on the GUI thread; :meth:`TaskRunner.start` runs ``fn(*args)`` on
its own pool and delivers ``(tag, result)`` or ``(tag, message)`` through queued signals, so slots
run on the GUI thread. The pool is private so the workspace can wait for exactly its own work on
shutdown (and a 10,000-image thumbnail backlog never starves other workspaces' tasks).
Functions run on the pool must not touch widgets; they return plain data or ``QImage``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

log = logging.getLogger(__name__)


class _Job(QRunnable):
    def __init__(self, runner: TaskRunner, tag: Any, fn: Callable[..., Any], args: tuple) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._signals = runner.signals
        self._tag, self._fn, self._args = tag, fn, args

    def run(self) -> None:
        try:
            result = self._fn(*self._args)
        except Exception as exc:  # noqa: BLE001 - reported to the owner as a plain message
            log.debug("dataset task %r failed", self._tag, exc_info=True)
            try:
                self._signals.failed.emit(self._tag, str(exc) or type(exc).__name__)
            except RuntimeError:  # owner deleted meanwhile
                pass
            return
        try:
            self._signals.succeeded.emit(self._tag, result)
        except RuntimeError:
            pass


class TaskSignals(QObject):
    succeeded = Signal(object, object)
    failed = Signal(object, object)


class TaskRunner(QObject):
    """Runs short jobs on a private pool; results arrive on the GUI thread."""

    def __init__(self, max_threads: int = 2, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max_threads)
        self.pool.setObjectName("zitdesk-datasets")
        self.signals = TaskSignals(self)

    def start(self, tag: Any, fn: Callable[..., Any], *args: Any) -> None:
        self.pool.start(_Job(self, tag, fn, args))

    def wait(self, msecs: int = 30_000) -> bool:
        return self.pool.waitForDone(msecs)

    @property
    def active(self) -> int:
        return self.pool.activeThreadCount()
