"""Images made during a training job: sample rounds and "try" generations while paused.

:class:`RenderMixin` (a part of the job, over :class:`~zitdesk.train.runstate.RunState`):
``_sample`` renders the configured sample prompts through the Generate path (training adapter off)
and updates the contact sheet; ``_serve_try`` renders one interjected ``GenerateRequest`` with the
LoRA as of this step under its own job id and never raises.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Any

from zitdesk.engine.cancel import Cancelled, CancelToken
from zitdesk.engine.events import (
    EngineEvent,
    ImageReady,
    JobCancelled,
    JobFinished,
    JobStarted,
    JobWarning,
    PhaseChanged,
    StepProgress,
)
from zitdesk.errors import RequestError
from zitdesk.train import adapters as ad
from zitdesk.train.checkpoint import (
    restore_rng,
    rng_state,
)
from zitdesk.train.events import SampleReady
from zitdesk.train.failures import free_memory, try_failure
from zitdesk.train.runstate import RunState

log = logging.getLogger(__name__)


class RenderMixin(RunState):
    """Sample rounds and paused "try" images of the job."""

    def _sample(self, step: int) -> None:
        import torch

        from zitdesk.train.samples import contact_sheet, render_samples

        self.reporter.flush()
        cfg = self.cfg
        t_sample = time.perf_counter()
        self._phase("sampling", f"Step {step}: {len(cfg.sample.prompts)} prompts")
        tr = self.pipe.transformer
        ad.set_active(tr, self.prepared.sample_scales)
        self.runner.set_lora_input_cast(True)
        tr.eval()
        if self.cuda:
            self.pipe.vae.to(self.device)
        stance = (
            torch.compiler.set_stance("force_eager")
            if self.runner.compiled
            else contextlib.nullcontext()
        )
        try:
            embeds = {p: self.text[k] for p, k in self.cache.prompt_keys.items()}
            with stance:
                paths = render_samples(
                    self.pipe,
                    cfg,
                    step,
                    embeds,
                    self.text[self.cache.empty_key],
                    self.samples_dir,
                    cfg.save.name,
                )
        finally:
            ad.set_active(tr, self.prepared.train_scales)
            self.runner.set_lora_input_cast(not self.runner.autocast)
            tr.train()
            if self.cuda and cfg.memory.offload_vae:
                self.pipe.vae.to("cpu")
            free_memory()
        sheet = contact_sheet(self.samples_dir)
        self.sampled.add(step)
        if paths:
            self.last_sample = str(paths[0])
        self.sample_s = time.perf_counter() - t_sample
        self.emit(
            SampleReady(
                self.job,
                paths=tuple(str(p) for p in paths),
                contact_sheet=str(sheet or ""),
                step=step,
            )
        )
        self._phase("training", "")

    # -- "try it" while paused ----------------------------------------------------------------
    def _serve_try(self, request: Any, token: CancelToken | None) -> None:
        """Render one interjected :class:`GenerateRequest` with the LoRA as of this step (training
        adapter off, as for samples) and emit its events under its own job id. Never raises:
        a failed try is that job's ``JobFailed``, the training job goes on."""
        from zitdesk.engine.generate import StopBeforeDecode, render_image
        from zitdesk.engine.output import save_image
        from zitdesk.engine.requests import GenerateRequest

        job = getattr(request, "job_id", "try")
        token = token or CancelToken()
        t0 = time.perf_counter()
        paths: list[str] = []
        emit = self.emit
        try:
            emit(
                JobStarted(
                    job,
                    kind="try",
                    total_steps=getattr(request, "steps", 0) * getattr(request, "count", 1),
                    detail=f"step {self.step}",
                )
            )
        except Exception:  # noqa: BLE001
            log.exception("try event delivery failed")
        rng = rng_state()
        tr = self.pipe.transformer
        try:
            if not isinstance(request, GenerateRequest):
                raise RequestError("Only image generations can run while training is paused.")
            request.validate()
            weight = self._try_weight(request)
            import torch

            scales = {**self.prepared.sample_scales, ad.USER: weight}
            ad.set_active(tr, scales)
            self.runner.set_lora_input_cast(True)
            tr.eval()
            if self.cuda:
                self.pipe.vae.to(self.device)
            emit(PhaseChanged(job, phase="encoding", detail="Encoding the prompt"))
            pos, neg = self._encode_try(request)
            stance = (
                torch.compiler.set_stance("force_eager")
                if self.runner.compiled
                else contextlib.nullcontext()
            )
            for index in range(request.count):
                token.raise_if_cancelled()

                def on_step(p, i, t, kwargs, index=index):
                    if token.cancelled or self.cancel.cancelled:
                        raise StopBeforeDecode()
                    emit(
                        StepProgress(
                            job,
                            step=i + 1,
                            total=request.steps,
                            image_index=index,
                            image_count=request.count,
                            elapsed_s=time.perf_counter() - t0,
                        )
                    )
                    return {}

                emit(
                    PhaseChanged(
                        job, phase="denoising", detail=f"Image {index + 1} of {request.count}"
                    )
                )
                try:
                    with stance:
                        image = render_image(self.pipe, request, index, pos, neg, on_step)
                except StopBeforeDecode:
                    raise Cancelled() from None
                seed = request.seed + index
                path = save_image(
                    image,
                    request,
                    seed,
                    index,
                    model_label=f"{self.source_label} + {self.cfg.save.name} step {self.step}",
                )
                paths.append(str(path))
                emit(
                    ImageReady(
                        job,
                        path=str(path),
                        seed=seed,
                        image_index=index,
                        width=image.width,
                        height=image.height,
                    )
                )
            emit(
                JobFinished(
                    job,
                    paths=tuple(paths),
                    elapsed_s=time.perf_counter() - t0,
                    stats={
                        "device": self.device,
                        "training_step": self.step,
                        "lora_weight": weight,
                    },
                )
            )
        except Cancelled:
            self._emit_safely(JobCancelled(job, paths=tuple(paths)))
        except Exception as exc:  # noqa: BLE001 - a failed try must never end the training job
            log.exception("try generation failed")
            self._emit_safely(try_failure(job, exc))
        finally:
            try:
                ad.set_active(tr, self.prepared.train_scales)
                self.runner.set_lora_input_cast(not self.runner.autocast)
                tr.train()
                if self.cuda and self.cfg.memory.offload_vae:
                    self.pipe.vae.to("cpu")
            finally:
                restore_rng(rng["torch"], rng["json"])
                if self.cuda:  # no gc.collect here: it costs ~0.5 s of the resume
                    import torch

                    torch.cuda.empty_cache()

    def _emit_safely(self, ev: EngineEvent) -> None:
        try:
            self.emit(ev)
        except Exception:  # noqa: BLE001
            log.exception("try event delivery failed")

    def _try_weight(self, request: Any) -> float:
        """The request's weight for this run's LoRA (0 when it is not in the stack); other LoRAs
        of the stack are skipped with a warning (the paused model carries only this one)."""
        ours = {self._norm(p) for p in (self.last_lora,) if p}
        weight = 0.0
        skipped = []
        for lo in request.loras:
            if not lo.enabled:
                continue
            p = Path(lo.path)
            if self._norm(lo.path) in ours:
                weight = float(lo.weight)
            else:
                skipped.append(p.name)
        if skipped:
            self.emit(
                JobWarning(
                    request.job_id,
                    message=(
                        "While training is paused only the LoRA being trained is used; skipped "
                        + ", ".join(skipped)
                        + "."
                    ),
                )
            )
        return weight

    @staticmethod
    def _norm(path: str) -> str:
        import os

        return os.path.normcase(str(Path(path).expanduser().resolve()))

    def _encode_try(self, request: Any):
        """Prompt embeddings for a try: cached ones for the sample prompts, else the parked text
        encoder (on the GPU when it fits beside the paused training state, else on the CPU)."""
        import torch

        from zitdesk.engine.requests import TOKEN_BUDGET

        dev = self.pipe.transformer.device
        dtype = self.pipe.transformer.dtype
        cfg_on = request.guidance > 0
        key = self.cache.prompt_keys.get(request.prompt)
        if key is not None and not cfg_on:
            return [self.text[key].to(dev, dtype)], None
        te = self.text_encoder
        if te is None:
            raise RequestError("The text encoder is not available in this training job.")
        where = "cpu"
        if self.cuda:
            need = sum(p.numel() * p.element_size() for p in te.parameters())
            free, _ = torch.cuda.mem_get_info(torch.device(self.device))
            if free > need + (1 << 30):
                where = self.device
        # The CPU tensors stay as they are and are put back afterwards: no 8 GB copy back.
        params = [(p, p.data) for p in te.parameters()]
        buffers = [(m, k, b) for m in te.modules() for k, b in m._buffers.items() if b is not None]
        te.to(where)
        self.pipe.text_encoder = te
        try:
            with torch.no_grad():
                pos, neg = self.pipe.encode_prompt(
                    prompt=request.prompt,
                    device=torch.device(where),
                    do_classifier_free_guidance=cfg_on,
                    negative_prompt=request.negative_prompt or "",
                    max_sequence_length=TOKEN_BUDGET,
                )
        finally:
            self.pipe.text_encoder = None
            if where != "cpu":
                for p, data in params:
                    p.data = data
                for m, k, b in buffers:
                    m._buffers[k] = b
        pos = [p.to(dev, dtype) for p in pos]
        neg = [n.to(dev, dtype) for n in neg] if cfg_on and neg else None
        return pos, neg
