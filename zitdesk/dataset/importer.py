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
than ``max_file_bytes`` and nested archives. A member that cannot be read (encrypted, bad CRC,
an unknown compression method, a corrupt stream, a size that lies) is skipped with its reason
like any bad file.

An import is all-or-report: every source ends up imported or in the report's ``skipped`` with a
reason, and the index is written for what was imported even when something fails on the way
(``errors`` says what could not be done). Running it again adds nothing: images already in the
folder are recognised by their content (from the index, else by hashing files of the same size,
e.g. after a killed import); a missing caption is added beside such an image.

Memory: files are read in chunks, and all workers together hold at most ``memory_budget`` bytes
of file data and decoded pixels (one file beyond it when a single file is larger: the one the
writer waits for). A file whose first bytes are no image format is rejected without being read.

Names: a name that would not fit the file system with ``-2`` or the caption's ``.txt`` is
shortened (reported as renamed).

Work is spread over a thread pool (Pillow and hashlib release the GIL); results are written in
source order, so names are deterministic. Thumbnails go to the shared thumbnail cache and the
hashes into ``.zitdesk/index.json``, so opening the dataset afterwards costs no decoding.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
import re
import stat
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from zitdesk.dataset.captions import BOM, decode_caption
from zitdesk.dataset.fsnames import cut_bytes, name_bytes, name_max, os_error_sentence, shown
from zitdesk.dataset.images import DEFAULT_MAX_PIXELS, ImageRejected, Prepared, prepare, store_thumb
from zitdesk.dataset.store import CAPTION_EXT, META_DIR, merge_index_entries
from zitdesk.errors import RequestError
from zitdesk.folder import IMAGE_EXTS
from zitdesk.hashing import sha256_file
from zitdesk.io import create_temp, fsync_dir

log = logging.getLogger(__name__)

