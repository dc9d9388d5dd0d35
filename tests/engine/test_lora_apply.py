"""zitdesk.lora.apply on the tiny real ZImagePipeline: every dialect loads and is *exact*.

The reference for every LoRA file is a copy of the base transformer whose weights get the
expected ΔW (computed here independently from the file's factors) merged in by hand; the LoRA
pipeline's output must equal that copy's output.
"""

from __future__ import annotations

import copy
import json
import math

import pytest

from zitdesk.offline import enforce_offline

enforce_offline()
torch = pytest.importorskip("torch")
from diffusers import ZImagePipeline  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from zitdesk.errors import LoraError  # noqa: E402
from zitdesk.lora import apply as lora_apply  # noqa: E402
from zitdesk.lora.apply import (  # noqa: E402
    apply_loras,
    load_normalized,
    transformer_linear_names,
    transformer_linear_shapes,
)
from zitdesk.lora.inspect import coverage, inspect_lora  # noqa: E402
from zitdesk.models.tiny import make_tiny_components  # noqa: E402

TOL = 1e-4


class Env:
    def __init__(self) -> None:
        torch.set_num_threads(2)
        comps = make_tiny_components(seed=0)
        self.base_state = {
            k: v.detach().clone() for k, v in comps["transformer"].state_dict().items()
        }
        ref = copy.deepcopy(comps["transformer"])
        self.pipe = ZImagePipeline(**comps)
        self.pipe.set_progress_bar_config(disable=True)
        self.ref_pipe = ZImagePipeline(**{**comps, "transformer": ref})
        self.ref_pipe.set_progress_bar_config(disable=True)
        self.shapes = transformer_linear_shapes(comps["transformer"])
        self.names = set(self.shapes)
        with torch.no_grad():
            self.embeds, _ = self.pipe.encode_prompt(
                "a red fox in snow", do_classifier_free_guidance=False
            )
        self.base = self.run(self.pipe)

    def run(self, pipe):
        with torch.no_grad():
            return pipe(
                prompt_embeds=self.embeds,
                height=64,
                width=64,
                num_inference_steps=2,
                guidance_scale=0.0,
                generator=torch.Generator().manual_seed(7),
                output_type="latent",
            ).images.clone()

    def merged(self, deltas: dict[str, torch.Tensor]):
        """Output of the base weights + the given ΔW (already weighted), merged by hand."""
        state = {k: v.clone() for k, v in self.base_state.items()}
        for module, d in deltas.items():
            state[f"{module}.weight"] += d
        self.ref_pipe.transformer.load_state_dict(state)
        return self.run(self.ref_pipe)


@pytest.fixture(scope="module")
def env():
    e = Env()
    yield e
    apply_loras(e.pipe, [])
    lora_apply.clear_cache()


# ---------------------------------------------------------------------------------------------
# LoRA file builders: each returns (file, {module: ΔW at weight 1}, matched, total)
# ---------------------------------------------------------------------------------------------

_gen = torch.Generator().manual_seed(1234)


def rnd(*shape, scale=0.15):
    return torch.randn(*shape, generator=_gen) * scale


def pair(env, module, rank):
    out_f, in_f = env.shapes[module]
    return rnd(rank, in_f), rnd(out_f, rank)


def kohya(module):
    return "lora_unet_" + module.replace(".", "_")


def build_aitoolkit(env, tmp):
    sd, delta = {}, {}
    for m in (
        "layers.0.attention.to_q",
        "layers.1.attention.to_out.0",
        "layers.1.feed_forward.w2",
        "layers.0.adaLN_modulation.0",
        "context_refiner.0.attention.to_v",
        "all_x_embedder.2-1",
        "all_final_layer.2-1.adaLN_modulation.1",
        "cap_embedder.1",
    ):
        a, b = pair(env, m, 4)
        sd[f"diffusion_model.{m}.lora_A.weight"], sd[f"diffusion_model.{m}.lora_B.weight"] = a, b
        delta[m] = b @ a
    path = tmp / "aitoolkit.safetensors"
    save_file(sd, str(path), metadata={"ss_base_model_version": "zimage"})
    return path, delta, 8, 8


