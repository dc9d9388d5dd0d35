"""One optimizer step of LoRA training on a prepared transformer: the hot loop, nothing else.

:class:`StepRunner` owns the optimizer and learning-rate schedule of the user adapter and runs
flow-matching steps (engine notes §5, §13 D)::

    x_σ = (1 − σ)·x0 + σ·ε,   t = 1 − σ,   v̂ = −transformer(x_σ, t, caption),
    loss = mean_b  w_b · mean_{C,H,W} (v̂ − (ε − x0))²          (fp32)

with gradient accumulation, clipping, and optional differential guidance. It never reads a
loss back to the CPU (no ``.item()``): the caller decides when to sync. Used by the trainer job
and by ``bench/train_gpu.py``, so the benchmark measures the real step.

Memory/speed switches applied by :meth:`StepRunner.configure`: gradient checkpointing ``full``
(every block), ``auto`` (CUDA: the memory planner, :mod:`zitdesk.train.memplan`, picks the
blocks to checkpoint, to hold in fp8 and — when enabled — to stream from RAM, for the budget) or
``off``;
``torch.compile`` of the repeated blocks (CUDA); an attention backend. bf16 bases compute under
``torch.autocast(bfloat16)`` with the LoRA's fp32 master weights.
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass
from typing import Any

from zitdesk.errors import RequestError
from zitdesk.models.tokenizer import DEFAULT_BUDGET
from zitdesk.train.adapters import user_parameters
from zitdesk.train.config import OptimSection, TrainConfig

log = logging.getLogger(__name__)

GiB = 1 << 30


@dataclass
class MicroBatch:
    """One forward/backward: CPU tensors and plain numbers (pure function of seed and index)."""

    latents: Any  # (B, 16, H/8, W/8) float32
    noise: Any  # same shape
    embeds: list[Any]  # B × (L_i, hidden)
    sigmas: list[float]
    weights: list[float]


def lr_factor(step: int, warmup: int, total: int, kind: str) -> float:
    """Multiplier of the base learning rate for the optimizer step with index ``step`` (0-based)."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if kind == "constant":
        return 1.0
    p = min(1.0, max(0.0, (step - warmup) / max(1, total - warmup)))
    if kind == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * p))
    return 1.0 - p


def make_optimizer(o: OptimSection, params: list[Any], cuda: bool):
    import torch

    if o.optimizer == "adamw8bit":
        if not cuda:
            raise RequestError(
                "8-bit AdamW needs an NVIDIA GPU (bitsandbytes); choose adamw on this machine."
            )
        try:
            import bitsandbytes as bnb
        except ImportError as exc:
            raise RequestError(
                "8-bit AdamW needs the bitsandbytes package; choose adamw or install it."
            ) from exc
        return bnb.optim.AdamW8bit(
            params, lr=o.learning_rate, betas=o.betas, eps=o.eps, weight_decay=o.weight_decay
        )
    extra = {"fused": True} if cuda else {"foreach": True}
    return torch.optim.AdamW(
        params, lr=o.learning_rate, betas=o.betas, eps=o.eps, weight_decay=o.weight_decay, **extra
    )


def block_lists(transformer: Any) -> list[tuple[str, Any]]:
    out = []
    for group in ("context_refiner", "noise_refiner", "layers"):
        for i, blk in enumerate(getattr(transformer, group, [])):
            out.append((f"{group}.{i}", blk))
    return out


def fixed_checkpointing(transformer: Any, mode: str) -> set[str]:
    """``full``: every block; ``off`` (or ``auto`` without a planner): none / every block."""
    return set() if mode == "off" else {n for n, _ in block_lists(transformer)}


