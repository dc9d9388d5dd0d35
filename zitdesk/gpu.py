"""GPU and system memory readings (pynvml + psutil) and the environment doctor.

Qt-free and torch-optional: :func:`memory_snapshot` reads NVML and psutil, and adds torch's
allocator figures only when torch is already imported (it never imports torch itself, so the UI's
1 Hz poll stays cheap and the window stays fast).
"""

from __future__ import annotations

import os
import platform
import sys
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

_nvml_lock = threading.Lock()
_nvml_state: dict[str, Any] = {"init": None, "error": ""}


@dataclass(frozen=True)
class GpuReading:
    index: int
    name: str
    used_bytes: int
    total_bytes: int
    utilization: int | None = None  # percent
    temperature_c: int | None = None
    power_w: float | None = None


@dataclass(frozen=True)
class MemorySnapshot:
    gpus: tuple[GpuReading, ...] = ()
    nvml_error: str = ""  # why there are no GPU readings ("" when NVML works)
    process_rss_bytes: int = 0
    system_used_bytes: int = 0
    system_total_bytes: int = 0
    torch_allocated_bytes: int | None = None
    torch_reserved_bytes: int | None = None

    @property
    def has_gpu(self) -> bool:
        return bool(self.gpus)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["has_gpu"] = self.has_gpu
        return d


def _nvml():
    """Initialise NVML once; return the module or None (with the reason kept)."""
    with _nvml_lock:
        if _nvml_state["init"] is None:
            try:
                import pynvml

                pynvml.nvmlInit()
                _nvml_state["init"] = pynvml
            except Exception as exc:  # noqa: BLE001 - no driver, no library, no GPU
                _nvml_state["init"] = False
                _nvml_state["error"] = f"{type(exc).__name__}: {exc}"
        return _nvml_state["init"] or None


def gpu_readings() -> tuple[tuple[GpuReading, ...], str]:
    nv = _nvml()
    if nv is None:
        return (), _nvml_state["error"] or "NVML unavailable"
    out = []
    try:
        for i in range(nv.nvmlDeviceGetCount()):
            h = nv.nvmlDeviceGetHandleByIndex(i)
            mem = nv.nvmlDeviceGetMemoryInfo(h)
            name = nv.nvmlDeviceGetName(h)
            name = name.decode() if isinstance(name, bytes) else str(name)
            util = temp = power = None
            try:
                util = int(nv.nvmlDeviceGetUtilizationRates(h).gpu)
            except Exception:  # noqa: BLE001 - not every card reports every sensor
                pass
            try:
                temp = int(nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU))
            except Exception:  # noqa: BLE001
                pass
            try:
                power = nv.nvmlDeviceGetPowerUsage(h) / 1000.0
            except Exception:  # noqa: BLE001
                pass
            out.append(GpuReading(i, name, int(mem.used), int(mem.total), util, temp, power))
    except Exception as exc:  # noqa: BLE001
        return tuple(out), f"{type(exc).__name__}: {exc}"
    return tuple(out), "" if out else "no NVIDIA GPU found"


def memory_snapshot() -> MemorySnapshot:
    """One reading of GPU, process and system memory; safe to call from any thread."""
    import psutil

    gpus, err = gpu_readings()
    vm = psutil.virtual_memory()
    rss = psutil.Process().memory_info().rss
    alloc = reserved = None
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_available() and torch.cuda.is_initialized():
                alloc = int(torch.cuda.memory_allocated())
                reserved = int(torch.cuda.memory_reserved())
        except Exception:  # noqa: BLE001
            pass
    return MemorySnapshot(
        gpus, err, int(rss), int(vm.total - vm.available), int(vm.total), alloc, reserved
    )


# --- doctor ----------------------------------------------------------------------------------


@dataclass
class Finding:
    level: str  # ok | warn | error | info
    topic: str
    message: str
    fix: str = ""


@dataclass
class DoctorReport:
    findings: list[Finding] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def add(self, level: str, topic: str, message: str, fix: str = "") -> None:
        self.findings.append(Finding(level, topic, message, fix))

    @property
    def ok(self) -> bool:
        return not any(f.level == "error" for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "facts": self.facts, "findings": [asdict(f) for f in self.findings]}


