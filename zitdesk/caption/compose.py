"""How generated text joins a caption: ``replace``, ``append`` or ``prepend``.

Tags are the comma-separated parts (the rule of :func:`zitdesk.dataset.bulk.split_tags`, kept
here too: the engine layer does not import the dataset package); a tag that the
caption already holds (any case, ``_`` or space) is not added twice. A description (a sentence)
is added whole. Parts are joined with ``", "``, which the trainer reads as one line.
"""

from __future__ import annotations


def split_tags(caption: str) -> list[str]:
    return [t.strip() for t in caption.split(",") if t.strip()]


def join_tags(tags: list[str]) -> str:
    return ", ".join(tags)


def _key(part: str) -> str:
    return " ".join(part.lower().replace("_", " ").split())


def compose(mode: str, old: str | None, generated: str, tags: bool = True) -> str:
    """The new caption for ``mode`` (see the module doc). ``tags``: ``generated`` is a tag list
    (tags the caption has are dropped from it); otherwise a description, added whole."""
    gen = generated.strip()
    base = (old or "").strip()
    if mode == "replace" or not base:
        return gen
    if not gen:
        return base
    if not tags:
        first, second = (base, gen) if mode == "append" else (gen, base)
        return f"{first}{' ' if first.endswith(('.', '!', '?')) else ', '}{second}"
    have = {_key(p) for p in split_tags(base)}
    new = [p for p in split_tags(gen) if _key(p) not in have]
    if not new:
        return base
    added = join_tags(new)
    return f"{base}, {added}" if mode == "append" else f"{added}, {base}"
