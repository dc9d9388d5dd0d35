"""zitdesk.cli.events: the one printer of job events for generate and train (torch-free)."""

from __future__ import annotations

import json

import pytest

from zitdesk.cli.common import EXIT_CANCELLED, EXIT_ERROR
from zitdesk.cli.events import EventPrinter, event_json, job_exit_code
from zitdesk.engine.cancel import CancelToken
from zitdesk.engine.events import (
    ImageReady,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobWarning,
    PhaseChanged,
)


def _describe(printer: EventPrinter, ev) -> None:
    if isinstance(ev, ImageReady):
        printer.result(ev.path)
    elif isinstance(ev, PhaseChanged):
        printer.info(f"[{ev.phase}] {ev.detail}")


def test_streams_warnings_info_results_and_the_terminal_event(capsys):
    printer = EventPrinter(_describe, 4, bar=False)
    printer(PhaseChanged("j", phase="loading", detail="model"))
    printer(JobWarning("j", message="low memory"))
    printer(ImageReady("j", path="/out/a.png"))
    done = JobFinished("j", paths=("/out/a.png",))
    printer(done)
    out, err = capsys.readouterr()
    assert out == "/out/a.png\n"  # results on stdout
    assert err == "[loading] model\nwarning: low memory\n"  # the rest on stderr
    assert printer.terminal is done and printer.exit_code() is None


def test_quiet_and_json_lines(capsys):
    printer = EventPrinter(_describe, 4, bar=False, info=False, warnings=False, json_lines=True)
    printer(JobWarning("j", message="low memory"))
    printer(ImageReady("j", path="/out/a.png"))
    printer(JobFailed("j", message="no", traceback="Traceback (most recent call last): …"))
    out, err = capsys.readouterr()
    lines = [json.loads(x) for x in out.splitlines()]
    assert [x["event"] for x in lines] == ["JobWarning", "ImageReady", "JobFailed"]
    assert "traceback" not in lines[2] and err == ""


@pytest.mark.parametrize(
    "ev, code, text",
    [
        (
            JobFailed("j", message="The model\nfolder is empty."),
            EXIT_ERROR,
            "zitdesk: The model folder is empty.\n",
        ),
        (JobCancelled("j"), EXIT_CANCELLED, "zitdesk: cancelled.\n"),
        (
            None,
            EXIT_ERROR,
            "zitdesk: the job ended without a result; rerun with ZITDESK_DEBUG=1 to see why.\n",
        ),
    ],
)
def test_exit_codes_of_terminal_events(capsys, monkeypatch, ev, code, text):
    monkeypatch.delenv("ZITDESK_DEBUG", raising=False)
    assert job_exit_code(ev) == code
    assert capsys.readouterr().err == text


def test_ctrl_c_cancels_the_job_and_closes_the_bar(capsys):
    cancel = CancelToken()
    printer = EventPrinter(_describe, 10, bar=True)

    def job() -> None:
        printer.progress(3, "image 1/1")
        assert printer.bar is not None and printer.bar.n == 3
        raise KeyboardInterrupt

    assert printer.run(job, cancel, interrupted="stopped; resume with --resume.") == EXIT_CANCELLED
    assert cancel.cancelled and printer.bar is None
    err = capsys.readouterr().err
    assert err.endswith(
        "\nzitdesk: stopped; resume with --resume.\n"
    )  # on its own line, after the bar


def test_event_json_is_one_line():
    line = event_json(JobFinished("j", paths=("a", "b"), stats={"steps": 2}))
    assert "\n" not in line and json.loads(line)["event"] == "JobFinished"
