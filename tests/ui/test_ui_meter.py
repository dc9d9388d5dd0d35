"""The status-bar memory meter and its off-thread poller."""

from __future__ import annotations

import threading

from fakes import GIB, cpu_snapshot, gpu_snapshot

from ui.memory_poller import MemoryPoller
from ui.widgets.vram_meter import VramMeterWidget


def test_meter_with_a_gpu(qtbot):
    m = VramMeterWidget()
    qtbot.addWidget(m)
    m.set_snapshot(gpu_snapshot(used=6 * GIB, total=24 * GIB))
    assert m.has_gpu and m.gpu_label.text() == "RTX 4090"
    assert m.gpu_text.text() == "VRAM 6.0/24.0 GiB · 37% · 61°C"
    assert m.torch_label.text() == "torch 1.0 alloc / 2.0 reserved" and m.torch_label.isVisibleTo(m)
    assert "RAM: app 2.0 GiB" in m.ram_label.text()
    assert m.sparkline.values == [0.25]
    m.set_prediction(int(14 * GIB), "Next job: about 14 GiB")
    assert m.bar.ghost == 14 * GIB and "about 14 GiB" in m.toolTip()
    assert "120 W" in m.toolTip()


def test_meter_shows_every_card(qtbot):
    """Two cards (one training, one generating, #19): the bar reads the focused card (the first
    by default), the text each card."""
    import dataclasses

    from zitdesk.gpu import GpuReading

    snap = gpu_snapshot(used=6 * GIB, total=24 * GIB)
    second = GpuReading(1, "NVIDIA GeForce RTX 4090", 20 * GIB, 24 * GIB, 99, 70, 400.0)
    snap = dataclasses.replace(snap, gpus=(*snap.gpus, second))
    m = VramMeterWidget()
    qtbot.addWidget(m)
    m.set_snapshot(snap)
    assert m.gpu_label.text() == "RTX 4090 +1"
    assert m.gpu_text.text() == "GPU 0 6.0/24.0 GiB · GPU 1 20.0/24.0 GiB"
    assert "GPU 1 NVIDIA GeForce RTX 4090: 20.0 of 24.0 GiB" in m.toolTip()
    m.set_focus(1)  # Generate's GPU row picked card 1: the bar and its ghost are card 1's
    assert (m.bar.used, m.bar.total) == (20 * GIB, 24 * GIB) and m.sparkline.values == [0.25]
    m.set_focus(-1)
    assert m.bar.used == 6 * GIB


def test_meter_without_nvml_says_cpu(qtbot):
    m = VramMeterWidget()
    qtbot.addWidget(m)
    m.set_prediction(int(14 * GIB))
    m.set_snapshot(cpu_snapshot())
    assert m.gpu_label.text() == "No NVIDIA GPU found — running on CPU"
    assert not m.bar.isVisibleTo(m) and not m.torch_label.isVisibleTo(m)
    assert m.bar.ghost == 0
    assert "NVML Shared Library Not Found" in m.toolTip()
    assert m.sparkline.values == [6 / 32]


def test_poller_reads_off_the_gui_thread(qtbot):
    threads = []

    def snap():
        threads.append(threading.current_thread() is threading.main_thread())
        return cpu_snapshot()

    p = MemoryPoller(snap, interval_ms=20)
    got = []
    p.snapshot_ready.connect(got.append)
    p.start()
    qtbot.waitUntil(lambda: len(got) >= 3, timeout=30_000)
    p.stop()
    assert threads and not any(threads)
    assert got[0].system_total_bytes == 32 * GIB


def test_poller_survives_a_failing_reading(qtbot):
    calls = []

    def bad():
        calls.append(1)
        raise OSError("nvml hiccup")

    p = MemoryPoller(bad, interval_ms=20)
    p.start()
    qtbot.waitUntil(lambda: len(calls) >= 2, timeout=30_000)
    p.stop()


def test_real_snapshot_function_is_qt_free_and_fast():
    from zitdesk.gpu import memory_snapshot

    s = memory_snapshot()
    assert s.system_total_bytes > 0 and s.process_rss_bytes > 0
