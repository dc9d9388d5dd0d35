"""The samples timeline: sample prompts × sampled steps, a slider across steps, click to enlarge.

Sample files come from :class:`~zitdesk.train.events.SampleReady` (during a run) or from the
run folder (a run opened from history): ``<output>/samples/<step:09d>/<i>_<seed>.png``
(:mod:`zitdesk.train.samples`). Thumbnails are decoded on the pool by the app's
:class:`~ui.thumbnails.ThumbnailCache`, never here.

Layout: the step chosen with the slider is shown large (one image per prompt), the grid below
holds every round (rows = steps, newest at the bottom as in the contact sheet; columns =
prompts). Clicking any image opens it large.
"""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal, Slot
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ui.thumbnails import ThumbnailCache
from ui.widgets.progress_panel import PreviewLabel
from ui.widgets.text import plain_tooltip, window_title

_STEP_DIR = re.compile(r"^\d{9}$")
_FILE = re.compile(r"^(\d+)_(\d+)\.png$")
PathRole = Qt.ItemDataRole.UserRole + 1
GRID_ICON = 96


def scan_samples(samples_dir: str | Path) -> dict[int, list[str]]:
    """``{step: [paths by prompt index]}`` from a run's ``samples/`` folder (empty if none)."""
    root = Path(samples_dir)
    found: dict[int, list[str]] = {}
    if not root.is_dir():
        return found
    for d in root.iterdir():
        if not (d.is_dir() and _STEP_DIR.match(d.name)):
            continue
        files = sorted((int(m.group(1)), str(f)) for f in d.iterdir() if (m := _FILE.match(f.name)))
        if files:
            found[int(d.name)] = [p for _, p in files]
    return found


