from fakes import FakeEngine


def test_window_generates_with_fake_engine(qtbot, make_window, settings, tmp_path):
    eng = FakeEngine(image_dir=tmp_path)
    win = make_window(settings, eng)
    ws = win.generate
    ws.form.prompt.set_text("a cat")
    with qtbot.waitSignal(win.controller.job_ended, timeout=5000):
        ws.generate_button.click()
    assert ws.gallery_model.rowCount() == 1
