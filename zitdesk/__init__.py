"""zitdesk: the Qt-free engine and domain logic of the zitdesk studio for Z-Image Turbo.

Nothing in this package may import Qt (PySide6/shiboken6); a test enforces it. Heavy libraries
(torch, diffusers, transformers, peft) are imported lazily inside the functions that need them,
so light modules (headers, PNG metadata, discovery) stay fast to import.
"""

__version__ = "0.1.0"
