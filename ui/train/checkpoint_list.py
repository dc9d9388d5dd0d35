"""The run view's list of checkpoints: step, LoRA file, and the sizes of both on disk."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTreeWidget, QTreeWidgetItem, QWidget

from ui.train.run_format import fmt_size, path_size
from ui.widgets.text import plain_tooltip


class CheckpointList(QTreeWidget):
    """One row per checkpoint, sorted by step; a row's LoRA path is in column 1's user data."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHeaderLabels(["Step", "LoRA file", "LoRA size", "Checkpoint size"])
        self.setRootIsDecorated(False)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.header().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)

    def add(self, step: int, path: str, lora: str) -> None:
        """Add (or replace) the row of ``step``: its checkpoint folder and LoRA file."""
        for i in range(self.topLevelItemCount()):
            if self.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole) == step:
                self.takeTopLevelItem(i)
                break
        item = QTreeWidgetItem(
            [
                str(step),
                Path(lora).name if lora else "—",
                fmt_size(path_size(lora)) if lora else "—",
                fmt_size(path_size(path)),
            ]
        )
        item.setData(0, Qt.ItemDataRole.UserRole, step)
        item.setData(1, Qt.ItemDataRole.UserRole, lora)
        item.setToolTip(1, plain_tooltip(lora or path))  # paths: shown literally
        self.addTopLevelItem(item)
        self.sortItems(0, Qt.SortOrder.AscendingOrder)

    def loras(self) -> list[str]:
        return [
            str(self.topLevelItem(i).data(1, Qt.ItemDataRole.UserRole))
            for i in range(self.topLevelItemCount())
        ]

    def load_folder(self, output_dir: str, name: str) -> None:
        """The checkpoints found in a run's output folder (LoRA files named ``name_<step>``)."""
        try:
            from zitdesk.train.checkpoint import checkpoints_dir, list_checkpoints

            found = list_checkpoints(checkpoints_dir(Path(output_dir)))
        except Exception:  # noqa: BLE001 - a damaged folder only means no list
            return
        for c in found:
            lora = Path(output_dir) / f"{name}_{c.step:09d}.safetensors"
            self.add(c.step, str(c.path), str(lora) if lora.is_file() else "")
