"""Fault injection on the dataset writers: a full disk, read-only folders, SIGKILL at random
writes of every writer (captions, journal, index, snapshots, import), bad archives of random
structure. Each check counts its trials and the files it verified; nothing acknowledged may be
lost (``lost == 0``), nothing may raise where the user would see a traceback.

Seeded (``ZITDESK_FAULT_SEED``, default 12), bounded (a few seconds each on two cores).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from zitdesk.dataset.captions import read_caption_file
from zitdesk.dataset.fsnames import SaveFailed
from zitdesk.dataset.history import Entry, History
from zitdesk.dataset.importer import import_sources
from zitdesk.dataset.store import Dataset
from zitdesk.errors import RequestError
from zitdesk.io import is_temp_name

SEED = int(os.environ.get("ZITDESK_FAULT_SEED", "12"))
pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX file semantics"),
]


def _dataset(folder: Path, png, n: int = 4) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"img{i}.png").write_bytes(png(500 + i))
        (folder / f"img{i}.txt").write_text(f"caption {i}", encoding="utf-8")
    return folder


def _text(v: int, name: str) -> str:
    n = 40 + (v * 7919 + len(name) * 104729) % 3000
    return f"v{v}|{name}|" + ("x" * n) + "|end"


def _temps(folder: Path) -> list[str]:
    out = []
    for d in (folder, folder / ".zitdesk", folder / ".zitdesk" / "snapshots"):
        if d.is_dir():
            out += [p.name for p in d.iterdir() if is_temp_name(p.name)]
    return out


def _one_sentence(msg: str) -> bool:
    return bool(msg) and "\n" not in msg and "Traceback" not in msg and "[Errno" not in msg


# --- a full disk, injected -------------------------------------------------------------------


class _Model:
    """What the user did, as the files must show it once the disk has room again."""

    def __init__(self, ds: Dataset) -> None:
        self.captions = {it.name: it.caption for it in ds.items}
        self.flags = {it.name: it.flagged for it in ds.items}
        self.labels: list[str] = []


def _random_edits(rng: random.Random, ds: Dataset, h: History, model: _Model, step: int) -> None:
    for _ in range(rng.randint(1, 3)):
        it = rng.choice(ds.items)
        kind = rng.random()
        if kind < 0.6:
            new = _text(step * 10 + rng.randint(0, 9), it.name) + rng.choice(["", "\r\n", "\r"])
            e = Entry.new(f"edit {step} {it.name}", [(it.name, it.caption, new)])
            ds.apply_changes(e.changes)
            h.record_do(e)
            model.captions[it.name] = it.caption
            model.labels.append(e.label)
        elif kind < 0.8:
            ds.set_flagged(it, not it.flagged)
            model.flags[it.name] = it.flagged
        else:
            h.snapshot(ds.captions(), f"bulk {step}")


def _flush_all(ds: Dataset, h: History) -> list[str]:
    """What the app's autosave does; returns the error sentences."""
    errors = []
    try:
        h.flush()
    except OSError as exc:
        assert isinstance(exc, SaveFailed), repr(exc)
        errors.append(str(exc))
    rep = ds.flush()
    errors += rep.errors
    try:
        ds.save_index()
    except OSError as exc:
        assert isinstance(exc, SaveFailed), repr(exc)
        errors.append(str(exc))
    return errors


def _verify(folder: Path, model: _Model, counts) -> int:
    """Files checked against the model; adds what differs to ``counts.lost``."""
    lost = 0
    ds = Dataset.open(folder)
    for it in ds.items:
        lost += it.caption != model.captions[it.name]
        lost += it.flagged != model.flags[it.name]
    rep = History(ds.meta_dir).load()
    labels = [e.label for e in rep.done]
    lost += sum(1 for lab in model.labels if lab not in labels)
    lost += labels != [lab for lab in model.labels if lab in labels]  # order kept
    lost += rep.bad_lines
    for snap in History(ds.meta_dir).list_snapshots():
        try:
            json.loads(snap.read_text("utf-8"))
        except ValueError:
            lost += 1
    lost += len(_temps(folder))
    counts.lost += lost
    counts.files += len(ds.items) + 2 + len(History(ds.meta_dir).list_snapshots())
    return lost


