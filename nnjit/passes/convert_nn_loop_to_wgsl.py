"""convert-nn-loop-to-wgsl: each `nn_loop.kernel` with target "wgsl" becomes an `nn_wgsl.module`.

Takes nn_loop IR (docs/ir.md); gives the same module with every wgsl kernel replaced by an
`nn_wgsl.module` of the same symbol name (func.func @main, launches and wasm kernels are left
alone). Loops come unrolled: a loop still marked `unroll U` is an error (nn-loop-unroll runs
first, in the target's loop passes, nnjit/targets.py, and nn-loop-promote-registers after it
on wgsl). The mapping:

* `workgroup.x|y|z` loops read `workgroup_id` (iv = lb + id * step) and give the dispatch
  grid; a grid with a dimension above `max_workgroups_per_dim` is linearised over x/y, with
  an early `return` for the workgroups past its end.
* `invocation.x|y|z` loops read `local_invocation_id` and give @workgroup_size; serial loops
  become `for` loops; `nn_loop.if` becomes `if`; `index` becomes i32.
* kernel argument i becomes `@binding(i)` (read -> read, write/read_write -> read_write) over
  `array<f32|i32>`, or over `array<vec4<f32|i32>>` when every access to it is a vector<4>
  access whose flat offset is provably a multiple of 4; other vector accesses are assembled
  from (or split into) scalar accesses. The same holds for private allocs (function-scope
  arrays) and workgroup allocs (module-scope `var<workgroup>` arrays), except that a
  workgroup alloc whose vector accesses are all such vec4 accesses is an array of vec4 even
  when it also has scalar accesses: those read or write one lane (`a[i >> 2][i & 3]`, a
  constant lane where the offset's residue is known). Each load or store of a private alloc
  is one access of its array, at a constant index when its indices are constants; keeping
  register tiles in values is nn-loop-promote-registers' work, before the conversion.
* a workgroup alloc of rank >= 2 is a nested array, one level per dim (`a[i][j][k]`; vec4
  along the innermost dim when 4 divides it and every vector access's innermost index is a
  multiple of 4): a constant index needs no bounds clamp in the driver's code, and a dynamic
  one is the same value for all the unrolled accesses that share it (a staged matmul tile
  read at [buffer][k step][column]: one clamp per tile, constant k steps).
* flat offsets are summed per dim with the constant parts of the indices gathered into one
  constant (`x + c`), so unrolled accesses share `x` (a vec4 index is `(x >> 2) + c / 4`).
* expressions nothing uses are removed at the end.
* math.erf, tanh, sin and cos are rejected: nn-loop-expand-math{target=wgsl} writes them as
  arith/math ops first (Target.loop_passes runs it in every pipeline); math.powf keeps the
  sign of a negative base raised to an odd integer; math.rsqrt becomes inverseSqrt.
* NaN propagates as in onnxruntime, although WGSL leaves it to the driver (lavapipe's max and
  clamp drop it, SwiftShader's exp(NaN) is inf): arith.maximumf/minimumf (Relu, Max, Min, Clip,
  reductions), math.powf and the math builtins (exp, log, sqrt, ...) select their
  NaN operand when one is NaN, tested on the bits (`x != x` may be folded away by a driver);
  log and sqrt of a negative number are NaN.

The conversion itself is in `nnjit/passes/wgsl/`: one pattern per op class (`patterns.PATTERNS`)
over a shared `Emitter`; `convert_kernel` converts one kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    RewritePattern,
    op_type_rewrite_pattern,
)

from nnjit.dialects import nn_loop
from nnjit.ir.fastir import replace_kernels
from nnjit.passes.wgsl.kernel import MAX_WORKGROUPS_PER_DIM, convert_kernel


@dataclass
class ConvertKernel(RewritePattern):
    """nn_loop.kernel (target wgsl) -> nn_wgsl.module of the same name."""

    max_workgroups_per_dim: int = MAX_WORKGROUPS_PER_DIM

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn_loop.KernelOp, rewriter: PatternRewriter) -> None:
        if op.target.data != "wgsl":
            return
        rewriter.replace(op, convert_kernel(op, self.max_workgroups_per_dim), [])


@dataclass(frozen=True)
class ConvertNNLoopToWgslPass(ModulePass):
    """Replaces every nn_loop.kernel with target "wgsl" by an nn_wgsl.module (see the module
    docstring); loops marked `unroll U` are rejected (nn-loop-unroll runs first).

    `max_workgroups_per_dim`: grid dimensions above it are linearised over x and y.
    """

    name = "convert-nn-loop-to-wgsl"

    max_workgroups_per_dim: int = MAX_WORKGROUPS_PER_DIM

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        replace_kernels(op, "wgsl", lambda k: convert_kernel(k, self.max_workgroups_per_dim))


__all__ = ["ConvertNNLoopToWgslPass", "ConvertKernel", "convert_kernel", "MAX_WORKGROUPS_PER_DIM"]