def vram_tier(total_bytes: int) -> str:
    gib = total_bytes / 2**30
    if gib >= 22:
        return "24+ GB: everything on the GPU, bf16"
    if gib >= 15:
        return "16 GB: everything on GPU with the text encoder freed after encoding, or fp8"
    if gib >= 11:
        return "12 GB: fp8 weight storage or model CPU offload"
    if gib >= 7:
        return "8 GB: block streaming from RAM"
    return "under 8 GB: sequential offload only (slow)"


#: Oldest driver for each CUDA major version: through minor-version compatibility it runs every
#: 12.x / 13.x build (NVIDIA "CUDA Compatibility", Minor Version Compatibility, table 1).
MIN_DRIVER = {11: "450", 12: "525", 13: "580"}


def _cuda_tuple(text: str | None) -> tuple[int, int] | None:
    try:
        major, minor = str(text).split(".")[:2]
        return int(major), int(minor)
    except (TypeError, ValueError):
        return None


def _arch_fix(cc: tuple[int, int], archs: list[str]) -> str:
    """Plain advice when the card's compute capability is not in the torch build's arch list."""
    built = sorted(
        {(int(a[3:-1]), int(a[-1])) for a in archs if a.startswith("sm_") and a[3:].isdigit()}
    )
    if built and cc < built[0]:
        return (
            "This card is older than this build supports. Use a zitdesk/PyTorch build made with CUDA "
            "12.6 (the last one with kernels for GTX 9xx/10xx cards), or run on the CPU "
            "(start it with the environment variable ZITDESK_DEVICE=cpu)."
        )
    return (
        "This card is newer than this build. Use a zitdesk/PyTorch build made with CUDA 12.8 or "
        "newer (RTX 50 / Blackwell cards need it) and an NVIDIA driver 570 or newer."
    )


def _windows() -> bool:
    return os.name == "nt"


