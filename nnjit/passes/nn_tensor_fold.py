"""nn-tensor-fold: shape and constant folding on nn_tensor, before fusion.

Small rewrite patterns applied greedily to a fixpoint (ops inside `nn_tensor.fused` bodies
are never touched), then dead pure ops are removed:

* constant folding: an op whose operands are all `nn_tensor.constant` and whose operands and
  results have at most `max_elements` elements each is evaluated by the reference
  interpreter's rule for it (`nnjit.interp.nn_tensor_eval.eval_op`, in float64, rounded
  once to the result element type) and replaced by constants; an op the interpreter refuses
  (integer division by zero, an index out of range, an integer power with a negative
  exponent) is left to run time, and nn_tensor.conv is not folded;
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
from nnjit.interp.nn_tensor_eval import eval_op

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
        with np.errstate(over="ignore"):  # float64 past the type's range rounds to +-inf
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


def _ints(attr) -> tuple[int, ...]:
    return nt.array_values(attr)


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
    """op(constants...) -> constant, when every operand and result has at most `max_elements`
    elements."""

    max_elements: int = 4096

    def rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if isinstance(op, nt.ConstantOp | nt.WeightOp | nt.FusedOp | nt.YieldOp | nt.ConvOp):
            return
        if not op.operands or not op.results:
            return
        if not all(isinstance(v.owner, nt.ConstantOp) for v in op.operands):
            return
        # checked before anything is allocated: a splat operand is materialised too
        if any(_num_elements(v) > self.max_elements for v in (*op.operands, *op.results)):
            return
        operands = [to_numpy(v.owner.value) for v in op.operands]  # pyright: ignore
        try:
            values = eval_op(op, operands, dtype=np.float64)
        except (ArithmeticError, IndexError, ValueError):
            return  # refused by the op's semantics (see eval_op): leave it to run time
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
    """Largest operand or result (in elements) that constant folding materialises."""

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
