"""Which Z-Image a model (or a LoRA) is: Turbo, Base or De-Turbo, and what each one expects.

The three share one architecture, so the DiT's shapes cannot tell them apart. What can:

1. the user's choice, remembered per model path (``AppSettings.model_variants``);
2. metadata in the DiT file's safetensors header (``zitdesk_base_variant``,
   ``modelspec.architecture`` / ``modelspec.title``, ``ss_base_model_version``);
3. the folder or Hugging Face cache name (``models--Tongyi-MAI--Z-Image-Turbo``,
   ``models--Tongyi-MAI--Z-Image``, ``ostris/Z-Image-De-Turbo``) and the file name
   (``z_image_turbo_bf16``, ``z_image_bf16``, ``z_image_de_turbo``).

When none of them says, the answer is Turbo marked ``source="unknown"`` so the UI can ask.
Each variant brings its defaults (:data:`DEFAULTS`): Turbo 8 steps without CFG at shift 3; Base
28 steps, real CFG with a negative prompt, shift 6 (Tongyi-MAI/Z-Image's model card: 28–50
steps, CFG 3–5, negative prompt); De-Turbo, a de-distilled Turbo, in between.

LoRAs are read the same way (:func:`lora_variant`): our own ``zitdesk_base_variant``, then
``ss_base_model_version`` / ``modelspec.architecture`` / ``ss_sd_model_name``, then sidecars
(Civitai ``baseModel`` such as "ZImageBase"). :func:`variant_note` is the sentence shown when a
LoRA made for one variant is used on another (a note, never a refusal).

Qt-free and torch-free: headers only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TURBO, BASE, DETURBO = "turbo", "base", "deturbo"
VARIANTS = (TURBO, BASE, DETURBO)
LABELS = {TURBO: "Z-Image Turbo", BASE: "Z-Image (Base)", DETURBO: "Z-Image De-Turbo"}
SHORT = {TURBO: "Turbo", BASE: "Base", DETURBO: "De-Turbo"}
SOURCES = ("choice", "metadata", "name", "unknown")
METADATA_KEY = "zitdesk_base_variant"


@dataclass(frozen=True)
class VariantDefaults:
    """What the Generate form starts from for a variant (diffusers guidance: 0 = CFG off)."""

    steps: int
    guidance: float
    shift: float
    negative_enabled: bool
    cfg_normalization: bool = False


DEFAULTS: dict[str, VariantDefaults] = {
    TURBO: VariantDefaults(steps=8, guidance=0.0, shift=3.0, negative_enabled=False),
    BASE: VariantDefaults(steps=28, guidance=4.0, shift=6.0, negative_enabled=True),
    DETURBO: VariantDefaults(steps=25, guidance=2.5, shift=3.0, negative_enabled=True),
}

# "Fast Base": a distillation LoRA for Base (e.g. alibaba-pai's Z-Image-Fun-Lora-Distill) run at
# 4 or 8 steps with CFG 1 (guidance 0 here), shift 3.
FAST_BASE_STEPS = (4, 8)
FAST_BASE_WEIGHT = 1.0
FAST_BASE = VariantDefaults(steps=8, guidance=0.0, shift=3.0, negative_enabled=False)


@dataclass(frozen=True)
class VariantGuess:
    """A variant and how it was known: ``source`` is one of :data:`SOURCES`; ``detail`` names
    what said so (a metadata key, a folder or file name)."""

    variant: str = TURBO
    source: str = "unknown"
    detail: str = ""

    @property
    def known(self) -> bool:
        return self.source != "unknown"

    @property
    def label(self) -> str:
        return LABELS.get(self.variant, self.variant)

    def describe(self) -> str:
        """One sentence for doctor and the model setup dialog."""
        if self.source == "choice":
            return f"{self.label} (your choice)"
        if self.source == "metadata":
            return f"{self.label} (from the file's metadata: {self.detail})"
        if self.source == "name":
            return f"{self.label} (from the name {self.detail})"
        return f"{self.label}? The files do not say; choose the variant if this is Base or De-Turbo"

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "label": self.label,
            "source": self.source,
            "detail": self.detail,
        }


def normalise(value: str | None) -> str | None:
    """A variant name (any spelling: "Base", "de-turbo", "zimage_turbo") → one of
    :data:`VARIANTS`, or None when ``value`` names none."""
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    if text in VARIANTS:
        return text
    return variant_from_name(text)


_PRECISION = re.compile(
    r"(bf16|fp16|fp32|fp8|e4m3fn|e5m2|scaled|int8|nvfp4|convrot|gguf|q\d(_k)?(_[msl])?|"
    r"safetensors|diffusers|split|files|models|model|comfy|org|tongyi|mai|ostris|v\d+)"
)


def variant_from_name(name: str, strict: bool = False) -> str | None:
    """The variant a folder, repository or file name states, or None.

    "De-Turbo"/"dedistill(ed)" → deturbo; "turbo" → turbo; "base", or (unless ``strict``) a
    name that is just "Z-Image" once precision and packaging words are removed
    (``z_image_bf16``, ``models--Tongyi-MAI--Z-Image``) → base. ``strict`` is for metadata
    values, where a bare "Z-Image" (musubi's ``modelspec.architecture``) names the family only.
    """
    flat = re.sub(r"[^a-z0-9]+", "", name.lower())
    if not flat:
        return None
    if "deturbo" in flat or "dedistill" in flat or "undistill" in flat:
        return DETURBO
    if "turbo" in flat:
        return TURBO
    if "zimage" not in flat:
        return None
    if "zimagebase" in flat or "base" in flat:
        return BASE
    if strict:
        return None
    rest = _PRECISION.sub("", flat.replace("zimage", "", 1))
    return BASE if rest == "" else None


def _meta_variant(meta: Mapping[str, str]) -> tuple[str, str] | None:
    """(variant, key) from safetensors metadata, the most specific key first."""
    for key in (
        METADATA_KEY,
        "modelspec.architecture",
        "ss_base_model_version",
        "modelspec.title",
        "ss_sd_model_name",
        "ss_base_model",
    ):
        value = meta.get(key)
        if not isinstance(value, str) or not value.strip():
            continue
        if key == METADATA_KEY:
            found = normalise(value)
        else:
            found = variant_from_name(value, strict=key != "ss_sd_model_name")
        if found:
            return found, key
    return None


def _names_of(source: Any) -> list[str]:
    """Names worth reading for a model source: its DiT file's, its folder's and parents', the
    HF cache repository (``models--org--name``) and its label."""
    names: list[str] = []
    files = getattr(source, "files", None) or {}
    from zitdesk.models.validate import DIT

    dit = files.get(DIT)
    if dit is not None:
        names.append(Path(dit).stem)
    root = getattr(source, "root", None)
    if root is not None:
        p = Path(root)
        for part in (p, *list(p.parents)[:4]):
            if part.name.startswith("models--"):
                names.insert(0, part.name)
                break
        names.append(p.name)
        if p.parent.name == "snapshots":
            names.append(p.parent.parent.name)
    label = getattr(source, "label", "")
    if label:
        names.append(str(label))
    return names


def _dit_metadata(source: Any) -> dict[str, str]:
    from zitdesk.models.validate import DIT

    checks = getattr(source, "checks", None) or {}
    check = checks.get(DIT)
    header = getattr(check, "header", None)
    if header is not None and getattr(header, "metadata", None):
        return dict(header.metadata)
    files = getattr(source, "files", None) or {}
    candidates: list[Path] = [Path(files[DIT])] if files.get(DIT) else []
    root = getattr(source, "root", None)
    if root is not None and not candidates:
        tdir = Path(root) / "transformer"
        if tdir.is_dir():
            candidates = sorted(tdir.glob("*.safetensors"))[:1]
    from zitdesk.st_header import read_header

    for path in candidates:
        try:
            return dict(read_header(path).metadata)
        except Exception:  # noqa: BLE001 - an unreadable header says nothing about the variant
            continue
    return {}


def choice_key(model_path: str | Path) -> str:
    """The key a remembered choice is stored under (the model path as configured)."""
    return str(model_path).rstrip("/\\") if str(model_path) else ""


def detect_variant(
    source: Any,
    choices: Mapping[str, str] | None = None,
    model_path: str | Path | None = None,
) -> VariantGuess:
    """The variant of a :class:`~zitdesk.models.discovery.ModelSource` (or anything with
    ``root``/``files``/``label``): the remembered choice for ``model_path`` (else the source's
    root), then DiT metadata, then names; Turbo with ``source="unknown"`` when nothing says."""
    if choices:
        for key in (model_path, getattr(source, "root", None)):
            if key is None:
                continue
            chosen = normalise(choices.get(choice_key(key), ""))
            if chosen:
                return VariantGuess(chosen, "choice", choice_key(key))
    found = _meta_variant(_dit_metadata(source))
    if found:
        return VariantGuess(found[0], "metadata", found[1])
    for name in _names_of(source):
        variant = variant_from_name(name)
        if variant:
            return VariantGuess(variant, "name", name)
    return VariantGuess(TURBO, "unknown", "")


def detect_path_variant(
    model_path: str | Path, choices: Mapping[str, str] | None = None
) -> VariantGuess:
    """:func:`detect_variant` for a configured path (resolves it; never raises)."""
    chosen = normalise((choices or {}).get(choice_key(model_path), ""))
    if chosen:
        return VariantGuess(chosen, "choice", choice_key(model_path))
    try:
        from zitdesk.models.discovery import resolve_model

        source = resolve_model(model_path)
    except Exception:  # noqa: BLE001 - a broken path: judge by its name only
        variant = variant_from_name(Path(str(model_path)).name)
        return (
            VariantGuess(variant, "name", Path(str(model_path)).name) if variant else VariantGuess()
        )
    return detect_variant(source, choices, model_path)


def remember_choice(choices: dict[str, str], model_path: str | Path, variant: str) -> None:
    """Store the user's choice for ``model_path`` in ``choices`` (``AppSettings.model_variants``)."""
    v = normalise(variant)
    if v is None:
        raise ValueError(f"unknown variant {variant!r}")
    choices[choice_key(model_path)] = v


def defaults_for(variant: str, fast: bool = False) -> VariantDefaults:
    """The form defaults of ``variant``; ``fast`` = Base with a distillation LoRA."""
    if fast and normalise(variant) == BASE:
        return FAST_BASE
    return DEFAULTS.get(normalise(variant) or TURBO, DEFAULTS[TURBO])


# -- LoRAs ---------------------------------------------------------------------------------------


def lora_variant(
    metadata: Mapping[str, str] | None,
    sidecar_bases: Iterable[str] = (),
    claimed: str = "",
) -> VariantGuess:
    """Which variant a LoRA was trained on, from its header metadata, then what sidecars say
    (``Sidecar.base_model``), then ``claimed`` (the library's ``base_model_version``).
    ai-toolkit's plain ``ss_base_model_version: zimage`` names no variant."""
    found = _meta_variant(dict(metadata or {}))
    if found:
        return VariantGuess(found[0], "metadata", found[1])
    for base in (*sidecar_bases, claimed):
        variant = variant_from_name(base or "", strict=True)
        if variant:
            return VariantGuess(variant, "metadata", f"sidecar: {base}")
    return VariantGuess(TURBO, "unknown", "")


def entry_variant(entry: Any) -> VariantGuess:
    """:func:`lora_variant` of a library ``LoraEntry``."""
    bases = [getattr(c, "base_model", "") for c in getattr(entry, "sidecars", ()) or ()]
    return lora_variant(
        getattr(entry, "metadata", None) or {}, bases, getattr(entry, "base_model_version", "")
    )


def variant_note(lora: VariantGuess | str, model: VariantGuess | str, name: str = "") -> str:
    """The note for a LoRA used on another variant than it was trained on ("" when they match
    or the LoRA does not say). Never a refusal: such LoRAs often work at a higher weight."""
    lv = lora.variant if isinstance(lora, VariantGuess) else normalise(lora)
    if isinstance(lora, VariantGuess) and not lora.known:
        return ""
    mv = model.variant if isinstance(model, VariantGuess) else normalise(model)
    if not lv or not mv or lv == mv:
        return ""
    who = f"{name} was" if name else "This LoRA was"
    if lv == BASE and mv == TURBO:
        return (
            f"{who} trained on Z-Image (Base); on Turbo such LoRAs are often weak and may need a "
            "weight of 2 or more."
        )
    if lv == TURBO and mv == BASE:
        return (
            f"{who} trained on Turbo; on Z-Image (Base) it may transfer poorly, so check the "
            "result and adjust its weight."
        )
    return (
        f"{who} trained on {LABELS[lv]}, the loaded model is {LABELS[mv]}; it may need another "
        "weight."
    )
