"""Finding caption models in the usual places (HF cache, ComfyUI trees) and checking a choice."""

from __future__ import annotations

import json
import shutil

from tests.support.caption_models import make_tiny_tagger
from zitdesk.caption.locate import check_model, find_candidates
from zitdesk.caption.tagger import TaggerOptions, load_tagger


def test_candidates_in_hf_cache_and_comfyui(tmp_path, monkeypatch):
    hub = tmp_path / "hub"
    snap = hub / "models--SmilingWolf--wd-vit-tagger-v3" / "snapshots" / "abc123"
    make_tiny_tagger(snap)
    vl = hub / "models--Qwen--Qwen2.5-VL-3B-Instruct" / "snapshots" / "def456"
    vl.mkdir(parents=True)
    (vl / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    (hub / "models--Tongyi-MAI--Z-Image-Turbo").mkdir()  # not a caption model
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    models = tmp_path / "ComfyUI" / "models"
    node = tmp_path / "ComfyUI" / "custom_nodes" / "ComfyUI-WD14-Tagger" / "models"
    node.mkdir(parents=True)
    src = make_tiny_tagger(tmp_path / "src")
    shutil.copy(src / "model.onnx", node / "wd-v1-4-moat-tagger-v2.onnx")
    shutil.copy(src / "selected_tags.csv", node / "wd-v1-4-moat-tagger-v2.csv")
    (models / "LLM" / "Qwen3-VL-4B-Instruct").mkdir(parents=True)
    (models / "LLM" / "Qwen3-VL-4B-Instruct" / "config.json").write_text(
        json.dumps({"model_type": "qwen3_vl"})
    )
    monkeypatch.setenv("ZITDESK_MODEL_DIRS", str(models))
    found = [(c.kind, c.label, c.origin) for c in find_candidates()]
    assert found == [
        ("tagger", "SmilingWolf/wd-vit-tagger-v3", "hf-cache"),
        ("tagger", "wd-v1-4-moat-tagger-v2", "comfyui"),
        ("vlm", "Qwen/Qwen2.5-VL-3B-Instruct", "hf-cache"),
        ("vlm", "Qwen3-VL-4B-Instruct", "comfyui"),
    ]
    # the WD14 node's flat <name>.onnx + <name>.csv loads as a tagger
    flat = node / "wd-v1-4-moat-tagger-v2.onnx"
    assert check_model("tagger", flat) == ""
    from PIL import Image

    assert "red theme" in load_tagger(flat).tags(
        Image.new("RGB", (9, 9), (255, 0, 0)), TaggerOptions()
    )
    # a half-downloaded VLM says what is missing, in one sentence
    msg = check_model("vlm", vl)
    assert "no model weights" in msg and "\n" not in msg
    assert check_model("vlm", "") == "No folder is chosen."
