"""Run history: every training run zitdesk knows, with its status, data, preset and result.

The rows come from :func:`zitdesk.train.runs.list_runs` (one small ``run.json`` per run folder,
newest first). Actions: open the run (samples, checkpoints), resume an unfinished, stopped or
failed run, open its folder, view its config (the TOML ``zitdesk train`` reads) and show its
LoRA in the LoRA Library. Nothing here deletes user files.
"""

from __future__ import annotations

import datetime as _dt
import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ui.widgets.text import plain_tooltip, window_title

log = logging.getLogger(__name__)
RecordRole = Qt.ItemDataRole.UserRole + 1
_Index = QModelIndex | QPersistentModelIndex
COLUMNS = ("Run", "Status", "Dataset", "Preset", "Steps", "Final loss", "Started", "LoRA")
RESUMABLE = ("interrupted", "cancelled", "failed", "paused", "running")
STATUS_TEXT = {
    "running": "running",
    "paused": "paused",
    "finished": "finished",
    "cancelled": "stopped",
    "failed": "failed",
    "interrupted": "interrupted — resume it",
}


def fmt_time(value: Any) -> str:
    if value in (None, "", 0):
        return ""
    try:
        if isinstance(value, int | float):
            t = _dt.datetime.fromtimestamp(float(value))
        else:
            t = _dt.datetime.fromisoformat(str(value))
            if t.tzinfo is not None:
                t = t.astimezone()
        return t.strftime("%Y-%m-%d %H:%M")
    except (ValueError, OSError, OverflowError):
        return str(value)


def config_file(r: Any) -> str:
    """The config the run used (saved beside it), else the file it was started from."""
    used = Path(str(r.output_dir)) / "train_config.toml"
    if r.output_dir and used.is_file():
        return str(used)
    return str(r.config_path or "")


def retry_preset(r: Any) -> str:
    """After an out-of-memory failure: the lower preset to resume with ("" otherwise)."""
    return str(getattr(r, "retry_preset", "") or "") if r.status == "failed" else ""


def load_records() -> list[Any]:
    """Every run record, newest first; an unreadable registry gives an empty list."""
    try:
        from zitdesk.train.runs import list_runs

        return list(list_runs())
    except Exception:  # noqa: BLE001 - the history is a view; a broken file must not stop the tab
        log.exception("could not read the run history")
        return []


class RunHistoryModel(QAbstractTableModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.records: list[Any] = []

    def set_records(self, records: list[Any]) -> None:
        self.beginResetModel()
        self.records = list(records)
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self.records)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self,
        section: int,
        orientation: Qt.Orientation,  # noqa: N802
        role: int = Qt.ItemDataRole.DisplayRole,
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section] if 0 <= section < len(COLUMNS) else None
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.records):
            return None
        r = self.records[index.row()]
        if role == RecordRole:
            return r
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(r, col)
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == 1 and r.error:
                return plain_tooltip(r.error)  # file names and paths: shown literally
            if col == 7:
                return plain_tooltip(r.lora_path or r.output_dir)
            if col == 2:
                return plain_tooltip(r.dataset)
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (4, 5):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    @staticmethod
    def _text(r: Any, col: int) -> str:
        if col == 0:
            return str(r.name or Path(str(r.output_dir)).name)
        if col == 1:
            if r.status == "failed" and getattr(r, "error_kind", "") == "oom":
                return "failed: out of memory"
            return STATUS_TEXT.get(r.status, str(r.status))
        if col == 2:
            return Path(str(r.dataset)).name if r.dataset else ""
        if col == 3:
            return str(r.preset or "")
        if col == 4:
            return f"{r.steps_done}/{r.steps_total}"
        if col == 5:
            loss = r.final_loss
            return f"{loss:.4f}" if isinstance(loss, int | float) and loss == loss else ""
        if col == 6:
            return fmt_time(r.started_at)
        if col == 7:
            return Path(str(r.lora_path)).name if r.lora_path else ""
        return ""


