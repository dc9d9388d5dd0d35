"""``zitdesk generate`` edit flags and ``zitdesk upscale``, run as a real subprocess with the tiny
model (tests/cli/test_cli.py's way)."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.cli.test_cli import zit
from tests.support.controlnet import make_tiny_controlnet


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("cliedit")


@pytest.fixture(scope="module")
def model(home):
    d = home / "tiny"
    zit("make-tiny-model", str(d), env_home=home)
    return d


@pytest.fixture(scope="module")
def pics(home):
    rng = np.random.default_rng(1)
    init = home / "photo.png"
    Image.fromarray(rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)).save(init)
    mask = home / "mask.png"
    m = np.zeros((64, 80), np.uint8)
    m[16:48, 16:64] = 255
    Image.fromarray(m).save(mask)
    return init, mask


@pytest.mark.slow
def test_generate_controlnet_inpaint_from_the_command_line(home, model, pics, tmp_path):
    init, mask = pics
    net = make_tiny_controlnet(home / "Tiny-Union.safetensors", layout="file")
    res = zit(
        "generate", "--prompt", "a fox", "--model", str(model), "--steps", "2", "--seed", "3",
        "--init-image", str(init), "--mask", str(mask), "--strength", "0.9",
        "--controlnet", str(net), "--control-image", str(init), "--control-scale", "0.5",
        "--outpaint", "0,0,16,0", "--out", str(tmp_path), "--json",
        env_home=home,
    )  # fmt: skip
    (path,) = json.loads(res.stdout)
    assert Image.open(path).size == (96, 64)  # the init image's size + 16 px outpainted
    params = json.loads(zit("params", path, "--json", env_home=home).stdout)
    req = params["request"]
    assert (req["strength"], req["control_scale"], req["outpaint"]) == (0.9, 0.5, [0, 0, 16, 0])
    assert req["init_image"] == "photo.png" and req["controlnet_path"] == "Tiny-Union.safetensors"
    text = params["raw"]["parameters"]
    assert "Edit mode: ControlNet inpaint" in text and "Init image hash: " in text
    assert "Denoising strength" not in text  # ControlNet inpaint starts from noise


@pytest.mark.slow
def test_upscale_command_takes_the_prompt_from_the_picture(home, model, pics, tmp_path):
    init, _ = pics
    made = zit(
        "generate", "--prompt", "a quiet harbour", "--model", str(model), "--steps", "1",
        "--init-image", str(init), "--out", str(tmp_path / "a"), "--json",
        env_home=home,
    )  # fmt: skip
    (src,) = json.loads(made.stdout)
    res = zit(
        "upscale", src, "--model", str(model), "--steps", "2", "--tile", "96", "--overlap", "16",
        "--out", str(tmp_path / "b"), "--json",
        env_home=home,
    )  # fmt: skip
    (path,) = json.loads(res.stdout)
    assert Image.open(path).size == (160, 128)
    params = json.loads(zit("params", path, "--json", env_home=home).stdout)
    assert params["prompt"] == "a quiet harbour"
    assert params["request"]["upscale"] == 2.0 and params["request"]["strength"] == 0.3
    bad = zit("upscale", str(Path(src).with_name("missing.png")), env_home=home, check=False)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "missing.png" in bad.stderr
