"""The user's own LoRA data: favourites, rating, notes, chosen previews and library folders.

Kept in zitdesk's data folder (``library/library.json``), never in the LoRA files or beside them:
shared ComfyUI/Forge folders stay untouched. Records are keyed by the LoRA's path and carry its
sha256 once known, so a file that was renamed or moved keeps its record (see
:meth:`LibraryStore.move` and :meth:`LibraryStore.adopt_by_hash`).

Loading is tolerant (a damaged file is copied to ``library.json.bak`` and the store starts
empty; bad fields are dropped one by one) and every save is atomic. Thread-safe.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from zitdesk.io import atomic_save, atomic_write, keep_backup, user_dirs

log = logging.getLogger(__name__)

STORE_VERSION = 1
MAX_NOTES = 20_000
PREVIEW_MAX_SIDE = 512


@dataclass(frozen=True)
class UserRecord:
    favourite: bool = False
    rating: int = 0  # 0 = unrated, 1..5 stars
    notes: str = ""
    preview: str = ""  # an image in zitdesk's data folder chosen by the user
    sha256: str = ""
    updated: float = 0.0

    @property
    def is_empty(self) -> bool:
        return not (self.favourite or self.rating or self.notes or self.preview)


def default_store_path() -> Path:
    return user_dirs()["data"] / "library" / "library.json"


def _record(d: Any) -> UserRecord | None:
    if not isinstance(d, dict):
        return None
    out: dict[str, Any] = {}
    if isinstance(d.get("favourite"), bool):
        out["favourite"] = d["favourite"]
    r = d.get("rating")
    if isinstance(r, int) and not isinstance(r, bool) and 0 <= r <= 5:
        out["rating"] = r
    for k in ("notes", "preview", "sha256"):
        if isinstance(d.get(k), str):
            out[k] = d[k][:MAX_NOTES]
    if isinstance(d.get("updated"), (int, float)) and not isinstance(d.get("updated"), bool):
        out["updated"] = float(d["updated"])
    return UserRecord(**out)


class LibraryStore:
    """Favourites, ratings, notes, user previews and the user's library folders."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        self._lock = threading.RLock()
        self._records: dict[str, UserRecord] = {}
        self._folders: list[str] = []
        self._load()

    # -- persistence ---------------------------------------------------------------------------
    def _load(self) -> None:
        if not self.path.is_file():
            return
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(doc, dict):
                raise ValueError("not a JSON object")  # noqa: TRY004 - handled just below
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            bak = keep_backup(self.path)
            log.warning(
                "library store %s is unreadable (%s); a copy is kept as %s", self.path, exc, bak
            )
            return
        folders = doc.get("folders")
        if isinstance(folders, list):
            self._folders = [f for f in folders if isinstance(f, str) and f]
        items = doc.get("items")
        if isinstance(items, dict):
            for p, d in items.items():
                rec = _record(d)
                if rec is not None and isinstance(p, str):
                    self._records[p] = rec

    def save(self) -> None:
        with self._lock:
            doc = {
                "version": STORE_VERSION,
                "folders": list(self._folders),
                "items": {p: asdict(r) for p, r in sorted(self._records.items()) if not r.is_empty},
            }
        atomic_write(self.path, json.dumps(doc, indent=1, ensure_ascii=False))

    # -- records -------------------------------------------------------------------------------
    def get(self, path: str) -> UserRecord:
        with self._lock:
            return self._records.get(str(path), UserRecord())

    def records(self) -> dict[str, UserRecord]:
        with self._lock:
            return dict(self._records)

    def update(self, path: str, save: bool = True, **changes: Any) -> UserRecord:
        """Change fields of one record (``favourite``, ``rating``, ``notes``, ``preview``, ``sha256``)."""
        if "rating" in changes:
            changes["rating"] = max(0, min(5, int(changes["rating"])))
        if "notes" in changes:
            changes["notes"] = str(changes["notes"])[:MAX_NOTES]
        with self._lock:
            rec = replace(self.get(path), **changes, updated=time.time())
            self._records[str(path)] = rec
        if save:
            self.save()
        return rec

    def set_favourite(self, path: str, on: bool) -> UserRecord:
        return self.update(path, favourite=bool(on))

    def set_rating(self, path: str, rating: int) -> UserRecord:
        return self.update(path, rating=rating)

    def set_notes(self, path: str, notes: str) -> UserRecord:
        return self.update(path, notes=notes)

    def favourites(self) -> set[str]:
        with self._lock:
            return {p for p, r in self._records.items() if r.favourite}

    def move(self, old: str, new: str, save: bool = True) -> bool:
        """A LoRA was renamed or moved: its record follows it (unless ``new`` has one)."""
        with self._lock:
            rec = self._records.get(old)
            if rec is None or not self.get(new).is_empty:
                return False
            self._records[new] = self._records.pop(old)
        if save:
            self.save()
        return True

    def adopt_by_hash(self, path: str, sha256: str, existing: set[str]) -> bool:
        """Give ``path`` the record of a file with the same sha256 that no longer exists."""
        if not sha256:
            return False
        with self._lock:
            if not self.get(path).is_empty:
                if self.get(path).sha256 != sha256:
                    self._records[path] = replace(self._records[path], sha256=sha256)
                return False
            for old, rec in self._records.items():
                if (
                    rec.sha256 == sha256
                    and old != path
                    and old not in existing
                    and not Path(old).exists()
                ):
                    self._records[path] = self._records.pop(old)
                    break
            else:
                return False
        self.save()
        return True

    # -- previews ------------------------------------------------------------------------------
    def previews_dir(self) -> Path:
        return self.path.parent / "previews"

    def set_preview_from_image(self, lora_path: str, image_path: str | os.PathLike[str]) -> Path:
        """Keep a downscaled copy of ``image_path`` as the LoRA's preview (in zitdesk's folder).

        Raises ``OSError``/``ValueError`` for unreadable images. The copy survives the gallery
        image being deleted; the LoRA's folder is not written to.
        """
        import hashlib

        from PIL import Image

        key = hashlib.sha1(str(lora_path).encode("utf-8", "surrogatepass")).hexdigest()[:16]
        target = self.previews_dir() / f"{key}-{int(time.time() * 1000)}.png"
        with Image.open(image_path) as opened:
            opened.draft("RGB", (PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE))
            im: Image.Image = (
                opened.convert("RGBA")
                if opened.mode in ("RGBA", "LA", "P")
                else opened.convert("RGB")
            )
            im.thumbnail((PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE))
            atomic_save(target, lambda tmp: im.save(tmp, format="PNG"))
        old = self.get(lora_path).preview
        self.update(lora_path, preview=str(target))
        if old and Path(old).parent == self.previews_dir():
            try:
                Path(old).unlink()
            except OSError:
                pass
        return target

    def clear_preview(self, lora_path: str) -> None:
        old = self.get(lora_path).preview
        self.update(lora_path, preview="")
        if old and Path(old).parent == self.previews_dir():
            try:
                Path(old).unlink()
            except OSError:
                pass

    # -- folders -------------------------------------------------------------------------------
    @property
    def folders(self) -> list[str]:
        with self._lock:
            return list(self._folders)

    def add_folder(self, folder: str) -> bool:
        folder = str(Path(folder).expanduser().resolve())
        with self._lock:
            if folder in self._folders:
                return False
            self._folders.append(folder)
        self.save()
        return True

    def remove_folder(self, folder: str) -> bool:
        with self._lock:
            if folder not in self._folders:
                return False
            self._folders.remove(folder)
        self.save()
        return True


__all__ = ["LibraryStore", "UserRecord", "default_store_path"]
