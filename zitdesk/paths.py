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
