"""Where LoRAs live: the user's folders plus auto-found ones (Qt-free).

Auto-found roots are the LoRA folders of the usual tools' model trees (the same trees
:func:`zitdesk.models.discovery.tool_model_roots` knows for base models): ComfyUI
``models/loras``, Forge/A1111 ``models/Lora`` and ``models/LyCORIS``, SwarmUI ``Models/Lora``,
StabilityMatrix ``Models/Lora``; plus zitdesk's own ``<data>/loras`` (where trained LoRAs can
go), the training runs folder ``<data>/runs`` (:func:`zitdesk.train.runs.runs_root`: every run's
LoRA files, with the last sample as ``<name>.preview.png``) and ``ZITDESK_LORA_DIRS`` (``os.pathsep``-separated). Only folders that exist are returned.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from zitdesk.io import user_dirs

#: LoRA sub-folders of a tool's ``models`` tree.
LORA_SUBFOLDERS = ("loras", "Lora", "LyCORIS", "lora", "LoRA")


@dataclass(frozen=True)
class Root:
    path: str
    origin: str  # user | comfyui | forge | swarmui | stabilitymatrix | zitdesk | runs | env

    @property
    def label(self) -> str:
        names = {
            "user": "",
            "runs": "zitdesk training runs",
            "comfyui": "ComfyUI",
            "forge": "Forge/A1111",
            "swarmui": "SwarmUI",
            "stabilitymatrix": "StabilityMatrix",
            "zitdesk": "zitdesk",
            "env": "ZITDESK_LORA_DIRS",
        }
        tag = names.get(self.origin, self.origin)
        return f"{Path(self.path).name} ({tag})" if tag else Path(self.path).name


def zitdesk_lora_dir() -> Path:
    """zitdesk's own LoRA folder (trained LoRAs can be saved here)."""
    return user_dirs()["data"] / "loras"


def runs_lora_dir() -> Path:
    """The training runs folder (the same as ``zitdesk.train.runs.runs_root``, kept torch-free)."""
    return user_dirs()["data"] / "runs"


def auto_roots() -> list[Root]:
    """Existing LoRA folders of ComfyUI, Forge/A1111, SwarmUI, StabilityMatrix and zitdesk."""
    from zitdesk.models.discovery import tool_model_roots

    out: list[Root] = []
    seen: set[str] = set()

    def add(path: Path, origin: str) -> None:
        try:
            if not path.is_dir():
                return
            real = os.path.realpath(path)
        except OSError:
            return
        key = os.path.normcase(real)
        if key not in seen:
            seen.add(key)
            out.append(Root(str(path), origin))

    add(zitdesk_lora_dir(), "zitdesk")
    add(runs_lora_dir(), "runs")
    for origin, models in tool_model_roots():
        if origin == "user":
            continue
        for sub in LORA_SUBFOLDERS:
            add(models / sub, origin)
    for extra in os.environ.get("ZITDESK_LORA_DIRS", "").split(os.pathsep):
        if extra:
            add(Path(extra).expanduser(), "env")
    return out


def merge_roots(user_folders: list[str], include_auto: bool = True) -> list[Root]:
    """The user's folders first, then auto-found ones not already covered."""
    out: list[Root] = []
    seen: set[str] = set()
    for f in user_folders:
        key = os.path.normcase(os.path.realpath(f))
        if key not in seen:
            seen.add(key)
            out.append(Root(str(f), "user"))
    if include_auto:
        for r in auto_roots():
            key = os.path.normcase(os.path.realpath(r.path))
            # A folder inside a user folder is already scanned through it.
            if key in seen or any(key.startswith(s.rstrip(os.sep) + os.sep) for s in seen):
                continue
            seen.add(key)
            out.append(r)
    return out
