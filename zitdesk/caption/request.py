"""The caption job's frozen request and its events (the engine protocol of ``zitdesk.engine``).

A :class:`CaptionRequest` names a dataset folder, which images (all, some, only uncaptioned),
one model (a WD tagger folder or a vision-language model folder) and how the new text joins the
old caption (:data:`MODES`). The job reports each new caption; the caller applies them (the app
through its open dataset session, the CLI through :mod:`zitdesk.caption.store`), one undo step.

``expected`` holds the captions as the caller saw them when the job started (``(name, text)``;
``None`` text: no caption file). A caption that differs from it when the results are applied was
edited meanwhile and is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from zitdesk.engine.events import EngineEvent
from zitdesk.engine.requests import new_job_id
from zitdesk.errors import RequestError

MODES = ("replace", "append", "prepend")
TEMPLATES = ("short", "detailed", "training")
QUANTS = ("none", "8bit", "4bit")
KINDS = ("tagger", "vlm")


@dataclass(frozen=True)
class CaptionRequest:
    folder: str
    model_kind: str = "tagger"  # tagger | vlm
    model_path: str = ""
    names: tuple[str, ...] = ()  # () = every image of the folder
    only_uncaptioned: bool = False
    mode: str = "replace"  # replace | append | prepend (the new text before the old)
    limit: int = 0  # caption only the first N chosen images (a preview); 0 = all
    expected: tuple[tuple[str, str | None], ...] = ()  # captions at job start (else read now)
    # tagger
    general_threshold: float = 0.35
    character_threshold: float = 0.85
    exclude: tuple[str, ...] = ()
    ratings: bool = False
    underscores_to_spaces: bool = True
    max_tags: int = 0
    # describer
    template: str = "short"  # short | detailed | training
    trigger: str = ""  # the subject the "training" template leaves out
    prompt: str = ""  # a prompt of the user's own instead of the template
    max_tokens: int = 160
    quant: str = "none"  # none | 8bit | 4bit (bitsandbytes, CUDA only)
    device: str = "auto"  # auto | cpu | cuda
    job_id: str = field(default_factory=lambda: new_job_id("caption"))

    def validate(self) -> CaptionRequest:
        if self.model_kind not in KINDS:
            raise RequestError("Choose a tagger or a vision-language model to caption with.")
        if not self.model_path.strip():
            what = "tagger folder" if self.model_kind == "tagger" else "vision-language model"
            raise RequestError(f"No {what} is chosen; pick its folder first.")
        if self.mode not in MODES:
            raise RequestError(f"The caption mode must be one of {', '.join(MODES)}.")
        if self.template not in TEMPLATES:
            raise RequestError(f"The prompt template must be one of {', '.join(TEMPLATES)}.")
        if self.quant not in QUANTS:
            raise RequestError(f"The quantisation must be one of {', '.join(QUANTS)}.")
        for name, v in (
            ("general threshold", self.general_threshold),
            ("character threshold", self.character_threshold),
        ):
            if not 0.0 <= v <= 1.0:
                raise RequestError(f"The {name} must be between 0 and 1.")
        if not 1 <= self.max_tokens <= 2048:
            raise RequestError("The maximum caption length must be between 1 and 2048 tokens.")
        if self.limit < 0 or self.max_tags < 0:
            raise RequestError("Counts cannot be negative.")
        return self


@dataclass(frozen=True)
class CaptionReady(EngineEvent):
    """One image captioned: ``old`` is its caption at job start, ``new`` what the mode makes of
    it with ``generated``; ``index``/``total`` and ``elapsed_s`` give the progress and ETA."""

    name: str = ""
    index: int = 0  # 0-based among the images of the job
    total: int = 0
    old: str | None = None
    new: str | None = None
    generated: str = ""
    elapsed_s: float = 0.0

    @property
    def eta_s(self) -> float:
        done = self.index + 1
        return self.elapsed_s / done * (self.total - done) if done else 0.0
