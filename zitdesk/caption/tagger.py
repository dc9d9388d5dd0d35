"""WD-style ONNX taggers (SmilingWolf's ``wd-*-tagger-v3`` layout) through onnxruntime.

A tagger folder holds ``model.onnx`` and ``selected_tags.csv`` (``tag_id,name,category,count``;
category 9 = rating, 4 = character, 0 = general). The model takes a batch of NHWC float32 images
in BGR order, 0–255, padded to a white square and resized to the model's side (448 for v3), and
returns one sigmoid score per CSV row.

:func:`load_tagger` checks the folder and says in one sentence what is wrong with it;
:meth:`Tagger.tags` turns one image into tags ordered by confidence, with the thresholds,
exclusions, ratings and underscore options of :class:`TaggerOptions`.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zitdesk.errors import ModelError

MODEL_FILE = "model.onnx"
TAGS_FILE = "selected_tags.csv"
CATEGORY_GENERAL, CATEGORY_CHARACTER, CATEGORY_RATING = 0, 4, 9
# Tags whose underscores are part of the face they draw (kept as they are).
KAOMOJI = frozenset(
    "0_0 (o)_(o) +_+ +_- ._. <o>_<o> <|>_<|> =_= >_< 3_3 6_9 >_o @_@ ^_^ o_o u_u x_x |_| ||_||".split()
)


@dataclass(frozen=True)
class TaggerOptions:
    general_threshold: float = 0.35
    character_threshold: float = 0.85
    exclude: tuple[str, ...] = ()  # tags never written (either spelling, any case)
    ratings: bool = False  # add the best rating tag (general, sensitive, ...)
    underscores_to_spaces: bool = True
    max_tags: int = 0  # 0: no limit


@dataclass(frozen=True)
class TagInfo:
    name: str
    category: int


def tagger_files(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``(model.onnx, tags.csv)`` for a tagger folder, or for an ``.onnx`` file with
    ``<same name>.csv`` (ComfyUI's WD14 tagger node) or ``selected_tags.csv`` beside it."""
    p = Path(path)
    if p.suffix.lower() == ".onnx":
        same = p.with_suffix(".csv")
        return p, same if same.is_file() else p.parent / TAGS_FILE
    return p / MODEL_FILE, p / TAGS_FILE


def tagger_problem(path: str | os.PathLike[str]) -> str:
    """One sentence saying why ``path`` is not a WD tagger, or "" if it looks like one."""
    p = Path(path)
    if not p.exists():
        return f"The tagger folder {p} does not exist."
    if p.is_file() and p.suffix.lower() != ".onnx":
        return f"{p} is not a tagger: choose its folder (model.onnx + selected_tags.csv)."
    model, tags = tagger_files(p)
    missing = [f.name for f in (model, tags) if not f.is_file()]
    if missing:
        return (
            f"{p} is not a WD tagger: {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} missing (a wd-*-tagger-v3 folder holds "
            f"{MODEL_FILE} and {TAGS_FILE})."
        )
    return ""


