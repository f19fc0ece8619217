"""The math helper functions of a Wasm kernel module (`exp_f32`, `log_f32x4`, ...): the one
place that states the Wasm target's approximations of exp, log and pow (erf, tanh, sin and cos
are nnjit/ir/approx.py's, written out by nn-loop-expand-math before the conversion).

Each helper is an `nn_wasm.func` that takes and returns one f32 (or one v128 of 4 f32 lanes;
`pow` takes two), built once per module on first use (`HelperLib.symbol`). The scalar and the
f32x4 version of a helper are the same code (`Lanes` spells both).
"""

from __future__ import annotations

import math

from xdsl.ir import Block, Region, SSAValue

from nnjit.backends.names import NameSupply
from nnjit.dialects import nn_wasm as W
from nnjit.passes.wasm.builder import Builder, Locals, f32, i32, v128

# exp: Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, degree-7 Taylor polynomial (error
# < 1e-8 relative), then 2^n applied as two factors 2^h * 2^(n-h) so that results between
# FLT_MAX and the smallest subnormal are exact in range.
_LOG2E = 1.4426950408889634
_LN2_HI = 0.693359375
_LN2_LO = -2.12194440e-4
_EXP_HI = 88.72283
_EXP_LO = -104.0
_EXP_POLY = [1.0, 1.0, 1 / 2, 1 / 6, 1 / 24, 1 / 120, 1 / 720, 1 / 5040]
# log: x = m 2^e with m in [sqrt(1/2), sqrt(2)); log(m) = 2 atanh(s), s = (m-1)/(m+1),
# |s| < 0.172, series to s^9 (error < 1e-9); subnormals are scaled by 2^23 first.
_SQRT2 = 1.4142135623730951
_LN2 = 0.6931471805599453


class Lanes:
    """Scalar (f32/i32) or vector (f32x4/i32x4) arithmetic with one spelling, for helpers."""

    def __init__(self, b: Builder, vec: bool):
        self.b, self.vec = b, vec
        self.ft = v128 if vec else f32
        self.it = v128 if vec else i32

    def c(self, x: float) -> SSAValue:
        return self.b.v128c("f32x4", [x] * 4) if self.vec else self.b.f32c(x)

    def ci(self, x: int) -> SSAValue:
        return self.b.v128c("i32x4", [x] * 4) if self.vec else self.b.i32c(x)

    def f(self, name: str, *args: SSAValue) -> SSAValue:
        return self.b.op(("f32x4." if self.vec else "f32.") + name, *args)

    def i(self, name: str, *args: SSAValue) -> SSAValue:
        if self.vec and name in ("and", "or", "xor"):
            return self.b.op("v128." + name, *args)
        return self.b.op(("i32x4." if self.vec else "i32.") + name, *args)

    def shift(self, name: str, a: SSAValue, n: int) -> SSAValue:
        return self.i(name, a, self.b.i32c(n))

    def to_int(self, a: SSAValue) -> SSAValue:  # toward zero, saturating
        return self.b.op("i32x4.trunc_sat_f32x4_s" if self.vec else "i32.trunc_sat_f32_s", a)

    def to_float(self, a: SSAValue) -> SSAValue:
        return self.b.op("f32x4.convert_i32x4_s" if self.vec else "f32.convert_i32_s", a)

    def as_float(self, a: SSAValue) -> SSAValue:
        return a if self.vec else self.b.op("f32.reinterpret_i32", a)

    def as_int(self, a: SSAValue) -> SSAValue:
        return a if self.vec else self.b.op("i32.reinterpret_f32", a)

    def select(self, a: SSAValue, b: SSAValue, cond: SSAValue) -> SSAValue:
        """cond ? a : b, cond from `f`/`i` comparisons (i32 0/1 or all-ones lanes)."""
        return self.b.op("v128.bitselect", a, b, cond) if self.vec else self.b.select(a, b, cond)

    def get(self, name: str) -> SSAValue:
        return self.b.get(name, self.ft)

    def geti(self, name: str) -> SSAValue:
        return self.b.get(name, self.it)

    def horner(self, coeffs: list[float], var: str) -> SSAValue:
        v = self.c(coeffs[-1])
        for c in reversed(coeffs[:-1]):
            v = self.f("add", self.f("mul", v, self.get(var)), self.c(c))
        return v

    def copysign(self, mag: str, sign: str) -> SSAValue:
        """The value of local `mag` with the sign of local `sign`."""
        if self.vec:
            return self.b.op("v128.bitselect", self.get(sign), self.get(mag),
                             self.ci(-(2**31)))  # fmt: skip
        return self.f("copysign", self.get(mag), self.get(sign))


