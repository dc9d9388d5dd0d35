"""Seed: random each time, a fixed value, or the last job's seed again."""

from __future__ import annotations

import random

from PySide6.QtCore import QRegularExpression, Signal, Slot
from PySide6.QtGui import QRegularExpressionValidator
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLineEdit, QToolButton, QWidget

MODES = (("random", "Random"), ("fixed", "Fixed"), ("reuse", "Reuse last"))
MAX_SEED = 2**63 - 1


class SeedWidget(QWidget):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.mode_box = QComboBox()
        for key, label in MODES:
            self.mode_box.addItem(label, key)
        self.value_edit = QLineEdit("0")
        self.value_edit.setValidator(QRegularExpressionValidator(QRegularExpression(r"\d{1,19}")))
        self.value_edit.setToolTip("The seed of the first image; image n uses seed + n.")
        self.dice = QToolButton()
        self.dice.setText("New")
        self.dice.setToolTip("Pick a new random seed and keep it (switches to Fixed)")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.mode_box)
        lay.addWidget(self.value_edit, 1)
        lay.addWidget(self.dice)
        self.last_seed: int | None = None
        self.mode_box.currentIndexChanged.connect(self._on_mode)
        self.value_edit.textEdited.connect(self._on_edit)
        self.dice.clicked.connect(self._roll)
        self._on_mode(0)

    @property
    def mode(self) -> str:
        return self.mode_box.currentData()

    def set_mode(self, mode: str) -> None:
        idx = self.mode_box.findData(mode)
        self.mode_box.setCurrentIndex(max(idx, 0))

    def value(self) -> int:
        try:
            return min(int(self.value_edit.text() or 0), MAX_SEED)
        except ValueError:
            return 0

    def set_value(self, seed: int) -> None:
        self.value_edit.setText(str(min(max(int(seed), 0), MAX_SEED)))

    def set_last_seed(self, seed: int) -> None:
        self.last_seed = int(seed)
        if self.mode != "fixed":
            self.set_value(seed)

    def resolve(self) -> int:
        """The seed the next job uses."""
        if self.mode == "fixed":
            return self.value()
        if self.mode == "reuse" and self.last_seed is not None:
            return self.last_seed
        return random.randrange(2**32)

    @Slot(int)
    def _on_mode(self, _index: int) -> None:
        fixed = self.mode == "fixed"
        self.value_edit.setReadOnly(not fixed)
        if self.mode == "reuse" and self.last_seed is not None:
            self.set_value(self.last_seed)
        if not fixed and self.last_seed is None:
            self.value_edit.clear()  # nothing was generated yet: no seed to show
        self.value_edit.setPlaceholderText(
            {"random": "new seed each time", "reuse": "the last seed (none yet)"}.get(
                self.mode, "0"
            )
        )
        self.value_edit.setToolTip(
            {
                "random": "A new random seed for every job; this shows the last one used.",
                "reuse": "Uses the last job's seed again.",
                "fixed": "The seed of the first image; image n uses seed + n.",
            }[self.mode]
        )
        self.changed.emit()

    @Slot(str)
    def _on_edit(self, _text: str) -> None:
        self.changed.emit()

    @Slot()
    def _roll(self) -> None:
        self.set_mode("fixed")
        self.set_value(random.randrange(2**32))
        self.changed.emit()
