"""Caption sidecar files of a managed dataset: read, write in the file's own style, detect
outside changes.

The decoding itself (UTF-8 with BOM, cp1252 fallback, ``\\n`` line ends) is :mod:`zitdesk.captions`,
the same decoder the trainer uses; its names are re-exported here. The file's *style* (UTF-8 BOM
or not, CRLF or LF) is remembered and used again when the caption is saved, so an edit never
changes bytes the user did not touch; a cp1252 file is flagged and saved as UTF-8.

:class:`FileSig` (size, mtime, SHA-1 of the bytes) identifies the version of a file we last read
or wrote; a different signature on disk means someone else changed it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from zitdesk.captions import (  # re-exported: the one decoder, shared with the trainer
    BOM as BOM,
)
from zitdesk.captions import (
    CaptionStyle as CaptionStyle,
)
from zitdesk.captions import (
    decode_caption as decode_caption,
)
from zitdesk.captions import (
    encode_caption as encode_caption,
)
from zitdesk.captions import (
    normalise_caption as normalise_caption,
)
from zitdesk.dataset.fsnames import fit_name
from zitdesk.io import atomic_write, is_temp_name

CONFLICT_SUFFIX = ".zitdesk-conflict"


@dataclass(frozen=True)
class FileSig:
    size: int
    mtime_ns: int
    sha1: str

    @classmethod
    def of_bytes(cls, data: bytes, st: os.stat_result) -> FileSig:
        return cls(st.st_size, st.st_mtime_ns, hashlib.sha1(data).hexdigest())

    def same_stat(self, st: os.stat_result) -> bool:
        return self.size == st.st_size and self.mtime_ns == st.st_mtime_ns


@dataclass(frozen=True)
class CaptionFile:
    text: str
    style: CaptionStyle
    sig: FileSig


def read_caption_file(path: Path) -> CaptionFile | None:
    """The caption at ``path``, or None if there is no such file."""
    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            data = fh.read()
    except FileNotFoundError:
        return None
    text, style = decode_caption(data)
    return CaptionFile(text, style, FileSig.of_bytes(data, st))


def write_caption_file(path: Path, text: str, style: CaptionStyle) -> FileSig:
    """Atomically write a caption (temp file, fsync, rename) and return its new signature.

    The file keeps its permissions; a new file gets the usual ``0666 & ~umask`` (both done by
    :func:`zitdesk.io.atomic_write`) so other tools and users can read the dataset.
    """
    data = encode_caption(text, style)
    atomic_write(path, data)
    st = os.stat(path)
    return FileSig.of_bytes(data, st)


def conflict_path(caption_path: Path) -> Path:
    """Where our version goes when the file changed on disk: ``name.txt.zitdesk-conflict``
    (the name part shortened, with a hash, where that would pass the name limit)."""
    return caption_path.with_name(fit_name(caption_path.name, CONFLICT_SUFFIX, caption_path.parent))


def is_stale_temp(name: str) -> bool:
    """Temp files :mod:`zitdesk.io` writers leave behind when a process is killed
    (``.cat.txt.k3j2_x1a.tmp``), the only names removed from a user's dataset folder."""
    return is_temp_name(name, legacy=False)
