"""``--selftest``: prove an installation (source checkout or frozen bundle) works end to end.

No model files and no network are needed. In a temporary folder it

1. builds the tiny random-weight Z-Image model (real classes, real diffusers layout),
2. generates an image through the real :class:`~zitdesk.engine.generate.GenerationEngine`,
3. trains two LoRA steps with the real :class:`~zitdesk.train.trainer.Trainer`,
4. loads that LoRA through the engine (same seed, so the LoRA's effect is measured),
5. opens and closes the main window offscreen (``ui=True``; the only part that needs Qt),

and returns one verdict line. Everything the steps write (config, cache, outputs) goes to the
temporary folder (``ZITDESK_HOME`` points there while it runs), which is removed afterwards.

This module stays Qt-free and never imports ``ui``: the window step is passed in by the UI side
(:func:`ui.selftest.main`, called by ``main.py --selftest`` and the frozen launcher).

Command line (what ``main.py --selftest`` and the frozen app call)::

    zitdesk --selftest [--no-ui | --ui-only] [--device cpu|cuda] [--log FILE] [--keep]

Exit code 0 = PASS, 1 = FAIL. The verdict is the last line on stdout (and in ``--log FILE``,
which is how CI reads it from a windowed Windows executable that has no stdout).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zitdesk import __version__

VERDICT_PREFIX = "zitdesk selftest:"
PROMPT = "a red fox in the snow"


class SelftestFailure(Exception):
    """A step ran but its result was wrong (the message says what)."""


def _say(log: Callable[[str], None] | None, text: str) -> None:
    if log is not None:
        log(text)


def _build_model(tmp: Path) -> tuple[Path, str]:
    from zitdesk.models.tiny import save_tiny_model

    model = save_tiny_model(tmp / "tiny-model", "diffusers", seed=0)
    if not (model / "model_index.json").is_file():
        raise SelftestFailure("the tiny model has no model_index.json")
    return model, "tiny model written"


def _generate(engine: Any, tmp: Path, loras: tuple = ()) -> tuple[Any, list]:
    from zitdesk.engine.cancel import CancelToken
    from zitdesk.engine.events import JobFailed, JobFinished
    from zitdesk.engine.requests import GenerateRequest

    req = GenerateRequest(
        prompt=PROMPT,
        width=64,
        height=64,
        steps=2,
        seed=7,
        loras=loras,
        output_dir=str(tmp / ("out-lora" if loras else "out")),
        preview_every=1,
    ).validate()
    events: list = []
    engine.run(req, events.append, CancelToken())
    last = events[-1] if events else None
    if isinstance(last, JobFailed):
        raise SelftestFailure(f"generation failed ({last.kind}): {last.message}")
    if not isinstance(last, JobFinished) or len(last.paths) != 1:
        raise SelftestFailure(f"generation ended with {type(last).__name__}, not one image")
    from PIL import Image

    with Image.open(last.paths[0]) as im:
        im.load()
        if im.size != (64, 64):
            raise SelftestFailure(f"the generated image is {im.size[0]}×{im.size[1]}, not 64×64")
        pixels = im.convert("RGB")
    return pixels, events


def _train(model: Path, tmp: Path, device: str) -> tuple[Path, str]:
    import numpy as np
    from PIL import Image

    from zitdesk.engine.cancel import CancelToken
    from zitdesk.engine.events import JobFailed, JobFinished
    from zitdesk.train.config import TrainConfig, TrainSpec
    from zitdesk.train.events import TrainStep
    from zitdesk.train.trainer import Trainer

    data = tmp / "dataset"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i, caption in enumerate(("a red square on grey", "a blue circle on white")):
        img = (rng.random((64, 64, 3)) * 255).astype("uint8")
        Image.fromarray(img).save(data / f"{i:02d}.png")
        (data / f"{i:02d}.txt").write_text(caption, encoding="utf-8")
    cfg = TrainConfig().with_changes(
        model={"path": str(model), "base_precision": "fp32", "device": device},
        data={
            "folder": str(data),
            "resolutions": (64,),
            "cache_dir": str(tmp / "train-cache"),
            "caption_dropout": 0.0,
        },
        lora={"rank": 4, "alpha": 4.0},
        optim={"steps": 2, "learning_rate": 1e-2, "seed": 1},
        memory={"gradient_checkpointing": "off", "compile": False},
        save={"output_dir": str(tmp / "train-out"), "name": "selftest", "every": 0},
        sample={"every": 0},
    )
    events: list = []
    Trainer(device=device).run(TrainSpec(config=cfg), events.append, CancelToken())
    last = events[-1] if events else None
    if isinstance(last, JobFailed):
        raise SelftestFailure(f"training failed ({last.kind}): {last.message}")
    if not isinstance(last, JobFinished):
        raise SelftestFailure(f"training ended with {type(last).__name__}")
    steps = [e for e in events if isinstance(e, TrainStep)]
    loras = [Path(p) for p in last.paths if str(p).endswith(".safetensors")]
    if len(steps) != 2 or not loras or not loras[0].is_file():
        raise SelftestFailure(f"training reported {len(steps)} steps and files {list(last.paths)}")
    return loras[0], f"2 LoRA steps trained (loss {steps[-1].loss:.3f})"


def _apply_lora(engine: Any, tmp: Path, lora: Path, base_pixels: Any) -> str:
    import numpy as np

    from zitdesk.engine.events import LoraReport
    from zitdesk.engine.requests import LoraSpec

    pixels, events = _generate(engine, tmp, loras=(LoraSpec(path=str(lora), weight=1.0),))
    reports = [e for e in events if isinstance(e, LoraReport)]
    if not reports or reports[0].matched <= 0:
        raise SelftestFailure("the trained LoRA matched no module of the model")
    rep = reports[0]
    if rep.unknown_keys:
        raise SelftestFailure(
            f"the trained LoRA has {len(rep.unknown_keys)} keys the loader does not know"
        )
    diff = float(
        np.abs(
            np.asarray(pixels, dtype=np.float32) - np.asarray(base_pixels, dtype=np.float32)
        ).mean()
    )
    return f"LoRA loaded ({rep.matched}/{rep.total_targets} modules, mean pixel change {diff:.2f})"


WindowStep = Callable[[str], str]
"""The window step: model path (or "") → a short description; raises with a plain sentence."""


def run_selftest(
    ui: bool = True,
    device: str | None = None,
    keep: bool = False,
    log: Callable[[str], None] | None = None,
    engine: bool = True,
    window: WindowStep | None = None,
) -> tuple[bool, str]:
    """Run every step; return ``(passed, verdict line)``. Never raises for a failing step.

    ``engine=False`` skips the torch steps (model, generation, training, LoRA) and only opens
    the window: the smoke test of a PySide6-only freeze, which has no torch. The window step is
    ``window`` (given by the UI side, :func:`ui.selftest.main`; this package never imports
    ``ui``); without it the window is not checked and the log says so.
    """
    from zitdesk.offline import enforce_offline

    enforce_offline()
    t_start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="zitdesk-selftest-"))
    saved_env = {k: os.environ.get(k) for k in ("ZITDESK_HOME", "TQDM_DISABLE")}
    os.environ["ZITDESK_HOME"] = str(tmp / "home")  # settings, caches, outputs stay in tmp
    os.environ["TQDM_DISABLE"] = "1"
    done: list[str] = []
    step = "starting"
    dev = "?"
    torch_version = "?"
    try:
        if engine:
            step = "import torch"
            import torch

            torch_version = torch.__version__
            from zitdesk.engine.generate import default_device

            dev = device or default_device()
        else:
            torch_version, dev = "not used", "no engine"
        _say(log, f"selftest: zitdesk {__version__}, torch {torch_version}, device {dev}, in {tmp}")

        def timed(name: str, fn: Callable[[], Any]) -> Any:
            nonlocal step
            step = name
            t0 = time.perf_counter()
            result = fn()
            text = result[-1] if isinstance(result, tuple) else result
            line = f"{text} ({time.perf_counter() - t0:.1f} s)"
            done.append(line)
            _say(log, f"  ok  {line}")
            return result

        model = tmp / "tiny-model"
        if engine:
            from zitdesk.engine.generate import GenerationEngine

            model, _ = timed("tiny model", lambda: _build_model(tmp))
            gen = GenerationEngine(model_path=str(model), device=dev)
            gen.preview_min_interval_s = 0.0
            try:
                base_pixels = timed(
                    "generate", lambda: (*_generate(gen, tmp), "64×64 image generated (2 steps)")
                )[0]
                lora, _ = timed("train", lambda: _train(model, tmp, dev))
                timed("load LoRA", lambda: _apply_lora(gen, tmp, lora, base_pixels))
            finally:
                gen.shutdown()
        if ui and window is not None:
            timed("main window", lambda: window(str(model) if engine else ""))
        elif ui:
            _say(
                log,
                "  --  main window not checked (started without the UI: use the app's --selftest)",
            )
        if not done:
            raise SelftestFailure("nothing was tested (--no-ui together with --ui-only)")
        total = time.perf_counter() - t_start
        verdict = (
            f"{VERDICT_PREFIX} PASS - {'; '.join(done)} "
            f"[zitdesk {__version__}, torch {torch_version}, {dev}, "
            f"{'frozen' if getattr(sys, 'frozen', False) else 'source'}, {total:.1f} s]"
        )
        return True, verdict
    except Exception as exc:  # noqa: BLE001 - the verdict reports every failure
        _say(log, traceback.format_exc().rstrip())
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        kind = "" if isinstance(exc, SelftestFailure) else f"{type(exc).__name__}: "
        verdict = (
            f"{VERDICT_PREFIX} FAIL at '{step}' - {kind}{first} "
            f"[zitdesk {__version__}, torch {torch_version}, {dev}, {platform.system()}, "
            f"{len(done)} step(s) passed]"
        )
        return False, verdict
    finally:
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if keep:
            _say(log, f"selftest: kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None, window: WindowStep | None = None) -> int:
    """``--selftest`` entry point: progress on stderr, the verdict as the last stdout line.

    The app's entry points call it through :func:`ui.selftest.main`, which passes the window step."""
    p = argparse.ArgumentParser(
        prog="zitdesk --selftest",
        description="Check this installation end to end (no models, no network).",
    )
    p.add_argument("--selftest", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--no-ui", action="store_true", help="skip opening the main window")
    p.add_argument(
        "--ui-only",
        action="store_true",
        help="only open and close the main window (no torch; PySide6-only builds)",
    )
    p.add_argument(
        "--device", default=None, help="cpu, cuda or cuda:N (default: ZITDESK_DEVICE, else auto)"
    )
    p.add_argument("--log", default=None, help="also write progress and the verdict to this file")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)

    # A windowed (console=False) frozen executable has no stdout/stderr at all.
    devnull = None
    if sys.stdout is None or sys.stderr is None:
        devnull = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - lives until exit
        sys.stdout = sys.stdout or devnull
        sys.stderr = sys.stderr or devnull
    logfile = open(args.log, "w", encoding="utf-8") if args.log else None  # noqa: SIM115

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)
        if logfile:
            logfile.write(text + "\n")
            logfile.flush()

    try:
        ok, verdict = run_selftest(
            ui=not args.no_ui,
            device=args.device,
            keep=args.keep,
            log=log,
            engine=not args.ui_only,
            window=window,
        )
        print(verdict, flush=True)
        if logfile:
            logfile.write(verdict + "\n")
        return 0 if ok else 1
    finally:
        if logfile:
            logfile.close()


if __name__ == "__main__":
    sys.exit(main())
