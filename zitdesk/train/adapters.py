"""The PEFT adapters of a training run: the user LoRA and the Turbo training adapter.

Two adapter names live on the transformer (engine notes §13 A):

* :data:`USER` — the LoRA being trained: fp32 master weights (compute in bf16 under autocast on
  CUDA), kaiming-uniform A and zero B (PEFT's default init), on the targets of
  :func:`target_regex`.
* :data:`ASSISTANT` — the user-supplied training adapter (e.g. ai-toolkit's
  ``zimage_turbo_training_adapter_v2``), loaded through :func:`zitdesk.lora.apply.load_normalized`
  so every dialect works, frozen. In **side** mode (bf16/fp32 base) it is active at strength 1
  while training and inactive for samples, which removes it exactly. In **merge** mode (fp8/NF4
  base) its ΔW is merged into the full-precision weights *before* quantising, and this adapter is
  kept only as a −1 side branch that is switched on for samples (ai-toolkit's approach).

:func:`set_active` switches adapters and scales on every PEFT layer and then puts
``requires_grad`` back (PEFT's ``set_adapter`` makes every active adapter trainable).
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

USER = "zit_user"
ASSISTANT = "zit_assistant"


def target_regex(targets: tuple[str, ...], include_refiners: bool) -> str:
    """A full-match regex for PEFT ``target_modules`` (never the adaLN SiLU: engine notes §6)."""
    blocks = "layers|noise_refiner|context_refiner" if include_refiners else "layers"
    parts = []
    if "attention" in targets:
        parts.append(r"attention\.(?:to_q|to_k|to_v|to_out\.0)")
    if "feed_forward" in targets:
        parts.append(r"feed_forward\.w[123]")
    if "adaln" in targets:
        parts.append(r"adaLN_modulation\.0")
    return rf"(?:{blocks})\.\d+\.(?:{'|'.join(parts)})"


def add_user_adapter(
    transformer: Any,
    rank: int,
    alpha: float,
    targets: tuple[str, ...],
    include_refiners: bool,
    init_seed: int,
) -> int:
    """Inject the trainable LoRA; returns the number of wrapped modules."""
    import torch
    from peft import LoraConfig

    cfg = LoraConfig(
        r=rank,
        lora_alpha=alpha,  # type: ignore[arg-type]  # peft takes a float alpha
        lora_dropout=0.0,
        init_lora_weights=True,
        target_modules=target_regex(targets, include_refiners),
    )
    state = torch.random.get_rng_state()
    torch.manual_seed(init_seed)  # A's kaiming init is the only randomness here
    try:
        transformer.add_adapter(cfg, adapter_name=USER)
    finally:
        torch.random.set_rng_state(state)
    n = 0
    for name, p in transformer.named_parameters():
        if f".{USER}." in name:
            p.data = p.data.float()  # fp32 master weights whatever the base dtype
            n += 1
    return n // 2


def add_assistant(transformer: Any, state_dict: dict[str, Any], dtype: Any) -> int:
    """Load the normalized training adapter (``transformer.<module>.lora_A/B.weight``, scale 1)."""
    import warnings

    sd = {k: v.to(dtype) for k, v in state_dict.items()}
    with warnings.catch_warnings():  # two adapters on one model is the point here
        warnings.filterwarnings("ignore", message=".*Already found a `peft_config`")
        transformer.load_lora_adapter(
            sd, prefix="transformer", adapter_name=ASSISTANT, low_cpu_mem_usage=False
        )
    n = 0
    for name, p in transformer.named_parameters():
        if f".{ASSISTANT}." in name:
            p.requires_grad_(False)
            n += 1
    return n // 2


def set_active(transformer: Any, scales: dict[str, float]) -> None:
    """Make exactly the adapters in ``scales`` active at those strengths; only USER trains."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    names = list(scales)
    for m in transformer.modules():
        if isinstance(m, BaseTunerLayer):
            m.set_adapter(names)
            for name, s in scales.items():
                if hasattr(m, "set_scale"):
                    m.set_scale(name, s)
    for name, p in transformer.named_parameters():
        p.requires_grad_(f".{USER}." in name)


def user_parameters(transformer: Any) -> list[Any]:
    return [p for n, p in transformer.named_parameters() if f".{USER}." in n]


def user_pairs(transformer: Any) -> dict[str, tuple[Any, Any]]:
    """``{module: (A (r × in), B (out × r))}`` of the user adapter, module names as diffusers'."""
    out: dict[str, list[Any]] = {}
    for name, p in transformer.named_parameters():
        for part, idx in ((f".lora_A.{USER}.weight", 0), (f".lora_B.{USER}.weight", 1)):
            if name.endswith(part):
                module = name[: -len(part)]
                out.setdefault(module, [None, None])[idx] = p
    return {m: (ab[0], ab[1]) for m, ab in sorted(out.items())}


def user_state(transformer: Any) -> dict[str, Any]:
    """The user adapter's raw fp32 tensors by parameter name (for exact checkpoints)."""
    return {
        n: p.detach().cpu().clone() for n, p in transformer.named_parameters() if f".{USER}." in n
    }


def load_user_state(transformer: Any, state: dict[str, Any]) -> None:
    import torch

    params = dict(transformer.named_parameters())
    own = {n for n in params if f".{USER}." in n}
    if set(state) != own:
        missing = sorted(own - set(state))[:3]
        extra = sorted(set(state) - own)[:3]
        raise ValueError(
            f"checkpoint LoRA does not match the model (missing {missing}, extra {extra})"
        )
    with torch.no_grad():
        for n, t in state.items():
            params[n].copy_(t.to(params[n].dtype))
