"""The inpaint mask painter: brush and eraser over the init image, brush size, invert, feather,
undo, a mask loaded from a file, and outpaint by extending the canvas.

:class:`MaskCanvas` holds the picture and an 8-bit mask of the same size (white = repaint,
shown as a red veil) and paints in image pixels whatever the zoom. Extending the canvas adds
pixels on any side: they are shown as a checkerboard and are always repainted (the engine grows
the picture from its edges and masks the new area itself: ``GenerateRequest.outpaint``), so the
mask stays the size of the picture. :class:`MaskPainterDialog` puts the tools around it.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt, Signal, Slot
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

MAX_UNDO = 40
SIDES = ("left", "top", "right", "bottom")


def blank_mask(size: QSize) -> QImage:
    mask = QImage(size, QImage.Format.Format_Grayscale8)
    mask.fill(0)
    return mask


class MaskCanvas(QWidget):
    """The picture with its mask; drag to paint (brush) or erase, in image pixels."""

    changed = Signal()

    def __init__(self, image: QImage, mask: QImage | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.image = image.convertToFormat(QImage.Format.Format_RGB32)
        self.pads = [0, 0, 0, 0]  # left, top, right, bottom (outpaint)
        self._undo: list[tuple[QImage, tuple[int, ...]]] = []
        self.mask = blank_mask(self.image.size())
        if mask is not None and not mask.isNull():
            self.set_mask(mask)
            self._undo.clear()
        self.brush = max(4, min(self.image.width(), self.image.height()) // 12)
        self.erasing = False
        self._last: QPointF | None = None
        self._hover: QPointF | None = None
        self._erase_once = False
        self.setMinimumSize(320, 240)
        self.setMouseTracking(True)
        self.setCursor(Qt.CursorShape.CrossCursor)

    # -- state ------------------------------------------------------------------------------
    def _push(self) -> None:
        self._undo.append((self.mask.copy(), tuple(self.pads)))
        del self._undo[:-MAX_UNDO]

    def can_undo(self) -> bool:
        return bool(self._undo)

    def undo(self) -> None:
        if self._undo:
            mask, pads = self._undo.pop()
            self.mask, self.pads = mask, list(pads)
            self._changed()

    def clear(self) -> None:
        self._push()
        self.mask.fill(0)
        self._changed()

    def invert(self) -> None:
        self._push()
        self.mask.invertPixels()
        self._changed()

    def set_mask(self, mask: QImage) -> None:
        """Use ``mask`` (any picture: grey levels, white = repaint), scaled to the picture."""
        grey = mask.convertToFormat(QImage.Format.Format_Grayscale8)
        if grey.size() != self.image.size():
            grey = grey.scaled(
                self.image.size(),
                Qt.AspectRatioMode.IgnoreAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        self._push()
        self.mask = grey
        self._changed()

    def set_pad(self, side: str, pixels: int) -> None:
        i = SIDES.index(side)
        if self.pads[i] != pixels:
            self._push()
            self.pads[i] = max(0, int(pixels))
            self._changed()

    def painted_fraction(self) -> float:
        """The share of the picture's pixels the mask repaints (at least half white)."""
        return float((mask_array(self.mask) >= 128).mean())

    def _changed(self) -> None:
        self.update()
        self.changed.emit()

    # -- geometry ---------------------------------------------------------------------------
    def canvas_size(self) -> QSize:
        left, top, right, bottom = self.pads
        return QSize(self.image.width() + left + right, self.image.height() + top + bottom)

    def _scale(self) -> float:
        c = self.canvas_size()
        return min(self.width() / max(1, c.width()), self.height() / max(1, c.height()))

    def _origin(self) -> QPointF:
        s, c = self._scale(), self.canvas_size()
        return QPointF((self.width() - c.width() * s) / 2, (self.height() - c.height() * s) / 2)

    def to_image(self, pos: QPointF) -> QPointF:
        """A widget position as picture pixels (the picture's top-left is 0, 0)."""
        s, o = self._scale(), self._origin()
        return QPointF((pos.x() - o.x()) / s - self.pads[0], (pos.y() - o.y()) / s - self.pads[1])

    # -- painting ---------------------------------------------------------------------------
    def stroke(self, a: QPointF, b: QPointF | None = None, begin: bool | None = None) -> None:
        """Paint (or erase) a round stroke from ``a`` to ``b`` in picture pixels. A stroke that
        ``begin``s (default: a dot, where a drag starts) is one step of undo."""
        if b is None if begin is None else begin:
            self._push()
        p = QPainter(self.mask)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        colour = QColor(0, 0, 0) if self.erasing else QColor(255, 255, 255)
        pen = QPen(colour, self.brush, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap)
        p.setPen(pen)
        if b is None or b == a:
            p.setBrush(colour)
            p.setPen(Qt.PenStyle.NoPen)
            p.drawEllipse(a, self.brush / 2, self.brush / 2)
        else:
            p.drawLine(a, b)
        p.end()
        self._changed()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
            self._erase_once = event.button() == Qt.MouseButton.RightButton
            was, self.erasing = self.erasing, self.erasing or self._erase_once
            self._last = self.to_image(event.position())
            self.stroke(self._last)
            self.erasing = was

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self._hover = event.position()
        if self._last is not None and event.buttons() & (
            Qt.MouseButton.LeftButton | Qt.MouseButton.RightButton
        ):
            pos = self.to_image(event.position())
            was, self.erasing = self.erasing, self.erasing or self._erase_once
            self.stroke(self._last, pos)
            self.erasing = was
            self._last = pos
        self.update()

    def mouseReleaseEvent(self, _event: QMouseEvent) -> None:  # noqa: N802
        self._last = None

    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), self.palette().window())
        s, o = self._scale(), self._origin()
        c = self.canvas_size()
        canvas = QRectF(o.x(), o.y(), c.width() * s, c.height() * s)
        cell = 12
        for y in range(int(canvas.top()), int(canvas.bottom()), cell):  # checkerboard: new area
            for x in range(int(canvas.left()), int(canvas.right()), cell):
                light = ((x - int(canvas.left())) // cell + (y - int(canvas.top())) // cell) % 2
                r = QRect(x, y, cell, cell).intersected(canvas.toAlignedRect())
                p.fillRect(r, QColor(120, 120, 120) if light else QColor(80, 80, 80))
        pic = QRectF(
            o.x() + self.pads[0] * s,
            o.y() + self.pads[1] * s,
            self.image.width() * s,
            self.image.height() * s,
        )
        p.drawImage(pic, self.image)
        veil = QImage(self.mask.size(), QImage.Format.Format_ARGB32_Premultiplied)
        veil.fill(QColor(230, 40, 40))
        alpha = self.mask.copy()
        veil.setAlphaChannel(alpha)
        p.setOpacity(0.55)
        p.drawImage(pic, veil)
        p.setOpacity(1.0)
        if any(self.pads):
            p.setPen(QPen(QColor(230, 40, 40), 1, Qt.PenStyle.DashLine))
            p.drawRect(canvas)
        hover = self._hover
        if hover is not None:
            p.setPen(QPen(QColor(255, 255, 255), 1))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawEllipse(hover, self.brush * s / 2, self.brush * s / 2)
        p.end()

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(720, 540)


class MaskPainterDialog(QDialog):
    """The canvas with its tools. After ``exec()``: :attr:`canvas` ``.mask`` / ``.pads`` and
    :attr:`feather` (the mask blur in pixels)."""

    def __init__(
        self,
        image: QImage,
        mask: QImage | None = None,
        pads: tuple[int, int, int, int] = (0, 0, 0, 0),
        feather: int = 4,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Inpaint mask")
        self.canvas = MaskCanvas(image, mask)
        self.canvas.pads = list(pads)
        self.brush_button = QRadioButton("Brush")
        self.eraser_button = QRadioButton("Eraser")
        self.brush_button.setChecked(True)
        self.brush_button.setToolTip("Paint the area to repaint (right-drag erases)")
        group = QButtonGroup(self)
        group.addButton(self.brush_button)
        group.addButton(self.eraser_button)
        self.eraser_button.toggled.connect(self._on_eraser)
        self.size_slider = QSlider(Qt.Orientation.Horizontal)
        self.size_slider.setRange(2, max(8, max(image.width(), image.height()) // 3))
        self.size_slider.setValue(self.canvas.brush)
        self.size_slider.valueChanged.connect(self._on_size)
        self.size_label = QLabel(f"{self.canvas.brush} px")
        self.undo_button = QPushButton("Undo")
        self.undo_button.setShortcut("Ctrl+Z")
        self.undo_button.clicked.connect(self.canvas.undo)
        invert = QPushButton("Invert")
        invert.clicked.connect(self.canvas.invert)
        clear = QPushButton("Clear")
        clear.clicked.connect(self.canvas.clear)
        load = QPushButton("Load mask…")
        load.setToolTip("A black-and-white picture (white = repaint) or one with transparency")
        load.clicked.connect(self._load)
        self.feather = QSpinBox()
        self.feather.setRange(0, 256)
        self.feather.setValue(feather)
        self.feather.setSuffix(" px")
        self.feather.setToolTip("Soft edge where the repainted area meets the picture")
        tools = QHBoxLayout()
        for w in (self.brush_button, self.eraser_button, QLabel("Size"), self.size_slider):
            tools.addWidget(w)
        tools.addWidget(self.size_label)
        for w in (self.undo_button, invert, clear, load, QLabel("Feather"), self.feather):
            tools.addWidget(w)
        self.pad_boxes: dict[str, QSpinBox] = {}
        extend = QGridLayout()
        extend.addWidget(QLabel("Outpaint — extend the canvas:"), 0, 0, 1, 2)
        for i, side in enumerate(SIDES):
            box = QSpinBox()
            box.setRange(0, 1024)
            box.setSingleStep(64)
            box.setSuffix(" px")
            box.setValue(int(pads[i]))
            box.valueChanged.connect(lambda v, s=side: self.canvas.set_pad(s, v))
            self.pad_boxes[side] = box
            extend.addWidget(QLabel(side.capitalize()), 0, 2 + 2 * i)
            extend.addWidget(box, 0, 3 + 2 * i)
        extend.setColumnStretch(11, 1)
        self.info = QLabel("")
        self.info.setObjectName("hint")
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Use mask")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(tools)
        lay.addWidget(self.canvas, 1)
        lay.addLayout(extend)
        bottom = QHBoxLayout()
        bottom.addWidget(self.info, 1)
        bottom.addWidget(buttons)
        lay.addLayout(bottom)
        self.canvas.changed.connect(self._update)
        self._update()

    @Slot(bool)
    def _on_eraser(self, on: bool) -> None:
        self.canvas.erasing = on

    @Slot(int)
    def _on_size(self, value: int) -> None:
        self.canvas.brush = value
        self.size_label.setText(f"{value} px")

    def _update(self) -> None:
        self.undo_button.setEnabled(self.canvas.can_undo())
        c = self.canvas.canvas_size()
        grow = " (outpainted)" if any(self.canvas.pads) else ""
        self.info.setText(
            f"{c.width()}×{c.height()}{grow} — white brush = repaint; right-drag erases; "
            "the new canvas area is always repainted."
        )
        for side, box in self.pad_boxes.items():
            value = self.canvas.pads[SIDES.index(side)]
            if box.value() != value:
                box.blockSignals(True)
                box.setValue(value)
                box.blockSignals(False)

    def _load(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Load a mask", "", "Pictures (*.png *.jpg *.jpeg *.webp *.bmp)"
        )
        if path:
            self.load_mask(path)

    def load_mask(self, path: str) -> bool:
        """Use the mask in ``path`` (transparency = repaint, else white = repaint)."""
        from zitdesk.engine.edit.images import open_mask

        try:
            grey = open_mask(path)
        except Exception as exc:  # noqa: BLE001 - one sentence in the dialog
            self.info.setText(str(exc))
            return False
        data = grey.tobytes()
        img = QImage(data, grey.width, grey.height, grey.width, QImage.Format.Format_Grayscale8)
        self.canvas.set_mask(img.copy())
        return True

    def pads(self) -> tuple[int, int, int, int]:
        left, top, right, bottom = self.canvas.pads
        return (left, top, right, bottom)


def mask_array(mask: QImage):
    """``mask`` (8-bit grey) as a NumPy array of its pixels, height × width."""
    import numpy as np

    grey = mask.convertToFormat(QImage.Format.Format_Grayscale8)
    w, h, stride = grey.width(), grey.height(), grey.bytesPerLine()
    data = np.frombuffer(grey.constBits(), np.uint8, count=stride * h)
    return data.reshape(h, stride)[:, :w].copy()
