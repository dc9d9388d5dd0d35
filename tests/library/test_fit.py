"""zitdesk.lora.fit: the header-only shape check shared by the Library badge and Generate's "Add"."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.samples import make_lora, write_safetensors
from zitdesk.lora.fit import check_fit, lora_module_shapes, model_linear_shapes
from zitdesk.st_header import read_header


def _lora_for(
    shapes: dict[str, tuple[int, int]],
    path,
    rank: int = 4,
    fused_qkv: bool = False,
    scale_out: int = 1,
):
    t: dict[str, tuple] = {}
    for m, (o, i) in shapes.items():
        if fused_qkv and ".attention.to_k" in m or fused_qkv and ".attention.to_v" in m:
            continue
        if fused_qkv and ".attention.to_q" in m:
            m, o = m.replace("to_q", "qkv"), 3 * o
        t[f"diffusion_model.{m}.lora_A.weight"] = ((rank, i),)
        t[f"diffusion_model.{m}.lora_B.weight"] = ((o * scale_out, rank),)
    return write_safetensors(path, t, {})


@pytest.mark.parametrize("layout", ["tiny_diffusers", "tiny_comfy"])
def test_model_shapes_from_headers_match_both_layouts(layout, request, tiny_diffusers):
    shapes = model_linear_shapes(request.getfixturevalue(layout))
    assert shapes == model_linear_shapes(tiny_diffusers)
    # The ComfyUI file's fused qkv is split into three (d, d) modules.
    q, k, v = (shapes[f"layers.0.attention.to_{x}"] for x in "qkv")
    assert q == k == v and q[0] == q[1]
    assert "layers.0.attention.qkv" not in shapes


def test_a_lora_made_for_the_model_fits(tmp_path, tiny_comfy):
    shapes = model_linear_shapes(tiny_comfy)
    fit = check_fit(_lora_for(shapes, tmp_path / "mine.safetensors"), shapes)
    assert fit.ok, fit.message
    assert fit.matched == fit.total == len(shapes)
    assert not fit.mismatched


def test_fused_qkv_lora_is_split_and_fits(tmp_path, tiny_diffusers):
    shapes = model_linear_shapes(tiny_diffusers)
    path = _lora_for(shapes, tmp_path / "fused.safetensors", fused_qkv=True)
    got = lora_module_shapes(read_header(path))
    assert got["layers.0.attention.to_k"] == shapes["layers.0.attention.to_k"]
    assert check_fit(path, shapes).ok


def test_full_size_lora_is_refused_by_the_tiny_model_with_a_sentence(tmp_path, tiny_diffusers):
    shapes = model_linear_shapes(tiny_diffusers)
    path = make_lora(tmp_path / "big.safetensors", "aitoolkit", 8, layers=2)
    fit = check_fit(path, shapes)
    assert not fit.ok
    assert fit.mismatched and fit.matched == 0
    assert "does not fit this model" in fit.message and "15360×256 in the LoRA" in fit.message
    assert fit.message.count(".") >= 1 and "\n" not in fit.message
    # The same file fits the real Z-Image Turbo sizes (None = the default model).
    assert check_fit(path, model_linear_shapes(None)).ok


def test_one_wrong_module_is_enough_to_refuse(tmp_path, tiny_diffusers):
    shapes = dict(model_linear_shapes(tiny_diffusers))
    path = _lora_for(shapes, tmp_path / "ok.safetensors")
    bad = dict(shapes)
    bad["layers.0.feed_forward.w1"] = (
        bad["layers.0.feed_forward.w1"][0] + 1,
        bad["layers.0.feed_forward.w1"][1],
    )
    fit = check_fit(path, bad)
    assert not fit.ok and [m for m, _a, _b in fit.mismatched] == ["layers.0.feed_forward.w1"]
    assert fit.matched == fit.total - 1


def test_foreign_lora_is_refused_by_name(tmp_path):
    fit = check_fit(make_lora(tmp_path / "xl.safetensors", "sdxl", 8), model_linear_shapes(None))
    assert not fit.ok and "SDXL" in fit.message


def test_fit_module_is_torch_and_qt_free():
    code = (
        "import sys, zitdesk.lora.fit; "
        "bad = [m for m in ('torch', 'PySide6', 'diffusers') if m in sys.modules]; print(bad); "
        "sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
