"""Training a LoRA on a quantised frozen base (issue #17: the 8 GB tier): a GGUF Q8_0 DiT stays
packed while the LoRA trains as a side branch, and the saved LoRA applies to the bf16 model."""

from __future__ import annotations

import pytest
from trainhelp import make_config, make_dataset, run_job

from zitdesk.offline import enforce_offline

enforce_offline()
torch = pytest.importorskip("torch")
pytest.importorskip("gguf")


@pytest.mark.parametrize(
    ("dit", "label"),
    [("gguf-Q8_0", "gguf-Q8_0"), pytest.param("fp8-mixed", "fp8-scaled", marks=pytest.mark.slow)],
)
def test_lora_trained_on_a_quantised_base_applies_to_bf16(tmp_path, dit, label):
    from tests.support.quant_files import make_quant_components, write_model_folder
    from zitdesk.engine.events import JobFinished
    from zitdesk.lora.apply import apply_loras
    from zitdesk.models.discovery import resolve_model
    from zitdesk.models.loader import load_pipeline

    torch.set_num_threads(2)
    comps = make_quant_components(seed=5)
    quant = write_model_folder(tmp_path / "q", comps, dit)
    plain = write_model_folder(tmp_path / "bf16", comps)
    data = make_dataset(tmp_path / "data", n=2)
    cfg = make_config(quant, data, tmp_path / "out", optim={"steps": 3, "learning_rate": 3e-3})
    rec = run_job(cfg)
    done = rec.of(JobFinished)
    assert done, getattr(rec.last, "message", rec.last)
    lora = next((tmp_path / "out").glob("*.safetensors"))
    from safetensors import safe_open

    with safe_open(str(lora), framework="pt") as fh:
        meta = fh.metadata() or {}
        keys = list(fh.keys())
    assert any(".attention.to_q.lora_A." in k for k in keys)
    assert label in " ".join(meta.values())  # the recipe says what the base was

    pipe = load_pipeline(resolve_model(plain), "cpu", dtype=torch.float32)
    reports = apply_loras(pipe, [(str(lora), 1.0)])
    assert reports[0].matched == reports[0].total > 0  # every module fits the bf16 model
