"""The caption job: run on the engine thread through :class:`zitdesk.engine.studio.StudioEngine`.

``CaptionEngine.run(request, emit, cancel)`` follows the engine protocol (``run`` never raises):
``JobStarted(kind="caption")`` → ``PhaseChanged`` (loading) → one
:class:`~zitdesk.caption.request.CaptionReady` per image → ``JobFinished`` / ``JobCancelled`` /
``JobFailed``. The loaded tagger or describer is kept for the next caption job with the same
model (a preview, then the whole set) and dropped before any other kind of job
(:meth:`release`), so captioning never holds GPU memory while generation or training runs.

With ``request.apply`` the job writes the captions itself through the caption store
(:class:`~zitdesk.dataset.store.Dataset` + :class:`~zitdesk.dataset.history.History`): one
journal entry (one undo step) with a snapshot of every caption first, atomic writes, and a
caption changed since the job started (compared with the text read then) is left as it is and
named in a ``JobWarning``. A cancelled job keeps (applies) the captions finished before it.
"""

from __future__ import annotations

import gc
import logging
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zitdesk.caption.compose import compose
from zitdesk.caption.request import CaptionReady, CaptionRequest
from zitdesk.engine.cancel import CancelToken
from zitdesk.engine.events import (
    JobCancelled,
    JobFailed,
    JobFinished,
    JobStarted,
    JobWarning,
    PhaseChanged,
)
from zitdesk.engine.protocol import Emit
from zitdesk.errors import ModelError, RequestError, ZitdeskError, user_message

log = logging.getLogger(__name__)


def _is_oom(exc: BaseException) -> bool:
    torch = sys.modules.get("torch")  # the tagger path never imports torch
    if torch is not None and isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return "out of memory" in str(exc).lower()


def _free_memory() -> None:
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


@dataclass
class _Loaded:
    key: tuple
    model: Any
    on_gpu: bool


def apply_results(
    folder: str | Path, changes: list[tuple[str, str | None, str | None]], label: str
) -> tuple[list[str], list[str]]:
    """Write ``(name, expected, new)`` caption changes as one undo step of the dataset's journal
    (snapshot first, atomic writes); a caption that is no longer ``expected`` is left alone.
    Returns ``(caption files written, skipped sentences)``."""
    from zitdesk.dataset.history import Entry, History
    from zitdesk.dataset.store import Dataset

    ds = Dataset.open(folder)  # the captions as they are on disk now
    hist = History(ds.meta_dir)
    hist.load()
    snap = hist.snapshot(ds.captions(), label)
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


def select_images(req: CaptionRequest) -> tuple[list[str], dict[str, str | None]]:
    """The image names the job captions (in order) and their captions at job start.

    With ``req.expected`` (the app: its open dataset's captions) the folder is not opened here:
    opening removes stale temp files, which could be the app's own caption write in flight."""
    if req.expected:
        start = dict(req.expected)
        names = [n for n in (req.names or tuple(start)) if n in start]
    else:
        from zitdesk.dataset.store import Dataset

        ds = Dataset.open(req.folder)
        start = {it.name: it.caption for it in ds.items}
        names = [n for n in (req.names or tuple(start)) if n in start]
    if req.only_uncaptioned:
        names = [n for n in names if not (start.get(n) or "").strip()]
    if req.limit:
        names = names[: req.limit]
    return names, {n: start.get(n) for n in names}


