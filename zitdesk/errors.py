"""User-facing error types.

Every error the engine raises on purpose is a :class:`ZitdeskError` whose message is one plain
sentence that says what went wrong and what to do. The CLI prints it without a traceback and the
UI shows it in a dialog.
"""

from __future__ import annotations


class ZitdeskError(Exception):
    """An error with a plain-language message meant for the user."""


class ModelError(ZitdeskError):
    """A base model folder or file cannot be used (missing part, wrong family, corrupt)."""


class LoraError(ZitdeskError):
    """A LoRA file cannot be used (foreign architecture, unsafe format, corrupt)."""


class FileFormatError(ZitdeskError):
    """A file is truncated, not safetensors, or otherwise unreadable."""


class RequestError(ZitdeskError):
    """A generation or training request has invalid values."""


class OutOfMemory(ZitdeskError):
    """The GPU ran out of memory; the message suggests a lower memory tier."""
