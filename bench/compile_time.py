"""Compile-time benchmark: whole-model `nnjit compile` time, and the median time to generate one
kernel variant (lowering + web-level conversion + printing; no driver shader compile).

    python bench/compile_time.py [MODEL.onnx ...]     (default: models/bert-legacy.onnx)
    python bench/compile_time.py --smoke              (or NNJIT_BENCH_SMOKE=1: the tiny model of
                                                       tests/models of the same name, one repeat)
Prints a markdown table; the machine is named in the output.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def single_kernel_modules(tensor_module):
    """One module per fused kernel: func @main(operands) { fused; return }."""
    from xdsl.dialects import func
    from xdsl.dialects.builtin import ModuleOp
    from xdsl.ir import Block, Region

    from nnjit.compiler import main_func
    from nnjit.dialects import nn_tensor

    for op in main_func(tensor_module).body.block.ops:
        if not isinstance(op, nn_tensor.FusedOp):
            continue
        block = Block(arg_types=[v.type for v in op.inputs])
        clone = op.clone(value_mapper=dict(zip(op.inputs, block.args)))
        block.add_ops([clone, func.ReturnOp(clone.result)])
        f = func.FuncOp("main", ([v.type for v in op.inputs], [op.result.type]), Region(block))
        yield op.kind.data, ModuleOp([f])


def variant_times(tensor_module, backend: str, repeat: int = 3) -> dict[str, list[float]]:
    from nnjit.compiler import kernels_of, lower_for_backend

    times: dict[str, list[float]] = {}
    for kind, mod in single_kernel_modules(tensor_module):
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            lowered = lower_for_backend(mod, backend)
            kernels_of(lowered, backend)
            best = min(best, time.perf_counter() - t0)
        times.setdefault(kind, []).append(best)
    return times


def main() -> int:
    from bench.smoke import add_flag, tiny_model

    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*", default=[str(ROOT / "models" / "bert-legacy.onnx")])
    add_flag(ap)
    args = ap.parse_args()
    repeat = 3
    if args.smoke:
        args.models, repeat = [str(tiny_model(m)) for m in args.models[:1]], 1
    from nnjit.compiler import TENSOR_PIPELINE, CompileReport, compile_model, run_pipeline
    from nnjit.frontend import import_onnx

    print(f"machine: {platform.processor() or platform.machine()}, {platform.node()}, "
          f"Python {platform.python_version()}\n")  # fmt: skip
    print("| model | compile, both backends (s) | kernels (webgpu / wasm) | "
          "median per variant, WGSL (ms) | median per variant, Wasm (ms) |")  # fmt: skip
    print("|---|---|---|---|---|")
    for m in args.models:
        report = CompileReport()
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            compile_model(m, Path(d) / "b", report=report)
            total = time.perf_counter() - t0
        imported = import_onnx(m)
        run_pipeline(imported.module, TENSOR_PIPELINE)
        med = {}
        for backend in ("webgpu", "wasm"):
            per_kind = variant_times(imported.module, backend, repeat)
            allt = [t for ts in per_kind.values() for t in ts]
            med[backend] = statistics.median(allt) * 1000
            detail = ", ".join(
                f"{k} {statistics.median(v) * 1000:.2f}" for k, v in sorted(per_kind.items())
            )
            print(f"<!-- {Path(m).name} {backend} per kind (ms): {detail} -->", file=sys.stderr)
        print(f"| {Path(m).name} | {total:.2f} | {report.kernels.get('webgpu')} / "
              f"{report.kernels.get('wasm')} | {med['webgpu']:.2f} | {med['wasm']:.2f} |")  # fmt: skip
        stages = ", ".join(f"{k} {v:.2f}s" for k, v in report.timings.items())
        print(f"<!-- stages: {stages} -->", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
