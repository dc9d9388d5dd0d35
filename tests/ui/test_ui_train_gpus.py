"""The Train tab on a machine with several GPUs (#19): the "Train on" combo, the TrainSpec it
builds (one card → ``cuda:N`` in the app; several → data-parallel), the choice kept in the
settings, and the run view of a data-parallel run (header names the cards, Pause disabled)."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

import pytest
from fakes import cpu_snapshot

from ui.engine_host import EngineController
from zitdesk.engine.cancel import CancelToken
from zitdesk.engine.events import JobCancelled, JobStarted
from zitdesk.gpu import GpuReading, MemorySnapshot
from zitdesk.settings import AppSettings, load_settings
from zitdesk.train.config import TrainConfig, TrainSpec

GIB = 1 << 30
NAMES = ("NVIDIA GeForce RTX 4090", "NVIDIA GeForce RTX 3090", "NVIDIA RTX A6000")


def _snapshot(n: int) -> MemorySnapshot:
    cards = tuple(GpuReading(i, NAMES[i], 2 * GIB, 24 * GIB) for i in range(n))
    return MemorySnapshot(cards, "", GIB, 8 * GIB, 64 * GIB)


class TrainEngine:
    """Stands in for the StudioEngine's training jobs: records each spec, says it started and
    holds the job until it is cancelled (the run's own events are tests/train's)."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.lock = threading.Lock()

    def run(self, request: Any, emit: Any, cancel: CancelToken) -> None:
        with self.lock:
            self.requests.append(request)
        emit(JobStarted(request.job_id, kind="train", total_steps=request.config.optim.steps))
        deadline = time.monotonic() + 60
        while not cancel.cancelled and time.monotonic() < deadline:
            cancel.wait_for_work(0.05)
        emit(JobCancelled(request.job_id))

    def shutdown(self) -> None:
        pass


@pytest.fixture(autouse=True)
def _data_parallel_offered(monkeypatch):
    """(Windows offers single cards only: the Linux choices are tested everywhere.)"""
    monkeypatch.setattr("ui.train.gpu_choice.DATA_PARALLEL", True)


@pytest.fixture
def engine():
    return TrainEngine()


@pytest.fixture
def make_tab(qtbot, engine):
    from ui.thumbnails import ThumbnailCache
    from ui.train.workspace import TrainWorkspace

    made: list[Any] = []

    def make(settings: AppSettings):
        controller = EngineController(lambda: engine)
        ws = TrainWorkspace(controller, ThumbnailCache(size=64), settings)
        qtbot.addWidget(ws)
        ws.resize(1366, 700)
        made.append((ws, controller))
        return ws

    yield make
    for ws, controller in made:
        if ws.live_job is not None and ws.live:
            controller.cancel(ws.live_job.job_id)
        controller.shutdown()
        assert controller.wait(30_000)


def _config(tmp_path) -> TrainConfig:
    return TrainConfig().with_changes(
        model={"path": str(tmp_path / "model")},
        data={"folder": str(tmp_path / "data"), "trigger": "zxq"},
        optim={"steps": 50},
        save={"output_dir": str(tmp_path / "out"), "name": "cat"},
    )


def _items(combo) -> list[str]:
    return [combo.itemText(i) for i in range(combo.count())]


def _pick(combo, text: str) -> None:
    combo.setCurrentIndex(_items(combo).index(text))


def _stop(qtbot, ws) -> None:
    job = ws.live_job
    with qtbot.waitSignal(ws.controller.job_ended, timeout=30_000):
        ws.controller.cancel(job.job_id)


def test_the_combo_shows_with_several_gpus_only(qtbot, make_tab):
    ws = make_tab(AppSettings())
    combo = ws.overview.train_on
    ws.set_snapshot(_snapshot(1))
    assert not combo.isVisibleTo(ws.overview)
    assert combo.choice() == ""
    ws.set_snapshot(_snapshot(2))
    assert combo.isVisibleTo(ws.overview) and ws.overview.train_on_label.isVisibleTo(ws.overview)
    assert _items(combo) == [
        "GPU 0: NVIDIA GeForce RTX 4090",
        "GPU 1: NVIDIA GeForce RTX 3090",
        "GPUs 0 + 1 (data-parallel)",
    ]
    assert combo.choice() == "0"  # the first card, as before
    ws.set_snapshot(_snapshot(3))
    assert _items(combo)[-1] == "All 3 GPUs (data-parallel)"
    ws.set_snapshot(cpu_snapshot())
    assert not combo.isVisibleTo(ws.overview)


def test_no_data_parallel_entries_where_torch_has_no_nccl():
    from ui.train.gpu_choice import gpu_choices

    cards = _snapshot(3).gpus
    assert [v for _, v in gpu_choices(cards, parallel=False)] == ["0", "1", "2"]
    assert [v for _, v in gpu_choices(cards, parallel=True)][3:] == ["0,1", "0,1,2"]


