"""The measured prior: which schedule points win on a class of device, by kernel shape.

    device_class(device) -> "gpu" | "cpu" | None
    prior_order(info, points, cls) -> the same points, most promising on `cls` first

A space function lists the points that fit a device; the prior orders them. It is data, not
rules: `nnjit/tuning/prior_data/<target>-<class>.json` holds, per measured kernel (kind and
geometry: M, N, K, batch, mode for a matmul; rows and row length for softmax / layer_norm;
elements for pointwise kernels), the points of its space with their time relative to the best
one, from an exhaustive sweep on real hardware (`bench/gpu_space.py` on the device,
`tools/make_prior.py` here to summarise; the file names the device and the commit).

A kernel takes the ranking of the nearest measured kernel of the same family (distance: the sum
of |log2| ratios of its sizes; a matmul only matches its own mode, a row kernel its own
`trailing`), so a length or a width nobody measured follows its neighbour. Points that the
ranking does not name keep their order after those it does; points it names that the kernel's
space lacks (over this device's limits, say) are skipped. Without data for the class (Wasm;
a software WebGPU adapter; the generic device of `nnjit compile`), the order is unchanged.

Who reads it: `plugins.space_for` (the tuner tries the prior's points right after the default),
and `apply.add_candidates` (what a bundle ships, and each device class's order of the shipped
candidates, which the runtimes follow: their first pick before tuning, then the tuning order).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from nnjit.runtime.adapters import device_class as adapter_class
from nnjit.tuning.kernels import KernelInfo
from nnjit.tuning.space import DeviceInfo, Point

DATA_DIR = Path(__file__).resolve().parent / "prior_data"
FORMAT = "nnjit-prior"
VERSION = 1

FAMILIES = {
    "matmul": "matmul", "gemm": "matmul", "conv": "matmul",
    "softmax": "rows", "layer_norm": "rows", "reduce": "rows",
}  # fmt: skip
"""Kernel kinds whose spaces share option keys, so one's ranking can order another's points."""

_SIZES = {"matmul": ("M", "N", "K", "batch"), "rows": ("rows", "row_len"), "pointwise": ("elements", "inner", "rows")}
_MATCH = {"matmul": ("mode",), "rows": ("trailing",), "pointwise": ()}


def family(kind: str) -> str:
    return FAMILIES.get(kind, "pointwise")


def point_key(point: Mapping[str, Any]) -> str:
    """A point's identity in the data (JSON, sorted keys, tuples as lists)."""
    return json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in point.items()}, sort_keys=True)


@dataclass(frozen=True)
class Measured:
    """One measured kernel: its family, geometry and the relative time of each point."""

    family: str
    geometry: dict
    rel: dict  # point_key -> time / best time (1.0: the best)


def device_class(device: DeviceInfo) -> str | None:
    """The class whose prior applies to `device`: "gpu" or "cpu" for a WebGPU adapter, None for
    the generic device (a bundle compiled for any adapter) and for Wasm."""
    fp = device.fingerprint or {}
    if device.target != "wgsl" or "generic" in fp:
        return None
    return adapter_class(fp)


@cache
def measured(target: str, cls: str) -> tuple[Measured, ...]:
    """The data for a target and device class (empty without a file)."""
    path = DATA_DIR / f"{target}-{cls}.json"
    if not path.is_file():
        return ()
    data = json.loads(path.read_text())
    if data.get("format") != FORMAT or data.get("version") != VERSION:
        raise ValueError(f"{path}: not an nnjit prior of version {VERSION} (regenerate it with tools/make_prior.py)")
    return tuple(Measured(family(k["kind"]), dict(k["geometry"]), dict(k["rel"])) for k in data["kernels"])


def distance(fam: str, a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
    if any(a.get(k) != b.get(k) for k in _MATCH[fam]):
        return math.inf
    d = 0.0
    for k in _SIZES[fam]:
        x, y = a.get(k), b.get(k)
        if isinstance(x, (int, float)) and isinstance(y, (int, float)) and x > 0 and y > 0:
            d += abs(math.log2(x / y))
    return d


def nearest(info: KernelInfo, cls: str) -> Measured | None:
    """The measured kernel of the same family nearest to `info`'s geometry, or None."""
    fam = family(info.kind)
    best, best_d = None, math.inf
    for m in measured(info.target, cls):
        if m.family != fam:
            continue
        d = distance(fam, m.geometry, info.geometry)
        if d < best_d:
            best, best_d = m, d
    return best


def prior_order(info: KernelInfo, points: Sequence[Point], cls: str | None) -> list[Point]:
    """`points` (one kernel's space) ordered for device class `cls`: those the nearest measured
    kernel ranks, fastest first, then the others in their given order."""
    m = nearest(info, cls) if cls else None
    if m is None:
        return list(points)
    ranked = sorted(((m.rel[point_key(p)], i) for i, p in enumerate(points) if point_key(p) in m.rel))
    named = {i for _, i in ranked}
    return [points[i] for _, i in ranked] + [p for i, p in enumerate(points) if i not in named]


__all__ = ["device_class", "prior_order", "nearest", "distance", "measured", "point_key", "family", "DATA_DIR"]
