"""The Datasets "Caption…" dialog on the real engine queue (EngineController + StudioEngine on
its thread) with a tiny ONNX tagger: preview writes nothing, a run is one undo step, a caption
edited after the job started is left alone, cancel, and the chosen folder is remembered."""

from __future__ import annotations

import pytest

from tests.support.caption_models import make_colour_dataset, make_tiny_tagger
from tests.support.dataset_window import close_dataset_window, dataset_window

pytest.importorskip("PySide6")


@pytest.fixture
def host(qtbot, tmp_path):
    colours = {
        f"{i:02d}_{c}.png": rgb
        for i, (c, rgb) in enumerate(
            [("red", (250, 10, 10)), ("blue", (10, 10, 250)), ("green", (10, 250, 10))] * 2
        )
    }
    folder = make_colour_dataset(tmp_path / "ds", colours)
    (folder / "00_red.txt").write_text("my cat", encoding="utf-8")
    tagger = make_tiny_tagger(tmp_path / "wd-tiny-tagger-v3")

    win, ws = dataset_window(folder, tmp_path)
    qtbot.addWidget(win)
    qtbot.waitUntil(lambda: ws.session.dataset is not None, timeout=30_000)
    yield win, ws, folder, tagger
    assert close_dataset_window(win, ws)


def caps(ws) -> dict:
    return {it.name: it.caption for it in ws.session.dataset.items}


def test_preview_then_run_is_one_undo_step(qtbot, host):
    win, ws, folder, tagger = host
    assert ws.caption_button.isEnabled()
    dlg = ws.open_caption_dialog()
    qtbot.addWidget(dlg)
    assert dlg.scopes["all"].isChecked() and dlg.scopes["all"].text() == "All (6)"
    assert dlg.scopes["uncaptioned"].text() == "Only uncaptioned (5)"
    assert not dlg.run_button.isEnabled()  # no model chosen yet
    dlg.path.setText(str(folder))  # a dataset folder is not a tagger: one sentence, blocked
    assert "is not a WD tagger" in dlg.problem.text() and not dlg.run_button.isEnabled()
    dlg.path.setText(str(tagger))
    assert dlg.problem.text() == "" and dlg.run_button.text() == "Caption 6 images"
    dlg.mode.setCurrentIndex(1)  # append

    dlg.preview_button.click()
    qtbot.waitUntil(lambda: not dlg.running, timeout=20_000)
    assert len(dlg._results) == 3
    text = dlg.preview.toPlainText()
    assert "00_red.png" in text and "my cat" in text and "red theme" in text
    assert "nothing was written" in dlg.status.text()
    assert caps(ws)["01_blue.png"] is None and ws.session.undo_stack.count() == 0
    assert win.settings.caption_tagger_path == str(tagger)

    dlg.run_button.click()
    # the user edits a caption while the job runs: the job never overwrites it
    ws.session.apply([("02_green.png", None, "typed by hand")])
    qtbot.waitUntil(lambda: not dlg.running, timeout=20_000)
    now = caps(ws)
    assert now["00_red.png"].startswith("my cat, red theme, hatsune miku")
    assert now["01_blue.png"].startswith("blue theme")
    assert now["02_green.png"] == "typed by hand"
    assert ws.session.undo_stack.count() == 1  # the whole job is one step
    assert ws.session.undo_stack.undoText().startswith("Auto-caption 6 image(s) with the tagger")
    assert "caption(s) changed as one step" in dlg.status.text()
    ws.session.flush_blocking()
    assert (folder / "01_blue.txt").read_text(encoding="utf-8").startswith("blue theme")
    ws.session.undo_stack.undo()
    assert caps(ws)["00_red.png"] == "my cat" and caps(ws)["01_blue.png"] is None


