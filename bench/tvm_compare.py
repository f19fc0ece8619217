"""Generating one matmul candidate: nnjit (lowering + conversion + printing) against Apache TVM
0.27 (schedule + tvm.compile) for WebGPU and for Wasm, same machine, same script.

    python -m venv --system-site-packages /tmp/tvmenv && /tmp/tvmenv/bin/pip install apache-tvm==0.27.0
    /tmp/tvmenv/bin/python bench/tvm_compare.py [--shapes 128x768x768,128x3072x768]

TVM's WebGPU candidate is scheduled by its dlight matmul rule and compiled for target webgpu
(WGSL plus LLVM host code). TVM's Wasm candidate gets the schedule of nnjit's own default Wasm
kernel for that shape (column panels split over threads, a register tile of `reg` rows x cols
accumulated in a local cache, the k loop unrolled by `kstep`, columns vectorised by 4), written
with TVM's schedule primitives, and is compiled for wasm32 with SIMD128 and relaxed SIMD (LLVM
object code, not linked): that is what generating one tuning candidate costs TVM. The row
"wasm, unscheduled" is TVM's cheapest possible Wasm build (the naive loop nest, no candidate of
any schedule space) for reference. nnjit's times are lowering + web-level conversion + printing
(WGSL / WAT text), default schedule; nnjit's input module is built with the IR API, as TVM
builds its module with te (--from-text parses it instead, ~1 ms more). Medians of --repeat runs
after one warm-up; --stages adds nnjit's time per stage. --smoke (or NNJIT_BENCH_SMOKE=1): one
64x64x64 matmul, 2 runs, and the nnjit side alone (with a line) when TVM is not importable.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def tvm_builders():
    import tvm
    from tvm import s_tir, te
    from tvm.s_tir import dlight as dl

    def module(m, k, n):
        a = te.placeholder((m, k), name="A")
        b = te.placeholder((k, n), name="B")
        r = te.reduce_axis((0, k), name="k")
        c = te.compute((m, n), lambda i, j: te.sum(a[i, r] * b[r, j], axis=r), name="C")
        return tvm.IRModule({"main": te.create_prim_func([a, b, c])})

    def webgpu(m, k, n):
        target = tvm.target.Target("webgpu", host="llvm")
        with target:
            mod = dl.ApplyDefaultSchedule(dl.gpu.Matmul(), dl.gpu.Fallback())(module(m, k, n))
        return tvm.compile(mod, target=target)

    wasm_target = tvm.target.Target({
        "kind": "llvm", "mtriple": "wasm32-unknown-unknown-wasm",
        "mattr": ["+simd128", "+relaxed-simd"],
    })  # fmt: skip

    def wasm(m, k, n):
        """nnjit's default Wasm matmul schedule in TVM's primitives (see the module doc)."""
        rows, cols, kstep = nnjit_wasm_schedule(m, k, n)
        sch = s_tir.Schedule(module(m, k, n))
        blk = sch.get_sblock("C")
        i, j, r = sch.get_loops(blk)
        jo, ji = sch.split(j, [None, cols])
        io, ii = sch.split(i, [None, rows])
        ko, ki = sch.split(r, [None, kstep])
        sch.reorder(jo, io, ko, ki, ii, ji)
        acc = sch.cache_write(blk, 0, "local")
        sch.reverse_compute_at(acc, io)
        jv, jl = sch.split(ji, [None, 4])
        sch.vectorize(jl)
        for loop in (ki, ii, jv):
            sch.unroll(loop)
        sch.parallel(jo)
        sch.decompose_reduction(blk, ko)
        return tvm.compile(sch.mod, target=wasm_target)

    def wasm_unscheduled(m, k, n):
        return tvm.compile(module(m, k, n), target=wasm_target)

    return {"webgpu": webgpu, "wasm": wasm, "wasm, unscheduled": wasm_unscheduled}, tvm.__version__


def nnjit_wasm_schedule(m, k, n) -> tuple[int, int, int]:
    """(register-tile rows, register-tile cols, k unroll) of nnjit's default Wasm matmul."""
    from nnjit.compiler import run_pipeline
    from nnjit.dialects import nn_loop

    module = _api_module(m, k, n)
    run_pipeline(module, "convert-nn-tensor-to-nn-loop{target=wasm}")
    kernel = next(op for op in module.walk() if isinstance(op, nn_loop.KernelOp))
    sched = kernel.schedule
    rows, cols = sched.data["reg"].get_values()
    return rows, cols, sched.data["kstep"].value.data


