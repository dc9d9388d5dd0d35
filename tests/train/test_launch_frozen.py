"""``--processes``/``--gpus`` from a frozen install (#19): no ``python -m``, so every process is
the bundle's console executable, ``zitdesk-console train CONFIG …`` (torchrun's ``--no-python``).

No bundle here: ``sys.frozen`` is set and :func:`zitdesk.paths.cli_command` answers a small
executable script that runs packaging/launcher.py (the bundle's entry point) with this Python and
logs each start, so the run goes through the launcher as the bundle's would.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file
from trainhelp import make_config, make_dataset

import zitdesk.paths
from zitdesk.errors import RequestError
from zitdesk.train.launch import check_gpus, launch, rank_command

ROOT = Path(__file__).resolve().parents[2]

posix = pytest.mark.skipif(sys.platform == "win32", reason="a POSIX shell script stands in")


@pytest.fixture
def frozen(tmp_path, monkeypatch) -> Path:
    """A simulated frozen install; returns the file each start of its console executable logs to."""
    log = tmp_path / "starts.log"
    exe = tmp_path / "bundle" / "zitdesk-console"
    exe.parent.mkdir()
    exe.write_text(
        "#!/bin/sh\n"
        f'echo "$RANK $*" >> "{log}"\n'
        f'PYTHONPATH="{ROOT}" exec "{sys.executable}" "{ROOT / "packaging" / "launcher.py"}" "$@"\n',
        encoding="utf-8",
    )
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(zitdesk.paths, "cli_command", lambda: [str(exe)])
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("ZITDESK_DIST_TIMEOUT_S", "120")
    return log


@posix
def test_the_frozen_rank_command_is_the_console_executable(frozen):
    exe = zitdesk.paths.cli_command()[0]
    assert rank_command() == ["--no-python", exe, "train"]


def test_the_source_rank_command_is_the_train_module():
    assert not getattr(sys, "frozen", False)
    assert rank_command() == ["--module", "zitdesk.cli.train"]


@posix
@pytest.mark.slow
def test_two_processes_train_through_the_frozen_launcher(frozen, train_model, tmp_path):
    data = make_dataset(tmp_path / "data", n=2)
    out = tmp_path / "out"
    cfg = make_config(
        train_model, data, out, optim={"steps": 2, "batch_size": 1, "warmup_steps": 0}
    )
    path = tmp_path / "job.toml"
    cfg.write(path)

    assert launch([str(path), "--quiet"], 2, None, cuda=False) == 0

    starts = frozen.read_text(encoding="utf-8").splitlines()
    assert sorted(starts) == [
        f"{rank} train {path} --quiet --device cpu" for rank in (0, 1)
    ]  # one start per process, each a train that joins the group (no second launch)
    lora = load_file(str(out / "lora.safetensors"))
    assert lora and any("lora" in k for k in lora)
    assert os.environ.get("ZITDESK_DIST_REPORT") is None


def test_gpus_without_nccl_is_one_sentence(monkeypatch):
    """PyTorch's Windows builds have no NCCL: two cards stop before any process starts; one card
    needs no process group."""
    import torch
    import torch.distributed as dist

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(dist, "is_nccl_available", lambda: False)
    with pytest.raises(RequestError, match="needs NCCL") as err:
        check_gpus(2, None)
    assert "\n" not in str(err.value)
    check_gpus(1, [1])  # one card: no error
