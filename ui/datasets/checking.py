"""The pre-flight check in the Datasets workspace, kept in step with edits.

:class:`CheckFollower` runs the check when the dataset opens, when the stats panel asks, and
again :data:`RECHECK_MS` after the last edit (captions, flags, exclusions, removals), so the
panel never shows a stale "11 images have no caption". A request while a check runs is kept and
run as soon as that one finishes. Results go to the panel, the model's badges and the grid's
resolution hint.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Slot

from ui.datasets.session import DatasetSession
from ui.datasets.stats_panel import StatsPanel
from ui.datasets.table_model import DatasetTableModel
from ui.datasets.views import GridPanel

RECHECK_MS = 2500


class CheckFollower(QObject):
    """See the module doc. ``auto``: run by itself (on open and after edits)."""

    def __init__(
        self,
        session: DatasetSession,
        stats: StatsPanel,
        model: DatasetTableModel,
        grid: GridPanel,
        auto: bool = True,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.session, self.stats, self.model, self.grid = session, stats, model, grid
        self.auto = auto
        self._queued = None
        self._timer = QTimer(self, singleShot=True, interval=RECHECK_MS)
        self._timer.timeout.connect(self.run)
        session.check_done.connect(self._on_done)
        session.check_progress.connect(stats.set_progress)
        for sig in (
            session.captions_changed,
            session.flags_changed,
            session.images_removed,
            session.images_rewritten,
        ):
            sig.connect(self.follow)
        stats.check_requested.connect(self.request)
        stats.trigger_changed.connect(session.set_trigger)

    @Slot()
    def run(self) -> None:
        self.request(self.stats.options())

    def opened(self) -> None:
        if self.auto:
            self.run()

    @Slot()
    def follow(self, *_args) -> None:
        """An edit happened: run the check again after a pause (never stale)."""
        if self.auto and self.session.dataset is not None:
            self._timer.start()

    @Slot(object)
    def request(self, opts) -> None:
        self.session.set_trigger(opts.trigger)
        if self.session.run_check(opts):
            self.stats.set_busy(True)
            self._queued = None
        elif self.session.checking:
            self._queued = opts  # run again as soon as this one finishes

    @Slot(object)
    def _on_done(self, rep) -> None:
        queued, self._queued = self._queued, None
        self.stats.set_report(rep)
        self.model.set_check_flags(rep.flags)
        self.grid.set_resolution(max(rep.options.resolutions) if rep.options.resolutions else None)
        if queued is not None:
            self.request(queued)

    def stop(self) -> None:
        self._timer.stop()
