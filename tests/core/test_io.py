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
        # hidden and ending in .tmp: no viewer or LoRA loader takes it for a finished file
        name = os.path.basename(tmp)
        assert tmp != str(p) and name.startswith(".img.png.") and name.endswith(".tmp")
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


def _normal_mode() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


@pytest.mark.skipif(os.name == "nt", reason="POSIX modes")
def test_every_safetensors_writer_gives_the_normal_mode(tmp_path):
    """LoRAs, checkpoint adapters and latent caches are readable by other users, like every
    other file (safetensors.save_file would leave them 0600)."""
    import torch

    from zitdesk.io import atomic_save_tensors
    from zitdesk.train.cache import _save_tensor
    from zitdesk.train.checkpoint import save_checkpoint
    from zitdesk.train.lora_io import save_lora

    lora = save_lora(tmp_path / "a.safetensors", {"x.lora_A.weight": torch.ones(2, 2)}, {"k": "v"})
    cache = tmp_path / "c.safetensors"
    _save_tensor(cache, "latent", torch.ones(4), {"m": "1"})
    ck = save_checkpoint(
        tmp_path / "ck",
        "lora",
        3,
        adapter={"w": torch.ones(2)},
        trainer_state={"runner": {}},
        state={},
        keep_last=2,
    )
    plain = atomic_save_tensors(tmp_path / "p.safetensors", {"t": torch.zeros(1)})
    for f in (lora, cache, ck / "adapter.safetensors", ck / "trainer.pt", ck / "state.json", plain):
        assert f.stat().st_mode & 0o777 == _normal_mode(), f
    os.chmod(lora, 0o640)  # a user's choice survives a rewrite
    save_lora(lora, {"x.lora_A.weight": torch.zeros(2, 2)}, {"k": "v"})
    assert lora.stat().st_mode & 0o777 == 0o640
    from safetensors.torch import load_file

    assert load_file(str(lora))["x.lora_A.weight"].sum() == 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_temp_names_fit_wherever_the_name_fits(tmp_path):
    """A 255-byte name (the usual limit) still gets a temp file: the name is shortened inside
    the temp name, and non-UTF-8 (surrogate-escaped) and multi-byte names survive."""
    from zitdesk.io import is_temp_name, temp_name

    for name in ("a" * 251 + ".txt", "é" * 125 + ".png", "caf\udce9.txt", "x"):
        p = tmp_path / name
        atomic_write(p, "ok")
        assert p.read_text() == "ok"
        t = temp_name(name, tmp_path)
        assert len(os.fsencode(t)) <= 255 and is_temp_name(t) and t.endswith(".tmp")
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["a" * 251 + ".txt", "é" * 125 + ".png", "caf\udce9.txt", "x"]
    )


def test_temp_name_recognition_is_narrow(tmp_path):
    from zitdesk.io import clean_temp_files, is_temp_name

    temps = [".a.png.k3j2_x1a.tmp", ".tmpAb3dE9", ".lora.dl93wuc7.safetensors"]
    keep = [".keepme", "a.tmp", ".config", "lora.safetensors", ".tmpfolder_not", ".x.tmp"]
    for n in temps + keep:
        (tmp_path / n).write_text("x")
    assert all(is_temp_name(n) for n in temps) and not any(is_temp_name(n) for n in keep)
    assert not is_temp_name(".lora.dl93wuc7.safetensors", legacy=False)
    assert clean_temp_files(tmp_path) == 3
    assert sorted(os.listdir(tmp_path)) == sorted(keep)
