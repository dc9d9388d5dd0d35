"""File names as the OS has them: JSON that keeps non-UTF-8 names, names that fit, OS errors.

On Linux a file name is bytes; Python hands a name that is not valid UTF-8 (a Latin-1
``caf\\xe9.png`` from an old archive) over as a str with *surrogate escapes* (``'caf\\udce9.png'``),
and :func:`os.fsencode` turns it back into the same bytes. Such a str cannot be encoded as UTF-8,
so every ``.zitdesk`` file that holds names is written with :func:`dumps`: JSON whose lone
surrogates are written as ``\\udcXX`` escapes (valid JSON, plain UTF-8), which :func:`json.loads`
reads back as the same str, so the name still opens the same file.

:func:`fit_name` makes a sidecar name (``name + suffix``) fit the file system's name limit by
shortening the name part and adding a short hash, so it stays unique and the same every time.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
from typing import Any

from zitdesk.errors import ZitdeskError

_SURROGATE = re.compile("[\ud800-\udfff]")


def dumps(obj: Any, **kw: Any) -> str:
    """``json.dumps(obj, ensure_ascii=False)`` whose output can always be encoded as UTF-8."""
    text = json.dumps(obj, ensure_ascii=False, **kw)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def shown(name: str) -> str:
    """A name as text that can be printed anywhere: undecodable bytes as ``\\xNN``."""
    if not _SURROGATE.search(name):
        return name
    try:
        return os.fsencode(name).decode("utf-8", "backslashreplace")
    except UnicodeError:
        return name.encode("utf-8", "backslashreplace").decode("ascii")


def name_max(folder: str | os.PathLike[str] | None = None) -> int:
    if folder is not None:
        try:
            return int(os.pathconf(folder, "PC_NAME_MAX"))
        except (OSError, ValueError, AttributeError):
            pass
    return 255


def name_bytes(name: str) -> int:
    return len(os.fsencode(name))


def cut_bytes(name: str, room: int) -> str:
    """``name`` cut to at most ``room`` bytes, never inside a UTF-8 sequence."""
    raw = os.fsencode(name)
    if len(raw) <= room:
        return name
    raw = raw[: max(room, 0)]
    while raw and (raw[-1] & 0xC0) == 0x80:
        raw = raw[:-1]
    if raw and raw[-1] >= 0xC0:
        raw = raw[:-1]
    return os.fsdecode(raw)


def fit_name(name: str, suffix: str, folder: str | os.PathLike[str] | None = None) -> str:
    """``name + suffix``, or, when that passes the name limit, ``name`` shortened plus ``~`` and
    8 hex digits of its hash, then ``suffix`` (deterministic: the same name gives the same)."""
    limit = name_max(folder)
    full = name + suffix
    if name_bytes(full) <= limit:
        return full
    tag = "~" + hashlib.sha1(os.fsencode(name)).hexdigest()[:8]
    return cut_bytes(name, limit - name_bytes(suffix) - len(tag)) + tag + suffix


def os_error_sentence(
    exc: BaseException, what: str, *, verb: str = "saved", kept: bool = True
) -> str:
    """One sentence for an OS error while writing ``what`` that says what to do (``kept``:
    the caller keeps the data and saves it on its next try)."""
    code = getattr(exc, "errno", None)
    tail = " (nothing is lost: it is kept until then)." if kept else "."
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return (
            f"The disk is full, so {what} could not be {verb}; free some space and try again{tail}"
        )
    if code == errno.EROFS:
        return f"The disk is read-only, so {what} could not be {verb}; use a writable folder{tail}"
    if code in (errno.EACCES, errno.EPERM):
        return (
            f"No permission to write, so {what} could not be {verb}; make the folder "
            f"writable or use another one{tail}"
        )
    if code == errno.ENAMETOOLONG:
        return (
            f"A name is too long, so {what} could not be {verb}; use a shorter folder or "
            f"file name{tail}"
        )
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"{what[:1].upper()}{what[1:]} could not be {verb} ({reason}); check the folder{tail}"


class SaveFailed(ZitdeskError, OSError):
    """A write into the dataset failed (full disk, read-only, …); ``str()`` is one sentence.

    Still an :class:`OSError` (``errno`` kept), so callers that handle OS errors keep working;
    nothing queued was dropped: the caller retries on its next flush."""

    def __init__(self, exc: BaseException, what: str) -> None:
        self.sentence = os_error_sentence(exc, what)
        OSError.__init__(self, getattr(exc, "errno", None) or errno.EIO, self.sentence)

    def __str__(self) -> str:
        return self.sentence
