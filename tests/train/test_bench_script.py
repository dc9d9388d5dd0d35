"""bench/train_gpu.py stays runnable: its --tiny CPU check produces a complete table."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "train_gpu.py"


def test_bench_tiny(monkeypatch, capsys):
    monkeypatch.setattr(
        sys,
        "argv",
        [str(BENCH), "--tiny", "--steps", "2", "--warmup", "1", "--variants", "baseline,24gb,16gb"],
    )
    runpy.run_path(str(BENCH), run_name="__main__")
    out = capsys.readouterr().out
    table = [line for line in out.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + 3, out
    assert "failed" not in out
    assert "zitdesk 16gb preset" in out and "fp8" in out


def test_bench_plan_only(monkeypatch, capsys):
    """--plan-only prints the planner's choice for every tier of the full-size model, no GPU."""
    monkeypatch.setattr(sys, "argv", [str(BENCH), "--plan-only"])
    runpy.run_path(str(BENCH), run_name="__main__")
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "GiB" not in line]
    assert len(rows) == 2 * 5, out
    whole = next(r for r in rows if r.startswith("| 24gb (whole card)"))
    assert "checkpointing 0/34 blocks" in whole
    assert all("does not fit" not in r for r in rows)
    assert any("streamed from RAM" in r for r in rows if r.startswith("| 8gb-stream"))
