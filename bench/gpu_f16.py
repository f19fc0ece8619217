"""f16 WGSL matmuls on a real GPU through wgpu-py, against cuBLAS fp32 (TF32 off) and fp16, one run.

    python bench/gpu_f16.py [--shapes 4096x4096x4096,128x768x768,...] [--bert SLIM_BUNDLE]
    python bench/gpu_f16.py --smoke    # or NNJIT_BENCH_SMOKE=1: 64x48x40 and 13x40x24, two
        # schedules each, 2 runs, and the tiny BERT of tests/models as a slim f16 bundle, on any
        # adapter with shader-f16 (lavapipe); torch skipped with a line without CUDA

Each shape M x K x N is a matmul whose B is a weight stored as float16 (what `nnjit compile
--weights f16` makes of a model's matmul weights): A is float32 in memory, B float16, C float32.
Every schedule (convert-nn-tensor-to-nn-loop options; `f16=1`: B read as f16, f32 multiply-
accumulate; `f16=2`: f16 multiply-accumulate) is lowered, compiled by the driver and timed
with timestamp queries (median of --repeat runs after warm-up); `f16=0` rows are the float32
kernel on float32 B, for reference. Errors are max |C - C64| / max |C64| against an fp64
product of the float32 A and the float32 B before rounding (so they include B's rounding to
f16), and against fp64 of the f16-rounded B ("err vs B16": the kernel's own arithmetic).
cuBLAS runs through torch.matmul, fp32 with TF32 off and fp16 (both operands fp16, torch's
default reduction), timed with CUDA events in the same process.

`--bert SLIM_BUNDLE`: BERT-base end to end (batch 1, seq 128) from a slim bundle compiled here
with `python bench/gpu_bert.py slim models/bert-legacy.onnx .gpu/bert_f16_slim --weights f16`
(weights regenerated there from a seed), as loaded (each matmul on its class's first
candidate: the f16 twin on a device with shader-f16) and after the page's tuning (--tune
seconds), against PyTorch eager fp32 (TF32 off) and fp16.

Prints one markdown table per part and a compact summary; exits 1 in smoke mode when a
schedule fails.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")

DEFAULT_SHAPES = "4096x4096x4096,128x768x768,128x768x3072,128x3072x768"
LARGE = [  # (M, N >= 1024): double-buffered staged tiles, the best float32 schedules on an H100
    "f16=0 shared=2 tile=64,128,8 reg=8,8 workgroup=16,8",
    "f16=1 shared=2 tile=64,128,8 reg=8,8 workgroup=16,8",
    "f16=1 shared=2 tile=64,256,8 reg=8,16 workgroup=16,8",
    "f16=1 shared=2 tile=128,128,8 reg=8,16 workgroup=8,16",
    "f16=1 shared=2 tile=64,128,16 reg=8,8 workgroup=16,8",
    "f16=2 reg=8,8 workgroup=16,8 kstep=8",
    "f16=2 reg=4,8 workgroup=16,16 kstep=8",
]
SMALL_M = [  # M = 128 (BERT-base's dense layers): k slices in one dispatch
    "f16=0 reg=2,4 workgroup=8,4,8 kstep=8",
    "f16=1 reg=2,4 workgroup=8,4,8 kstep=8",
    "f16=1 reg=4,4 workgroup=16,4,4",
    "f16=1 reg=2,8 workgroup=8,4,8 kstep=8",
    "f16=1 reg=4,8 workgroup=8,8,4 kstep=8",
    "f16=2 reg=2,4 workgroup=8,4,8 kstep=8",
    "f16=2 reg=2,8 workgroup=8,4,8 kstep=8",
    "f16=2 reg=4,8 workgroup=8,8,4 kstep=8",
]
SMOKE = ["f16=1", "f16=2 reg=2,4 workgroup=8,4,2"]


def schedules_for(m: int, n: int) -> list[str]:
    return LARGE if m >= 1024 and n >= 1024 else SMALL_M


def parse(s: str) -> tuple[int, int, int]:
    m, k, n = (int(d) for d in s.split("x"))
    return m, k, n


def f16_module(m: int, k: int, n: int):
    """@main(a) = a @ weight "b": the fused matmul tagged as reading a float16 weight."""
    from xdsl.parser import Parser

    from nnjit.compact import mark_f16_weights
    from nnjit.pipeline import TENSOR_PIPELINE, run_pipeline
    from nnjit.registry import make_context

    text = f"""
func.func @main(%a: tensor<{m}x{k}xf32>) -> tensor<{m}x{n}xf32> {{
  %b = nn_tensor.weight "b" : tensor<{k}x{n}xf32>
  %c = nn_tensor.matmul %a, %b : (tensor<{m}x{k}xf32>, tensor<{k}x{n}xf32>) -> tensor<{m}x{n}xf32>
  func.return %c : tensor<{m}x{n}xf32>
}}"""
    module = Parser(make_context(), text).parse_module()
    run_pipeline(module, TENSOR_PIPELINE)
    mark_f16_weights(module, lambda key: True)
    return module


def fp64_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b in float64 (on the GPU through torch when CUDA is there: 4096^3 in fp64 on the CPU
    takes seconds)."""
    try:
        import torch

        if torch.cuda.is_available():
            return (torch.from_numpy(a).cuda().double() @ torch.from_numpy(b).cuda().double()).cpu().numpy()
    except ImportError:
        pass
    return a.astype(np.float64) @ b.astype(np.float64)


