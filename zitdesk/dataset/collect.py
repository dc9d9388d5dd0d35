"""Collecting what a dataset import reads: files, folders and ``.zip`` archives → candidates.

:func:`collect` expands the sources into :class:`Candidate` records in a stable order (folders
walked recursively and flattened, hidden files skipped, zips inside folders imported like dropped
zips, unsafe archive members rejected with reasons); ``read_image`` / ``read_caption`` read a
candidate in chunks within the shared :mod:`~zitdesk.dataset.budget`, rejecting what is no image
format from its first bytes.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import stat
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from zitdesk.dataset.budget import Held
from zitdesk.dataset.images import ImageRejected
from zitdesk.dataset.import_report import Skipped

log = logging.getLogger(__name__)

CAPTION_EXTS = (".txt", ".caption")
DEFAULT_MAX_FILE_BYTES = 512 * 1024 * 1024
#: File bytes + decoded pixels all import workers may hold at once (see the module doc).
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
_ARCHIVE_EXTS = (".zip",)


# --- collecting candidates ---------------------------------------------------------------------

Opener = Callable[[], "contextlib.AbstractContextManager[IO[bytes]]"]


@dataclass
class Candidate:
    label: str  # shown in the report: a path, or "archive.zip!dir/a.png"
    stem: str
    ext: str
    open: Opener  # a binary stream of the file's bytes
    size: int  # declared (an archive's can lie)
    captions: list[tuple[str, Opener]] = field(default_factory=list)


def file_reader(path: Path) -> Opener:
    return lambda: open(path, "rb")


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


def _read_limited(fh: IO[bytes], limit: int, held: Held, first: bytes = b"") -> bytes:
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


@contextlib.contextmanager
def _read_errors() -> Iterator[None]:
    """Any failure while reading a source (a file, an archive member) becomes its
    :class:`ImageRejected` reason."""
    try:
        yield
    except ImageRejected:
        raise
    except OSError as exc:
        if isinstance(exc, zipfile.BadZipFile):
            raise ImageRejected(_archive_reason(exc)) from None
        raise ImageRejected(f"cannot be read ({exc.strerror or exc})") from None
    except Exception as exc:  # noqa: BLE001 - a broken archive member: any reader error
        raise ImageRejected(_archive_reason(exc)) from None


def read_image(cand: Candidate, limit: int, held: Held) -> bytes:
    """The candidate's bytes, or :class:`ImageRejected`. Bytes that start like no accepted
    format are rejected after the first 64 KiB."""
    with _read_errors(), cand.open() as fh:
        held.take(_SNIFF)
        first = fh.read(_SNIFF)
        held.give(_SNIFF - len(first))
        if not _looks_like_image(first):
            raise ImageRejected(_not_image_reason(first))
        return _read_limited(fh, limit, held, first)


def read_caption(opener: Opener) -> bytes:
    with _read_errors(), opener() as fh:
        data = fh.read(MAX_CAPTION_BYTES + 1)
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


def decode_estimate(data: bytes, max_pixels: int) -> int:
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
    cands: dict[tuple[str, str], Candidate],
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
) -> list[Candidate]:
    given = {str(p) for p in paths}
    cands: dict[tuple[str, str], Candidate] = {}
    caps: dict[tuple[str, str], list] = {}
    for p in paths:
        ext = p.suffix.lower()
        key = (str(p.parent), p.stem)
        if ext in CAPTION_EXTS:
            caps.setdefault(key, []).append((str(p), ext, file_reader(p)))
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
        cands[key] = Candidate(str(p), p.stem, p.suffix, file_reader(p), st.st_size)
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
                    caps.setdefault(key, []).append((str(side), ext, file_reader(side)))
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


def _collect_zip(path: Path, skipped: list[Skipped], max_file_bytes: int) -> list[Candidate]:
    try:
        zf = zipfile.ZipFile(path)
        with zf:
            members = zf.infolist()
    except Exception as exc:  # noqa: BLE001 - any damage to the directory: the whole archive
        skipped.append(Skipped(str(path), f"not a readable zip archive ({exc})"))
        return []
    cands: dict[tuple[str, str], Candidate] = {}
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
        cands[key] = Candidate(label, pp.stem, pp.suffix, reader, info.file_size)
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
) -> tuple[list[Candidate], list[Skipped]]:
    """Expand sources (files, folders, zips) into candidates, in a stable order."""
    skipped: list[Skipped] = []
    out: list[Candidate] = []
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
