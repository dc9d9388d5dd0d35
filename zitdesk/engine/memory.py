"""Memory modes: how a pipeline's weights are placed on the GPU.

Every mode works on CUDA and degrades cleanly on a CPU-only machine (where the offload modes
make no sense and diffusers raises): there the pipeline simply stays on the CPU, and fp8 storage
still applies (it saves RAM).
"""

from __future__ import annotations

import logging

from zitdesk.engine.requests import MemoryMode

log = logging.getLogger(__name__)

# One tier down, for the "retry with less memory" offer after an out-of-memory error.
NEXT_TIER: dict[MemoryMode, MemoryMode | None] = {
    MemoryMode.GPU: MemoryMode.FP8,
    MemoryMode.FP8: MemoryMode.MODEL_OFFLOAD,
    MemoryMode.MODEL_OFFLOAD: MemoryMode.GROUP_OFFLOAD,
    MemoryMode.GROUP_OFFLOAD: MemoryMode.SEQUENTIAL,
    MemoryMode.SEQUENTIAL: None,
}


def _stream_text_encoder(pipe, device: str) -> None:
    """Keep Qwen3 (8 GB in bf16) in RAM and stream its blocks to the GPU while a prompt is encoded.

    New prompts then cost a PCIe transfer (about a second) instead of 8 GB of resident VRAM, and
    the first job never holds the DiT and the text encoder on the GPU together.
    """
    import torch
    from diffusers.hooks import apply_group_offloading

    pipe.text_encoder.to("cpu")
    apply_group_offloading(
        pipe.text_encoder,
        onload_device=torch.device(device),
        offload_device=torch.device("cpu"),
        offload_type="block_level",
        num_blocks_per_group=4,
        use_stream=True,
    )


def apply_memory_mode(
    pipe, mode: MemoryMode, device: str, stream_text_encoder: bool = False
) -> str:
    """Place ``pipe`` for ``mode`` on ``device``; returns a short description of what was done.

    ``stream_text_encoder`` keeps the text encoder in RAM (GPU and fp8 modes; the offload modes
    already do so).
    """
    import torch

    from zitdesk.models.quant.packed import is_prequantised

    cuda = device.startswith("cuda")
    packed = is_prequantised(pipe.transformer)
    if mode is MemoryMode.FP8 and packed:
        # A GGUF / scaled-fp8 / nvfp4 DiT is already stored small; casting its packed bytes
        # to fp8 would destroy them, so fp8 mode places it like GPU mode.
        mode = MemoryMode.GPU
    elif mode is MemoryMode.FP8:
        # fp8 e4m3 storage, bf16 (or the load dtype) compute; diffusers skips the embedders/norms.
        compute = (
            pipe.transformer.dtype
            if pipe.transformer.dtype != torch.float8_e4m3fn
            else torch.bfloat16
        )
        pipe.transformer.enable_layerwise_casting(
            storage_dtype=torch.float8_e4m3fn, compute_dtype=compute
        )
    if not cuda:
        if mode in (MemoryMode.MODEL_OFFLOAD, MemoryMode.GROUP_OFFLOAD, MemoryMode.SEQUENTIAL):
            return f"CPU only: '{mode.label}' needs an NVIDIA GPU, running everything on the CPU"
        return "CPU" + (" with fp8 weight storage" if mode is MemoryMode.FP8 else "")
    if mode in (MemoryMode.GPU, MemoryMode.FP8):
        fp8 = " (fp8 storage)" if mode is MemoryMode.FP8 else ""
        if stream_text_encoder:
            pipe.transformer.to(device)
            pipe.vae.to(device)
            _stream_text_encoder(pipe, device)
            return f"DiT and VAE on {device}{fp8}, text encoder streamed from RAM"
        pipe.to(device)
        return f"all on {device}{fp8}"
    if mode is MemoryMode.MODEL_OFFLOAD:
        pipe.enable_model_cpu_offload(device=device)
        return "model CPU offload"
    if mode is MemoryMode.GROUP_OFFLOAD:
        onload = torch.device(device)
        pipe.transformer.enable_group_offload(
            onload_device=onload,
            offload_device=torch.device("cpu"),
            offload_type="block_level",
            num_blocks_per_group=1,
            use_stream=True,
        )
        # The small parts go to the GPU; the text encoder streams too (8 GB in bf16).
        _stream_text_encoder(pipe, device)
        pipe.vae.to(device)
        return "block streaming from RAM"
    if mode is MemoryMode.SEQUENTIAL and _has_gguf(pipe.transformer):
        # accelerate's sequential offload cannot move GGUF parameters (KeyError in diffusers'
        # GGUFParameter): stream the DiT block by block instead, the smallest that works for it.
        return apply_memory_mode(pipe, MemoryMode.GROUP_OFFLOAD, device) + (
            " (a GGUF model cannot use sequential offload)"
        )
    if mode is MemoryMode.SEQUENTIAL:
        pipe.enable_sequential_cpu_offload(device=device)
        return "sequential CPU offload"
    raise ValueError(mode)


def _has_gguf(model) -> bool:
    """True when ``model`` holds diffusers GGUF layers (the label of its packed base)."""
    from zitdesk.models.quant.packed import packed_base_label

    return packed_base_label(model).startswith("gguf-")


def execution_device(pipe, device: str):
    """Where inputs must go: the pipeline's execution device under offload hooks, else ``device``."""
    try:
        return pipe._execution_device
    except Exception:  # noqa: BLE001 - diffusers raises various errors on odd states
        return device
