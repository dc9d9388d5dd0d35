"""The frozen launcher's split between the command line and the app (packaging/launcher.py).

Every sub-command of the ``zitdesk`` parser reaches the command line (``zitdesk-console dataset
caption …`` used to open the window: the launcher had its own, stale list); no arguments, Qt's
options and ``--selftest`` still reach the app. Deciding imports neither torch nor Qt.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def launcher():
    spec = importlib.util.spec_from_file_location(
        "zitdesk_launcher", ROOT / "packaging" / "launcher.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def app_calls(monkeypatch) -> list[str]:
    """``main.main`` (the desktop app) replaced by a recorder: a call here is a call gone to the app."""
    calls: list[str] = []
    fake = types.ModuleType("main")
    fake.main = lambda: calls.append("app") or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "main", fake)
    return calls


def _parser_commands() -> set[str]:
    """The sub-commands as the parser's own usage line lists them: ``{a,b,…}``."""
    from zitdesk.cli.app import build_parser

    usage = " ".join(build_parser().format_usage().split())
    found = re.search(r"\{([a-z,-]+)\}", usage)
    assert found, usage
    return set(found.group(1).split(","))


def test_command_names_are_the_parsers():
    from zitdesk.cli.app import command_names

    names = command_names()
    assert names == _parser_commands()
    assert {"train", "dataset", "upscale", "enhance", "generate", "doctor", "lora"} <= names


def test_every_parser_command_reaches_the_command_line(launcher, app_calls, capsys, monkeypatch):
    import zitdesk.selftest

    selftests: list[list[str]] = []
    monkeypatch.setattr(
        zitdesk.selftest, "main", lambda argv, window=None: selftests.append(argv) or 0
    )
    for name in sorted(_parser_commands() - {"selftest"}):
        with pytest.raises(SystemExit) as done:  # argparse's --help: the real parser answered
            launcher._dispatch([name, "--help"])
        assert done.value.code == 0, name
        out = capsys.readouterr().out
        assert f"usage: zitdesk {name}" in out, (name, out[:300])
    assert launcher._dispatch(["selftest", "--no-ui"]) == 0  # the subcommand spelling
    assert selftests == [["--no-ui"]]
    for flag in ("--version", "--help"):
        with pytest.raises(SystemExit):
            launcher._dispatch([flag])
        assert "zitdesk" in capsys.readouterr().out
    assert app_calls == []


def test_no_arguments_qt_options_and_selftest_reach_the_app(
    launcher, app_calls, monkeypatch, capsys
):
    import zitdesk.selftest

    selftests: list[list[str]] = []
    monkeypatch.setattr(
        zitdesk.selftest, "main", lambda argv, window=None: selftests.append(argv) or 0
    )
    for argv in ([], ["-style", "fusion"], ["-platform", "offscreen"], ["picture.png"]):
        assert launcher._dispatch(argv) == 0
    assert app_calls == ["app"] * 4
    assert launcher._dispatch(["--selftest", "--no-ui"]) == 0
    assert selftests == [["--selftest", "--no-ui"]]
    assert app_calls == ["app"] * 4
    assert capsys.readouterr().out == ""


def test_the_launcher_decides_without_torch_or_qt():
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('l', {str(ROOT / 'packaging' / 'launcher.py')!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "print(m.is_cli_call(['dataset', 'caption']), m.is_cli_call(['-style', 'fusion']))\n"
        "print(sorted(n for n in ('torch', 'PySide6', 'diffusers') if n in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[:2] == ["True False", "[]"]


def test_the_launcher_script_runs_a_dataset_command():
    """``launcher.py dataset --help`` as the bundle runs it: the CLI answers, no window opens."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "packaging" / "launcher.py"), "dataset", "--help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage: zitdesk dataset" in done.stdout
