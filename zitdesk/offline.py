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
    """Set the environment switches that stop every hub call (idempotent).

    Also asks PyTorch's CUDA allocator for expandable segments (unless the user chose otherwise):
    training with fp8/NF4 weights allocates buffers of many sizes, and under a 12 GiB or 8 GiB
    budget the default allocator ran out with 4 GiB reserved but unused (bench/train_gpu.py, H100).
    It must be set before the first CUDA allocation, which every engine path does after this call.
    """
    for key, value in _OFFLINE_VARS.items():
        if key in ("DIFFUSERS_VERBOSITY", "TRANSFORMERS_VERBOSITY"):
            os.environ.setdefault(key, value)
        else:
            os.environ[key] = value
    os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")
    # bitsandbytes (imported by peft) tries to fetch a CPU kernel from the Hub on AVX512-BF16 CPUs
    # and warns when it cannot; offline that is expected, so keep it out of the user's console.
    import logging

    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
