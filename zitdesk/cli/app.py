"""The ``zitdesk`` parser and entry point: one sub-parser module per command group."""

from __future__ import annotations

import argparse

from zitdesk import __version__
from zitdesk.cli.common import OneLineParser, configure_logging, run_guarded


def build_parser() -> argparse.ArgumentParser:
    from zitdesk.cli import dataset, edit, enhance, generate, lora, tools, train

    p = OneLineParser(prog="zitdesk", description="Z-Image Turbo studio, headless.")
    p.add_argument("--version", action="version", version=f"zitdesk {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    tools.add_make_tiny_model_parser(sub)
    generate.add_generate_parser(sub)
    edit.add_upscale_parser(sub)  # upscale IMAGE [--factor 2] [--strength 0.3] [--tile] [--overlap]
    lora.add_lora_parser(sub)  # lora inspect FILE | lora scan DIR... [--auto] [--hash] --json
    tools.add_params_parser(sub)
    tools.add_selftest_parser(sub)
    train.add_train_parser(sub)  # train CONFIG.toml [--resume] [--init --preset ...]
    dataset.add_dataset_parser(
        sub
    )  # dataset import SRC... --to DIR --json | dataset check DIR --json
    tools.add_doctor_parser(sub)
    enhance.add_enhance_parser(sub)  # enhance PROMPT [--model] [--seed] [--temperature] --json
    return p


def command_names() -> frozenset[str]:
    """The sub-command names of :func:`build_parser` (``generate``, ``train``, …), for the frozen
    launcher (packaging/launcher.py) to tell CLI calls from the app's; building the parser imports
    no torch."""
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return frozenset(action.choices)
    return frozenset()


def main(argv: list[str] | None = None) -> int:
    """The ``zitdesk`` command (console script, ``python -m zitdesk``, the frozen launcher)."""
    configure_logging()
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_guarded(args.func, args)
