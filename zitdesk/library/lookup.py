"""Find a LoRA on this machine from what a shared image says about it (file name and SHA-256).

Images carry file names and hashes, never paths (:func:`zitdesk.imagemeta.public_request`), so
"reuse parameters" looks the file up: first by hash among every file the app has hashed (the one
hash cache, :func:`zitdesk.hashing.shared_cache`: library scans and every generation fill it),
then by file name among the LoRAs the library knows (its index cache file). Nothing is hashed or
scanned here.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from zitdesk.hashing import shared_cache
from zitdesk.library.index import default_cache_path as default_index_path


def _names(name: str) -> set[str]:
    base = re.split(r"[\\/]", name)[-1].lower()
    return {base, base.removesuffix(".safetensors")}


def find_lora(
    name: str, sha256: str = "", *, hash_cache: Path | None = None, index_cache: Path | None = None
) -> str | None:
    """The path of the LoRA ``name`` (file name or stem) with ``sha256`` (full, or the 10-digit
    AutoV2 prefix), or None. With a hash, only a file with that hash matches; without one, a
    file name the library knows exactly once."""
    want = sha256.strip().lower()
    if want and re.fullmatch(r"[0-9a-f]{10,64}", want):
        hits = shared_cache(hash_cache).paths_with(want)
        if hits:
            names = _names(name)
            hits.sort(key=lambda p: (Path(p).name.lower() not in names, p))
            return hits[0]
        return None
    try:
        doc = json.loads((index_cache or default_index_path()).read_text(encoding="utf-8"))
        entries = doc.get("entries", [])
    except (OSError, ValueError, AttributeError):
        return None
    names = _names(name)
    found = []
    for item in entries if isinstance(entries, list) else ():
        path = item.get("entry", {}).get("path") if isinstance(item, dict) else None
        if isinstance(path, str) and _names(path) & names and os.path.isfile(path):
            found.append(path)
    return found[0] if len(set(found)) == 1 else None
