"""File writing and user folders.

:func:`atomic_write` is the one way zitdesk writes a file: a temp file in the same folder,
flushed and fsynced, then ``os.replace``d over the target, so a crash leaves either the old file
or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

APP_NAME = "zitdesk"


def _read_umask() -> int:
    # Read once at import (single-threaded then): os.umask can only be read by setting it.
    old = os.umask(0o022)
    os.umask(old)
    return old


_UMASK = _read_umask()


def _target_mode(target: Path) -> int:
    """The mode a normal ``open()`` would give: the old file's mode, else 0o666 minus the umask.

    ``mkstemp`` creates 0600 files; without this every image and caption would be private.
    """
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_UMASK


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
def atomic_open(path: str | os.PathLike[str], mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """Open a temp file beside ``path``; on clean exit it replaces ``path`` atomically.

    On an exception the temp file is removed and ``path`` is left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with contextlib.suppress(OSError):
            os.chmod(tmp, _target_mode(target))
        with os.fdopen(fd, mode, encoding=encoding, newline="" if "b" not in mode else None) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(target.parent)


def atomic_write(path: str | os.PathLike[str], data: bytes | str, encoding: str = "utf-8") -> Path:
    """Write ``data`` (bytes, or text encoded with ``encoding``) to ``path`` atomically."""
    payload = data.encode(encoding) if isinstance(data, str) else data
    with atomic_open(path, "wb") as fh:
        fh.write(payload)
    return Path(path)


def atomic_save(path: str | os.PathLike[str], writer) -> Path:
    """Atomically produce ``path`` with ``writer(tmp_path)`` for libraries that want a file name.

    ``writer`` gets a temp path in the same folder (same suffix as ``path``), writes the file there,
    and this function fsyncs and renames it into place. Used for PIL images and safetensors files.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    try:
        with contextlib.suppress(OSError):
            os.chmod(tmp, _target_mode(target))
        writer(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(target.parent)
    return target


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
