"""nn-tensor-fold: shape and constant folding on nn_tensor, before fusion.

Small rewrite patterns applied greedily to a fixpoint (ops inside `nn_tensor.fused` bodies
are never touched), then dead pure ops are removed:

* constant folding: an op whose operands are all `nn_tensor.constant` and whose results have
  at most `max_elements` elements each is evaluated with numpy (`eval_op`) and replaced by
  constants (nn_tensor.conv is not folded);
* no-ops: reshape to its own type, reshape of reshape, identity transpose, transpose of
  transpose (perms composed), expand/cast to the same type, `x * 1`, `1 * x`, `x + 0`,
  `0 + x`, `x - 0`, `x / 1` with splat constants (only when the result type is x's type, so
  broadcasting never changes), slice that takes everything, concat of one input, split with
  one output;
* `nn_tensor.split` becomes one `nn_tensor.slice` per output, so later stages see only slice;
* reshape sinking: `ew(reshape(x), ...)` becomes `reshape(ew(x, ...))` (reshapes are views)
  so that elementwise ops behind a reshape can join their producer's kernel as its epilogue
  (GPT-2's Gemm -> reshape -> GELU / residual add); see `SinkReshape` for when it applies;
* the exact GELU, `x * 0.5 * (1 + erf(x / sqrt(2)))` in any association and commutation of
  the product, with `x / 1.41421..` or `x * 0.70710..`, and the 0.5 anywhere in the product
  (possibly split over several splat constants), becomes `nn_tensor.gelu`;
* a decomposed layer norm over trailing axes, `d = x - reduce_mean(x)`,
  `n = d / sqrt(reduce_mean(d ** 2 | d * d) + eps)`, `n * scale [+ bias]`, becomes
  `nn_tensor.layer_norm`.

`nn_tensor.gemm` is never rewritten: its alpha/beta/trans flags are handled by the lowering.
Matched constants are compared with a relative tolerance of 1e-6 (so the float32 roundings
of sqrt(2) and 1/sqrt(2) in exported models match); every rewrite is otherwise exact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects import builtin
from xdsl.dialects.builtin import (
    AnyFloat,
    BytesAttr,
    DenseIntOrFPElementsAttr,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    TensorType,
    i64,
)
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
)
from xdsl.transforms.dead_code_elimination import region_dce

from nnjit.dialects import nn_tensor as nt

# ------------------------------------------------------------------------ numpy values


def np_dtype(elem: Attribute) -> np.dtype:
    """The numpy dtype that holds one element of type `elem` (i1 -> bool)."""
    if isinstance(elem, IntegerType):
        width = elem.width.data
        if width == 1:
            return np.dtype(np.bool_)
        return np.dtype({8: np.int8, 16: np.int16, 32: np.int32, 64: np.int64}[width])
    if isinstance(elem, AnyFloat):
        return np.dtype({16: np.float16, 32: np.float32, 64: np.float64}[elem.bitwidth])
    raise NotImplementedError(f"no numpy dtype for {elem}")


def to_numpy(attr: DenseIntOrFPElementsAttr) -> np.ndarray:
    """The values of a dense attribute as a numpy array of its shape (i1 as bool)."""
    shape = tuple(attr.get_shape())
    elem = attr.get_element_type()
    raw = attr.data.data
    if isinstance(elem, IntegerType) and elem.width.data == 1:
        flat = np.frombuffer(raw, dtype=np.int8) != 0
    else:
        flat = np.frombuffer(raw, dtype=np_dtype(elem).newbyteorder("<"))
    n = math.prod(shape)
    if flat.size == 1 and n != 1:
        flat = np.broadcast_to(flat, (n,))
    return np.array(flat.reshape(shape), dtype=np_dtype(elem))


def from_numpy(array: np.ndarray, type: TensorType) -> DenseIntOrFPElementsAttr:
    """A dense attribute of `type` holding `array` (converted to the element type)."""
    elem = type.get_element_type()
    a = np.broadcast_to(np.asarray(array), tuple(type.get_shape()))
    if isinstance(elem, IntegerType) and elem.width.data == 1:
        raw = np.where(a, np.int8(-1), np.int8(0)).astype(np.int8).tobytes()
    else:
        dt = np_dtype(elem)
        if np.issubdtype(dt, np.integer) and not np.issubdtype(a.dtype, np.integer):
            a = np.trunc(a)
        raw = np.ascontiguousarray(a.astype(dt.newbyteorder("<"))).tobytes()
    return DenseIntOrFPElementsAttr(type, BytesAttr(raw))


def splat_value(value: SSAValue) -> float | int | bool | None:
    """The single value of a splat `nn_tensor.constant`, else None."""
    op = value.owner
    if not isinstance(op, nt.ConstantOp):
        return None
    arr = to_numpy(op.value)
    if arr.size == 0:
        return None
    first = arr.reshape(-1)[0]
    if not np.all(arr == first) and not (arr.dtype.kind == "f" and np.all(np.isnan(arr))):
        return None
    return first.item()


def _close(a: float | int | bool | None, b: float) -> bool:
    return a is not None and not isinstance(a, bool) and abs(a - b) <= 1e-6 * abs(b)


_erf = np.vectorize(math.erf, otypes=[np.float64])


def _ints(attr) -> tuple[int, ...]:
    return nt.array_values(attr)


def _slice(x: np.ndarray, starts, steps, sizes) -> np.ndarray:
    index = tuple(
        np.arange(n) * st + s if n > 0 else np.zeros(0, dtype=np.int64)
        for s, st, n in zip(starts, steps, sizes)
    )
    return x[np.ix_(*index)] if index else x


def _layer_norm(x, scale, bias, axis: int, eps: float):
    axes = tuple(range(axis, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(var + eps) * scale
    return y if bias is None else y + bias


def _gather_nd(data: np.ndarray, idx: np.ndarray, batch: int) -> np.ndarray:
    idx = idx.astype(np.int64)
    k = idx.shape[-1]
    bshape = data.shape[:batch]
    out_inner = data.shape[batch + k :]
    nb = math.prod(bshape)
    d = data.reshape((nb, *data.shape[batch:]))
    ii = idx.reshape((nb, -1, k))
    res = np.empty((nb, ii.shape[1], *out_inner), dtype=data.dtype)
    for b in range(nb):
        for j in range(ii.shape[1]):
            pos = tuple(int(p) % data.shape[batch + t] for t, p in enumerate(ii[b, j]))
            res[b, j] = d[b][pos]
    return res.reshape((*idx.shape[:-1], *out_inner))


def eval_op(op: Operation, args: Sequence[np.ndarray]) -> list[np.ndarray] | None:
    """Numpy semantics of one nn_tensor op on concrete operand values (None: not supported).

    Float ops are computed in float64 and integer ops in int64; results are converted to the
    result element types. Used for constant folding and by the pass tests.
    """
    res_types = [r.type for r in op.results]

    def out(*values) -> list[np.ndarray]:
        results = []
        for v, t in zip(values, res_types):
            v = np.asarray(v)
            dt = np_dtype(t.get_element_type())
            if dt.kind in "iu" and v.dtype.kind == "f":
                v = np.trunc(v)
            results.append(v.astype(dt).reshape(tuple(t.get_shape())))
        return results

    def wide(a: np.ndarray) -> np.ndarray:
        if a.dtype.kind == "f":
            return a.astype(np.float64)
        if a.dtype.kind in "iu":
            return a.astype(np.int64)
        return a

    a = [wide(np.asarray(v)) for v in args]
    with np.errstate(all="ignore"):
        match op:
            case nt.AddOp():
                return out(a[0] + a[1])
            case nt.SubOp():
                return out(a[0] - a[1])
            case nt.MulOp():
                return out(a[0] * a[1])
            case nt.DivOp():
                if a[0].dtype.kind == "f":
                    return out(a[0] / a[1])
                q = np.abs(a[0]) // np.where(a[1] == 0, 1, np.abs(a[1]))
                return out(q * np.sign(a[0]) * np.sign(a[1]))
            case nt.PowOp():
                return out(np.power(a[0], a[1]))
            case nt.MaxOp():
                return out(np.maximum(a[0], a[1]))
            case nt.MinOp():
                return out(np.minimum(a[0], a[1]))
            case nt.AndOp():
                return out(np.logical_and(a[0], a[1]))
            case nt.OrOp():
                return out(np.logical_or(a[0], a[1]))
            case nt.EqualOp():
                return out(a[0] == a[1])
            case nt.LessOp():
                return out(a[0] < a[1])
            case nt.GreaterOp():
                return out(a[0] > a[1])
            case nt.SqrtOp():
                return out(np.sqrt(a[0]))
            case nt.ErfOp():
                return out(_erf(a[0]))
            case nt.TanhOp():
                return out(np.tanh(a[0]))
            case nt.ExpOp():
                return out(np.exp(a[0]))
            case nt.LogOp():
                return out(np.log(a[0]))
            case nt.NegOp():
                return out(-a[0] if a[0].dtype != np.bool_ else a[0])
            case nt.AbsOp():
                return out(np.abs(a[0]))
            case nt.ReciprocalOp():
                return out(1.0 / a[0])
            case nt.ReluOp():
                return out(np.maximum(a[0], 0))
            case nt.SigmoidOp():
                return out(1.0 / (1.0 + np.exp(-a[0])))
            case nt.GeluOp():
                return out(a[0] * 0.5 * (1.0 + _erf(a[0] / math.sqrt(2.0))))
            case nt.NotOp():
                return out(np.logical_not(a[0]))
            case nt.IsNaNOp():
                return out(np.isnan(a[0]) if a[0].dtype.kind == "f" else np.zeros_like(a[0], bool))
            case nt.CastOp():
                dt = np_dtype(res_types[0].get_element_type())
                x = a[0]
                if dt == np.bool_:
                    return out(x != 0)
                if dt.kind in "iu" and x.dtype.kind == "f":
                    return out(np.trunc(x).astype(np.int64))
                return out(x)
            case nt.WhereOp():
                return out(np.where(a[0], a[1], a[2]))
            case nt.MatmulOp():
                return out(np.matmul(a[0], a[1]))
            case nt.GemmOp():
                x = a[0].T if op.trans_a.value.data else a[0]
                y = a[1].T if op.trans_b.value.data else a[1]
                r = op.alpha.value.data * (x @ y)
                if len(a) > 2:
                    r = r + op.beta.value.data * a[2]
                return out(r)
            case nt.SoftmaxOp():
                ax = op.axis.value.data
                e = np.exp(a[0] - a[0].max(axis=ax, keepdims=True))
                return out(e / e.sum(axis=ax, keepdims=True))
            case nt.LayerNormOp():
                bias = a[2] if len(a) > 2 else None
                return out(
                    _layer_norm(a[0], a[1], bias, op.axis.value.data, op.epsilon.value.data)
                )
            case nt.ReduceMeanOp() | nt.ReduceSumOp() | nt.ReduceMaxOp():
                axes = _ints(op.axes)
                keep = bool(op.keepdims.value.data)
                fn = {
                    nt.ReduceMeanOp: np.mean,
                    nt.ReduceSumOp: np.sum,
                    nt.ReduceMaxOp: np.max,
                }[type(op)]
                return out(fn(a[0], axis=axes, keepdims=keep))
            case nt.TransposeOp():
                return out(np.transpose(a[0], _ints(op.perm)))
            case nt.ReshapeOp() | nt.ExpandOp():
                shape = tuple(res_types[0].get_shape())
                if isinstance(op, nt.ReshapeOp):
                    return out(a[0].reshape(shape))
                return out(np.broadcast_to(a[0], shape))
            case nt.GatherOp():
                ax = op.axis.value.data
                idx = a[1].astype(np.int64)
                idx = np.where(idx < 0, idx + a[0].shape[ax], idx)
                return out(np.take(a[0], idx, axis=ax))
            case nt.GatherNDOp():
                return out(_gather_nd(a[0], a[1], op.batch_dims.value.data))
            case nt.SliceOp():
                sizes = tuple(res_types[0].get_shape())
                return out(_slice(a[0], _ints(op.starts), _ints(op.steps), sizes))
            case nt.SplitOp():
                ax = op.axis.value.data
                bounds = np.cumsum([t.get_shape()[ax] for t in res_types])[:-1]
                return out(*np.split(a[0], bounds, axis=ax))
            case nt.ConcatOp():
                return out(np.concatenate(a, axis=op.axis.value.data))
            case _:
                return None


# ------------------------------------------------------------------------------ helpers


def _in_fused_body(op: Operation) -> bool:
    parent = op.parent_op()
    while parent is not None:
        if isinstance(parent, nt.FusedOp):
            return True
        parent = parent.parent_op()
    return False


def _num_elements(value: SSAValue) -> int:
    t = value.type
    return math.prod(t.get_shape()) if isinstance(t, TensorType) else 1


class _TensorPattern(RewritePattern):
    """A pattern that never looks inside nn_tensor.fused bodies."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /):
        if op.dialect_name() != "nn_tensor" or _in_fused_body(op):
            return
        self.rewrite(op, rewriter)

    def rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        raise NotImplementedError


