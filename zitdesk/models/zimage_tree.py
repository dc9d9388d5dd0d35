"""The Z-Image Turbo transformer's module tree, known without torch or a model file.

Model knowledge the LoRA reader, the library, the CLI and the model validator share:

* the *grammar* of the LoRA-targetable Linear modules of diffusers' ``ZImageTransformer2DModel``
  (block prefix ``layers`` / ``noise_refiner`` / ``context_refiner`` + index + an in-block suffix,
  or a top-level module) and the original Z-Image tree's aliases for them (fused
  ``attention.qkv``, ``attention.out``, ``x_embedder``, ``final_layer``): :func:`resolve_module`,
  :func:`expand_module`, :func:`expected_targets`;
* the real sizes and every Linear's shape (:func:`full_size_linear_shapes`, 276 modules), so
  coverage can be reported without loading 12 GB;
* :func:`model_linear_names`: the Linear names of a model on disk, from its config or header.

Names are resolved in a separator-insensitive form (:func:`flat_name`), so kohya's ``_`` joins,
the dot format's ``to.q`` and diffusers' dotted names resolve the same way. Sources for the names:
diffusers 0.42.1 ``models/transformers/transformer_z_image.py`` (facts only), engine notes §1/§6.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable

#: Marker used in place of ``to_q``/``to_k``/``to_v`` for a fused ``attention.qkv`` LoRA module
#: (original Z-Image tree). :func:`expand_module` turns it into the three diffusers modules.
QKV_MARKER = "<qkv>"

BLOCK_PREFIXES = ("layers", "noise_refiner", "context_refiner")

#: In-block diffusers module suffixes that are LoRA targets (engine notes §6).
BLOCK_TARGETS = (
    "attention.to_q",
    "attention.to_k",
    "attention.to_v",
    "attention.to_out.0",
    "feed_forward.w1",
    "feed_forward.w2",
    "feed_forward.w3",
    "adaLN_modulation.0",
)
#: Top-level diffusers modules that are LoRA targets.
TOP_TARGETS = (
    "all_x_embedder.2-1",
    "cap_embedder.1",
    "t_embedder.mlp.0",
    "t_embedder.mlp.2",
    "all_final_layer.2-1.linear",
    "all_final_layer.2-1.adaLN_modulation.1",
)

# Aliases from the original Z-Image tree (ComfyUI single files, fused exports) → diffusers names.
_BLOCK_ALIASES = {
    "attention.qkv": f"attention.{QKV_MARKER}",
    "attention.out": "attention.to_out.0",
    "attention.to_out": "attention.to_out.0",
}
_TOP_ALIASES = {
    "x_embedder": "all_x_embedder.2-1",
    "final_layer.linear": "all_final_layer.2-1.linear",
    "final_layer.adaLN_modulation.1": "all_final_layer.2-1.adaLN_modulation.1",
}


def flat_name(name: str) -> str:
    """Separator-insensitive form: lower case, ``.`` → ``_`` (kohya's own transformation)."""
    return name.replace(".", "_").lower()


_BLOCK_FLAT: dict[str, str] = {flat_name(s): s for s in BLOCK_TARGETS}
_BLOCK_FLAT.update({flat_name(a): s for a, s in _BLOCK_ALIASES.items()})
_TOP_FLAT: dict[str, str] = {flat_name(s): s for s in TOP_TARGETS}
_TOP_FLAT.update({flat_name(a): s for a, s in _TOP_ALIASES.items()})
_CANONICAL_FLAT = set(flat_name(s) for s in BLOCK_TARGETS) | set(flat_name(s) for s in TOP_TARGETS)
_BLOCK_RX = re.compile(r"^(" + "|".join(BLOCK_PREFIXES) + r")_(\d+)_(.+)$")

# Real Z-Image Turbo sizes (engine notes §1/§6).
FULL_DIM = 3840
FULL_FFN = 10240
FULL_LAYERS = 30
FULL_REFINERS = 2
FULL_ADALN_IN = 256
FULL_CAP_DIM = 2560
FULL_T_HIDDEN = 1024
FULL_PATCH_IN = 64  # 2 × 2 × 16 latent channels


@functools.lru_cache(maxsize=65536)
def resolve_module(name: str) -> tuple[str, bool] | None:
    """Resolve a module path in any dialect to ``(diffusers module name, is_alias)``.

    ``name`` has its file prefix (``diffusion_model.``, ``lora_unet_`` …) already removed.
    ``is_alias`` is True when the name used an original-tree alias (``qkv``, ``out``,
    ``x_embedder``) rather than the diffusers name; it decides which of two redundant keys wins.
    Returns None for anything that is not a Z-Image LoRA target.
    """
    flat = flat_name(name)
    if flat in _TOP_FLAT:
        canon = _TOP_FLAT[flat]
        return canon, flat not in _CANONICAL_FLAT
    m = _BLOCK_RX.match(flat)
    if m is None:
        return None
    suffix = _BLOCK_FLAT.get(m.group(3))
    if suffix is None:
        return None
    return f"{m.group(1)}.{int(m.group(2))}.{suffix}", m.group(3) not in _CANONICAL_FLAT


def expand_module(module: str) -> list[str]:
    """``layers.0.attention.<qkv>`` → the three split modules; any other name → ``[name]``."""
    if module.endswith("." + QKV_MARKER):
        base = module[: -len(QKV_MARKER)]
        return [base + "to_q", base + "to_k", base + "to_v"]
    return [module]


def full_size_linear_shapes(
    n_layers: int = FULL_LAYERS, n_refiners: int = FULL_REFINERS
) -> dict[str, tuple[int, int]]:
    """``{module: (out_features, in_features)}`` of every Linear in the real Z-Image Turbo DiT.

    Computed from the known architecture (engine notes §1, §6) so the CLI can report coverage
    without loading 12 GB. 30 layers + 2 noise + 2 context refiners: 276 modules.
    """
    d, f = FULL_DIM, FULL_FFN
    block = {
        "attention.to_q": (d, d),
        "attention.to_k": (d, d),
        "attention.to_v": (d, d),
        "attention.to_out.0": (d, d),
        "feed_forward.w1": (f, d),
        "feed_forward.w3": (f, d),
        "feed_forward.w2": (d, f),
    }
    out: dict[str, tuple[int, int]] = {}
    for prefix, n, modulated in (
        ("layers", n_layers, True),
        ("noise_refiner", n_refiners, True),
        ("context_refiner", n_refiners, False),
    ):
        for i in range(n):
            for s, shp in block.items():
                out[f"{prefix}.{i}.{s}"] = shp
            if modulated:  # the context refiner has no adaLN
                out[f"{prefix}.{i}.adaLN_modulation.0"] = (4 * d, min(d, FULL_ADALN_IN))
    out.update(
        {
            "all_x_embedder.2-1": (d, FULL_PATCH_IN),
            "cap_embedder.1": (d, FULL_CAP_DIM),
            "t_embedder.mlp.0": (FULL_T_HIDDEN, FULL_ADALN_IN),
            "t_embedder.mlp.2": (min(d, FULL_ADALN_IN), FULL_T_HIDDEN),
            "all_final_layer.2-1.linear": (FULL_PATCH_IN, d),
            "all_final_layer.2-1.adaLN_modulation.1": (d, min(d, FULL_ADALN_IN)),
        }
    )
    return out


def full_size_linear_names() -> set[str]:
    """The Linear module names of the real Z-Image Turbo transformer (no torch, no model)."""
    return set(full_size_linear_shapes())


def expected_targets(model_module_names: Iterable[str]) -> set[str]:
    """The model's modules a Z-Image LoRA can target (Linear names that fit the grammar).

    Drops Linear layers that are not LoRA targets in any known trainer and keeps the names
    canonical; the result is the denominator of "covers N of M model modules".
    """
    out = set()
    for name in model_module_names:
        r = resolve_module(name)
        if r is not None and r[0] == name:
            out.add(name)
    return out


def model_linear_names(model: str) -> set[str]:
    """Linear module names of the model's transformer, from its config (headers only, no torch).

    The names depend only on the numbers of layers and refiners, so a config (or a header) is
    enough; loading 12 GB or even importing torch is not needed. ``model``: anything
    :func:`zitdesk.models.discovery.resolve_model` accepts.
    """
    from zitdesk.errors import ModelError
    from zitdesk.models.discovery import resolve_model
    from zitdesk.models.validate import DIT, infer_transformer_config

    src = resolve_model(model)
    if src.kind == "comfy":
        check = src.checks[DIT]
        if check.header is None:
            raise ModelError(check.message or f"{check.path.name} cannot be read as a Z-Image DiT.")
        cfg = infer_transformer_config(check.header, check.prefix)
    else:
        cfg = json.loads((src.root / "transformer" / "config.json").read_text())
    return set(full_size_linear_shapes(int(cfg["n_layers"]), int(cfg["n_refiner_layers"])))
