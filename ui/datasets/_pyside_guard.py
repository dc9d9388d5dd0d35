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
:func:`install` does what Python 3.12 does: it makes ``None``, ``True`` and ``False`` effectively
immortal by adding 2**40 to their reference counts (checked with ``sys.getrefcount``; if the
object layout is not the expected one, it falls back to holding references in a list, topped up
by a timer). Nothing else changes; it does nothing on Python ≥ 3.12 or other PySide6 versions.
Reproduce with :func:`leaks_per_emit`.
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
_immortal = False


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


def _immortalise() -> bool:
    """Add 2**40 to the reference counts of None/True/False (ob_refcnt is the first field of
    every object in release builds). True if ``sys.getrefcount`` confirms it."""
    import ctypes

    for obj in (None, True, False):
        before = sys.getrefcount(obj)
        cell = ctypes.c_ssize_t.from_address(id(obj))
        if cell.value != before - 1 and cell.value != before:   # not the refcount field
            return False
        cell.value += 1 << 40
        if sys.getrefcount(obj) - before != 1 << 40:
            cell.value -= 1 << 40
            return False
    return True


def install(force: bool = False) -> bool:
    """Protect the process if this PySide6/Python pair is affected (or ``force``). Idempotent.
    Returns True when protection is active."""
    global _timer, _immortal
    if _immortal or _timer is not None:
        return True
    if not force and (PYSIDE_VERSION not in AFFECTED or sys.version_info >= (3, 12)):
        return False
    if _immortalise():
        _immortal = True
        return True
    app = QCoreApplication.instance()
    if app is None:
        return False
    _top_up()
    _timer = QTimer(app)
    _timer.setInterval(500)
    _timer.timeout.connect(_top_up)
    _timer.start()
    return True
