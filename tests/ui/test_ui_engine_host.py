"""The engine thread and the controller, driven with the scripted FakeEngine."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from fakes import FakeEngine

from ui.engine_host import EngineController, preview_to_qimage
from zitdesk.engine.events import JobFailed
from zitdesk.engine.requests import GenerateRequest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def controller(qtbot):
    made = []

    def make(engine, **kw):
        c = EngineController(lambda: engine, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        assert c.shutdown(10_000)


def req(**kw):
    kw.setdefault("prompt", "a cat")
    kw.setdefault("steps", 3)
    kw.setdefault("width", 64)
    kw.setdefault("height", 64)
    return GenerateRequest(**kw)


def test_job_runs_on_the_engine_thread_and_signals_in_order(qtbot, controller, tmp_path):
    eng = FakeEngine(image_dir=tmp_path)
    c = controller(eng)
    with qtbot.waitSignals(
        [c.job_started, c.phase_changed, c.progress, c.image_ready, c.job_finished, c.job_ended],
        order="simple",
        timeout=5000,
    ):
        job = c.submit(req())
    assert job.state == "finished"
    assert job.result.paths and Path(job.result.paths[0]).exists()
    assert eng.threads == [eng.threads[0]] and eng.threads[0] != threading.main_thread().name
    assert not c.busy


def test_queue_sends_the_next_job_only_after_the_last_ends(qtbot, controller):
    eng = FakeEngine(["block", "finish"])
    c = controller(eng)
    first = c.submit(req())
    second = c.submit(req())
    assert eng.blocking.wait(5)
    qtbot.wait(50)
    assert len(eng.requests) == 1 and c.pending == [second]
    assert c.current is first
    with qtbot.waitSignal(c.job_cancelled, timeout=5000):
        c.cancel()  # sets the token directly; the worker is busy
    qtbot.waitUntil(lambda: second.state == "finished", timeout=5000)
    assert first.state == "cancelled"
    assert [r.job_id for r in eng.requests] == [first.job_id, second.job_id]


def test_cancel_a_queued_job_drops_it(qtbot, controller):
    eng = FakeEngine(["block", "finish"])
    c = controller(eng)
    c.submit(req())
    queued = c.submit(req())
    assert eng.blocking.wait(5)
    with qtbot.waitSignal(c.job_cancelled) as blocker:
        c.cancel(queued.job_id)
    assert blocker.args[0].job_id == queued.job_id
    assert c.pending == []
    c.cancel()
    qtbot.waitUntil(lambda: not c.busy, timeout=5000)
    assert len(eng.requests) == 1


def test_exception_in_a_job_becomes_a_message_and_the_thread_lives_on(qtbot, controller):
    eng = FakeEngine(["raise", "finish"])
    c = controller(eng)
    with qtbot.waitSignal(c.job_failed, timeout=5000) as blocker:
        c.submit(req())
    ev = blocker.args[0]
    assert isinstance(ev, JobFailed) and "scripted crash" in ev.message and ev.traceback
    with qtbot.waitSignal(c.job_finished, timeout=5000):
        c.submit(req())
    assert c.running


def test_engine_that_forgets_the_terminal_event_does_not_stall_the_queue(qtbot, controller):
    c = controller(FakeEngine(["silent", "finish"]))
    with qtbot.waitSignal(c.job_failed, timeout=5000):
        c.submit(req())
    with qtbot.waitSignal(c.job_finished, timeout=5000):
        c.submit(req())


def test_previews_are_throttled(qtbot, controller):
    c = controller(FakeEngine(), preview_interval_ms=10_000)
    previews = []
    c.preview_ready.connect(previews.append)
    progress = []
    c.progress.connect(progress.append)
    with qtbot.waitSignal(c.job_finished, timeout=5000):
        c.submit(req(steps=20))
    assert len(progress) == 20
    assert len(previews) == 1  # the first at once, the rest dropped within the interval
    assert previews[0].width() == 8


def test_preview_to_qimage_rejects_wrong_arrays():
    import numpy as np

    assert preview_to_qimage(np.zeros((4, 4), np.uint8)) is None
    assert preview_to_qimage(np.zeros((4, 4, 3), np.float32)) is None
    img = preview_to_qimage(np.full((4, 5, 3), 200, np.uint8))
    assert (img.width(), img.height()) == (5, 4) and img.pixelColor(0, 0).red() == 200


def test_shutdown_cancels_the_running_job_and_stops_the_thread(qtbot):
    eng = FakeEngine("block")
    c = EngineController(lambda: eng)
    job = c.submit(req())
    assert eng.blocking.wait(5)
    assert c.shutdown(10_000)
    assert job.token.cancelled and not c.running
    assert eng.shutdown_calls == 1
    with pytest.raises(RuntimeError):
        c.submit(req())


def test_engine_host_does_not_import_the_engine_until_a_job_runs():
    code = (
        "import sys, ui.engine_host\n"
        "bad = [m for m in ('zitdesk.engine.generate', 'torch', 'diffusers') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr[-2000:]
