"""Static checks of the packaging files that cannot run here (Windows installer, release
workflow) and of the frozen entry point's dispatch."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_spec_is_onedir_without_upx_with_gui_and_console_exe():
    src = (ROOT / "pyinstaller.spec").read_text()
    tree = ast.parse(src)  # valid Python
    calls = {
        n.func.id: n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }
    assert {"Analysis", "PYZ", "EXE", "COLLECT"} <= set(calls)
    assert "exclude_binaries=True" in src and "upx=False" in src and "optimize=0" in src
    assert 'name="zitdesk", console=False' in src and 'name="zitdesk-console", console=True' in src
    assert 'packaging", "launcher.py' in src
    for dist in (
        "diffusers",
        "transformers",
        "peft",
        "accelerate",
        "huggingface_hub",
        "tokenizers",
        "safetensors",
    ):
        assert f'"{dist}"' in src
    assert '"resources"' in src and "diffusers.pipelines.z_image" in src


def test_launcher_calls_freeze_support_first():
    tree = ast.parse((ROOT / "packaging" / "launcher.py").read_text())
    main_if = next(n for n in tree.body if isinstance(n, ast.If))
    first = main_if.body[0].value
    assert ast.unparse(first) == "multiprocessing.freeze_support()"


def test_launcher_dispatch(monkeypatch):
    sys.path.insert(0, str(ROOT / "packaging"))
    try:
        import launcher
    finally:
        sys.path.pop(0)
    import zitdesk.cli
    import zitdesk.selftest

    seen = []
    monkeypatch.setattr(
        zitdesk.selftest,
        "main",
        lambda argv, window=None: seen.append(("selftest", argv, window is not None)) or 0,
    )
    monkeypatch.setattr(zitdesk.cli, "main", lambda argv: seen.append(("cli", argv)) or 0)
    assert launcher._dispatch(["--selftest", "--no-ui"]) == 0
    assert launcher._dispatch(["doctor", "--json"]) == 0
    assert launcher._dispatch(["selftest", "--ui-only"]) == 0
    assert seen == [
        ("selftest", ["--selftest", "--no-ui"], True),
        ("cli", ["doctor", "--json"]),
        ("selftest", ["--ui-only"], True),
    ]  # the launcher passes the window step


def test_nsis_script_is_per_user_and_split_below_2_gib():
    """Static part; tests/packaging/test_windows_installer.py builds and runs it under Wine."""
    nsi = (ROOT / "packaging" / "windows" / "zitdesk.nsi").read_text()
    assert (
        "RequestExecutionLevel user" in nsi
        and 'InstallDir "$LOCALAPPDATA\\Programs\\${APP}"' in nsi
    )
    assert 'WriteRegStr HKCU "${UNINST_KEY}"' in nsi and "HKLM" not in nsi
    assert "Target ${TARGET}" in nsi and "!define TARGET amd64-unicode" in nsi
    build = (ROOT / "scripts" / "build-windows-installer").read_text()
    part_size = int(re.search(r"part_size=(\d+)", build).group(1))
    assert part_size <= 2_000_000_000 < 2**31
    assert not (ROOT / "packaging" / "windows" / "zitdesk.iss").exists()
    assert (ROOT / "resources" / "icons" / "zitdesk.ico").is_file()


def test_workflows():
    yaml = pytest.importorskip("yaml")
    ci = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    assert "bash .ci/run" in str(ci["jobs"]["tests"]["steps"])
    assert "ZITDESK_QT_ONLY=1" in str(ci["jobs"]["freeze-smoke"]["steps"])
    rel = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    win, lin = rel["jobs"]["windows"], rel["jobs"]["linux"]
    assert win["runs-on"] == "windows-2022" and lin["runs-on"] == "ubuntu-22.04"
    text = str(win["steps"])
    for needle in ("download.pytorch.org", "pyinstaller", "--selftest", "upload-artifact"):
        assert needle in text or needle in str(rel["env"])
    # the installer: compiled by Debian's makensis (as in the Wine test), then run on Windows
    inst, smoke = rel["jobs"]["windows-installer"], rel["jobs"]["windows-installer-test"]
    assert inst["needs"] == "windows" and inst["container"] == "debian:12"
    assert "scripts/build-windows-installer" in str(inst["steps"]) and "nsis" in str(inst["steps"])
    assert smoke["needs"] == "windows-installer" and smoke["runs-on"] == "windows-2022"
    for needle in ('"/S"', "--selftest", "uninstall.exe", "Start Menu", "gh release upload"):
        assert needle in str(smoke["steps"]), needle
    assert "scripts/build-linux" in str(lin["steps"])


def test_desktop_entry():
    entry = dict(
        line.split("=", 1)
        for line in (ROOT / "packaging" / "appimage" / "zitdesk.desktop").read_text().splitlines()
        if "=" in line
    )
    assert (
        entry["Type"] == "Application" and entry["Icon"] == "zitdesk" and entry["Exec"] == "zitdesk"
    )
    assert entry["Categories"].endswith(";")
