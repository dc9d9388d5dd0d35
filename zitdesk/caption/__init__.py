"""Auto-captioning with local models (never downloaded), as jobs on the one engine queue.

* :mod:`~zitdesk.caption.tagger`: WD-style ONNX taggers (``model.onnx`` + ``selected_tags.csv``)
  through onnxruntime.
* :mod:`~zitdesk.caption.describer`: vision-language models (Qwen2-VL / Qwen2.5-VL / Qwen3-VL)
  through transformers.
* :mod:`~zitdesk.caption.locate`: where such files usually are; a chosen folder checked with a
  plain sentence.
* :mod:`~zitdesk.caption.request`: :class:`CaptionRequest` and the :class:`CaptionReady` event;
  :mod:`~zitdesk.caption.compose`: replace / append / prepend;
  :mod:`~zitdesk.caption.job`: :class:`CaptionEngine` (dispatched by ``StudioEngine.run``; it
  only reports); :mod:`~zitdesk.caption.store`: the results into the caption store as one
  undo step (CLI, scripts; the app goes through its dataset session).
"""

from zitdesk.caption.request import MODES, CaptionReady, CaptionRequest

__all__ = ["MODES", "CaptionReady", "CaptionRequest"]