def build_kohya_split_alpha(env, tmp):
    """Split q/k/v, alpha 2 at rank 4, plus a rank-8 module with alpha 16 (mixed ranks)."""
    sd, delta = {}, {}
    for m, r, alpha in (
        ("layers.0.attention.to_q", 4, 2.0),
        ("layers.0.attention.to_k", 4, 2.0),
        ("layers.0.attention.to_v", 4, 2.0),
        ("layers.1.feed_forward.w3", 8, 16.0),
        ("t_embedder.mlp.0", 4, 0.0),
    ):  # alpha 0 means alpha = rank (kohya)
        a, b = pair(env, m, r)
        k = kohya(m)
        sd[f"{k}.lora_down.weight"], sd[f"{k}.lora_up.weight"] = a, b
        sd[f"{k}.alpha"] = torch.tensor(alpha)
        delta[m] = b @ a * ((alpha / r) if alpha else 1.0)
    path = tmp / "kohya_split.safetensors"
    save_file(sd, str(path))
    return path, delta, 5, 5


def build_kohya_fused(env, tmp):
    """kohya on the original tree: fused qkv (shared down), attention_out, w1."""
    sd, delta = {}, {}
    r, alpha = 4, 1.0
    a, b = rnd(r, 32), rnd(96, r)
    sd["lora_unet_layers_1_attention_qkv.lora_down.weight"] = a
    sd["lora_unet_layers_1_attention_qkv.lora_up.weight"] = b
    sd["lora_unet_layers_1_attention_qkv.alpha"] = torch.tensor(alpha)
    for i, p in enumerate("qkv"):
        delta[f"layers.1.attention.to_{p}"] = b[32 * i : 32 * (i + 1)] @ a * (alpha / r)
    for m, name in (
        ("layers.1.attention.to_out.0", "lora_unet_layers_1_attention_out"),
        ("layers.1.feed_forward.w1", "lora_unet_layers_1_feed_forward_w1"),
    ):
        a2, b2 = pair(env, m, r)
        sd[f"{name}.lora_down.weight"], sd[f"{name}.lora_up.weight"] = a2, b2
        sd[f"{name}.alpha"] = torch.tensor(alpha)
        delta[m] = b2 @ a2 * (alpha / r)
    path = tmp / "kohya_fused.safetensors"
    save_file(sd, str(path))
    return path, delta, 5, 5


def build_musubi(env, tmp):
    """musubi names: to_out_0, noise_refiner, adaLN_modulation_0; musubi's default alpha 1."""
    sd, delta = {}, {}
    for m in (
        "layers.0.attention.to_out.0",
        "noise_refiner.0.attention.to_k",
        "noise_refiner.0.adaLN_modulation.0",
        "layers.1.adaLN_modulation.0",
    ):
        a, b = pair(env, m, 2)
        k = kohya(m)
        sd[f"{k}.lora_down.weight"], sd[f"{k}.lora_up.weight"] = a, b
        sd[f"{k}.alpha"] = torch.tensor(1.0)
        delta[m] = b @ a * 0.5
    path = tmp / "musubi.safetensors"
    save_file(sd, str(path), metadata={"ss_network_module": "networks.lora_zimage"})
    return path, delta, 4, 4


def build_musubi_comfy_fused(env, tmp):
    """musubi's Comfy export: stacked downs, block-diagonal up, alpha × 3."""
    r, alpha = 2, 1.0
    downs = [rnd(r, 32) for _ in range(3)]
    ups = [rnd(32, r) for _ in range(3)]
    up = torch.zeros(96, 3 * r)
    for i in range(3):
        up[32 * i : 32 * (i + 1), r * i : r * (i + 1)] = ups[i]
    sd = {
        "diffusion_model.layers.0.attention.qkv.lora_down.weight": torch.cat(downs),
        "diffusion_model.layers.0.attention.qkv.lora_up.weight": up,
        "diffusion_model.layers.0.attention.qkv.alpha": torch.tensor(3 * alpha),
    }
    delta = {
        f"layers.0.attention.to_{p}": ups[i] @ downs[i] * (alpha / r) for i, p in enumerate("qkv")
    }
    path = tmp / "musubi_comfy_fused.safetensors"
    save_file(sd, str(path))
    return path, delta, 3, 3


