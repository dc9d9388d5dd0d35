"""The crop tool of the Datasets workspace: drag a rectangle on the picture or pick an aspect,
and see live which bucket the trainer will put the cropped region in.

:class:`CropCanvas` draws the upright image (EXIF orientation applied, as the trainer sees it)
scaled to fit, dims what the crop leaves out and lets the user drag a new box (press outside
the box) or move it (press inside). With an aspect preset the box keeps that aspect.
:class:`CropDialog` adds the preset and training-resolution choices and the bucket line
(:func:`zitdesk.dataset.crop.crop_bucket`, i.e. the trainer's own
:func:`~zitdesk.train.dataset.bucket_for`). The crop itself is done by the session
(:meth:`~ui.datasets.session.DatasetSession.crop`): the file keeps its name and caption, its
previous bytes are kept in ``.zitdesk/crops`` and Ctrl+Z brings them back.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QImageReader, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ui.widgets.text import plain_label
from zitdesk.dataset.crop import ASPECTS, Box, aspect_box, clamp_box, crop_bucket, fit_aspect

RESOLUTIONS = (512, 768, 1024, 1280, 1536)
MAX_PREVIEW = 1600  # the canvas decodes at most this many px on the long side


def load_upright(path: str, max_side: int = MAX_PREVIEW) -> tuple[QImage, int, int]:
    """The image as the trainer sees it (orientation applied), scaled down for the screen, and
    its full upright size."""
    reader = QImageReader(path)
    reader.setAutoTransform(True)
    img = reader.read()
    if img.isNull():
        raise OSError(reader.errorString() or f"cannot read {path}")
    w, h = img.width(), img.height()
    if max(w, h) > max_side:
        img = img.scaled(
            max_side,
            max_side,
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )
    return img, w, h


class CropCanvas(QWidget):
    """See the module doc. ``box_changed(Box)`` in full-image pixels."""

    box_changed = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(320, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(False)
        self.image = QImage()
        self.full = (1, 1)
        self.box = Box(0, 0, 1, 1)
        self.aspect: tuple[int, int] | None = None
        self._press: QPointF | None = None
        self._moving: tuple[QPointF, Box] | None = None

    def set_image(self, image: QImage, width: int, height: int) -> None:
        self.image, self.full = image, (width, height)
        self.set_box(Box(0, 0, width, height))

    def set_aspect(self, aspect: tuple[int, int] | None) -> None:
        self.aspect = aspect
        w, h = self.full
        self.set_box(aspect_box(w, h, aspect) if aspect else Box(0, 0, w, h))

    def set_box(self, box: Box) -> None:
        self.box = fit_aspect(box, self.aspect, *self.full)
        self.update()
        self.box_changed.emit(self.box)

    # --- geometry: widget ↔ image pixels -------------------------------------------------------

    def _frame(self) -> QRectF:
        w, h = self.full
        s = min(self.width() / w, self.height() / h)
        fw, fh = w * s, h * s
        return QRectF((self.width() - fw) / 2, (self.height() - fh) / 2, fw, fh)

    def _to_image(self, p: QPointF) -> tuple[float, float]:
        f = self._frame()
        w, h = self.full
        x = (p.x() - f.left()) / f.width() * w
        y = (p.y() - f.top()) / f.height() * h
        return min(max(x, 0.0), float(w)), min(max(y, 0.0), float(h))

    def _to_widget(self, box: Box) -> QRectF:
        f = self._frame()
        w, h = self.full
        sx, sy = f.width() / w, f.height() / h
        return QRectF(
            f.left() + box.left * sx, f.top() + box.top * sy, box.width * sx, box.height * sy
        )

    # --- mouse -----------------------------------------------------------------------------------

    def mousePressEvent(self, e: QMouseEvent) -> None:
        if e.button() != Qt.MouseButton.LeftButton:
            return super().mousePressEvent(e)
        p = e.position()
        if self._to_widget(self.box).contains(p) and self.box != Box(0, 0, *self.full):
            self._moving = (p, self.box)
        else:
            self._press = p

    def mouseMoveEvent(self, e: QMouseEvent) -> None:
        p = e.position()
        if self._moving is not None:
            start, box = self._moving
            x0, y0 = self._to_image(start)
            x1, y1 = self._to_image(p)
            moved = Box(round(box.left + x1 - x0), round(box.top + y1 - y0), box.width, box.height)
            self.box = clamp_box(moved, *self.full)
            self.update()
            self.box_changed.emit(self.box)
        elif self._press is not None:
            self._drag_to(p)

    def mouseReleaseEvent(self, e: QMouseEvent) -> None:
        if self._press is not None:
            self._drag_to(e.position())
        self._press = self._moving = None

    def _drag_to(self, p: QPointF) -> None:
        assert self._press is not None
        x0, y0 = self._to_image(self._press)
        x1, y1 = self._to_image(p)
        w, h = abs(x1 - x0), abs(y1 - y0)
        if self.aspect is not None:  # the box keeps the aspect; its width leads
            aw, ah = self.aspect
            h = w * ah / aw
        left = x0 if x1 >= x0 else x0 - w
        top = y0 if y1 >= y0 else y0 - h
        if w < 2 or h < 2:
            return
        box = clamp_box(Box(round(left), round(top), round(w), round(h)), *self.full)
        self.box = fit_aspect(box, self.aspect, *self.full)
        self.update()
        self.box_changed.emit(self.box)

    # --- paint -----------------------------------------------------------------------------------

    def paintEvent(self, _e: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        f = self._frame()
        if not self.image.isNull():
            p.drawImage(f, self.image)
        r = self._to_widget(self.box)
        shade = QColor(0, 0, 0, 140)
        p.fillRect(QRectF(f.left(), f.top(), f.width(), r.top() - f.top()), shade)
        p.fillRect(QRectF(f.left(), r.bottom(), f.width(), f.bottom() - r.bottom()), shade)
        p.fillRect(QRectF(f.left(), r.top(), r.left() - f.left(), r.height()), shade)
        p.fillRect(QRectF(r.right(), r.top(), f.right() - r.right(), r.height()), shade)
        p.setPen(QPen(QColor("#ffd24a"), 2))
        p.drawRect(r)
        p.setPen(QPen(QColor(255, 255, 255, 90), 1))
        for k in (1, 2):  # thirds
            x = r.left() + r.width() * k / 3
            y = r.top() + r.height() * k / 3
            p.drawLine(QPointF(x, r.top()), QPointF(x, r.bottom()))
            p.drawLine(QPointF(r.left(), y), QPointF(r.right(), y))
        p.end()


def bucket_line(box: Box, resolution: int) -> str:
    """ "Crop 812×609 px → trains at 1024 px as 816×608 (scaled, centre-cropped)"."""
    b = crop_bucket(box, resolution)
    head = f"Crop {box.width}×{box.height} px"
    if b is None:
        return f"{head} → too small to train at {resolution} px"
    how = "" if b == (box.width, box.height) else " (scaled, centre-cropped)"
    return f"{head} → trains at {resolution} px as {b[0]}×{b[1]}{how}"


class CropDialog(QDialog):
    """Choose a crop for one image; ``box`` when accepted. ``restore_requested`` asks to put the
    copy from before the first crop back (the button shows only when one is kept)."""

    restore_requested = Signal()

    def __init__(
        self,
        name: str,
        image: QImage,
        size: tuple[int, int],
        resolution: int | None = None,
        has_original: bool = False,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Crop {name}")
        self.setMinimumSize(640, 520)
        self.canvas = CropCanvas()
        self.canvas.set_image(image, *size)
        self.aspect = QComboBox()
        for label, value in ASPECTS.items():
            self.aspect.addItem(label, value)
        self.resolution = QComboBox()
        for r in RESOLUTIONS:
            self.resolution.addItem(f"{r} px", r)
        res = resolution if resolution in RESOLUTIONS else 1024
        self.resolution.setCurrentIndex(RESOLUTIONS.index(res))
        self.bucket = plain_label(object_name="sectionTitle")
        self.bucket.setObjectName("cropBucket")
        note = plain_label(
            "Drag a rectangle on the picture (or move it). The file keeps its name and caption; "
            "the picture as it is now is kept in the dataset's .zitdesk/crops folder, and "
            "Undo (Ctrl+Z) brings it back.",
            "muted",
            wrap=True,
        )
        reset = QPushButton("Whole image")
        reset.clicked.connect(lambda: self.canvas.set_aspect(self.canvas.aspect))
        self.restore_button = QPushButton("Restore original…")
        self.restore_button.setToolTip("Put back the picture as it was before its first crop")
        self.restore_button.setVisible(has_original)
        self.restore_button.clicked.connect(self._on_restore)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.crop_button = buttons.addButton("Crop", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)

        top = QHBoxLayout()
        top.addWidget(QLabel("Aspect"))
        top.addWidget(self.aspect)
        top.addSpacing(12)
        top.addWidget(QLabel("Training resolution"))
        top.addWidget(self.resolution)
        top.addStretch(1)
        top.addWidget(reset)
        bottom = QHBoxLayout()
        bottom.addWidget(self.restore_button)
        bottom.addStretch(1)
        bottom.addWidget(buttons)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.canvas, 1)
        lay.addWidget(self.bucket)
        lay.addWidget(note)
        lay.addLayout(bottom)

        self.aspect.currentIndexChanged.connect(
            lambda _i: self.canvas.set_aspect(self.aspect.currentData())
        )
        self.resolution.currentIndexChanged.connect(lambda _i: self._show_bucket())
        self.canvas.box_changed.connect(lambda _b: self._show_bucket())
        self._show_bucket()

    @property
    def box(self) -> Box:
        return self.canvas.box

    def _show_bucket(self) -> None:
        box = self.canvas.box
        self.bucket.setText(bucket_line(box, int(self.resolution.currentData())))
        whole = box == Box(0, 0, *self.canvas.full)
        self.crop_button.setEnabled(not whole and crop_bucket(box, 512) is not None)

    def _on_restore(self) -> None:
        self.restore_requested.emit()
        self.reject()