# -------------------------------------------------------------------- constant folding


@dataclass
class FoldConstantOperands(_TensorPattern):
    """op(constants...) -> constant, when every result has at most `max_elements` elements."""

    max_elements: int = 4096

    def rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if isinstance(op, nt.ConstantOp | nt.WeightOp | nt.FusedOp | nt.YieldOp | nt.ConvOp):
            return
        if not op.operands or not op.results:
            return
        if not all(isinstance(v.owner, nt.ConstantOp) for v in op.operands):
            return
        if any(_num_elements(r) > self.max_elements for r in op.results):
            return
        try:
            values = eval_op(op, [to_numpy(v.owner.value) for v in op.operands])  # pyright: ignore
        except (ValueError, IndexError, ZeroDivisionError, NotImplementedError):
            return  # e.g. an integer power with a negative exponent: leave it to run time
        if values is None:
            return
        consts = [nt.ConstantOp(from_numpy(v, r.type)) for v, r in zip(values, op.results)]
        rewriter.replace(op, consts, [c.result for c in consts])


# ------------------------------------------------------------------------------ no-ops


class FoldReshape(_TensorPattern):
    """reshape to its own type -> input; reshape(reshape(x)) -> reshape(x)."""

    def rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, nt.ReshapeOp):
            return
        if op.input.type == op.result.type:
            rewriter.replace(op, [], [op.input])
        elif isinstance(inner := op.input.owner, nt.ReshapeOp):
            rewriter.replace(op, nt.ReshapeOp(inner.input, op.result.type))


