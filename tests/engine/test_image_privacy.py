"""What a shared image reveals: file names and hashes, never the user's folders (issue 12.13)."""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from pathlib import Path

import pytest
import torch

from zitdesk.engine.cancel import CancelToken
from zitdesk.engine.events import ImageReady, JobFinished
from zitdesk.engine.generate import GenerationEngine, model_hash
from zitdesk.engine.requests import GenerateRequest, LoraSpec
from zitdesk.imagemeta import public_request, read_parameters
from zitdesk.io import atomic_save_tensors
from zitdesk.models.discovery import resolve_model


def _raw_png_text(path: Path) -> str:
    """Every text chunk's bytes, decompressed, joined: what any reader (or a person) can see."""
    data = path.read_bytes()
    pos, out = 8, []
    while pos < len(data):
        n = int.from_bytes(data[pos : pos + 4], "big")
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        if kind == b"tEXt":
            out.append(body.decode("latin-1"))
        elif kind == b"zTXt":
            key, _, rest = body.partition(b"\0")
            out.append(key.decode("latin-1") + zlib.decompress(rest[1:]).decode("latin-1"))
        elif kind == b"iTXt":
            key, _, rest = body.partition(b"\0")
            flag, rest = rest[0], rest[2:]
            _lang, _, rest = rest.partition(b"\0")
            _tkey, _, text = rest.partition(b"\0")
            out.append(key.decode() + (zlib.decompress(text) if flag else text).decode("utf-8"))
        pos += 12 + n
    return "\n".join(out)


@pytest.fixture(scope="module")
def private_setup(tiny_comfy, tmp_path_factory):
    """The model and a LoRA in folders that name the user, as on a real machine."""
    home = tmp_path_factory.mktemp("home-of-alice")
    lora = home / "Alice Private" / "loras" / "my_cat.safetensors"
    lora.parent.mkdir(parents=True)
    sd = {
        "diffusion_model.layers.0.attention.to_q.lora_A.weight": torch.full((2, 32), 0.01),
        "diffusion_model.layers.0.attention.to_q.lora_B.weight": torch.full((32, 2), 0.01),
    }
    atomic_save_tensors(lora, sd)
    eng = GenerationEngine(model_path=str(tiny_comfy), device="cpu")
    yield home, lora, eng
    eng.shutdown()


def _generate(eng, out: Path, lora: Path, **kw) -> Path:
    req = GenerateRequest(
        prompt="a cat on a sofa",
        width=64,
        height=64,
        steps=2,
        seed=5,
        output_dir=str(out),
        loras=(LoraSpec(str(lora), 0.8),),
        **kw,
    )
    events = []
    eng.run(req, events.append, CancelToken())
    assert isinstance(events[-1], JobFinished), events[-1]
    return Path(next(e for e in events if isinstance(e, ImageReady)).path)


def test_png_carries_names_and_hashes_but_no_folder(private_setup, tiny_comfy):
    home, lora, eng = private_setup
    sha = hashlib.sha256(lora.read_bytes()).hexdigest()
    dit = resolve_model(tiny_comfy)
    expected_model_hash = model_hash(dit, wait=True)  # computed once (cached) before the image
    assert len(expected_model_hash) == 10
    out = home / "Alice Private" / "outputs"
    png = _generate(eng, out, lora)
    text = _raw_png_text(png)
    for private in (
        str(home),
        str(out),
        str(tiny_comfy),
        str(lora.parent),
        "Alice Private",
        os.path.expanduser("~"),
    ):
        assert private not in text, f"{private!r} leaks into the PNG"
    assert "job_id" not in text and "output_dir" not in text
    assert "my_cat" in text and sha[:10] in text
    params = read_parameters(png)
    assert params.model_hash == expected_model_hash  # A1111 "Model hash" filled (AutoV2)
    request = params.request
    assert request["loras"][0]["path"] == "my_cat.safetensors"
    assert request["model_path"] in ("", Path(tiny_comfy).name)  # a name at most, never a path
    assert params.loras[0].hash == sha


def test_strip_metadata_writes_no_parameters(private_setup):
    home, lora, eng = private_setup
    png = _generate(eng, home / "stripped", lora, write_metadata=False)
    assert _raw_png_text(png) == ""
    assert read_parameters(png).source == "none"


def test_public_request_cuts_every_path_at_any_depth():
    data = {
        "prompt": "x",
        "job_id": "job-7",
        "output_dir": "/home/bob/out",
        "model_path": r"C:\Users\Bob\models\z_image_turbo_bf16.safetensors",
        "loras": [{"path": "/home/bob/loras/a.safetensors", "weight": 1.0}],
        "init_image": "/home/bob/pics/me.png",
        "mask_file": r"D:\masks\m.png",
        "nested": {"cache_dir": "/tmp/x", "control": {"path": "/srv/c.png"}},
    }
    pub = public_request(data)
    assert json.dumps(pub).count("bob") == 0 and "Bob" not in json.dumps(pub)
    assert pub["model_path"] == "z_image_turbo_bf16.safetensors"
    assert pub["loras"] == [{"path": "a.safetensors", "weight": 1.0}]
    assert pub["init_image"] == "me.png" and pub["mask_file"] == "m.png"
    assert pub["nested"] == {"control": {"path": "c.png"}}
    assert "job_id" not in pub and "output_dir" not in pub


def test_reuse_finds_the_lora_by_hash_then_name(private_setup, tmp_path):
    """An image names its LoRA and hash only; "reuse parameters" finds the file on this machine."""
    from zitdesk.library.lookup import find_lora

    home, lora, eng = private_setup
    png = _generate(eng, tmp_path, lora)  # generation put the LoRA into the hash cache
    params = read_parameters(png)
    entry = params.loras[0]
    from zitdesk.engine import output

    cache = output._HASHES.path  # the engine's hash cache (made under the first test's home)
    assert find_lora(entry.name, entry.hash, hash_cache=cache) == str(lora)
    assert find_lora(entry.name, entry.hash[:10], hash_cache=cache) == str(lora)  # AutoV2
    assert find_lora("my_cat", "0" * 64, hash_cache=cache) is None  # another file of that name
