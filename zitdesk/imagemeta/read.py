"""The public reader: :func:`read_parameters` tries the zitdesk chunk, then the infotext, then
ComfyUI graphs, and never raises on malformed metadata."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from zitdesk.errors import FileFormatError
from zitdesk.imagemeta._values import _lookup
from zitdesk.imagemeta.comfy import _fill_from_comfyui
from zitdesk.imagemeta.infotext import _fill_from_infotext, split_infotext
from zitdesk.imagemeta.png import _PNG_SIGNATURE, _read_other_image, _read_png_text
from zitdesk.imagemeta.types import PARAMETERS_KEY, ZITDESK_KEY, ImageParameters, LoraRef
from zitdesk.imagemeta.zitdesk_json import _fill_from_zitdesk

log = logging.getLogger(__name__)


def _empty_result(chunks: dict[str, str], warnings: list[str]) -> dict[str, Any]:
    return {
        "source": "none",
        "prompt": None,
        "negative_prompt": None,
        "steps": None,
        "guidance": None,
        "a1111_cfg_scale": None,
        "seed": None,
        "width": None,
        "height": None,
        "sampler": None,
        "scheduler": None,
        "shift": None,
        "model": None,
        "model_hash": None,
        "loras": [],
        "version": None,
        "request": None,
        "settings": {},
        "raw": dict(chunks),
        "unmapped": [],
        "warnings": list(warnings),
    }


def _attempt(
    fill, chunks: dict[str, str], warnings: list[str], *args: Any
) -> tuple[dict[str, Any], bool]:
    """Run one reader on a fresh result; a reader that trips over odd metadata yields a warning."""
    result = _empty_result(chunks, warnings)
    try:
        return result, bool(fill(result, *args))
    except Exception:  # the contract is "never crash on garbage"; log it, keep going
        log.warning("Could not interpret image metadata with %s", fill.__name__, exc_info=True)
        result = _empty_result(chunks, result["warnings"])
        result["warnings"].append("Part of the metadata could not be interpreted.")
        return result, False


def _interpret(chunks: dict[str, str], warnings: list[str]) -> dict[str, Any]:
    zitdesk_text = _lookup(chunks, ZITDESK_KEY)
    parameters = _lookup(chunks, PARAMETERS_KEY)
    if zitdesk_text is not None:
        result, ok = _attempt(_fill_from_zitdesk, chunks, warnings, zitdesk_text)
        if ok:
            result["source"] = "zitdesk"
            if parameters:
                _, _, pairs, _ = split_infotext(parameters)
                result["settings"] = dict(pairs)
            return result
        warnings = result["warnings"]
    if parameters is not None:
        result, ok = _attempt(_fill_from_infotext, chunks, warnings, parameters)
        if ok:
            result["source"] = "a1111"
            return result
        warnings = result["warnings"]
    result, ok = _attempt(_fill_from_comfyui, chunks, warnings, chunks)
    if ok:
        result["source"] = "comfyui"
        return result
    warnings = result["warnings"]
    if parameters and parameters.strip():
        # A parameters chunk without a settings line: at least the prompt.
        result, _ = _attempt(_fill_from_infotext, chunks, warnings, parameters)
        if result["prompt"] is not None:
            result["source"] = "a1111"
            result["warnings"].append(
                "The parameters text has no settings line; only the prompt was read."
            )
        return result
    return _empty_result(chunks, warnings)


def _typed(result: dict[str, Any]) -> ImageParameters:
    """The readers' working dict as the frozen result."""
    loras = tuple(
        LoraRef(
            name=lo["name"],
            weight=lo.get("weight"),
            hash=lo.get("hash") or "",
            file=lo.get("file") or "",
        )
        for lo in result["loras"]
    )
    return ImageParameters(
        **{
            **result,
            "loras": loras,
            "unmapped": tuple(result["unmapped"]),
            "warnings": tuple(result["warnings"]),
        }
    )


def read_parameters(path: str | Path) -> ImageParameters:
    """Generation parameters of the image at ``path`` (:class:`ImageParameters`; its
    :meth:`~ImageParameters.to_dict` is the JSON ``zitdesk params --json`` prints).

    Raises :class:`FileFormatError` when the file is missing, unreadable or not an image.
    """
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            head = fh.read(len(_PNG_SIGNATURE))
    except FileNotFoundError as exc:
        raise FileFormatError(f"{p} does not exist.") from exc
    except OSError as exc:
        raise FileFormatError(f"{p} cannot be read ({exc.strerror or exc}).") from exc
    try:
        if head == _PNG_SIGNATURE:
            chunks, warnings = _read_png_text(p)
        else:
            chunks, warnings = _read_other_image(p)
    except OSError as exc:
        raise FileFormatError(f"{p} cannot be read ({exc.strerror or exc}).") from exc
    return _typed(_interpret(chunks, warnings))


def params_json(path: str | Path) -> str:
    """:func:`read_parameters` as indented JSON (for ``zitdesk params IMAGE --json``)."""
    return json.dumps(read_parameters(path).to_dict(), ensure_ascii=False, indent=2)