class HelperLib:
    """Builds the math helper functions a kernel needs (`exp_f32`, `log_f32x4`, ...).

    Each helper takes and returns one f32 (or v128 of 4 f32 lanes); `pow` takes two."""

    def __init__(self, module_names: NameSupply):
        self.names = module_names
        self.symbols: dict[str, str] = {}  # "exp_f32" -> function symbol
        self.funcs: list[W.FuncOp] = []

    def symbol(self, fn: str, vec: bool) -> str:
        key = f"{fn}_{'f32x4' if vec else 'f32'}"
        if key not in self.symbols:
            self.symbols[key] = self.names.fresh(key)
            build = getattr(self, f"_{fn}")
            loc = Locals()
            nargs = 2 if fn == "pow" else 1
            ps = [loc.param(n, v128 if vec else f32) for n in ("x", "y")[:nargs]]
            body = Region(Block())
            b = Builder(body.block)
            res = build(Lanes(b, vec), loc, *ps)
            b.ret([res])
            self.funcs.append(
                W.FuncOp(self.symbols[key], loc.params, [v128 if vec else f32], loc.locals,
                         None, body)  # fmt: skip
            )
        return self.symbols[key]

    def _exp(self, L: Lanes, loc: Locals, x: str) -> SSAValue:
        b = L.b
        xc, n, r, ni, h = (loc.new(s, t) for s, t in (
            ("xc", L.ft), ("n", L.ft), ("r", L.ft), ("ni", L.it), ("h", L.it)))  # fmt: skip
        b.set(xc, L.f("min", L.f("max", L.get(x), L.c(_EXP_LO)), L.c(_EXP_HI)))
        b.set(n, L.f("nearest", L.f("mul", L.get(xc), L.c(_LOG2E))))
        b.set(r, L.f("sub", L.f("sub", L.get(xc), L.f("mul", L.get(n), L.c(_LN2_HI))),
                     L.f("mul", L.get(n), L.c(_LN2_LO))))  # fmt: skip
        b.set(ni, L.to_int(L.get(n)))
        b.set(h, L.shift("shr_s", L.geti(ni), 1))
        # r <- p(r) * 2^h * 2^(n-h)
        p = L.horner(_EXP_POLY, r)
        p = L.f("mul", p, L.as_float(L.shift("shl", L.i("add", L.geti(h), L.ci(127)), 23)))
        b.set(r, L.f("mul", p, L.as_float(
            L.shift("shl", L.i("add", L.i("sub", L.geti(ni), L.geti(h)), L.ci(127)), 23))))  # fmt: skip
        return L.select(L.c(math.inf), L.get(r), L.f("gt", L.get(x), L.c(_EXP_HI)))

    def _log(self, L: Lanes, loc: Locals, x: str) -> SSAValue:
        b = L.b
        xs, m, s, z, r = (loc.new(n, L.ft) for n in ("xs", "m", "s", "z", "r"))
        bits, e, den = (loc.new(n, L.it) for n in ("bits", "e", "den"))
        b.set(den, L.f("lt", L.get(x), L.c(1.1754943508222875e-38)))
        b.set(xs, L.select(L.f("mul", L.get(x), L.c(8388608.0)), L.get(x), L.geti(den)))
        b.set(bits, L.as_int(L.get(xs)))
        # e = ((bits >> 23) & 255) - 127 - (23 if subnormal)
        e0 = L.i("sub", L.i("and", L.shift("shr_u", L.geti(bits), 23), L.ci(255)), L.ci(127))
        b.set(e, L.i("sub", e0, L.select(L.ci(23), L.ci(0), L.geti(den))))
        mb = L.i("or", L.i("and", L.geti(bits), L.ci(0x7FFFFF)), L.ci(0x3F800000))
        b.set(m, L.as_float(mb))
        # m in [1, 2): halve it above sqrt(2) and count that in e
        b.set(den, L.f("gt", L.get(m), L.c(_SQRT2)))
        b.set(m, L.select(L.f("mul", L.get(m), L.c(0.5)), L.get(m), L.geti(den)))
        if L.vec:
            b.set(e, L.i("sub", L.geti(e), L.geti(den)))  # mask lanes are -1
        else:
            b.set(e, L.i("add", L.geti(e), L.geti(den)))
        b.set(s, L.f("div", L.f("sub", L.get(m), L.c(1.0)), L.f("add", L.get(m), L.c(1.0))))
        b.set(z, L.f("mul", L.get(s), L.get(s)))
        b.set(r, L.f("add", L.f("mul", L.to_float(L.geti(e)), L.c(_LN2)),
                     L.f("mul", L.get(s), L.horner([2.0, 2 / 3, 2 / 5, 2 / 7, 2 / 9], z))))
        # specials: log(0) = -inf, log(x<0) = nan, log(inf) = inf, log(nan) = nan
        b.set(r, L.select(L.c(-math.inf), L.get(r), L.f("eq", L.get(x), L.c(0.0))))
        b.set(r, L.select(L.c(math.nan), L.get(r), L.f("lt", L.get(x), L.c(0.0))))
        b.set(r, L.select(L.get(x), L.get(r), L.f("eq", L.get(x), L.c(math.inf))))
        return L.select(L.get(x), L.get(r), L.f("ne", L.get(x), L.get(x)))

    def _pow(self, L: Lanes, loc: Locals, x: str, y: str) -> SSAValue:
        b = L.b
        if L.vec:  # lane by lane through the scalar helper
            scalar = self.symbol("pow", False)
            r = loc.new("r", v128)
            b.set(r, L.get(x))
            for lane in range(4):
                acc = L.get(r)
                lx = b.lane("f32x4.extract_lane", L.get(x), lane)
                v = b.call(scalar, [lx, b.lane("f32x4.extract_lane", L.get(y), lane)], [f32])
                b.set(r, b.lane("f32x4.replace_lane", acc, v, lane))
            return L.get(r)
        log, exp = self.symbol("log", False), self.symbol("exp", False)
        r, yint, yodd = loc.new("r", f32), loc.new("yint", i32), loc.new("yodd", i32)

        def ly() -> SSAValue:
            return b.call(log, [L.f("abs", L.get(x))], [f32])

        b.set(r, b.call(exp, [L.f("mul", L.get(y), ly())], [f32]))
        b.set(yint, L.f("eq", L.f("trunc", L.get(y)), L.get(y)))

        def half() -> SSAValue:
            return L.f("mul", L.get(y), L.c(0.5))

        b.set(yodd, L.i("and", L.geti(yint), L.f("ne", L.f("trunc", half()), half())))

        def neg() -> SSAValue:
            return L.f("lt", L.get(x), L.c(0.0))

        b.set(r, L.select(L.f("neg", L.get(r)), L.get(r), L.i("and", neg(), L.geti(yodd))))
        # (operands are made in stack order.) A finite negative base to a fractional power is
        # NaN; (-inf)^y is +-inf or 0, as C's pow
        b.set(r, L.select(L.c(math.nan), L.get(r), L.i(
            "and", L.i("and", neg(), L.f("gt", L.get(x), L.c(-math.inf))), b.op("i32.eqz", L.geti(yint))
        )))  # fmt: skip
        # pow(x, 0) = pow(1, y) = pow(-1, +-inf) = 1, NaN or not
        return L.select(L.c(1.0), L.get(r), L.i(
            "or",
            L.i("or", L.f("eq", L.get(y), L.c(0.0)), L.f("eq", L.get(x), L.c(1.0))),
            L.i("and", L.f("eq", L.get(x), L.c(-1.0)), L.f("eq", L.f("abs", L.get(y)), L.c(math.inf))),
        ))  # fmt: skip
