"""Generate's edit modes in the window: the mask painter, the edit panel in the request,
"Use as input", "Upscale ×2", reuse of an edit image's parameters, the ControlNet check."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import FakeEngine
from PIL import Image
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QImage

from tests.support.controlnet import make_tiny_controlnet
from tests.support.samples import write_safetensors
from ui.models.gallery_model import GalleryItem
from ui.widgets.mask_painter import MaskCanvas, MaskPainterDialog, mask_array
from zitdesk.settings import AppSettings


def _picture(path, w=96, h=64):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
    return str(path)


def test_mask_canvas_brush_eraser_undo_invert_and_extend(qtbot, tmp_path):
    canvas = MaskCanvas(QImage(_picture(tmp_path / "p.png")))
    qtbot.addWidget(canvas)
    assert canvas.painted_fraction() == 0
    canvas.brush = 10
    canvas.stroke(QPointF(10, 10), QPointF(60, 10))
    painted = canvas.painted_fraction()
    assert painted > 0.05 and mask_array(canvas.mask)[10, 30] == 255
    canvas.erasing = True
    canvas.stroke(QPointF(30, 10))
    assert mask_array(canvas.mask)[10, 30] == 0 and canvas.painted_fraction() < painted
    canvas.undo()  # the erase goes
    assert mask_array(canvas.mask)[10, 30] == 255
    canvas.invert()
    assert mask_array(canvas.mask)[10, 30] == 0 and canvas.painted_fraction() > 0.8
    canvas.undo()
    canvas.set_pad("right", 64)
    assert canvas.canvas_size().width() == 96 + 64 and canvas.pads == [0, 0, 64, 0]
    canvas.undo()
    assert canvas.pads == [0, 0, 0, 0]


def test_mask_painter_paints_with_the_mouse_and_loads_a_mask(qtbot, tmp_path):
    dialog = MaskPainterDialog(QImage(_picture(tmp_path / "p.png")), feather=6)
    qtbot.addWidget(dialog)
    dialog.resize(700, 500)
    dialog.show()
    qtbot.waitExposed(dialog)
    c = dialog.canvas
    centre = c.rect().center()
    qtbot.mousePress(c, Qt.MouseButton.LeftButton, pos=centre)
    qtbot.mouseMove(c, centre + type(centre)(40, 0))
    qtbot.mouseRelease(c, Qt.MouseButton.LeftButton, pos=centre + type(centre)(40, 0))
    assert c.painted_fraction() > 0
    at = c.to_image(QPointF(centre))
    assert mask_array(c.mask)[int(at.y()), int(at.x())] == 255  # under the cursor, in image px
    m = np.zeros((64, 96), np.uint8)
    m[:, :48] = 255
    Image.fromarray(m).save(tmp_path / "half.png")
    assert dialog.load_mask(str(tmp_path / "half.png"))
    assert abs(c.painted_fraction() - 0.5) < 0.02
    assert not dialog.load_mask(str(tmp_path / "nothing.png"))
    assert "not found" in dialog.info.text()
    dialog.pad_boxes["bottom"].setValue(128)
    assert dialog.pads() == (0, 0, 0, 128) and dialog.feather.value() == 6


def test_panel_fields_reach_the_request_with_a_painted_mask(qtbot, make_window, tmp_path):
    win = make_window(AppSettings(model_path=str(tmp_path)), FakeEngine(image_dir=tmp_path))
    ws = win.generate
    edit = ws.edit
    init = _picture(tmp_path / "photo.png", 640, 480)
    edit.panel.set_init_image(init)
    qtbot.waitUntil(lambda: ws.form.size_picker.image_size() == (640, 480), timeout=30_000)
    edit.panel.strength.setValue(0.45)
    req = ws.form.build_request(str(tmp_path))
    assert (req.init_image, req.strength, req.mask_image) == (init, 0.45, "")
    dialog = edit.open_painter()
    qtbot.addWidget(dialog)
    dialog.canvas.brush = 80
    dialog.canvas.stroke(QPointF(320, 240))
    dialog.pad_boxes["right"].setValue(128)
    dialog.accept()
    req = ws.form.build_request(str(tmp_path))
    assert req.outpaint == (0, 0, 128, 0) and req.mask_image.endswith(".png")
    saved = np.asarray(Image.open(req.mask_image))
    assert saved.shape == (480, 640) and saved[240, 320] == 255 and saved[0, 0] == 0
    assert ws.form.size_picker.image_size() == (768, 480)  # the canvas grew by 128 px
    req.with_changes(prompt="a boat").validate()
    edit.panel.set_init_image("")
    req = ws.form.build_request(str(tmp_path))
    assert (req.init_image, req.mask_image, req.outpaint) == ("", "", (0, 0, 0, 0))


def test_use_as_input_and_upscale_a_result(qtbot, make_window, tmp_path):
    engine = FakeEngine(image_dir=tmp_path)
    win = make_window(AppSettings(model_path=str(tmp_path)), engine)
    ws = win.generate
    pic = _picture(tmp_path / "result.png", 512, 384)
    item = GalleryItem(pic, 42, "a harbour at night", 512, 384, {})
    ws.gallery.use_as_input_requested.emit(item)
    assert ws.edit.panel.init_image == pic
    assert ws.gallery.actions["upscale"].text() == "Upscale ×2"
    ws.edit.panel.set_init_image("")
    ws.gallery.upscale_requested.emit(item)
    qtbot.waitUntil(lambda: len(engine.requests) == 1, timeout=30_000)
    req = engine.requests[0]
    assert (req.init_image, req.upscale, req.strength) == (pic, 2.0, 0.3)
    from types import SimpleNamespace

    from ui.widgets.queue_panel import describe_job

    line = describe_job(SimpleNamespace(kind="generate", request=req))
    assert line.startswith("Generate 1 × 1024×768 (tiled upscale): a harbour")
    assert (req.width, req.height, req.seed, req.prompt) == (1024, 768, 42, "a harbour at night")
    big = GalleryItem(_picture(tmp_path / "big.png", 1280, 64), 1, "x", 1280, 64, {})
    assert ws.edit.upscale(big) is None
    assert "2048" in ws.banner.label.text()


def test_reuse_finds_the_source_picture_by_its_hash(qtbot, make_window, tmp_path):
    from zitdesk.hashing import sha256_file

    out = tmp_path / "outputs"
    out.mkdir()
    settings = AppSettings(model_path=str(tmp_path))
    win = make_window(settings, FakeEngine(image_dir=tmp_path))
    ws = win.generate
    ws.form.output_dir.setText(str(out))
    src = _picture(out / "zit-source.png")
    values = {
        "prompt": "again",
        "width": 96,
        "height": 64,
        "init_image": "zit-source.png",  # a shared PNG names the file, never the folder
        "init_image_sha256": sha256_file(src),
        "strength": 0.35,
        "mask_blur": 8,
        "control_scale": 0.5,
    }
    applied = ws.apply_parameters(values)
    assert "strength" in applied and "init image" in applied
    assert ws.edit.panel.init_image == src and ws.edit.panel.strength.value() == 0.35
    req = ws.form.build_request(str(tmp_path))
    assert (req.init_image, req.strength, req.mask_blur) == (src, 0.35, 8)
    assert ws.form.size_picker.image_size() == (96, 64)
    messages = []
    ws.status_message.connect(messages.append)
    ws.apply_parameters({**values, "init_image_sha256": "0" * 64})  # another file of that name
    assert ws.edit.panel.init_image == "" and "zit-source.png" in messages[-1]
    ws.apply_parameters({"prompt": "plain"})  # a text-to-image image clears the edit state
    assert ws.form.build_request(str(tmp_path)).init_image == ""
    ws.apply_parameters({**values, "upscale": 2.0})  # an upscale is redone by its action
    assert ws.edit.panel.init_image == "" and "×2 upscale of zit-source.png" in messages[-1]


def test_controlnet_file_is_checked_when_chosen(qtbot, make_window, tmp_path):
    win = make_window(AppSettings(model_path=str(tmp_path)), FakeEngine(image_dir=tmp_path))
    ws = win.generate
    panel = ws.edit.panel
    net = make_tiny_controlnet(tmp_path / "Tiny-Union.safetensors", layout="file")
    panel.controlnet_chosen.emit(str(net))
    qtbot.waitUntil(lambda: panel.controlnet_path == str(net), timeout=30_000)
    assert "Z-Image ControlNet 2.1" in panel.cn_message.text()
    control = _picture(tmp_path / "edges.png")
    panel.set_control_image(control)
    qtbot.waitUntil(lambda: not panel.map_slot.pixmap().isNull(), timeout=30_000)
    panel.control_scale.setValue(0.9)
    req = ws.form.build_request(str(tmp_path))
    assert (req.controlnet_path, req.control_image, req.control_scale) == (str(net), control, 0.9)
    lora = write_safetensors(
        tmp_path / "style.safetensors",
        {"diffusion_model.layers.0.attention.to_q.lora_A.weight": ((4, 32),)},
    )
    panel.controlnet_chosen.emit(str(lora))
    qtbot.waitUntil(lambda: panel.controlnet_path == "", timeout=30_000)
    assert "is a LoRA" in panel.cn_message.text() and "is a LoRA" in ws.banner.label.text()


@pytest.mark.slow
def test_inpaint_then_upscale_through_the_real_engine(qtbot, make_window, tiny_diffusers, tmp_path):
    """The window with the tiny real model: a result becomes the init image, a painted mask
    repaints part of it, "Upscale ×2" doubles it, and dropping the PNG back restores the edit."""
    settings = AppSettings(model_path=str(tiny_diffusers))
    win = make_window(settings, engine=None)
    ws = win.generate
    ws.form.output_dir.setText(str(tmp_path / "out"))
    ws.form.prompt.set_text("a tiny test image")
    ws.form.size_picker.set_size(64, 64)
    ws.form.steps.setValue(2)
    ws.generate_button.click()
    qtbot.waitUntil(lambda: ws.gallery_model.rowCount() == 1, timeout=120_000)
    qtbot.waitUntil(lambda: not win.controller.busy, timeout=30_000)
    first = ws.gallery_model.items[0]
    ws.gallery.select_row(0)
    ws.gallery.actions["use_input"].trigger()
    assert ws.edit.panel.init_image == first.path
    dialog = ws.edit.open_painter()
    qtbot.addWidget(dialog)
    dialog.canvas.brush = 24
    dialog.canvas.stroke(QPointF(32, 32))
    dialog.accept()
    ws.edit.panel.strength.setValue(1.0)
    ws.generate_button.click()
    qtbot.waitUntil(lambda: ws.gallery_model.rowCount() == 2, timeout=120_000)
    qtbot.waitUntil(lambda: not win.controller.busy, timeout=30_000)
    inpainted = ws.gallery_model.items[0]
    a = np.asarray(Image.open(first.path)).astype(int)
    b = np.asarray(Image.open(inpainted.path)).astype(int)
    assert np.abs(a - b)[:8, :8].max() <= 2 and np.abs(a - b)[28:36, 28:36].mean() > 5
    ws.gallery.select_row(0)
    ws.gallery.actions["upscale"].trigger()
    qtbot.waitUntil(lambda: ws.gallery_model.rowCount() == 3, timeout=120_000)
    qtbot.waitUntil(lambda: not win.controller.busy, timeout=30_000)
    big = ws.gallery_model.items[0]
    assert Image.open(big.path).size == (128, 128)
    ws.edit.panel.set_init_image("")
    ws.load_image_parameters(inpainted.path)  # the PNG names its source; found by its hash
    qtbot.waitUntil(lambda: ws.edit.panel.init_image == first.path, timeout=30_000)
    assert ws.edit.panel.strength.value() == 1.0 and ws.edit.panel.mask_image
