"""Generate's off switch for the fast path: the "Fast generation" box → GenerateRequest.speed,
kept in the settings across a restart of the form."""

from __future__ import annotations

from ui.widgets.generate_form import GenerateFormWidget
from zitdesk.settings import AppSettings


def test_fast_generation_box_sets_speed_and_persists(qtbot):
    form = GenerateFormWidget()
    qtbot.addWidget(form)
    form.prompt.set_text("a fox")
    assert form.fast.isChecked() and form.build_request().speed == "auto"  # the default
    form.fast.setChecked(False)
    assert form.build_request().speed == "off"
    s = AppSettings()
    form.store_settings(s)
    assert s.fast_generation is False
    again = GenerateFormWidget()
    qtbot.addWidget(again)
    again.load_settings(s)
    assert not again.fast.isChecked() and again.build_request().speed == "off"
