"""Image size: Z-Image's official resolutions, or a custom size in multiples of 16."""

from __future__ import annotations

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from zitdesk.engine.requests import MAX_SIDE, MIN_SIDE, SIZE_PRESETS

CUSTOM = "Custom size"


def snap16(value: int) -> int:
    return min(max(int(round(value / 16)) * 16, MIN_SIDE), MAX_SIDE)


class _Side(QSpinBox):
    """A spin box that steps by 16 and snaps typed values to the nearest multiple of 16."""

    def __init__(self) -> None:
        super().__init__()
        self.setRange(MIN_SIDE, MAX_SIDE)
        self.setSingleStep(16)
        self.setSuffix(" px")
        self.setKeyboardTracking(False)
        self.setAccelerated(True)

    def fixup(self, text: str) -> str:
        digits = "".join(ch for ch in text if ch.isdigit())
        return str(snap16(int(digits))) if digits else str(self.value())

    def stepBy(self, steps: int) -> None:  # noqa: N802 - Qt override
        self.setValue(snap16(self.value() + steps * 16))


class SizePickerWidget(QWidget):
    size_changed = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.preset = QComboBox()
        for label in SIZE_PRESETS:
            self.preset.addItem(label)
        self.preset.addItem(CUSTOM)
        self.width_box = _Side()
        self.height_box = _Side()
        self.swap = QToolButton()
        self.swap.setText("⇄")
        self.swap.setToolTip("Swap width and height")
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.width_box)
        row.addWidget(QLabel("×"))
        row.addWidget(self.height_box)
        row.addWidget(self.swap)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.preset)
        lay.addLayout(row)
        self._updating = False
        self.preset.currentIndexChanged.connect(self._on_preset)
        self.width_box.valueChanged.connect(self._on_value)
        self.height_box.valueChanged.connect(self._on_value)
        self.swap.clicked.connect(self._swap)
        self.set_size(1024, 1024)

    def image_size(self) -> tuple[int, int]:
        return snap16(self.width_box.value()), snap16(self.height_box.value())

    def set_size(self, width: int, height: int) -> None:
        self._updating = True
        try:
            self.width_box.setValue(snap16(width))
            self.height_box.setValue(snap16(height))
            self._sync_preset()
        finally:
            self._updating = False
        self.size_changed.emit(*self.image_size())

    def _sync_preset(self) -> None:
        size = self.image_size()
        label = next((k for k, v in SIZE_PRESETS.items() if v == size), CUSTOM)
        self.preset.blockSignals(True)
        self.preset.setCurrentText(label)
        self.preset.blockSignals(False)

    @Slot(int)
    def _on_preset(self, _index: int) -> None:
        size = SIZE_PRESETS.get(self.preset.currentText())
        if size is not None:
            self.set_size(*size)

    @Slot(int)
    def _on_value(self, _value: int) -> None:
        if self._updating:
            return
        self._sync_preset()
        self.size_changed.emit(*self.image_size())

    @Slot()
    def _swap(self) -> None:
        w, h = self.image_size()
        self.set_size(h, w)
