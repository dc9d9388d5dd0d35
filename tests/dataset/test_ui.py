"""Drive the Datasets workspace: edit, filter, bulk edit preview/apply, undo/redo, reopen + undo,
keyboard flow, grid pane, outside changes and conflicts, drop-to-import."""

from __future__ import annotations

from pathlib import Path

import pytest
from messy import make_dataset, pattern, save
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QPlainTextEdit

from ui.datasets.table_model import Col, DatasetTableModel, FilterMode


def _caption_file(folder: Path, name: str) -> str | None:
    p = (folder / name).with_suffix(".txt")
    return p.read_text(encoding="utf-8") if p.exists() else None


def _flushed(ws) -> bool:
    return not ws.session.dirty and not ws.session._flushing


@pytest.fixture
def folder(tmp_path):
    d = make_dataset(tmp_path / "ds", 12, size=(96, 64))
    (d / "img 0005.txt").unlink()  # one missing caption
    (d / "img 0009.txt").write_text("")  # one empty caption
    return d


def test_model_passes_qtmodeltester(qtmodeltester, folder):
    from zitdesk.dataset.store import Dataset

    m = DatasetTableModel()
    m.set_dataset(Dataset.open(folder))
    qtmodeltester.check(m, force_py=True)  # stays connected: checks every change below
    m.set_filter("photo 1", FilterMode.ALL)
    m.sort(Col.CAPTION, Qt.SortOrder.DescendingOrder)
    m.set_filter("", FilterMode.MISSING)
    m.set_filter("", FilterMode.ALL)
    m.setData(m.index(0, Col.CAPTION), "edited")
    m.set_tokens({it.name: 3 for it in m.visible_items()})
    assert m.rowCount() == 12


def test_open_shows_rows_thumbnails_and_tokens(qtbot, make_workspace, folder):
    ws = make_workspace(folder)
    m = ws.model
    assert m.rowCount() == 12 and ws.count_label.text() == "12 images"
    assert m.index(0, Col.NAME).data() == "img 0000.png"
    assert m.index(0, Col.SIZE).data() == "96×64"
    m.index(0, Col.THUMB).data(Qt.ItemDataRole.DecorationRole)  # queues the decode
    qtbot.waitUntil(
        lambda: m.index(0, Col.THUMB).data(Qt.ItemDataRole.DecorationRole) is not None,
        timeout=30_000,
    )
    qtbot.waitUntil(lambda: m.index(0, Col.TOKENS).data() == "3", timeout=30_000)  # "photo 0, tag0"
    assert "no caption" in m.index(5, Col.FLAGS).data()
    # browsing taught the index the image's hashes
    assert ws.session.dataset.by_name["img 0000.png"].sha256


