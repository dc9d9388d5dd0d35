"""Shared fixtures: isolated user folders, and tiny real Z-Image models built once per run."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Config, cache and outputs go to a temp folder; no test sees the developer's real files."""
    home = tmp_path_factory.mktemp("zithome")
    monkeypatch.setenv("ZITDESK_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "no-hf-cache"))
    monkeypatch.setenv("ZITDESK_DEVICE", "cpu")
    return home


@pytest.fixture(autouse=True)
def _no_blocking_message_boxes(monkeypatch):
    """QMessageBox's static helpers run a modal loop that nothing answers in an offscreen test,
    so the run would hang until CI's limit. A test that reaches one without answering it (with
    monkeypatch, as tests/ui/test_ui_window.py does) fails at once, naming the dialog."""
    widgets = sys.modules.get("PySide6.QtWidgets")
    if widgets is None:
        return
    for name in ("question", "warning", "information", "critical"):

        def refuse(*args, _name=name, **kwargs):
            title = args[1] if len(args) > 1 else ""
            raise AssertionError(
                f"QMessageBox.{_name}({title!r}) would block this test: answer it with monkeypatch"
            )

        monkeypatch.setattr(widgets.QMessageBox, name, staticmethod(refuse))


@pytest.fixture(scope="session")
def tiny_components():
    from zitdesk.models.tiny import make_tiny_components

    return make_tiny_components(seed=0)


@pytest.fixture(scope="session")
def tiny_diffusers(tmp_path_factory, tiny_components) -> Path:
    from zitdesk.models.tiny import save_tiny_model

    return save_tiny_model(
        tmp_path_factory.mktemp("models") / "tiny-diffusers",
        "diffusers",
        components=tiny_components,
    )


@pytest.fixture(scope="session")
def tiny_comfy(tmp_path_factory, tiny_components) -> Path:
    from zitdesk.models.tiny import save_tiny_model

    return save_tiny_model(
        tmp_path_factory.mktemp("models") / "tiny-comfy", "comfy", components=tiny_components
    )


@pytest.fixture(scope="session")
def tiny_pipe(tiny_diffusers):
    """A loaded tiny pipeline shared by read-only tests (do not add adapters to it)."""
    from zitdesk.models.discovery import resolve_model
    from zitdesk.models.loader import load_pipeline

    return load_pipeline(resolve_model(tiny_diffusers))