class SampleImageDialog(QDialog):
    """One sample, large, with its prompt and step."""

    def __init__(self, path: str, caption: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path = path
        self.setWindowTitle(window_title(Path(path).name))
        self.resize(760, 800)
        self.image = PreviewLabel()
        pm = QPixmap(path)  # one image, on request
        self.image.set_image(None if pm.isNull() else pm, f"{path} cannot be shown.")
        info = QLabel(caption)
        info.setTextFormat(Qt.TextFormat.PlainText)
        info.setWordWrap(True)
        info.setObjectName("muted")
        lay = QVBoxLayout(self)
        lay.addWidget(self.image, 1)
        lay.addWidget(info)


class _Thumb(QLabel):
    clicked = Signal(str)

    def __init__(self, size: int) -> None:
        super().__init__()
        self.path = ""
        self.setFixedSize(QSize(size, size))
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setObjectName("muted")
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setStyleSheet("background: #17191d; border: 1px solid #3a3f47;")

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self.path:
            self.clicked.emit(self.path)
        super().mousePressEvent(event)


class SamplesTimeline(QWidget):
    """Grid of sample prompts × steps with a step slider (see the module docstring)."""

    image_clicked = Signal(str)

    def __init__(
        self, thumbnails: ThumbnailCache, parent: QWidget | None = None, focus_size: int = 176
    ) -> None:
        super().__init__(parent)
        self.thumbs = thumbnails
        self.focus_size = focus_size
        self.rounds: dict[int, list[str]] = {}
        self.prompts: list[str] = []
        self._dialog: SampleImageDialog | None = None
        self.empty = QLabel(
            "Sample images appear here at every sample step: the same prompts and seeds each "
            "time, so you can watch the LoRA learn."
        )
        self.empty.setWordWrap(True)
        self.empty.setObjectName("hint")
        self.step_label = QLabel("")
        self.step_label.setObjectName("sectionTitle")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 0)
        self.slider.setPageStep(1)
        self.slider.setToolTip("Move across the sampled steps")
        self.slider.valueChanged.connect(self._on_slider)
        self.focus_row = QHBoxLayout()
        self.focus_row.setContentsMargins(0, 0, 0, 0)
        self.focus_row.setSpacing(6)
        self.focus_row.setAlignment(Qt.AlignmentFlag.AlignLeft)
        self._focus: list[_Thumb] = []
        self._focus_captions: list[QLabel] = []
        self.grid = QTableWidget(0, 0)
        self.grid.setIconSize(QSize(GRID_ICON, GRID_ICON))
        self.grid.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.grid.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.grid.verticalHeader().setDefaultSectionSize(GRID_ICON + 8)
        self.grid.horizontalHeader().setDefaultSectionSize(GRID_ICON + 12)
        self.grid.cellClicked.connect(self._on_cell_clicked)
        self.grid.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        thumbnails.thumbnail_ready.connect(self._on_thumbnail)

        top = QHBoxLayout()
        top.addWidget(self.step_label)
        top.addWidget(self.slider, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.empty)
        lay.addLayout(top)
        lay.addLayout(self.focus_row)
        lay.addWidget(self.grid, 1)
        self._refresh()

    # -- data ---------------------------------------------------------------------------------
    @property
    def steps(self) -> list[int]:
        return sorted(self.rounds)

    def set_prompts(self, prompts: list[str]) -> None:
        self.prompts = list(prompts)
        self._refresh()

    def clear(self) -> None:
        self.rounds.clear()
        self._refresh()

    def load_folder(self, samples_dir: str | Path) -> None:
        """Every round already on disk (a resumed run, a run opened from history)."""
        self.rounds = scan_samples(samples_dir)
        self._refresh(select_last=True)

    def add_round(self, step: int, paths: list[str] | tuple[str, ...]) -> None:
        self.rounds[int(step)] = [str(p) for p in paths]
        self._refresh(select_last=True)

    def current_step(self) -> int | None:
        steps = self.steps
        return steps[self.slider.value()] if steps else None

    def select_step(self, step: int) -> None:
        if step in self.rounds:
            self.slider.setValue(self.steps.index(step))

    # -- view ---------------------------------------------------------------------------------
    def _caption(self, col: int) -> str:
        if col < len(self.prompts):
            p = self.prompts[col]
            return p if len(p) <= 60 else p[:58] + "…"
        return f"prompt {col + 1}"

    def _refresh(self, select_last: bool = False) -> None:
        steps = self.steps
        has = bool(steps)
        self.empty.setVisible(not has)
        self.slider.setVisible(len(steps) > 1)
        self.step_label.setVisible(has)
        cols = max((len(v) for v in self.rounds.values()), default=0)
        self.grid.setVisible(has)
        self.grid.setRowCount(len(steps))
        self.grid.setColumnCount(cols)
        self.grid.setHorizontalHeaderLabels([f"prompt {c + 1}" for c in range(cols)])
        for c in range(cols):
            header = self.grid.horizontalHeaderItem(c)
            if header is not None:
                header.setToolTip(plain_tooltip(self._caption(c)))  # prompts: shown literally
        self.grid.setVerticalHeaderLabels([f"step {s}" for s in steps])
        for r, s in enumerate(steps):
            for c in range(cols):
                paths = self.rounds[s]
                item = QTableWidgetItem()
                if c < len(paths):
                    item.setData(PathRole, paths[c])
                    tip = f"Step {s} · {self._caption(c)} (click to enlarge)"
                    item.setToolTip(plain_tooltip(tip))
                    icon = self.thumbs.icon(paths[c])
                    if icon is not None:
                        item.setIcon(icon)
                self.grid.setItem(r, c, item)
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, len(steps) - 1))
        if select_last:
            self.slider.setValue(len(steps) - 1)
        self.slider.blockSignals(False)
        self._show_focus()

    def _show_focus(self) -> None:
        step = self.current_step()
        paths = self.rounds.get(step, []) if step is not None else []
        while len(self._focus) < len(paths):
            t = _Thumb(self.focus_size)
            t.clicked.connect(self.enlarge)
            cap = QLabel("")
            cap.setObjectName("muted")
            cap.setWordWrap(True)
            cap.setTextFormat(Qt.TextFormat.PlainText)
            cap.setFixedWidth(self.focus_size)
            cap.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignHCenter)
            box = QVBoxLayout()
            box.setSpacing(2)
            box.addWidget(t)
            box.addWidget(cap)
            self._focus.append(t)
            self._focus_captions.append(cap)
            self.focus_row.addLayout(box)
        for i, t in enumerate(self._focus):
            t.setVisible(i < len(paths))
            self._focus_captions[i].setVisible(i < len(paths))
            self._focus_captions[i].setText(f"{i + 1} · {self._caption(i)}")
            t.path = paths[i] if i < len(paths) else ""
            self._set_thumb(t)
        if step is not None:
            n = len(self.steps)
            self.step_label.setText(f"Step {step}  ({self.steps.index(step) + 1} of {n} rounds)")
            row = self.steps.index(step)
            self.grid.selectRow(row)
            item = self.grid.item(row, 0)
            if item is not None:
                self.grid.scrollToItem(item)

    def _set_thumb(self, t: _Thumb) -> None:
        if not t.path:
            t.clear()
            return
        pm = self.thumbs.pixmap(t.path)
        if pm is None:
            t.setText("…")
        else:
            t.setPixmap(
                pm.scaled(
                    t.size(),
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
            )

    @Slot(int)
    def _on_slider(self, _value: int) -> None:
        self._show_focus()

    @Slot(str)
    def _on_thumbnail(self, path: str) -> None:
        for t in self._focus:
            if t.path == path:
                self._set_thumb(t)
        for r in range(self.grid.rowCount()):
            for c in range(self.grid.columnCount()):
                item = self.grid.item(r, c)
                if item is not None and item.data(PathRole) == path:
                    icon = self.thumbs.icon(path)
                    if icon is not None:
                        item.setIcon(icon)

    @Slot(int, int)
    def _on_cell_clicked(self, row: int, col: int) -> None:
        item = self.grid.item(row, col)
        self.slider.setValue(row)
        if item is not None and item.data(PathRole):
            self.enlarge(str(item.data(PathRole)))

    @Slot(str)
    def enlarge(self, path: str) -> SampleImageDialog:
        step = next((s for s, ps in self.rounds.items() if path in ps), None)
        col = self.rounds.get(step, []).index(path) if step is not None else 0
        prompt = self.prompts[col] if col < len(self.prompts) else ""
        caption = f"Step {step} · {Path(path).name}" + (f"\n{prompt}" if prompt else "")
        if self._dialog is not None:
            self._dialog.close()
            self._dialog.deleteLater()
        self._dialog = SampleImageDialog(path, caption, self)
        self._dialog.open()
        self.image_clicked.emit(path)
        return self._dialog
