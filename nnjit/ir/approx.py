"""The float32 approximations of erf, tanh, sin and cos that generated kernels compute, written
once.

Each approximation is one function over an `Ops` object (add, mul, fma, div, min, compare,
select, bit operations): `nn-loop-expand-math` (nnjit/passes/nn_loop_expand_math.py) runs it
on an Ops that builds arith/math ops, and `evaluate` (`erf_f32`, ...) below runs it on numpy
float32 arrays, so tests and tools compute exactly what a kernel computes (with `fma` as a
multiply then an add, each rounded to f32, as the nn_loop interpreter and Wasm's scalar
code do).

Two forms of erf and tanh, chosen by target (`FORMS`):

* "exp" (target wgsl; WGSL has exp as a builtin): a polynomial near 0 and an erfc/exp
  formula further out, picked per lane with a compare and a select.
  erf: |x| < 0.875: x P(x^2); else sign(x) (1 - exp(-a^2) Q(t)), a = min(|x|, 4),
  t = 1 / (1 + a/2). tanh: |x| < 0.625: x + x^3 P(x^2); else sign(x) (1 - 2 / (exp(2 a) + 1)),
  a = min(|x|, 9.5).
* "rational" (target wasm; Wasm has no exp instruction, so exp is a helper call per element,
  and today's Wasm conversion fails on a vector<4xf32> cmpf + select: an f32 op on a v128): f(x) = sign(x) a P(a^2) /
  Q(a^2), a = min(|x|, clamp), set to exactly 1 at the clamp on the bits (so 1 - erf and
  1 + tanh reach 0 for large arguments, as the exact functions do in f32).

Measured max error in float32 (4.8 million points over [-8, 8] (tanh: [-12, 12]),
[-1e-3, 1e-3] and +-|x| from 1e-38 to 10, against Python's math.erf / math.tanh in float64;
numpy's exp in f32 stands for the target's exp; tests/test_expand_math.py asserts these
bounds on a tenth of that sweep):

    erf  exp form:      1.2e-7 absolute, 1.8e-7 relative (1.1e-7, 1.7e-7 with fused fma)
    erf  rational form: 3.8e-7 absolute and relative (3.5e-7 with fused fma)
    tanh exp form:      1.0e-7 absolute, 1.8e-7 relative (fused or not)
    tanh rational form: 3.5e-7 absolute and relative (2.8e-7 with fused fma)

(The exp forms are today's Wasm helper functions, the better of the two exp-based erfs: the
WGSL conversion's odd polynomial + Numerical Recipes erfc has 1.4e-7. The rational forms are
the lowering's inline GELU/tanh fits, trading a few ulp near 1 for no exp call. WGSL's
builtin tanh, which the WGSL conversion uses today, is the driver's: not measurable here.)

Special values, both forms: NaN gives NaN (a float min keeps it; the sign and clamp steps act
on the bits, and a NaN's bits stay NaN there), +-inf gives +-1, -0.0 gives -0.0, and a
tiny (or subnormal) x gives x times 2/sqrt(pi) (erf) or x (tanh): relative error as near 0.

sin and cos have one form for both targets: a Cody-Waite range reduction x = k pi/2 + r,
k = roundeven(x 2/pi), r = x - k C1 - k C2 - k C3 (three multiply-adds; C1 and C2 have 8
significant bits, so k C1 and k C2 are exact for |k| < 2^16 whether the fma is fused or not,
and the first subtraction is exact), then Cephes' minimax polynomials on r in [-pi/4, pi/4]
(sin r = r + r^3 S(r^2), cos r = 1 - r^2/2 + r^4 C(r^2)). The quadrant, k mod 4 (k + 1 for
cos), read from the bits of k + 1.5 2^23, picks +-sin r or +-cos r on the bits (no compare or
select). Measured max error in float32 against numpy's sin / cos in float64 (4.8 million
points over [-1e5, 1e5], [-10, 10] and +-|x| from 1e-38 to 1; tests/test_expand_math.py
asserts the bounds on a tenth of that sweep):

    sin, cos, |x| <= 1e5:  9.5e-8 absolute (9.2e-8 with fused fma; numpy's float32: 7.0e-8),
                           6.8e-8 relative for |x| < 0.5

Each part multiplies its own copy of k (k, and k's bits with the lowest one or two mantissa
bits cleared, the same value for |k| < 2^22): a driver that reassociates float math cannot
fold fma(k, -C2, fma(k, -C1, x)) into fma(k, -(C1 + C2), x) (lavapipe's compiler does, which
made the error 1.5e-7 at 1e4, and 2.8e-4 in the reduced argument).

Beyond |x| = 2^16 pi/2 (1.03e5) k C1 is rounded where the fma is not fused and the error grows
(5.6e-3 at 2e5, 0.03 at 1e6: the size of the rounding of such an argument, 2^-7 at 1e5; with
a fused fma 1.3e-7 up to 1e6). r is clamped to [-1.6, 1.6] (|r| < 1.2 while |k| < 2^22), so
that any finite x gives a value in [-1, 1]. NaN and +-inf give NaN, set on the bits from x's
whatever the device's arithmetic does with them; sin(-0.0) is +0.0.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np


class Ops(Protocol):
    """What an approximation needs; values are f32 (or vector of f32) unless named `i`."""

    def const(self, value: float) -> Any: ...
    def iconst(self, value: int) -> Any: ...
    def add(self, a: Any, b: Any) -> Any: ...
    def sub(self, a: Any, b: Any) -> Any: ...
    def mul(self, a: Any, b: Any) -> Any: ...
    def div(self, a: Any, b: Any) -> Any: ...
    def fma(self, a: Any, b: Any, c: Any) -> Any: ...
    def neg(self, a: Any) -> Any: ...
    def abs(self, a: Any) -> Any: ...
    def min(self, a: Any, b: Any) -> Any: ...  # NaN if either is (arith.minimumf)
    def max(self, a: Any, b: Any) -> Any: ...  # NaN if either is (arith.maximumf)
    def round(self, a: Any) -> Any: ...  # to the nearest integer, ties to even
    def exp(self, a: Any) -> Any: ...
    def lt(self, a: Any, b: Any) -> Any: ...  # ordered a < b (false for NaN): a mask
    def select(self, cond: Any, a: Any, b: Any) -> Any: ...
    def bits(self, a: Any) -> Any: ...
    def float(self, i: Any) -> Any: ...
    def iand(self, a: Any, b: Any) -> Any: ...
    def ior(self, a: Any, b: Any) -> Any: ...
    def ixor(self, a: Any, b: Any) -> Any: ...
    def isub(self, a: Any, b: Any) -> Any: ...
    def imul(self, a: Any, b: Any) -> Any: ...
    def imin(self, a: Any, b: Any) -> Any: ...
    def imax(self, a: Any, b: Any) -> Any: ...


def _f32_bits(value: float) -> int:
    return struct.unpack("<i", struct.pack("<f", value))[0]


_SIGN = -(2**31)
_MAGNITUDE = 0x7FFFFFFF
_ONE_BITS = 0x3F800000

# ------------------------------------------------------------------------- exp forms
# erf: |x| < 0.875: x P(x^2) (fit, 1.1e-7 absolute in f32); else 1 - exp(-a^2) Q(t),
# t = 1 / (1 + a/2), a = min(|x|, 4) (Q fits erfc(a) exp(a^2) to 4.6e-10 relative).
ERF_SMALL = 0.875
ERF_POLY = (1.1283791670104377, -0.37612636912498265, 0.11283743997423593,
            -0.026862144411095794, 0.005208075375008696, -0.0008225871566798447,
            8.737620233417854e-05)  # fmt: skip
ERFC_CLAMP = 4.0
ERFC_POLY = (-0.0001573065070371539, 0.2849593863484237, 0.2593908046491197,
             0.34883215586025856, -0.10572235999803338, 0.5658295276183966,
             -0.4729034036760546, 0.11982840006014545)  # fmt: skip
# tanh: |x| < 0.625: x + x^3 P(x^2) (least-squares fit, 7.4e-8 relative in f32); else
# 1 - 2 / (exp(2a) + 1), a = min(|x|, 9.5) (then 1.0 exactly).
TANH_SMALL = 0.625
TANH_POLY = (-0.3333333101061629, 0.13333212509109493, -0.053947454951906906,
             0.021704004131179525, -0.00818466989937635, 0.0021489909425039064)  # fmt: skip
TANH_EXP_CLAMP = 9.5

# -------------------------------------------------------------------- rational forms
# erf(a) ~ a P(a^2) / Q(a^2) on [0, 3.9] (relative fit, 5e-8 in float64; erf(3.9) = 1 - 3.5e-8)
ERF_CLAMP = 3.9
ERF_P = (1.1283791065216064, 0.1982261687517166, 0.05035123974084854, 0.0036340048536658287,
         0.0001406221417710185, -1.9628976133390097e-06, 2.0140083378805684e-08)  # fmt: skip
ERF_Q = (1.0, 0.5090051293373108, 0.11429939419031143, 0.014211739413440228,
         0.0009409321355633438)  # fmt: skip
# tanh(a) ~ a P(a^2) / Q(a^2) on [0, 7.9053111] (Lawson-weighted least squares, 6e-9 in
# float64; the fit is 1 - 1.2e-7 at the clamp, where f32 tanh is 1)
TANH_CLAMP = 7.9053111
TANH_P = (0.9999999943560088, 0.1345034026213885, 0.003578652002672242,
          2.2017254512071187e-05, 1.5418570853295157e-08)  # fmt: skip
TANH_Q = (1.0, 0.46783668255237076, 0.026190963735243558, 0.0003423079182521213,
          8.595188740720653e-07)  # fmt: skip


def horner(o: Ops, coeffs: Sequence[float], z: Any) -> Any:
    """sum(coeffs[k] * z^k) by Horner's rule with multiply-adds."""
    acc = o.const(coeffs[-1])
    for c in reversed(coeffs[:-1]):
        acc = o.fma(acc, z, o.const(c))
    return acc


