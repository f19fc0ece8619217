"""Wasm patterns of nn_loop's control flow: `for` (a serial loop becomes a Wasm loop with its
address streams, `AccessPlan.plan_streams`; a top-level `thread` loop is split in contiguous
chunks, one per thread), `if`, and `barrier` (not available on target wasm). Loops come
unrolled (nn-loop-unroll runs before the conversion: lowering.py rejects an `unroll` mark)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from xdsl.ir import Operation, SSAValue

from nnjit.dialects import nn_loop
from nnjit.dialects import nn_wasm as W
from nnjit.ir.fastir import block_args_of, operands_of
from nnjit.passes.wasm.access import Stream
from nnjit.passes.wasm.builder import Builder, i32
from nnjit.passes.wasm.facts import body_of, prop, trips

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
    else:
        serial_loop(ctx, b, loop)


def _bump(b: Builder, st: Stream, step: int) -> None:
    b.set(st.local, b.op("i32.add", b.get(st.local, i32), b.i32c(st.c * step)))


def serial_loop(ctx: KernelContext, b: Builder, loop: nn_loop.ForOp) -> None:
    """A serial loop: a Wasm loop whose global accesses go through address streams (its
    body straight-line, the iv a constant, when it runs once)."""
    lb, ub, step = prop(loop, "lb"), prop(loop, "ub"), prop(loop, "step")
    body = body_of(loop)
    facts, loc = ctx.facts, ctx.loc
    n = trips(loop)
    if n == 0:
        return
    iv = block_args_of(body)[0]
    if n == 1:
        facts.enter(iv, lb)
        ctx.emit_block(b, body)
        facts.leave()
        return
    facts.iv_nonneg[id(iv)] = lb >= 0
    streams, iv_free = ctx.access.plan_streams(loop)
    for st in streams:  # p = base + invariant terms + c * lb
        base = b.get(ctx.arg_param[st.buf], i32)
        b.set(st.local, ctx.emit_affine(b, (st.inv, st.c * lb), base))
    label = loc.label("l")
    if iv_free:
        # the first stream's pointer counts the iterations: no iv at all
        first = streams[0]
        end = loc.new("p_end", i32)
        b.set(end, b.op("i32.add", b.get(first.local, i32), b.i32c(first.c * step * n)))
        inner = b.nest("loop", label)
        ctx.emit_block(inner, body)
        for st in streams[1:]:
            _bump(inner, st, step)
        nxt = inner.tee(first.local, inner.op("i32.add", inner.get(first.local, i32),
                                              inner.i32c(first.c * step)))  # fmt: skip
        # != rather than <: p reaches the end exactly, even where the end wraps past 4 GiB
        inner.add(W.BrIfOp(label, inner.op("i32.ne", nxt, inner.get(end, i32))))
        return
    name = loc.new(iv.name_hint or "i", i32)
    ctx.iv_local[id(iv)] = name
    b.set(name, b.i32c(lb))
    inner = b.nest("loop", label)
    ctx.emit_block(inner, body)
    for st in streams:
        _bump(inner, st, step)
    nxt = inner.tee(name, inner.op("i32.add", inner.get(name, i32), inner.i32c(step)))
    inner.add(W.BrIfOp(label, inner.op("i32.lt_s", nxt, inner.i32c(ub))))


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
