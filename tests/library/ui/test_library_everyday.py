"""Issue 14, Library: underscores drawn, titles in two lines, cards fill the row, the details pane
labelled and unclipped at its minimum width, the whole trigger list, the active model's shapes."""

from __future__ import annotations

import json

from PySide6.QtCore import QRect
from PySide6.QtGui import QColor, QFontMetrics, QImage, QPainter, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QApplication, QListView, QStyleOptionViewItem

from tests.library.ui.conftest import settle
from tests.support.samples import make_lora, write_safetensors
from ui.library.delegates import (
    CARD_H,
    CARD_W,
    CardDelegate,
    RowDelegate,
    short_reason,
    title_lines,
)
from ui.library.model import EntryRole
from zitdesk.library.index import LoraEntry


def _render(delegate_cls, file_name: str, w: int, h: int) -> QImage:
    app = QApplication.instance()
    e = LoraEntry(
        path=f"/loras/{file_name}",
        root="/loras",
        size=1,
        mtime_ns=1,
        status="ok",
        compatible=True,
        arch="zimage",
        arch_label="Z-Image",
        title="Same Title",
    )
    model = QStandardItemModel()
    item = QStandardItem()
    item.setData(e, EntryRole)
    model.appendRow(item)
    view = QListView()
    delegate = delegate_cls(view)
    img = QImage(w, h, QImage.Format.Format_ARGB32)
    img.fill(QColor("black"))
    p = QPainter(img)
    opt = QStyleOptionViewItem()
    opt.rect = QRect(0, 0, w, h)
    opt.font = app.font()
    opt.palette = app.palette()
    delegate.paint(p, opt, model.index(0, 0))
    p.end()
    return img


def test_small_grey_lines_draw_underscores(qapp):
    # The small grey line (file name on a card, path in a row) of a name made of underscores
    # only: clipped at the font height, it would look exactly like a name of spaces.
    for cls, w, h in ((CardDelegate, CARD_W, CARD_H), (RowDelegate, 700, 60)):
        assert _render(cls, "______", w, h) != _render(cls, "      ", w, h), cls.__name__


def test_long_titles_take_two_lines_before_eliding(qapp):
    fm = QFontMetrics(qapp.font())
    width = CARD_W - 22
    text = "Studio Portrait Lighting for Evening Scenes v3"
    assert fm.horizontalAdvance(text) > width  # one line would cut it
    lines = title_lines(fm, text, width)
    assert len(lines) == 2 and " ".join(lines) == text
    assert all(fm.horizontalAdvance(x) <= width for x in lines)
    long = "a_very_long_lora_name_that_goes_on_and_on_and_on_forever_v12"
    lines = title_lines(fm, long, width)
    assert len(lines) == 2 and lines[1].endswith("…")
    assert title_lines(fm, "short", width) == ["short"]


def test_cards_fill_the_row(qtbot, tmp_path, make_workspace):
    for i in range(12):
        make_lora(tmp_path / "lib" / f"style_{i}.safetensors", "aitoolkit", 4, layers=1)
    ws = make_workspace([tmp_path / "lib"])
    ws.show()
    for width in (1000, 1366, 1900):
        ws.resize(width, 800)
        qtbot.waitUntil(lambda: ws.grid.viewport().width() > 0)
        qtbot.wait(10)
        grid = ws.grid
        cell = grid.gridSize().width()
        left = grid.viewport().width() - (grid.viewport().width() // cell) * cell
        assert left < CARD_W // 2, (width, cell, left)  # no strip of a missing column
        rect = grid.visualRect(ws.proxy.index(0, 0))
        assert rect.width() >= cell - 8


def test_details_pane_is_labelled_and_unclipped_at_minimum_width(qtbot, tmp_path, make_workspace):
    words = [f"word{i}" for i in range(9)]
    lib = tmp_path / "lib"
    make_lora(
        lib / "many_triggers.safetensors",
        "aitoolkit",
        4,
        layers=1,
        metadata={"ss_trigger_words": json.dumps(words)},
    )
    ws = make_workspace([lib])
    ws.show()
    assert ws.select(str(lib / "many_triggers.safetensors"))
    d = ws.details
    ws.splitter.setSizes([10_000, 1])  # squeeze the pane to its minimum
    qtbot.wait(20)
    assert d.width() == d.minimumWidth()
    assert "Favourite" in d.star.text() and d.rating_label.text() == "Your rating"
    for b in (d.preview_button, d.sidecar_button, d.folder_button, d.star):
        assert b.isVisible() and b.width() >= b.sizeHint().width(), b.text()
    page = d.scroll.widget()

    def rect(w):
        return QRect(w.mapTo(page, w.rect().topLeft()), w.size())

    assert not rect(d.preview_button).intersects(rect(d.rating))
    assert not rect(d.preview_button).intersects(rect(d.star))
    assert rect(d.folder_button).right() <= d.scroll.viewport().width()
    # Every trigger word is visible at once: the list grows instead of scrolling.
    assert d.triggers.count() == len(words)
    assert d.triggers.verticalScrollBar().maximum() == 0
    # Title and trigger word read from the file keep their underscores in the details too.
    assert d.title.text() == "many_triggers"


def test_card_compatibility_uses_the_active_models_shapes(
    qtbot, tmp_path, make_workspace, tiny_diffusers
):
    from zitdesk.lora.fit import model_linear_shapes

    lib = tmp_path / "lib"
    make_lora(lib / "full_size.safetensors", "aitoolkit", 4, layers=1)
    t = {}
    for m, (o, i) in model_linear_shapes(tiny_diffusers).items():
        t[f"diffusion_model.{m}.lora_A.weight"] = ((2, i),)
        t[f"diffusion_model.{m}.lora_B.weight"] = ((o, 2),)
    write_safetensors(lib / "tiny_fit.safetensors", t, {})
    ws = make_workspace([lib])
    full, tiny = str(lib / "full_size.safetensors"), str(lib / "tiny_fit.safetensors")
    assert ws.model.entry(full).compatible  # against the real Z-Image Turbo names
    ws.set_model(str(tiny_diffusers))
    qtbot.waitUntil(
        lambda: ws.model.entry(full) is not None and not ws.model.entry(full).compatible,
        timeout=30_000,
    )
    settle(qtbot, ws, 30_000)
    assert "does not fit this model" in ws.model.entry(full).reason
    assert (
        short_reason(ws.model.entry(full)) == "Other layer sizes than this model"
    )  # the card's line
    assert ws.model.entry(tiny).compatible, ws.model.entry(tiny).reason
    assert ws.select(full) and not ws.details.apply_button.isEnabled()
    ws.set_model(None)  # back to the real sizes
    qtbot.waitUntil(lambda: ws.model.entry(full).compatible, timeout=30_000)
    settle(qtbot, ws, 30_000)
    assert not ws.model.entry(tiny).compatible