def with_sign_of(o: Ops, mag: Any, x: Any) -> Any:
    """|mag| with the sign bit of x (-0.0 stays -0.0; a NaN magnitude stays NaN)."""
    sign = o.iand(o.bits(x), o.iconst(_SIGN))
    return o.float(o.ior(o.iand(o.bits(mag), o.iconst(_MAGNITUDE)), sign))


def erf_exp(o: Ops, x: Any) -> Any:
    a = o.min(o.abs(x), o.const(ERFC_CLAMP))
    t = o.div(o.const(1.0), o.fma(a, o.const(0.5), o.const(1.0)))
    # exactly +-1 from the clamp on (erf(4) is 1 in f32), whatever the device's exp gives
    # there: GELU's x/2 + x/2 erf(x/sqrt2) is 0 for a large negative x only if erf is exactly
    # -1 (lavapipe's exp(-16) made gelu(-1e6) = 0.03). A NaN x keeps NaN: 0 * Q(NaN).
    e = o.select(o.lt(a, o.const(ERFC_CLAMP)), o.exp(o.neg(o.mul(a, a))), o.const(0.0))
    big = with_sign_of(o, o.sub(o.const(1.0), o.mul(e, horner(o, ERFC_POLY, t))), x)
    small = o.mul(x, horner(o, ERF_POLY, o.mul(x, x)))
    return o.select(o.lt(o.abs(x), o.const(ERF_SMALL)), small, big)


