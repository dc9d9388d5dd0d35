"""The run registry: one ``run.json`` per training output folder, and the queries the app needs.

The trainer writes ``<output>/run.json`` (atomically, :func:`zitdesk.io.atomic_write`) when a job
starts, at every checkpoint, pause and resume, and when it ends. The record names the process
that writes it (pid and that process's start time), so a record that still says ``running`` or
``paused`` while its writer is gone belongs to a run that was killed or crashed:
:func:`unfinished_runs` lists those, :func:`resume_spec` continues one from its newest
checkpoint. A run whose writer is alive — the app's own job, or ``zitdesk train`` in a terminal —
is not unfinished.

Where runs are found: every ``run.json`` one level below a runs root (default
:func:`runs_root`, ``<data>/runs``, which is also a LoRA Library folder), plus runs written
elsewhere (``save.output_dir`` anywhere, e.g. from the CLI): for those the trainer leaves a small
link file ``<runs root>/.links/<hash>.json`` naming the output folder (one file per run, so two
writers never share a file).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from zitdesk.io import atomic_write

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
STATUSES = ("running", "paused", "finished", "cancelled", "failed", "interrupted")
LIVE = ("running", "paused")


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    name: str = ""
    status: str = "running"  # running | paused | finished | cancelled | failed | interrupted
    output_dir: str = ""
    config_path: str = ""  # the config file the run came from ("" when built in the app)
    dataset: str = ""  # the dataset folder
    preset: str = ""  # memory.preset (VRAM tier) of the config
    steps_done: int = 0
    steps_total: int = 0
    final_loss: float | None = None  # the last reported loss
    lora_path: str = ""  # the newest LoRA file (the final one once finished)
    last_sample: str = ""  # the newest sample image
    started_at: float = 0.0  # unix time
    ended_at: float = 0.0
    error: str = ""  # the failure's plain sentence
    model_path: str = ""
    error_kind: str = ""  # JobFailed.kind (oom | model | lora | request | error)
    retry_preset: str = ""  # after an out-of-memory failure: the lower preset to resume with
    pid: int = 0  # the writing process
    pid_started: float = 0.0  # its start time (tells a reused pid apart)
    job_id: str = ""

    @property
    def path(self) -> Path:
        return Path(self.output_dir) / RUN_FILE

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunRecord:
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        if not isinstance(kw.get("run_id"), str) or not kw["run_id"]:
            raise ValueError("run.json has no run_id")
        if kw.get("status") not in STATUSES:
            kw["status"] = "interrupted"
        return cls(**kw)


def runs_root() -> Path:
    """The default folder of new runs (``<data>/runs``); a LoRA Library folder too
    (``zitdesk.library.roots.auto_roots``)."""
    from zitdesk.library.roots import runs_lora_dir

    return runs_lora_dir()


def process_start_time(pid: int) -> float | None:
    """Start time of process ``pid`` (unix seconds), None when there is no such process."""
    try:
        import psutil

        return float(psutil.Process(pid).create_time())
    except ImportError:  # pragma: no cover - psutil is a dependency
        try:
            os.kill(pid, 0)
        except OSError:
            return None
        return 0.0
    except Exception:  # noqa: BLE001 - NoSuchProcess, AccessDenied, zombie …
        return None


def _zombie(pid: int) -> bool:
    try:
        import psutil

        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except Exception:  # noqa: BLE001
        return False


def writer_alive(record: RunRecord) -> bool:
    """True while the process that wrote ``record`` still runs."""
    if record.pid <= 0:
        return False
    started = process_start_time(record.pid)
    if started is None or _zombie(record.pid):
        return False
    if record.pid_started and started and abs(started - record.pid_started) > 2.0:
        return False  # the pid was reused by another process
    return True


def read_run(path: str | os.PathLike[str]) -> RunRecord | None:
    """The record in ``path`` (a ``run.json`` or its folder); None when missing or unreadable."""
    p = Path(path)
    if p.is_dir():
        p = p / RUN_FILE
    try:
        rec = RunRecord.from_dict(json.loads(p.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as exc:
        if p.exists():
            log.warning("unreadable run record %s: %s", p, exc)
        return None
    if Path(rec.output_dir).resolve() != p.parent.resolve():
        rec = replace(rec, output_dir=str(p.parent))  # the folder was moved
    return rec


def write_run(record: RunRecord) -> Path:
    out = Path(record.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = atomic_write(out / RUN_FILE, record.to_json())
    _link(out)
    return path


def _link(out: Path) -> None:
    """Make a run outside the runs root findable (one link file per output folder)."""
    root = runs_root()
    try:
        real = out.resolve()
        if real.parent == root.resolve():
            return
        key = hashlib.sha1(str(real).encode()).hexdigest()[:16]
        link = root / ".links" / f"{key}.json"
        if not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(link, json.dumps({"output_dir": str(real)}))
    except OSError as exc:
        log.warning("could not register run %s: %s", out, exc)


def _candidates(root: Path) -> list[Path]:
    out: list[Path] = []
    try:
        for d in root.iterdir():
            if d.is_dir() and not d.name.startswith(".") and (d / RUN_FILE).is_file():
                out.append(d)
    except OSError:
        return out
    links = root / ".links"
    if links.is_dir():
        for f in links.glob("*.json"):
            try:
                target = Path(json.loads(f.read_text(encoding="utf-8"))["output_dir"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if (target / RUN_FILE).is_file():
                out.append(target)
    return out


def list_runs(roots: list[str | os.PathLike[str]] | None = None) -> list[RunRecord]:
    """Every run found under ``roots`` (default: :func:`runs_root` and its links), newest first."""
    seen: set[str] = set()
    records: list[RunRecord] = []
    for root in [Path(r) for r in roots] if roots is not None else [runs_root()]:
        if (root / RUN_FILE).is_file():
            dirs = [root]
        else:
            dirs = _candidates(root)
        for d in dirs:
            key = os.path.normcase(str(d.resolve()))
            if key in seen:
                continue
            seen.add(key)
            rec = read_run(d)
            if rec is not None:
                records.append(rec)
    records.sort(key=lambda r: r.started_at, reverse=True)
    return records


def unfinished_runs(roots: list[str | os.PathLike[str]] | None = None) -> list[RunRecord]:
    """Runs that say running/paused but whose writer process is gone (killed, crashed)."""
    return [r for r in list_runs(roots) if r.status in LIVE and not writer_alive(r)]


def mark_interrupted(record: RunRecord, error: str = "") -> RunRecord:
    """Record that ``record``'s run stopped without ending (it can still be resumed)."""
    rec = replace(
        record,
        status="interrupted",
        ended_at=record.ended_at or time.time(),
        error=error or record.error,
        pid=0,
        pid_started=0.0,
    )
    write_run(rec)
    return rec


