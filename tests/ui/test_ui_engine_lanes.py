"""One engine worker per GPU (#19): jobs for different cards run at once, each card's jobs keep
their order, and a data-parallel job holds every card it uses."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from fakes import FakeEngine

from ui.engine_host import EngineController
from zitdesk.engine.lanes import bind_thread, lane_label, lane_of_device, lanes_of
from zitdesk.engine.requests import GenerateRequest, new_job_id
from zitdesk.train.config import TrainConfig, TrainSpec


@dataclass(frozen=True)
class SpreadRequest:
    """Stands in for a data-parallel TrainSpec in the scripted engine (it reads steps/count)."""

    gpus: tuple[int, ...]
    steps: int = 1
    count: int = 1
    loras: tuple = ()
    job_id: str = field(default_factory=lambda: new_job_id("train"))


@pytest.fixture
def lanes(qtbot):
    """A controller whose factory builds a new scripted engine per lane (as the real one does)."""
    made: list[tuple[EngineController, list[FakeEngine]]] = []

    def make(script="block", scripts=None):
        """``scripts``: one script per engine, in the order the lanes start (else ``script``)."""
        engines: list[FakeEngine] = []

        def factory():
            engines.append(FakeEngine(scripts[len(engines)] if scripts else script))
            return engines[-1]

        c = EngineController(factory)
        made.append((c, engines))
        return c, engines

    yield make
    for c, _ in made:
        assert c.shutdown(10_000)


def req(device="", **kw):
    return GenerateRequest(prompt="a cat", steps=2, width=64, height=64, device=device, **kw)


def test_lanes_of_requests():
    assert lane_of_device("") == lane_of_device("auto") == lane_of_device("cuda:0") == ""
    assert lane_of_device("cuda") == lane_of_device("cpu") == ""
    assert lane_of_device("CUDA:2") == "cuda:2" and lane_of_device("cuda:x") == ""
    assert lanes_of(req("cuda:1")) == ("cuda:1",)
    cfg = TrainConfig()
    assert lanes_of(TrainSpec(cfg)) == ("",)
    assert lanes_of(TrainSpec(cfg.with_changes(model={"device": "cuda:3"}))) == ("cuda:3",)
    assert lanes_of(TrainSpec(cfg, gpus=(1, 0))) == ("", "cuda:1")
    assert lane_label("") == "GPU 0" and lane_label("cuda:2") == "GPU 2"
    # the main lane keeps the engine's own device; a card this machine lacks binds nothing
    assert bind_thread("") is False and bind_thread("cuda:99") is False


def test_jobs_for_two_cards_run_at_once_on_their_own_threads(qtbot, lanes):
    c, engines = lanes()
    on0 = c.submit(req())
    on1 = c.submit(req("cuda:1"))
    qtbot.waitUntil(lambda: len(engines) == 2 and all(e.blocking.is_set() for e in engines))
    assert on0.state == on1.state == "running" and c.pending == []
    assert c.running_jobs == [on0, on1] and c.current is on0 and c.busy
    threads = {e.threads[0] for e in engines}
    assert len(threads) == 2  # one engine thread (and engine) per card
    with qtbot.waitSignal(c.job_cancelled, timeout=30_000):
        c.cancel(on1.job_id)  # stopping card 1's job leaves card 0's running
    assert on1.state == "cancelled" and on0.state == "running" and c.busy
    with qtbot.waitSignal(c.busy_changed, timeout=30_000) as idle:
        c.cancel()
    assert idle.args == [False] and on0.state == "cancelled"


def test_each_card_keeps_its_order_and_a_free_card_does_not_wait(qtbot, lanes):
    c, engines = lanes(["block", "block", "finish"])
    first0 = c.submit(req())
    second0 = c.submit(req())  # waits for card 0
    first1 = c.submit(req("cuda:1"))  # card 1 is free: starts at once, ahead of second0
    qtbot.waitUntil(lambda: first1.state == "running" and len(engines) == 2)
    assert c.pending == [second0] and first0.state == "running"
    assert c.jobs_ahead(second0) == 1 and c.jobs_ahead(first1) == 0
    c.cancel(first0.job_id)
    qtbot.waitUntil(lambda: second0.state in ("running", "finished", "cancelled"), timeout=30_000)
    assert first1.state == "running"  # card 1 never waited for card 0's queue
    c.cancel_all()
    qtbot.waitUntil(lambda: not c.busy, timeout=30_000)


def test_a_data_parallel_job_holds_every_card_and_is_not_overtaken(qtbot, lanes):
    c, engines = lanes()
    on0 = c.submit(req())
    spread = c.submit(SpreadRequest(gpus=(0, 1)))  # needs cards 0 and 1: waits for card 0
    later1 = c.submit(req("cuda:1"))  # card 1 is free, but the spread job is first in line for it
    qtbot.waitUntil(
        lambda: bool(engines) and engines[0].blocking.is_set() and on0.state == "running"
    )
    qtbot.wait(100)
    assert spread.state == "queued" and later1.state == "queued"
    assert c.jobs_ahead(spread) == 1 and c.jobs_ahead(later1) == 1
    c.cancel(on0.job_id)
    qtbot.waitUntil(lambda: spread.state == "running", timeout=30_000)
    assert later1.state == "queued"  # the spread job holds card 1 too
    assert c.running_jobs == [spread] and c.jobs_ahead(later1) == 1
    c.cancel(spread.job_id)
    qtbot.waitUntil(lambda: later1.state == "running", timeout=30_000)
    c.cancel_all()
    qtbot.waitUntil(lambda: not c.busy, timeout=30_000)


def test_a_data_parallel_job_frees_the_other_cards_engines_first(qtbot, lanes):
    c, engines = lanes(scripts=["finish", "block"])  # card 1's engine, then the main one
    on1 = c.submit(req("cuda:1"))  # card 1's engine loads a model (and keeps it)
    qtbot.waitUntil(lambda: on1.state == "finished", timeout=30_000)
    assert engines[0].shutdown_calls == 0
    spread = c.submit(SpreadRequest(gpus=(0, 1)))  # runs on the main card's engine ...
    qtbot.waitUntil(lambda: len(engines) == 2 and engines[1].blocking.is_set(), timeout=30_000)
    assert spread.state == "running" and engines[1].requests[-1] is spread.request
    qtbot.waitUntil(lambda: engines[0].shutdown_calls == 1, timeout=30_000)  # ... card 1's let go
    c.cancel(spread.job_id)
    qtbot.waitUntil(lambda: not c.busy, timeout=30_000)


def test_cancelling_a_waiting_job_lets_the_one_behind_it_start(qtbot, lanes):
    c, engines = lanes()
    on0 = c.submit(req())
    spread = c.submit(SpreadRequest(gpus=(0, 1)))
    later1 = c.submit(req("cuda:1"))
    qtbot.waitUntil(lambda: on0.state == "running")
    c.cancel(spread.job_id)  # dropped from the queue: card 1's job is no longer held back
    qtbot.waitUntil(lambda: later1.state == "running", timeout=30_000)
    assert spread.state == "cancelled" and on0.state == "running"
    c.cancel_all()
    qtbot.waitUntil(lambda: not c.busy, timeout=30_000)


def test_shutdown_stops_every_card_thread(qtbot):
    engines: list[FakeEngine] = []

    def factory():
        engines.append(FakeEngine("block"))
        return engines[-1]

    c = EngineController(factory)
    c.submit(req())
    c.submit(req("cuda:2"))
    qtbot.waitUntil(lambda: len(engines) == 2 and all(e.blocking.is_set() for e in engines))
    assert c.running
    assert c.shutdown(10_000)
    assert not c.running and [e.shutdown_calls for e in engines] == [1, 1]


def test_generate_on_card_0_while_card_1_trains(qtbot, make_window, settings, tmp_path):
    """In the window: a training job holds card 1; Generate (default card) starts at once, its
    Cancel stops the generation only, and the queue says which card each job is on."""
    eng = FakeEngine("block", image_dir=tmp_path)  # (one scripted engine serves both lanes)
    win = make_window(settings, eng)
    train = win.controller.submit(req("cuda:1"), "train")
    qtbot.waitUntil(eng.blocking.is_set, timeout=30_000)
    ws = win.generate
    ws.form.prompt.set_text("a fox on card 0")
    job = ws.generate()
    assert job is not None and job.state == "running"  # not queued behind card 1's training
    qtbot.waitUntil(lambda: len(eng.requests) == 2, timeout=30_000)
    qtbot.waitUntil(ws.cancel_button.isEnabled, timeout=30_000)
    texts = ws.queue.texts()
    assert texts[0].startswith("▶ GPU 0 · Generate") and texts[1].startswith("▶ GPU 1 · Train")
    ws.cancel()
    qtbot.waitUntil(lambda: job.state == "cancelled", timeout=30_000)
    assert train.state == "running" and not ws.cancel_button.isEnabled()
    assert ws.generate_button.text() == "Generate"  # card 0 is free: nothing to queue behind
    win.controller.cancel(train.job_id)
    qtbot.waitUntil(lambda: not win.controller.busy, timeout=30_000)


def test_the_memory_prediction_reads_the_card_picked(qtbot, make_window, settings):
    """With two cards the "next job" verdict is for the card the GPU row picks, not always the
    first: card 0 nearly full says too much, card 1 (almost empty) has room."""
    import re

    from fakes import GIB

    from zitdesk.gpu import GpuReading, MemorySnapshot

    def snapshot():
        cards = (
            GpuReading(0, "NVIDIA GeForce RTX 4090", 22 * GIB, 24 * GIB),
            GpuReading(1, "NVIDIA GeForce RTX 3090", 1 * GIB, 24 * GIB),
        )
        return MemorySnapshot(cards, "", GIB, 8 * GIB, 64 * GIB, None, None)

    win = make_window(settings, snapshot_fn=snapshot)
    ws = win.generate
    ws.set_snapshot(snapshot())
    win.meter.set_snapshot(snapshot())  # (the poller's first reading, without waiting for it)
    texts: list[str] = []
    ws.prediction_changed.connect(lambda _peak, text: texts.append(text))

    def free_after(device: str) -> float:
        texts.clear()
        ws.form.gpu.setCurrentIndex(ws.form.gpu.findData(device))
        ws.update_prediction()
        return float(re.search(r"([\d.]+) GiB free", texts[-1]).group(1))

    first, second = free_after("cuda:0"), free_after("cuda:1")
    assert win.meter.bar.used == 1 * GIB  # the status bar's bar follows the card picked
    default = free_after("")
    assert first < 2.5 and second > 21 and default == first and win.meter.bar.used == 22 * GIB
