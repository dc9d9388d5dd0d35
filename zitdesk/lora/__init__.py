"""zitdesk's LoRA layer: read every Z-Image LoRA dialect, report what it covers, apply stacks.

* :mod:`zitdesk.lora.keys` (torch-free): architecture / dialect / module detection from header
  names and shapes, :class:`LoraInfo` (:func:`inspect_lora`), coverage against a model
  (:func:`coverage`, :func:`full_size_linear_names`), the ``zitdesk lora inspect --json`` document
  (:func:`inspect_json`) and the base-checkpoint family detector (:func:`detect_checkpoint_family`).
* :mod:`zitdesk.lora.apply` (torch, imported lazily inside its functions): conversion of any
  dialect — ai-toolkit, kohya/musubi (split or fused qkv), dot format, diffusers, PEFT, LoKr,
  LoHa — into exact diffusers LoRA pairs with scale 1 (:func:`load_normalized`), and
  :func:`apply_loras` for a weighted stack on a ``ZImagePipeline``.

Importing this package does not import torch.
"""

from zitdesk.lora.apply import (
    LoadReport,
    apply_loras,
    applied_reports,
    clear_cache,
    load_normalized,
    transformer_linear_names,
    transformer_linear_shapes,
)
from zitdesk.lora.keys import (
    ARCH_LABELS,
    QKV_MARKER,
    Coverage,
    LoraInfo,
    compatibility,
    coverage,
    detect_arch,
    detect_checkpoint_family,
    detect_dialect,
    expand_module,
    expected_targets,
    extract_trigger_words,
    foreign_message,
    full_size_linear_names,
    full_size_linear_shapes,
    inspect_json,
    inspect_lora,
    normalize_key,
)

__all__ = [
    "ARCH_LABELS", "QKV_MARKER", "Coverage", "LoadReport", "LoraInfo", "applied_reports",
    "apply_loras", "clear_cache", "compatibility", "coverage", "detect_arch",
    "detect_checkpoint_family", "detect_dialect", "expand_module", "expected_targets",
    "extract_trigger_words", "foreign_message", "full_size_linear_names", "full_size_linear_shapes",
    "inspect_json", "inspect_lora", "load_normalized", "normalize_key", "transformer_linear_names",
    "transformer_linear_shapes",
]
