"""Wasm patterns of arith ops on f32, i32/index/i1 and their 4-lane vectors (f32x4 / i32x4;
vector<4xi1> masks are all-ones lanes). `arith.constant`, `arith.index_cast` and index
add/sub/mul are not here: the context emits them where they are used (constants and affine
index expressions)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from xdsl.dialects import arith
from xdsl.dialects.builtin import Float32Type
from xdsl.ir import Operation, SSAValue

from nnjit.dialects import nn_loop
from nnjit.ir.fastir import operands_of, type_of
from nnjit.passes.wasm.builder import Builder
from nnjit.passes.wasm.facts import is_vec, scalar_of

if TYPE_CHECKING:
    from nnjit.passes.wasm.lowering import KernelContext

_FLOAT_BIN = {
    arith.AddfOp: "add", arith.SubfOp: "sub", arith.MulfOp: "mul", arith.DivfOp: "div",
    arith.MaximumfOp: "max", arith.MinimumfOp: "min", arith.MaxnumfOp: "max",
    arith.MinnumfOp: "min",
}  # fmt: skip
_INT_BIN = {
    arith.AddiOp: "add", arith.SubiOp: "sub", arith.MuliOp: "mul", arith.DivSIOp: "div_s",
    arith.DivUIOp: "div_u", arith.RemSIOp: "rem_s", arith.RemUIOp: "rem_u",
    arith.AndIOp: "and", arith.OrIOp: "or", arith.XOrIOp: "xor", arith.ShLIOp: "shl",
    arith.ShRSIOp: "shr_s", arith.ShRUIOp: "shr_u",
}  # fmt: skip
_VEC_INT_BIN = {
    arith.AddiOp: "i32x4.add", arith.SubiOp: "i32x4.sub", arith.MuliOp: "i32x4.mul",
    arith.AndIOp: "v128.and", arith.OrIOp: "v128.or", arith.XOrIOp: "v128.xor",
    arith.MinSIOp: "i32x4.min_s", arith.MaxSIOp: "i32x4.max_s",
}  # fmt: skip
_CMPI = ["eq", "ne", "lt_s", "le_s", "gt_s", "ge_s", "lt_u", "le_u", "gt_u", "ge_u"]
# cmpf predicate -> (wasm comparison, negate): unordered predicates are negated ordered ones
_CMPF = {
    1: ("eq", False), 2: ("gt", False), 3: ("ge", False), 4: ("lt", False), 5: ("le", False),
    9: ("le", True), 10: ("lt", True), 11: ("ge", True), 12: ("gt", True), 13: ("ne", False),
}  # fmt: skip


def _vec(op: Operation) -> bool:
    """Whether the op's (single) result is a vector."""
    (res,) = op.results
    return is_vec(type_of(res))


def float_binary(ctx: KernelContext, b: Builder, op: Operation) -> SSAValue:
    """addf, subf, mulf, divf, maximumf/maxnumf, minimumf/minnumf: f32.* / f32x4.*."""
    vec = _vec(op)
    a, c = (ctx.push(b, x) for x in operands_of(op))
    return b.op(("f32x4." if vec else "f32.") + _FLOAT_BIN[type(op)], a, c)  # type: ignore[index]


def negf(ctx: KernelContext, b: Builder, op: Operation) -> SSAValue:
    return b.op("f32x4.neg" if _vec(op) else "f32.neg", ctx.push(b, operands_of(op)[0]))


def int_binary(ctx: KernelContext, b: Builder, op: Operation) -> SSAValue:
    """Integer arithmetic, bitwise ops and shifts: i32.*; on vectors the i32x4 / v128 ops
    (add, sub, mul, and, or, xor only)."""
    if _vec(op):
        mnemonic = _VEC_INT_BIN.get(type(op))  # type: ignore[call-overload]
        if mnemonic is None:
            raise ctx.unsupported(op)
        a, c = (ctx.push(b, x) for x in operands_of(op))
        return b.op(mnemonic, a, c)
    a, c = (ctx.push(b, x) for x in operands_of(op))
    return b.op("i32." + _INT_BIN[type(op)], a, c)  # type: ignore[index]


def min_max_si(ctx: KernelContext, b: Builder, op: Operation) -> SSAValue:
    """minsi / maxsi: a select of a comparison (i32x4.min_s / max_s on vectors)."""
    if _vec(op):
        a, c = (ctx.push(b, x) for x in operands_of(op))
        return b.op(_VEC_INT_BIN[type(op)], a, c)  # type: ignore[index]
    pa, pb = ctx.reusable(b, operands_of(op)[0]), ctx.reusable(b, operands_of(op)[1])
    cmp = "i32.lt_s" if type(op) is arith.MinSIOp else "i32.gt_s"
    return b.select(pa(), pb(), b.op(cmp, pa(), pb()))