def build_dot(env, tmp):
    """Dot format with redundant fused qkv and bare out keys (different values: must be ignored)."""
    sd, delta = {}, {}
    r = 4
    for p in "qkv":
        a, b = pair(env, f"layers.1.attention.to_{p}", r)
        (
            sd[f"layers.1.attention.to.{p}.lora.down.weight"],
            sd[f"layers.1.attention.to.{p}.lora.up.weight"],
        ) = a, b
        sd[f"layers.1.attention.to.{p}.alpha"] = torch.tensor(8.0)
        delta[f"layers.1.attention.to_{p}"] = b @ a * 2.0
    a, b = pair(env, "layers.1.attention.to_out.0", r)
    (
        sd["layers.1.attention.to_out.0.lora.down.weight"],
        sd["layers.1.attention.to_out.0.lora.up.weight"],
    ) = a, b
    delta["layers.1.attention.to_out.0"] = b @ a
    sd["layers.1.attention.qkv.lora.down.weight"] = rnd(r, 32)
    sd["layers.1.attention.qkv.lora.up.weight"] = rnd(96, r)
    sd["layers.1.attention.out.lora.down.weight"] = rnd(r, 32)
    sd["layers.1.attention.out.lora.up.weight"] = rnd(32, r)
    path = tmp / "dot.safetensors"
    save_file(sd, str(path))
    return path, delta, 4, 4


def build_diffusers_meta(env, tmp):
    """diffusers keys + lora_adapter_metadata with alpha ≠ r and an alpha_pattern entry."""
    sd, delta = {}, {}
    r = 4
    cfg = {
        "r": r,
        "lora_alpha": 8,
        "alpha_pattern": {"layers.0.feed_forward.w1": 2},
        "rank_pattern": {},
        "target_modules": ["to_q", "w1"],
        "use_rslora": False,
    }
    for m, alpha in (("layers.1.attention.to_q", 8), ("layers.0.feed_forward.w1", 2)):
        a, b = pair(env, m, r)
        sd[f"transformer.{m}.lora_A.weight"], sd[f"transformer.{m}.lora_B.weight"] = a, b
        delta[m] = b @ a * (alpha / r)
    meta = {
        "format": "pt",
        "lora_adapter_metadata": json.dumps(
            {f"transformer.{k}": v for k, v in cfg.items()}, sort_keys=True
        ),
    }
    path = tmp / "pytorch_lora_weights.safetensors"
    save_file(sd, str(path), metadata=meta)
    return path, delta, 2, 2


def build_peft_default(env, tmp):
    """PEFT names with the adapter name and the adapter_config.json next to the file."""
    folder = tmp / "peft_adapter"
    folder.mkdir(exist_ok=True)
    sd, delta = {}, {}
    r, alpha = 4, 2
    for m in ("layers.0.attention.to_k", "context_refiner.0.feed_forward.w2"):
        a, b = pair(env, m, r)
        sd[f"base_model.model.{m}.lora_A.default.weight"] = a
        sd[f"base_model.model.{m}.lora_B.default.weight"] = b
        delta[m] = b @ a * (alpha / r)
    (folder / "adapter_config.json").write_text(
        json.dumps({"r": r, "lora_alpha": alpha, "peft_type": "LORA"})
    )
    path = folder / "adapter_model.safetensors"
    save_file(sd, str(path))
    return path, delta, 2, 2


def build_lokr_full(env, tmp):
    """LoKr with full factors: LyCORIS ignores alpha (scale 1)."""
    sd, delta = {}, {}
    for m, w1s, w2s in (
        ("layers.0.attention.to_v", (4, 4), (8, 8)),
        ("layers.1.feed_forward.w1", (5, 4), (17, 8)),  # 85 × 32
        ("layers.0.feed_forward.w2", (2, 5), (16, 17)),
    ):  # 32 × 85
        w1, w2 = rnd(*w1s, scale=0.3), rnd(*w2s, scale=0.3)
        sd[f"diffusion_model.{m}.lokr_w1"], sd[f"diffusion_model.{m}.lokr_w2"] = w1, w2
        sd[f"diffusion_model.{m}.alpha"] = torch.tensor(1.0)
        delta[m] = torch.kron(w1, w2)
    path = tmp / "lokr_full.safetensors"
    save_file(sd, str(path))
    return path, delta, 3, 3