def test_only_uncaptioned_and_cancel(qtbot, host):
    win, ws, folder, tagger = host
    win.settings.caption_tagger_path = str(tagger)
    dlg = ws.open_caption_dialog()
    qtbot.addWidget(dlg)
    assert dlg.path.text() == str(tagger)  # remembered
    dlg.scopes["uncaptioned"].setChecked(True)
    assert dlg.scope_names()[0] == "01_blue.png" and len(dlg.scope_names()) == 5
    dlg.run_button.click()
    dlg.cancel_button.click()  # before the engine thread took it: nothing is captioned
    qtbot.waitUntil(lambda: not dlg.running, timeout=20_000)
    assert "Cancelled" in dlg.status.text() and "no caption changed" in dlg.status.text()
    assert ws.session.undo_stack.count() == 0
    # queue description of a caption job
    from ui.widgets.queue_panel import describe_job

    job = (
        win.controller.job(dlg.build_request(False).job_id)
        or type("J", (), {"kind": "caption", "request": dlg.build_request(False)})()
    )
    assert describe_job(job) == "Caption 5 image(s) with wd-tiny-tagger-v3"


def test_caption_job_waits_behind_the_running_job(qtbot, tmp_path):
    """One queue: a caption job submitted while another job (here a stand-in for training)
    holds the engine starts only after that job's terminal event."""
    import threading
    from dataclasses import dataclass, field

    from ui.datasets.session import DatasetSession
    from ui.engine_host import EngineController
    from zitdesk.engine.events import JobFinished, JobStarted
    from zitdesk.engine.studio import StudioEngine

    @dataclass(frozen=True)
    class Hold:
        job_id: str = "hold-1"
        gate: threading.Event = field(default_factory=threading.Event, compare=False)

    class Engine(StudioEngine):
        def run(self, request, emit, cancel):
            if isinstance(request, Hold):
                emit(JobStarted(request.job_id, kind="train"))
                request.gate.wait(20)
                emit(JobFinished(request.job_id))
                return
            super().run(request, emit, cancel)

    from ui.datasets.caption_dialog import CaptionDialog

    folder = make_colour_dataset(tmp_path / "ds", {"a.png": (250, 10, 10)})
    tagger = make_tiny_tagger(tmp_path / "wd")
    controller = EngineController(lambda: Engine(device="cpu"))
    session = DatasetSession(tokenizer_loader=None)
    session.open(folder)
    qtbot.waitUntil(lambda: session.dataset is not None, timeout=30_000)
    hold = Hold()
    controller.submit(hold, "train")
    qtbot.waitUntil(lambda: controller.job("hold-1").state == "running", timeout=30_000)
    dlg = CaptionDialog(session, controller)
    qtbot.addWidget(dlg)
    dlg.path.setText(str(tagger))
    dlg.run_button.click()
    assert dlg.status.text() == "Waiting for the running job to finish…"
    # queued behind the held engine (it cannot start before the gate opens)
    assert [j.kind for j in controller.pending] == ["caption"]
    assert controller.current.job_id == "hold-1" and dlg._results == []
    hold.gate.set()
    qtbot.waitUntil(lambda: not dlg.running, timeout=20_000)
    assert session.dataset.by_name["a.png"].caption.startswith("red theme")
    session.shutdown()
    assert controller.shutdown(10_000)


def test_find_menu_lists_taggers_in_the_hf_cache(qtbot, host, tmp_path, monkeypatch):
    win, ws, folder, tagger = host
    hub = tmp_path / "hub"
    snap = make_tiny_tagger(
        hub / "models--SmilingWolf--wd-eva02-large-tagger-v3" / "snapshots" / "1"
    )
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    dlg = ws.open_caption_dialog()
    qtbot.addWidget(dlg)
    dlg._fill_find_menu()
    acts = [a for a in dlg.find_menu.actions() if a.isEnabled()]
    assert [a.text() for a in acts] == ["SmilingWolf/wd-eva02-large-tagger-v3  (hf-cache)"]
    acts[0].trigger()
    assert dlg.path.text() == str(snap) and dlg.problem.text() == ""
    dlg.kind.setCurrentIndex(1)  # no VLM anywhere: said so, nothing to pick
    dlg._fill_find_menu()
    assert [a.isEnabled() for a in dlg.find_menu.actions()] == [False]
