"""File writing and user folders.

:func:`atomic_write` is the one way zitdesk writes a file: a temp file in the same folder,
flushed and fsynced, then ``os.replace``d over the target, so a crash leaves either the old file
or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

APP_NAME = "zitdesk"


def default_file_mode() -> int:
    """``0o666`` minus the process umask: the mode a plain ``open()`` gives a new file.

    Read once, from ``/proc/self/status`` where it exists (no process-wide ``os.umask`` race),
    else by setting and restoring the umask at import (single-threaded then).
    """
    return _DEFAULT_MODE


def _read_default_mode() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return 0o666 & ~old


_DEFAULT_MODE = _read_default_mode()


def _target_mode(target: Path) -> int:
    """The mode a normal ``open()`` would give: the old file's mode, else 0o666 minus the umask.

    Temp files are created 0600; without this every image, caption and LoRA would be private.
    """
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        return _DEFAULT_MODE


# -- temp files -------------------------------------------------------------------------------
# Every temp file zitdesk writes is named ``.<target name>.<8 random>.tmp``: hidden, and ending in
# ``.tmp`` so no other program (ComfyUI, a LoRA browser, an image viewer) takes a half-written
# ``.safetensors`` or ``.png`` for a real one. :func:`is_temp_name` recognises these and the
# names earlier versions and libraries could leave (safetensors' own ``.tmpXXXXXX``, the old
# ``.<stem>.<8 random><suffix>``), and :func:`clean_temp_files` removes them at the next start.
_TEMP_RE = re.compile(r"\..+\.[A-Za-z0-9_]+\.tmp", re.DOTALL)
_LEGACY_TEMP_RES = (
    re.compile(r"\.tmp[A-Za-z0-9]{6}"),  # safetensors.save_file's own temp (before its rename)
    re.compile(r"\..+\.[A-Za-z0-9_]{8}\.(?:safetensors|pt|png|jpe?g|webp|json|txt)", re.DOTALL),
)
_RANDOM_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def temp_name(target_name: str, folder: Path | None = None) -> str:
    """A fresh temp name for ``target_name`` that fits wherever ``target_name`` fits.

    The target's name is shortened inside the temp name when the 14 added bytes would pass the
    file system's name limit (names are measured in bytes, as the OS does; surrogate-escaped
    bytes of non-UTF-8 names survive).
    """
    rand = "".join(secrets.choice(_RANDOM_CHARS) for _ in range(8))
    limit = _name_max(folder) if folder is not None else 255
    room = limit - len(f"..{rand}.tmp")
    raw = os.fsencode(target_name)
    if len(raw) > room:
        raw = raw[: max(room, 1)]
        # do not cut a UTF-8 sequence in half (a cut one would be surrogate-escaped, and longer)
        while raw and (raw[-1] & 0xC0) == 0x80:
            raw = raw[:-1]
        if raw and raw[-1] >= 0xC0:
            raw = raw[:-1]
    return f".{os.fsdecode(raw)}.{rand}.tmp"


def is_temp_name(name: str, legacy: bool = True) -> bool:
    """True for a temp file zitdesk (or a library it calls) can leave behind when killed.

    ``legacy=False`` matches only today's ``.<name>.<8 random>.tmp`` (used in folders that hold
    the user's own files, such as a dataset)."""
    if _TEMP_RE.fullmatch(name):
        return True
    return legacy and any(r.fullmatch(name) for r in _LEGACY_TEMP_RES)


def clean_temp_files(folder: str | os.PathLike[str]) -> int:
    """Remove the temp files of interrupted writes from ``folder`` (not recursive); returns how
    many. Only names :func:`is_temp_name` recognises are touched."""
    n = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for e in entries:
        try:
            if is_temp_name(e.name) and e.is_file(follow_symlinks=False):
                os.unlink(e.path)
                n += 1
        except OSError:
            pass
    return n


