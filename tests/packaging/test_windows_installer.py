"""The Windows installer (packaging/windows/zitdesk.nsi) built by scripts/build-windows-installer
with Debian's makensis and run under Wine in a throw-away prefix.

The payload is a stand-in for the PyInstaller folder: two real x64 Windows programs
(zitdesk.exe, zitdesk-console.exe, cross-compiled with mingw-w64) that print where they run from
and the contents of _internal/stand-in.txt, plus incompressible "DLLs", a name with a space, a
'$' and an accent, and an empty folder. A tiny part size splits it into setup.exe and three
data parts, so the path the 4 GB CUDA build takes (setup.exe + .bin parts) is the one tested.

One Wine prefix for the module (starting Wine takes 10-60 s). Skipped only where makensis,
wine or x86_64-w64-mingw32-gcc is missing; scripts/dev.sh installs them (nsis, wine,
wine64, gcc-mingw-w64-x86-64-win32), so CI runs it.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "scripts" / "build-windows-installer"
VERSION = "9.9.9-test"
NAME = f"zitdesk-{VERSION}-setup"
PART_SIZE = 250_000
UNINST_KEY = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Uninstall\zitdesk"

TOOLS = {
    "makensis": "nsis",
    "wine": "wine",
    "wineserver": "wine",
    "x86_64-w64-mingw32-gcc": "gcc-mingw-w64-x86-64-win32",
}
MISSING = [t for t in TOOLS if not shutil.which(t)]
if MISSING:
    pytest.skip(
        f"{', '.join(MISSING)} not installed (apt-get install "
        f"{' '.join(sorted({TOOLS[t] for t in MISSING}))}; scripts/dev.sh does it)",
        allow_module_level=True,
    )

pytestmark = pytest.mark.timeout(300)

STAND_IN_C = r"""
#include <windows.h>
#include <stdio.h>
#include <wchar.h>

static void put(const wchar_t *s) {
    char buf[8192];
    int n = WideCharToMultiByte(CP_UTF8, 0, s, -1, buf, sizeof buf, NULL, NULL);
    if (n > 1) fwrite(buf, 1, (size_t)n - 1, stdout);
}

