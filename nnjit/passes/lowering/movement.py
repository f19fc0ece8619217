"""Data-movement kernels: "transpose", "gather", "gather_nd", "slice", "concat", "expand".

Each is a pointwise kernel (elementwise.py has the loop structure and the schedule options):
every output element is read from where the op says, through `emit_value_at` (so an
elementwise prologue on the root's operands and an epilogue after it are computed in place).
They are vectorised (vec = 4) only when the innermost output dim is read contiguously:
transpose keeping the last dim, gather / gather_nd not indexing the last data dim, slice
with step 1 on the last dim, concat not along the last dim (or along it with sizes that are
multiples of 4), expand always.

Gather indices are i32 (i64 storage); negative indices wrap (index + dim size), and indices
are then clamped into the dim, so a bad index never reads out of bounds.
"""

from __future__ import annotations

from xdsl.dialects import arith
from xdsl.dialects.builtin import IndexType
from xdsl.ir import Operation, SSAValue

from nnjit.dialects import nn_loop
from nnjit.dialects import nn_tensor as nt
from nnjit.passes.lowering.common import (
    Idx,
    KernelBuilder,
    cmpi_op,
    i1,
    i32,
    tensor_shape,
)
from nnjit.passes.lowering.elementwise import Emit, find_root, lower_pointwise, yielded
from nnjit.passes.lowering.scalar import LoadArg, can_vectorize, emit_value_at, map_index
from nnjit.passes.lowering.schedule import Schedule


def _vectorizable(fused: Operation, root: Operation, operands: list[SSAValue]) -> bool:
    return can_vectorize(yielded(fused), stop=[root.results[0]]) and all(
        can_vectorize(v) for v in operands
    )


def lower_transpose(fused: Operation, name: str, sched: Schedule) -> nn_loop.KernelOp:
    """out[i_0, ..., i_{r-1}] = in[j] with j[perm[k]] = i_k."""
    root = find_root(fused, (nt.TransposeOp,), "transpose")
    assert isinstance(root, nt.TransposeOp)
    perm = nt.array_values(root.perm)
    rank = len(perm)

    def compute(b: KernelBuilder, idx: list[Idx], vec: int, load: LoadArg, emit: Emit) -> None:
        src: list[Idx] = [0] * rank
        for k, p in enumerate(perm):
            src[p] = idx[k]
        emit(emit_value_at(b, root.input, src, load, vec=vec))

    vec_ok = rank > 0 and perm[-1] == rank - 1 and _vectorizable(fused, root, [root.input])
    return lower_pointwise(fused, name, sched, "transpose", compute, vec_ok, root)


def _wrap_index(b: KernelBuilder, g: SSAValue, size: int) -> SSAValue:
    """An i32 index (negative counts from the end) as an index in [0, size)."""
    neg = b.emit(cmpi_op("slt", g, b.i32(0)))
    wrapped = b.op(arith.SelectOp, neg, b.op(arith.AddiOp, g, b.i32(size)), g, type=i32)
    clamped = b.op(arith.MinSIOp, b.op(arith.MaxSIOp, wrapped, b.i32(0)), b.i32(size - 1))
    return b.op(arith.IndexCastOp, clamped, type=IndexType())


def _as_i32(b: KernelBuilder, v: SSAValue) -> SSAValue:
    if v.type == i32:
        return v
    if v.type == i1:
        return b.op(arith.ExtUIOp, v, type=i32)
    return b.op(arith.FPToSIOp, v, type=i32)


def lower_gather(fused: Operation, name: str, sched: Schedule) -> nn_loop.KernelOp:
    """ONNX Gather: out[a..., i..., c...] = data[a..., indices[i...], c...]."""
    root = find_root(fused, (nt.GatherOp,), "gather")
    assert isinstance(root, nt.GatherOp)
    ax = root.axis.value.data
    dshape = tensor_shape(root.data)
    irank = len(tensor_shape(root.indices))

    def compute(b: KernelBuilder, idx: list[Idx], vec: int, load: LoadArg, emit: Emit) -> None:
        g = _as_i32(b, emit_value_at(b, root.indices, idx[ax : ax + irank], load))
        src = [*idx[:ax], _wrap_index(b, g, dshape[ax]), *idx[ax + irank :]]
        emit(emit_value_at(b, root.data, src, load, vec=vec))

    vec_ok = ax < len(dshape) - 1 and _vectorizable(fused, root, [root.data])
    return lower_pointwise(fused, name, sched, "gather", compute, vec_ok, root)


