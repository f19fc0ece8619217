"""Every point of the WGSL schedule spaces of a set of kernels, timed on a real GPU: the data
behind the WebGPU prior (nnjit/tuning/prior_data/, made by tools/make_prior.py).

    python bench/gpu_space.py KERNELS.json [--matmul 4096x4096x4096,...] [--out space.json]
    python bench/gpu_space.py --smoke    # or NNJIT_BENCH_SMOKE=1: the tiny BERT of tests/models
        # and one 64x64x64 matmul on any adapter (lavapipe), 3 points per kernel

KERNELS.json comes from `bench/tuning_bert.py --save-kernels` (standalone kernel modules, no
weights), so the GPU machine needs no model file. For each kernel the points are the union of
the space for WebGPU's default limits (what `nnjit compile` ships) and the space for the
adapter's own limits; each is lowered, compiled by the driver and timed by the wgpu runner (its
output checked against the default schedule's). For matmul kernels cuBLAS fp32 (TF32 off) on
the same (batch, M, K, N) is timed too, where torch has CUDA. The JSON keeps every trial:
{"device": {...}, "kernels": [{"signature", "kind", "geometry", "launches", "flops",
"cublas_ms", "trials": [{"options", "ms", "error"}]}]}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")


def matmul_infos(shapes: str) -> list:
    """KernelInfos of plain matmuls BxMxKxN (or MxKxN)."""
    from bench.gpu_matmul import matmul_module, parse_shape
    from nnjit.pipeline import TENSOR_PIPELINE, run_pipeline
    from nnjit.tuning.kernels import model_kernels

    out = []
    for s in [x for x in shapes.split(",") if x]:
        module = matmul_module(*parse_shape(s))
        run_pipeline(module, TENSOR_PIPELINE)
        out.extend(i for i in model_kernels(module, "webgpu") if i.kind in ("matmul", "gemm"))
    return out


def cublas_ms(g: dict, repeat: int) -> float | None:
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    torch.backends.cuda.matmul.allow_tf32 = False
    b, m, k, n = g.get("batch", 1), g["M"], g["K"], g["N"]
    ta = torch.randn((b, m, k), device="cuda")
    tb = torch.randn((b, k, n), device="cuda")
    for _ in range(3):
        torch.matmul(ta, tb)
    torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        torch.matmul(ta, tb)
        e.record()
        torch.cuda.synchronize()
        times.append(s.elapsed_time(e))
    return statistics.median(times)


def main() -> int:
    from bench.smoke import TINY_DEFAULT, add_flag

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kernels", nargs="?", help="JSON from bench/tuning_bert.py --save-kernels")
    ap.add_argument("--matmul", default="", help="extra plain matmuls, BxMxKxN or MxKxN, comma-separated")
    ap.add_argument("--kinds", default="", help="kernel kinds of KERNELS.json to sweep (default: all)")
    ap.add_argument("--out", default=None, help="write every trial as JSON (for tools/make_prior.py)")
    ap.add_argument("--repeat", type=int, default=20, help="cuBLAS runs")
    ap.add_argument("--max-points", type=int, default=0, help="at most this many points per kernel (0: all)")
    ap.add_argument("--shipped", type=int, default=0, metavar="N",
                    help="time only the default and the first N points of the GPU prior's order (what "
                         "`nnjit compile` ships with N candidates), not the whole space")  # fmt: skip
    ap.add_argument("--table", metavar="SPACE.json", help="measure nothing: print the table of an earlier run's JSON "
                    "(same KERNELS.json and --matmul), also with each kernel's own measurement left out of the prior")
    add_flag(ap)
    args = ap.parse_args()

    from nnjit.errors import NNJitError
    from nnjit.tuning.kernels import KernelInfo, lower_candidate, model_kernels
    from nnjit.tuning.plugins import get_runner, space_for
    from nnjit.tuning.space import DeviceInfo, finish
    from nnjit.tuning.tuner import load_fused_model

    if args.smoke:
        module, _ = load_fused_model(TINY_DEFAULT)
        infos = model_kernels(module, "webgpu")
        args.matmul, args.max_points = args.matmul or "64x64x64", args.max_points or 3
    elif args.kernels:
        infos = [KernelInfo.from_json(d) for d in json.loads(Path(args.kernels).read_text())]
    else:
        infos = []
    kinds = {k for k in args.kinds.split(",") if k}
    infos = [i for i in infos if not kinds or i.kind in kinds] + matmul_infos(args.matmul)
    if not infos:
        ap.error("no kernels: give KERNELS.json and/or --matmul")

    if args.table:
        out = json.loads(Path(args.table).read_text())
        by_sig = {k["signature"]: k for k in out["kernels"]}
        infos = [i for i in infos if i.signature in by_sig]
        out["kernels"] = [by_sig[i.signature] for i in infos]
        print_prior_table(out, infos)
        print("\nleave one out (each kernel ordered by a prior made without its own sweep):")
        print_prior_table(out, infos, leave_out=True)
        return 0
    runner = get_runner("wgpu")
    out: dict = {"kernels": []}
    try:
        device = runner.device()
        out["device"] = {"fingerprint": device.fingerprint, "limits": device.limits,
                         "features": sorted(device.features)}  # fmt: skip
        print(f"device: {device.fingerprint}", flush=True)
        generic = DeviceInfo.generic("wgsl")
        for info in infos:
            points = finish(space_for(info, generic) + space_for(info, device), limit=10**6)
            if args.shipped:
                from nnjit.tuning.prior import prior_order

                shipped = finish(space_for(info, generic), limit=10**6)  # (what compile_model ships from)
                points = [{}] + [p for p in prior_order(info, shipped, "gpu") if p != {}][: args.shipped]
            if args.max_points:
                points = points[: args.max_points]
            g = dict(info.geometry)
            flops = 2.0 * g.get("batch", 1) * g["M"] * g["N"] * g["K"] if "M" in g else None
            entry = {"signature": info.signature, "kind": info.kind, "geometry": g,
                     "launches": info.occurrences, "flops": flops,
                     "cublas_ms": cublas_ms(g, args.repeat) if flops else None, "trials": []}  # fmt: skip
            runner.prepare(info, seed=0)
            t0 = time.perf_counter()
            for p in points:
                trial = {"options": p, "ms": None, "error": None}
                try:
                    m = runner.measure(lower_candidate(info, p), timeout=20.0)
                    trial["ms"] = m.score * 1e3
                    trial["median_ms"] = m.median * 1e3
                except NNJitError as e:
                    trial["error"] = "rejected: " + str(e).splitlines()[0]
                except Exception as e:  # noqa: BLE001 - a benchmark records and goes on
                    trial["error"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                entry["trials"].append(trial)
                if args.out:  # (a slow kernel's partial sweep survives a cut too)
                    Path(args.out).write_text(json.dumps({**out, "kernels": out["kernels"] + [entry]}, default=str))
            ok = [t for t in entry["trials"] if t["ms"] is not None]
            best = min(ok, key=lambda t: t["ms"]) if ok else None
            dflt = entry["trials"][0]["ms"] if entry["trials"] else None
            cub = entry["cublas_ms"]
            print(f"{info.kind} {g} x{info.occurrences}: {len(ok)}/{len(points)} points in "
                  f"{time.perf_counter() - t0:.1f} s; default {dflt or float('nan'):.4f} ms, best "
                  f"{best['ms'] if best else float('nan'):.4f} ms {best['options'] if best else ''}"
                  + (f", cuBLAS {cub:.4f} ms" if cub else ""), flush=True)  # fmt: skip
            out["kernels"].append(entry)
            if args.out:  # partial results survive a cut
                Path(args.out).write_text(json.dumps(out, indent=1, default=str))
    finally:
        runner.close()
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1, default=str))
        print(f"wrote {args.out}")
    print_prior_table(out, infos)
    return 0


def print_prior_table(out: dict, infos: list, leave_out: bool = False) -> None:
    """Per kernel, from this run's trials: the default schedule `{}`, what a GPU runs before
    tuning (the first of the prior's order among what `nnjit compile` ships), the best of the
    shipped GPU candidates, and the best of every point measured (the exhaustive best); each as
    a fraction of cuBLAS where it was timed, and as best / it."""
    import tempfile

    from nnjit.targets import TARGETS
    from nnjit.tuning import prior
    from nnjit.tuning.plugins import space_for
    from nnjit.tuning.prior import point_key, prior_order
    from nnjit.tuning.space import DeviceInfo

    n_gpu = dict(TARGETS["webgpu"].default_candidates).get("gpu", 1)
    generic = DeviceInfo.generic("wgsl")
    print("\n| kernel (kind, BxMxKxN or geometry) | x | cuBLAS ms | default `{}` | GPU first (prior) | best of "
          f"{n_gpu} shipped | exhaustive best | shipped / exhaustive |")
    print("|---|---|---|---|---|---|---|---|")
    for info, k in zip(infos, out["kernels"]):
        ms = {point_key(t["options"]): t["ms"] for t in k["trials"] if t["ms"] is not None}
        if not ms:
            continue
        if leave_out:  # the shipped prior less this kernel's own entry
            data = json.loads((prior.DATA_DIR / "wgsl-gpu.json").read_text())
            data["kernels"] = [d for d in data["kernels"] if d.get("signature") != info.signature]
            saved, tmp = prior.DATA_DIR, tempfile.mkdtemp()
            (Path(tmp) / "wgsl-gpu.json").write_text(json.dumps(data))
            prior.DATA_DIR = Path(tmp)
            prior.measured.cache_clear()
            try:
                shipped = prior_order(info, space_for(info, generic), "gpu")[:n_gpu]
            finally:
                prior.DATA_DIR = saved
                prior.measured.cache_clear()
        else:
            shipped = prior_order(info, space_for(info, generic), "gpu")[:n_gpu]
        times = [ms.get(point_key(p)) for p in shipped]
        first = times[0] if times else None
        ship_best = min((t for t in times if t is not None), default=None)
        best = min(ms.values())
        cub = k.get("cublas_ms")
        g = k["geometry"]
        shape = f"{g.get('batch', 1)}x{g['M']}x{g['K']}x{g['N']}" if "M" in g else json.dumps(g, sort_keys=True)

        def cell(t):
            if t is None:
                return "-"
            return f"{t:.4f} ms ({cub / t:.2f} of cuBLAS)" if cub else f"{t:.4f} ms (x{t / best:.2f})"

        ratio = f"{ship_best / best:.2f}" if ship_best else "-"
        print(f"| {k['kind']} {shape} | {k['launches']} | {cub or float('nan'):.4f} | {cell(ms.get('{}'))} | "
              f"{cell(first)} | {cell(ship_best)} | {cell(best)} | {ratio} |")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