def build_lokr_split(env, tmp):
    """LoKr with rank-split w2 (and both split for one module): scale alpha / rank."""
    sd, delta = {}, {}
    m = "layers.0.attention.to_q"
    w1, w2a, w2b = rnd(4, 4, scale=0.3), rnd(8, 2, scale=0.3), rnd(2, 8, scale=0.3)
    sd.update(
        {
            f"diffusion_model.{m}.lokr_w1": w1,
            f"diffusion_model.{m}.lokr_w2_a": w2a,
            f"diffusion_model.{m}.lokr_w2_b": w2b,
            f"diffusion_model.{m}.alpha": torch.tensor(1.0),
        }
    )
    delta[m] = torch.kron(w1, w2a @ w2b) * (1.0 / 2)
    m = "layers.1.attention.to_k"
    w1a, w1b = rnd(4, 2, scale=0.3), rnd(2, 4, scale=0.3)
    w2a, w2b = rnd(8, 2, scale=0.3), rnd(2, 8, scale=0.3)
    sd.update(
        {
            f"diffusion_model.{m}.lokr_w1_a": w1a,
            f"diffusion_model.{m}.lokr_w1_b": w1b,
            f"diffusion_model.{m}.lokr_w2_a": w2a,
            f"diffusion_model.{m}.lokr_w2_b": w2b,
            f"diffusion_model.{m}.alpha": torch.tensor(4.0),
        }
    )
    delta[m] = torch.kron(w1a @ w1b, w2a @ w2b) * (4.0 / 2)
    path = tmp / "lokr_split.safetensors"
    save_file(sd, str(path))
    return path, delta, 2, 2


def build_loha(env, tmp):
    sd, delta = {}, {}
    m = "layers.1.feed_forward.w2"
    out_f, in_f = env.shapes[m]
    r = 2
    w1a, w1b, w2a, w2b = (
        rnd(out_f, r, scale=0.4),
        rnd(r, in_f, scale=0.4),
        rnd(out_f, r, scale=0.4),
        rnd(r, in_f, scale=0.4),
    )
    k = "lycoris_" + m.replace(".", "_")
    sd.update(
        {
            f"{k}.hada_w1_a": w1a,
            f"{k}.hada_w1_b": w1b,
            f"{k}.hada_w2_a": w2a,
            f"{k}.hada_w2_b": w2b,
            f"{k}.alpha": torch.tensor(1.0),
        }
    )
    delta[m] = (w1a @ w1b) * (w2a @ w2b) * 0.5
    path = tmp / "loha.safetensors"
    save_file(sd, str(path))
    return path, delta, 1, 1


def build_lycoris_full(env, tmp):
    """LyCORIS full-matrix delta (``.diff``): becomes an exact (I, ΔW) pair."""
    m = "layers.0.feed_forward.w1"
    d = rnd(*env.shapes[m], scale=0.05)
    path = tmp / "full_diff.safetensors"
    save_file({"lycoris_" + m.replace(".", "_") + ".diff": d}, str(path))
    return path, {m: d}, 1, 1


def build_extra_keys(env, tmp):
    """ai-toolkit file with keys diffusers would reject: unknown modules, a layer the model lacks."""
    sd, delta = {}, {}
    for m in ("layers.0.attention.to_q", "layers.1.feed_forward.w3"):
        a, b = pair(env, m, 4)
        sd[f"diffusion_model.{m}.lora_A.weight"], sd[f"diffusion_model.{m}.lora_B.weight"] = a, b
        delta[m] = b @ a
    sd["diffusion_model.layers.7.attention.to_q.lora_A.weight"] = rnd(4, 32)  # model has 2 layers
    sd["diffusion_model.layers.7.attention.to_q.lora_B.weight"] = rnd(32, 4)
    sd["diffusion_model.layers.0.attention.norm_q.lora_A.weight"] = rnd(4, 16)  # not a target
    sd["lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight"] = rnd(4, 16)
    sd["some.random.tensor"] = rnd(3)
    path = tmp / "extra_keys.safetensors"
    save_file(sd, str(path))
    return path, delta, 2, 3


