"""Contractions: MatMul, Gemm and Conv (grouped convolutions as one block-diagonal conv or one
conv per group, 1-D convs as 2-D).
"""

from __future__ import annotations

import copy

import numpy as np

from nnjit.dialects import nn_tensor as nt
from nnjit.frontend.onnx_ops.base import (
    build_op,
    check_float,
    f32_attr,
    i64_attr,
    int_list,
    register,
    reshape_value,
)
from nnjit.frontend.values import Const, NodeContext, Value, tensor_type


@register("MatMul")
def _convert_matmul(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    a, b = cx.input(ins, 0), cx.input(ins, 1)
    check_float(cx, a)
    check_float(cx, b)
    sa, sb = a.shape, b.shape
    if len(sa) == 0 or len(sb) == 0:
        raise cx.fail("MatMul operands must have rank >= 1")
    a2 = reshape_value(cx, a, (1, *sa)) if len(sa) == 1 else a
    b2 = reshape_value(cx, b, (*sb, 1)) if len(sb) == 1 else b
    sa2, sb2 = a2.shape, b2.shape
    if sa2[-1] != sb2[-2]:
        raise cx.fail(f"contraction dims differ: {sa} @ {sb}")
    try:
        batch = nt.broadcast_shapes(sa2[:-2], sb2[:-2])
    except ValueError as e:
        raise cx.fail(f"batch dims: {e}") from None
    out = (*batch, sa2[-2], sb2[-1])
    r: Value = cx.emit(nt.MatmulOp(cx.ssa(a2), cx.ssa(b2), tensor_type(out, np.float32)))
    final = list(out)
    if len(sb) == 1:
        final.pop(-1)
    if len(sa) == 1:
        final.pop(-1 if len(sb) == 1 else -2)
    return [reshape_value(cx, r, final)]


@register("Gemm")
def _convert_gemm(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    a, b = cx.input(ins, 0), cx.input(ins, 1)
    c = ins[2] if len(ins) > 2 else None
    check_float(cx, a)
    check_float(cx, b)
    ta, tb = int(cx.attr("transA", 0)), int(cx.attr("transB", 0))
    if len(a.shape) != 2 or len(b.shape) != 2:
        raise cx.fail(f"Gemm operands must be 2-D, got {a.shape} and {b.shape}")
    m, k = a.shape[::-1] if ta else a.shape
    k2, n = b.shape[::-1] if tb else b.shape
    if k != k2:
        raise cx.fail(f"contraction dims differ: {a.shape} and {b.shape}")
    if c is not None:
        try:
            if nt.broadcast_shapes(c.shape, (m, n)) != (m, n):
                raise ValueError
        except ValueError:
            raise cx.fail(f"C of shape {c.shape} does not broadcast to {(m, n)}") from None
    op = build_op(
        nt.GemmOp,
        [cx.ssa(a), cx.ssa(b), None if c is None else cx.ssa(c)],
        [tensor_type((m, n), np.float32)],
        alpha=f32_attr(cx.attr("alpha", 1.0)),
        beta=f32_attr(cx.attr("beta", 1.0)),
        trans_a=i64_attr(ta),
        trans_b=i64_attr(tb),
    )
    return [cx.emit(op)]


@register("Conv")
def _convert_conv(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x, w = cx.input(ins, 0), cx.input(ins, 1)
    bias = ins[2] if len(ins) > 2 else None
    check_float(cx, x)
    if len(x.shape) == 3 and len(w.shape) == 3:
        return _conv1d_as_2d(cx, x, w, bias)
    if len(x.shape) != 4 or len(w.shape) != 4:
        raise cx.fail(
            f"only 1-D (NCL) and 2-D (NCHW) convolution is supported, got input rank "
            f"{len(x.shape)}"
        )
    kh, kw = w.shape[2:]
    strides = int_list(cx.attr("strides")) or [1, 1]
    dil = int_list(cx.attr("dilations")) or [1, 1]
    group = int(cx.attr("group", 1))
    auto_pad = cx.attr("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
    if auto_pad in ("NOTSET", ""):
        pads = int_list(cx.attr("pads")) or [0, 0, 0, 0]
    elif auto_pad == "VALID":
        pads = [0, 0, 0, 0]
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        begin, end = [], []
        for size, k, s, d in zip(x.shape[2:], (kh, kw), strides, dil):
            out = -(-size // s)
            total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
            small = total // 2
            b = small if auto_pad == "SAME_UPPER" else total - small
            begin.append(b)
            end.append(total - b)
        pads = [*begin, *end]
    else:
        raise cx.fail(f"auto_pad {auto_pad!r} is not supported")
    if len(pads) != 4 or len(strides) != 2 or len(dil) != 2:
        raise cx.fail("Conv needs 2 strides, 2 dilations and 4 pads")
    if x.shape[1] != w.shape[1] * group:
        raise cx.fail(f"input channels {x.shape[1]} != weight channels {w.shape[1]} * group {group}")
    if group > 1 and w.shape[0] * w.shape[1] * group * kh * kw > MAX_UNGROUPED_WEIGHT:
        return _conv_per_group(cx, x, w, bias, group, strides, dil, pads)
    if group > 1:
        w, group = _ungrouped_weight(cx, w, group), 1
    oh = (x.shape[2] + pads[0] + pads[2] - dil[0] * (kh - 1) - 1) // strides[0] + 1
    ow = (x.shape[3] + pads[1] + pads[3] - dil[1] * (kw - 1) - 1) // strides[1] + 1
    op = build_op(
        nt.ConvOp,
        [cx.ssa(x), cx.ssa(w), None if bias is None else cx.ssa(bias)],
        [tensor_type((x.shape[0], w.shape[0], oh, ow), np.float32)],
        strides=nt.i64_array(strides),
        pads=nt.i64_array(pads),
        dilations=nt.i64_array(dil),
        group=i64_attr(group),
    )
    return [cx.emit(op)]


# A grouped conv becomes a group-1 conv on a block-diagonal weight up to this many elements;
# above, one conv per group (concatenated) up to this many groups.
MAX_UNGROUPED_WEIGHT = 1 << 22
MAX_SPLIT_GROUPS = 64


def _group_weight(cx: NodeContext, w: Value, group: int) -> np.ndarray:
    if not isinstance(w, Const):
        raise cx.fail(f"Conv with group {group} and a weight computed at run time is not supported")
    if w.shape[0] % group:
        raise cx.fail(f"output channels {w.shape[0]} are not a multiple of group {group}")
    return w.array


def _ungrouped_weight(cx: NodeContext, w: Value, group: int) -> Const:
    """The weight of a grouped conv (ConvNeXt's depthwise, wav2vec2's positional conv) as the
    group-1 weight that is zero between groups: exact for finite inputs, with `group` times
    the work (a NaN or inf of one group reaches all output channels: 0 * inf)."""
    array = _group_weight(cx, w, group)
    f, cg, *k = w.shape
    dense = np.zeros((f, cg * group, *k), np.float32)
    fg = f // group
    for g in range(group):
        dense[g * fg : (g + 1) * fg, g * cg : (g + 1) * cg] = array[g * fg : (g + 1) * fg]
    return Const(dense, w.name)


def _conv_per_group(
    cx: NodeContext, x: Value, w: Value, bias: Value | None, group: int, strides: list[int],
    dil: list[int], pads: list[int],
) -> list[Value]:  # fmt: skip
    """A grouped conv too large for a block-diagonal weight as one conv per group (the
    channel slices of the input), concatenated along the channels."""
    array = _group_weight(cx, w, group)
    if group > MAX_SPLIT_GROUPS:
        raise cx.fail(
            f"Conv with group {group} on {x.shape[1]} channels: too large for a block-diagonal "
            f"weight ({MAX_UNGROUPED_WEIGHT} elements) and more than {MAX_SPLIT_GROUPS} groups "
            f"to run one by one",
            hint="grouped convolution kernels are not implemented yet",
        )
    if bias is not None and not isinstance(bias, Const):
        raise cx.fail(f"Conv with group {group} and a bias computed at run time is not supported")
    sub = copy.copy(cx)
    sub.attrs = {"strides": strides, "dilations": dil, "pads": pads, "group": 1}
    n, c, h, wd = x.shape
    cg, fg = c // group, w.shape[0] // group
    outs: list[Value] = []
    for g in range(group):
        xg = cx.emit(
            build_op(
                nt.SliceOp, [cx.ssa(x)], [tensor_type((n, cg, h, wd), x.dtype)],
                starts=nt.i64_array([0, g * cg, 0, 0]), steps=nt.i64_array([1, 1, 1, 1]),
            )  # fmt: skip
        )
        name = f"{w.name}/group{g}"
        wg = Const(np.ascontiguousarray(array[g * fg : (g + 1) * fg]), name)
        bg = None if bias is None else Const(bias.array[g * fg : (g + 1) * fg], name + "/bias")
        outs.extend(_convert_conv(sub, [xg, wg, bg]))
    shape = (outs[0].shape[0], w.shape[0], *outs[0].shape[2:])
    op = build_op(nt.ConcatOp, [[cx.ssa(v) for v in outs]], [tensor_type(shape, x.dtype)], axis=i64_attr(1))
    return [cx.emit(op)]


def _conv1d_as_2d(cx: NodeContext, x: Value, w: Value, bias: Value | None) -> list[Value]:
    """A 1-D convolution (Whisper, wav2vec2) as a 2-D one over a height-1 image."""
    strides = int_list(cx.attr("strides")) or [1]
    dil = int_list(cx.attr("dilations")) or [1]
    pads = int_list(cx.attr("pads")) or [0, 0]
    if len(strides) != 1 or len(dil) != 1 or len(pads) != 2:
        raise cx.fail("a 1-D Conv needs 1 stride, 1 dilation and 2 pads")
    attrs = dict(cx.attrs, strides=[1, *strides], dilations=[1, *dil], pads=[0, pads[0], 0, pads[1]])
    if "kernel_shape" in attrs:
        attrs["kernel_shape"] = [1, *int_list(attrs["kernel_shape"])]  # type: ignore[misc]
    x2 = reshape_value(cx, x, (x.shape[0], x.shape[1], 1, x.shape[2]))
    w2 = reshape_value(cx, w, (w.shape[0], w.shape[1], 1, w.shape[2]))
    cx2 = copy.copy(cx)
    cx2.attrs = attrs
    (y,) = _convert_conv(cx2, [x2, w2, bias])
    return [reshape_value(cx, y, (y.shape[0], y.shape[1], y.shape[3]))]
