"""Desktop notifications for the end of a training run (finished or failed).

One :class:`Notifier` per main window owns the one ``QSystemTrayIcon``. Where the system has no
tray (many minimal Linux desktops, offscreen tests) the message goes to the window's status bar
and ``QApplication.alert`` flashes the task-bar entry instead. Every message is also kept in
:attr:`Notifier.messages` (what was shown and how), which the tests read.

Run names come from folder names and failure messages quote files: on Linux the notification
daemon reads the body as markup (the freedesktop spec's ``<b>``, ``<a>``, ``<img>``), so the
body is escaped there (:func:`tray_body`); the title is plain text everywhere.
"""

from __future__ import annotations

import html
import sys
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMainWindow, QStyle, QSystemTrayIcon


@dataclass(frozen=True)
class Notice:
    title: str
    text: str
    level: str  # info | warning | error
    via: str  # tray | status


def tray_body(text: str, platform: str = sys.platform) -> str:
    """The tray message body as the platform's notification service shows it: escaped where it
    is read as markup (Linux/BSD notification daemons), unchanged on Windows and macOS."""
    if platform.startswith(("win", "darwin", "cygwin")):
        return text
    return html.escape(text, quote=False)


class Notifier(QObject):
    notified = Signal(object)  # Notice

    def __init__(self, window: QMainWindow, use_tray: bool | None = None) -> None:
        super().__init__(window)
        self.window = window
        self.messages: list[Notice] = []
        available = QSystemTrayIcon.isSystemTrayAvailable() if use_tray is None else use_tray
        self.tray: QSystemTrayIcon | None = None
        if available:
            icon = window.windowIcon()
            if icon.isNull():
                icon = window.style().standardIcon(QStyle.StandardPixmap.SP_ComputerIcon)
            self.tray = QSystemTrayIcon(QIcon(icon), self)
            self.tray.setToolTip("zitdesk")
            self.tray.activated.connect(self._on_activated)
            self.tray.messageClicked.connect(self._raise_window)
            self.tray.show()

    def notify(self, title: str, text: str, level: str = "info") -> Notice:
        if self.tray is not None and self.tray.isVisible():
            icon = {
                "info": QSystemTrayIcon.MessageIcon.Information,
                "warning": QSystemTrayIcon.MessageIcon.Warning,
                "error": QSystemTrayIcon.MessageIcon.Critical,
            }.get(level, QSystemTrayIcon.MessageIcon.Information)
            self.tray.showMessage(title, tray_body(text), icon, 10_000)
            via = "tray"
        else:
            self.window.statusBar().showMessage(f"{title}: {text}", 30_000)
            via = "status"
        QApplication.alert(self.window, 0)
        notice = Notice(title, text, level, via)
        self.messages.append(notice)
        self.notified.emit(notice)
        return notice

    def hide(self) -> None:
        if self.tray is not None:
            self.tray.hide()

    def _on_activated(self, _reason) -> None:
        self._raise_window()

    def _raise_window(self) -> None:
        self.window.showNormal()
        self.window.raise_()
        self.window.activateWindow()
