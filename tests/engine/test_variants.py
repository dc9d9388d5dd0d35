"""Z-Image variants (Turbo / Base / De-Turbo): detection from every source kind, defaults, LoRAs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.samples import kohya_metadata, modelspec_metadata, write_safetensors
from zitdesk.models import variants as v
from zitdesk.models.discovery import resolve_model


def _resave_dit(folder: Path, new_name: str, metadata: dict[str, str] | None = None) -> Path:
    from safetensors.torch import load_file

    from zitdesk.io import atomic_save_tensors

    old = folder / "z_image_turbo_bf16.safetensors"
    tensors = load_file(str(old))
    old.unlink()
    return atomic_save_tensors(
        folder / new_name, tensors, metadata={"format": "pt", **(metadata or {})}
    )


@pytest.fixture
def comfy_copy(tiny_comfy, tmp_path) -> Path:
    dst = tmp_path / "models-folder"
    shutil.copytree(tiny_comfy, dst)
    return dst


def test_names_say_the_variant():
    cases = {
        "z_image_turbo_bf16": v.TURBO,
        "z_image_turbo_fp8_e4m3fn.safetensors": v.TURBO,
        "z_image_bf16.safetensors": v.BASE,
        "models--Tongyi-MAI--Z-Image": v.BASE,
        "models--Tongyi-MAI--Z-Image-Turbo": v.TURBO,
        "ostris/Z-Image-De-Turbo": v.DETURBO,
        "z_image_de_turbo_v1_bf16": v.DETURBO,
        "ZImageBase": v.BASE,
        "ZImageTurbo": v.TURBO,
        "qwen_3_4b": None,
        "my-model": None,
    }
    for name, want in cases.items():
        assert v.variant_from_name(name) == want, name
    # A bare family name in metadata says nothing (musubi writes "Z-Image" for every variant).
    assert v.variant_from_name("Z-Image", strict=True) is None
    assert v.variant_from_name("Z-Image/lora", strict=True) is None


def test_comfy_file_name(tiny_comfy, comfy_copy):
    got = v.detect_variant(resolve_model(tiny_comfy))
    assert (got.variant, got.source, got.detail) == (v.TURBO, "name", "z_image_turbo_bf16")
    _resave_dit(comfy_copy, "z_image_bf16.safetensors")
    got = v.detect_variant(resolve_model(comfy_copy))
    assert (got.variant, got.source) == (v.BASE, "name")


def test_dit_metadata_wins_over_the_name(comfy_copy):
    _resave_dit(
        comfy_copy, "z_image_turbo_bf16.safetensors", {"modelspec.architecture": "Z-Image-Base"}
    )
    got = v.detect_variant(resolve_model(comfy_copy))
    assert (got.variant, got.source, got.detail) == (v.BASE, "metadata", "modelspec.architecture")
    _resave_dit(comfy_copy, "z_image_turbo_bf16.safetensors", {"zitdesk_base_variant": "deturbo"})
    got = v.detect_variant(resolve_model(comfy_copy))
    assert (got.variant, got.source) == (v.DETURBO, "metadata")
    assert "metadata" in got.describe()


def test_folder_and_hf_cache_names(tiny_diffusers, tmp_path):
    from zitdesk.models.tiny import hf_cache_layout

    unknown = v.detect_variant(resolve_model(tiny_diffusers))
    assert (unknown.variant, unknown.source) == (v.TURBO, "unknown")
    assert "choose" in unknown.describe()
    folder = tmp_path / "Z-Image-De-Turbo"
    shutil.copytree(tiny_diffusers, folder)
    assert v.detect_variant(resolve_model(folder)).variant == v.DETURBO
    base_repo = hf_cache_layout(tiny_diffusers, tmp_path / "hub", "Tongyi-MAI/Z-Image")
    got = v.detect_variant(resolve_model(base_repo))
    assert (got.variant, got.source, got.detail) == (v.BASE, "name", "models--Tongyi-MAI--Z-Image")
    turbo_repo = hf_cache_layout(tiny_diffusers, tmp_path / "hub", "Tongyi-MAI/Z-Image-Turbo")
    assert v.detect_path_variant(turbo_repo).variant == v.TURBO


def test_users_choice_is_remembered_per_model(tiny_diffusers, tmp_path):
    from zitdesk.settings import AppSettings, load_settings, save_settings

    s = AppSettings(model_path=str(tiny_diffusers))
    v.remember_choice(s.model_variants, tiny_diffusers, "Base")
    path = save_settings(s, tmp_path / "settings.json")
    loaded, notice = load_settings(path)
    assert notice == ""
    got = v.detect_path_variant(loaded.model_path, loaded.model_variants)
    assert (got.variant, got.source) == (v.BASE, "choice")
    # another model is not affected
    other = tmp_path / "Z-Image-Turbo"
    shutil.copytree(tiny_diffusers, other)
    assert v.detect_path_variant(other, loaded.model_variants).source == "name"
    with pytest.raises(ValueError):
        v.remember_choice(s.model_variants, other, "sdxl")


def test_defaults_per_variant():
    turbo, base = v.defaults_for("turbo"), v.defaults_for("base")
    assert (turbo.steps, turbo.guidance, turbo.shift, turbo.negative_enabled) == (
        8,
        0.0,
        3.0,
        False,
    )
    assert (base.steps, base.shift, base.negative_enabled) == (28, 6.0, True)
    assert 3.0 <= base.guidance <= 5.0
    fast = v.defaults_for("base", fast=True)
    assert fast.steps in v.FAST_BASE_STEPS and fast.guidance == 0.0
    assert v.defaults_for("nonsense") == turbo


def test_lora_variant_from_each_metadata_kind(tmp_path):
    from zitdesk.st_header import read_header

    t = {"diffusion_model.layers.0.attention.to_q.lora_A.weight": ((4, 32),)}
    cases = [
        ({"zitdesk_base_variant": "base", "ss_base_model_version": "zimage"}, v.BASE, METADATA),
        (kohya_metadata(base="zimage_turbo"), v.TURBO, "ss_base_model_version"),
        (
            modelspec_metadata("x", architecture="Z-Image-Base/lora"),
            v.BASE,
            "modelspec.architecture",
        ),
        (
            kohya_metadata(base="zimage", ss_sd_model_name="z_image_de_turbo_bf16.safetensors"),
            v.DETURBO,
            "ss_sd_model_name",
        ),
        (kohya_metadata(base="zimage"), None, ""),  # ai-toolkit's value names no variant
        (modelspec_metadata("x", architecture="Z-Image"), None, ""),
    ]
    for i, (meta, want, key) in enumerate(cases):
        f = write_safetensors(tmp_path / f"l{i}.safetensors", t, meta)
        got = v.lora_variant(read_header(f).metadata)
        if want is None:
            assert not got.known, meta
        else:
            assert (got.variant, got.detail) == (want, key), meta
    # sidecars (Civitai baseModel) when the header says nothing
    got = v.lora_variant(kohya_metadata(base="zimage"), ["ZImageBase"])
    assert (got.variant, got.source) == (v.BASE, "metadata")


METADATA = "zitdesk_base_variant"


def test_lora_variant_through_the_library(tmp_path):
    import json

    from zitdesk.library.index import LibraryIndex

    t = {f"diffusion_model.layers.{i}.attention.to_q.lora_A.weight": ((4, 3840),) for i in range(2)}
    t |= {
        f"diffusion_model.layers.{i}.attention.to_q.lora_B.weight": ((3840, 4),) for i in range(2)
    }
    write_safetensors(tmp_path / "own.safetensors", t, {"zitdesk_base_variant": "base"})
    write_safetensors(tmp_path / "civ.safetensors", t, kohya_metadata(base="zimage"))
    (tmp_path / "civ.civitai.info").write_text(json.dumps({"baseModel": "ZImageTurbo"}))
    write_safetensors(tmp_path / "plain.safetensors", t, {"format": "pt"})
    index = LibraryIndex(cache_path=tmp_path / "cache.json")
    index.scan([str(tmp_path)])
    by_name = {Path(e.path).name: e for e in index.entries}
    assert v.entry_variant(by_name["own.safetensors"]).variant == v.BASE
    assert v.entry_variant(by_name["civ.safetensors"]).variant == v.TURBO
    assert not v.entry_variant(by_name["plain.safetensors"]).known


def test_notes_for_a_lora_on_another_variant():
    base = v.VariantGuess(v.BASE, "metadata", "zitdesk_base_variant")
    assert "2 or more" in v.variant_note(base, "turbo", "face.safetensors")
    assert "face.safetensors" in v.variant_note(base, "turbo", "face.safetensors")
    assert "Turbo" in v.variant_note(v.VariantGuess(v.TURBO, "metadata"), "base")
    assert v.variant_note(base, "base") == ""
    assert v.variant_note(v.VariantGuess(), "base") == ""  # the LoRA does not say: no note


@pytest.mark.slow
def test_doctor_names_each_models_variant(tiny_diffusers, tmp_path, monkeypatch):
    from zitdesk.gpu import doctor
    from zitdesk.models.tiny import hf_cache_layout

    hub = tmp_path / "hub"
    hf_cache_layout(tiny_diffusers, hub, "Tongyi-MAI/Z-Image")
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    rep = doctor(check_models=True)
    mine = [m for m in rep.facts["models"] if "Z-Image" in m["label"]]
    assert mine and mine[0]["variant"]["variant"] == "base"
    lines = [f.message for f in rep.findings if f.topic == "models"]
    assert any("Z-Image (Base) (from the name models--Tongyi-MAI--Z-Image)" in m for m in lines)
