"""Serial loops of the Wasm conversion, unrolled while they are emitted: a loop marked
`unroll U` gives the code nn-loop-unroll + conversion would give, without building the copies
as nn_loop ops. U = trip count: straight-line copies, the iv a constant in each; U < trip
count: a Wasm loop stepping by U * step over U copies (the iv + k * step in copy k). A serial
loop's address streams (`AccessPlan.plan_streams`) are set up here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nnjit.dialects import nn_loop
from nnjit.dialects import nn_wasm as W
from nnjit.ir.fastir import block_args_of
from nnjit.passes.wasm.access import Stream
from nnjit.passes.wasm.builder import Builder, i32
from nnjit.passes.wasm.facts import body_of, prop, trips

if TYPE_CHECKING:
    from nnjit.passes.wasm.lowering import KernelContext


def emit_unrolled(ctx: KernelContext, b: Builder, loop: nn_loop.ForOp) -> None:
    """A loop whose unroll factor is its trip count: one copy of the body per iteration,
    straight-line, the iv a constant in each (what nn-loop-unroll makes of it)."""
    lb, step = prop(loop, "lb"), prop(loop, "step")
    facts, body = ctx.facts, body_of(loop)
    for k in range(trips(loop)):
        facts.enter(loop, k, const=lb + k * step)
        ctx.emit_block(b, body)
        facts.leave(loop)


def _bump(b: Builder, st: Stream, step: int) -> None:
    b.set(st.local, b.op("i32.add", b.get(st.local, i32), b.i32c(st.c * step)))


def emit_serial_loop(ctx: KernelContext, b: Builder, loop: nn_loop.ForOp) -> None:
    """A serial loop; unrolled by U < trip count, it steps by U * step over U copies of
    its body (the iv + k * step in copy k), as nn-loop-unroll would make it."""
    lb, ub, step = prop(loop, "lb"), prop(loop, "ub"), prop(loop, "step")
    u = prop(loop, "unroll")
    body = body_of(loop)
    facts, loc = ctx.facts, ctx.loc
    n = trips(loop) // u  # (the verifier makes u divide the trip count)
    if n == 0:
        return
    iv = block_args_of(body)[0]
    if n == 1:
        for j in range(u):
            facts.enter(loop, j, const=lb + j * step)
            ctx.emit_block(b, body)
            facts.leave(loop)
        if u == 1:
            facts.iv_const[id(iv)] = lb
        return
    facts.iv_nonneg[id(iv)] = lb >= 0
    streams, iv_free = ctx.access.plan_streams(loop, u)
    step *= u
    for st in streams:  # p = base + invariant terms + c * lb
        base = b.get(ctx.arg_param[st.buf], i32)
        b.set(st.local, ctx.emit_affine(b, (st.inv, st.c * lb), base))
    label = loc.label("l")

    def emit_body(inner: Builder) -> None:
        for j in range(u):
            if u > 1:
                facts.enter(loop, j, off=j * prop(loop, "step"))
            ctx.emit_block(inner, body)
            if u > 1:
                facts.leave(loop)

    if iv_free:
        # the first stream's pointer counts the iterations: no iv at all
        first = streams[0]
        end = loc.new("p_end", i32)
        b.set(end, b.op("i32.add", b.get(first.local, i32), b.i32c(first.c * step * n)))
        inner = b.nest("loop", label)
        emit_body(inner)
        for st in streams[1:]:
            _bump(inner, st, step)
        nxt = inner.tee(first.local, inner.op("i32.add", inner.get(first.local, i32),
                                              inner.i32c(first.c * step)))  # fmt: skip
        # != rather than <: p reaches the end exactly, even where the end wraps past 4 GiB
        inner.add(W.BrIfOp(label, inner.op("i32.ne", nxt, inner.get(end, i32))))
        return
    # (nn-loop-unroll's loop of U copies has a fresh iv, without the name hint)
    name = loc.new((iv.name_hint if u == 1 else None) or "i", i32)
    ctx.iv_local[id(iv)] = name
    b.set(name, b.i32c(lb))
    inner = b.nest("loop", label)
    emit_body(inner)
    for st in streams:
        _bump(inner, st, step)
    nxt = inner.tee(name, inner.op("i32.add", inner.get(name, i32), inner.i32c(step)))
    inner.add(W.BrIfOp(label, inner.op("i32.lt_s", nxt, inner.i32c(ub))))
