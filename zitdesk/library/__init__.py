"""zitdesk's LoRA library core (Qt-free).

* :mod:`~zitdesk.library.index`: :class:`LibraryIndex` scans folders incrementally (cache keyed
  by path + size + mtime + sidecar state) into :class:`LoraEntry` records; hostile or broken
  files become per-file errors; other architectures are kept with the reason. Its parts:
  :mod:`~zitdesk.library.entry` (the records), :mod:`~zitdesk.library.walk` (finding files and
  their companions), :mod:`~zitdesk.library.reading` (one file → its entry: header, metadata,
  sidecars, preview, trigger words, title). Public names stay importable from ``index``.
* :mod:`~zitdesk.library.sidecars`: A1111 ``.json``, ``.civitai.info``, ``.cm-info.json``,
  ``.metadata.json`` and ``.swarm.json`` readers (and the A1111 ``.json`` writer).
* :mod:`~zitdesk.library.previews`: preview files and embedded ``modelspec.thumbnail`` data.
* :mod:`~zitdesk.library.hashing`: re-exports :mod:`zitdesk.hashing` (sha256 / AutoV2 / addnet / AutoV3 in one pass, cached; one shared cache object per file).
* :mod:`~zitdesk.library.store`: favourites, rating, notes, chosen previews, library folders.
* :mod:`~zitdesk.library.watcher`: debounced folder watching (watchdog or polling).
* :mod:`~zitdesk.library.roots`: auto-found LoRA folders of ComfyUI, Forge/A1111, SwarmUI …
* ``zitdesk lora scan DIR... --json`` is :mod:`zitdesk.cli.lora`.

:class:`ApplyLoraRequest` is what the library UI hands to Generate ("apply with weight").
"""

from __future__ import annotations

from dataclasses import dataclass

from zitdesk.library.index import LibraryIndex, LoraEntry, ScanResult, TriggerWord
from zitdesk.library.store import LibraryStore, UserRecord


@dataclass(frozen=True)
class ApplyLoraRequest:
    """Add ``path`` to the Generate LoRA stack at ``weight``; if ``insert_triggers``, also put
    ``trigger_words`` into the prompt (those not already in it)."""

    path: str
    weight: float = 1.0
    trigger_words: tuple[str, ...] = ()
    insert_triggers: bool = False


def merge_into_prompt(prompt: str, words: tuple[str, ...] | list[str]) -> str:
    """``prompt`` with the trigger ``words`` it does not contain yet (case-insensitive) put in
    front, comma-separated: ``merge_into_prompt("a cat", ["sks"]) == "sks, a cat"``."""
    low = prompt.casefold()
    new = [w.strip() for w in words if w.strip() and w.strip().casefold() not in low]
    new = list(dict.fromkeys(new))
    if not new:
        return prompt
    head = ", ".join(new)
    rest = prompt.strip()
    return f"{head}, {rest}" if rest else head


__all__ = [
    "ApplyLoraRequest",
    "LibraryIndex",
    "LibraryStore",
    "LoraEntry",
    "ScanResult",
    "TriggerWord",
    "UserRecord",
    "merge_into_prompt",
]
