"""``zitdesk train CONFIG.toml [--resume]``: the trainer on the command line, with a progress bar.

Also runnable alone: ``python -m zitdesk.cli.train CONFIG.toml [--resume]``.

* ``--init`` writes a starting config to CONFIG and exits: the ``--preset`` given, else the tier
  of the GPU found, else ``24gb``; ``--model``/``--data``/``--out``/``--trigger`` fill the paths.
* Ctrl-C once: finish the current step, save a checkpoint and the LoRA, exit 130; twice: stop now
  (the last checkpoint is still intact, ``--resume`` continues from it).
* ``--json``: every event as a JSON line on stdout (:func:`~zitdesk.cli.events.event_json`).
* ``--gpus N`` / ``--gpus 0,2``: data-parallel training, one process per GPU (torchrun, NCCL);
  ``--processes N``: the same on the CPU (gloo), for tests and CPU boxes. See docs/multi-gpu.md.
* ``ZITDESK_STOP_FILE`` (set by the app for a data-parallel run): when that file appears, stop
  as Ctrl-C once does (every rank watches it).
* Exit codes: 0 finished, 1 failed (one plain sentence on stderr), 2 usage, 130 cancelled.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

from zitdesk.cli.common import (
    EXIT_CANCELLED,
    EXIT_ERROR,
    OneLineParser,
    configure_logging,
    run_guarded,
)
from zitdesk.cli.events import EventPrinter


def add_train_parser(subparsers: Any) -> argparse.ArgumentParser:
    from zitdesk.train.presets import PRESETS

    t = subparsers.add_parser(
        "train",
        help="train a LoRA from a TOML config",
        description="Train a Z-Image LoRA. See docs/training.md.",
    )
    t.add_argument("config", help="training config (TOML)")
    t.add_argument(
        "--resume",
        action="store_true",
        help="continue from the newest checkpoint in the output folder",
    )
    t.add_argument("--init", action="store_true", help="write a starting config to CONFIG and exit")
    t.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="VRAM preset to apply (with --init, or on top of CONFIG)",
    )
    t.add_argument("--model", help="--init: base model path")
    t.add_argument("--data", help="--init: dataset folder")
    t.add_argument("--out", help="--init: output folder")
    t.add_argument("--trigger", help="--init: trigger word")
    t.add_argument(
        "--device", default=None, help="cuda, cuda:1 or cpu (default: the config's, else auto)"
    )
    t.add_argument(
        "--gpus",
        default=None,
        help="train data-parallel on N GPUs (2) or on these GPUs (0,2); see docs/multi-gpu.md",
    )
    t.add_argument(
        "--processes",
        type=int,
        default=None,
        help="train data-parallel in N processes on the CPU (gloo)",
    )
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--json", action="store_true", help="print events as JSON lines on stdout")
    t.set_defaults(func=cmd_train)
    return t


def _init_config(args: argparse.Namespace) -> int:
    from zitdesk.train.config import TrainConfig
    from zitdesk.train.presets import DEFAULT_PRESET, apply_preset

    path = Path(args.config)
    if path.exists():
        print(f"zitdesk: {path} exists; not overwriting it.", file=sys.stderr)
        return EXIT_ERROR
    cfg = apply_preset(TrainConfig(), args.preset or _detected_preset() or DEFAULT_PRESET)
    changes: dict[str, dict[str, Any]] = {}
    if args.model:
        changes["model"] = {"path": str(Path(args.model).resolve())}
    if args.data or args.trigger:
        d: dict[str, str] = {}
        if args.data:
            d["folder"] = str(Path(args.data).resolve())
        if args.trigger:
            d["trigger"] = args.trigger
        changes["data"] = d
    if args.out:
        changes["save"] = {"output_dir": str(Path(args.out).resolve())}
    if args.trigger:
        changes["sample"] = {"prompts": ("a photo of [trigger]",)}
    cfg = cfg.with_changes(**changes) if changes else cfg
    cfg.write(path)
    print(str(path))
    return 0


def _detected_preset() -> str | None:
    """The VRAM tier of the first CUDA GPU, if there is one."""
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        from zitdesk.train.presets import preset_for_vram

        return preset_for_vram(torch.cuda.get_device_properties(0).total_memory / 2**30)
    except Exception:  # noqa: BLE001 - detection is a convenience only
        return None


def _describe(printer: EventPrinter, ev: Any) -> None:
    from zitdesk.engine.events import PhaseChanged
    from zitdesk.train.events import CheckpointSaved, Paused, SampleReady, TrainStep

    if isinstance(ev, TrainStep):
        eta = f"{int(ev.eta_s // 60)}:{int(ev.eta_s % 60):02d}" if ev.eta_s else "?"
        printer.progress(
            ev.step, f"loss {ev.loss:.4f}, lr {ev.lr:.2e}, {ev.it_s:.2f} it/s, ETA {eta}"
        )
    elif isinstance(ev, PhaseChanged) and ev.detail and ev.phase not in ("training", "saving"):
        printer.info(f"[{ev.phase}] {ev.detail}")
    elif isinstance(ev, CheckpointSaved):
        printer.info(f"saved step {ev.step}: {ev.lora_path}")
    elif isinstance(ev, SampleReady):
        printer.info(f"samples at step {ev.step}: {ev.contact_sheet}")
    elif isinstance(ev, Paused):
        printer.info(f"paused at step {ev.step}")


def cmd_train(args: argparse.Namespace) -> int:
    """``zitdesk train``; errors reach :func:`~zitdesk.cli.common.run_guarded` (one sentence, exit 1)."""
    if args.device:
        from zitdesk.engine.requests import require_device

        args.device = require_device(args.device)  # before the config: a bad flag is named first
    if args.init:
        return _init_config(args)
    from zitdesk.engine.cancel import CancelToken
    from zitdesk.engine.events import JobCancelled, JobFinished
    from zitdesk.engine.studio import StudioEngine
    from zitdesk.train.config import TrainConfig, TrainSpec
    from zitdesk.train.presets import apply_preset

    warnings: list[str] = []
    cfg = TrainConfig.load(args.config, warnings)
    if args.preset:
        cfg = apply_preset(cfg, args.preset)
    if args.device:
        cfg = cfg.with_changes(model={"device": args.device})
    for w in warnings:
        print(f"zitdesk: warning: {w}", file=sys.stderr)
    cfg.validate()
    if args.gpus or args.processes:
        return _launch(args)
    from zitdesk.train import distributed

    world = distributed.env_world()
    if world is not None and world.size > 1:  # a process of a data-parallel run (under torchrun)
        cuda = (args.device or "").startswith("cuda")
        if cuda:
            cfg = cfg.with_changes(model={"device": f"cuda:{world.local_rank}"})
        distributed.init_from_env(cuda)
    quiet = world is not None and world.rank > 0  # rank 0 tells the progress
    spec = TrainSpec(config=cfg, resume=args.resume, config_path=str(args.config))
    cancel = CancelToken()
    _watch_stop_file(cancel)
    printer = EventPrinter(
        _describe,
        cfg.optim.steps,
        bar=not (args.quiet or args.json or quiet),
        info=not (args.json or quiet),
        warnings=not (args.json or quiet),
        json_lines=args.json and not quiet,
    )

    def on_sigint(signum, frame) -> None:
        if cancel.cancelled:
            raise KeyboardInterrupt
        printer.info("stopping after this step (press Ctrl-C again to stop now)…")
        cancel.cancel()

    old = signal.signal(signal.SIGINT, on_sigint) if _main_thread() else None
    try:
        # The app's job path: the same StudioEngine.run → Trainer.run the engine thread calls.
        engine = StudioEngine(device=None if args.device == "auto" else args.device)
        code = printer.run(
            lambda: engine.run(spec, printer, cancel),
            cancel,
            interrupted="stopped; resume with --resume.",
        )
    finally:
        if old is not None:
            signal.signal(signal.SIGINT, old)
        if world is not None:
            distributed.shutdown()
    if code is not None:
        return code
    ev = printer.terminal
    if world is not None and world.size > 1 and not isinstance(ev, JobFinished):
        from zitdesk.train.launch import write_report

        # the launcher tells the first failure in one sentence
        write_report(getattr(ev, "message", "") or "cancelled")
        return EXIT_CANCELLED if isinstance(ev, JobCancelled) else EXIT_ERROR
    if isinstance(ev, JobCancelled) and args.json:
        return EXIT_CANCELLED
    saved = ", ".join(ev.paths) if isinstance(ev, JobCancelled) else ""
    code = printer.exit_code(
        cancelled=f"cancelled; saved {saved or 'nothing'}. Resume with --resume."
    )
    if code is not None:
        return code
    if isinstance(ev, JobFinished) and not args.json and not quiet:
        st = ev.stats
        print(
            f"done: {st.get('steps')} steps, final loss {st.get('final_loss', float('nan')):.4f}, "
            f"{ev.elapsed_s:.0f} s",
            file=sys.stderr,
        )
        for p in ev.paths:
            print(p)
    return 0


def _watch_stop_file(cancel: Any) -> None:
    """The app's Stop for a run in child processes (``zitdesk.train.parallel_job``): when the
    file named by ``ZITDESK_STOP_FILE`` appears, cancel (finish the step, save, exit 130). Every
    rank watches; the gradient sync's stop flag makes them stop after the same step."""
    import os
    import threading
    import time

    path = os.environ.get("ZITDESK_STOP_FILE", "")
    if not path:
        return

    def watch() -> None:
        while not cancel.cancelled:
            if os.path.exists(path):
                cancel.cancel()
                return
            time.sleep(0.5)  # a file another process writes: nothing to wait on but the clock

    threading.Thread(target=watch, name="stop-file", daemon=True).start()


