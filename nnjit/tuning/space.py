"""The lite schedule spaces: per kernel kind and target, a few dozen schedule points.

    space(kernel_info, device) -> list[dict]

Every point is a dict of pass options (the keys of convert-nn-tensor-to-nn-loop: workgroup,
tile, reg, vec, kstep, shared, rows; for Wasm also "relaxed-simd", the option of
convert-nn-loop-to-wasm), so a point replays as one nnjit-opt line (`replay_line`). The first
point is always `{}`: the lowering's default schedule. Points are kept only when they fit the
device (workgroup storage, invocations per workgroup, SIMD features, cache sizes) and use the
hardware well (register budget per invocation / thread, tiles that (nearly) divide the shape,
enough workgroups or thread chunks for every core), in the spirit of nn-JIT.web's filter.
Points are ordered by a prior (most promising first) after the default, so the first N are
what a bundle ships for on-device tuning (`nnjit compile --candidates N`).

Spaces are looked up with `nnjit.tuning.plugins.get_space(kind, target)` (and a kernel's
ordered space with `plugins.space_for(info, device)`); the built-in ones are listed at the
bottom of this file (BUILTIN_SPACES) and plugins may replace them (docs/tuning.md).

A WGSL matmul whose B weight is stored as float16 (input dtype "f16", nnjit/compact.py) also
gets the option `f16` on a device with "shader-f16": 1 reads B as f16 (f32 arithmetic), 2 also
multiplies and accumulates in f16. Not in the lowering yet: subgroup operations (device
feature "subgroup").
"""

from __future__ import annotations

import math
import os
import platform
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from nnjit.targets import pipeline_text, target_named
from nnjit.tuning.kernels import KernelInfo

Point = dict[str, Any]
Space = Callable[[KernelInfo, "DeviceInfo"], list[Point]]

MAX_POINTS = 48
"""No space returns more points than this (a lite space: a few dozen, never thousands)."""

WEBGPU_DEFAULT_LIMITS = {
    "max-compute-workgroup-storage-size": 16384,
    "max-compute-invocations-per-workgroup": 256,
    "max-compute-workgroup-size-x": 256,
    "max-compute-workgroup-size-y": 256,
    "max-compute-workgroups-per-dimension": 65535,
    "max-storage-buffer-binding-size": 134217728,
    "max-buffer-size": 268435456,
}
"""WebGPU's default limits: what every browser device grants without asking."""


# ---------------------------------------------------------------------------------- device


@dataclass
class DeviceInfo:
    """What a space may know about the device.

    target: "wgsl" | "wasm". limits: WebGPU limit names -> values (wgsl). features: WebGPU
    features, or Wasm features ("simd128", "relaxed-simd", "threads"). threads: Wasm worker
    threads. l1_bytes / l2_bytes: per-core data cache sizes. simd_registers: v128 registers of
    the host ISA (16 on x86-64, 32 on aarch64). fingerprint: the dict that names the device for
    tuning records (see records.device_key)."""

    target: str
    limits: dict[str, int] = field(default_factory=dict)
    features: set[str] = field(default_factory=set)
    threads: int = 1
    l1_bytes: int = 32 * 1024
    l2_bytes: int = 1024 * 1024
    simd_registers: int = 16
    fingerprint: dict[str, Any] = field(default_factory=dict)

    def limit(self, name: str) -> int:
        return int(self.limits.get(name, WEBGPU_DEFAULT_LIMITS.get(name, 0)))

    @classmethod
    def generic(cls, target: str) -> DeviceInfo:
        """A device every browser has: WebGPU default limits; Wasm SIMD with relaxed SIMD
        (both on and off are candidates), 4 threads, 32 KiB L1, 1 MiB L2, 16 registers."""
        if target == "wgsl":
            return cls("wgsl", dict(WEBGPU_DEFAULT_LIMITS), set(), fingerprint={"generic": "webgpu"})
        return cls("wasm", {}, {"simd128", "relaxed-simd", "threads"}, threads=4,
                   fingerprint={"generic": "wasm"})  # fmt: skip


