"""Polls :func:`zitdesk.gpu.memory_snapshot` about once a second on the thread pool.

The timer lives on the GUI thread; each reading runs on a pool thread (NVML and psutil calls can
stall for a few ms) and arrives back as ``snapshot_ready(MemorySnapshot)``. At most one reading is
in flight; a slow one skips ticks instead of piling up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from ui.tasks import TaskSignals, run_task


def _default_snapshot() -> Any:
    from zitdesk.gpu import memory_snapshot

    return memory_snapshot()


class MemoryPoller(QObject):
    snapshot_ready = Signal(object)  # zitdesk.gpu.MemorySnapshot

    def __init__(
        self,
        snapshot_fn: Callable[[], Any] | None = None,
        interval_ms: int = 1000,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._fn = snapshot_fn or _default_snapshot
        self._in_flight = False
        self._tasks = TaskSignals(self)
        self._tasks.succeeded.connect(self._on_result)
        self._tasks.failed.connect(self._on_error)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.poll)
        self.last = None

    def start(self) -> None:
        self.poll()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    @Slot()
    def poll(self) -> None:
        if self._in_flight:
            return
        self._in_flight = True
        run_task(self._tasks, "snapshot", self._fn)

    @Slot(object, object)
    def _on_result(self, _tag: object, snapshot: object) -> None:
        self._in_flight = False
        self.last = snapshot
        self.snapshot_ready.emit(snapshot)

    @Slot(object, object)
    def _on_error(self, _tag: object, _message: object) -> None:
        self._in_flight = False
