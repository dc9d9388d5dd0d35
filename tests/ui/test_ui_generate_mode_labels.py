"""The Generate form's memory modes name the need of the configured model's DiT format (#17)."""

from __future__ import annotations

from zitdesk.engine.requests import MemoryMode


def _labels(form) -> dict[str, str]:
    combo = form.memory_mode
    return {combo.itemData(i): combo.itemText(i) for i in range(combo.count())}


def test_a_gguf_model_shows_its_predicted_need_per_mode(qtbot, make_window, settings, tmp_path):
    from tests.support.quant_files import make_quant_components, write_model_folder
    from zitdesk.memory_predict import mode_label

    bf16 = make_window(settings)
    assert _labels(bf16.generate.form)["fp8"] == "fp8 weight storage (16 GB)"  # as measured

    comps = make_quant_components(seed=1)
    folder = write_model_folder(tmp_path / "ComfyUI", comps, dit="gguf-Q4_K")
    settings.model_path = str(folder)
    win = make_window(settings, show=True)
    win.resize(1366, 768)
    form = win.generate.form
    labels = _labels(form)
    assert labels["gpu"] == "Everything on GPU (fastest, ≈ 13.5 GiB)"
    assert labels["fp8"] == "fp8 weight storage (as GPU for GGUF Q4_K)"
    assert all("GB)" not in t for t in labels.values())  # no bf16 card sizes left
    assert "at 1024×1024 for this model's GGUF Q4_K DiT" in form.memory_mode.toolTip()
    assert [form.memory_mode.itemData(i) for i in range(form.memory_mode.count())] == [
        m.value for m in MemoryMode
    ]  # the values stay

    form.unload_te.setChecked(True)  # Qwen3 waits in RAM: 7.5 GiB less on the card
    win.generate.update_prediction()
    assert _labels(form)["gpu"] == mode_label(MemoryMode.GPU, "gguf-Q4_K", True)
    assert "≈ 6.0 GiB" in _labels(form)["gpu"]
    combo = form.memory_mode
    widest = max(combo.fontMetrics().horizontalAdvance(t) for t in _labels(form).values())
    assert widest + 40 <= combo.width() <= win.generate.split.sizes()[0]  # whole, column kept