def host_cpu() -> dict[str, Any]:
    """CPU model, core count, per-core L1d/L2 sizes and SIMD register count of this host."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    caches = {"l1": 32 * 1024, "l2": 1024 * 1024}
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for idx in sorted(os.listdir(base)):
            if not idx.startswith("index"):
                continue

            def rd(name: str, idx: str = idx) -> str:
                with open(f"{base}/{idx}/{name}") as f:
                    return f.read().strip()

            level, typ, size = rd("level"), rd("type"), rd("size")
            m = re.match(r"(\d+)([KMG]?)", size)
            if not m:
                continue
            n = int(m.group(1)) * {"": 1, "K": 1024, "M": 1 << 20, "G": 1 << 30}[m.group(2)]
            if level == "1" and typ in ("Data", "Unified"):
                caches["l1"] = n
            elif level == "2":
                caches["l2"] = n
    except OSError:
        pass
    arch = platform.machine().lower()
    regs = 32 if arch in ("aarch64", "arm64") else 16
    return {"model": model, "cores": os.cpu_count() or 1, "arch": arch,
            "l1_bytes": caches["l1"], "l2_bytes": caches["l2"], "simd_registers": regs}  # fmt: skip


# ---------------------------------------------------------------------------------- replay


def replay_pipeline(target: str, options: Point, convert: bool = False) -> str:
    """The pass pipeline that lowers a kernel under `options`, printed from its passes
    (Target.schedule_passes): convert-nn-tensor-to-nn-loop{target=T k=v ...}, then the
    web-level conversion when `convert` is set or the point sets one of its options."""
    return pipeline_text(target_named(target).schedule_passes(options, convert))


def replay_line(record: dict, kernel_file: str | None = None) -> str:
    """The nnjit-opt command that rebuilds a record's (or a point's) kernel from its standalone
    module: `nnjit-opt KERNEL.mlir -p '<replay_pipeline>' -t nnjit-wgsl|nnjit-wat`.
    `record` is a tuning record ({"target", "options", "signature"}) or {"target", "options"}."""
    target = target_named(record["target"])
    path = kernel_file or f"{record.get('signature', 'kernel')}.mlir"
    passes = target.schedule_passes(record.get("options", {}), convert=True)
    return f"nnjit-opt {path} -p '{pipeline_text(passes)}' -t {target.printer}"


# ----------------------------------------------------------------------------------- tools


def _divisors_near(n: int, values: Iterable[int], waste: float) -> list[int]:
    """Values v with ceil(n/v)*v <= n*(1+waste) (they divide or nearly divide n)."""
    out = []
    for v in values:
        if v <= 0:
            continue
        if math.ceil(n / v) * v <= n * (1 + waste) + 1e-9:
            out.append(v)
    return out


def finish(points: list[Point], limit: int = MAX_POINTS) -> list[Point]:
    """`{}` first, duplicates removed, at most `limit` points (the list is in prior order)."""
    out: list[Point] = [{}]
    seen = {_key({})}
    for p in points:
        k = _key(p)
        if k not in seen:
            seen.add(k)
            out.append(p)
        if len(out) >= limit:
            break
    return out


def _key(p: Point) -> str:
    return repr(sorted((k, tuple(v) if isinstance(v, (list, tuple)) else v) for k, v in p.items()))


def product(axes: list[tuple[str, list[Any]]], keep: Callable[[Point], bool] | None = None,
            score: Callable[[Point], float] | None = None) -> list[Point]:  # fmt: skip
    """The filtered product of option axes ([(key, values)]; a value None leaves the key
    unset = the default), sorted by `score` (lower first) and then by axis order."""
    points: list[Point] = [{}]
    for key, values in axes:
        nxt = []
        for p in points:
            for v in values:
                q = dict(p)
                if v is not None:
                    q[key] = v
                nxt.append(q)
        points = nxt
    if keep is not None:
        points = [p for p in points if keep(p)]
    if score is not None:
        points = sorted(points, key=score)  # stable: ties keep the product order
    return points


def _reduce_product(axes: list[tuple[str, list[Any]]], budget: int) -> list[tuple[str, list[Any]]]:
    """Trims the value lists (from the end: least promising) until the product fits `budget`."""
    axes = [(k, list(v)) for k, v in axes]
    while math.prod(len(v) for _, v in axes) > budget:
        k, v = max(axes, key=lambda kv: len(kv[1]))
        if len(v) <= 1:
            break
        v.pop()
    return axes


# ---------------------------------------------------------------------------------- matmul


WASM_REG_PRIOR_N: tuple[tuple[int, int], ...] = (
    (2, 16), (6, 8), (3, 16), (4, 12), (5, 8), (4, 8), (3, 12), (2, 12), (3, 8), (2, 8),
    (1, 16), (8, 4), (6, 4), (4, 4),
)  # fmt: skip
"""Wasm register tiles (mode n), strongest first. Measured on BERT-base's dense shapes
(lowering/gemm/wasm.py and plan.py docstrings, bench/wasm_matmul; 2-core Xeon): in Chromium 2x16 (the default) >
6x8 > 4x8, 3x8; on wasmtime 3x16 and 4x12 (12 accumulators) lead, 1.2-1.3x over 2x16 for
K = 3072, within a few percent for K = 768."""

WASM_TILE_PRIOR: tuple[tuple[int, int], ...] = (
    (128, 128), (128, 64), (64, 128), (32, 256), (64, 256), (32, 64), (64, 64), (16, 64),
    (32, 128), (128, 32), (32, 32), (8, 64),
)  # fmt: skip
"""Wasm macro tiles (rows x columns), most promising first (after the default rule: reg_n
columns by every row whose A block fits 2 MiB)."""


def _even(total: int, tile: int, unit: int) -> int:
    """The tile the Wasm matmul lowering uses for a requested one (lowering/gemm/plan.py `_even_tile`):
    a multiple of `unit` giving the same number of tiles, as even as possible."""
    tile = max(unit, min(tile, -(-total // unit) * unit))
    while True:
        nt = -(-total // tile)
        per_tile = -(-total // nt)  # ceil(total / nt)
        t = -(-per_tile // unit) * unit
        if t == tile:
            return t
        tile = t


def wasm_matmul(info: KernelInfo, device: DeviceInfo) -> list[Point]:
    """Wasm matmul / gemm / conv: register tile (reg_m x reg_n floats = f32x4 accumulators),
    macro tile (the split over threads and the cache blocking), k unroll, relaxed SIMD.

    Rules: accumulators + B vectors <= the host's SIMD registers (16 on x86-64; the A splat
    may be folded into the FMA's operand, so 3x16 = 12 + 4 is in) and at least 4
    accumulators (FMA latency); reg divides or nearly divides M and N (<= 10% recomputed);
    the A panel reg_m x K fits L1 and the B panel K x tile_n half of L2; the macro tiles
    split evenly over the threads (a multiple of the thread count, or >= 8 per thread);
    relaxed SIMD only when the device has it.

    Order (strong points first; `plugins.space_for` then puts points one option away from the
    default before the others, stably): each other register tile with its own default macro
    tile and the default k unroll (2); macro tiles for the default register tile; macro tiles
    for the three strongest other register tiles; k unroll 4 and 1 (2 is the default and
    measured best); plain mul + add instead of relaxed FMA as a probe. Points that lower to
    the same (reg, tile) as an earlier one are left out."""
    g = info.geometry
    if "M" not in g:
        return [{}]
    M, N, K, batch, mode = g["M"], g["N"], g["K"], g.get("batch", 1), g.get("mode", "n")
    if mode == "scalar":
        return [{}]
    regs = device.simd_registers
    threads = max(1, device.threads)
    l1, l2 = device.l1_bytes, device.l2_bytes
    eff = info.default or {}

    reg_opts: list[tuple[int, int]] = []
    if mode == "n":
        for rm, rn in WASM_REG_PRIOR_N:
            acc = rm * rn // 4
            if rm > M or rn > max(4, N // 4 * 4):
                continue
            if acc < 4 or acc + rn // 4 > regs:
                continue
            if not _divisors_near(M, [rm], 0.10) or not _divisors_near(N, [rn], 0.10):
                continue
            if rm * K * 4 > l1:
                continue
            reg_opts.append((rm, rn))
        default_reg = (2, 16)
    else:  # mode k: reg counts k-vector accumulators (rows x columns)
        for rm in (1, 2, 3, 4):
            for rn in (1, 2, 3, 4):
                acc = rm * rn
                if rm > M or rn > N or acc < 2 or acc + rm + rn > regs:
                    continue
                if not _divisors_near(M, [rm], 0.10) or not _divisors_near(N, [rn], 0.10):
                    continue
                reg_opts.append((rm, rn))
        reg_opts.sort(key=lambda r: -(r[0] * r[1]) / (r[0] + r[1]))
        default_reg = (2, 4)
    if isinstance(eff.get("reg"), (list, tuple)) and len(eff["reg"]) == 2:
        default_reg = (int(eff["reg"][0]), int(eff["reg"][1]))
    others = [r for r in reg_opts if r != default_reg]

    def tiles_for(rm: int, rn: int) -> list[list[int]]:
        out: list[list[int]] = []
        seen: set[tuple[int, int]] = set()
        if isinstance(eff.get("tile"), (list, tuple)) and (rm, rn) == default_reg:
            seen.add((int(eff["tile"][0]), int(eff["tile"][1])))
        for tm, tn in WASM_TILE_PRIOR:
            tm_e, tn_e = min(tm, M), min(tn, N)
            chunks = batch * math.ceil(M / tm_e) * math.ceil(N / tn_e)
            if chunks < threads or (chunks % threads and chunks < 8 * threads):
                continue
            if K * tn_e * 4 > l2 // 2:
                continue
            key = (_even(M, tm_e, min(rm, M)), _even(N, tn_e, min(rn, N)))
            if key in seen:
                continue
            seen.add(key)
            out.append([tm_e, tn_e])
        return out

    points: list[Point] = [{"reg": list(r)} for r in others[:6]]
    points += [{"tile": t} for t in tiles_for(*default_reg)[:6]]
    for r in others[:3]:
        points += [{"reg": list(r), "tile": t} for t in tiles_for(*r)[:6]]
    if K >= 8 and mode == "n":
        for ks in (4, 1):
            points.append({"kstep": ks})
            points += [{"reg": list(r), "kstep": ks} for r in others[:2]]
    if "relaxed-simd" in device.features:
        # plain mul + add instead of relaxed FMA: a probe at the default and the strongest
        # other register tiles (it matters on engines / CPUs without a fused multiply-add)
        points += [{"relaxed-simd": False}] + [{"reg": list(r), "relaxed-simd": False} for r in others[:2]]
    for r in others[3:]:  # what room is left: the weaker register tiles' macro tiles
        points += [{"reg": list(r), "tile": t} for t in tiles_for(*r)[:3]]
    return finish(points)


def wgsl_matmul(info: KernelInfo, device: DeviceInfo) -> list[Point]:
    """WGSL matmul / gemm / conv: register tile, workgroup grid (so the workgroup tile), vec4,
    k unroll, shared (workgroup-memory) tiles with their tile_k.

    Rules: reg_m*reg_n <= 64 f32 accumulators per invocation; invocations <= the device's
    maxComputeInvocationsPerWorkgroup and >= 32 (a warp / wave); shared tiles fit
    maxComputeWorkgroupStorageSize; the workgroup tile wastes <= 25% of its area on the
    problem's edge; at least 4 workgroups (occupancy) unless the problem is smaller. A kernel
    whose B is a float16 weight on a device with "shader-f16": f16 1 (B read as f16) on the
    default and the 11 most promising points, then f16 2 (f16 arithmetic, registers only:
    not with shared tiles) on the default and the first 3 points without shared tiles, ahead
    of the float32 points (they move half of B's bytes). Subgroup matmuls are not in the
    lowering yet."""
    g = info.geometry
    if "M" not in g:
        return [{}]
    M, N, K, batch, mode = g["M"], g["N"], g["K"], g.get("batch", 1), g.get("mode", "n")
    max_inv = device.limit("max-compute-invocations-per-workgroup")
    # the lowering caps shared tiles at WebGPU's default 16 KiB (lowering/gemm/plan.py MAX_SHARED_BYTES)
    # even where the device grants more
    max_shared = min(device.limit("max-compute-workgroup-storage-size"), 16384)
    max_grid = device.limit("max-compute-workgroups-per-dimension")
    if mode == "k":
        reg_opts = [(2, 4), (4, 4), (1, 4), (2, 2), (4, 2), (4, 8)]
    else:
        reg_opts = [(4, 8), (4, 4), (8, 8), (2, 8), (8, 4), (2, 4), (1, 4), (4, 16)]
    if mode == "scalar":
        reg_opts = [(4, 4), (2, 2), (4, 8), (8, 4)]
    reg_opts = [r for r in reg_opts if r[0] * r[1] <= 64]
    wg_opts = [(8, 8), (16, 8), (8, 16), (16, 16), (4, 8), (8, 4), (16, 4), (4, 16), (32, 8), (8, 32)]

    def fits(rm: int, rn: int, tx: int, ty: int) -> bool:
        inv = tx * ty
        if inv > max_inv or inv < 32 or tx > device.limit("max-compute-workgroup-size-x"):
            return False
        tm, tn = ty * rm, tx * rn
        grid = (batch, math.ceil(M / tm), math.ceil(N / tn))
        if max(grid) > max_grid:
            return False
        waste = (math.ceil(M / tm) * tm * math.ceil(N / tn) * tn) / (M * N)
        if waste > 1.25 and (tm < 2 * M or tn < 2 * N):
            if not (tm >= M and tn >= N):
                return False
        nwg = math.prod(grid)
        return nwg >= 4 or (tm >= M and tn >= N and nwg >= 1)

    base: list[Point] = []
    for rm, rn in reg_opts:
        for tx, ty in wg_opts:
            if fits(rm, rn, tx, ty):
                base.append({"reg": [rm, rn], "workgroup": [tx, ty]})
    base = base[:24]
    points = list(base)
    # measured best on an H100 (bench/gpu_matmul.py), tried first: double-buffered staged
    # tiles for large problems, k slices (workgroup z) for small M x N with a long K
    if mode != "scalar":
        gpu: list[Point] = []
        if M >= 64 and N >= 128 and 128 <= max_inv and 12288 <= max_shared:
            gpu.append({"shared": 2, "tile": [64, 128, 8], "reg": [8, 8], "workgroup": [16, 8]})
        if min(M, N) >= 32 and 128 <= max_inv and 12288 <= max_shared:
            gpu.append({"shared": 2, "tile": [32, 32, 16], "reg": [4, 4], "workgroup": [8, 8, 2]})
        if K >= 256 and 256 <= max_inv and 1024 <= max_shared:
            gpu.append({"reg": [2, 4], "workgroup": [8, 4, 8], "kstep": 8})
        points = gpu + points
    # k unroll and vec variants on the first (most promising) bases
    for p in base[:4]:
        if K >= 8:
            points.append({**p, "kstep": 8 if mode == "n" else 2})
            points.append({**p, "kstep": 1 if mode == "n" else 4})
    points.append({"vec": 1})
    # shared tiles
    for p in base[:8]:
        rm, rn = p["reg"]
        tx, ty = p["workgroup"]
        tm, tn = ty * rm, tx * rn
        for tk in (16, 8, 32):
            if 4 * tk * (tm + tn) <= max_shared and tk <= max(8, K):
                points.append({**p, "tile": [tm, tn, tk], "shared": 1})
                break
    if "shader-f16" in device.features and any(s["dtype"] == "f16" for s in info.inputs):
        regs = [p for p in points if not p.get("shared")]
        points = (
            [{"f16": 1}] + [{**p, "f16": 1} for p in points[:11]]
            + [{"f16": 2}] + [{**p, "f16": 2} for p in regs[:3]] + points
        )  # fmt: skip
    return finish(points)


# ------------------------------------------------------------------------ row reductions


def wgsl_rows(info: KernelInfo, device: DeviceInfo) -> list[Point]:
    """softmax / layer_norm / reduce on WGSL: invocations per row (a power of two), rows per
    workgroup, vec. Rules: invocations x rows <= maxComputeInvocationsPerWorkgroup; at least
    one vector per invocation (no idle lanes); rows divide the row count or waste <= 10%."""
    g = info.geometry
    if "row_len" not in g or not g.get("trailing", True):
        return wgsl_pointwise(info, device)
    R, n = g["rows"], g["row_len"]
    max_inv = device.limit("max-compute-invocations-per-workgroup")
    points: list[Point] = []
    for vec in (None, 1):
        v = 4 if vec is None else 1
        units = math.ceil(n / v)
        for w in (64, 32, 128, 256, 16):
            if w > max(16, units) or w > max_inv:
                continue
            for rows in (None, 2, 4, 8):
                r = rows or 1
                if w * r > max_inv or r > R or not _divisors_near(R, [r], 0.10):
                    continue
                p: Point = {"workgroup": [w]}
                if rows:
                    p["rows"] = rows
                if vec:
                    p["vec"] = vec
                points.append(p)
    return finish(points)


def wasm_rows(info: KernelInfo, device: DeviceInfo) -> list[Point]:
    """softmax / layer_norm / reduce on Wasm: rows per thread chunk, vec. Rules: chunks >=
    threads and balanced; a chunk's rows fit L1."""
    g = info.geometry
    if "row_len" not in g or not g.get("trailing", True):
        return wasm_pointwise(info, device)
    R, n = g["rows"], g["row_len"]
    threads = max(1, device.threads)
    points: list[Point] = []
    for rows in (None, 2, 4, 8, 16, 32, 64):
        r = rows or 1
        chunks = math.ceil(R / r)
        if chunks < threads or (chunks % threads and chunks < 8 * threads):
            continue
        if r * n * 4 > device.l1_bytes and rows:
            continue
        for vec in (None, 1):
            p: Point = {}
            if rows:
                p["rows"] = rows
            if vec:
                p["vec"] = vec
            points.append(p)
    # scalar last: it rarely wins
    points.sort(key=lambda p: p.get("vec", 4) == 1)
    return finish(points)


# ---------------------------------------------------------------------------- pointwise


def wgsl_pointwise(info: KernelInfo, device: DeviceInfo) -> list[Point]:
    """elementwise and data movement on WGSL: workgroup size, units per workgroup (tile), vec.
    Rules: workgroup <= maxComputeInvocationsPerWorkgroup; at least 4 workgroups unless the
    output is small; tile a multiple of workgroup x vec."""
    g = info.geometry
    total = g.get("elements", math.prod(info.output["shape"]))
    max_inv = device.limit("max-compute-invocations-per-workgroup")
    vec_ok = info.output["shape"] and info.output["shape"][-1] % 4 == 0
    points: list[Point] = []
    for vec in ((None, 1) if vec_ok else (None,)):
        v = 4 if (vec is None and vec_ok) else 1
        units = math.ceil(total / v)
        for w in (64, 128, 256, 32):
            if w > max_inv:
                continue
            for per in (1, 2, 4, 8):
                t = w * per
                groups = math.ceil(units / t)
                if groups < 4 and per > 1:
                    continue
                if w > units and w != 64:
                    continue
                p: Point = {"workgroup": [w], "tile": [t * v]}
                if vec:
                    p["vec"] = vec
                points.append(p)
    return finish(points)


def wasm_pointwise(info: KernelInfo, device: DeviceInfo) -> list[Point]:
    """elementwise and data movement on Wasm: rows per thread chunk, or flat chunks of `tile`
    elements; vec. Rules: chunks >= threads and balanced; a chunk fits L1."""
    g = info.geometry
    shape = info.output["shape"]
    total = g.get("elements", math.prod(shape))
    inner = shape[-1] if shape else 1
    rows_total = total // max(1, inner)
    threads = max(1, device.threads)
    points: list[Point] = []
    for rows in (None, 2, 4, 8, 16, 32, 64):
        r = rows or 1
        chunks = math.ceil(rows_total / r)
        if chunks < threads or (chunks % threads and chunks < 8 * threads):
            continue
        if rows and r * inner * 4 > device.l1_bytes:
            continue
        points.append({"rows": rows} if rows else {})
    for tile in (1024, 2048, 4096, 8192, 16384, 512):
        chunks = math.ceil(total / tile)
        if tile >= total or chunks < threads or (chunks % threads and chunks < 8 * threads):
            continue
        if tile * 4 > device.l1_bytes:
            continue
        points.append({"tile": [tile]})
    if inner >= 4:
        points += [{**p, "vec": 1} for p in list(points)[:3]] + [{"vec": 1}]
    return finish(points)


# ---------------------------------------------------------------------------- registration

BUILTIN_SPACES: dict[tuple[str, str], Space] = {}
for _kind in ("matmul", "gemm", "conv"):
    BUILTIN_SPACES[(_kind, "wasm")] = wasm_matmul
    BUILTIN_SPACES[(_kind, "wgsl")] = wgsl_matmul
for _kind in ("softmax", "layer_norm", "reduce"):
    BUILTIN_SPACES[(_kind, "wasm")] = wasm_rows
    BUILTIN_SPACES[(_kind, "wgsl")] = wgsl_rows
for _kind in ("elementwise", "gather", "gather_nd", "transpose", "slice", "concat", "expand"):
    BUILTIN_SPACES[(_kind, "wasm")] = wasm_pointwise
    BUILTIN_SPACES[(_kind, "wgsl")] = wgsl_pointwise


def default_only(info: KernelInfo, device: DeviceInfo) -> list[Point]:
    """The space of a kind nobody described: the default schedule alone."""
    return [{}]


__all__ = [
    "DeviceInfo", "Point", "Space", "replay_line", "replay_pipeline",
    "wasm_matmul", "wgsl_matmul", "wasm_rows", "wgsl_rows", "wasm_pointwise", "wgsl_pointwise",
    "default_only", "host_cpu", "product", "finish", "MAX_POINTS", "WEBGPU_DEFAULT_LIMITS",
]  # fmt: skip
