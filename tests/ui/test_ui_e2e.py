"""End to end: the tiny real model through the real engine thread (CPU, offline)."""

from __future__ import annotations

from pathlib import Path

import pytest

from zitdesk.settings import AppSettings


@pytest.mark.slow
def test_generate_with_the_tiny_model_through_the_real_engine(qtbot, make_window, tiny_diffusers):
    try:
        import zitdesk.imagemeta  # noqa: F401 - the engine writes PNGs with it
    except ImportError:
        pytest.skip("zitdesk.imagemeta has not landed yet")
    settings = AppSettings(model_path=str(tiny_diffusers))
    win = make_window(settings, engine=None)  # None → the real GenerationEngine, built lazily
    ws = win.generate
    ws.form.prompt.set_text("a tiny test image")
    ws.form.size_picker.set_size(64, 64)
    ws.form.steps.setValue(2)
    ws.generate_button.click()
    qtbot.waitUntil(lambda: ws.gallery_model.rowCount() == 1, timeout=120_000)
    item = ws.gallery_model.items[0]
    assert Path(item.path).is_file() and (item.width, item.height) == (64, 64)
    qtbot.waitUntil(lambda: not win.controller.busy, timeout=30_000)
    job_state = ws.progress.bar.text()
    assert job_state.startswith("Done"), job_state
    from zitdesk.imagemeta import read_parameters

    params = read_parameters(item.path)
    assert params.prompt == "a tiny test image" and params.steps == 2
    # Dropping our own PNG back restores every parameter, from the embedded request.
    ws.form.prompt.set_text("something else")
    ws.form.steps.setValue(8)
    ws.load_image_parameters(item.path)
    qtbot.waitUntil(lambda: ws.form.prompt.text() == "a tiny test image", timeout=30_000)
    assert ws.form.steps.value() == 2 and ws.form.size_picker.image_size() == (64, 64)
    assert ws.form.seed.mode == "fixed" and ws.form.seed.value() == item.seed
    assert "(zitdesk)" in ws.banner.label.text()
