"""Prompt history: every prompt generated, newest first, with its first image (no Qt).

Stored as JSON (``history.json`` in the data folder) through ``zitdesk.io.atomic_write``; a damaged
file is kept as ``.bak`` and history starts empty.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from zitdesk.io import atomic_write, keep_backup, user_dirs

log = logging.getLogger(__name__)


@dataclass
class HistoryEntry:
    prompt: str
    timestamp: float = field(default_factory=time.time)
    request: dict[str, Any] = field(default_factory=dict)
    thumbnail: str = ""  # the first image of the latest job with this prompt
    uses: int = 1


def history_path() -> Path:
    return user_dirs()["data"] / "history.json"


class HistoryStore:
    def __init__(self, path: Path | None = None, limit: int = 500) -> None:
        self.path = path or history_path()
        self.limit = limit
        self.entries: list[HistoryEntry] = []

    def load(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            rows = data["entries"] if isinstance(data, dict) else []
            self.entries = [
                HistoryEntry(
                    **{k: v for k, v in r.items() if k in HistoryEntry.__dataclass_fields__}
                )
                for r in rows
                if isinstance(r, dict) and isinstance(r.get("prompt"), str)
            ]
        except FileNotFoundError:
            self.entries = []
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("prompt history %s is damaged (%s); starting empty", self.path, exc)
            keep_backup(self.path)
            self.entries = []

    def save(self) -> None:
        atomic_write(
            self.path,
            json.dumps(
                {"version": 1, "entries": [asdict(e) for e in self.entries]}, ensure_ascii=False
            ),
        )

    def record(
        self, prompt: str, request: dict[str, Any], thumbnail: str = ""
    ) -> tuple[HistoryEntry, int]:
        """Add or refresh ``prompt``; returns the entry and its previous index (-1 if new)."""
        old = next((i for i, e in enumerate(self.entries) if e.prompt == prompt), -1)
        if old >= 0:
            entry = self.entries.pop(old)
            entry.timestamp = time.time()
            entry.request = request
            entry.uses += 1
            if thumbnail:
                entry.thumbnail = thumbnail
        else:
            entry = HistoryEntry(prompt, request=request, thumbnail=thumbnail)
        self.entries.insert(0, entry)
        del self.entries[self.limit :]
        return entry, old
