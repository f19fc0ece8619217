"""nn-loop-expand-math: math.erf, tanh, sin and cos in kernels of one target become arith ops.

Takes nn_loop IR (docs/ir.md); gives the same IR where, inside every `nn_loop.kernel` whose
target is the pass's `target` (wgsl | wasm), each `math.erf`, `math.tanh`, `math.sin` and
`math.cos` on f32 or vector<4xf32> is replaced by its approximation from nnjit/ir/approx.py
(the form of that target: see `approx.FORMS`, the error bounds and special values there),
built from ops the target's conversion emits directly: arith (addf, subf, mulf, divf, negf,
minimumf, maximumf, cmpf, select, bitcast, andi, ori, xori, subi, muli, minsi, maxsi,
constant), math (fma, absf, roundeven, and exp on wgsl) and nn_loop.splat for vector
constants. Kernels of the other target, and ops outside kernels, are left alone; on wasm no
math.exp is introduced (its exp is a helper call).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xdsl.context import Context
from xdsl.dialects import arith, math
from xdsl.dialects.builtin import (
    Float32Type,
    FloatAttr,
    IntegerAttr,
    ModuleOp,
    VectorType,
    f32,
    i32,
)
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern

from nnjit.dialects import nn_loop
from nnjit.errors import UnsupportedError
from nnjit.ir import approx, fastir

TARGETS = tuple(approx.FORMS)
_FUNCTIONS: dict[type[Operation], str] = {
    math.ErfOp: "erf", math.TanhOp: "tanh", math.SinOp: "sin", math.CosOp: "cos",
}  # fmt: skip


class _IROps:
    """approx.Ops that builds ops of type `ft` (f32 or vector<Nxf32>) into a list."""

    def __init__(self, ft: Attribute):
        self.ft = ft
        self.it: Attribute = i32
        if isinstance(ft, VectorType):
            self.it = VectorType(i32, ft.get_shape())
        self.ops: list[Operation] = []
        self.consts: dict[tuple[Attribute, float], SSAValue] = {}

    def emit(self, op: Operation) -> SSAValue:
        self.ops.append(op)
        return op.results[0]

    def splat(self, value: float, scalar: Attribute, vec: Attribute) -> SSAValue:
        key = (vec, value)
        if key not in self.consts:
            attr = FloatAttr(value, f32) if scalar == f32 else IntegerAttr(int(value), i32)
            c = self.emit(arith.ConstantOp(attr))
            if isinstance(vec, VectorType):
                c = self.emit(nn_loop.SplatOp(c, vec))
            self.consts[key] = c
        return self.consts[key]

    def const(self, value: float) -> SSAValue:
        return self.splat(float(value), f32, self.ft)

    def iconst(self, value: int) -> SSAValue:
        return self.splat(value, i32, self.it)

    def add(self, a: Any, b: Any) -> SSAValue:
        return self.emit(arith.AddfOp(a, b))

    def sub(self, a: Any, b: Any) -> SSAValue:
        return self.emit(arith.SubfOp(a, b))

    def mul(self, a: Any, b: Any) -> SSAValue:
        return self.emit(arith.MulfOp(a, b))

    def div(self, a: Any, b: Any) -> SSAValue:
        return self.emit(arith.DivfOp(a, b))

    def fma(self, a: Any, b: Any, c: Any) -> SSAValue:
        return self.emit(math.FmaOp(a, b, c))

    def neg(self, a: Any) -> SSAValue:
        return self.emit(arith.NegfOp(a))

    def abs(self, a: Any) -> SSAValue:
        return self.emit(math.AbsFOp(a))

    def min(self, a: Any, b: Any) -> SSAValue:
        return self.emit(arith.MinimumfOp(a, b))

    def max(self, a: Any, b: Any) -> SSAValue:
        return self.emit(arith.MaximumfOp(a, b))

    def round(self, a: Any) -> SSAValue:
        return self.emit(math.RoundEvenOp(a))

    def exp(self, a: Any) -> SSAValue:
        return self.emit(math.ExpOp(a))

    def lt(self, a: Any, b: Any) -> SSAValue:
        return self.emit(arith.CmpfOp(a, b, "olt"))

    def select(self, cond: Any, a: Any, b: Any) -> SSAValue:
        return self.emit(arith.SelectOp(cond, a, b))

    def bits(self, a: Any) -> SSAValue:
        return self.emit(arith.BitcastOp(a, self.it))

    def float(self, i: Any) -> SSAValue:
        return self.emit(arith.BitcastOp(i, self.ft))

    def iand(self, a: Any, b: Any) -> SSAValue:
        return self.emit(arith.AndIOp(a, b))

    def ior(self, a: Any, b: Any) -> SSAValue:
        return self.emit(arith.OrIOp(a, b))

    def ixor(self, a: Any, b: Any) -> SSAValue:
        return self.emit(arith.XOrIOp(a, b))

    def isub(self, a: Any, b: Any) -> SSAValue:
        return self.emit(arith.SubiOp(a, b))

    def imul(self, a: Any, b: Any) -> SSAValue:
        return self.emit(arith.MuliOp(a, b))

    def imin(self, a: Any, b: Any) -> SSAValue:
        return self.emit(arith.MinSIOp(a, b))

    def imax(self, a: Any, b: Any) -> SSAValue:
        return self.emit(arith.MaxSIOp(a, b))


def _kernel_target(op: Operation) -> str | None:
    """The target of the nn_loop.kernel around `op` (None outside kernels)."""
    parent = op.parent_op()
    while parent is not None:
        if isinstance(parent, nn_loop.KernelOp):
            return parent.target.data.value
        parent = parent.parent_op()
    return None


def _is_f32(t: Attribute) -> bool:
    if isinstance(t, VectorType):
        t = t.get_element_type()
    return isinstance(t, Float32Type)


@dataclass
class ExpandMath(RewritePattern):
    """math.erf / tanh / sin / cos (f32 or vector of f32) in a kernel of `target` -> its
    expansion."""

    target: str

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        fn = _FUNCTIONS.get(type(op))
        if fn is None or not _is_f32(op.results[0].type):
            return
        if _kernel_target(op) != self.target:
            return
        ops = _IROps(op.results[0].type)
        result = approx.FORMS[self.target][fn](ops, op.operands[0])
        rewriter.replace(op, ops.ops, [result])


@dataclass(frozen=True)
class NNLoopExpandMathPass(ModulePass):
    """Expands math.erf, tanh, sin and cos in the nn_loop kernels of `target` (wgsl | wasm)."""

    name = "nn-loop-expand-math"

    target: str = "wgsl"
    """"wgsl" or "wasm": the kernels whose math ops are expanded (and the forms used)."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.target not in TARGETS:
            raise UnsupportedError(
                f"nn-loop-expand-math: unknown target '{self.target}' (wgsl or wasm)"
            )
        # only the math ops are visited (a kernel without them costs one fast walk, not a
        # rewrite walker's worklist over every op: this pass runs for every candidate)
        found = [o for o in fastir.walk(op) if type(o) in _FUNCTIONS]
        if not found:
            return
        pattern = ExpandMath(self.target)
        for o in found:
            pattern.match_and_rewrite(o, PatternRewriter(o))
