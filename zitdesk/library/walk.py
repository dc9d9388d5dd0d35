"""Walking library folders: every LoRA-looking file with its companions (sidecars, previews).

:func:`walk` is recursive (symlink loops, dot-folders and a training run's ``checkpoints`` skipped,
:data:`MAX_DEPTH` deep); each :class:`Found` carries the size, mtime and the companions' names,
sizes and mtimes that make up the index's cache key.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from zitdesk.library import previews, sidecars

LORA_EXTS = (".safetensors", ".sft")
UNSAFE_EXTS = (".ckpt", ".pt", ".pth", ".pkl")
OTHER_EXTS = (".gguf",)
SCAN_EXTS = LORA_EXTS + UNSAFE_EXTS + OTHER_EXTS
MAX_DEPTH = 16

#: Companion suffixes whose name/size/mtime are part of an entry's cache key.
COMPANION_SUFFIXES = tuple(sidecars.SIDECAR_SUFFIXES) + previews.PREVIEW_SUFFIXES


@dataclass
class Found:
    """One LoRA-looking file found by :func:`walk`."""

    path: str
    root: str
    size: int
    mtime_ns: int
    names: dict[str, str]  # the folder's lower-case file names → real names
    companions: tuple[tuple[str, int, int], ...]

    @property
    def key(self) -> list[Any]:
        return [self.size, self.mtime_ns, [list(c) for c in self.companions]]


def file_stem(name: str) -> str:
    """``name`` without its last suffix (a leading dot is part of the stem)."""
    dot = name.rfind(".")
    return name[:dot] if dot > 0 else name


def walk(root: str, cancel: Callable[[], bool] | None = None) -> list[Found]:
    """Every LoRA-looking file under ``root`` (recursive, symlink loops and dot-folders skipped)."""
    out: list[Found] = []
    seen_dirs: set[tuple[int, int]] = set()
    stack: list[tuple[str, int]] = [(root, 0)]
    while stack:
        if cancel is not None and cancel():
            break
        folder, depth = stack.pop()
        try:
            st = os.stat(folder)
        except OSError:
            continue
        ident = (st.st_dev, st.st_ino)
        if ident in seen_dirs:
            continue
        seen_dirs.add(ident)
        try:
            with os.scandir(folder) as it:
                listing = list(it)
        except OSError:
            continue
        names: dict[str, str] = {}
        candidates = []
        subdirs = []
        # A training run's checkpoints hold raw optimizer-side tensors, not LoRAs to use.
        run_folder = any(de.name == "run.json" for de in listing)
        for de in listing:
            name = de.name
            try:
                is_dir = de.is_dir()
            except OSError:
                continue
            if is_dir:
                if run_folder and name == "checkpoints":
                    continue
                if not name.startswith(".") and depth < MAX_DEPTH:
                    subdirs.append(de.path)
                continue
            low = name.lower()
            names[low] = name
            if low.endswith(SCAN_EXTS) and not name.startswith("."):
                candidates.append(de)
        for de in candidates:
            try:
                st = de.stat()
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            stem_low = file_stem(de.name).lower()
            comps = []
            for suffix in COMPANION_SUFFIXES:
                real = names.get(stem_low + suffix)
                if real is None:
                    continue
                try:
                    cst = os.stat(os.path.join(folder, real))
                except OSError:
                    continue
                comps.append((real, cst.st_size, cst.st_mtime_ns))
            out.append(Found(de.path, root, st.st_size, st.st_mtime_ns, names, tuple(comps)))
        stack.extend((d, depth + 1) for d in sorted(subdirs, reverse=True))
    return out
