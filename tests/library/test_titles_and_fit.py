"""Library titles of zitdesk-trained LoRAs, and the library's shape check against the active model."""

from __future__ import annotations

from dataclasses import replace

from tests.support.samples import make_lora, write_safetensors
from zitdesk.library.index import LibraryIndex, choose_title
from zitdesk.lora.fit import model_linear_shapes
from zitdesk.train.config import TrainConfig
from zitdesk.train.lora_io import build_metadata, lora_title

ZMETA = {"zitdesk_version": "1", "modelspec.title": "lora"}


def _cfg(name: str, out: str) -> TrainConfig:
    cfg = TrainConfig()
    return replace(cfg, save=replace(cfg.save, name=name, output_dir=out))


def test_writer_titles_a_default_named_run_after_its_folder(tmp_path):
    assert lora_title(_cfg("lora", str(tmp_path / "my_cat"))) == "my_cat"
    assert lora_title(_cfg("mochi", str(tmp_path / "run7"))) == "mochi"
    assert lora_title(_cfg("lora", ""), "cats") == "cats"
    meta = build_metadata(
        _cfg("lora", str(tmp_path / "my_cat")),
        step=10,
        epoch=1,
        base_precision="bf16",
        resolution=(512, 512),
        tag_freq={},
        dataset_name="cats",
    )
    assert meta["modelspec.title"] == "my_cat"
    assert meta["ss_output_name"] == "lora"  # the file name itself is unchanged


def test_library_title_of_zitdesk_files(tmp_path):
    run = tmp_path / "runs" / "my_cat"
    assert choose_title(ZMETA, str(run / "lora.safetensors")) == "my_cat"
    assert choose_title(ZMETA, str(run / "lora_000000500.safetensors")) == "my_cat (step 500)"
    # renamed by the user: the file name is the title (empty = the file name is shown)
    assert choose_title(ZMETA, str(run / "cat_style_v2.safetensors")) == ""
    # a real title wins; files of other trainers keep what they say
    assert (
        choose_title({**ZMETA, "modelspec.title": "Mochi"}, str(run / "lora.safetensors"))
        == "Mochi"
    )
    named = {**ZMETA, "modelspec.title": "Mochi", "ss_output_name": "mochi"}
    assert choose_title(named, str(run / "mochi_000000250.safetensors")) == "Mochi (step 250)"
    assert choose_title(named, str(run / "mochi.safetensors")) == "Mochi"
    assert choose_title({"modelspec.title": "lora"}, str(run / "lora.safetensors")) == "lora"


def test_scanned_zitdesk_lora_shows_its_run_name(tmp_path):
    run = tmp_path / "runs" / "watercolor_run"
    make_lora(run / "lora.safetensors", "aitoolkit", 4, layers=1, metadata=ZMETA)
    index = LibraryIndex(cache_path=None, hash_cache=None)
    (entry,) = index.scan([str(tmp_path)]).entries
    assert entry.display_name == "watercolor_run"


def test_index_checks_shapes_against_the_active_model(tmp_path, tiny_diffusers):
    shapes = model_linear_shapes(tiny_diffusers)
    t = {}
    for m, (o, i) in shapes.items():
        t[f"diffusion_model.{m}.lora_A.weight"] = ((2, i),)
        t[f"diffusion_model.{m}.lora_B.weight"] = ((o, 2),)
    write_safetensors(tmp_path / "fits.safetensors", t, {})
    make_lora(tmp_path / "full_size.safetensors", "aitoolkit", 4, layers=1)
    index = LibraryIndex(cache_path=None, hash_cache=None, module_names=shapes)
    by_name = {e.file_name: e for e in index.scan([str(tmp_path)]).entries}
    assert by_name["fits.safetensors"].compatible, by_name["fits.safetensors"].reason
    big = by_name["full_size.safetensors"]
    assert not big.compatible and "does not fit this model" in big.reason
    # Against the real Z-Image Turbo sizes the full-size file is the one that fits.
    assert index.set_module_names(model_linear_shapes(None))
    by_name = {e.file_name: e for e in index.scan([str(tmp_path)]).entries}
    assert by_name["full_size.safetensors"].compatible
    assert not by_name["fits.safetensors"].compatible
    # Names only (the old API) check no sizes.
    assert index.set_module_names(set(shapes))
    by_name = {e.file_name: e for e in index.scan([str(tmp_path)]).entries}
    assert by_name["fits.safetensors"].compatible
