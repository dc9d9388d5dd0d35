"""Prompt editor: the Qwen3 token counter with its budget and truncation warning."""

from __future__ import annotations

import pytest

from ui.widgets.prompt_editor import PromptEditorWidget


@pytest.fixture(scope="module")
def tokenizer():
    tok = pytest.importorskip("zitdesk.models.tokenizer")
    return tok.default_tokenizer()


def test_counter_shows_budget_and_warns_before_truncation(qtbot, tokenizer):
    w = PromptEditorWidget(budget=512)
    qtbot.addWidget(w)
    w.set_tokenizer(tokenizer)
    with qtbot.waitSignal(w.count_changed, timeout=30_000) as blocker:
        w.set_text("a cat on a sofa")
    count = blocker.args[0]
    assert count.available == 504 and not count.truncated
    assert w.counter.text() == f"Tokens: {count.prompt_tokens} / 504"
    assert not w.warning.isVisibleTo(w)
    with qtbot.waitSignal(w.count_changed, timeout=30_000) as blocker:
        w.set_text("a very detailed cat, " * 95)  # near the budget: warned before any cut
    count = blocker.args[0]
    assert not count.truncated and count.warning
    assert w.warning.isVisibleTo(w) and w.counter.objectName() == "warning"
    with qtbot.waitSignal(w.count_changed, timeout=30_000) as blocker:
        w.set_text("a very detailed cat, " * 200)
    count = blocker.args[0]
    assert count.truncated and f"{count.overflow} over" in w.counter.text()
    assert "cut off" in w.warning.text() and w.counter.objectName() == "error"


def test_counter_unavailable_is_said_plainly(qtbot):
    w = PromptEditorWidget()
    qtbot.addWidget(w)

    def broken():
        raise OSError("no tokenizer files")

    w.load_tokenizer(broken)
    qtbot.waitUntil(lambda: "unavailable" in w.counter.text(), timeout=30_000)
    w.set_text("still editable")
    assert w.text() == "still editable"
