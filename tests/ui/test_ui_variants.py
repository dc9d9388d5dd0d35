"""Generate's variant controls: Base defaults on model switch (hand-set values kept), the
remembered choice, variety/fast-Base in the request, LoRA notes and the prompt enhancer."""

from __future__ import annotations

from fakes import FakeEngine

from tests.support.samples import make_lora, write_safetensors
from zitdesk.settings import AppSettings


def _switch(qtbot, win, path: str, variant: str) -> None:
    win.settings.model_path = path
    win.generate.variants.model_changed()
    qtbot.waitUntil(lambda: win.generate.variants.variant == variant, timeout=30_000)


def test_base_defaults_on_model_switch_keep_hand_set_values(qtbot, make_window, tmp_path):
    settings = AppSettings(model_path=str(tmp_path / "models--Tongyi-MAI--Z-Image-Turbo"))
    win = make_window(settings, FakeEngine(image_dir=tmp_path))
    ws, form = win.generate, win.generate.form
    qtbot.waitUntil(lambda: ws.variants.guess is not None, timeout=30_000)
    assert ws.variants.variant == "turbo" and (form.steps.value(), form.guidance.value()) == (
        8,
        0.0,
    )
    assert not form.negative.isEnabled()  # no CFG on Turbo: the negative prompt is unused
    form.shift.setValue(4.5)  # by hand
    _switch(qtbot, win, str(tmp_path / "models--Tongyi-MAI--Z-Image"), "base")
    assert (form.steps.value(), form.guidance.value()) == (28, 4.0)
    assert form.shift.value() == 4.5  # the user's own value stays
    assert form.negative.isEnabled() and "28–50 steps" in form.steps.toolTip()
    assert "Z-Image (Base)" in win.status_label.text() and "shift kept" in win.status_label.text()
    assert ws.variants.status_label.text() == "Base"
    req = form.build_request(settings.model_path)
    assert (req.variant, req.steps, req.guidance) == ("base", 28, 4.0)
    _switch(qtbot, win, str(tmp_path / "z_image_turbo_bf16.safetensors"), "turbo")
    assert (form.steps.value(), form.guidance.value(), form.shift.value()) == (8, 0.0, 4.5)
    assert not form.negative.isEnabled()


def test_choice_is_remembered_for_a_model_that_does_not_say(qtbot, make_window, tmp_path):
    path = str(tmp_path / "my-model")
    settings = AppSettings(model_path=path)
    win = make_window(settings, FakeEngine(image_dir=tmp_path))
    v = win.generate.variants
    qtbot.waitUntil(lambda: v.guess is not None, timeout=30_000)
    assert not v.guess.known and v.status_label.text() == "Turbo?"
    v.panel.chooser.setCurrentIndex(v.panel.chooser.findData("deturbo"))
    v.panel.chooser.activated.emit(v.panel.chooser.currentIndex())
    qtbot.waitUntil(lambda: v.variant == "deturbo", timeout=30_000)
    assert settings.model_variants == {path: "deturbo"}
    assert "your choice" in v.panel.detected.text()
    assert win.generate.form.steps.value() == 25


def test_variety_and_fast_base_reach_the_request_and_come_back(qtbot, make_window, tmp_path):
    lora = write_safetensors(
        tmp_path / "Z-Image-Fun-Lora-Distill.safetensors",
        {"diffusion_model.layers.0.attention.to_q.lora_A.weight": ((4, 3840),)},
        {"zitdesk_base_variant": "base"},
    )
    settings = AppSettings(model_path=str(tmp_path / "models--Tongyi-MAI--Z-Image"))
    eng = FakeEngine(image_dir=tmp_path / "out")
    win = make_window(settings, eng)
    ws, v = win.generate, win.generate.variants
    qtbot.waitUntil(lambda: v.variant == "base", timeout=30_000)
    assert v.panel.fast.isVisibleTo(win)
    v.panel.variety.setValue(0.3)
    v.panel.fast.setChecked(True)  # no LoRA chosen yet: nothing changes
    assert ws.form.steps.value() == 28
    v.panel.fast_lora.setText(str(lora))
    v.panel.fast_weight.setValue(0.8)
    assert (ws.form.steps.value(), ws.form.guidance.value(), ws.form.shift.value()) == (8, 0.0, 3.0)
    req = ws.form.build_request(settings.model_path)
    assert req.variety == 0.3 and [(lo.path, lo.weight) for lo in req.loras] == [(str(lora), 0.8)]
    assert ws.form.loras.model.rowCount() == 0  # not put into the visible stack
    v.panel.fast.setChecked(False)
    assert (ws.form.steps.value(), ws.form.guidance.value()) == (28, 4.0)
    # reuse parameters puts variety back
    v.panel.variety.setValue(0.0)
    applied = ws.apply_parameters(req.to_dict())
    assert "variety" in applied and v.panel.variety.value() == 0.3
    s = AppSettings()
    ws.store_settings(s)
    assert s.fast_base_lora == str(lora) and s.fast_base_weight == 0.8


