"""End to end on the tiny model: the LoRA learns a solid-colour concept, and the files it
writes load in diffusers and in zitdesk with every module, with self-describing metadata."""

from __future__ import annotations

import json
import statistics

import pytest
import torch
from trainhelp import make_config, make_dataset, run_job

from zitdesk.engine.events import JobFinished, PhaseChanged
from zitdesk.train.events import CheckpointSaved, SampleReady, TrainStep

STEPS = 240


@pytest.fixture(scope="module")
def trained(train_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("learn")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ZITDESK_HOME", str(root / "home"))
        data = make_dataset(root / "data", n=4)
        cfg = make_config(
            train_model,
            data,
            root / "run",
            lora={"rank": 32, "alpha": 16.0, "include_refiners": True},
            optim={"steps": STEPS, "learning_rate": 3e-3},
            save={"every": 100, "export_kohya": True, "name": "red"},
            sample={
                "every": 120,
                "prompts": ("a photo of [trigger]", "[trigger] at night"),
                "seeds": (1, 2),
                "width": 64,
                "height": 64,
            },
        )
        rec = run_job(cfg)
    assert isinstance(rec.last, JobFinished), getattr(rec.last, "message", rec.last)
    return cfg, rec, root


def _x0(pipe, image):
    from zitdesk.train.cache import image_tensor

    vae = pipe.vae
    with torch.no_grad():
        z = vae.encode(image_tensor(image, (64, 64))).latent_dist.mode()
    return ((z - vae.config.shift_factor) * vae.config.scaling_factor)[0]


def _generated_latent(pipe, prompt: str, seed: int):
    """The latent the app's generation path produces right before the VAE decode."""
    from zitdesk.engine.generate import render_image
    from zitdesk.engine.requests import GenerateRequest

    req = GenerateRequest(prompt=prompt, width=64, height=64, seed=seed, preview_every=0)
    with torch.no_grad():
        pos, _ = pipe.encode_prompt(
            prompt=prompt, device="cpu", do_classifier_free_guidance=False, max_sequence_length=512
        )
    seen = {}

    def grab(p, i, t, kwargs):
        seen["latents"] = kwargs["latents"].clone()
        return {}

    render_image(pipe, req, 0, pos, None, grab)
    return seen["latents"][0]


def test_loss_falls(trained):
    _, rec, _ = trained
    losses = [e.loss for e in rec.of(TrainStep)]
    assert [e.step for e in rec.of(TrainStep)] == list(range(1, STEPS + 1))
    first, last = statistics.mean(losses[:10]), statistics.mean(losses[-30:])
    assert last < 0.6 * first, (first, last)
    assert all(e.lr == pytest.approx(3e-3) for e in rec.of(TrainStep))
    assert rec.of(TrainStep)[-1].it_s > 0


def test_generation_moves_toward_the_training_images(trained, train_model):
    """The tiny VAE is random, so its decoded pixels are an arbitrary function of the latent; the
    comparison is made on the latent the generation path hands to that decoder."""
    from zitdesk.lora.apply import apply_loras
    from zitdesk.models.discovery import resolve_model
    from zitdesk.models.loader import load_pipeline

    _cfg, _, root = trained
    pipe = load_pipeline(resolve_model(train_model))
    x0 = _x0(pipe, root / "data" / "img0.png")
    prompt = "a photo of zxq"
    base = [(_generated_latent(pipe, prompt, s) - x0).abs().mean().item() for s in (11, 12, 13)]
    reports = apply_loras(pipe, [(str(root / "run" / "red.safetensors"), 1.0)])
    assert reports[0].matched == reports[0].total
    lora = [(_generated_latent(pipe, prompt, s) - x0).abs().mean().item() for s in (11, 12, 13)]
    assert statistics.mean(lora) < 0.8 * statistics.mean(base), (base, lora)


def test_outputs_and_events(trained):
    _cfg, rec, root = trained
    run = root / "run"
    assert rec.last.paths == (str(run / "red.safetensors"), str(run / "red_kohya.safetensors"))
    assert [e.step for e in rec.of(CheckpointSaved)] == [100, 200, STEPS]
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert ckpts == [f"red_{200:09d}", f"red_{STEPS:09d}"]  # keep_last = 2
    steps_files = sorted(p.name for p in run.glob("red_0*.safetensors"))
    assert steps_files == [f"red_{200:09d}.safetensors", f"red_{STEPS:09d}.safetensors"]
    samples = rec.of(SampleReady)
    assert [s.step for s in samples] == [120, STEPS]
    assert all(len(s.paths) == 2 for s in samples)
    from PIL import Image

    with Image.open(samples[-1].contact_sheet) as sheet:
        assert sheet.height == 2 * 256  # one row per sample round
    phases = {e.phase for e in rec.of(PhaseChanged)}
    assert {"loading", "caching", "training", "sampling", "saving"} <= phases
    assert (run / "train_config.toml").is_file()
    assert rec.last.stats["cache"]["latents_new"] == 1  # 4 identical images, 1 latent


def test_file_layout_and_metadata(trained):
    from safetensors import safe_open

    _cfg, _, root = trained
    with safe_open(str(root / "run" / "red.safetensors"), "pt") as fh:
        keys = list(fh.keys())
        meta = fh.metadata()
        a = fh.get_tensor("diffusion_model.layers.0.attention.to_q.lora_A.weight")
    assert all(
        k.startswith("diffusion_model.") and k.endswith((".lora_A.weight", ".lora_B.weight"))
        for k in keys
    )
    assert not any(k.endswith(".alpha") for k in keys)
    assert a.dtype == torch.bfloat16 and a.shape[0] == 32
    n_modules = len(keys) // 2
    # 2 layers × 8 + 1 noise refiner × 8 + 1 context refiner × 7 (no adaLN there)
    assert n_modules == 31
    assert meta["ss_base_model_version"] == "zimage"
    assert meta["modelspec.architecture"] == "Z-Image/lora"
    assert meta["ss_network_dim"] == "32" and meta["ss_steps"] == str(STEPS)
    assert meta["ss_timestep_sampling"] == "shift" and meta["ss_learning_rate"] == "0.003"
    assert meta["zitdesk_base_precision"] == "fp32"
    assert json.loads(meta["ss_tag_frequency"]) == {"data": {"a photo of zxq": 4}}
    assert meta["modelspec.trigger_phrase"] == "zxq"
    recipe = json.loads(meta["zitdesk_recipe"])
    assert recipe["lora"]["alpha"] == 16.0 and recipe["optim"]["steps"] == STEPS
    from zitdesk.lora.inspect import inspect_lora

    info = inspect_lora(root / "run" / "red.safetensors")
    assert info.arch == "zimage" and info.dialect == "aitoolkit" and info.rank == 32
    assert [w for w, _ in info.trigger_words][:1] == ["zxq"]


def _transformer_out(tr, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(16, 1, 8, 8, generator=g)
    cap = torch.randn(20, 16, generator=g)
    with torch.no_grad():
        return tr([x], torch.tensor([0.3]), [cap], return_dict=False)[0][0]


@pytest.mark.parametrize("name", ["red.safetensors", "red_kohya.safetensors"])
def test_loads_in_diffusers_and_zitdesk_with_full_coverage(trained, train_model, name):
    from diffusers import ZImagePipeline
    from peft.tuners.lora import LoraLayer

    from zitdesk.lora.apply import apply_loras
    from zitdesk.models.discovery import resolve_model
    from zitdesk.models.loader import load_pipeline

    _, _, root = trained
    path = root / "run" / name
    plain = ZImagePipeline.from_pretrained(str(train_model), local_files_only=True)
    base_out = _transformer_out(plain.transformer)
    plain.load_lora_weights(str(path), adapter_name="t")
    wrapped = [n for n, m in plain.transformer.named_modules() if isinstance(m, LoraLayer)]
    assert len(wrapped) == 31
    diffusers_out = _transformer_out(plain.transformer)

    pipe = load_pipeline(resolve_model(train_model))
    (rep,) = apply_loras(pipe, [(str(path), 1.0)])
    assert rep.matched == rep.total == 31 and not rep.unknown_keys
    zit_out = _transformer_out(pipe.transformer)
    assert not torch.allclose(base_out, zit_out, atol=1e-3)  # the LoRA does something
    assert torch.allclose(diffusers_out, zit_out, atol=1e-5)  # and both loaders agree
