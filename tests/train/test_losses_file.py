"""The loss curve is kept in the run folder (losses.csv) and survives a cancel + resume."""

from __future__ import annotations

from trainhelp import make_config, run_job

from zitdesk.engine.cancel import CancelToken
from zitdesk.engine.events import JobCancelled, JobFinished
from zitdesk.train.events import CheckpointSaved
from zitdesk.train.losses import losses_path, read_losses, write_losses


def test_a_run_writes_its_losses_and_a_resume_keeps_the_earlier_ones(
    train_model, dataset, tmp_path
):
    whole = make_config(train_model, dataset, tmp_path / "whole", save={"every": 2})
    rec = run_job(whole)
    assert isinstance(rec.last, JobFinished), rec.last
    expected = [(int(s), float(v)) for s, v in rec.last.stats["losses"]]
    assert [s for s, _ in expected] == [1, 2, 3, 4, 5, 6]
    assert read_losses(tmp_path / "whole") == expected

    cfg = make_config(train_model, dataset, tmp_path / "split", save={"every": 2})
    token = CancelToken()

    def stop_at_two(ev) -> None:
        if isinstance(ev, CheckpointSaved) and ev.step == 2:
            token.cancel()

    first = run_job(cfg, cancel=token, on_event=stop_at_two)
    assert isinstance(first.last, JobCancelled), first.last
    assert [s for s, _ in read_losses(tmp_path / "split")] == [1, 2]
    again = run_job(cfg, resume=True)
    assert isinstance(again.last, JobFinished), again.last
    # the resumed run's file holds the whole curve, equal to the uninterrupted run's
    assert read_losses(tmp_path / "split") == expected


def test_reading_skips_damaged_lines_and_a_missing_file(tmp_path):
    assert read_losses(tmp_path / "nothing") == []
    write_losses(tmp_path, [(1, 0.5), (2, 0.25)])
    with open(losses_path(tmp_path), "a", encoding="utf-8") as fh:
        fh.write("garbage\n3,nan\n-1,0.1\n4,0.125\n5,0.1")  # a torn last line still parses
    assert read_losses(tmp_path) == [(1, 0.5), (2, 0.25), (4, 0.125), (5, 0.1)]
