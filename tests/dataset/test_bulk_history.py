"""Bulk operations (preview lists) and the journal that carries undo across restarts."""

from __future__ import annotations

import pytest

from zitdesk.dataset import bulk
from zitdesk.dataset.history import MAX_ENTRIES, Entry, History, restore_changes


def test_add_trigger_prefix_never_duplicated():
    op = bulk.AddTrigger("ohwx")
    assert op.apply("a cat") == "ohwx, a cat"
    assert op.apply("OHWX, a cat") == "OHWX, a cat"
    assert op.apply("a photo of ohwx.") == "a photo of ohwx."
    assert op.apply("[trigger] on a sofa") == "[trigger] on a sofa"
    assert op.apply("ohwxyz style") == "ohwx, ohwxyz style"  # a longer word is not the trigger
    assert op.apply(None) == "ohwx" and op.apply("  ") == "ohwx"
    assert op.apply(op.apply("a cat")) == "ohwx, a cat"


def test_find_replace_plain_and_regex():
    assert bulk.FindReplace("a.b", "X").apply("a.b axb") == "X axb"
    assert bulk.FindReplace(r"a.b", "X", regex=True).apply("a.b axb") == "X X"
    assert bulk.FindReplace(r"(\w+) cat", r"\1 dog", regex=True).apply("black cat") == "black dog"
    assert bulk.FindReplace("CAT", "dog", case_sensitive=False).apply("Cat cat") == "dog dog"
    assert bulk.FindReplace("x", "\\1").apply("x") == "\\1"  # plain mode: no escapes
    assert bulk.FindReplace("x", "y").apply(None) is None
    with pytest.raises(ValueError, match="regular expression"):
        bulk.FindReplace("(", "y", regex=True).apply("(")


def test_tags():
    assert bulk.AddTags(("red", "Blue")).apply("blue, sky") == "blue, sky, red"
    assert bulk.AddTags(("new",), at_start=True).apply("a, b") == "new, a, b"
    assert bulk.AddTags(("x",)).apply(None) == "x"
    assert bulk.RemoveTags(("B", "zz")).apply("a, b,c") == "a, c"
    assert bulk.RemoveTags(("q",)).apply("a,b") == "a,b"  # untouched when absent
    assert bulk.Cleanup().apply("  a,  b ,a,, c   d ") == "a, b, c d"
    assert bulk.Cleanup().apply("one sentence   only ") == "one sentence only"
    assert bulk.Cleanup(dedupe_tags=False).apply("a, a") == "a, a"


def test_preview_lists_only_changes_and_diff():
    items = [("1", "a cat"), ("2", "ohwx, dog"), ("3", None)]
    out = bulk.preview(bulk.AddTrigger("ohwx"), items)
    assert out == [("1", "a cat", "ohwx, a cat"), ("3", None, "ohwx")]
    d = bulk.word_diff("a red cat", "a blue cat")
    assert ("-", "red") in d and ("+", "blue") in d
    assert "".join(t for k, t in d if k != "+") == "a red cat"
    assert "".join(t for k, t in d if k != "-") == "a blue cat"


def test_journal_replays_undo_and_redo(tmp_path):
    h = History(tmp_path / ".zitdesk")
    a = Entry.new("A", [("x.png", "1", "2")])
    b = Entry.new("B", [("x.png", "2", "3")])
    c = Entry.new("C", [("y.png", None, "new")], snapshot="snapshots/s.json")
    for e in (a, b, c):
        h.record_do(e)
    h.record_undo(c.id)
    h.record_undo(b.id)
    h.record_redo(b.id)
    h.flush()
    r = History(tmp_path / ".zitdesk").load()
    assert [e.id for e in r.done] == [a.id, b.id]
    assert [e.id for e in r.undone] == [c.id]
    assert r.undone[0].changes == [("y.png", None, "new")]
    assert r.undone[0].snapshot == "snapshots/s.json"
    # a new command clears the redo stack
    d = Entry.new("D", [("x.png", "3", "4")])
    h.record_do(d)
    h.flush()
    r = History(tmp_path / ".zitdesk").load()
    assert [e.label for e in r.done] == ["A", "B", "D"] and not r.undone


def test_torn_last_line_is_dropped_and_repaired(tmp_path):
    h = History(tmp_path)
    h.record_do(Entry.new("A", [("x.png", "1", "2")]))
    h.flush()
    with open(h.path, "ab") as fh:
        fh.write(b'{"op": "do", "id": "zz", "label": "cut sho')
    r = History(tmp_path).load()
    assert [e.label for e in r.done] == ["A"] and r.bad_lines == 1
    assert h.path.read_bytes().endswith(b"\n")
    h2 = History(tmp_path)
    h2.record_do(Entry.new("B", []))
    h2.flush()
    assert [e.label for e in History(tmp_path).load().done] == ["A", "B"]


def test_compaction_keeps_the_newest(tmp_path):
    h = History(tmp_path)
    for i in range(MAX_ENTRIES + 20):
        h.record_do(Entry.new(str(i), []))
    h.flush()
    r = History(tmp_path).load()
    assert len(r.done) == MAX_ENTRIES and r.done[-1].label == str(MAX_ENTRIES + 19)
    assert len(h.path.read_text().splitlines()) == MAX_ENTRIES


def test_snapshots_and_restore(tmp_path):
    h = History(tmp_path)
    name = h.snapshot({"a.png": "one", "b.png": None}, "before bulk")
    h.flush()
    snap = h.read_snapshot(name)
    assert snap == {"a.png": "one", "b.png": None}
    current = {"a.png": "two", "b.png": "made", "c.png": "other"}
    assert sorted(restore_changes(current, snap)) == [
        ("a.png", "two", "one"),
        ("b.png", "made", None),
    ]
    for _ in range(25):
        h.snapshot({}, "x")
    h.flush()
    assert len(h.list_snapshots()) == 20
