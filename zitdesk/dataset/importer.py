"""Import files, folders and ``.zip`` archives into a managed dataset folder.

Sources are only ever opened for reading. For each image the caption sidecar beside it comes
along (``name.txt``, else ``name.caption``; a ``.txt`` wins when both exist and the report says
so). Caption bytes are copied exactly when they are UTF-8 (BOM and CRLF kept); other encodings
are decoded as Windows-1252 and written as UTF-8 (reported). A ``.caption`` becomes ``.txt``.

Image rules (kept vs converted vs rejected) are in :mod:`zitdesk.dataset.images`. Names:

* Folders are walked recursively (hidden files and folders skipped) and flattened.
* A name that is taken in the target, by an image *or* a caption with the same stem (two images
  with one stem would share one caption), gets ``-2``, ``-3``… before the extension. Nothing in
  the target is ever overwritten: files are linked into place, which fails if the name exists.
* Characters Windows forbids (``<>:"/\\|?*`` and control characters) become ``_``; Unicode and
  spaces are kept.
* An image whose bytes and caption are both already in the dataset is skipped ("already in the
  dataset"), so running the same import twice adds nothing.

Archive entries whose path is absolute or contains ``..`` are rejected (never extracted anywhere:
entries are read into memory and named by their base name only); so are links, entries larger
than ``max_file_bytes`` and nested archives.

Work is spread over a thread pool (Pillow and hashlib release the GIL); results are written in
source order, so names are deterministic. Thumbnails go to the shared thumbnail cache and the
hashes into ``.zitdesk/index.json``, so opening the dataset afterwards costs no decoding.
"""

from __future__ import annotations

import os
import re
import stat
import zipfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from zitdesk.dataset.captions import BOM, decode_caption
from zitdesk.dataset.images import DEFAULT_MAX_PIXELS, ImageRejected, Prepared, prepare, store_thumb
from zitdesk.dataset.store import CAPTION_EXT, META_DIR, merge_index_entries
from zitdesk.errors import RequestError
from zitdesk.io import create_temp, fsync_dir
from zitdesk.train.dataset import IMAGE_EXTS

CAPTION_EXTS = (".txt", ".caption")
DEFAULT_MAX_FILE_BYTES = 512 * 1024 * 1024
_FORBIDDEN = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
_ARCHIVE_EXTS = (".zip",)


@dataclass
class Imported:
    source: str
    image: str
    caption: str | None = None
    caption_source: str | None = None
    converted: str = ""
    renamed_from: str = ""
    width: int = 0
    height: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class Skipped:
    source: str
    reason: str


@dataclass
class ImportReport:
    target: str
    imported: list[Imported] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    cancelled: bool = False

    def to_json(self) -> dict:
        return {
            "target": self.target,
            "imported": [asdict(x) for x in self.imported],
            "skipped": [asdict(x) for x in self.skipped],
            "counts": {
                "imported": len(self.imported),
                "skipped": len(self.skipped),
                "with_caption": sum(1 for x in self.imported if x.caption),
                "converted": sum(1 for x in self.imported if x.converted),
                "renamed": sum(1 for x in self.imported if x.renamed_from),
            },
            "cancelled": self.cancelled,
        }


# --- collecting candidates ---------------------------------------------------------------------

@dataclass
class _Candidate:
    label: str                       # shown in the report: a path, or "archive.zip!dir/a.png"
    stem: str
    ext: str
    read: Callable[[], bytes]
    size: int
    captions: list[tuple[str, Callable[[], bytes]]] = field(default_factory=list)


def _file_reader(path: Path) -> Callable[[], bytes]:
    return lambda: path.read_bytes()


def _group_caption(cands: dict[tuple[str, str], _Candidate],
                   caps: dict[tuple[str, str], list[tuple[str, str, Callable[[], bytes]]]],
                   skipped: list[Skipped]) -> None:
    """Attach caption sidecars to their images; captions without an image are reported."""
    for key, found in caps.items():
        cand = cands.get(key)
        if cand is None:
            for label, _ext, _r in found:
                skipped.append(Skipped(label, "caption file without an image of the same name"))
            continue
        found.sort(key=lambda f: CAPTION_EXTS.index(f[1]))
        cand.captions = [(label, r) for label, _ext, r in found]
    for key, cand in cands.items():  # cat.png + cat.jpg + cat.txt: both images get the caption
        if "\x00" in key[1] and not cand.captions:
            base = cands.get((key[0], key[1].split("\x00")[0]))
            if base is not None:
                cand.captions = list(base.captions)


