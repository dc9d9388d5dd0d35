"""One caption decoder (zitdesk.captions): the trainer reads a caption exactly as the dataset
manager shows it, whatever the file's encoding (issue 13)."""

from __future__ import annotations

from messy import make_dataset

from zitdesk.captions import caption_line, decode_caption, read_caption
from zitdesk.dataset.store import Dataset
from zitdesk.train.dataset import scan_folder

CP1252 = "café “quoted” — naïve €5".encode("cp1252")  # not valid UTF-8


def test_a_cp1252_caption_trains_with_the_text_the_dataset_manager_shows(tmp_path):
    d = make_dataset(tmp_path / "ds", 3)
    names = sorted(p.name for p in d.iterdir() if p.suffix == ".png")
    stems = [n.rsplit(".", 1)[0] for n in names]
    (d / f"{stems[0]}.txt").write_bytes(CP1252 + b"\r\nsecond   line")
    (d / f"{stems[1]}.txt").write_bytes(b"\xef\xbb\xbf" + "bom ünïcode".encode())
    (d / f"{stems[2]}.txt").write_bytes(b"plain\n")

    ds = Dataset.open(d)
    shown = {it.name: it.caption for it in ds.items}
    trained = {it.image.name: it.caption for it in scan_folder(d).items}
    assert shown[names[0]] == "café “quoted” — naïve €5\nsecond   line"  # cp1252, not U+FFFD
    assert trained[names[0]] == "café “quoted” — naïve €5 second line"
    for name in names:
        assert trained[name] == caption_line(shown[name]), name
    assert trained[names[1]] == "bom ünïcode"


def test_read_caption_is_decode_caption_on_one_line(tmp_path):
    p = tmp_path / "c.txt"
    for data in (CP1252, b"\xef\xbb\xbfa\r\nb", b"\x81\x8d undefined in cp1252", b""):
        p.write_bytes(data)
        text, style = decode_caption(data)
        assert read_caption(p) == " ".join(text.split())
        assert style.utf8 == (data != CP1252 and not data.startswith(b"\x81"))