def test_edit_in_table_autosaves_and_undoes(qtbot, make_workspace, folder):
    ws = make_workspace(folder)
    ws.show()
    ix = ws.index_of("img 0002.png")
    ws.table.setCurrentIndex(ix)
    ws.table.edit(ix)
    editor = ws.table.findChild(QPlainTextEdit, "captionEditor")
    assert editor is not None and editor.toPlainText() == "photo 2, tag2"
    editor.setPlainText("a new caption\nwith two lines")
    qtbot.keyClick(editor, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert ws.model.index(ix.row(), Col.CAPTION).data() == "a new caption\nwith two lines"
    assert ws.session.undo_stack.count() == 1
    qtbot.waitUntil(
        lambda: _caption_file(folder, "img 0002.png") == "a new caption\nwith two lines",
        timeout=30_000,
    )
    ws.undo_action.trigger()
    assert ws.model.index(ix.row(), Col.CAPTION).data() == "photo 2, tag2"
    ws.save_now()
    qtbot.waitUntil(
        lambda: _caption_file(folder, "img 0002.png") == "photo 2, tag2", timeout=30_000
    )
    ws.redo_action.trigger()
    ws.save_now()
    qtbot.waitUntil(
        lambda: _caption_file(folder, "img 0002.png") == "a new caption\nwith two lines",
        timeout=30_000,
    )


def test_filters_and_sorting(qtbot, make_workspace, folder):
    ws = make_workspace(folder, auto_check=True)
    (folder / "img 0011 copy.png").write_bytes((folder / "img 0011.png").read_bytes())
    ws.session.reload()
    qtbot.waitUntil(lambda: ws.model.total == 13, timeout=30_000)
    qtbot.waitUntil(
        lambda: ws.stats.report is not None and ws.stats.report.images == 13, timeout=20_000
    )
    ws.set_filter("tag1")
    assert [it.name for it in ws.model.visible_items()] == [
        "img 0001.png",
        "img 0004.png",
        "img 0007.png",
        "img 0010.png",
    ]
    assert ws.count_label.text() == "4 of 13 images"
    ws.set_filter("", FilterMode.MISSING)
    assert [it.name for it in ws.model.visible_items()] == [
        "img 0005.png",
        "img 0009.png",
        "img 0011 copy.png",
    ]
    ws.set_filter("", FilterMode.DUPLICATE)
    assert {it.name for it in ws.model.visible_items()} == {"img 0011.png", "img 0011 copy.png"}
    ws.set_filter("", FilterMode.ALL)
    ws.table.sortByColumn(Col.NAME, Qt.SortOrder.DescendingOrder)
    assert ws.model.item(0).name == "img 0011.png"
    # a click on a finding filters the table to its images
    key = next(k for k in ws.stats.finding_keys() if "identical" in ws.stats._issue_files[k][0])
    ws.stats._on_issue_link(key)
    assert ws.model.filter_mode is FilterMode.ISSUE and ws.model.rowCount() == 2


def test_bulk_edit_preview_apply_undo_and_reopen(qtbot, make_workspace, folder):
    ws = make_workspace(folder)
    ws.set_filter("", FilterMode.ALL)
    dlg = ws.open_bulk_edit()
    assert dlg is not None and dlg.scope() == "filtered"
    dlg.trigger.setText("ohwx")
    dlg.refresh()
    assert len(dlg.changes) == 12 and dlg.apply_button.isEnabled()
    assert "12 of 12 captions change" in dlg.summary.text()
    assert "ohwx" in dlg.preview.toPlainText()
    assert ("img 0005.png", None, "ohwx") in dlg.changes
    dlg.apply_button.click()
    assert ws.session.dataset.by_name["img 0000.png"].caption == "ohwx, photo 0, tag0"
    qtbot.waitUntil(
        lambda: _flushed(ws) and _caption_file(folder, "img 0005.png") == "ohwx", timeout=30_000
    )
    snaps = list((folder / ".zitdesk" / "snapshots").glob("*.json"))
    assert len(snaps) == 1
    # a second bulk edit, find/replace with a regex, on the selection only
    ws.table.selectRow(0)
    ws.table.selectionModel().select(
        ws.model.index(1, 0),
        ws.table.selectionModel().SelectionFlag.Select
        | ws.table.selectionModel().SelectionFlag.Rows,
    )
    dlg = ws.open_bulk_edit(op=1)
    assert dlg.scope() == "selected"
    dlg.find.setText(r"photo (\d)")
    dlg.replace.setText(r"picture \1")
    dlg.regex.setChecked(True)
    dlg.refresh()
    assert [c[2] for c in dlg.changes] == ["ohwx, picture 0, tag0", "ohwx, picture 1, tag1"]
    dlg.find.setText("(")
    dlg.refresh()
    assert "regular expression" in dlg.error.text() and not dlg.apply_button.isEnabled()
    dlg.find.setText(r"photo (\d)")
    qtbot.waitUntil(dlg.apply_button.isEnabled, timeout=30_000)  # the preview refreshes itself
    dlg.apply_button.click()
    assert ws.session.undo_stack.count() == 2
    ws.undo_action.trigger()
    assert ws.session.dataset.by_name["img 0000.png"].caption == "ohwx, photo 0, tag0"
    ws.save_now()
    qtbot.waitUntil(lambda: _flushed(ws), timeout=30_000)
    ws.shutdown()
    # reopen: the stack comes back from the journal (1 done, 1 undone) and undo works again
    ws2 = make_workspace(folder)
    st = ws2.session.undo_stack
    assert (st.count(), st.index()) == (2, 1) and st.canRedo()
    ws2.redo_action.trigger()
    assert ws2.session.dataset.by_name["img 0001.png"].caption == "ohwx, picture 1, tag1"
    ws2.undo_action.trigger()
    ws2.undo_action.trigger()
    assert ws2.session.dataset.by_name["img 0000.png"].caption == "photo 0, tag0"
    assert ws2.session.dataset.by_name["img 0005.png"].caption is None
    ws2.save_now()
    qtbot.waitUntil(lambda: _flushed(ws2), timeout=30_000)
    assert _caption_file(folder, "img 0005.png") is None
    assert _caption_file(folder, "img 0000.png") == "photo 0, tag0"
    # the snapshots taken before the bulk edits can be restored, as one more undoable edit
    snaps = ws2.session.history.list_snapshots()
    assert len(snaps) == 2
    ws2.redo_action.trigger()  # trigger added again
    assert ws2.restore_snapshot(snaps[0]) == 12
    assert ws2.session.dataset.by_name["img 0000.png"].caption == "photo 0, tag0"
    ws2.undo_action.trigger()
    assert ws2.session.dataset.by_name["img 0000.png"].caption == "ohwx, photo 0, tag0"


def test_keyboard_flow(qtbot, make_workspace, folder):
    ws = make_workspace(folder)
    with qtbot.waitActive(ws):  # shortcuts only fire in the active window
        ws.show()
        ws.activateWindow()
    ws.select_row(0)
    ws.table.setFocus()
    qtbot.keyClick(ws.table, Qt.Key.Key_Down, Qt.KeyboardModifier.AltModifier)
    assert ws._current_row() == 1
    qtbot.keyClick(ws.table, Qt.Key.Key_F3)
    assert ws.model.item(ws._current_row()).name == "img 0005.png"
    editor = ws.table.findChild(QPlainTextEdit, "captionEditor")
    assert editor is not None and editor.hasFocus()
    qtbot.keyClicks(editor, "typed caption")
    qtbot.keyClick(editor, Qt.Key.Key_Down, Qt.KeyboardModifier.AltModifier)  # commits, moves on
    assert ws.session.dataset.by_name["img 0005.png"].caption == "typed caption"
    assert ws._current_row() == 6
    qtbot.keyClick(ws.focusWidget(), Qt.Key.Key_F3)
    assert ws.model.item(ws._current_row()).name == "img 0009.png"
    qtbot.keyClick(ws.focusWidget(), Qt.Key.Key_Escape)
    qtbot.keyClick(ws.table, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(
        lambda: _caption_file(folder, "img 0005.png") == "typed caption", timeout=30_000
    )
    qtbot.keyClick(ws.table, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    assert ws.session.dataset.by_name["img 0009.png"].flagged
    ws.set_filter("", FilterMode.FLAGGED)
    assert [it.name for it in ws.model.visible_items()] == ["img 0009.png"]
    qtbot.keyClick(ws.table, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not ws.session.dataset.by_name["img 0009.png"].flagged


def test_grid_caption_pane(qtbot, make_workspace, folder):
    ws = make_workspace(folder)
    ws.show()
    ws.select_row(3)
    ws.show_grid()
    assert ws.stack.currentWidget() is ws.grid
    assert ws.grid.name.text() == "img 0003.png"
    assert ws.grid.editor.toPlainText() == "photo 3, tag0"
    ws.grid.editor.setPlainText("grid edit")
    qtbot.waitUntil(lambda: ws.session.undo_stack.count() == 1, timeout=30_000)  # idle commit
    assert ws.session.dataset.by_name["img 0003.png"].caption == "grid edit"
    ws.undo_action.trigger()
    assert ws.grid.editor.toPlainText() == "photo 3, tag0"  # pane follows undo
    ws.grid.editor.setPlainText("typed then moved")
    ws.next_image()  # commits first
    assert ws.session.dataset.by_name["img 0003.png"].caption == "typed then moved"
    assert ws.grid.name.text() == "img 0004.png"
    ws.show_table()
    assert ws.model.item(ws._current_row()).name == "img 0004.png"


def test_outside_change_reload_and_conflict(qtbot, make_workspace, folder):
    import os

    ws = make_workspace(folder)
    cap = folder / "img 0001.txt"
    cap.write_text("edited in another editor")
    st = cap.stat()
    os.utime(cap, ns=(st.st_atime_ns, st.st_mtime_ns + 3_000_000_000))
    ws.session._poll()
    qtbot.waitUntil(
        lambda: ws.session.dataset.by_name["img 0001.png"].caption == "edited in another editor",
        timeout=30_000,
    )
    assert ws.model.index(1, Col.CAPTION).data() == "edited in another editor"
    # a conflict: our unsaved edit vs an outside write
    ws.session.edit("e", [("img 0002.png", "photo 2, tag2", "ours")])
    (folder / "img 0002.txt").write_text("theirs")
    ws.save_now()
    qtbot.waitUntil(
        lambda: not ws.banner.isHidden() and "another program" in ws.banner.label.text(),
        timeout=30_000,
    )
    assert (folder / "img 0002.txt").read_text() == "theirs"
    assert (folder / "img 0002.txt.zitdesk-conflict").read_text() == "ours"
    assert "changed outside" in ws.model.index(2, Col.FLAGS).data()
    dlg = ws.review_conflicts()
    dlg.mine.click()
    ws.save_now()
    qtbot.waitUntil(
        lambda: _flushed(ws) and (folder / "img 0002.txt").read_text() == "ours", timeout=30_000
    )
    assert not (folder / "img 0002.txt.zitdesk-conflict").exists()


def test_drop_files_imports_them(qtbot, make_workspace, folder, tmp_path):
    ws = make_workspace(folder)
    src = tmp_path / "drop"
    save(pattern(80, 60, 5), src / "dropped image.jpg", quality=90)
    (src / "dropped image.txt").write_text("from a drop")
    (src / "junk.png").write_text("not an image")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(src))])
    ev = QDropEvent(
        QPointF(QPoint(20, 20)),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    ws.dropEvent(ev)
    qtbot.waitUntil(lambda: ws.model.total == 13, timeout=30_000)
    assert ws.last_import is not None and len(ws.last_import.skipped) == 1
    assert "skipped 1" in ws.banner.label.text()
    assert ws.session.dataset.by_name["dropped image.jpg"].caption == "from a drop"
    assert (src / "dropped image.txt").read_text() == "from a drop"


def test_drop_without_a_dataset_creates_one(qtbot, make_workspace, tmp_path):
    ws = make_workspace()
    src = make_dataset(tmp_path / "My Cats", 2, size=(40, 40))
    ws.import_paths([src])
    qtbot.waitUntil(lambda: ws.session.dataset is not None and ws.model.total == 2, timeout=30_000)
    assert ws.session.dataset.folder == tmp_path / "new" / "My Cats"


def test_python_emits_keep_singleton_refcounts(qapp):
    """PySide6 6.12.0 dropped a reference to True per Python ``emit()`` and to None per void Qt
    call (a polling workaround lived in ``ui/datasets/_pyside_guard.py``). The pinned range
    (PySide6 < 6.12) does not: 20,000 emits and void calls leave both reference counts where
    they were, so the workspace uses ordinary signals."""
    import sys

    from PySide6.QtCore import QObject, QTimer, Signal

    class S(QObject):
        sig = Signal(int)

    s, t = S(), QTimer()
    got = []
    s.sig.connect(got.append)
    before_true, before_none = sys.getrefcount(True), sys.getrefcount(None)
    for _ in range(20_000):
        s.sig.emit(1)
        t.setInterval(5)  # a void call
    assert len(got) == 20_000
    assert sys.getrefcount(True) >= before_true - 100
    assert sys.getrefcount(None) >= before_none - 100


def test_save_state_line(qtbot, make_workspace, folder):
    ws = make_workspace(folder)
    assert ws.save_label.text() == "All changes saved"
    ws.session.edit("e", [("img 0000.png", "photo 0, tag0", "changed")])
    assert ws.save_label.text() == "Unsaved changes…"
    ws.save_now()
    qtbot.waitUntil(lambda: ws.save_label.text() == "All changes saved", timeout=30_000)
