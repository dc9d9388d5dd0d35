"""The engine thread and the controller, driven with the scripted FakeEngine."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from fakes import FakeEngine

from ui.engine_host import EngineController, Job, preview_to_qimage
from zitdesk.engine.events import JobFailed
from zitdesk.engine.requests import GenerateRequest, LoraSpec

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
    qtbot.waitUntil(lambda: second.state == "finished", timeout=30_000)
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
    qtbot.waitUntil(lambda: not c.busy, timeout=30_000)
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


# -- one queue for generation and training, through the real engine thread (tiny model) ------
def _train_spec(model, tmp_path, steps):
    from PIL import Image

    from zitdesk.train.config import TrainConfig, TrainSpec

    data = tmp_path / "data"
    data.mkdir()
    for i, c in enumerate([(200, 30, 30), (30, 200, 30)]):
        Image.new("RGB", (64, 64), c).save(data / f"img{i}.png")
        (data / f"img{i}.txt").write_text("a photo of [trigger]", encoding="utf-8")
    cfg = TrainConfig().with_changes(
        model={"path": str(model)},
        data={"folder": str(data), "trigger": "zxq", "resolutions": (64,), "caption_dropout": 0.0},
        lora={"rank": 4, "alpha": 4.0},
        optim={"steps": steps, "learning_rate": 1e-2},
        memory={"gradient_checkpointing": "off"},
        save={"output_dir": str(tmp_path / "run"), "every": 0},
        sample={"every": 0},
    )
    return TrainSpec(cfg)


def test_kind_is_inferred_from_the_request(qtbot, controller, tiny_diffusers, tmp_path):
    from ui.engine_host import kind_of

    assert kind_of(req()) == "generate"
    assert kind_of(_train_spec(tiny_diffusers, tmp_path, 2)) == "train"
    c = controller(FakeEngine())
    job = c.submit(req())
    assert job.kind == "generate"
    qtbot.waitUntil(lambda: job.state == "finished", timeout=30_000)
    assert c.current_training() is None
    assert c.try_generate(req()).kind == "generate"  # no paused training: an ordinary job


def test_train_pause_try_resume_and_a_waiting_generation(
    qtbot, controller, tiny_diffusers, tmp_path
):
    from ui.engine_host import default_engine_factory
    from zitdesk.engine.events import ImageReady, JobStarted
    from zitdesk.train.events import Paused, Resumed, TrainStep

    c = controller(default_engine_factory())
    seen: list = []
    for sig in (c.job_started, c.train_step, c.paused, c.resumed, c.image_ready, c.job_ended):
        sig.connect(seen.append)

    def pause_now(ev):
        c.pause()

    c.train_step.connect(pause_now)
    spec = _train_spec(tiny_diffusers, tmp_path, 40)
    with qtbot.waitSignal(c.paused, timeout=120_000) as paused:
        train = c.submit(spec)
    assert train.kind == "train" and c.current_training() is train
    pause_ev = paused.args[0]
    assert isinstance(pause_ev, Paused) and pause_ev.job_id == train.job_id
    assert Path(pause_ev.lora_path).is_file() and train.state == "paused"

    def gen(**kw):
        return req(
            model_path=str(tiny_diffusers), output_dir=str(tmp_path / "img"), preview_every=0, **kw
        )

    waiting = c.submit(gen(prompt="after training"))  # waits in the one queue
    assert c.pending == [waiting] and waiting.state == "queued"
    tried = c.try_generate(gen(prompt="a photo of zxq", loras=(LoraSpec(pause_ev.lora_path, 1.0),)))
    assert tried.kind == "try" and tried.parent == train.job_id
    qtbot.waitUntil(lambda: tried.state in ("finished", "failed"), timeout=60_000)
    assert tried.state == "finished", getattr(tried.result, "message", "")
    assert Path(tried.result.paths[0]).is_file()
    assert c.current is train and c.pending == [waiting]  # the try did not take the queue

    c.train_step.disconnect(pause_now)
    with qtbot.waitSignal(c.resumed, timeout=30_000):
        assert c.resume()
    qtbot.waitUntil(lambda: waiting.state in ("finished", "failed"), timeout=120_000)
    assert train.state == "finished" and waiting.state == "finished"
    assert waiting.result.paths and Path(waiting.result.paths[0]).is_file()

    ids = [(type(e).__name__, e.job_id) for e in seen if not isinstance(e, Job)]
    assert ("ImageReady", tried.job_id) in ids
    assert ("Resumed", train.job_id) in ids
    ended = [j.job_id for j in seen if isinstance(j, Job)]
    assert ended == [tried.job_id, train.job_id, waiting.job_id]
    started = [e.job_id for e in seen if isinstance(e, JobStarted)]
    assert started == [train.job_id, tried.job_id, waiting.job_id]
    steps = [e.step for e in seen if isinstance(e, TrainStep)]
    assert steps[-1] == 40
    assert isinstance([e for e in seen if isinstance(e, Resumed)][0], Resumed)
    assert [e for e in seen if isinstance(e, ImageReady)][0].job_id == tried.job_id
