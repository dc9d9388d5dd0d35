"""Training charts (pyqtgraph): the loss with its smoothed line, and the learning rate.

Imported only when the Train tab is built (pyqtgraph pulls in numpy and its own Qt glue; the
window must appear without it). :class:`LossChart` keeps every point it was given, draws the raw
losses as faint dots and an exponential moving average (:func:`ema`, debiased like
TensorBoard's smoothing) as a line; the y axis can switch to log scale, the mouse wheel and a
drag zoom, "Reset zoom" fits everything again. :class:`LrChart` is the same plot for the
learning rate, smaller.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import pyqtgraph as pg
from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ui.theme import ACCENT, MUTED, WARN

BACKGROUND = "#17191d"
pg.setConfigOptions(antialias=True, background=BACKGROUND, foreground=MUTED)

DEFAULT_SMOOTHING = 0.9


def ema(
    values: Sequence[float], weight: float = DEFAULT_SMOOTHING, state: list[float] | None = None
) -> list[float]:
    """Debiased exponential moving average (TensorBoard's smoothing); ``weight`` in [0, 1).

    ``state`` (``[sum, norm]``) carries the average across calls, so new points extend it."""
    st = state if state is not None else [0.0, 0.0]
    out: list[float] = []
    for v in values:
        if not math.isfinite(v):
            out.append(st[0] / st[1] if st[1] > 0 else v)
            continue
        st[0] = st[0] * weight + (1.0 - weight) * v
        st[1] = st[1] * weight + (1.0 - weight)
        out.append(st[0] / st[1])
    return out


def _plot(title: str, y_label: str) -> pg.PlotWidget:
    plot = pg.PlotWidget()
    plot.setTitle(title, color=MUTED, size="10pt")
    plot.setLabel("bottom", "step")
    plot.setLabel("left", y_label)
    plot.showGrid(x=True, y=True, alpha=0.15)
    plot.setMouseEnabled(x=True, y=True)
    plot.setMenuEnabled(False)
    plot.getPlotItem().hideButtons()  # our own "Reset zoom" button instead of the tiny "A"
    plot.getAxis("left").enableAutoSIPrefix(False)  # "loss (x0.001)" reads badly
    return plot


class LossChart(QWidget):
    """Loss per step: raw points + smoothed line, log-y toggle, zoom and reset."""

    def __init__(self, parent: QWidget | None = None, smoothing: float = DEFAULT_SMOOTHING) -> None:
        super().__init__(parent)
        self.smoothing = smoothing
        self.steps: list[int] = []
        self.losses: list[float] = []
        self._smooth_cache: list[float] | None = None
        self._ema_state = [0.0, 0.0]
        self.plot = _plot("Loss", "loss")
        self.raw = self.plot.plot(
            [],
            [],
            pen=None,
            symbol="o",
            symbolSize=4,
            symbolPen=None,
            symbolBrush=pg.mkBrush(76, 139, 245, 150),
            name="loss",
        )
        self.smooth = self.plot.plot([], [], pen=pg.mkPen(WARN, width=2), name="smoothed")
        self.log_y = QCheckBox("Log scale")
        self.log_y.setToolTip("Show the loss on a logarithmic axis")
        self.log_y.toggled.connect(self.set_log_y)
        self.reset_button = QPushButton("Reset zoom")
        self.reset_button.setToolTip("Zoom with the mouse wheel or a drag; this fits all points")
        self.reset_button.clicked.connect(self.reset_zoom)
        self.summary = QLabel("No steps yet.")
        self.summary.setObjectName("muted")
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(self.summary, 1)
        bar.addWidget(self.log_y)
        bar.addWidget(self.reset_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.plot, 1)
        lay.addLayout(bar)

    @property
    def point_count(self) -> int:
        return len(self.steps)

    def clear(self) -> None:
        self.steps.clear()
        self.losses.clear()
        self._smooth_cache = None
        self._redraw()

    def set_points(self, points: Iterable[tuple[int, float]]) -> None:
        """Replace every point (a run opened from history, a resumed run's earlier losses)."""
        pts = sorted({int(s): float(v) for s, v in points}.items())
        self.steps = [s for s, _ in pts]
        self.losses = [v for _, v in pts]
        self._smooth_cache = None
        self._redraw()

    def add_point(self, step: int, loss: float) -> None:
        if self.steps and step <= self.steps[-1]:
            # A resume repeats steps after the last checkpoint: drop the points it replaces.
            keep = next((i for i, s in enumerate(self.steps) if s >= step), len(self.steps))
            del self.steps[keep:], self.losses[keep:]
            self._smooth_cache = None
        self.steps.append(int(step))
        self.losses.append(float(loss))
        cache = self._smooth_cache
        if cache is not None and len(cache) == len(self.losses) - 1:
            cache.extend(ema(self.losses[-1:], self.smoothing, self._ema_state))
        else:
            self._smooth_cache = None
        self._redraw()

    def smoothed(self) -> list[float]:
        if self._smooth_cache is None:
            self._ema_state = [0.0, 0.0]
            self._smooth_cache = ema(self.losses, self.smoothing, self._ema_state)
        return self._smooth_cache

    def _redraw(self) -> None:
        sm_all = self.smoothed()
        self.raw.setData(self.steps, self.losses)
        self.smooth.setData(self.steps, sm_all)
        if self.losses:
            sm = sm_all[-1]
            self.summary.setText(
                f"step {self.steps[-1]}: loss {self.losses[-1]:.4f} (smoothed {sm:.4f})"
            )
        else:
            self.summary.setText("No steps yet.")

    @Slot(bool)
    def set_log_y(self, on: bool) -> None:
        if self.log_y.isChecked() != on:
            self.log_y.setChecked(on)
            return
        self.plot.setLogMode(x=False, y=on)
        self.reset_zoom()

    @Slot()
    def reset_zoom(self) -> None:
        self.plot.enableAutoRange()
        self.plot.autoRange()

    def view_range(self) -> list[list[float]]:
        return self.plot.getViewBox().viewRange()


class LrChart(QWidget):
    """The learning rate per step (warm-up and schedule at a glance)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.steps: list[int] = []
        self.values: list[float] = []
        self.plot = _plot("Learning rate", "lr")
        self.curve = self.plot.plot([], [], pen=pg.mkPen(ACCENT, width=2))
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.plot)

    def clear(self) -> None:
        self.steps.clear()
        self.values.clear()
        self.curve.setData([], [])

    def add_point(self, step: int, lr: float) -> None:
        if self.steps and step <= self.steps[-1]:
            keep = next((i for i, s in enumerate(self.steps) if s >= step), len(self.steps))
            del self.steps[keep:], self.values[keep:]
        self.steps.append(int(step))
        self.values.append(float(lr))
        self.curve.setData(self.steps, self.values)
        hi = max(self.values)
        if hi > 0 and min(self.values) == hi:  # a constant schedule: show it above zero
            self.plot.setYRange(0.0, hi * 1.25, padding=0)
        else:
            self.plot.enableAutoRange(axis="y")
