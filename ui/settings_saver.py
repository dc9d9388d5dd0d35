"""Debounced autosave of :class:`AppSettings` (dirty flag + ~1 s timer, flushed on exit)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Slot

from zitdesk.settings import AppSettings, save_settings

log = logging.getLogger(__name__)


class SettingsSaver(QObject):
    def __init__(
        self,
        settings: AppSettings,
        collect: Callable[[AppSettings], None] | None = None,
        delay_ms: int = 1000,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings
        self._collect = collect
        self.dirty = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(delay_ms)
        self._timer.timeout.connect(self.flush)

    @Slot()
    def mark_dirty(self, *_args) -> None:
        self.dirty = True
        self._timer.start()

    @Slot()
    def flush(self) -> None:
        self._timer.stop()
        if not self.dirty:
            return
        if self._collect is not None:
            self._collect(self.settings)
        try:
            save_settings(self.settings)
            self.dirty = False
        except OSError as exc:
            log.error("could not save settings: %s", exc)
