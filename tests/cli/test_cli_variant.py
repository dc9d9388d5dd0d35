"""`zitdesk generate` takes the model variant's defaults for what the command line leaves out."""

from __future__ import annotations

from zitdesk.cli.app import build_parser
from zitdesk.cli.variant_args import apply_variant_args


def _args(*argv: str):
    return build_parser().parse_args(["generate", "--prompt", "a fox", *argv])


def test_turbo_defaults_without_a_model():
    args = _args()
    fields = apply_variant_args(args)
    assert (args.steps, args.guidance, args.shift) == (8, 0.0, 3.0)
    assert fields == {"variant": "turbo", "variety": 0.0, "cfg_normalization": False}


def test_base_model_by_name_and_by_flag(tmp_path):
    args = _args("--model", str(tmp_path / "models--Tongyi-MAI--Z-Image"), "--steps", "40")
    fields = apply_variant_args(args)
    assert fields["variant"] == "base"
    assert (args.steps, args.guidance, args.shift) == (40, 4.0, 6.0)  # --steps wins
    args = _args("--variant", "deturbo", "--variety", "0.25", "--cfg-normalization")
    fields = apply_variant_args(args)
    assert (args.steps, args.shift) == (25, 3.0)
    assert fields == {"variant": "deturbo", "variety": 0.25, "cfg_normalization": True}


def test_remembered_choice_counts(tmp_path):
    from zitdesk.models.variants import remember_choice
    from zitdesk.settings import load_settings, save_settings

    model = str(tmp_path / "my-model")
    s = load_settings()[0]
    remember_choice(s.model_variants, model, "base")
    save_settings(s)
    args = _args("--model", model)
    assert apply_variant_args(args)["variant"] == "base" and args.steps == 28


def test_enhance_command_prints_a_proposal(tiny_diffusers, capsys):
    import json

    from zitdesk.cli.app import main

    argv = ["enhance", "a fox", "--model", str(tiny_diffusers), "--device", "cpu"]
    assert main([*argv, "--temperature", "0", "--max-tokens", "8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["prompt"] == "a fox" and out["text"] and out["structured"] is False
    assert main(["enhance", "  ", "--model", str(tiny_diffusers)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("zitdesk: The prompt is empty") and "Traceback" not in err


def test_lora_notes_for_another_variant(tmp_path):
    from tests.support.samples import make_lora
    from zitdesk.cli.variant_args import lora_notes

    base = make_lora(
        tmp_path / "b.safetensors", rank=4, layers=2, metadata={"zitdesk_base_variant": "base"}
    )
    plain = make_lora(tmp_path / "p.safetensors", rank=4, layers=2)
    notes = lora_notes([str(base), str(plain), str(tmp_path / "missing.safetensors")], "turbo")
    assert len(notes) == 1 and "b.safetensors" in notes[0] and "2 or more" in notes[0]
    assert lora_notes([str(base)], "base") == []
