"""The caption job: run on the engine thread through :class:`zitdesk.engine.studio.StudioEngine`.

``CaptionEngine.run(request, emit, cancel)`` follows the engine protocol (``run`` never raises):
``JobStarted(kind="caption")`` → ``PhaseChanged`` (loading) → one
:class:`~zitdesk.caption.request.CaptionReady` per image → ``JobFinished`` / ``JobCancelled`` /
``JobFailed``. The loaded tagger or describer is kept for the next caption job with the same
model (a preview, then the whole set) and dropped before any other kind of job
(:meth:`release`), so captioning never holds GPU memory while generation or training runs.

The job only *reports*: it never writes a caption and never imports the caption store (the
engine layer sits below :mod:`zitdesk.dataset`). The caller applies the results as one undo
step: the app through its open dataset session (``ui/datasets/caption_dialog.py``), the CLI and
scripts through :func:`zitdesk.caption.store.caption_and_apply`. Each ``CaptionReady`` carries
the caption as the caller saw it at job start (``request.expected``), so a caption edited
meanwhile is recognised and left alone.
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
TAGGER_GPU_BATCH = (
    8  # images per onnxruntime call on the CUDA provider (CPU: 1, cancel stays quick)
)


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


def folder_captions(folder: Path) -> dict[str, str | None]:
    """Image name → caption text (None: no ``.txt``) of a folder, read directly."""
    from zitdesk.captions import decode_caption
    from zitdesk.folder import IMAGE_EXTS

    if not folder.is_dir():
        raise RequestError(f"The dataset folder {folder} does not exist.")
    out: dict[str, str | None] = {}
    for p in sorted(folder.iterdir(), key=lambda q: q.name):
        if p.name.startswith(".") or p.suffix.lower() not in IMAGE_EXTS or not p.is_file():
            continue
        try:
            out[p.name] = decode_caption(p.with_suffix(".txt").read_bytes())[0]
        except FileNotFoundError:
            out[p.name] = None
    return out


def select_images(req: CaptionRequest) -> tuple[list[str], dict[str, str | None]]:
    """The image names the job captions (in order) and their captions at job start:
    ``req.expected`` when given (the caller's view), else the folder's ``.txt`` files."""
    start = dict(req.expected) if req.expected else folder_captions(Path(req.folder))
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

    @staticmethod
    def _tagger_options(req: CaptionRequest) -> Any:
        from zitdesk.caption.tagger import TaggerOptions

        return TaggerOptions(
            req.general_threshold,
            req.character_threshold,
            tuple(req.exclude),
            req.ratings,
            req.underscores_to_spaces,
            req.max_tags,
        )

    def _tag_many(self, model: Any, req: CaptionRequest, images: list) -> list[str]:
        opts = self._tagger_options(req)
        return [", ".join(n for n, _ in model.pick(row, opts)) for row in model.scores(images)]

    def _caption_one(self, model: Any, req: CaptionRequest, image: Any, cancel: CancelToken) -> str:
        if req.model_kind == "tagger":
            return ", ".join(model.tags(image, self._tagger_options(req)))
        from zitdesk.caption.describer import DescriberOptions

        return model.describe(
            image,
            DescriberOptions(req.template, req.trigger, req.prompt, req.max_tokens, req.quant),
            stop=lambda: cancel.cancelled,
        )

    def _texts(self, model: Any, req: CaptionRequest, names: list[str], cancel, emit: Emit):
        """``(index, name, text)`` per readable image, in order; stops at a cancel. A tagger on
        the CUDA provider runs :data:`TAGGER_GPU_BATCH` images per call."""
        from PIL import Image

        on_gpu = self._loaded is not None and self._loaded.on_gpu
        batch = TAGGER_GPU_BATCH if req.model_kind == "tagger" and on_gpu else 1
        for first in range(0, len(names), batch):
            if cancel.cancelled:
                return
            images = []
            for i in range(first, min(first + batch, len(names))):
                try:
                    with Image.open(Path(req.folder) / names[i]) as im:
                        im.load()
                        images.append((i, im.copy() if batch > 1 else im))
                except OSError as exc:
                    msg = f"{names[i]} cannot be read ({exc}); skipped."
                    emit(JobWarning(req.job_id, message=msg))
            if not images:
                continue
            if batch > 1:
                texts = self._tag_many(model, req, [im for _, im in images])
            else:
                texts = [self._caption_one(model, req, images[0][1], cancel)]
            if cancel.cancelled and req.model_kind != "tagger":
                return  # stopped inside this image's generation: the partial text is dropped
            for (i, _), text in zip(images, texts, strict=True):
                yield i, names[i], text

    def run(self, req: CaptionRequest, emit: Emit, cancel: CancelToken) -> None:
        job = req.job_id
        t0 = time.perf_counter()
        results: list[CaptionReady] = []
        try:
            req.validate()
            names, start = select_images(req)
            emit(JobStarted(job, kind="caption", total_steps=len(names), detail=req.model_kind))
            if not names:
                emit(JobFinished(job, elapsed_s=0.0, stats={"captioned": 0}))
                return
            model = self._model(req, emit)
            emit(PhaseChanged(job, phase="captioning", detail=f"{len(names)} image(s)"))
            t1 = time.perf_counter()
            for i, name, text in self._texts(model, req, names, cancel, emit):
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
            stats = {
                "captioned": len(results),
                "images_per_s": round(len(results) / work_s, 3) if work_s > 0 else 0.0,
            }
            if cancel.cancelled:
                emit(JobCancelled(job))
            else:
                emit(JobFinished(job, elapsed_s=time.perf_counter() - t0, stats=stats))
        except Exception as exc:  # noqa: BLE001 - run never raises
            emit(self._failure(job, exc))

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


__all__ = ["CaptionEngine", "folder_captions", "select_images"]
