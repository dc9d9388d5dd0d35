"""Pre-quantised model files (issue #17): GGUF DiT + text encoder, ComfyUI scaled fp8 / mixed,
nvfp4 — written with the real layouts (the gguf package's writer and ggml quant types), found by
discovery, loaded by the loader with the weights still packed, generating on the CPU; unusable
files give their reason instead of "missing"."""

from __future__ import annotations

import pytest

from zitdesk.offline import enforce_offline

enforce_offline()
torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")
gguf = pytest.importorskip("gguf")

from tests.support.quant_files import (  # noqa: E402
    comfy_dit,
    make_quant_components,
    write_gguf,
    write_model_folder,
)
from zitdesk.errors import ModelError  # noqa: E402
from zitdesk.models.discovery import resolve_model  # noqa: E402
from zitdesk.models.loader import load_pipeline  # noqa: E402
from zitdesk.models.quant import codecs  # noqa: E402
from zitdesk.models.validate import DIT, TEXT_ENCODER, classify_file  # noqa: E402

# Relative error of one random weight matrix after a round trip (simple encoders; llama.cpp's
# own are a little better): the bounds each format must stay within.
FORMAT_ERROR = {
    "Q8_0": 0.01,
    "Q6_K": 0.03,
    "Q5_K": 0.05,
    "Q4_K": 0.10,
    "Q4_0": 0.11,
    "fp8-scaled": 0.04,
    "nvfp4": 0.12,
}


@pytest.fixture(scope="module")
def comps():
    torch.set_num_threads(2)
    return make_quant_components(seed=3)


@pytest.fixture(scope="module")
def reference(comps):
    torch.manual_seed(0)
    x, cap = torch.randn(16, 1, 16, 16), torch.randn(8, 256)
    with torch.no_grad():
        out = comps["transformer"]([x], torch.tensor([0.5]), [cap])[0][0]
    return x, cap, out


def _rel(a, b) -> float:
    return float((a.detach().float() - b.detach().float()).norm() / b.detach().float().norm())


@pytest.mark.parametrize("qtype", ["Q8_0", "Q6_K", "Q5_K", "Q4_K", "Q4_0"])
def test_gguf_encoders_decode_with_the_gguf_package(qtype):
    torch.manual_seed(1)
    w = torch.randn(48, 512) * 0.03
    data = codecs.quantize_gguf(w, qtype)
    ref = gguf.quants.dequantize(data.numpy(), gguf.GGMLQuantizationType[qtype])
    assert ref.shape == (48, 512)
    assert _rel(torch.from_numpy(ref), w) < FORMAT_ERROR[qtype]


def test_fp8_and_nvfp4_round_trips_and_tiled_scales():
    torch.manual_seed(2)
    w = torch.randn(200, 96) * 0.02
    q, s = codecs.quantize_fp8_scaled(w)
    assert q.dtype == torch.float8_e4m3fn and s.ndim == 0
    assert _rel(codecs.dequantize_fp8_scaled(q, s, torch.float32), w) < FORMAT_ERROR["fp8-scaled"]
    packed, tiled, s2 = codecs.quantize_nvfp4(w)
    assert packed.shape == (200, 48) and tiled.shape == (256, 8)  # 128 × 4 tiles, padded
    plain = codecs.from_blocked(tiled, 200, 6)
    _, untiled, _ = codecs.quantize_nvfp4(w, blocked=False)
    assert torch.equal(plain.view(torch.uint8), untiled.view(torch.uint8))
    assert (
        _rel(codecs.dequantize_nvfp4(packed, plain, s2, torch.float32), w) < FORMAT_ERROR["nvfp4"]
    )


