"""Import: messy sources in, a clean dataset out, sources untouched, a reason for every skip."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from messy import build_messy_sources, pattern, save, tree_state
from PIL import Image

from zitdesk.dataset.importer import import_sources, safe_stem
from zitdesk.dataset.store import Dataset
from zitdesk.train.dataset import image_size, scan_folder


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    root = tmp_path_factory.mktemp("messy")
    paths = build_messy_sources(root)
    target = root / "dataset"
    target.mkdir()
    save(pattern(50, 50, 99), target / "cat.jpg")  # already there: must not be replaced
    (target / "cat.txt").write_text("the original cat")
    before_src = tree_state(root / "src")
    zip_before = tree_state(root)["pack.zip"]
    existing = tree_state(target)
    report = import_sources([root / "src", paths["zip"]], target, thumb_cache=root / "thumbs")
    return {
        "root": root,
        "paths": paths,
        "target": target,
        "report": report,
        "json": report.to_json(),
        "before_src": before_src,
        "zip_before": zip_before,
        "existing": existing,
    }


def _imported(m, source_suffix: str) -> dict:
    hits = [x for x in m["json"]["imported"] if x["source"].endswith(source_suffix)]
    assert len(hits) == 1, (source_suffix, [x["source"] for x in m["json"]["imported"]])
    return hits[0]


def _skip_reason(m, source_suffix: str) -> str:
    hits = [x for x in m["json"]["skipped"] if x["source"].endswith(source_suffix)]
    assert len(hits) == 1, (source_suffix, m["json"]["skipped"])
    return hits[0]["reason"]


def test_sources_and_existing_files_are_untouched(messy):
    assert tree_state(messy["root"] / "src") == messy["before_src"]
    assert tree_state(messy["root"])["pack.zip"] == messy["zip_before"]
    after = tree_state(messy["target"])
    for name, state in messy["existing"].items():
        assert after[name][0] == state[0], f"{name} was overwritten"


def test_every_rejection_has_a_reason(messy):
    m = messy
    assert "truncated" in _skip_reason(m, "truncated.jpg")
    assert "corrupt" in _skip_reason(m, "corrupt.png")
    assert "not an image" in _skip_reason(m, "fake.png")
    assert "decompression bomb" in _skip_reason(m, "bomb.png")
    assert "without an image" in _skip_reason(m, "orphan.txt")
    for member in ("!../evil.png", "!/abs.png", "!sub/../../x.png", "!C:\\win.png"):
        assert "escape" in _skip_reason(m, member)
    assert not (m["root"] / "evil.png").exists() and not (m["target"].parent / "x.png").exists()
    names = {x["image"] for x in m["json"]["imported"]}
    assert not any(n.startswith((".", "_")) or "MACOSX" in n for n in names)
    assert m["json"]["counts"]["imported"] == len(m["json"]["imported"]) == 15


def test_json_report_is_serialisable_and_counts_match(messy):
    j = json.loads(json.dumps(messy["json"], ensure_ascii=False))
    assert j["counts"]["skipped"] == len(j["skipped"])
    assert j["counts"]["with_caption"] == sum(1 for x in j["imported"] if x["caption"])
    assert {"source", "image", "caption", "converted", "renamed_from", "notes"} <= set(
        j["imported"][0]
    )


def test_captions_survive_byte_for_byte(messy):
    t, src = messy["target"], messy["root"] / "src"
    assert (t / "photo one.txt").read_bytes() == (src / "photo one.txt").read_bytes()  # BOM + CRLF
    assert (t / "ünïcødé 猫.txt").read_bytes() == (src / "ünïcødé 猫.caption").read_bytes()
    assert (t / "rotated.txt").read_bytes() == b"sideways photo"
    assert (t / "dog.txt").read_text() == "a dog, in a zip"
    # documented normalisation: a Windows-1252 caption becomes UTF-8
    assert (t / "latin.txt").read_text(encoding="utf-8") == "café crème, naïve"
    assert "Windows-1252" in " ".join(_imported(messy, "latin.png")["notes"])


def test_kept_images_are_byte_identical(messy):
    t, src = messy["target"], messy["root"] / "src"
    for name in ("photo one.jpg", "ünïcødé 猫.png", "alpha.png", "pic.bmp", "rgb48.png"):
        assert (t / name).read_bytes() == (src / name).read_bytes(), name
    assert _imported(messy, "alpha.webp")["image"] == "alpha-2.webp"  # stem taken by alpha.png
    assert (t / "alpha-2.webp").read_bytes() == (src / "alpha.webp").read_bytes()
    assert _imported(messy, "photo one.jpg")["converted"] == ""


def test_conversions(messy):
    t = messy["target"]
    rot = _imported(messy, "rotated.jpg")
    assert "orientation 6" in rot["converted"]
    with Image.open(t / rot["image"]) as im:  # pixels rotated, tag gone
        assert im.size == (300, 400) and im.getexif().get(0x0112, 1) == 1
    cmyk = _imported(messy, "cmyk.jpg")
    assert "CMYK" in cmyk["converted"]
    with Image.open(t / cmyk["image"]) as im:
        assert im.mode == "RGB"
    deep = _imported(messy, "deep16.png")
    with Image.open(t / deep["image"]) as im:
        a = np.asarray(im)
        assert im.mode == "L" and a.min() == 0 and a.max() == 255 and 100 < a.mean() < 155
    tif = _imported(messy, "scan.tiff")
    assert tif["image"] == "scan.png" and "TIFF" in tif["converted"]
    gif = _imported(messy, "anim.gif")
    assert gif["image"] == "anim.png" and "first frame" in gif["converted"]
    with Image.open(t / "anim.png") as im:
        assert im.format == "PNG" and getattr(im, "n_frames", 1) == 1
    assert any("transparency" in n for n in _imported(messy, "alpha.png")["notes"])


def test_name_clashes_never_overwrite(messy):
    t = messy["target"]
    a, b = _imported(messy, "a/cat.jpg"), _imported(messy, "b/cat.jpg")
    assert {a["image"], b["image"]} == {"cat-2.jpg", "cat-3.jpg"}
    assert a["renamed_from"] == "cat.jpg"
    assert (t / "cat.txt").read_text() == "the original cat"
    assert (t / a["caption"]).read_text() == "cat from a"
    assert (t / b["caption"]).read_text() == "cat from b"


def test_result_matches_the_trainers_scan(messy):
    t = messy["target"]
    scan = scan_folder(t)
    ds = Dataset.open(t)
    assert [it.image.name for it in scan.items] == [it.name for it in ds.items]
    for s, d in zip(scan.items, ds.items, strict=True):
        assert (s.width, s.height) == (d.width, d.height) == image_size(t / d.name)
        assert s.caption == d.train_caption
    assert not scan.problems
    assert all(it.sha256 and it.phash is not None for it in ds.items if it.name != "cat.jpg")


def test_reimport_adds_nothing(messy, tmp_path):
    again = import_sources(
        [messy["root"] / "src", messy["paths"]["zip"]], messy["target"], thumb_cache=tmp_path
    )
    assert again.to_json()["counts"]["imported"] == 0
    assert any("already in the dataset" in s.reason for s in again.skipped)


def test_loose_files_bring_their_sidecars(tmp_path):
    img = save(pattern(64, 64, 1), tmp_path / "in" / "x y.png")
    (tmp_path / "in" / "x y.txt").write_text("beside")
    rep = import_sources([img], tmp_path / "out", thumb_cache=tmp_path / "th")
    assert rep.imported[0].caption == "x y.txt"
    assert (tmp_path / "out" / "x y.txt").read_text() == "beside"


def test_pixel_limit_and_zip_size_limit(tmp_path):
    img = save(pattern(100, 100, 1), tmp_path / "big.png")
    rep = import_sources([img], tmp_path / "out", max_pixels=5000, thumb_cache=tmp_path / "th")
    assert "decompression bomb" in rep.skipped[0].reason and not rep.imported
    zp = tmp_path / "z.zip"
    with zipfile.ZipFile(zp, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("huge.png", b"\x00" * 200_000)
    rep = import_sources([zp], tmp_path / "out2", max_file_bytes=100_000, thumb_cache=tmp_path)
    assert "too large" in rep.skipped[0].reason


def test_importing_the_target_into_itself_is_refused(tmp_path):
    from zitdesk.errors import RequestError

    with pytest.raises(RequestError):
        import_sources([tmp_path], tmp_path)


def test_safe_stem():
    assert safe_stem('a<b>:c"d|e?f*') == "a_b__c_d_e_f_"
    assert safe_stem("  spaced name ") == "spaced name"
    assert safe_stem("...") == "image"
    assert safe_stem("猫 ünï") == "猫 ünï"
