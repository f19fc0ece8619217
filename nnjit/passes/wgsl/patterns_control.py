"""Patterns for control flow: mapped loops read the workgroup / invocation ids (a large grid is
linearised), serial loops become `for`, nn_loop.if becomes `if`. Loops come unrolled
(nn-loop-unroll runs before the conversion: access.analyse rejects an `unroll` mark).
"""

from __future__ import annotations

from xdsl.dialects.builtin import i32

from nnjit.dialects import nn_loop
from nnjit.dialects import nn_wgsl as w
from nnjit.ir.fastir import append as _append
from nnjit.ir.fastir import block_args_of, name_of, operands_of, set_name
from nnjit.passes.wgsl.access import DIM
from nnjit.passes.wgsl.emitter import Emitter


def map_workgroups(cx: Emitter, grid: list[int]) -> list[int]:
    """Emits the workgroup ids (linearising a large grid); returns the dispatch grid."""
    used = [d for d in "xyz" if f"workgroup.{d}" in cx.maps]
    if all(g <= cx.max_per_dim for g in grid):
        for d in used:
            cx.ids[f"workgroup.{d}"] = cx.builtin("workgroup_id", d)
        return grid
    total = grid[0] * grid[1] * grid[2]
    dy = -(-total // cx.max_per_dim)
    dx = -(-total // dy)
    if dy > cx.max_per_dim or total >= 2**31:
        raise cx.error(f"the grid {tuple(grid)} has too many workgroups ({total})")
    wx = cx.builtin("workgroup_id", "x")
    wy = cx.builtin("workgroup_id", "y")
    lin = cx.binary("+", wx, cx.binary("*", wy, cx.const(dx, i32)))
    if dx * dy != total:
        cond = cx.binary(">=", lin, cx.const(total, i32))
        guard = w.IfOp(cond)
        guard.body.block.add_op(w.ReturnOp())
        _append(cx.block, guard)
    below = 1
    for d in "xyz":
        g = grid[DIM[d]]
        if d in used:
            v = cx.binary("/", lin, cx.const(below, i32)) if below > 1 else lin
            if below * g < total:
                v = cx.binary("%", v, cx.const(g, i32))
            cx.ids[f"workgroup.{d}"] = v
        below *= g
    return [dx, dy, 1]


def convert_for(cx: Emitter, op: nn_loop.ForOp) -> None:
    """A mapped loop is inlined (its iv read from a builtin id), a serial one becomes a
    `for` (its body inlined, the iv a constant, when it runs once)."""
    props = op.properties
    lb, ub, step = props["lb"].value.data, props["ub"].value.data, props["step"].value.data
    m = props["map"].data
    trip = max(0, (ub - lb + step - 1) // step)  # (op.trip_count)
    if trip == 0:
        return
    body = op.regions[0].block
    iv = block_args_of(body)[0]
    if m != "serial":
        wid = cx.ids[m]
        base = cx.binary("*", wid, cx.const(step, i32))
        base = cx.binary("+", base, cx.const(lb, i32))
        if name_of(base) is None and name_of(iv) is None:
            set_name(base, m.replace(".", "_"))  # (workgroup_x ...: a valid name)
        cx.set(iv, base)
        cx.emit_block(body)
        return
    if trip == 1:
        cx.vmap[id(iv)] = cx.const(lb, i32)
        cx.emit_block(body)
        return
    for b in (lb, ub):
        if not -(2**31) <= b < 2**31 - step:
            raise cx.error(f"loop bounds {lb} to {ub} do not fit in i32")
    loop = w.ForOp(lb, ub, step)
    _append(cx.block, loop)
    set_name(loop.iv, name_of(iv) or "i")  # (valid names: no checking setter)
    outer = cx.push(loop.body.block)
    cx.set(iv, loop.iv)
    cx.emit_block(body)
    cx.pop(outer)


def convert_if(cx: Emitter, op: nn_loop.IfOp) -> None:
    """nn_loop.if: `if` (its body inlined, or dropped, for a constant condition)."""
    (src,) = operands_of(op)
    cond = cx.vmap[id(src)]
    body = op.regions[0].block
    c = cx.cval(cond)
    if c is not None:
        if c:
            cx.emit_block(body)
        return
    guard = w.IfOp(cond)
    _append(cx.block, guard)
    outer = cx.push(guard.regions[0].block)
    cx.emit_block(body)
    cx.pop(outer)
