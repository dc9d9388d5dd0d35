"""The edit modes on the loaded pipeline: image-to-image, inpaint/outpaint, ControlNet (also with a
mask) and tiled upscale (:mod:`.upscale`).

Each mode builds its diffusers pipeline class around the *same* components as the loaded
``ZImagePipeline`` (scheduler, VAE, text encoder, tokenizer, transformer: the objects, not
copies; diffusers' ``from_pipe`` would also cast them to one dtype), so no weight is loaded
twice and the LoRA stack, memory mode and compiled blocks all carry over. The ControlNet is
loaded once per file and kept on the pipeline object (it goes when the pipeline goes).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from zitdesk.engine.edit import images
from zitdesk.engine.edit.options import (
    CONTROLNET,
    CONTROLNET_INPAINT,
    IMG2IMG,
    INPAINT,
    UPSCALE,
    mode_of,
)
from zitdesk.errors import ModelError
from zitdesk.models.tokenizer import DEFAULT_BUDGET as TOKEN_BUDGET

log = logging.getLogger(__name__)

_CACHE_ATTR = "_zitdesk_controlnet"
INPAINT_CONTROL_DIM = 33  # control latents 16 + mask 1 + masked-image latents 16


def shared_pipeline(cls: Any, pipe: Any, **extra: Any) -> Any:
    """A ``cls`` pipeline over ``pipe``'s own component objects (nothing copied or cast)."""
    new = cls(
        scheduler=pipe.scheduler,
        vae=pipe.vae,
        text_encoder=pipe.text_encoder,
        tokenizer=pipe.tokenizer,
        transformer=pipe.transformer,
        **extra,
    )
    new.set_progress_bar_config(**dict(getattr(pipe, "_progress_bar_config", {}) or {}))
    return new


def _common(request: Any, index: int, embeds: Any, neg: Any, on_step: Any) -> dict[str, Any]:
    import torch

    return dict(
        prompt_embeds=embeds,
        negative_prompt_embeds=neg if request.guidance > 0 else None,
        num_inference_steps=request.steps,
        guidance_scale=request.guidance,
        cfg_normalization=bool(getattr(request, "cfg_normalization", False)),  # Base (issue #16)
        generator=torch.Generator("cpu").manual_seed(request.seed + index),
        callback_on_step_end=on_step,
        output_type="pil",
        max_sequence_length=TOKEN_BUDGET,
    )


def init_and_mask(request: Any) -> tuple[Any, Any]:
    """The init picture and the mask (white = repaint) at the request's size; outpaint grows
    the canvas first. The mask is None for plain image-to-image."""
    init = images.open_image(request.init_image, "The init image")
    mask = images.open_mask(request.mask_image) if request.mask_image else None
    if any(request.outpaint):
        init, mask = images.extend_canvas(init, mask, request.outpaint, request.mask_blur)
    init = images.fit(init, request.width, request.height)
    if mask is not None:
        mask = mask.convert("L").resize(init.size) if mask.size != init.size else mask
    return init, mask


def controlnet_for(pipe: Any, request: Any) -> Any:
    """The loaded ControlNet for ``request.controlnet_path`` (cached on ``pipe``)."""
    from zitdesk.engine.edit.controlnet import check_controlnet, load_controlnet
    from zitdesk.engine.memory import execution_device

    path = os.path.abspath(request.controlnet_path)
    st = os.stat(path if os.path.isfile(path) else os.path.join(path, "config.json"))
    key = (path, st.st_size, st.st_mtime_ns, id(pipe.transformer))
    cached = getattr(pipe, _CACHE_ATTR, None)
    if cached is not None and cached[0] == key:
        return cached[1]
    object.__setattr__(pipe, _CACHE_ATTR, None)  # drop the old one before loading
    info = check_controlnet(path, dict(pipe.transformer.config))
    device = execution_device(pipe, "cpu")
    model = load_controlnet(info, pipe.transformer, device)
    object.__setattr__(pipe, _CACHE_ATTR, (key, model))
    return model


class _ControlWindow:
    """While active, the ControlNet acts only on the steps inside [start, end) of the run (a
    fraction of the steps); outside it returns no residuals and costs nothing. In model-offload
    mode the transformer is brought in first (the ControlNet uses its embedders)."""

    def __init__(self, model: Any, transformer: Any, start: float, end: float, steps: int):
        self.model, self.transformer = model, transformer
        self.start, self.end, self.steps = start, end, max(1, steps)
        self.done = 0
        self._orig: Any = None

    def on_step(self, inner: Any):
        def step(p, i, t, kwargs):
            self.done = i + 1
            return inner(p, i, t, kwargs) if inner is not None else {}

        return step

    def _forward(self, *args: Any, **kwargs: Any) -> Any:
        frac = self.done / self.steps
        if not self.start <= frac < self.end:
            return {}
        hook = getattr(self.transformer, "_hf_hook", None)
        if hook is not None and hasattr(hook, "pre_forward"):
            hook.pre_forward(self.transformer)
        return self._orig(*args, **kwargs)

    def __enter__(self) -> _ControlWindow:
        self._orig = self.model.forward
        self.model.forward = self._forward
        return self

    def __exit__(self, *exc: Any) -> None:
        self.model.__dict__.pop("forward", None)


