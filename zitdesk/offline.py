"""Keep the Hugging Face libraries offline.

zitdesk never downloads anything. :func:`enforce_offline` must run before diffusers,
transformers or huggingface_hub are imported; every engine module that imports them calls it.
"""

from __future__ import annotations

import os

_OFFLINE_VARS = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "DIFFUSERS_VERBOSITY": "error",
    "TRANSFORMERS_VERBOSITY": "error",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def enforce_offline() -> None:
    """Set the environment switches that stop every hub call (idempotent)."""
    for key, value in _OFFLINE_VARS.items():
        if key in ("DIFFUSERS_VERBOSITY", "TRANSFORMERS_VERBOSITY"):
            os.environ.setdefault(key, value)
        else:
            os.environ[key] = value
