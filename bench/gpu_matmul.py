"""WGSL matmul on a real GPU through wgpu-py, against cuBLAS fp32 (TF32 off) in the same run.

    python bench/gpu_matmul.py [--shapes 4096x4096x4096,128x768x768] [--schedules FILE] [--json OUT]
    python bench/gpu_matmul.py --smoke    # or NNJIT_BENCH_SMOKE=1: 64x64x64 and 2x32x16x32, two
        # schedules, 2 runs, on any adapter (lavapipe); cuBLAS skipped with a line without CUDA

For each shape, every schedule (convert-nn-tensor-to-nn-loop options; the default first) is
lowered, compiled by the driver and timed with timestamp queries (median of --repeat runs after
warm-up); its output is checked against torch on the same inputs. cuBLAS runs through torch.matmul
with TF32 disabled, timed with CUDA events. Prints a markdown table with GFLOPS and the ratio to
cuBLAS; the device is named in the output.

A schedules file has one option string per line; `SHAPE[,SHAPE...]: options` applies a line
to those shapes only (BxMxKxN or MxKxN, as in --shapes); `#` starts a comment.
DEFAULT_SCHEDULES holds the best schedules measured so far, per shape family.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")

DEFAULT_SHAPES = "4096x4096x4096,128x768x768,128x768x3072,128x3072x768,12x128x64x128,12x128x128x64"
DEFAULT_SCHEDULES = [
    "",
    # large problems: double-buffered k-major tiles (H100, 4096^3: 0.83-0.85 of cuBLAS)
    "shared=2 tile=64,128,8 reg=8,8 workgroup=16,8",
    "shared=2 tile=64,256,8 reg=8,16 workgroup=16,8",
    "shared=2 tile=128,128,8 reg=8,16 workgroup=8,16",
    # M = 128 (BERT-base dense layers): 8 k slices, A vectors along k (0.95-2.1)
    "reg=2,4 workgroup=8,4,8 kstep=8",
    "reg=4,4 workgroup=16,4,4",
    # batched attention products (3-4x)
    "shared=2 tile=32,32,16 reg=4,4 workgroup=8,8,2",
    "shared=2 tile=16,32,16 reg=2,4 workgroup=8,8",
]


def for_shape(line: str, shape: str) -> str | None:
    """The options of a schedules line for `shape` ("" for the default; None: not this
    shape's line)."""
    if ":" not in line:
        return line
    shapes, opts = line.split(":", 1)
    wanted = {parse_shape(x.strip()) for x in shapes.split(",")}
    return opts.strip() if parse_shape(shape) in wanted else None


def parse_shape(s: str) -> tuple[int, int, int, int]:
    dims = [int(d) for d in s.split("x")]
    return (1, *dims) if len(dims) == 3 else tuple(dims)  # type: ignore[return-value]


def matmul_module(b: int, m: int, k: int, n: int):
    from xdsl.parser import Parser

    from nnjit.registry import make_context

    lhs = f"{b}x{m}x{k}xf32" if b > 1 else f"{m}x{k}xf32"
    rhs = f"{b}x{k}x{n}xf32" if b > 1 else f"{k}x{n}xf32"
    out = f"{b}x{m}x{n}xf32" if b > 1 else f"{m}x{n}xf32"
    text = f"""
func.func @main(%a: tensor<{lhs}>, %b: tensor<{rhs}>) -> tensor<{out}> {{
  %c = nn_tensor.matmul %a, %b : (tensor<{lhs}>, tensor<{rhs}>) -> tensor<{out}>
  func.return %c : tensor<{out}>
}}"""
    return Parser(make_context(), text).parse_module()


def cublas_time(a: np.ndarray, bm: np.ndarray, repeat: int, half: bool = False) -> tuple[float, np.ndarray]:
    """(median seconds, output as float32) of torch.matmul on CUDA: fp32 with TF32 off, or fp16
    (both operands fp16, torch's default reduction)."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dt = torch.float16 if half else torch.float32
    ta, tb = torch.from_numpy(a).cuda().to(dt), torch.from_numpy(bm).cuda().to(dt)
    for _ in range(3):
        c = torch.matmul(ta, tb)
    torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        c = torch.matmul(ta, tb)
        e.record()
        torch.cuda.synchronize()
        times.append(s.elapsed_time(e) / 1000)
    return statistics.median(times), c.float().cpu().numpy()


def main() -> int:
    from bench.smoke import add_flag, cuda_missing

    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default=DEFAULT_SHAPES)
    ap.add_argument("--schedules", help="file with one option string per line")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--json", help="write results as JSON here")
    ap.add_argument("--no-cublas", action="store_true")
    add_flag(ap)
    args = ap.parse_args()
    schedules = DEFAULT_SCHEDULES
    if args.smoke:
        args.shapes, args.repeat, schedules = "64x64x64,2x32x16x32", 2, ["", "reg=4,4 workgroup=16,4,4"]
        why = None if args.no_cublas else cuda_missing()
        if why is not None:
            print(f"smoke: cuBLAS side skipped ({why})")
            args.no_cublas = True
    if args.schedules:
        schedules = [""] + [ln.split("#")[0].strip() for ln in open(args.schedules)]
        schedules = [s for s in schedules if s] or [""]

    from nnjit.compiler import kernels_of, lower_for_backend
    from nnjit.runtime.webgpu import WebGPURuntime

    rt = WebGPURuntime()
    info = rt.info
    print(f"device: {info.get('name')} ({info.get('backend')}, {info.get('description')})")
    lim = info.get("limits", {})
    print("limits: " + ", ".join(f"{k}={lim.get(k)}" for k in (
        "max-compute-workgroup-storage-size", "max-compute-invocations-per-workgroup",
    )) + f"; features: {', '.join(info.get('features', []))}")  # fmt: skip
    rows = []
    print("\n| shape (BxMxKxN) | schedule | GFLOPS | vs cuBLAS | rel. err | gen (ms) | pipeline (ms) |")
    print("|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    failed = 0
    for s in args.shapes.split(","):
        b, m, k, n = parse_shape(s)
        flops = 2.0 * b * m * n * k
        a = rng.standard_normal((b, m, k) if b > 1 else (m, k)).astype(np.float32)
        bm = rng.standard_normal((b, k, n) if b > 1 else (k, n)).astype(np.float32)
        if args.no_cublas:
            ref = (a.astype(np.float64) @ bm.astype(np.float64)).astype(np.float32)
            cub = None
        else:
            cub, ref = cublas_time(a, bm, args.repeat)
            print(f"| {s} | cuBLAS fp32 (TF32 off) | {flops / cub / 1e9:.0f} | 1.00 | - | - | - |")
            rows.append({"shape": s, "schedule": "cublas", "seconds": cub})
        buf_a, buf_b = rt.create_buffer(a.nbytes), rt.create_buffer(bm.nbytes)
        rt.write_buffer(buf_a, a)
        rt.write_buffer(buf_b, bm)
        buf_c = rt.create_buffer(ref.nbytes)
        module = matmul_module(b, m, k, n)
        for opts in [""] + [o for o in map(lambda x: for_shape(x, s), schedules) if o]:
            try:
                t0 = time.perf_counter()
                lowered = lower_for_backend(module, "webgpu", opts)
                ((_, src, manifest),) = kernels_of(lowered, "webgpu")
                gen = time.perf_counter() - t0
                t0 = time.perf_counter()
                kern = rt.create_kernel(src, manifest)
                pipe = time.perf_counter() - t0
                rt.write_buffer(buf_c, np.full(ref.shape, np.nan, np.float32))
                rt.dispatch(kern, [buf_a, buf_b, buf_c])
                rt.flush()
                out = rt.read_buffer(buf_c, np.float32, ref.shape)
                err = float(np.max(np.abs(out - ref)) / np.max(np.abs(ref)))
                times = rt.time_kernel(kern, [buf_a, buf_b, buf_c], args.repeat)
                t = statistics.median(times)
            except Exception as e:  # noqa: BLE001 - a benchmark reports and goes on
                print(f"| {s} | `{opts or 'default'}` | failed: {str(e).splitlines()[0][:80]} |||||")
                failed += 1
                continue
            ratio = f"{cub / t:.2f}" if cub else "-"
            print(f"| {s} | `{opts or 'default'}` | {flops / t / 1e9:.0f} | {ratio} | {err:.1e} | "
                  f"{gen * 1000:.1f} | {pipe * 1000:.0f} |", flush=True)  # fmt: skip
            rows.append({"shape": s, "schedule": opts, "seconds": t, "err": err, "gen": gen})
    if args.json:
        Path(args.json).write_text(json.dumps({"device": info, "rows": rows}, indent=1, default=str))
    print_best(rows)
    return 1 if args.smoke and failed else 0


def print_best(rows: list[dict]) -> None:
    """The fastest correct schedule per shape (and the default), against cuBLAS."""
    print("\n| shape | cuBLAS GFLOPS | default | best | best schedule |\n|---|---|---|---|---|")
    for shape in dict.fromkeys(r["shape"] for r in rows):
        rs = [r for r in rows if r["shape"] == shape]
        b, m, k, n = parse_shape(shape)
        gf = 2.0 * b * m * n * k / 1e9
        cub = next((r["seconds"] for r in rs if r["schedule"] == "cublas"), None)
        ok = [r for r in rs if r["schedule"] != "cublas" and r.get("err", 1) < 1e-4]
        if not ok:
            continue
        best = min(ok, key=lambda r: r["seconds"])
        dflt = next((r for r in ok if r["schedule"] == ""), None)

        def cell(r: dict | None) -> str:
            if r is None:
                return "-"
            ratio = f" ({cub / r['seconds']:.2f})" if cub else ""
            return f"{gf / r['seconds']:.0f}{ratio}"

        cub_s = f"{gf / cub:.0f}" if cub else "-"
        print(f"| {shape} | {cub_s} | {cell(dflt)} | {cell(best)} | `{best['schedule'] or 'default'}` |")


if __name__ == "__main__":
    sys.exit(main())
