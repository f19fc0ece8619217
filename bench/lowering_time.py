"""Per-kernel generation time of the tensor-to-loop lowerings (no test; prints a table).

    python bench/lowering_time.py
    python bench/lowering_time.py --smoke    # or NNJIT_BENCH_SMOKE=1: one run per case

For BERT-base-sized kernels of each non-matmul kind, on both targets, the best of 20 runs of
lowering one fused op to an nn_loop.kernel (`lowering_for(kind)(fused, name, schedule)`) and
of printing that kernel as nn_loop text. The budget for one kernel variant is 5 ms.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CASES = {
    "elementwise (gelu, 128x3072)": """
  %r = nn_tensor.fused %x, %b {kind = "elementwise"} : (tensor<128x3072xf32>, tensor<3072xf32>) -> tensor<128x3072xf32> {
  ^bb0(%a: tensor<128x3072xf32>, %c: tensor<3072xf32>):
    %s = nn_tensor.add %a, %c : (tensor<128x3072xf32>, tensor<3072xf32>) -> tensor<128x3072xf32>
    %g = nn_tensor.gelu %s : tensor<128x3072xf32> -> tensor<128x3072xf32>
    nn_tensor.yield %g : tensor<128x3072xf32>
  }""",
    "softmax (scale + mask, 12x128x128)": """
  %r = nn_tensor.fused %x, %b {kind = "softmax"} : (tensor<12x128x128xf32>, tensor<128xf32>) -> tensor<12x128x128xf32> {
  ^bb0(%a: tensor<12x128x128xf32>, %m: tensor<128xf32>):
    %k = nn_tensor.constant dense<0.125> : tensor<f32>
    %s = nn_tensor.mul %a, %k : (tensor<12x128x128xf32>, tensor<f32>) -> tensor<12x128x128xf32>
    %t = nn_tensor.add %s, %m : (tensor<12x128x128xf32>, tensor<128xf32>) -> tensor<12x128x128xf32>
    %y = nn_tensor.softmax %t {axis = 2 : i64} : tensor<12x128x128xf32> -> tensor<12x128x128xf32>
    nn_tensor.yield %y : tensor<12x128x128xf32>
  }""",
    "layer_norm (residual, 128x768)": """
  %r = nn_tensor.fused %x, %y, %g, %b {kind = "layer_norm"} : (tensor<128x768xf32>, tensor<128x768xf32>, tensor<768xf32>, tensor<768xf32>) -> tensor<128x768xf32> {
  ^bb0(%a: tensor<128x768xf32>, %c: tensor<128x768xf32>, %s: tensor<768xf32>, %o: tensor<768xf32>):
    %t = nn_tensor.add %a, %c : (tensor<128x768xf32>, tensor<128x768xf32>) -> tensor<128x768xf32>
    %l = nn_tensor.layer_norm %t, %s, %o {axis = 1 : i64, epsilon = 1.0e-12 : f32} : (tensor<128x768xf32>, tensor<768xf32>, tensor<768xf32>) -> tensor<128x768xf32>
    nn_tensor.yield %l : tensor<128x768xf32>
  }""",
    "reduce_mean (last axis, 128x768)": """
  %r = nn_tensor.fused %x {kind = "reduce"} : (tensor<128x768xf32>) -> tensor<128x1xf32> {
  ^bb0(%a: tensor<128x768xf32>):
    %m = nn_tensor.reduce_mean %a {axes = array<i64: 1>, keepdims = 1 : i64} : tensor<128x768xf32> -> tensor<128x1xf32>
    nn_tensor.yield %m : tensor<128x1xf32>
  }""",
    "gather (embeddings, 30522x768)": """
  %r = nn_tensor.fused %w, %i {kind = "gather"} : (tensor<30522x768xf32>, tensor<1x128xi64>) -> tensor<1x128x768xf32> {
  ^bb0(%a: tensor<30522x768xf32>, %c: tensor<1x128xi64>):
    %g = nn_tensor.gather %a, %c {axis = 0 : i64} : (tensor<30522x768xf32>, tensor<1x128xi64>) -> tensor<1x128x768xf32>
    nn_tensor.yield %g : tensor<1x128x768xf32>
  }""",
    "transpose (heads, 128x12x64)": """
  %r = nn_tensor.fused %x {kind = "transpose"} : (tensor<1x128x12x64xf32>) -> tensor<1x12x128x64xf32> {
  ^bb0(%a: tensor<1x128x12x64xf32>):
    %t = nn_tensor.transpose %a {perm = array<i64: 0, 2, 1, 3>} : tensor<1x128x12x64xf32> -> tensor<1x12x128x64xf32>
    nn_tensor.yield %t : tensor<1x12x128x64xf32>
  }""",
}


def main() -> int:
    from xdsl.parser import Parser

    from bench.smoke import add_flag
    from nnjit.passes.lowering import lowering_for
    from nnjit.passes.lowering.schedule import Schedule
    from nnjit.registry import make_context

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_flag(ap)
    repeat = 1 if ap.parse_args().smoke else 20
    ctx = make_context()
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}\n")
    print("| kernel | target | ops | lower (ms) | print (ms) |")
    print("|---|---|---|---|---|")
    for name, body in CASES.items():
        fused_src = "func.func @f(" + ", ".join(
            f"{a}: {t}" for a, t in _operands(body)
        ) + ") {" + body + "\n  func.return\n}"
        module = Parser(ctx, fused_src).parse_module()
        fused = next(op for op in module.walk() if op.name == "nn_tensor.fused")
        lower = lowering_for(fused.kind.data)  # type: ignore[attr-defined]
        for target in ("wgsl", "wasm"):
            tl = tp = float("inf")
            for _ in range(repeat):
                t0 = time.perf_counter()
                kernel = lower(fused, "k", Schedule(target=target))
                t1 = time.perf_counter()
                str(kernel)
                t2 = time.perf_counter()
                tl, tp = min(tl, t1 - t0), min(tp, t2 - t1)
            ops = sum(1 for _ in kernel.walk())
            print(f"| {name} | {target} | {ops} | {tl * 1e3:.2f} | {tp * 1e3:.2f} |")
    return 0


def _operands(body: str) -> list[tuple[str, str]]:
    """The fused op's operands and their types, from its `: (types) ->` signature."""
    head = body.split("nn_tensor.fused", 1)[1]
    names = head.split("{", 1)[0].split(",")
    types = head.split(": (", 1)[1].split(") ->", 1)[0]
    parts, depth, cur = [], 0, ""
    for ch in types:
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
            continue
        depth += ch == "<"
        depth -= ch == ">"
        cur += ch
    parts.append(cur.strip())
    return [(n.strip(), t) for n, t in zip(names, parts)]


if __name__ == "__main__":
    sys.exit(main())