def _launch(args: argparse.Namespace) -> int:
    """``--gpus`` / ``--processes``: re-run this command under torchrun, one process per rank."""
    from zitdesk.train.launch import check_gpus, launch, parse_gpus

    if args.gpus and args.processes:
        print("zitdesk: give --gpus or --processes, not both.", file=sys.stderr)
        return EXIT_ERROR
    child = [str(args.config)]
    if args.resume:
        child.append("--resume")
    if args.preset:
        child += ["--preset", args.preset]
    if args.quiet:
        child.append("--quiet")
    if args.json:
        child.append("--json")
    if args.processes:
        if args.processes < 1:
            print("zitdesk: --processes takes a number of processes (2).", file=sys.stderr)
            return EXIT_ERROR
        return launch(child, args.processes, None, cuda=False)
    n, ids = parse_gpus(args.gpus)
    check_gpus(n, ids)
    if n == 1:  # one card: no process group, just that device
        args.device, args.gpus = f"cuda:{ids[0] if ids else 0}", None
        return cmd_train(args)
    return launch(child, n, ids, cuda=True)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def main(argv: list[str] | None = None) -> int:
    """``python -m zitdesk.cli.train CONFIG [--resume]``: ``zitdesk train`` on its own."""
    configure_logging()
    parser = OneLineParser(prog="zitdesk")
    sub = parser.add_subparsers(dest="command", required=True)
    add_train_parser(sub)
    args = parser.parse_args(["train", *(sys.argv[1:] if argv is None else argv)])
    return run_guarded(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
