"""Generate for everyday use: LoRAs checked at "Add", banners that go, stack height, memory default."""

from __future__ import annotations

import pytest
from fakes import GIB, FakeEngine, gpu_snapshot

from tests.support.samples import make_lora
from ui.widgets.generate_form import hardware_memory_mode
from ui.widgets.lora_stack import MIN_ROWS
from zitdesk.engine.requests import MemoryMode


def _wait_checked(qtbot, stack, count):
    qtbot.waitUntil(
        lambda: (
            stack.model.rowCount() == count
            and all(e.compatible is not None for e in stack.model.entries)
        ),
        timeout=30_000,
    )


@pytest.mark.parametrize("kind", ["sdxl", "tiny_misfit"])
def test_a_lora_that_does_not_fit_is_refused_at_add(
    qtbot, make_window, settings, tmp_path, tiny_diffusers, kind
):
    settings.model_path = str(tiny_diffusers)
    win = make_window(settings)
    stack = win.generate.form.loras
    if kind == "sdxl":
        path = make_lora(tmp_path / "sdxl_style.safetensors", "sdxl", 8)
    else:  # key names are Z-Image's, but the layers are the full-size model's, not the tiny one's
        path = make_lora(tmp_path / "full_size.safetensors", "aitoolkit", 8, layers=2)
    with qtbot.waitSignal(stack.refused, timeout=30_000) as blocker:
        stack.add_lora(str(path))
    sentence = blocker.args[0]
    assert sentence.endswith(".") and "\n" not in sentence
    if kind == "tiny_misfit":
        assert "does not fit this model" in sentence
    qtbot.waitUntil(lambda: stack.model.rowCount() == 0, timeout=30_000)
    banner = win.generate.banner
    assert banner.isVisibleTo(win) and banner.label.text() == sentence
    assert win.generate.form.build_request(settings.model_path).loras == ()


def test_a_full_size_lora_fits_the_real_model_sizes(qtbot, make_window, settings, tmp_path):
    # settings.model_path is not a readable model: the real Z-Image Turbo sizes are used
    win = make_window(settings)
    stack = win.generate.form.loras
    path = make_lora(tmp_path / "mine.safetensors", "aitoolkit", 8, layers=30)
    stack.add_lora(str(path))
    _wait_checked(qtbot, stack, 1)
    assert stack.model.entries[0].compatible is True
    assert not win.generate.banner.isVisibleTo(win)


def test_lora_stack_shows_four_rows_and_grows(qtbot, make_window, settings, tmp_path):
    win = make_window(settings, show=True)
    stack = win.generate.form.loras
    paths = [make_lora(tmp_path / f"l{i}.safetensors", "aitoolkit", 4, layers=30) for i in range(6)]
    stack.add_lora(str(paths[0]))
    _wait_checked(qtbot, stack, 1)
    row_h = stack.table.verticalHeader().defaultSectionSize()
    header_h = stack.table.horizontalHeader().height()
    four = stack.table.height()
    assert four - header_h >= MIN_ROWS * row_h
    for p in paths[1:]:
        stack.add_lora(str(p))
    _wait_checked(qtbot, stack, 6)
    qtbot.waitUntil(lambda: stack.table.height() > four, timeout=30_000)
    assert stack.table.height() - header_h >= 6 * row_h
    # every row is fully visible: the first and the last row are inside the viewport
    vp = stack.table.viewport().rect()
    for row in (0, 5):
        assert vp.contains(stack.table.visualRect(stack.model.index(row, 0)))


def test_failure_banner_goes_on_the_next_success(qtbot, make_window, settings, tmp_path):
    eng = FakeEngine(["fail", "finish"], image_dir=tmp_path)
    win = make_window(settings, eng)
    ws = win.generate
    ws.form.prompt.set_text("a fox")
    with qtbot.waitSignal(win.controller.job_ended, timeout=30_000):
        ws.generate()
    assert ws.banner.isVisibleTo(win) and "Scripted failure" in ws.banner.label.text()
    with qtbot.waitSignal(win.controller.job_ended, timeout=30_000) as b:
        ws.generate()
    assert b.args[0].state == "finished"
    assert not ws.banner.isVisibleTo(win)