class ConfigDialog(QDialog):
    """The run's config file, read-only (the TOML ``zitdesk train`` reads)."""

    def __init__(self, path: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(window_title(Path(path).name or "Config"))
        self.resize(640, 560)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        try:
            self.text.setPlainText(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            self.text.setPlainText(f"The config {path} cannot be read: {exc.strerror or exc}.")
        where = QLabel(path)
        where.setObjectName("muted")
        where.setTextFormat(Qt.TextFormat.PlainText)
        where.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(where)
        lay.addWidget(self.text, 1)
        lay.addWidget(buttons)


class RunHistoryWidget(QWidget):
    """The table of runs and its actions (see the module docstring)."""

    open_requested = Signal(object)  # RunRecord
    resume_requested = Signal(object)  # RunRecord
    library_requested = Signal(str)  # LoRA path
    folder_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = RunHistoryModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setStretchLastSection(False)
        self.table.doubleClicked.connect(self._on_double_clicked)
        self.empty = QLabel("No training runs yet. Your runs, finished or not, are listed here.")
        self.empty.setObjectName("hint")
        self.open_button = QPushButton("Open")
        self.open_button.setToolTip("Samples, checkpoints and the log of this run")
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue from the newest checkpoint")
        self.folder_button = QPushButton("Open folder")
        self.config_button = QPushButton("View config")
        self.library_button = QPushButton("Show in LoRA Library")
        self.open_button.clicked.connect(self._emit_open)
        self.resume_button.clicked.connect(self._emit_resume)
        self.folder_button.clicked.connect(self._emit_folder)
        self.config_button.clicked.connect(self.view_config)
        self.library_button.clicked.connect(self._emit_library)
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)
        self._config_dialog: ConfigDialog | None = None
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(self.empty)
        buttons.addStretch(1)
        self.action_buttons = (
            self.open_button,
            self.resume_button,
            self.folder_button,
            self.config_button,
            self.library_button,
        )
        for b in self.action_buttons:
            buttons.addWidget(b)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.table, 1)
        lay.addLayout(buttons)
        lay.addStretch(0)  # keeps the empty-state line at the top when the table is hidden
        self._update_buttons()

    def refresh(self, records: list[Any] | None = None) -> None:
        selected = self.selected()
        keep = getattr(selected, "run_id", None)
        self.model.set_records(load_records() if records is None else records)
        self.empty.setVisible(not self.model.records)
        self.table.setVisible(bool(self.model.records))
        for b in self.action_buttons:
            b.setVisible(bool(self.model.records))
        for row, r in enumerate(self.model.records):
            if keep is not None and r.run_id == keep:
                self.table.selectRow(row)
        self._update_buttons()

    def select_run(self, run_id: str) -> bool:
        for row, r in enumerate(self.model.records):
            if r.run_id == run_id:
                self.table.selectRow(row)
                return True
        return False

    def selected(self) -> Any:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        return self.model.records[rows[0].row()] if rows else None

    @Slot()
    def _update_buttons(self, *_args) -> None:
        r = self.selected()
        self.open_button.setEnabled(r is not None)
        self.resume_button.setEnabled(r is not None and r.status in RESUMABLE)
        self.folder_button.setEnabled(r is not None and bool(r.output_dir))
        self.config_button.setEnabled(r is not None and bool(config_file(r)))
        lower = retry_preset(r) if r is not None else ""
        self.resume_button.setText(f"Resume with {lower}" if lower else "Resume")
        self.resume_button.setToolTip(
            f"It ran out of memory: continue from the newest checkpoint with the {lower} preset"
            if lower
            else "Continue from the newest checkpoint"
        )
        self.library_button.setEnabled(
            r is not None and bool(r.lora_path) and Path(str(r.lora_path)).is_file()
        )

    @Slot()
    def _emit_open(self) -> None:
        if (r := self.selected()) is not None:
            self.open_requested.emit(r)

    @Slot(QModelIndex)
    def _on_double_clicked(self, _index: QModelIndex) -> None:
        self._emit_open()

    @Slot()
    def _emit_resume(self) -> None:
        if (r := self.selected()) is not None and r.status in RESUMABLE:
            self.resume_requested.emit(r)

    @Slot()
    def _emit_folder(self) -> None:
        if (r := self.selected()) is not None and r.output_dir:
            self.folder_requested.emit(str(r.output_dir))

    @Slot()
    def _emit_library(self) -> None:
        if (r := self.selected()) is not None and r.lora_path:
            self.library_requested.emit(str(r.lora_path))

    @Slot()
    def view_config(self) -> ConfigDialog | None:
        r = self.selected()
        if r is None or not config_file(r):
            return None
        if self._config_dialog is not None:
            self._config_dialog.close()
            self._config_dialog.deleteLater()
        self._config_dialog = ConfigDialog(config_file(r), self)
        self._config_dialog.open()
        return self._config_dialog
