"""The CLI contract, run as users and scripts run it (a real subprocess)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def zit(*args, env_home, check=True, timeout=300):
    env = dict(os.environ, ZITDESK_HOME=str(env_home), ZITDESK_DEVICE="cpu",
               HF_HUB_CACHE=str(env_home / "hub"))
    res = subprocess.run([sys.executable, "-m", "zitdesk", *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=timeout)
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
    res = zit("generate", "--prompt", "a lighthouse, 夜", "--model", str(comfy_model), "--width", "64",
              "--height", "80", "--steps", "2", "--seed", "5", "--count", "2", "--out", str(tmp_path),
              "--json", env_home=home)
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
            sd[f"diffusion_model.layers.{i}.{m}.lora_A.weight"] = rng.normal(size=(4, 32)).astype(np.float32)
            sd[f"diffusion_model.layers.{i}.{m}.lora_B.weight"] = rng.normal(size=(out_f, 4)).astype(np.float32)
    save_file(sd, str(lora))
    res = zit("generate", "--prompt", "x", "--model", str(comfy_model), "--width", "64", "--height", "64",
              "--steps", "2", "--seed", "1", "--lora", f"{lora}:0.7", "--out", str(tmp_path / "o"), env_home=home)
    assert "4/4 modules" in res.stderr
    import hashlib

    png = next((tmp_path / "o").glob("*.png"))
    params = json.loads(zit("params", str(png), "--json", env_home=home).stdout)
    assert params["loras"][0]["name"] == "style" and params["loras"][0]["weight"] == 0.7
    assert params["loras"][0]["hash"] == hashlib.sha256(lora.read_bytes()).hexdigest()
    assert "style: " + params["loras"][0]["hash"][:10] in params["raw"]["parameters"]  # A1111 text
    info = json.loads(zit("lora", "inspect", str(lora), "--model", str(comfy_model), "--json", env_home=home).stdout)
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
