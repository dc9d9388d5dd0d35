"""The CLI contract, run as users and scripts run it (a real subprocess)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def zit(*args, env_home, check=True, timeout=300):
    env = dict(
        os.environ,
        ZITDESK_HOME=str(env_home),
        ZITDESK_DEVICE="cpu",
        HF_HUB_CACHE=str(env_home / "hub"),
    )
    res = subprocess.run(
        [sys.executable, "-m", "zitdesk", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check:
        assert res.returncode == 0, res.stderr[-3000:]
    return res


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("clihome")


@pytest.fixture(scope="module")
def comfy_model(home):
    d = home / "tiny-comfy"
    res = zit("make-tiny-model", str(d), "--layout", "comfy", env_home=home)
    assert Path(res.stdout.strip()) == d
    return d


def test_make_tiny_model_diffusers(home):
    d = home / "tiny-diff"
    zit("make-tiny-model", str(d), env_home=home)
    assert (d / "model_index.json").exists() and (d / "transformer" / "config.json").exists()


def test_generate_json_and_params(home, comfy_model, tmp_path):
    res = zit(
        "generate",
        "--prompt",
        "a lighthouse, 夜",
        "--model",
        str(comfy_model),
        "--width",
        "64",
        "--height",
        "80",
        "--steps",
        "2",
        "--seed",
        "5",
        "--count",
        "2",
        "--out",
        str(tmp_path),
        "--json",
        env_home=home,
    )
    files = json.loads(res.stdout)
    assert len(files) == 2 and all(Path(f).parent == tmp_path for f in files)
    params = json.loads(zit("params", files[1], "--json", env_home=home).stdout)
    assert params["source"] == "zitdesk"
    assert params["prompt"] == "a lighthouse, 夜"
    assert (params["seed"], params["steps"], params["width"], params["height"]) == (6, 2, 64, 80)


def test_generate_with_lora(home, comfy_model, tmp_path):
    import numpy as np
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    lora = tmp_path / "style.safetensors"
    sd = {}
    for i in range(2):
        for m in ("attention.to_q", "feed_forward.w1"):
            out_f = 32 if m.endswith("to_q") else 85  # tiny FFN hidden = int(32 / 3 * 8)
            sd[f"diffusion_model.layers.{i}.{m}.lora_A.weight"] = rng.normal(size=(4, 32)).astype(
                np.float32
            )
            sd[f"diffusion_model.layers.{i}.{m}.lora_B.weight"] = rng.normal(
                size=(out_f, 4)
            ).astype(np.float32)
    save_file(sd, str(lora))
    res = zit(
        "generate",
        "--prompt",
        "x",
        "--model",
        str(comfy_model),
        "--width",
        "64",
        "--height",
        "64",
        "--steps",
        "2",
        "--seed",
        "1",
        "--lora",
        f"{lora}:0.7",
        "--out",
        str(tmp_path / "o"),
        env_home=home,
    )
    assert "4/4 modules" in res.stderr
    import hashlib

    png = next((tmp_path / "o").glob("*.png"))
    params = json.loads(zit("params", str(png), "--json", env_home=home).stdout)
    assert params["loras"][0]["name"] == "style" and params["loras"][0]["weight"] == 0.7
    assert params["loras"][0]["hash"] == hashlib.sha256(lora.read_bytes()).hexdigest()
    assert "style: " + params["loras"][0]["hash"][:10] in params["raw"]["parameters"]  # A1111 text
    info = json.loads(
        zit(
            "lora", "inspect", str(lora), "--model", str(comfy_model), "--json", env_home=home
        ).stdout
    )
    assert info["arch"] == "zimage" and info["dialect"] == "aitoolkit" and info["rank"] == 4
    assert info["coverage"]["matched"] == 4


@pytest.mark.parametrize(
    "args,needle",
    [
        (["generate", "--prompt", "x", "--model", "/nonexistent/dir"], "does not exist"),
        (["generate", "--prompt", "x", "--width", "1000"], "multiple of 16"),
        (["generate", "--prompt", "x", "--lora", "/nope.safetensors:1"], "does not exist"),
        (["params", "/nonexistent.png", "--json"], ""),
        (["lora", "inspect", "/nonexistent.safetensors", "--json"], ""),
    ],
)
def test_errors_are_one_plain_line(home, args, needle):
    res = zit(*args, env_home=home, check=False)
    assert res.returncode != 0
    err = res.stderr.strip()
    assert err.startswith("zitdesk: ") and "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    assert needle in err


def test_doctor_json(home):
    res = zit("doctor", "--json", env_home=home, check=False)
    data = json.loads(res.stdout)
    assert "torch" in data["facts"] and isinstance(data["findings"], list)
    assert any(f["topic"] == "gpu" for f in data["findings"])  # "no NVIDIA GPU" here


def test_faults_are_one_sentence_in_a_real_process(home, comfy_model, tmp_path):
    """Issue 12, points 7, 10, 11: what used to print a traceback or "unexpected error"."""
    import struct

    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\0\xff\xfe")
    bom = tmp_path / "bom.toml"
    bom.write_bytes(b"\xef\xbb\xbf[optim]\nsteps = 5\n")
    res512 = tmp_path / "res.toml"
    res512.write_text('[data]\nresolutions = "512"\n')
    deep = tmp_path / "deep.safetensors"
    raw = (
        b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":'
        + b"[" * 5000
        + b"]" * 5000
        + b"}}"
    )
    deep.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 4)
    meta = tmp_path / "meta.safetensors"
    raw = b'{"__metadata__":{"alpha":4},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    meta.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 4)
    g = [
        "generate",
        "--prompt",
        "x",
        "--model",
        str(comfy_model),
        "--width",
        "64",
        "--height",
        "64",
        "--steps",
        "1",
    ]
    import torch

    cases = [
        (g + ["--guidance", "nan"], "Guidance must be a finite number"),
        (g + ["--shift", "inf"], "Shift must be a finite number"),
        (g + ["--device", "tpu9"], "'tpu9' is not known"),
        (g + ["--lora", f"{deep}:1e6"], "between -100 and 100"),
        (g + ["--lora", f"{deep}:0.5"], "nested too deeply"),
        (g + ["--lora", f"{meta}:0.5"], "metadata value that is not text"),
        (g + ["--out", str(a_file)], "is a file"),
        (["make-tiny-model", str(a_file)], "is a file"),
        (["make-tiny-model", str(a_file), "--layout", "comfy"], "is a file"),
        (["train", str(binary)], "not a text file"),
        (["train", str(bom)], "No base model is set"),  # the BOM is accepted
        (["train", str(res512)], "list of whole numbers like [512, 768]"),
        (["lora", "inspect", str(deep)], "nested too deeply"),
        (["lora", "inspect", str(meta)], "metadata value that is not text"),
        (
            ["dataset", "import", str(a_file), "--to", str(tmp_path / "ds"), "--max-pixels", "-1"],
            "must be at least 1",
        ),
    ]
    if not torch.cuda.is_available():  # this machine's torch is CPU-only
        cases.append((g + ["--device", "cuda", "--out", str(tmp_path / "o")], "--device cpu"))
    for args, needle in cases:
        res = zit(*args, env_home=home, check=False)
        err = res.stderr.strip()
        assert res.returncode != 0, (args, err)
        assert "Traceback" not in err and "unexpected error" not in err, (args, err)
        last = err.splitlines()[-1]
        assert [ln for ln in err.splitlines() if ln.startswith("zitdesk: ")] == [last], (args, err)
        assert needle in last, (args, last)
    # python -m zitdesk.cli.train has the same top level
    env = dict(os.environ, ZITDESK_HOME=str(home), ZITDESK_DEVICE="cpu")
    res = subprocess.run(
        [sys.executable, "-m", "zitdesk.cli.train", str(binary)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (
        res.returncode == 1
        and res.stderr.strip().startswith("zitdesk: ")
        and "not a text file" in res.stderr
    )
