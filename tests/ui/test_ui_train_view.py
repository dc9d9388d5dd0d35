"""Widget-level tests of the Train tab: charts, samples timeline, run view, history, notifier.

Events are built by hand here (the engine path is tests/ui/test_ui_train_e2e.py); files the
views read (sample PNGs, LoRA files, checkpoints) are real files in tmp_path.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QMessageBox

from zitdesk.engine.events import JobFailed, JobFinished, JobStarted, JobWarning, PhaseChanged
from zitdesk.train.config import TrainConfig
from zitdesk.train.events import CheckpointSaved, Paused, Resumed, SampleReady, TrainStep

ROOT = Path(__file__).resolve().parents[2]


def _png(path: Path, color=(200, 40, 40)) -> str:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 64), color).save(path)
    return str(path)


def _config(out: Path, **sample) -> TrainConfig:
    return TrainConfig().with_changes(
        data={"trigger": "zxq"},
        optim={"steps": 100},
        save={"output_dir": str(out), "every": 25},
        sample={
            "every": 20,
            "prompts": ("a photo of [trigger]", "[trigger] in a forest"),
            **sample,
        },
    )


@pytest.fixture
def thumbs(qtbot):
    from ui.thumbnails import ThumbnailCache

    return ThumbnailCache(size=96)


@pytest.fixture
def view(qtbot, thumbs):
    from ui.train.run_view import RunView

    v = RunView(thumbs)
    qtbot.addWidget(v)
    v.resize(1300, 700)
    return v


# -- pure helpers -----------------------------------------------------------------------------
def test_ema_is_debiased_and_smooths():
    from ui.train.charts import ema

    assert ema([]) == []
    out = ema([2.0, 2.0, 2.0], 0.9)
    assert out == pytest.approx([2.0, 2.0, 2.0])  # no pull towards 0 at the start
    noisy = [1.0, 0.0] * 50
    sm = ema(noisy, 0.9)
    assert max(sm[20:]) - min(sm[20:]) < 0.2 < max(noisy) - min(noisy)
    assert ema([1.0, float("nan"), 3.0], 0.5)[1] == 1.0  # a NaN does not break the line
    state = [0.0, 0.0]
    assert ema(noisy[:30], 0.9, state) + ema(noisy[30:], 0.9, state) == pytest.approx(sm)


def test_eta_counts_samples_and_saves():
    from ui.train.run_view import full_eta, remaining_events

    assert remaining_events(0, 100, 25) == 3  # 25, 50, 75 (100 is the final save)
    assert remaining_events(50, 100, 25) == 1
    assert remaining_events(100, 100, 25) == 0
    cfg = _config(Path("/tmp/x"))
    ev = TrainStep("j", step=50, total=100, loss=0.1, lr=1e-4, it_s=1.0, eta_s=50.0)
    # samples at 60, 80 + the final round = 3 × 4 s; saves at 75 + final = 2 × 2 s
    assert full_eta(ev, cfg, 4.0, 2.0) == pytest.approx(50 + 12 + 4)
    ev2 = TrainStep("j", step=50, total=100, eta_s=50.0, phase_eta_s=77.0)
    assert full_eta(ev2, cfg, 4.0, 2.0) == 77.0  # the engine's own figure wins


def test_fmt_duration():
    from ui.train.run_view import fmt_duration

    assert fmt_duration(45) == "45 s"
    assert fmt_duration(200) == "3 min 20 s"
    assert fmt_duration(3900) == "1 h 05 min"


# -- charts -----------------------------------------------------------------------------------
def test_loss_chart_points_smoothing_log_and_zoom(qtbot):
    from ui.train.charts import LossChart, ema

    chart = LossChart()
    qtbot.addWidget(chart)
    chart.resize(600, 400)
    chart.show()
    for s in range(1, 41):
        chart.add_point(s, 1.0 / s + (0.05 if s % 2 else 0.0))
    assert chart.point_count == 40
    xs, ys = chart.raw.getData()
    assert list(xs) == list(range(1, 41)) and len(chart.smooth.getData()[1]) == 40
    assert "step 40" in chart.summary.text()
    assert chart.smoothed() == pytest.approx(ema(chart.losses, chart.smoothing))  # incremental
    # a resume repeats steps after the last checkpoint: those points are replaced
    chart.add_point(30, 0.5)
    assert chart.steps[-1] == 30 and chart.point_count == 30
    assert chart.smoothed() == pytest.approx(ema(chart.losses, chart.smoothing))
    chart.reset_zoom()
    full = chart.view_range()
    assert full[0][0] <= 1 and full[0][1] >= 30
    chart.plot.getViewBox().scaleBy((0.25, 0.25))
    zoomed = chart.view_range()
    assert zoomed[0][1] - zoomed[0][0] < full[0][1] - full[0][0]
    chart.reset_button.click()
    back = chart.view_range()
    assert back[0][1] - back[0][0] == pytest.approx(full[0][1] - full[0][0], rel=0.05)
    chart.log_y.setChecked(True)
    assert chart.plot.getPlotItem().ctrl.logYCheck.isChecked()
    chart.log_y.setChecked(False)
    assert not chart.plot.getPlotItem().ctrl.logYCheck.isChecked()


# -- samples ----------------------------------------------------------------------------------
def test_samples_timeline_grid_slider_and_enlarge(qtbot, thumbs, tmp_path):
    from ui.train.samples import SamplesTimeline, scan_samples

    samples = tmp_path / "samples"
    for step in (0, 20, 40):
        for i, seed in enumerate((42, 43)):
            _png(samples / f"{step:09d}" / f"{i}_{seed}.png", (step * 5, 40, 40))
    (samples / "contact_sheet.png").write_bytes(b"x")  # not a round
    found = scan_samples(samples)
    assert sorted(found) == [0, 20, 40] and all(len(v) == 2 for v in found.values())
    assert Path(found[20][1]).name == "1_43.png"

    tl = SamplesTimeline(thumbs)
    qtbot.addWidget(tl)
    tl.set_prompts(["a photo of zxq", "zxq in a forest"])
    assert tl.empty.isVisibleTo(tl)
    tl.load_folder(samples)
    assert tl.grid.rowCount() == 3 and tl.grid.columnCount() == 2
    assert tl.current_step() == 40
    assert tl.grid.horizontalHeaderItem(1).text() == "prompt 2"
    assert tl.grid.horizontalHeaderItem(1).toolTip() == "zxq in a forest"
    assert tl._focus_captions[1].text() == "2 · zxq in a forest"
    tl.slider.setValue(0)
    assert tl.current_step() == 0 and tl._focus[0].path.endswith("000000000/0_42.png")
    qtbot.waitUntil(
        lambda: tl._focus[0].pixmap() is not None and not tl._focus[0].pixmap().isNull()
    )
    tl.add_round(60, [_png(samples / "000000060" / f"{i}_{42 + i}.png") for i in range(2)])
    assert tl.current_step() == 60 and tl.grid.rowCount() == 4
    with qtbot.waitSignal(tl.image_clicked) as sig:
        tl._on_cell_clicked(1, 1)
    assert sig.args[0] == found[20][1]
    dlg = tl._dialog
    assert dlg is not None and dlg.isVisible() and dlg.image.has_image
    dlg.close()


# -- run view ---------------------------------------------------------------------------------
def test_run_view_follows_a_run(qtbot, view, tmp_path):
    out = tmp_path / "run"
    cfg = _config(out)
    view.start_run("job1", cfg, "cat")
    assert view.title.text() == "cat" and view.step_label.text() == "Step 0/100"
    assert view.pause_button.isVisibleTo(view) and not view.try_button.isVisibleTo(view)
    view.set_estimate(1500.0, 20.6)
    assert "expected ≈ 25 min 00 s in total, peak ≈ 21 GiB" in view.stats.text()
    view.on_event(JobStarted("job1", kind="train", total_steps=100))
    view.on_event(PhaseChanged("job1", phase="caching", detail="Encoding latents 3/54"))
    assert view.phase.text() == "Caching latents and captions: Encoding latents 3/54"
    view.on_event(TrainStep("other", step=5, total=100, loss=9.0))  # another job: ignored
    for s in range(1, 21):
        view.on_event(
            TrainStep(
                "job1",
                step=s,
                total=100,
                loss=1.0 / s,
                lr=1e-4,
                it_s=2.0,
                eta_s=(100 - s) / 2,
                vram_bytes=int(9.5 * 2**30),
            )
        )
    assert view.loss_chart.point_count == 20 and view.lr_chart.steps[-1] == 20
    assert view.step_label.text() == "Step 20/100" and view.progress.value() == 20
    assert "2.00 it/s" in view.stats.text() and "ETA" in view.stats.text()
    assert "VRAM 9.5" in view.stats.text()
    paths = [_png(out / "samples" / "000000020" / f"{i}_42.png") for i in range(2)]
    view.on_event(SampleReady("job1", paths=tuple(paths), step=20))
    assert view.samples.steps == [20]
    lora = out / "cat_000000025.safetensors"
    lora.write_bytes(b"0" * 4096)
    ck = out / "checkpoints" / "step_000000025"
    ck.mkdir(parents=True)
    (ck / "adapter.safetensors").write_bytes(b"0" * 10000)
    view.on_event(CheckpointSaved("job1", path=str(ck), step=25, lora_path=str(lora)))
    item = view.checkpoints.topLevelItem(0)
    assert item.text(0) == "25" and item.text(2) == "4 KiB" and item.text(3) == "10 KiB"
    view.checkpoints.setCurrentItem(item)
    with qtbot.waitSignal(view.try_requested) as sig:
        view.try_checkpoint_button.click()
    assert sig.args == [str(lora)]
    # pause → try → resume
    with qtbot.waitSignal(view.pause_requested):
        view.pause_button.click()
    paused_lora = str(out / "cat_paused.safetensors")
    view.on_event(Paused("job1", step=26, lora_path=paused_lora))
    assert view.state == "paused" and view.resume_button.isVisibleTo(view)
    assert view.try_button.isEnabled() and "Paused at step 26" in view.phase.text()
    with qtbot.waitSignal(view.try_requested) as sig:
        view.try_button.click()
    assert sig.args == [paused_lora]
    view.on_event(Resumed("job1", step=26))
    assert view.state == "running" and not view.try_button.isVisibleTo(view)
    view.on_event(JobWarning("job1", message="Resuming with changed settings"))
    assert view.banner.isVisibleTo(view)
    final = str(out / "cat.safetensors")
    view.on_event(JobFinished("job1", paths=(final,), elapsed_s=75, stats={"final_loss": 0.05}))
    assert view.state == "finished" and "Final loss 0.0500" in view.phase.text()
    assert view.try_button.text() == "Use in Generate" and view.try_button.isEnabled()
    log = "\n".join(view.log_lines)
    for want in (
        "Checkpoint at step 25",
        "Paused at step 26",
        "Resumed at step 26",
        "Warning: Resuming",
        "Finished in",
    ):
        assert want in log
    assert "Encoding latents 3/54" not in log  # per-item caching progress stays in the phase line


def test_oom_offers_resume_one_tier_down(qtbot, view, tmp_path):
    view.start_run("job2", _config(tmp_path / "r"))
    view.on_event(
        JobFailed(
            "job2",
            kind="oom",
            message="The GPU ran out of memory while training.",
            retry_hint={"preset": "12gb"},
        )
    )
    assert view.state == "failed" and view.banner.isVisibleTo(view)
    assert view.banner.action_button.text() == "Resume with the 12gb preset"
    with qtbot.waitSignal(view.resume_lower_requested) as sig:
        view.banner.action_button.click()
    assert sig.args == ["12gb"]


def test_cancel_asks_and_says_the_lora_is_kept(qtbot, view, tmp_path):
    view.start_run("job3", _config(tmp_path / "r"))
    box = view.confirm_cancel()
    assert "saves a checkpoint and the LoRA" in box.text()
    with qtbot.assertNotEmitted(view.cancel_requested):
        box.button(QMessageBox.StandardButton.No).click()
    box = view.confirm_cancel()
    with qtbot.waitSignal(view.cancel_requested):
        box.button(QMessageBox.StandardButton.Yes).click()


# -- history ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Rec:  # the fields of zitdesk.train.runs.RunRecord the view reads
    run_id: str
    name: str
    status: str
    output_dir: str
    config_path: str = ""
    dataset: str = ""
    preset: str = "16gb"
    steps_done: int = 0
    steps_total: int = 0
    final_loss: float | None = None
    lora_path: str = ""
    last_sample: str = ""
    started_at: float = 1_700_000_000.0
    ended_at: float = 0.0
    error: str = ""
    model_path: str = ""
    error_kind: str = ""
    retry_preset: str = ""


def test_history_lists_runs_and_offers_actions(qtbot, qtmodeltester, tmp_path):
    from ui.train.history import RunHistoryWidget

    lora = tmp_path / "a" / "cat.safetensors"
    lora.parent.mkdir()
    lora.write_bytes(b"x")
    cfg = tmp_path / "a" / "train_config.toml"
    cfg.write_text("version = 1\n[optim]\nsteps = 10\n", encoding="utf-8")
    recs = [
        _Rec(
            "a",
            "cat",
            "finished",
            str(tmp_path / "a"),
            str(cfg),
            "/data/cat",
            steps_done=10,
            steps_total=10,
            final_loss=0.0421,
            lora_path=str(lora),
        ),
        _Rec(
            "b",
            "dog",
            "interrupted",
            str(tmp_path / "b"),
            "",
            "/data/dog",
            steps_done=3,
            steps_total=10,
        ),
    ]
    w = RunHistoryWidget()
    qtbot.addWidget(w)
    w.refresh(recs)
    qtmodeltester.check(w.model)
    m = w.model
    assert m.rowCount() == 2 and not w.empty.isVisibleTo(w)
    texts = [m.index(0, c).data() for c in range(m.columnCount())]
    assert texts[:6] == ["cat", "finished", "cat", "16gb", "10/10", "0.0421"]
    assert texts[7] == "cat.safetensors"
    w.table.selectRow(0)
    assert not w.resume_button.isEnabled() and w.library_button.isEnabled()
    with qtbot.waitSignal(w.library_requested) as sig:
        w.library_button.click()
    assert sig.args == [str(lora)]
    dlg = w.view_config()
    assert "steps = 10" in dlg.text.toPlainText()
    dlg.close()
    w.table.selectRow(1)
    assert w.resume_button.isEnabled() and not w.config_button.isEnabled()
    assert m.index(1, 1).data().startswith("interrupted")
    with qtbot.waitSignal(w.resume_requested) as sig:
        w.resume_button.click()
    assert sig.args[0].run_id == "b"
    # a run that ran out of memory: resumed one tier down
    oom = _Rec(
        "c",
        "big",
        "failed",
        str(tmp_path / "c"),
        steps_done=4,
        steps_total=10,
        error="The GPU ran out of memory",
        error_kind="oom",
        retry_preset="12gb",
    )
    w.refresh([*recs, oom])
    w.table.selectRow(2)
    assert m.index(2, 1).data() == "failed: out of memory"
    assert w.resume_button.text() == "Resume with 12gb"
    w.refresh([])
    assert w.empty.isVisibleTo(w) and not w.table.isVisibleTo(w)


# -- notifier and window --------------------------------------------------------------------------
def test_notifier_falls_back_to_the_status_bar(qtbot):
    from PySide6.QtWidgets import QMainWindow

    from ui.train.notify import Notifier

    win = QMainWindow()
    qtbot.addWidget(win)
    n = Notifier(win, use_tray=False)
    with qtbot.waitSignal(n.notified):
        notice = n.notify("Training finished", "cat is done", "info")
    assert notice.via == "status" and n.messages == [notice]
    assert "cat is done" in win.statusBar().currentMessage()


def test_tray_message_body_is_escaped_where_the_daemon_reads_markup():
    from ui.train.notify import tray_body

    name = "“<b>cat</b> & <a href='x'>dog</a>” is done"
    assert (
        tray_body(name, "linux")
        == "“&lt;b&gt;cat&lt;/b&gt; &amp; &lt;a href='x'&gt;dog&lt;/a&gt;” is done"
    )
    assert tray_body(name, "freebsd14") == tray_body(name, "linux")
    assert tray_body(name, "win32") == name and tray_body(name, "darwin") == name


def test_train_tab_is_built_on_first_show(make_window, settings):
    win = make_window(settings)
    assert not win.train_tab.created
    win.switch_workspace(2)
    win.train_tab.widget()
    assert win.train_tab.created
    ov = win.train.overview
    assert ov.new_button.text().startswith("New training run")
    titles = [
        ov.cards[k][0].findChildren(QLabel)[0].text() for k in ("model", "dataset", "adapter")
    ]
    assert "10–30 captioned images" in titles[1] and "training adapter" in titles[2]
    assert ov.tiers.count() >= 12  # four tiers × (label, what, time)


def test_window_import_leaves_pyqtgraph_out():
    code = (
        "import os, sys; os.environ['QT_QPA_PLATFORM']='offscreen'; import ui.main_window; "
        "print('pyqtgraph' in sys.modules, 'ui.train.workspace' in sys.modules)"
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert res.stdout.split() == ["False", "False"]


class _OomTrainer:
    """Engine double for training: the first job runs out of memory after two steps (leaving a
    run record and its config, as the trainer does), later jobs finish."""

    def __init__(self, fail_first: bool = True) -> None:
        self.requests: list = []
        self.fail_first = fail_first

    def run(self, spec, emit, cancel) -> None:
        from zitdesk.engine.events import JobFinished, JobStarted
        from zitdesk.train.runs import RunLog

        self.requests.append(spec)
        cfg, job = spec.config, spec.job_id
        out = Path(cfg.save.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        cfg.write(out / "train_config.toml")
        runlog = RunLog.start(spec, out, cfg.model.path)
        emit(JobStarted(job, kind="train", total_steps=cfg.optim.steps))
        for s in (1, 2):
            emit(TrainStep(job, step=s, total=cfg.optim.steps, loss=0.3, lr=1e-4, it_s=1.0))
        if self.fail_first and len(self.requests) == 1:
            runlog.update(status="failed", steps_done=2, error_kind="oom", retry_preset="12gb")
            emit(
                JobFailed(
                    job,
                    kind="oom",
                    message="The GPU ran out of memory while training.",
                    retry_hint={"preset": "12gb"},
                )
            )
            return
        runlog.update(status="finished", steps_done=cfg.optim.steps)
        emit(JobFinished(job, paths=(), stats={"final_loss": 0.2}))

    def shutdown(self) -> None:
        pass


def test_oom_run_resumes_one_tier_down_and_notifies(qtbot, make_window, settings, tmp_path):
    from zitdesk.train.presets import apply_preset
    from zitdesk.train.runs import runs_root

    engine = _OomTrainer()
    win = make_window(settings, engine=engine)
    train = win.train
    cfg = apply_preset(_config(runs_root() / "big"), "16gb").with_changes(
        model={"path": "/models/fake"}, data={"folder": str(tmp_path)}
    )
    job = train.start_config(cfg)
    qtbot.waitUntil(lambda: job.state == "failed", timeout=30_000)
    view = train.run_view
    assert view.banner.action_button.text() == "Resume with the 12gb preset"
    assert win.notifier.messages[-1].title == "Training failed"
    assert "out of memory" in win.notifier.messages[-1].text
    view.banner.action_button.click()
    qtbot.waitUntil(
        lambda: len(engine.requests) == 2 and train.live_job.state == "finished", timeout=30_000
    )
    again = engine.requests[1]
    assert again.resume and again.config.memory.preset == "12gb"
    assert again.config.save.output_dir == cfg.save.output_dir
    assert win.notifier.messages[-1].title == "Training finished"
    assert train.overview.history.model.records[0].status == "finished"


def test_start_offers_unfinished_runs(qtbot, make_window, settings, tmp_path):
    """A run.json that says "running" with no live writer: the banner at start, Resume runs it."""
    from zitdesk.train.runs import RunRecord, runs_root, write_run

    out = runs_root() / "crashed"
    cfg = _config(out).with_changes(model={"path": "/models/fake"}, data={"folder": str(tmp_path)})
    out.mkdir(parents=True)
    cfg.write(out / "train_config.toml")
    write_run(
        RunRecord(
            run_id="crashed-1",
            name="crashed",
            status="running",
            output_dir=str(out),
            steps_done=25,
            steps_total=100,
            pid=0,
        )
    )
    engine = _OomTrainer(fail_first=False)
    win = make_window(settings, engine=engine)
    banner = win.recovery_banner
    qtbot.waitUntil(lambda: banner.isVisibleTo(win), timeout=30_000)
    assert "“crashed”" in banner.label.text() and "25/100" in banner.label.text()
    assert not win.train_tab.created  # the banner did not build the Train tab
    banner.action_button.click()
    assert win.tabs.currentWidget() is win.train_tab and not banner.isVisibleTo(win)
    qtbot.waitUntil(lambda: win.train.live_job.state == "finished", timeout=30_000)
    spec = engine.requests[0]
    assert spec.resume and spec.config.save.output_dir == str(out)


def test_names_in_the_run_view_and_banners_are_plain_text(qtbot, view, tmp_path):
    from ui.train.workspace import TrainOverview

    name = "<b>bold</b> & <i>x</i>"
    view.start_run("j9", _config(tmp_path / "r"), name)
    view.on_event(JobFailed("j9", kind="error", message=f"Training of {name} failed."))
    assert view.title.text() == name and view.title.textFormat() == Qt.TextFormat.PlainText
    assert view.banner.label.textFormat() == Qt.TextFormat.PlainText
    ov = TrainOverview()
    qtbot.addWidget(ov)
    ov.set_recovery([_Rec("z", name, "running", str(tmp_path / "z"), steps_done=1, steps_total=9)])
    assert name in ov.recovery.label.text()
    assert ov.recovery.label.textFormat() == Qt.TextFormat.PlainText


def test_a_history_run_shows_its_samples_and_checkpoints(qtbot, view, tmp_path):
    out = tmp_path / "cat"
    cfg = _config(out).with_changes(save={"name": "cat"})
    out.mkdir()
    cfg.write(out / "train_config.toml")
    for step in (20, 40):
        for i in range(2):
            _png(out / "samples" / f"{step:09d}" / f"{i}_{42 + i}.png")
    (out / "cat.safetensors").write_bytes(b"x" * 2048)
    from zitdesk.train.losses import write_losses

    write_losses(out, [(s, 1.0 / s) for s in range(1, 41)])  # what the trainer keeps
    rec = _Rec(
        "cat-1",
        "cat",
        "cancelled",
        str(out),
        steps_done=40,
        steps_total=100,
        final_loss=0.25,
        lora_path=str(out / "cat.safetensors"),
    )
    view.show_record(rec)
    assert view.title.text() == "cat" and view.step_label.text() == "Step 40/100"
    assert view.samples.steps == [20, 40] and view.samples.prompts[0] == "a photo of zxq"
    assert view.resume_button.text() == "Continue run" and view.resume_button.isVisibleTo(view)
    assert view.try_button.text() == "Use in Generate" and view.try_button.isEnabled()
    assert "final loss 0.2500" in view.stats.text()
    assert view.loss_chart.point_count == 40 and view.loss_chart.steps[-1] == 40


class _ScriptedTrainer:
    """Engine double for training: emits a run's events in order (a pause, then resumed) and
    ends as ``end`` says."""

    def __init__(self, end: str) -> None:
        self.end = end

    def run(self, spec, emit, cancel) -> None:
        from zitdesk.engine.events import JobCancelled

        job, total = spec.job_id, spec.config.optim.steps
        emit(JobStarted(job, kind="train", total_steps=total))
        emit(PhaseChanged(job, phase="loading", detail=""))
        emit(PhaseChanged(job, phase="caching", detail="Encoding 1/2"))
        emit(TrainStep(job, step=1, total=total, loss=0.3, lr=1e-4, it_s=1.0))
        emit(Paused(job, step=1))
        emit(Resumed(job, step=1))
        emit(TrainStep(job, step=2, total=total, loss=0.3, lr=1e-4, it_s=1.0))
        if self.end == "finished":
            emit(JobFinished(job, paths=(), stats={"final_loss": 0.2}))
        elif self.end == "cancelled":
            emit(JobCancelled(job, paths=("/tmp/x.safetensors",)))
        else:
            emit(JobFailed(job, kind="error", message="The dataset folder is empty."))

    def shutdown(self) -> None:
        pass


@pytest.mark.parametrize(
    ("end", "last"),
    [
        ("finished", "Training finished: “my-cat” is done."),
        ("cancelled", "Training “my-cat” stopped; its LoRA so far is saved."),
        ("failed", "Training failed: “my-cat”: The dataset folder is empty."),
    ],
)
def test_status_bar_says_each_stage_of_the_run(qtbot, make_window, settings, tmp_path, end, last):
    from zitdesk.train.runs import runs_root

    win = make_window(settings, engine=_ScriptedTrainer(end))
    said: list[str] = []
    win.train.status_message.connect(said.append)
    cfg = _config(runs_root() / "my-cat").with_changes(
        model={"path": "/models/fake"}, data={"folder": str(tmp_path)}, save={"name": "my-cat"}
    )
    job = win.train.start_config(cfg)
    qtbot.waitUntil(lambda: job.state == end, timeout=30_000)
    assert said == [
        "Preparing “my-cat”: loading the model and caching the dataset…",
        "Training “my-cat”…",
        "Training “my-cat” is paused at step 1; Resume continues it.",
        "Training “my-cat”…",
        last,
    ]
    assert win.status_label.text() == last