def doctor(check_models: bool = True) -> DoctorReport:
    """Check torch, CUDA, driver, compute capability vs the torch build, VRAM and models."""
    rep = DoctorReport()
    rep.facts["python"] = sys.version.split()[0]
    rep.facts["platform"] = platform.platform()
    gpus, err = gpu_readings()
    nv = _nvml()
    driver_cuda = None  # highest CUDA version the installed driver supports, e.g. (12, 8)
    if nv is not None:
        try:
            drv = nv.nvmlSystemGetDriverVersion()
            rep.facts["driver"] = drv.decode() if isinstance(drv, bytes) else str(drv)
        except Exception:  # noqa: BLE001
            pass
        try:
            v = int(nv.nvmlSystemGetCudaDriverVersion())  # 12080 = CUDA 12.8
            driver_cuda = (v // 1000, v % 1000 // 10)
            rep.facts["driver_cuda"] = f"{driver_cuda[0]}.{driver_cuda[1]}"
        except Exception:  # noqa: BLE001
            pass
    else:
        rep.facts["nvml_error"] = err
    rep.facts["gpus"] = [asdict(g) for g in gpus]
    try:
        import torch
    except Exception as exc:  # noqa: BLE001
        rep.add("error", "torch", f"PyTorch cannot be imported ({exc}).", "Reinstall zitdesk.")
        return rep
    rep.facts["torch"] = torch.__version__
    rep.facts["torch_cuda"] = torch.version.cuda
    archs = []
    try:
        archs = list(torch.cuda.get_arch_list())
    except Exception:  # noqa: BLE001
        pass
    rep.facts["torch_arch_list"] = archs
    if not gpus:
        rep.add(
            "info",
            "gpu",
            "No NVIDIA GPU found — zitdesk runs on the CPU (very slow for real models).",
            "Install the NVIDIA driver if this machine has an NVIDIA card.",
        )
    if gpus and torch.version.cuda is None:
        rep.add(
            "error",
            "torch",
            "An NVIDIA GPU is present but this PyTorch build has no CUDA support.",
            "Install the CUDA build of zitdesk (or of torch from the PyTorch CUDA index).",
        )
    if gpus and torch.version.cuda is not None and driver_cuda is not None:
        need = _cuda_tuple(torch.version.cuda)
        if need and driver_cuda[0] < need[0]:
            rep.add(
                "error",
                "driver",
                f"The NVIDIA driver {rep.facts.get('driver', '')} supports CUDA up to "
                f"{driver_cuda[0]}.{driver_cuda[1]}, but this zitdesk build uses CUDA {torch.version.cuda}.",
                f"Update the NVIDIA driver to {MIN_DRIVER.get(need[0], 'a newer version')} or newer "
                "(nvidia.com/drivers, or your distribution's driver package), then restart.",
            )
        elif need and driver_cuda < need:
            rep.add(
                "warn",
                "driver",
                f"The NVIDIA driver {rep.facts.get('driver', '')} is older than this build's "
                f"CUDA {torch.version.cuda}; it works through CUDA minor-version compatibility, but "
                "a few kernels may fail with 'PTX' errors.",
                "Update the NVIDIA driver when convenient.",
            )
        else:
            rep.add(
                "ok",
                "driver",
                f"NVIDIA driver {rep.facts.get('driver', '')} (CUDA "
                f"{driver_cuda[0]}.{driver_cuda[1]}) is new enough for this build (CUDA {torch.version.cuda}).",
            )
    if gpus and torch.version.cuda is not None:
        try:
            usable = torch.cuda.is_available()
        except Exception:  # noqa: BLE001
            usable = False
        if not usable:
            rep.add(
                "error",
                "cuda",
                "CUDA is not usable although a GPU is present (driver too old for "
                f"CUDA {torch.version.cuda}?).",
                "Update the NVIDIA driver.",
            )
        else:
            for i in range(torch.cuda.device_count()):
                major, minor = torch.cuda.get_device_capability(i)
                sm = f"sm_{major}{minor}"
                ok = sm in archs or any(a == f"compute_{major}{minor}" for a in archs)
                name = torch.cuda.get_device_name(i)
                rep.facts.setdefault("compute_capability", []).append(f"{major}.{minor}")
                if not ok:
                    rep.add(
                        "error",
                        "arch",
                        f"{name} is {sm}, but this PyTorch build only has kernels for "
                        f"{', '.join(archs)} (the 'no kernel image is available' error).",
                        _arch_fix((major, minor), archs),
                    )
                else:
                    rep.add("ok", "arch", f"{name} ({sm}) is supported by this PyTorch build.")
    for g in gpus:
        rep.add(
            "ok",
            "vram",
            f"GPU {g.index} {g.name}: {g.total_bytes / 2**30:.1f} GiB — tier {vram_tier(g.total_bytes)}.",
        )
        if _windows() and g.total_bytes < 24 * 2**30:
            rep.add(
                "info",
                "sysmem",
                "On Windows the NVIDIA 'CUDA Sysmem Fallback Policy' lets jobs spill into "
                "shared RAM and run many times slower instead of failing.",
                "NVIDIA Control Panel → Manage 3D settings → CUDA - Sysmem Fallback Policy → Prefer No Sysmem Fallback.",
            )
    if check_models:
        from zitdesk.models.discovery import discover
        from zitdesk.models.variants import detect_variant
        from zitdesk.settings import load_settings

        choices = load_settings()[0].model_variants  # the user's Turbo/Base/De-Turbo choices
        found = discover()
        guesses = [detect_variant(s, choices) for s in found]
        rep.facts["models"] = [
            s.to_dict() | {"variant": guess.to_dict()}
            for s, guess in zip(found, guesses, strict=True)
        ]
        if not any(s.complete for s in found):
            rep.add(
                "warn",
                "models",
                "No complete Z-Image Turbo model was found in the usual places.",
                "Pass --model PATH or choose the model folder in the app.",
            )
        for s, guess in zip(found, guesses, strict=True):
            rep.add(
                "ok" if s.complete else "warn", "models", f"{s.describe()} — {guess.describe()}"
            )
    return rep