class CaptionEngine:
    """Runs :class:`CaptionRequest` jobs (see the module doc)."""

    def __init__(self, free_gpu: Callable[[], None] | None = None) -> None:
        self._loaded: _Loaded | None = None
        self._free_gpu = free_gpu  # the studio frees generation's pipeline before a VLM loads

    def release(self) -> None:
        """Drop the loaded model (before another kind of job, or at shutdown)."""
        if self._loaded is None:
            return
        on_gpu, self._loaded = self._loaded.on_gpu, None
        if on_gpu:
            _free_memory()

    shutdown = release

    def _model(self, req: CaptionRequest, emit: Emit) -> Any:
        key = (req.model_kind, str(Path(req.model_path).resolve()), req.quant, req.device)
        if self._loaded is not None and self._loaded.key == key:
            return self._loaded.model
        self.release()
        emit(PhaseChanged(req.job_id, phase="loading", detail=Path(req.model_path).name))
        if req.model_kind == "tagger":
            from zitdesk.caption.tagger import load_tagger

            model: Any = load_tagger(req.model_path, req.device)
            on_gpu = model.provider.startswith("CUDA")
        else:
            from zitdesk.caption.describer import DescriberOptions, load_describer

            if self._free_gpu is not None and req.device != "cpu":
                self._free_gpu()
            model = load_describer(
                req.model_path, DescriberOptions(quant=req.quant, device=req.device)
            )
            on_gpu = model.device.startswith("cuda")
        self._loaded = _Loaded(key, model, on_gpu)
        return model

    def _caption_one(self, model: Any, req: CaptionRequest, image: Any) -> str:
        if req.model_kind == "tagger":
            from zitdesk.caption.tagger import TaggerOptions

            opts = TaggerOptions(
                req.general_threshold,
                req.character_threshold,
                tuple(req.exclude),
                req.ratings,
                req.underscores_to_spaces,
                req.max_tags,
            )
            return ", ".join(model.tags(image, opts))
        from zitdesk.caption.describer import DescriberOptions

        return model.describe(
            image,
            DescriberOptions(req.template, req.trigger, req.prompt, req.max_tokens, req.quant),
        )

    def run(self, req: CaptionRequest, emit: Emit, cancel: CancelToken) -> None:
        job = req.job_id
        t0 = time.perf_counter()
        results: list[CaptionReady] = []
        try:
            req.validate()
            names, start = select_images(req)
            emit(JobStarted(job, kind="caption", total_steps=len(names), detail=req.model_kind))
            if not names:
                emit(JobFinished(job, elapsed_s=0.0, stats={"captioned": 0, "written": 0}))
                return
            model = self._model(req, emit)
            emit(PhaseChanged(job, phase="captioning", detail=f"{len(names)} image(s)"))
            t1 = time.perf_counter()
            from PIL import Image

            for i, name in enumerate(names):
                if cancel.cancelled:
                    break
                try:
                    with Image.open(Path(req.folder) / name) as im:
                        im.load()
                        text = self._caption_one(model, req, im)
                except OSError as exc:
                    emit(JobWarning(job, message=f"{name} cannot be read ({exc}); skipped."))
                    continue
                if not text.strip():
                    emit(
                        JobWarning(
                            job, message=f"The model gave no text for {name}; left as it is."
                        )
                    )
                    continue
                old = start[name]
                new = compose(req.mode, old, text, tags=req.model_kind == "tagger")
                ev = CaptionReady(
                    job, name, i, len(names), old, new, text, time.perf_counter() - t1
                )
                results.append(ev)
                emit(ev)
            work_s = time.perf_counter() - t1
            paths, skipped = self._apply(req, results)
            for s in skipped[:20]:
                emit(JobWarning(job, message=s))
            stats = {
                "captioned": len(results),
                "written": len(paths),
                "skipped": len(skipped),
                "images_per_s": round(len(results) / work_s, 3) if work_s > 0 else 0.0,
            }
            if cancel.cancelled:
                emit(JobCancelled(job, paths=tuple(paths)))
            else:
                emit(
                    JobFinished(
                        job, paths=tuple(paths), elapsed_s=time.perf_counter() - t0, stats=stats
                    )
                )
        except Exception as exc:  # noqa: BLE001 - run never raises
            emit(self._failure(job, exc))

    def _apply(
        self, req: CaptionRequest, results: list[CaptionReady]
    ) -> tuple[list[str], list[str]]:
        if not req.apply:
            return [], []
        changes = [(r.name, r.old, r.new) for r in results if r.new != r.old]
        if not changes:
            return [], []
        what = "tagger" if req.model_kind == "tagger" else "model"
        label = f"Auto-caption {len(changes)} image(s) with the {what} {Path(req.model_path).name}"
        saved, skipped = apply_results(req.folder, changes, label)
        return [str(Path(req.folder) / n) for n in saved], skipped

    def _failure(self, job: str, exc: Exception) -> JobFailed:
        tb = traceback.format_exc()
        if _is_oom(exc):
            self.release()
            return JobFailed(
                job,
                kind="oom",
                message="The GPU ran out of memory while captioning; try 4-bit or 8-bit loading.",
                traceback=tb,
            )
        if isinstance(exc, ModelError):
            kind = "model"
        elif isinstance(exc, RequestError):
            kind = "request"
        else:
            kind = "error"
            if not isinstance(exc, ZitdeskError | OSError):
                log.error("caption job failed: %s", tb)
        return JobFailed(job, kind=kind, message=user_message(exc), traceback=tb)


__all__ = ["CaptionEngine", "apply_results", "select_images"]
