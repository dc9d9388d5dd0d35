"""Caption editing in the Datasets workspace: Return / Shift+Return / Esc, select-all on entry,
tag completion, the grid pane's keys, and Generate's Ctrl+Enter staying in Generate."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from messy import make_dataset
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from ui.datasets.caption_editor import CaptionEdit, tag_vocabulary
from ui.datasets.table_model import Col


@pytest.fixture
def folder(tmp_path):
    return make_dataset(tmp_path / "ds", 6, size=(64, 48))  # captions "photo N, tagK"


def _live_editor(view) -> CaptionEdit | None:
    """The open in-cell editor (a closed one may wait for deleteLater)."""
    eds = [e for e in view.findChildren(CaptionEdit, "captionEditor") if e.isVisible()]
    return eds[0] if eds else None


def _open_editor(qtbot, ws, row: int) -> CaptionEdit:
    if not ws.isActiveWindow():
        with qtbot.waitActive(ws):
            ws.show()
            ws.activateWindow()
    ws.select_row(row, edit=True)
    qtbot.waitUntil(
        lambda: (e := _live_editor(ws.table)) is not None and e.hasFocus(), timeout=30_000
    )
    return _live_editor(ws.table)


def _editor_closed(ws) -> bool:
    return _live_editor(ws.table) is None


def test_return_commits_shift_return_breaks_line_escape_reverts(qtbot, make_workspace, folder):
    ws = make_workspace(folder)
    ed = _open_editor(qtbot, ws, 1)
    assert ed.textCursor().selectedText() == "photo 1, tag1"  # entry selects all
    qtbot.keyClicks(ed, "first")  # typing replaces
    qtbot.keyClick(ed, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(ed, "second")
    assert ed.toPlainText() == "first\nsecond"
    qtbot.keyClick(ed, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: _editor_closed(ws), timeout=30_000)
    assert ws.session.dataset.by_name["img 0001.png"].caption == "first\nsecond"

    ed = _open_editor(qtbot, ws, 2)
    qtbot.keyClicks(ed, "thrown away")
    qtbot.keyClick(ed, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: _editor_closed(ws), timeout=30_000)
    assert ws.session.dataset.by_name["img 0002.png"].caption == "photo 2, tag2"
    assert ws.session.undo_stack.count() == 1


def test_ctrl_return_in_the_editor_commits_too(qtbot, make_workspace, folder):
    ws = make_workspace(folder)
    ed = _open_editor(qtbot, ws, 0)
    qtbot.keyClicks(ed, "by ctrl return")
    qtbot.keyClick(ed, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: _editor_closed(ws), timeout=30_000)
    assert ws.session.dataset.by_name["img 0000.png"].caption == "by ctrl return"


def test_tag_vocabulary_and_completion(qtbot, make_workspace, folder):
    assert tag_vocabulary(["a, b", "b, c", None], "ohwx") == ["ohwx", "b", "a", "c"]
    ws = make_workspace(folder)
    ws.session.set_trigger("zrobj")
    ed = _open_editor(qtbot, ws, 3)
    assert ed.vocabulary()[0] == "zrobj"
    assert {"tag0", "tag1", "tag2", "photo 3"} <= set(ed.vocabulary())
    ed.moveCursor(ed.textCursor().MoveOperation.End)  # edit in place
    qtbot.keyClicks(ed, ", zr")
    popup = ed.completer.popup()
    qtbot.waitUntil(popup.isVisible, timeout=30_000)
    assert ed.completer.currentCompletion() == "zrobj"
    assert QApplication.activeWindow() is ws.window()  # the list never takes focus
    qtbot.keyClick(ed, Qt.Key.Key_Return)  # takes the completion …
    assert not popup.isVisible()
    assert ed.toPlainText() == "photo 3, tag0, zrobj"
    assert _live_editor(ws.table) is ed  # … without committing
    qtbot.keyClicks(ed, ", ta")
    qtbot.waitUntil(popup.isVisible, timeout=30_000)
    qtbot.keyClick(ed, Qt.Key.Key_Escape)  # closes the list only
    assert not popup.isVisible() and ed.isVisible()
    qtbot.keyClick(ed, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: _editor_closed(ws), timeout=30_000)
    assert ws.session.dataset.by_name["img 0003.png"].caption == "photo 3, tag0, zrobj, ta"
    # the workspace's shortcuts still work afterwards (the list did not steal the window)
    ws.table.setFocus()
    qtbot.keyClick(ws.table, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    assert ws.session.dataset.by_name["img 0003.png"].flagged


def test_grid_pane_return_commits_escape_reverts(qtbot, make_workspace, folder):
    ws = make_workspace(folder)
    with qtbot.waitActive(ws):
        ws.show()
        ws.activateWindow()
    ws.select_row(4)
    ws.show_grid()
    pane = ws.grid.editor
    pane.setFocus()
    qtbot.waitUntil(pane.hasFocus, timeout=30_000)
    pane.selectAll()
    qtbot.keyClicks(pane, "pane text")
    qtbot.keyClick(pane, Qt.Key.Key_Escape)
    assert pane.toPlainText() == "photo 4, tag1"
    assert ws.session.undo_stack.count() == 0
    pane.selectAll()
    qtbot.keyClicks(pane, "pane text")
    qtbot.keyClick(pane, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(pane, "line two")
    qtbot.keyClick(pane, Qt.Key.Key_Return)
    assert ws.session.dataset.by_name["img 0004.png"].caption == "pane text\nline two"
    assert ws.session.undo_stack.count() == 1


def test_ctrl_enter_in_datasets_does_not_generate(qtbot, tmp_path, folder):
    """Generate's Ctrl+Enter / Escape are scoped to the Generate workspace."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "ui"))
    import shiboken6
    from fakes import FakeEngine, cpu_snapshot

    from ui.main_window import MainWindow
    from zitdesk.settings import AppSettings

    eng = FakeEngine()
    settings = AppSettings(model_path="/models/fake-z-image", width=256, height=256, steps=3)
    win = MainWindow(settings, engine_factory=lambda: eng, snapshot_fn=cpu_snapshot)
    qtbot.addWidget(win)
    try:
        with qtbot.waitExposed(win):
            win.show()
        with qtbot.waitActive(win):
            win.activateWindow()
        win.generate.form.prompt.set_text("a cat")
        win.tabs.setCurrentWidget(win.datasets_tab)
        ws = win.datasets
        ws.open_folder(folder)
        qtbot.waitUntil(lambda: ws.model.rowCount() == 6, timeout=30_000)
        ws.select_row(0, edit=True)
        qtbot.waitUntil(
            lambda: (e := _live_editor(ws.table)) is not None and e.hasFocus(), timeout=30_000
        )
        ed = _live_editor(ws.table)
        qtbot.keyClicks(ed, "kept")
        qtbot.keyClick(ed, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
        qtbot.keyClick(ed, Qt.Key.Key_Enter, Qt.KeyboardModifier.ControlModifier)
        assert ws.session.dataset.by_name["img 0000.png"].caption == "kept"
        assert eng.requests == []  # nothing was queued in Generate
        assert ws.model.index(0, Col.CAPTION).data() == "kept"
    finally:
        if shiboken6.isValid(win):
            win.shutdown()
