"""Short background work on the global ``QThreadPool`` (scans, header reads, thumbnails, polls).

Usage: a GUI object owns a :class:`TaskSignals` (created on the GUI thread, so results arrive
there through queued connections) and connects its ``succeeded``/``failed`` signals to ``@Slot``
methods, then calls :func:`run_task`. The function runs on a pool thread and must not touch
widgets; it returns plain data or a ``QImage``. Never used for GPU work (that is the engine
thread's job).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, Signal

log = logging.getLogger(__name__)


class TaskSignals(QObject):
    """Result channel of pool tasks: ``(tag, result)`` or ``(tag, error message)``."""

    succeeded = Signal(object, object)
    failed = Signal(object, object)


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


def run_task(signals: TaskSignals, tag: Any, fn: Callable[..., Any], *args: Any) -> None:
    """Run ``fn(*args)`` on the global pool; the result goes to ``signals`` with ``tag``."""
    QThreadPool.globalInstance().start(_Callable(signals, tag, fn, args))


class _Callable:
    """A plain callable for ``QThreadPool.start`` (no QRunnable subclass lifetime issues)."""

    __slots__ = ("signals", "tag", "fn", "args")

    def __init__(self, signals: TaskSignals, tag: Any, fn: Callable[..., Any], args: tuple) -> None:
        self.signals, self.tag, self.fn, self.args = signals, tag, fn, args

    def __call__(self) -> None:
        _run(self.signals, self.tag, self.fn, self.args)


def wait_for_tasks(msecs: int = 5000) -> bool:
    """Block until the pool is idle (shutdown and tests)."""
    return QThreadPool.globalInstance().waitForDone(msecs)
