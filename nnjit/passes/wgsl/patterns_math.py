"""Patterns for math: WGSL builtins (NaN kept, log and sqrt of a negative number NaN), powf
with C's special cases, fma. math.erf, tanh, sin and cos are not converted: nn-loop-expand-math
writes them as arith/math ops first (a leftover one is an error naming that pass; WGSL's sin
and cos bound their error on [-pi, pi] only).
"""

from __future__ import annotations

from xdsl.dialects import math
from xdsl.ir import Operation

from nnjit.dialects import nn_wgsl as w
from nnjit.ir.fastir import operands_of
from nnjit.passes.wgsl.emitter import Emitter
from nnjit.passes.wgsl.nan import inf, is_finite, is_nan, keep_nan, nan

_KEEP_NAN = frozenset(("exp", "exp2", "log", "log2", "sqrt", "inverseSqrt"))
_NEGATIVE_NAN = frozenset(("log", "log2", "sqrt", "inverseSqrt"))


MATH_UNARY: dict[type, str] = {
    math.ExpOp: "exp", math.Exp2Op: "exp2", math.LogOp: "log", math.Log2Op: "log2",
    math.SqrtOp: "sqrt", math.RsqrtOp: "inverseSqrt", math.AbsFOp: "abs", math.AbsIOp: "abs",
    math.FloorOp: "floor", math.CeilOp: "ceil", math.RoundEvenOp: "round",
}  # fmt: skip


def convert_unary_math(cx: Emitter, op: Operation) -> None:
    """math.exp, log, sqrt, rsqrt, abs, floor, ... (MATH_UNARY): the WGSL builtin, NaN kept
    (and log, sqrt of a negative number NaN) where WGSL leaves it to the driver."""
    a = cx.v(operands_of(op)[0])
    r = op.results[0]
    f = MATH_UNARY[type(op)]
    if f not in _KEEP_NAN or not w.is_float(a.type):
        cx.set(r, cx.call(f, [a], r))
        return
    v = cx.call(f, [a])
    if f in _NEGATIVE_NAN:  # log, sqrt of a negative: NaN (WGSL leaves it to the driver)
        v = cx.call("select", [v, nan(cx, a), cx.binary("<", a, cx.fconst(0.0, a))])
    cx.set(r, keep_nan(cx, v, [a], r))


def reject_expanded_math(cx: Emitter, op: Operation) -> None:
    """math.erf, tanh, sin, cos: an error; nn-loop-expand-math{target=wgsl} expands them first."""
    raise cx.error(
        f"{op.name} is not converted to WGSL: run nn-loop-expand-math{{target=wgsl}} before "
        "convert-nn-loop-to-wgsl"
    )


def convert_powf(cx: Emitter, op: math.PowFOp) -> None:
    """math.powf: special exponents as cheaper code; otherwise pow(|a|, b) with C's pow for
    signs, NaN and the cases that give 1."""
    a, b = cx.v(op.lhs), cx.v(op.rhs)
    c = cx.cval(b)
    if c is None and isinstance(b.owner, w.ConstructOp) and len(b.owner.args) == 1:
        c = cx.cval(b.owner.args[0])
    r = op.result
    if c == 1.0:
        cx.set(r, a)
        return
    if c == 0.0:
        cx.set(r, cx.fconst(1.0, a))
        return
    if c == 2.0:
        cx.set(r, cx.binary("*", a, a, r))
        return
    if c == 0.5:
        cx.set(r, cx.call("sqrt", [a], r))
        return
    if c == -0.5:
        cx.set(r, cx.call("inverseSqrt", [a], r))
        return
    if c == -1.0:
        cx.set(r, cx.binary("/", cx.fconst(1.0, a), a, r))
        return
    # WGSL's pow is exp2(b * log2(a)), not defined at a = 0 (lavapipe gives 0, SwiftShader
    # pow(0, 0.04) = 0.03): C's pow(+-0, b) is 0 for b > 0 and +inf for b < 0
    zero = cx.binary("==", a, cx.fconst(0.0, a))
    if c is not None and c < 0:  # 1 / pow(|a|, -c)
        mag = cx.binary(
            "/", cx.fconst(1.0, a), cx.call("pow", [cx.call("abs", [a]), cx.fconst(-c, b)])
        )
        mag = cx.call("select", [mag, inf(cx, a), zero])
    else:
        mag = cx.call("pow", [cx.call("abs", [a]), b])
        at_zero = cx.fconst(0.0, a)
        if c is None:
            at_zero = cx.call("select", [at_zero, inf(cx, a), cx.binary("<", b, cx.fconst(0.0, b))])
        mag = cx.call("select", [mag, at_zero, zero])
    if c is not None:
        if c != 0.0:  # pow(NaN, y) is NaN but for y = 0
            mag = keep_nan(cx, mag, [a])
        if not float(c).is_integer():  # a finite negative base to a fractional power: NaN
            neg_base = cx.binary("&", cx.binary("<", a, cx.fconst(0.0, a)), is_finite(cx, a))
            mag = cx.call("select", [mag, nan(cx, a), neg_base])
        if float(c).is_integer() and int(c) % 2 == 1:
            neg = cx.un("-", mag)
            sel = cx.binary("<", a, cx.fconst(0.0, a))
            cx.set(r, cx.call("select", [mag, neg, sel], r))
        else:
            cx.set(r, mag)
        return
    # b odd integer: b - 2*floor(b/2) == 1
    half = cx.call("floor", [cx.binary("*", b, cx.fconst(0.5, b))])
    twice = cx.binary("*", half, cx.fconst(2.0, b))
    odd = cx.binary("==", cx.binary("-", b, twice), cx.fconst(1.0, b))
    negbase = cx.binary("<", a, cx.fconst(0.0, a))
    flip = cx.binary("&", odd, negbase)
    neg = cx.un("-", mag)
    res = cx.call("select", [mag, neg, flip])
    frac = cx.binary("!=", b, cx.call("floor", [b]))
    finite_neg = cx.binary("&", negbase, is_finite(cx, a))
    res = cx.call("select", [res, nan(cx, a), cx.binary("&", finite_neg, frac)])
    # as C's pow: NaN in, NaN out, but pow(x, 0) = pow(1, y) = pow(-1, +-inf) = 1
    res = cx.call(
        "select", [res, cx.binary("+", a, b), cx.binary("|", is_nan(cx, a), is_nan(cx, b))]
    )
    one = cx.fconst(1.0, a)
    is_one = cx.binary("|", cx.binary("==", b, cx.fconst(0.0, b)), cx.binary("==", a, one))
    inf_b = cx.binary("&", cx.un("!", is_finite(cx, b)), cx.un("!", is_nan(cx, b)))
    minus_one = cx.binary("&", cx.binary("==", a, cx.un("-", one)), inf_b)
    cx.set(r, cx.call("select", [res, one, cx.binary("|", is_one, minus_one)], r))


def convert_fma(cx: Emitter, op: math.FmaOp) -> None:
    """math.fma: WGSL's fma."""
    (r,) = op.results
    vmap = cx.vmap
    cx.set(r, cx.call("fma", [vmap[id(x)] for x in operands_of(op)], r))
