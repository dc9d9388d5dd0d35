"""The visible queue in Generate (list, remove, reorder) and workspace-scoped status messages."""

from __future__ import annotations

from fakes import FakeEngine


def _queue_four(qtbot, win, eng):
    ws = win.generate
    prompts = ["first fox", "second owl", "third cat", "fourth dog"]
    jobs = []
    for p in prompts:
        ws.form.prompt.set_text(p)
        jobs.append(ws.generate())
    qtbot.waitUntil(eng.blocking.is_set, timeout=30_000)
    return jobs


def test_queue_lists_every_job_and_reorders_and_removes(qtbot, make_window, settings, tmp_path):
    eng = FakeEngine(["block", "finish"], image_dir=tmp_path)
    win = make_window(settings, eng)
    jobs = _queue_four(qtbot, win, eng)
    panel = win.generate.queue
    qtbot.waitUntil(lambda: len(panel.texts()) == 4, timeout=30_000)
    texts = panel.texts()
    assert texts[0].startswith("▶ Generate 1 × 256×256: first fox")
    assert [t.split(": ", 1)[1] for t in texts[1:]] == ["second owl", "third cat", "fourth dog"]
    assert "3 waiting" in panel.title.text()
    # the running job cannot be moved or removed
    panel.select(jobs[0].job_id)
    assert not panel.remove_button.isEnabled() and not panel.up_button.isEnabled()
    # "fourth dog" up twice: it runs right after the current job
    panel.select(jobs[3].job_id)
    assert not panel.down_button.isEnabled()
    panel.up_button.click()
    panel.up_button.click()
    assert [j.job_id for j in win.controller.pending] == [
        jobs[3].job_id,
        jobs[1].job_id,
        jobs[2].job_id,
    ]
    assert panel.selected_id() == jobs[3].job_id and not panel.up_button.isEnabled()
    # remove "second owl"
    panel.select(jobs[1].job_id)
    with qtbot.waitSignal(win.controller.job_ended, timeout=30_000):
        panel.remove_button.click()
    assert jobs[1].state == "cancelled"
    assert [t.split(": ", 1)[1] for t in panel.texts()[1:]] == ["fourth dog", "third cat"]
    # the rest runs in the new order
    win.controller.cancel()
    qtbot.waitUntil(lambda: not win.controller.busy, timeout=30_000)
    assert [r.prompt for r in eng.requests] == ["first fox", "fourth dog", "third cat"]
    assert panel.texts() == ["Nothing is running or waiting."]


def test_controller_move_clamps_and_ignores_unknown(qtbot, make_window, settings, tmp_path):
    eng = FakeEngine(["block", "finish"], image_dir=tmp_path)
    win = make_window(settings, eng)
    jobs = _queue_four(qtbot, win, eng)
    c = win.controller
    assert not c.move("no-such-job", 0)
    assert not c.move(jobs[0].job_id, 2)  # the running job is not in the queue
    with qtbot.waitSignal(c.queue_changed, timeout=30_000):
        assert c.move(jobs[1].job_id, 99)
    assert [j.job_id for j in c.pending] == [jobs[2].job_id, jobs[3].job_id, jobs[1].job_id]
    assert c.move(jobs[1].job_id, -5)
    assert [j.job_id for j in c.pending] == [jobs[1].job_id, jobs[2].job_id, jobs[3].job_id]
    c.cancel_all()
    qtbot.waitUntil(lambda: not c.busy, timeout=30_000)


def test_status_bar_shows_the_messages_of_the_workspace_in_front(
    qtbot, make_window, settings, tmp_path
):
    eng = FakeEngine("block", image_dir=tmp_path)
    win = make_window(settings, eng)
    win.generate.form.prompt.set_text("a fox")
    win.generate.generate()
    qtbot.waitUntil(eng.blocking.is_set, timeout=30_000)
    win.switch_workspace(2)  # Train
    shown = win.status_label.text()
    with qtbot.waitSignal(win.controller.job_ended, timeout=30_000):
        win.controller.cancel()
    assert "Cancelled" not in win.status_label.text()
    assert win.status_label.text() == shown
    win.switch_workspace(0)
    assert win.status_label.text().startswith("Cancelled")


def test_queue_shows_five_jobs_whole_at_1366x768(qtbot, make_window, settings, tmp_path):
    """One line a job: the running one and four waiting fit the right column of a 1366×768
    window without scrolling, and the queue's buttons stay inside the window."""
    eng = FakeEngine(["block", "finish"], image_dir=tmp_path)
    win = make_window(settings, eng, show=True)
    win.resize(1366, 768)
    _queue_four(qtbot, win, eng)
    win.generate.form.prompt.set_text("fifth heron " * 12)
    win.generate.generate()
    panel = win.generate.queue
    qtbot.waitUntil(lambda: len(panel.texts()) == 5, timeout=30_000)
    qtbot.waitUntil(lambda: panel.list.viewport().height() > 0, timeout=30_000)
    view = panel.list.viewport().rect()
    for i in range(5):
        rect = panel.list.visualItemRect(panel.list.item(i))
        assert 0 <= rect.top() and rect.bottom() <= view.bottom(), (i, rect, view)  # whole rows
    assert "4. Generate 1 × 256×256: fifth heron" in panel.list.item(4).toolTip()  # whole line
    assert not panel.list.verticalScrollBar().isVisible()
    bottom = panel.remove_button.mapTo(win, panel.remove_button.rect().bottomRight())
    assert win.rect().contains(bottom) and panel.remove_button.isVisible()
    win.controller.cancel_all()
    qtbot.waitUntil(lambda: not win.controller.busy, timeout=30_000)
