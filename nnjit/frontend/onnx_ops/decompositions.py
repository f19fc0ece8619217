"""Ops decomposed into existing nn_tensor ops: CumSum, GatherElements, Pad, BatchNormalization,
MaxPool, Resize.
"""

from __future__ import annotations

import copy
import math

import numpy as np

from nnjit.dialects import nn_tensor as nt
from nnjit.frontend.onnx_ops.base import (
    build_op,
    cast_value,
    check_float,
    emit_binary,
    i64_attr,
    index_value,
    int_list,
    norm_axis,
    register,
    reshape_value,
)
from nnjit.frontend.values import Const, NodeContext, Value, tensor_type


@register("CumSum")
def _convert_cumsum(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    # y[..., i, ...] = sum_j x[..., j, ...] * tri[i, j]: a broadcast multiply by a constant 0/1
    # triangle and a sum over j (O(n^2) work, fine for sequence lengths). Reductions run in
    # float32, so an integer CumSum (position ids from a mask) is exact while its running sums
    # stay below 2^24 in magnitude.
    given = cx.input(ins, 0)
    if given.dtype == np.bool_:
        raise cx.fail("cannot sum a bool tensor")
    x = cast_value(cx, given, np.dtype(np.float32))
    axis = cx.const(ins, 1, "axis")
    if axis is None or axis.size != 1:
        raise cx.fail("CumSum needs a single constant axis")
    rank = len(x.shape)
    ax = norm_axis(cx, int(axis.reshape(-1)[0]), rank)
    n = x.shape[ax]
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    reverse, exclusive = int(cx.attr("reverse", 0)), int(cx.attr("exclusive", 0))
    keep = (j >= i if reverse else j <= i) & ((j != i) if exclusive else True)
    tri = keep.astype(x.dtype).reshape((n, n) + (1,) * (rank - ax - 1))
    spread = reshape_value(cx, x, (*x.shape[:ax], 1, *x.shape[ax:]))
    prod = emit_binary(cx, nt.MulOp, spread, Const(tri, cx.node.output[0] + "/triangle"))
    op = build_op(
        nt.ReduceSumOp,
        [cx.ssa(prod)],
        [tensor_type(x.shape, x.dtype)],
        axes=nt.i64_array([ax + 1]),
        keepdims=i64_attr(0),
    )
    return [cast_value(cx, cx.emit(op), given.dtype)]


@register("GatherElements")
def _convert_gather_elements(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    # out[p] = data[p with p[axis] := idx[p]]: GatherND on the index tuples (p..., idx[p]),
    # built by concatenating constant coordinate grids with the run-time indices
    data, idx = cx.input(ins, 0), cx.input(ins, 1)
    rank = len(data.shape)
    ax = norm_axis(cx, cx.attr("axis", 0), rank)
    idx = index_value(cx, idx, data.shape[ax])
    if len(idx.shape) != rank or any(
        i > d and k != ax for k, (i, d) in enumerate(zip(idx.shape, data.shape))
    ):
        raise cx.fail(f"indices of shape {idx.shape} do not fit data of shape {data.shape}")
    grids = np.indices(idx.shape, dtype=idx.dtype)
    parts: list[Value] = []
    for k in range(rank):
        if k == ax:
            parts.append(reshape_value(cx, idx, (*idx.shape, 1)))
        else:
            parts.append(Const(grids[k][..., None], f"{cx.node.output[0]}/grid{k}"))
    index_shape = (*idx.shape, rank)
    tuples = cx.emit(
        build_op(
            nt.ConcatOp, [[cx.ssa(v) for v in parts]], [tensor_type(index_shape, idx.dtype)],
            axis=i64_attr(rank),
        )  # fmt: skip
    )
    op = build_op(
        nt.GatherNDOp,
        [cx.ssa(data), cx.ssa(tuples)],
        [tensor_type(idx.shape, data.dtype)],
        batch_dims=i64_attr(0),
    )
    return [cx.emit(op)]


@register("Pad")
def _convert_pad(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    # constant mode: concatenate constant blocks before and after each padded axis; negative
    # pads crop (a slice)
    x = cx.input(ins, 0)
    rank = len(x.shape)
    mode = cx.attr("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    if mode != "constant":
        raise cx.fail(f"Pad mode {mode!r} is not supported (only 'constant')")
    if cx.opset < 11:
        pads, value = int_list(cx.attr("pads")), float(cx.attr("value", 0.0))
        axes = None
    else:
        pads = int_list(cx.const(ins, 1, "pads"))
        fill = cx.const(ins, 2, "constant_value")
        value = 0 if fill is None or fill.size == 0 else fill.reshape(-1)[0].item()
        axes = int_list(cx.const(ins, 3, "axes"))
    if pads is None:
        raise cx.fail("Pad needs pads")
    axes = [norm_axis(cx, a, rank) for a in (axes if axes is not None else range(rank))]
    if len(pads) != 2 * len(axes):
        raise cx.fail(f"{len(pads)} pads for {len(axes)} axes")
    before, after = [0] * rank, [0] * rank
    for k, a in enumerate(axes):
        before[a], after[a] = pads[k], pads[k + len(axes)]
    r: Value = x
    if any(p < 0 for p in before + after):
        shape = r.shape
        starts = [max(0, -b) for b in before]
        size = [d - s - max(0, -e) for d, s, e in zip(shape, starts, after)]
        if any(s <= 0 for s in size):
            raise cx.fail(f"pads {pads} crop all of shape {shape}")
        r = cx.emit(
            build_op(
                nt.SliceOp, [cx.ssa(r)], [tensor_type(size, r.dtype)],
                starts=nt.i64_array(starts), steps=nt.i64_array([1] * rank),
            )  # fmt: skip
        )
    for a in range(rank):
        lo, hi = max(0, before[a]), max(0, after[a])
        if lo == 0 and hi == 0:
            continue
        parts: list[Value] = []
        for n, where in ((lo, "before"), (hi, "after")):
            block = tuple(n if i == a else d for i, d in enumerate(r.shape))
            if n > 0:
                parts.append(Const(np.full(block, value, r.dtype), f"{cx.node.output[0]}/{where}{a}"))
        parts.insert(1 if lo > 0 else 0, r)
        shape = tuple(d + lo + hi if i == a else d for i, d in enumerate(r.shape))
        r = cx.emit(
            build_op(
                nt.ConcatOp, [[cx.ssa(v) for v in parts]], [tensor_type(shape, r.dtype)],
                axis=i64_attr(a),
            )  # fmt: skip
        )
    return [r]


@register("BatchNormalization")
def _convert_batch_norm(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    # inference form: y = x * a + b per channel, a = scale / sqrt(var + eps), b = bias - mean * a
    x = cx.input(ins, 0)
    check_float(cx, x)
    if int(cx.attr("training_mode", 0)) or len([o for o in cx.node.output if o]) > 1:
        raise cx.fail("BatchNormalization in training mode (running statistics outputs) is not supported")
    stats = [cx.const(ins, i, what) for i, what in ((1, "scale"), (2, "B"), (3, "mean"), (4, "var"))]
    if any(s is None for s in stats) or len(x.shape) < 2:
        raise cx.fail("BatchNormalization needs an (N, C, ...) input and all four statistics")
    scale, bias, mean, var = (np.asarray(s, np.float64).reshape(-1) for s in stats)  # type: ignore[arg-type]
    a = scale / np.sqrt(var + float(cx.attr("epsilon", 1e-5)))
    b = bias - mean * a
    channel = (x.shape[1],) + (1,) * (len(x.shape) - 2)
    name = cx.node.output[0]
    y = emit_binary(cx, nt.MulOp, x, Const(a.astype(np.float32).reshape(channel), name + "/scale"))
    return [emit_binary(cx, nt.AddOp, y, Const(b.astype(np.float32).reshape(channel), name + "/shift"))]


@register("MaxPool")
def _convert_max_pool(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    # the max over the kernel window's taps: one strided slice of the (-inf padded) input each
    x = cx.input(ins, 0)
    check_float(cx, x)
    if len(x.shape) != 4:
        raise cx.fail(f"only 2-D MaxPool (NCHW) is supported, got input rank {len(x.shape)}")
    if len([o for o in cx.node.output if o]) > 1:
        raise cx.fail("the Indices output of MaxPool is not supported")
    kernel = int_list(cx.attr("kernel_shape")) or []
    strides = int_list(cx.attr("strides")) or [1, 1]
    dil = int_list(cx.attr("dilations")) or [1, 1]
    pads = int_list(cx.attr("pads")) or [0, 0, 0, 0]
    auto_pad = cx.attr("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
    if auto_pad not in ("NOTSET", "", "VALID") or int(cx.attr("ceil_mode", 0)):
        raise cx.fail(f"MaxPool with auto_pad={auto_pad!r} or ceil_mode=1 is not supported")
    if len(kernel) != 2 or len(strides) != 2 or len(dil) != 2 or len(pads) != 4:
        raise cx.fail("MaxPool needs 2 kernel dims, 2 strides, 2 dilations and 4 pads")
    if auto_pad == "VALID":
        pads = [0, 0, 0, 0]
    n, c, h, w = x.shape
    out = [
        (size + pads[i] + pads[i + 2] - dil[i] * (kernel[i] - 1) - 1) // strides[i] + 1
        for i, size in enumerate((h, w))
    ]
    if min(out) <= 0:
        raise cx.fail(f"MaxPool kernel {kernel} does not fit the input {x.shape}")
    padded = x
    if any(pads):
        # pad with the lowest finite float (printed constants cannot be -inf): the same max
        # unless a whole window is padding or -inf
        lowest = float(np.finfo(np.float32).min)
        spec_list = [0, 0, pads[0], pads[1], 0, 0, pads[2], pads[3]]
        pad_cx = copy.copy(cx)
        pad_cx.attrs = {"mode": "constant", "pads": spec_list, "value": lowest}
        fill = Const(np.array(lowest, np.float32), cx.node.output[0] + "/fill")
        spec = Const(np.array(spec_list, np.int64), cx.node.output[0] + "/pads")
        (padded,) = _convert_pad(pad_cx, [x, spec, fill])
    r: Value | None = None
    for ky in range(kernel[0]):
        for kx in range(kernel[1]):
            tap = cx.emit(
                build_op(
                    nt.SliceOp, [cx.ssa(padded)], [tensor_type((n, c, *out), np.float32)],
                    starts=nt.i64_array([0, 0, ky * dil[0], kx * dil[1]]),
                    steps=nt.i64_array([1, 1, *strides]),
                )  # fmt: skip
            )
            r = tap if r is None else emit_binary(cx, nt.MaxOp, r, tap)
    assert r is not None
    return [r]


def _resize_matrix(
    cx: NodeContext, size: int, out: int, scale: float | None, opset: int
) -> np.ndarray:
    """The (out, size) matrix of a Resize along one axis: the node itself (its mode and
    coordinate attributes) run by onnx's reference on the basis vectors of that axis."""
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    attrs = {a.name: helper.get_attribute_value(a) for a in cx.node.attribute}
    inits = [
        numpy_helper.from_array(np.eye(size, dtype=np.float32), "x"),
        numpy_helper.from_array(np.zeros(0, np.float32), "roi"),
    ]
    if scale is not None:
        inits.append(numpy_helper.from_array(np.array([1.0, scale], np.float32), "scales"))
        ins = ["x", "roi", "scales"]
    else:
        inits.append(numpy_helper.from_array(np.array([], np.float32), "scales"))
        inits.append(numpy_helper.from_array(np.array([size, out], np.int64), "sizes"))
        ins = ["x", "roi", "scales", "sizes"]
    node = helper.make_node("Resize", ins, ["y"], **attrs)
    graph = helper.make_graph([node], "resize", [], [helper.make_empty_tensor_value_info("y")], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    (basis,) = ReferenceEvaluator(model).run(None, {})
    if basis.shape != (size, out):
        raise cx.fail(f"cannot resize an axis of {size} to {out}")
    return np.ascontiguousarray(basis.T)


@register("Resize")
def _convert_resize(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    # separable: one axis at a time, a constant matrix applied along it (nearest: a gather of
    # constant indices; linear and cubic: a matmul with the interpolation weights)
    x = cx.input(ins, 0)
    check_float(cx, x)
    rank = len(x.shape)
    mode = cx.attr("mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    coord = cx.attr("coordinate_transformation_mode", b"half_pixel")
    coord = coord.decode() if isinstance(coord, bytes) else str(coord)
    if cx.opset < 11:
        raise cx.fail("Resize before opset 11 is not supported")
    if cx.attr("axes") is not None or int(cx.attr("antialias", 0)) or coord == "tf_crop_and_resize":
        raise cx.fail(
            f"Resize with axes, antialias or coordinate_transformation_mode={coord!r} is not supported"
        )
    policy = cx.attr("keep_aspect_ratio_policy", b"stretch")
    if (policy.decode() if isinstance(policy, bytes) else str(policy)) != "stretch":
        raise cx.fail("Resize with keep_aspect_ratio_policy other than 'stretch' is not supported")
    scales_a = cx.const(ins, 2, "scales")
    sizes_a = cx.const(ins, 3, "sizes")
    if sizes_a is not None and sizes_a.size > 0:
        sizes, scales = int_list(sizes_a), None
    elif scales_a is not None and scales_a.size > 0:
        scales = [float(v) for v in scales_a.reshape(-1)]
        sizes = [int(math.floor(d * s)) for d, s in zip(x.shape, scales)]
    else:
        raise cx.fail("Resize needs scales or sizes")
    assert sizes is not None
    if len(sizes) != rank or (scales is not None and len(scales) != rank) or min(sizes) <= 0:
        raise cx.fail(f"Resize of shape {x.shape} to {sizes} is not supported")
    r: Value = x
    for a in range(rank):
        scale = None if scales is None else scales[a]
        if sizes[a] == x.shape[a] and scale in (None, 1.0):
            continue
        m = _resize_matrix(cx, x.shape[a], sizes[a], scale, cx.opset)
        name = f"{cx.node.output[0]}/axis{a}"
        picks = m.argmax(axis=1)
        if np.array_equal(m, np.eye(m.shape[1], dtype=m.dtype)[picks]):  # a selection
            shape = (*r.shape[:a], sizes[a], *r.shape[a + 1 :])
            op = build_op(
                nt.GatherOp, [cx.ssa(r), cx.ssa(Const(picks.astype(np.int64), name))],
                [tensor_type(shape, np.float32)], axis=i64_attr(a),
            )  # fmt: skip
            r = cx.emit(op)
            continue
        perm = [i for i in range(rank) if i != a] + [a]
        moved = _convert_transpose_perm(cx, r, perm)
        mixed = _binary_matmul(cx, moved, Const(np.ascontiguousarray(m.T), name))
        r = _convert_transpose_perm(cx, mixed, [perm.index(i) for i in range(rank)])
    return [r]


def _convert_transpose_perm(cx: NodeContext, v: Value, perm: list[int]) -> Value:
    if perm == sorted(perm):
        return v
    shape = tuple(v.shape[p] for p in perm)
    return cx.emit(build_op(nt.TransposeOp, [cx.ssa(v)], [tensor_type(shape, v.dtype)], perm=nt.i64_array(perm)))


def _binary_matmul(cx: NodeContext, a: Value, b: Value) -> Value:
    shape = (*a.shape[:-1], b.shape[-1])
    return cx.emit(nt.MatmulOp(cx.ssa(a), cx.ssa(b), tensor_type(shape, np.float32)))
