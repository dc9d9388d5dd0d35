"""Bulk caption edits, Qt-free: each operation returns the changes it would make, for a preview.

An operation is a frozen dataclass with ``apply(caption) -> new caption``; :func:`preview` runs it
over ``(item, caption)`` pairs and returns ``[(item, old, new)]`` for the captions it changes
(``None`` = no caption file; an operation that adds text creates the file). The caller shows the
list as a diff (:func:`word_diff`) and then applies it as one undoable change.

Tags are the comma-separated parts of a caption (kohya's ``ss_tag_frequency`` rule); a natural
sentence is one tag, so tag operations never split sentences at spaces. Joined tags use ``", "``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from zitdesk.folder import TRIGGER_PLACEHOLDER

T = TypeVar("T")
__all__ = [
    "TRIGGER_PLACEHOLDER",
    "AddTags",
    "AddTrigger",
    "Cleanup",
    "FindReplace",
    "Operation",
    "RemoveTags",
    "has_trigger",
    "join_tags",
    "preview",
    "split_tags",
    "word_diff",
]


class Operation(Protocol):
    label: str

    def apply(self, caption: str | None) -> str | None: ...


def split_tags(caption: str) -> list[str]:
    return [t.strip() for t in caption.split(",") if t.strip()]


def join_tags(tags: Iterable[str]) -> str:
    return ", ".join(tags)


def has_trigger(caption: str | None, trigger: str) -> bool:
    """True if the caption holds ``trigger`` as a whole word (any case) or the placeholder."""
    if not caption or not trigger.strip():
        return False
    if TRIGGER_PLACEHOLDER in caption:
        return True
    pat = r"(?<!\w)" + re.escape(trigger.strip()) + r"(?!\w)"
    return re.search(pat, caption, flags=re.IGNORECASE) is not None


@dataclass(frozen=True)
class AddTrigger:
    """Prefix the trigger word (``"trigger, caption"``) unless the caption already has it."""

    trigger: str

    @property
    def label(self) -> str:
        return f"Add trigger word “{self.trigger.strip()}”"

    def apply(self, caption: str | None) -> str | None:
        trig = self.trigger.strip()
        if not trig or has_trigger(caption, trig):
            return caption
        body = (caption or "").lstrip()
        return f"{trig}, {body}" if body.strip() else trig


@dataclass(frozen=True)
class FindReplace:
    """Plain or regex find/replace; ``regex`` uses Python syntax (``\\1`` in the replacement)."""

    find: str
    replace: str
    regex: bool = False
    case_sensitive: bool = True

    @property
    def label(self) -> str:
        return f"Replace “{self.find}” with “{self.replace}”"

    def _pattern(self) -> re.Pattern[str]:
        flags = 0 if self.case_sensitive else re.IGNORECASE
        try:
            return re.compile(self.find if self.regex else re.escape(self.find), flags)
        except re.error as exc:
            raise ValueError(f"Invalid regular expression: {exc}") from None

    def apply(self, caption: str | None) -> str | None:
        if caption is None or not self.find:
            return caption
        pat = self._pattern()
        if self.regex:
            try:
                return pat.sub(self.replace, caption)
            except (re.error, IndexError) as exc:
                raise ValueError(f"Invalid replacement: {exc}") from None
        return pat.sub(lambda _m: self.replace, caption)


@dataclass(frozen=True)
class AddTags:
    """Add tags at the start or end; tags already present (any case) are not added again."""

    tags: tuple[str, ...]
    at_start: bool = False

    @property
    def label(self) -> str:
        return f"Add tags {', '.join(self.tags)}"

    def apply(self, caption: str | None) -> str | None:
        have = split_tags(caption or "")
        lower = {t.lower() for t in have}
        new = []
        for t in (x.strip() for x in self.tags):
            if t and t.lower() not in lower:
                new.append(t)
                lower.add(t.lower())
        if not new:
            return caption
        return join_tags(new + have if self.at_start else have + new)


@dataclass(frozen=True)
class RemoveTags:
    """Remove tags (whole comma-separated parts, any case)."""

    tags: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"Remove tags {', '.join(self.tags)}"

    def apply(self, caption: str | None) -> str | None:
        if caption is None:
            return None
        drop = {t.strip().lower() for t in self.tags if t.strip()}
        have = split_tags(caption)
        kept = [t for t in have if t.lower() not in drop]
        return caption if len(kept) == len(have) else join_tags(kept)


@dataclass(frozen=True)
class Cleanup:
    """Trim whitespace, collapse runs of spaces, drop empty and duplicate tags (first kept)."""

    dedupe_tags: bool = True

    @property
    def label(self) -> str:
        return (
            "Clean up whitespace and duplicate tags" if self.dedupe_tags else "Clean up whitespace"
        )

    def apply(self, caption: str | None) -> str | None:
        if caption is None:
            return None
        lines = [" ".join(line.split()) for line in caption.strip().split("\n")]
        text = "\n".join(line for line in lines if line)
        if "," in text:
            tags = split_tags(text)
            if self.dedupe_tags:
                seen: set[str] = set()
                unique = []
                for t in tags:
                    if t.lower() not in seen:
                        seen.add(t.lower())
                        unique.append(t)
                tags = unique
            text = join_tags(tags)
        return text


def preview(
    op: Operation, items: Iterable[tuple[T, str | None]]
) -> list[tuple[T, str | None, str | None]]:
    """``[(item, old, new)]`` for every caption ``op`` changes. Raises ValueError on bad input."""
    out = []
    for item, old in items:
        new = op.apply(old)
        if new != old:
            out.append((item, old, new))
    return out


_WORD = re.compile(r"\s+|[^\s,]+|,")


def word_diff(old: str | None, new: str | None) -> list[tuple[str, str]]:
    """Word-level diff: ``[(kind, text)]`` with kind ``=``, ``-`` or ``+`` (for previews)."""
    a, b = _WORD.findall(old or ""), _WORD.findall(new or "")
    out: list[tuple[str, str]] = []
    sm = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal":
            out.append(("=", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(("-", "".join(a[i1:i2])))
        if j2 > j1:
            out.append(("+", "".join(b[j1:j2])))
    return out
