"""The 512-token prompt budget is defined once (zitdesk.models.tokenizer.DEFAULT_BUDGET)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from zitdesk.models.tokenizer import DEFAULT_BUDGET

ROOT = Path(__file__).resolve().parents[2]


def test_every_user_of_the_budget_takes_the_one_definition():
    from zitdesk.engine.requests import TOKEN_BUDGET
    from zitdesk.train.core import StepRunner

    assert TOKEN_BUDGET == DEFAULT_BUDGET == 512
    assert inspect.signature(StepRunner.configure).parameters["caption_tokens"].default == 512
    text = (ROOT / "ui/widgets/prompt_editor.py").read_text(encoding="utf-8")
    assert "budget: int = DEFAULT_BUDGET" in text


def test_no_second_literal_budget_in_the_code():
    pattern = re.compile(r"(BUDGET|budget|caption_tokens)\s*(:\s*int\s*)?=\s*512\b")
    found = [
        f"{p.relative_to(ROOT)}: {line.strip()}"
        for base in ("zitdesk", "ui")
        for p in (ROOT / base).rglob("*.py")
        for line in p.read_text(encoding="utf-8").splitlines()
        if pattern.search(line)
    ]
    assert found == ["zitdesk/models/tokenizer.py: DEFAULT_BUDGET = 512"]
