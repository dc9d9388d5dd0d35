"""Library UI: model tester, search and filters, apply to Generate, favourites, plain-text details,
previews, watcher-driven updates, clean shutdown."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from tests.library.ui.conftest import settle
from tests.support.samples import make_lora, png_bytes
from ui.library.model import EntryRole, FavouriteRole, LibraryFilterProxy, LibraryModel
from zitdesk.library import ApplyLoraRequest
from zitdesk.library.store import LibraryStore


def names(ws) -> list[str]:
    p = ws.proxy
    return [Path(p.index(r, 0).data(EntryRole).path).name for r in range(p.rowCount())]


def test_models_pass_qtmodeltester(qtmodeltester, sample_lib, make_workspace):
    lib, _ = sample_lib
    ws = make_workspace([lib])
    assert ws.model.rowCount() == 12
    qtmodeltester.check(ws.model)
    ws.proxy.set_search("z-image")
    qtmodeltester.check(ws.proxy)


def test_model_updates_incrementally(qtbot, qtmodeltester):
    from zitdesk.library.index import LoraEntry

    model = LibraryModel(LibraryStore())
    proxy = LibraryFilterProxy()
    proxy.setSourceModel(model)
    a, b, c = (LoraEntry(path=f"/x/{n}.safetensors", compatible=True) for n in "abc")
    model.set_entries([a, b, c])
    qtmodeltester.check(model)
    with qtbot.waitSignal(model.rowsRemoved):
        model.set_entries([a, c])
    assert [e.path for e in model.entries] == [a.path, c.path]
    with qtbot.waitSignal(model.dataChanged):
        model.upsert([LoraEntry(path=a.path, compatible=False)])
    assert not model.entry(a.path).compatible and proxy.rowCount() == 2


def test_search_and_filters(qtbot, sample_lib, make_workspace, tmp_path):
    lib, files = sample_lib
    # an identical copy, found as a duplicate once hashes are in
    shutil.copy(files["sdxl_pixel_art.safetensors"], lib / "copy_of_pixel.safetensors")
    ws = make_workspace([lib])
    assert ws.proxy.rowCount() == 13
    # greyed, never hidden: the default shows every file, usable ones first
    first = [ws.proxy.index(r, 0).data(EntryRole) for r in range(ws.proxy.rowCount())]
    assert [e.compatible for e in first] == sorted((e.compatible for e in first), reverse=True)
    ws.search.setText("mochi")
    assert names(ws) == ["cat_character_kohya.safetensors"]
    ws.search.setText("anm lines")  # trigger words from a .civitai.info
    assert names(ws) == ["anime_lines_dot.safetensors"]
    ws.search.setText("")
    ws.arch_combo.setCurrentIndex(ws.arch_combo.findData("usable"))
    assert len(names(ws)) == 6 and all(ws.model.entry(files[n]).compatible for n in names(ws))
    ws.arch_combo.setCurrentIndex(ws.arch_combo.findData("foreign"))
    assert sorted(names(ws)) == [
        "copy_of_pixel.safetensors",
        "flux_realism.safetensors",
        "qwen_image_style.safetensors",
        "sd15_old_style.safetensors",
        "sdxl_pixel_art.safetensors",
    ]
    ws.arch_combo.setCurrentIndex(ws.arch_combo.findData("broken"))
    assert sorted(names(ws)) == ["broken_download.safetensors", "legacy_model.ckpt"]
    ws.arch_combo.setCurrentIndex(ws.arch_combo.findData("sdxl"))  # specific archs are offered
    assert len(names(ws)) == 2
    ws.clear_filters()
    ws.trigger_check.setChecked(True)
    assert "broken_download.safetensors" not in names(ws) and "mochi" not in names(ws)
    assert all(ws.model.entry(files.get(n, str(lib / n))).trigger_words for n in names(ws))
    ws.clear_filters()
    forge = str(lib / "forge")
    ws.folder_combo.addItem("forge", forge)
    ws.folder_combo.setCurrentIndex(ws.folder_combo.count() - 1)
    assert all(
        ws.model.entry(ws.proxy.index(r, 0).data(EntryRole).path).path.startswith(forge)
        for r in range(ws.proxy.rowCount())
    )
    ws.clear_filters()
    ws.dup_check.setChecked(True)
    assert sorted(names(ws)) == ["copy_of_pixel.safetensors", "sdxl_pixel_art.safetensors"]
    ws.clear_filters()
    ws.fav_check.setChecked(True)
    assert names(ws) == [] and ws.stack.currentIndex() == 2 and ws.clear_button.isVisibleTo(ws)
    ws.model.setData(
        ws.model.index(ws.model.row_of(files["neon_city_fused.safetensors"])), True, FavouriteRole
    )
    assert names(ws) == ["neon_city_fused.safetensors"]
    ws.clear_filters()
    ws.sort_combo.setCurrentIndex(ws.sort_combo.findData("rank"))
    assert names(ws)[0] == "neon_city_fused.safetensors"  # rank 64


def test_apply_to_generate(qtbot, sample_lib, make_workspace):
    lib, files = sample_lib
    ws = make_workspace([lib])
    cat = files["cat_character_kohya.safetensors"]
    assert ws.select(cat)
    d = ws.details
    assert d.weight.value() == 0.9  # "preferred weight" from the A1111 .json
    assert d.checked_triggers() == ("mochi cat",)  # declared words are checked, tag guesses not
    assert d.insert_triggers.isChecked()
    with qtbot.waitSignal(ws.apply_requested) as blocker:
        qtbot.mouseClick(d.apply_button, Qt.MouseButton.LeftButton)
    assert blocker.args == [ApplyLoraRequest(cat, 0.9, ("mochi cat",), True)]
    d.weight.setValue(0.55)
    d.insert_triggers.setChecked(False)
    with qtbot.waitSignal(ws.apply_requested) as blocker:
        d.request_apply()
    assert blocker.args[0] == ApplyLoraRequest(cat, 0.55, ("mochi cat",), False)
    # double-click on the selected usable card applies too
    view = ws.current_view()
    idx = view.currentIndex()
    with qtbot.waitSignal(ws.apply_requested):
        view.doubleClicked.emit(idx)
    # incompatible: the button is disabled and nothing is emitted
    sdxl = files["sdxl_pixel_art.safetensors"]
    assert ws.select(sdxl)
    assert not d.apply_button.isEnabled() and "SDXL" in d.apply_button.toolTip()
    with qtbot.assertNotEmitted(ws.apply_requested):
        assert not ws.apply(sdxl)
        d.request_apply()
    assert ws.apply(files["zit_watercolor_v2.safetensors"], weight=1.2)


def test_star_click_in_grid_and_list(qtbot, sample_lib, make_workspace):
    lib, files = sample_lib
    store = LibraryStore()
    ws = make_workspace([lib], store=store)
    ws.show()
    qtbot.waitExposed(ws)
    neon = files["neon_city_fused.safetensors"]
    for mode in ("grid", "list"):
        ws.set_view_mode(mode)
        qtbot.wait(50)
        view = ws.current_view()
        idx = ws.proxy.mapFromSource(ws.model.index(ws.model.row_of(neon)))
        view.scrollTo(idx)
        rect = view.visualRect(idx)
        star = view.itemDelegate().star_rect(rect).center()
        before = store.get(neon).favourite
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=star)
        assert store.get(neon).favourite is (not before)
        assert LibraryStore(store.path).get(neon).favourite is (not before)  # saved


def test_details_are_plain_text(qtbot, tmp_path, make_workspace):
    hostile = "<img src='file:///etc/passwd'><b>bold</b><a href='x'>link</a>"
    make_lora(
        tmp_path / "lib" / "evil.safetensors",
        "aitoolkit",
        4,
        layers=1,
        metadata={
            "modelspec.title": hostile,
            "modelspec.description": "<script>alert(1)</script>",
            "modelspec.trigger_phrase": "<i>trig</i>",
            "other": "<h1>x</h1>",
        },
    )
    ws = make_workspace([tmp_path / "lib"])
    path = str(tmp_path / "lib" / "evil.safetensors")
    assert ws.select(path)
    d = ws.details
    assert d.title.textFormat() == Qt.TextFormat.PlainText and d.title.text() == hostile
    for label in d.findChildren(QLabel):
        assert label.textFormat() == Qt.TextFormat.PlainText, label.objectName()
    qtbot.waitUntil(lambda: "<h1>x</h1>" in d.info.toPlainText())
    assert hostile in d.info.toPlainText()
    assert d.triggers.item(0).data(Qt.ItemDataRole.UserRole) == "<i>trig</i>"
    tip = ws.model.data(ws.model.index(ws.model.row_of(path)), Qt.ItemDataRole.ToolTipRole)
    assert "<img" not in tip and "&lt;img" in tip


def test_notes_rating_and_preview(qtbot, sample_lib, make_workspace, tmp_path):
    lib, files = sample_lib
    store = LibraryStore()
    ws = make_workspace([lib], store=store)
    qwen = files["qwen_image_style.safetensors"]
    assert ws.select(qwen)
    ws.details.notes.setPlainText("try with the Qwen app")
    ws.details.rating.buttons[2].click()
    ws.select(files["cat_character_kohya.safetensors"])  # switching flushes the notes
    rec = LibraryStore(store.path).get(qwen)
    assert (rec.notes, rec.rating) == ("try with the Qwen app", 3)
    ws.search.setText("qwen app")  # notes are searchable
    assert names(ws) == ["qwen_image_style.safetensors"]
    gallery = tmp_path / "gallery.png"
    gallery.write_bytes(png_bytes(32, 32, (10, 200, 10)))
    assert ws.set_preview_from_image(qwen, str(gallery))
    assert ws.model.preview_path(ws.model.entry(qwen)) == store.get(qwen).preview
    assert not ws.set_preview_from_image(qwen, str(tmp_path / "missing.png"))


def test_hashes_and_details_text(qtbot, sample_lib, make_workspace):
    lib, files = sample_lib
    ws = make_workspace([lib])
    cat = ws.model.entry(files["cat_character_kohya.safetensors"])
    assert len(cat.sha256) == 64 and len(cat.autov3) == 12
    ws.select(cat.path)
    text = ws.details.info.toPlainText()
    assert f"sha256: {cat.sha256}" in text and "mochi cat — A1111/Forge .json" in text
    assert "Preferred weight (sidecar): 0.9" in text


def test_watcher_picks_up_new_and_deleted_files(qtbot, tmp_path, make_workspace):
    lib = tmp_path / "lib"
    make_lora(lib / "a.safetensors", "kohya", 4, layers=1)
    ws = make_workspace([lib], watch=True, backend="polling")
    ws.controller.watcher._poll_interval = 0.1
    ws.controller.watcher._debounce = 0.05
    ws.controller._rescan_timer.setInterval(20)
    ws.controller.watcher._wake.set()
    assert ws.model.rowCount() == 1
    qtbot.waitUntil(lambda: ws.controller.watcher.running, timeout=30_000)
    make_lora(lib / "sub" / "b.safetensors", "aitoolkit", 4, layers=1)
    qtbot.waitUntil(lambda: ws.model.rowCount() == 2, timeout=30_000)
    (lib / "a.safetensors").unlink()
    qtbot.waitUntil(lambda: ws.model.rowCount() == 1, timeout=30_000)
    (lib / "sub" / "b.json").write_text(json.dumps({"activation text": "bee"}))

    def has_bee() -> bool:
        e = ws.model.entry(str(lib / "sub" / "b.safetensors"))
        return e is not None and bool(e.trigger_words) and e.trigger_words[0].word == "bee"

    qtbot.waitUntil(has_bee, timeout=30_000)
    settle(qtbot, ws)
    ws.shutdown()
    assert not ws.controller.watcher.running


def test_empty_library_message(qtbot, tmp_path, make_workspace):
    (tmp_path / "empty").mkdir()
    ws = make_workspace([tmp_path / "empty"])
    assert ws.stack.currentIndex() == 2
    assert "No LoRA files in" in ws.empty.text() and ws.add_button.isVisibleTo(ws)
    make_lora(tmp_path / "empty" / "a.safetensors", "kohya", 4, layers=1)
    ws.rescan()
    settle(qtbot, ws)
    assert ws.stack.currentIndex() == 0 and "1 files" in ws.status.text()


def test_view_switch_keeps_selection(qtbot, sample_lib, make_workspace):
    lib, files = sample_lib
    ws = make_workspace([lib])
    ws.select(files["neon_city_fused.safetensors"])
    ws.set_view_mode("list")
    assert ws.stack.currentIndex() == 1
    assert ws.listv.currentIndex().data(EntryRole).path == files["neon_city_fused.safetensors"]
    assert ws.details.entry.path == files["neon_city_fused.safetensors"]
    ws.grab()  # paints both delegates without errors
    ws.set_view_mode("grid")
    ws.grab()


def test_save_to_a1111_json(qtbot, tmp_path, make_workspace):
    lib = tmp_path / "lib"
    lora = make_lora(
        lib / "a.safetensors", "kohya", 4, layers=1, metadata={"modelspec.trigger_phrase": "sks"}
    )
    before = lora.read_bytes()
    ws = make_workspace([lib])
    assert ws.select(str(lora))
    ws.details.weight.setValue(0.75)
    ws.details.notes.setPlainText("mine")
    assert ws.write_sidecar()
    doc = json.loads((lib / "a.json").read_text())
    assert doc == {"activation text": "sks", "preferred weight": 0.75, "notes": "mine"}
    assert lora.read_bytes() == before
    settle(qtbot, ws)
    e = ws.model.entry(str(lora))
    assert e.preferred_weight == 0.75 and e.sidecars[0].kind == "a1111"
    assert e.trigger_words[0].sources == ("A1111/Forge .json", "modelspec.trigger_phrase")


def test_duplicate_flag_reaches_both_rows(qtbot):
    from ui.library.model import DuplicateRole
    from zitdesk.library.index import LoraEntry

    model = LibraryModel(LibraryStore())
    a, b = LoraEntry(path="/a.safetensors"), LoraEntry(path="/b.safetensors")
    model.set_entries([a, b])
    model.upsert([LoraEntry(path=a.path, sha256="1" * 64)])
    with qtbot.waitSignals([model.dataChanged, model.dataChanged]):
        model.upsert([LoraEntry(path=b.path, sha256="1" * 64)])
    assert model.index(0).data(DuplicateRole) and model.index(1).data(DuplicateRole)
    assert model.duplicates_of(a.path) == [b.path]
