"""The New-run wizard and the full training settings dialog (pytest-qt, offscreen).

The wizard is walked page by page with a real dataset folder (images + captions in tmp_path), real
LoRA files for the training adapter (header + sparse data, as ``zitdesk lora inspect`` reads
them), and the real pre-flight check on the thread pool.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QWizard

from ui.train.settings_form import FIELD_HELP, TrainSettingsDialog
from ui.train.wizard import GOALS, PAGE_DATASET, PAGE_GOAL, PAGE_HARDWARE, NewRunWizard
from zitdesk.errors import RequestError
from zitdesk.train.config import TrainConfig
from zitdesk.train.estimate import GpuSpec
from zitdesk.train.presets import apply_preset

RTX4090 = GpuSpec("NVIDIA GeForce RTX 4090", 24.0)
CAPTIONS = ("a photo of zxq smiling", "zxq on a beach, sunset", "a red car parked on a street")


def make_dataset(folder: Path, captions=CAPTIONS, size=(320, 256)) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, cap in enumerate(captions):
        Image.new("RGB", size, (40 * i, 120, 200)).save(folder / f"img{i}.png")
        (folder / f"img{i}.txt").write_text(cap, encoding="utf-8")
    return folder


def finish_button(wiz):
    return wiz.button(QWizard.WizardButton.FinishButton)


def next_button(wiz):
    return wiz.button(QWizard.WizardButton.NextButton)


@pytest.fixture
def dataset(tmp_path):
    return make_dataset(tmp_path / "cats")


@pytest.fixture
def wizard(qtbot, tmp_path, dataset):
    def make(gpu=RTX4090, model: str | None = None, datasets=None):
        model_path = model if model is not None else str(tmp_path / "Z-Image-Turbo")
        wiz = NewRunWizard(
            None,
            [dataset] if datasets is None else datasets,
            gpu,
            model_path=model_path,
            runs_root=tmp_path / "runs",
        )
        qtbot.addWidget(wiz)
        wiz.show()
        if datasets is None:  # the scan, then the pre-flight check, both on the pool
            qtbot.waitUntil(
                lambda: wiz.survey is not None and wiz.survey.report is not None, timeout=30_000
            )
        # the model check runs on the pool too: wait for its answer
        qtbot.waitUntil(
            lambda: "Checking" not in wiz.hardware_page.model_status.text(), timeout=30_000
        )
        return wiz

    return make


def to_hardware_page(qtbot, wiz):
    qtbot.waitUntil(lambda: next_button(wiz).isEnabled(), timeout=30_000)
    next_button(wiz).click()
    assert wiz.currentId() == PAGE_GOAL
    next_button(wiz).click()
    assert wiz.currentId() == PAGE_HARDWARE
    return wiz.hardware_page


def test_walk_the_wizard_emits_the_chosen_config(qtbot, wizard, dataset, tmp_path):
    wiz = wizard()
    page = wiz.dataset_page
    assert wiz.currentId() == PAGE_DATASET
    assert page.folder == str(dataset)
    assert page.facts_label.text() == "3 images, all with captions"
    assert wiz.survey.report.verdict in ("ready", "warnings")
    assert "3 images" in page.verdict_label.text()
    with qtbot.waitSignal(wiz.open_dataset, timeout=5000) as blocker:
        page.fix_button.click()
    assert blocker.args == [str(dataset)]

    qtbot.waitUntil(lambda: next_button(wiz).isEnabled(), timeout=30_000)
    next_button(wiz).click()
    goal = wiz.goal_page
    goal.radios["style"].click()
    assert goal.sample_prompts() == GOALS["style"].prompts
    goal.trigger.setText("zxq")
    assert goal.trigger_warning.isVisibleTo(wiz)
    assert goal.trigger_warning.text().startswith("2 of 3 captions already contain “zxq”")
    goal.trigger.setText("ohwx")
    assert not goal.trigger_warning.isVisibleTo(wiz)

    next_button(wiz).click()
    hp = wiz.hardware_page
    assert wiz.currentId() == PAGE_HARDWARE
    assert hp.preset == "24gb"  # the RTX 4090's tier, preselected
    assert "RTX 4090" in hp.card_label.text()
    assert hp.steps.value() == GOALS["style"].steps
    # every tier with its step time, peak memory and total time on this card
    for name in ("24gb", "16gb", "12gb", "8gb"):
        it = hp.items[name]
        assert it.text(2).endswith(" s") and float(it.text(2)[:-2]) > 0
        assert "GiB" in it.text(3)
        assert it.text(4)
    assert "your card" in hp.items["24gb"].text(0)
    assert "RTX 4090" in hp.how_label.text() and "H100" in hp.how_label.text()
    hp.set_preset("16gb")
    hp.steps.setValue(300)
    assert "300 steps" in hp.items["16gb"].toolTip(4)
    assert hp.total_label.text().startswith("Expected total ≈")
    assert "3 images" in hp.epochs_label.text()
    # the same entries the Datasets check counted (the trainer's buckets)
    assert f"over {wiz.survey.report.entries} training entries" in hp.epochs_label.text()

    # Turbo without an adapter: a strong warning, and Start still works
    assert hp.variant_key == "turbo"
    assert hp.turbo_warning.isVisibleTo(wiz)
    assert finish_button(wiz).isEnabled()
    with qtbot.waitSignal(wiz.config_ready, timeout=5000) as blocker:
        finish_button(wiz).click()
    cfg = blocker.args[0]
    assert isinstance(cfg, TrainConfig)
    assert cfg.data.folder == str(dataset)
    assert cfg.data.trigger == "ohwx"
    assert cfg.memory.preset == "16gb" and cfg.model.base_precision == "fp8"
    assert cfg.optim.steps == 300
    style = GOALS["style"]
    assert cfg.lora.rank == style.rank and cfg.lora.alpha == style.rank
    assert cfg.data.caption_dropout == style.caption_dropout
    assert cfg.timesteps.mode == style.timestep_mode
    assert cfg.sample.prompts == style.prompts
    assert cfg.model.training_adapter == ""
    assert cfg.model.path == str(tmp_path / "Z-Image-Turbo")
    assert cfg.save.output_dir == str(tmp_path / "runs" / "cats")
    assert cfg.save.name == "cats"
    cfg.validate()
    assert not wiz.isVisible()


def test_training_adapter_is_checked_like_lora_inspect(qtbot, wizard, tmp_path):
    from tests.support.samples import make_lora

    wiz = wizard()
    hp = to_hardware_page(qtbot, wiz)

    junk = tmp_path / "not_a_lora.safetensors"
    junk.write_bytes(b"this is not a safetensors file at all" * 10)
    hp.set_adapter(str(junk))
    qtbot.waitUntil(lambda: wiz.adapter_state == "refused", timeout=30_000)
    text = hp.adapter_status.text()
    assert text.startswith("✗ ") and text.endswith(".") and len(text.split()) > 4
    assert not finish_button(wiz).isEnabled()
    assert not hp.turbo_warning.isVisibleTo(wiz)  # an adapter is given (a wrong one)

    sdxl = make_lora(tmp_path / "sdxl_style.safetensors", "sdxl")
    hp.set_adapter(str(sdxl))
    qtbot.waitUntil(
        lambda: wiz.adapter_state == "refused" and wiz.adapter_checked_for == str(sdxl),
        timeout=30_000,
    )
    assert "SDXL" in hp.adapter_status.text()
    assert not finish_button(wiz).isEnabled()

    good = make_lora(
        tmp_path / "zimage_turbo_training_adapter_v2.safetensors", "aitoolkit", rank=4, layers=2
    )
    hp.set_adapter(str(good))
    qtbot.waitUntil(lambda: wiz.adapter_state == "ok", timeout=30_000)
    assert hp.adapter_status.text().startswith("✓ Z-Image LoRA")
    assert "rank 4" in hp.adapter_status.text()
    assert finish_button(wiz).isEnabled()
    assert not hp.turbo_warning.isVisibleTo(wiz)
    with qtbot.waitSignal(wiz.config_ready, timeout=5000) as blocker:
        finish_button(wiz).click()
    assert blocker.args[0].model.training_adapter == str(good)


def test_turbo_warning_follows_the_variant(qtbot, wizard, tmp_path):
    wiz = wizard(model=str(tmp_path / "Z-Image-De-Turbo"))
    hp = to_hardware_page(qtbot, wiz)
    assert hp.variant_key == "deturbo"  # guessed from the folder name
    assert not hp.turbo_warning.isVisibleTo(wiz)
    hp.variant.setCurrentIndex(hp.variant.findData("turbo"))
    assert hp.turbo_warning.isVisibleTo(wiz)
    assert "without a training adapter" in hp.turbo_warning.text()


def test_estimates_say_how_they_were_made(qtbot, wizard):
    wiz = wizard(gpu=None)
    hp = to_hardware_page(qtbot, wiz)
    assert hp.card_label.text().startswith("No NVIDIA GPU found")
    assert "No NVIDIA GPU was found" in hp.how_label.text()
    assert all("GiB" in it.text(3) for it in hp.items.values())
    wiz.close()

    odd = wizard(gpu=GpuSpec("Frobnitz X9", 11.9))
    hp = to_hardware_page(qtbot, odd)
    assert hp.preset == "12gb"
    assert "not in zitdesk's list" in hp.how_label.text()
    assert hp.items["24gb"].text(3).endswith("does not fit")
    assert not hp.items["8gb"].text(3).endswith("does not fit")
    assert not hp.fit_warning.isVisibleTo(odd)
    hp.set_preset("24gb")
    assert hp.fit_warning.isVisibleTo(odd)
    assert "would run out of memory. Pick 16 GB or lower." in hp.fit_warning.text()


def test_start_is_refused_with_validates_sentence(qtbot, wizard):
    wiz = wizard(model="")
    hp = to_hardware_page(qtbot, wiz)
    emitted = []
    wiz.config_ready.connect(emitted.append)
    finish_button(wiz).click()
    assert hp.error_label.text() == "No base model is set (model.path)."
    assert emitted == [] and wiz.isVisible()


def test_a_folder_without_trainable_images_cannot_go_on(qtbot, wizard, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    tiny = make_dataset(tmp_path / "tiny", size=(8, 8))  # too small for any bucket
    wiz = wizard(datasets=[empty, tiny])
    page = wiz.dataset_page
    qtbot.waitUntil(lambda: wiz.survey is not None, timeout=30_000)
    assert page.facts_label.text().startswith("No images in this folder")
    assert not next_button(wiz).isEnabled()
    page.combo.setCurrentIndex(1)
    qtbot.waitUntil(
        lambda: wiz.survey is not None and wiz.survey.report is not None, timeout=30_000
    )
    assert page.facts_label.text() == "3 images, all with captions"
    assert "Blocked" in page.verdict_label.text()
    assert not next_button(wiz).isEnabled()
    with qtbot.waitSignal(wiz.open_dataset, timeout=5000) as blocker:
        page.fix_button.click()
    assert blocker.args == [str(tiny)]


def test_full_settings_from_the_wizard(qtbot, wizard, dataset):
    wiz = wizard()
    to_hardware_page(qtbot, wiz)
    wiz.goal_page.trigger.setText("ohwx")
    wiz.button(QWizard.WizardButton.CustomButton1).click()
    dlg = wiz.settings_dialog
    assert isinstance(dlg, TrainSettingsDialog) and dlg.isVisible()
    assert dlg.fields[("data", "folder")].value() == str(dataset)
    assert dlg.fields[("data", "trigger")].value() == "ohwx"
    dlg.fields[("optim", "learning_rate")].widget.setText("2e-4")
    assert dlg.valid, dlg.error
    with qtbot.waitSignal(wiz.config_ready, timeout=5000) as blocker:
        dlg.start_button.click()
    cfg = blocker.args[0]
    assert cfg.optim.learning_rate == 2e-4 and cfg.data.folder == str(dataset)
    assert not wiz.isVisible() and not dlg.isVisible()


# --------------------------------------------------------------------------------------------
# The settings dialog
# --------------------------------------------------------------------------------------------


def full_config(tmp_path) -> TrainConfig:
    cfg = apply_preset(TrainConfig(), "12gb")
    return cfg.with_changes(
        model={"path": str(tmp_path / "model"), "training_adapter": str(tmp_path / "a.st")},
        data={"folder": str(tmp_path / "data"), "trigger": "ohwx", "caption_dropout": 0.07},
        optim={"betas": (0.9, 0.99), "eps": 1e-7, "seed": 2**40 + 3, "steps": 1234},
        save={"output_dir": str(tmp_path / "run"), "name": "my_lora", "export_kohya": True},
        sample={
            "prompts": ("a photo of [trigger], smiling", "[trigger] at night"),
            "seeds": (1, 2, 3),
        },
        lora={"targets": ("attention", "feed_forward")},
    )


@pytest.fixture
def dialog(qtbot):
    def make(cfg=None):
        dlg = TrainSettingsDialog(cfg)
        qtbot.addWidget(dlg)
        dlg.show()
        return dlg

    return make


def test_every_field_has_a_widget_and_a_tooltip(dialog):
    dlg = dialog()
    hints = typing.get_type_hints(TrainConfig)
    n = 0
    for f in dataclasses.fields(TrainConfig):
        if f.name == "version":
            continue
        sec_cls = hints[f.name]
        sh = typing.get_type_hints(sec_cls)
        for sf in dataclasses.fields(sec_cls):
            key = (f.name, sf.name)
            assert key in dlg.fields, f"no widget for {key}"
            assert FIELD_HELP.get(key), f"no tooltip for {key}"
            assert FIELD_HELP[key] in dlg.fields[key].widget.toolTip()
            if sh[sf.name] is bool:
                assert isinstance(dlg.fields[key].widget, QCheckBox), key
            n += 1
    assert len(dlg.fields) == n
    assert isinstance(dlg.fields[("model", "variant")].widget, QComboBox)
    combo = dlg.fields[("timesteps", "mode")].widget
    assert [combo.itemData(i) for i in range(combo.count())][:2] == ["weighted", "shift"]


def test_auto_precision_tooltip_says_the_planner_picks_per_block(dialog):
    dlg = dialog()
    tip = dlg.fields[("model", "base_precision")].widget.toolTip()
    assert "bf16 on CUDA" not in tip
    assert "block by block" in tip and "fp8" in tip


def test_toml_round_trip_through_the_form(dialog, tmp_path):
    cfg = full_config(tmp_path)
    src = cfg.write(tmp_path / "job.toml")
    dlg = dialog()
    assert dlg.load(src)
    assert dlg.current() == cfg  # every widget gives back exactly what it was given
    dlg.fields[("optim", "learning_rate")].widget.setText("0.0002")
    dlg.fields[("lora", "rank")].widget.setValue(16)
    dlg.fields[("lora", "targets")].boxes["adaln"].setChecked(True)
    dlg.fields[("sample", "prompts")].widget.setPlainText("one, with a comma\ntwo")
    assert dlg.valid, dlg.error
    out = dlg.save(tmp_path / "edited.toml")
    assert out == tmp_path / "edited.toml"
    want = cfg.with_changes(
        optim={"learning_rate": 2e-4},
        lora={"rank": 16, "targets": ("attention", "feed_forward", "adaln")},
        sample={"prompts": ("one, with a comma", "two")},
    )
    assert TrainConfig.load(out) == want


def test_invalid_values_are_refused_with_validates_sentence(dialog, tmp_path):
    cfg = full_config(tmp_path)
    dlg = dialog(cfg)
    assert dlg.valid and dlg.save_button.isEnabled() and dlg.start_button.isEnabled()
    with pytest.raises(RequestError) as exc:
        cfg.with_changes(data={"caption_dropout": 1.5}).validate()
    dlg.fields[("data", "caption_dropout")].widget.setText("1.5")
    assert dlg.error == str(exc.value) == "Caption dropout must be between 0 and 1."
    assert dlg.error_label.text() == dlg.error
    assert not dlg.save_button.isEnabled() and not dlg.start_button.isEnabled()
    # the refused field is marked, and its tab
    assert dlg.error_key == ("data", "caption_dropout")
    assert "⚠" in dlg.labels[("data", "caption_dropout")].text()
    assert dlg.tabs.tabText(1) == "⚠ Dataset" and dlg.tabs.tabText(0) == "Model"
    assert dlg.save(tmp_path / "never.toml") is None and not (tmp_path / "never.toml").exists()
    dlg.fields[("data", "caption_dropout")].widget.setText("0.1")
    assert dlg.valid and dlg.start_button.isEnabled()
    assert dlg.error_key is None and dlg.tabs.tabText(1) == "Dataset"
    assert "⚠" not in dlg.labels[("data", "caption_dropout")].text()
    dlg.fields[("data", "caption_ext")].widget.setText("<b>txt")  # named in the sentence
    assert dlg.error_key == ("data", "caption_ext")
    tip = dlg.fields[("data", "caption_ext")].widget.toolTip()
    assert "Refused:" in tip and "&lt;b&gt;txt" not in dlg.error
    dlg.fields[("data", "caption_ext")].widget.setText(".txt")

    dlg.fields[("optim", "learning_rate")].widget.setText("fast")
    assert dlg.error == "In the training config, optim.learning_rate should be a number."
    dlg.fields[("optim", "learning_rate")].widget.setText("1e-4")
    dlg.fields[("lora", "rank")].widget.setValue(0)
    assert dlg.error.startswith("LoRA rank must be between 1 and 1024")
    dlg.fields[("lora", "rank")].widget.setValue(32)
    dlg.fields[("data", "resolutions")].widget.setText("512, 700")
    assert dlg.error == "Training resolutions must be multiples of 16 between 64 and 2048."
    assert not dlg.start_button.isEnabled()


def test_preset_fields_are_marked(dialog, tmp_path):
    dlg = dialog(full_config(tmp_path))  # the 12gb preset
    prec = dlg.labels[("model", "base_precision")]
    assert "preset" in prec.text() and "12 GB" in prec.toolTip()
    assert "preset" not in dlg.labels[("lora", "rank")].text()
    dlg.fields[("model", "base_precision")].set_value("bf16")
    dlg._on_edit()
    assert "changed" in prec.text() and "You changed it" in prec.toolTip()
    dlg.preset_combo.setCurrentIndex(dlg.preset_combo.findData("8gb"))
    dlg.apply_preset_button.click()
    assert dlg.current().memory.preset == "8gb"
    assert dlg.current().model.base_precision == "nf4"
    assert "preset" in prec.text() and "8 GB" in prec.toolTip()
    assert dlg.current().data.trigger == "ohwx"  # a preset changes memory fields only


def test_a_bad_file_is_refused_and_the_form_kept(dialog, tmp_path):
    cfg = full_config(tmp_path)
    dlg = dialog(cfg)
    bad = tmp_path / "bad.toml"
    bad.write_text("[optim]\nsteps = 'many'\n", encoding="utf-8")
    assert not dlg.load(bad)
    assert dlg.info_label.text() == "In the training config, optim.steps should be a whole number."
    assert dlg.current() == cfg
    odd = tmp_path / "odd.toml"
    odd.write_text("[optim]\nsteps = 77\nturbo_mode = true\n", encoding="utf-8")
    assert dlg.load(odd)
    assert "unknown setting 'optim.turbo_mode' ignored" in dlg.info_label.text()
    assert dlg.fields[("optim", "steps")].value() == 77


def test_start_emits_the_validated_config(qtbot, dialog, tmp_path):
    cfg = full_config(tmp_path)
    dlg = dialog(cfg)
    with qtbot.waitSignal(dlg.config_ready, timeout=5000) as blocker:
        dlg.start_button.click()
    assert blocker.args == [cfg]


def test_app_datasets_lists_the_datasets_tab_folders(qapp, tmp_path):
    from ui.train.wizard import app_datasets
    from zitdesk.io import user_dirs

    root = user_dirs()["data"] / "datasets"  # in the test's own ZITDESK_HOME
    for name in ("b-style", "a-cat", ".hidden"):
        (root / name).mkdir(parents=True)
    elsewhere = make_dataset(tmp_path / "elsewhere")
    assert app_datasets(last=str(elsewhere)) == [elsewhere, root / "a-cat", root / "b-style"]
    assert app_datasets(last="") == [root / "a-cat", root / "b-style"]
    assert app_datasets(last=str(root / "a-cat")) == [root / "a-cat", root / "b-style"]


def test_file_controlled_text_is_shown_literally(qtbot, wizard, tmp_path):
    """A folder, captions and a LoRA file named like HTML are shown as they are."""
    from PySide6.QtGui import Qt as GuiQt
    from PySide6.QtGui import QTextDocument
    from PySide6.QtWidgets import QLabel

    hostile = make_dataset(tmp_path / "<b>BOLD", captions=("<i>ITAL</i> cat",) * 2)
    wiz = wizard(datasets=[hostile])
    qtbot.waitUntil(
        lambda: wiz.survey is not None and wiz.survey.report is not None, timeout=30_000
    )
    wiz.goal_page.trigger.setText("<i>ITAL</i>")
    hp = to_hardware_page(qtbot, wiz)
    junk = tmp_path / "<u>UNDER.safetensors"
    junk.write_bytes(b"x" * 64)
    hp.set_adapter(str(junk))
    qtbot.waitUntil(lambda: wiz.adapter_state == "refused", timeout=30_000)

    def shown(text: str, rich: bool) -> str:
        if not rich:
            return text
        doc = QTextDocument()
        doc.setHtml(text)
        return doc.toPlainText()

    seen = 0
    for w in wiz.findChildren(QLabel):
        rich = w.textFormat() == Qt.TextFormat.RichText or (
            w.textFormat() == Qt.TextFormat.AutoText and GuiQt.mightBeRichText(w.text())
        )
        for witness, piece in (("BOLD", "<b>BOLD"), ("ITAL", "<i>ITAL"), ("UNDER", "<u>UNDER")):
            if witness in w.text():
                assert piece in shown(w.text(), rich), w.text()
                seen += 1
    tip = wiz.dataset_page.combo.itemData(0, Qt.ItemDataRole.ToolTipRole)
    assert "<b>BOLD" in shown(tip, GuiQt.mightBeRichText(tip))
    assert seen >= 3  # the folder path, the trigger warning, the refused adapter


def test_goal_sets_steps_and_prompts_until_the_user_changes_them(qtbot, wizard):
    wiz = wizard()
    goal, hp = wiz.goal_page, wiz.hardware_page
    goal.set_goal("concept")
    assert hp.steps.value() == GOALS["concept"].steps
    assert goal.sample_prompts() == GOALS["concept"].prompts
    hp.steps.setValue(777)
    goal.prompts.setPlainText("my own prompt")
    goal.set_goal("character")
    assert hp.steps.value() == 777
    assert goal.sample_prompts() == ("my own prompt",)
    cfg = wiz.draft_config()
    assert cfg.lora.rank == GOALS["character"].rank and cfg.optim.steps == 777