def tanh_exp(o: Ops, x: Any) -> Any:
    a = o.abs(x)
    e = o.exp(o.mul(o.min(a, o.const(TANH_EXP_CLAMP)), o.const(2.0)))
    big = o.sub(o.const(1.0), o.div(o.const(2.0), o.add(e, o.const(1.0))))
    u = o.mul(x, x)
    small = o.fma(o.mul(x, u), horner(o, TANH_POLY, u), x)
    return with_sign_of(o, o.select(o.lt(a, o.const(TANH_SMALL)), small, big), x)


def _rational(o: Ops, x: Any, p: Sequence[float], q: Sequence[float], clamp: float) -> Any:
    """sign(x) a P(a^2) / Q(a^2), a = min(|x|, clamp), exactly 1 where a is the clamp: on the
    bits, max_s(|bits(r)|, bits(1.0) * (a == clamp)) (a NaN's bits stay NaN under max_s)."""
    sign = o.iand(o.bits(x), o.iconst(_SIGN))
    a = o.min(o.abs(x), o.const(clamp))
    z = o.mul(a, a)
    r = o.div(o.mul(a, horner(o, p, z)), horner(o, q, z))
    d = o.isub(o.bits(a), o.iconst(_f32_bits(clamp) - 1))
    at_clamp = o.imin(o.imax(d, o.iconst(0)), o.iconst(1))
    one = o.imul(at_clamp, o.iconst(_ONE_BITS))
    # (a NaN from the division may carry the sign bit, x86's default NaN does: cleared, so
    # that max_s keeps it)
    rb = o.imax(o.iand(o.bits(r), o.iconst(_MAGNITUDE)), one)
    return o.float(o.ior(rb, sign))