def test_a_base_lora_on_turbo_gives_a_note_not_a_block(qtbot, make_window, tmp_path):
    lora = make_lora(
        tmp_path / "face.safetensors",
        rank=4,
        layers=2,
        metadata={"ss_base_model_version": "zimage_base"},
    )
    settings = AppSettings(model_path=str(tmp_path / "z_image_turbo_bf16.safetensors"))
    win = make_window(settings, FakeEngine(image_dir=tmp_path / "out"))
    ws = win.generate
    qtbot.waitUntil(lambda: ws.variants.guess is not None, timeout=30_000)
    ws.form.loras.set_loras([(str(lora), 1.0, True)])
    qtbot.waitUntil(lambda: "2 or more" in ws.banner.label.text(), timeout=30_000)
    assert "face.safetensors" in ws.banner.label.text()
    assert ws.banner.property("level") == "info"
    assert [e.path for e in ws.form.loras.model.entries] == [str(lora)]


def test_enhance_through_the_real_engine_and_accept(qtbot, make_window, tiny_diffusers):
    settings = AppSettings(model_path=str(tiny_diffusers))
    win = make_window(settings, engine=None)
    ws = win.generate
    ws.form.prompt.set_text("a fox")
    with qtbot.waitSignal(ws.variants.enhance_ready, timeout=120_000) as blocker:
        dlg_job = ws.variants.enhance()
        assert dlg_job
        assert not ws.variants.enhance_button.isEnabled()
    dlg = blocker.args[0]
    from ui.widgets.queue_panel import describe_job

    assert describe_job(win.controller.job(dlg_job)) == "Enhance prompt: a fox"
    assert dlg.text() and dlg.original.toPlainText() == "a fox"
    assert ws.gallery_model.rowCount() == 0 and "Removed" not in win.status_label.text()
    dlg.proposal.setPlainText("a red fox, detailed fur, soft morning light")
    dlg.use_button.click()
    assert ws.form.prompt.text() == "a red fox, detailed fur, soft morning light"
    assert ws.variants.enhance_button.isEnabled()


def test_model_setup_lists_the_variant(qtbot, tmp_path, monkeypatch, tiny_diffusers):
    from ui.dialogs.model_setup import ModelSetupDialog
    from zitdesk.models.tiny import hf_cache_layout

    hf_cache_layout(tiny_diffusers, tmp_path / "hf", "Tongyi-MAI/Z-Image")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("ZITDESK_MODEL_DIRS", str(tmp_path / "none"))
    dlg = ModelSetupDialog()
    qtbot.addWidget(dlg)
    qtbot.waitUntil(lambda: not dlg.busy, timeout=30_000)
    texts = [dlg.list.item(i).text() for i in range(dlg.list.count())]
    assert any("Z-Image (Base) (from the name models--Tongyi-MAI--Z-Image)" in t for t in texts)
    dlg.check_folder(str(tiny_diffusers))
    qtbot.waitUntil(lambda: not dlg.busy, timeout=30_000)
    assert "choose the variant" in dlg.list.currentItem().text()


def test_library_card_and_details_show_the_lora_variant(tmp_path):
    import json
    from pathlib import Path

    from ui.library.delegates import arch_chip
    from ui.library.details import details_text
    from zitdesk.library.index import LibraryIndex

    make_lora(
        tmp_path / "own.safetensors", rank=4, layers=2, metadata={"zitdesk_base_variant": "base"}
    )
    make_lora(
        tmp_path / "civ.safetensors", rank=4, layers=2, metadata={"ss_base_model_version": "zimage"}
    )
    (tmp_path / "civ.civitai.info").write_text(json.dumps({"baseModel": "ZImageTurbo"}))
    make_lora(tmp_path / "plain.safetensors", rank=4, layers=2)
    index = LibraryIndex(cache_path=tmp_path / "cache.json")
    index.scan([str(tmp_path)])
    by = {Path(e.path).stem: e for e in index.entries}
    assert arch_chip(by["own"])[0].endswith(" Base")
    assert arch_chip(by["civ"])[0].endswith(" Turbo")
    assert not arch_chip(by["plain"])[0].endswith(("Base", "Turbo"))
    assert "Trained on: Z-Image (Base) (zitdesk_base_variant)" in details_text(by["own"])
    assert "does not say which Z-Image" in details_text(by["plain"])


def test_train_wizard_guesses_the_variant_with_the_same_reader():
    from ui.train.wizard_data import guess_variant

    assert guess_variant("/hf/models--Tongyi-MAI--Z-Image/snapshots/abc") == "base"
    assert guess_variant("/hf/models--Tongyi-MAI--Z-Image-Turbo/snapshots/abc") == "turbo"
    assert guess_variant("/m/z_image_de_turbo_bf16.safetensors") == "deturbo"
    assert guess_variant("/m/z_image_bf16.safetensors") == "base"
    assert guess_variant("/m/my-model") is None
