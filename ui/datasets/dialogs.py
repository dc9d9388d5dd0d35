"""Small dialogs: the import report and the review of captions changed outside the app."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from ui.datasets.bulk_dialog import diff_html
from ui.widgets.text import plain_label
from zitdesk.dataset.importer import ImportReport
from zitdesk.dataset.store import Conflict


def import_summary(rep: ImportReport) -> str:
    c = rep.to_json()["counts"]
    parts = [f"Imported {c['imported']:,} image(s)"]
    if c["with_caption"]:
        parts.append(f"{c['with_caption']:,} with captions")
    if c["converted"]:
        parts.append(f"{c['converted']:,} converted")
    if c["renamed"]:
        parts.append(f"{c['renamed']:,} renamed to avoid a clash")
    text = ", ".join(parts)
    if c["skipped"]:
        text += f"; skipped {c['skipped']:,}"
    if rep.cancelled:
        text += " (cancelled)"
    return text + "."


class ImportReportDialog(QDialog):
    def __init__(self, rep: ImportReport, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Import report")
        self.resize(760, 520)
        head = plain_label(import_summary(rep), "sectionTitle", wrap=True)
        body = QTextBrowser()
        rows = []
        if rep.skipped:
            rows.append("<h4>Skipped</h4><table>")
            for s in rep.skipped:
                rows.append(
                    f"<tr><td style='padding-right:12px'>{html.escape(s.source)}</td>"
                    f"<td style='color:#e0a030'>{html.escape(s.reason)}</td></tr>"
                )
            rows.append("</table>")
        changed = [x for x in rep.imported if x.converted or x.renamed_from or x.notes]
        if changed:
            rows.append("<h4>Imported with changes or notes</h4><table>")
            for x in changed:
                what = "; ".join(
                    filter(
                        None,
                        [
                            x.converted,
                            f"renamed from {x.renamed_from}" if x.renamed_from else "",
                            *x.notes,
                        ],
                    )
                )
                rows.append(
                    f"<tr><td style='padding-right:12px'>{html.escape(x.image)}</td>"
                    f"<td style='color:#9aa0a6'>{html.escape(what)}</td></tr>"
                )
            rows.append("</table>")
        body.setHtml("".join(rows) or "<p>Everything was imported as it was.</p>")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(head)
        lay.addWidget(body, 1)
        lay.addWidget(buttons)


class ConflictDialog(QDialog):
    """One row per conflict: their file (kept) vs your edit (saved beside it)."""

    resolved = Signal(str, bool)  # image name, use mine

    def __init__(self, conflicts: list[Conflict], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Captions changed outside zitdesk")
        self.resize(760, 480)
        intro = QLabel(
            "Another program changed these caption files while you were editing them. "
            "Their version is kept in the .txt file; yours is saved beside it as "
            ".zitdesk-conflict. Choose which one to keep."
        )
        intro.setWordWrap(True)
        self.list = QListWidget()
        self.diff = QTextBrowser()
        self.mine = QPushButton("Use mine")
        self.theirs = QPushButton("Keep theirs")
        self.conflicts = {c.name: c for c in conflicts}
        for c in conflicts:
            QListWidgetItem(c.name, self.list).setData(Qt.ItemDataRole.UserRole, c.name)
        self.list.currentItemChanged.connect(self._show)
        self.mine.clicked.connect(lambda: self._resolve(True))
        self.theirs.clicked.connect(lambda: self._resolve(False))
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.theirs)
        row.addWidget(self.mine)
        lay = QVBoxLayout(self)
        lay.addWidget(intro)
        split = QHBoxLayout()
        split.addWidget(self.list, 1)
        split.addWidget(self.diff, 3)
        lay.addLayout(split, 1)
        lay.addLayout(row)
        self.list.setCurrentRow(0)

    @Slot()
    def _show(self) -> None:
        item = self.list.currentItem()
        if item is None:
            self.diff.setHtml("")
            return
        c = self.conflicts[item.data(Qt.ItemDataRole.UserRole)]
        self.diff.setHtml("<p><b>Theirs → yours</b></p>" + diff_html(c.theirs, c.ours))

    def _resolve(self, mine: bool) -> None:
        item = self.list.currentItem()
        if item is None:
            return
        name = item.data(Qt.ItemDataRole.UserRole)
        self.resolved.emit(name, mine)
        self.list.takeItem(self.list.row(item))
        if self.list.count() == 0:
            self.accept()
