"""Bulk caption edit with a preview diff before anything is written.

The dialog runs a Qt-free operation from :mod:`zitdesk.dataset.bulk` over the chosen scope
(selected images, the images the filter shows, or all) and shows every caption it would change
as a word diff (removed text struck through in red, added text in green). *Apply* is enabled only
when the preview is current and non-empty; the workspace then pushes the changes as one undoable
command, after a snapshot of all captions.
"""

from __future__ import annotations

import html

from PySide6.QtCore import QTimer, Slot
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QRadioButton,
    QSizePolicy,
    QStackedWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from ui.widgets.text import make_plain
from zitdesk.dataset import bulk

PREVIEW_ROWS = 200
Pair = tuple[str, str | None]


def diff_html(old: str | None, new: str | None) -> str:
    parts = []
    for kind, text in bulk.word_diff(old, new):
        t = html.escape(text).replace("\n", "⏎<br>")
        if kind == "=":
            parts.append(t)
        elif kind == "-":
            parts.append(
                f'<span style="background:#5c2526;color:#ffb3b0;'
                f'text-decoration:line-through">{t}</span>'
            )
        else:
            parts.append(f'<span style="background:#1e4a2b;color:#b6f2c2">{t}</span>')
    return "".join(parts) or '<i style="color:#9aa0a6">(empty)</i>'


