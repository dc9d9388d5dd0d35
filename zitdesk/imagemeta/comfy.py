"""Reading ComfyUI PNGs: the API ``prompt`` graph, or the UI ``workflow`` graph."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zitdesk.imagemeta._values import (
    _as_float,
    _as_int,
    _as_list,
    _as_str,
    _file_stem,
    _guidance_from_cfg,
    _loads,
    _lookup,
)

_MAX_DEPTH = 64  # ComfyUI graph walks
_MAX_LINK_STEPS = 100_000

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
            raw_delimiter = inputs.get("delimiter")
            delimiter = raw_delimiter if isinstance(raw_delimiter, str) else ""
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
    result["a1111_cfg_scale"] = resolve("cfg", _as_float, cfg_value)
    result["guidance"] = _guidance_from_cfg(result["a1111_cfg_scale"])
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
            for name, value in zip(names, widgets, strict=False):
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
