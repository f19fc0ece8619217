"""convert-nn-loop-to-wasm: nn_loop kernels with target "wasm" become nn_wasm modules.

Takes nn_loop IR (docs/ir.md); gives the same module where each `nn_loop.kernel` with target
"wasm" is replaced by an `nn_wasm.module` of the same symbol name (func.func @main and other
kernels are left alone). Loops marked `unroll U` are unrolled while emitting, as
nn-loop-unroll would unroll them (the same code, without building the copies as nn_loop ops).

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
local per
element (v128 for vector elements; its indices must be constants after unrolling);
vector<4xf32>/vector<4xi32>/vector<4xi1> are v128 (f32x4 / i32x4 ops, masks as all-ones lanes);
`math.fma` on vectors is `f32x4.relaxed_madd` with `relaxed-simd` (else f32x4.mul + f32x4.add),
on scalars f32.mul + f32.add. math.exp/tanh/erf/log/powf call helper functions emitted into
the module (scalar and f32x4 versions; see `_HelperLib`). An SSA value with one use in the same
block is computed where it is used (folded into its user's operand tree, unless a store lies in
between for values read from memory); every other value goes through a local.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

from xdsl.context import Context
from xdsl.dialects import builtin
from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseIntOrFPElementsAttr,
    DictionaryAttr,
    Float32Type,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    MemRefType,
    VectorType,
)
from xdsl.ir import Attribute, Block, BlockArgument, Operation, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    RewritePattern,
    op_type_rewrite_pattern,
)

from nnjit.backends.names import NameSupply
from nnjit.dialects import nn_loop
from nnjit.dialects import nn_wasm as W
from nnjit.errors import UnsupportedError
from nnjit.ir.fastir import append as _append
from nnjit.ir.fastir import (
    block_args_of,
    first_block_of,
    first_op_of,
    next_op_of,
    next_use_of,
    operands_of,
    replace_kernels,
    type_of,
    use_op_of,
    walk,
)
from nnjit.ir.fastir import new_op as _new_op
from nnjit.passes.nn_loop_unroll import unroll_all

i32, f32, v128 = W.i32, W.f32, W.v128

# ------------------------------------------------------------------------------ builder


class _Builder:
    """Appends nn_wasm instructions to a block; each call returns the pushed value (if any).

    Python evaluates call arguments left to right, so nested calls such as
    `b.op("f32.add", b.get("x", f32), b.f32c(1.0))` push in stack order."""

    def __init__(self, block: Block):
        self.block = block

    def add(self, op: Operation) -> SSAValue | None:
        _append(self.block, op)
        res = op.results
        if res:
            (r,) = res  # (unpacking: SSAValues' indexing is a Python call)
            return r
        return None

    def op(self, mnemonic: str, *operands: SSAValue) -> SSAValue:
        return self.add(_instr(mnemonic, operands))  # type: ignore[return-value]

    def stmt(self, mnemonic: str, *operands: SSAValue) -> None:
        self.add(_instr(mnemonic, operands))

    def i32c(self, v: int) -> SSAValue:
        v = ((v + 2**31) % 2**32) - 2**31
        op = _new_op(W.I32ConstOp, (), (i32,), {"value": W._i64(v)})
        _append(self.block, op)
        (r,) = op.results
        return r

    def f32c(self, v: float) -> SSAValue:
        op = _new_op(W.F32ConstOp, (), (f32,), {"value": _f32_attr(v, math.copysign(1.0, v))})
        _append(self.block, op)
        (r,) = op.results
        return r

    def v128c(self, shape: str, lanes) -> SSAValue:
        return self.add(W.V128ConstOp(shape, lanes))  # type: ignore[return-value]

    def get(self, name: str, t: Attribute) -> SSAValue:
        op = _new_op(W.LocalGetOp, (), (t,), {"local": W._str(name)})
        _append(self.block, op)
        (r,) = op.results
        return r

    def set(self, name: str, v: SSAValue) -> None:
        _append(self.block, _new_op(W.LocalSetOp, (v,), (), {"local": W._str(name)}))

    def tee(self, name: str, v: SSAValue) -> SSAValue:
        op = _new_op(W.LocalTeeOp, (v,), (type_of(v),), {"local": W._str(name)})
        _append(self.block, op)
        (r,) = op.results
        return r

    def load(self, mnemonic: str, addr: SSAValue, offset: int = 0, align: int | None = None):
        cls, t = _LOADS[mnemonic]
        op = _new_op(cls, (addr,), (t,), W._memprops(offset, align))
        _append(self.block, op)
        (r,) = op.results
        return r

    def store(self, mnemonic: str, addr: SSAValue, v: SSAValue, offset=0, align=None) -> None:
        op = _new_op(W.INSTRUCTIONS[mnemonic], (addr, v), (), W._memprops(offset, align))
        _append(self.block, op)

    def lane(self, mnemonic: str, *args) -> SSAValue:
        """`{shape}.extract_lane vec lane` or `{shape}.replace_lane vec value lane`."""
        *operands, lane = args
        cls, t = _LANE_OPS[mnemonic]
        op = _new_op(cls, operands, (t,), {"lane": W._i64(lane)})
        _append(self.block, op)
        (r,) = op.results
        return r

    def select(self, a: SSAValue, b: SSAValue, c: SSAValue) -> SSAValue:
        return self.add(W.SelectOp(a, b, c))  # type: ignore[return-value]

    def call(self, callee: str, args: list[SSAValue], results: list[Attribute]):
        return self.add(W.CallOp(callee, args, results))

    def ret(self, values: list[SSAValue] = ()) -> None:  # type: ignore[assignment]
        self.add(W.ReturnOp(values))

    def nest(self, kind: str, label: str, cond: SSAValue | None = None) -> _Builder:
        body = Region(Block())
        if kind == "if":
            assert cond is not None
            self.add(W.IfOp(label, cond, body))
        elif kind == "loop":
            self.add(W.LoopOp(label, body))
        else:
            self.add(W.BlockOp(label, body))
        return _Builder(body.block)


# mnemonic -> (op class, result type) of the loads and lane ops the builder makes directly
_LOADS = {m: (W.INSTRUCTIONS[m], t) for m, t in (
    ("i32.load", i32), ("f32.load", f32), ("v128.load", v128), ("v128.load32_splat", v128))}  # fmt: skip
_LANE_OPS = {m: (W.INSTRUCTIONS[m], t) for m, t in (
    ("f32x4.extract_lane", f32), ("i32x4.extract_lane", i32),
    ("f32x4.replace_lane", v128), ("i32x4.replace_lane", v128))}  # fmt: skip


@functools.lru_cache(maxsize=4096)
def _f32_attr(v: float, sign: float) -> FloatAttr:
    """A shared f32 FloatAttr of v (`sign`: copysign(1, v), so that 0.0 and -0.0, equal as
    keys, get attributes of their own)."""
    return FloatAttr(v, f32)


def _instr(mnemonic: str, operands: tuple[SSAValue, ...]) -> Operation:
    """W.INSTRUCTIONS[mnemonic](*operands), built directly for the fixed-type instructions."""
    cls = W.INSTRUCTIONS[mnemonic]
    sig = W.SIGNATURES.get(cls)
    if sig is None or len(operands) != sig[0]:
        return cls(*operands)
    return _new_op(cls, operands, sig[1])


class _Locals:
    """The params and locals of one function, named through a NameSupply."""

    def __init__(self, names: NameSupply | None = None):
        self.names = names if names is not None else NameSupply()
        self.params: list[tuple[str, Attribute]] = []
        self.locals: list[tuple[str, Attribute]] = []

    def param(self, hint: str, t: Attribute) -> str:
        n = self.names.fresh(hint)
        self.params.append((n, t))
        return n

    def new(self, hint: str, t: Attribute) -> str:
        n = self.names.fresh(hint)
        self.locals.append((n, t))
        return n

    def label(self, hint: str) -> str:
        return self.names.fresh(hint)


# ------------------------------------------------------------------------ math helpers

# exp: Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, degree-7 Taylor polynomial (error
# < 1e-8 relative), then 2^n applied as two factors 2^h * 2^(n-h) so that results between
# FLT_MAX and the smallest subnormal are exact in range.
_LOG2E = 1.4426950408889634
_LN2_HI = 0.693359375
_LN2_LO = -2.12194440e-4
_EXP_HI = 88.72283
_EXP_LO = -104.0
_EXP_POLY = [1.0, 1.0, 1 / 2, 1 / 6, 1 / 24, 1 / 120, 1 / 720, 1 / 5040]
# tanh: |x| < 0.625: x + x^3 P(x^2) (least-squares fit, 7.4e-8 relative in f32);
# else 1 - 2 / (exp(2|x|) + 1) with |x| clamped to 9.5 (then 1.0f exactly); sign of x.
_TANH_SMALL = 0.625
_TANH_POLY = [-0.3333333101061629, 0.13333212509109493, -0.053947454951906906,
              0.021704004131179525, -0.00818466989937635, 0.0021489909425039064]  # fmt: skip
# erf: |x| < 0.875: x P(x^2) (fit, 1.1e-7 absolute in f32); else 1 - exp(-x^2) Q(t) with
# t = 1 / (1 + x/2), |x| clamped to 4 (Q fits erfc(x) exp(x^2) to 4.6e-10 relative).
_ERF_SMALL = 0.875
_ERF_POLY = [1.1283791670104377, -0.37612636912498265, 0.11283743997423593,
             -0.026862144411095794, 0.005208075375008696, -0.0008225871566798447,
             8.737620233417854e-05]  # fmt: skip
_ERFC_POLY = [-0.0001573065070371539, 0.2849593863484237, 0.2593908046491197,
              0.34883215586025856, -0.10572235999803338, 0.5658295276183966,
              -0.4729034036760546, 0.11982840006014545]  # fmt: skip
# log: x = m 2^e with m in [sqrt(1/2), sqrt(2)); log(m) = 2 atanh(s), s = (m-1)/(m+1),
# |s| < 0.172, series to s^9 (error < 1e-9); subnormals are scaled by 2^23 first.
_SQRT2 = 1.4142135623730951
_LN2 = 0.6931471805599453


class _Lanes:
    """Scalar (f32/i32) or vector (f32x4/i32x4) arithmetic with one spelling, for helpers."""

    def __init__(self, b: _Builder, vec: bool):
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


class _HelperLib:
    """Builds the math helper functions a kernel needs (`exp_f32`, `tanh_f32x4`, ...).

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
            loc = _Locals()
            nargs = 2 if fn == "pow" else 1
            ps = [loc.param(n, v128 if vec else f32) for n in ("x", "y")[:nargs]]
            body = Region(Block())
            b = _Builder(body.block)
            res = build(_Lanes(b, vec), loc, *ps)
            b.ret([res])
            self.funcs.append(
                W.FuncOp(self.symbols[key], loc.params, [v128 if vec else f32], loc.locals,
                         None, body)  # fmt: skip
            )
        return self.symbols[key]

    def _exp(self, L: _Lanes, loc: _Locals, x: str) -> SSAValue:
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

    def _tanh(self, L: _Lanes, loc: _Locals, x: str) -> SSAValue:
        b = L.b
        a, u, big = loc.new("a", L.ft), loc.new("u", L.ft), loc.new("big", L.ft)
        b.set(a, L.f("abs", L.get(x)))
        b.set(u, L.f("mul", L.get(x), L.get(x)))
        exp = self.symbol("exp", L.vec)

        def e2a() -> SSAValue:
            return b.call(exp, [L.f("mul", L.f("min", L.get(a), L.c(9.5)), L.c(2.0))], [L.ft])

        b.set(big, L.f("sub", L.c(1.0), L.f("div", L.c(2.0), L.f("add", e2a(), L.c(1.0)))))
        b.set(big, L.copysign(big, x))
        small = L.f("add", L.get(x), L.f("mul", L.f("mul", L.get(x), L.get(u)),
                                          L.horner(_TANH_POLY, u)))  # fmt: skip
        b.set(big, L.select(small, L.get(big), L.f("lt", L.get(a), L.c(_TANH_SMALL))))
        return L.copysign(big, x)  # keeps the sign of zero

    def _erf(self, L: _Lanes, loc: _Locals, x: str) -> SSAValue:
        b = L.b
        a, u, t, big = (loc.new(s, L.ft) for s in ("a", "u", "t", "big"))
        b.set(a, L.f("min", L.f("abs", L.get(x)), L.c(4.0)))
        b.set(u, L.f("mul", L.get(x), L.get(x)))
        b.set(t, L.f("div", L.c(1.0), L.f("add", L.c(1.0), L.f("mul", L.get(a), L.c(0.5)))))
        exp = self.symbol("exp", L.vec)

        def ea2() -> SSAValue:
            return b.call(exp, [L.f("neg", L.f("mul", L.get(a), L.get(a)))], [L.ft])

        b.set(big, L.f("sub", L.c(1.0), L.f("mul", ea2(), L.horner(_ERFC_POLY, t))))
        b.set(big, L.copysign(big, x))
        small = L.f("mul", L.get(x), L.horner(_ERF_POLY, u))
        return L.select(small, L.get(big), L.f("lt", L.f("abs", L.get(x)), L.c(_ERF_SMALL)))

    def _log(self, L: _Lanes, loc: _Locals, x: str) -> SSAValue:
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

    def _pow(self, L: _Lanes, loc: _Locals, x: str, y: str) -> SSAValue:
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


