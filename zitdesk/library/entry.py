"""The library's records: :class:`LoraEntry` (one file, as the UI and ``zitdesk lora scan --json``
see it), its :class:`TriggerWord` list, and :class:`ScanResult` (what one scan found).

Entries are frozen and replaced, never mutated; ``to_dict``/``from_dict`` are the index cache's
and the CLI's JSON form.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any

from zitdesk.hashing import autov2, autov3
from zitdesk.library.roots import Root
from zitdesk.library.sidecars import Sidecar


@dataclass(frozen=True)
class TriggerWord:
    """A trigger word, the source that won, and every source that states it."""

    word: str
    source: str  # e.g. "modelspec.trigger_phrase", "A1111/Forge .json"
    sources: tuple[str, ...] = ()
    from_tags: bool = False  # only from the top of ss_tag_frequency (a guess, not declared)

    def to_dict(self) -> dict[str, Any]:
        return {
            "word": self.word,
            "source": self.source,
            "sources": list(self.sources),
            "from_tags": self.from_tags,
        }


@dataclass(frozen=True)
class LoraEntry:
    """One file of the library, as the UI and ``zitdesk lora scan --json`` see it."""

    path: str
    root: str = ""
    size: int = 0
    mtime_ns: int = 0
    status: str = "ok"  # ok | error (unreadable) | unsupported (unsafe/other format)
    error: str = ""
    arch: str = "unknown"
    arch_label: str = "unknown"
    dialect: str = "unknown"
    rank: int | None = None
    alpha: float | None = None
    n_tensors: int = 0
    target_count: int = 0
    fused_qkv: bool = False
    coverage_matched: int = 0
    coverage_total: int = 0
    coverage_percent: float = 0.0
    model_targets: int = 0
    compatible: bool = False
    reason: str = ""  # one plain sentence: why (in)compatible
    unknown_key_count: int = 0
    unsupported_key_count: int = 0
    base_model_version: str = (
        ""  # what the metadata claims (ss_base_model_version, modelspec.architecture)
    )
    title: str = ""
    author: str = ""
    description: str = ""
    preferred_weight: float | None = None
    trigger_words: tuple[TriggerWord, ...] = ()
    tags: tuple[str, ...] = ()
    top_tags: tuple[tuple[str, int], ...] = ()
    training: dict[str, str] = field(default_factory=dict)
    has_metadata: bool = False
    metadata: dict[str, str] = field(default_factory=dict)  # values cut at META_VALUE_LIMIT
    sidecars: tuple[Sidecar, ...] = ()
    preview: str = ""
    preview_source: str = ""
    sha256: str = ""
    addnet: str = ""
    hash_error: str = ""

    # -- derived -------------------------------------------------------------------------------
    @property
    def file_name(self) -> str:
        return os.path.basename(self.path)

    @property
    def stem(self) -> str:
        name = self.file_name
        dot = name.rfind(".")
        return name[:dot] if dot > 0 else name

    @property
    def display_name(self) -> str:
        return self.title or self.stem

    @property
    def folder(self) -> str:
        return os.path.dirname(self.path)

    @property
    def coverage_badge(self) -> str:
        return f"{self.coverage_matched}/{self.coverage_total}" if self.coverage_total else ""

    @property
    def autov2(self) -> str:
        return autov2(self.sha256)

    @property
    def autov3(self) -> str:
        return autov3(self.addnet)

    @property
    def declared_triggers(self) -> list[str]:
        return [t.word for t in self.trigger_words if not t.from_tags]

    @property
    def default_insert_triggers(self) -> list[str]:
        """What "insert trigger words" adds by default: the declared ones, else the top tag."""
        declared = self.declared_triggers
        if declared:
            return declared
        return [self.trigger_words[0].word] if self.trigger_words else []

    # -- JSON ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["trigger_words"] = [t.to_dict() for t in self.trigger_words]
        d["sidecars"] = [s.to_dict() for s in self.sidecars]
        d["tags"] = list(self.tags)
        d["top_tags"] = [list(t) for t in self.top_tags]
        d["file_name"] = self.file_name
        d["name"] = self.display_name
        d["folder"] = self.folder
        d["coverage_badge"] = self.coverage_badge
        d["autov2"] = self.autov2
        d["autov3"] = self.autov3
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LoraEntry:
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        kw["trigger_words"] = tuple(
            TriggerWord(
                t["word"],
                t.get("source", ""),
                tuple(t.get("sources", ())),
                bool(t.get("from_tags")),
            )
            for t in d.get("trigger_words", ())
            if isinstance(t, dict) and isinstance(t.get("word"), str)
        )
        kw["sidecars"] = tuple(
            Sidecar.from_dict(s) for s in d.get("sidecars", ()) if isinstance(s, dict)
        )
        kw["tags"] = tuple(str(t) for t in d.get("tags", ()))
        kw["top_tags"] = tuple((str(t[0]), int(t[1])) for t in d.get("top_tags", ()) if len(t) == 2)
        return cls(**kw)


@dataclass
class ScanResult:
    """What one :meth:`LibraryIndex.scan` found."""

    entries: list[LoraEntry]
    roots: list[Root]
    missing_roots: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    moved: list[tuple[str, str]] = field(default_factory=list)
    inspected: int = 0
    reused: int = 0
    elapsed_s: float = 0.0
    cancelled: bool = False

    @property
    def errors(self) -> int:
        return sum(1 for e in self.entries if e.status != "ok")