int wmain(int argc, wchar_t **argv) {
    wchar_t exe[2048], data[2200];
    DWORD n = GetModuleFileNameW(NULL, exe, 2048);
    if (n == 0 || n >= 2048) return 4;
    wchar_t *slash = wcsrchr(exe, L'\\');
    int dir = slash ? (int)(slash - exe) : 0;
    swprintf(data, 2200, L"%.*ls\\_internal\\stand-in.txt", dir, exe);
    put(L"zitdesk stand-in: exe="); put(exe); put(L" args=[");
    for (int i = 1; i < argc; i++) { if (i > 1) put(L" "); put(argv[i]); }
    put(L"]");
    FILE *f = _wfopen(data, L"rb");
    if (!f) { put(L" FAIL - missing "); put(data); put(L"\n"); return 3; }
    char text[256];
    size_t k = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[k] = 0;
    while (k && (text[k - 1] == '\n' || text[k - 1] == '\r')) text[--k] = 0;
    printf(" data=%s PASS\n", text);
    return 0;
}
"""
STAND_IN_TEXT = "zitdesk stand-in payload 9.9.9"


class Wine:
    """wine in its own prefix and HOME, without display, Mono, Gecko or desktop-menu entries."""

    def __init__(self, root: Path):
        self.prefix = root / "prefix"
        home = root / "home"
        home.mkdir(parents=True)
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DISPLAY", "WAYLAND_DISPLAY") and not k.startswith(("XDG_", "WINE"))
        }
        env.update(
            WINEPREFIX=str(self.prefix),
            WINEARCH="win64",
            HOME=str(home),
            WINEDEBUG="-all",
            WINEDLLOVERRIDES="mscoree,mshtml=;winemenubuilder.exe=d",
            LC_ALL="C.UTF-8",
        )
        self.env = env

    def run(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        """Run one Windows program and wait until every process of the prefix has ended."""
        try:
            return subprocess.run(
                ["wine", *args],
                env=self.env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
            )
        finally:
            subprocess.run(["wineserver", "-w"], env=self.env, timeout=timeout)

    def out(self, *args: str) -> str:
        p = self.run(*args)
        assert p.returncode == 0, (args, p.returncode, p.stdout, p.stderr)
        return p.stdout.decode("utf-8", "replace").replace("\r\n", "\n")

    def unix(self, path: str) -> Path:
        """C:\\x\\y → <prefix>/drive_c/x/y (our paths are all on C:; wine keeps the case)."""
        p = PureWindowsPath(path)
        assert p.drive.upper() == "C:", path
        return self.prefix.joinpath("drive_c", *p.parts[1:])

    def command_line(self, line: str) -> subprocess.CompletedProcess:
        """Run a raw Windows command line (wine itself would quote every argument that has a
        space, and NSIS reads /D= only unquoted), through a batch file as cmd.exe would."""
        bat = self.prefix / "drive_c" / "zitdesk-test.bat"
        bat.write_bytes(b"@" + line.encode("ascii") + b"\r\n")
        try:
            return self.run("cmd", "/c", r"C:\zitdesk-test.bat")
        finally:
            bat.unlink()

    def reg_query(self, key: str) -> subprocess.CompletedProcess:
        return self.run("reg", "query", key)

    def stop(self):
        subprocess.run(["wineserver", "-k"], env=self.env, timeout=60, capture_output=True)


@dataclass
class Built:
    payload: Path
    out: Path
    build_log: str
    wine: Wine
    localappdata: str
    appdata: str
    snapshot: tuple[set[str], str]  # files under drive_c/users and user.reg before any install

    @property
    def setup(self) -> Path:
        return self.out / f"{NAME}.exe"

    @property
    def default_dir(self) -> str:
        return self.localappdata + r"\Programs\zitdesk"

    @property
    def start_menu(self) -> str:
        return self.appdata + r"\Microsoft\Windows\Start Menu\Programs\zitdesk"


def _users_tree(wine: Wine) -> set[str]:
    users = wine.prefix / "drive_c" / "users"
    return {str(p.relative_to(users)) for p in users.rglob("*")}


def _make_payload(root: Path) -> Path:
    src = root / "stand-in.c"
    src.write_text(STAND_IN_C)
    pay = root / "payload"
    (pay / "_internal" / "torch" / "lib").mkdir(parents=True)
    for exe, flags in (("zitdesk.exe", ["-mwindows"]), ("zitdesk-console.exe", [])):
        subprocess.run(
            [
                "x86_64-w64-mingw32-gcc",
                "-municode",
                "-O2",
                "-s",
                *flags,
                "-o",
                str(pay / exe),
                str(src),
            ],
            check=True,
            timeout=120,
        )
    (pay / "_internal" / "stand-in.txt").write_text(STAND_IN_TEXT + "\n")
    rnd = random.Random(10)
    for i in range(3):  # distinct random data: NSIS would pack identical files once
        (pay / "_internal" / "torch" / "lib" / f"blob{i}.dll").write_bytes(rnd.randbytes(200_000))
    odd = pay / "_internal" / "odd dir"
    odd.mkdir()
    (odd / "a $dollar & é.txt").write_text("odd name\n")
    (pay / "_internal" / "empty").mkdir()
    return pay


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("wininst")
    payload = _make_payload(root)
    out = root / "out"
    b = subprocess.run(
        [
            "bash",
            str(BUILD),
            "--version",
            VERSION,
            "--payload",
            str(payload),
            "--out",
            str(out),
            "--part-size",
            str(PART_SIZE),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert b.returncode == 0, b.stdout + b.stderr

    wine = Wine(root)
    try:
        p = wine.run("wineboot", "-i", timeout=240)
        assert p.returncode == 0, p.stderr
        # A new Wine 8 prefix reports Windows 7; the installer requires 10 or 11.
        wine.out("reg", "add", r"HKCU\Software\Wine", "/v", "Version", "/d", "win10", "/f")
        assert "10.0" in wine.out("cmd", "/c", "ver")
        local, appdata = wine.out("cmd", "/c", "echo %LOCALAPPDATA%^|%APPDATA%").strip().split("|")
        snapshot = (_users_tree(wine), (wine.prefix / "user.reg").read_text(errors="replace"))
        yield Built(payload, out, b.stdout, wine, local, appdata, snapshot)
    finally:
        wine.stop()
        shutil.rmtree(root, ignore_errors=True)  # a prefix is several hundred MB


@pytest.fixture(scope="module")
def installed(built):
    p = built.wine.run(str(built.setup), "/S")
    assert p.returncode == 0, (p.returncode, p.stderr)
    return built


def _payload_files(payload: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(payload)): hashlib.sha256(p.read_bytes()).digest()
        for p in payload.rglob("*")
        if p.is_file()
    }


def _installed_files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).digest()
        for p in folder.rglob("*")
        if p.is_file()
    }


def read_lnk(data: bytes) -> dict[str, str]:
    """Target, arguments, working folder and icon of a Windows shell link ([MS-SHLLINK])."""
    assert data[:4] == b"L\0\0\0" and len(data) >= 76, "not a shell link"
    flags = struct.unpack_from("<I", data, 0x14)[0]
    pos = 76
    if flags & 0x01:  # HasLinkTargetIDList
        pos += 2 + struct.unpack_from("<H", data, pos)[0]
    info: dict[str, str] = {}
    if flags & 0x02:  # HasLinkInfo
        size, hsize, lflags = struct.unpack_from("<III", data, pos)
        local_off, _net, suffix_off = struct.unpack_from("<III", data, pos + 16)

        def cstr(off: int) -> str:
            end = data.index(b"\0", pos + off)
            return data[pos + off : end].decode("mbcs" if os.name == "nt" else "latin-1")

        if lflags & 1:
            info["target"] = cstr(local_off) + cstr(suffix_off)
        pos += size
    unicode = bool(flags & 0x80)
    for bit, key in (
        (0x04, "name"),
        (0x08, "relative"),
        (0x10, "workdir"),
        (0x20, "args"),
        (0x40, "icon"),
    ):
        if flags & bit:
            n = struct.unpack_from("<H", data, pos)[0]
            pos += 2
            raw = data[pos : pos + (2 * n if unicode else n)]
            pos += len(raw)
            info[key] = raw.decode("utf-16-le" if unicode else "latin-1").rstrip("\0")
    return info


def _run_command_line(built: Built, target: str, args: str) -> str:
    """Run a shortcut's command line as written."""
    p = built.wine.command_line(f'"{target}" {args}')
    assert p.returncode == 0, (target, args, p.returncode, p.stdout, p.stderr)
    return p.stdout.decode("utf-8", "replace").replace("\r\n", "\n")