class StepRunner:
    """Optimizer, schedule and the training step for the user adapter of ``transformer``."""

    def __init__(self, transformer: Any, cfg: TrainConfig, device: str) -> None:
        import torch

        self.tr = transformer
        self.cfg = cfg
        self.device = device
        self.cuda = device.startswith("cuda")
        self.input_dtype = next(transformer.all_x_embedder.parameters()).dtype
        self.autocast = self.input_dtype == torch.bfloat16
        self.params = user_parameters(transformer)
        if not self.params:
            raise RequestError("The LoRA targets matched no module of this model.")
        o = cfg.optim
        self.optimizer = make_optimizer(o, self.params, self.cuda)
        warmup, total, kind = o.warmup_steps, o.steps, o.schedule
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, warmup, total, kind)
        )
        self.checkpointed: set[str] = set()
        self.compiled = False
        self.plan: Any = None
        self.streamer: Any = None
        # data-parallel runs (#19): ``grad_sync(params, mean_loss) -> mean_loss`` averages the
        # gradients over the processes between the backward passes and the clip/step
        self.grad_sync: Any = None
        from peft.tuners.tuners_utils import BaseTunerLayer

        self._lora_layers = [m for m in transformer.modules() if isinstance(m, BaseTunerLayer)]
        # Under autocast PEFT would upcast every LoRA input to the fp32 weight dtype just for
        # autocast to cast it back (an activation-sized copy per module and pass): skip that.
        self.set_lora_input_cast(not self.autocast)

    def set_lora_input_cast(self, enabled: bool) -> None:
        """PEFT's cast of LoRA inputs to the LoRA weight dtype: off while training under
        autocast, on for inference without autocast (samples). Must not change between a
        forward and its backward (checkpoint recomputation replays the forward)."""
        for m in self._lora_layers:
            m.cast_input_dtype_enabled = enabled  # type: ignore[attr-defined]  # peft >= 0.18 attribute

    # -- setup --------------------------------------------------------------------------------
    def configure(self, image_tokens: int, caption_tokens: int = DEFAULT_BUDGET) -> dict[str, Any]:
        """Apply checkpointing, compile and attention backend; returns what was chosen."""
        import torch

        mem = self.cfg.memory
        if mem.attention_backend:
            self.tr.set_attention_backend(mem.attention_backend)
        from zitdesk.train.setup import planning

        self.plan = None
        if planning(self.cfg, self.device, self.tr):
            self.plan = self._apply_plan(image_tokens, caption_tokens)
            self.checkpointed = set(self.plan.checkpointed)
        else:
            self.checkpointed = fixed_checkpointing(self.tr, mem.gradient_checkpointing)
        self.install_checkpointing()
        if mem.compile and self.cuda:
            import torch._dynamo

            # persistent inductor / AOTAutograd / Triton caches in the app's cache folder (keyed
            # by torch build and GPU), shared with generation: a repeated run loads its graphs
            from zitdesk.engine.speed import use_compile_cache

            use_compile_cache(self.device)
            cfg = torch._dynamo.config
            cfg.recompile_limit = max(getattr(cfg, "recompile_limit", 8), 64)
            self.tr.compile_repeated_blocks(fullgraph=False)
            self.compiled = True
        self.tr.train()
        plan = self.plan
        return {
            "checkpointed_blocks": len(self.checkpointed),
            "blocks": len(block_lists(self.tr)),
            "compiled": self.compiled,
            "fp8_blocks": len(plan.fp8) if plan else 0,
            "streamed_blocks": len(plan.streamed) if plan else 0,
            "predicted_peak_gib": round(plan.peak / GiB, 2) if plan else None,
            "predicted_step_s": round(plan.step_s, 3) if plan else None,
            "budget_gib": round(plan.budget / GiB, 2) if plan and plan.budget else None,
        }

    def install_checkpointing(self) -> None:
        """Route every block call through :attr:`checkpointed` / :attr:`streamer`."""
        import torch

        if not (self.checkpointed or self.streamer is not None):
            if getattr(self.tr, "gradient_checkpointing", False):
                self.tr.disable_gradient_checkpointing()
            return
        chosen = {id(b) for n, b in block_lists(self.tr) if n in self.checkpointed}
        names = {id(b): n for n, b in block_lists(self.tr)}
        streamer = self.streamer

        def selective(module: Any, *args: Any) -> Any:
            name = names[id(module)]
            if id(module) not in chosen:
                if streamer is not None:
                    streamer.enter(name)
                return module(*args)
            if streamer is None:
                return torch.utils.checkpoint.checkpoint(
                    module.__call__, *args, use_reentrant=False
                )

            def run(*a: Any) -> Any:
                streamer.enter(name)
                out = module(*a)
                streamer.leave(name)
                return out

            return torch.utils.checkpoint.checkpoint(run, *args, use_reentrant=False)

        self.tr.enable_gradient_checkpointing(gradient_checkpointing_func=selective)

    def _apply_plan(self, image_tokens: int, caption_tokens: int) -> Any:
        """Plan with the real token counts and free memory; quantise / stream what it adds."""
        from zitdesk.train.precision import base_linears, block_of, quantize_fp8_module
        from zitdesk.train.setup import choose_plan, planner_input
        from zitdesk.train.streaming import BlockStreamer

        plan = choose_plan(
            planner_input(self.tr, self.cfg, self.device, image_tokens, caption_tokens),
            self.device,
        )
        prior = getattr(self.tr, "_zitdesk_plan", None)
        had = set(prior.fp8) if prior is not None else set()
        if self.cfg.model.base_precision == "fp8":
            had = set(plan.fp8)
        extra = set(plan.fp8) - had
        if extra:
            for name, _parent, _child, mod in base_linears(self.tr):
                if block_of(name) in extra and mod.weight.dtype.is_floating_point:
                    if "weight_scale" not in mod._buffers:
                        quantize_fp8_module(mod, mod.weight.detach(), self.input_dtype)
        if plan.streamed:
            self.streamer = BlockStreamer(self.tr, set(plan.streamed), self.device)
        self.tr._zitdesk_plan = plan
        return plan

    def uncompile(self) -> None:
        """Fall back to eager blocks (after a compiler failure)."""
        for _, blk in block_lists(self.tr):
            if getattr(blk, "_compiled_call_impl", None) is not None:
                blk._compiled_call_impl = None
        self.compiled = False

    # -- step ---------------------------------------------------------------------------------
    def _autocast(self):
        import torch

        if self.autocast:
            return torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def forward_loss(self, mb: MicroBatch):
        import torch

        dev = self.device
        x0 = mb.latents.to(dev, non_blocking=True)
        eps = mb.noise.to(dev, non_blocking=True)
        sig = torch.tensor(mb.sigmas, dtype=torch.float32).to(dev, non_blocking=True)
        w = torch.tensor(mb.weights, dtype=torch.float32).to(dev, non_blocking=True)
        s = sig.view(-1, 1, 1, 1)
        xt = (1.0 - s) * x0 + s * eps
        target = eps - x0
        x_list = [xi.unsqueeze(1).to(self.input_dtype) for xi in xt]
        caps = [e.to(dev, self.input_dtype, non_blocking=True) for e in mb.embeds]
        with self._autocast():
            out = self.tr(x_list, 1.0 - sig, caps, return_dict=False)[0]
        pred = -torch.stack([o.squeeze(1) for o in out]).float()
        if self.cfg.timesteps.differential_guidance:
            p = pred.detach()
            target = p + self.cfg.timesteps.differential_scale * (target - p)
        per = ((pred - target) ** 2).mean(dim=(1, 2, 3))
        return (per * w).mean()

    def train_step(self, micro_batches: list[MicroBatch]):
        """Forward/backward all micro-batches, clip, step, schedule; the mean loss (on device)."""
        import torch

        n = len(micro_batches)
        total = None
        for mb in micro_batches:
            loss = self.forward_loss(mb)
            (loss / n).backward()
            if self.streamer is not None:
                self.streamer.release()
            total = loss.detach() if total is None else total + loss.detach()
        mean = total / n  # type: ignore[operator]  # total is set: n >= 1 micro-batches ran
        if self.grad_sync is not None:
            mean = self.grad_sync(self.params, mean)
        if self.cfg.optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.cfg.optim.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        return mean

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