def erf_rational(o: Ops, x: Any) -> Any:
    return _rational(o, x, ERF_P, ERF_Q, ERF_CLAMP)


def tanh_rational(o: Ops, x: Any) -> Any:
    return _rational(o, x, TANH_P, TANH_Q, TANH_CLAMP)


# ------------------------------------------------------------------------ sin and cos
# pi/2 = C1 + C2 + C3 - 5.1e-14: C1 and C2 the leading 8 significant bits of what is left,
# C3 the rest rounded to f32
SINCOS_PIO2 = (1.5703125, 0.0004825592041015625, 1.2675908465098473e-06)
# k's copies: k, and k's bits with the lowest mantissa bit (two bits) cleared, zero in an
# integer |k| < 2^22
SINCOS_COPY_MASKS = (0, ~0x1, ~0x3)
SINCOS_SHIFT = 12582912.0  # 1.5 2^23: k + this is exact for |k| < 2^22, k in the low bits
# |r| <= pi/4 + (rounding of x 2/pi) pi/2 < 1.2 for |k| < 2^22; a larger |r| (a finite x beyond
# that) is clamped so that the polynomials stay within [-1, 1]
SINCOS_CLAMP = 1.6
# Cephes' sinf / cosf on [-pi/4, pi/4]: sin r = r + r^3 S(r^2), cos r = 1 - r^2/2 + r^4 C(r^2)
SIN_POLY = (-1.6666654611e-1, 8.3321608736e-3, -1.9515295891e-4)
COS_POLY = (4.166664568298827e-2, -1.388731625493765e-3, 2.443315711809948e-5)


def _nan_if_not_finite(o: Ops, rb: Any, x: Any) -> Any:
    """The f32 of bits rb, or a NaN where x is +-inf or NaN (its bits or-ed with a quiet NaN's)."""
    d = o.isub(o.iand(o.bits(x), o.iconst(_MAGNITUDE)), o.iconst(0x7F7FFFFF))
    not_finite = o.imin(o.imax(d, o.iconst(0)), o.iconst(1))
    return o.float(o.ior(rb, o.imul(not_finite, o.iconst(0x7FC00000))))


def _sin_cos(o: Ops, x: Any, quarter: int) -> Any:
    """sin(x + quarter pi/2) (quarter 0: sin, 1: cos): Cody-Waite reduction, polynomials on
    [-pi/4, pi/4] and the quadrant on the bits (see the module docstring).

    Each part of pi/2 multiplies its own copy of k (its bits with low mantissa bits cleared
    that are zero in k): a driver sees three values it cannot prove equal, so it cannot merge
    two parts into one rounded constant."""
    k = o.round(o.mul(x, o.const(2.0 / math.pi)))
    kb = o.bits(k)
    r = x
    for c, mask in zip(SINCOS_PIO2, SINCOS_COPY_MASKS, strict=True):
        r = o.fma(o.float(o.iand(kb, o.iconst(mask))) if mask else k, o.const(-c), r)
    r = o.max(o.min(r, o.const(SINCOS_CLAMP)), o.const(-SINCOS_CLAMP))
    z = o.mul(r, r)
    s = o.fma(o.mul(r, z), horner(o, SIN_POLY, z), r)
    c = o.fma(o.mul(z, z), horner(o, COS_POLY, z), o.fma(z, o.const(-0.5), o.const(1.0)))
    q = o.bits(o.add(k, o.const(SINCOS_SHIFT + quarter)))  # low bits: k + quarter (mod 4)
    odd = o.iand(q, o.iconst(1))  # quadrants 1, 3: cos r; 0, 2: sin r
    cos_mask, sin_mask = o.isub(o.iconst(0), odd), o.isub(odd, o.iconst(1))  # all ones or 0
    v = o.ior(o.iand(o.bits(c), cos_mask), o.iand(o.bits(s), sin_mask))
    flip = o.imul(o.iand(q, o.iconst(2)), o.iconst(1 << 30))  # quadrants 2, 3: the sign bit
    return _nan_if_not_finite(o, o.ixor(v, flip), x)


