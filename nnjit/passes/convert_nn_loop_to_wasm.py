"""convert-nn-loop-to-wasm: nn_loop kernels with target "wasm" become nn_wasm modules.

Takes nn_loop IR (docs/ir.md); gives the same module where each `nn_loop.kernel` with target
"wasm" is replaced by an `nn_wasm.module` of the same symbol name (func.func @main and other
kernels are left alone). Loops come unrolled: a loop still marked `unroll U` is an error
(nn-loop-unroll runs first, in the target's loop passes: nnjit/targets.py).

Kernel ABI (what nnjit/runtime/wasm.py calls):

    (import "env" "memory" (memory 1 65536 shared))
    (func (export "run") (param $tid i32) (param $nthreads i32) (param $b0 i32) ...)

`$bK` is the byte offset of kernel argument K in the shared memory (row-major, dense). A
top-level `thread` loop of N iterations is split in contiguous chunks: thread t runs
[t*c, min(N, (t+1)*c)) with c = ceil(N / nthreads); without one, thread 0 does everything and
the other threads return at once. The manifest's `thread_chunks` is N (1 without a thread loop).

Lowering: `index` is i32; global loads/stores compute byte addresses from affine index
expressions (constant parts go to the memarg offset when the rest is provably >= 0); in a
serial loop, accesses whose address is `base + invariant + c * iv + const` (c > 0) share one
pointer local per (buffer, invariant part, c), set before the loop and bumped by c * step
after each iteration ("address streams", strength reduction); a loop whose iv is then unused
counts with its first pointer until it equals a precomputed end. A private buffer becomes one
local per element (v128 for vector elements; its indices must be constants after unrolling);
vector<4xf32>/vector<4xi32>/vector<4xi1> are v128 (f32x4 / i32x4 ops, masks as all-ones lanes);
`math.fma` on vectors is `f32x4.relaxed_madd` with `relaxed-simd` (else f32x4.mul + f32x4.add),
on scalars f32.mul + f32.add. math.exp/log/powf call helper functions emitted into the module
(scalar and f32x4 versions; see `nnjit/passes/wasm/math_helpers.py`); math.erf, tanh, sin and
cos are rejected (nn-loop-expand-math{target=wasm} writes them out). An SSA value
with one use in the same block is computed where it is used (folded into its user's operand
tree, unless a store lies in between for values read from memory); every other value goes
through a local.

The conversion lives in the package `nnjit/passes/wasm/` as per-op patterns (one function per
nn_loop / arith / math op kind, in one table: `nnjit.passes.wasm.lowering.PATTERNS`); this module
is the pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import builtin
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    RewritePattern,
    op_type_rewrite_pattern,
)

from nnjit.dialects import nn_loop
from nnjit.ir.fastir import replace_kernels
from nnjit.passes.wasm.lowering import lower_kernel


class _LowerWasmKernel(RewritePattern):
    def __init__(self, relaxed_simd: bool):
        self.relaxed_simd = relaxed_simd

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn_loop.KernelOp, rewriter: PatternRewriter):
        if op.target.data != "wasm":
            return
        rewriter.replace(op, lower_kernel(op, self.relaxed_simd), [])


@dataclass(frozen=True)
class ConvertNNLoopToWasmPass(ModulePass):
    """Replaces each nn_loop.kernel with target "wasm" by an nn_wasm.module (same symbol).

    `relaxed-simd`: vector math.fma becomes f32x4.relaxed_madd (else f32x4.mul + f32x4.add).
    """

    name = "convert-nn-loop-to-wasm"

    relaxed_simd: bool = True

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        replace_kernels(op, "wasm", lambda k: lower_kernel(k, self.relaxed_simd))


__all__ = ["ConvertNNLoopToWasmPass", "lower_kernel"]