def test_failure_banner_goes_when_its_lora_is_removed(qtbot, make_window, settings, tmp_path):
    eng = FakeEngine("fail", image_dir=tmp_path)
    win = make_window(settings, eng)
    ws = win.generate
    stack = ws.form.loras
    stack.add_lora(str(make_lora(tmp_path / "mine.safetensors", "aitoolkit", 4, layers=30)))
    _wait_checked(qtbot, stack, 1)
    ws.form.prompt.set_text("a fox")
    with qtbot.waitSignal(win.controller.job_ended, timeout=30_000):
        ws.generate()
    assert ws.banner.isVisibleTo(win)
    stack.table.selectRow(0)
    stack.remove_button.click()
    assert not ws.banner.isVisibleTo(win)


@pytest.mark.parametrize(
    "total, mode",
    [
        (None, MemoryMode.MODEL_OFFLOAD),
        (8 * GIB, MemoryMode.GROUP_OFFLOAD),
        (16 * GIB, MemoryMode.FP8),
        (24 * GIB, MemoryMode.GPU),
    ],
)
def test_memory_mode_default_follows_the_hardware(qtbot, make_window, settings, total, mode):
    assert hardware_memory_mode(total) is mode
    snap = (lambda: gpu_snapshot(used=0, total=total)) if total else None
    win = make_window(settings, snapshot_fn=snap) if snap else make_window(settings)
    qtbot.waitUntil(lambda: win.generate.snapshot is not None, timeout=30_000)
    assert win.generate.form.current_memory_mode() is mode
    assert "24 GB" not in win.generate.form.memory_mode.currentText() or total == 24 * GIB


def test_a_chosen_memory_mode_is_kept(qtbot, make_window, settings):
    settings.memory_mode = MemoryMode.SEQUENTIAL.value
    win = make_window(settings)
    qtbot.waitUntil(lambda: win.generate.snapshot is not None, timeout=30_000)
    assert win.generate.form.current_memory_mode() is MemoryMode.SEQUENTIAL


@pytest.mark.parametrize("size", [(64, 64), (512, 256), (256, 512)])
def test_result_thumbnails_keep_the_aspect_show_the_seed_and_click_previews(
    qtbot, make_window, settings, tmp_path, size
):
    from PIL import Image
    from PySide6.QtCore import QSize

    from ui.models.gallery_model import GalleryItem
    from ui.widgets.gallery_panel import THUMB_BOX, ThumbnailDelegate

    win = make_window(settings, show=True)
    ws = win.generate
    w, h = size
    paths = []
    for i, color in enumerate(("red", "blue")):
        p = tmp_path / f"img{i}.png"
        Image.new("RGB", (w, h), color).save(p)
        paths.append(str(p))
        ws.gallery_model.add(GalleryItem(str(p), 100 + i, "a fox", w, h, {}))
    # the drawn rectangle is the whole image, fitted into the box with its aspect
    cell = ws.gallery.view.visualRect(ws.gallery_model.index(0))
    rect = ThumbnailDelegate.image_rect(cell, QSize(w, h))
    assert max(rect.width(), rect.height()) == THUMB_BOX  # a 64² image is scaled up, not a sliver
    assert abs(rect.width() / rect.height() - w / h) < 0.02
    assert ws.gallery_model.index(0).data() == "seed 101"  # drawn under the picture
    # a click shows that result in the big preview
    idx = ws.gallery_model.index(1)  # "img0" was added first: it is row 1
    with qtbot.waitSignal(ws.gallery.show_requested, timeout=30_000) as b:
        ws.gallery.view.clicked.emit(idx)
    assert b.args[0].seed == 100
    qtbot.waitUntil(lambda: ws._shown_path == paths[0], timeout=30_000)
    shown = ws.progress.preview
    qtbot.waitUntil(lambda: _preview_colour(shown) == (255, 0, 0), timeout=30_000)
    assert "Seed 100" in win.status_label.text()


