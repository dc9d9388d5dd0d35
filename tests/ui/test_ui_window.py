"""The main window on a laptop screen, its title, the model set-up dialog and quitting."""

from __future__ import annotations

import pytest
from fakes import FakeEngine
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from test_ui_model_setup import model_tree, wait_idle  # noqa: F401 - fixture

from ui.dialogs.model_setup import ModelSetupDialog


def test_title_says_the_name_once(make_window, settings):
    win = make_window(settings)
    title = win.windowTitle()
    assert title.lower().count("zitdesk") == 1
    # ui.app sets the display name "zitdesk"; the platform appends it to a window title unless
    # the title already ends with it ("… — zitdesk — zitdesk" before).
    assert title.endswith("zitdesk")


@pytest.mark.parametrize("tab", [0, 1, 2, 3])
def test_window_fits_a_1366x768_laptop(qtbot, make_window, settings, tab):
    win = make_window(settings, show=True)
    win.switch_workspace(tab)
    qtbot.waitUntil(lambda: win.tabs.currentIndex() == tab, timeout=30_000)
    hint = win.minimumSizeHint().expandedTo(win.minimumSize())
    assert hint.width() <= 1280 and hint.height() <= 720, hint
    win.resize(1280, 720)
    qtbot.waitUntil(lambda: win.width() <= 1280 and win.height() <= 720, timeout=30_000)
    if tab == 0:
        gen = win.generate
        # the history column and the results keep a usable width, the form is not squeezed
        assert gen.history.width() >= 150
        assert gen.form.width() >= gen.form.minimumWidth()
        gen.form.advanced.expand(animate=False)
        neg = gen.form.negative
        qtbot.waitUntil(lambda: neg.isVisible(), timeout=30_000)
        gen.form.ensureWidgetVisible(neg)
        assert neg.height() >= 50 and neg.width() >= 150


def test_setup_dialog_shows_the_model_in_use(qtbot, model_tree):  # noqa: F811
    first = ModelSetupDialog()
    qtbot.addWidget(first)
    wait_idle(qtbot, first)
    in_use = first.model_path
    assert "No model is set up yet" in first.in_use.text()
    dlg = ModelSetupDialog(current=in_use)
    qtbot.addWidget(dlg)
    wait_idle(qtbot, dlg)
    assert in_use in dlg.in_use.text()
    assert "in use" in dlg.list.currentItem().text()
    assert dlg.model_path == in_use and dlg.use_button.isEnabled()


def test_use_button_is_disabled_after_a_refusal_until_a_valid_choice(
    qtbot,
    model_tree,  # noqa: F811 - the imported fixture
    tiny_diffusers,  # noqa: F811
):
    dlg = ModelSetupDialog()
    qtbot.addWidget(dlg)
    wait_idle(qtbot, dlg)
    assert dlg.use_button.isEnabled()
    empty = model_tree / "empty"
    empty.mkdir()
    dlg.check_folder(str(empty))
    wait_idle(qtbot, dlg)
    assert dlg.error.isVisibleTo(dlg)
    assert not dlg.use_button.isEnabled()
    dlg.check_folder(str(tiny_diffusers))
    wait_idle(qtbot, dlg)
    assert dlg.use_button.isEnabled() and dlg.model_path == str(tiny_diffusers)
    assert not dlg.error.isVisibleTo(dlg)


def _quit_action(win):
    for act in win.menuBar().actions()[0].menu().actions():
        if act.text() == "Quit":
            return act
    raise AssertionError("no Quit action")


def test_ctrl_q_quits_an_idle_window(qtbot, make_window, settings):
    win = make_window(settings, show=True)
    act = _quit_action(win)
    assert "Ctrl+Q" in [s.toString() for s in act.shortcuts()]
    qtbot.keyClick(win, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not win.isVisible(), timeout=30_000)
    assert not win.controller.running


@pytest.mark.parametrize("answer", ["yes", "no"])
def test_quit_with_a_running_generation_asks_then_cancels(
    qtbot, make_window, settings, monkeypatch, answer
):
    eng = FakeEngine("block")
    win = make_window(settings, engine=eng, show=True)
    asked = []

    def question(*args, **kwargs):
        asked.append(args[2] if len(args) > 2 else "")
        return QMessageBox.StandardButton.Yes if answer == "yes" else QMessageBox.StandardButton.No

    monkeypatch.setattr(QMessageBox, "question", question)
    win.generate.form.prompt.set_text("a red fox in the snow")
    job = win.generate.generate()
    assert job is not None, win.generate.banner.label.text()
    qtbot.waitUntil(eng.blocking.is_set, timeout=30_000)
    _quit_action(win).trigger()
    assert asked and "Cancel them and quit" in asked[0]
    if answer == "no":
        assert win.isVisible() and win.controller.busy and not job.token.cancelled
        win.controller.cancel()
        qtbot.waitUntil(lambda: not win.controller.busy, timeout=30_000)
    else:
        qtbot.waitUntil(lambda: not win.isVisible(), timeout=30_000)
        assert job.token.cancelled  # the running job was told to stop, then the thread ended
        assert not win.controller.running