class BulkEditDialog(QDialog):
    """``scopes``: {"selected"|"filtered"|"all": [(image name, caption)]}."""

    OPS = (
        "Add trigger word",
        "Find and replace",
        "Add tags",
        "Remove tags",
        "Clean up whitespace and duplicate tags",
    )

    def __init__(
        self,
        scopes: dict[str, list[Pair]],
        trigger: str = "",
        parent: QWidget | None = None,
        initial_op: int = 0,
        training_trigger: str = "",
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Bulk edit captions")
        self.resize(820, 620)
        self.scopes = scopes
        self.training_trigger = training_trigger
        self.changes: list[tuple[str, str | None, str | None]] = []
        self.label = ""

        self.op_combo = QComboBox()
        self.op_combo.addItems(self.OPS)
        self.stack = QStackedWidget()

        # add trigger
        self.trigger = QLineEdit(trigger)
        self.trigger.setPlaceholderText("e.g. ohwx")
        w = QWidget()
        f = QFormLayout(w)
        f.addRow("Trigger word", self.trigger)
        self.use_placeholder = QCheckBox(
            "Insert the [trigger] placeholder instead (training replaces it with its trigger word)"
        )
        hint = QLabel(
            "Put at the start as “word, caption”. Captions that already contain it (or "
            "the [trigger] placeholder) are left alone."
        )
        hint.setObjectName("hint")
        hint.setWordWrap(True)
        self.trigger_warning = make_plain(QLabel())  # quotes the trigger words as typed
        self.trigger_warning.setObjectName("warning")
        self.trigger_warning.setWordWrap(True)
        f.addRow(self.use_placeholder)
        f.addRow(hint)
        f.addRow(self.trigger_warning)
        self.stack.addWidget(w)
        # find / replace
        self.find = QLineEdit()
        self.replace = QLineEdit()
        self.regex = QCheckBox("Regular expression (Python syntax, \\1 in the replacement)")
        self.case = QCheckBox("Match case")
        self.case.setChecked(True)
        w = QWidget()
        f = QFormLayout(w)
        f.addRow("Find", self.find)
        f.addRow("Replace with", self.replace)
        f.addRow(self.regex)
        f.addRow(self.case)
        self.stack.addWidget(w)
        # add tags
        self.add_tags = QLineEdit()
        self.add_tags.setPlaceholderText("comma-separated, e.g. outdoors, daylight")
        self.at_start = QCheckBox("Insert at the start")
        w = QWidget()
        f = QFormLayout(w)
        f.addRow("Tags to add", self.add_tags)
        f.addRow(self.at_start)
        self.stack.addWidget(w)
        # remove tags
        self.remove_tags = QLineEdit()
        self.remove_tags.setPlaceholderText("comma-separated; whole tags, any case")
        w = QWidget()
        f = QFormLayout(w)
        f.addRow("Tags to remove", self.remove_tags)
        self.stack.addWidget(w)
        # cleanup
        self.dedupe = QCheckBox("Also remove duplicate tags (the first one is kept)")
        self.dedupe.setChecked(True)
        w = QWidget()
        f = QFormLayout(w)
        f.addRow(self.dedupe)
        self.stack.addWidget(w)

        scope_row = QHBoxLayout()
        scope_row.addWidget(QLabel("Apply to:"))
        self.scope_group = QButtonGroup(self)
        self.scope_buttons: dict[str, QRadioButton] = {}
        labels = {
            "selected": "selected images",
            "filtered": "images shown by the filter",
            "all": "all images",
        }
        for key in ("selected", "filtered", "all"):
            n = len(scopes.get(key, []))
            b = QRadioButton(f"{labels[key]} ({n:,})")
            b.setEnabled(n > 0)
            b.setProperty("scope", key)
            self.scope_group.addButton(b)
            self.scope_buttons[key] = b
            scope_row.addWidget(b)
        scope_row.addStretch(1)
        default = (
            "selected"
            if len(scopes.get("selected", [])) > 1
            else ("filtered" if scopes.get("filtered") else "all")
        )
        self.scope_buttons[default].setChecked(True)

        self.summary = QLabel()
        self.summary.setObjectName("sectionTitle")
        self.error = make_plain(QLabel())  # e.g. a regular expression's error, quoting it
        self.error.setObjectName("error")
        self.error.setWordWrap(True)
        self.preview = QTextBrowser()
        self.preview.setOpenLinks(False)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.apply_button = self.buttons.addButton("Apply", QDialogButtonBox.ButtonRole.AcceptRole)
        self.apply_button.setObjectName("primaryButton")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        note = QLabel(
            "A snapshot of every caption is saved first; Ctrl+Z undoes the whole edit, "
            "also after a restart."
        )
        note.setObjectName("hint")
        note.setWordWrap(True)

        lay = QVBoxLayout(self)
        top = QFormLayout()
        top.addRow("Operation", self.op_combo)
        lay.addLayout(top)
        lay.addWidget(self.stack)
        lay.addLayout(scope_row)
        lay.addWidget(self.summary)
        lay.addWidget(self.error)
        lay.addWidget(self.preview, 1)
        lay.addWidget(note)
        lay.addWidget(self.buttons)

        self._timer = QTimer(self, singleShot=True, interval=150)
        self._timer.timeout.connect(self.refresh)
        self.op_combo.currentIndexChanged.connect(self._show_page)
        self.op_combo.currentIndexChanged.connect(self._timer.start)
        for le in (self.trigger, self.find, self.replace, self.add_tags, self.remove_tags):
            le.textChanged.connect(self._timer.start)
        for cb in (self.regex, self.case, self.at_start, self.dedupe, self.use_placeholder):
            cb.toggled.connect(self._timer.start)
        self.scope_group.buttonToggled.connect(self._timer.start)
        self.op_combo.setCurrentIndex(initial_op)
        self._show_page(initial_op)
        self.refresh()

    @Slot(int)
    def _show_page(self, i: int) -> None:
        """Show one parameter page; the hidden ones take no room (the preview gets it)."""
        for k in range(self.stack.count()):
            page = self.stack.widget(k)
            pol = QSizePolicy.Policy.Preferred if k == i else QSizePolicy.Policy.Ignored
            page.setSizePolicy(pol, pol)
        self.stack.setCurrentIndex(i)
        self.stack.adjustSize()

    def operation(self) -> bulk.Operation | None:
        i = self.op_combo.currentIndex()
        if i == 0:
            if self.use_placeholder.isChecked():
                return bulk.AddTrigger(bulk.TRIGGER_PLACEHOLDER)
            return bulk.AddTrigger(self.trigger.text()) if self.trigger.text().strip() else None
        if i == 1:
            if not self.find.text():
                return None
            return bulk.FindReplace(
                self.find.text(), self.replace.text(), self.regex.isChecked(), self.case.isChecked()
            )
        if i in (2, 3):
            text = (self.add_tags if i == 2 else self.remove_tags).text()
            tags = tuple(t.strip() for t in text.split(",") if t.strip())
            if not tags:
                return None
            return (
                bulk.AddTags(tags, self.at_start.isChecked()) if i == 2 else bulk.RemoveTags(tags)
            )
        return bulk.Cleanup(self.dedupe.isChecked())

    def scope(self) -> str:
        b = self.scope_group.checkedButton()
        return b.property("scope") if b is not None else "all"

    @Slot()
    def refresh(self) -> None:
        self._timer.stop()
        self.error.setText("")
        word = self.trigger.text().strip()
        tt = self.training_trigger.strip()
        doubled = bool(tt) and not self.use_placeholder.isChecked() and word.lower() == tt.lower()
        self.trigger.setEnabled(not self.use_placeholder.isChecked())
        self.trigger_warning.setText(
            f"Training is set to add “{tt}” too (Trigger word, statistics panel), so these "
            f"captions would train as “{tt}, {tt}, …”. Insert the placeholder instead, or clear "
            "the trigger word for training."
            if doubled
            else ""
        )
        self.trigger_warning.setVisible(doubled)
        op = self.operation()
        pairs = self.scopes.get(self.scope(), [])
        self.changes = []
        if op is None:
            self.summary.setText("Fill in the operation to see what would change.")
            self.preview.setHtml("")
            self.apply_button.setEnabled(False)
            return
        try:
            self.changes = bulk.preview(op, pairs)
        except ValueError as exc:
            self.error.setText(str(exc))
            self.summary.setText("")
            self.preview.setHtml("")
            self.apply_button.setEnabled(False)
            return
        self.label = f"{op.label} ({len(self.changes):,} captions)"
        n = len(self.changes)
        self.summary.setText(
            f"{n:,} of {len(pairs):,} captions change"
            if n
            else f"No caption among {len(pairs):,} would change."
        )
        rows = []
        for name, old, new in self.changes[:PREVIEW_ROWS]:
            rows.append(
                f'<tr><td width="1%" style="color:#9aa0a6;padding:4px 14px 4px 0;'
                f'white-space:nowrap;vertical-align:top">{html.escape(name)}</td>'
                f'<td style="padding:4px 0">{diff_html(old, new)}</td></tr>'
            )
        more = (
            f'<p style="color:#9aa0a6">… and {n - PREVIEW_ROWS:,} more.</p>'
            if n > PREVIEW_ROWS
            else ""
        )
        self.preview.setHtml(
            '<table width="100%" cellspacing="0">' + "".join(rows) + "</table>" + more
        )
        self.apply_button.setEnabled(n > 0)
        self.apply_button.setText(f"Apply to {n:,} caption{'s' if n != 1 else ''}")

    def accept(self) -> None:
        self.refresh()  # never apply a stale preview
        if self.changes:
            super().accept()
