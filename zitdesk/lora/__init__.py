"""zitdesk's LoRA layer: read every Z-Image LoRA dialect, report what it covers, apply stacks.

* :mod:`zitdesk.lora.keys` (torch-free): key parsing — the part of each key (``lora_A``,
  ``alpha``, ``lokr_w1`` …), the module it names, the dialect and the model family the keys
  belong to (:func:`detect_arch`, :func:`foreign_message`).
* :mod:`zitdesk.lora.inspect` (torch-free): what a file holds — :class:`LoraInfo`
  (:func:`inspect_lora`), trigger words, :func:`coverage` against a model, :func:`compatibility`
  and the ``zitdesk lora inspect --json`` document (:func:`inspect_json`).
* :mod:`zitdesk.lora.fit` (torch-free): does a LoRA's every pair fit a given model's shapes.
* :mod:`zitdesk.lora.values` (torch-free): a bounded sample of the tensor data (three runs of
  32 values per tensor) — modules holding NaN/inf; every module so: damaged (inspect, library).
* :mod:`zitdesk.lora.convert` (torch, imported lazily inside its functions): conversion of any
  dialect — ai-toolkit, kohya/musubi (split or fused qkv), dot format, diffusers, PEFT, LoKr,
  LoHa — into exact diffusers LoRA pairs with scale 1 (:func:`load_normalized`).
* :mod:`zitdesk.lora.apply` (torch, lazily): :func:`apply_loras` for a weighted stack on a
  ``ZImagePipeline`` (converted files cached), :func:`applied_reports`.

The Z-Image module tree these read against (and the base-checkpoint family detector) is model
knowledge: :mod:`zitdesk.models.zimage_tree`, :mod:`zitdesk.models.families`; the names are
re-exported here for convenience. Importing this package does not import torch.
"""

from zitdesk.lora.apply import (
    LoadReport,
    applied_reports,
    apply_loras,
    clear_cache,
    load_normalized,
    transformer_linear_names,
    transformer_linear_shapes,
)
from zitdesk.lora.inspect import (
    Coverage,
    LoraInfo,
    compatibility,
    coverage,
    extract_trigger_words,
    inspect_json,
    inspect_lora,
)
from zitdesk.lora.keys import (
    ARCH_LABELS,
    detect_arch,
    detect_dialect,
    foreign_message,
    normalize_key,
)
from zitdesk.models.families import detect_checkpoint_family
from zitdesk.models.zimage_tree import (
    QKV_MARKER,
    expand_module,
    expected_targets,
    full_size_linear_names,
    full_size_linear_shapes,
)

__all__ = [
    "ARCH_LABELS",
    "QKV_MARKER",
    "Coverage",
    "LoadReport",
    "LoraInfo",
    "applied_reports",
    "apply_loras",
    "clear_cache",
    "compatibility",
    "coverage",
    "detect_arch",
    "detect_checkpoint_family",
    "detect_dialect",
    "expand_module",
    "expected_targets",
    "extract_trigger_words",
    "foreign_message",
    "full_size_linear_names",
    "full_size_linear_shapes",
    "inspect_json",
    "inspect_lora",
    "load_normalized",
    "normalize_key",
    "transformer_linear_names",
    "transformer_linear_shapes",
]
