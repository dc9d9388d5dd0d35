"""First-run model setup with quantised files (issue #17): each DiT variant of a ComfyUI folder
is its own choice, listed with its format, size and the GPU memory it needs."""

from __future__ import annotations

import pytest

pytest.importorskip("gguf")

from ui.dialogs.model_setup import ModelSetupDialog, PathRole  # noqa: E402


def test_quantised_dit_variants_are_listed_with_size_and_vram(qtbot, tmp_path, monkeypatch):
    from tests.support.quant_files import make_quant_components, write_gguf_dit, write_model_folder
    from zitdesk.models.discovery import resolve_model

    comps = make_quant_components(seed=1)
    folder = write_model_folder(tmp_path / "ComfyUI", comps)
    write_gguf_dit(comps, folder / "z_image_turbo-Q4_K.gguf", "Q4_K")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "no-hf"))
    monkeypatch.setenv("ZITDESK_MODEL_DIRS", str(folder))
    dlg = ModelSetupDialog()
    qtbot.addWidget(dlg)
    qtbot.waitUntil(lambda: not dlg.busy and dlg.list.count() >= 2, timeout=20_000)
    texts = [dlg.list.item(i).text() for i in range(dlg.list.count())]
    assert len(texts) == 2 and all(t.startswith("✔") for t in texts)
    assert "bf16 DiT" in texts[0] and "GiB of GPU memory at 1024×1024" in texts[0]
    gguf_row = next(i for i, t in enumerate(texts) if "GGUF Q4_K DiT" in t)
    assert "z_image_turbo-Q4_K.gguf" in texts[gguf_row]
    dlg.list.setCurrentRow(gguf_row)
    path = dlg.list.item(gguf_row).data(PathRole)
    assert dlg.model_path == path and path.endswith(".zitmodel.json")
    src = resolve_model(path)
    assert src.complete and src.checks["transformer"].quant == "gguf-Q4_K"
