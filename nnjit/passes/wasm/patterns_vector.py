"""Wasm patterns of nn_loop's vector ops: `splat` (v128.load32_splat when it splats a folded
global load), `extract` (extract_lane), `reduce_lanes` (lane by lane), `dot_i16x2`
(i32x4.dot_i16x8_s and i32x4.add), `pair_splat` (i16x8.narrow_i32x4_s of a
v128.load64_splat when its two operands are folded loads of adjacent elements), `quad_splat`,
`byte_plane`, `dot_i8x4` (i32x4.relaxed_dot_i8x16_i7x16_add_s, or exact 16-bit dots
without relaxed SIMD) and `widen_half` (i32x4.extend_low/high_i16x8_s,
f32x4.convert_i32x4_s)."""

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


def quad_splat(ctx: KernelContext, b: Builder, op: Operation) -> SSAValue:
    """i16x8.narrow_i32x4_u(v, v) of v = [c0, c1, c2, c3] + 256: one v128.load when the four
    are folded loads of one buffer 4 bytes apart, else a splat and three replace_lane."""
    cs = operands_of(op)
    quad = ctx.loc.new("quad", v128)
    loads = [_folded_global_load(ctx, c) for c in cs]
    v = None
    if all(ld is not None for ld in loads):
        buf, *idx0 = operands_of(loads[0])  # type: ignore[arg-type]
        t0, c0 = ctx.access.byte_terms(buf, idx0)
        ok = True
        for i, ld in enumerate(loads[1:], 1):
            bi, *idx = operands_of(ld)  # type: ignore[arg-type]
            ti, ci = ctx.access.byte_terms(bi, idx)
            ok = ok and bi is buf and ti == t0 and ci == c0 + 4 * i
        if ok:
            addr, off = address(ctx, b, buf, idx0, loads[0])  # type: ignore[arg-type]
            v = b.load("v128.load", addr, off, 4)
    if v is None:
        v = b.op("i32x4.splat", ctx.push(b, cs[0]))
        for lane in range(1, 4):
            v = b.lane("i32x4.replace_lane", v, ctx.push(b, cs[lane]), lane)
    v = b.tee(quad, b.op("i32x4.add", v, b.v128c("i32x4", [256] * 4)))
    return b.op("i16x8.narrow_i32x4_u", v, b.get(quad, v128))


def byte_plane(ctx: KernelContext, b: Builder, op: Operation) -> SSAValue:
    """i8x16.narrow_i16x8_u(t, t) of t = input & 127 (shift 0) or input >> 7 (i16x8.shr_u)."""
    (w,) = operands_of(op)
    plane = ctx.loc.new("plane", v128)
    if prop(op, "shift") == 0:
        t = b.op("v128.and", ctx.push(b, w), b.v128c("i32x4", [0x007F007F] * 4))
    else:
        t = b.op("i16x8.shr_u", ctx.push(b, w), b.i32c(7))
    t = b.tee(plane, t)
    return b.op("i8x16.narrow_i16x8_u", t, b.get(plane, v128))


def dot_i8x4(ctx: KernelContext, b: Builder, op: Operation) -> SSAValue:
    """i32x4.relaxed_dot_i8x16_i7x16_add_s(a, b, acc) with relaxed SIMD; else the same sums
    exactly from 16-bit lanes: a's even and odd bytes sign-extended (shl/shr_s, shr_s), b's
    zero-extended (and, shr_u), two i32x4.dot_i16x8_s added to acc."""
    x, y, acc = operands_of(op)
    if ctx.relaxed:
        ctx.used_relaxed = True
        return b.op("i32x4.relaxed_dot_i8x16_i7x16_add_s", ctx.push(b, x), ctx.push(b, y), ctx.push(b, acc))
    px, py = ctx.reusable(b, x, "da"), ctx.reusable(b, y, "db")
    s = ctx.push(b, acc)
    ae = b.op("i16x8.shr_s", b.op("i16x8.shl", px(), b.i32c(8)), b.i32c(8))
    be = b.op("v128.and", py(), b.v128c("i32x4", [0x00FF00FF] * 4))
    s = b.op("i32x4.add", s, b.op("i32x4.dot_i16x8_s", ae, be))
    ao = b.op("i16x8.shr_s", px(), b.i32c(8))
    bo = b.op("i16x8.shr_u", py(), b.i32c(8))
    return b.op("i32x4.add", s, b.op("i32x4.dot_i16x8_s", ao, bo))


def widen_half(ctx: KernelContext, b: Builder, op: Operation) -> SSAValue:
    """i32x4.extend_low_i16x8_s (half 0) / extend_high_i16x8_s (half 1), then
    f32x4.convert_i32x4_s."""
    which = "high" if prop(op, "half") else "low"
    return b.op("f32x4.convert_i32x4_s", b.op(f"i32x4.extend_{which}_i16x8_s", ctx.push(b, operands_of(op)[0])))


VALUE_PATTERNS = {nn_loop.SplatOp: splat, nn_loop.ExtractOp: extract,
                  nn_loop.ReduceLanesOp: reduce_lanes, nn_loop.DotI16x2Op: dot_i16x2,
                  nn_loop.PairSplatOp: pair_splat, nn_loop.QuadSplatOp: quad_splat,
                  nn_loop.BytePlaneOp: byte_plane, nn_loop.DotI8x4Op: dot_i8x4,
                  nn_loop.WidenHalfOp: widen_half}  # fmt: skip
STATEMENT_PATTERNS: dict = {}