def rel(x: np.ndarray, ref: np.ndarray) -> float:
    x = np.asarray(x, np.float64)
    if not np.all(np.isfinite(x)):
        return float("inf")
    return float(np.max(np.abs(x - ref)) / np.max(np.abs(ref)))


def cublas(a: np.ndarray, b: np.ndarray, half: bool, repeat: int) -> tuple[float, np.ndarray]:
    """(median seconds, output) of torch.matmul on CUDA: fp32 with TF32 off, or fp16."""
    from bench.gpu_matmul import cublas_time

    return cublas_time(a, b, repeat, half)


def gemms(rt, shapes: list[str], repeat: int, use_torch: bool, smoke: bool) -> tuple[list[dict], int]:
    from nnjit.pipeline import kernels_of, lower_for_backend

    rows: list[dict] = []
    failed = 0
    rng = np.random.default_rng(0)
    print("\n| shape (MxKxN) | kernel | TFLOPS | vs cuBLAS fp32 | vs cuBLAS fp16 | err vs fp64 | err vs B16 | gen (ms) |")
    print("|---|---|---|---|---|---|---|---|")
    for s in shapes:
        m, k, n = parse(s)
        tflop = 2.0 * m * n * k / 1e12
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32)
        b16 = b.astype(np.float16)
        ref = fp64_product(a, b)
        ref16 = fp64_product(a, b16.astype(np.float32))
        cub: dict[str, float] = {}
        if use_torch:
            for name, half in (("fp32", False), ("fp16", True)):
                t, out = cublas(a, b, half, repeat)
                cub[name] = t
                print(f"| {s} | cuBLAS {name}{' (TF32 off)' if not half else ''} | {tflop / t:.1f} | "
                      f"{cub['fp32'] / t:.2f} | {'1.00' if half else '-'} | {rel(out, ref):.1e} | - | - |")  # fmt: skip
                rows.append({"shape": s, "kernel": f"cublas {name}", "seconds": t, "err": rel(out, ref)})
        buf_a, buf_c = rt.create_buffer(a.nbytes), rt.create_buffer(4 * m * n)
        buf_b = {"f32": rt.create_buffer(b.nbytes), "f16": rt.create_buffer(b16.nbytes)}
        rt.write_buffer(buf_a, a)
        rt.write_buffer(buf_b["f32"], b)
        rt.write_buffer(buf_b["f16"], b16)
        module = f16_module(m, k, n)
        for opts in SMOKE if smoke else schedules_for(m, n):
            try:
                t0 = time.perf_counter()
                ((_, src, manifest),) = kernels_of(lower_for_backend(module, "webgpu", opts), "webgpu")
                gen = time.perf_counter() - t0
                kern = rt.create_kernel(src, manifest)
                bufs = [buf_a, buf_b[manifest["bindings"][1]["dtype"]], buf_c]
                rt.write_buffer(buf_c, np.full(m * n, np.nan, np.float32))
                rt.dispatch(kern, bufs)
                out = rt.read_buffer(buf_c, np.float32, (m, n))
                t = statistics.median(rt.time_kernel(kern, bufs, repeat))
            except Exception as e:  # noqa: BLE001 - a benchmark reports and goes on
                print(f"| {s} | `{opts}` | failed: {str(e).splitlines()[0][:90]} ||||||")
                failed += 1
                continue
            e64, e16 = rel(out, ref), rel(out, ref16)
            vs = [f"{cub[x] / t:.2f}" if x in cub else "-" for x in ("fp32", "fp16")]
            print(f"| {s} | `{opts}` | {tflop / t:.1f} | {vs[0]} | {vs[1]} | {e64:.1e} | {e16:.1e} | "
                  f"{gen * 1000:.0f} |", flush=True)  # fmt: skip
            rows.append({"shape": s, "kernel": opts, "seconds": t, "err": e64, "err16": e16})
        for x in (buf_a, buf_c, *buf_b.values()):
            x.destroy()
    return rows, failed


