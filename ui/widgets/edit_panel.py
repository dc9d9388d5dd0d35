"""Generate's edit panel: an init image (drop a file, paste, open, or "Use as input" on a result)
with its denoise strength and inpaint mask, and the ControlNet (file, control image, the
preprocessed map, conditioning scale, start/end).

Widgets and their values only; :class:`ui.workspaces.edit_controls.EditControls` joins them to
the form (request and parameter hooks), the gallery and the engine. Picture previews are made on
the pool (``ui.tasks``), never on the GUI thread; file and model names are shown as plain text.
"""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtCore import QMimeData, Qt, Signal, Slot
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ui.tasks import TaskSignals, run_task

PICTURES = "Pictures (*.png *.jpg *.jpeg *.webp *.bmp)"
THUMB = 88


def _local_file(mime: QMimeData) -> str:
    for url in mime.urls():
        if url.isLocalFile():
            return url.toLocalFile()
    return ""


def thumbnail(path: str, control_type: str = "") -> QImage:
    """A small preview of ``path`` (its canny map when ``control_type`` is canny), on the pool."""
    from zitdesk.engine.edit.images import control_map, open_image

    pic = open_image(path)
    pic.thumbnail((512, 512))
    if control_type:
        pic = control_map(pic, control_type)
    pic = pic.convert("RGB")
    pic.thumbnail((THUMB * 2, THUMB * 2))
    data = pic.tobytes()
    return QImage(data, pic.width, pic.height, 3 * pic.width, QImage.Format.Format_RGB888).copy()