def test_full_disk_at_random_writes_loses_nothing(tmp_path, png, faulty_disk, counts):
    rng = random.Random(SEED)
    for trial in range(16):
        folder = _dataset(tmp_path / f"t{trial}", png)
        ds = Dataset.open(folder)
        h = History(ds.meta_dir)
        h.load()
        model = _Model(ds)
        disk = faulty_disk(rng, p=rng.choice([0.1, 0.3, 0.6]))
        for step in range(8):
            _random_edits(rng, ds, h, model, step)
            for msg in _flush_all(ds, h):
                assert _one_sentence(msg), msg
            if rng.random() < 0.3:  # opening while the disk is full never raises
                disk.full = True
                Dataset.open(folder)
                History(ds.meta_dir).load()
                disk.full = False
        disk.off = True
        assert _flush_all(ds, h) == []
        assert not h.pending and not ds.pending
        assert _verify(folder, model, counts) == 0, trial
        counts.trials += 1


def test_full_disk_during_import_then_retry_loses_nothing(tmp_path, png, faulty_disk, counts):
    rng = random.Random(SEED + 9)
    src = tmp_path / "src"
    src.mkdir()
    want = {}
    for i in range(6):
        data = png(900 + i)
        (src / f"s{i}.png").write_bytes(data)
        (src / f"s{i}.txt").write_text(f"scap {i}")
        want[hashlib.sha256(data).hexdigest()] = f"scap {i}"
    for trial in range(8):
        target = tmp_path / f"imp{trial}"
        disk = faulty_disk(rng, p=rng.choice([0.05, 0.2, 0.5]))
        rep = import_sources([src], target, workers=2, thumb_cache=tmp_path / "thumbs")
        assert len(rep.imported) + len(rep.skipped) == 6
        assert all(_one_sentence(s.reason) for s in rep.skipped), rep.skipped
        assert all(_one_sentence(e) for e in rep.errors), rep.errors
        disk.off = True
        Dataset.open(target)
        rep = import_sources([src], target, workers=2, thumb_cache=tmp_path / "thumbs")
        assert rep.errors == []
        got, lost = {}, 0
        for p in target.glob("*.png"):
            sha = hashlib.sha256(p.read_bytes()).hexdigest()
            lost += sha in got or sha not in want  # duplicated, or not a source
            cap = read_caption_file(p.with_suffix(".txt"))
            got[sha] = cap.text if cap else None
        lost += sum(1 for sha, cap in want.items() if got.get(sha) != cap)
        idx = json.loads((target / ".zitdesk" / "index.json").read_text("utf-8"))["images"]
        lost += set(idx) != {p.name for p in target.glob("*.png")}
        lost += len(_temps(target))
        counts.trials += 1
        counts.files += len(got) + 1
        counts.lost += lost
        assert lost == 0, (trial, sorted(os.listdir(target)))


def test_full_disk_message_says_so(tmp_path, png, faulty_disk):
    folder = _dataset(tmp_path / "ds", png)
    ds = Dataset.open(folder)
    h = History(ds.meta_dir)
    disk = faulty_disk(random.Random(SEED))
    disk.full = True
    h.record_do(Entry.new("x", [("img0.png", "caption 0", "y")]))
    ds.apply_changes([("img0.png", "caption 0", "y")])
    errors = _flush_all(ds, h)
    assert len(errors) == 3 and all("disk is full" in e for e in errors), errors


# --- a full disk, real (a 1 MiB tmpfs) --------------------------------------------------------


