"""Naming and writing imported files into a dataset folder, never overwriting anything.

:func:`safe_stem` (characters Windows forbids → ``_``), :class:`Names` (stems in use,
case-insensitive, ``-2``/``-3``… and shortening to fit the file system), ``place_new`` (temp file,
fsync, link into place: fails when the name exists), :func:`known_content` (images already in
the dataset, by content) and :func:`write_one` (one prepared image and its caption, into the report
and the index entries).
"""

from __future__ import annotations

import errno
import logging
import os
import re
from pathlib import Path

from zitdesk.dataset.captions import BOM, decode_caption
from zitdesk.dataset.collect import CAPTION_EXTS, Candidate
from zitdesk.dataset.fsnames import cut_bytes, name_bytes, name_max
from zitdesk.dataset.images import Prepared, store_thumb
from zitdesk.dataset.import_report import Imported, ImportReport, Skipped
from zitdesk.dataset.store import CAPTION_EXT, META_DIR
from zitdesk.folder import IMAGE_EXTS
from zitdesk.hashing import sha256_file
from zitdesk.io import create_temp

log = logging.getLogger(__name__)

_FORBIDDEN = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')


# --- naming and writing ------------------------------------------------------------------------


def safe_stem(stem: str) -> str:
    s = _FORBIDDEN.sub("_", stem).strip().rstrip(".")
    while s.startswith("."):
        s = s[1:]
    return s or "image"


def caption_bytes(data: bytes) -> tuple[bytes, str]:
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


class Names:
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


def known_content(
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


def write_one(
    cand: Candidate,
    prep: Prepared,
    cap: bytes | None,
    cap_src: str,
    note: str,
    tgt: Path,
    names: Names,
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
