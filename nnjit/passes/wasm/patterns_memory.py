"""Wasm patterns of nn_loop's memory ops: `load` and `store` of global buffers (byte addresses
from affine index expressions, address streams, memarg offsets) and of private buffers (one
local per element), and `alloc` of private buffers."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from xdsl.dialects.builtin import Float32Type, MemRefType
from xdsl.ir import Attribute, Operation, SSAValue

from nnjit.dialects import nn_loop
from nnjit.ir.fastir import operands_of, type_of
from nnjit.passes.wasm.builder import Builder, f32, i32, v128
from nnjit.passes.wasm.facts import is_vec, scalar_of

if TYPE_CHECKING:
    from nnjit.passes.wasm.lowering import KernelContext


def address(ctx: KernelContext, b: Builder, buf: SSAValue, indices, op: Operation | None = None):
    """Pushes the dynamic byte address of buf[indices]; returns (addr, memarg offset).
    An access with an address stream (AccessPlan.plan_streams) adds its other terms to the
    stream's pointer."""
    access = ctx.access
    stream = access.stream_of.get(id(op)) if op is not None else None
    if stream is not None:
        ptr, rest, const = stream
        return ctx.emit_affine(b, (rest, 0), b.get(ptr, i32)), const
    terms, const = access.byte_terms(buf, indices)
    base = b.get(ctx.arg_param[buf], i32)
    if const < 0 or not access.offset_ok(terms):
        return ctx.emit_affine(b, (terms, const), base), 0
    return ctx.emit_affine(b, (terms, 0), base), const


def load(ctx: KernelContext, b: Builder, op: Operation) -> SSAValue:
    """nn_loop.load: f32.load / i32.load / v128.load (v128.load8x8_s: 8 bytes of an i8
    buffer, widened), or the locals of a private buffer."""
    buf, *indices = operands_of(op)
    (res,) = op.results
    rt = type_of(res)
    space = ctx.access.space(buf)
    if space == nn_loop.MemorySpace.PRIVATE:
        return _private_get(ctx, b, buf, indices, rt)
    if space != nn_loop.MemorySpace.GLOBAL:
        raise ctx.error(f"{space} memory is not available on target wasm")
    wt = ctx.wtype(rt)
    if rt == nn_loop.WIDENED_I8:  # 8 int8 weights, sign-extended to i16 lanes
        addr, off = address(ctx, b, buf, indices, op)
        return b.load("v128.load8x8_s", addr, off, 1)
    if wt == v128 and is_vec(rt):
        addr, off = address(ctx, b, buf, indices, op)
        return b.load("v128.load", addr, off, 4)
    addr, off = address(ctx, b, buf, indices, op)
    return b.load("f32.load" if wt == f32 else "i32.load", addr, off)


def _private_get(ctx: KernelContext, b: Builder, buf: SSAValue, indices,
                 rt: Attribute) -> SSAValue:  # fmt: skip
    names = ctx.private[id(buf)]
    k = ctx.access.private_index(buf, indices)
    et = buf.type.get_element_type()  # type: ignore[attr-defined]
    if is_vec(rt) and not is_vec(et):
        if k + 4 > len(names):
            raise ctx.error("a vector load runs past the end of a private buffer")
        shape = "f32x4" if isinstance(scalar_of(rt), Float32Type) else "i32x4"
        wt = ctx.wtype(et)
        v = b.op(f"{shape}.splat", b.get(names[k], wt))
        for lane in range(1, 4):
            v = b.lane(f"{shape}.replace_lane", v, b.get(names[k + lane], wt), lane)
        return v
    return b.get(names[k], ctx.wtype(rt))


def store(ctx: KernelContext, b: Builder, op: Operation) -> None:
    """nn_loop.store: f32.store / i32.store / v128.store, or local.set of private elements."""
    value, buf, *indices = operands_of(op)
    vt = type_of(value)
    space = ctx.access.space(buf)
    if space == nn_loop.MemorySpace.PRIVATE:
        names = ctx.private[id(buf)]
        k = ctx.access.private_index(buf, indices)
        et = buf.type.get_element_type()  # type: ignore[attr-defined]
        if is_vec(vt) and not is_vec(et):
            if k + 4 > len(names):
                raise ctx.error("a vector store runs past the end of a private buffer")
            tmp = ctx.to_local(b, value, "vec")
            shape = "f32x4" if isinstance(scalar_of(vt), Float32Type) else "i32x4"
            for lane in range(4):
                b.set(names[k + lane], b.lane(f"{shape}.extract_lane", b.get(tmp, v128), lane))
            return
        b.set(names[k], ctx.push(b, value))
        return
    if space != nn_loop.MemorySpace.GLOBAL:
        raise ctx.error(f"{space} memory is not available on target wasm")
    wt = ctx.wtype(vt)
    addr, off = address(ctx, b, buf, indices, op)
    val = ctx.push(b, value)
    if wt == v128:
        b.store("v128.store", addr, val, off, 4)
    else:
        b.store("f32.store" if wt == f32 else "i32.store", addr, val, off)


def alloc(ctx: KernelContext, b: Builder, op: Operation) -> None:
    """nn_loop.alloc of a private buffer: one local per element (emits nothing)."""
    t = op.result.type  # type: ignore[attr-defined]
    assert isinstance(t, MemRefType)
    space = nn_loop.memory_space(t)
    if space != nn_loop.MemorySpace.PRIVATE:
        raise ctx.error(f"{space} memory is not available on target wasm",
                        "use private buffers (registers)")  # fmt: skip
    n = math.prod(t.get_shape())
    if n > 4096:
        raise ctx.error(f"private buffer of {n} elements is too large for locals")
    wt = ctx.wtype(t.get_element_type())
    hint = op.result.name_hint or "r"  # type: ignore[attr-defined]
    ctx.private[id(op.result)] = [ctx.loc.new(f"{hint}_{k}", wt) for k in range(n)]  # type: ignore[attr-defined]


VALUE_PATTERNS = {nn_loop.LoadOp: load}
STATEMENT_PATTERNS = {nn_loop.StoreOp: store, nn_loop.AllocOp: alloc}
