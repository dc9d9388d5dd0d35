"""Dataset store: caption style kept, atomic writes, outside changes never clobbered, index."""

from __future__ import annotations

import os

from messy import make_dataset, pattern

from zitdesk.dataset.captions import decode_caption, encode_caption
from zitdesk.dataset.store import Dataset
from zitdesk.train.dataset import scan_folder


def _bump(path, text: str | bytes) -> None:
    """Write as another program would, with an mtime that surely differs."""
    if isinstance(text, str):
        text = text.encode()
    path.write_bytes(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))


def test_listing_matches_the_trainer(tmp_path):
    d = make_dataset(tmp_path / "ds", 4)
    pattern(40, 30, 1).save(d / "UPPER.JPG")
    (d / "notes.md").write_text("x")
    (d / "broken.png").write_bytes(b"nope")
    (d / ".hidden.png").write_bytes(b"nope")
    (d / "sub").mkdir()
    pattern(40, 30, 2).save(d / "sub" / "deep.png")
    ds = Dataset.open(d)
    scan = scan_folder(d)
    assert [it.name for it in ds.items] == [it.image.name for it in scan.items]
    assert [it.train_caption for it in ds.items] == [it.caption for it in scan.items]
    assert len(ds.problems) == len(scan.problems) == 1


def test_caption_style_round_trip():
    for raw in (b"plain", b"\xef\xbb\xbfbom", b"a\r\nb\r\n", b"\xef\xbb\xbfx\r\ny", "ü猫".encode()):
        text, style = decode_caption(raw)
        assert "\r" not in text
        assert encode_caption(text, style) == raw
    text, style = decode_caption("café".encode("cp1252"))
    assert text == "café" and not style.utf8


def test_edit_keeps_bom_and_crlf_and_mode(tmp_path):
    d = make_dataset(tmp_path / "ds", 1)
    cap = d / "img 0000.txt"
    cap.write_bytes(b"\xef\xbb\xbfline one\r\nline two")
    os.chmod(cap, 0o640)
    ds = Dataset.open(d)
    it = ds.items[0]
    assert it.caption == "line one\nline two"
    rep = ds.save_caption_now(it, "line one\nline 2")
    assert rep.saved == ["img 0000.txt"] and not rep.conflicts
    assert cap.read_bytes() == b"\xef\xbb\xbfline one\r\nline 2"
    assert cap.stat().st_mode & 0o777 == 0o640
    assert not [p for p in d.iterdir() if p.name.endswith(".tmp")]


def test_unchanged_caption_is_not_rewritten(tmp_path):
    d = make_dataset(tmp_path / "ds", 1)
    ds = Dataset.open(d)
    mtime = (d / "img 0000.txt").stat().st_mtime_ns
    assert ds.set_caption(ds.items[0], ds.items[0].caption) is False
    assert ds.flush().saved == []
    assert (d / "img 0000.txt").stat().st_mtime_ns == mtime


def test_outside_change_is_never_clobbered(tmp_path):
    d = make_dataset(tmp_path / "ds", 2)
    ds = Dataset.open(d)
    it = ds.items[0]
    ds.set_caption(it, "ours")
    _bump(d / "img 0000.txt", "theirs")
    rep = ds.flush()
    assert not rep.saved and len(rep.conflicts) == 1
    c = rep.conflicts[0]
    assert (c.ours, c.theirs) == ("ours", "theirs")
    assert (d / "img 0000.txt").read_text() == "theirs"
    assert (d / "img 0000.txt.zitdesk-conflict").read_text() == "ours"
    assert it.caption == "theirs" and it.conflict == "img 0000.txt.zitdesk-conflict"
    assert ds.conflict_text(it) == "ours"
    # the conflict file is not a caption to any trainer, and survives a reopen
    assert Dataset.open(d).items[0].conflict
    ds.resolve_conflict(it)
    assert not (d / "img 0000.txt.zitdesk-conflict").exists()
    # the next edit writes normally (the new signature is known)
    assert ds.save_caption_now(it, "mine now").saved == ["img 0000.txt"]