def cmpi(ctx: KernelContext, b: Builder, op: Operation) -> SSAValue:
    vec = _vec(op)
    pred = _CMPI[op.properties["predicate"].value.data]  # type: ignore[attr-defined]
    a, c = (ctx.push(b, x) for x in operands_of(op))
    if vec:
        if pred.endswith("_u"):
            raise ctx.error("unsigned vector comparisons are not supported")
        return b.op(f"i32x4.{pred}", a, c)
    return b.op(f"i32.{pred}", a, c)


def cmpf(ctx: KernelContext, b: Builder, op: Operation) -> SSAValue:
    """Ordered predicates are one comparison, unordered ones a negated ordered one; one/ueq
    are lt | gt, ord/uno compare each operand with itself."""
    vec = _vec(op)
    pred = op.properties["predicate"].value.data  # type: ignore[attr-defined]
    p = "f32x4." if vec else "f32."
    x, y = operands_of(op)
    if pred in _CMPF:
        cmp, neg = _CMPF[pred]
        r = b.op(p + cmp, ctx.push(b, x), ctx.push(b, y))
        if neg:
            r = b.op("v128.not", r) if vec else b.op("i32.eqz", r)
        return r
    if pred in (0, 15):  # false / true
        v = 1 if pred == 15 else 0
        return b.v128c("i32x4", [-v] * 4) if vec else b.i32c(v)
    pa, pb = ctx.reusable(b, x), ctx.reusable(b, y)
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


def select(ctx: KernelContext, b: Builder, op: Operation) -> SSAValue:
    """select: nn_wasm.select, or v128.bitselect with a vector mask."""
    cond, x, y = operands_of(op)
    if is_vec(cond.type):
        a, c = ctx.push(b, x), ctx.push(b, y)
        return b.op("v128.bitselect", a, c, ctx.push(b, cond))
    a, c = ctx.push(b, x), ctx.push(b, y)
    return b.select(a, c, ctx.push(b, cond))


def int_to_float(ctx: KernelContext, b: Builder, op: Operation) -> SSAValue:
    """sitofp / uitofp (signed only on vectors)."""
    vec = _vec(op)
    a = ctx.push(b, operands_of(op)[0])
    if vec:
        if type(op) is arith.UIToFPOp:
            raise ctx.error("unsigned vector conversion is not supported")
        return b.op("f32x4.convert_i32x4_s", a)
    return b.op("f32.convert_i32_s" if type(op) is arith.SIToFPOp else "f32.convert_i32_u", a)


def fptosi(ctx: KernelContext, b: Builder, op: Operation) -> SSAValue:
    vec = _vec(op)
    a = ctx.push(b, operands_of(op)[0])
    return b.op("i32x4.trunc_sat_f32x4_s" if vec else "i32.trunc_sat_f32_s", a)


def ext_trunc(ctx: KernelContext, b: Builder, op: Operation) -> SSAValue:
    """extui / extsi / trunci between i1 and i32 (i32 <-> i32 is a no-op)."""
    (res,) = op.results
    vec = is_vec(type_of(res))
    src = operands_of(op)[0]
    sw = scalar_of(src.type)
    dw = scalar_of(type_of(res))
    a = ctx.push(b, src)
    t = type(op)
    if t is arith.TruncIOp and dw.width.data == 1:  # type: ignore[attr-defined]
        if vec:
            raise ctx.error("vector trunci to i1 is not supported")
        return b.op("i32.and", a, b.i32c(1))
    if sw.width.data == 1 and t is arith.ExtUIOp:  # type: ignore[attr-defined]
        return b.op("v128.and", a, b.v128c("i32x4", [1] * 4)) if vec else a
    if sw.width.data == 1 and t is arith.ExtSIOp:  # type: ignore[attr-defined]
        return a if vec else b.op("i32.sub", b.i32c(0), a)
    return a  # i32 <-> i32


def bitcast(ctx: KernelContext, b: Builder, op: Operation) -> SSAValue:
    (res,) = op.results
    rt = type_of(res)
    a = ctx.push(b, operands_of(op)[0])
    if is_vec(rt):
        return a
    return b.op("f32.reinterpret_i32" if type(rt) is Float32Type else "i32.reinterpret_f32", a)


VALUE_PATTERNS = {
    **dict.fromkeys(_FLOAT_BIN, float_binary),
    arith.NegfOp: negf,
    **dict.fromkeys(_INT_BIN, int_binary),
    arith.MinSIOp: min_max_si, arith.MaxSIOp: min_max_si,
    arith.CmpiOp: cmpi,
    arith.CmpfOp: cmpf,
    arith.SelectOp: select,
    arith.SIToFPOp: int_to_float, arith.UIToFPOp: int_to_float, nn_loop.SIToFPOp: int_to_float,
    arith.FPToSIOp: fptosi, nn_loop.FPToSIOp: fptosi,
    arith.ExtUIOp: ext_trunc, arith.ExtSIOp: ext_trunc, arith.TruncIOp: ext_trunc,
    arith.BitcastOp: bitcast,
}  # fmt: skip
STATEMENT_PATTERNS: dict = {}