def _walk_folder(root: Path, target: Path, skipped: list[Skipped]) -> Iterator[Path]:
    target_r = target.resolve()
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        keep = []
        for name in sorted(dirnames):
            sub = d / name
            if name.startswith(".") or name == "__MACOSX":
                continue
            try:
                if sub.resolve() == target_r:
                    continue
            except OSError:
                continue
            keep.append(name)
        dirnames[:] = keep
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            yield d / name


def _collect_paths(paths: Sequence[Path], skipped: list[Skipped], max_file_bytes: int,
                   look_beside: bool = False) -> list[_Candidate]:
    given = {str(p) for p in paths}
    cands: dict[tuple[str, str], _Candidate] = {}
    caps: dict[tuple[str, str], list] = {}
    for p in paths:
        ext = p.suffix.lower()
        key = (str(p.parent), p.stem)
        if ext in CAPTION_EXTS:
            caps.setdefault(key, []).append((str(p), ext, _file_reader(p)))
            continue
        try:
            st = p.stat()
        except OSError as exc:
            skipped.append(Skipped(str(p), f"cannot be read ({exc.strerror or exc})"))
            continue
        if not stat.S_ISREG(st.st_mode):
            skipped.append(Skipped(str(p), "not a regular file"))
            continue
        if st.st_size > max_file_bytes:
            skipped.append(Skipped(str(p), f"file too large ({st.st_size / 2**20:.0f} MiB)"))
            continue
        if key in cands:  # cat.png and cat.jpg in one folder: both kept, the second renamed
            key = (key[0], key[1] + "\x00" + p.suffix)
        cands[key] = _Candidate(str(p), p.stem, p.suffix, _file_reader(p), st.st_size)
    if look_beside:  # image files dropped without their captions: take the sidecars on disk
        for key, cand in cands.items():
            if key in caps:
                continue
            src = Path(cand.label)
            for ext in CAPTION_EXTS:
                side = src.with_name(cand.stem + ext)
                if side.is_file() and str(side) not in given:
                    caps.setdefault(key, []).append((str(side), ext, _file_reader(side)))
    _group_caption(cands, caps, skipped)
    return list(cands.values())


def _unsafe_member(name: str) -> str:
    """A reason if an archive member name could escape the target folder, else ''."""
    n = name.replace("\\", "/")
    if n.startswith("/") or re.match(r"^[A-Za-z]:", n):
        return "absolute path in the archive (refused: it would escape the dataset folder)"
    if ".." in PurePosixPath(n).parts:
        return "'..' in the archive path (refused: it would escape the dataset folder)"
    return ""


def _collect_zip(path: Path, skipped: list[Skipped], max_file_bytes: int) -> list[_Candidate]:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        skipped.append(Skipped(str(path), f"not a readable zip archive ({exc})"))
        return []
    cands: dict[tuple[str, str], _Candidate] = {}
    caps: dict[tuple[str, str], list] = {}
    with zf:
        members = zf.infolist()
    for info in members:
        label = f"{path}!{info.filename}"
        if info.is_dir():
            continue
        reason = _unsafe_member(info.filename)
        if reason:
            skipped.append(Skipped(label, reason))
            continue
        pp = PurePosixPath(info.filename.replace("\\", "/"))
        if any(part.startswith(".") or part == "__MACOSX" for part in pp.parts):
            continue
        if stat.S_ISLNK(info.external_attr >> 16):
            skipped.append(Skipped(label, "symbolic link in the archive (refused)"))
            continue
        if info.file_size > max_file_bytes:
            skipped.append(Skipped(label, f"file too large ({info.file_size / 2**20:.0f} MiB)"))
            continue
        if pp.suffix.lower() in _ARCHIVE_EXTS:
            skipped.append(Skipped(label, "archive inside an archive (extract it first)"))
            continue
        reader = _zip_reader(path, info.filename, max_file_bytes)
        key = (str(pp.parent), pp.stem)
        ext = pp.suffix.lower()
        if ext in CAPTION_EXTS:
            caps.setdefault(key, []).append((label, ext, reader))
            continue
        if key in cands:
            key = (key[0], key[1] + "\x00" + pp.suffix)
        cands[key] = _Candidate(label, pp.stem, pp.suffix, reader, info.file_size)
    _group_caption(cands, caps, skipped)
    return list(cands.values())


def _zip_reader(path: Path, member: str, limit: int) -> Callable[[], bytes]:
    def read() -> bytes:
        with zipfile.ZipFile(path) as zf, zf.open(member) as fh:
            data = fh.read(limit + 1)  # the declared size can lie; never read past the limit
        if len(data) > limit:
            raise ImageRejected(f"file too large (over {limit / 2**20:.0f} MiB when unpacked)")
        return data
    return read


