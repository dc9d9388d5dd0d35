"""Text-to-image generation with Z-Image Turbo: the engine behind the Generate tab and the CLI.

:class:`GenerationEngine` runs on the one engine thread that owns the GPU. It keeps the loaded
pipeline between jobs (reloading only when the model or memory mode changes), applies the LoRA
stack, encodes the prompt once per job, and emits events for every step. Cancel is checked in the
step callback; raising there skips the final VAE decode, so a cancelled image costs nothing more.
A cancel that arrives after the last step's check (while the VAE decodes: ≈10 s at 1024² on a
CPU) is seen by a pre-hook on every VAE module, so the decode stops at its next layer too.
"""

from __future__ import annotations

import gc
import logging
import os
import time
import traceback
from dataclasses import dataclass
from typing import Any

from zitdesk.engine.cancel import Cancelled, CancelToken
from zitdesk.engine.events import (
    ImageReady,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobStarted,
    JobWarning,
    LoraReport,
    PhaseChanged,
    StepProgress,
)
from zitdesk.engine.memory import NEXT_TIER, apply_memory_mode, execution_device
from zitdesk.engine.output import dit_file, model_hash, output_name, save_image  # noqa: F401 - re-exported
from zitdesk.engine.protocol import Emit
from zitdesk.engine.requests import TOKEN_BUDGET, GenerateRequest, MemoryMode, check_device
from zitdesk.engine.speed import (
    AsyncPreview,
    EmbeddingCache,
    ImageWriter,
    SpeedPlan,
    compile_dit,
    is_compiled,
    plan_speed,
    set_fast_attention,
    to_fp8_linears,
    uncompile,
)
from zitdesk.errors import LoraError, ModelError, RequestError, ZitdeskError
from zitdesk.offline import enforce_offline

log = logging.getLogger(__name__)


