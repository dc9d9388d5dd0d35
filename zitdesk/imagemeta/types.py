"""What an image was made with (:class:`ImageMeta`, :class:`LoraUse`) and the one builder
(:meth:`ImageMeta.from_request`, :func:`public_request`)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from zitdesk import __version__
from zitdesk.hashing import autov2
from zitdesk.imagemeta._values import _file_stem

PARAMETERS_KEY = "parameters"
ZITDESK_KEY = "zitdesk"
CHUNK_VERSION = 1


@dataclass(frozen=True)
class LoraUse:
    """One LoRA used for an image: display name (file stem), strength and the file's SHA-256."""

    name: str
    weight: float
    sha256: str = ""

    @property
    def short_hash(self) -> str:
        """First 10 hex digits of :attr:`sha256` (Civitai AutoV2), or "" when there is none."""
        value = self.sha256.strip().lower()
        return autov2(value) if re.fullmatch(r"[0-9a-f]+", value) else ""


@dataclass(frozen=True)
class ImageMeta:
    """What one generated image was made with.

    ``guidance`` is zitdesk's guidance (diffusers semantics, 0 = CFG off), the same number as
    ``GenerateRequest.guidance``; :func:`a1111_parameters` writes it as ``CFG scale: g+1``
    (:attr:`a1111_cfg_scale`).
    ``extra`` items are appended to the infotext settings line and stored in the JSON chunk.
    """

    prompt: str
    negative_prompt: str = ""
    steps: int = 8
    guidance: float = 0.0
    seed: int = 0
    width: int = 1024
    height: int = 1024
    sampler: str = "Euler"
    schedule: str = "Simple"
    shift: float = 3.0
    model_name: str = "Z-Image-Turbo"
    model_hash: str = ""
    loras: tuple[LoraUse, ...] = ()
    version: str = __version__
    request_json: str = ""
    extra: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def a1111_cfg_scale(self) -> float:
        """The CFG scale A1111 and ComfyUI would show for this image (guidance + 1)."""
        return float(self.guidance) + 1.0

    @classmethod
    def from_request(
        cls,
        request: Any,
        *,
        seed: int | None = None,
        model_name: str = "Z-Image-Turbo",
        model_hash: str = "",
        lora_hashes: Mapping[str, str] | None = None,
        version: str = __version__,
        extra: Mapping[str, Any] | None = None,
    ) -> ImageMeta:
        """Build the metadata for one image of a ``GenerateRequest``.

        ``seed`` is this image's seed when it differs from ``request.seed`` (batches);
        ``lora_hashes`` maps a LoRA's path to its SHA-256. Disabled LoRAs are left out. The
        embedded request is :func:`public_request` (file names and hashes, never a folder of
        the user's) and carries this image's seed. This is the one builder: generation, "try"
        images of a paused run and training samples all use it.
        """
        hashes = dict(lora_hashes or {})
        loras = tuple(
            LoraUse(
                name=_file_stem(spec.path),
                weight=float(spec.weight),
                sha256=hashes.get(spec.path, ""),
            )
            for spec in request.loras
            if getattr(spec, "enabled", True)
        )
        image_seed = request.seed if seed is None else seed
        extra = dict(extra or {})
        variety = getattr(request, "variety", 0.0)
        if isinstance(variety, (int, float)) and variety > 0:  # zitdesk.engine.variety
            extra.setdefault("Variety", f"{float(variety):g}")
        if getattr(request, "cfg_normalization", False):
            extra.setdefault("CFG normalization", "True")
        data = public_request(request.to_dict())
        data["seed"] = image_seed
        data["count"] = 1
        from zitdesk.imagemeta.edit import edit_parameters  # img2img, inpaint, ControlNet, upscale

        edit_extra, edit_hashes = edit_parameters(request)
        data.update(edit_hashes)
        extra = {**edit_extra, **dict(extra or {})}
        return cls(
            prompt=request.prompt,
            negative_prompt=request.negative_prompt,
            steps=request.steps,
            guidance=float(request.guidance),
            seed=image_seed,
            width=request.width,
            height=request.height,
            shift=float(request.shift),
            model_name=model_name,
            model_hash=model_hash,
            loras=loras,
            version=version,
            request_json=json.dumps(data, ensure_ascii=False),
            extra=dict(extra or {}),
        )


def _base_name(value: str) -> str:
    """The last part of a POSIX or Windows path (an image made on Windows is read anywhere)."""
    return re.split(r"[\\/]", value.rstrip("\\/"))[-1] if value else ""


def public_request(data: Mapping[str, Any]) -> dict[str, Any]:
    """A request dict with nothing private left for an image that is shared: folders
    (``*_dir``) and the job id are dropped, every path (``path``, ``*_path``, ``*_file``,
    ``*_image``, ``*_mask``, at any depth, e.g. each LoRA's) is cut to its file name. The app's
    own history keeps the full request."""

    def clean(obj: Any) -> Any:
        if isinstance(obj, Mapping):
            out = {}
            for key, value in obj.items():
                k = str(key)
                if k == "job_id" or k.endswith("_dir"):
                    continue
                if isinstance(value, str) and (
                    k == "path" or k.endswith(("_path", "_file", "_image", "_mask"))
                ):
                    out[k] = _base_name(value)
                else:
                    out[k] = clean(value)
            return out
        if isinstance(obj, (list, tuple)):
            return [clean(v) for v in obj]
        return obj

    return clean(data)