class FoldTranspose(_TensorPattern):
    """Identity transpose -> input; transpose(transpose(x)) -> one transpose (or x)."""

    def rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, nt.TransposeOp):
            return
        perm = _ints(op.perm)
        if list(perm) == list(range(len(perm))):
            rewriter.replace(op, [], [op.input])
            return
        inner = op.input.owner
        if isinstance(inner, nt.TransposeOp):
            p1 = _ints(inner.perm)
            composed = [p1[p] for p in perm]  # result dim k = original dim p1[perm[k]]
            if composed == list(range(len(composed))):
                rewriter.replace(op, [], [inner.input])
            else:
                new = nt.TransposeOp(
                    operands=[inner.input],
                    result_types=[op.result.type],
                    properties={"perm": nt.i64_array(composed)},
                )
                rewriter.replace(op, new)


class FoldSameTypeUnary(_TensorPattern):
    """expand/cast to the input's own type -> input."""

    def rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if isinstance(op, nt.ExpandOp | nt.CastOp) and op.input.type == op.result.type:
            rewriter.replace(op, [], [op.input])


class FoldNeutralElement(_TensorPattern):
    """x*1, 1*x, x+0, 0+x, x-0, x/1 (splat constants) -> x when x has the result type."""

    def rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, nt.AddOp | nt.SubOp | nt.MulOp | nt.DivOp):
            return
        neutral = 0 if isinstance(op, nt.AddOp | nt.SubOp) else 1
        commutes = isinstance(op, nt.AddOp | nt.MulOp)
        candidates = [(op.lhs, op.rhs)] + ([(op.rhs, op.lhs)] if commutes else [])
        for x, c in candidates:
            v = splat_value(c)
            if v is not None and not isinstance(v, bool) and v == neutral:
                if x.type == op.result.type:
                    rewriter.replace(op, [], [x])
                    return


