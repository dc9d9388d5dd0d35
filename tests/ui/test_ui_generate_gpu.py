"""With several GPUs the Generate form picks the card images are made on (#19)."""

from __future__ import annotations

from ui.widgets.generate_form import GenerateFormWidget
from zitdesk.gpu import GpuReading
from zitdesk.settings import AppSettings

GIB = 1 << 30


def _cards(n: int) -> tuple[GpuReading, ...]:
    return tuple(GpuReading(i, "NVIDIA H200", i * GIB, 140 * GIB) for i in range(n))


def test_one_card_no_choice(qtbot):
    form = GenerateFormWidget()
    qtbot.addWidget(form)
    form.set_gpus(_cards(1))
    assert not form._adv_form.isRowVisible(form.gpu)
    assert form.build_request().device == ""


def test_two_cards_pick_one_and_it_is_saved(qtbot):
    form = GenerateFormWidget()
    qtbot.addWidget(form)
    form.set_gpus(_cards(2))
    assert form._adv_form.isRowVisible(form.gpu)
    assert [form.gpu.itemText(i) for i in range(form.gpu.count())] == [
        "Default GPU",
        "GPU 0: NVIDIA H200",
        "GPU 1: NVIDIA H200",
    ]
    form.gpu.setCurrentIndex(2)
    form.prompt.set_text("a fox")
    assert form.build_request().device == "cuda:1"
    assert form.build_request().validate().device == "cuda:1"
    s = AppSettings()
    form.store_settings(s)
    assert s.generate_device == "cuda:1"

    again = GenerateFormWidget()  # restored before the hardware is known, applied when it is
    qtbot.addWidget(again)
    again.load_settings(s)
    again.set_gpus(_cards(2))
    assert again.build_request().device == "cuda:1"
