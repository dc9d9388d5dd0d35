"""The offline AppImage tool chain: our runtime (packaging/appimage/runtime.c) built from Debian's
static libraries, the assembler, and the result running through FUSE and by extract-and-run.

Uses a tiny AppDir (a shell AppRun), so it takes seconds. Skipped where the build dependencies
(gcc, libsquashfuse-dev, libfuse3-dev, squashfs-tools) are not installed.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "packaging" / "appimage"))
import make_appimage

LIBS = [
    "-lsquashfuse_ll",
    "-lsquashfuse",
    "-lfuse3",
    "-lzstd",
    "-llz4",
    "-llzo2",
    "-llzma",
    "-lz",
    "-lpthread",
    "-ldl",
]
HAVE_TOOLS = (
    shutil.which("gcc")
    and shutil.which("mksquashfs")
    and shutil.which("strip")
    and Path("/usr/include/squashfuse/ll.h").exists()
)


def test_elf_end_and_magic_checks(tmp_path):
    hdr = bytearray(64)
    hdr[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", hdr, 0x28, 64)  # section headers right after the ELF header
    struct.pack_into("<HH", hdr, 0x3A, 64, 0)  # none of them
    assert make_appimage.elf_section_table_end(bytes(hdr)) == 64
    rt = tmp_path / "rt"
    rt.write_bytes(bytes(hdr))
    assert make_appimage.checked_runtime(rt)[8:11] == b"AI\x02"
    rt.write_bytes(bytes(hdr) + b"trailing")
    with pytest.raises(SystemExit, match="strip"):
        make_appimage.checked_runtime(rt)
    rt.write_bytes(b"#!/bin/sh\n" + bytes(60))
    with pytest.raises(SystemExit, match="ELF"):
        make_appimage.checked_runtime(rt)


def test_appdir_check_names_what_is_missing(tmp_path):
    appdir = tmp_path / "AppDir"
    appdir.mkdir()
    with pytest.raises(SystemExit, match="AppRun"):
        make_appimage.check_appdir(appdir)
    (appdir / "AppRun").write_text("#!/bin/sh\n")
    (appdir / "AppRun").chmod(0o755)
    shutil.copy(ROOT / "packaging" / "appimage" / "zitdesk.desktop", appdir)
    with pytest.raises(SystemExit, match="zitdesk.png"):
        make_appimage.check_appdir(appdir)
    shutil.copy(ROOT / "resources" / "icons" / "zitdesk.png", appdir)
    make_appimage.check_appdir(appdir)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory) -> Path:
    if not HAVE_TOOLS:
        pytest.skip("AppImage build dependencies are not installed (see scripts/build-linux)")
    out = tmp_path_factory.mktemp("rt") / "runtime"
    subprocess.run(
        [
            "gcc",
            "-O2",
            "-static",
            "-o",
            str(out),
            str(ROOT / "packaging/appimage/runtime.c"),
            "-I/usr/include/squashfuse",
            *LIBS,
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(["strip", str(out)], check=True)
    return out


@pytest.fixture(scope="module")
def hello_appimage(runtime, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("hello")
    appdir = d / "AppDir"
    (appdir / "usr" / "bin").mkdir(parents=True)
    (appdir / "AppRun").write_text(
        '#!/bin/sh\necho "appdir=$APPDIR appimage=$APPIMAGE args=$*"\n'
        'cat "$APPDIR/usr/bin/payload.txt"\nexit 7\n'
    )
    (appdir / "AppRun").chmod(0o755)
    (appdir / "usr" / "bin" / "payload.txt").write_text("payload ok\n")
    (appdir / "usr" / "bin" / "link").symlink_to("payload.txt")
    shutil.copy(ROOT / "packaging" / "appimage" / "zitdesk.desktop", appdir)
    shutil.copy(ROOT / "resources" / "icons" / "zitdesk.png", appdir)
    out = d / "hello-x86_64.AppImage"
    make_appimage.main(["--appdir", str(appdir), "--runtime", str(runtime), "--output", str(out)])
    return out


def _run(
    app: Path, *args: str, tmp: Path, extra_env: dict | None = None
) -> subprocess.CompletedProcess:
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp / "cache"), TMPDIR=str(tmp))
    env.update(extra_env or {})
    return subprocess.run(
        [str(app), *args], cwd=tmp, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_runtime_options(hello_appimage, tmp_path):
    res = _run(hello_appimage, "--appimage-offset", tmp=tmp_path)
    offset = int(res.stdout)
    with open(hello_appimage, "rb") as f:
        assert f.read(12)[8:11] == b"AI\x02"
        f.seek(offset)
        assert f.read(4) == b"hsqs"
    res = _run(hello_appimage, "--appimage-extract", tmp=tmp_path)
    assert res.returncode == 0
    assert (
        tmp_path / "squashfs-root" / "usr" / "bin" / "payload.txt"
    ).read_text() == "payload ok\n"
    assert os.readlink(tmp_path / "squashfs-root" / "usr" / "bin" / "link") == "payload.txt"
    assert os.access(tmp_path / "squashfs-root" / "AppRun", os.X_OK)
    assert (
        "--appimage-extract-and-run" in _run(hello_appimage, "--appimage-help", tmp=tmp_path).stdout
    )


def test_extract_and_run_passes_arguments_and_exit_code(hello_appimage, tmp_path):
    res = _run(hello_appimage, "--appimage-extract-and-run", "--selftest", "x y", tmp=tmp_path)
    assert res.returncode == 7
    assert "args=--selftest x y" in res.stdout and "payload ok" in res.stdout
    assert f"appimage={hello_appimage}" in res.stdout
    cached = list((tmp_path / "cache" / "zitdesk-appimage").iterdir())
    assert len(cached) == 1 and (cached[0] / ".extracted").exists()
    again = _run(hello_appimage, tmp=tmp_path, extra_env={"APPIMAGE_EXTRACT_AND_RUN": "1"})
    assert again.returncode == 7 and "unpacking" not in again.stderr  # reused the cache


def _fuse_usable() -> bool:
    return (
        Path("/dev/fuse").exists()
        and os.access("/dev/fuse", os.R_OK | os.W_OK)
        and (os.geteuid() == 0 or shutil.which("fusermount3") is not None)
    )


def test_fuse_mount_runs_and_unmounts(hello_appimage, tmp_path):
    res = _run(hello_appimage, "a", tmp=tmp_path)
    assert res.returncode == 7, res.stderr
    assert "payload ok" in res.stdout
    if not _fuse_usable():
        assert "falling back" in res.stderr
        pytest.skip("FUSE is not usable here; the fallback ran instead")
    assert "falling back" not in res.stderr, res.stderr
    assert "appdir=" + str(tmp_path) + "/.mount_zitdesk_" in res.stdout
    mounts = Path("/proc/mounts").read_text()
    assert str(tmp_path) not in mounts  # unmounted when AppRun exited
    assert not list(tmp_path.glob(".mount_zitdesk_*"))