@contextlib.contextmanager
def _mounted_tmpfs(where: Path, size: str):
    where.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or r.returncode})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _fill(folder: Path) -> Path:
    filler = folder / "filler.bin"
    with open(filler, "wb", buffering=0) as fh:
        for size in (65536, 4096, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    fh.write(b"\0" * size)
    return filler


def test_full_tmpfs_loses_nothing(tmp_path, png, counts):
    with _mounted_tmpfs(tmp_path / "mnt", "1m") as mnt:
        rng = random.Random(SEED + 1)
        folder = _dataset(mnt / "ds", png)
        ds = Dataset.open(folder)
        h = History(ds.meta_dir)
        model = _Model(ds)
        filler = _fill(mnt)
        for step in range(6):
            _random_edits(rng, ds, h, model, step)
            errors = _flush_all(ds, h)
            assert all(_one_sentence(m) for m in errors), errors
            Dataset.open(folder)
            History(ds.meta_dir).load()
        assert ds.pending or h.pending  # the disk really was full
        filler.unlink()
        assert _flush_all(ds, h) == []
        assert _verify(folder, model, counts) == 0
        counts.trials += 1


# --- read-only folders ---------------------------------------------------------------------


@contextlib.contextmanager
def _read_only(folder: Path):
    """Make ``folder`` (and what is in it) read-only for this process; yields, then undoes."""
    if os.geteuid() != 0:
        dirs = [folder, *[p for p in folder.rglob("*") if p.is_dir()]]
        for d in dirs:
            d.chmod(0o555)
        try:
            yield "chmod"
        finally:
            for d in dirs:
                d.chmod(0o755)
        return
    # root ignores permissions: a read-only bind mount of the folder onto itself
    r = subprocess.run(
        ["mount", "--bind", str(folder), str(folder)], capture_output=True, text=True
    )
    if r.returncode != 0:
        pytest.skip(f"running as root and cannot bind-mount read-only ({r.stderr.strip()})")
    r = subprocess.run(
        ["mount", "-o", "remount,bind,ro", str(folder)], capture_output=True, text=True
    )
    if r.returncode != 0:
        subprocess.run(["umount", str(folder)], capture_output=True)
        pytest.skip(f"running as root and cannot remount read-only ({r.stderr.strip()})")
    try:
        yield "ro mount"
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_read_only_folder_loses_nothing(tmp_path, png, counts):
    rng = random.Random(SEED + 2)
    folder = _dataset(tmp_path / "ds", png)
    ds = Dataset.open(folder)
    h = History(ds.meta_dir)
    (ds.meta_dir).mkdir(exist_ok=True)
    (ds.meta_dir / "snapshots").mkdir(exist_ok=True)
    model = _Model(ds)
    src = tmp_path / "src"
    src.mkdir()
    (src / "new.png").write_bytes(png(9))
    with _read_only(folder):
        for step in range(4):
            _random_edits(rng, ds, h, model, step)
            errors = _flush_all(ds, h)
            assert errors and all(_one_sentence(m) for m in errors), errors
            Dataset.open(folder)
            History(ds.meta_dir).load()
        try:
            rep = import_sources([src], folder, thumb_cache=tmp_path / "t")
        except RequestError as exc:
            assert _one_sentence(str(exc))
        else:
            assert rep.imported == [] and len(rep.skipped) == 1
            assert _one_sentence(rep.skipped[0].reason)
    assert _flush_all(ds, h) == []
    assert _verify(folder, model, counts) == 0
    counts.trials += 1


# --- SIGKILL at random points of each writer ------------------------------------------------


def _kill_trials(killed_run, scenario, verify, rng: random.Random, n: int, counts) -> None:
    total = killed_run(scenario(None), None).calls  # calibrate: how many write calls
    assert total > 0
    landed = 0
    for _ in range(n):
        at = rng.randint(1, total)
        res = killed_run(scenario(at), at)
        landed += res.killed
        lost, files = verify(res)
        counts.trials += 1
        counts.files += files
        counts.lost += lost
        assert lost == 0, (at, res.acks[-3:])
    assert landed >= n // 2


def test_sigkill_caption_writer(tmp_path, png, killed_run, counts):
    rng = random.Random(SEED + 3)
    state = {}

    def scenario(at):
        folder = tmp_path / f"cap{at}"
        shutil.rmtree(folder, ignore_errors=True)
        _dataset(folder, png)
        state["folder"] = folder

        def run(ack):
            ds = Dataset.open(folder)
            for v in range(1, 5):
                for it in ds.items:
                    ds.set_caption(it, _text(v, it.name))
                assert not ds.flush().errors
                ack(str(v))

        return run

    def verify(res):
        folder = state["folder"]
        acked = int(res.acks[-1]) if res.acks else 0
        ds = Dataset.open(folder)
        lost = 0
        for it in ds.items:
            ok = {_text(v, it.name) for v in (acked, acked + 1) if v > 0}
            if acked == 0:
                ok.add(f"caption {it.name[3]}")
            lost += it.caption not in ok
        lost += len(_temps(folder))
        return lost, len(ds.items)

    _kill_trials(killed_run, scenario, verify, rng, 8, counts)


def test_sigkill_journal_writer(tmp_path, killed_run, counts):
    rng = random.Random(SEED + 4)
    state = {}

    def scenario(at):
        meta = tmp_path / f"j{at}" / ".zitdesk"
        shutil.rmtree(meta.parent, ignore_errors=True)
        state["meta"] = meta

        def run(ack):
            h = History(meta)
            h.load()
            for i in range(8):
                e = Entry(f"id{i}", f"e{i}", [("a.png", str(i), str(i + 1) + "\r\n")], 1.0)
                h.record_do(e)
                if i % 3 == 2:
                    h.record_undo(e.id)
                    h.record_redo(e.id)
                h.flush()
                ack(str(i))

        return run

    def verify(res):
        meta = state["meta"]
        acked = int(res.acks[-1]) if res.acks else -1
        rep = History(meta).load()
        labels = [e.label for e in rep.done]
        want = [f"e{i}" for i in range(acked + 1)]
        lost = 0 if labels in (want, [*want, f"e{acked + 1}"]) else 1
        h = History(meta)  # the next append is never glued to a fragment
        h.record_do(Entry("z", "after", [("a.png", "x", "y")], 1.0))
        h.flush()
        rep2 = History(meta).load()
        lost += [e.label for e in rep2.done] != [*labels, "after"]
        lost += rep2.bad_lines
        return lost, 1

    _kill_trials(killed_run, scenario, verify, rng, 8, counts)


def test_sigkill_index_writer(tmp_path, png, killed_run, counts):
    rng = random.Random(SEED + 5)
    state = {}

    def flags_at(v, names):
        return {n: bool((v >> i) & 1) for i, n in enumerate(names)}

    def scenario(at):
        folder = tmp_path / f"idx{at}"
        shutil.rmtree(folder, ignore_errors=True)
        _dataset(folder, png)
        state["folder"] = folder

        def run(ack):
            ds = Dataset.open(folder)
            names = [it.name for it in ds.items]
            for v in range(1, 6):
                for it in ds.items:
                    ds.set_flagged(it, flags_at(v, names)[it.name])
                ds.save_index(force=True)
                ack(str(v))

        return run

    def verify(res):
        folder = state["folder"]
        acked = int(res.acks[-1]) if res.acks else 0
        idx = folder / ".zitdesk" / "index.json"
        lost = 0
        if acked:
            json.loads(idx.read_text("utf-8"))  # never torn
        ds = Dataset.open(folder)
        names = [it.name for it in ds.items]
        got = {it.name: it.flagged for it in ds.items}
        ok = [flags_at(v, names) for v in (acked, acked + 1)]
        lost += got not in ok
        if got not in ok:
            print("index", acked, got, ok, sorted(p.name for p in (folder / ".zitdesk").iterdir()))
        lost += (folder / ".zitdesk" / "index.json.bad").exists()
        lost += len(_temps(folder))
        return lost, 1

    _kill_trials(killed_run, scenario, verify, rng, 8, counts)


def test_sigkill_snapshot_writer(tmp_path, killed_run, counts):
    rng = random.Random(SEED + 6)
    state = {}

    def scenario(at):
        meta = tmp_path / f"s{at}" / ".zitdesk"
        shutil.rmtree(meta.parent, ignore_errors=True)
        state["meta"] = meta

        def run(ack):
            h = History(meta)
            for v in range(5):
                name = h.snapshot({f"i{k}.png": _text(v, str(k)) for k in range(3)}, f"b{v}")
                h.flush()
                ack(f"{v} {name}")

        return run

    def verify(res):
        meta = state["meta"]
        h = History(meta)
        h.load()  # cleans temp files a kill left
        lost = 0
        for line in res.acks:
            v, name = line.split(" ", 1)
            try:
                got = h.read_snapshot(name)
            except (OSError, ValueError):
                lost += 1
                continue
            lost += got != {f"i{k}.png": _text(int(v), str(k)) for k in range(3)}
        snaps = h.list_snapshots()
        for p in snaps:
            try:
                json.loads(p.read_text("utf-8"))
            except ValueError:
                lost += 1
        lost += len(_temps(meta.parent))
        return lost, len(snaps)

    _kill_trials(killed_run, scenario, verify, rng, 8, counts)


def test_sigkill_import(tmp_path, png, killed_run, counts):
    rng = random.Random(SEED + 7)
    src = tmp_path / "src"
    src.mkdir()
    sources = {}
    for i in range(5):
        data = png(700 + i, (20 + i, 14))
        (src / f"p{i}.png").write_bytes(data)
        (src / f"p{i}.txt").write_text(f"cap {i}")
        sources[hashlib.sha256(data).hexdigest()] = f"cap {i}"
    with zipfile.ZipFile(src.parent / "pack.zip", "w") as zf:
        for i in range(3):
            zf.writestr(f"z/q{i}.png", png(800 + i))
            zf.writestr(f"z/q{i}.txt", f"zcap {i}")
    for i in range(3):
        sources[hashlib.sha256(png(800 + i)).hexdigest()] = f"zcap {i}"
    state = {}

    def scenario(at):
        target = tmp_path / f"imp{at}"
        shutil.rmtree(target, ignore_errors=True)
        state["target"] = target

        def run(ack):
            import_sources(
                [src, src.parent / "pack.zip"], target, workers=2, thumb_cache=tmp_path / "thumbs"
            )
            ack("done")

        return run

    def verify(res):
        target = state["target"]
        if target.exists():
            Dataset.open(target)  # cleans temp files
            for p in target.iterdir():  # what a kill left is whole, never torn
                if p.suffix == ".png":
                    assert hashlib.sha256(p.read_bytes()).hexdigest() in sources, p.name
        rep = import_sources(
            [src, src.parent / "pack.zip"], target, workers=2, thumb_cache=tmp_path / "thumbs"
        )
        assert not rep.errors, rep.errors
        got = {}
        lost = 0
        for p in sorted(target.glob("*.png")):
            sha = hashlib.sha256(p.read_bytes()).hexdigest()
            lost += sha in got  # a duplicate (b-2.png)
            cap = read_caption_file(p.with_suffix(".txt"))
            got[sha] = cap.text if cap else None
        lost += sum(1 for sha, cap in sources.items() if got.get(sha) != cap)
        lost += len(_temps(target))
        idx = json.loads((target / ".zitdesk" / "index.json").read_text("utf-8"))["images"]
        lost += set(idx) != {p.name for p in target.glob("*.png")}
        if lost:
            print("DBG", sorted(os.listdir(target)), got, sorted(idx), rep.to_json())
        return lost, len(got) + 1

    _kill_trials(killed_run, scenario, verify, rng, 8, counts)


# --- bad archives of random structure ----------------------------------------------------------


def _random_zip(rng: random.Random, path: Path, png) -> dict[str, bytes]:
    """A zip of good and bad members (and sometimes damage to the whole file); returns the good
    image members that must be imported when the archive itself is not damaged."""
    good: dict[str, bytes] = {}
    plan = []
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(rng.randint(2, 9)):
            kind = rng.choice(
                [
                    "good",
                    "good",
                    "good",
                    "garbage",
                    "truncated",
                    "crc",
                    "method",
                    "enc",
                    "deflate",
                    "size",
                    "evil",
                    "nested",
                    "caption",
                    "dir",
                    "long",
                    "latin1",
                ]
            )
            method = rng.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
            name = f"d{rng.randint(0, 2)}/m{i}.png"
            data = png(rng.randint(0, 10**6), (rng.randint(4, 40), rng.randint(4, 40)))
            if kind == "garbage":
                data = rng.randbytes(rng.randint(0, 3000))
            elif kind == "truncated":
                data = data[: rng.randint(1, len(data) - 1)]
            elif kind == "evil":
                name = rng.choice(["../../escape.png", "/abs.png", "C:/x.png", "a/../../b.png"])
            elif kind == "nested":
                name = f"n{i}.zip"
            elif kind == "caption":
                name = f"d0/m{rng.randint(0, 9)}.txt"
                data = rng.choice([b"a caption", b"\xff\xfe bad", b"\xef\xbb\xbfbom\r\n"])
            elif kind == "dir":
                zf.writestr(f"dir{i}/", b"")
                continue
            elif kind == "long":
                name = "é" * 124 + f"{i}.png"
            elif kind == "latin1":
                info = zipfile.ZipInfo(f"caf{chr(0xE9)}{i}.png")
                zf.writestr(info, data, compress_type=method)
                plan.append((info.filename, kind))
                good[info.filename] = data
                continue
            if kind == "deflate":
                method = zipfile.ZIP_DEFLATED
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=method)
            plan.append((name, kind))
            if kind in ("good", "long"):
                good[name] = data
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        infos = {i.filename: i for i in zf.infolist()}
        off = zf.start_dir
    central = {}
    while raw[off : off + 4] == b"PK\x01\x02":
        n, m, k = (int.from_bytes(raw[off + o : off + o + 2], "little") for o in (28, 30, 32))
        central[raw[off + 46 : off + 46 + n].decode("utf-8", "replace")] = off
        off += 46 + n + m + k
    for name, kind in plan:
        info = infos.get(name)
        cd = central.get(info.orig_filename if info else name)
        if info is None or cd is None:
            continue
        lh = info.header_offset
        if kind == "crc":
            raw[lh + 14] ^= 0x5A
            raw[cd + 16] ^= 0x5A
        elif kind == "method":
            for o in (lh + 8, cd + 10):
                raw[o : o + 2] = rng.choice([77, 98, 7]).to_bytes(2, "little")
        elif kind == "enc":
            raw[lh + 6] |= 1
            raw[cd + 8] |= 1
        elif kind == "deflate" and info.compress_size > 4:
            n = int.from_bytes(raw[lh + 26 : lh + 28], "little")
            m = int.from_bytes(raw[lh + 28 : lh + 30], "little")
            d = lh + 30 + n + m
            raw[d : d + 4] = rng.randbytes(4)
        elif kind == "size":
            lie = rng.choice([info.file_size // 3, info.file_size * 5 + 7, 2**31])
            for o in (lh + 22, cd + 24):
                raw[o : o + 4] = lie.to_bytes(4, "little")
    damaged = rng.random() < 0.25
    if damaged:  # random bytes anywhere
        for _ in range(rng.randint(1, 6)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
    path.write_bytes(bytes(raw))
    return {} if damaged else good


def test_bad_archives_of_random_structure(tmp_path, png, counts):
    rng = random.Random(SEED + 8)
    for trial in range(40):
        z = tmp_path / f"a{trial}.zip"
        good = _random_zip(rng, z, png)
        target = tmp_path / f"ds{trial}"
        rep = import_sources([z], target, workers=2, thumb_cache=tmp_path / "thumbs")
        for s in rep.skipped:
            assert _one_sentence(s.reason) or s.reason, s
        imported = {
            hashlib.sha256((target / x.image).read_bytes()).hexdigest() for x in rep.imported
        }
        lost = sum(1 for data in good.values() if hashlib.sha256(data).hexdigest() not in imported)
        # whatever was imported is in the index, and the names fit
        if rep.imported:
            idx = json.loads((target / ".zitdesk" / "index.json").read_text("utf-8"))["images"]
            lost += sum(1 for x in rep.imported if x.image not in idx)
        lost += sum(1 for x in rep.imported if len(os.fsencode(x.image)) > 255)
        # a retry adds nothing (no b-2.png)
        again = import_sources([z], target, workers=2, thumb_cache=tmp_path / "thumbs")
        lost += len(again.imported)
        counts.trials += 1
        counts.files += len(good) + len(rep.skipped)
        counts.lost += lost
        assert lost == 0, (trial, [(s.source, s.reason) for s in rep.skipped])


def test_zz_summary(counts, capsys):
    with capsys.disabled():
        print("\n" + counts.line())
    assert counts.lost == 0
