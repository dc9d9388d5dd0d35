"""What an image was made with (:class:`ImageMeta`, :class:`LoraUse`) and the one builder
(:meth:`ImageMeta.from_request`, :func:`public_request`)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from zitdesk import __version__
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
        return value[:10] if re.fullmatch(r"[0-9a-f]+", value) else ""


@dataclass(frozen=True)
class ImageMeta:
    """What one generated image was made with.

    ``cfg_scale`` holds zitdesk's guidance (diffusers semantics, 0 = CFG off), the same number as
    ``GenerateRequest.guidance``; :func:`a1111_parameters` writes it as ``CFG scale: g+1``.
    ``extra`` items are appended to the infotext settings line and stored in the JSON chunk.
    """

    prompt: str
    negative_prompt: str = ""
    steps: int = 8
    cfg_scale: float = 0.0
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
        return float(self.cfg_scale) + 1.0

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
        data = public_request(request.to_dict())
        data["seed"] = image_seed
        data["count"] = 1
        return cls(
            prompt=request.prompt,
            negative_prompt=request.negative_prompt,
            steps=request.steps,
            cfg_scale=float(request.guidance),
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
