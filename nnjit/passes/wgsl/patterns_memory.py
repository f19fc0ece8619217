"""Patterns for memory: nn_loop.alloc (a function-scope array or a module-scope
`var<workgroup>` one), loads and stores (through the storage that `access` chose and the
offsets that `offsets` builds), barriers. Each load or store is one access of the array:
nn-loop-promote-registers keeps private elements in SSA values beforehand.
"""

from __future__ import annotations

from xdsl.dialects.builtin import MemRefType, i32
from xdsl.ir import Operation, SSAValue

from nnjit.dialects import nn_loop
from nnjit.dialects import nn_wgsl as w
from nnjit.ir.fastir import append as _append
from nnjit.ir.fastir import new_op as _new
from nnjit.ir.fastir import operands_of, type_of
from nnjit.passes.wgsl.access import array_type
from nnjit.passes.wgsl.emitter import Emitter
from nnjit.passes.wgsl.offsets import (
    array_of,
    const_offset,
    element_index,
    flat_index,
    lane_index,
    nested_index,
    vec_index,
)
from nnjit.passes.wgsl.typefacts import elem_of, shape_of, tkey


def convert_alloc(cx: Emitter, op: nn_loop.AllocOp) -> None:
    """nn_loop.alloc: a function-scope array (private) or a module-scope `var<workgroup>` one."""
    space = nn_loop.memory_space(op.result.type)  # type: ignore[arg-type]
    if space == nn_loop.MemorySpace.WORKGROUP:
        var: Operation = w.WorkgroupVarOp(array_type(cx, op.result, "workgroup"))
        var.results[0].name_hint = op.result.name_hint or "wg"
        cx.module_ops.append(var)
    else:
        var = w.FunctionVarOp(array_type(cx, op.result, "function"))
        var.results[0].name_hint = op.result.name_hint or "p"
        _append(cx.block, var)
        cx.function_vars.append(var)
        cx.private.add(id(op.result))
    cx.arrays[id(op.result)] = var.results[0]


def load_op(cx: Emitter, arr: SSAValue, index: SSAValue, hint: SSAValue | None = None) -> SSAValue:
    """A load of arr[index] (not an expression to share: memory may change)."""
    t: w.ArrayType = type_of(arr)  # type: ignore[assignment]
    return cx.add(_new(w.LoadOp, [arr, index], (t.element,)), hint)


def store_op(cx: Emitter, value: SSAValue, arr: SSAValue, index: SSAValue) -> None:
    _append(cx.block, _new(w.StoreOp, [value, arr, index]))


def vec4_index(cx: Emitter, mem: SSAValue, t: MemRefType, indices: list[SSAValue]) -> SSAValue:
    """The element index of a vector<4> access to an array of vec4: a constant for a register
    tile element (a private alloc at constant indices), without the index arithmetic."""
    c = const_offset(cx, t, indices) if id(mem) in cx.private else None
    if c is not None:
        return cx.const(c // 4, i32)
    return vec_index(cx, t, indices)


def convert_load(cx: Emitter, op: nn_loop.LoadOp) -> None:
    """nn_loop.load: a load per the storage of the memref (a vec4 element, one lane of one, a
    private element at a constant offset, or scalars assembled into a vector)."""
    (r,) = op.results
    mem, *indices = operands_of(op)
    rt = type_of(r)
    t: MemRefType = type_of(mem)  # type: ignore[assignment]
    arr = array_of(cx, mem)
    elem = elem_of(t)
    scalar = rt is elem or tkey(rt) == tkey(elem)  # (else a vector of elements)
    if id(mem) in cx.nested:
        lanes = 1 if scalar else shape_of(rt)[0]
        ilists = nested_index(cx, mem, t, indices, lanes)
        lt = cx.wtype(rt if len(ilists) == 1 else elem)
        parts = [cx.add(_new(w.LoadOp, [arr, *ix], [lt]), r) for ix in ilists]
        if len(parts) > 1:
            cx.set(r, cx.construct(parts, cx.wtype(rt), r))
        else:
            cx.set(r, parts[0])
        return
    if scalar:
        if id(mem) in cx.vec4:  # one lane of a vec4 (workgroup) array
            q, lane = lane_index(cx, t, indices)
            load = _new(w.LoadOp, [arr, q, lane], [cx.wtype(rt)])
            cx.set(r, cx.add(load, r))
            return
        c = const_offset(cx, t, indices) if id(mem) in cx.private else None
        if c is not None:  # a register tile element: no index arithmetic
            cx.set(r, load_op(cx, arr, cx.const(c, i32), r))
            return
        cx.set(r, load_op(cx, arr, flat_index(cx, t, indices), r))
    elif id(mem) in cx.vec4:
        cx.set(r, load_op(cx, arr, vec4_index(cx, mem, t, indices), r))
    else:
        flat = flat_index(cx, t, indices)
        parts = [load_op(cx, arr, element_index(cx, flat, k)) for k in range(shape_of(rt)[0])]
        cx.set(r, cx.construct(parts, cx.wtype(rt), r))


def convert_store(cx: Emitter, op: nn_loop.StoreOp) -> None:
    """nn_loop.store: a store per the storage of the memref (a vector split into lanes where it
    is not stored as vec4)."""
    value, mem, *indices = operands_of(op)
    vt = type_of(value)
    t: MemRefType = type_of(mem)  # type: ignore[assignment]
    arr = array_of(cx, mem)
    val = cx.vmap[id(value)]
    elem = elem_of(t)
    scalar = vt is elem or tkey(vt) == tkey(elem)  # (else a vector of elements)
    if id(mem) in cx.nested:
        lanes = 1 if scalar else shape_of(vt)[0]
        ilists = nested_index(cx, mem, t, indices, lanes)
        for k, ix in enumerate(ilists):
            v = val if len(ilists) == 1 else cx.lane(val, k)
            _append(cx.block, _new(w.StoreOp, [v, arr, *ix]))
        return
    if scalar:
        if id(mem) in cx.vec4:  # one lane of a vec4 (workgroup) array
            q, lane = lane_index(cx, t, indices)
            _append(cx.block, _new(w.StoreOp, [val, arr, q, lane]))
            return
        c = const_offset(cx, t, indices) if id(mem) in cx.private else None
        if c is not None:  # a register tile element: no index arithmetic
            store_op(cx, val, arr, cx.const(c, i32))
            return
        store_op(cx, val, arr, flat_index(cx, t, indices))
    elif id(mem) in cx.vec4:
        store_op(cx, val, arr, vec4_index(cx, mem, t, indices))
    else:
        flat = flat_index(cx, t, indices)
        for k in range(shape_of(vt)[0]):
            lane = cx.lane(val, k)
            store_op(cx, lane, arr, element_index(cx, flat, k))


def convert_barrier(cx: Emitter, op: nn_loop.BarrierOp) -> None:
    """nn_loop.barrier: workgroupBarrier()."""
    _append(cx.block, w.BarrierOp())
