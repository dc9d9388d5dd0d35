"""Offers the previous session's crash log once, on the next start."""

from __future__ import annotations

from PySide6.QtCore import Qt, QUrl, Slot
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from ui.widgets.text import esc, plain_label
from zitdesk.crashlog import CrashReport


class CrashReportDialog(QDialog):
    def __init__(self, report: CrashReport, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.report = report
        self.setWindowTitle("zitdesk stopped unexpectedly last time")
        self.resize(720, 480)
        intro = QLabel(
            "The last session ended with an error. The log below may help to fix it; you can copy "
            "it into a bug report. It contains file paths of your computer but no images or "
            f"prompts.<br><br><b>{esc(report.summary)}</b>"
        )
        intro.setTextFormat(Qt.TextFormat.RichText)  # the summary quotes an error: escaped
        intro.setWordWrap(True)
        self.text = QPlainTextEdit(report.text)
        self.text.setReadOnly(True)
        where = plain_label(f"Saved as {report.path}")
        where.setObjectName("muted")
        where.setWordWrap(True)
        self.box = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = self.box.addButton("Copy report", QDialogButtonBox.ButtonRole.ActionRole)
        self.folder_button = self.box.addButton(
            "Open log folder", QDialogButtonBox.ButtonRole.ActionRole
        )
        lay = QVBoxLayout(self)
        lay.addWidget(intro)
        lay.addWidget(self.text, 1)
        lay.addWidget(where)
        lay.addWidget(self.box)
        self.copy_button.clicked.connect(self._copy)
        self.folder_button.clicked.connect(self._open_folder)
        self.box.rejected.connect(self.reject)

    @Slot()
    def _copy(self) -> None:
        QGuiApplication.clipboard().setText(self.report.text)

    @Slot()
    def _open_folder(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.report.path.parent)))
