"""A tiny line chart of the last few minutes of a reading (VRAM or RAM use)."""

from __future__ import annotations

from collections import deque

from PySide6.QtCore import QPointF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from ui.theme import ACCENT


class SparklineWidget(QWidget):
    """Values are fractions 0..1 of a maximum; the newest is drawn at the right edge."""

    def __init__(self, capacity: int = 300, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._values: deque[float] = deque(maxlen=capacity)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.setFixedSize(QSize(90, 18))

    @property
    def values(self) -> list[float]:
        return list(self._values)

    def add(self, fraction: float) -> None:
        self._values.append(min(max(float(fraction), 0.0), 1.0))
        self.update()

    def clear(self) -> None:
        self._values.clear()
        self.update()

    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt override
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        w, h = self.width(), self.height()
        p.fillRect(self.rect(), QColor("#17191d"))
        n = self._values.maxlen or 1
        vals = list(self._values)
        if len(vals) >= 2:
            step = (w - 1) / max(n - 1, 1)
            x0 = (w - 1) - step * (len(vals) - 1)
            path = QPainterPath(QPointF(x0, h - 1 - vals[0] * (h - 2)))
            for i, v in enumerate(vals[1:], 1):
                path.lineTo(QPointF(x0 + i * step, h - 1 - v * (h - 2)))
            area = QPainterPath(path)
            area.lineTo(QPointF(w - 1, h - 1))
            area.lineTo(QPointF(x0, h - 1))
            area.closeSubpath()
            fill = QColor(ACCENT)
            fill.setAlpha(60)
            p.fillPath(area, fill)
            p.setPen(QPen(QColor(ACCENT), 1.2))
            p.drawPath(path)
        p.setPen(QPen(QColor("#3a3f47"), 1, Qt.PenStyle.SolidLine))
        p.drawRect(0, 0, w - 1, h - 1)
        p.end()
