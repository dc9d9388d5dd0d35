"""Where the app's bundled resources live (source checkout or PyInstaller bundle)."""

from __future__ import annotations

import sys
from pathlib import Path


def resources_dir() -> Path:
    """The ``resources/`` folder: beside the package in a checkout, in ``_MEIPASS`` when frozen."""
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def skeleton_dir() -> Path:
    """Config-only Z-Image Turbo skeleton used to assemble ComfyUI single files offline."""
    return resources_dir() / "zimage_turbo_skeleton"


def cli_command() -> list[str]:
    """The command that runs the ``zitdesk`` command line of this installation.

    A checkout: ``python -m zitdesk``. A frozen bundle: its console executable (``zitdesk-console``
    beside the app; a windowed executable has no stdout to read), else the executable itself (the
    launcher sends CLI commands to :func:`zitdesk.cli.main`)."""
    if not getattr(sys, "frozen", False):
        return [sys.executable, "-m", "zitdesk"]
    exe = Path(sys.executable)
    suffix = ".exe" if exe.suffix.lower() == ".exe" else ""
    console = exe.with_name(f"zitdesk-console{suffix}")
    return [str(console if console.is_file() else exe)]
