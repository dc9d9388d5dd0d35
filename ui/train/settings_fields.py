"""The data behind the training settings form, widget-free: section titles, the allowed values of
enum fields (the tuples ``TrainConfig.validate`` checks), path fields, labels and one tooltip per
field (:data:`FIELD_HELP`, from docs/training.md and the field comments in
``zitdesk/train/config.py``), and which generic widget each dataclass field gets."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from zitdesk.train import config as C
from zitdesk.train.config import TrainConfig
from zitdesk.train.presets import PRESETS

Key = tuple[str, str]

SECTION_TITLES: dict[str, str] = {
    "model": "Model",
    "data": "Dataset",
    "lora": "LoRA",
    "optim": "Optimizer",
    "timesteps": "Timesteps",
    "memory": "Memory",
    "save": "Saving",
    "sample": "Samples",
}

#: Allowed values of the enum fields (the tuples ``TrainConfig.validate`` checks against).
CHOICES: dict[Key, tuple[str, ...]] = {
    ("model", "variant"): C.VARIANTS,
    ("model", "adapter_mode"): C.ADAPTER_MODES,
    ("model", "base_precision"): C.PRECISIONS,
    ("data", "latent_mode"): C.LATENT_MODES,
    ("optim", "optimizer"): C.OPTIMIZERS,
    ("optim", "schedule"): C.SCHEDULES,
    ("timesteps", "mode"): C.TIMESTEP_MODES,
    ("memory", "gradient_checkpointing"): C.CHECKPOINTING,
    ("memory", "preset"): ("", *PRESETS),
}
MULTI_CHOICES: dict[Key, tuple[str, ...]] = {("lora", "targets"): C.TARGET_GROUPS}
#: Path fields: "dir" or "file" (what Browse asks for).
PATHS: dict[Key, str] = {
    ("model", "path"): "dir",
    ("model", "training_adapter"): "file",
    ("data", "folder"): "dir",
    ("data", "cache_dir"): "dir",
    ("save", "output_dir"): "dir",
}
#: Whole numbers that do not fit a spin box (up to 2^63).
BIG_INTS: set[Key] = {("optim", "seed")}
#: What an empty text field means.
PLACEHOLDERS: dict[Key, str] = {
    ("model", "training_adapter"): "none",
    ("data", "cache_dir"): "the app's cache folder (shared between runs)",
    ("data", "trigger"): "no trigger word",
    ("memory", "attention_backend"): "diffusers' default (native SDPA)",
    ("model", "device"): "auto",
}
LABELS: dict[Key, str] = {
    ("memory", "vram_budget_gb"): "VRAM budget (GB)",
    ("optim", "eps"): "Epsilon",
    ("optim", "grad_clip"): "Gradient clipping",
    ("optim", "grad_accum"): "Gradient accumulation",
    ("data", "caption_ext"): "Caption extension",
    ("data", "folder"): "Dataset folder",
    ("model", "path"): "Base model",
    ("model", "adapter_mode"): "Adapter mode",
    ("save", "every"): "Save every (steps)",
    ("sample", "every"): "Sample every (steps)",
    ("save", "keep_last"): "Keep last",
    ("save", "export_kohya"): "Also export kohya file",
    ("sample", "at_start"): "Sample before step 1",
    ("sample", "vae_tiling"): "VAE tiling",
    ("sample", "steps"): "Sampling steps",
    ("lora", "include_refiners"): "Include refiner blocks",
    ("memory", "offload_vae"): "VAE waits in RAM",
    ("memory", "compile"): "Compile blocks",
    ("timesteps", "differential_guidance"): "Differential guidance",
}

#: Tooltips (docs/training.md and the field comments in config.py).
FIELD_HELP: dict[Key, str] = {
    ("model", "path"): "The base model: a diffusers folder, a Hugging Face cache entry or a folder "
    "of ComfyUI files.",
    ("model", "variant"): "turbo, deturbo or base: which Z-Image you train on; recorded in the "
    "LoRA (zitdesk_base_variant). Turbo needs a training adapter.",
    ("model", "training_adapter"): "A LoRA applied while training and removed for samples and the "
    "saved file, e.g. ostris' zimage_turbo_training_adapter_v2.safetensors. It keeps Turbo's "
    "distillation from being trained away.",
    ("model", "adapter_mode"): "auto: side for bf16/fp32 bases, merge for fp8/NF4. side = a frozen "
    "second adapter (exact removal); merge = added to the base weights before quantising.",
    ("model", "base_precision"): "auto keeps the base weights in bf16 and puts only as many "
    "blocks in fp8 as this card's memory needs (the planner picks block by block); bf16, fp32, "
    "fp8 or nf4 (CUDA only) hold every block that way. fp16 does not train on Z-Image.",
    ("model", "device"): "auto, cuda, cuda:N or cpu.",
    ("data", "folder"): "Images with same-name caption files.",
    ("data", "trigger"): "Replaces [trigger] in captions; captions without the placeholder get it "
    "prepended.",
    ("data", "caption_ext"): "The caption file extension, with its dot.",
    ("data", "resolutions"): "Training resolutions (multiples of 16, 64–2048): one copy of the "
    "dataset per resolution, each image in its aspect bucket, never upscaled.",
    ("data", "caption_dropout"): "Probability of training a sample on the empty caption "
    "(0.05 is typical).",
    ("data", "latent_mode"): "mode: the VAE posterior's mode (diffusers); sample: a seeded sample "
    "(ai-toolkit).",
    ("data", "cache_dir"): "Where latents and caption embeddings are cached (content-keyed, shared "
    "between runs). Empty = the app's cache folder.",
    ("lora", "rank"): "LoRA rank: 16–32 is typical; higher learns more detail and makes a bigger "
    "file.",
    ("lora", "alpha"): "LoRA alpha, usually equal to the rank; alpha/rank is baked into the saved "
    "file.",
    ("lora", "targets"): "Which modules get a LoRA in layers 0–29: attention, feed-forward, adaLN "
    "modulation.",
    ("lora", "include_refiners"): "Also train the noise and context refiner blocks.",
    ("optim", "optimizer"): "adamw (fused on CUDA) or adamw8bit (bitsandbytes, CUDA only; less "
    "memory).",
    ("optim", "learning_rate"): "1e-4 is typical (1e-4–2e-4).",
    ("optim", "weight_decay"): "AdamW weight decay (1e-4).",
    ("optim", "betas"): "AdamW betas, two numbers (0.9, 0.999).",
    ("optim", "eps"): "AdamW epsilon (1e-8).",
    ("optim", "schedule"): "After the warm-up: constant, cosine or linear to 0.",
    ("optim", "warmup_steps"): "Linear warm-up steps (0–100 is typical).",
    ("optim", "grad_clip"): "Clip the gradient norm to this value; 0 = off.",
    ("optim", "batch_size"): "Images per micro-batch (one bucket per batch).",
    ("optim", "grad_accum"): "Micro-batches per optimizer step.",
    ("optim", "steps"): "Optimizer steps (2000–3000 for a character).",
    ("optim", "seed"): "Seed of the noise, timesteps, caption dropout and data order.",
    ("timesteps", "mode"): "weighted (ai-toolkit's Z-Image Turbo default), shift, logit_normal, "
    "uniform_shift or turbo_anchors (the 8-step sampler's noise levels).",
    ("timesteps", "shift"): "Shift for shift / uniform_shift / turbo_anchors (3).",
    ("timesteps", "anchor_steps"): "turbo_anchors: the sampler's step count (8).",
    ("timesteps", "jitter"): "turbo_anchors: ± uniform jitter on σ (0.02).",
    ("timesteps", "differential_guidance"): "Train towards v̂ + k·(target − v̂) instead of the "
    "target.",
    ("timesteps", "differential_scale"): "k of differential guidance (3).",
    ("memory", "preset"): "The VRAM tier these memory values came from (informational; the fields "
    "it sets are marked).",
    ("memory", "gradient_checkpointing"): "full: every block (least memory); auto: as many blocks "
    "as the memory needs; off: fastest, most memory.",
    ("memory", "vram_budget_gb"): "The memory 'auto' checkpointing plans for; 0 = the GPU's free "
    "memory.",
    ("memory", "compile"): "torch.compile the repeated blocks (CUDA only; faster after a slow "
    "first step).",
    ("memory", "attention_backend"): "A diffusers attention backend name; empty = native SDPA.",
    ("memory", "offload_vae"): "The VAE waits in RAM between sample rounds (saves 0.17 GB of "
    "VRAM).",
    ("save", "output_dir"): "The run folder: checkpoints, LoRA files, samples and the config.",
    ("save", "name"): "The LoRA's file name (without .safetensors).",
    ("save", "every"): "A checkpoint and a LoRA file every N steps (0 = only at the end).",
    ("save", "keep_last"): "How many checkpoints and step files are kept.",
    ("save", "export_kohya"): "Also write <name>_kohya.safetensors at the end.",
    ("sample", "every"): "A round of sample images every N steps (0 = never).",
    ("sample", "prompts"): "One prompt per line; [trigger] is replaced by the trigger word. No "
    "prompts = no samples.",
    ("sample", "seeds"): "Seeds, cycled over the prompts.",
    ("sample", "width"): "0 = the largest training resolution.",
    ("sample", "height"): "0 = the largest training resolution.",
    ("sample", "steps"): "Sampling steps (8 for Turbo).",
    ("sample", "guidance"): "Guidance scale (0 for Turbo).",
    ("sample", "shift"): "Sampler shift (3).",
    ("sample", "at_start"): "Also sample before the first step (the model without your LoRA).",
    ("sample", "vae_tiling"): "Decode samples in tiles (less memory).",
}


def section_fields() -> list[tuple[str, list[tuple[str, Any]]]]:
    """``[(section, [(field, type hint), …]), …]`` in TrainConfig order."""
    hints = typing.get_type_hints(TrainConfig)
    out = []
    for f in dataclasses.fields(TrainConfig):
        if f.name == "version":
            continue
        sec_cls = hints[f.name]
        sh = typing.get_type_hints(sec_cls)
        out.append((f.name, [(sf.name, sh[sf.name]) for sf in dataclasses.fields(sec_cls)]))
    return out


def widget_kind(key: Key, typ: Any) -> str:
    """Which generic widget a field gets."""
    if key in MULTI_CHOICES:
        return "checks"
    if key in CHOICES:
        return "choice"
    if key in PATHS:
        return "path"
    if typing.get_origin(typ) is tuple:
        args = typing.get_args(typ)
        return "lines" if args and args[0] is str else "list"
    if typ is bool:
        return "bool"
    if typ is int and key not in BIG_INTS:
        return "int"
    if typ in (int, float):
        return "number"
    return "text"


def _number(text: str) -> Any:
    """``"1e-4"`` → 0.0001, ``"3"`` → 3; anything else stays text (from_dict refuses it)."""
    t = text.strip()
    try:
        return int(t)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        return t


def _show(v: Any) -> str:
    return repr(v) if isinstance(v, float) else str(v)


def label_for(key: Key) -> str:
    return LABELS.get(key) or key[1].replace("_", " ").capitalize()
