"""A horizontal memory bar: current use, plus a "ghost" showing the next job's predicted peak."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from ui.theme import ACCENT, BAD, WARN


class MemoryBarWidget(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.used = 0
        self.total = 0
        self.ghost = 0  # predicted peak in bytes, 0 = none
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.setFixedSize(QSize(110, 14))

    def set_values(self, used: int, total: int) -> None:
        self.used, self.total = int(used), int(total)
        self.update()

    def set_ghost(self, peak_bytes: int) -> None:
        self.ghost = max(int(peak_bytes), 0)
        self.update()

    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt override
        p = QPainter(self)
        w, h = self.width(), self.height()
        p.fillRect(self.rect(), QColor("#17191d"))
        if self.total > 0:
            frac = min(self.used / self.total, 1.0)
            color = QColor(BAD if frac > 0.95 else WARN if frac > 0.85 else ACCENT)
            p.fillRect(QRectF(0, 0, (w - 1) * frac, h), color)
            if self.ghost:
                gfrac = self.ghost / self.total
                over = gfrac > 1.0
                gw = (w - 1) * min(gfrac, 1.0)
                ghost_color = QColor(BAD if over else "#ffffff")
                ghost_color.setAlpha(110)
                p.fillRect(
                    QRectF(0, 2, gw, h - 4), QBrush(ghost_color, Qt.BrushStyle.Dense4Pattern)
                )
                pen = QPen(QColor(BAD if over else "#ffffff"), 2)
                p.setPen(pen)
                p.drawLine(int(gw), 0, int(gw), h)
        p.setPen(QPen(QColor("#3a3f47"), 1))
        p.drawRect(0, 0, w - 1, h - 1)
        p.end()