def lower_gather_nd(fused: Operation, name: str, sched: Schedule) -> nn_loop.KernelOp:
    """ONNX GatherND: out[b..., i..., c...] = data[b..., indices[b..., i..., :], c...]."""
    root = find_root(fused, (nt.GatherNDOp,), "gather_nd")
    assert isinstance(root, nt.GatherNDOp)
    nb = root.batch_dims.value.data
    dshape = tensor_shape(root.data)
    ishape = tensor_shape(root.indices)
    depth = ishape[-1]
    lead = len(ishape) - 1

    def compute(b: KernelBuilder, idx: list[Idx], vec: int, load: LoadArg, emit: Emit) -> None:
        pos = []
        for t in range(depth):
            g = _as_i32(b, emit_value_at(b, root.indices, [*idx[:lead], t], load))
            pos.append(_wrap_index(b, g, dshape[nb + t]))
        src = [*idx[:nb], *pos, *idx[lead:]]
        emit(emit_value_at(b, root.data, src, load, vec=vec))

    vec_ok = nb + depth < len(dshape) and _vectorizable(fused, root, [root.data])
    return lower_pointwise(fused, name, sched, "gather_nd", compute, vec_ok, root)


def lower_slice(fused: Operation, name: str, sched: Schedule) -> nn_loop.KernelOp:
    """out[i...] = in[start + i * step ...] per dim."""
    root = find_root(fused, (nt.SliceOp,), "slice")
    assert isinstance(root, nt.SliceOp)
    starts = nt.array_values(root.starts)
    steps = nt.array_values(root.steps)

    def compute(b: KernelBuilder, idx: list[Idx], vec: int, load: LoadArg, emit: Emit) -> None:
        src = [b.add(s, b.mul(i, st)) for i, s, st in zip(idx, starts, steps)]
        emit(emit_value_at(b, root.input, src, load, vec=vec))

    vec_ok = len(steps) > 0 and steps[-1] == 1 and _vectorizable(fused, root, [root.input])
    return lower_pointwise(fused, name, sched, "slice", compute, vec_ok, root)


def lower_concat(fused: Operation, name: str, sched: Schedule) -> nn_loop.KernelOp:
    """out along `axis` is input 0, then input 1, ...: each output element is read from the
    input whose range holds it (one nn_loop.if per input)."""
    root = find_root(fused, (nt.ConcatOp,), "concat")
    assert isinstance(root, nt.ConcatOp)
    ax = root.axis.value.data
    rank = len(tensor_shape(root.result))
    parts = []
    off = 0
    for v in root.inputs:
        n = tensor_shape(v)[ax]
        if n:
            parts.append((v, off, n))
        off += n
    total = off

    def compute(b: KernelBuilder, idx: list[Idx], vec: int, load: LoadArg, emit: Emit) -> None:
        for v, o, n in parts:
            cond = b.and_(
                b.cmp("sge", idx[ax], o) if o > 0 else True,
                b.lt(idx[ax], o + n) if o + n < total else True,
            )

            def branch(v: SSAValue = v, o: int = o) -> None:
                src = list(idx)
                src[ax] = b.sub(idx[ax], o)
                emit(emit_value_at(b, v, src, load, vec=vec))

            b.if_(cond, branch)

    vec_ok = (ax != rank - 1 or all(n % 4 == 0 for _, _, n in parts)) and _vectorizable(
        fused, root, list(root.inputs)
    )
    return lower_pointwise(fused, name, sched, "concat", compute, vec_ok, root)


def lower_expand(fused: Operation, name: str, sched: Schedule) -> nn_loop.KernelOp:
    """out[i...] = in[i broadcast onto in's shape]."""
    root = find_root(fused, (nt.ExpandOp,), "expand")
    assert isinstance(root, nt.ExpandOp)
    oshape = tensor_shape(root.result)
    ishape = tensor_shape(root.input)

    def compute(b: KernelBuilder, idx: list[Idx], vec: int, load: LoadArg, emit: Emit) -> None:
        emit(emit_value_at(b, root.input, map_index(idx, oshape, ishape), load, vec=vec))

    vec_ok = _vectorizable(fused, root, [root.input])
    return lower_pointwise(fused, name, sched, "expand", compute, vec_ok, root)


__all__ = [
    "lower_transpose", "lower_gather", "lower_gather_nd", "lower_slice", "lower_concat",
    "lower_expand",
]  # fmt: skip
