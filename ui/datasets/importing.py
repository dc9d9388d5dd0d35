"""Import into a dataset: the progress strip and the background import job.

:class:`ImportController` runs :func:`zitdesk.dataset.importer.import_sources` on its own
:class:`ui.tasks.TaskRunner` (one thread), shows progress in :attr:`ImportController.bar` (an
:class:`ImportProgress` strip the workspace lays out) and reports ``finished(target, report)``
or ``failed(message)``. Cancel stops between files; the files already copied stay.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QHBoxLayout, QProgressBar, QPushButton, QWidget

from ui.tasks import Progress, TaskRunner
from ui.widgets.text import plain_label
from zitdesk.dataset.importer import import_sources


class ImportProgress(QWidget):
    """ "Importing 3/40 [=====   ] Cancel" — hidden while no import runs."""

    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = plain_label("Importing…")
        self.bar = QProgressBar()
        self.cancel = QPushButton("Cancel")
        self.cancel.clicked.connect(self.cancel_requested)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.label)
        lay.addWidget(self.bar, 1)
        lay.addWidget(self.cancel)
        self.hide()


class ImportController(QObject):
    """One import at a time into a dataset folder (see the module doc)."""

    finished = Signal(object, object)  # target folder (str), ImportReport
    failed = Signal(str)

    def __init__(self, thumb_cache: Path | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.thumb_cache = thumb_cache
        self.bar = ImportProgress()
        self._runner = TaskRunner(1, self, name="zitdesk-import")
        self._runner.done.connect(self._on_done)
        self._runner.failed.connect(self._on_failed)
        self._cancel = threading.Event()
        self._progress = Progress(self)
        self._progress.changed.connect(self._on_progress)
        self.bar.cancel_requested.connect(self._cancel.set)

    @property
    def active(self) -> bool:
        return self._runner.active > 0

    def start(self, paths: Sequence[str | Path], target: Path) -> bool:
        """Copy ``paths`` (files, folders, zips) into ``target``; False if one is running."""
        if self.active:
            return False
        self._cancel.clear()
        self._progress.reset()
        self.bar.label.setText(f"Importing {len(paths):,} item(s)…")
        self.bar.bar.setRange(0, 0)
        self.bar.show()
        self._runner.run(
            str(target),
            functools.partial(
                import_sources,
                progress=self._progress,
                cancel=self._cancel.is_set,
                thumb_cache=self.thumb_cache,
            ),
            [str(p) for p in paths],
            target,
        )
        return True

    @Slot(int, int)
    def _on_progress(self, done: int, total: int) -> None:
        if not self.active:
            return
        self.bar.bar.setRange(0, max(total, 1))
        self.bar.bar.setValue(done)
        self.bar.label.setText(f"Importing {done:,}/{total:,}")

    @Slot(object, object)
    def _on_done(self, target: object, report: object) -> None:
        self.bar.hide()
        self.finished.emit(target, report)

    @Slot(object, object)
    def _on_failed(self, _target: object, message: object) -> None:
        self.bar.hide()
        self.failed.emit(str(message))

    def shutdown(self) -> None:
        """Cancel a running import and wait for it (the files copied so far stay)."""
        self._cancel.set()
        self._runner.wait(60_000)
        self._runner.discard()
