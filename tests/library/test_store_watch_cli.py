"""User store (favourites/notes/rating/previews/folders), folder watcher, auto roots and the
``zitdesk lora scan`` command."""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path

import pytest

from tests.support.samples import make_lora, png_bytes
from zitdesk.library.store import LibraryStore
from zitdesk.library.watcher import FolderWatcher

# -------------------------------------------------------------------------------------------
# Store
# -------------------------------------------------------------------------------------------


def test_store_persists_and_never_touches_the_lora(tmp_path):
    lora = make_lora(tmp_path / "a.safetensors", "kohya", 4, layers=1)
    before = lora.read_bytes()
    s = LibraryStore(tmp_path / "store" / "library.json")
    s.set_favourite(str(lora), True)
    s.set_rating(str(lora), 9)  # clamped
    s.set_notes(str(lora), "great at 0.8")
    s.add_folder(str(tmp_path))
    again = LibraryStore(tmp_path / "store" / "library.json")
    rec = again.get(str(lora))
    assert (rec.favourite, rec.rating, rec.notes) == (True, 5, "great at 0.8")
    assert again.favourites() == {str(lora)}
    assert again.folders == [str(tmp_path.resolve())]
    assert lora.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.safetensors", "store"]


def test_store_tolerates_damage(tmp_path):
    path = tmp_path / "library.json"
    path.write_text("{broken")
    s = LibraryStore(path)
    assert s.records() == {} and (tmp_path / "library.json.bak").read_text() == "{broken"
    path.write_text(
        json.dumps(
            {
                "items": {"/x": {"favourite": "yes", "rating": 3, "notes": 5}, "/y": "junk"},
                "folders": [1, "/f"],
            }
        )
    )
    s = LibraryStore(path)
    assert s.get("/x").rating == 3 and not s.get("/x").favourite and s.get("/x").notes == ""
    assert s.folders == ["/f"]


def test_store_moves_and_adopts_by_hash(tmp_path):
    s = LibraryStore(tmp_path / "library.json")
    s.update("/old/a.safetensors", favourite=True, sha256="ab" * 32)
    assert s.move("/old/a.safetensors", "/new/a.safetensors")
    assert s.get("/new/a.safetensors").favourite and s.get("/old/a.safetensors").is_empty
    assert s.adopt_by_hash("/newer/b.safetensors", "ab" * 32, existing=set())
    assert s.get("/newer/b.safetensors").favourite


def test_set_preview_from_gallery_image(tmp_path):
    from PIL import Image

    img = tmp_path / "gallery.png"
    Image.new("RGB", (1600, 900), (200, 10, 10)).save(img)
    s = LibraryStore(tmp_path / "data" / "library.json")
    p = s.set_preview_from_image("/loras/a.safetensors", img)
    assert p.is_file() and p.parent == s.previews_dir()
    with Image.open(p) as im:
        assert max(im.size) == 512
    img.unlink()  # the copy survives the gallery image
    assert Path(s.get("/loras/a.safetensors").preview).is_file()
    p2 = s.set_preview_from_image("/loras/a.safetensors", _png(tmp_path / "g2.png"))
    assert not p.exists() and p2.is_file()  # the old copy is cleaned up
    with pytest.raises(OSError):
        s.set_preview_from_image("/loras/a.safetensors", tmp_path / "missing.png")


def _png(path: Path) -> Path:
    path.write_bytes(png_bytes(16, 16))
    return path


# -------------------------------------------------------------------------------------------
# Watcher
# -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["polling", "watchdog"])
def test_watcher_reports_new_moved_deleted(tmp_path, backend):
    got: list[list[str]] = []
    event = threading.Event()

    def cb(paths):
        got.append(paths)
        event.set()

    w = FolderWatcher(cb, debounce_s=0.1, poll_interval_s=0.1, backend=backend)
    w.start([str(tmp_path)])
    try:
        assert w.backend == backend
        (tmp_path / "ignored.txt").write_text("x")
        make_lora(tmp_path / "sub" / "new.safetensors", "kohya", 4, layers=1)
        assert event.wait(60), "no change reported"
        assert any(p.endswith("new.safetensors") for batch in got for p in batch)
        assert not any(p.endswith("ignored.txt") for batch in got for p in batch)
        event.clear()
        got.clear()
        (tmp_path / "sub" / "new.safetensors").rename(tmp_path / "moved.safetensors")
        assert event.wait(60)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
            p.endswith("moved.safetensors") for b in got for p in b
        ):
            time.sleep(0.05)
        assert any(p.endswith("moved.safetensors") for b in got for p in b)
    finally:
        w.stop()
    assert not w.running


# -------------------------------------------------------------------------------------------
# Roots
# -------------------------------------------------------------------------------------------