class FoldSlice(_TensorPattern):
    """A slice that takes every element in order -> input."""

    def rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, nt.SliceOp) or op.input.type != op.result.type:
            return
        if all(s == 0 for s in _ints(op.starts)) and all(s == 1 for s in _ints(op.steps)):
            rewriter.replace(op, [], [op.input])


class FoldConcat(_TensorPattern):
    """concat of one input -> input."""

    def rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if isinstance(op, nt.ConcatOp) and len(op.inputs) == 1:
            if op.inputs[0].type == op.result.type:
                rewriter.replace(op, [], [op.inputs[0]])


class DecomposeSplit(_TensorPattern):
    """split with one output -> input; otherwise one slice per output along the axis."""

    def rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, nt.SplitOp):
            return
        if len(op.outputs) == 1 and op.outputs[0].type == op.input.type:
            rewriter.replace(op, [], [op.input])
            return
        rank = len(nt.shape_of(op.input))
        ax = op.axis.value.data
        offset = 0
        slices: list[Operation] = []
        for out in op.outputs:
            starts = [offset if d == ax else 0 for d in range(rank)]
            slices.append(
                nt.SliceOp(
                    operands=[op.input],
                    result_types=[out.type],
                    properties={
                        "starts": nt.i64_array(starts),
                        "steps": nt.i64_array([1] * rank),
                    },
                )
            )
            offset += nt.shape_of(out)[ax]
        rewriter.replace(op, slices, [s.results[0] for s in slices])


