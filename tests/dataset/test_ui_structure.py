"""The Datasets workspace's structure: parts joined by signals (no callback attributes, no
listener lists), one thumbnail cache kind for every workspace, and a journal that cannot be
written never holds captions back."""

from __future__ import annotations

import shutil

import pytest
from messy import make_dataset

from ui.datasets.table_model import Col


@pytest.fixture
def folder(tmp_path):
    return make_dataset(tmp_path / "ds", 4, size=(64, 48))


def test_edits_and_thumbnails_travel_by_signal(qtbot, make_workspace, folder):
    from PySide6.QtCore import Qt

    from ui.thumbnails import PixmapCache, ThumbnailCache

    ws = make_workspace(folder)
    assert not hasattr(ws.model, "editor")
    assert not any("listeners" in k for k in vars(ws.thumbs))
    # a table edit becomes one undoable session edit
    before = ws.session.undo_stack.count()
    assert ws.model.setData(ws.index_of("img 0001.png"), "edited in the table")
    assert ws.session.undo_stack.count() == before + 1
    assert ws.session.dataset.by_name["img 0001.png"].caption == "edited in the table"
    ws.session.undo_stack.undo()
    assert ws.session.dataset.by_name["img 0001.png"].caption != "edited in the table"
    # thumbnails: the batched signal reaches the model; the same cache kind as the library's
    with qtbot.waitSignal(ws.thumbs.ready, timeout=30_000):
        ws.model.index(0, Col.THUMB).data(Qt.ItemDataRole.DecorationRole)
    assert ws.model.index(0, Col.THUMB).data(Qt.ItemDataRole.DecorationRole) is not None
    assert isinstance(ws.thumbs.cache, PixmapCache)
    assert isinstance(ThumbnailCache().cache, PixmapCache)


def test_captions_are_written_when_the_journal_cannot_be(qtbot, make_workspace, folder):
    ws = make_workspace(folder)
    hist = ws.session.history
    ws.session.edit("edit", [("img 0002.png", ws.session.record("img 0002.png").caption, "new")])
    # the journal cannot be written: a folder stands where the file should be
    if hist.path.exists():
        hist.path.unlink()
    hist.path.mkdir(parents=True)
    ws.save_now()
    qtbot.waitUntil(
        lambda: not ws.session._flushing and "edit history" in ws.banner.label.text(),
        timeout=30_000,
    )
    assert (folder / "img 0002.txt").read_text(encoding="utf-8") == "new"
    text = ws.banner.label.text()
    assert "edit history" in text and text.count("could not be saved") == 1
    assert hist.pending  # the journal lines are kept for the next try
    shutil.rmtree(hist.path)
    ws.save_now()
    qtbot.waitUntil(lambda: not ws.session.dirty and not ws.session._flushing, timeout=30_000)
    assert "new" in hist.path.read_text(encoding="utf-8")
