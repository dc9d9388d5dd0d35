"""Natural-language captions from a vision-language model in a local folder (transformers).

The Qwen2-VL / Qwen2.5-VL / Qwen3-VL family is run natively: the folder's image processor and
tokenizer (``AutoImageProcessor`` / ``AutoTokenizer``, no video processor, so torchvision is not
needed) and the model through ``AutoModelForImageTextToText``; the chat prompt with the image
placeholder tokens is built here. Other image-text models are tried through their
``AutoProcessor`` if they load without remote code; a folder that needs remote code is refused
with a sentence. Nothing is ever downloaded (``local_files_only``).

4-bit / 8-bit loading (bitsandbytes) is offered on CUDA only.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zitdesk.errors import ModelError

QWEN_VL_TYPES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "qwen3_vl_moe")
MAX_IMAGE_SIDE = 1024  # larger images are scaled down first (tokens grow with the pixels)

PROMPTS = {
    "short": "Describe this image in one sentence for an image-generation caption.",
    "detailed": (
        "Describe this image in detail for an image-generation caption: the subject, what it "
        "wears and does, the setting, the lighting, the colours, the composition and the style. "
        "Write plain prose, no lists, no introduction."
    ),
    "training": (
        "Write a caption for training an image model on the subject called {trigger}. Describe "
        "everything in the image except the subject's own fixed traits (face, body, identity): "
        "clothing, pose, expression, setting, lighting, camera and style. Refer to the subject "
        "only as {trigger}. Plain prose, no introduction."
    ),
}


def build_prompt(template: str, trigger: str = "", custom: str = "") -> str:
    """The instruction for ``template`` (``short``/``detailed``/``training``) or ``custom``."""
    if custom.strip():
        return custom.strip()
    text = PROMPTS.get(template, PROMPTS["short"])
    return text.replace("{trigger}", trigger.strip() or "the subject")


@dataclass(frozen=True)
class DescriberOptions:
    template: str = "short"
    trigger: str = ""
    prompt: str = ""
    max_tokens: int = 160
    quant: str = "none"  # none | 8bit | 4bit
    device: str = "auto"


def read_config(folder: Path) -> dict:
    try:
        return json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ModelError(f"{folder / 'config.json'} cannot be read ({exc}).") from None


def describer_problem(folder: str | os.PathLike[str]) -> str:
    """One sentence saying why ``folder`` is not a usable vision-language model, or ""."""
    p = Path(folder)
    if not p.is_dir():
        return f"The model folder {p} does not exist."
    try:
        cfg = read_config(p)
    except ModelError as exc:
        return str(exc)
    if not cfg:
        return (
            f"{p} is not a transformers model folder (no config.json); choose the folder that "
            "holds config.json, the tokenizer and the weights."
        )
    if cfg.get("auto_map"):
        return (
            f"{p} needs the model's own Python code (remote code), which zitdesk does not run; "
            "use a Qwen2.5-VL or Qwen3-VL model instead."
        )
    mtype = str(cfg.get("model_type", ""))
    if mtype not in QWEN_VL_TYPES and "vision_config" not in cfg:
        return (
            f"{p} holds a {mtype or 'non-vision'} model, not a vision-language model; "
            "use a Qwen2.5-VL or Qwen3-VL folder."
        )
    if not any(p.glob("*.safetensors")) and not any(p.glob("*.bin")):
        return f"{p} has no model weights (*.safetensors); the download may be incomplete."
    if not (p / "tokenizer.json").is_file() and not (p / "tokenizer_config.json").is_file():
        return f"{p} has no tokenizer files (tokenizer.json); the download may be incomplete."
    if mtype in QWEN_VL_TYPES and not (p / "preprocessor_config.json").is_file():
        return f"{p} has no preprocessor_config.json (the image settings) beside the model."
    return ""


def _device(choice: str) -> str:
    import torch

    if choice == "cpu":
        return "cpu"
    if choice in ("auto", "cuda") and torch.cuda.is_available():
        return "cuda"
    return "cpu"


def _quant_config(quant: str, device: str) -> Any:
    if quant == "none":
        return None
    if device != "cuda":
        raise ModelError("4-bit and 8-bit loading needs an NVIDIA GPU; choose 'none' on a CPU.")
    try:
        import bitsandbytes  # noqa: F401
        from transformers import BitsAndBytesConfig
    except ImportError:
        raise ModelError(
            "4-bit and 8-bit loading needs the bitsandbytes package, which is not installed; "
            "choose 'none'."
        ) from None
    import torch

    if quant == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
    )


class Describer:
    """A loaded vision-language model; :meth:`describe` captions one PIL image."""

    def __init__(self, folder: Path, model: Any, tokenizer: Any, images: Any, processor: Any):
        self.folder = folder
        self.model = model
        self.tokenizer = tokenizer
        self.image_processor = images
        self.processor = processor  # only for models outside the Qwen-VL family
        # Qwen2-VL / Qwen2.5-VL chat templates add this system turn when there is none;
        # Qwen3-VL's do not.
        mtype = str(getattr(model.config, "model_type", ""))
        self.system = (
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
            if mtype in ("qwen2_vl", "qwen2_5_vl")
            else ""
        )
        self.device = str(next(model.parameters()).device)

    def chat_text(self, prompt: str, image_tokens: int) -> str:
        """The Qwen-VL chat prompt: one image (``image_tokens`` placeholders), the instruction,
        and the assistant's turn opened."""
        return (
            self.system
            + "<|im_start|>user\n<|vision_start|>"
            + "<|image_pad|>" * image_tokens
            + f"<|vision_end|>{prompt}<|im_end|>\n<|im_start|>assistant\n"
        )

    def describe(self, image: Any, opts: DescriberOptions, stop: Any = None) -> str:
        """The caption of one PIL image; ``stop()`` returning True ends generation early."""
        import torch

        img = image.convert("RGB")
        if max(img.size) > MAX_IMAGE_SIDE:
            img = img.copy()
            img.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))
        prompt = build_prompt(opts.template, opts.trigger, opts.prompt)
        if self.processor is not None:
            msgs = [
                {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}
            ]
            text = self.processor.apply_chat_template(msgs, add_generation_prompt=True)
            inputs = dict(self.processor(text=[text], images=[img], return_tensors="pt"))
        else:
            pix = dict(self.image_processor(images=[img], return_tensors="pt"))
            merge = int(getattr(self.image_processor, "merge_size", 2))
            n = int(pix["image_grid_thw"][0].prod()) // (merge * merge)
            text = self.chat_text(prompt, n)
            inputs = dict(self.tokenizer(text, return_tensors="pt"))
            inputs.update(pix)
        dtype = next(self.model.parameters()).dtype
        for k, v in inputs.items():
            if hasattr(v, "to"):
                v = v.to(self.device)
                if k == "pixel_values" and v.is_floating_point() and dtype.is_floating_point:
                    v = v.to(dtype)
                inputs[k] = v
        start = inputs["input_ids"].shape[1]
        extra: dict[str, Any] = {}
        if stop is not None:
            from transformers import StoppingCriteria, StoppingCriteriaList

            class _Stop(StoppingCriteria):
                def __call__(self, input_ids, scores, **kwargs):
                    return torch.full((input_ids.shape[0],), bool(stop()), dtype=torch.bool)

            extra["stopping_criteria"] = StoppingCriteriaList([_Stop()])
        with torch.inference_mode():
            out = self.model.generate(
                **inputs, max_new_tokens=opts.max_tokens, do_sample=False, **extra
            )
        text = self.tokenizer.decode(out[0, start:], skip_special_tokens=True)
        if "</think>" in text:  # a "Thinking" model: keep the answer only
            text = text.split("</think>", 1)[1]
        return " ".join(text.replace("<think>", " ").split())

    def close(self) -> None:
        self.model = None


