"""The Generate workspace through the real widgets, with the scripted FakeEngine."""

from __future__ import annotations

import pytest
from fakes import GIB, FakeEngine, gpu_snapshot
from PySide6.QtCore import QFile, QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QApplication

from zitdesk.engine.requests import MemoryMode


def generate_and_wait(qtbot, win, timeout=30_000):
    with qtbot.waitSignal(win.controller.job_ended, timeout=timeout) as blocker:
        win.generate.generate_button.click()
    return blocker.args[0]


def test_generate_fills_gallery_history_and_progress(qtbot, make_window, settings, tmp_path):
    eng = FakeEngine(image_dir=tmp_path)
    win = make_window(settings, eng)
    ws = win.generate
    ws.form.prompt.set_text("a red fox in the snow")
    ws.form.count.setValue(2)
    job = generate_and_wait(qtbot, win)
    assert job.state == "finished"
    req = eng.requests[0]
    assert (req.prompt, req.width, req.height, req.steps, req.count) == (
        "a red fox in the snow",
        256,
        256,
        3,
        2,
    )
    assert req.model_path == settings.model_path
    assert ws.gallery_model.rowCount() == 2
    top = ws.gallery_model.items[0]
    assert top.seed == req.seed + 1 and top.request["seed"] == req.seed + 1
    assert ws.history_model.rowCount() == 1
    assert ws.history_model.store.path.exists()
    assert ws.progress.bar.text().startswith("Done")
    assert ws.progress.preview_count >= 1
    assert "Finished" in win.status_label.text()
    assert not ws.cancel_button.isEnabled()


def test_generate_without_a_model_offers_setup(qtbot, make_window, settings):
    settings.model_path = ""
    eng = FakeEngine()
    win = make_window(settings, eng)
    win.generate.form.prompt.set_text("a cat")
    win.generate.generate_button.click()
    banner = win.generate.banner
    assert banner.isVisibleTo(win) and "No model" in banner.label.text()
    assert banner.action_key == "setup" and eng.requests == []
    banner.action_button.click()
    dlg = win._setup_dialog
    assert dlg is not None
    qtbot.waitUntil(lambda: not dlg.busy, timeout=30_000)
    dlg.reject()


def test_invalid_form_shows_a_plain_message(qtbot, make_window, settings):
    eng = FakeEngine()
    win = make_window(settings, eng)
    win.generate.form.prompt.set_text("   ")
    assert win.generate.generate() is None
    assert "prompt is empty" in win.generate.banner.label.text()
    assert eng.requests == []


