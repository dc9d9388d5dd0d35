import os

import pytest

from zitdesk.io import atomic_open, atomic_save, atomic_write


def test_atomic_write_replaces_content(tmp_path):
    p = tmp_path / "a" / "cap.txt"
    atomic_write(p, "first")
    atomic_write(p, "second ✓")
    assert p.read_text(encoding="utf-8") == "second ✓"
    assert [f.name for f in p.parent.iterdir()] == ["cap.txt"]  # no temp files left


def test_failed_write_keeps_old_file(tmp_path):
    p = tmp_path / "cap.txt"
    atomic_write(p, b"original")
    with pytest.raises(RuntimeError), atomic_open(p, "wb") as fh:
        fh.write(b"half of the new con")
        raise RuntimeError("crash in the middle")
    assert p.read_bytes() == b"original"
    assert os.listdir(tmp_path) == ["cap.txt"]


def test_atomic_save_with_writer(tmp_path):
    p = tmp_path / "img.png"

    def writer(tmp):
        assert tmp != str(p) and tmp.endswith(".png")
        with open(tmp, "wb") as fh:
            fh.write(b"\x89PNG fake")

    atomic_save(p, writer)
    assert p.read_bytes() == b"\x89PNG fake"

    def broken(tmp):
        with open(tmp, "wb") as fh:
            fh.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_save(p, broken)
    assert p.read_bytes() == b"\x89PNG fake"
    assert os.listdir(tmp_path) == ["img.png"]


def test_new_files_get_normal_permissions_and_old_modes_are_kept(tmp_path):
    if os.name == "nt":
        pytest.skip("POSIX modes")
    umask = os.umask(0o022)
    os.umask(umask)
    p = tmp_path / "new.txt"
    atomic_write(p, "x")
    assert p.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600
    os.chmod(p, 0o640)
    atomic_write(p, "y")
    assert p.stat().st_mode & 0o777 == 0o640
    img = tmp_path / "img.png"
    atomic_save(img, lambda tmp: open(tmp, "wb").close())
    assert img.stat().st_mode & 0o777 == 0o666 & ~umask
