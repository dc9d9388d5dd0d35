"""The app's data-parallel training job: a child run of ``zitdesk train --gpus`` (issue #19).

A :class:`~zitdesk.train.config.TrainSpec` with ``data_parallel`` (two or more GPUs, or
``processes`` > 1 on the CPU) cannot train on the engine thread: it needs one process per card.
:func:`run_data_parallel` is the engine-thread job for it. It writes the config as TOML into a
private temp folder, starts ``zitdesk train job.toml --json --gpus 0,1`` (the command line of this
installation, :func:`zitdesk.paths.cli_command`), reads the JSON lines rank 0 prints on stdout
(:func:`zitdesk.cli.events.event_json`) and emits them again as the real event dataclasses with
the app's job id. So the Train tab sees the same events as for an in-process run.

* **One terminal event, always.** It is held until the child has ended. When the child ends
  without one, the job fails with the launcher's one sentence (the last ``zitdesk: …`` line on
  stderr), never a traceback; the stderr tail goes into ``JobFailed.traceback`` (the details).
* **Stop.** The engine's cancel token is polled while reading (a reader thread feeds a queue, so
  a silent child does not block the poll). On a cancel a stop file is written, whose path the
  child got in ``ZITDESK_STOP_FILE``: every rank stops after the same step and rank 0 saves a
  checkpoint and the LoRA (exit 130, ``JobCancelled``). A child still running
  :data:`STOP_GRACE_S` after the stop file is ended (its process group, then its whole tree).
* **Pause** is not supported for these runs (the ranks would have to wait together); the run
  view disables it and says so.

No Qt here; torch is not imported in this process (the child does the work).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import typing
from collections import deque
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

from zitdesk.engine.cancel import CancelToken
from zitdesk.engine.events import (
    EngineEvent,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobStarted,
    JobWarning,
    PhaseChanged,
)
from zitdesk.engine.protocol import Emit

log = logging.getLogger(__name__)

STOP_ENV = "ZITDESK_STOP_FILE"
STOP_GRACE_S = 120.0  # after the stop file: how long the ranks get to finish the step and save
KILL_GRACE_S = 20.0  # after terminating the process group: how long before the tree is killed
POLL_S = 0.2
ORPHAN_S = 30.0  # the child ended but its stdout stays open (a rank left behind): stop reading
STDERR_LINES = 400  # the stderr tail kept for the failure's details
NO_PAUSE = "A run on several GPUs can't pause; it goes on (Stop keeps a checkpoint)."


# -- events back from JSON lines ----------------------------------------------------------------


def _event_classes() -> dict[str, type]:
    from zitdesk.engine import events as engine_events
    from zitdesk.train import events as train_events

    found: dict[str, type] = {}
    for module in (engine_events, train_events):
        for name in dir(module):
            obj = getattr(module, name)
            if isinstance(obj, type) and is_dataclass(obj) and issubclass(obj, EngineEvent):
                found[obj.__name__] = obj
    return found


_CLASSES: dict[str, type] | None = None


def decode_event(line: str, job_id: str) -> EngineEvent | None:
    """One JSON line of ``zitdesk train --json`` as its event dataclass with ``job_id``; None for
    a line that is not an event, or an event this version does not know."""
    global _CLASSES
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    if _CLASSES is None:
        _CLASSES = _event_classes()
    cls = _CLASSES.get(str(doc.get("event", "")))
    if cls is None:
        return None
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name == "job_id" or f.name not in doc:
            continue
        value = doc[f.name]
        if f.name == "preview":  # an image does not travel as JSON (str() of an array)
            continue
        if isinstance(value, list) and typing.get_origin(hints.get(f.name)) is tuple:
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        kwargs[f.name] = value
    try:
        return cls(job_id, **kwargs)
    except TypeError:
        log.debug("could not rebuild %s from %r", cls.__name__, doc)
        return None


# -- the child's command ------------------------------------------------------------------------


def child_command(spec: Any, config_file: Path) -> list[str]:
    """``zitdesk train job.toml --json --gpus 0,1`` (``--processes N`` on the CPU)."""
    from zitdesk.paths import cli_command

    cmd = [*cli_command(), "train", str(config_file), "--json"]
    if spec.gpus and len(spec.gpus) > 1:
        cmd += ["--gpus", ",".join(str(int(g)) for g in spec.gpus)]
    else:
        cmd += ["--processes", str(int(spec.processes))]
    if spec.resume:
        cmd.append("--resume")
    return cmd


def launcher_sentence(lines: Any) -> str:
    """The last non-empty ``zitdesk: …`` line of stderr (warnings left out), made a sentence for
    the app: ``""`` when there is none."""
    for line in reversed(list(lines)):
        text = line.strip()
        if not text.startswith("zitdesk: ") or text.startswith("zitdesk: warning:"):
            continue
        text = text.removeprefix("zitdesk: ").strip()
        text = text.replace("(continue with --resume)", "(resume the run to continue it)")
        text = text.replace("resume with --resume", "resume the run to continue it")
        if text:
            return text[0].upper() + text[1:]
    return ""


class _Child:
    """The running ``zitdesk train`` process: its stdout lines in a queue, its stderr tail."""

    def __init__(self, cmd: list[str], env: dict[str, str]) -> None:
        kwargs: dict[str, Any] = {}
        if sys.platform == "win32":
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
        else:
            kwargs["start_new_session"] = True
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=env,
            **kwargs,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr: deque[str] = deque(maxlen=STDERR_LINES)
        self._readers = [
            threading.Thread(target=self._read_stdout, name="train-child-out", daemon=True),
            threading.Thread(target=self._read_stderr, name="train-child-err", daemon=True),
        ]
        for t in self._readers:
            t.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        try:
            for line in self.proc.stdout:
                self.lines.put(line)
        finally:
            self.lines.put(None)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line.rstrip("\n"))
            log.debug("train child: %s", line.rstrip())

    def join_readers(self, timeout: float = 10.0) -> None:
        for t in self._readers:
            t.join(timeout)

    def terminate(self) -> None:
        """End the child: its process group (torchrun's agent stops the ranks), then, if it is
        still there after :data:`KILL_GRACE_S`, every process of its tree."""
        if self.proc.poll() is not None:
            return
        tree = _descendants(self.proc.pid)
        try:
            if sys.platform == "win32":
                self.proc.send_signal(signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]
            else:
                os.killpg(self.proc.pid, signal.SIGTERM)
        except (OSError, ValueError):
            pass
        try:
            self.proc.wait(KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            pass
        for p in [*tree, *_descendants(self.proc.pid)]:
            try:
                p.kill()
            except Exception:  # noqa: BLE001 - already gone
                pass
        if self.proc.poll() is None:
            self.proc.kill()


def _descendants(pid: int) -> list[Any]:
    try:
        import psutil

        return list(psutil.Process(pid).children(recursive=True))
    except Exception:  # noqa: BLE001 - psutil missing or the process gone: nothing to add
        return []


# -- the job -----------------------------------------------------------------------------------


def run_data_parallel(spec: Any, emit: Emit, cancel: CancelToken) -> None:
    """Run a data-parallel ``spec`` as a child ``zitdesk train`` (see the module docstring).
    Emits ``JobStarted``, the child's events and exactly one terminal event; never raises."""
    job = spec.job_id
    terminal: EngineEvent
    folder = ""
    try:
        emit(
            JobStarted(
                job,
                kind="train",
                total_steps=spec.config.optim.steps,
                detail=spec.config.save.name,
            )
        )
        folder = tempfile.mkdtemp(prefix="zitdesk-train-")
        terminal = _follow(spec, Path(folder), emit, cancel)
    except Exception as exc:  # noqa: BLE001 - every failure becomes an event
        from zitdesk.errors import user_message

        log.exception("the data-parallel run %s could not run", job)
        terminal = JobFailed(job, kind="error", message=user_message(exc))
    finally:
        if folder:
            shutil.rmtree(folder, ignore_errors=True)
    try:
        emit(terminal)
    except Exception:  # noqa: BLE001 - a broken listener must not escape the engine thread
        log.exception("the terminal event of %s could not be delivered", job)


def _follow(spec: Any, folder: Path, emit: Emit, cancel: CancelToken) -> EngineEvent:
    """Start the child, pass its events on, stop it on a cancel; the terminal event."""
    from zitdesk.engine.lanes import where_label

    job = spec.job_id
    config_file = spec.config.write(folder / "job.toml")  # atomic (zitdesk.io)
    stop_file = folder / "stop"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", STOP_ENV: str(stop_file)}
    emit(PhaseChanged(job, phase="loading", detail=f"Starting the run on {where_label(spec)}"))
    child = _Child(child_command(spec, config_file), env)
    try:
        return _read(spec, child, stop_file, emit, cancel)
    except BaseException:  # a listener or the disk failed: the child must not run on alone
        child.terminate()
        raise


def _read(
    spec: Any, child: _Child, stop_file: Path, emit: Emit, cancel: CancelToken
) -> EngineEvent:
    """Pass the child's events on until it ends; the terminal event."""
    job = spec.job_id
    held: EngineEvent | None = None  # the child's terminal event, passed on once it has ended
    last_lora = ""
    stop_at: float | None = None
    terminated = False
    ended = 0.0
    while True:
        if cancel.paused and not cancel.cancelled:  # (the run view offers no Pause for these)
            cancel.resume()
            emit(JobWarning(job, message=NO_PAUSE))
        if cancel.cancelled and stop_at is None:
            from zitdesk.io import atomic_write

            atomic_write(stop_file, "stop\n")
            stop_at = time.monotonic()
        if stop_at is not None and not terminated and time.monotonic() - stop_at > STOP_GRACE_S:
            log.warning("the training processes did not stop in %.0f s; ending them", STOP_GRACE_S)
            child.terminate()
            terminated = True
        try:
            line = child.lines.get(timeout=POLL_S)
        except queue.Empty:
            if child.proc.poll() is not None:  # ended, but something of it holds stdout open
                ended = ended or time.monotonic()
                if time.monotonic() - ended > ORPHAN_S:
                    break
            continue
        if line is None:  # stdout closed: the child is ending
            break
        ev = decode_event(line, job)
        if ev is None or isinstance(ev, JobStarted):  # (JobStarted was said already)
            continue
        if isinstance(ev, (JobFinished, JobCancelled, JobFailed)):
            held = ev
            continue
        lora = getattr(ev, "lora_path", "")
        if lora:
            last_lora = str(lora)
        emit(ev)
    code = _wait(child)
    child.join_readers()
    return _terminal(spec, held, code, list(child.stderr), stop_at is not None, last_lora)


def _wait(child: _Child) -> int:
    """The child's exit code (its stdout closed: it is on its way out; one that hangs there is
    ended after :data:`STOP_GRACE_S`)."""
    try:
        return child.proc.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        child.terminate()
        return child.proc.wait()


def _terminal(
    spec: Any,
    held: EngineEvent | None,
    code: int,
    stderr: list[str],
    stopped: bool,
    last_lora: str,
) -> EngineEvent:
    job = spec.job_id
    sentence = launcher_sentence(stderr)
    details = "\n".join(stderr)[-8000:]
    if isinstance(held, (JobFinished, JobCancelled)):
        return held
    if isinstance(held, JobFailed):
        own = " ".join(held.message.split())
        hint = dict(held.retry_hint)
        if not sentence:
            return JobFailed(job, held.kind, held.message, details, hint)
        if own and own.rstrip(".") in sentence:  # rank 0's own failure: keep its kind and hint
            return JobFailed(job, held.kind, sentence, details, hint)
        return JobFailed(job, kind="error", message=sentence, traceback=details)  # another rank
    if stopped:  # stopped by the user, ended before it could say so (or ended by us)
        return JobCancelled(job, paths=(last_lora,) if last_lora else ())
    if not sentence:
        sentence = (
            f"The training processes ended without a result (exit code {code}); the last "
            "checkpoint is kept, resume the run to continue it."
        )
    return JobFailed(job, kind="error", message=sentence, traceback=details)