# ----------------------------------------------------------------------- kernel lowering

_FLOAT_BIN = {
    "arith.addf": "add", "arith.subf": "sub", "arith.mulf": "mul", "arith.divf": "div",
    "arith.maximumf": "max", "arith.minimumf": "min", "arith.maxnumf": "max",
    "arith.minnumf": "min",
}  # fmt: skip
_INT_BIN = {
    "arith.addi": "add", "arith.subi": "sub", "arith.muli": "mul", "arith.divsi": "div_s",
    "arith.divui": "div_u", "arith.remsi": "rem_s", "arith.remui": "rem_u",
    "arith.andi": "and", "arith.ori": "or", "arith.xori": "xor", "arith.shli": "shl",
    "arith.shrsi": "shr_s", "arith.shrui": "shr_u",
}  # fmt: skip
_VEC_INT_BIN = {
    "arith.addi": "i32x4.add", "arith.subi": "i32x4.sub", "arith.muli": "i32x4.mul",
    "arith.andi": "v128.and", "arith.ori": "v128.or", "arith.xori": "v128.xor",
    "arith.minsi": "i32x4.min_s", "arith.maxsi": "i32x4.max_s",
}  # fmt: skip
_CMPI = ["eq", "ne", "lt_s", "le_s", "gt_s", "ge_s", "lt_u", "le_u", "gt_u", "ge_u"]
# cmpf predicate -> (wasm comparison, negate): unordered predicates are negated ordered ones
_CMPF = {
    1: ("eq", False), 2: ("gt", False), 3: ("ge", False), 4: ("lt", False), 5: ("le", False),
    9: ("le", True), 10: ("lt", True), 11: ("ge", True), 12: ("gt", True), 13: ("ne", False),
}  # fmt: skip
_MATH_HELPERS = {"math.exp": "exp", "math.tanh": "tanh", "math.erf": "erf", "math.log": "log"}
_PURE_PREFIXES = ("arith.", "math.")
_ALWAYS_VIRTUAL = frozenset(("arith.constant", "arith.index_cast", "arith.index_castui"))
_AFFINE_OPS = frozenset(("arith.addi", "arith.subi", "arith.muli"))
_PURE_NN = (nn_loop.SplatOp, nn_loop.ExtractOp, nn_loop.ReduceLanesOp)
_PURE_NN_LOAD = (*_PURE_NN, nn_loop.LoadOp)


