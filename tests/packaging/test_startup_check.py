"""Start-up check: the doctor's GPU findings (with fakes for the GPU, driver and torch build)
and the dialog that shows them."""

from __future__ import annotations

import types

import pytest

from zitdesk import gpu
from zitdesk.gpu import DoctorReport, GpuReading


class FakeNvml:
    def __init__(self, driver="570.86", cuda=12080):
        self.driver, self.cuda = driver, cuda

    def nvmlSystemGetDriverVersion(self):
        return self.driver

    def nvmlSystemGetCudaDriverVersion(self):
        return self.cuda


@pytest.fixture
def fake_gpu(monkeypatch):
    """One NVIDIA card, a driver, and a CUDA torch build; every part can be changed per test."""
    import torch

    state = types.SimpleNamespace(
        name="NVIDIA GeForce RTX 5090",
        cc=(12, 0),
        vram=32 * 2**30,
        archs=["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"],
        torch_cuda="12.8",
        available=True,
        nvml=FakeNvml(),
        windows=False,
    )
    monkeypatch.setattr(
        gpu, "gpu_readings", lambda: ((GpuReading(0, state.name, 0, state.vram),), "")
    )
    monkeypatch.setattr(gpu, "_nvml", lambda: state.nvml)
    monkeypatch.setattr(gpu, "_windows", lambda: state.windows)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: state.available)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=0: state.cc)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: state.name)
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: list(state.archs))

    def run():
        monkeypatch.setattr(torch.version, "cuda", state.torch_cuda)
        return gpu.doctor(check_models=False)

    state.run = run
    return state


def _topics(rep, level):
    return {f.topic for f in rep.findings if f.level == level}


def test_supported_card_is_all_ok(fake_gpu):
    rep = fake_gpu.run()
    assert rep.ok
    assert {"driver", "arch", "vram"} <= _topics(rep, "ok")
    assert rep.facts["driver_cuda"] == "12.8"
    assert "sysmem" not in _topics(rep, "info")


def test_rtx50_on_an_old_build_is_the_no_kernel_image_trap(fake_gpu):
    fake_gpu.archs = [
        "sm_50",
        "sm_60",
        "sm_70",
        "sm_75",
        "sm_80",
        "sm_86",
        "sm_90",
    ]  # a cu126 build
    fake_gpu.torch_cuda = "12.6"
    rep = fake_gpu.run()
    assert not rep.ok
    arch = next(f for f in rep.findings if f.topic == "arch")
    assert arch.level == "error" and "sm_120" in arch.message and "no kernel image" in arch.message
    assert "12.8" in arch.fix and "newer" in arch.fix


def test_old_card_on_a_new_build_gets_the_legacy_advice(fake_gpu):
    fake_gpu.name, fake_gpu.cc, fake_gpu.vram = "NVIDIA GeForce GTX 1080", (6, 1), 8 * 2**30
    rep = fake_gpu.run()
    arch = next(f for f in rep.findings if f.topic == "arch")
    assert arch.level == "error" and "12.6" in arch.fix and "older" in arch.fix


def test_driver_too_old_for_the_cuda_major(fake_gpu):
    fake_gpu.torch_cuda = "13.0"
    fake_gpu.nvml = FakeNvml(driver="560.94", cuda=12060)
    fake_gpu.available = False
    rep = fake_gpu.run()
    drv = next(f for f in rep.findings if f.topic == "driver")
    assert drv.level == "error" and "560.94" in drv.message and "580" in drv.fix
    assert "cuda" in _topics(rep, "error")  # CUDA not usable either


def test_driver_minor_behind_is_only_a_warning(fake_gpu):
    fake_gpu.nvml = FakeNvml(driver="566.03", cuda=12070)
    rep = fake_gpu.run()
    drv = next(f for f in rep.findings if f.topic == "driver")
    assert drv.level == "warn"


def test_windows_sysmem_fallback_advice_below_24_gb(fake_gpu):
    fake_gpu.windows, fake_gpu.vram, fake_gpu.name, fake_gpu.cc = (
        True,
        12 * 2**30,
        "RTX 4070",
        (8, 9),
    )
    fake_gpu.archs.append("sm_89")
    rep = fake_gpu.run()
    sysmem = next(f for f in rep.findings if f.topic == "sysmem")
    assert "Prefer No Sysmem Fallback" in sysmem.fix
    assert any(f.topic == "vram" and "12 GB" in f.message for f in rep.findings)


def test_cpu_torch_with_a_gpu_present_is_an_error(fake_gpu):
    fake_gpu.torch_cuda = None
    rep = fake_gpu.run()
    assert "torch" in _topics(rep, "error")


# -- the dialog -------------------------------------------------------------------------------


def _report(*findings, **facts):
    rep = DoctorReport()
    for f in findings:
        rep.add(*f)
    rep.facts.update(facts)
    return rep


def test_dialog_lists_findings_with_fixes_errors_first(qtbot):
    from ui.dialogs.startup_check import StartupCheckDialog, needs_attention

    rep = _report(
        ("ok", "vram", "GPU 0: 24 GiB"),
        ("error", "arch", "RTX 5090 is sm_120 ...", "Use a CUDA 12.8 build."),
        ("warn", "models", "No model found.", "Choose it."),
        torch="2.13.0+cu126",
        gpus=[{"name": "RTX 5090"}],
    )
    assert needs_attention(rep)
    dlg = StartupCheckDialog(rep)
    qtbot.addWidget(dlg)
    assert [r.finding.topic for r in dlg.rows] == [
        "arch",
        "vram",
    ]  # models are the setup dialog's job
    assert "Use a CUDA 12.8 build." in dlg.rows[0].fix.text()
    assert "One problem stops" in dlg.summary.text()
    assert "torch: 2.13.0+cu126" in dlg.details.toPlainText()
    dlg.copy_report()
    from PySide6.QtGui import QGuiApplication

    assert "[error] arch" in QGuiApplication.clipboard().text()


def test_healthy_report_needs_no_dialog():
    from ui.dialogs.startup_check import needs_attention, summary_text

    rep = _report(
        ("ok", "arch", "fine"),
        ("info", "gpu", "No NVIDIA GPU found"),
        ("warn", "models", "No model."),
    )
    assert not needs_attention(rep)
    assert "CPU" in summary_text(rep)


def test_startup_check_runs_off_thread_and_opens_only_when_needed(qtbot):
    from PySide6.QtWidgets import QWidget

    from ui.dialogs.startup_check import StartupCheck

    parent = QWidget()
    qtbot.addWidget(parent)
    bad = _report(("error", "cuda", "CUDA is not usable", "Update the driver."))
    check = StartupCheck(parent, doctor_fn=lambda: bad)
    with qtbot.waitSignal(check.finished, timeout=30_000):
        check.start()
    assert check.dialog is not None and check.dialog.isVisible()
    check.dialog.close()

    good = _report(("ok", "arch", "fine"))
    quiet = StartupCheck(parent, doctor_fn=lambda: good)
    with qtbot.waitSignal(quiet.finished, timeout=30_000):
        quiet.start()
    assert quiet.dialog is None
    always = StartupCheck(parent, always_show=True, doctor_fn=lambda: good)
    with qtbot.waitSignal(always.finished, timeout=30_000):
        always.start()
    assert always.dialog is not None
    always.dialog.close()
