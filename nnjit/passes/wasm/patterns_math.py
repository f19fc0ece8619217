"""Wasm patterns of math ops on f32 and vector<4xf32>: fma (f32x4.relaxed_madd with
relaxed-simd), sqrt, absf and rsqrt inline; exp, log and powf through the module's helper
functions (`math_helpers`; powf by 1, 0.5, 2 and 3 inline). math.erf, tanh, sin and cos are
not converted: nn-loop-expand-math writes them as arith/math ops first (a leftover one is an
error naming that pass)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from xdsl.dialects import math
from xdsl.dialects.builtin import Float32Type
from xdsl.ir import Operation, SSAValue

from nnjit.ir.fastir import operands_of, type_of
from nnjit.passes.wasm.builder import Builder
from nnjit.passes.wasm.facts import is_vec, scalar_of

if TYPE_CHECKING:
    from nnjit.passes.wasm.lowering import KernelContext

_HELPERS = {math.ExpOp: "exp", math.LogOp: "log"}
_UNARY = {math.SqrtOp: "sqrt", math.AbsFOp: "abs", math.RoundEvenOp: "nearest"}


def fma(ctx: KernelContext, b: Builder, op: Operation) -> SSAValue:
    """x * y + z: f32x4.relaxed_madd with relaxed-simd, else a multiply and an add."""
    (res,) = op.results
    x, y, z = operands_of(op)
    if is_vec(type_of(res)):
        if ctx.relaxed:
            ctx.used_relaxed = True
            a, c, d = (ctx.push(b, v) for v in (x, y, z))
            return b.op("f32x4.relaxed_madd", a, c, d)
        m = b.op("f32x4.mul", ctx.push(b, x), ctx.push(b, y))
        return b.op("f32x4.add", m, ctx.push(b, z))
    m = b.op("f32.mul", ctx.push(b, x), ctx.push(b, y))
    return b.op("f32.add", m, ctx.push(b, z))


def unary(ctx: KernelContext, b: Builder, op: Operation) -> SSAValue:
    (res,) = op.results
    m = _UNARY[type(op)]
    p = "f32x4." if is_vec(type_of(res)) else "f32."
    return b.op(p + m, ctx.push(b, operands_of(op)[0]))


def rsqrt(ctx: KernelContext, b: Builder, op: Operation) -> SSAValue:
    (res,) = op.results
    vec = is_vec(type_of(res))
    p = "f32x4." if vec else "f32."
    one = b.v128c("f32x4", [1.0] * 4) if vec else b.f32c(1.0)
    return b.op(p + "div", one, b.op(p + "sqrt", ctx.push(b, operands_of(op)[0])))


def helper_call(ctx: KernelContext, b: Builder, op: Operation) -> SSAValue:
    """exp, log: a call of the module's helper function (scalar or f32x4)."""
    (res,) = op.results
    rt = type_of(res)
    if not isinstance(scalar_of(rt), Float32Type):
        raise ctx.error(f"{op.name} on {rt}", "only f32 is supported")
    fn = ctx.helpers.symbol(_HELPERS[type(op)], is_vec(rt))  # type: ignore[index]
    return b.call(fn, [ctx.push(b, operands_of(op)[0])], [ctx.wtype(rt)])  # type: ignore


def reject_expanded_math(ctx: KernelContext, b: Builder, op: Operation) -> SSAValue:
    """math.erf, tanh, sin, cos: an error; nn-loop-expand-math{target=wasm} expands them first."""
    raise ctx.error(
        f"{op.name} is not converted to Wasm",
        "run nn-loop-expand-math{target=wasm} before convert-nn-loop-to-wasm",
    )


def powf(ctx: KernelContext, b: Builder, op: Operation) -> SSAValue:
    """x ** y: x, sqrt(x), x * x, x * x * x for a constant y of 1, 0.5, 2, 3; else the pow
    helper."""
    (res,) = op.results
    vec = is_vec(type_of(res))
    x, y = operands_of(op)
    p = "f32x4." if vec else "f32."
    k = ctx.facts.const_float(y)
    if k == 1.0:
        return ctx.push(b, x)
    if k == 0.5:
        return b.op(p + "sqrt", ctx.push(b, x))
    if k in (2.0, 3.0):
        px = ctx.reusable(b, x, "base")
        r = b.op(p + "mul", px(), px())
        if k == 3.0:
            r = b.op(p + "mul", r, px())
        return r
    fn = ctx.helpers.symbol("pow", vec)
    a = ctx.push(b, x)
    return b.call(fn, [a, ctx.push(b, y)], [ctx.wtype(res.type)])  # type: ignore


VALUE_PATTERNS = {
    math.FmaOp: fma,
    **dict.fromkeys(_UNARY, unary),
    math.RsqrtOp: rsqrt,
    **dict.fromkeys(_HELPERS, helper_call),
    **dict.fromkeys((math.ErfOp, math.TanhOp, math.SinOp, math.CosOp), reject_expanded_math),
    math.PowFOp: powf,
}  # fmt: skip
STATEMENT_PATTERNS: dict = {}
