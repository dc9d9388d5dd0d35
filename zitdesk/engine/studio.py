"""The one engine the engine thread holds: generation and training behind one ``run``.

:class:`StudioEngine` dispatches by request type — a :class:`GenerateRequest` goes to the
:class:`~zitdesk.engine.generate.GenerationEngine`, a :class:`~zitdesk.train.config.TrainSpec`
to the :class:`~zitdesk.train.trainer.Trainer` — and lends the loaded pipeline between them:

* generation holds the pipeline between jobs (``GenerationEngine._loaded``);
* a training job on the same model files (same device, plain GPU/CPU placement, the dtype the
  trainer wants) *borrows* it: generation's LoRA stack is removed and generation forgets the
  pipeline while the trainer owns it (no second copy is loaded). Otherwise generation frees its
  pipeline first and the trainer loads its own;
* when the job ends the trainer removes its PEFT adapters (user LoRA and training adapter),
  turns compiled blocks back to eager, puts the text encoder and VAE back where they were and
  *returns* the pipeline, which generation keeps using. When the base weights were changed
  (adapter merged, fp8/NF4) or another attention backend was set, or the job failed, nothing is
  returned and generation reloads cleanly.

A data-parallel :class:`~zitdesk.train.config.TrainSpec` (two or more GPUs, issue #19) runs as
child processes (:func:`zitdesk.train.parallel_job.run_data_parallel`); generation frees its
pipeline first. A spec for exactly one card (``gpus=(N,)``) trains here on ``cuda:N``.

``run`` never raises; one job at a time, on the calling thread (the engine thread).
"""

from __future__ import annotations

import logging
from typing import Any

from zitdesk.engine.cancel import CancelToken
from zitdesk.engine.events import JobFailed, JobStarted
from zitdesk.engine.protocol import Emit
from zitdesk.engine.requests import GenerateRequest

log = logging.getLogger(__name__)


class StudioEngine:
    """Generation + training with one shared pipeline (see the module docstring)."""

    def __init__(self, model_path: str | None = None, device: str | None = None) -> None:
        from zitdesk.engine.generate import GenerationEngine

        self.generation = GenerationEngine(model_path=model_path, device=device)
        self._device = device
        self._trainer: Any = None
        self._captioner: Any = None  # zitdesk.caption.job.CaptionEngine, built on first use

    @property
    def trainer(self):
        if self._trainer is None:
            from zitdesk.train.trainer import Trainer

            self._trainer = Trainer(device=self._device, models=self.generation)
        return self._trainer

    def run(self, request: Any, emit: Emit, cancel: CancelToken) -> None:
        from zitdesk.caption.request import CaptionRequest
        from zitdesk.train.config import TrainSpec

        if isinstance(request, CaptionRequest):
            if self._captioner is None:
                from zitdesk.caption.job import CaptionEngine

                self._captioner = CaptionEngine(free_gpu=self.generation.shutdown)
            self._captioner.run(request, emit, cancel)
            return
        if self._captioner is not None:
            self._captioner.release()  # a caption model never holds memory another job needs
        if isinstance(request, GenerateRequest):
            self.generation.run(request, emit, cancel)
        elif type(request).__name__ == "EnhanceRequest":  # zitdesk.engine.enhance (prompt writer)
            from zitdesk.engine.enhance import run_enhance

            run_enhance(self.generation, request, emit, cancel)
        elif isinstance(request, TrainSpec) and request.data_parallel:
            from zitdesk.train.parallel_job import run_data_parallel

            self.generation.shutdown()  # the child processes need the cards' memory
            run_data_parallel(request, emit, cancel)
        elif isinstance(request, TrainSpec):
            if len(request.gpus) == 1:  # one named card: trains here, on cuda:N
                from zitdesk.engine.lanes import on_cards

                request = on_cards(request, request.gpus)
            self.trainer.run(request, emit, cancel)
        else:
            job = str(getattr(request, "job_id", "") or "job")
            emit(JobStarted(job, kind="unknown"))
            emit(
                JobFailed(
                    job,
                    kind="request",
                    message=(
                        f"The engine cannot run a {type(request).__name__}; send a generation request, "
                        "a training spec or a caption request."
                    ),
                )
            )

    def shutdown(self) -> None:
        self.generation.shutdown()
        if self._captioner is not None:
            self._captioner.release()
        if self._trainer is not None:
            self._trainer.shutdown()