_UNKNOWN = object()  # (a cache's "not looked at yet", where None is an answer)


def _body(op: Operation) -> Block:
    """The single block of a loop's or if's body."""
    return first_block_of(op.regions[0])  # type: ignore[return-value]


def _prop(op: Operation, name: str) -> int:
    """An integer property (lb, ub, step, unroll, lane) of an nn_loop op."""
    return op.properties[name].value.data  # type: ignore[attr-defined]


def _full_unroll(loop: nn_loop.ForOp) -> bool:
    """Whether a loop is unrolled completely (its unroll factor is its trip count)."""
    u = _prop(loop, "unroll")
    return u > 1 and u == _trips(loop)


def _trips(loop: nn_loop.ForOp) -> int:
    """The trip count of a loop (ForOp.trip_count, read directly)."""
    lb, ub, st = _prop(loop, "lb"), _prop(loop, "ub"), _prop(loop, "step")
    return max(0, (ub - lb + st - 1) // st)


def _access_of(op: Operation) -> tuple[SSAValue, list[SSAValue]]:
    """(buffer, indices) of an nn_loop.load or nn_loop.store."""
    # (unpacked: indexing or slicing an op's SSAValues is a Python-level method)
    if type(op) is nn_loop.LoadOp:
        buf, *indices = operands_of(op)
    else:
        _, buf, *indices = operands_of(op)
    return buf, indices


_item = tuple.__getitem__  # operands_of(op)[k] without SSAValues.__getitem__ (a Python call)


def _is_vec(t: Attribute) -> bool:
    return type(t) is VectorType


def _scalar_of(t: Attribute) -> Attribute:
    return t.get_element_type() if type(t) is VectorType else t


@dataclass
class _Stream:
    """One address stream of a loop: pointer local = base of `buf` + inv terms + c * iv."""

    local: str
    buf: SSAValue
    inv: dict[SSAValue, int]
    c: int
    ops: list[Operation] = field(default_factory=list)


class _KernelLowering:
    """Lowers one nn_loop.kernel (target wasm) to an nn_wasm.module."""

    def __init__(self, kernel: nn_loop.KernelOp, relaxed_simd: bool):
        self.kernel = kernel
        self.kname = kernel.sym_name.data
        self.relaxed = relaxed_simd
        self.used_relaxed = False
        self.module_names = NameSupply()
        self.helpers = _HelperLib(self.module_names)
        self.loc = _Locals()
        self.arg_param: dict[SSAValue, str] = {}
        # (the tables of values and ops used per emitted instruction are keyed by id: xDSL
        # hashes them in Python, ints hash in C; the kernel keeps them alive while lowered)
        self.val_local: dict[int, str] = {}  # value -> local holding it
        self.iv_local: dict[int, str] = {}  # loop iv -> its local
        self.iv_const: dict[int, int] = {}  # iv of an unrolled copy -> its constant
        self.iv_nonneg: dict[int, bool] = {}  # loop ivs known to be >= 0
        self.private: dict[int, list[str]] = {}  # private buffer -> a local per element
        self.folded: set[int] = set()  # id(op) of ops computed where their user is
        self.dead: set[int] = set()  # id(op) of value ops without users
        self._affine: dict[int, tuple[dict[SSAValue, int], int]] = {}
        self.thread_chunks = 1
        self._strides: dict[int, list[int]] = {}  # buffer -> strides
        self._nonneg: dict[int, bool] = {}
        self._const_ints: dict[int, int | None] = {}  # id(op result) -> _const_int
        self._virtual: dict[int, bool] = {}  # id(op) -> is_virtual(op)
        self._space: dict[int, str] = {}  # buffer -> memory space
        self._wt: dict[int, Attribute] = {}  # id(type) -> Wasm type
        self._shapes: dict[int, tuple[int, ...]] = {}  # private buffer -> shape
        # loops unrolled while emitting (see _enter): the copies being emitted, outermost
        # first, as (id(loop), copy); the iv offset of each copy of a partially unrolled loop
        self.inst: tuple[tuple[int, int], ...] = ()
        self.iv_off: dict[int, int] = {}  # id(iv) -> offset
        self._analysed: set[Block] = set()
        self._global_in: dict[Operation, bool] = {}  # loop -> has a global access
        self._outer_caches: list[tuple[dict, dict]] = []  # (see _enter)
        # address streams (see plan_streams): (id(access op), inst) -> (pointer local, other
        # terms, constant byte offset)
        self.stream_of: dict[tuple, tuple[str, dict[SSAValue, int], int]] = {}

    # --------------------------------------------------------------------------- errors

    def error(self, msg: str, hint: str | None = None) -> UnsupportedError:
        return UnsupportedError(msg, where=f"nn_loop.kernel @{self.kname} (target wasm)", hint=hint)

    def wtype(self, t: Attribute) -> Attribute:
        """The Wasm value type (i32, f32, v128) of an nn_loop value type."""
        # by identity (hashing a type attribute costs more); the kernel keeps its types alive
        w = self._wt.get(id(t))
        if w is None:
            w = self._wt[id(t)] = self._wtype(t)
        return w

    def _wtype(self, t: Attribute) -> Attribute:
        if type(t) is IndexType or (type(t) is IntegerType and t.width.data in (1, 32)):
            return i32
        if type(t) is Float32Type:
            return f32
        if type(t) is VectorType and t.get_shape() == (4,):
            e = t.get_element_type()
            if type(e) is Float32Type or (type(e) is IntegerType and e.width.data in (1, 32)):
                return v128
        raise self.error(f"type {t} has no Wasm equivalent",
                         "use f32, i32, i1, index or 4-lane vectors of them")  # fmt: skip

    # ------------------------------------------------------------------------- analysis

    def affine(self, v: SSAValue) -> tuple[dict[SSAValue, int], int]:
        """v (index) as sum(coeff * atom) + const; atoms are ivs and non-affine values."""
        res = self._affine.get(id(v))
        if res is not None:
            return res
        res = ({v: 1}, 0)
        if id(v) in self.iv_const:
            res = ({}, self.iv_const[id(v)])
        elif type(v) is BlockArgument:
            off = self.iv_off.get(id(v))
            if off:
                res = ({v: 1}, off)
        else:
            op = v.op
            c = self._const_int(v)
            if c is not None:
                res = ({}, c)
            elif op.name in _AFFINE_OPS and type(type_of(v)) is IndexType:
                x, y = operands_of(op)
                (ta, ca), (tb, cb) = self.affine(x), self.affine(y)
                if op.name == "arith.addi":
                    res = (_combine(ta, tb, 1), ca + cb)
                elif op.name == "arith.subi":
                    res = (_combine(ta, tb, -1), ca - cb)
                elif not ta:
                    res = ({k: x * ca for k, x in tb.items()}, ca * cb)
                elif not tb:
                    res = ({k: x * cb for k, x in ta.items()}, ca * cb)
        self._affine[id(v)] = res
        return res

    def nonneg(self, v: SSAValue) -> bool:
        """Whether index value v is known to be >= 0 (loop ivs from a bound >= 0, constants,
        and sums, products, quotients, remainders, min/max and selects of such values)."""
        r = self._nonneg.get(id(v))
        if r is not None:
            return r
        r = False
        if id(v) in self.iv_const:
            r = self.iv_const[id(v)] >= 0
        elif id(v) in self.iv_nonneg:
            r = self.iv_nonneg[id(v)]
        elif type(v) is not BlockArgument:
            op = v.owner
            c = self._const_int(v)
            if c is not None:
                r = c >= 0
            elif op.name in ("arith.addi", "arith.muli", "arith.minsi", "arith.minui"):
                r = all(self.nonneg(x) for x in operands_of(op))
            elif op.name in ("arith.divsi", "arith.remsi", "arith.divui", "arith.remui"):
                d = self._const_int(operands_of(op)[1])
                r = d is not None and d > 0 and self.nonneg(operands_of(op)[0])
            elif op.name == "arith.maxsi":
                r = any(self.nonneg(x) for x in operands_of(op))
            elif op.name == "arith.select":
                r = self.nonneg(operands_of(op)[1]) and self.nonneg(operands_of(op)[2])
            elif op.name in ("arith.index_cast", "arith.index_castui"):
                r = self.nonneg(operands_of(op)[0])
        self._nonneg[id(v)] = r
        return r

    def is_virtual(self, op: Operation) -> bool:
        """Ops never emitted as statements: constants (emitted at each use), index
        add/sub/mul-by-constant (emitted as affine expressions) and no-op casts."""
        r = self._virtual.get(id(op))
        if r is None:
            name = op.name
            r = name in _ALWAYS_VIRTUAL
            if not r and name in _AFFINE_OPS:
                (res,) = op.results
                r = type(type_of(res)) is IndexType and self.affine(res)[0] != {res: 1}
            self._virtual[id(op)] = r
        return r

    def eff_users(self, v: SSAValue) -> list[Operation]:
        out: list[Operation] = []
        use = v.first_use
        while use is not None:
            u = use_op_of(use)
            if self.is_virtual(u):
                (r,) = u.results
                out.extend(self.eff_users(r))
            else:
                out.append(u)
            use = next_use_of(use)
        return out

    def space(self, buf: SSAValue) -> str:
        """The memory space of a buffer value ("global", "private", ...)."""
        r = self._space.get(id(buf))
        if r is None:
            r = self._space[id(buf)] = nn_loop.memory_space(type_of(buf))  # type: ignore[arg-type]
        return r

    def _writes(self, op: Operation) -> bool:
        if type(op) is nn_loop.StoreOp:
            return True
        if not op.regions:
            return False
        if type(op) is nn_loop.ForOp and _full_unroll(op):  # straight-line copies
            o = first_op_of(_body(op))
            while o is not None:
                if self._writes(o):
                    return True
                o = next_op_of(o)
            return False
        return True

    def analyse_block(self, block: Block):
        """Decides which value ops are folded into their (single, same-block) user. The
        decisions do not depend on which copy of an unrolled body is emitted: a block is
        analysed once."""
        if block in self._analysed:
            return
        self._analysed.add(block)
        ops: list[Operation] = []
        op = first_op_of(block)
        while op is not None:
            ops.append(op)
            op = next_op_of(op)
        pos = {op: k for k, op in enumerate(ops)}
        root: dict[Operation, int] = {}  # op -> position of the statement it is emitted in
        for op in reversed(ops):
            if len(op.results) != 1:
                continue
            t = type(op)
            if not (t in _PURE_NN_LOAD or op.name.startswith(_PURE_PREFIXES)):
                continue
            if self.is_virtual(op):
                continue
            (r,) = op.results
            users = self.eff_users(r)
            if not users:
                self.dead.add(id(op))
                continue
            if len(users) != 1 or users[0].parent is not block:
                continue
            u = users[0]
            at = root.get(u, pos[u])
            if t is nn_loop.LoadOp and any(
                self._writes(ops[k]) for k in range(pos[op] + 1, at)
            ):
                continue
            self.folded.add(id(op))
            root[op] = at

    # --------------------------------------------------------------------------- values

    @staticmethod
    def _const_attr(v: SSAValue) -> Attribute | None:
        if type(v) is BlockArgument:
            return None
        op = v.op
        if op.name != "arith.constant":
            return None
        a = op.properties.get("value")
        return a if a is not None else op.attributes.get("value")

    def _const_int(self, v: SSAValue) -> int | None:
        """The value of an integer constant (or of the iv of an unrolled copy), else None."""
        if type(v) is BlockArgument:
            return self.iv_const.get(id(v))
        # (an op result's answer is the same in every copy: it is kept for the whole kernel)
        x = self._const_ints.get(id(v), _UNKNOWN)
        if x is _UNKNOWN:
            x = None
            a = self._const_attr(v)
            if isinstance(a, IntegerAttr) and not _is_vec(v.type):
                x = a.value.data
                if type(v.type) is IntegerType and v.type.width.data == 1:
                    x &= 1
            self._const_ints[id(v)] = x
        return x

    def _const_float(self, v: SSAValue) -> float | None:
        """A float constant, or the splat value of a constant float vector."""
        a = self._const_attr(v)
        if isinstance(a, FloatAttr):
            return a.value.data
        if isinstance(a, DenseIntOrFPElementsAttr):
            vals = a.get_values()
            if len(set(vals)) == 1 and isinstance(vals[0], float):
                return vals[0]
        if type(v) is not BlockArgument and type(v.owner) is nn_loop.SplatOp:
            return self._const_float(v.owner.input)
        return None

    def emit_const(self, b: _Builder, v: SSAValue) -> SSAValue:
        a = self._const_attr(v)
        t = v.type
        if isinstance(a, IntegerAttr):
            return b.i32c(self._const_int(v))  # type: ignore[arg-type]
        if isinstance(a, FloatAttr):
            if type(t) is not Float32Type:
                raise self.error(f"float constant of type {t}", "only f32 is supported")
            return b.f32c(a.value.data)
        if isinstance(a, DenseIntOrFPElementsAttr) and type(t) is VectorType:
            self.wtype(t)
            vals = a.get_values()
            if len(vals) == 1:
                vals = vals * 4
            e = t.get_element_type()
            if type(e) is Float32Type:
                return b.v128c("f32x4", [float(x) for x in vals])
            if e.width.data == 1:  # type: ignore[attr-defined]
                return b.v128c("i32x4", [-1 if int(x) & 1 else 0 for x in vals])
            return b.v128c("i32x4", [int(x) for x in vals])
        raise self.error(f"unsupported constant {a}")

    def push(self, b: _Builder, v: SSAValue) -> SSAValue:
        """Pushes the value of nn_loop value v onto the wasm stack."""
        name = self.val_local.get(id(v))
        if name is not None:
            return b.get(name, self.wtype(type_of(v)))
        name = self.iv_local.get(id(v))
        if name is not None:
            if self.iv_off.get(id(v)):  # a copy of a partially unrolled body: iv + offset
                return self.emit_affine(b, self.affine(v))
            return b.get(name, i32)
        if id(v) in self.iv_const:
            return b.i32c(self.iv_const[id(v)])
        if type(v) is BlockArgument:
            raise self.error("a buffer is used as a value", "only loads/stores may use buffers")
        op = v.op
        if op.name == "arith.constant":
            return self.emit_const(b, v)
        if op.name in ("arith.index_cast", "arith.index_castui"):
            return self.push(b, operands_of(op)[0])
        if self.is_virtual(op):
            return self.emit_affine(b, self.affine(v))
        if id(op) in self.folded:
            return self.emit_expr(b, op)
        raise self.error(f"internal: value of {op.name} used before it is computed")

    def emit_affine(self, b: _Builder, aff: tuple[dict[SSAValue, int], int],
                    start: SSAValue | None = None) -> SSAValue:  # fmt: skip
        """Pushes sum(coeff * atom) + const (added to `start` when given)."""
        terms, c = aff
        acc = start
        for atom, k in terms.items():
            if k == 0:
                continue
            name = self.iv_local.get(id(atom))  # an iv (its copy's offset is in `c`)
            x = b.get(name, i32) if name is not None else self.push(b, atom)
            if k != 1:
                x = b.op("i32.mul", x, b.i32c(k))
            acc = x if acc is None else b.op("i32.add", acc, x)
        if acc is None:
            return b.i32c(c)
        if c != 0:
            acc = b.op("i32.add", acc, b.i32c(c))
        return acc

    def reusable(self, b: _Builder, v: SSAValue, hint: str = "t"):
        """A function that pushes v again each time it is called: constants and values
        already in locals are re-pushed, anything else is computed once into a local."""
        cheap = (id(v) in self.iv_const or id(v) in self.val_local
                 or (id(v) in self.iv_local and not self.iv_off.get(id(v))))
        if not cheap and type(v) is not BlockArgument:
            cheap = v.owner.name == "arith.constant"
        if cheap:
            return lambda: self.push(b, v)
        name = self.to_local(b, v, hint)
        t = self.wtype(v.type)
        return lambda: b.get(name, t)

    def to_local(self, b: _Builder, v: SSAValue, hint: str = "t") -> str:
        """Pushes v and stores it in a fresh local (for values needed more than once)."""
        t = self.wtype(v.type)
        name = self.loc.new(hint, t)
        b.set(name, self.push(b, v))
        return name

    # ----------------------------------------------------------------------- memory

    def byte_terms(self, buf: SSAValue, indices) -> tuple[dict[SSAValue, int], int]:
        """The byte offset of buf[indices] from the buffer's base: (terms, constant)."""
        strides = self._strides.get(id(buf))
        if strides is None:
            shape = buf.type.get_shape()  # type: ignore[attr-defined]
            strides = self._strides[id(buf)] = [math.prod(shape[k + 1 :]) for k in range(len(shape))]
        terms: dict[SSAValue, int] = {}
        const = 0
        for idx, st in zip(indices, strides):
            tt, cc = self.affine(idx)
            for a, k in tt.items():
                terms[a] = terms.get(a, 0) + k * st
            const += cc * st
        return {a: k * 4 for a, k in terms.items() if k}, const * 4

    def _offset_ok(self, terms: dict[SSAValue, int]) -> bool:
        """Whether a dynamic address made of `terms` is never negative, so that a constant
        part may go to the memarg offset (Wasm adds it without wrapping)."""
        return all(k > 0 and self.nonneg(a) for a, k in terms.items())

    def address(self, b: _Builder, buf: SSAValue, indices, op: Operation | None = None):
        """Pushes the dynamic byte address of buf[indices]; returns (addr, memarg offset).
        An access with an address stream (plan_streams) adds its other terms to the
        stream's pointer."""
        stream = self.stream_of.get((id(op), self.inst)) if op is not None else None
        if stream is not None:
            ptr, rest, const = stream
            return self.emit_affine(b, (rest, 0), b.get(ptr, i32)), const
        terms, const = self.byte_terms(buf, indices)
        base = b.get(self.arg_param[buf], i32)
        if const < 0 or not self._offset_ok(terms):
            return self.emit_affine(b, (terms, const), base), 0
        return self.emit_affine(b, (terms, 0), base), const

    def private_index(self, buf: SSAValue, indices) -> int:
        shape = self._shapes.get(id(buf))
        if shape is None:
            shape = self._shapes[id(buf)] = type_of(buf).get_shape()  # type: ignore[attr-defined]
        lin = 0
        for idx, n in zip(indices, shape):
            tt, cc = self.affine(idx)
            if any(tt.values()):
                raise self.error(
                    "an index into a private buffer is not a constant after unrolling",
                    "fully unroll (unroll = trip count) the loops that index private buffers",
                )
            if not 0 <= cc < n:
                raise self.error(f"private buffer index {cc} is out of bounds 0..{n - 1}")
            lin = lin * n + cc
        return lin

    def emit_load(self, b: _Builder, op: nn_loop.LoadOp) -> SSAValue:
        buf, *indices = operands_of(op)
        (res,) = op.results
        rt = type_of(res)
        space = self.space(buf)
        if space == "private":
            return self.private_get(b, buf, indices, rt)
        if space != "global":
            raise self.error(f"{space} memory is not available on target wasm")
        wt = self.wtype(rt)
        if wt == v128 and _is_vec(rt):
            addr, off = self.address(b, buf, indices, op)
            return b.load("v128.load", addr, off, 4)
        addr, off = self.address(b, buf, indices, op)
        return b.load("f32.load" if wt == f32 else "i32.load", addr, off)

    def private_get(self, b: _Builder, buf: SSAValue, indices, rt: Attribute) -> SSAValue:
        names = self.private[id(buf)]
        k = self.private_index(buf, indices)
        et = buf.type.get_element_type()  # type: ignore[attr-defined]
        if _is_vec(rt) and not _is_vec(et):
            if k + 4 > len(names):
                raise self.error("a vector load runs past the end of a private buffer")
            shape = "f32x4" if isinstance(_scalar_of(rt), Float32Type) else "i32x4"
            wt = self.wtype(et)
            v = b.op(f"{shape}.splat", b.get(names[k], wt))
            for lane in range(1, 4):
                v = b.lane(f"{shape}.replace_lane", v, b.get(names[k + lane], wt), lane)
            return v
        return b.get(names[k], self.wtype(rt))

    def emit_store(self, b: _Builder, op: nn_loop.StoreOp):
        value, buf, *indices = operands_of(op)
        vt = type_of(value)
        space = self.space(buf)
        if space == "private":
            names = self.private[id(buf)]
            k = self.private_index(buf, indices)
            et = buf.type.get_element_type()  # type: ignore[attr-defined]
            if _is_vec(vt) and not _is_vec(et):
                if k + 4 > len(names):
                    raise self.error("a vector store runs past the end of a private buffer")
                tmp = self.to_local(b, value, "vec")
                shape = "f32x4" if isinstance(_scalar_of(vt), Float32Type) else "i32x4"
                for lane in range(4):
                    b.set(names[k + lane], b.lane(f"{shape}.extract_lane", b.get(tmp, v128), lane))
                return
            b.set(names[k], self.push(b, value))
            return
        if space != "global":
            raise self.error(f"{space} memory is not available on target wasm")
        wt = self.wtype(vt)
        addr, off = self.address(b, buf, indices, op)
        val = self.push(b, value)
        if wt == v128:
            b.store("v128.store", addr, val, off, 4)
        else:
            b.store("f32.store" if wt == f32 else "i32.store", addr, val, off)

    # ---------------------------------------------------------------------- expressions

    def emit_expr(self, b: _Builder, op: Operation) -> SSAValue:
        """Pushes the result of a (non-virtual) value op."""
        name = op.name
        (res,) = op.results
        rt = type_of(res)
        vec = _is_vec(rt)
        if type(op) is nn_loop.LoadOp:
            return self.emit_load(b, op)
        if type(op) is nn_loop.SplatOp:
            (src,) = operands_of(op)
            st = self.wtype(src.type)
            if (type(src) is not BlockArgument and type(src.owner) is nn_loop.LoadOp
                    and id(src.owner) in self.folded and id(src) not in self.val_local
                    and self.space(operands_of(src.owner)[0]) == "global"):  # fmt: skip
                buf, *indices = operands_of(src.owner)
                addr, off = self.address(b, buf, indices, src.owner)
                return b.load("v128.load32_splat", addr, off)
            if type(src.type) is IntegerType and src.type.width.data == 1:
                return b.op("i32x4.splat", b.op("i32.sub", b.i32c(0), self.push(b, src)))
            return b.op("f32x4.splat" if st == f32 else "i32x4.splat", self.push(b, src))
        if type(op) is nn_loop.ExtractOp:
            shape = "f32x4" if type(rt) is Float32Type else "i32x4"
            return b.lane(f"{shape}.extract_lane", self.push(b, operands_of(op)[0]), _prop(op, "lane"))
        if type(op) is nn_loop.ReduceLanesOp:
            shape = "f32x4" if type(rt) is Float32Type else "i32x4"
            tmp = self.to_local(b, op.input, "red")
            comb = {("add", "f32x4"): "f32.add", ("max", "f32x4"): "f32.max",
                    ("add", "i32x4"): "i32.add"}.get((op.kind.data, shape))  # fmt: skip
            if comb is None:
                raise self.error(f"reduce_lanes {op.kind.data} on {op.input.type}")
            acc = b.lane(f"{shape}.extract_lane", b.get(tmp, v128), 0)
            for lane in range(1, 4):
                acc = b.op(comb, acc, b.lane(f"{shape}.extract_lane", b.get(tmp, v128), lane))
            return acc
        if name in _FLOAT_BIN:
            a, c = (self.push(b, x) for x in operands_of(op))
            return b.op(("f32x4." if vec else "f32.") + _FLOAT_BIN[name], a, c)
        if name == "arith.negf":
            return b.op("f32x4.neg" if vec else "f32.neg", self.push(b, operands_of(op)[0]))
        if name in ("arith.minsi", "arith.maxsi") and not vec:
            pa, pb = self.reusable(b, operands_of(op)[0]), self.reusable(b, operands_of(op)[1])
            cmp = "i32.lt_s" if name == "arith.minsi" else "i32.gt_s"
            return b.select(pa(), pb(), b.op(cmp, pa(), pb()))
        if vec and name in _VEC_INT_BIN:
            a, c = (self.push(b, x) for x in operands_of(op))
            return b.op(_VEC_INT_BIN[name], a, c)
        if name in _INT_BIN and not vec:
            a, c = (self.push(b, x) for x in operands_of(op))
            return b.op("i32." + _INT_BIN[name], a, c)
        if name == "arith.cmpi":
            pred = _CMPI[op.properties["predicate"].value.data]  # type: ignore[attr-defined]
            a, c = (self.push(b, x) for x in operands_of(op))
            if vec:
                if pred.endswith("_u"):
                    raise self.error("unsigned vector comparisons are not supported")
                return b.op(f"i32x4.{pred}", a, c)
            return b.op(f"i32.{pred}", a, c)
        if name == "arith.cmpf":
            return self.emit_cmpf(b, op, vec)
        if name == "arith.select":
            cond, x, y = operands_of(op)
            if _is_vec(cond.type):
                a, c = self.push(b, x), self.push(b, y)
                return b.op("v128.bitselect", a, c, self.push(b, cond))
            a, c = self.push(b, x), self.push(b, y)
            return b.select(a, c, self.push(b, cond))
        if name in ("arith.sitofp", "arith.uitofp"):
            a = self.push(b, operands_of(op)[0])
            if vec:
                if name == "arith.uitofp":
                    raise self.error("unsigned vector conversion is not supported")
                return b.op("f32x4.convert_i32x4_s", a)
            return b.op("f32.convert_i32_s" if name == "arith.sitofp" else "f32.convert_i32_u", a)
        if name == "arith.fptosi":
            a = self.push(b, operands_of(op)[0])
            return b.op("i32x4.trunc_sat_f32x4_s" if vec else "i32.trunc_sat_f32_s", a)
        if name in ("arith.extui", "arith.extsi", "arith.trunci"):
            src = operands_of(op)[0]
            sw = _scalar_of(src.type)
            dw = _scalar_of(rt)
            a = self.push(b, src)
            if name == "arith.trunci" and dw.width.data == 1:  # type: ignore[attr-defined]
                if vec:
                    raise self.error("vector trunci to i1 is not supported")
                return b.op("i32.and", a, b.i32c(1))
            if sw.width.data == 1 and name == "arith.extui":  # type: ignore[attr-defined]
                return b.op("v128.and", a, b.v128c("i32x4", [1] * 4)) if vec else a
            if sw.width.data == 1 and name == "arith.extsi":  # type: ignore[attr-defined]
                return a if vec else b.op("i32.sub", b.i32c(0), a)
            return a  # i32 <-> i32
        if name == "arith.bitcast":
            a = self.push(b, operands_of(op)[0])
            if vec:
                return a
            return b.op("f32.reinterpret_i32" if type(rt) is Float32Type else "i32.reinterpret_f32", a)
        if name == "math.fma":
            x, y, z = operands_of(op)
            if vec:
                if self.relaxed:
                    self.used_relaxed = True
                    a, c, d = (self.push(b, v) for v in (x, y, z))
                    return b.op("f32x4.relaxed_madd", a, c, d)
                m = b.op("f32x4.mul", self.push(b, x), self.push(b, y))
                return b.op("f32x4.add", m, self.push(b, z))
            m = b.op("f32.mul", self.push(b, x), self.push(b, y))
            return b.op("f32.add", m, self.push(b, z))
        if name in ("math.sqrt", "math.absf"):
            m = "sqrt" if name == "math.sqrt" else "abs"
            return b.op(("f32x4." if vec else "f32.") + m, self.push(b, operands_of(op)[0]))
        if name == "math.rsqrt":
            p = "f32x4." if vec else "f32."
            one = b.v128c("f32x4", [1.0] * 4) if vec else b.f32c(1.0)
            return b.op(p + "div", one, b.op(p + "sqrt", self.push(b, operands_of(op)[0])))
        if name in _MATH_HELPERS:
            if not isinstance(_scalar_of(rt), Float32Type):
                raise self.error(f"{name} on {rt}", "only f32 is supported")
            fn = self.helpers.symbol(_MATH_HELPERS[name], vec)
            return b.call(fn, [self.push(b, operands_of(op)[0])], [self.wtype(rt)])  # type: ignore
        if name == "math.powf":
            return self.emit_pow(b, op, vec)
        raise self.error(f"operation {name} is not supported by the wasm backend")

    def emit_cmpf(self, b: _Builder, op: Operation, vec: bool) -> SSAValue:
        pred = op.properties["predicate"].value.data  # type: ignore[attr-defined]
        p = "f32x4." if vec else "f32."
        x, y = operands_of(op)
        if pred in _CMPF:
            cmp, neg = _CMPF[pred]
            r = b.op(p + cmp, self.push(b, x), self.push(b, y))
            if neg:
                r = b.op("v128.not", r) if vec else b.op("i32.eqz", r)
            return r
        if pred in (0, 15):  # false / true
            v = 1 if pred == 15 else 0
            return b.v128c("i32x4", [-v] * 4) if vec else b.i32c(v)
        pa, pb = self.reusable(b, x), self.reusable(b, y)
        if pred in (6, 8):  # one, ueq: lt | gt (negated for ueq)
            r = b.op(("v128." if vec else "i32.") + "or",
                     b.op(p + "lt", pa(), pb()), b.op(p + "gt", pa(), pb()))  # fmt: skip
            if pred == 8:
                r = b.op("v128.not", r) if vec else b.op("i32.eqz", r)
            return r
        # ord, uno: both operands are numbers (negated for uno)
        r = b.op(("v128." if vec else "i32.") + "and",
                 b.op(p + "eq", pa(), pa()), b.op(p + "eq", pb(), pb()))  # fmt: skip
        if pred == 14:
            r = b.op("v128.not", r) if vec else b.op("i32.eqz", r)
        return r

    def emit_pow(self, b: _Builder, op: Operation, vec: bool) -> SSAValue:
        x, y = operands_of(op)
        p = "f32x4." if vec else "f32."
        k = self._const_float(y)
        if k == 1.0:
            return self.push(b, x)
        if k == 0.5:
            return b.op(p + "sqrt", self.push(b, x))
        if k in (2.0, 3.0):
            px = self.reusable(b, x, "base")
            r = b.op(p + "mul", px(), px())
            if k == 3.0:
                r = b.op(p + "mul", r, px())
            return r
        fn = self.helpers.symbol("pow", vec)
        a = self.push(b, x)
        return b.call(fn, [a, self.push(b, y)], [self.wtype(op.results[0].type)])  # type: ignore

    # ------------------------------------------------------------------------ statements

    def emit_block(self, b: _Builder, block: Block, top: bool = False):
        self.analyse_block(block)
        folded, dead = self.folded, self.dead
        next_op = first_op_of(block)
        while next_op is not None:
            op, next_op = next_op, next_op_of(next_op)
            t = type(op)
            if t is nn_loop.YieldOp or id(op) in folded or id(op) in dead:
                continue
            if op.results and self.is_virtual(op):
                continue
            if t is nn_loop.StoreOp:
                self.emit_store(b, op)
            elif t is nn_loop.AllocOp:
                self.emit_alloc(op)
            elif t is nn_loop.ForOp:
                if op.properties["map"].data == "thread":
                    if not top:
                        raise self.error("a thread loop must be at the top level of the kernel")
                    self.emit_thread_loop(b, op)
                elif op.properties["map"].data != "serial":
                    raise self.error(f'loop map "{op.properties["map"].data}" is not available on target wasm',
                                     'use "serial" or "thread"')  # fmt: skip
                elif _full_unroll(op):
                    self.emit_unrolled(b, op)
                else:
                    self.emit_loop(b, op)
            elif type(op) is nn_loop.IfOp:
                cond = self.push(b, operands_of(op)[0])
                inner = b.nest("if", self.loc.label("if"), cond)
                self.emit_block(inner, _body(op))
            elif type(op) is nn_loop.BarrierOp:
                raise self.error("nn_loop.barrier is not available on target wasm")
            elif len(op.results) == 1:
                (v,) = op.results
                name = self.loc.new(v.name_hint or "v", self.wtype(type_of(v)))
                b.set(name, self.emit_expr(b, op))
                self.val_local[id(v)] = name
            else:
                raise self.error(f"operation {op.name} is not supported by the wasm backend")

    def emit_alloc(self, op: nn_loop.AllocOp):
        t = op.result.type
        assert isinstance(t, MemRefType)
        space = nn_loop.memory_space(t)
        if space != "private":
            raise self.error(f"{space} memory is not available on target wasm",
                             "use private buffers (registers)")  # fmt: skip
        n = math.prod(t.get_shape())
        if n > 4096:
            raise self.error(f"private buffer of {n} elements is too large for locals")
        wt = self.wtype(t.get_element_type())
        hint = op.result.name_hint or "r"
        self.private[id(op.result)] = [self.loc.new(f"{hint}_{k}", wt) for k in range(n)]

    # ----------------------------------------------------------------------- unrolling

    def _enter(self, loop: nn_loop.ForOp, copy: int, const: int | None = None, off: int = 0):
        """Starts emitting copy `copy` of an unrolled body: its iv is the constant `const`
        (a fully unrolled loop, or a loop of one iteration) or the loop's iv + `off` (a
        partially unrolled one). Affine forms and sign facts may depend on it: the copy gets
        caches of its own (the enclosing ones are back after `_leave`)."""
        self.inst = (*self.inst, (id(loop), copy))
        iv = block_args_of(_body(loop))[0]
        if const is not None:
            self.iv_const[id(iv)] = const
        else:
            self.iv_off[id(iv)] = off
        self._outer_caches.append((self._affine, self._nonneg))
        self._affine, self._nonneg = {}, {}

    def _leave(self, loop: nn_loop.ForOp) -> None:
        self.inst = self.inst[:-1]
        iv = block_args_of(_body(loop))[0]
        self.iv_const.pop(id(iv), None)
        self.iv_off.pop(id(iv), None)
        self._affine, self._nonneg = self._outer_caches.pop()

    def emit_unrolled(self, b: _Builder, loop: nn_loop.ForOp) -> None:
        """A loop whose unroll factor is its trip count: one copy of the body per iteration,
        straight-line, the iv a constant in each (what nn-loop-unroll makes of it)."""
        lb, step = _prop(loop, "lb"), _prop(loop, "step")
        for k in range(_trips(loop)):
            self._enter(loop, k, const=lb + k * step)
            self.emit_block(b, _body(loop))
            self._leave(loop)

    def _each_access(self, block: Block, visit) -> None:
        """Calls visit(op) for the global loads and stores of `block`, of the `nn_loop.if`s
        in it and of each copy of its fully unrolled loops (with that copy entered); not
        for those of other loops."""
        op = first_op_of(block)
        while op is not None:
            t = type(op)
            if t is nn_loop.LoadOp:
                if self.space(_item(operands_of(op), 0)) == "global":
                    visit(op)
            elif t is nn_loop.StoreOp:
                if self.space(_item(operands_of(op), 1)) == "global":
                    visit(op)
            elif t is nn_loop.IfOp:
                self._each_access(_body(op), visit)
            elif t is nn_loop.ForOp and _full_unroll(op) and self._has_global_access(op):
                lb, step = _prop(op, "lb"), _prop(op, "step")
                for k in range(_trips(op)):
                    self._enter(op, k, const=lb + k * step)
                    self._each_access(_body(op), visit)
                    self._leave(op)
            op = next_op_of(op)

    def _has_global_access(self, loop: nn_loop.ForOp) -> bool:
        """Whether a global load or store lies anywhere in the loop's body."""
        r = self._global_in.get(loop)
        if r is None:
            r = False
            for op in walk(loop):
                t = type(op)
                if (t is nn_loop.LoadOp and self.space(_item(operands_of(op), 0)) == "global") or (
                    t is nn_loop.StoreOp and self.space(_item(operands_of(op), 1)) == "global"
                ):
                    r = True
                    break
            self._global_in[loop] = r
        return r

    # ------------------------------------------------------------------------- streams

    def plan_streams(self, loop: nn_loop.ForOp, copies: int = 1) -> tuple[list[_Stream], bool]:
        """Address streams of a serial loop (strength reduction): the global accesses of the
        body whose byte address is `base + sum(invariant terms) + c * iv + rest` with c > 0
        share, per (buffer, invariant terms, c), one pointer local that is set before the
        loop and bumped by c * step after each iteration; each access adds its `rest` (terms
        computed inside the body) and puts its constant in the memarg offset. Only accesses
        whose every term and constant is provably >= 0 take part (so no address wraps).
        With `copies` > 1 (a partially unrolled loop) the body's copies are planned together.

        Also returns whether every use of the iv is an address in a stream (then the loop
        needs no iv: its first pointer counts the iterations)."""
        iv = block_args_of(_body(loop))[0]
        if not self.iv_nonneg.get(id(iv), False):
            return [], False
        step = _prop(loop, "step")
        streams: dict[tuple, _Stream] = {}
        seen: dict[Operation, int] = {}  # access op -> copies of it visited
        in_stream: dict[Operation, int] = {}  # access op -> copies of it in a stream

        def visit(op: Operation) -> None:
            seen[op] = seen.get(op, 0) + 1
            buf, indices = _access_of(op)
            terms, const = self.byte_terms(buf, indices)
            c = terms.get(iv, 0)
            if c <= 0 or const < 0 or not self._offset_ok(terms):
                return
            inv: dict[SSAValue, int] = {}
            rest: dict[SSAValue, int] = {}
            for a, k in terms.items():
                if a is iv:
                    continue
                owner = a.owner.parent_op() if type(a) is BlockArgument else a.owner
                inside = owner is not None and loop.is_ancestor(owner)  # type: ignore[arg-type]
                (rest if inside else inv)[a] = k
            key = (buf, frozenset(inv.items()), c)
            st = streams.get(key)
            if st is None:
                hint = (buf.name_hint or "p") if type(buf) is BlockArgument else "p"
                st = streams[key] = _Stream(self.loc.new(f"p_{hint}", i32), buf, inv, c)
            st.ops.append(op)
            in_stream[op] = in_stream.get(op, 0) + 1
            self.stream_of[(id(op), self.inst)] = (st.local, rest, const)

        for j in range(copies):
            if copies > 1:
                self._enter(loop, j, off=j * step)
            self._each_access(_body(loop), visit)
            if copies > 1:
                self._leave(loop)
        if not streams:
            return [], False
        only = all(in_stream.get(u, 0) == seen.get(u, -1) for u in self.eff_users(iv))
        return list(streams.values()), only

    @staticmethod
    def _bump(b: _Builder, st: _Stream, step: int) -> None:
        b.set(st.local, b.op("i32.add", b.get(st.local, i32), b.i32c(st.c * step)))

    def emit_loop(self, b: _Builder, loop: nn_loop.ForOp):
        """A serial loop; unrolled by U < trip count, it steps by U * step over U copies of
        its body (the iv + k * step in copy k), as nn-loop-unroll would make it."""
        lb, ub, step = _prop(loop, "lb"), _prop(loop, "ub"), _prop(loop, "step")
        u = _prop(loop, "unroll")
        body = _body(loop)
        n = _trips(loop) // u  # (the verifier makes u divide the trip count)
        if n == 0:
            return
        iv = block_args_of(body)[0]
        if n == 1:
            for j in range(u):
                self._enter(loop, j, const=lb + j * step)
                self.emit_block(b, body)
                self._leave(loop)
            if u == 1:
                self.iv_const[id(iv)] = lb
            return
        self.iv_nonneg[id(iv)] = lb >= 0
        streams, iv_free = self.plan_streams(loop, u)
        step *= u
        for st in streams:  # p = base + invariant terms + c * lb
            base = b.get(self.arg_param[st.buf], i32)
            b.set(st.local, self.emit_affine(b, (st.inv, st.c * lb), base))
        label = self.loc.label("l")

        def emit_body(inner: _Builder) -> None:
            for j in range(u):
                if u > 1:
                    self._enter(loop, j, off=j * _prop(loop, "step"))
                self.emit_block(inner, body)
                if u > 1:
                    self._leave(loop)

        if iv_free:
            # the first stream's pointer counts the iterations: no iv at all
            first = streams[0]
            end = self.loc.new("p_end", i32)
            b.set(end, b.op("i32.add", b.get(first.local, i32), b.i32c(first.c * step * n)))
            inner = b.nest("loop", label)
            emit_body(inner)
            for st in streams[1:]:
                self._bump(inner, st, step)
            nxt = inner.tee(first.local, inner.op("i32.add", inner.get(first.local, i32),
                                                  inner.i32c(first.c * step)))  # fmt: skip
            # != rather than <: p reaches the end exactly, even where the end wraps past 4 GiB
            inner.add(W.BrIfOp(label, inner.op("i32.ne", nxt, inner.get(end, i32))))
            return
        # (nn-loop-unroll's loop of U copies has a fresh iv, without the name hint)
        name = self.loc.new((iv.name_hint if u == 1 else None) or "i", i32)
        self.iv_local[id(iv)] = name
        b.set(name, b.i32c(lb))
        inner = b.nest("loop", label)
        emit_body(inner)
        for st in streams:
            self._bump(inner, st, step)
        nxt = inner.tee(name, inner.op("i32.add", inner.get(name, i32), inner.i32c(step)))
        inner.add(W.BrIfOp(label, inner.op("i32.lt_s", nxt, inner.i32c(ub))))

    def emit_thread_loop(self, b: _Builder, loop: nn_loop.ForOp):
        lb, step = _prop(loop, "lb"), _prop(loop, "step")
        n = _trips(loop)
        self.thread_chunks = max(self.thread_chunks, n)
        if n == 0:
            return
        tid, nth = self.tid, self.nthreads
        c, start, end = (self.loc.new(h, i32) for h in ("chunk", "lo", "hi"))
        # c = ceil(n / nthreads); [start, end) = [tid*c, min(n, tid*c + c))
        b.set(c, b.op("i32.div_u", b.op("i32.add", b.get(nth, i32), b.i32c(n - 1)), b.get(nth, i32)))
        b.set(start, b.op("i32.mul", b.get(tid, i32), b.get(c, i32)))
        b.set(end, b.op("i32.add", b.get(start, i32), b.get(c, i32)))
        b.set(end, b.select(b.get(end, i32), b.i32c(n),
                            b.op("i32.lt_s", b.get(end, i32), b.i32c(n))))  # fmt: skip
        idle = b.nest("if", self.loc.label("idle"),
                      b.op("i32.ge_s", b.get(start, i32), b.get(end, i32)))  # fmt: skip
        idle.ret()
        iv = loop.iv
        name = self.loc.new(iv.name_hint or "t", i32)
        self.iv_local[id(iv)] = name
        self.iv_nonneg[id(iv)] = lb >= 0
        # iv runs over lb + step*[start, end)
        def scaled(local: str) -> SSAValue:  # lb + step * local
            v = b.get(local, i32)
            if step != 1:
                v = b.op("i32.mul", v, b.i32c(step))
            return b.op("i32.add", v, b.i32c(lb)) if lb else v

        b.set(name, scaled(start))
        if step != 1 or lb != 0:
            b.set(end, scaled(end))
        label = self.loc.label("chunks")
        inner = b.nest("loop", label)
        self.emit_block(inner, _body(loop))
        nxt = inner.tee(name, inner.op("i32.add", inner.get(name, i32), inner.i32c(step)))
        inner.add(W.BrIfOp(label, inner.op("i32.lt_s", nxt, inner.get(end, i32))))

    # ------------------------------------------------------------------------------ all

    def lower(self) -> W.ModuleOp:
        k = self.kernel
        unrolled_threads = False
        for op in walk(k):
            if type(op) is nn_loop.ForOp:
                if op.properties["map"].data not in ("serial", "thread"):
                    raise self.error(f'loop map "{op.properties["map"].data}" is not available on target wasm',
                                     'use "serial" or "thread"')  # fmt: skip
                if op.properties["map"].data == "thread" and _prop(op, "unroll") > 1:
                    unrolled_threads = True
        if unrolled_threads:  # (serial loops are unrolled while emitting; these are not)
            unroll_all(k)
        self.tid = self.loc.param("tid", i32)
        self.nthreads = self.loc.param("nthreads", i32)
        params = []
        for idx, (arg, mode) in enumerate(zip(k.body.block.args, k.access.data)):
            t = arg.type
            assert isinstance(t, MemRefType)
            et = t.get_element_type()
            if type(et) is Float32Type:
                dtype = "f32"
            elif type(et) is IntegerType and et.width.data == 32:
                dtype = "i32"
            else:
                raise self.error(f"argument {idx} has element type {et}", "use f32 or i32 buffers")
            self.arg_param[arg] = self.loc.param(f"b{idx}", i32)
            shape = list(t.get_shape())
            params.append(DictionaryAttr({
                "index": W._i64(idx), "access": W._str(mode.data.value), "dtype": W._str(dtype),
                "shape": ArrayAttr([W._i64(s) for s in shape]),
                "bytes": W._i64(4 * math.prod(shape)),
            }))  # (attributes are immutable: the cached ones are shared)  # fmt: skip
        body = Region(Block())
        b = _Builder(body.block)
        top_threads = any(
            type(o) is nn_loop.ForOp and o.map.data == "thread" for o in k.body.block.ops
        )
        if not top_threads:
            only0 = b.nest("if", self.loc.label("not_thread0"), b.get(self.tid, i32))
            only0.ret()
        self.emit_block(b, k.body.block, top=True)
        b.ret()
        run = W.FuncOp(self.module_names.fresh("run"), self.loc.params, [], self.loc.locals,
                       "run", body)  # fmt: skip
        features = ["simd128"] + (["relaxed-simd"] if self.used_relaxed else []) + ["threads"]
        mod = W.ModuleOp(self.kname, k.kind.data, params, self.thread_chunks, features,
                         k.schedule, Region(Block([W.ImportMemoryOp(), run, *self.helpers.funcs])))  # fmt: skip
        return mod


def _combine(a: dict[SSAValue, int], b: dict[SSAValue, int], scale: int) -> dict[SSAValue, int]:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + scale * v
    return {k: v for k, v in out.items() if v}


def lower_kernel(kernel: nn_loop.KernelOp, relaxed_simd: bool = True) -> W.ModuleOp:
    """The nn_wasm.module for one nn_loop kernel with target "wasm"."""
    return _KernelLowering(kernel, relaxed_simd).lower()


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
