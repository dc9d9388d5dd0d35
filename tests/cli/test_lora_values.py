"""``zitdesk lora inspect`` reads a bounded sample of the tensor data: a LoRA whose every module
holds NaN or infinite values is refused as damaged, with the sentence generation gives, and the
library says the same; a file with some such modules is usable with those named."""

from __future__ import annotations

import json

import pytest
import torch

from zitdesk.io import atomic_save_tensors
from zitdesk.lora import values

MODULES = ("layers.0.attention.to_q", "layers.0.attention.to_k", "layers.1.feed_forward.w2")
SHAPES = {m: (64, 64) for m in MODULES}


def _inspect(path, capsys) -> dict:
    from zitdesk.cli import main

    assert main(["lora", "inspect", str(path), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _library_reason(path) -> tuple[bool, str]:
    from zitdesk.library.index import LibraryIndex

    index = LibraryIndex(cache_path=None, hash_cache=None)
    (entry,) = index.scan([str(path.parent)]).entries
    return entry.compatible, entry.reason


def _generate_message(path) -> str:
    from zitdesk.errors import LoraError
    from zitdesk.lora.convert import load_normalized

    try:
        _sd, report = load_normalized(path, SHAPES)
    except LoraError as exc:
        return str(exc)
    return report.message


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_an_all_nonfinite_lora_is_refused_everywhere(tmp_path, capsys, value, dtype):
    sd = {}
    for m in MODULES:
        sd[f"diffusion_model.{m}.lora_A.weight"] = torch.full((4, 64), value, dtype=dtype)
        sd[f"diffusion_model.{m}.lora_B.weight"] = torch.full((64, 4), value, dtype=dtype)
    path = tmp_path / "lib" / "broken.safetensors"
    path.parent.mkdir()
    atomic_save_tensors(path, sd)
    doc = _inspect(path, capsys)
    sentence = "broken.safetensors holds NaN or infinite values; the file is damaged."
    assert doc["compatible"] is False and doc["message"] == sentence
    assert _library_reason(path) == (False, sentence)
    assert _generate_message(path) == sentence


def test_some_nonfinite_modules_are_named_and_the_rest_is_usable(tmp_path, capsys):
    path = tmp_path / "lib" / "half.safetensors"
    path.parent.mkdir()
    sd = {}
    for i, m in enumerate(MODULES):
        b = torch.full((64, 4), 0.01)
        if i == 0:
            b[-1, -1] = float("nan")  # the last value of the tensor: the end run sees it
        sd[f"diffusion_model.{m}.lora_A.weight"] = torch.full((4, 64), 0.01)
        sd[f"diffusion_model.{m}.lora_B.weight"] = b
    atomic_save_tensors(path, sd)
    doc = _inspect(path, capsys)
    assert doc["compatible"] is True
    assert doc["message"].endswith("; 1 module holds NaN or infinite values and will be skipped.")
    ok, reason = _library_reason(path)
    assert ok and reason == doc["message"]
    assert "1 with NaN values" in _generate_message(path)  # generation skips the same module


def test_a_large_tensor_is_sampled_not_read(tmp_path):
    """A 64 MiB tensor: the check reads three runs of 32 values (a NaN in the middle run is seen;
    one elsewhere is not, by design: generation still skips that module)."""
    from zitdesk.st_header import read_header

    n = 16 * 2**20
    assert values._runs(n) == [(0, 32), (n // 2 - 16, 32), (n - 32, 32)]
    assert values._runs(50) == [(0, 50)]
    big = torch.zeros(n // 64, 64)
    big.view(-1)[n // 2] = float("nan")
    path = tmp_path / "big.safetensors"
    atomic_save_tensors(
        path,
        {
            "diffusion_model.layers.0.attention.to_q.lora_A.weight": big,
            "diffusion_model.layers.0.attention.to_q.lora_B.weight": torch.zeros(64, 4),
        },
    )
    check = values.nonfinite_modules(read_header(path))
    assert check.modules == 1 and check.nonfinite == ("diffusion_model.layers.0.attention.to_q",)
    assert check.all_nonfinite


def test_module_names_pair_both_halves():
    m = values.module_of
    assert (
        m("diffusion_model.x.lora_A.weight")
        == m("diffusion_model.x.lora_B.weight")
        == ("diffusion_model.x")
    )
    assert m("lora_unet_x.lora_down.weight") == m("lora_unet_x.lora_up.weight") == "lora_unet_x"
    assert m("x.hada_w1_a") == m("x.hada_w2_b") == "x"