def test_one_card_trains_in_the_app_on_it(qtbot, make_tab, engine, tmp_path):
    settings = AppSettings()
    ws = make_tab(settings)
    ws.set_snapshot(_snapshot(2))
    _pick(ws.overview.train_on, "GPU 1: NVIDIA GeForce RTX 3090")
    assert settings.train_gpus == "1"
    assert load_settings()[0].train_gpus == "1"  # written at once
    assert ws.gpu_info().index == 1  # the tiers and the wizard plan for that card

    job = ws.start_config(_config(tmp_path))
    assert job is not None
    qtbot.waitUntil(lambda: len(engine.requests) == 1, timeout=30_000)
    spec = engine.requests[0]
    assert isinstance(spec, TrainSpec)
    assert spec.gpus == (1,) and not spec.data_parallel
    assert spec.config.model.device == "cuda:1"
    view = ws.run_view
    assert view.where.text() == "on GPU 1"
    assert view.can_pause and view.pause_button.isEnabled()
    snap = _snapshot(2)
    cards = (snap.gpus[0], GpuReading(1, NAMES[1], 5 * GIB, 12 * GIB))
    view.set_snapshot(replace(snap, gpus=cards))
    assert (view.vram_total, view.vram_used) == (12 * GIB, 5 * GIB)  # card 1's, not card 0's
    _stop(qtbot, ws)


def test_several_cards_are_one_data_parallel_run_that_cannot_pause(
    qtbot, make_tab, engine, tmp_path
):
    settings = AppSettings(train_gpus="0,1")  # the choice saved last time
    ws = make_tab(settings)
    ws.set_snapshot(_snapshot(2))
    assert ws.overview.train_on.currentText() == "GPUs 0 + 1 (data-parallel)"

    job = ws.start_config(_config(tmp_path))
    qtbot.waitUntil(lambda: len(engine.requests) == 1, timeout=30_000)
    spec = engine.requests[0]
    assert spec.gpus == (0, 1) and spec.data_parallel
    assert spec.config.model.device == "auto"  # each process takes its own card
    view = ws.run_view
    qtbot.waitUntil(lambda: view.state == "running", timeout=30_000)
    assert view.where.text() == "on GPUs 0 + 1 (data-parallel)"
    assert view.pause_button.isVisibleTo(view) and not view.pause_button.isEnabled()
    assert view.pause_button.toolTip() == (
        "A run on several GPUs can't pause: Stop keeps a checkpoint and Resume continues from it."
    )
    ws.pause()  # (a stray call) asks nothing of the controller
    assert not job.token.paused
    _stop(qtbot, ws)
    assert not view.pause_button.isEnabled()

    # a resume goes to the chosen cards too
    ws.start_spec(TrainSpec(config=_config(tmp_path), resume=True))
    qtbot.waitUntil(lambda: len(engine.requests) == 2, timeout=30_000)
    assert engine.requests[1].gpus == (0, 1) and engine.requests[1].resume
    _stop(qtbot, ws)


def test_with_one_gpu_the_spec_is_unchanged(qtbot, make_tab, engine, tmp_path):
    ws = make_tab(AppSettings(train_gpus="0,1"))  # saved on another machine
    ws.set_snapshot(_snapshot(1))
    ws.start_config(_config(tmp_path))
    qtbot.waitUntil(lambda: len(engine.requests) == 1, timeout=30_000)
    spec = engine.requests[0]
    assert spec.gpus == () and spec.config.model.device == "auto"
    assert ws.run_view.where.text() == "" and ws.run_view.pause_button.isEnabled()
    _stop(qtbot, ws)


@pytest.mark.slow
def test_a_data_parallel_run_from_the_tab_end_to_end(qtbot, tiny_diffusers, tmp_path, monkeypatch):
    """The real engine: the tab's spec on 2 CPU processes (the CPU stand-in for 2 cards) runs as
    a child ``zitdesk train``; its steps fill the run view, which ends finished with the LoRA."""
    from PIL import Image

    from ui.thumbnails import ThumbnailCache
    from ui.train.workspace import TrainWorkspace
    from zitdesk.engine.studio import StudioEngine

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("ZITDESK_DIST_TIMEOUT_S", "120")
    data = tmp_path / "data"
    data.mkdir()
    for i in range(4):
        Image.new("RGB", (64, 64), (200, 40 * i, 30)).save(data / f"img{i}.png")
        (data / f"img{i}.txt").write_text("a photo of [trigger]", encoding="utf-8")
    cfg = TrainConfig().with_changes(
        model={"path": str(tiny_diffusers), "variant": "base"},
        data={"folder": str(data), "trigger": "zxq", "resolutions": (64,), "caption_dropout": 0.0},
        lora={"rank": 4, "alpha": 4.0},
        optim={"steps": 4, "learning_rate": 1e-3},
        memory={"gradient_checkpointing": "off"},
        save={"output_dir": str(tmp_path / "out"), "name": "dp", "every": 2},
        sample={"every": 0},
    )
    controller = EngineController(lambda: StudioEngine(device="cpu"))
    ws = TrainWorkspace(controller, ThumbnailCache(size=64), AppSettings())
    qtbot.addWidget(ws)
    try:
        job = ws.start_spec(TrainSpec(config=cfg.validate(), processes=2))
        view = ws.run_view
        assert view.where.text() == "on 2 CPU processes (data-parallel)"
        assert not view.pause_button.isEnabled()
        ends = ("finished", "cancelled", "failed")
        qtbot.waitUntil(lambda: job.state in ends and view.state in ends, timeout=240_000)
        assert job.state == "finished", getattr(job.result, "message", "")
        assert view.state == "finished" and view.loss_chart.point_count == 4
        assert view.final_lora == str(tmp_path / "out" / "dp.safetensors")
        assert [view.checkpoints.topLevelItem(i).text(0) for i in range(2)] == ["2", "4"]
    finally:
        controller.shutdown()
        assert controller.wait(30_000)
