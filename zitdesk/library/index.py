"""The LoRA library index: scan folders, read headers and sidecars, cache by path+size+mtime.

:class:`LibraryIndex` walks folders recursively and turns every LoRA-looking file into a
:class:`LoraEntry`: architecture, dialect, rank, alpha, targets and coverage from the safetensors
header (:mod:`zitdesk.lora.inspect`, header only plus the few bytes of scalar ``.alpha`` tensors),
metadata from every dialect (kohya ``ss_*``, ``modelspec.*``, ai-toolkit/zitdesk keys), every
sidecar (:mod:`zitdesk.library.sidecars`), a preview (:mod:`zitdesk.library.previews`) and,
once computed in the background, hashes (:mod:`zitdesk.hashing`).

* Pickle-based files (``.ckpt``, ``.pt``, ``.pth``, ``.pkl``) are listed as *unsupported* and
  never opened. GGUF files too.
* A file that cannot be read (truncated, hostile header, invalid JSON, wrong offsets) becomes an
  entry with ``status == "error"`` and a plain message; the scan goes on.
* Files of other architectures are entries with ``compatible == False`` and the reason: the UI
  greys them out, it never hides them.

Rescans are incremental: an entry is reused while the file's size and mtime *and* the names,
sizes and mtimes of its sidecars/previews are unchanged, and while coverage is measured against
the same module set. The cache is one JSON file in the user cache folder, written atomically.
A file that disappears while another with the same size, mtime and suffix appears is reported
as *moved*, so favourites and hashes follow renames.

Thread-safety: one scan at a time (a lock); :attr:`LibraryIndex.entries` returns a snapshot.
Entries are replaced, never mutated, so a snapshot handed to the UI stays consistent.
Cancel: ``cancel()`` is polled between files; a cancelled scan keeps what it had and does not
drop entries it did not reach.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from zitdesk.hashing import FileHashes, HashCache, shared_cache
from zitdesk.io import atomic_write, user_dirs
from zitdesk.library.entry import LoraEntry, ScanResult, TriggerWord
from zitdesk.library.reading import (
    GENERIC_TITLES,
    META_VALUE_LIMIT,
    SOURCE_ORDER,
    TRAINING_KEYS,
    choose_title,
    inspect_file,
    merge_trigger_words,
)
from zitdesk.library.roots import Root
from zitdesk.library.walk import (
    COMPANION_SUFFIXES,
    LORA_EXTS,
    MAX_DEPTH,
    OTHER_EXTS,
    SCAN_EXTS,
    UNSAFE_EXTS,
    Found,
    walk,
)

__all__ = [
    "COMPANION_SUFFIXES",
    "GENERIC_TITLES",
    "INDEX_VERSION",
    "LORA_EXTS",
    "MAX_DEPTH",
    "META_VALUE_LIMIT",
    "OTHER_EXTS",
    "SCAN_EXTS",
    "SOURCE_ORDER",
    "TRAINING_KEYS",
    "UNSAFE_EXTS",
    "Found",
    "LibraryIndex",
    "LoraEntry",
    "ScanResult",
    "TriggerWord",
    "choose_title",
    "coverage_key",
    "default_cache_path",
    "index_document",
    "inspect_file",
    "merge_trigger_words",
    "walk",
]

log = logging.getLogger(__name__)

INDEX_VERSION = 1


def default_cache_path() -> Path:
    return user_dirs()["cache"] / "library" / "index.json"


def coverage_key(
    module_names: Iterable[str], shapes: Mapping[str, tuple[int, int]] | None = None
) -> str:
    if shapes:
        text = "\n".join(f"{m}={tuple(shapes[m])}" for m in sorted(shapes))
    else:
        text = "\n".join(sorted(module_names))
    return hashlib.sha1(text.encode()).hexdigest()[:16]


_DEFAULT = object()


class LibraryIndex:
    """Incremental, cached index of LoRA files (see the module docstring).

    ``cache_path``: the JSON index cache (default: user cache folder; None: memory only).
    ``module_names``: the configured model's Linear module names for coverage, or its
    ``{module: (out, in)}`` shapes (:func:`zitdesk.lora.fit.model_linear_shapes`), which also
    makes a LoRA with other layer sizes incompatible (default: the real
    Z-Image Turbo set, :func:`zitdesk.models.zimage_tree.full_size_linear_names`).
    ``hash_cache``: a :class:`HashCache` (default: beside the index cache; None: memory only).
    """

    def __init__(
        self,
        cache_path: Any = _DEFAULT,
        module_names: Iterable[str] | None = None,
        hash_cache: Any = _DEFAULT,
        thumbs_dir: Path | None = None,
    ) -> None:
        from zitdesk.models.zimage_tree import full_size_linear_names

        self.cache_path: Path | None = (
            default_cache_path()
            if cache_path is _DEFAULT
            else (Path(cache_path) if cache_path is not None else None)
        )
        if hash_cache is _DEFAULT:
            # the one cache object for the user's hash file, shared with generation
            hash_cache = shared_cache() if self.cache_path is not None else HashCache(None)
        self.hashes: HashCache = hash_cache if hash_cache is not None else HashCache(None)
        self.thumbs_dir = thumbs_dir
        self._module_shapes: dict[str, tuple[int, int]] | None = (
            dict(module_names) if isinstance(module_names, Mapping) else None
        )
        self._module_names = (
            set(module_names) if module_names is not None else full_size_linear_names()
        )
        self._cov_key = coverage_key(self._module_names, self._module_shapes)
        self._lock = threading.RLock()
        self._entries: dict[str, LoraEntry] = {}
        self._keys: dict[str, list[Any]] = {}
        self._loaded = False
        self._dirty = False

    # -- configuration -------------------------------------------------------------------------
    @property
    def module_names(self) -> set[str]:
        return set(self._module_names)

    @property
    def module_shapes(self) -> dict[str, tuple[int, int]] | None:
        return dict(self._module_shapes) if self._module_shapes is not None else None

    def set_module_names(self, names: Iterable[str] | Mapping[str, tuple[int, int]] | None) -> bool:
        """Measure coverage against another model (its module names, or its ``{module: (out, in)}``
        shapes to check sizes too); the next scan re-reads every header."""
        from zitdesk.models.zimage_tree import full_size_linear_names

        shapes = dict(names) if isinstance(names, Mapping) else None
        new = set(names) if names is not None else full_size_linear_names()
        key = coverage_key(new, shapes)
        with self._lock:
            if key == self._cov_key:
                return False
            self._module_names, self._module_shapes, self._cov_key = new, shapes, key
            self._keys.clear()  # every entry is stale; keep them until rescanned
            self._dirty = True
        return True

    # -- access --------------------------------------------------------------------------------
    @property
    def entries(self) -> list[LoraEntry]:
        with self._lock:
            return list(self._entries.values())

    def get(self, path: str) -> LoraEntry | None:
        with self._lock:
            return self._entries.get(path)

    # -- cache ---------------------------------------------------------------------------------
    def _load_cache(self) -> None:
        self._loaded = True
        if self.cache_path is None or not self.cache_path.is_file():
            return
        try:
            doc = json.loads(self.cache_path.read_text(encoding="utf-8"))
            if doc.get("version") != INDEX_VERSION:
                return
            same_cov = doc.get("coverage_key") == self._cov_key
            for item in doc.get("entries", []):
                entry = LoraEntry.from_dict(item["entry"])
                self._entries[entry.path] = entry
                if same_cov:
                    self._keys[entry.path] = item["key"]
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            log.warning("ignoring unreadable library cache %s: %s", self.cache_path, exc)
            self._entries.clear()
            self._keys.clear()

    def save(self) -> None:
        """Write the index cache (atomically) and the hash cache, if anything changed."""
        self.hashes.save()
        if self.cache_path is None:
            return
        with self._lock:
            if not self._dirty:
                return
            items = []
            for path, entry in self._entries.items():
                d = asdict(entry)
                d.pop("sha256", None)
                d.pop("addnet", None)
                d.pop("hash_error", None)
                items.append({"key": self._keys.get(path), "entry": d})
            doc = {"version": INDEX_VERSION, "coverage_key": self._cov_key, "entries": items}
            self._dirty = False
        try:
            atomic_write(
                self.cache_path, json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
            )
        except OSError as exc:
            log.warning("cannot save the library cache %s: %s", self.cache_path, exc)

    # -- scanning ------------------------------------------------------------------------------
    def scan(
        self,
        roots: Iterable[str | os.PathLike[str] | Root],
        *,
        cancel: Callable[[], bool] | None = None,
        progress: Callable[[int, int], None] | None = None,
        on_batch: Callable[[list[LoraEntry]], None] | None = None,
        save: bool = True,
    ) -> ScanResult:
        """Scan ``roots`` recursively and return every entry under them.

        ``progress(done, total)`` is called while files are read (from this thread);
        ``on_batch(entries)`` receives freshly read entries about 4 times a second during a cold
        scan, so a UI can show them before the scan ends. Entries of folders that are no longer
        scanned are dropped from the index.
        """
        t0 = time.perf_counter()
        root_objs = [r if isinstance(r, Root) else Root(str(r), "user") for r in roots]
        with self._lock:
            if not self._loaded:
                self._load_cache()
            found: list[Found] = []
            missing: list[str] = []
            seen_paths: set[str] = set()
            for r in root_objs:
                if not os.path.isdir(r.path):
                    missing.append(r.path)
                    continue
                for f in walk(r.path, cancel):
                    if f.path not in seen_paths:
                        seen_paths.add(f.path)
                        found.append(f)
            result = ScanResult(entries=[], roots=root_objs, missing_roots=missing)
            old_paths = set(self._entries)
            new_entries: dict[str, LoraEntry] = {}
            new_keys: dict[str, list[Any]] = {}
            batch: list[LoraEntry] = []
            last_emit = last_progress = time.perf_counter()
            total = len(found)
            for i, f in enumerate(found):
                if cancel is not None and cancel():
                    result.cancelled = True
                    break
                key = f.key
                cached = self._entries.get(f.path)
                if cached is not None and self._keys.get(f.path) == key and _preview_ok(cached):
                    entry = cached
                    if entry.root != f.root:
                        entry = replace(entry, root=f.root)
                    result.reused += 1
                else:
                    entry = inspect_file(
                        f, self._module_names, self.thumbs_dir, self._module_shapes
                    )
                    result.inspected += 1
                    (result.changed if f.path in old_paths else result.added).append(f.path)
                    batch.append(entry)
                    self._dirty = True
                entry = self._with_hashes(entry)
                new_entries[f.path] = entry
                new_keys[f.path] = key
                now = time.perf_counter()
                if progress is not None and (now - last_progress > 0.1 or i + 1 == total):
                    progress(i + 1, total)
                    last_progress = now
                if on_batch is not None and batch and now - last_emit > 0.25:
                    on_batch(batch)
                    batch = []
                    last_emit = now
            if on_batch is not None and batch:
                on_batch(batch)
            if result.cancelled:
                # Keep what was not reached, so a cancelled scan loses nothing.
                for p, e in self._entries.items():
                    if p not in new_entries:
                        new_entries[p] = e
                        if p in self._keys:
                            new_keys[p] = self._keys[p]
            else:
                removed = sorted(old_paths - set(new_entries))
                result.removed = removed
                result.moved = self._detect_moves(removed, result.added, new_entries)
                if removed:
                    self._dirty = True
                self.hashes.prune(set(new_entries))
            self._entries, self._keys = new_entries, new_keys
            result.entries = list(new_entries.values())
        if save and not result.cancelled:
            self.save()
        result.elapsed_s = time.perf_counter() - t0
        return result

    def _detect_moves(
        self, removed: list[str], added: list[str], new: dict[str, LoraEntry]
    ) -> list[tuple[str, str]]:
        old_by_sig: dict[tuple[int, int, str], list[str]] = {}
        for p in removed:
            e = self._entries[p]
            old_by_sig.setdefault((e.size, e.mtime_ns, os.path.splitext(p)[1].lower()), []).append(
                p
            )
        moves = []
        for p in added:
            e = new[p]
            cands = old_by_sig.get((e.size, e.mtime_ns, os.path.splitext(p)[1].lower()), [])
            if len(cands) == 1:
                old = cands.pop()
                moves.append((old, p))
                self.hashes.move(old, p)
                new[p] = self._with_hashes(e)
        return moves

    def _with_hashes(self, entry: LoraEntry) -> LoraEntry:
        h = self.hashes.get(entry.path, entry.size, entry.mtime_ns)
        if h is None:
            if entry.sha256:
                return replace(entry, sha256="", addnet="")
            return entry
        if entry.sha256 == h.sha256 and entry.addnet == h.addnet:
            return entry
        return replace(entry, sha256=h.sha256, addnet=h.addnet, hash_error="")

    # -- hashes --------------------------------------------------------------------------------
    def hash_pending(self) -> list[LoraEntry]:
        """Entries whose hashes are not known yet (compatible ones first, then by name)."""
        with self._lock:
            pending = [e for e in self._entries.values() if not e.sha256 and not e.hash_error]
        pending.sort(key=lambda e: (not e.compatible, e.file_name.lower()))
        return pending

    def compute_hashes(
        self, path: str, cancelled: Callable[[], bool] | None = None
    ) -> LoraEntry | None:
        """Hash one file now (or take the cached hashes); returns the updated entry.

        Raises :class:`zitdesk.hashing.HashCancelled` when ``cancelled()`` turns true.
        A file that cannot be read gets ``hash_error`` instead of an exception.
        """
        with self._lock:
            entry = self._entries.get(path)
        if entry is None:
            return None
        try:
            h: FileHashes = self.hashes.compute(path, entry.size, entry.mtime_ns, cancelled)
            updated = replace(entry, sha256=h.sha256, addnet=h.addnet, hash_error="")
        except OSError as exc:
            updated = replace(
                entry, hash_error=f"Cannot hash {entry.file_name}: {exc.strerror or exc}."
            )
        with self._lock:
            if self._entries.get(path) is entry:
                self._entries[path] = updated
        return updated

    def duplicates(self) -> list[list[str]]:
        """Groups of paths with the same sha256 (identical files), largest groups first."""
        return _groups(self.entries, "sha256")

    def same_weights(self) -> list[list[str]]:
        """Groups with the same tensor data but different files (metadata edited or re-saved)."""
        groups = _groups(self.entries, "addnet")
        dup = {p for g in self.duplicates() for p in g}
        return [g for g in groups if not set(g) <= dup]


def _preview_ok(entry: LoraEntry) -> bool:
    """A decoded embedded thumbnail lives in the cache folder, which may have been cleaned."""
    return (
        not entry.preview
        or not entry.preview_source.startswith("modelspec.thumbnail")
        or os.path.exists(entry.preview)
    )


def _groups(entries: list[LoraEntry], attr: str) -> list[list[str]]:
    by: dict[str, list[str]] = {}
    for e in entries:
        v = getattr(e, attr)
        if v:
            by.setdefault(v, []).append(e.path)
    groups = [sorted(g) for g in by.values() if len(g) > 1]
    groups.sort(key=lambda g: (-len(g), g[0]))
    return groups


def index_document(result: ScanResult, index: LibraryIndex, store: Any = None) -> dict[str, Any]:
    """The JSON document printed by ``zitdesk lora scan --json``."""
    records = store.records() if store is not None else {}
    entries = []
    for e in sorted(result.entries, key=lambda e: e.path):
        d = e.to_dict()
        rec = records.get(e.path)
        if rec is not None and not rec.is_empty:
            d["user"] = {
                "favourite": rec.favourite,
                "rating": rec.rating,
                "notes": rec.notes,
                "preview": rec.preview,
            }
        entries.append(d)
    return {
        "version": INDEX_VERSION,
        "roots": [{"path": r.path, "origin": r.origin} for r in result.roots],
        "missing_roots": result.missing_roots,
        "count": len(result.entries),
        "compatible": sum(1 for e in result.entries if e.compatible),
        "errors": sum(1 for e in result.entries if e.status == "error"),
        "unsupported": sum(1 for e in result.entries if e.status == "unsupported"),
        "inspected": result.inspected,
        "reused": result.reused,
        "elapsed_s": round(result.elapsed_s, 3),
        "coverage_against": "model" if index.module_names != _full_names() else "z-image-turbo",
        "duplicates": index.duplicates(),
        "same_weights": index.same_weights(),
        "entries": entries,
    }


def _full_names() -> set[str]:
    from zitdesk.models.zimage_tree import full_size_linear_names

    return full_size_linear_names()
