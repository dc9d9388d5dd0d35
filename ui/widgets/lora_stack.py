"""LoRA stack panel: add from a file, weight slider, coverage badge, remove and reorder.

The badge first comes from reading the file's keys on the thread pool
(``zitdesk.lora.inspect.inspect_json``, against the real Z-Image module set) and is replaced by the
engine's own ``LoraReport`` after a job applied the LoRA ("loads 240/240 modules").
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledDoubleSlider

from ui.models.lora_stack_model import (
    COL_COVERAGE,
    COL_NAME,
    COL_WEIGHT,
    WEIGHT_MAX,
    WEIGHT_MIN,
    LoraStackModel,
    badge_from_inspect,
)
from ui.tasks import TaskSignals, run_task

log = logging.getLogger(__name__)


def _inspect(path: str, model_path: str = "") -> dict[str, Any]:
    """Key coverage, plus the header-only shape check against the active model (``fit``)."""
    from zitdesk.lora.inspect import inspect_json

    info = inspect_json(path)
    try:
        from zitdesk.lora.fit import check_fit, model_linear_shapes
    except ImportError:  # pragma: no cover - before zitdesk.lora.fit existed
        return info
    from zitdesk.errors import user_message

    try:
        shapes = model_linear_shapes(model_path or None)
    except Exception:  # noqa: BLE001 - the model is unreadable: fall back to the real sizes
        shapes = model_linear_shapes(None)
    try:
        fit = check_fit(path, shapes)
        info["fit"] = {"ok": fit.ok, "message": fit.message}
    except Exception as exc:  # noqa: BLE001 - one plain sentence for the user
        info["fit"] = {"ok": False, "message": user_message(exc)}
    return info


#: Rows the stack shows without scrolling at least, and at most before it scrolls.
MIN_ROWS, MAX_ROWS = 4, 8


class LoraStackWidget(QWidget):
    changed = Signal()
    refused = Signal(str)  # a LoRA that does not fit the active model: the sentence why

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = LoraStackModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(COL_NAME, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(COL_WEIGHT, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COL_COVERAGE, QHeaderView.ResizeMode.ResizeToContents)
        self.model_path = ""  # the active model, for the shape check at "Add"
        self._fit_rows()
        self.empty_label = QLabel(
            "No LoRAs. Add a .safetensors file to style or personalise images."
        )
        self.empty_label.setObjectName("hint")
        self.empty_label.setWordWrap(True)
        self.add_button = QPushButton("Add file…")
        self.library_button = QPushButton("From library…")
        self.library_button.setToolTip("Pick a LoRA from the LoRA Library (search, cards)")
        # Set by the window: returns the Library's LibraryModel (building the tab if needed).
        self.library_provider = None
        self.picker = None
        self.remove_button = QPushButton("Remove")
        self.up_button = QToolButton()
        self.up_button.setText("▲")
        self.up_button.setToolTip("Move up (applied earlier)")
        self.down_button = QToolButton()
        self.down_button.setText("▼")
        self.down_button.setToolTip("Move down")
        self.slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(WEIGHT_MIN, WEIGHT_MAX)
        self.slider.setSingleStep(0.05)
        self.slider.setDecimals(2)
        self.slider.setValue(1.0)
        self.slider.setToolTip("Strength of the selected LoRA (1.0 = as trained)")
        self.slider_label = QLabel("Weight")
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        for b in (
            self.add_button,
            self.library_button,
            self.remove_button,
            self.up_button,
            self.down_button,
        ):
            buttons.addWidget(b)
        buttons.addStretch(1)
        slider_row = QHBoxLayout()
        slider_row.setContentsMargins(0, 0, 0, 0)
        slider_row.addWidget(self.slider_label)
        slider_row.addWidget(self.slider, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.empty_label)
        lay.addWidget(self.table)
        lay.addLayout(slider_row)
        lay.addLayout(buttons)
        self.last_dir = ""
        self._tasks = TaskSignals(self)
        self._tasks.succeeded.connect(self._on_inspected)
        self._tasks.failed.connect(self._on_inspect_failed)
        self.add_button.clicked.connect(self._choose_file)
        self.library_button.clicked.connect(self.open_library_picker)
        self.remove_button.clicked.connect(self._remove)
        self.up_button.clicked.connect(self._up)
        self.down_button.clicked.connect(self._down)
        self.slider.valueChanged.connect(self._on_slider)
        self.table.selectionModel().selectionChanged.connect(self._on_selection)
        for sig in (
            self.model.dataChanged,
            self.model.rowsInserted,
            self.model.rowsRemoved,
            self.model.rowsMoved,
            self.model.modelReset,
        ):
            sig.connect(self._on_model_changed)
        self._on_model_changed()

    # -- public ---------------------------------------------------------------------------------
    def _fit_rows(self) -> None:
        """At least MIN_ROWS rows visible, growing with the stack up to MAX_ROWS."""
        row_h = self.table.verticalHeader().defaultSectionSize()
        head_h = self.table.horizontalHeader().sizeHint().height()
        rows = max(MIN_ROWS, min(MAX_ROWS, self.model.rowCount()))
        h = head_h + rows * row_h + 2 * self.table.frameWidth() + 2
        self.table.setMinimumHeight(h)
        self.table.setMaximumHeight(h)

    def add_lora(self, path: str, weight: float = 1.0, enabled: bool = True) -> int:
        before = self.model.rowCount()
        row = self.model.add(str(path), weight, enabled)
        if self.model.rowCount() > before:
            run_task(self._tasks, str(path), _inspect, str(path), self.model_path)
        self.table.selectRow(row)
        return row

    def set_loras(self, items: list[tuple[str, float, bool]]) -> None:
        self.model.clear()
        for path, weight, enabled in items:
            self.add_lora(path, weight, enabled)

    def apply_report(self, report: Any) -> None:
        """Show the engine's LoraReport (matched/total target modules) as the badge."""
        ok = report.total_targets > 0 and report.matched > 0
        warnings = tuple(getattr(report, "warnings", ()) or ())
        badge = f"loads {report.matched}/{report.total_targets}" + (" ⚠" if warnings else "")
        message = "\n".join([report.message, *(f"Warning: {w}." for w in warnings)])
        self.model.set_badge(report.path, badge, ok, message)

    def selected_row(self) -> int:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].row() if rows else -1

    # -- slots ----------------------------------------------------------------------------------
    @Slot()
    def _choose_file(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(
            self, "Add LoRA", self.last_dir, "LoRA files (*.safetensors);;All files (*)"
        )
        for p in paths:
            self.last_dir = str(Path(p).parent)
            self.add_lora(p)

    @Slot()
    def open_library_picker(self):
        """Open the picker over the Library; the chosen LoRA is added (and shape-checked)."""
        from ui.widgets.library_picker import LibraryPickerDialog

        model = self.library_provider() if self.library_provider is not None else None
        if model is None:
            self.refused.emit("The LoRA Library is not available.")
            return None
        dlg = LibraryPickerDialog(model, self)
        dlg.accepted.connect(self._on_picked)
        dlg.finished.connect(dlg.deleteLater)
        self.picker = dlg
        dlg.open()
        return dlg

    @Slot()
    def _on_picked(self) -> None:
        dlg, self.picker = self.picker, None
        if dlg is not None and dlg.chosen:
            self.add_lora(dlg.chosen)

    @Slot(object, object)
    def _on_inspected(self, path: object, info: object) -> None:
        fit = info.get("fit") if isinstance(info, dict) else None
        if isinstance(fit, dict) and not fit.get("ok", True):
            row = self.model.row_of(str(path))  # refused at "Add": never part of a job
            if row >= 0:
                self.model.remove(row)
            self.refused.emit(str(fit.get("message") or "This LoRA does not fit the model."))
            return
        badge, compatible, message, words = badge_from_inspect(info)  # type: ignore[arg-type]
        self.model.set_badge(str(path), badge, compatible, message, words)

    @Slot(object, object)
    def _on_inspect_failed(self, path: object, message: object) -> None:
        self.model.set_badge(str(path), "unreadable", False, f"Could not read this file: {message}")

    @Slot()
    def _remove(self) -> None:
        self.model.remove(self.selected_row())

    @Slot()
    def _up(self) -> None:
        row = self.selected_row()
        if self.model.move(row, -1):
            self.table.selectRow(row - 1)

    @Slot()
    def _down(self) -> None:
        row = self.selected_row()
        if self.model.move(row, 1):
            self.table.selectRow(row + 1)

    @Slot(float)
    def _on_slider(self, value: float) -> None:
        row = self.selected_row()
        if row >= 0 and abs(self.model.entries[row].weight - value) > 1e-6:
            self.model.set_weight(row, value)

    def _on_selection(self, *_args) -> None:
        row = self.selected_row()
        has = row >= 0
        for w in (self.slider, self.remove_button, self.up_button, self.down_button):
            w.setEnabled(has)
        if has:
            self.slider.blockSignals(True)
            self.slider.setValue(self.model.entries[row].weight)
            self.slider.blockSignals(False)

    def _on_model_changed(self, *_args) -> None:
        self._fit_rows()
        empty = self.model.rowCount() == 0
        self.empty_label.setVisible(empty)
        self.table.setVisible(not empty)
        self.slider.setVisible(not empty)
        self.slider_label.setVisible(not empty)
        self._on_selection()
        self.changed.emit()
