"""The pre-flight check: same buckets as the trainer, every finding, and the CLI contract."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from messy import WordTokenizer, make_dataset, pattern, save

from zitdesk.cli.dataset import add_dataset_parser
from zitdesk.dataset.check import (
    CheckOptions,
    caption_token_counts,
    check_folder,
    check_items,
    near_duplicate_pairs,
)
from zitdesk.train.dataset import apply_trigger, plan_entries, scan_folder
from zitdesk.train.presets import PRESETS


@pytest.fixture
def folder(tmp_path):
    d = make_dataset(tmp_path / "ds", 6, size=(1024, 1024), ext=".jpg")
    save(pattern(1216, 832, 50), d / "wide.jpg")
    (d / "wide.txt").write_text("ohwx, a wide view")  # trigger already present
    save(pattern(400, 300, 51), d / "small.png")  # low-res
    (d / "small.txt").write_text("")  # empty caption
    save(pattern(10, 10, 52), d / "tiny.png")  # too small for any bucket
    save(pattern(900, 1100, 53), d / "nocap.png")  # missing caption
    (d / "img 0000 copy.jpg").write_bytes((d / "img 0000.jpg").read_bytes())  # exact duplicate
    pattern(1024, 1024, 1000).resize((1000, 1000)).save(d / "img 0000 resized.png")  # near dup
    (d / "long.txt").write_text(" ".join(["word"] * 600))
    save(pattern(768, 768, 54), d / "long.png")
    return d


def test_check_uses_the_trainers_buckets(folder):
    opts = CheckOptions.for_preset("12gb", trigger="ohwx")
    assert opts.resolutions == tuple(PRESETS["12gb"].changes["data"]["resolutions"])
    rep = check_folder(folder, opts, tokenizer=WordTokenizer())
    scan = scan_folder(folder)
    entries = plan_entries(scan.items, opts.resolutions)
    assert rep.entries == len(entries)
    for r in opts.resolutions:
        want: dict[str, int] = {}
        for e in entries:
            if e.resolution == r:
                k = f"{e.bucket[0]}x{e.bucket[1]}"
                want[k] = want.get(k, 0) + 1
        assert rep.buckets[r] == want
    assert rep.image_buckets["wide.jpg"][768] == "912x624" or rep.image_buckets["wide.jpg"][768]


def test_findings(folder):
    rep = check_folder(
        folder, CheckOptions.for_preset("24gb", trigger="ohwx"), tokenizer=WordTokenizer()
    )
    codes = {i.code: i for i in rep.issues}
    assert codes["missing_caption"].files == [
        "img 0000 copy.jpg",
        "img 0000 resized.png",
        "nocap.png",
        "tiny.png",
    ]
    assert codes["empty_caption"].files == ["small.png"]
    assert codes["too_small"].files == ["tiny.png"]
    assert "small.png" in codes["low_res"].files and "img 0000.jpg" not in codes["low_res"].files
    assert codes["over_token_budget"].files == ["long.png"]
    assert codes["trigger_doubled"].files == ["wide.jpg"]
    assert rep.exact_duplicates == [["img 0000 copy.jpg", "img 0000.jpg"]]
    assert any({"img 0000 resized.png"} <= set(g) for g in rep.near_duplicates)
    assert not any(set(g) == {"img 0000 copy.jpg", "img 0000.jpg"} for g in rep.near_duplicates)
    assert rep.verdict == "warnings"
    assert (
        "duplicate" in rep.flags["img 0000.jpg"]
        and "near_duplicate" in rep.flags["img 0000 resized.png"]
    )
    assert sum(c for _, c in rep.histogram) == rep.images == 13
    assert rep.tags["ohwx"] == 14  # trigger applied as in training: wide.jpg gets it twice
    j = json.loads(json.dumps(rep.to_json(), ensure_ascii=False))
    assert j["verdict"] == "warnings" and j["tokens"]["max"] == 601  # "ohwx," + 600 words


def test_blocked_and_ready(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert check_folder(empty, CheckOptions(), tokenizer=None).verdict == "blocked"
    d = make_dataset(tmp_path / "ok", 2, size=(1024, 1024))
    rep = check_folder(d, CheckOptions(resolutions=(512, 1024)), tokenizer=WordTokenizer())
    assert rep.verdict == "ready", [i.message for i in rep.issues]


def test_near_duplicate_pairs():
    assert near_duplicate_pairs([0b1011, 0b1010, 0xFFFF0000, 0b1011], 1) == [(0, 1), (0, 3), (1, 3)]
    assert near_duplicate_pairs([1 << 63, (1 << 63) | 1], 0) == []


def test_token_counts_match_the_prompt_counter(tmp_path):
    """The batched counts (transformers tokenizer, and the torch-free fast one the dataset
    manager uses) equal :func:`count_tokens` on the real Qwen3 tokenizer."""
    from zitdesk.dataset.check import fast_tokenizer
    from zitdesk.models.tokenizer import count_tokens, default_tokenizer

    caps = [
        "a cat",
        "ohwx, 猫 on a mat, café crème",
        "",
        "word " * 520,
        "[x]  spaced, out",
        "ÆØÅ — “quotes” 🙂 emoji, tabs\tand\nlines",
        "<|im_end|> literal",
    ]
    caps = [" ".join(c.split()) for c in caps]  # as the trainer reads them
    fast = fast_tokenizer()
    tok = default_tokenizer()
    for t in (tok, fast):
        counts, template = caption_token_counts(caps, t)
        for c, n in zip(caps, counts, strict=True):
            tc = count_tokens(c, tok)
            assert (n, template) == (tc.prompt_tokens, tc.template_tokens), c
            assert (n + template > 512) == tc.truncated


def test_check_items_from_memory_equals_folder(folder):
    from zitdesk.dataset.store import Dataset

    ds = Dataset.open(folder)
    opts = CheckOptions(trigger="ohwx")
    a = check_items(str(folder), ds.train_items(), opts)
    b = check_folder(folder, opts, tokenizer=None, duplicates=False)
    assert a.buckets == b.buckets and [i.files for i in a.issues] == [i.files for i in b.issues]
    assert apply_trigger(scan_folder(folder).items[0].caption, "ohwx").startswith("ohwx")


def _cli(argv, capsys):
    p = argparse.ArgumentParser(prog="zitdesk")
    add_dataset_parser(p.add_subparsers(dest="command", required=True))
    args = p.parse_args(argv)
    code = args.func(args)
    return code, capsys.readouterr()


def test_cli_import_and_check_json(tmp_path, capsys):
    src = make_dataset(tmp_path / "src", 3, size=(512, 512))
    (src / "junk.png").write_text("x")
    code, out = _cli(
        ["dataset", "import", str(src), "--to", str(tmp_path / "ds"), "--json"], capsys
    )
    assert code == 0
    j = json.loads(out.out)
    assert j["counts"] == {
        "imported": 3,
        "skipped": 1,
        "with_caption": 3,
        "converted": 0,
        "renamed": 0,
    }
    assert j["skipped"][0]["reason"].startswith("not an image")
    code, out = _cli(
        [
            "dataset",
            "check",
            str(tmp_path / "ds"),
            "--json",
            "--no-tokens",
            "--preset",
            "8gb",
            "--trigger",
            "zz",
        ],
        capsys,
    )
    assert code == 0
    j = json.loads(out.out)
    assert j["resolutions"] == [512, 768] and j["images"] == 3 and j["preset"] == "8gb"
    assert j["tokens"] is None and j["verdict"] in ("ready", "warnings")
    code, _ = _cli(
        [
            "dataset",
            "check",
            str(tmp_path / "ds"),
            "--no-tokens",
            "--resolution",
            "1024",
            "--fail-on",
            "warnings",
        ],
        capsys,
    )
    assert code == 3  # all 512 px: low-res at 1024


def test_fast_tokenizer_imports_no_torch():
    import subprocess
    import sys

    code = (
        "import sys; from zitdesk.dataset.check import fast_tokenizer; t = fast_tokenizer(); "
        "assert t.template_tokens == 8; "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy'"
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert res.returncode == 0, res.stderr[-1500:]
