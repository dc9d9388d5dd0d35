"""Every item model passes qtmodeltester, empty and filled, and after edits."""

from __future__ import annotations

from PySide6.QtCore import Qt

from ui.models.character_model import CharacterModel
from ui.models.gallery_model import GalleryItem, GalleryModel
from ui.models.history_model import HistoryFilter, HistoryModel, ItemRole
from ui.models.history_store import HistoryStore
from ui.models.lora_stack_model import COL_NAME, COL_WEIGHT, LoraStackModel, badge_from_inspect
from ui.structured_prompt import Character
from ui.thumbnails import ThumbnailCache


def test_character_model(qtmodeltester):
    m = CharacterModel([Character("a girl", ["red coat"], "on the left")])
    qtmodeltester.check(m)
    m.add(Character("a dog"))
    assert m.setData(m.index(1, 1), "brown -- small, happy")
    assert m.characters[1].attributes == ["brown", "small", "happy"]
    assert m.move(1, -1) and m.characters[0].who == "a dog"
    assert not m.move(0, -1)
    assert m.removeRows(0, 1) and m.rowCount() == 1
    qtmodeltester.check(m)
    assert m.flags(m.index(0, 2)) & Qt.ItemFlag.ItemIsEditable


def test_lora_stack_model(qtmodeltester):
    m = LoraStackModel()
    qtmodeltester.check(m)
    m.add("/l/a.safetensors", 0.8)
    m.add("/l/b.safetensors")
    assert m.add("/l/a.safetensors") == 0 and m.rowCount() == 2  # no duplicates
    assert m.setData(m.index(0, COL_WEIGHT), 9.0) and m.entries[0].weight == 3.0  # clamped
    assert m.setData(
        m.index(1, COL_NAME), Qt.CheckState.Unchecked.value, Qt.ItemDataRole.CheckStateRole
    )
    assert [s.enabled for s in m.specs()] == [True, False]
    assert m.move(0, 1) and m.entries[0].name == "b"
    m.set_badge("/l/a.safetensors", "240/240 modules", True, "fine", ["sks"])
    assert m.data(m.index(1, 2)) == "240/240 modules"
    assert "sks" in m.data(m.index(1, 0), Qt.ItemDataRole.ToolTipRole)
    qtmodeltester.check(m)
    assert m.remove(0) and not m.remove(5)


def test_badge_from_inspect():
    badge, ok, msg, words = badge_from_inspect(
        {
            "coverage": {"matched": 240, "total_in_file": 240},
            "compatible": True,
            "message": "Z-Image LoRA",
            "trigger_words": [{"word": "sks", "source": "ss"}],
        }
    )
    assert (badge, ok, words) == ("240/240 modules", True, ["sks"])


def test_gallery_model(qtmodeltester, qtbot, tmp_path):
    thumbs = ThumbnailCache()
    m = GalleryModel(thumbs)
    qtmodeltester.check(m)
    from PIL import Image

    p = tmp_path / "a.png"
    Image.new("RGB", (300, 200), (255, 0, 0)).save(p)
    m.add(GalleryItem(str(p), 7, "a red thing", 300, 200))
    m.add(GalleryItem(str(tmp_path / "missing.png"), 8, "gone"))
    assert m.data(m.index(1), Qt.ItemDataRole.DecorationRole) is None  # decoding on the pool
    with qtbot.waitSignal(m.dataChanged, timeout=30_000):
        pass
    icon = m.data(m.index(1), Qt.ItemDataRole.DecorationRole)
    assert icon is not None and not icon.isNull()
    assert thumbs.pixmap(str(p)).width() == 160  # scaled on the pool, aspect kept
    qtmodeltester.check(m)
    assert m.remove_path(str(p)) and m.rowCount() == 1


def test_history_model_and_filter(qtmodeltester, tmp_path):
    store = HistoryStore(tmp_path / "h.json", limit=3)
    m = HistoryModel(store, ThumbnailCache())
    qtmodeltester.check(m)
    for prompt in ("a red fox", "a blue bird", "a red car"):
        m.record(prompt, {"prompt": prompt})
    m.record("a blue bird", {"prompt": "a blue bird", "seed": 2})  # moves to the top
    assert [e.prompt for e in store.entries] == ["a blue bird", "a red car", "a red fox"]
    assert store.entries[0].uses == 2
    m.record("a green tree", {})  # over the limit: oldest dropped
    assert m.rowCount() == 3 and store.entries[-1].prompt == "a red car"
    qtmodeltester.check(m)
    f = HistoryFilter()
    f.setSourceModel(m)
    f.set_text("RED")
    assert f.rowCount() == 1 and f.index(0, 0).data(ItemRole).prompt == "a red car"
    f.set_text("")
    assert f.rowCount() == 3
    qtmodeltester.check(f)
    store.save()
    again = HistoryStore(tmp_path / "h.json")
    again.load()
    assert [e.prompt for e in again.entries] == [e.prompt for e in store.entries]
    (tmp_path / "h.json").write_text("{broken")
    again.load()
    assert again.entries == [] and (tmp_path / "h.json.bak").exists()
