"""The self-test passes with every socket blocked, and makes no connection attempt.

The self-test runs in a child process (as the frozen app would) whose ``sitecustomize`` makes
every Python-level network entry point (``socket.connect``/``connect_ex``/``create_connection``/
``getaddrinfo``/``sendto``) record the attempt and raise. The window step runs too (offscreen).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SITECUSTOMIZE = textwrap.dedent("""
    import os, socket

    _LOG = os.environ["ZITDESK_NET_LOG"]

    def _blocked(what):
        def deny(*args, **kwargs):
            with open(_LOG, "a", encoding="utf-8") as fh:
                fh.write(f"{what} {args[1:] if what.startswith('socket.') else args}\\n")
            raise OSError(101, f"network blocked by the zitdesk offline test ({what})")
        return deny

    socket.socket.connect = _blocked("socket.connect")
    socket.socket.connect_ex = _blocked("socket.connect_ex")
    socket.socket.sendto = _blocked("socket.sendto")
    socket.create_connection = _blocked("create_connection")
    socket.getaddrinfo = _blocked("getaddrinfo")
""")


def _env(tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HF_", "TRANSFORMERS_", "ZITDESK_"))
    }  # the app must set them itself
    env.update(
        PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]),
        QT_QPA_PLATFORM="offscreen",
        ZITDESK_NET_LOG=str(tmp_path / "net.log"),
        ZITDESK_HOME=str(tmp_path / "home"),
        ZITDESK_DEVICE="cpu",
        HF_HOME=str(tmp_path / "hf"),
    )
    return env


def test_the_block_works(tmp_path):
    """Control: the sitecustomize really intercepts a connection attempt."""
    env = _env(tmp_path)
    code = "import socket\ntry:\n    socket.create_connection(('127.0.0.1', 9), timeout=1)\nexcept OSError as e:\n    print(e)\n"
    res = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "network blocked" in res.stdout
    assert "create_connection" in (tmp_path / "net.log").read_text()


@pytest.mark.timeout(120)
def test_selftest_passes_offline_without_connection_attempts(tmp_path):
    env = _env(tmp_path)
    code = (
        "import sys\nfrom ui.selftest import main\n"
        "rc = main(['--selftest', '--log', sys.argv[1]])\n"
        "import os\nassert os.environ.get('HF_HUB_OFFLINE') == '1', 'the app did not set hub-offline'\n"
        "sys.exit(rc)\n"
    )
    log = tmp_path / "selftest.log"
    res = subprocess.run(
        [sys.executable, "-c", code, str(log)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    verdict = (res.stdout.strip().splitlines() or [""])[-1]
    assert res.returncode == 0, f"{verdict}\n{res.stderr[-3000:]}"
    assert verdict.startswith("zitdesk selftest: PASS"), verdict
    for part in (
        "image generated",
        "LoRA steps trained",
        "LoRA loaded",
        "main window opened and closed",
    ):
        assert part in verdict
    assert log.read_text(encoding="utf-8").strip().splitlines()[-1] == verdict
    attempts = (tmp_path / "net.log").read_text() if (tmp_path / "net.log").exists() else ""
    assert attempts == "", f"network attempts during the self-test:\n{attempts}"
    # nothing escaped the temporary folder: the user's config/cache/output folders stay untouched
    assert not (tmp_path / "home").exists() or not any((tmp_path / "home").rglob("*.png"))


def test_selftest_reports_failure_with_exit_code_1(tmp_path, monkeypatch):
    """A failing step gives FAIL, the step's name and exit code 1 (in-process, no window)."""
    from zitdesk import selftest

    def broken(tmp):
        raise selftest.SelftestFailure("the tiny model has no model_index.json")

    monkeypatch.setattr(selftest, "_build_model", broken)
    ok, verdict = selftest.run_selftest(ui=False, device="cpu")
    assert not ok
    assert verdict.startswith("zitdesk selftest: FAIL at 'tiny model'")
    assert "model_index.json" in verdict
    monkeypatch.setattr(sys, "argv", ["zitdesk", "--selftest", "--no-ui"])
    assert selftest.main() == 1


def test_engine_selftest_without_window_step_says_so(tmp_path, monkeypatch):
    """zitdesk.selftest never imports ui: without a window step it reports the window unchecked,
    and --ui-only without one tests nothing (FAIL, not a silent PASS)."""
    from zitdesk import selftest

    lines = []
    ok, verdict = selftest.run_selftest(ui=True, engine=False, log=lines.append)
    assert not ok and "nothing was tested" in verdict
    assert any("main window not checked" in line for line in lines)
    ok, verdict = selftest.run_selftest(
        ui=True, engine=False, window=lambda model: f"window [{model}]"
    )
    assert ok and "window []" in verdict
