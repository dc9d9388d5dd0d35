"""Stopgap for PySide6 6.12.0 on Python 3.11: calls from Python drop references to singletons.

Measured here (PySide6-Essentials 6.12.0, CPython 3.11.7; 6.11.3 is clean):

* every Python-side ``Signal.emit()`` (also ``model.dataChanged.emit``) lowers ``True``'s
  reference count by one (``emit`` returns a borrowed bool);
* every call of a Qt method returning ``void`` (``QTimer.start``, ``QLabel.setText``,
  ``QScrollBar.setValue``, ``QThreadPool.start`` …) lowers ``None``'s by one.

From Python 3.12 these singletons are immortal, which is probably why it went unnoticed; on 3.11
the interpreter aborts ("Fatal Python error: bool_dealloc / none_dealloc") after a few hundred
emits or a few thousand void calls — minutes of normal use.

The real fix is not to install 6.12.0 (``PySide6-Essentials!=6.12.0``). Until then,
:func:`install` keeps ``True``/``False``/``None`` alive: a GUI-thread timer checks their counts twice a
second and, when they run low, holds more references in a list (8 bytes per leaked emit). Holding
extra references to the two bool singletons changes nothing else. It does nothing on other
PySide6 versions. Reproduce with :func:`leaks_per_emit`.
"""

from __future__ import annotations

import sys

from PySide6 import __version__ as PYSIDE_VERSION
from PySide6.QtCore import QCoreApplication, QObject, QTimer, Signal

AFFECTED = ("6.12.0",)
LOW_WATER = 200_000
TOP_UP = 400_000

_keep: list[bool | None] = []
_timer: QTimer | None = None
_pinned = False


def _pin_keep_list() -> None:
    """Never free ``_keep``: at interpreter exit freeing it would return the references the
    emits already stole, and CPython would deallocate True."""
    global _pinned
    if not _pinned:
        import ctypes

        ctypes.pythonapi.Py_IncRef(ctypes.py_object(_keep))
        _pinned = True


def leaks_per_emit(n: int = 100) -> int:
    """References to ``True`` lost per Python ``emit()`` (0 on a healthy PySide6)."""

    class _S(QObject):
        sig = Signal(int)

    s = _S()
    before = sys.getrefcount(True)
    for _ in range(n):
        s.sig.emit(1)
    lost = before - sys.getrefcount(True)
    if lost > 0:            # give the probe's own stolen references back
        import ctypes

        for _ in range(lost):
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(True))
    return round(lost / n)


def _top_up() -> None:
    _pin_keep_list()
    for value in (True, False, None):
        if sys.getrefcount(value) < LOW_WATER:
            _keep.extend([value] * TOP_UP)


def install(force: bool = False) -> bool:
    """Start the guard if this PySide6 is affected (or ``force``). Idempotent; needs a
    QCoreApplication. Returns True when the guard is running."""
    global _timer
    if _timer is not None:
        return True
    if not force and PYSIDE_VERSION not in AFFECTED:
        return False
    app = QCoreApplication.instance()
    if app is None:
        return False
    _top_up()
    _timer = QTimer(app)
    _timer.setInterval(500)
    _timer.timeout.connect(_top_up)
    _timer.start()
    return True
