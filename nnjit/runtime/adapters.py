"""What class of device a WebGPU adapter is, from the facts it reports (no wgpu import).

    device_class(info) -> "cpu" | "gpu"

"cpu": a software adapter (Mesa's lavapipe, which names itself llvmpipe; Chromium's
SwiftShader), or one whose adapter type says CPU. Its timings say nothing about GPU speed, and
the schedules that win on a GPU (workgroup-memory tiles, k slices) lose on it. "gpu": any other
adapter. The JS runtime applies the same rule (nnjit/web/webgpu.js, CPU_ADAPTER).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CPU_ADAPTER_NAMES = ("llvmpipe", "lavapipe", "swiftshader")
DEVICE_CLASSES = ("gpu", "cpu")


def is_cpu_adapter(info: Mapping[str, Any]) -> bool:
    """Whether an adapter (WebGPURuntime.info, or a runner's device fingerprint) runs on the CPU."""
    if str(info.get("device_type", "")).upper() == "CPU":
        return True
    names = " ".join(str(info.get(k, "")) for k in ("name", "vendor", "description", "driver", "architecture"))
    return any(n in names.lower() for n in CPU_ADAPTER_NAMES)


def device_class(info: Mapping[str, Any]) -> str:
    """ "cpu" for a software adapter, else "gpu"."""
    return "cpu" if is_cpu_adapter(info) else "gpu"


__all__ = ["CPU_ADAPTER_NAMES", "DEVICE_CLASSES", "is_cpu_adapter", "device_class"]