def read_tags(path: Path) -> list[TagInfo]:
    """The CSV's rows in order (one per model output). Raises ModelError on a bad file."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ModelError(f"{path.name} cannot be read ({exc}).") from None
    if not rows or "name" not in rows[0] or "category" not in rows[0]:
        raise ModelError(
            f"{path} is not a tag list: it needs the columns tag_id,name,category,count."
        )
    out = []
    for i, r in enumerate(rows, start=2):
        try:
            out.append(TagInfo(str(r["name"]), int(r["category"])))
        except (TypeError, ValueError):
            raise ModelError(f"{path.name} line {i} has no whole-number category.") from None
    return out


def providers(device: str = "auto") -> list[str]:
    """onnxruntime providers: CUDA first when it is there (and not ``device == "cpu"``)."""
    import onnxruntime as ort

    have = ort.get_available_providers()
    if device != "cpu" and "CUDAExecutionProvider" in have:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class Tagger:
    """A loaded WD tagger (see :func:`load_tagger`)."""

    def __init__(self, folder: Path, session: Any, tags: list[TagInfo]) -> None:
        self.folder = folder
        self.session = session
        self.tag_info = tags
        inp = session.get_inputs()[0]
        self.input_name = inp.name
        self.output_name = session.get_outputs()[0].name
        side = inp.shape[1] if len(inp.shape) == 4 else None
        self.size = side if isinstance(side, int) and side > 0 else 448

    @property
    def provider(self) -> str:
        return self.session.get_providers()[0]

    def prepare(self, image: Any) -> Any:
        """A PIL image → (size, size, 3) float32 BGR array, padded to a white square."""
        import numpy as np
        from PIL import Image

        img = image
        if img.mode in ("RGBA", "LA", "P"):
            img = img.convert("RGBA")
            white = Image.new("RGBA", img.size, (255, 255, 255, 255))
            white.alpha_composite(img)
            img = white
        img = img.convert("RGB")
        side = max(img.size)
        square = Image.new("RGB", (side, side), (255, 255, 255))
        square.paste(img, ((side - img.width) // 2, (side - img.height) // 2))
        if side != self.size:
            square = square.resize((self.size, self.size), Image.Resampling.BICUBIC)
        arr = np.asarray(square, dtype=np.float32)
        return np.ascontiguousarray(arr[:, :, ::-1])

    def scores(self, images: Sequence[Any]) -> Any:
        """(batch, n_tags) scores for PIL images."""
        import numpy as np

        batch = np.stack([self.prepare(im) for im in images])
        out = self.session.run([self.output_name], {self.input_name: batch})[0]
        if out.size and (out.min() < 0.0 or out.max() > 1.0):  # logits, not probabilities
            out = 1.0 / (1.0 + np.exp(-out))
        if out.shape[-1] != len(self.tag_info):
            raise ModelError(
                f"The tagger gives {out.shape[-1]} scores but {TAGS_FILE} lists "
                f"{len(self.tag_info)} tags; the two files do not belong together."
            )
        return out

    def pick(self, scores: Any, opts: TaggerOptions) -> list[tuple[str, float]]:
        """Tags for one image's scores, ordered by confidence (best rating first if asked)."""
        exclude = {_key(t) for t in opts.exclude if t.strip()}
        found: list[tuple[str, float]] = []
        best_rating: tuple[str, float] | None = None
        for info, s in zip(self.tag_info, scores.tolist(), strict=True):
            if info.category == CATEGORY_RATING:
                if best_rating is None or s > best_rating[1]:
                    best_rating = (info.name, s)
                continue
            limit = (
                opts.character_threshold
                if info.category == CATEGORY_CHARACTER
                else opts.general_threshold
            )
            if s >= limit and _key(info.name) not in exclude:
                found.append((info.name, s))
        found.sort(key=lambda t: -t[1])
        if opts.max_tags > 0:
            found = found[: opts.max_tags]
        if opts.ratings and best_rating is not None and _key(best_rating[0]) not in exclude:
            found.insert(0, best_rating)
        if opts.underscores_to_spaces:
            found = [(n if n in KAOMOJI else n.replace("_", " "), s) for n, s in found]
        return found

    def tags(self, image: Any, opts: TaggerOptions) -> list[str]:
        return [n for n, _ in self.pick(self.scores([image])[0], opts)]


def _key(tag: str) -> str:
    return tag.strip().lower().replace("_", " ")


def load_tagger(folder: str | os.PathLike[str], device: str = "auto") -> Tagger:
    """Open a tagger folder (or its ``model.onnx``). Raises ModelError with one sentence."""
    problem = tagger_problem(folder)
    if problem:
        raise ModelError(problem)
    model_file, tags_file = tagger_files(folder)
    p = model_file.parent
    tags = read_tags(tags_file)
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    try:
        session = ort.InferenceSession(
            str(model_file), sess_options=opts, providers=providers(device)
        )
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ModelError(f"{model_file} is not a usable ONNX model ({first}).") from None
    shape = session.get_inputs()[0].shape
    if len(shape) != 4 or shape[3] not in (3, "3"):
        raise ModelError(
            f"{model_file} does not take images the way WD taggers do "
            f"(input shape {shape}, expected batch × side × side × 3)."
        )
    return Tagger(p, session, tags)
