"""How a training job's exceptions become ``JobFailed`` events (and one plain sentence).

:func:`failure` is the training job's terminal failure (``kind="oom"`` names the next lower VRAM
preset in ``retry_hint``); :func:`try_failure` is the failure of one "try" image served while
training is paused (the training job goes on).
"""

from __future__ import annotations

import logging
import traceback

from zitdesk.engine.events import JobFailed
from zitdesk.errors import LoraError, ModelError, RequestError, ZitdeskError
from zitdesk.train.config import TrainConfig
from zitdesk.train.presets import lower_preset

log = logging.getLogger(__name__)

_FAILURE_KINDS: dict[type[BaseException], str] = {
    ModelError: "model",
    LoraError: "lora",
    RequestError: "request",
}


def free_memory() -> None:
    """Release cached GPU memory (the engine's one way to do it)."""
    from zitdesk.engine import generate

    generate.free_memory()


def failure(job: str, cfg: TrainConfig, exc: Exception, phase: str) -> JobFailed:
    from zitdesk.engine.generate import is_oom

    tb = traceback.format_exc()
    if is_oom(exc):
        free_memory()
        lower = lower_preset(cfg)
        advice = (
            f"choose the '{lower}' VRAM preset"
            if lower
            else "lower the training resolution to 512 px"
        )
        return JobFailed(
            job,
            kind="oom",
            traceback=tb,
            retry_hint={"preset": lower} if lower else {},
            message=f"The GPU ran out of memory while {phase}; memory was freed — {advice}, "
            "then resume.",
        )
    kind = _FAILURE_KINDS.get(type(exc), "error")
    if isinstance(exc, ZitdeskError):
        return JobFailed(job, kind=kind, message=str(exc), traceback=tb)
    log.error("training failed:\n%s", tb)
    from zitdesk.errors import user_message

    return JobFailed(
        job,
        kind="error",
        traceback=tb,
        message=f"Training stopped while {phase}: {user_message(exc)}",
    )


def try_failure(job: str, exc: Exception) -> JobFailed:
    from zitdesk.engine.generate import is_oom

    tb = traceback.format_exc()
    if is_oom(exc):
        free_memory()
        return JobFailed(
            job,
            kind="oom",
            traceback=tb,
            message=(
                "The GPU ran out of memory for this image beside the paused training; try a smaller "
                "size, or resume and generate after training."
            ),
        )
    kind = _FAILURE_KINDS.get(type(exc), "error")
    if isinstance(exc, ZitdeskError):
        return JobFailed(job, kind=kind, message=str(exc), traceback=tb)
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    return JobFailed(
        job,
        kind="error",
        traceback=tb,
        message=f"The try image failed: {type(exc).__name__}: {first}",
    )
