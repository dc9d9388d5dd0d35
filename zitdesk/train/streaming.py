"""Torch side of the memory planner: measuring the model, the budget, and block streaming.

:func:`plan_input` describes a transformer for :mod:`zitdesk.train.memplan` (bytes of each
block's base Linears in bf16 and fp8, tokens through each block, the LoRA state).
:class:`BlockStreamer` keeps the base Linear weights of the streamed blocks in pinned RAM and
copies them to the GPU on a side stream (host → device only) one block ahead of use, in forward
order and again in backward order (the blocks are checkpointed, so the backward recomputes each
one right before its gradients): a block's GPU copy lives from its forward (or recompute) until
it is no longer referenced (the recompute's saved tensors hold it through the block's backward).
"""

from __future__ import annotations

import logging
from typing import Any

from zitdesk.train.memplan import BlockInfo, PlanInput, fp8_bytes, lora_state_bytes

log = logging.getLogger(__name__)

GROUP_ORDER = ("noise_refiner", "context_refiner", "layers")  # diffusers' forward order


def forward_blocks(transformer: Any) -> list[tuple[str, Any]]:
    """``(name, block)`` in the order the forward pass runs them."""
    out = []
    for group in GROUP_ORDER:
        for i, blk in enumerate(getattr(transformer, group, [])):
            out.append((f"{group}.{i}", blk))
    return out


def block_base_linears(block: Any) -> list[Any]:
    """The block's frozen quantisable base Linears (PEFT's ``base_layer`` seen through)."""
    from zitdesk.train.precision import base_linears

    return [mod for _n, _p, _c, mod in base_linears(block, quantizable_only=True, in_block=True)]


def _tensor_bytes(t: Any) -> int:
    return int(t.numel() * t.element_size())


