"""File hashes, the one place they are computed: :func:`sha256_file` (plain SHA-256 of any file:
training caches, model identity) and :func:`hash_file` (a LoRA's or checkpoint's hashes in one
pass), cached by path + size + mtime in :class:`HashCache`; :func:`shared_cache` is the one cache
object per cache file (the library and generation's "Lora hashes" share it). Qt-free.

One read of the file gives every hash other tools show:

* ``sha256``: of the whole file (Civitai "SHA256"; LoRA Manager and StabilityMatrix key on it);
* ``autov2``: its first 10 hex digits (Civitai "AutoV2", the A1111 checkpoint short hash);
* ``addnet``: sha256 of the tensor data only, i.e. everything after the safetensors header
  (sd-webui-additional-networks' hash, which A1111/Forge use for LoRAs); editing metadata does not
  change it, so two files with equal ``addnet`` hold the same weights;
* ``autov3``: its first 12 hex digits (Civitai "AutoV3" and the ``Lora hashes:`` short hash in
  A1111 infotext).

Hashing a 200 MB LoRA takes a fraction of a second of disk and CPU; the library does it on a
background thread, one file at a time, with a cancel check every chunk.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from zitdesk.io import atomic_write, user_dirs

log = logging.getLogger(__name__)

CHUNK = 4 * 1024 * 1024
CACHE_VERSION = 1


class HashCancelled(Exception):
    """Raised inside :func:`hash_file` when ``cancelled()`` turns true."""


def autov2(sha256: str) -> str:
    """Civitai "AutoV2" / A1111 short hash: the first 10 hex digits of the file's SHA-256."""
    return sha256[:10]


def autov3(addnet: str) -> str:
    """Civitai "AutoV3" / A1111 LoRA short hash: the first 12 hex digits of the tensor-data hash."""
    return addnet[:12]


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of the whole file. Raises ``OSError``."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class FileHashes:
    sha256: str
    addnet: str = ""  # sha256 of the tensor data ("" for non-safetensors files)

    @property
    def autov2(self) -> str:
        return autov2(self.sha256)

    @property
    def autov3(self) -> str:
        return autov3(self.addnet)

    def to_dict(self) -> dict[str, str]:
        return {
            "sha256": self.sha256,
            "autov2": self.autov2,
            "addnet": self.addnet,
            "autov3": self.autov3,
        }


def hash_file(
    path: str | os.PathLike[str], cancelled: Callable[[], bool] | None = None
) -> FileHashes:
    """Hash ``path`` (see the module docstring). Raises ``OSError`` or :class:`HashCancelled`."""
    full = hashlib.sha256()
    data = hashlib.sha256()
    with open(path, "rb") as fh:
        head = fh.read(8)
        full.update(head)
        data_start = None
        if len(head) == 8 and str(path).lower().endswith((".safetensors", ".sft")):
            (n,) = struct.unpack("<Q", head)
            data_start = 8 + n
        pos = len(head)
        while True:
            if cancelled is not None and cancelled():
                raise HashCancelled(str(path))
            chunk = fh.read(CHUNK)
            if not chunk:
                break
            full.update(chunk)
            if data_start is not None:
                end = pos + len(chunk)
                if end > data_start:
                    data.update(chunk[max(0, data_start - pos) :])
            pos += len(chunk)
    addnet = data.hexdigest() if data_start is not None and data_start <= pos else ""
    return FileHashes(full.hexdigest(), addnet)


def default_cache_path() -> Path:
    return user_dirs()["cache"] / "library" / "hashes.json"


class HashCache:
    """``path → (size, mtime_ns, hashes)`` in a small JSON file; thread-safe.

    A file whose size or mtime changed is hashed again. ``path=None`` keeps the cache in memory.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._items: dict[str, tuple[int, int, FileHashes]] = {}
        self._dirty = False
        self._load()

    def _load(self) -> None:
        if self.path is None or not self.path.is_file():
            return
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            if doc.get("version") != CACHE_VERSION:
                return
            for p, (size, mtime, sha, addnet) in doc.get("items", {}).items():
                self._items[str(p)] = (int(size), int(mtime), FileHashes(str(sha), str(addnet)))
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.warning("ignoring unreadable hash cache %s: %s", self.path, exc)
            self._items.clear()

    def get(self, path: str, size: int, mtime_ns: int) -> FileHashes | None:
        with self._lock:
            item = self._items.get(path)
        if item is None or item[0] != size or item[1] != mtime_ns:
            return None
        return item[2]

    def put(self, path: str, size: int, mtime_ns: int, hashes: FileHashes) -> None:
        with self._lock:
            self._items[path] = (size, mtime_ns, hashes)
            self._dirty = True

    def move(self, old: str, new: str) -> None:
        with self._lock:
            if old in self._items:
                self._items[new] = self._items.pop(old)
                self._dirty = True

    def prune(self, keep: set[str]) -> None:
        """Forget files that are no longer in the library."""
        with self._lock:
            gone = [p for p in self._items if p not in keep]
            for p in gone:
                del self._items[p]
            self._dirty = self._dirty or bool(gone)

    def paths_with(self, sha256: str) -> list[str]:
        """Paths whose cached SHA-256 is ``sha256`` or starts with it (a 10-digit AutoV2 works),
        only files still unchanged on disk (same size and mtime), sorted."""
        want = sha256.strip().lower()
        if not want:
            return []
        with self._lock:
            hits = [
                (p, size, mtime)
                for p, (size, mtime, h) in self._items.items()
                if h.sha256.lower().startswith(want)
            ]
        out = []
        for p, size, mtime in hits:
            try:
                st = os.stat(p)
            except OSError:
                continue
            if st.st_size == size and st.st_mtime_ns == mtime:
                out.append(p)
        return sorted(out)

    def compute(
        self, path: str, size: int, mtime_ns: int, cancelled: Callable[[], bool] | None = None
    ) -> FileHashes:
        """The cached hashes, or hash the file now and remember the result."""
        cached = self.get(path, size, mtime_ns)
        if cached is not None:
            return cached
        hashes = hash_file(path, cancelled)
        self.put(path, size, mtime_ns, hashes)
        return hashes

    def save(self) -> None:
        if self.path is None:
            return
        with self._lock:
            if not self._dirty:
                return
            doc = {
                "version": CACHE_VERSION,
                "items": {
                    p: [s, m, asdict(h)["sha256"], h.addnet] for p, (s, m, h) in self._items.items()
                },
            }
            self._dirty = False
        try:
            atomic_write(self.path, json.dumps(doc, separators=(",", ":")))
        except OSError as exc:
            log.warning("cannot save the hash cache %s: %s", self.path, exc)


_SHARED: dict[Path, HashCache] = {}
_SHARED_LOCK = threading.Lock()


def shared_cache(path: str | os.PathLike[str] | None = None) -> HashCache:
    """The one :class:`HashCache` object for the cache file ``path`` (default: the user cache's
    ``library/hashes.json``), so the library and generation never hold two copies of one file
    that overwrite each other's entries on save."""
    key = Path(path) if path is not None else default_cache_path()
    with _SHARED_LOCK:
        cache = _SHARED.get(key)
        if cache is None:
            cache = _SHARED[key] = HashCache(key)
        return cache
