"""Generation parameters embedded in the images zitdesk writes, and read back from other tools.

Writing (:func:`write_png`) puts two text chunks into every PNG:

``parameters``
    The A1111/Forge "infotext" (:func:`a1111_parameters`): the prompt as typed (several lines are
    allowed), an optional ``Negative prompt:`` line, then one settings line such as::

        Steps: 8, Sampler: Euler, Schedule type: Simple, CFG scale: 1.0, Seed: 42, Size: 1024x1024,
        Model: Z-Image-Turbo, Lora hashes: "style: 0123456789", Shift: 3, Version: zitdesk 0.1.0

    (on one line). A1111, Forge, Civitai, image browsers and sd-parsers all read this. LoRAs are
    not written as ``<lora:name:weight>`` tags in the prompt (the prompt stays as typed); they
    appear in ``Lora hashes``, which is what Civitai uses to link resources.

``zitdesk``
    JSON ``{"version": 1, "meta": {...ImageMeta without request_json...}, "request": {...}}``,
    the exact values, so zitdesk's "reuse parameters" never depends on parsing the infotext.

Text that is not plain ASCII goes into an ``iTXt`` (UTF-8) chunk, so Japanese prompts and emoji
survive; ASCII text uses ``tEXt``. (Latin-1 ``tEXt`` would be legal for "café", but readers that
guess UTF-8 first would mangle some Latin-1 strings, so iTXt is used for all non-ASCII text.)

CFG semantics
-------------
zitdesk's ``guidance`` (:attr:`ImageMeta.guidance`, same as ``GenerateRequest.guidance``) uses
the diffusers Z-Image convention ``pred = pos + g * (pos - neg)``: 0 turns CFG off. A1111 and
ComfyUI use ``pred = neg + cfg * (pos - neg)``, where CFG 1 is "off". They are the same
formula with ``cfg = g + 1``, so the infotext says ``CFG scale: g+1``
(:attr:`ImageMeta.a1111_cfg_scale`) (Turbo's g = 0 is written
``CFG scale: 1.0``), and reading an A1111 or ComfyUI image gives ``guidance = max(cfg - 1, 0)``.
zitdesk images are read from their JSON chunk, so no conversion is involved there. Everywhere
(ImageMeta, ImageParameters, the JSON chunk, ``zitdesk params --json``) ``guidance`` means the
zitdesk number and ``a1111_cfg_scale`` the A1111 one; nothing is called plain ``cfg_scale``.

Hashes
------
``Model hash`` is the A1111 short hash: the first 10 hex digits of the file's SHA-256 (a
longer value in :attr:`ImageMeta.model_hash` is cut to 10). ``Lora hashes`` entries are the
first 10 hex digits of :attr:`LoraUse.sha256` (Civitai's "AutoV2" hash of the whole file, which
Civitai resolves). A1111 itself writes 12 hex digits of a tensor-only hash ("AutoV3"); readers
accept any length.

Reading (:func:`read_parameters`, a typed :class:`ImageParameters`) understands zitdesk PNGs, A1111/Forge infotexts (PNG
``parameters`` chunk, or the EXIF UserComment of JPEG/WebP files) and ComfyUI PNGs (the API
``prompt`` graph, or the UI ``workflow`` graph when that is all there is). It never raises on
malformed metadata: it returns what it could read, with ``warnings`` and ``unmapped``; only a
file that is not an image at all raises :class:`~zitdesk.errors.FileFormatError`.

No Qt and no torch here; Pillow is imported only by the functions that need it.

Modules: ``types`` (ImageMeta, LoraUse, the one builder), ``a1111`` (infotext writer), ``png``
(write_png, PNG text / EXIF readers), ``infotext`` (infotext parser), ``zitdesk_json`` (zitdesk
chunk reader), ``comfy`` (ComfyUI graph reader), ``read`` (read_parameters). No Qt and no torch
here; Pillow is imported only by the functions that need it.
"""

from zitdesk.imagemeta.a1111 import a1111_parameters
from zitdesk.imagemeta.infotext import parse_settings_line, split_infotext
from zitdesk.imagemeta.png import write_png
from zitdesk.imagemeta.read import params_json, read_parameters
from zitdesk.imagemeta.types import (
    CHUNK_VERSION,
    PARAMETERS_KEY,
    ZITDESK_KEY,
    ImageMeta,
    ImageParameters,
    LoraRef,
    LoraUse,
    public_request,
)

__all__ = [
    "CHUNK_VERSION",
    "PARAMETERS_KEY",
    "ZITDESK_KEY",
    "ImageMeta",
    "ImageParameters",
    "LoraRef",
    "LoraUse",
    "a1111_parameters",
    "params_json",
    "parse_settings_line",
    "public_request",
    "read_parameters",
    "split_infotext",
    "write_png",
]
