"""Caption results into the caption store, for callers without an open dataset session (the
CLI, scripts, tests); the app applies them through its session instead.

:func:`caption_and_apply` reads the captions through :class:`~zitdesk.dataset.store.Dataset`
at job start (they go into ``request.expected``), runs the job, and when it ends (finished or
cancelled: what was captioned is kept) writes the results with :func:`apply_results`: a snapshot
of every caption, one journal entry (one undo step, the app's Undo after a restart), atomic
writes; a caption that is no longer the text read at start (edited meanwhile, here or in another
program) is left as it is and named.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from zitdesk.caption.request import CaptionReady, CaptionRequest
from zitdesk.engine.cancel import CancelToken
from zitdesk.engine.events import TERMINAL_EVENTS, EngineEvent, JobCancelled, JobFinished
from zitdesk.engine.protocol import Emit

Change = tuple[str, str | None, str | None]


@dataclass
class Outcome:
    end: EngineEvent | None = None  # the job's terminal event
    ready: list[CaptionReady] = field(default_factory=list)
    written: list[str] = field(default_factory=list)  # caption files written
    skipped: list[str] = field(default_factory=list)  # sentences: left alone, and why


def job_label(req: CaptionRequest, n: int) -> str:
    what = "tagger" if req.model_kind == "tagger" else "model"
    return f"Auto-caption {n} image(s) with the {what} {Path(req.model_path).name}"


def apply_results(
    folder: str | Path, changes: list[Change], label: str
) -> tuple[list[str], list[str]]:
    """Write ``(name, expected, new)`` changes as one undo step (snapshot first, journal, atomic
    writes); a caption that is no longer ``expected`` is left alone. Returns
    ``(caption file names written, skipped sentences)``."""
    from zitdesk.dataset.history import Entry, History
    from zitdesk.dataset.store import Dataset

    ds = Dataset.open(folder)  # the captions as they are on disk now
    hist = History(ds.meta_dir)
    hist.load()
    snap = hist.snapshot(ds.captions(), label)  # queued; written only if something changes
    applied, skipped = ds.apply_changes(changes)
    if not applied:
        return [], skipped
    done = set(applied)
    hist.record_do(Entry.new(label, [c for c in changes if c[0] in done], snap))
    hist.flush()  # the journal before the caption files (as the app does)
    rep = ds.flush()
    skipped += [f"{c.name}: changed on disk meanwhile; kept as it is." for c in rep.conflicts]
    skipped += rep.errors
    return rep.saved, skipped


def with_expected(req: CaptionRequest) -> CaptionRequest:
    """``req`` with the captions of the store at this moment as ``expected``."""
    from zitdesk.dataset.store import Dataset

    ds = Dataset.open(req.folder)
    return replace(req, expected=tuple((it.name, it.caption) for it in ds.items))


def caption_and_apply(
    run: Callable[[CaptionRequest, Emit, CancelToken], None],
    req: CaptionRequest,
    emit: Emit,
    cancel: CancelToken,
    write: bool = True,
) -> Outcome:
    """Run the caption job through ``run`` (``StudioEngine.run``) and apply its results (see the
    module doc); ``write=False`` only reports. Every event is passed on to ``emit``."""
    out = Outcome()
    if not req.expected:
        req = with_expected(req)

    def collect(ev: EngineEvent) -> None:
        if isinstance(ev, CaptionReady):
            out.ready.append(ev)
        elif isinstance(ev, TERMINAL_EVENTS):
            out.end = ev
        emit(ev)

    run(req, collect, cancel)
    changes = [(r.name, r.old, r.new) for r in out.ready if r.new != r.old]
    if write and changes and isinstance(out.end, JobFinished | JobCancelled):
        out.written, out.skipped = apply_results(req.folder, changes, job_label(req, len(changes)))
    return out
