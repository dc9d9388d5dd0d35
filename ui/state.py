"""Window geometry and splitter state: the only things kept in ``QSettings`` (an INI file in
zitdesk's config folder, so ``ZITDESK_HOME`` isolates it in tests)."""

from __future__ import annotations

from PySide6.QtCore import QSettings

from zitdesk.io import user_dirs


def window_settings() -> QSettings:
    path = user_dirs()["config"] / "window.ini"
    path.parent.mkdir(parents=True, exist_ok=True)
    return QSettings(str(path), QSettings.Format.IniFormat)