def test_auto_roots(tmp_path, monkeypatch, _isolated_home):
    from zitdesk.library.roots import auto_roots, merge_roots, zitdesk_lora_dir

    home = tmp_path / "home"
    (home / "ComfyUI" / "models" / "loras").mkdir(parents=True)
    (home / "stable-diffusion-webui-forge" / "models" / "Lora").mkdir(parents=True)
    extra = tmp_path / "extra"
    extra.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    monkeypatch.setenv("ZITDESK_LORA_DIRS", str(extra))
    zitdesk_lora_dir().mkdir(parents=True)
    roots = auto_roots()
    origins = {(r.origin, Path(r.path).name) for r in roots}
    assert ("comfyui", "loras") in origins and ("forge", "Lora") in origins
    assert ("zitdesk", "loras") in origins and ("env", "extra") in origins
    merged = merge_roots([str(home / "ComfyUI")])
    assert merged[0].origin == "user"
    assert not any(r.origin == "comfyui" for r in merged)  # inside a user folder already


# -------------------------------------------------------------------------------------------
# CLI
# -------------------------------------------------------------------------------------------


def _run_cli(argv: list[str]) -> int:
    from zitdesk.cli.lora import add_lora_scan_parser

    p = argparse.ArgumentParser(prog="zitdesk")
    sub = p.add_subparsers(dest="command", required=True)
    lo = sub.add_parser("lora")
    lsub = lo.add_subparsers(dest="lora_command", required=True)
    add_lora_scan_parser(lsub)
    args = p.parse_args(argv)
    return args.func(args)


def test_cli_scan_json(tmp_path, capsys):
    lib = tmp_path / "lib"
    make_lora(lib / "a.safetensors", "kohya", 4, layers=1)
    make_lora(lib / "b.safetensors", "sdxl", 4)
    (lib / "c.ckpt").write_bytes(b"PK")
    assert _run_cli(["lora", "scan", str(lib), "--json", "--hash"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["count"] == 3 and doc["compatible"] == 1 and doc["unsupported"] == 1
    by = {e["file_name"]: e for e in doc["entries"]}
    assert (
        by["a.safetensors"]["arch"] == "zimage" and by["a.safetensors"]["coverage_badge"] == "8/8"
    )
    assert by["b.safetensors"]["arch"] == "sdxl" and not by["b.safetensors"]["compatible"]
    assert len(by["a.safetensors"]["sha256"]) == 64
    # second run: from the cache
    assert _run_cli(["lora", "scan", str(lib), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["reused"] == 3 and doc["inspected"] == 0
    assert _run_cli(["lora", "scan", str(lib)]) == 0
    out = capsys.readouterr()
    assert "[✓] a.safetensors: Z-Image, kohya, rank 4, 8/8 modules" in out.out
    assert "SDXL" in out.out and "3 files" in out.err


def test_cli_missing_folder(tmp_path):
    from zitdesk.errors import ZitdeskError

    with pytest.raises(ZitdeskError, match="does not exist"):
        _run_cli(["lora", "scan", str(tmp_path / "nope"), "--json"])


# -------------------------------------------------------------------------------------------
# Writing the A1111 sidecar, prompt merging
# -------------------------------------------------------------------------------------------


def test_write_a1111_json_merges_and_never_touches_the_lora(tmp_path):
    from zitdesk.library.sidecars import read_sidecar, write_a1111_json

    lora = make_lora(tmp_path / "a.safetensors", "kohya", 4, layers=1)
    before = lora.read_bytes()
    (tmp_path / "a.json").write_text(json.dumps({"sd version": "SDXL", "description": "keep me"}))
    target = write_a1111_json(lora, activation_text="sks, red hat", preferred_weight=0.8, notes="n")
    doc = json.loads(target.read_text())
    assert doc == {
        "sd version": "SDXL",
        "description": "keep me",
        "activation text": "sks, red hat",
        "preferred weight": 0.8,
        "notes": "n",
    }
    assert lora.read_bytes() == before
    sc = read_sidecar(target, "a1111")
    assert sc.trigger_words == ["sks, red hat"] and sc.preferred_weight == 0.8
    (tmp_path / "a.json").write_text("[1]")
    with pytest.raises(ValueError, match="not a JSON object"):
        write_a1111_json(lora, notes="x")


def test_merge_into_prompt():
    from zitdesk.library import merge_into_prompt

    assert merge_into_prompt("a cat on a hat", ["sks", "Cat", "sks", " "]) == "sks, a cat on a hat"
    assert merge_into_prompt("", ["sks"]) == "sks"
    assert merge_into_prompt("SKS style", ("sks",)) == "SKS style"
