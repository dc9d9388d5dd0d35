"""Crash log: offered once on the next start; exception hooks write to it."""

from __future__ import annotations

import faulthandler
import sys
import threading

import pytest

from zitdesk import crashlog


@pytest.fixture
def crash_file(tmp_path):
    path = tmp_path / "logs" / "crash.log"
    yield path
    crashlog.uninstall()
    faulthandler.enable(sys.__stderr__)


def test_previous_crash_is_offered_once(crash_file):
    crash_file.parent.mkdir(parents=True)
    crash_file.write_text(
        "Fatal Python error: Segmentation fault\n\nCurrent thread 0x1:\n  File x\n"
    )
    crashlog.install(crash_file)
    report = crashlog.pending_report()
    assert report is not None and "Segmentation fault" in report.summary
    assert report.path.exists() and report.path != crash_file
    crashlog.uninstall()
    assert not crash_file.exists()  # nothing new was written: clean exit removes it
    crashlog.install(crash_file)
    assert crashlog.pending_report() is None


def test_unhandled_exceptions_are_logged_and_reported(crash_file):
    seen = []
    crashlog.install(crash_file)
    crashlog.set_exception_callback(lambda summary, tb: seen.append(summary))
    try:
        raise ValueError("bad value")
    except ValueError:
        sys.excepthook(*sys.exc_info())

    def boom():
        raise KeyError("in a thread")

    t = threading.Thread(target=boom, name="worker-x")
    t.start()
    t.join()
    text = crash_file.read_text()
    assert "ValueError: bad value" in text and "thread worker-x" in text
    assert seen == ["ValueError: bad value", "KeyError: 'in a thread'"]
    crashlog.uninstall()
    assert crash_file.exists()  # kept: it has content, so it is offered next time
    assert crashlog.take_previous_report(crash_file) is not None