def sin_reduced(o: Ops, x: Any) -> Any:
    return _sin_cos(o, x, 0)


def cos_reduced(o: Ops, x: Any) -> Any:
    return _sin_cos(o, x, 1)


Approximation = Callable[[Ops, Any], Any]
FORMS: dict[str, dict[str, Approximation]] = {
    "wgsl": {"erf": erf_exp, "tanh": tanh_exp, "sin": sin_reduced, "cos": cos_reduced},
    "wasm": {"erf": erf_rational, "tanh": tanh_rational, "sin": sin_reduced, "cos": cos_reduced},
}
"""target -> function name -> the approximation nn-loop-expand-math writes for it."""


# ---------------------------------------------------------------------- numpy evaluation


class NumpyOps:
    """Ops on numpy float32 / int32 arrays, each result rounded to f32 (`fma` unfused, or
    fused with `fused=True`: the product and sum in float64, rounded once)."""

    def __init__(self, fused: bool = False):
        self.fused = fused

    def const(self, value: float) -> np.float32:
        return np.float32(value)

    def iconst(self, value: int) -> np.int32:
        return np.int32(value)

    def add(self, a, b):
        return a + b

    def sub(self, a, b):
        return a - b

    def mul(self, a, b):
        return a * b

    def div(self, a, b):
        return a / b

    def fma(self, a, b, c):
        if self.fused:
            f64 = np.float64
            return (np.asarray(a, f64) * np.asarray(b, f64) + np.asarray(c, f64)).astype(np.float32)
        return a * b + c

    def neg(self, a):
        return -a

    def abs(self, a):
        return np.abs(a)

    def min(self, a, b):
        return np.minimum(a, b)

    def max(self, a, b):
        return np.maximum(a, b)

    def round(self, a):
        return np.rint(a)

    def exp(self, a):
        return np.exp(a)

    def lt(self, a, b):
        return a < b

    def select(self, cond, a, b):
        return np.where(cond, a, b).astype(np.float32)

    def bits(self, a):
        return np.asarray(a, np.float32).view(np.int32)

    def float(self, i):
        return np.asarray(i, np.int32).view(np.float32)

    def iand(self, a, b):
        return a & b

    def ior(self, a, b):
        return a | b

    def ixor(self, a, b):
        return a ^ b

    def isub(self, a, b):
        return (np.asarray(a, np.int64) - b).astype(np.int32)

    def imul(self, a, b):
        return (np.asarray(a, np.int64) * b).astype(np.int32)

    def imin(self, a, b):
        return np.minimum(a, b)

    def imax(self, a, b):
        return np.maximum(a, b)


def evaluate(target: str, fn: str, x: Any, fused: bool = False) -> np.ndarray:
    """The kernel's approximation `fn` ("erf", "tanh", "sin", "cos") for `target` on x, in
    float32."""
    xs = np.atleast_1d(np.asarray(x, np.float32))
    with np.errstate(all="ignore"):
        r = FORMS[target][fn](NumpyOps(fused), xs)
    return np.asarray(r, np.float32).reshape(np.shape(x))


def erf_f32(x: Any, target: str = "wasm") -> np.ndarray:
    """erf as kernels of `target` compute it (float32)."""
    return evaluate(target, "erf", x)


def tanh_f32(x: Any, target: str = "wasm") -> np.ndarray:
    """tanh as kernels of `target` compute it (float32)."""
    return evaluate(target, "tanh", x)


def sin_f32(x: Any, target: str = "wasm") -> np.ndarray:
    """sin as kernels of `target` compute it (float32)."""
    return evaluate(target, "sin", x)


def cos_f32(x: Any, target: str = "wasm") -> np.ndarray:
    """cos as kernels of `target` compute it (float32)."""
    return evaluate(target, "cos", x)