# ------------------------------------------------------------------------------------------------


def test_build_splits_the_payload_into_setup_and_data_parts(built):
    files = sorted(p.name for p in built.out.iterdir())
    assert files == [
        f"{NAME}-1.bin",
        f"{NAME}-2.bin",
        f"{NAME}-3.bin",
        f"{NAME}.exe",
        f"{NAME}.sha256",
    ], files
    for f in files[:-1]:
        data = (built.out / f).read_bytes()
        assert data[:2] == b"MZ"
        assert (
            struct.unpack_from("<H", data, struct.unpack_from("<I", data, 0x3C)[0] + 4)[0] == 0x8664
        )
        # one part holds at most PART_SIZE bytes of (here incompressible) files plus the stub
        assert len(data) < PART_SIZE + 200_000, (f, len(data))
    sums = dict(
        reversed(line.split("  ", 1))
        for line in (built.out / f"{NAME}.sha256").read_text().splitlines()
    )
    assert set(sums) == set(files[:-1])
    assert all(hashlib.sha256((built.out / f).read_bytes()).hexdigest() == sums[f] for f in sums)
    assert "setup.exe + 3 data part(s)" in built.build_log


def test_build_refuses_a_folder_without_the_launchers(tmp_path):
    (tmp_path / "pay").mkdir()
    (tmp_path / "pay" / "zitdesk.exe").write_bytes(b"MZ")
    p = subprocess.run(
        [
            "bash",
            str(BUILD),
            "--version",
            "1.0",
            "--payload",
            str(tmp_path / "pay"),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 1
    assert p.stderr.strip().endswith(
        "has no zitdesk-console.exe: point --payload at the Windows PyInstaller folder."
    )
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_missing_damaged_or_swapped_part_installs_nothing(built, tmp_path):
    target = r"C:\zitdesk-refused"
    cases = {
        "missing": lambda d: (d / f"{NAME}-2.bin").unlink(),
        "damaged": lambda d: _flip_byte(d / f"{NAME}-2.bin"),
        "swapped": lambda d: shutil.copyfile(d / f"{NAME}-1.bin", d / f"{NAME}-2.bin"),
    }
    for what, spoil in cases.items():
        d = tmp_path / what
        shutil.copytree(built.out, d)
        spoil(d)
        p = built.wine.run(str(d / f"{NAME}.exe"), "/S", f"/D={target}")
        assert p.returncode == 2, (what, p.returncode)
        assert not built.wine.unix(target).exists(), what
    # a data part started on its own refuses and writes nothing
    p = built.wine.run(str(built.out / f"{NAME}-1.bin"), "/S", f"/D={target}")
    assert p.returncode == 2 and not built.wine.unix(target).exists()


def _flip_byte(path: Path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_silent_install_for_the_current_user(installed):
    b = installed
    assert re.fullmatch(r"C:\\users\\[^\\]+\\AppData\\Local\\Programs\\zitdesk", b.default_dir), (
        b.default_dir
    )
    folder = b.wine.unix(b.default_dir)
    got = _installed_files(folder)
    assert got.pop("uninstall.exe", None) is not None
    assert got == _payload_files(b.payload)  # every file, byte for byte, names intact
    assert (folder / "_internal" / "empty").is_dir()
    assert not (b.wine.prefix / "drive_c" / "Program Files" / "zitdesk").exists()


def test_installed_launcher_runs(installed):
    b = installed
    out = b.wine.out(b.default_dir + r"\zitdesk-console.exe", "--selftest")
    assert out.strip() == (
        f"zitdesk stand-in: exe={b.default_dir}\\zitdesk-console.exe "
        f"args=[--selftest] data={STAND_IN_TEXT} PASS"
    )


def test_start_menu_entries_start_the_installed_programs(installed):
    b = installed
    menu = b.wine.unix(b.start_menu)
    assert sorted(p.name for p in menu.iterdir()) == [
        "Uninstall zitdesk.lnk",
        "zitdesk system check.lnk",
        "zitdesk.lnk",
    ]
    app = read_lnk((menu / "zitdesk.lnk").read_bytes())
    check = read_lnk((menu / "zitdesk system check.lnk").read_bytes())
    uninstall = read_lnk((menu / "Uninstall zitdesk.lnk").read_bytes())
    assert app["target"].lower() == (b.default_dir + r"\zitdesk.exe").lower()
    assert uninstall["target"].lower() == (b.default_dir + r"\uninstall.exe").lower()
    assert b.wine.unix(uninstall["target"]).is_file()
    assert check["target"].lower() == r"c:\windows\system32\cmd.exe"
    assert check["workdir"].lower() == b.default_dir.lower()

    # each entry's command line, run as written, starts the installed program
    out = _run_command_line(b, app["target"], app.get("args", ""))
    assert out.strip().endswith(
        f"exe={b.default_dir}\\zitdesk.exe args=[] data={STAND_IN_TEXT} PASS"
    )
    out = _run_command_line(b, check["target"], check["args"])
    assert (
        f"exe={b.default_dir}\\zitdesk-console.exe args=[--selftest] data={STAND_IN_TEXT} PASS"
        in out
    )  # followed by cmd's "press any key" (stdin is empty here)


def test_uninstaller_is_registered_for_the_current_user(installed):
    b = installed
    p = b.wine.reg_query(UNINST_KEY)
    assert p.returncode == 0, p.stderr
    values = dict(re.findall(r"^\s+(\w+)\s+REG_\w+\s+(.*?)\s*$", p.stdout.decode(), flags=re.M))
    assert values["DisplayName"] == "zitdesk" and values["DisplayVersion"] == VERSION
    assert values["InstallLocation"] == b.default_dir
    assert values["UninstallString"] == f'"{b.default_dir}\\uninstall.exe"'
    assert values["QuietUninstallString"] == f'"{b.default_dir}\\uninstall.exe" /S'
    assert (
        int(values["EstimatedSize"], 16)
        >= sum(f.stat().st_size for f in b.payload.rglob("*") if f.is_file()) // 1024
    )
    assert b.wine.reg_query(UNINST_KEY.replace("HKCU", "HKLM")).returncode != 0  # not machine-wide


def _assert_nothing_left(b: Built, folder: str, keep: frozenset[str] = frozenset()):
    assert not b.wine.unix(folder).exists()
    assert not b.wine.unix(b.start_menu).exists()
    assert b.wine.reg_query(UNINST_KEY).returncode != 0
    before_tree, before_reg = b.snapshot
    # Allowed: NSIS's own copy of the uninstaller in %TEMP% (~nsuN.tmp\Un.exe), which it schedules
    # for deletion at the next reboot, and the empty per-user program folder %LOCALAPPDATA%\Programs
    # (FOLDERID_UserProgramFiles, shared by every per-user program). Nothing else may differ from
    # before the first install.
    programs = str(
        b.wine.unix(b.localappdata + r"\Programs").relative_to(b.wine.prefix / "drive_c" / "users")
    )
    left = (
        {
            p
            for p in _users_tree(b.wine) - before_tree
            if not re.search(r"[\\/]Temp[\\/]~nsu", p) and not re.fullmatch(r"[^\\/]+[\\/]Temp", p)
        }
        - keep
        - {programs}
    )
    assert not any(b.wine.unix(b.localappdata + r"\Programs").iterdir()) or programs in before_tree
    assert left == set(), left
    reg = (b.wine.prefix / "user.reg").read_text(errors="replace")
    assert "zitdesk" not in reg.lower() and "zitdesk" not in before_reg.lower()


def test_silent_uninstall_leaves_nothing(installed):
    b = installed
    p = b.wine.run(b.default_dir + r"\uninstall.exe", "/S")
    assert p.returncode == 0
    _assert_nothing_left(b, b.default_dir)


def test_upgrade_into_a_chosen_folder_then_uninstall(built, tmp_path):
    b = built
    # version 2 drops a file and changes another: the upgrade must not leave the old file behind
    pay2 = tmp_path / "payload2"
    shutil.copytree(b.payload, pay2)
    shutil.rmtree(pay2 / "_internal" / "odd dir")
    (pay2 / "_internal" / "stand-in.txt").write_text("version two\n")
    v2 = subprocess.run(
        [
            "bash",
            str(BUILD),
            "--version",
            "9.9.10-test",
            "--payload",
            str(pay2),
            "--out",
            str(tmp_path / "out2"),
            "--part-size",
            str(PART_SIZE),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert v2.returncode == 0, v2.stderr
    # the user's own folder, with a file of theirs: both stay after the uninstall
    mine = b.wine.unix(b.localappdata + r"\My Apps")
    mine.mkdir()
    (mine / "notes.txt").write_text("mine\n")
    folder = b.localappdata + r"\My Apps\zitdesk $ & co"
    setup = "Z:" + str(b.setup).replace("/", "\\")
    assert b.wine.command_line(f'"{setup}" /S /D={folder.replace("&", "^&")}').returncode == 0
    got = _installed_files(b.wine.unix(folder))
    assert got.pop("uninstall.exe", None) is not None and got == _payload_files(b.payload)
    p = b.wine.run(
        str(tmp_path / "out2" / "zitdesk-9.9.10-test-setup.exe"), "/S"
    )  # folder from HKCU
    assert p.returncode == 0
    got = _installed_files(b.wine.unix(folder))
    assert got.pop("uninstall.exe", None) is not None and got == _payload_files(pay2)
    assert not b.wine.unix(folder + r"\_internal\odd dir").exists()
    assert f"exe={folder}\\zitdesk-console.exe args=[] data=version two PASS" in b.wine.out(
        folder + r"\zitdesk-console.exe"
    )
    values = b.wine.reg_query(UNINST_KEY).stdout.decode("utf-8", "replace")
    assert re.search(r"DisplayVersion\s+REG_SZ\s+9\.9\.10-test\s*$", values, re.M), values

    assert b.wine.run(folder + r"\uninstall.exe", "/S").returncode == 0
    users = b.wine.prefix / "drive_c" / "users"
    _assert_nothing_left(
        b, folder, keep=frozenset(str(x.relative_to(users)) for x in (mine, mine / "notes.txt"))
    )
    assert (mine / "notes.txt").read_text() == "mine\n"