def test_shortcuts(qtbot, make_window, settings):
    eng = FakeEngine("block")
    win = make_window(settings, eng, show=True)
    with qtbot.waitActive(win):
        win.activateWindow()
    win.generate.form.prompt.set_text("a cat")
    qtbot.keyClick(
        win.generate.form.prompt.edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier
    )
    assert eng.blocking.wait(5)
    assert win.generate.cancel_button.isEnabled()
    assert win.generate.generate_button.text() == "Add to queue"
    with qtbot.waitSignal(win.controller.job_cancelled, timeout=30_000):
        qtbot.keyClick(win, Qt.Key.Key_Escape)
    qtbot.keyClick(win, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    assert win.tabs.currentIndex() == 1
    qtbot.keyClick(win, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    assert win.tabs.currentIndex() == 0
    qtbot.waitUntil(lambda: win.generate.form.prompt.edit.hasFocus(), timeout=30_000)
    assert win.generate.form.prompt.edit.textCursor().selectedText() == "a cat"


def test_out_of_memory_offers_a_one_click_retry_one_tier_down(
    qtbot, make_window, settings, tmp_path
):
    eng = FakeEngine(["oom", "finish"], image_dir=tmp_path)
    win = make_window(settings, eng)
    ws = win.generate
    ws.form.prompt.set_text("a castle")
    job = generate_and_wait(qtbot, win)
    assert job.state == "failed"
    banner = ws.banner
    assert banner.isVisibleTo(win) and "ran out of memory" in banner.label.text()
    assert banner.action_button.text() == "Retry with fp8 weights + VAE tiling"
    assert "Out of GPU memory" in win.status_label.text()
    with qtbot.waitSignal(win.controller.job_finished, timeout=30_000):
        banner.action_button.click()
    retried = eng.requests[1]
    assert retried.memory_mode is MemoryMode.FP8 and retried.vae_tiling
    assert retried.seed == eng.requests[0].seed and retried.prompt == "a castle"
    assert ws.form.current_memory_mode() is MemoryMode.FP8 and ws.form.vae_tiling.isChecked()
    assert not banner.isVisibleTo(win)


def test_failure_is_a_readable_message_with_details(qtbot, make_window, settings):
    win = make_window(settings, FakeEngine("fail"))
    win.generate.form.prompt.set_text("x")
    generate_and_wait(qtbot, win)
    banner = win.generate.banner
    assert banner.label.text() == "Scripted failure." and banner.details_button.isVisibleTo(win)
    assert banner.details == "Traceback: fake"


def test_reuse_all_parameters_from_the_gallery(qtbot, make_window, settings, tmp_path):
    win = make_window(settings, FakeEngine(image_dir=tmp_path))
    form = win.generate.form
    form.prompt.set_text("first prompt")
    form.size_picker.set_size(512, 768)
    form.set_memory_mode(MemoryMode.MODEL_OFFLOAD)
    generate_and_wait(qtbot, win)
    seed = win.generate.gallery_model.items[0].seed
    form.prompt.set_text("something else")
    form.size_picker.set_size(1024, 1024)
    form.set_memory_mode(MemoryMode.GPU)
    win.generate.gallery.select_row(0)
    win.generate.gallery.actions["reuse"].trigger()
    assert form.prompt.text() == "first prompt"
    assert form.size_picker.image_size() == (512, 768)
    assert form.current_memory_mode() is MemoryMode.MODEL_OFFLOAD
    assert form.seed.mode == "fixed" and form.seed.value() == seed
    win.generate.gallery.actions["copy_seed"].trigger()
    assert QApplication.clipboard().text() == str(seed)
    win.generate.gallery.actions["copy_prompt"].trigger()
    assert QApplication.clipboard().text() == "first prompt"


def test_delete_moves_to_trash(qtbot, make_window, settings, tmp_path, monkeypatch):
    trashed = []

    def fake_trash(path):
        trashed.append(path)
        return True

    monkeypatch.setattr(QFile, "moveToTrash", staticmethod(fake_trash))
    win = make_window(settings, FakeEngine(image_dir=tmp_path))
    win.generate.form.prompt.set_text("x")
    generate_and_wait(qtbot, win)
    path = win.generate.gallery_model.items[0].path
    win.generate.gallery.select_row(0)
    win.generate.gallery.actions["trash"].trigger()
    assert trashed == [path] and win.generate.gallery_model.rowCount() == 0
    assert "trash" in win.generate.banner.label.text()


def test_history_search_and_reuse(qtbot, make_window, settings, tmp_path):
    win = make_window(settings, FakeEngine(image_dir=tmp_path))
    ws = win.generate
    for prompt in ("a red fox", "a blue whale"):
        ws.form.prompt.set_text(prompt)
        generate_and_wait(qtbot, win)
    panel = ws.history
    panel.search.setText("whale")
    assert panel.proxy.rowCount() == 1
    panel.view.setCurrentIndex(panel.proxy.index(0, 0))
    ws.form.prompt.set_text("")
    panel.use_button.click()
    assert ws.form.prompt.text() == "a blue whale"


def test_lora_stack_in_the_request_and_badge_from_the_engine(
    qtbot, make_window, settings, tmp_path
):
    lora = tmp_path / "style.safetensors"
    lora.write_bytes(b"not really a safetensors file")
    eng = FakeEngine(image_dir=tmp_path)
    win = make_window(settings, eng)
    stack = win.generate.form.loras
    row = stack.add_lora(str(lora))
    qtbot.waitUntil(lambda: stack.model.entries[row].badge == "unreadable", timeout=30_000)
    stack.slider.setValue(0.6)
    assert stack.model.entries[0].weight == pytest.approx(0.6)
    win.generate.form.prompt.set_text("x")
    generate_and_wait(qtbot, win)
    (spec,) = eng.requests[0].loras
    assert spec.path == str(lora) and spec.weight == pytest.approx(0.6) and spec.enabled
    entry = stack.model.entries[0]
    assert entry.badge == "loads 12/12" and entry.compatible is True
    stack.table.selectRow(0)
    stack.remove_button.click()
    assert stack.model.rowCount() == 0 and stack.empty_label.isVisibleTo(win)


def test_structured_prompt_dialog_writes_markdown(qtbot, make_window, settings):
    win = make_window(settings)
    ws = win.generate
    ws.form.prompt.set_text("a street at night")
    dlg = ws.open_structure_dialog()
    assert dlg.scene.toPlainText() == "a street at night" and dlg.note.isVisibleTo(dlg)
    model = dlg.model
    model.setData(model.index(0, 0), "a girl")
    model.setData(model.index(0, 1), "short brown hair")
    model.setData(model.index(0, 2), "on the left")
    dlg.add_button.click()
    model.setData(model.index(1, 0), "a cat")
    assert dlg.preview.toPlainText().endswith("- a cat")
    dlg.accept()
    assert ws.form.prompt.text() == (
        "- a street at night\n- a girl -- short brown hair -- on the left\n- a cat"
    )


def test_prediction_shows_fit_and_feeds_the_ghost_bar(qtbot, make_window, settings, tmp_path):
    win = make_window(
        settings,
        FakeEngine(image_dir=tmp_path, peak=int(9.5 * GIB)),
        snapshot_fn=lambda: gpu_snapshot(used=2 * GIB, total=12 * GIB),
    )
    qtbot.waitUntil(lambda: win.meter.has_gpu, timeout=30_000)
    ws = win.generate
    ws.form.set_memory_mode(MemoryMode.GPU)
    ws.update_prediction()
    text = ws.progress.prediction.text()
    assert "too much" in text and 'href="mode:' in text
    assert win.meter.bar.ghost > 12 * GIB
    ws.progress.link_activated.emit("mode:group_offload")
    assert ws.form.current_memory_mode() is MemoryMode.GROUP_OFFLOAD
    ws.form.prompt.set_text("x")
    generate_and_wait(qtbot, win)
    ws.update_prediction()
    assert "measured on an earlier job" in ws.progress.prediction.text()
    assert win.meter.bar.ghost == int(9.5 * GIB)
    from ui.main_window import predictor_path

    assert predictor_path().exists()  # measurements persist for the next session


def test_dropping_a_png_loads_its_parameters(qtbot, make_window, settings, tmp_path):
    pytest.importorskip("zitdesk.imagemeta")
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(
        "parameters",
        "a lighthouse at dawn\nSteps: 12, Sampler: Euler, CFG scale: 1, "
        "Seed: 1234, Size: 832x1248, Model: z_image_turbo",
    )
    png = tmp_path / "a1111.png"
    Image.new("RGB", (8, 8)).save(png, pnginfo=info)
    win = make_window(settings, show=True)
    win.switch_workspace(2)
    md = QMimeData()
    md.setUrls([QUrl.fromLocalFile(str(png))])
    event = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        md,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    win.dropEvent(event)
    form = win.generate.form
    qtbot.waitUntil(lambda: form.prompt.text() == "a lighthouse at dawn", timeout=30_000)
    assert win.tabs.currentIndex() == 0
    assert form.steps.value() == 12 and form.seed.value() == 1234
    assert form.size_picker.image_size() == (832, 1248)
    assert "A1111" in win.generate.banner.label.text()


def test_dropping_an_image_without_parameters_says_so(qtbot, make_window, settings, tmp_path):
    pytest.importorskip("zitdesk.imagemeta")
    from PIL import Image

    png = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(png)
    win = make_window(settings)
    win.generate.load_image_parameters(str(png))
    qtbot.waitUntil(lambda: win.generate.banner.isVisibleTo(win), timeout=30_000)
    assert "no generation parameters" in win.generate.banner.label.text()


def test_window_state_is_restored(qtbot, make_window, settings):
    win = make_window(settings, show=True)
    win.resize(1111, 777)
    win.switch_workspace(3)
    win.close()
    again = make_window(settings, show=True)
    assert again.tabs.currentIndex() == 3
    # restored (offscreen adds its own frame margins, so allow a few pixels)
    assert abs(again.width() - 1111) < 30 and abs(again.height() - 777) < 30


def test_closing_while_a_job_runs_cancels_it_and_waits(qtbot, make_window, settings, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    # Closing asks first (tests/ui/test_ui_window.py covers "No"); "Yes" cancels and waits.
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    eng = FakeEngine("block")
    win = make_window(settings, eng, show=True)
    win.generate.form.prompt.set_text("x")
    job = win.generate.generate()
    assert eng.blocking.wait(5)
    win.close()
    assert job.token.cancelled
    assert not win.controller.running
    assert eng.shutdown_calls == 1


def test_settings_are_autosaved_from_the_form(qtbot, make_window, settings):
    from zitdesk.settings import load_settings

    win = make_window(settings)
    win.generate.form.steps.setValue(12)
    win.generate.form.set_memory_mode(MemoryMode.FP8)
    assert win.saver.dirty
    win.saver.flush()
    loaded, _ = load_settings()
    assert loaded.steps == 12 and loaded.memory_mode == "fp8"
