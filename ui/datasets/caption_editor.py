"""The caption editor used by the table (in-cell) and the grid's caption pane.

Keys (as in TagGUI and spreadsheets): Return / Enter commits, Shift+Return inserts a line break,
Escape reverts (in the table it closes the editor without writing; in the pane it restores the
caption the pane was loaded with). Entering the in-cell editor selects the whole caption, so
typing replaces it and an arrow key or a click starts editing in place.

Tag-aware: a ``QCompleter`` over the comma-separated tags already used in the dataset and the
trigger word completes the tag under the cursor; choosing a completion replaces only that tag.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from PySide6.QtCore import QObject, QStringListModel, Qt, Signal
from PySide6.QtGui import QFocusEvent, QKeyEvent, QTextCursor
from PySide6.QtWidgets import QCompleter, QPlainTextEdit, QWidget

from zitdesk.dataset.bulk import split_tags


def tag_vocabulary(captions: Iterable[str | None], trigger: str = "") -> list[str]:
    """Tags used in ``captions`` (most frequent first), with the trigger word first."""
    counts: dict[str, int] = {}
    for cap in captions:
        for tag in split_tags(cap or ""):
            if "\n" not in tag and len(tag) <= 80:
                counts[tag] = counts.get(tag, 0) + 1
    tags = sorted(counts, key=lambda t: (-counts[t], t.casefold()))
    trig = trigger.strip()
    if trig:
        tags = [trig] + [t for t in tags if t != trig]
    return tags


def _tag_span(text: str, pos: int) -> tuple[int, int]:
    """Start and end (exclusive) of the comma-separated tag around ``pos``, spaces trimmed."""
    start = max(text.rfind(",", 0, pos), text.rfind("\n", 0, pos)) + 1
    ends = [i for i in (text.find(",", pos), text.find("\n", pos)) if i >= 0]
    end = min(ends) if ends else len(text)
    while start < pos and text[start] == " ":
        start += 1
    return start, end


def tag_completer(parent: QObject) -> QCompleter:
    """A completer for :class:`CaptionEdit` editors. The in-cell editors of a table share one
    (owned by the delegate): a completer's popup is a window, and destroying one with every
    closed editor takes the active window away on some platforms."""
    c = QCompleter(QStringListModel(parent), parent)
    c.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
    c.setFilterMode(Qt.MatchFlag.MatchStartsWith)
    c.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
    # The list never takes the keyboard: the editor keeps focus and drives it (↑/↓, Return/Tab
    # to take a completion, Esc to close it). A Qt.Popup list became the active window on some
    # platforms and the workspace's shortcuts stopped working after it closed.
    popup = c.popup()
    popup.setWindowFlags(Qt.WindowType.ToolTip)
    popup.setAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)
    popup.setFocusPolicy(Qt.FocusPolicy.NoFocus)

    def insert(word: str) -> None:
        w = c.widget()
        if isinstance(w, CaptionEdit):
            w.insert_completion(word)

    c.activated.connect(insert)
    return c


class CaptionEdit(QPlainTextEdit):
    """A plain-text caption editor: ``commit_requested`` on Return, ``revert_requested`` on
    Escape; completion of tags from :meth:`set_vocabulary` (``completer``: a shared
    :func:`tag_completer`, else its own)."""

    commit_requested = Signal()
    revert_requested = Signal()

    def __init__(
        self,
        parent: QWidget | None = None,
        vocabulary: Callable[[], list[str]] | None = None,
        completer: QCompleter | None = None,
    ) -> None:
        super().__init__(parent)
        self.vocabulary_source = vocabulary  # asked again whenever the editor gets focus
        self.setTabChangesFocus(True)
        self.completer = completer if completer is not None else tag_completer(self)
        self.completer.setWidget(self)
        self._words: QStringListModel = self.completer.model()  # type: ignore[assignment]

    def set_vocabulary(self, words: list[str]) -> None:
        self._words.setStringList(words)

    def vocabulary(self) -> list[str]:
        return self._words.stringList()

    def focusOutEvent(self, e: QFocusEvent) -> None:
        if e.reason() != Qt.FocusReason.PopupFocusReason:
            self.completer.popup().hide()
        super().focusOutEvent(e)

    def focusInEvent(self, e: QFocusEvent) -> None:
        if self.vocabulary_source is not None and e.reason() != Qt.FocusReason.PopupFocusReason:
            self.set_vocabulary(self.vocabulary_source())
        super().focusInEvent(e)

    def current_tag_prefix(self) -> str:
        text, pos = self.toPlainText(), self.textCursor().position()
        start, _end = _tag_span(text, pos)
        return text[start:pos]

    def insert_completion(self, word: str) -> None:
        """Replace the tag under the cursor with ``word``."""
        text = self.toPlainText()
        cur = self.textCursor()
        start, end = _tag_span(text, cur.position())
        cur.setPosition(start)
        cur.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        cur.insertText(word)
        self.setTextCursor(cur)

    def keyPressEvent(self, e: QKeyEvent) -> None:
        popup = self.completer.popup()
        key, mods = e.key(), e.modifiers()
        if popup.isVisible() and not mods & ~Qt.KeyboardModifier.KeypadModifier:
            if key in (Qt.Key.Key_Up, Qt.Key.Key_Down):
                n = self.completer.completionCount()
                row = popup.currentIndex().row() + (1 if key == Qt.Key.Key_Down else -1)
                popup.setCurrentIndex(self.completer.completionModel().index(row % n, 0))
                return
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Tab):
                ix = popup.currentIndex()
                popup.hide()
                if ix.isValid():
                    self.insert_completion(str(ix.data()))
                return
            if key == Qt.Key.Key_Escape:
                popup.hide()
                return
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if mods & Qt.KeyboardModifier.ShiftModifier:
                self.textCursor().insertText("\n")
            else:
                self.commit_requested.emit()
            return
        if key == Qt.Key.Key_Escape:
            self.revert_requested.emit()
            return
        super().keyPressEvent(e)
        if e.text() and e.text().isprintable() or key == Qt.Key.Key_Backspace:
            self._update_completion()

    def _update_completion(self) -> None:
        prefix = self.current_tag_prefix()
        popup = self.completer.popup()
        if len(prefix) < 1 or not self._words.rowCount():
            popup.hide()
            return
        self.completer.setCompletionPrefix(prefix)
        n = self.completer.completionCount()
        if n == 0 or (n == 1 and self.completer.currentCompletion() == prefix):
            popup.hide()
            return
        popup.setCurrentIndex(self.completer.completionModel().index(0, 0))
        rect = self.cursorRect()
        rect.setWidth(
            max(200, popup.sizeHintForColumn(0) + popup.verticalScrollBar().sizeHint().width())
        )
        self.completer.complete(rect)
