"""Test doubles for the UI: a scripted engine (after krita-ai-diffusion's MockClient) and fake
memory snapshots. The fake engine implements ``zitdesk.engine.protocol.Engine``."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from zitdesk.engine.cancel import CancelToken
from zitdesk.engine.events import (
    ImageReady,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobStarted,
    LoraReport,
    PhaseChanged,
    StepProgress,
)
from zitdesk.engine.protocol import Emit, Engine
from zitdesk.gpu import GpuReading, MemorySnapshot

GIB = 2**30


class FakeEngine:
    """Replays scripted events. ``script`` is one outcome per job (the last one repeats):

    * ``"finish"``: JobStarted, PhaseChanged, StepProgress × steps × count (with previews),
      ImageReady per image (a real PNG in ``image_dir``), JobFinished(peak_vram_bytes=peak)
    * ``"oom"``: progress, then JobFailed(kind="oom", retry_hint=...)
    * ``"fail"``: JobFailed(kind="error")
    * ``"block"``: JobStarted, then waits until the token is cancelled → JobCancelled
    * ``"raise"``: raises inside run (the worker must turn it into JobFailed)
    * ``"silent"``: returns without a terminal event
    """

    def __init__(
        self,
        script: str | list[str] = "finish",
        image_dir: str | Path | None = None,
        peak: int = 0,
        step_delay: float = 0.0,
        retry_hint: dict | None = None,
    ) -> None:
        self.script = [script] if isinstance(script, str) else list(script)
        self.image_dir = Path(image_dir) if image_dir else None
        self.peak = peak
        self.step_delay = step_delay
        self.retry_hint = (
            retry_hint if retry_hint is not None else {"memory_mode": "fp8", "vae_tiling": True}
        )
        self.requests: list[Any] = []
        self.threads: list[str] = []
        self.shutdown_calls = 0
        self.blocking = threading.Event()

    def _outcome(self) -> str:
        n = len(self.requests) - 1
        return self.script[min(n, len(self.script) - 1)]

    def run(self, request: Any, emit: Emit, cancel: CancelToken) -> None:
        self.requests.append(request)
        self.threads.append(threading.current_thread().name)
        outcome = self._outcome()
        job = request.job_id
        if outcome == "raise":
            raise RuntimeError("scripted crash")
        if outcome == "silent":
            return
        emit(JobStarted(job, total_steps=request.steps * request.count))
        if outcome == "block":
            self.blocking.set()
            deadline = time.monotonic() + 30
            while not cancel.cancelled and time.monotonic() < deadline:
                time.sleep(0.005)
            emit(JobCancelled(job))
            return
        if outcome == "fail":
            emit(
                JobFailed(
                    job, kind="error", message="Scripted failure.", traceback="Traceback: fake"
                )
            )
            return
        for lo in request.loras:
            emit(LoraReport(job, path=lo.path, matched=12, total_targets=12, message="ok"))
        emit(PhaseChanged(job, phase="denoising", detail="Image 1 of 1"))
        paths: list[str] = []
        for index in range(request.count):
            for step in range(1, request.steps + 1):
                if cancel.cancelled:
                    emit(JobCancelled(job, paths=tuple(paths)))
                    return
                preview = np.full((8, 8, 3), step * 20 % 256, dtype=np.uint8)
                emit(
                    StepProgress(
                        job,
                        step=step,
                        total=request.steps,
                        image_index=index,
                        image_count=request.count,
                        preview=preview,
                    )
                )
                if self.step_delay:
                    time.sleep(self.step_delay)
            if outcome == "oom":
                emit(
                    JobFailed(
                        job,
                        kind="oom",
                        retry_hint=dict(self.retry_hint),
                        traceback="oom tb",
                        message=f"The GPU ran out of memory at {request.width}×{request.height}; "
                        "memory was freed.",
                    )
                )
                return
            path = self._write_png(request, index)
            paths.append(path)
            emit(
                ImageReady(
                    job,
                    path=path,
                    seed=request.seed + index,
                    image_index=index,
                    width=request.width,
                    height=request.height,
                )
            )
        emit(JobFinished(job, paths=tuple(paths), elapsed_s=0.01, peak_vram_bytes=self.peak))

    def _write_png(self, request: Any, index: int) -> str:
        from PIL import Image

        # Never the working directory: the request's folder, else a temp folder of this engine.
        if self.image_dir is None and not request.output_dir:
            import tempfile

            self.image_dir = Path(tempfile.mkdtemp(prefix="zitdesk-fake-"))
        folder = self.image_dir or Path(request.output_dir)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"fake-{request.job_id}-{index}.png"
        Image.new("RGB", (64, 64), (40 + index * 30, 90, 160)).save(path)
        return str(path)

    def shutdown(self) -> None:
        self.shutdown_calls += 1


_check: Engine = FakeEngine()  # type-checks the protocol


def cpu_snapshot() -> MemorySnapshot:
    return MemorySnapshot(
        (),
        "NVMLError_LibraryNotFound: NVML Shared Library Not Found",
        300 * 2**20,
        6 * GIB,
        32 * GIB,
    )


def gpu_snapshot(used: int = 3 * GIB, total: int = 24 * GIB) -> MemorySnapshot:
    return MemorySnapshot(
        (GpuReading(0, "NVIDIA GeForce RTX 4090", used, total, 37, 61, 120.0),),
        "",
        2 * GIB,
        12 * GIB,
        64 * GIB,
        1 * GIB,
        2 * GIB,
    )
