"""Training events (past tense, frozen, picklable), beside the generic job events.

A training job emits ``JobStarted(kind="train")``, ``PhaseChanged`` (loading, caching, training,
sampling, saving), then per optimizer step :class:`TrainStep`, and :class:`SampleReady`,
:class:`CheckpointSaved`, :class:`Paused` / :class:`Resumed` as they happen, and finally exactly
one of ``JobFinished`` / ``JobCancelled`` / ``JobFailed`` (from :mod:`zitdesk.engine.events`).
On CUDA a step's loss is read one step late (no GPU sync per step), so ``TrainStep`` for step N
may arrive while step N + 1 runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from zitdesk.engine.events import EngineEvent


@dataclass(frozen=True)
class TrainStep(EngineEvent):
    step: int = 0  # optimizer steps done (1-based)
    total: int = 0
    loss: float = 0.0  # weighted flow-matching loss of this step (mean of micro-batches)
    lr: float = 0.0
    it_s: float = 0.0  # optimizer steps per second (smoothed)
    eta_s: float = 0.0  # seconds left for the training steps (samples/saves excluded)
    phase_eta_s: float = 0.0  # seconds left including the sample rounds and saves still due
    vram_bytes: int = 0  # GPU memory allocated by this process now (0 on the CPU)


@dataclass(frozen=True)
class SampleReady(EngineEvent):
    paths: tuple[str, ...] = ()
    contact_sheet: str = ""  # grid of all sample rounds so far (rows = steps)
    step: int = 0


@dataclass(frozen=True)
class CheckpointSaved(EngineEvent):
    path: str = ""  # the checkpoint folder
    step: int = 0
    lora_path: str = ""  # the LoRA file written with it


@dataclass(frozen=True)
class Paused(EngineEvent):
    step: int = 0
    lora_path: str = ""  # the LoRA as of this step, written at the pause ("Try it" uses it)


@dataclass(frozen=True)
class Resumed(EngineEvent):
    step: int = 0