def create_temp(target: Path) -> tuple[int, Path]:
    """Create (O_EXCL) a temp file beside ``target`` with the mode ``target`` should end with."""
    folder = target.parent
    mode = _target_mode(target)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = folder / temp_name(target.name, folder)
        try:
            fd = os.open(tmp, flags, 0o600)
        except FileExistsError:
            continue
        if os.name != "nt":
            with contextlib.suppress(OSError):
                os.fchmod(fd, mode)
        return fd, tmp
    raise FileExistsError(f"no free temp name beside {target}")


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (no-op where directories cannot be fsynced)."""
    if os.name == "nt":  # directories cannot be opened for fsync on Windows
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str],
    mode: str = "wb",
    encoding: str | None = None,
    *,
    durable: bool = True,
) -> Iterator[IO]:
    """Open a temp file beside ``path``; on clean exit it replaces ``path`` atomically.

    ``durable=False`` skips the fsyncs (caches that can be rebuilt, e.g. thumbnails); the rename
    is still atomic.

    On an exception the temp file is removed and ``path`` is left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = create_temp(target)
    try:
        with os.fdopen(fd, mode, encoding=encoding, newline="" if "b" not in mode else None) as fh:
            yield fh
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(target.parent)


def atomic_write(
    path: str | os.PathLike[str],
    data: bytes | str,
    encoding: str = "utf-8",
    *,
    durable: bool = True,
) -> Path:
    """Write ``data`` (bytes, or text encoded with ``encoding``) to ``path`` atomically."""
    payload = data.encode(encoding) if isinstance(data, str) else data
    with atomic_open(path, "wb", durable=durable) as fh:
        fh.write(payload)
    return Path(path)


def keep_backup(path: str | os.PathLike[str]) -> Path | None:
    """Copy a damaged file to ``<name>.bak`` beside it (atomically, replacing an older copy)
    before it is reset; returns the copy, or None (logged) when it cannot be made. The one way
    settings, the library store and the prompt history keep what they could not read."""
    src = Path(path)
    bak = src.with_name(src.name + ".bak")
    try:
        atomic_write(bak, src.read_bytes())
    except OSError:
        log.warning("could not back up %s to %s", src, bak, exc_info=True)
        return None
    return bak


def atomic_save(path: str | os.PathLike[str], writer) -> Path:
    """Atomically produce ``path`` with ``writer(tmp_path)`` for libraries that want a file name.

    ``writer`` gets a temp path in the same folder (the one temp-name pattern; pass the format
    explicitly, e.g. ``image.save(tmp, format="PNG")``), writes the file there in place, and this
    function fsyncs and renames it into place with the target's mode. A writer must not replace
    the temp file itself (``safetensors.save_file`` does: use :func:`atomic_save_tensors`).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = create_temp(target)
    os.close(fd)
    try:
        writer(str(tmp))
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        if os.name != "nt":  # the writer may have recreated the file (then its mode is 0600)
            with contextlib.suppress(OSError):
                os.chmod(tmp, _target_mode(target))
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(target.parent)
    return target


def atomic_save_tensors(
    path: str | os.PathLike[str], tensors: dict, metadata: dict[str, str] | None = None
) -> Path:
    """Write a ``.safetensors`` file through :func:`atomic_write` (the normal mode, the one
    temp-name pattern). ``safetensors.torch.save_file`` is not used: it writes its own
    ``.tmpXXXXXX`` and renames it, which makes every file 0600 and leaves an unrecognised
    complete file behind when killed before its rename."""
    from safetensors.torch import save

    return atomic_write(path, save(tensors, metadata=metadata))


def user_dirs() -> dict[str, Path]:
    """Platform folders for config, data, cache and logs (overridable with ``ZITDESK_HOME``)."""
    home = os.environ.get("ZITDESK_HOME")
    if home:
        base = Path(home)
        return {
            "config": base / "config",
            "data": base / "data",
            "cache": base / "cache",
            "logs": base / "logs",
        }
    import platformdirs

    return {
        "config": Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
        "data": Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
        "cache": Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)),
        "logs": Path(platformdirs.user_log_dir(APP_NAME, appauthor=False)),
    }


def default_output_dir() -> Path:
    """Where generated images go unless the user chose another folder."""
    return user_dirs()["data"] / "outputs"
