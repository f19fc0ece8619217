"""Patterns for arith: integer and float binary operators (integer ones fold), comparisons,
select, casts; unsigned operations through bitcasts to u32; floor/ceil division; NaN kept by
maximumf / minimumf.
"""

from __future__ import annotations

from collections.abc import Callable

from xdsl.dialects import arith
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    FloatAttr,
    IntegerAttr,
    VectorType,
    f32,
    i1,
    i32,
)
from xdsl.ir import Operation

from nnjit.dialects import nn_wgsl as w
from nnjit.ir.fastir import operands_of, type_of
from nnjit.passes.wgsl.emitter import Emitter
from nnjit.passes.wgsl.nan import is_nan, keep_nan
from nnjit.passes.wgsl.typefacts import facts, unsigned_type

_CMP_PY: dict[str, Callable[[int, int], bool]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}  # fmt: skip


INT_BINARY: dict[type, str] = {
    arith.AddiOp: "+", arith.SubiOp: "-", arith.MuliOp: "*", arith.DivSIOp: "/",
    arith.RemSIOp: "%", arith.AndIOp: "&", arith.OrIOp: "|", arith.XOrIOp: "^",
}  # fmt: skip


FLOAT_BINARY: dict[type, str] = {
    arith.AddfOp: "+", arith.SubfOp: "-", arith.MulfOp: "*", arith.DivfOp: "/",
    arith.MaximumfOp: "max", arith.MinimumfOp: "min", arith.MaxnumfOp: "max",
    arith.MinnumfOp: "min",
}  # fmt: skip


_NAN_PROPAGATING = frozenset((arith.MaximumfOp, arith.MinimumfOp))


_SCALAR_ATTRS = (IntegerAttr, FloatAttr)  # (isinstance of a tuple: faster than of a union)


def convert_constant(cx: Emitter, op: arith.ConstantOp) -> None:
    """arith.constant: a hoisted constant (a vector splat, or a vector of constants)."""
    val = op.properties["value"]
    (r,) = op.results
    t = cx.wtype(type_of(r))
    if isinstance(val, _SCALAR_ATTRS):
        x = val.value.data
        cx.set(r, cx.const(bool(x) if facts(t).is_i1 else x, t))
        return
    if isinstance(val, DenseIntOrFPElementsAttr) and isinstance(t, VectorType):
        values = list(val.get_values())
        e = t.get_element_type()
        if e == i1:
            values = [bool(x) for x in values]
        if len(set(values)) == 1:
            cx.set(op.result, cx.const(values[0], t))
        else:
            parts = [cx.const(x, e) for x in values]
            c = w.ConstructOp(parts, t)
            cx.const_ops.append(c)
            cx.set(op.result, c.result)
        return
    raise cx.error(f"constant {val} is not supported")


def convert_int_binary(cx: Emitter, op: Operation) -> None:
    """arith.addi ... xori (INT_BINARY): the WGSL operator (on bools: &, |, !=), folded."""
    x, y = operands_of(op)
    vmap = cx.vmap
    a, b = vmap[id(x)], vmap[id(y)]
    (r,) = op.results
    t = type_of(a)
    o = INT_BINARY[type(op)]
    if t is not i32 and facts(t).is_bool:  # (i32: the common case)
        o = {"&": "&", "|": "|", "^": "!="}[o]
    cx.set(r, cx.binary(o, a, b, r))


def convert_min_max_si(cx: Emitter, op: Operation) -> None:
    """arith.minsi / maxsi: min / max, folded."""
    x, y = operands_of(op)
    vmap = cx.vmap
    a, b = vmap[id(x)], vmap[id(y)]
    (r,) = op.results
    t = type_of(a)
    f = "min" if type(op) is arith.MinSIOp else "max"
    x, y = cx.cval(a), cx.cval(b)
    if x is not None and y is not None:
        cx.set(r, cx.const((min if f == "min" else max)(x, y), t))
        return
    cx.set(r, cx.call(f, [a, b], r))


def convert_unsigned(cx: Emitter, op: Operation) -> None:
    """arith.shli / shrsi / shrui / divui / remui: on u32 bitcasts where WGSL's signed
    operators differ."""
    x, y = operands_of(op)
    a, b = cx.v(x), cx.v(y)
    (r,) = op.results
    ut = unsigned_type(a.type)
    ua = cx.bitcast(a, ut)
    ub = cx.bitcast(b, ut)
    if isinstance(op, arith.ShLIOp | arith.ShRSIOp):
        o = "<<" if isinstance(op, arith.ShLIOp) else ">>"
        cx.set(r, cx.binary(o, a, ub, r))
        return
    o = {arith.ShRUIOp: ">>", arith.DivUIOp: "/", arith.RemUIOp: "%"}[type(op)]
    res = cx.binary(o, ua, ub)
    cx.set(r, cx.bitcast(res, a.type, r))


