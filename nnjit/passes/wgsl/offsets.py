"""Index arithmetic of loads and stores: flat offsets as x + c with the constant parts gathered
(so unrolled accesses share x), vec4 element and lane indices, the indices of nested arrays,
and what is known of a value's divisors in the emitted code.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import gcd
from typing import TYPE_CHECKING

from xdsl.dialects.builtin import MemRefType, i32
from xdsl.ir import SSAValue

from nnjit.dialects import nn_wgsl as w
from nnjit.ir.fastir import operands_of, type_of
from nnjit.passes.wgsl.typefacts import shape_of

if TYPE_CHECKING:
    from nnjit.passes.wgsl.emitter import Emitter


def split_const(cx: Emitter, v: SSAValue) -> tuple[SSAValue | None, int]:
    """(x, c) with v == x + c for an i32 value (x None: v is the constant c)."""
    e = cx.splits.get(id(v))
    if e is None:
        e = cx.splits[id(v)] = (*split_uncached(cx, v), v)  # (v kept alive: ids stay unique)
    return e[0], e[1]


def split_uncached(cx: Emitter, v: SSAValue) -> tuple[SSAValue | None, int]:
    """split_const, uncached."""
    c = cx.cvals.get(id(v))
    if c is not None:
        return None, int(c)
    op = v.owner
    if type(op) is w.BinaryOp and (type_of(v) is i32 or type_of(v) == i32):
        o = op.properties["op"].data
        if o != "+" and o != "-":
            return v, 0
        lhs, rhs = operands_of(op)
        cr = cx.cval(rhs)
        if cr is not None:
            x, c = split_const(cx, lhs)
            return x, c + int(cr) if o == "+" else c - int(cr)
        cl = cx.cval(lhs)
        if cl is not None and o == "+":
            x, c = split_const(cx, rhs)
            return x, c + int(cl)
    return v, 0


def wmod(cx: Emitter, v: SSAValue) -> int:
    """The largest g known to divide i32 value `v` of the emitted code (0: v is 0)."""
    g = cx.wmods.get(id(v))
    if g is not None:
        return g
    g = 1
    c = cx.cval(v)
    op = v.owner
    if c is not None:
        g = abs(int(c))
    elif type(op) is w.BinaryOp and v.type == i32:
        o = op.properties["op"].data
        if o in ("+", "-"):
            g = gcd(wmod(cx, operands_of(op)[0]), wmod(cx, operands_of(op)[1]))
        elif o == "*":
            g = wmod(cx, operands_of(op)[0]) * wmod(cx, operands_of(op)[1])
    cx.wmods[id(v)] = g
    return g


def flat_parts(
    cx: Emitter, t: MemRefType, indices: Sequence[SSAValue]
) -> tuple[SSAValue | None, int]:
    """The flat (row-major) offset of an access as x + c: the constant parts of the
    indices are gathered into c, so that unrolled accesses share x."""
    shape = shape_of(t)
    vmap, splits = cx.vmap, cx.splits
    const, stride = 0, 1
    terms: list[SSAValue] = []
    for k in range(len(indices) - 1, -1, -1):
        v = vmap[id(indices[k])]
        e = splits.get(id(v))
        x, c = (e[0], e[1]) if e is not None else split_const(cx, v)
        const += c * stride
        if x is not None:
            terms.append(x if stride == 1 else cx.binary("*", x, cx.const(stride, i32)))
        stride *= shape[k]
    dyn: SSAValue | None = None
    for term in reversed(terms):  # outermost dim first
        dyn = term if dyn is None else cx.binary("+", dyn, term)
    return dyn, const


def flat_index(cx: Emitter, t: MemRefType, indices: Sequence[SSAValue]) -> SSAValue:
    dyn, c = flat_parts(cx, t, indices)
    if dyn is None:
        return cx.const(c, i32)
    return cx.binary("+", dyn, cx.const(c, i32))


def element_index(cx: Emitter, flat: SSAValue, k: int) -> SSAValue:
    return cx.binary("+", flat, cx.const(k, i32)) if k else flat


def vec_index(cx: Emitter, t: MemRefType, indices: Sequence[SSAValue]) -> SSAValue:
    """The vec4 element index of a vector access (its flat offset is a multiple of 4)."""
    return vec_parts(cx, *flat_parts(cx, t, indices))


def vec_parts(cx: Emitter, dyn: SSAValue | None, c: int) -> SSAValue:
    """(dyn + c) / 4 for a multiple of 4."""
    if dyn is None:
        return cx.const(c // 4, i32)
    if c % 4 == 0:  # dyn is a multiple of 4 too: (dyn >> 2) + c / 4
        q = cx.binary(">>", dyn, cx.const(2, w.u32))
        return cx.binary("+", q, cx.const(c // 4, i32))
    return cx.binary(">>", cx.binary("+", dyn, cx.const(c, i32)), cx.const(2, w.u32))


def lane_index(
    cx: Emitter, t: MemRefType, indices: Sequence[SSAValue]
) -> tuple[SSAValue, SSAValue]:
    """(vec4 element, lane) of a scalar access to an array stored as vec4."""
    return lane_parts(cx, *flat_parts(cx, t, indices))


def lane_parts(cx: Emitter, dyn: SSAValue | None, c: int) -> tuple[SSAValue, SSAValue]:
    """((dyn + c) >> 2, (dyn + c) & 3), the lane a constant where dyn's residue is known."""
    if dyn is None:
        return cx.const(c // 4, i32), cx.const(c % 4, i32)
    if wmod(cx, dyn) % 4 == 0:
        q = cx.binary(">>", dyn, cx.const(2, w.u32))
        return cx.binary("+", q, cx.const(c // 4, i32)), cx.const(c % 4, i32)
    flat = cx.binary("+", dyn, cx.const(c, i32))
    q = cx.binary(">>", flat, cx.const(2, w.u32))
    return q, cx.binary("&", flat, cx.const(3, i32))


def array_of(cx: Emitter, mem: SSAValue) -> SSAValue:
    a = cx.arrays.get(id(mem))
    if a is None:
        raise cx.error("a load or store uses a buffer that is neither an argument nor an alloc")
    return a


def nested_index(
    cx: Emitter, mem: SSAValue, t: MemRefType, indices: Sequence[SSAValue], lanes: int
) -> list[list[SSAValue]]:
    """The index lists of an access to a nested (workgroup) array: one list, or one per
    lane when a vector access is split into scalar ones."""
    outer = [cx.v(i) for i in indices[:-1]]
    dyn, c = split_const(cx, cx.v(indices[-1]))
    if id(mem) in cx.vec4:
        if lanes == 4:
            return [[*outer, vec_parts(cx, dyn, c)]]
        return [[*outer, *lane_parts(cx, dyn, c + k)] for k in range(lanes)]
    return [
        [*outer, cx.const(c + k, i32) if dyn is None else cx.binary(
            "+", dyn, cx.const(c + k, i32))]
        for k in range(lanes)
    ]  # fmt: skip


def const_offset(cx: Emitter, t: MemRefType, indices: Sequence[SSAValue]) -> int | None:
    """The flat offset of an access whose indices are all constants (None otherwise):
    what `flat` would give, without building it (a register tile's elements)."""
    vmap, cvals = cx.vmap, cx.cvals
    shape = shape_of(t)
    off, stride = 0, 1
    for k in range(len(indices) - 1, -1, -1):
        c = cvals.get(id(vmap[id(indices[k])]))
        if c is None:
            return None
        off += int(c) * stride
        stride *= shape[k]
    return off if -(2**31) <= off < 2**31 else None