BUILDERS = {
    "aitoolkit": build_aitoolkit,
    "kohya_split_alpha": build_kohya_split_alpha,
    "kohya_fused_qkv": build_kohya_fused,
    "musubi": build_musubi,
    "musubi_comfy_fused": build_musubi_comfy_fused,
    "dot_redundant": build_dot,
    "diffusers_metadata": build_diffusers_meta,
    "peft_default": build_peft_default,
    "lokr_full": build_lokr_full,
    "lokr_split": build_lokr_split,
    "loha": build_loha,
    "lycoris_full": build_lycoris_full,
    "extra_keys": build_extra_keys,
}
EXPECTED_DIALECT = {
    "aitoolkit": "aitoolkit",
    "kohya_split_alpha": "kohya",
    "kohya_fused_qkv": "kohya",
    "musubi": "kohya",
    "musubi_comfy_fused": "kohya",
    "dot_redundant": "dot",
    "diffusers_metadata": "diffusers",
    "peft_default": "peft",
    "lokr_full": "lokr",
    "lokr_split": "lokr",
    "loha": "loha",
    "lycoris_full": "full",
    "extra_keys": "aitoolkit",
}


def weighted(delta, w):
    return {m: d * w for m, d in delta.items()}


@pytest.mark.parametrize("case", list(BUILDERS))
def test_dialect_loads_exactly(env, tmp_path, case):
    path, delta, matched, total = BUILDERS[case](env, tmp_path)
    info = inspect_lora(path)
    assert info.arch == "zimage" and info.dialect == EXPECTED_DIALECT[case]
    cov = coverage(info, env.names)
    assert (cov.matched, cov.total_in_file) == (matched, total)

    reports = apply_loras(env.pipe, [(str(path), 0.5)])
    assert len(reports) == 1
    rep = reports[0]
    assert (rep.matched, rep.total, rep.weight, rep.dialect) == (
        matched,
        total,
        0.5,
        EXPECTED_DIALECT[case],
    )
    out = env.run(env.pipe)
    assert torch.isfinite(out).all()
    assert (out - env.base).abs().max().item() > 1e-3, "the LoRA did not change the output"
    expected = env.merged(weighted(delta, 0.5))
    err = (out - expected).abs().max().item()
    assert err < TOL, f"{case}: LoRA output differs from the hand-merged ΔW by {err}"


def test_unknown_keys_are_reported_not_fatal(env, tmp_path):
    path, _, _, _ = build_extra_keys(env, tmp_path)
    sd, rep = load_normalized(path, env.shapes)
    assert rep.matched == 2 and rep.total == 3
    assert rep.skipped_modules == ["layers.7.attention.to_q"]
    assert sorted(rep.unknown_keys) == sorted(
        [
            "diffusion_model.layers.0.attention.norm_q.lora_A.weight",
            "lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight",
            "some.random.tensor",
        ]
    )
    assert set(sd) == {
        f"transformer.{m}.lora_{p}.weight"
        for m in ("layers.0.attention.to_q", "layers.1.feed_forward.w3")
        for p in "AB"
    }
    assert "2/3" in rep.message
    # diffusers 0.42.1 alone refuses the whole file because of the stray keys
    with pytest.raises((ValueError, KeyError)):
        env.ref_pipe.lora_state_dict(str(path))


def test_redundant_keys_recorded(env, tmp_path):
    path, _, _, _ = build_dot(env, tmp_path)
    _, rep = load_normalized(path, env.names)
    assert len(rep.redundant_keys) == 4 and not rep.unknown_keys


def test_normalized_keys_and_scale_one(env, tmp_path):
    path, delta, _, _ = build_kohya_split_alpha(env, tmp_path)
    sd, rep = load_normalized(path, env.names)
    assert all(
        k.startswith("transformer.") and k.endswith((".lora_A.weight", ".lora_B.weight"))
        for k in sd
    )
    for m, d in delta.items():
        got = sd[f"transformer.{m}.lora_B.weight"] @ sd[f"transformer.{m}.lora_A.weight"]
        assert torch.allclose(got, d, atol=1e-6)
    assert rep.rank == 4


