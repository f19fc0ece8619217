"""The erf and tanh that the WGSL conversion emits, in one place (nn-loop-expand-math, with the
forms of nnjit/ir/approx.py, is to take them over; until it runs in the pipelines these are
what WGSL kernels compute): erf as an odd polynomial (|x| < 1) or an erfc rational
approximation (|x| >= 1), absolute error below 2e-7 in f32; tanh clamped to [-10, 10] (tanh of
a large argument is NaN on some drivers) with its odd Taylor polynomial near 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from xdsl.ir import SSAValue

from nnjit.passes.wgsl.nan import keep_nan

if TYPE_CHECKING:
    from nnjit.passes.wgsl.emitter import Emitter

# erf(x) = x * P(x^2) for |x| < 1 (least-squares fit, f32 error ~1.3e-7)
_ERF_SMALL = (
    7.882379772087087e-05, -0.0008018822725760785, 0.005189308642787488,
    -0.026854327256203455, 0.11283597431409863, -0.37612626901174545, 1.1283791658812163,
)  # fmt: skip
# erfc(a) = t * exp(-a*a + Q(t)), t = 1 / (1 + a/2), a >= 0 (Numerical Recipes erfcc,
# fractional error < 1.2e-7)
_ERFC_Q = (
    0.17087277, -0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806,
    0.09678418, 0.37409196, 1.00002368, -1.26551223,
)  # fmt: skip
_TANH_CLAMP = 10.0  # tanh(10) rounds to 1 in f32
_TANH_SMALL = 0.0625  # below it, tanh is its odd Taylor polynomial (see tanh_approx)


def tanh_approx(cx: Emitter, a: SSAValue, hint: SSAValue | None = None) -> SSAValue:
    """tanh(a): WGSL's tanh of `a` clamped to [-_TANH_CLAMP, _TANH_CLAMP] (NaN kept), or its odd
    Taylor polynomial where |a| < _TANH_SMALL."""
    c = cx.call("clamp", [a, cx.fconst(-_TANH_CLAMP, a), cx.fconst(_TANH_CLAMP, a)])
    t = keep_nan(cx, cx.call("tanh", [c]), [a])
    # WGSL's tanh is only absolutely accurate (lavapipe: 3e-8 near 0, so tanh(1e-30) was
    # 3e-8): below _TANH_SMALL, x (1 - x^2/3 + 2 x^4/15), relative error < 4e-9
    x2 = cx.binary("*", a, a)
    p = cx.binary("*", a, horner(cx, [2.0 / 15.0, -1.0 / 3.0, 1.0], x2))
    small = cx.binary("<", cx.call("abs", [a]), cx.fconst(_TANH_SMALL, a))
    return cx.call("select", [t, p, small], hint)


def horner(cx: Emitter, coeffs: Sequence[float], x: SSAValue) -> SSAValue:
    """The polynomial with `coeffs` (highest degree first) at x."""
    acc = cx.fconst(coeffs[0], x)
    for c in coeffs[1:]:
        acc = cx.binary("+", cx.binary("*", acc, x), cx.fconst(c, x))
    return acc


def erf_body(cx: Emitter, x: SSAValue) -> SSAValue:
    """erf(x), the body of the helper function `erf_f32` (or `erf_vec4f32`)."""
    a = cx.call("abs", [x])
    # |x| < 1: x * P(x^2)
    x2 = cx.binary("*", x, x)
    small = cx.binary("*", x, horner(cx, _ERF_SMALL, x2))
    # |x| >= 1: sign(x) * (1 - erfc(|x|))
    one = cx.fconst(1.0, x)
    t = cx.binary("/", one, cx.binary("+", one, cx.binary("*", a, cx.fconst(0.5, x))))
    q = horner(cx, _ERFC_Q, t)
    arg = cx.binary("-", q, cx.binary("*", a, a))
    erfc = cx.binary("*", t, cx.call("exp", [arg]))
    big_abs = cx.binary("-", one, erfc)
    neg = cx.un("-", big_abs)
    big = cx.call("select", [neg, big_abs, cx.binary(">=", x, cx.fconst(0.0, x))])
    is_small = cx.binary("<", a, one)
    return cx.call("select", [big, small, is_small])
