"""Dataset folder scan, aspect buckets, trigger words, deterministic batches (no torch)."""

from __future__ import annotations

import random

import pytest
from PIL import Image

from zitdesk.train.dataset import (
    BatchCursor,
    apply_trigger,
    bucket_for,
    epoch_batches,
    load_bucket_image,
    plan_entries,
    scan_folder,
    tag_frequency,
)


@pytest.mark.parametrize("res", [512, 768, 1024])
def test_buckets_follow_the_rules(res):
    rng = random.Random(1)
    for _ in range(300):
        w, h = rng.randint(20, 3000), rng.randint(20, 3000)
        b = bucket_for(w, h, res)
        assert b is not None
        bw, bh = b
        assert bw % 16 == 0 and bh % 16 == 0
        assert bw <= w and bh <= h, "never upscale"
        assert bw * bh <= res * res
        target = min(w * h, res * res)
        if min(w, h) >= 256 and max(w / h, h / w) < 4:
            assert bw * bh >= 0.8 * target
            assert abs((bw / bh) / (w / h) - 1) < 0.1


def test_bucket_examples():
    assert bucket_for(1024, 1024, 1024) == (1024, 1024)
    assert bucket_for(4000, 3000, 1024) in ((1184, 880), (1168, 880), (1184, 896))
    assert bucket_for(600, 400, 1024) == (592, 400)  # small image: no upscale, area kept
    assert bucket_for(64, 64, 512) == (64, 64)
    assert bucket_for(10, 500, 512) is None


def test_plan_entries_dedupes_small_images():
    from zitdesk.train.dataset import DatasetItem

    big = DatasetItem(image=None, caption="", caption_path=None, width=2048, height=2048)
    small = DatasetItem(image=None, caption="", caption_path=None, width=500, height=500)
    entries = plan_entries([big, small], [512, 768, 1024])
    assert [(e.item, e.bucket) for e in entries] == [
        (0, (512, 512)),
        (0, (768, 768)),
        (0, (1024, 1024)),
        (1, (496, 496)),
    ]


def test_trigger_injection():
    assert apply_trigger("a photo of [trigger] smiling", "ohwx") == "a photo of ohwx smiling"
    assert apply_trigger("a cat", "ohwx") == "ohwx, a cat"
    assert apply_trigger("", "ohwx") == "ohwx"
    assert apply_trigger("[trigger] cat", "") == "cat"


def test_scan_folder(tmp_path):
    Image.new("RGB", (80, 48)).save(tmp_path / "b.png")
    (tmp_path / "b.txt").write_text("\ufeffred car,\n fast ", encoding="utf-8")
    # EXIF orientation 6 (rotated 90°): stored 80×48, shown 48×80
    im = Image.new("RGB", (80, 48))
    exif = im.getexif()
    exif[0x0112] = 6
    im.save(tmp_path / "a.jpg", exif=exif)
    (tmp_path / "c.png").write_bytes(b"not an image")
    (tmp_path / "notes.md").write_text("x")
    scan = scan_folder(tmp_path)
    assert [it.image.name for it in scan.items] == ["a.jpg", "b.png"]
    a, b = scan.items
    assert (a.width, a.height) == (48, 80) and a.caption == "" and a.caption_path is None
    assert b.caption == "red car, fast" and scan.captioned == 1
    assert len(scan.problems) == 1 and "c.png" in scan.problems[0]
    img = load_bucket_image(a.image, (48, 80))
    assert img.size == (48, 80) and img.mode == "RGB"


def test_epoch_batches_one_bucket_each_and_deterministic():
    from zitdesk.train.dataset import Entry

    entries = [Entry(i, 512, (512, 512) if i % 3 else (384, 640)) for i in range(20)]
    a = epoch_batches(entries, 4, seed=3, epoch=0)
    assert a == epoch_batches(entries, 4, seed=3, epoch=0)
    assert a != epoch_batches(entries, 4, seed=3, epoch=1)
    assert sorted(i for b in a for i in b) == list(range(20))
    for b in a:
        assert len({entries[i].bucket for i in b}) == 1


def test_batch_cursor_resumes_exactly():
    from zitdesk.train.dataset import Entry

    entries = [Entry(i, 64, (64, 64)) for i in range(5)]
    straight = BatchCursor(entries, 2, seed=1)
    seq = [straight.next() for _ in range(9)]
    c = BatchCursor(entries, 2, seed=1)
    first = [c.next() for _ in range(4)]
    resumed = BatchCursor(entries, 2, seed=1, **c.state())
    assert first + [resumed.next() for _ in range(5)] == seq


def test_tag_frequency():
    assert tag_frequency(["ohwx, red car", "ohwx,  blue car", ""]) == {
        "ohwx": 2,
        "red car": 1,
        "blue car": 1,
    }
