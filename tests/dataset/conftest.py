"""Fixtures for the dataset tests: Qt offscreen, Qt warnings fail UI tests, a workspace factory.

Each workspace is shut down at teardown, which waits for its private pools; a test that leaves
work running on them fails.
"""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"

import pytest

QT_LOG_IGNORE = [
    r"This plugin does not support",
    r"QFont::setPointSizeF",
    r"Populating font family aliases",
]


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(__file__)
    for item in items:  # this hook sees every test of the session: only mark ours
        if str(item.fspath).startswith(here) and "qtbot" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.qt_log_level_fail("WARNING"))
            item.add_marker(pytest.mark.qt_log_ignore(*QT_LOG_IGNORE))


@pytest.fixture
def make_workspace(qtbot, tmp_path):
    from messy import WordTokenizer

    from ui.datasets.workspace import DatasetsWorkspace

    made = []

    def make(folder=None, auto_check=False, tokens=True, wait_open=True):
        ws = DatasetsWorkspace(
            folder=folder,
            tokenizer_loader=(WordTokenizer if tokens else None),
            thumb_cache_dir=tmp_path / "thumbs",
            datasets_root=tmp_path / "new",
            remember=False,
            auto_check=auto_check,
        )
        qtbot.addWidget(ws)
        ws.resize(1280, 800)
        made.append(ws)
        if folder is not None and wait_open:
            qtbot.waitUntil(lambda: ws.session.dataset is not None, timeout=30_000)
        return ws

    yield make
    for ws in made:
        ws.shutdown()
        assert ws.session._runner.active == 0
        assert ws.thumbs._pool.activeThreadCount() == 0