def nnjit_builder(backend, from_text=False):
    """One candidate: the nn_tensor matmul module is built (with the IR API, as TVM's te builds
    its module; or parsed from text with --from-text), then lowered to `backend`'s kernel text
    with the default schedule: convert-nn-tensor-to-nn-loop, nn-loop-unroll +
    convert-nn-loop-to-wgsl | -wasm, and the WGSL / WAT printer."""
    from xdsl.parser import Parser

    from nnjit.pipeline import lower_and_print
    from nnjit.registry import make_context

    def module_from_text(m, k, n):
        text = f"""
func.func @main(%a: tensor<{m}x{k}xf32>, %b: tensor<{k}x{n}xf32>) -> tensor<{m}x{n}xf32> {{
  %c = nn_tensor.matmul %a, %b : (tensor<{m}x{k}xf32>, tensor<{k}x{n}xf32>) -> tensor<{m}x{n}xf32>
  func.return %c : tensor<{m}x{n}xf32>
}}"""
        return Parser(make_context(), text).parse_module()

    make = module_from_text if from_text else _api_module

    def build(m, k, n):
        return lower_and_print(make(m, k, n), backend)

    return build


def nnjit_stages(backend, shape, repeat):
    """Minimum over `repeat` runs of each stage of one nnjit candidate (ms): building the
    nn_tensor module, convert-nn-tensor-to-nn-loop, the web-level conversion (with
    the target's loop passes and nn-loop-unroll), printing."""
    from nnjit.pipeline import kernels_of, run_pipeline
    from nnjit.targets import TARGETS

    target, convert = TARGETS[backend].kernel_target, TARGETS[backend].convert
    loop_passes = TARGETS[backend].loop_passes
    make = _api_module
    best: dict[str, float] = {}
    for _ in range(repeat + 1):
        t0 = time.perf_counter()
        module = make(*shape)
        t1 = time.perf_counter()
        run_pipeline(module, f"convert-nn-tensor-to-nn-loop{{target={target}}}")
        t2 = time.perf_counter()
        run_pipeline(module, f"{loop_passes},{convert}")
        t3 = time.perf_counter()
        kernels_of(module, backend)
        t4 = time.perf_counter()
        for k, t in (("build", t1 - t0), ("to nn_loop", t2 - t1), ("convert", t3 - t2),
                     ("print", t4 - t3)):  # fmt: skip
            best[k] = min(best.get(k, t), t)
    return {k: v * 1e3 for k, v in best.items()}


def _api_module(m, k, n):
    from xdsl.dialects import func
    from xdsl.dialects.builtin import ModuleOp, TensorType, f32
    from xdsl.ir import Block, Region

    from nnjit.dialects import nn_tensor as nt

    ta, tb, tc = TensorType(f32, [m, k]), TensorType(f32, [k, n]), TensorType(f32, [m, n])
    block = Block(arg_types=[ta, tb])
    mm = nt.MatmulOp(block.args[0], block.args[1], tc)
    block.add_ops([mm, func.ReturnOp(mm.result)])
    return ModuleOp([func.FuncOp("main", ([ta, tb], [tc]), Region(block))])


def median_time(fn, shape, repeat):
    fn(*shape)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(*shape)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    from bench.smoke import add_flag

    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="128x768x768,128x3072x768,512x512x512")
    ap.add_argument("--repeat", type=int, default=11)
    ap.add_argument("--from-text", action="store_true",
                    help="nnjit parses its input module from text (else builds it with the API)")
    ap.add_argument("--stages", action="store_true",
                    help="also print where nnjit's time goes (minimum per stage)")
    add_flag(ap)
    args = ap.parse_args()
    if args.smoke:
        args.shapes, args.repeat = "64x64x64", 2
    tvm_build: dict | None = None
    try:
        tvm_build, version = tvm_builders()
    except ImportError as e:
        print(f"tvm_compare: Apache TVM 0.27 is not importable ({e}); install it in a venv of its "
              "own (see this script's docstring) and run the script with that venv's python",
              file=sys.stderr)  # fmt: skip
        if not args.smoke:
            return 2
        print("smoke: TVM is missing; the nnjit side alone")
        version = "missing"
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; TVM {version}\n")
    print("| matmul MxKxN | target | TVM 0.27 (ms) | nnjit (ms) | TVM / nnjit |")
    print("|---|---|---|---|---|")
    for s in args.shapes.split(","):
        shape = tuple(int(d) for d in s.split("x"))
        for target in ("webgpu", "wasm", "wasm, unscheduled"):
            backend = target.split(",")[0]
            t_nn = median_time(nnjit_builder(backend, args.from_text), shape, args.repeat)
            if tvm_build is None:
                print(f"| {s} | {target} | - | {t_nn * 1e3:.1f} | - |", flush=True)
                continue
            t_tvm = median_time(tvm_build[target], shape, args.repeat)
            print(f"| {s} | {target} | {t_tvm * 1e3:.1f} | {t_nn * 1e3:.1f} | {t_tvm / t_nn:.1f} |",
                  flush=True)  # fmt: skip
    if args.stages:
        print("\nnnjit stages, minimum over the runs (ms):\n")
        print("| matmul MxKxN | target | build module | to nn_loop | convert (+unroll) | print |")
        print("|---|---|---|---|---|---|")
        for s in args.shapes.split(","):
            shape = tuple(int(d) for d in s.split("x"))
            for backend in ("webgpu", "wasm"):
                st = nnjit_stages(backend, shape, args.repeat)
                print(f"| {s} | {backend} | " + " | ".join(f"{st[k]:.2f}" for k in (
                    "build", "to nn_loop", "convert", "print")) + " |", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
