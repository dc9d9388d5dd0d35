"""The engine package never imports Qt, and the UI package never imports torch at module level."""

import pkgutil
import subprocess
import sys
from pathlib import Path

import zitdesk

ROOT = Path(__file__).resolve().parents[2]


def _all_zitdesk_modules() -> list[str]:
    names = ["zitdesk"]
    for info in pkgutil.walk_packages(zitdesk.__path__, "zitdesk."):
        if info.name.endswith("__main__"):
            continue
        names.append(info.name)
    return names


def test_every_zitdesk_module_imports_without_qt():
    mods = _all_zitdesk_modules()
    assert len(mods) > 10
    code = (
        "import importlib, sys\n"
        f"for m in {mods!r}:\n"
        "    importlib.import_module(m)\n"
        "bad = sorted(k for k in sys.modules if k.split('.')[0] in ('PySide6', 'shiboken6', 'PyQt5', 'PyQt6'))\n"
        "print(bad)\n"
        "assert not bad, bad\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr[-2000:]


def test_no_qt_import_statement_in_engine_sources():
    offenders = []
    for path in (ROOT / "zitdesk").rglob("*.py"):
        for line in path.read_text(encoding="utf-8").splitlines():
            s = line.strip()
            if s.startswith(("import ", "from ")) and any(
                q in s for q in ("PySide6", "shiboken6", "PyQt")
            ):
                offenders.append(f"{path.relative_to(ROOT)}: {s}")
    assert not offenders, offenders
