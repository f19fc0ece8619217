"""Wasm patterns of nn_loop's vector ops: `splat` (v128.load32_splat when it splats a folded
global load), `extract` (extract_lane), `reduce_lanes` (lane by lane), `dot_i16x2`
(i32x4.dot_i16x8_s and i32x4.add) and `pair_splat` (i16x8.narrow_i32x4_s of a
v128.load64_splat when its two operands are folded loads of adjacent elements)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from xdsl.dialects.builtin import Float32Type, IntegerType
from xdsl.ir import BlockArgument, Operation, SSAValue

from nnjit.dialects import nn_loop
from nnjit.ir.fastir import operands_of, type_of
from nnjit.passes.wasm.builder import Builder, f32, v128
from nnjit.passes.wasm.facts import prop
from nnjit.passes.wasm.patterns_memory import address

if TYPE_CHECKING:
    from nnjit.passes.wasm.lowering import KernelContext


def splat(ctx: KernelContext, b: Builder, op: Operation) -> SSAValue:
    (src,) = operands_of(op)
    st = ctx.wtype(src.type)
    if (type(src) is not BlockArgument and type(src.owner) is nn_loop.LoadOp
            and id(src.owner) in ctx.folds.folded and id(src) not in ctx.val_local
            and ctx.access.space(operands_of(src.owner)[0]) == nn_loop.MemorySpace.GLOBAL):  # fmt: skip
        buf, *indices = operands_of(src.owner)
        addr, off = address(ctx, b, buf, indices, src.owner)  # type: ignore[arg-type]
        return b.load("v128.load32_splat", addr, off)
    if type(src.type) is IntegerType and src.type.width.data == 1:
        return b.op("i32x4.splat", b.op("i32.sub", b.i32c(0), ctx.push(b, src)))
    return b.op("f32x4.splat" if st == f32 else "i32x4.splat", ctx.push(b, src))


def extract(ctx: KernelContext, b: Builder, op: Operation) -> SSAValue:
    (res,) = op.results
    shape = "f32x4" if type(type_of(res)) is Float32Type else "i32x4"
    return b.lane(f"{shape}.extract_lane", ctx.push(b, operands_of(op)[0]), prop(op, "lane"))


_COMBINE = {("add", "f32x4"): "f32.add", ("max", "f32x4"): "f32.max", ("add", "i32x4"): "i32.add"}


def reduce_lanes(ctx: KernelContext, b: Builder, op: Operation) -> SSAValue:
    (res,) = op.results
    shape = "f32x4" if type(type_of(res)) is Float32Type else "i32x4"
    tmp = ctx.to_local(b, op.input, "red")  # type: ignore[attr-defined]
    comb = _COMBINE.get((op.kind.data, shape))  # type: ignore[attr-defined]
    if comb is None:
        raise ctx.error(f"reduce_lanes {op.kind.data} on {op.input.type}")  # type: ignore[attr-defined]
    acc = b.lane(f"{shape}.extract_lane", b.get(tmp, v128), 0)
    for lane in range(1, 4):
        acc = b.op(comb, acc, b.lane(f"{shape}.extract_lane", b.get(tmp, v128), lane))
    return acc


def dot_i16x2(ctx: KernelContext, b: Builder, op: Operation) -> SSAValue:
    """acc + i32x4.dot_i16x8_s(a, b) (the accumulator first: it is usually a local)."""
    x, y, acc = operands_of(op)
    s = ctx.push(b, acc)
    return b.op("i32x4.add", s, b.op("i32x4.dot_i16x8_s", ctx.push(b, x), ctx.push(b, y)))


def _folded_global_load(ctx: KernelContext, v: SSAValue) -> Operation | None:
    """The nn_loop.load computing `v` where it is used (folded, of a global buffer)."""
    if type(v) is BlockArgument or type(v.owner) is not nn_loop.LoadOp:
        return None
    op = v.owner
    if id(op) not in ctx.folds.folded or id(v) in ctx.val_local:
        return None
    return op if ctx.access.space(operands_of(op)[0]) == nn_loop.MemorySpace.GLOBAL else None


def pair_splat(ctx: KernelContext, b: Builder, op: Operation) -> SSAValue:
    """i16x8.narrow_i32x4_s(v, v) of v = [lo, hi, lo, hi]: a v128.load64_splat when lo and hi
    are folded loads of one buffer 4 bytes apart (2 instructions), else a splat and two
    replace_lane."""
    lo, hi = operands_of(op)
    pair = ctx.loc.new("pair", v128)
    lo_op, hi_op = _folded_global_load(ctx, lo), _folded_global_load(ctx, hi)
    if lo_op is not None and hi_op is not None:
        buf, *lo_idx = operands_of(lo_op)
        hbuf, *hi_idx = operands_of(hi_op)
        (lt, lc), (ht, hc) = ctx.access.byte_terms(buf, lo_idx), ctx.access.byte_terms(hbuf, hi_idx)
        if hbuf is buf and lt == ht and hc == lc + 4:
            addr, off = address(ctx, b, buf, lo_idx, lo_op)
            v = b.tee(pair, b.load("v128.load64_splat", addr, off, 4))
            return b.op("i16x8.narrow_i32x4_s", v, b.get(pair, v128))
    ph = ctx.reusable(b, hi, "hi")
    v = b.op("i32x4.splat", ctx.push(b, lo))
    v = b.lane("i32x4.replace_lane", v, ph(), 1)
    v = b.tee(pair, b.lane("i32x4.replace_lane", v, ph(), 3))
    return b.op("i16x8.narrow_i32x4_s", v, b.get(pair, v128))


VALUE_PATTERNS = {nn_loop.SplatOp: splat, nn_loop.ExtractOp: extract,
                  nn_loop.ReduceLanesOp: reduce_lanes, nn_loop.DotI16x2Op: dot_i16x2,
                  nn_loop.PairSplatOp: pair_splat}  # fmt: skip
STATEMENT_PATTERNS: dict = {}
