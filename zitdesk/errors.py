"""User-facing error types.

Every error the engine raises on purpose is a :class:`ZitdeskError` whose message is one plain
sentence that says what went wrong and what to do. The CLI prints it without a traceback and the
UI shows it in a dialog.
"""

from __future__ import annotations

import errno as _errno
import os as _os
import re as _re


class ZitdeskError(Exception):
    """An error with a plain-language message meant for the user."""


class ModelError(ZitdeskError):
    """A base model folder or file cannot be used (missing part, wrong family, corrupt)."""


class LoraError(ZitdeskError):
    """A LoRA file cannot be used (foreign architecture, unsafe format, corrupt)."""


class FileFormatError(ZitdeskError):
    """A file is truncated, not safetensors, or otherwise unreadable."""


class RequestError(ZitdeskError):
    """A generation or training request has invalid values."""


class OutOfMemory(ZitdeskError):
    """The GPU ran out of memory; the message suggests a lower memory tier."""


# ----------------------------------------------------------------------------------------------
# Any exception → one sentence for the user
# ----------------------------------------------------------------------------------------------
#
# The one place where exceptions that are not ZitdeskErrors become user text: the CLI's top
# level, and the engine's and trainer's failure events (JobFailed.message) all call
# :func:`user_message`, so a full disk reads the same in the app, in ``generate`` and in ``train``.


_NO_SPACE = (_errno.ENOSPC, getattr(_errno, "EDQUOT", -1), getattr(_errno, "EFBIG", -1))
_NO_PERMISSION = (_errno.EACCES, _errno.EPERM)


def _where(path: object) -> str:
    if path is None or path == "":
        return ""
    if isinstance(path, bytes):
        path = _os.fsdecode(path)
    return str(path)


def describe_os_error(exc: OSError, path: str | _os.PathLike[str] | None = None) -> str:
    """One sentence for an :class:`OSError` that says what happened to which path and what to do.

    ``path`` overrides ``exc.filename`` (useful when the failing call only saw a temp name).
    """
    where = _where(path if path is not None else (exc.filename or getattr(exc, "filename2", None)))
    code = exc.errno
    at = f" {where}" if where else ""
    if code in _NO_SPACE:
        return (
            f"The disk is full: there was no space left to write{at or ' the file'}; free some "
            "space or choose another folder, then try again."
        )
    if code == _errno.EROFS:
        return (
            f"{where or 'The folder'} is on a read-only disk; choose a folder you can write to "
            "(or remount the disk writable)."
        )
    if code in _NO_PERMISSION:
        return (
            f"Permission denied for {where or 'a file or folder zitdesk needs'}; choose a folder "
            "you can write to, or change its permissions."
        )
    if code == _errno.ENAMETOOLONG:
        return (
            f"The name{at} is too long for this file system; use a shorter file name or a "
            "folder closer to the top of the disk."
        )
    if code == _errno.ENOTDIR:
        return (
            f"{where or 'A part of the path'} is a file, not a folder (or a part of its path "
            "is); choose a folder, or a name that does not exist yet."
        )
    if code == _errno.EISDIR:
        return f"{where or 'The path'} is a folder, but a file is needed there; choose a file."
    if code == _errno.EEXIST:
        if where and _os.path.isfile(where):
            return (
                f"{where} is a file, not a folder; choose a folder, or a name that does not "
                "exist yet."
            )
        return f"{where or 'The path'} already exists; choose another name or folder."
    if code == _errno.ENOENT:
        return f"{where or 'A file or folder'} does not exist; check the path."
    if code in (_errno.EMFILE, _errno.ENFILE):
        return "Too many files are open at once; close other programs and try again."
    if code == _errno.EIO:
        return (
            f"The disk reported a read/write error{' at ' + where if where else ''}; check the "
            "disk or its cable, then try again."
        )
    if code == _errno.ELOOP:
        return f"{where or 'The path'} is a loop of symbolic links; choose the real folder."
    if code in (_errno.EBUSY, getattr(_errno, "ETXTBSY", -1)):
        return f"{where or 'The file'} is in use by another program; close it and try again."
    reason = exc.strerror or type(exc).__name__
    return f"Cannot use {where or 'a file'}: {reason}; check the path and try again."


_OS_CODE = _re.compile(r"(?:code:\s*|\[Errno\s*|os error\s*)(\d+)")

_CUDA_MISSING = (
    "torch not compiled with cuda",
    "found no nvidia driver",
    "no cuda gpus are available",
    "cuda driver initialization failed",
    "cuda is not available",
    "invalid device ordinal",
    "cuda error: no kernel image",
    "expected one of cpu, cuda",
    "mps backend is not available",
    "the mps backend is supported on macos",
    "has no attribute '_cuda_",
    "cuda driver version is insufficient",
)


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip()
    # C++ (c10) messages carry a stack after the first line; never show it.
    first = (text.splitlines() or [""])[0]
    first = first.split("Exception raised from", 1)[0].strip()
    return first[:limit]


def user_message(exc: BaseException, path: str | _os.PathLike[str] | None = None) -> str:
    """One plain sentence for any exception (no traceback, no C++ stack, no "unexpected error").

    ZitdeskErrors carry their own sentence; OS errors (also the ones safetensors and torch wrap
    into their own exception types) say what to do about the disk; a CUDA request on a machine
    or a PyTorch without CUDA says to use the CPU.
    """
    if isinstance(exc, ZitdeskError):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno is not None:
        return describe_os_error(exc, path)
    if isinstance(exc, MemoryError):
        return "The computer ran out of RAM; close other programs or use a smaller size, then try again."
    if isinstance(exc, RecursionError):
        return (
            "A file zitdesk was reading is nested too deeply to be real data; it was refused "
            "(replace the file)."
        )
    if isinstance(exc, UnicodeDecodeError):
        return (
            f"{_where(path) or 'A file'} is not UTF-8 text (is it a binary file?); choose a text "
            "file."
        )
    text = str(exc)
    low = text.lower()
    if any(n in low for n in _CUDA_MISSING):
        return (
            "CUDA is not available here (this PyTorch has no CUDA support, no NVIDIA driver was "
            "found, or the GPU number does not exist); use --device cpu or auto, or see "
            "'zitdesk doctor'."
        )
    m = _OS_CODE.search(text)
    if m or "no space left" in low or "read-only file system" in low or "permission denied" in low:
        code = (
            int(m.group(1))
            if m
            else (
                _errno.ENOSPC
                if "no space left" in low
                else _errno.EROFS
                if "read-only file system" in low
                else _errno.EACCES
            )
        )
        return describe_os_error(OSError(code, _os.strerror(code)), path)
    if "file write failed" in low or "failed writing file" in low:
        return describe_os_error(OSError(_errno.ENOSPC, _os.strerror(_errno.ENOSPC)), path)
    if isinstance(exc, OSError):
        return f"A file could not be used ({_first_line(exc) or type(exc).__name__}); check the path and try again."
    detail = _first_line(exc) or type(exc).__name__
    return (
        f"zitdesk hit an internal problem ({type(exc).__name__}: {detail}); rerun with "
        "ZITDESK_DEBUG=1 to see the details and report them."
    )