def summary(rows: list[dict]) -> None:
    """Per shape: cuBLAS fp32 / fp16, the best f16=0, f16=1 and f16=2 kernel (TFLOPS, error)."""
    print("\n| shape | cuBLAS fp32 | cuBLAS fp16 | best f32 WGSL | best f16 WGSL (f32 acc) | best f16 WGSL (f16 acc) |")
    print("|---|---|---|---|---|---|")
    for shape in dict.fromkeys(r["shape"] for r in rows):
        m, k, n = parse(shape)
        tflop = 2.0 * m * n * k / 1e12
        rs = [r for r in rows if r["shape"] == shape]

        def cell(pred) -> str:
            ok = [r for r in rs if pred(r["kernel"]) and np.isfinite(r["err"])]
            if not ok:
                return "-"
            r = min(ok, key=lambda r: r["seconds"])
            what = "" if r["kernel"].startswith("cublas") else f" `{r['kernel']}`"
            return f"{tflop / r['seconds']:.1f} (err {r['err']:.1e}){what}"

        print(f"| {shape} | {cell(lambda s: s == 'cublas fp32')} | {cell(lambda s: s == 'cublas fp16')} | "
              f"{cell(lambda s: s.startswith('f16=0'))} | {cell(lambda s: s.startswith('f16=1'))} | "
              f"{cell(lambda s: s.startswith('f16=2'))} |")  # fmt: skip


def bert(bundle: str, repeat: int, tune: float, use_torch: bool) -> None:
    """BERT-base from a slim --weights f16 bundle (bench/gpu_bert.py), against PyTorch fp32 and fp16."""
    from bench.gpu_bert import _timed, rebuild_weights, torch_bert_ms
    from nnjit.runtime.session import Session, random_feeds

    b = Path(bundle)
    rebuild_weights(b)
    sess = Session(b, "webgpu", verify=False)
    impl = sess._impl
    half = sum(1 for n, c in impl.choices.items() if impl.bplan["kernels"][n]["candidates"][c]["options"].get("f16"))
    print(f"\nBERT-base --weights f16: {half} of {len(impl.choices)} kernels with candidates start on an f16 candidate")
    feeds = random_feeds(sess.plan, 3)
    rows = [("nnjit WebGPU --weights f16, as loaded", *_timed(sess, feeds, repeat))]
    rep = sess.tune(budget=tune)
    half = sum(1 for n, c in impl.choices.items() if impl.bplan["kernels"][n]["candidates"][c]["options"].get("f16"))
    rows.append((f"nnjit WebGPU --weights f16, tuned ({tune:g} s budget; {half} f16 kernels kept)",
                 *_timed(sess, feeds, repeat)))  # fmt: skip
    print(f"page-like tuning: {len(rep['tuned'])} kernels timed in {rep['elapsed_s']:.1f} s")
    ref = {}
    if use_torch:
        ref = {"fp32": torch_bert_ms(repeat), "fp16": torch_bert_ms(repeat, half=True)}
    print("\n| BERT-base, batch 1, seq 128 | warm median (ms) | kernels alone, GPU (ms) | / PyTorch fp16 |")
    print("|---|---|---|---|")
    for what, ms, gpu in rows:
        r = f"{ms / ref['fp16']:.2f}" if ref else "-"
        print(f"| {what} | {ms:.2f} | {gpu:.2f} | {r} |")
    for name, ms in ref.items():
        print(f"| PyTorch eager {name}{' (TF32 off)' if name == 'fp32' else ''} | {ms:.2f} | - | "
              f"{ms / ref['fp16']:.2f} |")  # fmt: skip


def main() -> int:
    from bench.smoke import add_flag, cuda_missing

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default=DEFAULT_SHAPES, help="MxKxN, comma-separated")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--bert", metavar="SLIM_BUNDLE", help="also BERT-base end to end from this slim f16 bundle")
    ap.add_argument("--tune", type=float, default=20.0, help="--bert: the page's tuning budget (seconds)")
    add_flag(ap)
    args = ap.parse_args()
    t_start = time.perf_counter()
    shapes = args.shapes.split(",")
    why = cuda_missing()
    if args.smoke:
        shapes, args.repeat = ["64x48x40", "13x40x24"], 2
        if why is not None:
            print(f"smoke: torch/cuBLAS side skipped ({why})")
    elif why is not None:
        print(f"torch/cuBLAS side skipped ({why})")

    from nnjit.runtime.webgpu import WebGPURuntime

    rt = WebGPURuntime()
    info = rt.info
    print(f"device: {info.get('name')} ({info.get('backend')}, {info.get('description')}); "
          f"features: {', '.join(info.get('features', []))}")  # fmt: skip
    if "shader-f16" not in rt.features:
        print("the adapter has no shader-f16: only the f16=0 rows can run")
    rows, failed = gemms(rt, shapes, args.repeat, why is None, args.smoke)
    summary(rows)
    if args.bert:
        bert(args.bert, args.repeat, args.tune, why is None)
    elif args.smoke:
        import tempfile

        from bench.gpu_bert import slim
        from bench.smoke import TINY_DEFAULT

        with tempfile.TemporaryDirectory() as d:
            slim(str(TINY_DEFAULT), str(Path(d) / "slim"), weights_mode="f16")
            bert(str(Path(d) / "slim"), 2, 2.0, why is None)
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s")
    return 1 if args.smoke and failed else 0


if __name__ == "__main__":
    sys.exit(main())
