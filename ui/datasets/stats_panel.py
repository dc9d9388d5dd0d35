"""Statistics and the pre-flight verdict for a chosen training preset.

Charts are drawn with ``QPainter`` (:class:`BarChart`, horizontal bars with labels and values):
the resolution histogram, bucket counts at the chosen training resolution and the most frequent
tags. The verdict line and the findings come from :func:`zitdesk.dataset.check.check_items`, run
on a worker over the *in-memory* captions with the preset's resolutions — the trainer's own
bucketing, so the numbers are the run's. Clicking a finding filters the table to its images
(``issue_selected``).
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt, Signal, Slot
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPalette
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ui.widgets.text import esc, plain_label, rich_label
from zitdesk.dataset.check import CheckOptions, CheckReport
from zitdesk.train.presets import DEFAULT_PRESET, PRESETS

VERDICT_STYLE = {
    "ready": ("#1e4a2b", "Ready"),
    "warnings": ("#4a3a16", "Check these first"),
    "blocked": ("#4d2222", "Blocked"),
}
SEVERITY_COLOR = {"error": "#e05545", "warning": "#e0a030", "info": "#9aa0a6"}


class BarChart(QWidget):
    """Horizontal bars: ``set_data(title, [(label, value)])``; at most ``max_rows`` shown."""

    def __init__(self, color: str = "#4c8bf5", max_rows: int = 12, parent=None) -> None:
        super().__init__(parent)
        self.color = QColor(color)
        self.max_rows = max_rows
        self.title = ""
        self.rows: list[tuple[str, int]] = []
        self.note = ""
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_data(self, title: str, rows: list[tuple[str, int]], note: str = "") -> None:
        self.title = title
        extra = len(rows) - self.max_rows
        self.rows = rows[: self.max_rows]
        self.note = note or (f"+ {extra} more" if extra > 0 else "")
        self.updateGeometry()
        self.update()

    def _line(self) -> int:
        return QFontMetrics(self.font()).height() + 6

    def sizeHint(self) -> QSize:
        n = max(1, len(self.rows)) + 1 + (1 if self.note else 0)
        return QSize(280, n * self._line() + 8)

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()

    def paintEvent(self, _e) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        fm = QFontMetrics(self.font())
        line = self._line()
        text = self.palette().color(QPalette.ColorRole.WindowText)
        muted = QColor("#9aa0a6")
        f = self.font()
        f.setBold(True)
        p.setFont(f)
        p.setPen(text)
        p.drawText(0, fm.ascent() + 2, self.title)
        p.setFont(self.font())
        if not self.rows:
            p.setPen(muted)
            p.drawText(0, line + fm.ascent() + 2, "nothing yet")
            return
        label_w = min(
            max(fm.horizontalAdvance(lbl) for lbl, _ in self.rows) + 10, int(self.width() * 0.45)
        )
        top = max(v for _, v in self.rows) or 1
        val_w = fm.horizontalAdvance(f"{top:,}") + 8
        bar_w = max(10, self.width() - label_w - val_w - 4)
        for i, (lbl, v) in enumerate(self.rows):
            y = line * (i + 1) + 2
            p.setPen(text)
            p.drawText(
                0,
                y,
                label_w - 6,
                line,
                int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter),
                fm.elidedText(lbl, Qt.TextElideMode.ElideRight, label_w - 6),
            )
            w = bar_w * v / top
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(self.color if v else muted)
            p.drawRoundedRect(QRectF(label_w, y + 4, max(w, 2.0), line - 8), 3, 3)
            p.setPen(muted)
            p.drawText(
                int(label_w + w + 6), y, val_w, line, int(Qt.AlignmentFlag.AlignVCenter), f"{v:,}"
            )
        if self.note:
            p.setPen(muted)
            p.drawText(
                0,
                line * (len(self.rows) + 1) + 2,
                self.width(),
                line,
                int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
                self.note,
            )


class StatsPanel(QWidget):
    """Preset + trigger inputs, the verdict, findings, and three charts."""

    check_requested = Signal(object)  # CheckOptions
    trigger_changed = Signal(str)
    issue_selected = Signal(str, list)  # finding message, image names

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.report: CheckReport | None = None
        self.preset = QComboBox()
        for name, pr in PRESETS.items():
            res = "/".join(str(r) for r in pr.changes["data"]["resolutions"])
            self.preset.addItem(f"{pr.label} — {res} px", name)
        self.preset.setCurrentIndex(list(PRESETS).index(DEFAULT_PRESET))
        # the whole "label — resolutions" fits: the combo takes the full row (no clipping)
        self.preset.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.preset.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.preset.setToolTip("The training preset whose resolutions the check uses")
        self.trigger = QLineEdit()
        self.trigger.setPlaceholderText("the word training will prepend")
        self.run_button = QPushButton("Run check")
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.progress.setTextVisible(True)
        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapAllRows)  # labels above: full width
        form.addRow("Training preset", self.preset)
        form.addRow("Trigger word", self.trigger)

        self.verdict = rich_label("Open a dataset to check it.", "verdict", wrap=True)
        self.verdict.setMargin(8)
        self.issues = QWidget()
        self.issues.setObjectName("findings")
        self._issue_lay = QVBoxLayout(self.issues)
        self._issue_lay.setContentsMargins(0, 0, 0, 0)
        self._issue_lay.setSpacing(4)
        self._issue_files: dict[str, tuple[str, list[str]]] = {}
        self.hist = BarChart("#4c8bf5", 8)
        self.bucket_res = QComboBox()
        self.buckets = BarChart("#8a6cf0", 10)
        self.bucket_note = plain_label(object_name="muted", wrap=True)
        self.tags = BarChart("#3fa58a", 15)
        self.bucket_res.currentIndexChanged.connect(self._show_buckets)

        body = QWidget()
        v = QVBoxLayout(body)
        v.setContentsMargins(0, 0, 6, 0)
        v.addLayout(form)
        row = QHBoxLayout()
        row.addWidget(self.run_button)
        row.addWidget(self.progress, 1)
        v.addLayout(row)
        v.addWidget(self.verdict)
        v.addWidget(self.issues)
        v.addWidget(_rule())
        v.addWidget(self.hist)
        br = QHBoxLayout()
        lbl = QLabel("Buckets at")
        lbl.setObjectName("muted")
        br.addWidget(lbl)
        br.addWidget(self.bucket_res)
        br.addStretch(1)
        v.addLayout(br)
        v.addWidget(self.buckets)
        v.addWidget(self.bucket_note)
        v.addWidget(self.tags)
        v.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(body)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(scroll)

        self.run_button.clicked.connect(self.request_check)
        self.preset.currentIndexChanged.connect(self.request_check)
        self.trigger.editingFinished.connect(self._on_trigger)

    def options(self) -> CheckOptions:
        return CheckOptions.for_preset(
            self.preset.currentData(), trigger=self.trigger.text().strip()
        )

    @Slot()
    def request_check(self) -> None:
        self.check_requested.emit(self.options())

    @Slot()
    def _on_trigger(self) -> None:
        self.trigger_changed.emit(self.trigger.text().strip())
        self.request_check()

    def set_busy(self, busy: bool) -> None:
        self.run_button.setEnabled(not busy)
        self.progress.setVisible(busy)
        if busy:
            self.progress.setRange(0, 0)
            self.progress.setFormat("Checking…")

    @Slot(int, int)
    def set_progress(self, done: int, total: int) -> None:
        self.progress.setVisible(True)
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat(f"Hashing images {done:,}/{total:,}")

    def set_report(self, rep: CheckReport) -> None:
        self.report = rep
        self.set_busy(False)
        bg, head = VERDICT_STYLE[rep.verdict]
        self.verdict.setStyleSheet(f"background:{bg}; border-radius:4px;")
        summary = rep.summary
        if summary.startswith(f"{head}:"):  # "Blocked: …" says it once, not twice
            summary = summary[len(head) + 1 :].lstrip()
        self.verdict.setText(f"<b>{esc(head)}.</b> {esc(summary)}")  # summary: names
        while self._issue_lay.count():
            w = self._issue_lay.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        self._issue_files.clear()
        for k, iss in enumerate(rep.issues):
            color = SEVERITY_COLOR[iss.severity]
            mark = "○" if iss.severity == "info" else "●"
            link = ""
            if iss.files:
                key = f"issue{k}"
                self._issue_files[key] = (iss.message, list(iss.files))
                link = f' <a href="{key}" style="color:#7fb0ff">show</a>'
            lbl = rich_label(
                f'<span style="color:{color}">{mark}</span> {esc(iss.message)}{link}', wrap=True
            )
            lbl.linkActivated.connect(self._on_issue_link)
            self._issue_lay.addWidget(lbl)
        self.issues.setVisible(bool(rep.issues))
        self.hist.set_data("Resolution (megapixels)", rep.histogram)
        self.bucket_res.blockSignals(True)
        self.bucket_res.clear()
        for r in rep.buckets:
            self.bucket_res.addItem(f"{r} px", r)
        self.bucket_res.setCurrentIndex(self.bucket_res.count() - 1)
        self.bucket_res.blockSignals(False)
        self._show_buckets()
        tags = list(rep.tags.items())
        self.tags.set_data(
            "Most frequent tags (as trained)",
            tags,
            f"{len(tags):,} distinct tags" if len(tags) > self.tags.max_rows else "",
        )

    @Slot()
    def _show_buckets(self) -> None:
        rep = self.report
        r = self.bucket_res.currentData()
        if rep is None or r is None:
            return
        rows = [(k.replace("x", "×"), v) for k, v in rep.buckets.get(r, {}).items()]
        n = sum(v for _, v in rows)
        note = f"{n:,} images, {rep.downscaled.get(r, 0):,} scaled down to fit"
        if n < rep.images:
            k = rep.images - n
            note += (
                f"; {k:,} {'is' if k == 1 else 'are'} too small for {r} px and "
                f"train{'s' if k == 1 else ''} only at a lower size"
            )
        self.buckets.set_data(f"Aspect buckets at {r} px", rows)
        self.bucket_note.setText(note)

    @Slot(str)
    def _on_issue_link(self, key: str) -> None:
        msg, files = self._issue_files.get(key, ("", []))
        if files:
            self.issue_selected.emit(msg, files)

    def finding_keys(self) -> list[str]:
        """Keys of the findings that list images (for tests: ``_on_issue_link(key)``)."""
        return list(self._issue_files)


def _rule() -> QFrame:
    f = QFrame()
    f.setFrameShape(QFrame.Shape.HLine)
    f.setStyleSheet("color:#3a3f47")
    return f
