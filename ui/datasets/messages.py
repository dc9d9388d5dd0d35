"""The Datasets workspace's banner: messages, caption conflicts, images changed outside,
the import report.

:class:`DatasetMessages` owns the :class:`~ui.widgets.banner.BannerWidget`. ``show(level,
text)`` is the slot every part's ``message`` signal is connected to; the banner's buttons open
the conflict review, the import report, or ask the session to reload.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Slot
from PySide6.QtWidgets import QWidget

from ui.datasets.dialogs import ConflictDialog, ImportReportDialog, import_summary
from ui.datasets.session import DatasetSession
from ui.widgets.banner import BannerWidget
from zitdesk.dataset.importer import ImportReport


class DatasetMessages(QObject):
    """See the module doc."""

    def __init__(
        self, session: DatasetSession, dialog_parent: QWidget, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.session = session
        self.dialog_parent = dialog_parent
        self.banner = BannerWidget()
        self.last_import: ImportReport | None = None
        self._pending_conflicts: list = []
        session.message.connect(self.show)
        session.conflicts_found.connect(self._on_conflicts)
        session.images_changed_outside.connect(self._on_images_outside)
        self.banner.action_clicked.connect(self._on_action)

    @Slot(str, str)
    def show(self, level: str, text: str) -> None:
        self.banner.show_message(text, level)

    def import_done(self, rep: ImportReport) -> None:
        self.last_import = rep
        self.banner.show_message(
            import_summary(rep),
            "warning" if rep.skipped else "info",
            "Show report",
            "import_report",
        )

    @Slot(list)
    def _on_conflicts(self, conflicts: list) -> None:
        self._pending_conflicts = list(conflicts)
        self.banner.show_message(
            f"{len(conflicts)} caption file(s) were changed by another program while you edited "
            "them. Their version is kept; yours is saved beside it (.zitdesk-conflict).",
            "warning",
            "Review…",
            "conflicts",
        )

    def review_conflicts(self) -> ConflictDialog | None:
        if not self._pending_conflicts:
            return None
        dlg = ConflictDialog(self._pending_conflicts, self.dialog_parent)
        dlg.resolved.connect(self.session.resolve_conflict)
        dlg.finished.connect(dlg.deleteLater)
        self._pending_conflicts = []
        dlg.open()
        return dlg

    @Slot()
    def _on_images_outside(self) -> None:
        self.banner.show_message(
            "Images were added or removed in this folder outside zitdesk.",
            "info",
            "Reload",
            "reload",
        )

    @Slot(str)
    def _on_action(self, key: str) -> None:
        if key == "conflicts":
            self.review_conflicts()
        elif key == "reload":
            self.session.reload()
        elif key == "import_report" and self.last_import is not None:
            dlg = ImportReportDialog(self.last_import, self.dialog_parent)
            dlg.finished.connect(dlg.deleteLater)
            dlg.open()