def test_two_loras_stack(env, tmp_path):
    p1, d1, _, _ = build_aitoolkit(env, tmp_path)
    p2, d2, _, _ = build_lokr_split(env, tmp_path)
    reports = apply_loras(env.pipe, [(str(p1), 1.0), (str(p2), 0.5)])
    assert [r.adapter_name for r in reports] == ["z0", "z1"]
    out = env.run(env.pipe)
    deltas = weighted(d1, 1.0)
    for m, d in weighted(d2, 0.5).items():
        deltas[m] = deltas.get(m, 0) + d
    assert (out - env.merged(deltas)).abs().max().item() < TOL
    # the Linear names stay the same with PEFT wrappers in place
    assert transformer_linear_names(env.pipe.transformer) == env.names


def test_same_stack_only_updates_weights(env, tmp_path, monkeypatch):
    p1, d1, _, _ = build_musubi(env, tmp_path)
    apply_loras(env.pipe, [(str(p1), 1.0)])
    calls = []
    monkeypatch.setattr(
        lora_apply, "load_normalized", lambda *a: calls.append(a) or pytest.fail("reloaded")
    )
    monkeypatch.setattr(
        type(env.pipe),
        "load_lora_weights",
        lambda *a, **k: pytest.fail("load_lora_weights called for a reweight"),
    )
    reports = apply_loras(env.pipe, [(str(p1), 0.5)])
    assert reports[0].weight == 0.5 and not calls
    assert (env.run(env.pipe) - env.merged(weighted(d1, 0.5))).abs().max().item() < TOL
    monkeypatch.undo()
    # weight 0 equals the base model exactly
    apply_loras(env.pipe, [(str(p1), 0.0)])
    assert (env.run(env.pipe) - env.base).abs().max().item() < 1e-6


def test_conversion_is_cached(env, tmp_path, monkeypatch):
    p1, _, _, _ = build_aitoolkit(env, tmp_path)
    apply_loras(env.pipe, [(str(p1), 1.0)])
    apply_loras(env.pipe, [])
    monkeypatch.setattr(lora_apply, "load_normalized", lambda *a: pytest.fail("not cached"))
    reports = apply_loras(env.pipe, [(str(p1), 0.7)])
    assert reports[0].matched == 8


def test_empty_stack_restores_base(env, tmp_path):
    p1, _, _, _ = build_aitoolkit(env, tmp_path)
    apply_loras(env.pipe, [(str(p1), 1.0)])
    assert apply_loras(env.pipe, []) == []
    assert not getattr(env.pipe.transformer, "peft_config", {})
    assert (env.run(env.pipe) - env.base).abs().max().item() == 0.0


def test_foreign_arch_refused_and_stack_kept(env, tmp_path):
    p1, d1, _, _ = build_musubi(env, tmp_path)
    apply_loras(env.pipe, [(str(p1), 1.0)])
    flux = tmp_path / "flux_style.safetensors"
    save_file(
        {
            "diffusion_model.double_blocks.0.img_attn.qkv.lora_A.weight": rnd(4, 32),
            "diffusion_model.double_blocks.0.img_attn.qkv.lora_B.weight": rnd(96, 4),
            "diffusion_model.single_blocks.0.linear1.lora_A.weight": rnd(4, 32),
            "diffusion_model.single_blocks.0.linear1.lora_B.weight": rnd(32, 4),
        },
        str(flux),
    )
    with pytest.raises(LoraError) as exc:
        apply_loras(env.pipe, [(str(p1), 1.0), (str(flux), 1.0)])
    assert str(exc.value) == "This is a Flux LoRA; it cannot be used with Z-Image."
    # the previous stack is untouched
    assert (env.run(env.pipe) - env.merged(d1)).abs().max().item() < TOL
    sdxl = tmp_path / "sdxl.safetensors"
    save_file(
        {
            "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_down.weight": rnd(
                4, 8
            ),
            "lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": rnd(4, 8),
        },
        str(sdxl),
    )
    with pytest.raises(LoraError, match="This is an SDXL LoRA; it cannot be used with Z-Image."):
        load_normalized(sdxl, env.names)