def collect(sources: Sequence[str | os.PathLike[str]], target: Path,
            max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> tuple[list[_Candidate], list[Skipped]]:
    """Expand sources (files, folders, zips) into candidates, in a stable order."""
    skipped: list[Skipped] = []
    out: list[_Candidate] = []
    loose: list[Path] = []
    for src in sources:
        p = Path(src)
        if not p.exists():
            skipped.append(Skipped(str(p), "does not exist"))
        elif p.is_dir():
            out += _collect_paths(list(_walk_folder(p, target, skipped)), skipped, max_file_bytes)
        elif p.suffix.lower() in _ARCHIVE_EXTS:
            out += _collect_zip(p, skipped, max_file_bytes)
        else:
            loose.append(p)
    if loose:
        out += _collect_paths(loose, skipped, max_file_bytes, look_beside=True)
    return out, skipped


# --- naming and writing ------------------------------------------------------------------------

def safe_stem(stem: str) -> str:
    s = _FORBIDDEN.sub("_", stem).strip().rstrip(".")
    while s.startswith("."):
        s = s[1:]
    return s or "image"


def _caption_bytes(data: bytes) -> tuple[bytes, str]:
    """Bytes to write for a caption (unchanged when UTF-8) and a note when converted."""
    try:
        (data.removeprefix(BOM)).decode("utf-8")
        return data, ""
    except UnicodeDecodeError:
        text, style = decode_caption(data)
        body = text.replace("\n", "\r\n") if style.crlf else text
        return body.encode("utf-8"), "caption was not UTF-8: read as Windows-1252, saved as UTF-8"


def _place_new(data: bytes, target: Path) -> None:
    """Write ``data`` to a temp file, fsync, and link it to ``target``; fails if it exists."""
    fd, tmp = create_temp(target)  # the one temp-name pattern, with the normal file mode
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, target)  # atomic create-if-absent
        except FileExistsError:
            raise
        except OSError:  # no hard links on this file system (FAT, some network shares)
            if target.exists():
                raise FileExistsError(str(target)) from None
            os.replace(tmp, target)
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass


class _Names:
    """Stems in use in the target (case-insensitive, so Windows/macOS behave like Linux)."""

    def __init__(self, target: Path) -> None:
        self.used: set[str] = set()
        for name in os.listdir(target):
            self.used.add(name.lower())
            p = Path(name)
            if p.suffix.lower() in IMAGE_EXTS + CAPTION_EXTS or p.suffix.lower() in (".gif", ".tif", ".tiff"):
                self.used.add("stem:" + p.stem.lower())

    def claim(self, stem: str, ext: str) -> str:
        base = safe_stem(stem)
        cand, n = base, 1
        while ("stem:" + cand.lower()) in self.used or (cand + ext).lower() in self.used \
                or (cand + CAPTION_EXT).lower() in self.used:
            n += 1
            cand = f"{base}-{n}"
        self.used.add("stem:" + cand.lower())
        self.used.add((cand + ext).lower())
        self.used.add((cand + CAPTION_EXT).lower())
        return cand


def _work(cand: _Candidate, max_pixels: int) -> tuple[Prepared | None, str, bytes | None, str, str]:
    """Worker: read + prepare the image and pick the caption. Returns
    (prepared, rejection reason, caption bytes, caption source, caption note)."""
    try:
        data = cand.read()
    except ImageRejected as exc:
        return None, str(exc), None, "", ""
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror or exc})", None, "", ""
    try:
        prep = prepare(data, source_ext=cand.ext, max_pixels=max_pixels)
    except ImageRejected as exc:
        return None, str(exc), None, "", ""
    cap, cap_src, note = None, "", ""
    if cand.captions:
        label, reader = cand.captions[0]
        try:
            cap, note = _caption_bytes(reader())
            cap_src = label
        except (OSError, ImageRejected) as exc:
            note = f"caption {label} cannot be read ({exc}); imported without it"
        if len(cand.captions) > 1:
            used = Path(label.split("!")[-1]).name
            note = "; ".join(x for x in (note, f"{len(cand.captions)} caption files; {used} used")
                             if x)
    return prep, "", cap, cap_src, note


