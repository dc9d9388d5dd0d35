"""Status-bar memory meter: VRAM per GPU, utilisation, temperature, RAM, torch's allocator.

Fed by :class:`ui.memory_poller.MemoryPoller` (``set_snapshot``) and by the Generate workspace's
prediction for the next job (``set_prediction``), drawn as a ghost bar over the first GPU's bar.
Without NVML or a driver it says so plainly and charts system RAM instead.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QHBoxLayout, QLabel, QWidget

from ui.widgets.memory_bar import MemoryBarWidget
from ui.widgets.sparkline import SparklineWidget

GIB = 2**30


def gib(n: int | float) -> str:
    return f"{n / GIB:.1f}"


def short_gpu_name(name: str) -> str:
    for prefix in ("NVIDIA GeForce ", "NVIDIA "):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


class VramMeterWidget(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(4, 0, 4, 0)
        lay.setSpacing(6)
        self.gpu_label = QLabel("Reading memory…")
        self.bar = MemoryBarWidget()
        self.gpu_text = QLabel()
        self.sparkline = SparklineWidget()
        self.ram_label = QLabel()
        self.ram_label.setObjectName("muted")
        self.torch_label = QLabel()
        self.torch_label.setObjectName("muted")
        for w in (
            self.gpu_label,
            self.bar,
            self.gpu_text,
            self.sparkline,
            self.ram_label,
            self.torch_label,
        ):
            lay.addWidget(w)
        self.bar.hide()
        self.torch_label.hide()
        self._prediction_bytes = 0
        self._prediction_text = ""
        self.snapshot: Any = None
        self._focus: int | None = None  # the card the bar (and the next job's ghost) is for

    @property
    def has_gpu(self) -> bool:
        return bool(self.snapshot is not None and self.snapshot.gpus)

    def set_prediction(self, peak_bytes: int, text: str = "") -> None:
        """Ghost bar for the next job's predicted peak (0 hides it)."""
        self._prediction_bytes = max(int(peak_bytes), 0)
        self._prediction_text = text
        self.bar.set_ghost(self._prediction_bytes if self.has_gpu else 0)
        self._update_tooltip()

    def set_focus(self, index: int) -> None:
        """Show card ``index`` in the bar (with several GPUs: the card the next generation uses,
        so the predicted-peak ghost is drawn against the right memory); -1 = the first card."""
        self._focus = index if index >= 0 else None
        if self.snapshot is not None:
            self.set_snapshot(self.snapshot, sample=False)

    def set_snapshot(self, snap: Any, sample: bool = True) -> None:
        self.snapshot = snap
        if snap.gpus:
            g = next((c for c in snap.gpus if c.index == self._focus), snap.gpus[0])
            self.gpu_label.setText(
                short_gpu_name(g.name) + (f" +{len(snap.gpus) - 1}" if len(snap.gpus) > 1 else "")
            )
            self.gpu_label.setObjectName("")
            self.bar.show()
            self.bar.set_values(g.used_bytes, g.total_bytes)
            self.bar.set_ghost(self._prediction_bytes)
            bits = [f"VRAM {gib(g.used_bytes)}/{gib(g.total_bytes)} GiB"]
            if len(snap.gpus) > 1:  # every card (#19: one may train while another generates);
                bits = [  # their sensors are in the tooltip
                    f"GPU {c.index} {gib(c.used_bytes)}/{gib(c.total_bytes)} GiB" for c in snap.gpus
                ]
            else:
                if g.utilization is not None:
                    bits.append(f"{g.utilization}%")
                if g.temperature_c is not None:
                    bits.append(f"{g.temperature_c}°C")
            self.gpu_text.setText(" · ".join(bits))
            self.gpu_text.show()
            if sample:
                self.sparkline.add(g.used_bytes / g.total_bytes if g.total_bytes else 0)
        else:
            self.gpu_label.setText("No NVIDIA GPU found — running on CPU")
            self.gpu_label.setObjectName("warning")
            self.bar.hide()
            self.gpu_text.hide()
            if snap.system_total_bytes and sample:
                self.sparkline.add(snap.system_used_bytes / snap.system_total_bytes)
        self.gpu_label.style().unpolish(self.gpu_label)
        self.gpu_label.style().polish(self.gpu_label)
        self.ram_label.setText(
            f"RAM: app {gib(snap.process_rss_bytes)} GiB · system "
            f"{gib(snap.system_used_bytes)}/{gib(snap.system_total_bytes)} GiB"
        )
        if snap.torch_allocated_bytes is not None:
            self.torch_label.setText(
                f"torch {gib(snap.torch_allocated_bytes)} alloc / "
                f"{gib(snap.torch_reserved_bytes or 0)} reserved"
            )
            self.torch_label.show()
        else:
            self.torch_label.hide()
        self._update_tooltip()

    def _update_tooltip(self) -> None:
        snap = self.snapshot
        lines: list[str] = []
        if snap is not None:
            for g in snap.gpus:
                extra = []
                if g.utilization is not None:
                    extra.append(f"utilisation {g.utilization}%")
                if g.temperature_c is not None:
                    extra.append(f"{g.temperature_c}°C")
                if g.power_w is not None:
                    extra.append(f"{g.power_w:.0f} W")
                lines.append(
                    f"GPU {g.index} {g.name}: {gib(g.used_bytes)} of {gib(g.total_bytes)} GiB"
                    + (f" ({', '.join(extra)})" if extra else "")
                )
            if not snap.gpus:
                lines.append(
                    "No NVIDIA GPU found, so zitdesk runs on the CPU (slow for real models)."
                )
                if snap.nvml_error:
                    lines.append(f"Reason: {snap.nvml_error}")
            lines.append(
                f"This app: {gib(snap.process_rss_bytes)} GiB RAM; system: "
                f"{gib(snap.system_used_bytes)} of {gib(snap.system_total_bytes)} GiB"
            )
            if snap.torch_allocated_bytes is not None:
                lines.append(
                    f"torch: {gib(snap.torch_allocated_bytes)} GiB allocated, "
                    f"{gib(snap.torch_reserved_bytes or 0)} GiB reserved"
                )
        lines.append(
            "Sparkline: the last 5 minutes of "
            + ("VRAM" if self.has_gpu else "system RAM")
            + " use."
        )
        if self._prediction_text:
            lines.append(self._prediction_text)
        self.setToolTip("\n".join(lines))
