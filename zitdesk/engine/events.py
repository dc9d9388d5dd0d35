"""Past-tense event dataclasses the engine emits; every one carries the job id.

They are frozen and picklable (numpy arrays and plain values only, never torch tensors or Qt
objects), so the UI can pass them through ``Signal(object)`` and training could later move to a
child process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class EngineEvent:
    job_id: str


@dataclass(frozen=True)
class JobStarted(EngineEvent):
    kind: str = "generate"  # generate | train
    total_steps: int = 0
    detail: str = ""


@dataclass(frozen=True)
class PhaseChanged(EngineEvent):
    """Loading the model, encoding the prompt, denoising, decoding, saving..."""

    phase: str = ""
    detail: str = ""


@dataclass(frozen=True)
class JobWarning(EngineEvent):
    """Something the user should know that does not stop the job (e.g. a prompt cut at 512 tokens)."""

    message: str = ""


@dataclass(frozen=True)
class StepProgress(EngineEvent):
    step: int = 0  # 1-based, within the current image
    total: int = 0
    image_index: int = 0  # 0-based image within the job
    image_count: int = 1
    preview: Any = None  # uint8 numpy array (H, W, 3), a cheap latent-to-RGB preview
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class ImageReady(EngineEvent):
    path: str = ""
    seed: int = 0
    image_index: int = 0
    width: int = 0
    height: int = 0


@dataclass(frozen=True)
class LoraReport(EngineEvent):
    """Coverage of one LoRA of the stack, reported before generation starts."""

    path: str = ""
    matched: int = 0
    total_targets: int = 0
    unknown_keys: tuple[str, ...] = ()
    arch: str = ""
    dialect: str = ""
    message: str = ""
    warnings: tuple[str, ...] = ()  # what may make the result differ from the trainer's


@dataclass(frozen=True)
class JobFinished(EngineEvent):
    paths: tuple[str, ...] = ()
    elapsed_s: float = 0.0
    peak_vram_bytes: int = 0  # 0 when unknown (CPU)
    stats: dict = field(default_factory=dict)


@dataclass(frozen=True)
class JobCancelled(EngineEvent):
    paths: tuple[str, ...] = ()  # images finished before the cancel are kept


@dataclass(frozen=True)
class JobFailed(EngineEvent):
    kind: str = "error"  # error | oom | model | lora | request
    message: str = ""  # one plain sentence for the user
    traceback: str = ""  # for the log / "details" button
    retry_hint: dict = field(default_factory=dict)  # e.g. {"memory_mode": "model_offload"}


TERMINAL_EVENTS = (JobFinished, JobCancelled, JobFailed)
