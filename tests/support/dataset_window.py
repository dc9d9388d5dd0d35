"""The Datasets workspace as tests and screenshot scripts open it (Qt imported when called).

* :func:`datasets_workspace`: a :class:`ui.datasets.workspace.DatasetsWorkspace` on a folder with
  its thumbnail cache and new-dataset root under a scratch folder, no background check and (by
  default) nothing remembered between runs.
* :func:`dataset_window`: that workspace as the central widget of a main window with a real
  engine queue (``EngineController`` running ``StudioEngine`` on the CPU on its thread) and
  app settings, which is what the caption dialog looks up; :func:`close_dataset_window` stops
  both again.
"""

from __future__ import annotations

from pathlib import Path


def datasets_workspace(
    folder: Path | None, work: Path, remember: bool = False, tokenizer_loader=None
):
    """A Datasets workspace on ``folder`` (``None``: the remembered one, if ``remember``) with its
    caches under ``work``."""
    from ui.datasets.workspace import DatasetsWorkspace

    return DatasetsWorkspace(
        folder=folder,
        tokenizer_loader=tokenizer_loader,
        thumb_cache_dir=work / "thumbs",
        datasets_root=work / "new",
        remember=remember,
        auto_check=False,
    )


def dataset_window(folder: Path, work: Path, settings=None):
    """``(window, workspace)``: a main window with an engine queue, ``settings`` (default
    :class:`zitdesk.settings.AppSettings`) and the Datasets workspace on ``folder``."""
    from PySide6.QtWidgets import QMainWindow

    from ui.engine_host import EngineController
    from zitdesk.engine.studio import StudioEngine
    from zitdesk.settings import AppSettings

    win = QMainWindow()
    win.controller = EngineController(lambda: StudioEngine(device="cpu"), win)
    win.settings = settings if settings is not None else AppSettings()
    ws = datasets_workspace(folder, work)
    win.setCentralWidget(ws)
    return win, ws


def close_dataset_window(win, ws) -> bool:
    """Stop the workspace's workers and the engine thread; whether the engine stopped in time."""
    ws.shutdown()
    return win.controller.shutdown(10_000)