def test_outside_touch_without_change_is_not_a_conflict(tmp_path):
    d = make_dataset(tmp_path / "ds", 1)
    ds = Dataset.open(d)
    _bump(d / "img 0000.txt", (d / "img 0000.txt").read_bytes())
    assert ds.save_caption_now(ds.items[0], "new").saved == ["img 0000.txt"]


def test_file_created_outside_while_missing(tmp_path):
    d = make_dataset(tmp_path / "ds", 1, captions=False)
    ds = Dataset.open(d)
    it = ds.items[0]
    assert it.caption is None and it.missing_caption
    ds.set_caption(it, "ours")
    (d / "img 0000.txt").write_text("theirs")
    rep = ds.flush()
    assert rep.conflicts and (d / "img 0000.txt").read_text() == "theirs"


def test_poll_reloads_outside_edits(tmp_path):
    d = make_dataset(tmp_path / "ds", 3)
    ds = Dataset.open(d)
    _bump(d / "img 0001.txt", "edited elsewhere")
    (d / "img 0002.txt").unlink()
    ds.set_caption(ds.items[0], "pending")  # pending rows are left to flush()
    _bump(d / "img 0000.txt", "outside too")
    rep = ds.poll_external()
    assert sorted(rep.reloaded) == ["img 0001.png", "img 0002.png"]
    assert ds.items[1].caption == "edited elsewhere" and ds.items[2].caption is None
    assert ds.items[0].caption == "pending"
    assert not rep.images_changed
    pattern(20, 20, 3).save(d / "new.png")
    assert ds.poll_external().images_changed


def test_delete_caption(tmp_path):
    d = make_dataset(tmp_path / "ds", 1)
    ds = Dataset.open(d)
    ds.save_caption_now(ds.items[0], None)
    assert not (d / "img 0000.txt").exists()


def test_apply_changes_checks_expected(tmp_path):
    d = make_dataset(tmp_path / "ds", 3)
    ds = Dataset.open(d)
    a, b, c = ds.items
    ds.set_caption(c, "changed meanwhile")
    applied, skipped = ds.apply_changes(
        [
            (a.name, a.caption, "A"),
            (b.name, "wrong", "B"),
            (c.name, "photo 2, tag2", "C"),
            ("gone.png", "", "x"),
        ]
    )
    assert applied == [a.name] and len(skipped) == 3
    assert a.caption == "A" and b.caption == "photo 1, tag1" and c.caption == "changed meanwhile"


def test_index_keeps_flags_and_tolerates_damage(tmp_path):
    d = make_dataset(tmp_path / "ds", 2)
    ds = Dataset.open(d)
    ds.set_flagged(ds.items[1], True)
    ds.set_rating(ds.items[0], 4)
    ds.record_analysis(ds.items[0], "ab" * 32, 0x1234)
    assert ds.save_index()
    again = Dataset.open(d)
    assert again.items[1].flagged and again.items[0].rating == 4
    assert again.items[0].sha256 == "ab" * 32 and again.items[0].phash == 0x1234
    # a changed image invalidates the cached hash but keeps the user's flag
    st = (d / "img 0001.png").stat()
    pattern(64, 48, 77).save(d / "img 0001.png")
    # a later mtime, whatever the file system's timestamp resolution (no sleep)
    os.utime(d / "img 0001.png", ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    again = Dataset.open(d)
    assert again.items[1].flagged and again.items[1].sha256 is None
    (d / ".zitdesk" / "index.json").write_text("{not json")
    assert len(Dataset.open(d).items) == 2
    assert (d / ".zitdesk" / "index.json.bad").exists()


def test_open_removes_stale_temp_files_only(tmp_path):
    d = make_dataset(tmp_path / "ds", 1)
    (d / ".img 0000.txt.ab12_x.tmp").write_text("half")
    (d / ".keep.tmp").write_text("not ours")
    Dataset.open(d)
    assert not (d / ".img 0000.txt.ab12_x.tmp").exists()
    assert (d / ".keep.tmp").exists()
