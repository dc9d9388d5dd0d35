"""``zitdesk train``: --init writes a usable config; a run prints the LoRA path and exits 0."""

from __future__ import annotations

import json

from trainhelp import make_config

from zitdesk.cli.train import main
from zitdesk.train.config import TrainConfig


def test_init_writes_a_preset_config(tmp_path, capsys):
    path = tmp_path / "job.toml"
    rc = main(
        [
            str(path),
            "--init",
            "--preset",
            "12gb",
            "--model",
            "/m",
            "--data",
            "/d",
            "--out",
            str(tmp_path / "o"),
            "--trigger",
            "ohwx",
        ]
    )
    assert rc == 0 and capsys.readouterr().out.strip() == str(path)
    cfg = TrainConfig.load(path).validate()
    assert cfg.memory.preset == "12gb" and cfg.model.base_precision == "fp8"
    assert cfg.data.trigger == "ohwx" and cfg.sample.prompts == ("a photo of [trigger]",)
    assert main([str(path), "--init"]) == 1  # never overwrites


def test_run_and_refuse_without_resume(train_model, dataset, tmp_path, capsys):
    cfg = make_config(train_model, dataset, tmp_path / "o", optim={"steps": 2})
    path = cfg.write(tmp_path / "job.toml")
    assert main([str(path), "--quiet"]) == 0
    out = capsys.readouterr()
    assert out.out.strip() == str(tmp_path / "o" / "lora.safetensors")
    assert main([str(path), "--quiet"]) == 1
    assert "--resume" in capsys.readouterr().err
    assert main([str(path), "--json", "--resume"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[0]["event"] == "JobStarted" and events[-1]["event"] == "JobFinished"


def test_bad_config_is_one_plain_line(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(
        "[lora]\nrank = 0\n[model]\npath='/m'\n[data]\nfolder='/d'\n[save]\noutput_dir='/o'\n"
    )
    assert main([str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["zitdesk: LoRA rank must be between 1 and 1024 (16–32 is typical)."]