CAPTION_EXTS = (".txt", ".caption")
DEFAULT_MAX_FILE_BYTES = 512 * 1024 * 1024
#: File bytes + decoded pixels all import workers may hold at once (see the module doc).
DEFAULT_MEMORY_BUDGET = 384 * 1024 * 1024
MAX_CAPTION_BYTES = 4 * 1024 * 1024
_CHUNK = 1024 * 1024
_SNIFF = 64 * 1024
#: First bytes of the formats :func:`~zitdesk.dataset.images.prepare` accepts.
_MAGIC = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"II+\x00",
    b"MM\x00+",
)
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
    errors: list[str] = field(default_factory=list)  # sentences: what could not be done

    def to_json(self) -> dict:
        return {
            "target": self.target,
            "imported": [asdict(x) for x in self.imported],
            "skipped": [asdict(x) for x in self.skipped],
            "errors": list(self.errors),
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

Opener = Callable[[], "contextlib.AbstractContextManager[IO[bytes]]"]


@dataclass
class _Candidate:
    label: str  # shown in the report: a path, or "archive.zip!dir/a.png"
    stem: str
    ext: str
    open: Opener  # a binary stream of the file's bytes
    size: int  # declared (an archive's can lie)
    captions: list[tuple[str, Opener]] = field(default_factory=list)


def _file_reader(path: Path) -> Opener:
    return lambda: open(path, "rb")


class _ByteBudget:
    """Bytes the import workers hold in memory, together (see the module doc).

    ``take`` waits while the budget is used up, except for the file the writer waits for
    (``head``), which always proceeds: so there is no deadlock, and at most one file beyond the
    budget is in memory. With ``seq=None`` (holders that give back on their own, no writer
    waiting in order) a request proceeds when nothing else is held."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.used = 0
        self.head = 0
        self.closed = False
        self.cond = threading.Condition()

    def take(self, seq: int | None, n: int) -> None:
        with self.cond:
            while (
                self.used + n > self.cap
                and not self.closed
                and (self.used > 0 if seq is None else seq != self.head)
            ):
                self.cond.wait()
            self.used += n

    def give(self, n: int) -> None:
        if n:
            with self.cond:
                self.used -= n
                self.cond.notify_all()

    def set_head(self, seq: int) -> None:
        with self.cond:
            self.head = seq
            self.cond.notify_all()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()


class _Held:
    """What one candidate holds of the budget (given back once it is written)."""

    def __init__(self, budget: _ByteBudget, seq: int) -> None:
        self.budget, self.seq, self.n = budget, seq, 0

    def take(self, n: int) -> None:
        self.budget.take(self.seq, n)
        self.n += n

    def give(self, n: int | None = None) -> None:
        n = self.n if n is None else min(n, self.n)
        self.n -= n
        self.budget.give(n)


def _archive_reason(exc: BaseException) -> str:
    """The report's reason for an archive member that cannot be read."""
    msg = str(exc)
    if isinstance(exc, RuntimeError) and "encrypted" in msg:
        return "encrypted in the archive (a password is needed; extract it with one first)"
    if isinstance(exc, NotImplementedError):
        return f"compressed with a method that cannot be read ({msg or 'unsupported'})"
    if isinstance(exc, zipfile.BadZipFile) and "CRC" in msg:
        return "damaged in the archive (its checksum does not match: bad CRC-32)"
    if isinstance(exc, zlib.error):
        return f"damaged in the archive (corrupt compressed data: {msg})"
    if isinstance(exc, EOFError):
        return "damaged in the archive (its data ends early)"
    if isinstance(exc, OSError):
        return f"cannot be read ({exc.strerror or exc})"
    return f"damaged in the archive ({type(exc).__name__}: {msg})"


def _read_limited(fh: IO[bytes], limit: int, held: _Held, first: bytes = b"") -> bytes:
    """The rest of ``fh`` after ``first``, read in chunks that are taken from the budget; the
    declared size can lie, so never more than ``limit`` bytes."""
    buf = io.BytesIO()
    buf.write(first)
    total = len(first)
    while True:
        want = min(_CHUNK, limit + 1 - total)
        if want <= 0:
            raise ImageRejected(f"file too large (over {limit / 2**20:.0f} MiB when unpacked)")
        held.take(want)
        chunk = fh.read(want)
        held.give(want - len(chunk))
        if not chunk:
            break
        buf.write(chunk)
        total += len(chunk)
    return buf.getvalue()


def _read_image(cand: _Candidate, limit: int, held: _Held) -> bytes:
    """The candidate's bytes, or :class:`ImageRejected`. Bytes that start like no accepted
    format are rejected after the first 64 KiB."""
    try:
        with cand.open() as fh:
            held.take(_SNIFF)
            first = fh.read(_SNIFF)
            held.give(_SNIFF - len(first))
            if not _looks_like_image(first):
                raise ImageRejected(_not_image_reason(first))
            return _read_limited(fh, limit, held, first)
    except ImageRejected:
        raise
    except OSError as exc:
        if isinstance(exc, zipfile.BadZipFile):
            raise ImageRejected(_archive_reason(exc)) from None
        raise ImageRejected(f"cannot be read ({exc.strerror or exc})") from None
    except Exception as exc:  # noqa: BLE001 - a broken archive member: any reader error
        raise ImageRejected(_archive_reason(exc)) from None


def _read_caption(opener: Opener) -> bytes:
    try:
        with opener() as fh:
            data = fh.read(MAX_CAPTION_BYTES + 1)
    except ImageRejected:
        raise
    except OSError as exc:
        if isinstance(exc, zipfile.BadZipFile):
            raise ImageRejected(_archive_reason(exc)) from None
        raise ImageRejected(f"cannot be read ({exc.strerror or exc})") from None
    except Exception as exc:  # noqa: BLE001
        raise ImageRejected(_archive_reason(exc)) from None
    if len(data) > MAX_CAPTION_BYTES:
        raise ImageRejected(f"caption over {MAX_CAPTION_BYTES // 2**20} MiB")
    return data


def _looks_like_image(first: bytes) -> bool:
    if first.startswith(_MAGIC):
        return True
    return first[:4] == b"RIFF" and first[8:12] == b"WEBP"


def _not_image_reason(first: bytes) -> str:
    """The same reason :func:`prepare` would give, found from the first bytes only."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(first)) as im:
            fmt = im.format
    except Exception:  # noqa: BLE001
        return "not an image (no known image format)"
    return f"unsupported image format {fmt or 'unknown'} (use JPEG, PNG, WebP, BMP, TIFF or GIF)"


def _decode_estimate(data: bytes, max_pixels: int) -> int:
    """Bytes decoding ``data`` will take (from its header; 0 if it has none: prepare rejects)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            bands = max(1, len(im.getbands()))
            fmt = im.format
    except Exception:  # noqa: BLE001
        return 0
    pixels = min(w * h, max_pixels + 1)
    if fmt in ("JPEG", "MPO"):  # decoded at reduced scale (draft) down to ~2× the thumbnail
        scale = 1
        while scale < 8 and min(w, h) // (scale * 2) >= 512:
            scale *= 2
        pixels //= scale * scale
    return pixels * bands * 2  # the decoded image and one converted copy


def _group_caption(
    cands: dict[tuple[str, str], _Candidate],
    caps: dict[tuple[str, str], list[tuple[str, str, Callable[[], bytes]]]],
    skipped: list[Skipped],
) -> None:
    """Attach caption sidecars to their images; captions without an image are reported."""
    for key, found in caps.items():
        cand = cands.get(key)
        if cand is None:
            for label, _ext, _r in found:
                skipped.append(Skipped(label, "caption file without an image of the same name"))
            continue
        found.sort(key=lambda f: CAPTION_EXTS.index(f[1]))
        cand.captions = [(label, r) for label, _ext, r in found]  # type: ignore[misc]  # the openers return bytes readers
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


def _collect_paths(
    paths: Sequence[Path], skipped: list[Skipped], max_file_bytes: int, look_beside: bool = False
) -> list[_Candidate]:
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
                try:  # name.caption can be too long where name.png is not
                    found = stat.S_ISREG(side.stat().st_mode)
                except (OSError, ValueError):
                    found = False
                if found and str(side) not in given:
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
        with zf:
            members = zf.infolist()
    except Exception as exc:  # noqa: BLE001 - any damage to the directory: the whole archive
        skipped.append(Skipped(str(path), f"not a readable zip archive ({exc})"))
        return []
    cands: dict[tuple[str, str], _Candidate] = {}
    caps: dict[tuple[str, str], list] = {}
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
        if info.flag_bits & 0x1:
            skipped.append(Skipped(label, _archive_reason(RuntimeError("encrypted"))))
            continue
        if info.file_size > max_file_bytes:
            skipped.append(Skipped(label, f"file too large ({info.file_size / 2**20:.0f} MiB)"))
            continue
        if pp.suffix.lower() in _ARCHIVE_EXTS:
            skipped.append(Skipped(label, "archive inside an archive (extract it first)"))
            continue
        reader = _zip_opener(path, info)
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


def _zip_opener(path: Path, info: zipfile.ZipInfo) -> Opener:
    """A stream of one member (its own ZipFile: workers read members in parallel)."""

    @contextlib.contextmanager
    def open_member() -> Iterator[IO[bytes]]:
        with zipfile.ZipFile(path) as zf, zf.open(info) as fh:
            yield fh

    return open_member


def collect(
    sources: Sequence[str | os.PathLike[str]],
    target: Path,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> tuple[list[_Candidate], list[Skipped]]:
    """Expand sources (files, folders, zips) into candidates, in a stable order."""
    skipped: list[Skipped] = []
    out: list[_Candidate] = []
    loose: list[Path] = []
    for src in sources:
        p = Path(src)
        if not p.exists():
            skipped.append(Skipped(str(p), "does not exist"))
        elif p.is_dir():
            files = list(_walk_folder(p, target, skipped))
            # a zip inside the folder is imported like a dropped zip, not "not an image"
            zips = [f for f in files if f.suffix.lower() in _ARCHIVE_EXTS and f.is_file()]
            rest = [f for f in files if f not in zips]
            out += _collect_paths(rest, skipped, max_file_bytes)
            for z in zips:
                out += _collect_zip(z, skipped, max_file_bytes)
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
        self.limit = name_max(target)
        for name in os.listdir(target):
            self.used.add(name.lower())
            p = Path(name)
            if p.suffix.lower() in IMAGE_EXTS + CAPTION_EXTS or p.suffix.lower() in (
                ".gif",
                ".tif",
                ".tiff",
            ):
                self.used.add("stem:" + p.stem.lower())

    def claim(self, stem: str, ext: str) -> str:
        """A free stem for an image ``stem + ext`` (and its caption); shortened where the name,
        ``-N`` or ``.txt`` would pass the file system's name limit."""
        base = safe_stem(stem)
        room = self.limit - max(name_bytes(ext), name_bytes(CAPTION_EXT))
        cand, n = cut_bytes(base, room), 1
        while (
            ("stem:" + cand.lower()) in self.used
            or (cand + ext).lower() in self.used
            or (cand + CAPTION_EXT).lower() in self.used
        ):
            n += 1
            tail = f"-{n}"
            cand = cut_bytes(base, room - len(tail)) + tail
        self.used.add("stem:" + cand.lower())
        self.used.add((cand + ext).lower())
        self.used.add((cand + CAPTION_EXT).lower())
        return cand


def _work(
    cand: _Candidate, max_pixels: int, max_file_bytes: int, held: _Held
) -> tuple[Prepared | None, str, bytes | None, str, str]:
    """Worker: read + prepare the image and pick the caption. Returns
    (prepared, rejection reason, caption bytes, caption source, caption note). What it keeps
    in memory stays taken from the budget until the writer gives it back."""
    try:
        data = _read_image(cand, max_file_bytes, held)
        est = _decode_estimate(data, max_pixels)
        held.take(est)
        try:
            prep = prepare(data, source_ext=cand.ext, max_pixels=max_pixels)
        finally:
            held.give(est)
    except ImageRejected as exc:
        held.give()
        return None, str(exc), None, "", ""
    if prep.data is not data:
        held.give(len(data))
        del data
        held.take(len(prep.data))
    cap, cap_src, note = None, "", ""
    if cand.captions:
        label, reader = cand.captions[0]
        try:
            cap, note = _caption_bytes(_read_caption(reader))
            cap_src = label
        except ImageRejected as exc:
            note = f"caption {shown(label)} cannot be read ({exc}); imported without it"
        if len(cand.captions) > 1:
            used = Path(label.split("!")[-1]).name
            note = "; ".join(
                x for x in (note, f"{len(cand.captions)} caption files; {used} used") if x
            )
    return prep, "", cap, cap_src, note


def _work_safe(
    cand: _Candidate, max_pixels: int, max_file_bytes: int, held: _Held
) -> tuple[Prepared | None, str, bytes | None, str, str]:
    """:func:`_work`, with any failure it did not foresee as the file's rejection reason (one
    bad file never aborts an import)."""
    try:
        return _work(cand, max_pixels, max_file_bytes, held)
    except Exception as exc:  # noqa: BLE001
        log.debug("import of %s failed", cand.label, exc_info=True)
        held.give()
        return None, f"cannot be imported ({type(exc).__name__}: {exc})", None, "", ""


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
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> ImportReport:
    """Copy ``sources`` into the dataset folder ``target`` (created if needed); see module doc.

    ``progress(done, total)`` is called from this thread; ``cancel()`` is polled between files
    (files already written stay, and the report lists them). Raises :class:`RequestError` if the
    target is unusable; after that, whatever happens, the report and the index are written for
    what was imported.
    """
    tgt = Path(target)
    if tgt.exists() and not tgt.is_dir():
        raise RequestError(f"The import target {shown(str(tgt))} is a file, not a folder.")
    for s in sources:
        sp = Path(s)
        if sp.is_dir() and sp.resolve() == tgt.resolve():
            raise RequestError(
                f"{shown(str(sp))} is the dataset folder itself; import from another folder."
            )
    try:
        tgt.mkdir(parents=True, exist_ok=True)
        names = _Names(tgt)
    except OSError as exc:
        raise RequestError(
            os_error_sentence(
                exc, f"the dataset folder {shown(str(tgt))}", verb="created", kept=False
            )
        ) from None
    report = ImportReport(str(tgt))
    cands, skipped = collect(sources, tgt, max_file_bytes)
    report.skipped.extend(skipped)
    known = _known_content(tgt, {c.size for c in cands})
    index_entries: dict[str, dict] = {}
    n_workers = workers or max(3, min(8, (os.cpu_count() or 2) + 1))  # + the writer's I/O waits
    window = n_workers * 3
    budget = _ByteBudget(memory_budget)
    done = 0
    if progress:
        progress(0, len(cands))
    pool = ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="zitdesk-import")
    futures: list[tuple[_Candidate, _Held, Future]] = []
    try:
        seq = 0

        def submit(c: _Candidate) -> None:
            nonlocal seq
            held = _Held(budget, seq)
            seq += 1
            futures.append((c, held, pool.submit(_work_safe, c, max_pixels, max_file_bytes, held)))

        it = iter(cands)
        for c in it:
            submit(c)
            if len(futures) >= window:
                break
        while futures:
            cand, held, fut = futures.pop(0)
            budget.set_head(held.seq)
            if cancel is not None and cancel():
                report.cancelled = True
                futures.insert(0, (cand, held, fut))
                break
            nxt = next(it, None)
            if nxt is not None:
                submit(nxt)
            prep, reason, cap, cap_src, note = fut.result()
            done += 1
            try:
                if prep is None:
                    report.skipped.append(Skipped(cand.label, reason))
                else:
                    _write_one(
                        cand,
                        prep,
                        cap,
                        cap_src,
                        note,
                        tgt,
                        names,
                        known,
                        report,
                        index_entries,
                        thumb_cache,
                    )
            except Exception as exc:  # noqa: BLE001 - reported; the import goes on
                log.debug("writing %s failed", cand.label, exc_info=True)
                report.skipped.append(Skipped(cand.label, f"cannot be written ({exc})"))
            finally:
                held.give()
                del prep
            if progress:
                progress(done, len(cands))
    finally:
        budget.close()  # nobody waits on a budget the writer no longer frees
        for _c, _h, f in futures:
            f.cancel()
        pool.shutdown(wait=True)
        for _c, h, _f in futures:
            h.give()
        if index_entries:
            try:
                fsync_dir(tgt)
                merge_index_entries(tgt, index_entries)
            except OSError as exc:
                report.errors.append(
                    os_error_sentence(exc, "the dataset index", kept=False)
                    + " The imported files are in place; opening the dataset "
                    "rebuilds it."
                )
    return report


def _known_content(
    tgt: Path, sizes: set[int] | None = None
) -> dict[str, tuple[str, bytes | None, bool]]:
    """sha256 → (image name, caption bytes, in the index) for images already in the target:
    from the index, and by hashing the images it does not cover whose size one of ``sizes`` has
    (what a killed import left without writing the index)."""
    import json

    try:
        images = json.loads((tgt / META_DIR / "index.json").read_text("utf-8"))["images"]
        if not isinstance(images, dict):
            images = {}
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        images = {}
    out: dict[str, tuple[str, bytes | None, bool]] = {}
    try:
        entries = list(os.scandir(tgt))
    except OSError:
        return out
    for e in entries:
        name = e.name
        if name.startswith(".") or Path(name).suffix.lower() not in IMAGE_EXTS:
            continue
        try:
            if not e.is_file(follow_symlinks=False):
                continue
            st = e.stat()
        except OSError:
            continue
        cached = images.get(name)
        sha = cached.get("sha256") if isinstance(cached, dict) else None
        indexed = bool(
            sha and st.st_size == cached.get("size") and st.st_mtime_ns == cached.get("mtime_ns")
        )
        if not indexed:
            if not sizes or st.st_size not in sizes:
                continue
            try:
                sha = sha256_file(e.path)
            except OSError:
                continue
        cap_path = Path(e.path).with_suffix(CAPTION_EXT)
        try:
            cap = cap_path.read_bytes()
        except OSError:
            cap = None
        out[sha] = (name, cap, indexed)  # type: ignore[index]  # sha is set: indexed entries only
    return out


def _write_reason(exc: OSError) -> str:
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return (
            "cannot be written: the disk is full (free some space and import again; what "
            "is already in is not imported twice)"
        )
    if exc.errno == errno.EROFS:
        return "cannot be written: the dataset folder is on a read-only disk"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "cannot be written: no permission to write into the dataset folder"
    return f"cannot be written ({exc.strerror or exc})"


def _index_entry(tgt: Path, image_name: str, prep: Prepared, index_entries: dict) -> None:
    try:
        st = (tgt / image_name).stat()
    except OSError:
        return
    index_entries[image_name] = {
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "w": prep.width,
        "h": prep.height,
        "sha256": prep.sha256,
        "phash": f"{prep.phash:016x}",
    }


def _write_one(
    cand: _Candidate,
    prep: Prepared,
    cap: bytes | None,
    cap_src: str,
    note: str,
    tgt: Path,
    names: _Names,
    known: dict,
    report: ImportReport,
    index_entries: dict,
    thumb_cache: Path | None,
) -> None:
    prev = known.get(prep.sha256)
    if prev is not None and not prev[2]:  # found by hashing: the index learns it now
        _index_entry(tgt, prev[0], prep, index_entries)
        known[prep.sha256] = prev = (prev[0], prev[1], True)
    if prev is not None and prev[1] == cap:
        report.skipped.append(
            Skipped(cand.label, f"already in the dataset as {prev[0]} (same image and caption)")
        )
        return
    if prev is not None and prev[1] is None and cap is not None:
        # the image is there without its caption (an import killed in between): add it
        cap_name = Path(prev[0]).with_suffix(CAPTION_EXT).name
        try:
            _place_new(cap, tgt / cap_name)
        except OSError:
            pass
        else:
            known[prep.sha256] = (prev[0], cap, True)
            report.skipped.append(
                Skipped(
                    cand.label,
                    f"already in the dataset as {prev[0]}; its missing "
                    f"caption was added as {cap_name}",
                )
            )
            return
    stem = names.claim(cand.stem, prep.ext)
    image_name = stem + prep.ext
    try:
        try:
            _place_new(prep.data, tgt / image_name)
        except FileExistsError:  # appeared meanwhile (another program): take the next name
            stem = names.claim(cand.stem, prep.ext)
            image_name = stem + prep.ext
            _place_new(prep.data, tgt / image_name)
    except OSError as exc:
        report.skipped.append(Skipped(cand.label, _write_reason(exc)))
        return
    rec = Imported(
        cand.label,
        image_name,
        width=prep.width,
        height=prep.height,
        converted=prep.converted,
        notes=list(prep.notes),
    )
    if stem != cand.stem:
        rec.renamed_from = cand.stem + cand.ext
    if cap is not None:
        cap_name = stem + CAPTION_EXT
        try:
            _place_new(cap, tgt / cap_name)
            rec.caption, rec.caption_source = cap_name, cap_src
        except OSError as exc:
            rec.notes.append(f"caption not written ({exc.strerror or exc})")
    if note:
        rec.notes.append(note)
    report.imported.append(rec)
    known[prep.sha256] = (image_name, cap, True)
    _index_entry(tgt, image_name, prep, index_entries)
    try:
        store_thumb(prep.sha256, prep.thumb_jpeg, thumb_cache)
    except OSError:
        pass