def _preview_colour(preview):
    pm = preview._pixmap  # the full pixmap shown (the label draws it scaled)
    if pm is None or pm.isNull():
        return None
    c = pm.toImage().pixelColor(pm.width() // 2, pm.height() // 2)
    return (c.red(), c.green(), c.blue())


def test_last_prompt_settings_and_lora_stack_are_restored_on_start(
    qtbot, make_window, settings, tmp_path
):
    from zitdesk.settings import load_settings

    win = make_window(settings)
    form = win.generate.form
    lora = make_lora(tmp_path / "mine.safetensors", "aitoolkit", 4, layers=30)
    form.prompt.set_text("- in the kitchen\n- a cat -- orange")
    form.negative.setPlainText("blurry")
    form.steps.setValue(11)
    form.loras.add_lora(str(lora), 0.7)
    _wait_checked(qtbot, form.loras, 1)
    form.loras.model.entries[0].enabled = False
    win.saver.mark_dirty()
    win.saver.flush()
    win.shutdown()
    loaded, _ = load_settings()
    again = make_window(loaded)
    f2 = again.generate.form
    assert f2.prompt.text() == "- in the kitchen\n- a cat -- orange"
    assert f2.negative.toPlainText() == "blurry" and f2.steps.value() == 11
    _wait_checked(qtbot, f2.loras, 1)
    e = f2.loras.model.entries[0]
    assert (e.path, e.weight, e.enabled) == (str(lora), 0.7, False)


def test_from_library_picks_a_card_and_adds_it_checked(
    qtbot, make_window, settings, tmp_path, monkeypatch
):
    loras = tmp_path / "loras"
    loras.mkdir()
    good = make_lora(loras / "ink_style.safetensors", "aitoolkit", 4, layers=30)
    make_lora(loras / "pixel_sdxl.safetensors", "sdxl", 4)
    monkeypatch.setenv("ZITDESK_LORA_DIRS", str(loras))
    win = make_window(settings, show=True)
    stack = win.generate.form.loras
    assert stack.library_button.isEnabled()
    dlg = stack.open_library_picker()
    qtbot.waitUntil(lambda: len(dlg.shown_paths()) == 2, timeout=30_000)
    dlg.search.setText("ink")
    qtbot.waitUntil(lambda: dlg.shown_paths() == [str(good)], timeout=30_000)
    assert not dlg.add_button.isEnabled()
    assert dlg.select_path(str(good)) and dlg.add_button.isEnabled()
    dlg.add_button.click()
    _wait_checked(qtbot, stack, 1)
    assert stack.model.entries[0].path == str(good)
    assert stack.model.entries[0].compatible is True
    # an SDXL card is refused at "Add" with the sentence
    dlg = stack.open_library_picker()
    dlg.search.setText("pixel")
    qtbot.waitUntil(lambda: len(dlg.shown_paths()) == 1, timeout=30_000)
    dlg.select_path(dlg.shown_paths()[0])
    with qtbot.waitSignal(stack.refused, timeout=30_000):
        dlg.add_button.click()
    qtbot.waitUntil(lambda: stack.model.rowCount() == 1, timeout=30_000)
    assert win.generate.banner.isVisibleTo(win)
    win.library.shutdown()


def test_results_persist_across_restarts_newest_first_paged(qtbot, make_window, settings, tmp_path):
    import os

    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    from ui.workspaces.generate import OUTPUT_PAGE

    out = tmp_path / "outputs"
    out.mkdir()
    total = OUTPUT_PAGE + 3
    for i in range(total):
        info = PngInfo()
        info.add_text("parameters", f"fox number {i}\nSteps: 8, Seed: {1000 + i}, Size: 64x32")
        p = out / f"img_{i:03d}.png"
        Image.new("RGB", (64, 32), (i, 0, 0)).save(p, pnginfo=info)
        os.utime(p, ns=(10**18 + i * 10**9, 10**18 + i * 10**9))  # img_050 is the newest
    settings.output_dir = str(out)
    win = make_window(settings)
    ws = win.generate
    qtbot.waitUntil(lambda: ws.gallery_model.rowCount() == OUTPUT_PAGE, timeout=30_000)
    first = ws.gallery_model.items[0]
    assert first.path.endswith(f"img_{total - 1:03d}.png")
    assert first.seed == 1000 + total - 1 and first.prompt == f"fox number {total - 1}"
    assert ws.gallery.more_button.isVisibleTo(ws) and "3" in ws.gallery.more_button.text()
    ws.gallery.more_button.click()
    qtbot.waitUntil(lambda: ws.gallery_model.rowCount() == total, timeout=30_000)
    assert ws.gallery_model.items[-1].path.endswith("img_000.png")
    assert not ws.gallery.more_button.isVisibleTo(ws)