_EPILOGUE_PRODUCERS = (
    nt.MatmulOp, nt.GemmOp, nt.ConvOp, nt.SoftmaxOp, nt.LayerNormOp, nt.ReduceMeanOp,
    nt.ReduceSumOp, nt.ReduceMaxOp, nt.ElementwiseOp,
)  # fmt: skip
"""Ops whose result an elementwise op can join (as an epilogue or in an elementwise group)."""


def _defined_after(a: SSAValue, b: SSAValue) -> bool:
    """Whether `a` is defined strictly after `b` (block arguments come first)."""
    if not isinstance(a.owner, Operation):
        return False
    if not isinstance(b.owner, Operation):
        return True
    return b.owner.is_before_in_block(a.owner)


class SinkReshape(_TensorPattern):
    """ew(reshape(x), ...) -> reshape(ew(x, ...)): moves a view past an elementwise op.

    So that a producer's epilogue reaches the elementwise ops behind a reshape (GPT-2's
    Gemm -> reshape -> GELU / residual add). Applies when the reshape's result has the op's
    result shape, x is the latest-defined source among the op's full-shape operands (so
    the op moves towards the producer of x, and the rewrite cannot undo itself) and x comes
    from a contraction, normalisation, reduction or elementwise op (a data-movement producer
    takes no epilogue: the op is better left as a consumer's prologue). Other
    full-shape operands get a reshape (a view) to x's shape; operands that broadcast only
    over trailing dims that x and the result share (biases, scalars) are kept.
    """

    def rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, nt.ElementwiseOp) or len(op.results) != 1:
            return
        out_shape = nt.shape_of(op.results[0])
        full = [v for v in op.operands if nt.shape_of(v) == out_shape]

        def source(v: SSAValue) -> SSAValue:
            owner = v.owner
            if isinstance(owner, nt.ReshapeOp) and nt.shape_of(owner.input) != out_shape:
                return owner.input
            return v

        sources = [source(v) for v in full if source(v) is not v]
        if not sources:
            return
        x = sources[0]
        for v in sources[1:]:
            if _defined_after(v, x):
                x = v
        if any(_defined_after(source(v), x) for v in full):
            return
        if not isinstance(x.owner, _EPILOGUE_PRODUCERS):
            return  # nothing to join: leave the op where a consumer's prologue can take it
        in_shape = nt.shape_of(x)
        shared = 0
        while (
            shared < min(len(in_shape), len(out_shape))
            and in_shape[-1 - shared] == out_shape[-1 - shared]
        ):
            shared += 1
        before: list[Operation] = []
        operands: list[SSAValue] = []
        for v in op.operands:
            shape = nt.shape_of(v)
            if shape == out_shape:
                owner = v.owner
                if isinstance(owner, nt.ReshapeOp) and nt.shape_of(owner.input) == in_shape:
                    operands.append(owner.input)
                else:
                    r = nt.ReshapeOp(v, TensorType(nt.elem_of(v), in_shape))
                    before.append(r)
                    operands.append(r.result)
                continue
            stripped = shape
            while stripped and stripped[0] == 1:
                stripped = stripped[1:]
            if len(stripped) > shared:
                return  # broadcasts over dims that the reshape changes
            if len(shape) > len(in_shape):
                r = nt.ReshapeOp(v, TensorType(nt.elem_of(v), stripped))
                before.append(r)
                v = r.result
            operands.append(v)
        result = op.results[0]
        new = type(op).create(
            operands=operands,
            result_types=[TensorType(nt.elem_of(result), in_shape)],
            properties=dict(op.properties),
            attributes=dict(op.attributes),
        )
        back = nt.ReshapeOp(new.results[0], result.type)
        rewriter.replace(op, [*before, new, back], [back.result])