@dataclass(frozen=True)
class LoraRef:
    """A LoRA an image names: ``name`` (file stem or A1111 alias), ``weight`` (None when the file
    does not say), ``hash`` (any length of SHA-256 / AutoV2 / AutoV3 hex) and ``file`` (the
    request's file name, zitdesk images only)."""

    name: str
    weight: float | None = None
    hash: str = ""
    file: str = ""


@dataclass(frozen=True)
class ImageParameters:
    """What :func:`~zitdesk.imagemeta.read.read_parameters` found in one image.

    ``source`` is "zitdesk", "a1111", "comfyui" or "none". One name per quantity: ``guidance`` is
    zitdesk's guidance (diffusers semantics, 0 = CFG off, ``GenerateRequest.guidance``);
    ``a1111_cfg_scale`` is the "CFG scale" A1111/ComfyUI show (= guidance + 1). ``request`` is
    the embedded zitdesk request (zitdesk images only), ``settings`` the infotext's ``key: value``
    pairs, ``raw`` all text chunks, ``unmapped`` setting keys that could not be used and
    ``warnings`` damage found while reading. Unknown values are None.
    """

    source: str = "none"
    prompt: str | None = None
    negative_prompt: str | None = None
    steps: int | None = None
    guidance: float | None = None
    a1111_cfg_scale: float | None = None
    seed: int | None = None
    width: int | None = None
    height: int | None = None
    sampler: str | None = None
    scheduler: str | None = None
    shift: float | None = None
    model: str | None = None
    model_hash: str | None = None
    loras: tuple[LoraRef, ...] = ()
    version: str | None = None
    request: dict[str, Any] | None = field(default=None, hash=False, compare=False)
    settings: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    raw: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    unmapped: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def found(self) -> bool:
        """True when the image had parameters zitdesk can use (at least a prompt)."""
        return self.source != "none" and bool(self.prompt)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (``zitdesk params --json``); LoRAs as ``{name, weight, hash, file}``."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["loras"] = [
            {"name": lo.name, "weight": lo.weight, "hash": lo.hash, "file": lo.file}
            for lo in self.loras
        ]
        out["settings"], out["raw"] = dict(self.settings), dict(self.raw)
        out["unmapped"], out["warnings"] = list(self.unmapped), list(self.warnings)
        return out

    def request_values(self) -> dict[str, Any]:
        """The values to put back into a Generate form, shaped like ``GenerateRequest.to_dict()``
        (only what the image says; the embedded request of a zitdesk image wins).

        ``loras`` (when the image names any) is a list of ``{path, weight, enabled, sha256}``:
        ``path`` is what identifies the file (the request's path, else the file name, else the
        name), ``weight`` may be None (unknown), ``sha256`` the image's hash for that LoRA ("" if
        none) so the caller can find the file on this machine by hash.
        """
        values: dict[str, Any] = {}
        for key in (
            "prompt",
            "negative_prompt",
            "width",
            "height",
            "steps",
            "seed",
            "guidance",
            "shift",
        ):
            value = getattr(self, key)
            if value is not None:
                values[key] = value
        try:  # zitdesk's own settings (an infotext without the JSON chunk)
            if "Variety" in self.settings:
                values["variety"] = float(self.settings["Variety"])
        except ValueError:
            pass
        if "CFG normalization" in self.settings:
            values["cfg_normalization"] = self.settings["CFG normalization"].lower() == "true"
        request = self.request if isinstance(self.request, dict) else None
        if request:
            values.update(request)
        hashes = {lo.name.lower(): lo.hash for lo in self.loras if lo.hash}
        items: Any = request.get("loras") if request else None
        if request and isinstance(items, list):
            loras = []
            for lo in items:
                if isinstance(lo, Mapping) and isinstance(lo.get("path"), str) and lo["path"]:
                    loras.append(
                        {
                            "path": lo["path"],
                            "weight": lo.get("weight"),
                            "enabled": bool(lo.get("enabled", True)),
                            "sha256": _hash_for(lo["path"], "", hashes),
                        }
                    )
            values["loras"] = loras
        else:
            values["loras"] = [
                {
                    "path": lo.file or lo.name,
                    "weight": lo.weight,
                    "enabled": True,
                    "sha256": _hash_for(lo.file or lo.name, lo.hash, hashes),
                }
                for lo in self.loras
                if lo.file or lo.name
            ]
        return values


def _hash_for(ref: str, own: str, hashes: Mapping[str, str]) -> str:
    """``own`` hash, else the image's hash for the LoRA with that file stem or name."""
    if own:
        return own
    name = _base_name(ref)
    stem = name[: -len(".safetensors")] if name.lower().endswith(".safetensors") else name
    return hashes.get(stem.lower(), "") or hashes.get(name.lower(), "")
