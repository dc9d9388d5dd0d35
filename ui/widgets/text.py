"""Untrusted text in widgets: file names, LoRA metadata, captions, prompts read from images.

Qt renders a string as rich text when it *looks* like HTML (``Qt.AutoText`` for labels and
message boxes, ``Qt.mightBeRichText`` for tooltips), so a LoRA named ``<img src=x>.safetensors``
or a caption file ``<b>cat</b>.txt`` would be drawn as markup. The rules:

* a label that shows such text is plain: :func:`plain_label` / :func:`make_plain`;
* a label with intended markup (a bold heading, a "show" link) is :func:`rich_label` and every
  untrusted piece in it goes through :func:`esc`;
* a tooltip with untrusted text goes through :func:`plain_tooltip` (or :func:`set_plain_tooltip`):
  it is shown literally, whatever it contains;
* a message box with untrusted text is plain (:func:`make_plain` works on it too);
* a menu entry or button named after a file goes through :func:`menu_text` ("&" is a mnemonic);
* a window title named after a file goes through :func:`window_title` ("[*]" is a placeholder);
* a progress bar format with such text goes through :func:`progress_text` ("%v" is a placeholder).
"""

from __future__ import annotations

import html
from typing import TypeVar

from PySide6.QtCore import Qt
from PySide6.QtGui import Qt as GuiQt  # Qt.mightBeRichText lives in the QtGui namespace
from PySide6.QtWidgets import QLabel, QMessageBox, QWidget

T = TypeVar("T", QLabel, QMessageBox)


def esc(text: object) -> str:
    """``text`` as HTML that shows it literally (for rich-text labels with untrusted pieces)."""
    return html.escape(str(text), quote=True)


def esc_lines(text: object) -> str:
    """Like :func:`esc`, keeping line breaks (``<br>``)."""
    return esc(text).replace("\r\n", "\n").replace("\n", "<br>")


def make_plain(widget: T) -> T:
    """Never interpret this label's / message box's text as markup."""
    widget.setTextFormat(Qt.TextFormat.PlainText)
    return widget


def plain_label(
    text: str = "",
    object_name: str = "",
    *,
    wrap: bool = False,
    selectable: bool = False,
    parent: QWidget | None = None,
) -> QLabel:
    """A label whose text is always shown as it is (names, metadata, captions, messages)."""
    label = make_plain(QLabel(parent))
    if object_name:
        label.setObjectName(object_name)
    label.setWordWrap(wrap)
    if selectable:
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setText(text)
    return label


def rich_label(html_text: str = "", object_name: str = "", *, wrap: bool = False) -> QLabel:
    """A label with intended markup: every untrusted piece of ``html_text`` goes through esc()."""
    label = QLabel()
    label.setTextFormat(Qt.TextFormat.RichText)
    if object_name:
        label.setObjectName(object_name)
    label.setWordWrap(wrap)
    label.setText(html_text)
    return label


def plain_tooltip(text: object) -> str:
    """A tooltip string that Qt shows literally.

    Text Qt would not take for HTML is returned as it is (a plain tooltip, no wrapping); text
    that looks like HTML is escaped into a small rich-text block that shows the same characters,
    line breaks kept.
    """
    s = "" if text is None else str(text)
    if not s or not GuiQt.mightBeRichText(s):
        return s
    return "<p style='white-space:pre-wrap'>" + esc(s) + "</p>"


def menu_text(text: object) -> str:
    """``text`` for a QAction / QMenu / button label: every "&" shown, none taken as a shortcut."""
    return str(text).replace("&", "&&")


def window_title(text: object) -> str:
    """``text`` for ``setWindowTitle``: a "[*]" in a file name is shown, not taken as the
    "modified" placeholder."""
    return str(text).replace("[*]", "[*][*]")


def progress_text(text: object) -> str:
    """``text`` for ``QProgressBar.setFormat``: a "%v", "%m" or "%p" in a name stays as it is
    (a zero-width word joiner after each "%"; Qt has no escape for these placeholders)."""
    return str(text).replace("%", "%\u2060")


def set_plain_tooltip(widget: QWidget, text: object) -> None:
    widget.setToolTip(plain_tooltip(text))
