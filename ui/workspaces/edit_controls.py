"""Generate's edit modes in the window: image to image, inpaint/outpaint, ControlNet, "Upscale ×2".

:class:`EditControls` is attached to a :class:`~ui.workspaces.generate.GenerateWorkspace`. It
puts :class:`~ui.widgets.edit_panel.EditPanel` into the form (a collapsible section above
"Advanced"), adds the panel's fields to every request through the form's ``request_hooks`` and
reads them back through ``parameter_hooks`` ("reuse parameters", dropped PNGs: an init image
named by a shared PNG is found again by its SHA-256 in the outputs and inputs folders). It
joins the results gallery's "Use as input" and "Upscale ×2", the clipboard ("Paste") and the
mask painter; painted masks and pasted pictures are saved (atomically) under
``<data>/inputs``, so the history's requests keep working after a restart.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Slot
from PySide6.QtGui import QGuiApplication, QImage, QImageReader
from PySide6.QtWidgets import QDialog
from superqt import QCollapsible

from ui.tasks import TaskSignals, run_task
from ui.widgets.edit_panel import EditPanel

log = logging.getLogger(__name__)

UPSCALE_FACTOR = 2.0
UPSCALE_STRENGTH = 0.3
TARGET_PIXELS = 1024 * 1024  # an init image's size is brought near Z-Image's native area


def inputs_dir() -> Path:
    from zitdesk.io import user_dirs

    return user_dirs()["data"] / "inputs"


def save_input(image: QImage, stem: str) -> str:
    """``image`` as a PNG under :func:`inputs_dir`, named by its content → the path."""
    from zitdesk.io import atomic_save

    buf = image.constBits().tobytes() if not image.isNull() else b""
    digest = hashlib.sha256(buf + f"{image.width()}x{image.height()}".encode()).hexdigest()[:12]
    path = inputs_dir() / f"{stem}-{digest}.png"
    if not path.exists():
        atomic_save(path, lambda tmp: image.save(str(tmp), "PNG") or None)
    return str(path)


def fit_size(width: int, height: int) -> tuple[int, int]:
    """A generation size for a ``width``×``height`` picture: its aspect, about 1 MP at most,
    multiples of 16, 64–2048 a side."""
    scale = min(1.0, (TARGET_PIXELS / max(1, width * height)) ** 0.5)
    w = max(64, min(2048, round(width * scale / 16) * 16))
    h = max(64, min(2048, round(height * scale / 16) * 16))
    return w, h


def find_by_hash(name: str, sha256: str, folders: list[Path]) -> str:
    """A file called ``name`` in one of ``folders`` whose SHA-256 is ``sha256`` ("" if none)."""
    from zitdesk.hashing import sha256_file

    base = os.path.basename(name)
    for folder in folders:
        candidate = folder / base
        try:
            if candidate.is_file() and (not sha256 or sha256_file(candidate) == sha256):
                return str(candidate)
        except OSError:
            continue
    return ""


def _check_controlnet(path: str) -> str:
    from zitdesk.engine.edit.controlnet import check_controlnet

    return check_controlnet(path).label


def _image_size(path: str) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        w, h = im.size
        turned = im.getexif().get(0x0112, 1) in (5, 6, 7, 8)  # EXIF: shown rotated by 90°
        return (h, w) if turned else (w, h)


class EditControls(QObject):
    def __init__(self, workspace: Any) -> None:
        super().__init__(workspace)
        self.ws = workspace
        form = workspace.form
        self.panel = EditPanel()
        self.section = QCollapsible(
            "Image to image · inpaint · ControlNet", expandedIcon="▾", collapsedIcon="▸"
        )
        self.section.addWidget(self.panel)
        body = form.widget().layout()
        body.insertWidget(max(0, body.indexOf(form.advanced)), self.section)
        form.request_hooks.append(self.add_fields)
        form.parameter_hooks.append(self.apply_values)
        self.panel.changed.connect(form.changed)
        self.panel.init_chosen.connect(self._size_from_init)
        self.panel.mask_requested.connect(self.open_painter)
        self.panel.paste_requested.connect(self.paste)
        self.panel.controlnet_chosen.connect(self.choose_controlnet)
        self._tasks = TaskSignals(self)
        self._tasks.succeeded.connect(self._on_task)
        self._tasks.failed.connect(self._on_task_failed)
        self.painter: Any = None
        self._keep_size = ""  # an init image restored with its request: keep the request's size
        gallery = workspace.gallery
        gallery.use_as_input_requested.connect(self.use_as_input)
        gallery.upscale_requested.connect(self.upscale)

    # -- request and parameters -----------------------------------------------------------------
    def add_fields(self, request: Any) -> Any:
        values = self.panel.values()
        if not values["init_image"] and not values["controlnet_path"]:
            return request
        return dataclasses.replace(request, **values)

    def apply_values(self, values: Mapping[str, Any]) -> list[str]:
        """The edit fields of request-shaped ``values`` back into the panel (pictures that are
        not on this computer any more are left out, with a note in the status bar)."""
        folders = [Path(self.ws.outputs_folder()), inputs_dir()]
        missing: list[str] = []

        def locate(key: str) -> str:
            ref = values.get(key)
            if not isinstance(ref, str) or not ref:
                return ""
            if os.path.isfile(ref) or (key == "controlnet_path" and os.path.isdir(ref)):
                return ref
            sha = values.get(f"{key}_sha256")
            found = find_by_hash(ref, sha if isinstance(sha, str) else "", folders)
            if not found:
                missing.append(os.path.basename(ref))
            return found

        up = values.get("upscale")
        if isinstance(up, (int, float)) and not isinstance(up, bool) and up > 1:
            # "Upscale ×2" is an action on a picture, not a state of the form
            source = os.path.basename(str(values.get("init_image", "")))
            self.panel.set_init_image("")
            self.panel.set_controlnet("", "", True)
            self.ws.status_message.emit(
                f"This image is a ×{up:g} upscale of {source or 'another image'}; use "
                "'Upscale ×2' on that picture to make it again."
            )
            return []
        init = locate("init_image")
        self._keep_size = init
        self.panel.set_init_image(init)
        applied = self.panel.set_numbers(dict(values))
        if init:
            pads = self.panel.outpaint
            self.panel.set_mask(locate("mask_image"), pads, self.panel.mask_blur)
            applied.append("init image")
        cn = locate("controlnet_path")
        self.panel.set_controlnet(cn, "", True)
        self.panel.set_control_image(locate("control_image") if cn else "")
        if cn:
            applied.append("ControlNet")
        if missing:
            self.ws.status_message.emit(
                "Not found on this computer (choose them again): " + ", ".join(missing) + "."
            )
        return applied

    # -- pictures -------------------------------------------------------------------------------
    @Slot(str)
    def _size_from_init(self, path: str) -> None:
        run_task(self._tasks, ("size", path), _image_size, path)

    def _apply_size(self, width: int, height: int) -> None:
        left, top, right, bottom = self.panel.outpaint
        self.ws.form.size_picker.set_size(*fit_size(width + left + right, height + top + bottom))

    @Slot(object)
    def use_as_input(self, item: Any) -> None:
        """A result becomes the init image ("Use as input")."""
        self.panel.set_init_image(item.path)
        self.section.expand()
        self.ws.status_message.emit(
            f"{item.name} is the init image; set the strength and Generate."
        )

    @Slot()
    def paste(self) -> None:
        image = QGuiApplication.clipboard().image()
        if image.isNull():
            self.ws.show_message("The clipboard holds no picture; copy one first.", "warning")
            return
        try:
            self.panel.set_init_image(save_input(image, "pasted"))
        except OSError as exc:
            from zitdesk.errors import user_message

            self.ws.show_message(user_message(exc), "error")

    @Slot()
    def open_painter(self) -> QDialog | None:
        """The mask painter over the init image; "Use mask" saves the mask and the outpaint."""
        from ui.widgets.mask_painter import MaskPainterDialog

        reader = QImageReader(self.panel.init_image)
        reader.setAutoTransform(True)  # as the engine reads it: EXIF orientation applied
        image = reader.read()
        if image.isNull():
            self.ws.show_message("The init image cannot be read; choose it again.", "error")
            return None
        mask = QImage(self.panel.mask_image) if self.panel.mask_image else None
        dialog = MaskPainterDialog(image, mask, self.panel.outpaint, self.panel.mask_blur, self.ws)
        dialog.accepted.connect(lambda: self._mask_done(dialog))
        self.painter = dialog
        dialog.open()
        return dialog

    def _mask_done(self, dialog: Any) -> None:
        canvas = dialog.canvas
        pads = dialog.pads()
        path = ""
        if canvas.painted_fraction() > 0:
            path = save_input(canvas.mask, "mask")
        self.panel.set_mask(path, pads, int(dialog.feather.value()))
        self._apply_size(canvas.image.width(), canvas.image.height())

    # -- ControlNet -----------------------------------------------------------------------------
    @Slot(str)
    def choose_controlnet(self, path: str) -> None:
        run_task(self._tasks, ("controlnet", path), _check_controlnet, path)

    @Slot(object, object)
    def _on_task(self, tag: object, result: object) -> None:
        if not isinstance(tag, tuple):
            return
        if tag[0] == "size" and tag[1] == self.panel.init_image and isinstance(result, tuple):
            if tag[1] == self._keep_size:
                self._keep_size = ""
                return
            self._apply_size(*result)
        elif tag[0] == "controlnet":
            self.panel.set_controlnet(str(tag[1]), str(result), True)
            self.section.expand()

    @Slot(object, object)
    def _on_task_failed(self, tag: object, message: object) -> None:
        if isinstance(tag, tuple) and tag[0] == "controlnet":
            self.panel.set_controlnet("", str(message), False)
            self.ws.show_message(str(message), "error")

    # -- upscale --------------------------------------------------------------------------------
    @Slot(object)
    def upscale(self, item: Any) -> Any:
        """Queue "Upscale ×2" of a result: tiled image to image at a low strength, with the
        form's model, LoRAs and memory mode."""
        from zitdesk.engine.edit.options import upscale_size
        from zitdesk.errors import RequestError

        w, h = item.width, item.height
        if not (w and h):
            w, h = _image_size(item.path)
        width, height = upscale_size(w, h, UPSCALE_FACTOR)
        base = self.ws.form.build_request(self.ws.settings.model_path)
        request = dataclasses.replace(
            base,
            prompt=item.prompt or base.prompt,
            seed=int(item.seed),
            count=1,
            width=width,
            height=height,
            init_image=item.path,
            strength=UPSCALE_STRENGTH,
            mask_image="",
            outpaint=(0, 0, 0, 0),
            controlnet_path="",
            control_image="",
            upscale=UPSCALE_FACTOR,
        )
        try:
            request.validate()
        except RequestError:
            if max(width, height) > 2048:
                exc = RequestError(
                    f"{item.name} is {w}×{h}; ×2 would pass 2048 pixels a side, the most "
                    "Z-Image makes."
                )
            self.ws.show_message(str(exc), "error")
            return None
        self.ws.status_message.emit(f"Upscaling {item.name} to {width}×{height}.")
        return self.ws.submit(request)
