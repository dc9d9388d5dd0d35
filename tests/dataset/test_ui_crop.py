"""The crop tool: a box dragged on the picture or an aspect preset, the trainer's own bucket
shown live, the file cropped in place (name and caption kept) with its previous bytes kept in
``.zitdesk/crops``, undo/redo, and the original restorable after a restart."""

from __future__ import annotations

import pytest
from messy import jpeg_with_orientation, make_dataset
from PIL import Image

from ui.datasets.table_model import Col
from zitdesk.dataset.crop import (
    Box,
    CropError,
    crop_bucket,
    crop_image,
    crops_of,
    original_of,
    undo_crop,
)
from zitdesk.train.dataset import bucket_for, scan_folder


@pytest.fixture
def folder(tmp_path):
    return make_dataset(tmp_path / "ds", 3, size=(320, 200))


def test_crop_keeps_the_original_and_follows_exif_orientation(tmp_path):
    d = tmp_path / "ds"
    d.mkdir()
    # stored 300×160 landscape, orientation 6: shown (and trained) as 160×300 portrait
    (d / "turned.jpg").write_bytes(jpeg_with_orientation(300, 160, 6, seed=3))
    (d / "turned.txt").write_text("a turned photo", encoding="utf-8")
    before = (d / "turned.jpg").read_bytes()
    done = crop_image(d, "turned.jpg", Box(10, 40, 128, 200))
    with Image.open(d / "turned.jpg") as im:
        assert im.size == (128, 200) and im.getexif().get(0x0112, 1) == 1
    assert done.before == (160, 300) and done.after == (128, 200)
    assert done.backup.read_bytes() == before and crops_of(d, "turned.jpg") == [done.backup]
    assert (d / "turned.txt").read_text(encoding="utf-8") == "a turned photo"
    assert [it.image.name for it in scan_folder(d).items] == ["turned.jpg"]  # crops/ is hidden
    assert crop_bucket(done.box, 1024) == bucket_for(128, 200, 1024)
    undo_crop(d, done)
    assert (d / "turned.jpg").read_bytes() == before
    assert original_of(d, "turned.jpg") == done.backup
    with pytest.raises(CropError, match="too small to train"):
        crop_image(d, "turned.jpg", Box(0, 0, 8, 100))
    with pytest.raises(CropError, match="outside"):
        crop_image(d, "turned.jpg", Box(100, 0, 100, 100))
    assert (d / "turned.jpg").read_bytes() == before  # a refused crop changes nothing


def test_crop_tool_in_the_workspace(qtbot, make_workspace, folder):
    from PySide6.QtCore import QPoint, Qt

    name = "img 0001.png"
    original = (folder / name).read_bytes()
    ws = make_workspace(folder)
    assert ws.toolbar.crop_button.isEnabled()
    ws.select_name(name)
    dlg = ws.open_crop()
    assert dlg is not None and dlg.windowTitle() == f"Crop {name}"
    assert not dlg.crop_button.isEnabled()  # the whole image: nothing to crop yet
    # an aspect preset: the largest centred square, and the trainer's bucket for it
    dlg.aspect.setCurrentIndex(dlg.aspect.findText("1:1"))
    assert dlg.box == Box(60, 0, 200, 200)
    assert (
        dlg.bucket.text()
        == "Crop 200×200 px → trains at 1024 px as 192×192 (scaled, centre-cropped)"
    )
    assert bucket_for(200, 200, 1024) == (192, 192)
    dlg.resolution.setCurrentIndex(dlg.resolution.findText("512 px"))
    assert "trains at 512 px as 192×192" in dlg.bucket.text()
    # a free box dragged on the picture: the bucket line follows the drag
    dlg.aspect.setCurrentIndex(dlg.aspect.findText("Free"))
    dlg.resize(800, 600)
    dlg.show()
    qtbot.waitExposed(dlg)
    c = dlg.canvas
    frame = c._frame()
    to_w = lambda x, y: QPoint(  # noqa: E731 - image px → widget px
        round(frame.left() + x * frame.width() / 320), round(frame.top() + y * frame.height() / 200)
    )
    qtbot.mousePress(c, Qt.MouseButton.LeftButton, pos=to_w(20, 10))
    qtbot.mouseMove(c, to_w(120, 60))
    mid = dlg.bucket.text()
    qtbot.mouseRelease(c, Qt.MouseButton.LeftButton, pos=to_w(260, 170))
    box = dlg.box
    assert abs(box.left - 20) <= 2 and abs(box.top - 10) <= 2
    assert abs(box.width - 240) <= 3 and abs(box.height - 160) <= 3
    assert dlg.bucket.text() != mid and dlg.bucket.text().startswith(
        f"Crop {box.width}×{box.height} px"
    )
    b = bucket_for(box.width, box.height, 512)
    assert f"as {b[0]}×{b[1]}" in dlg.bucket.text()
    assert dlg.crop_button.isEnabled()
    dlg.crop_button.click()
    qtbot.waitUntil(lambda: "Cropped" in ws.banner.label.text(), timeout=30_000)
    assert ws.session.record(name).width == box.width
    with Image.open(folder / name) as im:
        assert im.size == (box.width, box.height)
    assert ws.model.index(ws.model.row_of(name), Col.SIZE).data() == f"{box.width}×{box.height}"
    assert (folder / "img 0001.txt").read_text(encoding="utf-8") == "photo 1, tag1"
    assert original_of(folder, name).read_bytes() == original
    cropped = (folder / name).read_bytes()

    def settled(expected: bytes):
        return lambda: not ws.session.rewriting and (folder / name).read_bytes() == expected

    # undo / redo (on the crop worker, in order)
    ws.undo_action.trigger()
    qtbot.waitUntil(settled(original), timeout=30_000)
    qtbot.waitUntil(lambda: ws.session.record(name).width == 320, timeout=30_000)
    ws.redo_action.trigger()
    qtbot.waitUntil(settled(cropped), timeout=30_000)
    # after a restart the original can still be put back (itself undoable); the grid's
    # preview opens the tool on a double-click
    ws.session.undo_stack.clear()
    ws.show_grid()
    ws.select_name(name)
    with qtbot.waitSignal(ws.grid.crop_requested, timeout=5000):
        qtbot.mouseDClick(ws.grid.preview, Qt.MouseButton.LeftButton)
    dlg2 = ws.image_actions.crop_dialog
    assert dlg2 is not None and dlg2 is not dlg and dlg2.windowTitle() == f"Crop {name}"
    assert dlg2.restore_button.isVisibleTo(dlg2)
    dlg2.restore_button.click()
    qtbot.waitUntil(settled(original), timeout=30_000)
    qtbot.waitUntil(lambda: "Put back" in ws.banner.label.text(), timeout=30_000)
    ws.undo_action.trigger()
    qtbot.waitUntil(settled(cropped), timeout=30_000)
    # a refused crop says why in one sentence and changes nothing
    assert ws.session.crop(name, Box(0, 0, 4, 4))
    qtbot.waitUntil(lambda: "too small to train" in ws.banner.label.text(), timeout=30_000)
    assert not ws.session.rewriting and (folder / name).read_bytes() == cropped