def convert_floor_ceil_div(cx: Emitter, op: Operation) -> None:
    """arith.floordivsi / ceildivsi: `/` (truncating) adjusted by one where the remainder says
    so."""
    x, y = operands_of(op)
    a, b = cx.v(x), cx.v(y)
    (r,) = op.results
    q = cx.binary("/", a, b)
    rem = cx.binary("%", a, b)
    zero = cx.const(0, a.type)
    nz = cx.binary("!=", rem, zero)
    if isinstance(op, arith.FloorDivSIOp):
        # signs differ: (rem < 0) != (b < 0)
        adj = cx.binary("!=", cx.binary("<", rem, zero), cx.binary("<", b, zero))
        delta = -1
    else:
        adj = cx.binary("==", cx.binary("<", rem, zero), cx.binary("<", b, zero))
        delta = 1
    fix = cx.binary("&&", nz, adj)
    adjusted = cx.binary("+", q, cx.const(delta, a.type))
    cx.set(r, cx.call("select", [q, adjusted, fix], r))


def convert_float_binary(cx: Emitter, op: Operation) -> None:
    """arith.addf ... minnumf (FLOAT_BINARY): the WGSL operator, or max / min (NaN kept for
    maximumf / minimumf)."""
    x, y = operands_of(op)
    a, b = cx.v(x), cx.v(y)
    (r,) = op.results
    o = FLOAT_BINARY[type(op)]
    if o in ("max", "min"):
        m = cx.call(o, [a, b], None if type(op) in _NAN_PROPAGATING else r)
        cx.set(r, keep_nan(cx, m, [a, b], r) if type(op) in _NAN_PROPAGATING else m)
    else:
        cx.set(r, cx.binary(o, a, b, r))


def convert_cmpi(cx: Emitter, op: arith.CmpiOp) -> None:
    """arith.cmpi: a comparison (unsigned predicates on u32 bitcasts), folded on constants."""
    pred = arith.CMPI_COMPARISON_OPERATIONS[op.properties["predicate"].value.data]
    x, y = operands_of(op)
    a, b = cx.v(x), cx.v(y)
    if pred.startswith("u"):
        ut = unsigned_type(a.type)
        if not w.is_bool(a.type):
            a, b = cx.bitcast(a, ut), cx.bitcast(b, ut)
        pred = "s" + pred[1:]
    o = {"eq": "==", "ne": "!=", "slt": "<", "sle": "<=", "sgt": ">", "sge": ">="}[pred]
    x, y = cx.cval(a), cx.cval(b)
    if x is not None and y is not None and a.type == i32:
        cx.set(op.result, cx.const(bool(_CMP_PY[o](x, y)), i1))
        return
    cx.set(op.result, cx.binary(o, a, b, op.result))


def convert_cmpf(cx: Emitter, op: arith.CmpfOp) -> None:
    """arith.cmpf: a comparison; ord / uno test NaN on the bits, false / true are constants."""
    pred = arith.CMPF_COMPARISON_OPERATIONS[op.predicate.value.data]
    a, b = cx.v(op.lhs), cx.v(op.rhs)
    rt = cx.wtype(op.result.type)
    if pred in ("false", "true"):
        cx.set(op.result, cx.const(pred == "true", rt))
        return
    if pred in ("ord", "uno"):
        x = cx.binary("|", is_nan(cx, a), is_nan(cx, b)) if a is not b else is_nan(cx, a)
        cx.set(op.result, cx.un("!", x, op.result) if pred == "ord" else x)
        return
    o = {"eq": "==", "gt": ">", "ge": ">=", "lt": "<", "le": "<=", "ne": "!="}[pred[1:]]
    cx.set(op.result, cx.binary(o, a, b, op.result))


def convert_select(cx: Emitter, op: arith.SelectOp) -> None:
    """arith.select: WGSL's select(f, t, cond), or the chosen value for a constant condition."""
    c, t, f = (cx.v(x) for x in operands_of(op))
    cv = cx.cval(c)
    if cv is not None:
        cx.set(op.result, t if cv else f)
        return
    cx.set(op.result, cx.call("select", [f, t, c], op.result))


def convert_cast(cx: Emitter, op: Operation) -> None:
    """arith casts (index_cast, sitofp, uitofp, fptosi, extui, extsi, trunci, bitcast, extf,
    truncf: f32 <-> f16): a conversion or a bitcast, folded on constants."""
    (x,) = operands_of(op)
    a = cx.v(x)
    (r,) = op.results
    rt = cx.wtype(r.type)
    if a.type == rt:
        cx.set(r, a)
        return
    if isinstance(op, arith.ExtSIOp) and w.is_bool(a.type):
        cx.set(r, cx.call("select", [cx.const(0, rt), cx.const(-1, rt), a], r))
        return
    if isinstance(op, arith.TruncIOp) and w.is_bool(rt):
        one = cx.const(1, a.type)
        bit = cx.binary("&", a, one)
        cx.set(r, cx.binary("!=", bit, cx.const(0, a.type), r))
        return
    if isinstance(op, arith.UIToFPOp) and not w.is_bool(a.type):
        ut = unsigned_type(a.type)
        a = cx.bitcast(a, ut)
    if isinstance(op, arith.BitcastOp):
        cx.set(r, cx.bitcast(a, rt, r))
        return
    c = cx.cval(a)
    if c is not None and rt in (i32, f32):
        cx.set(r, cx.const(int(c) if rt == i32 else float(c), rt))
        return
    cx.set(r, cx.conv(a, rt, r))


def convert_negf(cx: Emitter, op: arith.NegfOp) -> None:
    """arith.negf: unary `-`."""
    cx.set(op.result, cx.un("-", cx.v(op.operand), op.result))