@pytest.mark.parametrize(
    ("dit", "te", "layer_cls", "bound"),
    [
        ("gguf-Q4_K", "gguf-Q8_0", "GGUFLinear", 0.10),
        ("gguf-Q8_0", "", "GGUFLinear", 0.01),
        ("gguf-Q6_K", "", "GGUFLinear", 0.03),
        ("gguf-Q5_K", "", "GGUFLinear", 0.05),
        ("gguf-Q4_0", "", "GGUFLinear", 0.10),
        ("fp8-scaled", "fp8-mixed", "PackedLinear", 0.04),
        ("fp8-mixed", "", "PackedLinear", 0.04),
        ("nvfp4", "", "PackedLinear", 0.15),
    ],
)
def test_quantised_folder_loads_packed_and_generates(
    tmp_path, comps, reference, dit, te, layer_cls, bound
):
    folder = write_model_folder(tmp_path / "m", comps, dit, te)
    src = resolve_model(folder)
    assert src.complete, src.describe()
    want = "fp8-scaled" if dit == "fp8-mixed" else dit
    assert src.checks[DIT].quant == want
    if te:
        assert src.checks[TEXT_ENCODER].quant == ("fp8-scaled" if te == "fp8-mixed" else te)
    pipe = load_pipeline(src, "cpu", dtype=torch.float32)
    q = pipe.transformer.layers[0].attention.to_q
    assert type(q).__name__ == layer_cls
    assert q.weight.dtype == torch.uint8  # still packed in memory
    orig = comps["transformer"].layers[0].attention.to_q.weight
    if layer_cls == "PackedLinear":
        deq = q.dequantize(torch.float32)
    else:
        from diffusers.quantizers.gguf.utils import dequantize_gguf_tensor

        deq = dequantize_gguf_tensor(q.weight).float()
    assert _rel(deq, orig) < FORMAT_ERROR[want.removeprefix("gguf-")]
    x, cap, ref = reference
    with torch.no_grad():
        out = pipe.transformer([x], torch.tensor([0.5]), [cap])[0][0]
    assert _rel(out, ref) < bound
    image = pipe(
        prompt="a red fox",
        num_inference_steps=2,
        width=64,
        height=64,
        guidance_scale=0.0,
        output_type="np",
    ).images[0]
    assert image.shape == (64, 64, 3) and np.isfinite(image).all()


def test_gguf_text_encoder_matches_the_original(tmp_path, comps):
    folder = write_model_folder(tmp_path / "m", comps, "gguf-Q8_0", "gguf-Q8_0")
    pipe = load_pipeline(resolve_model(folder), "cpu", dtype=torch.float32)
    ids = torch.tensor([[1, 5, 9, 200, 3]])
    with torch.no_grad():
        a = pipe.text_encoder(input_ids=ids).last_hidden_state
        b = comps["text_encoder"](input_ids=ids).last_hidden_state
    assert _rel(a, b) < 0.02


def test_lora_applies_on_top_of_a_gguf_dit(tmp_path, comps, reference):
    from zitdesk.io import atomic_save_tensors
    from zitdesk.lora.apply import apply_loras

    folder = write_model_folder(tmp_path / "m", comps, "gguf-Q8_0")
    pipe = load_pipeline(resolve_model(folder), "cpu", dtype=torch.float32)
    torch.manual_seed(4)
    lora = {}
    for i in range(2):
        for proj in ("to_q", "to_v"):
            base = f"diffusion_model.layers.{i}.attention.{proj}"
            lora[f"{base}.lora_A.weight"] = torch.randn(4, 256) * 0.05
            lora[f"{base}.lora_B.weight"] = torch.randn(256, 4) * 0.05
    path = atomic_save_tensors(tmp_path / "style.safetensors", lora)
    x, cap, _ = reference

    def run():
        with torch.no_grad():
            return pipe.transformer([x], torch.tensor([0.5]), [cap])[0][0]

    before = run()
    reports = apply_loras(pipe, [(str(path), 1.0)])
    assert reports and reports[0].matched >= 4
    assert _rel(run(), before) > 1e-3  # the LoRA changes the output
    assert pipe.transformer.layers[0].attention.to_q.base_layer.weight.dtype == torch.uint8
    apply_loras(pipe, [])
    assert _rel(run(), before) < 1e-6


def test_gguf_pad_tokens_stored_flat_still_load(tmp_path, comps):
    from tests.support.quant_files import write_gguf_dit

    folder = write_model_folder(tmp_path / "m", comps)
    (folder / "z_image_turbo_bf16.safetensors").unlink()
    write_gguf_dit(comps, folder / "z_image_turbo-Q8_0.gguf", "Q8_0", flat_pad=True)
    pipe = load_pipeline(resolve_model(folder), "cpu", dtype=torch.float32)
    assert tuple(pipe.transformer.x_pad_token.shape) == (1, 256)