def resume_spec(record: RunRecord, preset: str | None = None):
    """A :class:`~zitdesk.train.config.TrainSpec` that continues ``record``'s run from its newest
    checkpoint (with ``preset``, e.g. one VRAM tier down after an out-of-memory failure)."""
    from zitdesk.errors import RequestError
    from zitdesk.train.config import TrainConfig, TrainSpec
    from zitdesk.train.presets import apply_preset

    used = Path(record.output_dir) / "train_config.toml"
    path = used if used.is_file() else Path(record.config_path) if record.config_path else None
    if path is None or not path.is_file():
        raise RequestError(
            f"The run {record.name or record.run_id} has no config file left in {record.output_dir}; "
            "start it again from its settings."
        )
    cfg = TrainConfig.load(path)
    if Path(cfg.save.output_dir or "").expanduser().resolve() != Path(record.output_dir).resolve():
        cfg = cfg.with_changes(save={"output_dir": str(record.output_dir)})
    if preset:
        cfg = apply_preset(cfg, preset)
    return TrainSpec(config=cfg.validate(), resume=True, config_path=record.config_path)


# -- the trainer's side ----------------------------------------------------------------------
@dataclass
class RunLog:
    """Keeps one run's record and rewrites ``run.json`` on each change (used by the trainer)."""

    record: RunRecord
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def start(cls, spec, output_dir: Path, model_path: str) -> RunLog:
        cfg = spec.config
        old = read_run(output_dir) if spec.resume else None
        me = os.getpid()
        now = time.time()
        base = old or RunRecord(
            run_id=f"{cfg.save.name}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}",
            started_at=now,
        )
        rec = replace(
            base,
            name=cfg.save.name,
            status="running",
            output_dir=str(output_dir),
            config_path=spec.config_path or base.config_path,
            dataset=cfg.data.folder,
            preset=cfg.memory.preset,
            steps_total=cfg.optim.steps,
            model_path=model_path,
            ended_at=0.0,
            error="",
            error_kind="",
            retry_preset="",
            pid=me,
            pid_started=process_start_time(me) or 0.0,
            job_id=spec.job_id,
        )
        log_ = cls(rec)
        log_.write()
        return log_

    def update(self, **changes: Any) -> None:
        self.record = replace(self.record, **changes)
        self.write()

    def write(self) -> None:
        try:
            write_run(self.record)
        except OSError as exc:  # the record is a convenience; never fail a run for it
            log.warning("could not write %s: %s", self.record.path, exc)
