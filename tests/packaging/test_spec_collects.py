"""pyinstaller.spec hands PyInstaller every data file and dist-info the locked packages need.

No freeze: the spec runs with stand-ins for Analysis/PYZ/EXE/COLLECT (and without the slow
``collect_submodules`` scans), and what it passes as ``datas`` is compared with the files the
installed packages really have. The installed packages are checked against requirements/lock.txt,
so this is about the locked set. The frozen build itself runs in .ci/run (scripts/build-linux).
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "pyinstaller.spec"
LOCK = ROOT / "requirements" / "lock.txt"
TORCH_LOCK = ROOT / "requirements" / "torch-cpu.txt"


def _bundle_deps():
    spec = importlib.util.spec_from_file_location(
        "bundle_deps", ROOT / "packaging" / "bundle_deps.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


BD = _bundle_deps()


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line)
        if m:
            pins[BD.canonical(m.group(1))] = m.group(2)
    return pins


class _Analysis:
    def __init__(self, scripts, **kw):
        self.kw = kw
        self.datas = list(kw["datas"])
        self.binaries, self.pure, self.scripts = [], [], []


@pytest.fixture(scope="module")
def spec_run():
    """Run pyinstaller.spec as PyInstaller would, recording what it hands to Analysis."""
    import PyInstaller.utils.hooks as hooks

    mp = pytest.MonkeyPatch()
    mp.setattr(hooks, "collect_submodules", lambda *a, **k: [])
    for var in ("ZITDESK_QT_ONLY", "ZITDESK_WITH_TRITON"):
        mp.delenv(var, raising=False)
    mp.setattr(sys, "path", list(sys.path))
    made = []

    def analysis(*a, **kw):
        made.append(_Analysis(*a, **kw))
        return made[-1]

    stub = lambda *a, **k: None  # noqa: E731
    g = {
        "__name__": "__main__",
        "__file__": str(SPEC),
        "SPECPATH": str(ROOT),
        "Analysis": analysis,
        "PYZ": stub,
        "EXE": stub,
        "COLLECT": stub,
    }
    try:
        exec(compile(SPEC.read_text(), str(SPEC), "exec"), g)
    finally:
        mp.undo()
    assert len(made) == 1
    bundled = set()
    for src, dest in made[0].kw["datas"]:
        if os.path.isdir(src):
            for dirpath, _dirs, files in os.walk(src):
                rel = os.path.relpath(dirpath, src)
                for f in files:
                    bundled.add(os.path.normpath(os.path.join(dest, rel, f)).replace(os.sep, "/"))
        else:
            bundled.add(
                os.path.normpath(os.path.join(dest, os.path.basename(src))).replace(os.sep, "/")
            )
    return g, bundled


def test_the_installed_packages_are_the_locked_ones():
    pins = _pins(LOCK)
    assert "kernels" in pins and "transformers" in pins and "pyinstaller" in pins
    assert "torch" not in pins, "torch is pinned in requirements/torch-cpu.txt, not in lock.txt"
    wrong = {}
    for name, version in pins.items():
        try:
            have = md.version(name)
        except md.PackageNotFoundError:
            have = None
        if have != version:
            wrong[name] = (version, have)
    assert not wrong, (
        f"installed versions differ from requirements/lock.txt (locked, installed): {wrong}"
    )
    torch_pin = _pins(TORCH_LOCK)["torch"]
    assert md.version("torch").split("+")[0] == torch_pin.split("+")[0]
    assert all(
        "--hash=sha256:" in block
        for block in re.split(r"\n(?=[a-z0-9])", LOCK.read_text())
        if re.match(r"[a-z0-9]", block)
    ), "every pin in lock.txt needs its hashes"


def test_every_runtime_dependency_is_locked():
    runtime = set(BD.runtime_dists()) - {"zitdesk", "torch"}
    assert {
        "transformers",
        "diffusers",
        "kernels",
        "huggingface-hub",
        "pyside6-essentials",
    } <= runtime
    missing = runtime - set(_pins(LOCK))
    assert not missing, (
        f"run-time dependencies missing from requirements/lock.txt: {sorted(missing)}"
    )


def test_every_runtime_package_with_data_files_is_decided_in_the_spec(spec_run):
    g, _ = spec_run
    decided = [set(g["DATA_COLLECTED"]), set(g["DATA_BY_HOOK"]), set(g["DATA_NOT_NEEDED"])]
    undecided, twice = [], []
    for dist in BD.runtime_dists():
        if dist == "zitdesk" or not BD.package_data_files(dist):
            continue
        n = sum(dist in d for d in decided)
        (undecided if n == 0 else twice if n > 1 else []).append(dist)
    assert not undecided, (
        f"these locked packages install data files that pyinstaller.spec neither "
        f"collects nor rules out: {undecided}"
    )
    assert not twice


def test_the_data_files_the_spec_collects_reach_the_bundle(spec_run):
    g, bundled = spec_run
    assert "kernels/_internals/python_depends.json" in bundled
    for dist in g["DATA_COLLECTED"]:
        files = BD.package_data_files(dist)
        assert files, f"{dist} has no data files any more: drop it from DATA_COLLECTED"
        missing = [f for f in files if f not in bundled]
        assert not missing, f"{dist}: not collected: {missing}"


def test_every_runtime_dist_info_reaches_the_bundle(spec_run):
    _, bundled = spec_run
    tops = {p.split("/", 1)[0] for p in bundled}
    missing = []
    for dist in BD.runtime_dists():
        info = Path(str(md.distribution(dist)._path)).name  # e.g. kernels-0.19.1.dist-info
        if info not in tops:
            missing.append(dist)
    assert not missing, f"no .dist-info in the bundle for: {missing}"


def test_the_hooks_the_spec_relies_on_exist(spec_run):
    import _pyinstaller_hooks_contrib
    import PyInstaller

    hook_dirs = [
        Path(PyInstaller.__file__).parent / "hooks",
        Path(_pyinstaller_hooks_contrib.__file__).parent / "stdhooks",
    ]
    names = {p.name for d in hook_dirs for p in d.glob("hook-*.py")}
    g, _ = spec_run
    for dist in g["DATA_BY_HOOK"]:
        pkgs = [p for p in BD.import_packages(dist) if not p.endswith(".libs")]
        assert any(f"hook-{p}.py" in names for p in pkgs), (
            f"no PyInstaller hook for {dist} ({pkgs})"
        )


def test_every_installer_path_installs_the_lock():
    """dev.sh, build-linux, CI and the release install the locked set, and one torch version."""
    torch_version = _pins(TORCH_LOCK)["torch"].split("+")[0]
    dev = (ROOT / "scripts" / "dev.sh").read_text()
    build = (ROOT / "scripts" / "build-linux").read_text()
    for text in (dev, build):
        assert "--require-hashes" in text and "requirements/lock.txt" in text
        assert "requirements/torch-cpu.txt" in text
    assert "bash scripts/build-linux" in (ROOT / ".ci" / "run").read_text()
    release = (ROOT / ".github" / "workflows" / "release.yml").read_text()
    assert re.search(r"TORCH_SPEC: torch==(\S+)", release).group(1) == torch_version
    assert "-c requirements/constraints.txt" in release
    ci = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    assert "bash .ci/run" in ci and "-c requirements/constraints.txt" in ci
    # constraints.txt is lock.txt without hashes (a hashed constraint turns on --require-hashes)
    constraints = (ROOT / "requirements" / "constraints.txt").read_text()
    assert "--hash" not in constraints and _pins(
        ROOT / "requirements" / "constraints.txt"
    ) == _pins(LOCK)


def test_every_dependency_in_pyproject_is_locked_within_its_range():
    """A dependency added to pyproject.toml without `bash scripts/lock` would never be installed."""
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {**_pins(LOCK), **_pins(TORCH_LOCK)}
    problems = []
    for line in project["dependencies"] + project["optional-dependencies"]["test"]:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        pin = pins.get(BD.canonical(req.name))
        if pin is None or not req.specifier.contains(pin, prereleases=True):
            problems.append(f"{line} (locked: {pin})")
    assert not problems, f"not locked within pyproject's range, run bash scripts/lock: {problems}"
