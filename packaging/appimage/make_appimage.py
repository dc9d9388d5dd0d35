#!/usr/bin/env python3
"""Assemble ``zitdesk-x86_64.AppImage`` offline from a PyInstaller onedir and our own runtime.

    python3 packaging/appimage/make_appimage.py --bundle dist/zitdesk \\
        --runtime build/appimage/runtime --output dist/zitdesk-x86_64.AppImage

Steps: build an AppDir (``AppRun``, ``zitdesk.desktop``, ``zitdesk.png`` + ``.DirIcon``, the hicolor
icon, the bundle under ``usr/lib/zitdesk``), squash it with Debian's ``mksquashfs`` (zstd), and write
``runtime + squashfs`` to the output. The runtime (packaging/appimage/runtime.c) must be a stripped
64-bit ELF whose section header table ends the file, because that is where the runtime looks for
the image; the type-2 magic ``AI\\x02`` at byte 8 is stamped here if the build left it out.
Only the standard library and squashfs-tools are needed; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
MAGIC_OFFSET, MAGIC = 8, b"AI\x02"
SQUASHFS_MAGIC = b"hsqs"


def elf_section_table_end(data: bytes) -> int:
    """Byte offset just past the ELF64 section header table (= where an AppImage's image starts)."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a little-endian 64-bit ELF file")
    e_shoff = struct.unpack_from("<Q", data, 0x28)[0]
    e_shentsize, e_shnum = struct.unpack_from("<HH", data, 0x3A)
    return e_shoff + e_shentsize * e_shnum


def checked_runtime(path: Path) -> bytes:
    """The runtime's bytes, with the type-2 magic set; raises ``SystemExit`` if it cannot work."""
    data = bytearray(path.read_bytes())
    try:
        end = elf_section_table_end(bytes(data[:64]))
    except ValueError as exc:
        raise SystemExit(f"{path}: {exc}") from None
    if end != len(data):
        raise SystemExit(
            f"{path}: the ELF section headers end at {end}, the file at {len(data)} bytes; "
            "strip the runtime so the image can follow it"
        )
    current = bytes(data[MAGIC_OFFSET : MAGIC_OFFSET + 3])
    if current not in (MAGIC, b"\0\0\0"):
        raise SystemExit(f"{path}: unexpected bytes {current!r} where the AppImage magic goes")
    data[MAGIC_OFFSET : MAGIC_OFFSET + 3] = MAGIC
    return bytes(data)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)  # same file system: no copy of gigabytes
    except OSError:
        shutil.copy2(src, dst)


def build_appdir(bundle: Path, appdir: Path, icon: Path) -> None:
    if not (bundle / "zitdesk").is_file():
        raise SystemExit(f"{bundle} is not a zitdesk onedir bundle (no 'zitdesk' executable)")
    if appdir.exists():
        shutil.rmtree(appdir)
    (appdir / "usr" / "lib").mkdir(parents=True)
    shutil.copytree(
        bundle, appdir / "usr" / "lib" / "zitdesk", symlinks=True, copy_function=_link_or_copy
    )
    shutil.copy2(HERE / "AppRun", appdir / "AppRun")
    (appdir / "AppRun").chmod(0o755)
    shutil.copy2(HERE / "zitdesk.desktop", appdir / "zitdesk.desktop")
    apps = appdir / "usr" / "share" / "applications"
    apps.mkdir(parents=True)
    shutil.copy2(HERE / "zitdesk.desktop", apps / "zitdesk.desktop")
    shutil.copy2(icon, appdir / "zitdesk.png")
    hicolor = appdir / "usr" / "share" / "icons" / "hicolor" / "256x256" / "apps"
    hicolor.mkdir(parents=True)
    shutil.copy2(icon, hicolor / "zitdesk.png")
    (appdir / ".DirIcon").symlink_to("zitdesk.png")


def check_appdir(appdir: Path) -> None:
    """The parts every AppImage tool expects at the top of the AppDir."""
    apprun = appdir / "AppRun"
    if not (apprun.is_file() and os.access(apprun, os.X_OK)):
        raise SystemExit(f"{apprun} is missing or not executable")
    desktops = sorted(appdir.glob("*.desktop"))
    if len(desktops) != 1:
        raise SystemExit(
            f"{appdir} needs exactly one top-level .desktop file, found {len(desktops)}"
        )
    entries = dict(
        line.split("=", 1) for line in desktops[0].read_text().splitlines() if "=" in line
    )
    for key in ("Name", "Exec", "Icon", "Type", "Categories"):
        if not entries.get(key):
            raise SystemExit(f"{desktops[0].name} has no {key}=")
    if not (appdir / f"{entries['Icon']}.png").is_file():
        raise SystemExit(f"the icon {entries['Icon']}.png named by {desktops[0].name} is missing")


def squash(appdir: Path, out: Path, comp: str) -> float:
    t0 = time.monotonic()
    cmd = [
        "mksquashfs",
        str(appdir),
        str(out),
        "-noappend",
        "-all-root",
        "-comp",
        comp,
        "-b",
        "1M",
        "-no-progress",
        "-quiet",
    ]
    if comp == "zstd":
        cmd += ["-Xcompression-level", "19" if os.environ.get("ZITDESK_APPIMAGE_SMALL") else "15"]
    subprocess.run(cmd, check=True)
    return time.monotonic() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--bundle", type=Path, help="PyInstaller onedir (dist/zitdesk); omit with --appdir only"
    )
    ap.add_argument("--appdir", type=Path, default=ROOT / "build" / "appimage" / "AppDir")
    ap.add_argument(
        "--runtime", type=Path, required=True, help="compiled packaging/appimage/runtime.c"
    )
    ap.add_argument("--output", type=Path, default=ROOT / "dist" / "zitdesk-x86_64.AppImage")
    ap.add_argument("--icon", type=Path, default=ROOT / "resources" / "icons" / "zitdesk.png")
    ap.add_argument("--comp", default="zstd", choices=("zstd", "xz", "gzip"))
    a = ap.parse_args(argv)

    if shutil.which("mksquashfs") is None:
        raise SystemExit("mksquashfs not found: apt-get install squashfs-tools")
    runtime = checked_runtime(a.runtime)
    if a.bundle:
        build_appdir(a.bundle, a.appdir, a.icon)
    check_appdir(a.appdir)

    a.output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=a.output.parent) as tmp:
        image = Path(tmp) / "image.squashfs"
        seconds = squash(a.appdir, image, a.comp)
        part = Path(tmp) / a.output.name
        with open(part, "wb") as out:
            out.write(runtime)
            with open(image, "rb") as src:
                shutil.copyfileobj(src, out, 8 << 20)
        with open(part, "rb") as f:
            f.seek(len(runtime))
            if f.read(4) != SQUASHFS_MAGIC:
                raise SystemExit("the assembled file has no squashfs image after the runtime")
        part.chmod(0o755)
        os.replace(part, a.output)
    size = a.output.stat().st_size
    print(
        f"{a.output}: {size} bytes ({size / 1e9:.2f} GB), image at offset {len(runtime)}, "
        f"mksquashfs {a.comp} {seconds:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