# --------------------------------------------------------------------------------- GELU

_SQRT2 = math.sqrt(2.0)


def _mul_factors(value: SSAValue, out: list[SSAValue], top: bool) -> None:
    op = value.owner
    if isinstance(op, nt.MulOp) and (top or len({u.operation for u in value.uses}) == 1):
        _mul_factors(op.lhs, out, False)
        _mul_factors(op.rhs, out, False)
    else:
        out.append(value)


def _erf_plus_one_arg(value: SSAValue) -> SSAValue | None:
    """For value = erf(x / sqrt2) + 1 (or x * (1/sqrt2), either order), return x."""
    add = value.owner
    if not isinstance(add, nt.AddOp):
        return None
    for e, one in ((add.lhs, add.rhs), (add.rhs, add.lhs)):
        if not isinstance(e.owner, nt.ErfOp) or not _close(splat_value(one), 1.0):
            continue
        t = e.owner.input.owner
        if isinstance(t, nt.DivOp) and _close(splat_value(t.rhs), _SQRT2):
            return t.lhs
        if isinstance(t, nt.MulOp):
            for x, c in ((t.lhs, t.rhs), (t.rhs, t.lhs)):
                if _close(splat_value(c), 1.0 / _SQRT2):
                    return x
    return None


class RecognizeGelu(_TensorPattern):
    """x * 0.5 * (1 + erf(x / sqrt(2))), any association of the product -> gelu(x)."""

    def rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, nt.MulOp):
            return
        if not isinstance(elem := nt.elem_of(op.result), AnyFloat):
            return
        factors: list[SSAValue] = []
        _mul_factors(op.result, factors, True)
        scale = 1.0
        erf_args: list[SSAValue] = []
        others: list[SSAValue] = []
        for f in factors:
            c = splat_value(f)
            if c is not None and not isinstance(c, bool):
                scale *= c
            elif (x := _erf_plus_one_arg(f)) is not None:
                erf_args.append(x)
            else:
                others.append(f)
        if len(erf_args) != 1 or len(others) != 1 or erf_args[0] is not others[0]:
            return
        x = others[0]
        if not _close(scale, 0.5) or x.type != op.result.type or nt.elem_of(x) != elem:
            return
        rewriter.replace(op, nt.GeluOp(x))


# --------------------------------------------------------------------------- layer norm


def _reduce_mean_trailing(value: SSAValue) -> tuple[SSAValue, int] | None:
    """For value = reduce_mean(x, axes=[k..rank-1], keepdims=1), return (x, k)."""
    op = value.owner
    if not isinstance(op, nt.ReduceMeanOp) or not op.keepdims.value.data:
        return None
    rank = len(nt.shape_of(op.input))
    axes = list(_ints(op.axes))
    if not axes or axes != list(range(axes[0], rank)):
        return None
    return op.input, axes[0]