def import_sources(
    sources: Sequence[str | os.PathLike[str]],
    target: str | os.PathLike[str],
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    workers: int | None = None,
    thumb_cache: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> ImportReport:
    """Copy ``sources`` into the dataset folder ``target`` (created if needed); see module doc.

    ``progress(done, total)`` is called from this thread; ``cancel()`` is polled between files
    (files already written stay, and the report lists them). Raises :class:`RequestError` if the
    target is unusable.
    """
    tgt = Path(target)
    if tgt.exists() and not tgt.is_dir():
        raise RequestError(f"The import target {tgt} is a file, not a folder.")
    for s in sources:
        sp = Path(s)
        if sp.is_dir() and sp.resolve() == tgt.resolve():
            raise RequestError(f"{sp} is the dataset folder itself; import from another folder.")
    tgt.mkdir(parents=True, exist_ok=True)
    report = ImportReport(str(tgt))
    cands, skipped = collect(sources, tgt, max_file_bytes)
    report.skipped.extend(skipped)
    names = _Names(tgt)
    known = _known_content(tgt)
    index_entries: dict[str, dict] = {}
    n_workers = workers or max(3, min(8, (os.cpu_count() or 2) + 1))  # + the writer's I/O waits
    window = n_workers * 3
    done = 0
    if progress:
        progress(0, len(cands))
    with ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="zitdesk-import") as pool:
        futures: list[tuple[_Candidate, Future]] = []
        it = iter(cands)
        for c in it:
            futures.append((c, pool.submit(_work, c, max_pixels)))
            if len(futures) >= window:
                break
        while futures:
            cand, fut = futures.pop(0)
            if cancel is not None and cancel():
                report.cancelled = True
                for _c, f in futures:
                    f.cancel()
                break
            nxt = next(it, None)
            if nxt is not None:
                futures.append((nxt, pool.submit(_work, nxt, max_pixels)))
            prep, reason, cap, cap_src, note = fut.result()
            done += 1
            if prep is None:
                report.skipped.append(Skipped(cand.label, reason))
            else:
                _write_one(cand, prep, cap, cap_src, note, tgt, names, known, report,
                           index_entries, thumb_cache)
            if progress:
                progress(done, len(cands))
    if report.imported:
        fsync_dir(tgt)
        merge_index_entries(tgt, index_entries)
    return report


def _known_content(tgt: Path) -> dict[str, tuple[str, bytes | None]]:
    """sha256 → (image name, caption bytes) for images already in the target (from the index)."""
    import json

    try:
        images = json.loads((tgt / META_DIR / "index.json").read_text("utf-8"))["images"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    out: dict[str, tuple[str, bytes | None]] = {}
    for name, e in images.items():
        sha = e.get("sha256") if isinstance(e, dict) else None
        p = tgt / name
        if not sha or not p.is_file():
            continue
        try:
            st = p.stat()
        except OSError:
            continue
        if st.st_size != e.get("size") or st.st_mtime_ns != e.get("mtime_ns"):
            continue
        cap_path = p.with_suffix(CAPTION_EXT)
        try:
            cap = cap_path.read_bytes()
        except OSError:
            cap = None
        out[sha] = (name, cap)
    return out


def _write_one(cand: _Candidate, prep: Prepared, cap: bytes | None, cap_src: str, note: str,
               tgt: Path, names: _Names, known: dict, report: ImportReport,
               index_entries: dict, thumb_cache: Path | None) -> None:
    prev = known.get(prep.sha256)
    if prev is not None and prev[1] == cap:
        report.skipped.append(Skipped(cand.label, f"already in the dataset as {prev[0]} "
                                                  "(same image and caption)"))
        return
    stem = names.claim(cand.stem, prep.ext)
    image_name = stem + prep.ext
    try:
        _place_new(prep.data, tgt / image_name)
    except FileExistsError:  # appeared meanwhile (another program): take the next name
        stem = names.claim(cand.stem, prep.ext)
        image_name = stem + prep.ext
        _place_new(prep.data, tgt / image_name)
    except OSError as exc:
        report.skipped.append(Skipped(cand.label, f"cannot be written ({exc.strerror or exc})"))
        return
    rec = Imported(cand.label, image_name, width=prep.width, height=prep.height,
                   converted=prep.converted, notes=list(prep.notes))
    if stem != cand.stem:
        rec.renamed_from = cand.stem + cand.ext
    if cap is not None:
        cap_name = stem + CAPTION_EXT
        try:
            _place_new(cap, tgt / cap_name)
            rec.caption, rec.caption_source = cap_name, cap_src
        except OSError as exc:
            rec.notes.append(f"caption not written ({exc})")
    if note:
        rec.notes.append(note)
    report.imported.append(rec)
    known[prep.sha256] = (image_name, cap)
    st = (tgt / image_name).stat()
    index_entries[image_name] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns,
                                 "w": prep.width, "h": prep.height, "sha256": prep.sha256,
                                 "phash": f"{prep.phash:016x}"}
    try:
        store_thumb(prep.sha256, prep.thumb_jpeg, thumb_cache)
    except OSError:
        pass
