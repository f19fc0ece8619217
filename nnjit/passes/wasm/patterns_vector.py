"""Wasm patterns of nn_loop's vector ops: `splat` (v128.load32_splat when it splats a folded
global load), `extract` (extract_lane), `reduce_lanes` (lane by lane) and `dot_i16x2`
(i32x4.dot_i16x8_s and i32x4.add)."""

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


VALUE_PATTERNS = {nn_loop.SplatOp: splat, nn_loop.ExtractOp: extract,
                  nn_loop.ReduceLanesOp: reduce_lanes, nn_loop.DotI16x2Op: dot_i16x2}  # fmt: skip
STATEMENT_PATTERNS: dict = {}