class PictureSlot(QLabel):
    """A drop target showing a picture's thumbnail; emits the dropped file."""

    dropped = Signal(str)

    def __init__(self, empty: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.empty = empty
        self.setAcceptDrops(True)
        self.setFixedSize(THUMB, THUMB)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setWordWrap(True)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.clear_picture()

    def clear_picture(self) -> None:
        self.setPixmap(QPixmap())
        self.setText(self.empty)

    def show_image(self, image: QImage) -> None:
        pm = QPixmap.fromImage(image).scaled(
            THUMB - 4,
            THUMB - 4,
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )
        self.setPixmap(pm)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if _local_file(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        path = _local_file(event.mimeData())
        if path:
            self.dropped.emit(path)
            event.acceptProposedAction()


def _spin(low: float, high: float, step: float, value: float, tip: str) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(low, high)
    box.setSingleStep(step)
    box.setDecimals(2)
    box.setValue(value)
    box.setToolTip(tip)
    return box


class EditPanel(QWidget):
    """Init image + strength + mask, and the ControlNet; :meth:`values` / :meth:`set_values`."""

    changed = Signal()
    init_chosen = Signal(str)  # a picture was chosen as the init image (path)
    mask_requested = Signal()  # "Paint mask…"
    paste_requested = Signal()
    controlnet_chosen = Signal(str)  # a ControlNet file/folder was chosen (to check)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.init_image = ""
        self.mask_image = ""
        self.outpaint: tuple[int, int, int, int] = (0, 0, 0, 0)
        self.controlnet_path = ""
        self.control_image = ""
        self._thumbs = TaskSignals(self)
        self._thumbs.succeeded.connect(self._on_thumb)
        self._thumbs.failed.connect(self._on_thumb_failed)
        # -- init image
        self.init_slot = PictureSlot("Drop a picture here")
        self.init_slot.dropped.connect(self.set_init_image)
        self.init_name = QLabel("Text to image (no init image)")
        self.init_name.setTextFormat(Qt.TextFormat.PlainText)
        self.init_name.setWordWrap(True)
        self.init_name.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        open_button = QPushButton("Open…")
        open_button.clicked.connect(self._open_init)
        paste = QPushButton("Paste")
        paste.setToolTip("Use the picture on the clipboard")
        paste.clicked.connect(self.paste_requested)
        self.clear_init = QPushButton("Clear")
        self.clear_init.clicked.connect(lambda: self.set_init_image(""))
        self.strength = _spin(
            0.0, 1.0, 0.05, 0.6, "How much to change the picture: 0 keeps it, 1 ignores it"
        )
        self.mask_button = QPushButton("Paint mask…")
        self.mask_button.setToolTip(
            "Paint what to repaint (inpaint), load a mask, or extend the canvas (outpaint)"
        )
        self.mask_button.clicked.connect(self.mask_requested)
        self.clear_mask = QPushButton("No mask")
        self.clear_mask.clicked.connect(self.clear_mask_and_pads)
        self.mask_label = QLabel("")
        self.mask_label.setObjectName("hint")
        self.mask_label.setTextFormat(Qt.TextFormat.PlainText)
        self.mask_label.setWordWrap(True)
        self.mask_blur = 4
        init_buttons = QHBoxLayout()
        init_buttons.setContentsMargins(0, 0, 0, 0)
        for b in (open_button, paste, self.clear_init):
            init_buttons.addWidget(b)
        init_col = QVBoxLayout()
        init_col.setContentsMargins(0, 0, 0, 0)
        init_col.addWidget(self.init_name)
        init_col.addLayout(init_buttons)
        init_row = QHBoxLayout()
        init_row.setContentsMargins(0, 0, 0, 0)
        init_row.addWidget(self.init_slot)
        init_row.addLayout(init_col, 1)
        mask_row = QHBoxLayout()
        mask_row.setContentsMargins(0, 0, 0, 0)
        mask_row.addWidget(self.mask_button)
        mask_row.addWidget(self.clear_mask)
        mask_row.addStretch(1)
        # -- ControlNet
        self.cn_name = QLabel("No ControlNet")
        self.cn_name.setTextFormat(Qt.TextFormat.PlainText)
        self.cn_name.setWordWrap(True)
        self.cn_name.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        cn_open = QPushButton("ControlNet…")
        cn_open.setToolTip("A Z-Image ControlNet file (e.g. Z-Image-Turbo-Fun-Controlnet-Union)")
        cn_open.clicked.connect(self._open_controlnet)
        self.cn_clear = QPushButton("Clear")
        self.cn_clear.clicked.connect(lambda: self.set_controlnet("", ""))
        self.control_slot = PictureSlot("Drop the control picture")
        self.control_slot.dropped.connect(self.set_control_image)
        self.map_slot = PictureSlot("Map preview")
        self.map_slot.setAcceptDrops(False)
        self.map_slot.setToolTip("What the ControlNet sees")
        control_open = QPushButton("Open…")
        control_open.clicked.connect(self._open_control)
        self.control_type = QComboBox()
        self.control_type.addItem("Canny edges", "canny")
        self.control_type.addItem("Ready map (depth, pose …)", "none")
        self.control_type.setToolTip(
            "Canny is made here from the picture; for depth or pose, drop a map made elsewhere"
        )
        self.control_type.currentIndexChanged.connect(self._refresh_map)
        self.control_scale = _spin(0.0, 2.0, 0.05, 0.75, "How strongly the ControlNet steers")
        self.control_start = _spin(0.0, 1.0, 0.05, 0.0, "Fraction of the steps where it starts")
        self.control_end = _spin(0.0, 1.0, 0.05, 1.0, "Fraction of the steps where it stops")
        cn_row = QHBoxLayout()
        cn_row.setContentsMargins(0, 0, 0, 0)
        cn_row.addWidget(cn_open)
        cn_row.addWidget(self.cn_clear)
        cn_row.addStretch(1)
        pics = QHBoxLayout()
        pics.setContentsMargins(0, 0, 0, 0)
        pics.addWidget(self.control_slot)
        pics.addWidget(self.map_slot)
        pic_col = QVBoxLayout()
        pic_col.addWidget(control_open)
        pic_col.addWidget(self.control_type)
        pic_col.addStretch(1)
        pics.addLayout(pic_col, 1)
        window = QHBoxLayout()
        window.setContentsMargins(0, 0, 0, 0)
        window.addWidget(self.control_start)
        window.addWidget(QLabel("to"))
        window.addWidget(self.control_end)
        self.cn_message = QLabel("")
        self.cn_message.setObjectName("hint")
        self.cn_message.setTextFormat(Qt.TextFormat.PlainText)
        self.cn_message.setWordWrap(True)
        self.cn_message.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow(init_row)
        form.addRow("Strength", self.strength)
        form.addRow("Inpaint", mask_row)
        form.addRow(self.mask_label)
        rule = QFrame()
        rule.setFrameShape(QFrame.Shape.HLine)
        form.addRow(rule)
        form.addRow(self.cn_name)
        form.addRow(cn_row)
        form.addRow(pics)
        form.addRow("Scale", self.control_scale)
        form.addRow("Acts from", window)
        form.addRow(self.cn_message)
        for sig in (
            self.strength.valueChanged,
            self.control_scale.valueChanged,
            self.control_start.valueChanged,
            self.control_end.valueChanged,
            self.control_type.currentIndexChanged,
        ):
            sig.connect(self.changed)
        self._sync()

    # -- values -----------------------------------------------------------------------------
    def values(self) -> dict[str, Any]:
        """The request's edit fields (the engine's names)."""
        return dict(
            init_image=self.init_image,
            strength=round(float(self.strength.value()), 4),
            mask_image=self.mask_image if self.init_image else "",
            mask_blur=int(self.mask_blur),
            outpaint=self.outpaint if self.init_image else (0, 0, 0, 0),
            controlnet_path=self.controlnet_path,
            control_image=self.control_image if self.controlnet_path else "",
            control_type=str(self.control_type.currentData()),
            control_scale=round(float(self.control_scale.value()), 4),
            control_start=round(float(self.control_start.value()), 4),
            control_end=round(float(self.control_end.value()), 4),
        )

    def set_numbers(self, values: dict[str, Any]) -> list[str]:
        """Strength, mask blur, outpaint and the ControlNet numbers from request-shaped values."""
        applied: list[str] = []

        def num(key: str) -> float | None:
            v = values.get(key)
            return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

        if num("strength") is not None and (values.get("init_image") or self.init_image):
            self.strength.setValue(num("strength") or 0.0)
            applied.append("strength")
        if isinstance(values.get("mask_blur"), int):
            self.mask_blur = int(values["mask_blur"])
        pads = values.get("outpaint")
        if (
            isinstance(pads, (list, tuple))
            and len(pads) == 4
            and all(isinstance(p, int) for p in pads)
        ):
            self.outpaint = (int(pads[0]), int(pads[1]), int(pads[2]), int(pads[3]))
        for key, box in (
            ("control_scale", self.control_scale),
            ("control_start", self.control_start),
            ("control_end", self.control_end),
        ):
            v = num(key)
            if v is not None:
                box.setValue(v)
        idx = self.control_type.findData(values.get("control_type"))
        if idx >= 0:
            self.control_type.setCurrentIndex(idx)
        self._sync()
        return applied

    # -- pictures -----------------------------------------------------------------------------
    @Slot(str)
    def set_init_image(self, path: str) -> None:
        self.init_image = path
        if not path:
            self.mask_image, self.outpaint = "", (0, 0, 0, 0)
            self.init_slot.clear_picture()
        else:
            run_task(self._thumbs, ("init", path), thumbnail, path)
            self.init_chosen.emit(path)
        self._sync()
        self.changed.emit()

    def set_mask(self, path: str, pads: tuple[int, int, int, int], blur: int) -> None:
        self.mask_image, self.outpaint, self.mask_blur = path, pads, blur
        self._sync()
        self.changed.emit()

    @Slot()
    def clear_mask_and_pads(self) -> None:
        self.set_mask("", (0, 0, 0, 0), self.mask_blur)

    @Slot(str)
    def set_control_image(self, path: str) -> None:
        self.control_image = path
        self._refresh_map()
        self._sync()
        self.changed.emit()

    def set_controlnet(self, path: str, message: str, ok: bool = True) -> None:
        """Show the chosen ControlNet (``message``: its description, or why it was refused)."""
        self.controlnet_path = path if ok else ""
        self.cn_message.setText(message)
        self.cn_message.setProperty("level", "" if ok else "error")
        self._sync()
        self.changed.emit()

    @Slot()
    def _refresh_map(self, *_args: Any) -> None:
        if self.control_image:
            run_task(self._thumbs, ("control", self.control_image), thumbnail, self.control_image)
            kind = str(self.control_type.currentData())
            run_task(
                self._thumbs, ("map", self.control_image, kind), thumbnail, self.control_image, kind
            )
        else:
            self.control_slot.clear_picture()
            self.map_slot.clear_picture()

    @Slot(object, object)
    def _on_thumb(self, tag: object, image: object) -> None:
        if not isinstance(tag, tuple) or not isinstance(image, QImage):
            return
        if tag[0] == "init" and tag[1] == self.init_image:
            self.init_slot.show_image(image)
        elif tag[0] == "control" and tag[1] == self.control_image:
            self.control_slot.show_image(image)
        elif tag[0] == "map" and tag[1] == self.control_image:
            if tag[2] == self.control_type.currentData():
                self.map_slot.show_image(image)

    @Slot(object, object)
    def _on_thumb_failed(self, tag: object, message: object) -> None:
        if isinstance(tag, tuple) and tag[0] == "init" and tag[1] == self.init_image:
            self.init_image = ""
            self.init_slot.clear_picture()
            self.init_name.setText(str(message))
            self.changed.emit()

    def _sync(self) -> None:
        has_init = bool(self.init_image)
        if has_init:
            masked = bool(self.mask_image or any(self.outpaint))
            mode = "Inpaint" if masked else "Image to image"
            if self.controlnet_path:
                mode = "ControlNet inpaint" if masked else "With a ControlNet, paint a mask"
            self.init_name.setText(f"{mode}: {os.path.basename(self.init_image)}")
        else:
            self.init_name.setText("Text to image (no init image)")
        # ControlNet (also with a mask) always starts from noise: no strength there
        self.strength.setEnabled(has_init and not self.controlnet_path)
        self.clear_init.setEnabled(has_init)
        self.mask_button.setEnabled(has_init)
        self.clear_mask.setEnabled(bool(self.mask_image or any(self.outpaint)))
        parts = []
        if self.mask_image:
            name = os.path.basename(self.mask_image)
            what = "painted mask" if name.startswith("mask-") else f"mask {name}"
            parts.append(f"{what}, feather {self.mask_blur} px")
        if any(self.outpaint):
            sides = ", ".join(
                f"{side} {px} px"
                for side, px in zip(("left", "top", "right", "bottom"), self.outpaint, strict=True)
                if px
            )
            parts.append(f"outpaint {sides}")
        self.mask_label.setText("; ".join(parts))
        self.mask_label.setVisible(bool(parts))
        self.cn_name.setText(
            f"ControlNet: {os.path.basename(self.controlnet_path.rstrip('/'))}"
            if self.controlnet_path
            else "No ControlNet"
        )
        self.cn_clear.setEnabled(bool(self.controlnet_path))
        for w in (self.control_scale, self.control_start, self.control_end, self.control_type):
            w.setEnabled(bool(self.controlnet_path))

    # -- file dialogs -------------------------------------------------------------------------
    def _open_init(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Init image", "", PICTURES)
        if path:
            self.set_init_image(path)

    def _open_control(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Control picture", "", PICTURES)
        if path:
            self.set_control_image(path)

    def _open_controlnet(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Z-Image ControlNet", "", "ControlNet (*.safetensors);;Any file (*)"
        )
        if path:
            self.controlnet_chosen.emit(path)
