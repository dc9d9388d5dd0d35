"""Former home of :mod:`zitdesk.imagemeta` (kept for one release: re-exports only).

``zitdesk/cli.py`` is being moved into a package by another change and still imports
``zitdesk.pngmeta``; new code imports :mod:`zitdesk.imagemeta`.
"""

from zitdesk.imagemeta import *  # noqa: F401,F403
from zitdesk.imagemeta import __all__  # noqa: F401
