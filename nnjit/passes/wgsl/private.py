"""Private (function-scope) arrays at constant indices, forwarded: a store is delayed until the
array is next accessed in a way that needs memory (a computed index, an element whose value is
not known here, a write from a nested block) or its block ends, and a load of a known element
reuses the value. Unrolled register tiles then need no load/store per use, and stores nobody
reads are never emitted. (Register promotion, done while the patterns emit.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from xdsl.dialects.builtin import i32
from xdsl.ir import Operation, SSAValue

from nnjit.dialects import nn_wgsl as w
from nnjit.ir.fastir import append as _append
from nnjit.ir.fastir import insert_before as _insert_before
from nnjit.ir.fastir import new_op as _new
from nnjit.ir.fastir import type_of

if TYPE_CHECKING:
    from nnjit.passes.wgsl.emitter import Emitter


@dataclass
class PrivateState:
    """What one block knows about private arrays: element values (by id() of the array and
    constant index), stores not yet emitted (the array and the value, by the same key), and
    the arrays it writes (ids)."""

    known: dict[tuple[int, int], SSAValue]
    pending: dict[tuple[int, int], tuple[SSAValue, SSAValue]] = field(default_factory=dict)
    written: set[int] = field(default_factory=set)
    anchor: Operation | None = None  # the nested op being built in this block


def flush_level(
    cx: Emitter, state: PrivateState, arr: SSAValue | None, before: Operation | None
) -> None:
    if not state.pending:
        return
    keep = {}
    for key, (a, v) in state.pending.items():
        if arr is not None and a is not arr:
            keep[key] = (a, v)
            continue
        store = _new(w.StoreOp, [v, a, cx.const(key[1], i32)])
        if before is not None:
            _insert_before(before.parent, store, before)  # type: ignore[arg-type]
        else:
            _append(cx.block, store)
    state.pending = keep


def flush(cx: Emitter, arr: SSAValue, outer_only: bool = False) -> None:
    """Emits the pending stores to `arr`: those of enclosing blocks before the nested op
    being built there, those of the current block here (unless `outer_only`)."""
    mem = cx.mem
    for i in range(len(mem) - 1):
        state = mem[i]
        if state.pending:
            flush_level(cx, state, arr, state.anchor)
    if not outer_only and mem[-1].pending:
        flush_level(cx, mem[-1], arr, None)


def private_load(cx: Emitter, arr: SSAValue, c: int, hint: SSAValue | None) -> SSAValue:
    """Element `c` (a constant index) of private array `arr`."""
    state = cx.mem[-1]
    key = (id(arr), c)
    v = state.known.get(key)
    if v is None:
        flush(cx, arr, outer_only=True)
        v = state.known[key] = raw_load(cx, arr, cx.const(c, i32), hint)
    return v


def private_store(cx: Emitter, value: SSAValue, arr: SSAValue, index: SSAValue) -> None:
    c = cx.cvals.get(id(index))
    if c is not None:
        private_store_at(cx, value, arr, int(c))
        return
    state = cx.mem[-1]
    a = id(arr)
    state.written.add(a)
    flush(cx, arr, outer_only=True)
    flush(cx, arr)
    state.known = {k: v for k, v in state.known.items() if k[0] != a}
    _append(cx.block, _new(w.StoreOp, [value, arr, index]))


def private_store_at(cx: Emitter, value: SSAValue, arr: SSAValue, c: int) -> None:
    """Stores `value` to element `c` (a constant index) of private array `arr`."""
    state = cx.mem[-1]
    key = (id(arr), c)
    state.written.add(key[0])
    flush(cx, arr, outer_only=True)
    state.known[key] = value
    state.pending[key] = (arr, value)


def load_op(cx: Emitter, arr: SSAValue, index: SSAValue, hint: SSAValue | None = None) -> SSAValue:
    if id(arr) in cx.private:
        c = cx.cvals.get(id(index))
        if c is not None:
            return private_load(cx, arr, int(c), hint)
        flush(cx, arr)
    return raw_load(cx, arr, index, hint)


def raw_load(cx: Emitter, arr: SSAValue, index: SSAValue, hint: SSAValue | None = None) -> SSAValue:
    t: w.ArrayType = type_of(arr)  # type: ignore[assignment]
    return cx.add(_new(w.LoadOp, [arr, index], (t.element,)), hint)


def store_op(cx: Emitter, value: SSAValue, arr: SSAValue, index: SSAValue) -> None:
    if id(arr) in cx.private:
        private_store(cx, value, arr, index)
        return
    _append(cx.block, _new(w.StoreOp, [value, arr, index]))