def test_only_unusable_files_give_their_reasons(tmp_path, comps):
    folder = tmp_path / "unusable"
    sd = comfy_dit(comps)
    q3 = {}
    for k, v in sd.items():
        if k.startswith("layers.") and v.ndim == 2 and v.shape[1] % 256 == 0:
            nbytes = v.shape[1] // 256 * 110  # a Q3_K block: 256 values in 110 bytes
            q3[k] = (torch.zeros((v.shape[0], nbytes), dtype=torch.uint8), "Q3_K")
        else:
            q3[k] = v
    write_gguf(folder / "z_image_turbo-Q3_K.gguf", q3, "lumina2")
    from zitdesk.io import atomic_save_tensors

    int8 = {k: (v.to(torch.int8) if v.ndim == 2 else v) for k, v in sd.items()}
    int8["layers.0.attention.qkv.weight_scale"] = torch.ones(())
    atomic_save_tensors(folder / "z_image_turbo_int8_convrot.safetensors", int8)
    src = resolve_model(folder)
    text = src.describe()
    assert "GGUF Q3_K is not supported: use Q4_K or better" in text
    assert "int8" in text
    assert "diffusion model" not in " ".join(src.missing)  # the reasons replace "missing"
    assert not src.complete
    with pytest.raises(ModelError, match="Q3_K is not supported"):
        check = classify_file(folder / "z_image_turbo-Q3_K.gguf")
        raise ModelError(check.message)


def test_scaled_fp8_dit_alone_is_found_not_missing(tmp_path, comps):
    """The issue's reproduction: a folder with only a scaled-fp8 DiT."""
    folder = write_model_folder(tmp_path / "m", comps, "fp8-scaled")
    for name in ("qwen_3_4b.safetensors", "ae.safetensors"):
        (folder / name).unlink()
    src = resolve_model(folder)
    assert src.checks[DIT].quant == "fp8-scaled"
    assert src.files[DIT].name == "z_image_turbo_fp8_scaled.safetensors"
    assert "diffusion model" not in src.describe()
    assert "text encoder" in src.describe() and "VAE" in src.describe()


def test_fp8_memory_mode_keeps_a_packed_dit_packed(tmp_path, comps, reference):
    from zitdesk.engine.memory import apply_memory_mode
    from zitdesk.engine.requests import MemoryMode

    folder = write_model_folder(tmp_path / "m", comps, "gguf-Q8_0")
    pipe = load_pipeline(resolve_model(folder), "cpu", dtype=torch.float32)
    x, cap, ref = reference
    detail = apply_memory_mode(pipe, MemoryMode.FP8, "cpu")
    assert "fp8" not in detail  # placed like GPU mode: the file is already small
    assert pipe.transformer.layers[0].attention.to_q.weight.dtype == torch.uint8
    with torch.no_grad():
        out = pipe.transformer([x], torch.tensor([0.5]), [cap])[0][0]
    assert _rel(out, ref) < 0.01


@pytest.mark.parametrize("dit", ["gguf-Q4_K", "nvfp4", "fp8-scaled"])
def test_lora_fit_reads_the_real_shapes_of_quantised_dits(tmp_path, comps, dit):
    from zitdesk.lora.fit import model_linear_shapes

    plain = model_linear_shapes(write_model_folder(tmp_path / "bf16", comps))
    assert model_linear_shapes(write_model_folder(tmp_path / "q", comps, dit)) == plain


def test_predictor_reads_the_dit_format_from_the_request_model(tmp_path, comps):
    from zitdesk.engine.requests import GenerateRequest
    from zitdesk.memory_predict import MemoryPredictor, estimate_peak

    q4 = write_model_folder(tmp_path / "q4", comps, "gguf-Q4_K")
    plain = write_model_folder(tmp_path / "bf16", comps)
    req = GenerateRequest(prompt="x", width=1024, height=1024, unload_text_encoder=True)
    pred = MemoryPredictor()
    got = pred.predict(req.with_changes(model_path=str(q4))).peak_bytes
    want = estimate_peak(1024, 1024, req.memory_mode, False, True, "gguf-Q4_K")
    assert got == want
    bf16 = pred.predict(req.with_changes(model_path=str(plain))).peak_bytes
    assert bf16 - got > 7 * 2**30


