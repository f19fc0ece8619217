"""Patterns for nn_loop's vector ops: splat, extract (a lane), reduce_lanes (add as a dot with
ones; max as a tree of max with NaN kept).
"""

from __future__ import annotations

from nnjit.dialects import nn_loop
from nnjit.dialects import nn_wgsl as w
from nnjit.ir.fastir import operands_of, type_of
from nnjit.passes.wgsl.emitter import Emitter
from nnjit.passes.wgsl.nan import keep_nan


def convert_splat(cx: Emitter, op: nn_loop.SplatOp) -> None:
    """nn_loop.splat: a vector constructor of one scalar."""
    (x,), (r,) = operands_of(op), op.results
    cx.set(r, cx.construct([cx.vmap[id(x)]], cx.wtype(type_of(r)), r))


def convert_extract(cx: Emitter, op: nn_loop.ExtractOp) -> None:
    """nn_loop.extract: a lane."""
    (x,), (r,) = operands_of(op), op.results
    cx.set(r, cx.lane(cx.vmap[id(x)], op.properties["lane"].value.data, r))


def convert_reduce_lanes(cx: Emitter, op: nn_loop.ReduceLanesOp) -> None:
    """nn_loop.reduce_lanes: add as dot(v, 1) for floats, else a tree of + or max (NaN kept)."""
    v = cx.v(op.input)
    n = w.lanes(v.type)
    if op.kind.data == "add" and w.is_float(v.type):
        cx.set(op.result, cx.call("dot", [v, cx.fconst(1.0, v)], op.result))
        return
    parts = [cx.lane(v, k) for k in range(n)]
    while len(parts) > 1:
        nxt = []
        for k in range(0, len(parts) - 1, 2):
            x, y = parts[k], parts[k + 1]
            if op.kind.data == "add":
                nxt.append(cx.binary("+", x, y))
            else:
                m = cx.call("max", [x, y])
                nxt.append(keep_nan(cx, m, [x, y]) if w.is_float(x.type) else m)
        if len(parts) % 2:
            nxt.append(parts[-1])
        parts = nxt
    cx.set(op.result, parts[0])