def load_describer(folder: str | os.PathLike[str], opts: DescriberOptions) -> Describer:
    """Load the model folder. Raises ModelError with one sentence when it cannot be used."""
    problem = describer_problem(folder)
    if problem:
        raise ModelError(problem)
    from zitdesk.offline import enforce_offline

    enforce_offline()
    import torch
    from transformers import AutoModelForImageTextToText, AutoTokenizer

    p = Path(folder)
    cfg = read_config(p)
    device = _device(opts.device)
    quant = _quant_config(opts.quant, device)
    if device == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    else:
        dtype = torch.float32
    kwargs: dict[str, Any] = {"local_files_only": True, "dtype": dtype}
    if quant is not None:
        kwargs["quantization_config"] = quant
    import importlib.util

    direct = device == "cuda" and importlib.util.find_spec("accelerate") is not None
    if direct or quant is not None:
        kwargs["device_map"] = {"": 0}  # straight onto the GPU, no full copy in RAM first
    try:
        model = AutoModelForImageTextToText.from_pretrained(p, **kwargs)
        if "device_map" not in kwargs:
            model = model.to(device)  # type: ignore[arg-type]  # transformers types .to oddly
        model.eval()
        tokenizer = AutoTokenizer.from_pretrained(p, local_files_only=True)
        processor = images = None
        if cfg.get("model_type") in QWEN_VL_TYPES:
            from transformers import AutoImageProcessor

            images = AutoImageProcessor.from_pretrained(p, local_files_only=True)
        else:
            from transformers import AutoProcessor

            processor = AutoProcessor.from_pretrained(p, local_files_only=True)
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - transformers raises many kinds
        if "out of memory" in str(exc).lower():
            raise
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ModelError(f"The model in {p} cannot be loaded ({first}).") from None
    return Describer(p, model, tokenizer, images, processor)
