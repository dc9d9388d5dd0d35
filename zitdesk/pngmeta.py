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
zitdesk's ``guidance`` (:class:`ImageMeta.cfg_scale`, same as ``GenerateRequest.guidance``) uses
the diffusers Z-Image convention ``pred = pos + g * (pos - neg)``: 0 turns CFG off. A1111 and
ComfyUI use ``pred = neg + cfg * (pos - neg)``, where CFG 1 is "off". They are the same
formula with ``cfg = g + 1``, so the infotext says ``CFG scale: g+1`` (Turbo's g = 0 is written
``CFG scale: 1.0``), and reading an A1111 or ComfyUI image gives ``guidance = max(cfg - 1, 0)``.
zitdesk images are read from their JSON chunk, so no conversion is involved there.

Hashes
------
``Model hash`` is the A1111 short hash: the first 10 hex digits of the file's SHA-256 (a
longer value in :attr:`ImageMeta.model_hash` is cut to 10). ``Lora hashes`` entries are the
first 10 hex digits of :attr:`LoraUse.sha256` (Civitai's "AutoV2" hash of the whole file, which
Civitai resolves). A1111 itself writes 12 hex digits of a tensor-only hash ("AutoV3"); readers
accept any length.

Reading (:func:`read_parameters`) understands zitdesk PNGs, A1111/Forge infotexts (PNG
``parameters`` chunk, or the EXIF UserComment of JPEG/WebP files) and ComfyUI PNGs (the API
``prompt`` graph, or the UI ``workflow`` graph when that is all there is). It never raises on
malformed metadata: it returns what it could read, with ``warnings`` and ``unmapped``; only a
file that is not an image at all raises :class:`~zitdesk.errors.FileFormatError`.

No Qt and no torch here; Pillow is imported only by the functions that need it.
"""

from __future__ import annotations

import json
import logging
import math
import re
import struct
import zlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zitdesk import __version__
from zitdesk.errors import FileFormatError
from zitdesk.io import atomic_save

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

log = logging.getLogger(__name__)

PARAMETERS_KEY = "parameters"
ZITDESK_KEY = "zitdesk"
CHUNK_VERSION = 1

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MAX_TEXT_BYTES = (
    32 * 1024 * 1024
)  # a text chunk (or its decompressed text) larger than this is skipped
_MAX_CHUNKS = 100_000
_MAX_DEPTH = 64  # ComfyUI graph walks
_MAX_LINK_STEPS = 100_000

# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------

# Settings-line keys zitdesk writes and maps back when reading; anything else is "extra".
_MAPPED_KEYS = frozenset({
    "Steps", "Sampler", "Schedule type", "CFG scale", "Seed", "Size", "Model hash", "Model",
    "Lora hashes", "Shift", "Version",
})
_STANDARD_KEYS = _MAPPED_KEYS | {"Negative prompt"}


def _quote(value: Any) -> str:
    """A1111's ``quote``: JSON-quote a value that contains a comma, colon, newline or quote."""
    text = str(value)
    if any(ch in text for ch in ',:\n"'):
        return json.dumps(text, ensure_ascii=False)
    return text


def _fmt_cfg(value: float) -> str:
    return repr(float(round(value, 4)))  # 1.0, 3.5


def _fmt_num(value: float) -> str:
    return f"{float(value):.6g}"  # 3, 2.5


def _short_model_hash(value: str) -> str:
    value = value.strip().lower()
    if re.fullmatch(r"[0-9a-f]{11,}", value):
        return value[:10]
    return value


def _lora_alias(name: str) -> str:
    # A1111 removes ":" and "," from the alias in "Lora hashes"; a newline would end the line.
    return re.sub(r"[:,\r\n]", "", name).strip()


def _settings_key(key: str) -> str:
    return re.sub(r"[^\w \-/]", "", str(key)).strip()


def a1111_parameters(meta: ImageMeta) -> str:
    """The A1111/Forge ``parameters`` text for ``meta`` (see the module docstring)."""
    settings: list[tuple[str, Any]] = [
        ("Steps", int(meta.steps)),
        ("Sampler", meta.sampler),
        ("Schedule type", meta.schedule),
        ("CFG scale", _fmt_cfg(meta.a1111_cfg_scale)),
        ("Seed", int(meta.seed)),
        ("Size", f"{int(meta.width)}x{int(meta.height)}"),
        ("Model hash", _short_model_hash(meta.model_hash)),
        ("Model", meta.model_name),
    ]
    lora_hashes = [
        f"{_lora_alias(lo.name)}: {lo.short_hash}"
        for lo in meta.loras
        if lo.short_hash and _lora_alias(lo.name)
    ]
    if lora_hashes:
        settings.append(("Lora hashes", ", ".join(lora_hashes)))
    settings.append(("Shift", _fmt_num(meta.shift)))
    for key, value in meta.extra.items():
        clean = _settings_key(key)
        if not clean or not re.match(r"\w", clean) or clean in _STANDARD_KEYS or value is None:
            continue
        settings.append((clean, value))
    version = str(meta.version).strip()
    if version and not version.lower().startswith("zitdesk"):
        version = f"zitdesk {version}"
    settings.append(("Version", version or "zitdesk"))

    line = ", ".join(
        f"{key}: {_quote(value)}" for key, value in settings if value not in (None, "")
    )
    lines = [meta.prompt.strip()]
    if meta.negative_prompt.strip():
        lines.append(f"Negative prompt: {meta.negative_prompt.strip()}")
    lines.append(line)
    return "\n".join(lines).strip()


