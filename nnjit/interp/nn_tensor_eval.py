"""A numpy reference interpreter of nn_tensor IR (`func.func @main`): nn_tensor's semantics.

`evaluate(module_or_func, inputs, weights)` runs @main op by op; `eval_op(op, operands)`
evaluates one op on concrete values (nn-tensor-fold folds constants through it, so these
rules are the one statement of what each op computes). Float tensors are computed in `dtype`
(float64 by default, for references); i64/i32 tensors in int64/int32; i1 as bool. Every op
of nnjit/dialects/nn_tensor.py is covered, nn_tensor.fused by evaluating its body.
Semantics are ONNX's (see each op's docstring), as onnxruntime computes them: integer
division truncates toward zero, casts from float to integer truncate, gather indices may be
negative (from -dim). Where onnxruntime refuses, so does the interpreter: an integer
division by zero raises ZeroDivisionError, an index out of range IndexError; an integer
power with a negative exponent raises ValueError. Float results are IEEE's (inf, nan)
without numpy warnings.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from xdsl.dialects.builtin import AnyFloat, IntegerType, ModuleOp, TensorType
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Attribute, Block, Operation, SSAValue

from nnjit.dialects import nn_tensor as nt
from nnjit.errors import ShapeError

_erf = np.frompyfunc(math.erf, 1, 1)


def erf(x: np.ndarray) -> np.ndarray:
    """Elementwise error function, to double precision.

    math.erf per element; scipy.special.erf (if scipy happens to be installed: it is not a
    dependency) for large arrays, which is the same to within an ulp and much faster.
    """
    x = np.asarray(x)
    dtype = x.dtype if x.dtype.kind == "f" else np.float64
    if x.size > 4096:
        try:
            from scipy.special import erf as fast_erf
        except ImportError:
            pass
        else:
            return np.asarray(fast_erf(x), dtype=dtype)
    return np.asarray(_erf(x), dtype=dtype)


def _np_type(elem: Attribute, float_dtype: np.dtype[Any]) -> np.dtype[Any]:
    if isinstance(elem, AnyFloat):
        return float_dtype
    if isinstance(elem, IntegerType):
        width = elem.width.data
        if width == 1:
            return np.dtype(np.bool_)
        return np.dtype({8: np.int8, 16: np.int16, 32: np.int32, 64: np.int64}[width])
    raise NotImplementedError(f"nn_tensor_eval: element type {elem} is not supported")


def _result_dtype(value: SSAValue, float_dtype: np.dtype[Any]) -> np.dtype[Any]:
    t = value.type
    assert isinstance(t, TensorType)
    return _np_type(t.get_element_type(), float_dtype)


def _shape(value: SSAValue) -> tuple[int, ...]:
    t = value.type
    assert isinstance(t, TensorType)
    return tuple(int(d) for d in t.get_shape())


def _ints(attr: Any) -> list[int]:
    return [int(v) for v in attr.get_values()]


def _int_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if np.any(b == 0):
        raise ZeroDivisionError("nn_tensor.div: integer division by zero")
    q = np.floor_divide(a, b)
    fix = (np.remainder(a, b) != 0) & ((a < 0) != (b < 0))
    return q + fix.astype(q.dtype)


def _cast(x: np.ndarray, to: np.dtype[Any]) -> np.ndarray:
    if to == np.bool_:
        return x != 0
    if to.kind in "iu" and x.dtype.kind == "f":
        return np.trunc(x).astype(to)
    return x.astype(to)


def _gather_nd(data: np.ndarray, idx: np.ndarray, b: int) -> np.ndarray:
    k = idx.shape[-1]
    batch = data.shape[:b]
    nb = math.prod(batch)
    d2 = data.reshape((nb, *data.shape[b:]))
    i2 = idx.reshape((nb, -1, k))
    out = np.empty((nb, i2.shape[1], *data.shape[b + k :]), dtype=data.dtype)
    for n in range(nb):
        for j in range(i2.shape[1]):
            ix = []
            for t, v in enumerate(i2[n, j]):
                dim = data.shape[b + t]
                if not -dim <= v < dim:
                    raise IndexError(f"nn_tensor.gather_nd: index {int(v)} out of range for {dim}")
                ix.append(int(v) + (dim if v < 0 else 0))
            out[n, j] = d2[n][tuple(ix)]
    return out.reshape((*idx.shape[:-1], *data.shape[b + k :]))


def _conv(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray | None,
    strides: Sequence[int],
    pads: Sequence[int],
    dil: Sequence[int],
    group: int,
    out_shape: tuple[int, ...],
) -> np.ndarray:
    n, c, _, _ = x.shape
    f, cg, kh, kw = w.shape
    oh, ow = out_shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    out = np.zeros((n, f, oh, ow), dtype=np.result_type(x, w))
    fg = f // group
    for g in range(group):
        xs = xp[:, g * cg : (g + 1) * cg]
        ws = w[g * fg : (g + 1) * fg]
        for ky in range(kh):
            for kx in range(kw):
                y0, x0 = ky * dil[0], kx * dil[1]
                patch = xs[
                    :,
                    :,
                    y0 : y0 + (oh - 1) * strides[0] + 1 : strides[0],
                    x0 : x0 + (ow - 1) * strides[1] + 1 : strides[1],
                ]
                out[:, g * fg : (g + 1) * fg] += np.einsum("nchw,fc->nfhw", patch, ws[:, :, ky, kx])
    if bias is not None:
        out += bias.reshape(1, f, 1, 1)
    return out


def _layer_norm(
    x: np.ndarray, scale: np.ndarray, bias: np.ndarray | None, axis: int, eps: float
) -> np.ndarray:
    axes = tuple(range(axis, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(var + eps) * scale
    return y + bias if bias is not None else y


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _slice(x: np.ndarray, starts: Sequence[int], steps: Sequence[int], sizes: Sequence[int]):
    for d, (s, st, m) in enumerate(zip(starts, steps, sizes)):
        x = np.take(x, s + np.arange(m) * st, axis=d)
    return x


class _Evaluator:
    def __init__(self, weights: Mapping[str, np.ndarray], float_dtype: np.dtype[Any]):
        self.weights = weights
        self.fdt = float_dtype
        self.env: dict[SSAValue, np.ndarray] = {}

    def get(self, v: SSAValue) -> np.ndarray:
        return self.env[v]

    def run_block(self, block: Block) -> list[np.ndarray]:
        for op in block.ops:
            if isinstance(op, (ReturnOp, nt.YieldOp)):
                return [self.get(v) for v in op.operands]
            for r, a in zip(op.results, self.run_op(op)):
                self.env[r] = a
        raise ValueError("nn_tensor_eval: block has no terminator")

    def run_op(self, op: Operation) -> list[np.ndarray]:
        """The op's results, in their types' numpy dtypes (floats in the float dtype)."""
        fn = _OPS.get(type(op))
        if fn is None:
            raise NotImplementedError(f"nn_tensor_eval: no rule for {op.name}")
        with np.errstate(all="ignore"):
            r = fn(self, op)
            values = r if isinstance(r, list) else [r]
            out = []
            for res, a in zip(op.results, values, strict=True):
                want = _result_dtype(res, self.fdt)
                a = np.asarray(a)
                if a.dtype != want:
                    a = a.astype(want)
                if a.shape != _shape(res):
                    raise AssertionError(
                        f"nn_tensor_eval: {op.name} gave shape {a.shape}, its type says {_shape(res)}"
                    )
                out.append(a)
        return out


# ---------------------------------------------------------------------------- op rules

_Rule = Callable[[_Evaluator, Any], "np.ndarray | list[np.ndarray]"]
_OPS: dict[type[Operation], _Rule] = {}


def _rule(*classes: type[Operation]) -> Callable[[_Rule], _Rule]:
    def deco(fn: _Rule) -> _Rule:
        for c in classes:
            _OPS[c] = fn
        return fn

    return deco


@_rule(nt.WeightOp)
def _weight(ev: _Evaluator, op: nt.WeightOp) -> np.ndarray:
    key = op.key.data
    if key not in ev.weights:
        raise KeyError(f"nn_tensor_eval: no weight named {key!r}")
    a = np.asarray(ev.weights[key])
    want = _shape(op.result)
    if a.shape != want:
        raise ShapeError(f"weight {key!r} has shape {a.shape}, the IR says {want}")
    return a.astype(_result_dtype(op.result, ev.fdt))


@_rule(nt.ConstantOp)
def _constant(ev: _Evaluator, op: nt.ConstantOp) -> np.ndarray:
    dt = _result_dtype(op.result, ev.fdt)
    vals = np.array(op.value.get_values())
    if dt == np.bool_:
        vals = vals != 0
    shape = _shape(op.result)
    if vals.size == 1 and math.prod(shape) != 1:
        return np.full(shape, vals.reshape(-1)[0], dtype=dt)
    return vals.astype(dt).reshape(shape)


def _arith(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> _Rule:
    def run(ev: _Evaluator, op: Any) -> np.ndarray:
        return fn(ev.get(op.lhs), ev.get(op.rhs))

    return run


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype.kind in "iu":
        return _int_div(a, b)
    return a / b


_OPS[nt.AddOp] = _arith(np.add)
_OPS[nt.SubOp] = _arith(np.subtract)
_OPS[nt.MulOp] = _arith(np.multiply)
_OPS[nt.DivOp] = _arith(_div)
_OPS[nt.PowOp] = _arith(np.power)
_OPS[nt.MaxOp] = _arith(np.maximum)
_OPS[nt.MinOp] = _arith(np.minimum)
_OPS[nt.AndOp] = _arith(np.logical_and)
_OPS[nt.OrOp] = _arith(np.logical_or)
_OPS[nt.EqualOp] = _arith(np.equal)
_OPS[nt.LessOp] = _arith(np.less)
_OPS[nt.GreaterOp] = _arith(np.greater)


def _unary(fn: Callable[[np.ndarray], np.ndarray]) -> _Rule:
    def run(ev: _Evaluator, op: Any) -> np.ndarray:
        return fn(ev.get(op.input))

    return run


def _gelu(x: np.ndarray) -> np.ndarray:
    return x * 0.5 * (1.0 + erf(x / math.sqrt(2.0)))


_OPS[nt.SqrtOp] = _unary(np.sqrt)
_OPS[nt.ErfOp] = _unary(erf)
_OPS[nt.TanhOp] = _unary(np.tanh)
_OPS[nt.SinOp] = _unary(np.sin)
_OPS[nt.CosOp] = _unary(np.cos)
_OPS[nt.ExpOp] = _unary(np.exp)
_OPS[nt.LogOp] = _unary(np.log)


def _neg(x: np.ndarray) -> np.ndarray:
    """-x; on i1, x (two's complement in one bit: -(-1) wraps to -1)."""
    return x if x.dtype == np.bool_ else np.negative(x)


_OPS[nt.NegOp] = _unary(_neg)
_OPS[nt.AbsOp] = _unary(np.abs)
_OPS[nt.ReciprocalOp] = _unary(lambda x: 1.0 / x)
_OPS[nt.ReluOp] = _unary(lambda x: np.maximum(x, 0))
def _sigmoid(x):
    """1 / (1 + exp(-x)) without overflow: exp only of -|x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


_OPS[nt.SigmoidOp] = _unary(_sigmoid)
_OPS[nt.RoundOp] = _unary(np.rint)
_OPS[nt.GeluOp] = _unary(_gelu)
_OPS[nt.NotOp] = _unary(np.logical_not)
_OPS[nt.IsNaNOp] = _unary(np.isnan)


@_rule(nt.CastOp)
def _cast_op(ev: _Evaluator, op: nt.CastOp) -> np.ndarray:
    return _cast(ev.get(op.input), _result_dtype(op.result, ev.fdt))


@_rule(nt.WhereOp)
def _where(ev: _Evaluator, op: nt.WhereOp) -> np.ndarray:
    return np.where(ev.get(op.cond), ev.get(op.lhs), ev.get(op.rhs))


@_rule(nt.MatmulOp)
def _matmul(ev: _Evaluator, op: nt.MatmulOp) -> np.ndarray:
    return np.matmul(ev.get(op.lhs), ev.get(op.rhs))


def unpack_i16x2(words: np.ndarray, k: int) -> np.ndarray:
    """The [K, N] int16 values of nn_tensor.matmul_i16's rhs words ([ceil(K / 2), N] i32)."""
    w = np.ascontiguousarray(words, dtype=np.int32)
    pairs = w.view(np.int16).reshape(w.shape[0], w.shape[1], 2)  # (little-endian: low first)
    return pairs.transpose(0, 2, 1).reshape(2 * w.shape[0], w.shape[1])[:k]


@_rule(nt.MatmulI16Op)
def _matmul_i16(ev: _Evaluator, op: nt.MatmulI16Op) -> np.ndarray:
    a = ev.get(op.lhs).astype(np.int32).astype(np.int16).astype(np.int64)
    b = unpack_i16x2(ev.get(op.rhs), a.shape[-1]).astype(np.int64)
    return np.matmul(a, b).astype(np.int32)


def unpack_i8x4(words: np.ndarray, k: int) -> np.ndarray:
    """The [K, N] int8 values of nn_tensor.matmul_i8's rhs words ([ceil(K / 4) + 1, N] i32)."""
    w = np.ascontiguousarray(words[:-1], dtype=np.int32)
    quads = w.view(np.int8).reshape(w.shape[0], w.shape[1], 4)  # (little-endian: low first)
    return quads.transpose(0, 2, 1).reshape(4 * w.shape[0], w.shape[1])[:k]


@_rule(nt.MatmulI8Op)
def _matmul_i8(ev: _Evaluator, op: nt.MatmulI8Op) -> np.ndarray:
    a = ev.get(op.lhs).astype(np.int64)
    b = unpack_i8x4(ev.get(op.rhs), a.shape[-1]).astype(np.int64)
    return np.matmul(a, b).astype(np.int32)


def unpack_q8p(pairs: np.ndarray, k: int) -> np.ndarray:
    """The [K, N] int8 values of nn_tensor.matmul_q8p's rhs ([ceil(K / 2), 2N] i8 k pairs)."""
    p = np.asarray(pairs, np.int8)
    j, n2 = p.shape
    return p.reshape(j, n2 // 2, 2).transpose(0, 2, 1).reshape(2 * j, n2 // 2)[:k]


@_rule(nt.MatmulQ8POp)
def _matmul_q8p(ev: _Evaluator, op: nt.MatmulQ8POp) -> np.ndarray:
    a = ev.get(op.lhs).astype(np.int32).astype(np.int16).astype(np.int64)
    b = unpack_q8p(ev.get(op.rhs), a.shape[-1]).astype(np.int64)
    return np.matmul(a, b).astype(np.int32)


@_rule(nt.GemmOp)
def _gemm(ev: _Evaluator, op: nt.GemmOp) -> np.ndarray:
    a, b = ev.get(op.a), ev.get(op.b)
    if op.trans_a.value.data:
        a = a.T
    if op.trans_b.value.data:
        b = b.T
    r = op.alpha.value.data * (a @ b)
    if op.c is not None:
        r = r + op.beta.value.data * ev.get(op.c)
    return r


@_rule(nt.ConvOp)
def _conv_op(ev: _Evaluator, op: nt.ConvOp) -> np.ndarray:
    return _conv(
        ev.get(op.input),
        ev.get(op.weight),
        None if op.bias is None else ev.get(op.bias),
        _ints(op.strides),
        _ints(op.pads),
        _ints(op.dilations),
        op.group.value.data,
        _shape(op.result),
    )


@_rule(nt.SoftmaxOp)
def _softmax_op(ev: _Evaluator, op: nt.SoftmaxOp) -> np.ndarray:
    return _softmax(ev.get(op.input), op.axis.value.data)


@_rule(nt.LayerNormOp)
def _layer_norm_op(ev: _Evaluator, op: nt.LayerNormOp) -> np.ndarray:
    return _layer_norm(
        ev.get(op.input),
        ev.get(op.scale),
        None if op.bias is None else ev.get(op.bias),
        op.axis.value.data,
        op.epsilon.value.data,
    )


def _reduce(fn: Callable[..., np.ndarray]) -> _Rule:
    def run(ev: _Evaluator, op: Any) -> np.ndarray:
        axes = tuple(_ints(op.axes))
        return fn(ev.get(op.input), axis=axes, keepdims=bool(op.keepdims.value.data))

    return run


_OPS[nt.ReduceMeanOp] = _reduce(np.mean)
_OPS[nt.ReduceSumOp] = _reduce(np.sum)
_OPS[nt.ReduceMaxOp] = _reduce(np.max)


@_rule(nt.TransposeOp)
def _transpose(ev: _Evaluator, op: nt.TransposeOp) -> np.ndarray:
    return np.transpose(ev.get(op.input), _ints(op.perm))


@_rule(nt.ReshapeOp)
def _reshape(ev: _Evaluator, op: nt.ReshapeOp) -> np.ndarray:
    return ev.get(op.input).reshape(_shape(op.result))


@_rule(nt.ExpandOp)
def _expand(ev: _Evaluator, op: nt.ExpandOp) -> np.ndarray:
    return np.broadcast_to(ev.get(op.input), _shape(op.result)).copy()


@_rule(nt.GatherOp)
def _gather(ev: _Evaluator, op: nt.GatherOp) -> np.ndarray:
    idx = ev.get(op.indices).astype(np.int64)
    return np.take(ev.get(op.data), idx, axis=op.axis.value.data)


@_rule(nt.GatherNDOp)
def _gather_nd_op(ev: _Evaluator, op: nt.GatherNDOp) -> np.ndarray:
    return _gather_nd(ev.get(op.data), ev.get(op.indices), op.batch_dims.value.data)


@_rule(nt.SliceOp)
def _slice_op(ev: _Evaluator, op: nt.SliceOp) -> np.ndarray:
    return _slice(ev.get(op.input), _ints(op.starts), _ints(op.steps), _shape(op.result))


@_rule(nt.SplitOp)
def _split(ev: _Evaluator, op: nt.SplitOp) -> list[np.ndarray]:
    x = ev.get(op.input)
    ax = op.axis.value.data
    out, start = [], 0
    for r in op.outputs:
        n = _shape(r)[ax]
        out.append(np.take(x, np.arange(start, start + n), axis=ax))
        start += n
    return out


@_rule(nt.ConcatOp)
def _concat(ev: _Evaluator, op: nt.ConcatOp) -> np.ndarray:
    return np.concatenate([ev.get(v) for v in op.inputs], axis=op.axis.value.data)


@_rule(nt.FusedOp)
def _fused(ev: _Evaluator, op: nt.FusedOp) -> np.ndarray:
    block = op.body.block
    for arg, v in zip(block.args, op.inputs):
        ev.env[arg] = ev.get(v)
    return ev.run_block(block)[0]


# ------------------------------------------------------------------------------ entry


def find_main(module_or_func: ModuleOp | FuncOp) -> FuncOp:
    """`@main` of a module (or the function itself)."""
    if isinstance(module_or_func, FuncOp):
        return module_or_func
    for op in module_or_func.walk():
        if isinstance(op, FuncOp) and op.sym_name.data == "main":
            return op
    raise ValueError("nn_tensor_eval: the module has no func.func @main")


def eval_op(
    op: Operation, operands: Sequence[np.ndarray], dtype: Any = np.float64
) -> list[np.ndarray]:
    """The results of one op on concrete operand values (one array per operand).

    The rules `evaluate` runs: float operands are computed in `dtype`, results come back in
    their types' numpy dtypes (floats in `dtype`; the caller rounds them to the element type).
    Raises as the op's rule does (ZeroDivisionError, IndexError, ValueError, see the module
    docstring), NotImplementedError for an op with no rule.
    """
    ev = _Evaluator({}, np.dtype(dtype))
    for v, a in zip(op.operands, operands, strict=True):
        ev.env[v] = np.asarray(a).astype(_result_dtype(v, ev.fdt), copy=False)
    return ev.run_op(op)


def evaluate(
    module_or_func: ModuleOp | FuncOp,
    inputs: Sequence[np.ndarray],
    weights: Mapping[str, np.ndarray],
    dtype: Any = np.float64,
) -> list[np.ndarray]:
    """Run @main on `inputs` (one array per argument) with `weights` (by key).

    Float tensors are computed in `dtype`; results come back in it (ints as int64/int32,
    i1 as bool). Raises ShapeError if the inputs do not match @main's argument types.
    """
    func = find_main(module_or_func)
    fdt = np.dtype(dtype)
    args = func.body.block.args
    if len(inputs) != len(args):
        raise ShapeError(f"@main takes {len(args)} inputs, got {len(inputs)}")
    ev = _Evaluator(weights, fdt)
    for i, (arg, x) in enumerate(zip(args, inputs)):
        a = np.asarray(x)
        if a.shape != _shape(arg):
            raise ShapeError(f"input {i} has shape {a.shape}, @main expects {_shape(arg)}")
        want = _result_dtype(arg, fdt)
        if (a.dtype.kind == "f") != (want.kind == "f") or (want == np.bool_) != (a.dtype == np.bool_):
            raise ShapeError(f"input {i} has dtype {a.dtype}, @main expects {arg.type}")
        ev.env[arg] = a.astype(want)
    return ev.run_block(func.body.block)