def _single_user(value: SSAValue) -> Operation | None:
    users = {u.operation for u in value.uses}
    return users.pop() if len(users) == 1 else None


class RecognizeLayerNorm(_TensorPattern):
    """(x - mean(x)) / sqrt(mean((x - mean(x))^2) + eps) * scale [+ bias] -> layer_norm."""

    def rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, nt.DivOp):
            return
        d, s = op.lhs, op.rhs
        sub = d.owner
        if not isinstance(sub, nt.SubOp) or (m := _reduce_mean_trailing(sub.rhs)) is None:
            return
        x, axis = m
        if x is not sub.lhs or x.type != op.result.type or not isinstance(
            nt.elem_of(x), AnyFloat
        ):
            return
        sqrt = s.owner
        if not isinstance(sqrt, nt.SqrtOp) or not isinstance(add := sqrt.input.owner, nt.AddOp):
            return
        for var, e in ((add.lhs, add.rhs), (add.rhs, add.lhs)):
            eps = splat_value(e)
            if eps is not None and not isinstance(eps, bool) and var.type == add.result.type:
                break
        else:
            return
        if (vm := _reduce_mean_trailing(var)) is None or vm[1] != axis:
            return
        sq = vm[0].owner
        if isinstance(sq, nt.PowOp):
            if sq.lhs is not d or not _close(splat_value(sq.rhs), 2.0):
                return
        elif isinstance(sq, nt.MulOp):
            if sq.lhs is not d or sq.rhs is not d:
                return
        else:
            return
        # the affine part: n * scale [+ bias]
        mul = _single_user(op.result)
        if not isinstance(mul, nt.MulOp) or mul.result.type != x.type:
            return
        scale = mul.rhs if mul.lhs is op.result else mul.lhs
        if scale is op.result:
            return
        last: Operation = mul
        bias: SSAValue | None = None
        badd = _single_user(mul.result)
        if isinstance(badd, nt.AddOp) and badd.result.type == x.type:
            other = badd.rhs if badd.lhs is mul.result else badd.lhs
            if other is not mul.result:
                bias, last = other, badd
        norm_dims = nt.shape_of(x)[axis:]
        new_ops: list[Operation] = []
        affine: list[SSAValue] = []
        for v in (scale, bias):
            if v is None:
                continue
            shape = nt.shape_of(v)
            extra = len(shape) - len(norm_dims)
            if extra > 0:
                if any(dim != 1 for dim in shape[:extra]):
                    return
                shape = shape[extra:]
            try:
                if nt.broadcast_shapes(norm_dims, shape) != tuple(norm_dims):
                    return
            except ValueError:
                return
            if extra > 0:
                r = nt.ReshapeOp(v, TensorType(nt.elem_of(v), shape))
                new_ops.append(r)
                v = r.result
            affine.append(v)
        ln = nt.LayerNormOp(
            operands=[x, affine[0], affine[1:]],
            result_types=[x.type],
            properties={
                "axis": IntegerAttr(axis, i64),
                "epsilon": FloatAttr(float(eps), 32),
            },
        )
        rewriter.replace(last, [*new_ops, ln], [ln.result])


# ---------------------------------------------------------------------------- the pass


@dataclass(frozen=True)
class NNTensorFoldPass(ModulePass):
    """Shape/constant folding, no-op removal, split -> slices, GELU and layer-norm recognition."""

    name = "nn-tensor-fold"

    max_elements: int = 4096
    """Largest result (in elements) that constant folding materialises."""

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        PatternRewriteWalker(
            GreedyRewritePatternApplier(
                [
                    FoldConstantOperands(self.max_elements),
                    FoldReshape(),
                    FoldTranspose(),
                    FoldSameTypeUnary(),
                    FoldNeutralElement(),
                    FoldSlice(),
                    FoldConcat(),
                    DecomposeSplit(),
                    SinkReshape(),
                    RecognizeGelu(),
                    RecognizeLayerNorm(),
                ]
            ),
            apply_recursively=True,
        ).rewrite_module(op)
        region_dce(op.body)