def test_engine_generates_from_gguf_and_hints_the_calibrated_rung(tmp_path, comps, monkeypatch):
    """Through the engine (the CLI's and the app's path): a GGUF DiT + GGUF text encoder folder
    makes a PNG in fp8 mode (kept packed); an OOM on a 10 GiB card hints the rung that fits."""
    from zitdesk import memory_predict
    from zitdesk.engine.cancel import CancelToken
    from zitdesk.engine.events import JobFailed, JobFinished, PhaseChanged
    from zitdesk.engine.generate import GenerationEngine
    from zitdesk.engine.requests import GenerateRequest, MemoryMode

    folder = write_model_folder(tmp_path / "m", comps, "gguf-Q4_K", "gguf-Q8_0")
    eng = GenerationEngine(model_path=str(folder), device="cpu")
    req = GenerateRequest(
        prompt="a red fox",
        width=64,
        height=64,
        steps=2,
        seed=3,
        output_dir=str(tmp_path / "o"),
        memory_mode=MemoryMode.FP8,
    )
    events: list = []
    eng.run(req, events.append, CancelToken())
    assert isinstance(events[-1], JobFinished), getattr(events[-1], "message", "")
    assert events[-1].paths and all(p.endswith(".png") for p in events[-1].paths)
    loaded = [e.detail for e in events if isinstance(e, PhaseChanged) and e.phase == "loaded"]
    assert loaded and "fp8" not in loaded[0]  # the packed DiT was not re-cast

    def boom(*a, **k):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    gpu = req.with_changes(memory_mode=MemoryMode.GPU)
    monkeypatch.setattr(memory_predict, "cuda_room_bytes", lambda device="cuda": 10 * 2**30)
    pipe = eng._ensure_pipeline(gpu, lambda e: None, CancelToken()).pipe
    monkeypatch.setattr(type(pipe), "__call__", boom)
    events = []
    eng.run(gpu, events.append, CancelToken())
    fail = events[-1]
    assert isinstance(fail, JobFailed) and fail.kind == "oom"
    # a 3.5 GB Q4_K DiT on a 10 GiB card: GPU mode with the text encoder streamed from RAM
    assert fail.retry_hint == {
        "memory_mode": "gpu",
        "vae_tiling": False,
        "unload_text_encoder": True,
    }
    eng.shutdown()


def test_a_chosen_gguf_file_wins_over_the_bf16_beside_it(tmp_path, comps):
    from tests.support.quant_files import write_gguf_dit

    folder = write_model_folder(tmp_path / "m", comps)
    gguf_file = write_gguf_dit(comps, folder / "z_image_turbo-Q4_K.gguf", "Q4_K")
    assert resolve_model(folder).files[DIT].name == "z_image_turbo_bf16.safetensors"
    src = resolve_model(gguf_file)
    assert src.complete and src.files[DIT] == gguf_file
    assert src.checks[DIT].quant == "gguf-Q4_K"
    assert len(src.candidates[DIT]) == 2


def test_a_gguf_dit_is_known_to_the_placement(tmp_path, comps):
    """Sequential offload cannot hold GGUF layers (accelerate, seen on an H100): the placement
    recognises a GGUF DiT (and streams it by blocks instead), and only a GGUF one."""
    from zitdesk.engine.memory import _has_gguf

    gguf = load_pipeline(
        resolve_model(write_model_folder(tmp_path / "g", comps, "gguf-Q4_K")), "cpu"
    )
    packed = load_pipeline(resolve_model(write_model_folder(tmp_path / "n", comps, "nvfp4")), "cpu")
    assert _has_gguf(gguf.transformer)
    assert not _has_gguf(packed.transformer) and not _has_gguf(comps["transformer"])