@pytest.mark.parametrize(
    "name, data",
    [
        ("model.ckpt", b"\x80\x02}q\x00." + b"\x00" * 32),
        ("renamed_pickle.safetensors", b"\x80\x02}q\x00." + b"\x00" * 32),
        ("torch_zip.safetensors", b"PK\x03\x04" + b"\x00" * 64),
    ],
)
def test_pickles_refused(env, tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    with pytest.raises(LoraError, match="pickle"):
        apply_loras(env.pipe, [(str(p), 1.0)])


def test_missing_file_and_no_matching_modules(env, tmp_path):
    with pytest.raises(LoraError, match="not found"):
        apply_loras(env.pipe, [(str(tmp_path / "gone.safetensors"), 1.0)])
    # right names, wrong width (a full-size LoRA on the tiny model): refused with a sentence
    big = tmp_path / "full_size.safetensors"
    save_file(
        {
            "diffusion_model.layers.0.attention.to_q.lora_A.weight": torch.zeros(2, 3840),
            "diffusion_model.layers.0.attention.to_q.lora_B.weight": torch.zeros(3840, 2),
        },
        str(big),
    )
    with pytest.raises(LoraError, match="different model size"):
        apply_loras(env.pipe, [(str(big), 1.0)])
    with pytest.raises(LoraError, match="not a number"):
        apply_loras(env.pipe, [(str(big), math.nan)])


def test_float8_storage_keeps_lora_in_float(env, tmp_path):
    """The engine's FP8 mode (layerwise casting): LoRA factors must not become float8."""
    tr = copy.deepcopy(env.ref_pipe.transformer)
    tr.load_state_dict(env.base_state)
    tr.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=torch.float32)
    pipe = ZImagePipeline(
        transformer=tr,
        vae=env.pipe.vae,
        text_encoder=env.pipe.text_encoder,
        tokenizer=env.pipe.tokenizer,
        scheduler=env.pipe.scheduler,
    )
    pipe.set_progress_bar_config(disable=True)
    base = env.run(pipe)
    path, _, _, _ = build_aitoolkit(env, tmp_path)
    apply_loras(pipe, [(str(path), 1.0)])
    layer = tr.layers[0].attention.to_q
    assert layer.lora_A["z0"].weight.dtype == torch.float32
    assert layer.base_layer.weight.dtype == torch.float8_e4m3fn
    out = env.run(pipe)
    assert torch.isfinite(out).all() and (out - base).abs().max().item() > 1e-3
    apply_loras(pipe, [])
    assert (env.run(pipe) - base).abs().max().item() == 0.0


def test_real_diffusers_export_round_trip(env, tmp_path):
    """A file written by ``ZImagePipeline.save_lora_weights`` with its adapter metadata (r4/alpha16)."""
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    tr = copy.deepcopy(env.ref_pipe.transformer)
    tr.load_state_dict(env.base_state)
    targets = [
        "layers.0.attention.to_q",
        "layers.1.feed_forward.w2",
        "noise_refiner.0.adaLN_modulation.0",
    ]
    tr.add_adapter(LoraConfig(r=4, lora_alpha=16, target_modules=targets, init_lora_weights=False))
    lora_sd = get_peft_model_state_dict(tr)
    ZImagePipeline.save_lora_weights(
        tmp_path,
        transformer_lora_layers=lora_sd,
        transformer_lora_adapter_metadata=tr.peft_config["default"].to_dict(),
    )
    path = tmp_path / "pytorch_lora_weights.safetensors"
    info = inspect_lora(path)
    assert (info.dialect, info.rank, info.alpha, len(info.target_modules)) == (
        "diffusers",
        4,
        16.0,
        3,
    )
    delta = {
        m: lora_sd[f"{m}.lora_B.weight"] @ lora_sd[f"{m}.lora_A.weight"] * 4.0 for m in targets
    }
    apply_loras(env.pipe, [(str(path), 0.5)])
    assert (env.run(env.pipe) - env.merged(weighted(delta, 0.5))).abs().max().item() < TOL