def _check_streaming(pipe: Any, request: Any) -> None:
    """The ControlNet runs the transformer's embedders and refiners itself, before the
    transformer: with blocks streamed from RAM they are not on the GPU yet."""
    from zitdesk.engine.memory import execution_device
    from zitdesk.engine.requests import MemoryMode
    from zitdesk.errors import RequestError

    streamed = request.memory_mode in (MemoryMode.GROUP_OFFLOAD, MemoryMode.SEQUENTIAL)
    if streamed and str(execution_device(pipe, "cpu")).startswith("cuda"):
        raise RequestError(
            f"ControlNet does not work with '{request.memory_mode.label}' yet; choose "
            f"'{MemoryMode.MODEL_OFFLOAD.label}' or a mode above it."
        )


def render_edit(pipe: Any, request: Any, index: int, embeds: Any, neg: Any, on_step: Any = None):
    """Image ``index`` of an edit ``request`` on the loaded ``pipe`` → PIL image (the scheduler
    shift and VAE tiling are set by the caller, ``generate.render_image``). Afterwards the
    loaded pipeline's own offload hooks are reset, as after a text-to-image call."""
    try:
        return _render(pipe, request, index, embeds, neg, on_step)
    finally:
        free = getattr(pipe, "maybe_free_model_hooks", None)
        if callable(free):
            free()


def _render(pipe: Any, request: Any, index: int, embeds: Any, neg: Any, on_step: Any):
    import torch

    mode = mode_of(request)
    if mode == UPSCALE:
        from zitdesk.engine.edit.upscale import upscale_image

        return upscale_image(pipe, request, index, embeds, neg, on_step)
    kwargs = _common(request, index, embeds, neg, on_step)
    size = dict(height=request.height, width=request.width)
    if mode == IMG2IMG:
        from diffusers import ZImageImg2ImgPipeline

        init, _ = init_and_mask(request)
        edit = shared_pipeline(ZImageImg2ImgPipeline, pipe)
        with torch.inference_mode():
            return edit(image=init, strength=request.strength, **size, **kwargs).images[0]
    if mode == INPAINT:
        from diffusers import ZImageInpaintPipeline

        init, mask = init_and_mask(request)
        edit = shared_pipeline(ZImageInpaintPipeline, pipe)
        with torch.inference_mode():
            out = edit(
                image=init,
                mask_image=images.hard_mask(mask),
                strength=request.strength,
                **size,
                **kwargs,
            ).images[0]
        return images.paste_back(init, out, mask, request.mask_blur)
    if mode in (CONTROLNET, CONTROLNET_INPAINT):
        _check_streaming(pipe, request)
        model = controlnet_for(pipe, request)
        control = images.control_map(
            images.fit(
                images.open_image(request.control_image, "The control image"),
                request.width,
                request.height,
            ),
            request.control_type,
        )
        window = _ControlWindow(
            model, pipe.transformer, request.control_start, request.control_end, request.steps
        )
        kwargs["callback_on_step_end"] = window.on_step(on_step)
        scale = float(request.control_scale)
        if mode == CONTROLNET:
            from diffusers import ZImageControlNetPipeline

            edit = shared_pipeline(ZImageControlNetPipeline, pipe, controlnet=model)
            with window, torch.inference_mode():
                return edit(
                    control_image=control, controlnet_conditioning_scale=scale, **size, **kwargs
                ).images[0]
        if int(model.config.control_in_dim) < INPAINT_CONTROL_DIM:
            raise ModelError(
                f"{os.path.basename(request.controlnet_path)} has no inpaint input (Union 2.0 or "
                "later has one); clear the mask, or use that ControlNet."
            )
        from diffusers import ZImageControlNetInpaintPipeline

        init, mask = init_and_mask(request)
        edit = shared_pipeline(ZImageControlNetInpaintPipeline, pipe, controlnet=model)
        with window, torch.inference_mode():
            out = edit(
                image=init,
                mask_image=images.hard_mask(mask),
                control_image=control,
                controlnet_conditioning_scale=scale,
                **size,
                **kwargs,
            ).images[0]
        return images.paste_back(init, out, mask, request.mask_blur)
    raise ValueError(mode)