def plan_input(
    transformer: Any,
    image_tokens: int,
    caption_tokens: int,
    optimizer: str,
    budget: int | None,
    **kw: Any,
) -> PlanInput:
    """The planner's view of ``transformer`` (weights anywhere; counts by shape and dtype)."""
    from zitdesk.train.adapters import user_parameters

    cap = -(-caption_tokens // 32) * 32
    img = -(-image_tokens // 32) * 32
    tokens = {"context_refiner": cap, "noise_refiner": img, "layers": img + cap}
    blocks = []
    in_blocks: set[int] = set()
    lora = {id(p) for p in user_parameters(transformer)}
    for name, blk in forward_blocks(transformer):
        lin = block_base_linears(blk)
        bf16 = fp8 = 0
        for m in lin:
            w = m.weight
            out_f, in_f = w.shape
            bf16 += out_f * in_f * 2
            fp8 += fp8_bytes(out_f, in_f)
            in_blocks.add(id(w))
            if "weight_scale" in m._buffers:
                in_blocks.add(id(m._buffers["weight_scale"]))
        fixed = 0
        for p in list(blk.parameters()) + list(blk.buffers()):
            if id(p) not in in_blocks and id(p) not in lora:
                fixed += _tensor_bytes(p)
                in_blocks.add(id(p))
        blocks.append(BlockInfo(name, tokens[name.split(".")[0]], bf16, fp8, fixed))
    other = 0
    for p in list(transformer.parameters()) + list(transformer.buffers()):
        if id(p) not in in_blocks and id(p) not in lora:
            other += _tensor_bytes(p)
    n_lora = sum(p.numel() for p in user_parameters(transformer))
    return PlanInput(
        blocks=tuple(blocks),
        dim=int(transformer.config.dim),
        other_bytes=other,
        lora_bytes=lora_state_bytes(n_lora, optimizer),
        budget=budget,
        **kw,
    )


def device_budget(transformer: Any, device: str, budget_gb: float) -> int:
    """Bytes the planned model may use on ``device``: the card's free memory plus what this
    process holds (or ``budget_gb``, if smaller), minus what other tensors hold."""
    import torch

    dev = torch.device(device)
    free, _total = torch.cuda.mem_get_info(dev)
    cap = free + torch.cuda.memory_reserved(dev)
    if budget_gb > 0:
        cap = min(cap, int(budget_gb * (1 << 30)))
    ours = 0
    for t in list(transformer.parameters()) + list(transformer.buffers()):
        if t.device.type == dev.type:
            ours += _tensor_bytes(t)
    others = max(0, torch.cuda.memory_allocated(dev) - ours)
    return cap - others


MEASURED_H2D: dict[str, float] = {}  # device -> bytes/s, measured once per process


def measure_h2d(device: str, nbytes: int = 256 << 20) -> float:
    """Pinned host → device copy speed (bytes/s), best of three; once per process."""
    import time

    import torch

    if device in MEASURED_H2D:
        return MEASURED_H2D[device]
    src = torch.empty(nbytes, dtype=torch.uint8, pin_memory=True)
    dst = torch.empty(nbytes, dtype=torch.uint8, device=device)
    best = float("inf")
    for _ in range(3):
        torch.cuda.synchronize(device)
        t = time.perf_counter()
        dst.copy_(src, non_blocking=True)
        torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - t)
    MEASURED_H2D[device] = nbytes / best
    return MEASURED_H2D[device]


class BlockStreamer:
    """Base weights of ``streamed`` blocks in pinned RAM, copied in one block ahead of use.

    On a CPU device (tests) the copies are plain clones and ``poison=True`` rests detached
    weights on NaN tensors, so a computation that touched a weight outside its window shows."""

    def __init__(
        self, transformer: Any, streamed: set[str], device: str, poison: bool = False
    ) -> None:
        import torch

        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.blocks = forward_blocks(transformer)
        self.names = [n for n, _ in self.blocks]
        self.tensors: dict[str, list[tuple[Any, Any, Any]]] = {}  # name -> [(t, host, rest)]
        for name, blk in self.blocks:
            if name not in streamed:
                continue
            triples = []
            for m in block_base_linears(blk):
                for t in (m.weight, m.bias, m._buffers.get("weight_scale")):
                    if t is None:
                        continue
                    host = torch.empty(t.shape, dtype=t.dtype, pin_memory=self.cuda)
                    host.copy_(t.detach())
                    rest = torch.full_like(host, float("nan")) if poison else host
                    t.data = rest
                    triples.append((t, host, rest))
            self.tensors[name] = triples
        self.stream = torch.cuda.Stream(self.device) if self.cuda else None
        self.pending: dict[str, tuple[Any, list[Any]]] = {}
        self.live: set[str] = set()
        self.copies = 0  # host → device copies made (tests, logs)
        self._seq = [(n, False) for n in self.names] + [(n, True) for n in reversed(self.names)]
        self._pos = {key: i for i, key in enumerate(self._seq)}
        for blk_name, blk in self.blocks:  # eager calls outside training (samples)
            if blk_name in streamed:
                blk.register_forward_pre_hook(self._pre_hook(blk_name))
                blk.register_forward_hook(self._post_hook(blk_name))
        if self.cuda:
            torch.cuda.empty_cache()

    @property
    def streamed_bytes(self) -> int:
        return sum(_tensor_bytes(h) for trip in self.tensors.values() for _t, h, _r in trip)

    # -- copies ---------------------------------------------------------------------------------
    def _fetch(self, name: str) -> None:
        import torch

        if name in self.pending or name in self.live:
            return
        self.copies += 1
        hosts = [h for _t, h, _r in self.tensors[name]]
        if not self.cuda:
            self.pending[name] = (None, [h.clone() for h in hosts])
            return
        gpu = [torch.empty(h.shape, dtype=h.dtype, device=self.device) for h in hosts]
        allocated = torch.cuda.Event()
        allocated.record()  # the side stream copies only after the main stream got here
        with torch.cuda.stream(self.stream):
            self.stream.wait_event(allocated)
            for g, h in zip(gpu, hosts, strict=True):
                g.copy_(h, non_blocking=True)
            done = torch.cuda.Event()
            done.record(self.stream)
        self.pending[name] = (done, gpu)

    def _attach(self, name: str) -> None:
        import torch

        if name in self.live:
            return
        self._fetch(name)
        done, gpu = self.pending.pop(name)
        if done is not None:
            torch.cuda.current_stream(self.device).wait_event(done)
        for g, (t, _h, _r) in zip(gpu, self.tensors[name], strict=True):
            t.data = g
        self.live.add(name)

    def _detach(self, name: str) -> None:
        for t, _h, rest in self.tensors[name]:
            t.data = rest
        self.live.discard(name)

    def release(self) -> None:
        """All streamed weights back to RAM (after the backward pass)."""
        for name in list(self.live):
            self._detach(name)

    # -- the training call -----------------------------------------------------------------------
    def enter(self, name: str) -> None:
        """Block ``name`` starts (forward, or its recompute in the backward)."""
        import torch

        backward = torch._C._current_graph_task_id() != -1
        if name in self.tensors:
            for other in list(self.live):
                if other != name:
                    self._detach(other)  # its backward is done: the next block's started
            self._attach(name)
        pos = self._pos[(name, backward)]
        for k in range(1, len(self._seq)):  # the next streamed block in call order
            nxt, _ = self._seq[(pos + k) % len(self._seq)]
            if nxt in self.tensors:
                if nxt != name:
                    self._fetch(nxt)
                break

    def leave(self, name: str) -> None:
        """Block ``name`` ran (checkpointed). In the forward it saved only its inputs; in the
        backward's recompute the checkpoint saved detached aliases of the weights it used, so
        their device copies live exactly until this block's gradients are done."""
        if name in self.tensors:
            self._detach(name)

    # Hooks for eager no-grad calls (samples, paused tries). Inside a compiled block dynamo
    # traces them: ``is_compiling()`` makes them no-ops there (torch bound outside the hook, so
    # the traced code has no import in it).
    def _pre_hook(self, name: str) -> Any:
        import torch

        def hook(_module: Any, _args: Any) -> None:
            if torch.compiler.is_compiling() or torch.is_grad_enabled():
                return  # training: the checkpoint wrapper attaches (core.StepRunner)
            self._attach(name)

        return hook

    def _post_hook(self, name: str) -> Any:
        import torch

        def hook(_module: Any, _args: Any, _out: Any) -> None:
            if torch.compiler.is_compiling() or torch.is_grad_enabled():
                return
            self._detach(name)

        return hook
