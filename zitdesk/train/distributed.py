"""Data-parallel LoRA training: one process per GPU over ``torch.distributed`` (issue #19).

The processes are started by ``torchrun`` (:mod:`zitdesk.train.launch`; ``zitdesk train CONFIG
--gpus N``). Each runs the whole job on its own card; what makes them one run:

* **Data.** Every rank walks the same batch order (a pure function of the seed, as in one
  process). An optimizer step consumes ``grad_accum × world`` batches of that order; rank ``r``
  trains on the ``r``-th slice of ``grad_accum`` of them (:func:`rank_slice`). Each batch of an
  epoch goes to exactly one rank, and every rank runs the same number of steps (the order runs on
  across epochs, so there is no uneven tail). Micro-batch randomness uses the global micro-batch
  index, so a run on ``W`` processes with ``grad_accum A`` trains the LoRA a single process trains
  with ``grad_accum A·W`` (same effective batch), up to float summation order.
* **Gradients.** Only the LoRA parameters' gradients are averaged, in one flat bucket per step
  (:meth:`World.sync`); the bucket also carries the loss (so every rank reports the mean) and a
  stop flag (a cancel on any rank stops all of them after the same step).
* **Files.** Rank 0 builds the caches, then a barrier lets the others read them; rank 0 alone
  writes the run record, checkpoints, samples and LoRA files (all atomic, :mod:`zitdesk.io`).
* **Failures.** Collectives time out (``ZITDESK_DIST_TIMEOUT_S``, default 1800 s); a failing rank
  ends its process, torchrun stops the others, and the launcher prints one sentence. Checkpoints
  are atomic, so the last one stays and ``--resume`` continues, with the same or another number
  of processes (:func:`resume_accum` keeps the effective batch).

Not imported by the single-process path: :func:`current` is a :class:`World` of one there.
"""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class World:
    """This process's place in the run: ``rank`` of ``size`` (a single process: 0 of 1)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        return self.size > 1

    def barrier(self) -> None:
        if self.parallel:
            import torch.distributed as dist

            dist.barrier()

    def broadcast_params(self, params: Sequence[Any]) -> None:
        """Rank 0's values of ``params`` on every rank (one flat bucket)."""
        if not self.parallel or not params:
            return
        import torch
        import torch.distributed as dist

        with torch.no_grad():
            flat = torch.cat([p.detach().reshape(-1).float() for p in params])
            dist.broadcast(flat, src=0)
            offset = 0
            for p in params:
                n = p.numel()
                p.copy_(flat[offset : offset + n].view_as(p).to(p.dtype))
                offset += n

    def sync(self, params: Sequence[Any], loss: Any, stop: bool) -> tuple[Any, Any]:
        """Average the gradients of ``params`` and ``loss`` over the ranks (one all-reduce of one
        flat bucket); returns ``(mean loss, stop)``, both 0-d tensors on the device (no host
        sync here): ``stop > 0`` when any rank asked to stop."""
        if not self.parallel:
            return loss, stop
        import torch
        import torch.distributed as dist

        dev = loss.device
        parts = [
            (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).float()
            for p in params
        ]
        extra = torch.stack(
            [loss.detach().float().reshape(()), torch.tensor(float(stop), device=dev)]
        )
        flat = torch.cat([*parts, extra])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= self.size
        offset = 0
        for p in params:
            n = p.numel()
            g = flat[offset : offset + n].view_as(p).to(p.dtype)
            if p.grad is None:
                p.grad = g.clone()
            else:
                p.grad.copy_(g)
            offset += n
        return flat[-2].clone(), flat[-1].clone()  # clones: the bucket itself is freed


_WORLD = World()


def current() -> World:
    """The world this process trains in (set up by :func:`init_from_env`; else one process)."""
    return _WORLD


def env_world() -> World | None:
    """The world torchrun describes in the environment (RANK, WORLD_SIZE, LOCAL_RANK), if any."""
    try:
        size = int(os.environ["WORLD_SIZE"])
        rank = int(os.environ["RANK"])
    except (KeyError, ValueError):
        return None
    return World(rank=rank, size=size, local_rank=int(os.environ.get("LOCAL_RANK", rank)))


def timeout_s() -> float:
    try:
        return float(os.environ.get("ZITDESK_DIST_TIMEOUT_S", DEFAULT_TIMEOUT_S))
    except ValueError:
        return DEFAULT_TIMEOUT_S


def init_from_env(cuda: bool) -> World:
    """Join the process group torchrun set up (NCCL on CUDA, gloo on the CPU); returns the world."""
    global _WORLD
    world = env_world()
    if world is None or world.size <= 1:
        _WORLD = World()
        return _WORLD
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        kwargs: dict[str, Any] = {"timeout": datetime.timedelta(seconds=timeout_s())}
        if cuda:
            torch.cuda.set_device(world.local_rank)
            kwargs["device_id"] = torch.device("cuda", world.local_rank)
        dist.init_process_group(backend="nccl" if cuda else "gloo", **kwargs)
    _WORLD = world
    return world


def shutdown() -> None:
    global _WORLD
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    except Exception:  # noqa: BLE001 - shutting down after a failure: nothing more to do
        log.debug("could not destroy the process group", exc_info=True)
    _WORLD = World()


def rank_slice(batches: Sequence[Any], rank: int, size: int) -> list[Any]:
    """The ``rank``-th of ``size`` equal consecutive slices of one step's batches."""
    if len(batches) % size:
        raise ValueError(f"{len(batches)} batches do not split over {size} processes")
    per = len(batches) // size
    return list(batches[rank * per : (rank + 1) * per])


def resume_accum(
    saved_accum: int, saved_world: int, config_accum: int, world: int
) -> tuple[int, str]:
    """Per-process grad-accum for a resume on ``world`` processes of a checkpoint written by
    ``saved_world`` processes accumulating ``saved_accum`` each: the one that keeps the effective
    batch, with a note; else the config's, with a warning (``""``: nothing changed)."""
    total = saved_accum * saved_world
    if saved_world == world:
        return config_accum, ""
    if total % world == 0:
        accum = total // world
        return accum, (
            f"The checkpoint was trained on {saved_world} process(es); on {world} the effective "
            f"batch is kept with grad-accum {accum} per process."
        )
    return config_accum, (
        f"The checkpoint was trained on {saved_world} process(es) with {total} micro-batches per "
        f"step, which do not split over {world}; continuing with grad-accum {config_accum} per "
        f"process ({config_accum * world} micro-batches per step), so the run differs from an "
        "uninterrupted one."
    )
