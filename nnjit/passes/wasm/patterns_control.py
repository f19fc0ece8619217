"""Wasm patterns of nn_loop's control flow: `for` (serial loops, unrolled as `unroll.py` says;
a top-level `thread` loop split in contiguous chunks, one per thread), `if`, and `barrier`
(not available on target wasm)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from xdsl.ir import Operation, SSAValue

from nnjit.dialects import nn_loop
from nnjit.dialects import nn_wasm as W
from nnjit.ir.fastir import operands_of
from nnjit.passes.wasm.builder import Builder, i32
from nnjit.passes.wasm.facts import body_of, full_unroll, prop, trips
from nnjit.passes.wasm.unroll import emit_serial_loop, emit_unrolled

if TYPE_CHECKING:
    from nnjit.passes.wasm.lowering import KernelContext


def for_loop(ctx: KernelContext, b: Builder, op: Operation) -> None:
    loop: nn_loop.ForOp = op  # type: ignore[assignment]
    kind = op.properties["map"].data  # type: ignore[attr-defined]
    if kind == "thread":
        if op.parent is not ctx.top_block:
            raise ctx.error("a thread loop must be at the top level of the kernel")
        thread_loop(ctx, b, loop)
    elif kind != "serial":
        raise ctx.error(f'loop map "{kind}" is not available on target wasm',
                        'use "serial" or "thread"')  # fmt: skip
    elif full_unroll(loop):
        emit_unrolled(ctx, b, loop)
    else:
        emit_serial_loop(ctx, b, loop)


def thread_loop(ctx: KernelContext, b: Builder, loop: nn_loop.ForOp) -> None:
    """Thread t runs iterations [t*c, min(N, (t+1)*c)), c = ceil(N / nthreads)."""
    lb, step = prop(loop, "lb"), prop(loop, "step")
    n = trips(loop)
    ctx.thread_chunks = max(ctx.thread_chunks, n)
    if n == 0:
        return
    tid, nth, loc = ctx.tid, ctx.nthreads, ctx.loc
    c, start, end = (loc.new(h, i32) for h in ("chunk", "lo", "hi"))
    # c = ceil(n / nthreads); [start, end) = [tid*c, min(n, tid*c + c))
    b.set(c, b.op("i32.div_u", b.op("i32.add", b.get(nth, i32), b.i32c(n - 1)), b.get(nth, i32)))
    b.set(start, b.op("i32.mul", b.get(tid, i32), b.get(c, i32)))
    b.set(end, b.op("i32.add", b.get(start, i32), b.get(c, i32)))
    b.set(end, b.select(b.get(end, i32), b.i32c(n),
                        b.op("i32.lt_s", b.get(end, i32), b.i32c(n))))  # fmt: skip
    idle = b.nest("if", loc.label("idle"),
                  b.op("i32.ge_s", b.get(start, i32), b.get(end, i32)))  # fmt: skip
    idle.ret()
    iv = loop.iv
    name = loc.new(iv.name_hint or "t", i32)
    ctx.iv_local[id(iv)] = name
    ctx.facts.iv_nonneg[id(iv)] = lb >= 0

    # iv runs over lb + step*[start, end)
    def scaled(local: str) -> SSAValue:  # lb + step * local
        v = b.get(local, i32)
        if step != 1:
            v = b.op("i32.mul", v, b.i32c(step))
        return b.op("i32.add", v, b.i32c(lb)) if lb else v

    b.set(name, scaled(start))
    if step != 1 or lb != 0:
        b.set(end, scaled(end))
    label = loc.label("chunks")
    inner = b.nest("loop", label)
    ctx.emit_block(inner, body_of(loop))
    nxt = inner.tee(name, inner.op("i32.add", inner.get(name, i32), inner.i32c(step)))
    inner.add(W.BrIfOp(label, inner.op("i32.lt_s", nxt, inner.get(end, i32))))


def if_(ctx: KernelContext, b: Builder, op: Operation) -> None:
    cond = ctx.push(b, operands_of(op)[0])
    inner = b.nest("if", ctx.loc.label("if"), cond)
    ctx.emit_block(inner, body_of(op))


def barrier(ctx: KernelContext, b: Builder, op: Operation) -> None:
    raise ctx.error("nn_loop.barrier is not available on target wasm")


VALUE_PATTERNS: dict = {}
STATEMENT_PATTERNS = {nn_loop.ForOp: for_loop, nn_loop.IfOp: if_, nn_loop.BarrierOp: barrier}
