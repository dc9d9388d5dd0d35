"""``zitdesk enhance PROMPT [--model PATH] [--seed N] [--temperature T] [--json]``.

Rewrites a short prompt into a detailed one with the model's own Qwen3 text encoder (the same
engine job as the app's "Enhance": :mod:`zitdesk.engine.enhance`) and prints the proposal.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from zitdesk.cli.common import EXIT_CANCELLED, EXIT_OK, fail


def add_enhance_parser(subparsers: Any) -> argparse.ArgumentParser:
    e = subparsers.add_parser("enhance", help="rewrite a short prompt into a detailed one")
    e.add_argument("prompt", help="the prompt (a sentence, or the markdown list form)")
    e.add_argument("--model", default=None, help="the model whose text encoder writes")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--temperature", type=float, default=0.7, help="0 = always the same answer")
    e.add_argument("--max-tokens", type=int, default=200)
    e.add_argument("--device", default=None, help="cuda, cuda:1 or cpu (default: auto)")
    e.add_argument("--json", action="store_true", help='print {"prompt", "text", "structured"}')
    e.set_defaults(func=cmd_enhance)
    return e


def cmd_enhance(args: argparse.Namespace) -> int:
    from zitdesk.engine.cancel import CancelToken
    from zitdesk.engine.enhance import EnhanceRequest, PromptEnhanced
    from zitdesk.engine.events import JobCancelled, JobFailed
    from zitdesk.engine.generate import GenerationEngine
    from zitdesk.engine.requests import require_device

    request = EnhanceRequest(
        args.prompt,
        model_path=args.model or "",
        max_new_tokens=args.max_tokens,
        temperature=args.temperature,
        seed=args.seed,
    ).validate()
    device = require_device(args.device)
    engine = GenerationEngine(device=None if device == "auto" else device)
    events: list[Any] = []
    try:
        from zitdesk.engine.enhance import run_enhance

        run_enhance(engine, request, events.append, CancelToken())
    finally:
        engine.shutdown()
    done = [e for e in events if isinstance(e, PromptEnhanced)]
    end = events[-1] if events else None
    if isinstance(end, JobFailed):
        return fail(end.message)
    if isinstance(end, JobCancelled) or not done:
        return fail("cancelled.", EXIT_CANCELLED)
    ev = done[0]
    if args.json:
        print(json.dumps({"prompt": ev.prompt, "text": ev.text, "structured": ev.structured}))
    else:
        print(ev.text)
    return EXIT_OK
