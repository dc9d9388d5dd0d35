"""Caption text: the one decoder both the dataset manager and the trainer use.

A caption sidecar (``<image stem>.txt``) is decoded as UTF-8 (a leading BOM is tolerated and
remembered); a file that is not valid UTF-8 is decoded as Windows-1252, the usual culprit from
older Windows tools, with U+FFFD for the few bytes cp1252 does not define. In memory a caption has
``\\n`` line ends and no BOM (:func:`normalise_caption`); :func:`encode_caption` writes it back in
the file's own style (BOM, CRLF), always as UTF-8.

The trainer sees :func:`caption_line` of that text (whitespace runs joined to single spaces), so
a cp1252 caption trains with the same words the dataset manager shows. File signatures, conflict
files and atomic writes of captions live in :mod:`zitdesk.dataset.captions`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class CaptionStyle:
    """How a caption file was written: UTF-8 BOM, CRLF line ends, valid UTF-8 (else cp1252)."""

    bom: bool = False
    crlf: bool = False
    utf8: bool = True


def decode_caption(data: bytes) -> tuple[str, CaptionStyle]:
    """Caption bytes → (normalised text, the file's style). Never raises."""
    bom = data.startswith(BOM)
    body = data[len(BOM) :] if bom else data
    try:
        text = body.decode("utf-8")
        utf8 = True
    except UnicodeDecodeError:
        text = body.decode("cp1252", errors="replace")
        utf8 = False
    crlf = "\r\n" in text
    return normalise_caption(text), CaptionStyle(bom=bom, crlf=crlf, utf8=utf8)


def normalise_caption(text: str) -> str:
    """A caption as it is held in memory and journaled: ``\\n`` line ends, no leading BOM.

    Every text that enters a dataset (an edit, an undo entry, a file read back) goes through
    this, so what the journal stores compares equal to what the file gives after a restart.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    if _SURROGATE.search(text):  # a lone surrogate (pasted text) cannot be written as UTF-8
        text = _SURROGATE.sub("\ufffd", text)
    return text


_SURROGATE = re.compile("[\ud800-\udfff]")


def encode_caption(text: str, style: CaptionStyle = CaptionStyle()) -> bytes:
    """Text → UTF-8 bytes in ``style`` (BOM, CRLF)."""
    body = normalise_caption(text)
    if style.crlf:
        body = body.replace("\n", "\r\n")
    data = body.encode("utf-8")
    return BOM + data if style.bom else data


def caption_line(text: str) -> str:
    """The caption as the trainer uses it: whitespace-trimmed and joined to one line."""
    return " ".join(text.split())


def read_caption(path: Path) -> str:
    """The trainer's caption of the sidecar at ``path`` (:func:`decode_caption` +
    :func:`caption_line`). Raises ``OSError`` when the file cannot be read."""
    text, _ = decode_caption(Path(path).read_bytes())
    return caption_line(text)
