"""Loss reporting of a training job: per-step loss tensors → :class:`TrainStep` events.

:class:`LossReporter` avoids a GPU sync per step; :class:`Diverged` is raised when the loss is
not a number.
"""

from __future__ import annotations

import collections
import time
from typing import Any

from zitdesk.engine.protocol import Emit
from zitdesk.errors import ZitdeskError
from zitdesk.train.events import TrainStep


class Diverged(ZitdeskError):
    """The loss became NaN or infinite."""


class LossReporter:
    """Turns per-step loss tensors into :class:`TrainStep` events without a GPU sync per step.

    On CUDA each loss is copied to pinned memory asynchronously and reported once its copy has
    landed (usually one step later); at most two steps are in flight. On CPU it is immediate.
    """

    def __init__(self, emit: Emit, job: str, total: int, cuda: bool, extra_eta: Any = None) -> None:
        self.emit, self.job, self.total, self.cuda = emit, job, total, cuda
        self.extra_eta = extra_eta  # step -> seconds of sampling/saving still due
        self.pending: collections.deque = collections.deque()
        self.times: collections.deque = collections.deque(maxlen=20)
        self.last_loss = float("nan")
        self.losses: list[tuple[int, float]] = []

    def reset_clock(self) -> None:
        self.times.clear()

    def add(self, step: int, loss: Any, lr: float) -> None:
        if self.cuda:
            import torch

            buf = torch.empty((), dtype=torch.float32, pin_memory=True)
            buf.copy_(loss.detach().float(), non_blocking=True)
            ev = torch.cuda.Event()
            ev.record()
            self.pending.append((step, buf, ev, lr))
            while self.pending and (self.pending[0][2].query() or len(self.pending) > 2):
                s, b, e, r = self.pending.popleft()
                e.synchronize()
                self._report(s, float(b), r)
        else:
            self._report(step, float(loss), lr)

    def flush(self) -> None:
        while self.pending:
            s, b, e, r = self.pending.popleft()
            e.synchronize()
            self._report(s, float(b), r)

    def _report(self, step: int, value: float, lr: float) -> None:
        import math

        if not math.isfinite(value):
            raise Diverged(
                f"Training diverged at step {step} (the loss is not a number); "
                "lower the learning rate and resume from the last checkpoint."
            )
        now = time.perf_counter()
        self.times.append(now)
        self.last_loss = value
        self.losses.append((step, value))
        it_s = 0.0
        if len(self.times) >= 2:
            it_s = (len(self.times) - 1) / max(self.times[-1] - self.times[0], 1e-9)
        eta = (self.total - step) / it_s if it_s > 0 else 0.0
        vram = 0
        if self.cuda:
            import torch

            vram = int(torch.cuda.memory_allocated())
        extra = float(self.extra_eta(step)) if self.extra_eta is not None else 0.0
        self.emit(
            TrainStep(
                self.job,
                step=step,
                total=self.total,
                loss=value,
                lr=lr,
                it_s=it_s,
                eta_s=eta,
                phase_eta_s=eta + extra if eta > 0 else 0.0,
                vram_bytes=vram,
            )
        )
