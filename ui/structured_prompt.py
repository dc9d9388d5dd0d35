"""Scene + characters ⇄ the markdown list Z-Image follows (pure Python, no Qt).

Format (one line each)::

    - <scene>
    - <who> -- <attribute> -- <attribute> -- <position>

Z-Image's Qwen3 encoder was trained on such lists; attributes and positions stay attached to the
right character far better than in one flat sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SEPARATOR = " -- "
POSITIONS = (
    "",
    "on the left",
    "in the center",
    "on the right",
    "in the foreground",
    "in the background",
    "at the top",
    "at the bottom",
)
_POSITION_STARTS = (
    "on the ",
    "in the ",
    "at the ",
    "to the ",
    "left",
    "right",
    "center",
    "centre",
    "middle",
    "foreground",
    "background",
)


@dataclass
class Character:
    who: str = ""
    attributes: list[str] = field(default_factory=list)
    position: str = ""

    def line(self) -> str:
        parts = [self.who.strip()] + [a.strip() for a in self.attributes if a.strip()]
        if self.position.strip():
            parts.append(self.position.strip())
        return "- " + SEPARATOR.join(p for p in parts if p)


@dataclass
class StructuredPrompt:
    scene: str = ""
    characters: list[Character] = field(default_factory=list)

    def to_markdown(self) -> str:
        lines = []
        scene = " ".join(self.scene.split())
        if scene:
            lines.append(f"- {scene}")
        lines.extend(c.line() for c in self.characters if c.who.strip() or c.attributes)
        return "\n".join(lines)


def _is_position(text: str) -> bool:
    t = text.strip().lower()
    return t in POSITIONS or t.startswith(_POSITION_STARTS)


def parse_markdown(text: str) -> StructuredPrompt | None:
    """Read a prompt written in the list format back; None when the text is not such a list."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if not lines or not all(ln.startswith(("- ", "* ")) for ln in lines):
        return None
    items = [ln[2:].strip() for ln in lines]
    result = StructuredPrompt()
    if SEPARATOR.strip() not in items[0]:
        result.scene = items.pop(0)
    for item in items:
        parts = [p.strip() for p in item.split("--")]
        parts = [p for p in parts if p]
        if not parts:
            continue
        who, rest = parts[0], parts[1:]
        position = rest.pop() if rest and _is_position(rest[-1]) else ""
        result.characters.append(Character(who, rest, position))
    return result


def insert_trigger_words(prompt: str, words: tuple[str, ...] | list[str]) -> str:
    """``prompt`` with the trigger ``words`` it lacks, put where the prompt's form keeps working.

    A markdown-list prompt gets them at the front of its scene line (``- zrobj, in the
    kitchen``), or as a list line of their own when it has no scene line; plain text gets
    them in front, comma-separated (``zitdesk.library.merge_into_prompt``).
    """
    from zitdesk.library import merge_into_prompt

    low = prompt.casefold()
    new = list(
        dict.fromkeys(w.strip() for w in words if w.strip() and w.strip().casefold() not in low)
    )
    if not new:
        return prompt
    if parse_markdown(prompt) is None:
        return merge_into_prompt(prompt, new)
    lines = prompt.strip().splitlines()
    head = ", ".join(new)
    first = next(i for i, ln in enumerate(lines) if ln.strip())
    item = lines[first].strip()[2:].strip()
    if SEPARATOR.strip() not in item:  # the scene line
        lines[first] = f"{lines[first].strip()[:2]}{head}, {item}"
    else:
        lines.insert(first, f"- {head}")
    return "\n".join(lines)
