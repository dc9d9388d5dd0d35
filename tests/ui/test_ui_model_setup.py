"""First-run model setup over real (tiny) model files: discovery, folder and three-file checks."""

from __future__ import annotations

import shutil

import pytest

from ui.dialogs.model_setup import ModelSetupDialog, PathRole


@pytest.fixture
def model_tree(tmp_path, monkeypatch, tiny_diffusers, tiny_comfy):
    """An HF cache with a complete model, and a ComfyUI tree that lacks the text encoder."""
    from zitdesk.models.tiny import hf_cache_layout

    hf_cache_layout(tiny_diffusers, tmp_path / "hf")
    partial = tmp_path / "ComfyUI" / "models"
    (partial / "diffusion_models").mkdir(parents=True)
    (partial / "vae").mkdir()
    shutil.copy(tiny_comfy / "z_image_turbo_bf16.safetensors", partial / "diffusion_models")
    shutil.copy(tiny_comfy / "ae.safetensors", partial / "vae")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("ZITDESK_MODEL_DIRS", str(partial))
    return tmp_path


def wait_idle(qtbot, dlg):
    qtbot.waitUntil(lambda: not dlg.busy, timeout=30_000)


def test_discovery_lists_candidates_with_what_they_lack(qtbot, model_tree):
    dlg = ModelSetupDialog()
    qtbot.addWidget(dlg)
    wait_idle(qtbot, dlg)
    texts = [dlg.list.item(i).text() for i in range(dlg.list.count())]
    assert len(texts) == 2
    assert texts[0].startswith("✔") and "Hugging Face cache" in texts[0]
    assert texts[1].startswith("⚠") and "missing text encoder" in texts[1]
    assert "Found 2 candidates, 1 complete" in dlg.status.text()
    assert dlg.use_button.isEnabled()
    assert dlg.model_path.endswith("models--Tongyi-MAI--Z-Image-Turbo")
    assert not dlg.list.item(1).data(PathRole)  # the incomplete one cannot be chosen


def test_choose_folder_plain_errors_and_success(qtbot, model_tree, tiny_diffusers):
    dlg = ModelSetupDialog()
    qtbot.addWidget(dlg)
    wait_idle(qtbot, dlg)
    empty = model_tree / "empty"
    empty.mkdir()
    dlg.check_folder(str(empty))
    wait_idle(qtbot, dlg)
    assert dlg.error.isVisibleTo(dlg) and "No Z-Image Turbo model was found" in dlg.error.text()
    dlg.check_folder(str(model_tree / "ComfyUI" / "models"))
    wait_idle(qtbot, dlg)
    assert "missing text encoder" in dlg.error.text()
    dlg.check_folder(str(tiny_diffusers))
    wait_idle(qtbot, dlg)
    assert dlg.list.currentItem().text().startswith("✔")
    assert dlg.model_path == str(tiny_diffusers) and dlg.model_files == {}


def test_three_comfy_files(qtbot, model_tree, tiny_comfy):
    dlg = ModelSetupDialog()
    qtbot.addWidget(dlg)
    wait_idle(qtbot, dlg)
    dlg.check_files()
    assert "Choose all three files first" in dlg.error.text()
    dlg.file_edits["transformer"].setText(str(tiny_comfy / "ae.safetensors"))  # wrong role
    dlg.file_edits["text_encoder"].setText(str(tiny_comfy / "qwen_3_4b.safetensors"))
    dlg.file_edits["vae"].setText(str(tiny_comfy / "ae.safetensors"))
    dlg.check_files()
    wait_idle(qtbot, dlg)
    assert dlg.error.isVisibleTo(dlg) and "ae.safetensors" in dlg.error.text()
    dlg.file_edits["transformer"].setText(str(tiny_comfy / "z_image_turbo_bf16.safetensors"))
    dlg.check_files()
    wait_idle(qtbot, dlg)
    assert dlg.list.currentItem().text().startswith("✔")
    assert dlg.model_path == str(tiny_comfy)
    assert set(dlg.model_files) == {"transformer", "text_encoder", "vae"}


def test_window_saves_the_chosen_model(qtbot, make_window, model_tree):
    from zitdesk.settings import AppSettings, load_settings

    win = make_window(AppSettings())
    dlg = win.ensure_model_configured()
    assert dlg is not None
    wait_idle(qtbot, dlg)
    dlg.use_button.click()
    assert win.settings.model_path.endswith("models--Tongyi-MAI--Z-Image-Turbo")
    assert load_settings()[0].model_path == win.settings.model_path
    assert win.ensure_model_configured() is None