def default_device() -> str:
    """``ZITDESK_DEVICE`` if set, else ``cuda`` when a usable GPU exists, else ``cpu``."""
    forced = os.environ.get("ZITDESK_DEVICE")
    if forced:
        return forced
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def is_oom(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def free_memory() -> None:
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001 - never let cleanup mask the real error
        pass


@dataclass
class _Loaded:
    key: tuple
    pipe: Any
    source: Any
    device: str
    mode: MemoryMode
    preview_coef: Any = None
    lora_key: tuple = ()
    plan: SpeedPlan = SpeedPlan()


class StopBeforeDecode(Exception):  # noqa: N818
    """Raised from the step callback to leave the pipeline without decoding."""


_StopBeforeDecode = StopBeforeDecode


class _CancellableDecode:
    """While active, every VAE module checks ``cancel`` before it runs (the decode stops early).

    The step callback only runs between denoising steps; a cancel pressed after the last one
    would otherwise wait for the whole decode.
    """

    def __init__(self, vae: Any, cancel: CancelToken) -> None:
        self.vae = vae
        self.cancel = cancel
        self._handles: list[Any] = []

    def _check(self, _module, _args) -> None:
        if self.cancel.cancelled:
            raise _StopBeforeDecode()

    def __enter__(self) -> _CancellableDecode:
        modules = getattr(self.vae, "modules", None)
        if modules is not None:
            for m in modules():
                if hasattr(m, "register_forward_pre_hook"):
                    self._handles.append(m.register_forward_pre_hook(self._check))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()


def source_key(source) -> tuple:
    """What identifies a model's files (two sources with equal keys load the same weights)."""
    return (str(source.root), tuple(sorted((k, str(v)) for k, v in source.files.items())))


class GenerationEngine:
    """Owns the pipeline; ``run`` executes one :class:`GenerateRequest` and never raises."""

    def __init__(self, model_path: str | None = None, device: str | None = None) -> None:
        self.model_path = model_path
        self._device = device
        self._home_device = device  # the device of jobs that name none (GenerateRequest.device)
        self._loaded: _Loaded | None = None
        self._lent: _Loaded | None = None  # lent to a training job (StudioEngine)
        self._embed_cache = EmbeddingCache()  # prompt embeddings, LRU (re-rolls never re-encode)
        self._writer = ImageWriter()  # PNG encode + fsync off the engine thread
        self._notes_shown: tuple[str, ...] = ()
        self._speed_off = False  # set when the fast path failed here: eager until restart
        self._trying: SpeedPlan | None = None  # the plan of the pipeline in use
        self.preview_min_interval_s = 0.25

    # -- public ---------------------------------------------------------------------------
    @property
    def device(self) -> str:
        if self._device is None:
            self._device = default_device()
        return self._device

    def run(self, request: GenerateRequest, emit: Emit, cancel: CancelToken) -> None:
        job = request.job_id
        t0 = time.perf_counter()
        paths: list[str] = []
        emit(JobStarted(job, kind="generate", total_steps=_steps_of(request) * request.count))
        try:
            request.validate()
            enforce_offline()
            # a job that names its card runs there (the pipeline reloads on a new device: the
            # loaded key holds the device); one that names none runs on the engine's own
            want = check_device(request.device)
            self._device = self._home_device if want == "auto" else want
            try:
                self._generate(request, emit, cancel, t0, paths)
            except Exception as exc:
                if paths or not self._fast_path_failed(exc):
                    raise
                # A compiled or fp8 path that fails on this machine (no C compiler for Triton, a
                # kernel the card lacks): say so once, then make the job the plain way.
                log.warning("fast path failed, retrying eager bf16", exc_info=True)
                self._speed_off = True
                self._loaded = None
                free_memory()
                emit(
                    JobWarning(
                        job,
                        message=(
                            f"The fast path (compiled / fp8) failed on this machine "
                            f"({type(exc).__name__}); images are made without it until restart."
                        ),
                    )
                )
                self._generate(request, emit, cancel, t0, paths)
        except Cancelled:
            emit(JobCancelled(job, paths=tuple(paths)))
        except Exception as exc:  # noqa: BLE001 - every failure becomes an event
            emit(self._failure(job, request, exc))
            if paths:
                log.info("kept %d finished images of the failed job", len(paths))
            free_memory()  # after a failure only: emptying the cache each job slows the next one

    def _plan(self, request: GenerateRequest) -> SpeedPlan:
        return SpeedPlan() if self._speed_off else plan_speed(request, self.device)

    def _fast_path_failed(self, exc: Exception) -> bool:
        plan = self._trying
        return (
            plan is not None
            and (plan.compile or plan.fp8_compute)
            and not is_oom(exc)
            and not isinstance(exc, (ZitdeskError, Cancelled, OSError))  # OSError: disk, files
        )

    def _generate(
        self, request: GenerateRequest, emit: Emit, cancel: CancelToken, t0: float, paths: list
    ) -> None:
        job = request.job_id
        import torch

        cuda = self.device.startswith("cuda")
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        loaded = self._ensure_pipeline(request, emit, cancel)
        notes = self._plan(request).notes
        if notes != self._notes_shown:  # "no Triton" / "no fp8": once, not every job
            self._notes_shown = notes
            for note in notes:
                emit(JobWarning(job, message=note))
        self._apply_loras(loaded, request, emit)
        cancel.raise_if_cancelled()
        emit(PhaseChanged(job, phase="encoding", detail="Encoding the prompt"))
        embeds, neg = self._encode(loaded, request)
        warning = self._token_warning(loaded, request)
        if warning:
            emit(JobWarning(job, message=warning))
        pending: list[tuple] = []
        try:
            for index in range(request.count):
                cancel.raise_if_cancelled()
                pending.append(
                    self._one_image(loaded, request, index, embeds, neg, emit, cancel, t0)
                )
                self._images_written(pending, job, emit, paths, wait=False)
        finally:  # images already handed to the writer are finished and reported
            self._images_written(pending, job, emit, paths, wait=True)
        peak = int(torch.cuda.max_memory_allocated()) if cuda else 0
        emit(
            JobFinished(
                job,
                paths=tuple(paths),
                elapsed_s=time.perf_counter() - t0,
                peak_vram_bytes=peak,
                stats={
                    "device": self.device,
                    "memory_mode": loaded.mode.value,
                    "compiled": loaded.plan.compile,
                    "fp8_compute": loaded.plan.fp8_compute,
                },
            )
        )

    def shutdown(self) -> None:
        self._writer.shutdown()
        self._loaded = None
        self._lent = None
        self._embed_cache.clear()
        free_memory()

    # -- lending the pipeline to a training job (StudioEngine) ----------------------------------
    def lend_pipeline(self, source, device: str, dtype) -> Any | None:
        """Hand the loaded pipeline to a training job on the same files, or free it.

        Lent only when it is the same model files on ``device``, placed plainly (GPU mode: no
        offload hooks, no fp8 storage, not compiled, text encoder not streamed) in ``dtype``;
        the LoRA stack is removed first. Otherwise the pipeline is dropped (the trainer loads
        its own into the freed memory) and None is returned. Until :meth:`take_back` this engine
        holds no pipeline.
        """
        loaded, self._loaded, self._lent = self._loaded, None, None
        if loaded is None:
            return None
        key = loaded.key
        ok = (
            key[:2] == source_key(source)
            and loaded.device == device
            and loaded.mode is MemoryMode.GPU
            and not key[5]
            and not key[6]
            and getattr(loaded.pipe.transformer, "dtype", None) == dtype
        )
        if ok and loaded.lora_key:
            try:
                from zitdesk.lora.apply import apply_loras

                apply_loras(loaded.pipe, [])
                loaded.lora_key = ()
            except Exception:  # noqa: BLE001 - then the trainer loads a clean copy
                log.exception("could not remove the LoRA stack before training")
                ok = False
        if not ok:
            del loaded
            self._embed_cache.clear()
            free_memory()
            return None
        uncompile(loaded.pipe.transformer)  # training takes the eager model; re-compiled on return
        self._lent = loaded
        return loaded.pipe

    def take_back(self, pipe: Any | None) -> None:
        """The pipeline lent to training comes back (cleaned by the trainer), or None: the next
        generation loads the model again."""
        lent, self._lent = self._lent, None
        if pipe is None or lent is None or pipe is not lent.pipe:
            self._embed_cache.clear()
            free_memory()
            return
        lent.lora_key = ()
        if lent.plan.compile and not is_compiled(pipe.transformer):
            compile_dit(pipe, lent.device)
        self._loaded = lent

    # -- internals ------------------------------------------------------------------------
    def _failure(self, job: str, request: GenerateRequest, exc: Exception) -> JobFailed:
        tb = traceback.format_exc()
        if is_oom(exc):
            from zitdesk.memory_predict import dit_format_of, oom_hint

            fmt = dit_format_of(self._loaded.source) if self._loaded is not None else ""
            self._loaded = None  # weights may be half-moved: reload next time
            free_memory()
            nxt = NEXT_TIER.get(request.memory_mode)
            hint: dict[str, Any] = {"memory_mode": nxt.value} if nxt else {}
            if request.memory_mode is MemoryMode.GPU or nxt is None:
                hint["vae_tiling"] = True
            # The calibrated ladder (#17): the next rung predicted to fit this card at once.
            calibrated = oom_hint(request, self.device, fmt)
            if calibrated:
                hint, nxt = calibrated, MemoryMode(calibrated["memory_mode"])
            advice = f"try '{nxt.label}'" if nxt else "try a smaller size"
            return JobFailed(
                job,
                kind="oom",
                traceback=tb,
                retry_hint=hint,
                message=(
                    f"The GPU ran out of memory at {request.width}×{request.height}; memory was freed — {advice}."
                ),
            )
        kinds: dict[type[BaseException], str] = {
            ModelError: "model",
            LoraError: "lora",
            RequestError: "request",
        }
        kind = kinds.get(type(exc), "error")
        if isinstance(exc, ZitdeskError):
            return JobFailed(job, kind=kind, message=str(exc), traceback=tb)
        log.error("generation failed:\n%s", tb)
        from zitdesk.errors import user_message

        return JobFailed(job, kind="error", traceback=tb, message=user_message(exc))

    def _resolve_source(self, request: GenerateRequest):
        from zitdesk.models.discovery import discover, resolve_model

        path = request.model_path or self.model_path
        if path:
            return resolve_model(path)
        found = [s for s in discover() if s.complete]
        if not found:
            raise ModelError(
                "No Z-Image Turbo model is configured and none was found; pass --model or choose one in Settings."
            )
        return found[0]

    def _ensure_pipeline(
        self, request: GenerateRequest, emit: Emit, cancel: CancelToken
    ) -> _Loaded:
        source = self._resolve_source(request)
        plan = self._plan(request)
        key = (
            *source_key(source),
            self.device,
            request.memory_mode,
            plan.compile,
            request.unload_text_encoder and request.memory_mode in (MemoryMode.GPU, MemoryMode.FP8),
            plan.fp8_compute,
        )
        self._trying = plan
        if self._loaded is not None and self._loaded.key == key:
            return self._loaded
        self._loaded = None
        self._embed_cache.clear()
        free_memory()
        emit(PhaseChanged(request.job_id, phase="loading", detail=f"Loading {source.label}"))
        from zitdesk.engine.preview import fit_latent_rgb
        from zitdesk.models.loader import load_pipeline

        pipe = load_pipeline(source, device=self.device)
        cancel.raise_if_cancelled()
        placement = request.memory_mode
        extra: list[str] = []
        if plan.fp8_compute:
            n = to_fp8_linears(pipe.transformer, self.device)
            extra.append(f"fp8 compute on {n} linears")
            if placement is MemoryMode.FP8:
                placement = MemoryMode.GPU  # those weights are fp8 already: no layerwise casting
        detail = apply_memory_mode(
            pipe, placement, self.device, stream_text_encoder=request.unload_text_encoder
        )
        if request.memory_mode in (MemoryMode.GPU, MemoryMode.FP8):
            extra.append(set_fast_attention(pipe, self.device))
        if plan.compile:
            extra.append(compile_dit(pipe, self.device))
        detail = "; ".join([detail, *(e for e in extra if e)])
        emit(PhaseChanged(request.job_id, phase="loaded", detail=detail))
        try:
            coef = fit_latent_rgb(pipe.vae, str(execution_device(pipe, self.device)))
        except Exception:  # noqa: BLE001 - previews are optional
            log.exception("preview fit failed")
            coef = None
        self._loaded = _Loaded(key, pipe, source, self.device, request.memory_mode, coef, plan=plan)
        return self._loaded

    def _apply_loras(self, loaded: _Loaded, request: GenerateRequest, emit: Emit) -> None:
        specs = [(lo.path, float(lo.weight)) for lo in request.loras if lo.enabled]
        if not specs and not loaded.lora_key:
            return
        from zitdesk.lora.apply import apply_loras

        reports = apply_loras(loaded.pipe, specs)
        loaded.lora_key = tuple(specs)
        for rep in reports:
            emit(
                LoraReport(
                    request.job_id,
                    path=rep.path,
                    matched=rep.matched,
                    total_targets=rep.total,
                    unknown_keys=tuple(rep.unknown_keys[:50]),
                    arch=rep.arch,
                    dialect=rep.dialect,
                    message=rep.message,
                    warnings=tuple(rep.warnings),
                )
            )

    @staticmethod
    def _token_warning(loaded: _Loaded, request: GenerateRequest) -> str:
        """The counter's warning when the prompt is near or over the 512-token budget."""
        try:
            from zitdesk.models.tokenizer import count_tokens

            return count_tokens(request.prompt, loaded.pipe.tokenizer, TOKEN_BUDGET).warning
        except Exception:  # noqa: BLE001 - a counter problem must never stop generation
            log.exception("token count failed")
            return ""

    def _encode(self, loaded: _Loaded, request: GenerateRequest):
        cfg = request.guidance > 0
        key = (request.prompt, request.negative_prompt if cfg else "", cfg, loaded.lora_key)
        hit = self._embed_cache.get(key)
        if hit is not None:
            return hit
        import torch

        pipe = loaded.pipe
        dev = execution_device(pipe, self.device)
        with torch.no_grad():
            pos, neg = pipe.encode_prompt(
                prompt=request.prompt,
                device=dev,
                do_classifier_free_guidance=cfg,
                negative_prompt=request.negative_prompt or "",
                max_sequence_length=TOKEN_BUDGET,
            )
        self._embed_cache.put(key, (pos, neg))  # 512 tokens × 2560 in bf16: 2.6 MB each
        return pos, neg

    def _one_image(
        self,
        loaded: _Loaded,
        request: GenerateRequest,
        index: int,
        embeds,
        neg,
        emit: Emit,
        cancel: CancelToken,
        t0: float,
    ) -> tuple:
        """Denoise and decode one image, hand it to the PNG writer → (future, seed, index, w, h)."""
        pipe = loaded.pipe
        seed = request.seed + index
        job = request.job_id
        every = request.preview_every
        last_preview = [0.0]
        total = _steps_of(request)  # edit modes denoise fewer steps (strength) or per tile
        previews = AsyncPreview(loaded.preview_coef) if loaded.preview_coef is not None else None

        def on_step(p, i, t, kwargs):
            if cancel.cancelled:
                raise _StopBeforeDecode()
            # On a GPU a preview is projected there and read back a step later (no sync);
            # the UI shows ~4 per second at most, so the rest are skipped.
            preview = previews.ready() if previews is not None else None
            now = time.perf_counter()
            due = (i + 1) % every == 0 if every else False
            if (
                due
                and previews is not None
                and (now - last_preview[0] >= self.preview_min_interval_s or i + 1 == total)
            ):
                started = previews.submit(kwargs["latents"])
                preview = started if started is not None else preview
                last_preview[0] = now
            emit(
                StepProgress(
                    job,
                    step=i + 1,
                    total=total,
                    image_index=index,
                    image_count=request.count,
                    preview=preview,
                    elapsed_s=time.perf_counter() - t0,
                )
            )
            return {}

        emit(PhaseChanged(job, phase="denoising", detail=f"Image {index + 1} of {request.count}"))
        try:
            with _CancellableDecode(getattr(pipe, "vae", None), cancel):
                image = render_image(pipe, request, index, embeds, neg, on_step)
        except _StopBeforeDecode:
            raise Cancelled() from None
        cancel.raise_if_cancelled()  # pressed during the last layer or postprocessing: no file
        emit(PhaseChanged(job, phase="saving", detail=f"Saving image {index + 1}"))
        source = self._loaded.source if self._loaded else None
        label = source.label if source else "Z-Image Turbo"
        digest = model_hash(source)
        future = self._writer.submit(
            lambda: save_image(image, request, seed, index, model_label=label, model_hash=digest)
        )
        return (future, seed, index, image.width, image.height)

    @staticmethod
    def _images_written(
        pending: list[tuple], job: str, emit: Emit, paths: list[str], wait: bool
    ) -> None:
        """Report (``ImageReady``, in order) the images whose PNG is written; ``wait``: all."""
        while pending and (wait or pending[0][0].done()):
            future, seed, index, width, height = pending.pop(0)
            path = future.result()
            paths.append(str(path))
            emit(
                ImageReady(
                    job, path=str(path), seed=seed, image_index=index, width=width, height=height
                )
            )


def compile_blocks(pipe, device: str) -> str:
    """Regional compile of the repeated DiT blocks (diffusers ``compile_repeated_blocks``).

    On an H100 this took 9-step 1024² generation from 1.51 to 1.02 s after a ≈ 20 s first call
    (engine doc §10). One block class serves the refiners and the main layers, so allow a few
    recompiles. On a CPU it is skipped: compiling takes longer than it saves.
    """
    return compile_dit(pipe, device)


def render_image(pipe, request: GenerateRequest, index: int, embeds, neg, on_step=None):
    """Denoise and decode image ``index`` of ``request`` (seed ``request.seed + index``) → PIL image.

    The one place a Z-Image picture is made: the Generate tab and the trainer's samples both call
    it, so samples match what users get. ``embeds``/``neg`` come from ``pipe.encode_prompt``;
    ``on_step`` is the pipeline's ``callback_on_step_end`` (whatever it raises propagates).
    """
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler

    if float(pipe.scheduler.config.get("shift", 3.0)) != request.shift:
        pipe.scheduler = FlowMatchEulerDiscreteScheduler.from_config(
            pipe.scheduler.config, shift=request.shift
        )
    generator = torch.Generator("cpu").manual_seed(request.seed + index)
    variety = float(getattr(request, "variety", 0.0) or 0.0)
    if variety > 0:  # seeded noise on the prompt embedding (zitdesk.engine.variety)
        from zitdesk.engine.variety import vary_embeddings

        embeds = vary_embeddings(embeds, variety, request.seed + index)
    if request.vae_tiling:
        pipe.vae.enable_tiling()
    else:
        pipe.vae.disable_tiling()
    from zitdesk.engine import edit

    if edit.mode_of(request) != edit.TXT2IMG:  # img2img, inpaint, ControlNet, tiled upscale
        return edit.render_edit(pipe, request, index, embeds, neg, on_step)
    with torch.inference_mode():
        result = pipe(
            prompt_embeds=embeds,
            negative_prompt_embeds=neg if request.guidance > 0 else None,
            height=request.height,
            width=request.width,
            num_inference_steps=request.steps,
            guidance_scale=request.guidance,
            cfg_normalization=bool(getattr(request, "cfg_normalization", False)),
            generator=generator,
            callback_on_step_end=on_step,
            output_type="pil",
            max_sequence_length=TOKEN_BUDGET,
        )
    return result.images[0]


def _steps_of(request: GenerateRequest) -> int:
    """Denoising steps of one image (edit modes: strength and tiles), ``steps`` if unsure."""
    try:
        from zitdesk.engine.edit import total_steps

        return max(1, total_steps(request))
    except Exception:  # noqa: BLE001 - an invalid request fails in validate with its sentence
        return request.steps
