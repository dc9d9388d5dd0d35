"""Auto-captioning with a tiny real ONNX tagger (WD v3 layout): options, modes, the caption store
(one undo step, journal, snapshot), the no-overwrite rule, cancel, and the CLI."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from tests.support.caption_models import make_colour_dataset, make_tiny_tagger
from zitdesk.caption.compose import compose
from zitdesk.caption.request import CaptionReady, CaptionRequest
from zitdesk.caption.tagger import TaggerOptions, load_tagger, tagger_problem
from zitdesk.dataset.history import History
from zitdesk.dataset.store import Dataset
from zitdesk.engine.cancel import CancelToken
from zitdesk.engine.events import JobCancelled, JobFinished, JobStarted
from zitdesk.errors import ModelError

RED = (250, 10, 10)
BLUE = (10, 10, 250)


@pytest.fixture(scope="module")
def tagger_dir(tmp_path_factory) -> Path:
    return make_tiny_tagger(tmp_path_factory.mktemp("wd") / "wd-tiny-tagger-v3")


@pytest.fixture
def dataset(tmp_path) -> Path:
    d = make_colour_dataset(
        tmp_path / "ds", {"a_red.png": RED, "b_blue.png": BLUE, "c_red.png": RED}
    )
    (d / "a_red.txt").write_text("my cat", encoding="utf-8")
    return d


def run_job(req: CaptionRequest, cancel_after: int | None = None, engine=None, write=True):
    """The job on the engine (StudioEngine.run), its results through the caption store."""
    from zitdesk.caption.store import caption_and_apply
    from zitdesk.engine.studio import StudioEngine

    engine = engine or StudioEngine(device="cpu")
    token = CancelToken()
    events: list = []

    def emit(ev):
        events.append(ev)
        if cancel_after is not None and isinstance(ev, CaptionReady):
            if sum(isinstance(e, CaptionReady) for e in events) >= cancel_after:
                token.cancel()

    out = caption_and_apply(engine.run, req, emit, token, write=write)
    return events, out


def test_tagger_layout_and_options(tagger_dir):
    from PIL import Image

    t = load_tagger(tagger_dir, device="cpu")
    assert (t.size, t.input_name, t.provider) == (448, "input", "CPUExecutionProvider")
    red = Image.new("RGB", (120, 120), RED)
    # confidence order, underscores to spaces (the kaomoji keeps its own), character threshold
    assert t.tags(red, TaggerOptions()) == [
        "red theme",
        "hatsune miku",
        "simple background",
        "no humans",
        "^_^",
    ]
    opts = TaggerOptions(
        ratings=True, exclude=("simple background", "No_Humans"), underscores_to_spaces=False
    )
    assert t.tags(red, opts) == ["general", "red_theme", "hatsune_miku", "^_^"]
    assert t.tags(red, TaggerOptions(general_threshold=0.6, max_tags=2)) == [
        "red theme",
        "hatsune miku",
    ]
    # RGBA on a white square: a transparent image reads as white (every colour tag on)
    clear = Image.new("RGBA", (40, 80), (0, 0, 0, 0))
    assert {"red theme", "green theme", "blue theme"} <= set(t.tags(clear, TaggerOptions()))
    batch = t.scores([red, clear])
    assert batch.shape == (2, 13) and float(batch.min()) >= 0.0


def test_tagger_folder_problems(tmp_path, tagger_dir):
    assert tagger_problem(tagger_dir) == ""
    assert "does not exist" in tagger_problem(tmp_path / "nope")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "model.onnx").write_bytes(b"x")
    msg = tagger_problem(tmp_path / "half")
    assert "is not a WD tagger: selected_tags.csv is missing" in msg and "\n" not in msg
    (tmp_path / "half" / "selected_tags.csv").write_text("tag_id,name,category,count\n1,a,0,1\n")
    with pytest.raises(ModelError, match="not a usable ONNX model"):
        load_tagger(tmp_path / "half")
    # a CSV that does not belong to the model
    bad = tmp_path / "mixed"
    bad.mkdir()
    (bad / "model.onnx").write_bytes((tagger_dir / "model.onnx").read_bytes())
    (bad / "selected_tags.csv").write_text("tag_id,name,category,count\n1,a,0,1\n")
    from PIL import Image

    with pytest.raises(ModelError, match="do not belong together"):
        load_tagger(bad).tags(Image.new("RGB", (8, 8)), TaggerOptions())


def test_compose_modes():
    assert compose("replace", "old, tags", "red theme") == "red theme"
    assert compose("append", "my cat, Red Theme", "red theme, no humans") == (
        "my cat, Red Theme, no humans"
    )
    assert compose("prepend", "A cat sleeps.", "red theme, cat") == "red theme, cat, A cat sleeps."
    assert compose("append", None, "a, b") == "a, b"
    assert compose("append", "tags", "A photo, of a cat.", tags=False) == "tags, A photo, of a cat."
    assert compose("append", "A cat.", "More text.", tags=False) == "A cat. More text."


def test_caption_job_modes_undo_and_journal(tagger_dir, dataset):
    req = CaptionRequest(str(dataset), "tagger", str(tagger_dir), mode="append")
    events, out = run_job(req)
    assert isinstance(events[0], JobStarted) and events[0].kind == "caption"
    ready = [e for e in events if isinstance(e, CaptionReady)]
    assert [r.name for r in ready] == ["a_red.png", "b_blue.png", "c_red.png"]
    assert ready[-1].index == 2 and ready[-1].total == 3 and ready[-1].eta_s == 0.0
    end = events[-1]
    assert isinstance(end, JobFinished) and end.stats["captioned"] == 3 and len(out.written) == 3
    ds = Dataset.open(dataset)
    caps = {it.name: it.caption for it in ds.items}
    assert caps["a_red.png"].startswith("my cat, red theme, hatsune miku")
    assert caps["b_blue.png"].startswith("blue theme, hatsune miku")
    # one undo step in the journal, with a snapshot of the captions before it
    replay = History(ds.meta_dir).load()
    assert len(replay.done) == 1 and len(replay.done[0].changes) == 3
    entry = replay.done[0]
    assert entry.snapshot and History(ds.meta_dir).read_snapshot(entry.snapshot) == {
        "a_red.png": "my cat",
        "b_blue.png": None,
        "c_red.png": None,
    }
    # undoing the one step restores every caption
    applied, skipped = ds.apply_changes([(n, new, old) for n, old, new in entry.changes])
    assert len(applied) == 3 and not skipped
    ds.flush()
    assert (dataset / "a_red.txt").read_text(encoding="utf-8") == "my cat"
    assert not (dataset / "b_blue.txt").exists()

    # prepend, only uncaptioned: a_red keeps its caption
    req = CaptionRequest(
        str(dataset), "tagger", str(tagger_dir), mode="prepend", only_uncaptioned=True
    )
    events, _ = run_job(req)
    assert [e.name for e in events if isinstance(e, CaptionReady)] == ["b_blue.png", "c_red.png"]
    assert (dataset / "a_red.txt").read_text(encoding="utf-8") == "my cat"


def test_never_overwrites_a_caption_edited_since_the_job_started(tagger_dir, dataset):
    # the caller read "my cat" at job start; the user saved "edited by hand" meanwhile
    (dataset / "a_red.txt").write_text("edited by hand", encoding="utf-8")
    req = CaptionRequest(
        str(dataset),
        "tagger",
        str(tagger_dir),
        expected=(("a_red.png", "my cat"), ("b_blue.png", None), ("c_red.png", None)),
    )
    events, out = run_job(req)
    assert any("a_red.txt was changed since" in w for w in out.skipped)
    assert (dataset / "a_red.txt").read_text(encoding="utf-8") == "edited by hand"
    assert (dataset / "b_blue.txt").read_text(encoding="utf-8").startswith("blue theme")
    assert sorted(out.written) == ["b_blue.txt", "c_red.txt"]


def test_cancel_keeps_the_finished_captions(tagger_dir, dataset):
    req = CaptionRequest(str(dataset), "tagger", str(tagger_dir))
    events, out = run_job(req, cancel_after=1)
    assert isinstance(events[-1], JobCancelled) and out.end is events[-1]
    assert out.written == ["a_red.txt"]
    assert not (dataset / "b_blue.txt").exists()
    assert len(History(Dataset.open(dataset).meta_dir).load().done) == 1


def test_preview_reports_without_writing_and_reuses_the_model(tagger_dir, dataset):
    from zitdesk.engine.studio import StudioEngine

    engine = StudioEngine(device="cpu")
    req = CaptionRequest(str(dataset), "tagger", str(tagger_dir), limit=2)
    events, _ = run_job(req, engine=engine, write=False)
    assert len([e for e in events if isinstance(e, CaptionReady)]) == 2
    assert (dataset / "a_red.txt").read_text(encoding="utf-8") == "my cat"
    assert not (dataset / "b_blue.txt").exists()
    loaded = engine._captioner._loaded.model
    first = [e.generated for e in events if isinstance(e, CaptionReady)]
    engine._captioner._loaded.on_gpu = True  # as on the CUDA provider: batches of images
    again, _ = run_job(replace(req, limit=0), engine=engine, write=False)
    assert engine._captioner._loaded.model is loaded  # kept between caption jobs
    batched = [e for e in again if isinstance(e, CaptionReady)]
    assert [e.index for e in batched] == [0, 1, 2] and [e.generated for e in batched[:2]] == first
    engine.shutdown()
    assert engine._captioner._loaded is None


def test_bad_model_path_fails_with_one_sentence(tmp_path, dataset):
    events, out = run_job(CaptionRequest(str(dataset), "tagger", str(tmp_path / "missing")))
    end = events[-1]
    assert end.kind == "model" and "does not exist" in end.message and "\n" not in end.message
    assert out.written == [] and not (dataset / "b_blue.txt").exists()


def test_cli_caption_json(tagger_dir, dataset, capsys):
    from zitdesk.cli import main

    rc = main(
        ["dataset", "caption", str(dataset), "--tagger", str(tagger_dir), "--json", "--ratings"]
    )
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["status"] == "finished" and out["captioned"] == 3
    assert out["images"][1]["new"].startswith("general, blue theme")
    assert len(out["written"]) == 3 and out["stats"]["images_per_s"] > 0
    rc = main(["dataset", "caption", str(dataset), "--tagger", str(dataset), "--json"])
    err = capsys.readouterr()
    assert rc == 1 and "is not a WD tagger" in err.err
    assert json.loads(err.out)["status"] == "failed"


def test_cli_missing_folder_and_text_output(tagger_dir, dataset, tmp_path, capsys):
    from zitdesk.cli import main

    assert main(["dataset", "caption", str(tmp_path / "none"), "--tagger", str(tagger_dir)]) == 1
    assert capsys.readouterr().err.strip() == (
        f"zitdesk: The dataset folder {tmp_path / 'none'} does not exist."
    )
    rc = main(["dataset", "caption", str(dataset), "--tagger", str(tagger_dir), "--limit", "1"])
    out = capsys.readouterr().out
    assert rc == 0 and out.startswith("[1/1] a_red.png: red theme, hatsune miku")
    assert "Captioned 1 image(s); wrote 1 caption file(s)." in out
