"""What the frozen bundle must carry besides Python modules, read from the installed packages.

Used by ``pyinstaller.spec`` (at build time) and by ``tests/packaging/test_spec_collects.py``.
Stdlib only, so it runs inside PyInstaller and in the tests alike.

* :func:`runtime_dists` — zitdesk's run-time dependency closure (pyproject.toml's dependencies and
  theirs, extras left out, markers evaluated): every one of them gets its ``.dist-info`` copied into the bundle, because
  transformers, diffusers, kernels, huggingface_hub and others look up versions through
  ``importlib.metadata`` at import time, and a missing one is a ``PackageNotFoundError`` (or, in
  transformers, a package silently treated as absent).
* :func:`package_data_files` — the files of a distribution that live inside its import packages
  and are not code (JSON, templates, certificates...): PyInstaller's analysis only follows
  imports, so such a file is left out unless the spec or a PyInstaller hook collects it.
"""

from __future__ import annotations

import importlib.metadata as md
import re
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
CODE_SUFFIXES = (".py", ".pyc", ".pyi", ".pyd", ".so", ".dll", ".dylib", ".typed")


def canonical(name: str) -> str:
    """PEP 503 name: ``PySide6_Essentials`` and ``pyside6-essentials`` are one distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _names(lines) -> list[str]:
    """Distribution names of requirement strings that apply here without extras."""
    try:
        from packaging.requirements import Requirement  # the PyPI package, not ./packaging
    except ImportError:  # pragma: no cover - packaging is in the lock
        Requirement = None
    names = []
    for line in lines or []:
        if Requirement is not None:
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            names.append(req.name)
        elif "extra ==" not in line:
            names.append(re.split(r"[\s;<>=!~\[(]", line, maxsplit=1)[0])
    return names


def runtime_dists(pyproject: str | Path = PYPROJECT) -> list[str]:
    """Canonical names of the project and every installed distribution it needs at run time.

    The project's own requirements come from pyproject.toml, not from its installed metadata: an
    editable install's metadata (or a stale ``*.egg-info`` in the source tree, which
    ``importlib.metadata`` finds first when the tree is on ``sys.path``) can lag behind it.
    """
    project = tomllib.loads(Path(pyproject).read_text())["project"]
    seen: set[str] = {canonical(project["name"])}
    todo = _names(project.get("dependencies"))
    while todo:
        name = canonical(todo.pop())
        if name in seen:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue  # an optional dependency that is not installed on this platform
        seen.add(name)
        todo.extend(_names(dist.requires))
    return sorted(seen)


def import_packages(dist_name: str) -> list[str]:
    """Top-level import names a distribution provides (``PyYAML`` → ``yaml``)."""
    dist = md.distribution(dist_name)
    tops = set()
    for f in dist.files or []:
        parts = f.parts
        if (
            not parts
            or parts[0].endswith((".dist-info", ".egg-info", ".data"))
            or parts[0] in ("..", "__pycache__")
        ):
            continue
        if len(parts) > 1:
            tops.add(parts[0])
        elif parts[0].endswith(".py"):
            tops.add(parts[0][:-3])
    return sorted(tops)


def package_data_files(dist_name: str) -> list[str]:
    """Non-code files installed inside the distribution's import packages, as ``pkg/sub/file``."""
    dist = md.distribution(dist_name)
    out = []
    for f in dist.files or []:
        parts = f.parts
        if (
            len(parts) < 2
            or parts[0] in ("..", "__pycache__")
            or parts[0].endswith((".dist-info", ".egg-info", ".data"))
        ):
            continue
        if "__pycache__" in parts:
            continue
        name = parts[-1]
        if name.endswith(CODE_SUFFIXES) or ".so." in name:
            continue
        out.append("/".join(parts))
    return sorted(out)
