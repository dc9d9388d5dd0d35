"""LoRA warnings reach the user, and alpha is reported as it is applied (issue 12.14)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from zitdesk.engine.cancel import CancelToken
from zitdesk.engine.events import JobFinished, LoraReport
from zitdesk.engine.generate import GenerationEngine
from zitdesk.engine.requests import GenerateRequest, LoraSpec
from zitdesk.io import atomic_save_tensors
from zitdesk.lora.inspect import inspect_json, inspect_lora

ROOT = Path(__file__).resolve().parents[2]
MODULES = ("layers.0.attention.to_q", "layers.0.attention.to_k")


def _lora(path: Path, prefix: str, metadata: dict[str, str] | None = None, rank: int = 4) -> Path:
    g = torch.Generator().manual_seed(3)
    sd = {}
    for m in MODULES:
        sd[f"{prefix}{m}.lora_A.weight"] = torch.randn(rank, 32, generator=g) * 0.01
        sd[f"{prefix}{m}.lora_B.weight"] = torch.randn(32, rank, generator=g) * 0.01
    return atomic_save_tensors(path, sd, metadata=metadata or {"format": "pt"})


def test_folded_alpha_is_reported_as_applied_and_not_warned(tmp_path):
    # OneTrainer's default output (ComfyUI keys, alpha folded into the weights)
    ot = inspect_lora(
        _lora(
            tmp_path / "ot.safetensors",
            "diffusion_model.",
            {"ot_branch": "master", "ot_revision": "abc", "ss_network_alpha": "1"},
        )
    )
    assert ot.tool == "OneTrainer" and ot.dialect_label == "OneTrainer, aitoolkit keys"
    assert ot.alpha == 4 and ot.alpha_source == "weights" and ot.trained_alpha == 1
    # musubi-tuner after conversion to diffusers keys: metadata says alpha 1, weights hold it
    mu = inspect_json(
        _lora(
            tmp_path / "mu.safetensors",
            "transformer.",
            {"ss_network_module": "networks.lora_zimage", "ss_network_alpha": "1"},
        )
    )
    assert mu["alpha"] == 4 and mu["alpha_source"] == "weights" and mu["trained_alpha"] == 1
    assert mu["tool"] == "musubi-tuner" and "musubi-tuner" in mu["message"]


@pytest.fixture(scope="module")
def engine(tiny_comfy):
    eng = GenerationEngine(model_path=str(tiny_comfy), device="cpu")
    yield eng
    eng.shutdown()


def _reports(engine, lora: Path, out: Path) -> list[LoraReport]:
    events = []
    req = GenerateRequest(
        prompt="x",
        width=64,
        height=64,
        steps=1,
        output_dir=str(out),
        loras=(LoraSpec(str(lora), 1.0),),
    )
    engine.run(req, events.append, CancelToken())
    assert isinstance(events[-1], JobFinished), events[-1]
    return [e for e in events if isinstance(e, LoraReport)]


def test_warnings_travel_in_the_lora_report(engine, tmp_path):
    bare = _lora(tmp_path / "bare.safetensors", "transformer.")  # no alpha, no trainer metadata
    (rep,) = _reports(engine, bare, tmp_path)
    assert rep.matched == 2 and any("stores no alpha" in w for w in rep.warnings)
    ot = _lora(tmp_path / "ot.safetensors", "transformer.", {"ot_branch": "master"})
    (rep,) = _reports(engine, ot, tmp_path)
    assert rep.matched == 2 and not any("alpha" in w for w in rep.warnings)


def test_cli_prints_lora_warnings(tiny_comfy, tmp_path):
    bare = _lora(tmp_path / "bare.safetensors", "transformer.")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "zitdesk",
            "generate",
            "--model",
            str(tiny_comfy),
            "--prompt",
            "x",
            "--width",
            "64",
            "--height",
            "64",
            "--steps",
            "1",
            "--device",
            "cpu",
            "--lora",
            f"{bare}:1.0",
            "--out",
            str(tmp_path / "out"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "ZITDESK_HOME": str(tmp_path / "home")},
    )
    assert proc.returncode == 0, proc.stderr
    assert "warning: LoRA bare.safetensors: the file stores no alpha" in proc.stderr
