"""LoRA library core: every dialect, foreign architectures, metadata styles, sidecars, previews,
hostile headers, the incremental cache, moves, hashes, duplicates (Qt-free, torch-free)."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

import pytest

from tests.support.samples import (
    data_uri,
    kohya_metadata,
    make_lora,
    modelspec_metadata,
    png_bytes,
)
from zitdesk.library import hashing
from zitdesk.library.index import LibraryIndex, LoraEntry, index_document, merge_trigger_words
from zitdesk.library.sidecars import Sidecar


def scan(folder: Path, index: LibraryIndex | None = None):
    index = index or LibraryIndex(cache_path=None, hash_cache=None)
    result = index.scan([folder])
    return {Path(e.path).name: e for e in result.entries}, result, index


# -------------------------------------------------------------------------------------------
# Dialects and architectures
# -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "dialect", "rank", "alpha", "badge"),
    [
        ("aitoolkit", "aitoolkit", 16, None, "16/16"),
        ("kohya", "kohya", 8, 4.0, "16/16"),
        ("kohya_fused", "kohya", 32, 16.0, "8/8"),
        ("dot", "dot", 4, 2.0, "16/16"),
        ("diffusers", "diffusers", 4, None, "16/16"),
        ("peft", "peft", 4, None, "16/16"),
        ("lokr", "lokr", 4, None, "16/16"),
    ],
)
def test_zimage_dialects(tmp_path, kind, dialect, rank, alpha, badge):
    make_lora(tmp_path / f"{kind}.safetensors", kind, rank, alpha=alpha, layers=2)
    entries, _, _ = scan(tmp_path)
    e = entries[f"{kind}.safetensors"]
    assert e.status == "ok" and e.arch == "zimage" and e.arch_label == "Z-Image"
    assert e.dialect == dialect
    assert e.rank == rank
    if kind in ("kohya", "kohya_fused", "dot"):
        assert e.alpha == alpha
    # coverage against the real Z-Image Turbo module set (layers 0-1 × 8 modules, qkv expanded)
    assert e.coverage_badge == badge
    assert e.compatible and "loads" in e.reason
    assert e.target_count == e.coverage_total
    assert not e.has_metadata and e.metadata == {}


@pytest.mark.parametrize(
    ("kind", "arch", "label"),
    [
        ("sdxl", "sdxl", "SDXL"),
        ("sd15", "sd15", "Stable Diffusion 1.5"),
        ("flux", "flux", "Flux"),
        ("qwen_image", "qwen_image", "Qwen-Image"),
        ("wan", "wan", "Wan"),
    ],
)
def test_foreign_architectures_are_listed_with_the_reason(tmp_path, kind, arch, label):
    make_lora(tmp_path / f"{kind}.safetensors", kind, 16)
    entries, _, _ = scan(tmp_path)
    e = entries[f"{kind}.safetensors"]
    assert e.status == "ok" and e.arch == arch and e.arch_label == label
    assert not e.compatible
    assert label in e.reason and "cannot be used with Z-Image" in e.reason
    assert e.rank == 16  # shown on the card even for foreign files
    assert e.coverage_total == 0


def test_unknown_keys_are_incompatible_not_hidden(tmp_path):
    make_lora(tmp_path / "odd.safetensors", "unknown", 4)
    entries, _, _ = scan(tmp_path)
    e = entries["odd.safetensors"]
    assert e.status == "ok" and not e.compatible and "recognises" in e.reason


def test_coverage_against_a_configured_model(tmp_path):
    make_lora(tmp_path / "a.safetensors", "aitoolkit", 4, layers=2)
    names = {f"layers.0.{m}" for m in ("attention.to_q", "attention.to_k", "attention.to_v")}
    idx = LibraryIndex(cache_path=None, hash_cache=None, module_names=names)
    entries, _, _ = scan(tmp_path, idx)
    e = entries["a.safetensors"]
    assert (e.coverage_matched, e.coverage_total) == (3, 16)
    assert e.compatible and "13 modules are not in this model" in e.reason
    # another model: the next scan re-reads the header
    assert idx.set_module_names(None)
    entries, result, _ = scan(tmp_path, idx)
    assert result.inspected == 1 and entries["a.safetensors"].coverage_badge == "16/16"


# -------------------------------------------------------------------------------------------
# Metadata dialects
# -------------------------------------------------------------------------------------------


def test_kohya_metadata(tmp_path):
    make_lora(
        tmp_path / "k.safetensors",
        "kohya",
        16,
        8,
        layers=1,
        metadata=kohya_metadata("mochi", 16, 8, tags={"mochi": 50, "cat": 48, "sit": 3}),
    )
    e = scan(tmp_path)[0]["k.safetensors"]
    assert e.has_metadata
    assert e.training["output name"] == "mochi"
    assert e.training["network dim"] == "16" and e.training["network alpha"] == "8"
    assert e.training["resolution"] == "(1024, 1024)" and e.training["steps"] == "2000"
    assert e.base_model_version == "zimage"
    assert e.top_tags[:2] == (("mochi", 50), ("cat", 48))
    words = [(t.word, t.source, t.from_tags) for t in e.trigger_words]
    assert words[0] == ("mochi", "ss_tag_frequency", True)
    assert e.declared_triggers == [] and e.default_insert_triggers == ["mochi"]


def test_modelspec_metadata_and_embedded_thumbnail(tmp_path, _isolated_home):
    thumb = data_uri(png_bytes(8, 8))
    make_lora(
        tmp_path / "m.safetensors",
        "aitoolkit",
        4,
        layers=1,
        metadata=modelspec_metadata(
            "Watercolor", "mika", "wtrclr", "<p>Soft <b>wash</b></p>", thumbnail=thumb
        ),
    )
    e = scan(tmp_path)[0]["m.safetensors"]
    assert (e.title, e.author, e.display_name) == ("Watercolor", "mika", "Watercolor")
    assert e.description == "Soft wash"  # HTML reduced to plain text
    assert (
        e.trigger_words[0].word == "wtrclr"
        and e.trigger_words[0].source == "modelspec.trigger_phrase"
    )
    assert e.base_model_version == "Z-Image/lora"
    assert e.preview_source == "modelspec.thumbnail (header)"
    assert Path(e.preview).read_bytes().startswith(b"\x89PNG")
    assert Path(e.preview).is_relative_to(_isolated_home)  # in the cache, not beside the LoRA
    assert e.metadata["modelspec.thumbnail"].startswith("<embedded image")


def test_hostile_thumbnail_is_ignored(tmp_path):
    bad = "data:image/png;base64," + "QUJD" * 10  # "ABC...": not an image
    make_lora(
        tmp_path / "m.safetensors",
        "aitoolkit",
        4,
        layers=1,
        metadata=modelspec_metadata("T", thumbnail=bad),
    )
    e = scan(tmp_path)[0]["m.safetensors"]
    assert e.status == "ok" and e.preview == ""


def test_long_metadata_values_are_cut_in_the_index(tmp_path):
    make_lora(tmp_path / "m.safetensors", "aitoolkit", 4, layers=1, metadata={"note": "x" * 50_000})
    e = scan(tmp_path)[0]["m.safetensors"]
    assert len(e.metadata["note"]) < 1100 and "50,000 characters" in e.metadata["note"]


# -------------------------------------------------------------------------------------------
# Sidecars and previews
# -------------------------------------------------------------------------------------------


def _lora(tmp_path, name="s", **kw):
    return make_lora(
        tmp_path / f"{name}.safetensors", kw.pop("kind", "aitoolkit"), 4, layers=1, **kw
    )


def test_a1111_json_sidecar(tmp_path):
    _lora(tmp_path)
    (tmp_path / "s.json").write_text(
        json.dumps(
            {
                "description": "desc",
                "activation text": "sks style, detailed",
                "preferred weight": 0.7,
                "notes": "mine",
                "sd version": "Unknown",
                "negative text": "blurry",
            }
        )
    )
    e = scan(tmp_path)[0]["s.safetensors"]
    (sc,) = e.sidecars
    assert (
        sc.kind == "a1111" and not sc.error and sc.notes == "mine" and sc.negative_text == "blurry"
    )
    assert e.description == "desc" and e.preferred_weight == 0.7
    assert e.trigger_words[0] == e.trigger_words[0].__class__(
        "sks style, detailed", "A1111/Forge .json", ("A1111/Forge .json",), False
    )


def test_civitai_info_sidecar(tmp_path):
    _lora(tmp_path)
    sha = "ab" * 32
    (tmp_path / "s.civitai.info").write_text(
        json.dumps(
            {
                "id": 11,
                "modelId": 22,
                "name": "v2",
                "baseModel": "ZImageTurbo",
                "trainedWords": ["foo", "bar baz"],
                "description": "<p>Hello<br>world &amp; more</p>",
                "model": {"name": "Foo", "tags": ["style"]},
                "files": [{"hashes": {"SHA256": sha.upper()}}],
                "creator": {"username": "bob"},
            }
        )
    )
    e = scan(tmp_path)[0]["s.safetensors"]
    (sc,) = e.sidecars
    assert sc.url == "https://civitai.com/models/22?modelVersionId=11"
    assert sc.claimed_sha256 == sha
    assert e.title == "Foo (v2)" and e.author == "bob" and e.tags == ("style",)
    assert e.description == "Hello\nworld & more"
    assert [t.word for t in e.trigger_words] == ["foo", "bar baz"]
    assert all(t.source == ".civitai.info" for t in e.trigger_words)


def test_cm_info_metadata_json_and_swarm_sidecars(tmp_path):
    _lora(tmp_path, "a")
    (tmp_path / "a.cm-info.json").write_text(
        json.dumps(
            {
                "ModelName": "Portrait",
                "VersionName": "v3",
                "BaseModel": "Z-Image",
                "TrainedWords": ["studio"],
                "Hashes": {"SHA256": "CD" * 32},
                "ModelId": 5,
                "VersionId": 6,
            }
        )
    )
    _lora(tmp_path, "b")
    (tmp_path / "b.metadata.json").write_text(
        json.dumps(
            {
                "model_name": "Paper",
                "base_model": "Z-Image",
                "usage_tips": '{"strength": 0.6}',
                "civitai": {"trainedWords": ["paper"]},
                "notes": "n",
                "tags": ["t1"],
            }
        )
    )
    _lora(tmp_path, "c")
    (tmp_path / "c.swarm.json").write_text(
        json.dumps(
            {
                "modelspec.title": "Swarm Title",
                "modelspec.author": "me",
                "modelspec.trigger_phrase": "swm",
                "modelspec.thumbnail": data_uri(png_bytes(4, 4)),
            }
        )
    )
    entries = scan(tmp_path)[0]
    a, b, c = entries["a.safetensors"], entries["b.safetensors"], entries["c.safetensors"]
    assert (
        a.title == "Portrait (v3)"
        and a.sidecars[0].url == "https://civitai.com/models/5?modelVersionId=6"
    )
    assert a.trigger_words[0].source == "StabilityMatrix .cm-info.json"
    assert b.title == "Paper" and b.preferred_weight == 0.6 and b.trigger_words[0].word == "paper"
    assert b.sidecars[0].notes == "n"
    assert (
        c.title == "Swarm Title"
        and c.author == "me"
        and c.trigger_words[0].source == "SwarmUI .swarm.json"
    )
    assert c.preview_source == "modelspec.thumbnail (.swarm.json)" and Path(c.preview).is_file()
    assert c.sidecars[0].thumbnail == ""  # not copied into the index


def test_bad_sidecars_are_reported_not_fatal(tmp_path, monkeypatch):
    _lora(tmp_path, "a")
    (tmp_path / "a.json").write_text("{not json")
    _lora(tmp_path, "b")
    (tmp_path / "b.civitai.info").write_text("[1, 2]")
    _lora(tmp_path, "c")
    (tmp_path / "c.cm-info.json").write_text(
        json.dumps({"ModelName": {"x": 1}, "TrainedWords": "one", "Hashes": 7})
    )
    from zitdesk.library import sidecars

    monkeypatch.setattr(sidecars, "MAX_SIDECAR_BYTES", 100)
    _lora(tmp_path, "d")
    (tmp_path / "d.swarm.json").write_text(json.dumps({"modelspec.title": "x" * 200}))
    entries = scan(tmp_path)[0]
    assert "not valid JSON" in entries["a.safetensors"].sidecars[0].error
    assert "JSON object" in entries["b.safetensors"].sidecars[0].error
    c = entries["c.safetensors"]
    assert c.sidecars[0].error == "" and c.title == "" and c.trigger_words[0].word == "one"
    assert "too large" in entries["d.safetensors"].sidecars[0].error
    assert all(e.status == "ok" for e in entries.values())


def test_trigger_words_merge_sources_and_priority():
    cars = [
        Sidecar("civitai", "x", trigger_words=["Foo", "civ only"]),
        Sidecar("a1111", "y", trigger_words=["foo"]),
        Sidecar("swarm", "z", error="bad", trigger_words=["never"]),
    ]
    header = [
        ("tag1", "ss_tag_frequency"),
        ("FOO", "modelspec.trigger_phrase"),
        ("cfg", "training_info:trigger_word"),
    ]
    words = merge_trigger_words(header, cars)
    assert [w.word for w in words] == ["foo", "civ only", "cfg", "tag1"]
    foo = words[0]
    assert foo.source == "A1111/Forge .json"
    assert foo.sources == ("A1111/Forge .json", "modelspec.trigger_phrase", ".civitai.info")
    assert words[-1].from_tags and not foo.from_tags


def test_preview_conventions_and_priority(tmp_path):
    for name in ("p1", "p2", "p3", "p4"):
        _lora(tmp_path, name)
    img = png_bytes(4, 4)
    (tmp_path / "p1.preview.png").write_bytes(img)
    (tmp_path / "p1.png").write_bytes(img)
    (tmp_path / "p1.thumb.jpg").write_bytes(img)
    (tmp_path / "p2.JPG").write_bytes(img)  # case-insensitive match
    (tmp_path / "p2.thumb.png").write_bytes(img)
    (tmp_path / "p3.thumb.webp").write_bytes(img)
    (tmp_path / "p4x.png").write_bytes(img)  # another file's preview
    entries = scan(tmp_path)[0]
    assert entries["p1.safetensors"].preview_source == "p1.preview.png"
    assert entries["p2.safetensors"].preview_source == "p2.JPG"
    assert entries["p3.safetensors"].preview_source == "p3.thumb.webp"
    assert entries["p4.safetensors"].preview == ""


# -------------------------------------------------------------------------------------------
# Hostile and broken files
# -------------------------------------------------------------------------------------------


def _raw(path: Path, header: bytes, n: int | None = None, tail: bytes = b"") -> None:
    path.write_bytes(struct.pack("<Q", len(header) if n is None else n) + header + tail)


def test_hostile_headers_give_per_file_errors(tmp_path):
    good = _lora(tmp_path, "good")
    _raw(tmp_path / "huge.safetensors", b"{}", n=2**62)
    _raw(tmp_path / "notjson.safetensors", b"{this is not json", tail=b"\0" * 16)
    _raw(tmp_path / "array.safetensors", b"[1,2,3]")
    _raw(
        tmp_path / "offsets.safetensors",
        json.dumps(
            {
                "a.lora_A.weight": {
                    "dtype": "F32",
                    "shape": [2, 2],
                    "data_offsets": [999984, 1000000],
                }
            }
        ).encode(),
    )
    _raw(
        tmp_path / "negative.safetensors",
        json.dumps(
            {"a.lora_A.weight": {"dtype": "F32", "shape": [2, 2], "data_offsets": [16, 0]}}
        ).encode(),
    )
    _raw(tmp_path / "badentry.safetensors", json.dumps({"a.lora_A.weight": "nope"}).encode())
    _raw(tmp_path / "notensors.safetensors", json.dumps({"__metadata__": {"a": "b"}}).encode())
    (tmp_path / "empty.safetensors").write_bytes(b"")
    (tmp_path / "pickle.safetensors").write_bytes(b"\x80\x02}q\x00" + b"\0" * 10)
    (tmp_path / "model.ckpt").write_bytes(b"PK\x03\x04")
    (tmp_path / "model.pt").write_bytes(b"\x80\x02")
    (tmp_path / "model.gguf").write_bytes(b"GGUF")
    size = good.stat().st_size
    with open(tmp_path / "truncated.safetensors", "wb") as fh:
        fh.write(good.read_bytes()[: size // 2 if size > 200 else size - 1])
    entries, result, _ = scan(tmp_path)
    assert len(entries) == 14
    assert entries["good.safetensors"].status == "ok"
    expect = {
        "huge.safetensors": "declared header size",
        "notjson.safetensors": "not JSON",
        "array.safetensors": "not a JSON object",
        "offsets.safetensors": "truncated",
        "negative.safetensors": "invalid offsets",
        "badentry.safetensors": "malformed entry",
        "notensors.safetensors": "holds no tensors",
        "empty.safetensors": "too small to be",
        "pickle.safetensors": "checkpoint renamed",
        "truncated.safetensors": "truncated",
    }
    for name, text in expect.items():
        e = entries[name]
        assert e.status == "error", name
        assert text in e.error and e.reason == e.error and not e.compatible, (name, e.error)
        assert "Traceback" not in e.error
    for name in ("model.ckpt", "model.pt"):
        assert entries[name].status == "unsupported"
        assert entries[name].reason.startswith("Not supported: unsafe format")
    assert entries["model.gguf"].status == "unsupported"
    assert result.errors == 13  # 10 unreadable + 3 unsupported


def test_non_string_metadata_is_refused_like_the_loader(tmp_path):
    # safetensors' loader refuses metadata values that are not text, so generate cannot load such
    # a file; the library says so instead of calling it compatible (issue 12, point 9).
    make_lora(
        tmp_path / "n.safetensors",
        "aitoolkit",
        4,
        layers=1,
        metadata={"modelspec.title": 42, "modelspec.trigger_phrase": ["a", "b"], "weird": None},
    )
    e = scan(tmp_path)[0]["n.safetensors"]
    assert e.status == "error" and not e.compatible
    assert "metadata value that is not text" in e.error and "\n" not in e.error


def test_unexpected_exception_is_contained(tmp_path, monkeypatch):
    _lora(tmp_path, "a")
    _lora(tmp_path, "b")
    from zitdesk.lora import inspect

    real = inspect.inspect_header

    def boom(header):
        if header.path.name == "a.safetensors":
            raise RecursionError("deep")
        return real(header)

    monkeypatch.setattr(inspect, "inspect_header", boom)
    entries = scan(tmp_path)[0]
    assert (
        entries["a.safetensors"].status == "error"
        and "nested too deeply" in entries["a.safetensors"].error
    )
    assert entries["b.safetensors"].status == "ok"


# -------------------------------------------------------------------------------------------
# Cache, incremental rescans, moves
# -------------------------------------------------------------------------------------------


def test_incremental_cache(tmp_path):
    lib = tmp_path / "lib"
    for n in ("a", "b", "c"):
        make_lora(lib / f"{n}.safetensors", "kohya", 4, layers=1)
    cache = tmp_path / "index.json"
    idx = LibraryIndex(cache_path=cache, hash_cache=None)
    r = idx.scan([lib])
    assert (r.inspected, r.reused, sorted(map(os.path.basename, r.added))) == (
        3,
        0,
        ["a.safetensors", "b.safetensors", "c.safetensors"],
    )
    assert cache.is_file()
    # warm, from disk (a new index = a new app start)
    r = LibraryIndex(cache_path=cache, hash_cache=None).scan([lib])
    assert (r.inspected, r.reused) == (0, 3)
    # a sidecar appears: only that entry is read again
    (lib / "b.json").write_text(json.dumps({"activation text": "bee"}))
    idx2 = LibraryIndex(cache_path=cache, hash_cache=None)
    r = idx2.scan([lib])
    assert (r.inspected, r.reused) == (1, 2) and [os.path.basename(p) for p in r.changed] == [
        "b.safetensors"
    ]
    assert idx2.get(str(lib / "b.safetensors")).trigger_words[0].word == "bee"
    # the file changes (mtime), one deleted, one new
    p = lib / "a.safetensors"
    os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))
    (lib / "c.safetensors").unlink()
    make_lora(lib / "sub" / "d.safetensors", "aitoolkit", 4, layers=1)
    r = idx2.scan([lib])
    assert [os.path.basename(x) for x in r.changed] == ["a.safetensors"]
    assert [os.path.basename(x) for x in r.removed] == ["c.safetensors"]
    assert [os.path.basename(x) for x in r.added] == ["d.safetensors"]
    assert len(r.entries) == 3


def test_corrupt_cache_is_ignored(tmp_path):
    make_lora(tmp_path / "lib" / "a.safetensors", "kohya", 4, layers=1)
    cache = tmp_path / "index.json"
    cache.write_text('{"version": 1, "entries": [{"key": 1}]}')
    r = LibraryIndex(cache_path=cache, hash_cache=None).scan([tmp_path / "lib"])
    assert r.inspected == 1 and r.entries[0].status == "ok"


def test_rename_is_detected_as_a_move(tmp_path):
    lib = tmp_path / "lib"
    make_lora(lib / "old.safetensors", "kohya", 4, layers=1)
    idx = LibraryIndex(cache_path=None, hash_cache=None)
    idx.scan([lib])
    idx.compute_hashes(str(lib / "old.safetensors"))
    (lib / "new").mkdir()
    os.rename(lib / "old.safetensors", lib / "new" / "renamed.safetensors")
    r = idx.scan([lib])
    assert r.moved == [(str(lib / "old.safetensors"), str(lib / "new" / "renamed.safetensors"))]
    assert idx.get(str(lib / "new" / "renamed.safetensors")).sha256  # the hash followed


def test_cancelled_scan_keeps_unreached_entries(tmp_path):
    for n in range(4):
        make_lora(tmp_path / f"{n}.safetensors", "kohya", 4, layers=1)
    idx = LibraryIndex(cache_path=None, hash_cache=None)
    idx.scan([tmp_path])
    calls = {"n": 0}

    def cancel():
        calls["n"] += 1
        return calls["n"] > 3

    (tmp_path / "0.json").write_text("{}")
    r = idx.scan([tmp_path], cancel=cancel)
    assert r.cancelled and len(idx.entries) == 4


def test_missing_root_and_symlink_loop(tmp_path):
    make_lora(tmp_path / "a.safetensors", "kohya", 4, layers=1)
    try:
        os.symlink(tmp_path, tmp_path / "loop")
    except OSError:
        pass
    idx = LibraryIndex(cache_path=None, hash_cache=None)
    r = idx.scan([tmp_path, tmp_path / "nope"])
    assert len(r.entries) == 1 and r.missing_roots == [str(tmp_path / "nope")]


def test_progress_and_batches(tmp_path):
    for n in range(5):
        make_lora(tmp_path / f"{n}.safetensors", "kohya", 4, layers=1)
    seen, batches = [], []
    LibraryIndex(cache_path=None, hash_cache=None).scan(
        [tmp_path], progress=lambda d, t: seen.append((d, t)), on_batch=batches.append
    )
    assert seen[-1] == (5, 5)
    assert sum(len(b) for b in batches) == 5


# -------------------------------------------------------------------------------------------
# Hashes and duplicates
# -------------------------------------------------------------------------------------------


def test_hashes_match_reference_definitions(tmp_path):
    p = make_lora(tmp_path / "a.safetensors", "kohya", 4, layers=1)
    raw = p.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    h = hashing.hash_file(p)
    assert h.sha256 == hashlib.sha256(raw).hexdigest()
    assert h.addnet == hashlib.sha256(raw[8 + n :]).hexdigest()
    assert h.autov2 == h.sha256[:10] and h.autov3 == h.addnet[:12]


def test_hashes_are_lazy_cached_and_find_duplicates(tmp_path):
    lib = tmp_path / "lib"
    make_lora(lib / "a.safetensors", "kohya", 4, layers=1)
    (lib / "copy").mkdir()
    (lib / "copy" / "a_copy.safetensors").write_bytes((lib / "a.safetensors").read_bytes())
    make_lora(
        lib / "a_meta.safetensors", "kohya", 4, layers=1, metadata={"modelspec.title": "edited"}
    )
    make_lora(lib / "other.safetensors", "aitoolkit", 4, layers=1)
    cache = tmp_path / "hashes.json"
    idx = LibraryIndex(cache_path=tmp_path / "index.json", hash_cache=hashing.HashCache(cache))
    r = idx.scan([lib])
    assert all(not e.sha256 for e in r.entries)  # lazy: nothing hashed by a scan
    assert len(idx.hash_pending()) == 4
    for e in idx.hash_pending():
        idx.compute_hashes(e.path)
    assert idx.hash_pending() == []
    assert idx.duplicates() == [
        [str(lib / "a.safetensors"), str(lib / "copy" / "a_copy.safetensors")]
    ]
    same = idx.same_weights()
    assert same == [
        sorted(
            [
                str(lib / "a.safetensors"),
                str(lib / "a_meta.safetensors"),
                str(lib / "copy" / "a_copy.safetensors"),
            ]
        )
    ]
    idx.save()
    # a new index picks the hashes up from the cache without reading the files
    idx2 = LibraryIndex(cache_path=tmp_path / "index.json", hash_cache=hashing.HashCache(cache))
    r2 = idx2.scan([lib])
    assert all(e.sha256 for e in r2.entries) and r2.inspected == 0
    doc = index_document(r2, idx2)
    assert doc["duplicates"] and doc["count"] == 4
    assert {e["autov2"] for e in doc["entries"]} and all(
        len(e["autov3"]) == 12 for e in doc["entries"]
    )


def test_hash_cancel(tmp_path):
    p = make_lora(tmp_path / "a.safetensors", "kohya", 4, layers=1)
    with pytest.raises(hashing.HashCancelled):
        hashing.hash_file(p, cancelled=lambda: True)


def test_entry_round_trips_through_json(tmp_path):
    _lora(tmp_path, "a", metadata=kohya_metadata("a"))
    (tmp_path / "a.civitai.info").write_text(
        json.dumps({"trainedWords": ["x"], "model": {"name": "A"}})
    )
    e = scan(tmp_path)[0]["a.safetensors"]
    d = json.loads(json.dumps(e.to_dict()))
    again = LoraEntry.from_dict(d)
    assert again == e


def test_cleaned_thumbnail_cache_is_rebuilt(tmp_path, _isolated_home):
    make_lora(
        tmp_path / "lib" / "m.safetensors",
        "aitoolkit",
        4,
        layers=1,
        metadata=modelspec_metadata("T", thumbnail=data_uri(png_bytes(4, 4))),
    )
    idx = LibraryIndex(cache_path=tmp_path / "index.json", hash_cache=None)
    e = idx.scan([tmp_path / "lib"]).entries[0]
    Path(e.preview).unlink()
    r = idx.scan([tmp_path / "lib"])
    assert r.inspected == 1 and Path(r.entries[0].preview).is_file()


def test_header_length_ending_in_0x80_is_not_a_pickle(tmp_path):
    meta = {"pad": ""}
    p = tmp_path / "a.safetensors"
    for pad in range(400):
        meta["pad"] = "x" * pad
        make_lora(p, "kohya", 4, layers=1, metadata=meta)
        if p.read_bytes()[0] == 0x80:
            break
    assert p.read_bytes()[0] == 0x80 and p.read_bytes()[8:9] == b"{"
    e = scan(tmp_path)[0]["a.safetensors"]
    assert e.status == "ok", e.error
