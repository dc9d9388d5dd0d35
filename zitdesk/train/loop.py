"""The step loop of a training job: micro-batches, optimizer steps, pause points, the schedule of
saves and sample rounds.

:class:`LoopMixin` (a part of the job, over :class:`~zitdesk.train.runstate.RunState`): ``_loop``
runs to the configured step count (or a cancel), then saves the final LoRA. Randomness per
micro-batch (σ, noise, caption dropout) is a pure function of the seed and the step, so a resumed
run repeats an uninterrupted one; a pause changes nothing of the training state.
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import Any

from zitdesk.train.checkpoint import (
    list_checkpoints,
)
from zitdesk.train.dataset import (
    derive_seed,
)
from zitdesk.train.events import Paused, Resumed
from zitdesk.train.render import RenderMixin
from zitdesk.train.reporter import LossReporter
from zitdesk.train.saving import SaveMixin
from zitdesk.train.timesteps import sample_sigmas

log = logging.getLogger(__name__)


class LoopMixin(SaveMixin, RenderMixin):
    """The training loop of the job (saves and renders on its schedule)."""

    # -- loop ---------------------------------------------------------------------------------
    def _micro_batch(self, index: int, batch: tuple[int, ...]):
        import torch

        from zitdesk.train.core import MicroBatch

        cfg = self.cfg
        lat = torch.stack([self.cache.latent(i) for i in batch])
        rng = random.Random(derive_seed("dropout", cfg.optim.seed, index))
        embeds = []
        for i in batch:
            drop = cfg.data.caption_dropout > 0 and rng.random() < cfg.data.caption_dropout
            key = self.cache.empty_key if drop else self.cache.caption_keys[self.entries[i].item]
            embeds.append(self.text[key])
        t = cfg.timesteps
        sig, w = sample_sigmas(
            t.mode, len(batch), cfg.optim.seed, index, t.shift, t.anchor_steps, t.jitter
        )
        g = torch.Generator().manual_seed(derive_seed("noise", cfg.optim.seed, index))
        noise = torch.randn(lat.shape, generator=g, dtype=torch.float32)
        return MicroBatch(lat, noise, embeds, sig, w)

    def _step_micro_batches(self) -> list[Any]:
        """This process's micro-batches of the step: the step takes ``accum × world`` batches of
        the shared order and this rank its slice (one process: all of them); the index of each
        is its place in the step's global order, so the randomness matches one process."""
        from zitdesk.train.distributed import rank_slice

        world, accum = self.world, self.accum
        batches = [self.cursor.next() for _ in range(accum * world.size)]
        mine = rank_slice(batches, world.rank, world.size)
        first = self.step * accum * world.size + world.rank * accum
        return [self._micro_batch(first + a, b) for a, b in enumerate(mine)]

    def _grad_sync(self, params: Any, loss: Any) -> Any:
        loss, stop = self.world.sync(params, loss, self.cancel.cancelled)
        self.stop_flags.append(stop)
        return loss

    def _stop_due(self) -> bool:
        """Parallel runs: whether any rank asked to stop, read from the flag of the step before
        the last (long finished on the GPU, so reading it stalls nothing); every rank reads the
        same step's flag, so all stop after the same step."""
        if len(self.stop_flags) < 2:
            return False
        self.stop_all = self.stop_all or bool(self.stop_flags.pop(0).item() > 0)
        return self.stop_all

    def _one_step(self) -> Any:
        cursor_state = self.cursor.state()
        if self.world.parallel:
            self.runner.grad_sync = self._grad_sync
        mbs = self._step_micro_batches()
        if not self.runner.compiled:
            return self.runner.train_step(mbs)
        try:
            return self.runner.train_step(mbs)
        except Exception as exc:  # a compiler failure (first step or a new bucket shape) must
            # not end the run: retry this step eagerly; a real error fails again, uncompiled
            from zitdesk.engine.generate import is_oom

            if is_oom(exc):
                raise
            log.exception("compiled step failed; continuing without torch.compile")
            self.runner.optimizer.zero_grad(set_to_none=True)
            self.runner.uncompile()
            self.cursor.epoch, self.cursor.pos = cursor_state["epoch"], cursor_state["pos"]
            self.warn(f"torch.compile failed ({type(exc).__name__}); training without it")
            mbs = self._step_micro_batches()
            return self.runner.train_step(mbs)

    def _pause_point(self) -> None:
        """Pause: save the LoRA as of this step, serve interjected "try" generations with it
        until resumed or cancelled. Nothing here changes the training state (RNG included)."""
        if not self.cancel.paused:
            return
        self.reporter.flush()
        lora = self.last_lora if self.saved_step == self.step else ""
        if not lora:
            # Only the LoRA (a full checkpoint of the real model takes ~6 s to write; the next
            # scheduled one, or a cancel, writes it). The pause changes nothing of the training.
            self._phase("saving", f"Step {self.step} (paused)")
            lora = str(self._write_step_lora()[2])
            self.last_lora, self.saved_step = lora, self.step
        self._record(status="paused")
        self.emit(Paused(self.job, step=self.step, lora_path=lora))
        while not self.cancel.cancelled:
            item = self.cancel.take_interjected()
            if item is not None:
                self._serve_try(*item)
                continue
            if not self.cancel.paused:
                break
            self.cancel.wait_for_work(timeout=0.5)
        if not self.cancel.cancelled:
            self._record(status="running")
            self.emit(Resumed(self.job, step=self.step))
        self.reporter.reset_clock()

    def _loop(self) -> dict[str, Any]:
        cfg = self.cfg
        total = cfg.optim.steps
        self.reporter = LossReporter(self.emit, self.job, total, self.cuda, self._extra_eta)
        plan = self.memory_plan
        self._phase(
            "training",
            f"{self.device}, base {self.base_precision}, "
            f"checkpointing {plan['checkpointed_blocks']}/{plan['blocks']} blocks"
            + (
                f", {plan['streamed_blocks']} streamed from RAM"
                if plan.get("streamed_blocks")
                else ""
            )
            + (
                f", planned peak {plan['predicted_peak_gib']} GiB"
                if plan.get("predicted_peak_gib")
                else ""
            )
            + (", compiled" if plan["compiled"] else ""),
        )
        t_start = time.perf_counter()
        start_step = self.step
        main = self.world.main  # a data-parallel run: rank 0 alone samples and saves
        if (
            main
            and cfg.sample.at_start
            and self.step == 0
            and cfg.sample.prompts
            and 0 not in self.sampled
        ):
            self._sample(0)
        cancelled = False
        while self.step < total:
            if not self.world.parallel:
                self._pause_point()
            # parallel: every rank stops after the same step (the flag rides the gradient sync)
            if self._stop_due() if self.world.parallel else self.cancel.cancelled:
                cancelled = True
                break
            loss = self._one_step()
            self.step += 1
            self.reporter.add(self.step, loss, self.runner.lr)
            if self.step >= total:
                break
            if cfg.save.every and self.step % cfg.save.every == 0:
                self._save()
            if (
                main
                and cfg.sample.every
                and cfg.sample.prompts
                and self.step % cfg.sample.every == 0
            ):
                self._sample(self.step)
        self.reporter.flush()
        train_s = time.perf_counter() - t_start
        paths = self._save(final=not cancelled)
        if (
            main
            and not cancelled
            and cfg.sample.prompts
            and cfg.sample.every
            and self.step not in self.sampled
        ):
            self._sample(self.step)
            self._save_state_only()
        if main and not cancelled:
            self._write_preview(Path(paths[0]))
        ckpts = list_checkpoints(self.ckroot)
        stats = {
            "steps": self.step,
            "device": self.device,
            "base_precision": self.base_precision,
            "adapter_mode": self.prepared.adapter_mode,
            "final_loss": self.reporter.last_loss,
            "losses": self.reporter.losses[-2000:],
            "seconds_per_step": train_s / max(1, self.step - start_step),
            "cache": vars(self.cache.stats),
            "memory": self.memory_plan,
            "checkpoint": str(ckpts[-1].path) if ckpts else "",
            "processes": self.world.size,
        }
        peak = 0
        if self.cuda:
            import torch

            peak = int(torch.cuda.max_memory_allocated(self.device))
        return {"cancelled": cancelled, "paths": paths, "stats": stats, "peak_vram_bytes": peak}

    def _extra_eta(self, step: int) -> float:
        """Seconds of sample rounds and saves still due after ``step`` (measured durations of the
        last ones; a first round not yet measured counts as 0)."""
        cfg = self.cfg
        total = cfg.optim.steps
        left = range(step + 1, total)
        saves = 1 + (sum(1 for s in left if s % cfg.save.every == 0) if cfg.save.every else 0)
        rounds = 0
        if cfg.sample.every and cfg.sample.prompts:
            rounds = sum(1 for s in left if s % cfg.sample.every == 0) + 1
        return saves * self.save_s + rounds * self.sample_s
