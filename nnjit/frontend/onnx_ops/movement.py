"""Data movement and shape queries: Transpose, Reshape, Flatten, (Un)squeeze, Expand,
Gather(ND), Split, Slice, Concat; Shape and Size are constants even on run-time tensors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from nnjit.dialects import nn_tensor as nt
from nnjit.frontend.onnx_ops.base import (
    build_op,
    i64_attr,
    index_value,
    int_list,
    norm_axis,
    register,
    reshape_value,
)
from nnjit.frontend.values import Const, NodeContext, Value, tensor_type


@register("Transpose")
def _convert_transpose(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x = cx.input(ins, 0)
    rank = len(x.shape)
    perm = int_list(cx.attr("perm")) or list(range(rank))[::-1]
    perm = [norm_axis(cx, p, rank, "perm entry") for p in perm]
    if sorted(perm) != list(range(rank)):
        raise cx.fail(f"perm {perm} is not a permutation of {rank} dims")
    if perm == list(range(rank)):
        return [x]
    shape = tuple(x.shape[p] for p in perm)
    op = build_op(nt.TransposeOp, [cx.ssa(x)], [tensor_type(shape, x.dtype)], perm=nt.i64_array(perm))
    return [cx.emit(op)]


@register("Reshape")
def _convert_reshape(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x = cx.input(ins, 0)
    target = int_list(cx.const(ins, 1, "shape"))
    if target is None:
        raise cx.fail("Reshape needs a shape input")
    allowzero = int(cx.attr("allowzero", 0))
    shape = [
        x.shape[i] if (d == 0 and not allowzero and i < len(x.shape)) else d
        for i, d in enumerate(target)
    ]
    n = math.prod(x.shape)
    if shape.count(-1) > 1:
        raise cx.fail(f"shape {target} has more than one -1")
    if -1 in shape:
        known = math.prod(d for d in shape if d != -1)
        if known == 0 or n % known:
            raise cx.fail(f"cannot reshape {x.shape} to {target}")
        shape[shape.index(-1)] = n // known
    if math.prod(shape) != n or any(d < 0 for d in shape):
        raise cx.fail(f"cannot reshape {x.shape} to {target}")
    return [reshape_value(cx, x, shape)]


@register("Flatten")
def _convert_flatten(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x = cx.input(ins, 0)
    rank = len(x.shape)
    ax = int(cx.attr("axis", 1))
    if ax < 0:
        ax += rank
    if not 0 <= ax <= rank:
        raise cx.fail(f"axis {cx.attr('axis')} is out of range for rank {rank}")
    return [reshape_value(cx, x, (math.prod(x.shape[:ax]), math.prod(x.shape[ax:])))]


def _axes_input_or_attr(cx: NodeContext, ins: list[Value | None]) -> list[int] | None:
    axes = int_list(cx.const(ins, 1, "axes"))
    if axes is None:
        axes = int_list(cx.attr("axes"))
    return axes


@register("Unsqueeze")
def _convert_unsqueeze(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x = cx.input(ins, 0)
    axes = _axes_input_or_attr(cx, ins)
    if not axes:
        raise cx.fail("Unsqueeze needs axes")
    out_rank = len(x.shape) + len(axes)
    norm = sorted({norm_axis(cx, a, out_rank) for a in axes})
    if len(norm) != len(axes):
        raise cx.fail(f"repeated axes {axes}")
    dims = iter(x.shape)
    shape = [1 if i in norm else next(dims) for i in range(out_rank)]
    return [reshape_value(cx, x, shape)]


@register("Squeeze")
def _convert_squeeze(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x = cx.input(ins, 0)
    rank = len(x.shape)
    axes = _axes_input_or_attr(cx, ins)
    if axes is None:
        drop = {i for i, d in enumerate(x.shape) if d == 1}
    else:
        drop = {norm_axis(cx, a, rank) for a in axes}
        bad = [i for i in drop if x.shape[i] != 1]
        if bad:
            raise cx.fail(f"cannot squeeze dim {bad[0]} of size {x.shape[bad[0]]}")
    return [reshape_value(cx, x, [d for i, d in enumerate(x.shape) if i not in drop])]


@register("Expand")
def _convert_expand(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x = cx.input(ins, 0)
    target = int_list(cx.const(ins, 1, "shape"))
    assert target is not None
    try:
        shape = nt.broadcast_shapes(x.shape, target)
    except ValueError as e:
        raise cx.fail(str(e)) from None
    if shape == x.shape:
        return [x]
    op = build_op(nt.ExpandOp, [cx.ssa(x)], [tensor_type(shape, x.dtype)])
    return [cx.emit(op)]


@register("Gather")
def _convert_gather(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    data, idx = cx.input(ins, 0), cx.input(ins, 1)
    ax = norm_axis(cx, cx.attr("axis", 0), len(data.shape))
    idx = index_value(cx, idx, data.shape[ax])
    shape = (*data.shape[:ax], *idx.shape, *data.shape[ax + 1 :])
    op = build_op(
        nt.GatherOp, [cx.ssa(data), cx.ssa(idx)], [tensor_type(shape, data.dtype)], axis=i64_attr(ax)
    )
    return [cx.emit(op)]


@register("GatherND")
def _convert_gather_nd(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    data, idx = cx.input(ins, 0), cx.input(ins, 1)
    idx = index_value(cx, idx, None)
    b = int(cx.attr("batch_dims", 0))
    if len(idx.shape) < 1:
        raise cx.fail("indices must have rank >= 1")
    k = idx.shape[-1]
    if b + k > len(data.shape):
        raise cx.fail(f"index depth {k} + batch_dims {b} exceeds data rank {len(data.shape)}")
    shape = (*idx.shape[:-1], *data.shape[b + k :])
    op = build_op(
        nt.GatherNDOp,
        [cx.ssa(data), cx.ssa(idx)],
        [tensor_type(shape, data.dtype)],
        batch_dims=i64_attr(b),
    )
    return [cx.emit(op)]


@register("Split")
def _convert_split(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x = cx.input(ins, 0)
    ax = norm_axis(cx, cx.attr("axis", 0), len(x.shape))
    dim = x.shape[ax]
    n_out = len(cx.node.output)
    sizes = int_list(cx.const(ins, 1, "split"))
    if sizes is None:
        sizes = int_list(cx.attr("split"))
    if sizes is None:
        n = int(cx.attr("num_outputs", n_out))
        chunk = -(-dim // n)
        sizes = [chunk] * (n - 1) + [dim - chunk * (n - 1)]
        if sizes[-1] < 0:
            raise cx.fail(f"cannot split {dim} into {n} parts")
    if sum(sizes) != dim or len(sizes) != n_out or any(s < 0 for s in sizes):
        raise cx.fail(f"split sizes {sizes} do not divide dim {dim} into {n_out} outputs")
    types = [
        tensor_type(tuple(s if i == ax else d for i, d in enumerate(x.shape)), x.dtype)
        for s in sizes
    ]
    op = build_op(nt.SplitOp, [cx.ssa(x)], [types], axis=i64_attr(ax))
    return cx.emit_multi(op)


def slice_params(
    shape: Sequence[int],
    starts: Sequence[int],
    ends: Sequence[int],
    axes: Sequence[int] | None,
    steps: Sequence[int] | None,
) -> tuple[list[int], list[int], list[int]]:
    """ONNX Slice normalisation: per-dim start, step and size (clamping as the spec says)."""
    rank = len(shape)
    axes = list(axes) if axes is not None else list(range(len(starts)))
    steps = list(steps) if steps is not None else [1] * len(starts)
    if not (len(starts) == len(ends) == len(axes) == len(steps)):
        raise ValueError("starts, ends, axes and steps must have one value each per sliced axis")
    out_start = [0] * rank
    out_step = [1] * rank
    out_size = list(shape)
    seen: set[int] = set()
    for s, e, a, st in zip(starts, ends, axes, steps):
        a = int(a) + rank if int(a) < 0 else int(a)
        if not 0 <= a < rank or a in seen:
            raise ValueError(f"slice axis {a} is out of range or repeated")
        seen.add(a)
        s, e, st = int(s), int(e), int(st)
        if st == 0:
            raise ValueError("slice step is 0")
        dim = int(shape[a])
        if s < 0:
            s += dim
        if e < 0:
            e += dim
        if st > 0:
            s = min(max(s, 0), dim)
            e = min(max(e, 0), dim)
        else:
            s = min(max(s, 0), dim - 1)
            e = min(max(e, -1), dim - 1)
        size = max(0, -(-(e - s) // st))
        out_start[a] = s if size > 0 else 0
        out_step[a] = st
        out_size[a] = size
    return out_start, out_step, out_size


@register("Slice")
def _convert_slice(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x = cx.input(ins, 0)
    if cx.opset < 10:
        starts, ends = int_list(cx.attr("starts")), int_list(cx.attr("ends"))
        axes, steps = int_list(cx.attr("axes")), None
    else:
        starts, ends = int_list(cx.const(ins, 1, "starts")), int_list(cx.const(ins, 2, "ends"))
        axes, steps = int_list(cx.const(ins, 3, "axes")), int_list(cx.const(ins, 4, "steps"))
    if starts is None or ends is None:
        raise cx.fail("Slice needs starts and ends")
    try:
        start, step, size = slice_params(x.shape, starts, ends, axes, steps)
    except ValueError as e:
        raise cx.fail(str(e)) from None
    if tuple(size) == x.shape and all(s == 0 for s in start) and all(s == 1 for s in step):
        return [x]
    if 0 in size:
        raise cx.fail(f"slice result {tuple(size)} is empty; empty tensors are not supported")
    op = build_op(
        nt.SliceOp,
        [cx.ssa(x)],
        [tensor_type(size, x.dtype)],
        starts=nt.i64_array(start),
        steps=nt.i64_array(step),
    )
    return [cx.emit(op)]


@register("Concat")
def _convert_concat(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    vals = [v for v in ins if v is not None]
    if not vals:
        raise cx.fail("needs at least one input")
    rank = len(vals[0].shape)
    ax = norm_axis(cx, cx.attr("axis"), rank)
    dtype = vals[0].dtype
    for v in vals:
        if v.dtype != dtype:
            raise cx.fail(f"input element types differ: {dtype} and {v.dtype}")
        if len(v.shape) != rank or any(
            v.shape[i] != vals[0].shape[i] for i in range(rank) if i != ax
        ):
            raise cx.fail(f"input shapes {[w.shape for w in vals]} differ off axis {ax}")
    vals = [v for v in vals if v.shape[ax] > 0] or vals[:1]
    if len(vals) == 1:
        return [vals[0]]
    shape = list(vals[0].shape)
    shape[ax] = sum(v.shape[ax] for v in vals)
    op = build_op(nt.ConcatOp, [[cx.ssa(v) for v in vals]], [tensor_type(shape, dtype)], axis=i64_attr(ax))
    return [cx.emit(op)]


# ------------------------------------------- shape queries: constants even on run-time tensors


@register("Shape")
def _convert_shape(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x = cx.input(ins, 0)
    rank = len(x.shape)
    start, end = int(cx.attr("start", 0)), cx.attr("end")
    end = rank if end is None else int(end)
    start = min(max(start + rank if start < 0 else start, 0), rank)
    end = min(max(end + rank if end < 0 else end, 0), rank)
    return [Const(np.array(x.shape[start:end], dtype=np.int64), cx.node.output[0])]


@register("Size")
def _convert_size(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x = cx.input(ins, 0)
    return [Const(np.array(math.prod(x.shape), dtype=np.int64), cx.node.output[0])]
