"""Resumable training checkpoints, written so that a kill at any moment leaves only whole ones.

A checkpoint is a folder ``<output>/checkpoints/<name>_<step:09d>/``::

    adapter.safetensors   the user LoRA's raw fp32 PEFT tensors (exact, not the baked export)
    trainer.pt            optimizer + LR-scheduler state and torch RNG states (torch.save)
    state.json            step, data cursor, python/numpy RNG states, the config (TOML text)

It is assembled in a hidden temp folder (``.tmp-…``; every file fsynced), which is renamed to
its final name only when complete, and the parent folder is fsynced: a folder with the final
name is always whole. Old checkpoints beyond ``keep_last`` are renamed to ``.del-…`` first and
then removed, so a half-deleted folder never carries a valid name. Leftover temp folders are
cleaned up on the next start. Loading falls back to the previous checkpoint if the newest one
cannot be read for any reason.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zitdesk.io import atomic_save, atomic_save_tensors, atomic_write, fsync_dir
from zitdesk.io import clean_temp_files as clean_temp_files  # re-exported for the trainer

log = logging.getLogger(__name__)

CKPT_FORMAT = 1
_NAME_RE = re.compile(r"^(?P<name>.+)_(?P<step>\d{9})$")


@dataclass(frozen=True)
class CheckpointInfo:
    path: Path
    step: int


def checkpoints_dir(output_dir: Path) -> Path:
    return output_dir / "checkpoints"


def list_checkpoints(root: Path) -> list[CheckpointInfo]:
    """Complete checkpoints under ``root``, oldest first."""
    if not root.is_dir():
        return []
    out = []
    for p in root.iterdir():
        m = _NAME_RE.match(p.name)
        if m and p.is_dir() and (p / "state.json").is_file():
            out.append(CheckpointInfo(p, int(m.group("step"))))
    return sorted(out, key=lambda c: (c.step, c.path.name))


def clean_leftovers(root: Path) -> int:
    """Remove temp and half-deleted folders of interrupted runs; returns how many."""
    n = 0
    if root.is_dir():
        for p in root.iterdir():
            if p.name.startswith((".tmp-", ".del-")):
                shutil.rmtree(p, ignore_errors=True)
                n += 1
    return n


def _remove_dir(p: Path) -> None:
    trash = p.with_name(f".del-{p.name}-{os.getpid()}-{time.monotonic_ns()}")
    try:
        os.replace(p, trash)
    except OSError:
        return
    fsync_dir(p.parent)
    shutil.rmtree(trash, ignore_errors=True)


def save_checkpoint(
    root: Path,
    name: str,
    step: int,
    *,
    adapter: dict[str, Any],
    trainer_state: dict[str, Any],
    state: dict[str, Any],
    keep_last: int,
) -> Path:
    """Write a checkpoint atomically and prune old ones; returns its folder."""
    import torch

    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{name}_{step:09d}"
    tmp = root / f".tmp-{final.name}-{os.getpid()}-{time.monotonic_ns()}"
    tmp.mkdir()
    try:
        tensors = {k: v.detach().cpu().contiguous() for k, v in adapter.items()}
        atomic_save_tensors(
            tmp / "adapter.safetensors", tensors, metadata={"format": "pt", "step": str(step)}
        )
        atomic_save(tmp / "trainer.pt", lambda t: torch.save(trainer_state, t))
        doc = {"format": CKPT_FORMAT, "step": step, **state}
        atomic_write(tmp / "state.json", json.dumps(doc, indent=1))
        if final.exists():
            _remove_dir(final)
        os.replace(tmp, final)
        fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in list_checkpoints(root)[:-keep_last]:
        _remove_dir(old.path)
    return final


def load_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """``(adapter tensors, trainer state, state.json)`` of one checkpoint folder."""
    import torch
    from safetensors.torch import load_file

    state = json.loads((path / "state.json").read_text(encoding="utf-8"))
    if state.get("format") != CKPT_FORMAT:
        raise ValueError(f"unknown checkpoint format {state.get('format')!r}")
    adapter = load_file(str(path / "adapter.safetensors"))
    trainer = torch.load(path / "trainer.pt", map_location="cpu", weights_only=True)
    return adapter, trainer, state


def load_latest(
    root: Path, accept: Callable[[CheckpointInfo], bool] | None = None
) -> tuple[CheckpointInfo, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] | None:
    """The newest checkpoint that loads (older ones are tried if the newest is unreadable)."""
    for info in reversed(list_checkpoints(root)):
        if accept is not None and not accept(info):
            continue
        try:
            return info, load_checkpoint(info.path)
        except Exception as exc:  # noqa: BLE001 - any damage: try the previous checkpoint
            log.warning(
                "checkpoint %s is unreadable (%s); trying an older one", info.path.name, exc
            )
    return None


def prune_files(folder: Path, name: str, keep_last: int, suffix: str = ".safetensors") -> None:
    """Keep only the newest ``keep_last`` step files ``<name>_<step:09d><suffix>``."""
    pat = re.compile(rf"^{re.escape(name)}_(\d{{9}}){re.escape(suffix)}$")
    files = sorted(
        (int(m.group(1)), p) for p in folder.glob(f"{name}_*{suffix}") if (m := pat.match(p.name))
    )
    for _, p in files[:-keep_last]:
        with contextlib.suppress(OSError):
            p.unlink()


def rng_state() -> dict[str, Any]:
    """Global RNG states (torch CPU/CUDA in tensors; python and numpy as JSON-able lists)."""
    import random

    import numpy as np
    import torch

    np_state = np.random.get_state()
    torch_states = {"cpu": torch.random.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch_states["cuda"] = torch.stack(torch.cuda.get_rng_state_all())
    py = random.getstate()
    return {
        "torch": torch_states,
        "json": {
            "python": [py[0], list(py[1]), py[2]],
            "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],  # type: ignore[index]  # legacy get_state() is a tuple
        },
    }


def restore_rng(torch_states: dict[str, Any], json_states: dict[str, Any]) -> None:
    import random

    import numpy as np
    import torch

    if "cpu" in torch_states:
        torch.random.set_rng_state(torch_states["cpu"])
    if "cuda" in torch_states and torch.cuda.is_available():
        states = list(torch_states["cuda"])
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)
    if "python" in json_states:
        v, st, g = json_states["python"]
        random.setstate((v, tuple(st), g))
    if "numpy" in json_states:
        name, keys, pos, has_gauss, cached = json_states["numpy"]
        np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