def _chunk_payload(meta: ImageMeta) -> dict[str, Any]:
    data = asdict(meta)
    request_json = data.pop("request_json")
    request: Any = None
    if request_json:
        request, ok = _loads(request_json)
        if not ok:
            log.warning("ImageMeta.request_json is not valid JSON; the request is not embedded")
    data["loras"] = [asdict(lo) for lo in meta.loras]
    return {"version": CHUNK_VERSION, "meta": data, "request": request}


_PNG_MODES = {"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"}


def write_png(image: Image.Image, path: str | Path, meta: ImageMeta | None) -> Path:
    """Save ``image`` as a PNG at ``path`` (atomically) with the ``parameters`` and ``zitdesk``
    chunks; ``meta=None`` writes a PNG without any text (the "strip metadata" setting)."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    chunks = () if meta is None else (
        (PARAMETERS_KEY, a1111_parameters(meta)),
        (ZITDESK_KEY, json.dumps(_chunk_payload(meta), ensure_ascii=False, default=str)),
    )
    for key, text in chunks:
        if text.isascii():
            info.add_text(key, text)
        else:
            info.add_itxt(key, text, lang="", tkey="")
    if image.mode not in _PNG_MODES:
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    return atomic_save(path, lambda tmp: image.save(tmp, format="PNG", pnginfo=info))


# --------------------------------------------------------------------------------------------
# Reading: containers
# --------------------------------------------------------------------------------------------


def _decode_text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, _MAX_TEXT_BYTES)
    if inflater.unconsumed_tail:
        raise ValueError("decompressed text is too large")
    return out


def _decode_text_chunk(ctype: bytes, data: bytes) -> tuple[str, str]:
    key_raw, sep, rest = data.partition(b"\0")
    if not sep or not key_raw:
        raise ValueError("no keyword")
    key = key_raw.decode("latin-1")
    if ctype == b"tEXt":
        return key, _decode_text(rest)
    if ctype == b"zTXt":
        if not rest or rest[0] != 0:
            raise ValueError("unknown compression method")
        return key, _decode_text(_inflate(rest[1:]))
    # iTXt: flag, method, language\0, translated keyword\0, UTF-8 text
    if len(rest) < 2:
        raise ValueError("iTXt header is cut short")
    flag, method = rest[0], rest[1]
    parts = rest[2:].split(b"\0", 2)
    if len(parts) != 3:
        raise ValueError("iTXt header is cut short")
    body = parts[2]
    if flag:
        if method != 0:
            raise ValueError("unknown compression method")
        body = _inflate(body)
    return key, body.decode("utf-8", errors="replace")


def _read_png_text(path: Path) -> tuple[dict[str, str], list[str]]:
    """All text chunks of a PNG (first one wins per keyword), tolerating damage."""
    chunks: dict[str, str] = {}
    warnings: list[str] = []
    with open(path, "rb") as fh:
        fh.read(8)
        for _ in range(_MAX_CHUNKS):
            head = fh.read(8)
            if len(head) < 8:
                warnings.append("The PNG ends without an IEND chunk (file cut short?).")
                break
            length, ctype = struct.unpack(">I4s", head)
            if not ctype.isalpha() or length > 0x7FFFFFFF:
                warnings.append("The PNG has a damaged chunk header; stopped reading there.")
                break
            if ctype == b"IEND":
                break
            if ctype not in (b"tEXt", b"zTXt", b"iTXt"):
                fh.seek(length + 4, 1)
                continue
            name = ctype.decode("ascii")
            if length > _MAX_TEXT_BYTES:
                warnings.append(f"Skipped a {length}-byte {name} chunk (too large).")
                fh.seek(length + 4, 1)
                continue
            data = fh.read(length)
            crc = fh.read(4)
            if len(data) < length or len(crc) < 4:
                warnings.append(f"A {name} chunk is cut short (file truncated?).")
                break
            crc_ok = zlib.crc32(ctype + data) == int.from_bytes(crc, "big")
            try:
                key, text = _decode_text_chunk(ctype, data)
            except (ValueError, zlib.error) as exc:
                warnings.append(f"Skipped an unreadable {name} chunk ({exc}).")
                continue
            if not crc_ok:
                warnings.append(f"The {key!r} chunk has a bad checksum; its text may be damaged.")
            if key in chunks:
                warnings.append(f"The {key!r} chunk appears more than once; the first one is used.")
                continue
            chunks[key] = text
    return chunks, warnings


def _decode_user_comment(raw: Any) -> str:
    """EXIF UserComment: an 8-byte charset prefix, then the text (A1111: UTF-16 "UNICODE")."""
    if isinstance(raw, str):
        return raw.strip("\0")
    if not isinstance(raw, (bytes, bytearray)):
        return ""
    raw = bytes(raw)
    prefix, body = raw[:8], raw[8:]
    if prefix.startswith(b"UNICODE"):
        best, best_score = "", -1.0
        for encoding in ("utf-16-be", "utf-16-le"):
            try:
                text = body.decode(encoding)
            except UnicodeDecodeError:
                continue
            score = sum(ch.isascii() and (ch.isprintable() or ch in "\n\t") for ch in text) / max(
                len(text), 1
            )
            if score > best_score:
                best, best_score = text, score
        return best.strip("\0")
    if prefix.startswith(b"ASCII") or prefix == b"\0" * 8:
        return _decode_text(body).strip("\0")
    return _decode_text(raw).strip("\0")


def _read_other_image(path: Path) -> tuple[dict[str, str], list[str]]:
    """Text metadata of a non-PNG image (EXIF UserComment, JPEG comment, text info)."""
    from PIL import Image, UnidentifiedImageError

    chunks: dict[str, str] = {}
    warnings: list[str] = []
    try:
        img = Image.open(path)
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        OSError,
        ValueError,
        SyntaxError,
        EOFError,
        struct.error,
    ) as exc:
        raise FileFormatError(
            f"{path.name} is not an image zitdesk can read (PNG, JPEG or WebP expected)."
        ) from exc
    with img:
        for key, value in img.info.items():
            if isinstance(value, str):
                chunks.setdefault(str(key), value)
            elif key == "comment" and isinstance(value, (bytes, bytearray)):
                chunks.setdefault("comment", _decode_text(bytes(value)))
        try:
            exif = img.getexif()
            user_comment = exif.get_ifd(0x8769).get(0x9286)
            if user_comment:
                text = _decode_user_comment(user_comment)
                if text:
                    chunks.setdefault(PARAMETERS_KEY, text)
            # ComfyUI's WebP/animated savers put "prompt:{...}" / "workflow:{...}" in IFD0 strings.
            for tag in (0x010E, 0x010F, 0x0110):
                value = exif.get(tag)
                if isinstance(value, bytes):
                    value = _decode_text(value)
                if isinstance(value, str):
                    label, sep, rest = value.partition(":")
                    if sep and label.strip().lower() in ("prompt", "workflow"):
                        chunks.setdefault(label.strip().lower(), rest)
        except Exception as exc:  # noqa: BLE001 - Pillow raises many types on damaged EXIF
            warnings.append(f"The EXIF data could not be read ({type(exc).__name__}).")
        comment = chunks.get("comment", "")
        if PARAMETERS_KEY not in chunks and "Steps:" in comment:
            chunks[PARAMETERS_KEY] = comment
    return chunks, warnings


# --------------------------------------------------------------------------------------------
# Reading: value helpers
# --------------------------------------------------------------------------------------------


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    number = _as_float(value)
    if number is None or not number.is_integer():
        return None
    return int(number)


def _as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _loads(text: str) -> tuple[Any, bool]:
    """``json.loads`` that reports failure (including absurd nesting) instead of raising."""
    try:
        return json.loads(text), True
    except (ValueError, RecursionError):
        return None, False


def _file_stem(path: str) -> str:
    name = re.split(r"[\\/]", str(path))[-1]
    stem, dot, ext = name.rpartition(".")
    if dot and stem and ext.lower() in ("safetensors", "ckpt", "pt", "pth", "bin", "gguf", "sft"):
        return stem
    return name


def _guidance_from_cfg(cfg: float | None) -> float | None:
    return None if cfg is None else round(max(cfg - 1.0, 0.0), 6)


def _empty_result(chunks: dict[str, str], warnings: list[str]) -> dict[str, Any]:
    return {
        "source": "none",
        "prompt": None,
        "negative_prompt": None,
        "steps": None,
        "cfg_scale": None,
        "guidance": None,
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


def _lookup(chunks: Mapping[str, str], key: str) -> str | None:
    if key in chunks:
        return chunks[key]
    for name, text in chunks.items():
        if name.lower() == key:
            return text
    return None


# --------------------------------------------------------------------------------------------
# Reading: A1111 / Forge infotext
# --------------------------------------------------------------------------------------------

_KEY_RE = re.compile(r"\s*(\w[\w \-/]*+):")  # possessive: linear time on hostile input
_SIZE_RE = re.compile(r"^\s*(\d+)\s*x\s*(\d+)\s*$")
_LORA_TAG_RE = re.compile(r"<(lora|lyco):([^:<>]+)((?::[^:<>]*)*)>", re.IGNORECASE)
_SETTINGS_MARKERS = ("Steps", "Sampler", "Seed", "CFG scale", "Size")
_json_decoder = json.JSONDecoder()


def parse_settings_line(line: str) -> list[tuple[str, str]]:
    """Split an A1111 settings line into ``(key, value)`` pairs (quoted values unquoted).

    Follows A1111's ``key: value, key: "quoted, value"`` rules in one linear pass (no regex
    backtracking on hostile input); a value starting with ``{`` or ``[`` that is valid JSON
    (Civitai's ``Hashes: {...}``) is taken whole.
    """
    pairs: list[tuple[str, str]] = []
    pos, end = 0, len(line)
    while pos < end:
        match = _KEY_RE.match(line, pos)
        if match is None:
            comma = line.find(",", pos)
            if comma < 0:
                break
            pos = comma + 1
            continue
        key = match.group(1).strip()
        pos = match.end()
        while pos < end and line[pos] in " \t":
            pos += 1
        value: str | None = None
        if pos < end and line[pos] in '"{[':
            try:
                parsed, stop = _json_decoder.raw_decode(line, pos)
            except (ValueError, RecursionError):
                parsed, stop = None, -1
            if stop > 0:
                after = stop
                while after < end and line[after] in " \t":
                    after += 1
                if after >= end or line[after] == ",":
                    value = parsed if isinstance(parsed, str) else line[pos:stop]
                    pos = after + 1
        if value is None:
            comma = line.find(",", pos)
            stop = end if comma < 0 else comma
            value = line[pos:stop].strip()
            pos = stop + 1
        pairs.append((key, value))
    return pairs


def _is_settings_line(pairs: list[tuple[str, str]]) -> bool:
    keys = {k for k, _ in pairs}
    return len(pairs) >= 3 and any(marker in keys for marker in _SETTINGS_MARKERS)


def split_infotext(text: str) -> tuple[str, str, list[tuple[str, str]], list[str]]:
    """``(prompt, negative_prompt, settings pairs, trailing lines)`` of an A1111 infotext.

    The settings line is the last line that looks like one (at least three ``key: value`` pairs,
    one of them Steps/Sampler/Seed/CFG scale/Size); lines after it (dynamic-prompts'
    ``Template:`` lines, for instance) are returned separately.
    """
    lines = text.strip().replace("\r\n", "\n").replace("\r", "\n").split("\n")
    settings: list[tuple[str, str]] = []
    trailing: list[str] = []
    for index in range(len(lines) - 1, -1, -1):
        if "Negative prompt:" in lines[index][:20]:
            break
        pairs = parse_settings_line(lines[index])
        if _is_settings_line(pairs):
            settings = pairs
            trailing = lines[index + 1 :]
            lines = lines[:index]
            break
    prompt_lines: list[str] = []
    negative_lines: list[str] = []
    in_negative = False
    for line in lines:
        line = line.strip()
        if not in_negative and line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:") :].strip()
        (negative_lines if in_negative else prompt_lines).append(line)
    return "\n".join(prompt_lines), "\n".join(negative_lines), settings, trailing


def _lora_tags(prompt: str) -> list[tuple[str, float | None]]:
    found = []
    for match in _LORA_TAG_RE.finditer(prompt):
        name = match.group(2).strip()
        weight: float | None = 1.0
        for arg in [a for a in match.group(3).split(":") if a]:
            if "=" in arg:
                label, _, val = arg.partition("=")
                if label.strip() in ("te", "unet"):
                    weight = _as_float(val)
                    if label.strip() == "unet":
                        break
                continue
            weight = _as_float(arg)
            break
        found.append((name, weight))
    return found


def _parse_lora_hashes(value: str) -> dict[str, str]:
    result = {}
    for item in value.split(","):
        name, sep, digest = item.rpartition(":")
        if sep and name.strip() and digest.strip():
            result[name.strip()] = digest.strip()
    return result


_A1111_MAPPED = _MAPPED_KEYS | {"Hashes"}


def _fill_from_infotext(result: dict[str, Any], text: str) -> bool:
    """Fill ``result`` from an infotext; True when it had a settings line."""
    prompt, negative, pairs, trailing = split_infotext(text)
    settings: dict[str, str] = {}
    for key, value in pairs:
        settings[key] = value
    for line in trailing:
        key, sep, value = line.partition(":")
        if sep and key.strip():
            settings.setdefault(key.strip(), value.strip())
    result["prompt"] = prompt
    result["negative_prompt"] = negative
    result["settings"] = settings
    unmapped: list[str] = result["unmapped"]

    def take(key: str, convert):
        if key not in settings:
            return None
        value = convert(settings[key])
        if value is None:
            unmapped.append(key)
        return value

    result["steps"] = take("Steps", _as_int)
    result["sampler"] = take("Sampler", _as_str)
    result["scheduler"] = take("Schedule type", _as_str)
    result["cfg_scale"] = take("CFG scale", _as_float)
    result["guidance"] = _guidance_from_cfg(result["cfg_scale"])
    result["seed"] = take("Seed", _as_int)
    result["shift"] = take("Shift", _as_float)
    result["model"] = take("Model", _as_str)
    result["model_hash"] = take("Model hash", _as_str)
    result["version"] = take("Version", _as_str)
    size = take("Size", lambda v: _SIZE_RE.match(v))
    if size:
        result["width"], result["height"] = int(size.group(1)), int(size.group(2))

    hashes = _parse_lora_hashes(settings.get("Lora hashes", ""))
    civitai_hashes: Any = None
    if "Hashes" in settings:
        civitai_hashes, _ = _loads(settings["Hashes"])
        if not isinstance(civitai_hashes, dict):
            unmapped.append("Hashes")
            civitai_hashes = None
    if civitai_hashes:
        for key, digest in civitai_hashes.items():
            if not isinstance(digest, str):
                continue
            if key.startswith("lora:"):
                hashes.setdefault(key[5:], digest)
            elif key == "model" and not result["model_hash"]:
                result["model_hash"] = digest

    loras = []
    seen = set()
    for name, weight in _lora_tags(prompt):
        if name in seen:
            continue
        seen.add(name)
        loras.append({"name": name, "weight": weight, "hash": hashes.get(name, ""), "file": ""})
    for name, digest in hashes.items():
        if name not in seen:
            seen.add(name)
            loras.append({"name": name, "weight": None, "hash": digest, "file": ""})
    result["loras"] = loras
    for key in settings:
        if key not in _A1111_MAPPED and key not in unmapped:
            unmapped.append(key)
    return bool(pairs)


# --------------------------------------------------------------------------------------------
# Reading: zitdesk JSON chunk
# --------------------------------------------------------------------------------------------


def _fill_from_zitdesk(result: dict[str, Any], text: str) -> bool:
    payload, ok = _loads(text)
    if not ok:
        result["warnings"].append("The zitdesk chunk is not valid JSON; read the infotext instead.")
        return False
    meta = payload.get("meta") if isinstance(payload, dict) else None
    if not isinstance(meta, dict):
        result["warnings"].append("The zitdesk chunk has no metadata; read the infotext instead.")
        return False
    if _as_int(payload.get("version")) != CHUNK_VERSION:
        result["warnings"].append(
            f"The zitdesk chunk has format version {payload.get('version')!r}; read it as version 1."
        )
    unmapped: list[str] = result["unmapped"]

    def take(key: str, convert, default=None):
        if key not in meta:
            return default
        value = convert(meta[key])
        if value is None and meta[key] is not None:
            unmapped.append(key)
        return value

    result["prompt"] = take("prompt", _as_str)
    result["negative_prompt"] = take("negative_prompt", _as_str, "")
    result["steps"] = take("steps", _as_int)
    guidance = take("cfg_scale", _as_float)
    result["guidance"] = guidance
    result["cfg_scale"] = None if guidance is None else round(guidance + 1.0, 6)
    result["seed"] = take("seed", _as_int)
    result["width"] = take("width", _as_int)
    result["height"] = take("height", _as_int)
    result["sampler"] = take("sampler", _as_str)
    result["scheduler"] = take("schedule", _as_str)
    result["shift"] = take("shift", _as_float)
    result["model"] = take("model_name", _as_str)
    result["model_hash"] = take("model_hash", _as_str)
    version = take("version", _as_str)
    if version is not None and not version.lower().startswith("zitdesk"):
        version = f"zitdesk {version}"
    result["version"] = version

    request = payload.get("request")
    result["request"] = request if isinstance(request, dict) else None
    request_paths = {}
    if result["request"] and isinstance(result["request"].get("loras"), list):
        for spec in result["request"]["loras"]:
            if isinstance(spec, dict) and isinstance(spec.get("path"), str):
                request_paths.setdefault(_file_stem(spec["path"]), spec["path"])

    loras = []
    raw_loras = meta.get("loras", [])
    if not isinstance(raw_loras, list):
        unmapped.append("loras")
        raw_loras = []
    for item in raw_loras:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            if "loras" not in unmapped:
                unmapped.append("loras")
            continue
        loras.append(
            {
                "name": item["name"],
                "weight": _as_float(item.get("weight")),
                "hash": item.get("sha256") if isinstance(item.get("sha256"), str) else "",
                "file": request_paths.get(item["name"], ""),
            }
        )
    result["loras"] = loras
    extra = meta.get("extra")
    if isinstance(extra, dict):
        unmapped.extend(str(k) for k in extra)
    return True


# --------------------------------------------------------------------------------------------
# Reading: ComfyUI graphs
# --------------------------------------------------------------------------------------------

_SAMPLER_TYPES = {"KSampler", "KSamplerAdvanced", "SamplerCustom", "SamplerCustomAdvanced"}
_TEXT_KEYS = (
    "text",
    "prompt",
    "t5xxl",
    "text_g",
    "clip_l",
    "text_l",
    "string",
    "value",
    "text_positive",
)
_MODEL_KEYS = ("unet_name", "ckpt_name", "model_name", "gguf_name")
_LATENT_LINK_KEYS = ("samples", "latent", "latent_image", "pixels", "image", "images")


def _is_link(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], (str, int))
        and not isinstance(value[0], bool)
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
    )


class _ComfyGraph:
    """An API-format ComfyUI graph: ``{node_id: {"class_type": ..., "inputs": {...}}}``."""

    def __init__(self, nodes: dict[str, Any]):
        self.nodes = {str(k): v for k, v in nodes.items() if isinstance(v, dict)}
        # Every link followed costs one step, so a hostile graph (cycles, fan-out) cannot make
        # the walks below take exponential time; a real graph needs a few hundred.
        self.steps_left = _MAX_LINK_STEPS

    def target(self, link: Any) -> tuple[str, dict[str, Any], dict[str, Any], int] | None:
        if not _is_link(link) or self.steps_left <= 0:
            return None
        self.steps_left -= 1
        node = self.nodes.get(str(link[0]))
        if node is None:
            return None
        inputs = node.get("inputs")
        return (
            _as_str(node.get("class_type")) or "",
            inputs if isinstance(inputs, dict) else {},
            node,
            link[1],
        )

    def inputs(self, node_id: str) -> dict[str, Any]:
        inputs = self.nodes.get(node_id, {}).get("inputs")
        return inputs if isinstance(inputs, dict) else {}

    def class_type(self, node_id: str) -> str:
        return _as_str(self.nodes.get(node_id, {}).get("class_type")) or ""

    # -- scalars (seed, steps, cfg ... possibly wired from primitive nodes) --
    def scalar(self, value: Any, keys: tuple[str, ...] = (), depth: int = 0) -> Any:
        if not _is_link(value):
            return value
        if depth > _MAX_DEPTH:
            return None
        found = self.target(value)
        if found is None:
            return None
        _, inputs, _, _ = found
        for key in (*keys, "value", "seed", "noise_seed", "int", "float", "number", "Number", "a"):
            if key in inputs:
                return self.scalar(inputs[key], keys, depth + 1)
        return None

    # -- text of a conditioning input --
    def text(self, value: Any, depth: int = 0) -> str | None:
        if isinstance(value, str):
            return value
        if depth > _MAX_DEPTH:
            return None
        found = self.target(value)
        if found is None:
            return None
        ctype, inputs, _, out_index = found
        if ctype == "ConditioningZeroOut":
            return ""
        if "positive" in inputs and "negative" in inputs:  # ControlNetApplyAdvanced and friends
            return self.text(inputs["positive" if out_index == 0 else "negative"], depth + 1)
        if "string_a" in inputs and "string_b" in inputs:  # StringConcatenate
            parts = [
                self.text(inputs["string_a"], depth + 1),
                self.text(inputs["string_b"], depth + 1),
            ]
            delimiter = inputs.get("delimiter") if isinstance(inputs.get("delimiter"), str) else ""
            return delimiter.join(p for p in parts if p)
        for key in _TEXT_KEYS:
            if key in inputs and (isinstance(inputs[key], str) or _is_link(inputs[key])):
                text = self.text(inputs[key], depth + 1)
                if text is not None:
                    return text
        parts = [
            self.text(inputs[key], depth + 1)
            for key in sorted(inputs)
            if key.startswith("conditioning") and _is_link(inputs[key])
        ]
        parts = [p for p in parts if p is not None]
        if parts:
            return "\n".join(p for p in parts if p)
        return None

    # -- latent size --
    def latent_size(self, value: Any, depth: int = 0) -> tuple[int, int] | None:
        if depth > _MAX_DEPTH:
            return None
        found = self.target(value)
        if found is None:
            return None
        _, inputs, _, _ = found
        width = _as_int(self.scalar(inputs.get("width"), ("width",)))
        height = _as_int(self.scalar(inputs.get("height"), ("height",)))
        if width and height:
            return width, height
        for key in _LATENT_LINK_KEYS:
            if _is_link(inputs.get(key)):
                size = self.latent_size(inputs[key], depth + 1)
                if size is None:
                    return None
                scale = _as_float(self.scalar(inputs.get("scale_by"), ("scale_by",)))
                if scale:
                    return round(size[0] * scale), round(size[1] * scale)
                return size
        return None

    def starts_from_empty_latent(self, value: Any, depth: int = 0) -> bool:
        found = self.target(value)
        if found is None or depth > _MAX_DEPTH:
            return False
        ctype, inputs, _, _ = found
        lowered = ctype.lower()
        if "empty" in lowered and "latent" in lowered:
            return True
        if self.is_sampler(ctype, inputs):
            return False
        return any(
            self.starts_from_empty_latent(inputs[k], depth + 1)
            for k in _LATENT_LINK_KEYS
            if _is_link(inputs.get(k))
        )

    @staticmethod
    def is_sampler(ctype: str, inputs: dict[str, Any]) -> bool:
        if ctype in _SAMPLER_TYPES:
            return True
        lowered = ctype.lower()
        return (
            "sampler" in lowered
            and ("positive" in inputs or "guider" in inputs)
            and ("latent_image" in inputs or "samples" in inputs)
        )

    # -- model chain: loaders, LoRAs, shift --
    def model_chain(self, value: Any) -> tuple[str | None, list[dict[str, Any]], float | None]:
        model: str | None = None
        loras: list[dict[str, Any]] = []
        shift: float | None = None
        seen: set[str] = set()
        link = value
        for _ in range(_MAX_DEPTH):
            if not _is_link(link) or str(link[0]) in seen:
                break
            seen.add(str(link[0]))
            found = self.target(link)
            if found is None:
                break
            ctype, inputs, _, _ = found
            loras.extend(self.node_loras(inputs))
            if shift is None and ctype.startswith("ModelSampling") and "shift" in inputs:
                shift = _as_float(self.scalar(inputs["shift"], ("shift",)))
            for key in _MODEL_KEYS:
                name = _as_str(self.scalar(inputs.get(key), (key,)))
                if name:
                    model = name
                    break
            if model:
                break
            link = inputs.get("model")
        loras.reverse()  # closest to the base model first, the order they are applied
        return model, loras, shift

    def node_loras(self, inputs: dict[str, Any]) -> list[dict[str, Any]]:
        found = []
        name = _as_str(self.scalar(inputs.get("lora_name"), ("lora_name",)))
        if name and name.lower() != "none":
            weight = None
            for key in ("strength_model", "strength", "lora_strength", "model_weight"):
                if key in inputs:
                    weight = _as_float(self.scalar(inputs[key], (key,)))
                    break
            found.append({"name": _file_stem(name), "weight": weight, "hash": "", "file": name})
        # rgthree "Power Lora Loader": lora_1 = {"on": true, "lora": "x.safetensors", "strength": 0.8}
        for key in sorted(k for k in inputs if k.lower().startswith("lora_") and k != "lora_name"):
            item = inputs[key]
            if (
                isinstance(item, dict)
                and isinstance(item.get("lora"), str)
                and item.get("on", True)
            ):
                if item["lora"].lower() == "none":
                    continue
                found.append(
                    {
                        "name": _file_stem(item["lora"]),
                        "weight": _as_float(item.get("strength")),
                        "hash": "",
                        "file": item["lora"],
                    }
                )
        return found


def _fill_from_comfy_graph(result: dict[str, Any], graph: _ComfyGraph) -> bool:
    samplers = [
        (node_id, graph.class_type(node_id), graph.inputs(node_id))
        for node_id in graph.nodes
        if graph.is_sampler(graph.class_type(node_id), graph.inputs(node_id))
    ]
    if not samplers:
        return False

    def order(item):
        node_id = item[0]
        first_pass = graph.starts_from_empty_latent(item[2].get("latent_image"))
        return (0 if first_pass else 1, int(node_id) if node_id.isdigit() else 10**9, node_id)

    samplers.sort(key=order)
    node_id, _, inputs = samplers[0]
    if len(samplers) > 1:
        result["warnings"].append(
            f"The ComfyUI graph has {len(samplers)} sampler nodes; read the first pass (node {node_id})."
        )
    unmapped: list[str] = result["unmapped"]

    def resolve(key: str, convert, value: Any) -> Any:
        if value is None:
            return None
        out = convert(graph.scalar(value, (key,)))
        if out is None:
            unmapped.append(key)
        return out

    positive = inputs.get("positive")
    negative = inputs.get("negative")
    model_link = inputs.get("model")
    seed_value = inputs.get("seed", inputs.get("noise_seed"))
    steps_value = inputs.get("steps")
    cfg_value = inputs.get("cfg")
    sampler_value = inputs.get("sampler_name")
    scheduler_value = inputs.get("scheduler")

    # SamplerCustom / SamplerCustomAdvanced: the settings live on the nodes wired in.
    noise = graph.target(inputs.get("noise"))
    if noise and seed_value is None:
        seed_value = noise[1].get("noise_seed", noise[1].get("seed"))
    guider = graph.target(inputs.get("guider"))
    if guider:
        g_inputs = guider[1]
        positive = g_inputs.get("positive", g_inputs.get("conditioning", positive))
        negative = g_inputs.get("negative", negative)
        cfg_value = g_inputs.get("cfg", cfg_value)
        model_link = g_inputs.get("model", model_link)
    sampler_node = graph.target(inputs.get("sampler"))
    if sampler_node and sampler_value is None:
        sampler_value = sampler_node[1].get("sampler_name")
    sigmas = graph.target(inputs.get("sigmas"))
    if sigmas:
        s_inputs = sigmas[1]
        steps_value = s_inputs.get("steps", steps_value)
        scheduler_value = s_inputs.get("scheduler", scheduler_value)
        if model_link is None:
            model_link = s_inputs.get("model")

    result["seed"] = resolve("seed", _as_int, seed_value)
    result["steps"] = resolve("steps", _as_int, steps_value)
    result["cfg_scale"] = resolve("cfg", _as_float, cfg_value)
    result["guidance"] = _guidance_from_cfg(result["cfg_scale"])
    result["sampler"] = resolve("sampler_name", _as_str, sampler_value)
    result["scheduler"] = resolve("scheduler", _as_str, scheduler_value)

    result["prompt"] = graph.text(positive) if positive is not None else None
    if positive is not None and result["prompt"] is None:
        unmapped.append("positive")
    result["negative_prompt"] = graph.text(negative) if negative is not None else ""
    if negative is not None and result["negative_prompt"] is None:
        unmapped.append("negative")

    size = graph.latent_size(inputs.get("latent_image"))
    if size:
        result["width"], result["height"] = size
    elif "latent_image" in inputs:
        unmapped.append("latent_image")

    model, loras, shift = graph.model_chain(model_link)
    if model is None:
        # Broken or unusual wiring: fall back to the loaders anywhere in the graph.
        for nid in sorted(
            graph.nodes, key=lambda n: (not n.isdigit(), int(n) if n.isdigit() else 0, n)
        ):
            node_inputs = graph.inputs(nid)
            if model is None:
                for key in _MODEL_KEYS:
                    name = _as_str(graph.scalar(node_inputs.get(key), (key,)))
                    if name:
                        model = name
                        break
            if not loras:
                loras = graph.node_loras(node_inputs) or loras
        if model is None:
            unmapped.append("model")
    result["model"] = model
    result["loras"] = loras
    result["shift"] = shift
    return True


# Widget order of the common nodes in a ComfyUI UI workflow (``widgets_values`` is positional;
# None marks the "control after generate" widget that follows a seed).
_UI_WIDGETS: dict[str, tuple[str | None, ...]] = {
    "KSampler": ("seed", None, "steps", "cfg", "sampler_name", "scheduler", "denoise"),
    "KSamplerAdvanced": (
        "add_noise",
        "noise_seed",
        None,
        "steps",
        "cfg",
        "sampler_name",
        "scheduler",
        "start_at_step",
        "end_at_step",
        "return_with_leftover_noise",
    ),
    "SamplerCustom": ("add_noise", "noise_seed", None, "cfg"),
    "RandomNoise": ("noise_seed", None),
    "KSamplerSelect": ("sampler_name",),
    "BasicScheduler": ("scheduler", "steps", "denoise"),
    "CFGGuider": ("cfg",),
    "CLIPTextEncode": ("text",),
    "EmptyLatentImage": ("width", "height", "batch_size"),
    "EmptySD3LatentImage": ("width", "height", "batch_size"),
    "LoraLoader": ("lora_name", "strength_model", "strength_clip"),
    "LoraLoaderModelOnly": ("lora_name", "strength_model"),
    "UNETLoader": ("unet_name", "weight_dtype"),
    "CheckpointLoaderSimple": ("ckpt_name",),
    "ModelSamplingAuraFlow": ("shift",),
    "ModelSamplingSD3": ("shift",),
    "PrimitiveInt": ("value", None),
    "PrimitiveFloat": ("value",),
    "PrimitiveString": ("value",),
    "PrimitiveStringMultiline": ("value",),
}
_UI_VIRTUAL = {"PrimitiveNode", "Reroute"}  # frontend-only nodes, absent from API graphs


def _graph_from_ui_workflow(workflow: dict[str, Any]) -> _ComfyGraph:
    """Rebuild an API-style graph from the UI ``workflow`` JSON (nodes + links)."""
    raw_nodes = [
        n
        for n in _as_list(workflow.get("nodes"))
        if isinstance(n, dict) and isinstance(n.get("id"), (int, str))
    ]
    by_id = {str(n["id"]): n for n in raw_nodes}
    links: dict[Any, tuple[str, int]] = {}
    for link in _as_list(workflow.get("links")):
        if (
            isinstance(link, list)
            and len(link) >= 5
            and isinstance(link[0], (int, str))
            and isinstance(link[1], (int, str))
            and isinstance(link[2], int)
        ):
            links[link[0]] = (str(link[1]), link[2])
        elif (
            isinstance(link, dict)
            and isinstance(link.get("id"), (int, str))
            and isinstance(link.get("origin_slot"), int)
        ):
            links[link["id"]] = (str(link.get("origin_id")), link["origin_slot"])

    def origin(link_id: Any) -> tuple[str, int] | None:
        """The real source of a link, looking through Reroute nodes."""
        for _ in range(_MAX_DEPTH):
            found = links.get(link_id) if isinstance(link_id, (int, str)) else None
            if found is None:
                return None
            node = by_id.get(found[0], {})
            if node.get("type") != "Reroute":
                return found
            slots = _as_list(node.get("inputs"))
            link_id = slots[0].get("link") if slots and isinstance(slots[0], dict) else None
        return None

    nodes: dict[str, Any] = {}
    for node in raw_nodes:
        ctype = _as_str(node.get("type")) or ""
        if ctype in _UI_VIRTUAL:
            continue
        inputs: dict[str, Any] = {}
        widgets = node.get("widgets_values")
        if isinstance(widgets, dict):
            inputs.update({str(k): v for k, v in widgets.items()})
        elif isinstance(widgets, list):
            names = _UI_WIDGETS.get(ctype, ())
            for name, value in zip(names, widgets):
                if name is not None:
                    inputs[name] = value
        for slot in _as_list(node.get("inputs")):
            if not isinstance(slot, dict) or not isinstance(slot.get("name"), str):
                continue
            source = origin(slot.get("link"))
            if source is None:
                continue
            if by_id.get(source[0], {}).get("type") == "PrimitiveNode" and slot["name"] in inputs:
                continue  # the widget value is already in widgets_values
            inputs[slot["name"]] = [source[0], source[1]]
        if node.get("mode") in (2, 4):  # muted / bypassed: walk through, but it applied no LoRA
            inputs.pop("lora_name", None)
        nodes[str(node["id"])] = {"class_type": ctype, "inputs": inputs}
    return _ComfyGraph(nodes)


def _fill_from_comfyui(result: dict[str, Any], chunks: Mapping[str, str]) -> bool:
    prompt_text = _lookup(chunks, "prompt")
    if prompt_text:
        graph, ok = _loads(prompt_text)
        if not ok:
            result["warnings"].append("The ComfyUI 'prompt' chunk is not valid JSON.")
        if isinstance(graph, dict) and _fill_from_comfy_graph(result, _ComfyGraph(graph)):
            return True
    workflow_text = _lookup(chunks, "workflow")
    if workflow_text:
        workflow, ok = _loads(workflow_text)
        if not ok:
            result["warnings"].append("The ComfyUI 'workflow' chunk is not valid JSON.")
        if isinstance(workflow, dict) and _fill_from_comfy_graph(
            result, _graph_from_ui_workflow(workflow)
        ):
            result["warnings"].append(
                "Read from the ComfyUI UI workflow (no API graph in the file)."
            )
            return True
    return False


# --------------------------------------------------------------------------------------------
# Public reading API
# --------------------------------------------------------------------------------------------


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


def read_parameters(path: str | Path) -> dict[str, Any]:
    """Generation parameters of the image at ``path`` as a JSON-serialisable dict.

    Keys: ``source`` ("zitdesk", "a1111", "comfyui" or "none"), ``prompt``, ``negative_prompt``,
    ``steps``, ``cfg_scale`` (A1111/ComfyUI semantics), ``guidance`` (zitdesk semantics,
    ``cfg_scale - 1``), ``seed``, ``width``, ``height``, ``sampler``, ``scheduler``, ``shift``,
    ``model``, ``model_hash``, ``loras`` (list of ``{name, weight, hash, file}``), ``version``,
    ``request`` (the zitdesk request dict, zitdesk images only), ``settings`` (the infotext's
    ``key: value`` pairs), ``raw`` (all text chunks), ``unmapped`` (setting keys that could not
    be mapped) and ``warnings`` (damage found while reading). Unknown values are ``None``.

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
    return _interpret(chunks, warnings)


def params_json(path: str | Path) -> str:
    """:func:`read_parameters` as indented JSON (for ``zitdesk params IMAGE --json``)."""
    return json.dumps(read_parameters(path), ensure_ascii=False, indent=2)


__all__ = [
    "ImageMeta",
    "LoraUse",
    "a1111_parameters",
    "params_json",
    "parse_settings_line",
    "read_parameters",
    "split_infotext",
    "write_png",
    "public_request",
]
