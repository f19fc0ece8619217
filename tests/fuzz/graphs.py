"""A hypothesis generator of random ONNX graphs over the ops nnjit imports.

`graphs()` is a strategy of `FuzzGraph`: an onnx.ModelProto plus the input arrays to run it
on. A graph starts from one or two float inputs of ragged shapes (1, 3, 5, 7, 17, 33, ...)
and grows by 1 to `max_steps` steps; each step applies one op family to a live tensor:

- elementwise: unary math (Sqrt, Log, Exp, Erf, Tanh, Sigmoid, Reciprocal, Gelu, ...), binary
  ops with broadcasting against constants, new inputs or other live tensors, Clip, Where
  over comparisons of inputs, IsNaN masking;
- contractions: MatMul (+ bias + activation, the fusion pattern), batched MatMul, Gemm, Conv;
- normalisation: Softmax on any axis (with the attention scale + mask pattern), the
  LayerNormalization op and its decomposed form, ReduceSum/Mean/Max over random axes;
- data movement: Transpose, Reshape (with 0 and -1), Flatten, (Un)Squeeze, Slice (negative
  starts and steps), Concat, Split, Gather (constant or run-time indices), Expand, Cast.

Axes are drawn in both encodings (negative and positive). Input values are drawn last, with
a seed from hypothesis (fresh values per example): normal at a random scale, and in some
graphs NaN, +-inf, +-0 and large or tiny values at random positions.

Values that would make the comparison ill-posed are kept out by construction (see
tests/test_fuzz.py for the tolerance): comparisons (Less, Equal, ...) read only graph
inputs (exact values, so no rounding can flip a bool), and large values stay below 1e15 so
that no finite sum overflows in an order-dependent way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

DIMS = (1, 2, 3, 4, 5, 7, 8, 16, 17, 33)
MAX_ELEMS = 2048  # per tensor, to keep kernels and compiles small
OPSETS = (17, 18, 20)
FLOAT = TensorProto.FLOAT

# Graphs holding one of these ops get no NaN or inf inputs (from which NaN arises inside:
# inf - inf in a layer norm), and ReduceMax's input passes Where(IsNaN(x), -7, x) first (NaN
# also comes from Sqrt(-1) and the like). ReduceMax: onnxruntime (1.31, CPU) deviates from the
# ONNX spec, where any NaN makes the result NaN (onnx.reference and numpy agree): its result
# depends on where the NaN is (ReduceMax([nan, 1, 2, 3]) = nan but ReduceMax([1, 2, 3, nan])
# = 3), so it is no reference there.
NAN_UNSAFE_OPS: frozenset[str] = frozenset(("ReduceMax",))


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: int = FLOAT
    raw: bool = False  # a graph input, unchanged (exact values)


@dataclass
class FuzzGraph:
    model: onnx.ModelProto
    feeds: dict[str, np.ndarray]
    steps: list[str] = field(default_factory=list)

    def describe(self) -> str:
        g = self.model.graph
        ins = ", ".join(f"{i.name}{tuple(d.dim_value for d in i.type.tensor_type.shape.dim)}"
                        for i in g.input)
        return f"opset {self.model.opset_import[0].version}; inputs {ins}; steps {self.steps}"


class _Builder:
    def __init__(self, draw: Any, opset: int):
        self.draw = draw
        self.opset = opset
        self.nodes: list[onnx.NodeProto] = []
        self.inputs: list[Tensor] = []
        self.inits: list[onnx.TensorProto] = []
        self.live: list[Tensor] = []
        self.steps: list[str] = []
        self.index_inputs: dict[str, int] = {}  # int64 input -> exclusive bound
        self.bool_inputs: list[str] = []  # float inputs drawn as 0/1 (masks)
        self.compared_inputs: list[str] = []  # float inputs drawn from a small set
        self._n = 0

    # ------------------------------------------------------------------ plumbing

    def fresh(self, prefix: str = "t") -> str:
        self._n += 1
        return f"{prefix}{self._n}"

    def node(self, op: str, ins: list[str], n_out: int = 1, **attrs: Any) -> list[str]:
        outs = [self.fresh() for _ in range(n_out)]
        self.nodes.append(helper.make_node(op, ins, outs, **attrs))
        return outs

    def const(self, array: np.ndarray, prefix: str = "c") -> str:
        name = self.fresh(prefix)
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def ints(self, values: list[int]) -> str:
        return self.const(np.array(values, dtype=np.int64), "i")

    def weight(self, shape: tuple[int, ...], scale: float | None = None) -> str:
        rng = np.random.default_rng(self.draw(st.integers(0, 2**32 - 1)))
        if scale is None:
            scale = 1.0 / math.sqrt(max(1, shape[0] if shape else 1))
        return self.const((rng.standard_normal(shape) * scale).astype(np.float32), "w")

    def new_input(self, shape: tuple[int, ...], dtype: int = FLOAT) -> Tensor:
        t = Tensor(self.fresh("x"), tuple(shape), dtype, raw=True)
        self.inputs.append(t)
        return t

    def add(self, name: str, shape: tuple[int, ...], dtype: int = FLOAT) -> Tensor:
        t = Tensor(name, tuple(shape), dtype)
        self.live.append(t)
        return t

    # ------------------------------------------------------------------ drawing

    def shape(self, min_rank: int = 1, max_rank: int = 4) -> tuple[int, ...]:
        rank = self.draw(st.integers(min_rank, max_rank))
        dims = [self.draw(st.sampled_from(DIMS)) for _ in range(rank)]
        while math.prod(dims) > MAX_ELEMS:
            dims[dims.index(max(dims))] = 1
        return tuple(dims)

    def axis(self, rank: int) -> int:
        """An axis in [0, rank), in either encoding."""
        a = self.draw(st.integers(0, rank - 1))
        return a - rank if self.draw(st.booleans()) else a

    def broadcast_partner(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """A shape that broadcasts with `shape` to `shape` or to a shape one rank higher."""
        rank = len(shape)
        keep = self.draw(st.integers(0, rank))
        tail = [d if self.draw(st.booleans()) else 1 for d in shape[rank - keep:]]
        if rank < 4 and self.draw(st.integers(0, 5)) == 0 and math.prod(shape) * 3 <= MAX_ELEMS:
            return (3, *([1] * (rank - keep)), *tail)
        return tuple(tail)


def _bcast(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(np.broadcast_shapes(a, b))


# ------------------------------------------------------------------------- op families

UNARY = ("Sqrt", "Erf", "Tanh", "Exp", "Log", "Reciprocal", "Relu", "Sigmoid", "Neg", "Abs")
BINARY = ("Add", "Sub", "Mul", "Div", "Pow", "Max", "Min")
COMPARE = ("Less", "Greater", "Equal", "LessOrEqual", "GreaterOrEqual")


def _guard(b: _Builder, x: Tensor) -> str:
    """x, or |x| + 0.5 for a computed x: the input of an op whose derivative is unbounded near
    0 (Sqrt, Log, Reciprocal, division, fractional or negative powers). Those ops turn an
    absolute error of 1e-15 near 0 (within any tolerance) into an O(1e-4) one; on graph
    inputs (exact values) they run unguarded, so NaN from Sqrt(-1) and inf from 1/0 stay."""
    if x.raw:
        return x.name
    a = b.node("Abs", [x.name])[0]
    return b.node("Add", [a, b.const(np.array(0.5, np.float32))])[0]


SINGULAR = ("Sqrt", "Log", "Reciprocal")


def _unary(b: _Builder, x: Tensor) -> Tensor:
    ops = UNARY + (("Gelu",) if b.opset >= 20 else ())
    op = b.draw(st.sampled_from(ops))
    b.steps.append(op)
    src = _guard(b, x) if op in SINGULAR else x.name
    return b.add(b.node(op, [src])[0], x.shape)


def _binary(b: _Builder, x: Tensor) -> Tensor:
    op = b.draw(st.sampled_from(BINARY + ("Sum",)))
    kind = b.draw(st.sampled_from(("const", "input", "live", "self")))
    if kind == "self" and op in ("Sub", "Div"):
        # x - x and x / x: lavapipe folds them to 0 and 1 (WGSL lets a driver assume no NaN
        # or inf), so inf - inf is 0 on WebGPU: a WebGPU limitation (tests/fuzz/harness.py)
        kind = "const"
    if op == "Pow" and kind != "self":
        e = b.draw(st.sampled_from((2.0, 3.0, 0.5, -1.0, 1.5, 0.0, -2.0)))
        if x.raw and e in (0.5, -0.5):
            # nnjit takes x^0.5 as sqrt(x) (NaN at -inf, where C's pow and onnxruntime give
            # +inf): a documented deviation at -inf only, kept out of raw inputs
            e = 1.5
        other = b.const(np.array(e, dtype=np.float32))
        b.steps.append(f"Pow^{e}")
        base = x.name if e in (2.0, 3.0, 0.0) else _guard(b, x)
        return b.add(b.node("Pow", [base, other])[0], x.shape)
    if kind == "const":
        pshape = b.broadcast_partner(x.shape)
        other, oshape = b.weight(pshape, scale=1.0), pshape
        if op == "Div":  # keep constant divisors away from 0
            other = b.const(np.full(pshape, b.draw(st.sampled_from((0.5, -3.0, 7.0))), np.float32))
    elif kind == "input":
        t = b.new_input(b.broadcast_partner(x.shape))
        other, oshape = t.name, t.shape
    elif kind == "live":
        cands = [t for t in b.live if t is not x and t.dtype == FLOAT
                 and _compatible(t.shape, x.shape)]
        if not cands:
            return _unary(b, x)
        t = b.draw(st.sampled_from(cands))
        other, oshape = t.name, t.shape
    else:
        other, oshape = x.name, x.shape
    if op in ("Div", "Pow") and kind != "const":
        other = _guard(b, Tensor(other, oshape, raw=kind == "input"))
    ins = [x.name, other]
    if op == "Sum" and b.draw(st.booleans()):
        ins.append(x.name)
    b.steps.append(f"{op}({kind})")
    return b.add(b.node(op, ins)[0], _bcast(x.shape, oshape))


def _compatible(a: tuple[int, ...], b_: tuple[int, ...]) -> bool:
    try:
        out = _bcast(a, b_)
    except ValueError:
        return False
    return math.prod(out) <= MAX_ELEMS


def _activation(b: _Builder, x: Tensor) -> Tensor:
    kind = b.draw(st.sampled_from(("none", "Relu", "Tanh", "Sigmoid", "gelu_erf", "gelu_tanh")))
    if kind == "gelu_tanh" and not x.shape:
        # onnxruntime's FastGelu fusion fails on a 0-d tensor ("Input 0 is expected to have
        # 1 or more dimensions"), an onnxruntime limitation
        kind = "gelu_erf"
    b.steps.append(kind)
    if kind == "none":
        return x
    if kind in ("Relu", "Tanh", "Sigmoid"):
        return b.add(b.node(kind, [x.name])[0], x.shape)
    if kind == "gelu_erf":  # x * 0.5 * (1 + erf(x / sqrt(2))), as torch exports it
        d = b.node("Div", [x.name, b.const(np.array(math.sqrt(2.0), np.float32))])[0]
        e = b.node("Erf", [d])[0]
        p = b.node("Add", [e, b.const(np.array(1.0, np.float32))])[0]
        m = b.node("Mul", [x.name, p])[0]
        return b.add(b.node("Mul", [m, b.const(np.array(0.5, np.float32))])[0], x.shape)
    # 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))
    c3 = b.node("Pow", [x.name, b.const(np.array(3.0, np.float32))])[0]
    a = b.node("Mul", [c3, b.const(np.array(0.044715, np.float32))])[0]
    s = b.node("Add", [x.name, a])[0]
    t = b.node("Tanh", [b.node("Mul", [s, b.const(np.array(math.sqrt(2 / math.pi), np.float32))])[0]])[0]
    p = b.node("Add", [t, b.const(np.array(1.0, np.float32))])[0]
    h = b.node("Mul", [b.const(np.array(0.5, np.float32)), x.name])[0]
    return b.add(b.node("Mul", [h, p])[0], x.shape)


def _matmul(b: _Builder, x: Tensor) -> Tensor:
    k = x.shape[-1]
    n = b.draw(st.sampled_from(DIMS))
    while math.prod(x.shape[:-1]) * n > MAX_ELEMS and n > 1:
        n //= 2
    kind = b.draw(st.sampled_from(("weight", "weight", "batched", "gemm")))
    if kind == "gemm" and len(x.shape) == 2:
        m = x.shape[0]
        trans_b = b.draw(st.integers(0, 1))
        w = b.weight((n, k) if trans_b else (k, n), scale=1 / math.sqrt(k))
        ins = [x.name, w]
        cshape = b.draw(st.sampled_from(((n,), (1, n), (m, n), ())))
        if b.draw(st.booleans()):
            ins.append(b.weight(cshape, scale=1.0))
        alpha = b.draw(st.sampled_from((1.0, 0.5)))
        beta = b.draw(st.sampled_from((1.0, 2.0)))
        b.steps.append(f"Gemm(transB={trans_b}, C={len(ins) == 3})")
        y = b.add(b.node("Gemm", ins, transB=trans_b, alpha=alpha, beta=beta)[0], (m, n))
        return _activation(b, y)
    if kind == "batched" and len(x.shape) >= 2:
        other = b.new_input((*b.broadcast_partner(x.shape[:-2]), k, n))
        out = (*_bcast(x.shape[:-2], other.shape[:-2]), x.shape[-2], n)
        if math.prod(out) > MAX_ELEMS:
            return _unary(b, x)
        b.steps.append(f"MatMul(batched {other.shape})")
        return b.add(b.node("MatMul", [x.name, other.name])[0], out)
    vec = b.draw(st.integers(0, 4)) == 0
    w = b.weight((k,) if vec else (k, n))
    b.steps.append("MatMul(vector)" if vec else "MatMul(weight)")
    y = b.add(b.node("MatMul", [x.name, w])[0], x.shape[:-1] if vec else (*x.shape[:-1], n))
    if not vec and b.draw(st.booleans()):
        y = b.add(b.node("Add", [y.name, b.weight((n,), scale=1.0)])[0], y.shape)
        b.steps.append("+bias")
    return _activation(b, y)


def _conv(b: _Builder, x: Tensor) -> Tensor:
    if len(x.shape) < 2 or x.shape[-1] < 2 or x.shape[-2] < 2:
        return _matmul(b, x)
    n, c, h, w = (1, 1, 1, *x.shape)[-4:]
    src = x.name if len(x.shape) == 4 else b.node("Reshape", [x.name, b.ints([n, c, h, w])])[0]
    group = c if c > 1 and b.draw(st.booleans()) else 1
    cout = group * b.draw(st.sampled_from((1, 2, 3)))
    kh = b.draw(st.integers(1, min(3, h)))
    kw = b.draw(st.integers(1, min(3, w)))
    stride = [b.draw(st.integers(1, 2)) for _ in range(2)]
    dil = [b.draw(st.integers(1, 2)) if (kh - 1) * 2 < h and (kw - 1) * 2 < w else 1 for _ in range(2)]
    pads = [b.draw(st.integers(0, 1)) for _ in range(4)]
    oh = (h + pads[0] + pads[2] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (w + pads[1] + pads[3] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    if oh < 1 or ow < 1 or n * cout * oh * ow > MAX_ELEMS:
        return _unary(b, x)
    ins = [src, b.weight((cout, c // group, kh, kw), scale=1 / math.sqrt(c // group * kh * kw))]
    if b.draw(st.booleans()):
        ins.append(b.weight((cout,), scale=1.0))
    b.steps.append(f"Conv(k={kh}x{kw} s={stride} d={dil} p={pads} g={group})")
    out = b.node("Conv", ins, kernel_shape=[kh, kw], strides=stride, dilations=dil, pads=pads,
                 group=group)[0]
    return b.add(out, (n, cout, oh, ow))


def _softmax(b: _Builder, x: Tensor) -> Tensor:
    src = x
    if b.draw(st.booleans()):  # attention: scores * scale + mask
        s = b.node("Mul", [x.name, b.const(np.array(0.125, np.float32))])[0]
        mshape = b.broadcast_partner(x.shape)
        if b.draw(st.booleans()):  # (1 - mask) * -10000 from a 0/1 input
            mask = b.new_input(mshape)
            b.bool_inputs.append(mask.name)  # drawn as 0/1
            inv = b.node("Sub", [b.const(np.array(1.0, np.float32)), mask.name])[0]
            add = b.node("Mul", [inv, b.const(np.array(-10000.0, np.float32))])[0]
        else:  # the lowest f32 where a bool input is false (transformers' finfo.min; -inf
            # constants are a WebGPU limitation, see tests/fuzz/harness.py)
            cond = b.new_input(mshape, TensorProto.BOOL)
            add = b.node("Where", [cond.name, b.const(np.array(0.0, np.float32)),
                                   b.const(np.array(np.finfo(np.float32).min, np.float32))])[0]
        src = b.add(b.node("Add", [s, add])[0], _bcast(x.shape, mshape))
        b.steps.append("scale+mask")
    ax = b.axis(len(src.shape))
    b.steps.append(f"Softmax({ax})")
    return b.add(b.node("Softmax", [src.name], axis=ax)[0], src.shape)


def _layer_norm(b: _Builder, x: Tensor) -> Tensor:
    # (not BERT's 1e-12: over a near-constant row, a softmax of a masked row say, it lets the
    # normalisation amplify float32 rounding past any fixed tolerance)
    eps = b.draw(st.sampled_from((1e-5, 1e-6, 1e-3)))
    # over one element, x - mean(x) is x - x, which lavapipe folds to 0 (WGSL lets a driver
    # assume no NaN or inf), so a NaN or inf input gives 0 on WebGPU: a WebGPU limitation
    # (tests/fuzz/harness.py), kept out
    if x.shape[-1] == 1:
        return _unary(b, x)
    if b.draw(st.booleans()):
        ax = b.axis(len(x.shape))
        norm = x.shape[ax:] if ax >= 0 else x.shape[len(x.shape) + ax:]
        ins = [x.name, b.weight(norm, scale=1.0)]
        if b.draw(st.booleans()):
            ins.append(b.weight(norm, scale=1.0))
        b.steps.append(f"LayerNormalization({ax}, eps={eps})")
        return b.add(b.node("LayerNormalization", ins, axis=ax, epsilon=eps)[0], x.shape)
    # decomposed, as the legacy torch exporter writes it (recognised by nn-tensor-fold)
    n = x.shape[-1]
    mean = _reduce_node(b, "ReduceMean", x.name, [-1], 1)
    d = b.node("Sub", [x.name, mean])[0]
    sq = b.node("Pow", [d, b.const(np.array(2.0, np.float32))])[0]
    var = _reduce_node(b, "ReduceMean", sq, [-1], 1)
    std = b.node("Sqrt", [b.node("Add", [var, b.const(np.array(eps, np.float32))])[0]])[0]
    y = b.node("Div", [d, std])[0]
    y = b.node("Mul", [y, b.weight((n,), scale=1.0)])[0]
    y = b.node("Add", [y, b.weight((n,), scale=1.0)])[0]
    b.steps.append(f"layer-norm pattern(eps={eps})")
    return b.add(y, x.shape)


def _reduce_node(b: _Builder, op: str, x: str, axes: list[int] | None, keep: int) -> str:
    attrs: dict[str, Any] = {"keepdims": keep}
    if axes is None:
        return b.node(op, [x], **attrs)[0]
    if op == "ReduceSum" or b.opset >= 18:
        return b.node(op, [x, b.ints(axes)], **attrs)[0]
    return b.node(op, [x], axes=axes, **attrs)[0]


def _reduce(b: _Builder, x: Tensor) -> Tensor:
    op = b.draw(st.sampled_from(("ReduceSum", "ReduceMean", "ReduceMax")))
    rank = len(x.shape)
    src = x.name
    if op == "ReduceMax":  # no NaN into it, from inputs or computed (see NAN_UNSAFE_OPS)
        nan = b.node("IsNaN", [x.name])[0]
        src = b.node("Where", [nan, b.const(np.array(-7.0, np.float32)), x.name])[0]
    chosen = sorted(set(b.draw(st.lists(st.integers(0, rank - 1), min_size=1, max_size=rank))))
    every = b.draw(st.integers(0, 5)) == 0
    axes = None if every else [a - rank if b.draw(st.booleans()) else a for a in chosen]
    keep = b.draw(st.integers(0, 1))
    if every:
        chosen = list(range(rank))
    shape = tuple(1 if i in chosen else d for i, d in enumerate(x.shape) if keep or i not in chosen)
    b.steps.append(f"{op}({axes}, keepdims={keep})")
    return b.add(_reduce_node(b, op, src, axes, keep), shape)


def _factor_shape(b: _Builder, n: int) -> list[int]:
    dims = []
    while n > 1 and len(dims) < 3:
        divs = [d for d in range(2, n + 1) if n % d == 0]
        d = b.draw(st.sampled_from(divs))
        dims.append(d)
        n //= d
    if n > 1:
        dims.append(n)
    b.draw(st.randoms(use_true_random=False)).shuffle(dims)
    return dims or [1]


def _movement(b: _Builder, x: Tensor) -> Tensor:
    rank = len(x.shape)
    op = b.draw(st.sampled_from(("Transpose", "Reshape", "Flatten", "Unsqueeze", "Squeeze",
                                 "Slice", "Concat", "Split", "Gather", "Expand", "ShapeReshape",
                                 "GatherND")))
    if op == "Transpose" and rank >= 2:
        perm = b.draw(st.permutations(list(range(rank))))
        b.steps.append(f"Transpose{tuple(perm)}")
        return b.add(b.node("Transpose", [x.name], perm=perm)[0], tuple(x.shape[p] for p in perm))
    if op == "Reshape":
        target = _factor_shape(b, math.prod(x.shape))
        spec = list(target)
        if b.draw(st.booleans()):
            spec[b.draw(st.integers(0, len(spec) - 1))] = -1
        for i in range(min(len(spec), rank)):
            if spec[i] == x.shape[i] and b.draw(st.booleans()):
                spec[i] = 0
        b.steps.append(f"Reshape{tuple(spec)}")
        return b.add(b.node("Reshape", [x.name, b.ints(spec)])[0], tuple(target))
    if op == "ShapeReshape" and rank >= 2:  # a shape sub-graph (folded at import)
        k = b.draw(st.integers(1, rank - 1))
        head = b.node("Shape", [x.name], end=k)[0]
        if b.draw(st.booleans()):  # Size / prod(head) in place of -1
            size = b.node("Size", [x.name])[0]
            prod = b.node("ReduceProd", [head], keepdims=1)[0]
            tail = b.node("Div", [b.node("Reshape", [size, b.ints([1])])[0], prod])[0]
        else:
            tail = b.ints([-1])
        target = b.node("Concat", [head, tail], axis=0)[0]
        b.steps.append(f"Reshape(Shape[:{k}], -1)")
        return b.add(b.node("Reshape", [x.name, target])[0],
                     (*x.shape[:k], math.prod(x.shape[k:])))
    if op == "GatherND" and rank >= 2:
        depth = b.draw(st.integers(1, min(2, rank)))
        n = b.draw(st.sampled_from((1, 2, 3)))
        rng = np.random.default_rng(b.draw(st.integers(0, 2**32 - 1)))
        idx = np.stack([rng.integers(0, x.shape[d], size=n) for d in range(depth)], -1)
        out = (n, *x.shape[depth:])
        b.steps.append(f"GatherND(depth {depth}, {n} rows)")
        return b.add(b.node("GatherND", [x.name, b.const(idx.astype(np.int64), "i")])[0], out)
    if op == "Flatten":
        ax = b.draw(st.integers(-rank, rank))
        a = ax + rank if ax < 0 else ax
        b.steps.append(f"Flatten({ax})")
        return b.add(b.node("Flatten", [x.name], axis=ax)[0],
                     (math.prod(x.shape[:a]), math.prod(x.shape[a:])))
    if op == "Unsqueeze" and rank < 4:
        a = b.draw(st.integers(-(rank + 1), rank))
        pos = a + rank + 1 if a < 0 else a
        shape = (*x.shape[:pos], 1, *x.shape[pos:])
        b.steps.append(f"Unsqueeze({a})")
        return b.add(b.node("Unsqueeze", [x.name, b.ints([a])])[0], shape)
    if op == "Squeeze" and 1 in x.shape and rank > 1:
        ones = [i for i, d in enumerate(x.shape) if d == 1]
        i = b.draw(st.sampled_from(ones))
        a = i - rank if b.draw(st.booleans()) else i
        b.steps.append(f"Squeeze({a})")
        return b.add(b.node("Squeeze", [x.name, b.ints([a])])[0],
                     tuple(d for j, d in enumerate(x.shape) if j != i))
    if op == "Slice":
        return _slice(b, x)
    if op == "Concat":
        ax = b.axis(rank)
        a = ax % rank
        kind = b.draw(st.sampled_from(("self", "input", "unary")))
        if kind == "input":
            shape = tuple(b.draw(st.sampled_from((1, 2, 5))) if i == a else d
                          for i, d in enumerate(x.shape))
            other = b.new_input(shape).name
        elif kind == "unary":
            shape, other = x.shape, b.node("Tanh", [x.name])[0]
        else:
            shape, other = x.shape, x.name
        out = tuple(d + shape[i] if i == a else d for i, d in enumerate(x.shape))
        if math.prod(out) > MAX_ELEMS:
            return _unary(b, x)
        ins = [other, x.name] if b.draw(st.booleans()) else [x.name, other]
        b.steps.append(f"Concat({ax}, {kind})")
        return b.add(b.node("Concat", ins, axis=ax)[0], out)
    if op == "Split":
        ax = b.axis(rank)
        dim = x.shape[ax]
        if dim < 2:
            return _slice(b, x)
        cut = b.draw(st.integers(1, dim - 1))
        sizes = [cut, dim - cut]
        if b.opset >= 18 and b.draw(st.booleans()):
            outs = b.node("Split", [x.name], n_out=2, axis=ax, num_outputs=2)
            half = -(-dim // 2)
            sizes = [half, dim - half]
        else:
            outs = b.node("Split", [x.name, b.ints(sizes)], n_out=2, axis=ax)
        pick = b.draw(st.integers(0, 1))
        a = ax % rank
        b.steps.append(f"Split({ax}, {sizes})[{pick}]")
        if sizes[pick] == 0:
            pick = 0
        return b.add(outs[pick], tuple(sizes[pick] if i == a else d for i, d in enumerate(x.shape)))
    if op == "Gather":
        ax = b.axis(rank)
        dim = x.shape[ax]
        ishape = b.draw(st.sampled_from(((), (3,), (2, 2), (1,))))
        out = (*x.shape[:ax % rank], *ishape, *x.shape[ax % rank + 1:])
        if math.prod(out) > MAX_ELEMS:
            return _unary(b, x)
        if b.draw(st.booleans()):
            rng = np.random.default_rng(b.draw(st.integers(0, 2**32 - 1)))
            idx = b.const(rng.integers(-dim, dim, size=ishape).astype(np.int64), "i")
            kind = "const"
        else:
            t = b.new_input(ishape, TensorProto.INT64)
            b.index_inputs[t.name] = dim
            idx, kind = t.name, "input"
        b.steps.append(f"Gather({ax}, {kind} {ishape})")
        return b.add(b.node("Gather", [x.name, idx], axis=ax)[0], out)
    if op == "Expand":
        target = b.broadcast_partner(x.shape)
        lead = (3,) if rank < 4 and math.prod(x.shape) * 3 <= MAX_ELEMS else ()
        target = (*lead, *[d for d in x.shape])
        spec = list(target)
        # ones in the target keep the input's dim
        for i in range(len(lead), len(spec)):
            if b.draw(st.integers(0, 3)) == 0:
                spec[i] = 1
        b.steps.append(f"Expand{tuple(spec)}")
        return b.add(b.node("Expand", [x.name, b.ints(spec)])[0], _bcast(x.shape, tuple(spec)))
    return _unary(b, x)


def _slice(b: _Builder, x: Tensor) -> Tensor:
    rank = len(x.shape)
    n_ax = b.draw(st.integers(1, rank))
    axes = b.draw(st.permutations(list(range(rank))))[:n_ax]
    starts, ends, steps, shape = [], [], [], list(x.shape)
    for a in axes:
        dim = x.shape[a]
        step = b.draw(st.sampled_from((1, 1, 2, -1, -2, 3)))
        s = b.draw(st.integers(-dim - 2, dim + 1))
        e = b.draw(st.sampled_from((b.draw(st.integers(-dim - 2, dim + 1)), 2**62, -(2**62))))
        size = len(range(dim)[slice(s, e, step)])
        if size == 0:  # nnjit has no empty tensors: take the whole axis instead
            s, e, step = 0, dim, 1
            size = dim
        starts.append(s)
        ends.append(e)
        steps.append(step)
        shape[a] = size
    enc = [a - rank if b.draw(st.booleans()) else a for a in axes]
    b.steps.append(f"Slice(starts={starts} ends={ends} axes={enc} steps={steps})")
    ins = [x.name, b.ints(starts), b.ints(ends), b.ints(enc), b.ints(steps)]
    return b.add(b.node("Slice", ins)[0], tuple(shape))


def _where(b: _Builder, x: Tensor) -> Tensor:
    kind = b.draw(st.sampled_from(("compare", "isnan", "castmask", "clip")))
    if kind == "clip":
        lo = b.draw(st.sampled_from((None, -1.0, 0.0, -0.5)))
        hi = b.draw(st.sampled_from((None, 1.0, 6.0, 0.5)))
        ins = [x.name, "" if lo is None else b.const(np.array(lo, np.float32)),
               "" if hi is None else b.const(np.array(hi, np.float32))]
        while ins[-1] == "":
            ins.pop()
        b.steps.append(f"Clip({lo}, {hi})")
        return b.add(b.node("Clip", ins)[0], x.shape)
    if kind == "isnan":
        m = b.node("IsNaN", [x.name])[0]
        b.steps.append("Where(IsNaN)")
        return b.add(b.node("Where", [m, b.const(np.array(0.0, np.float32)), x.name])[0], x.shape)
    # a bool from comparing two graph inputs (exact values: no rounding flips it)
    pshape = b.broadcast_partner(x.shape)
    p = b.new_input(pshape)
    q = b.new_input(b.broadcast_partner(pshape))
    b.compared_inputs.extend([p.name, q.name])
    op = b.draw(st.sampled_from(COMPARE))
    cshape = _bcast(pshape, q.shape)
    if not _compatible(x.shape, cshape):
        return _unary(b, x)
    c = b.node(op, [p.name, q.name])[0]
    logic = b.draw(st.sampled_from(("none", "Not", "And", "Or")))
    if logic == "Not":
        c = b.node("Not", [c])[0]
    elif logic != "none":
        c = b.node(logic, [c, b.node("Less", [q.name, p.name])[0]])[0]
    if kind == "castmask":
        f = b.node("Cast", [c], to=FLOAT)[0]
        b.steps.append(f"{op}->Cast*")
        return b.add(b.node("Mul", [x.name, f])[0], _bcast(x.shape, cshape))
    other = b.weight(x.shape, scale=1.0) if b.draw(st.booleans()) else x.name
    b.steps.append(f"Where({op})")
    ins = [c, x.name, other] if b.draw(st.booleans()) else [c, other, x.name]
    return b.add(b.node("Where", ins)[0], _bcast(x.shape, cshape))


def _misc(b: _Builder, x: Tensor) -> Tensor:
    op = b.draw(st.sampled_from(("Identity", "Dropout", "CastRound", "CastLike")))
    b.steps.append(op)
    if op == "CastRound":  # float -> float is a no-op cast
        return b.add(b.node("Cast", [x.name], to=FLOAT)[0], x.shape)
    if op == "CastLike":
        return b.add(b.node("CastLike", [x.name, b.const(np.zeros((), np.float32))])[0], x.shape)
    if op == "Dropout":
        return b.add(b.node("Dropout", [x.name])[0], x.shape)
    return b.add(b.node("Identity", [x.name])[0], x.shape)


FAMILIES = {
    "unary": _unary,
    "binary": _binary,
    "matmul": _matmul,
    "conv": _conv,
    "softmax": _softmax,
    "layer_norm": _layer_norm,
    "reduce": _reduce,
    "movement": _movement,
    "where": _where,
    "misc": _misc,
}
WEIGHTS = {"unary": 3, "binary": 4, "matmul": 3, "conv": 1, "softmax": 2, "layer_norm": 2,
           "reduce": 2, "movement": 5, "where": 2, "misc": 1}
_FAMILY_LIST = [f for f, w in WEIGHTS.items() for _ in range(w)]


# ------------------------------------------------------------------------------ values

SPECIALS = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e15, -1e15, 1e-30, 1e4], np.float32)


# Graphs holding one of these ops get large values of 1e6 at most, not 1e15: their kernels
# compute a prologue (scale, mask, x - mean) again in each pass over a row, and lavapipe may
# contract or reassociate each copy differently (WGSL allows it); at 1e15 next to a -1e4 mask
# the copies of the row max differ by an ulp of 1e14, exp(max - max) is 0 instead of 1 and
# the row 0/0 = NaN on WebGPU. A WebGPU driver limitation, kept out.
RECOMPUTING_OPS = frozenset(("Softmax", "LayerNormalization", "ReduceMean"))


def _values(rng: np.random.Generator, shape: tuple[int, ...], scale: float, specials: float,
            allow_nan: bool, big: float = 1e15) -> np.ndarray:
    a = np.asarray(rng.standard_normal(shape) * scale, dtype=np.float32)
    if specials > 0 and a.size:
        pool = SPECIALS if allow_nan else SPECIALS[3:]
        pool = np.where(np.abs(pool) == np.float32(1e15), np.copysign(big, pool), pool)
        hit = rng.random(shape) < specials
        a[hit] = rng.choice(pool, size=int(hit.sum()))
    return a


@st.composite
def graphs(draw: Any, max_steps: int = 5) -> FuzzGraph:
    opset = draw(st.sampled_from(OPSETS))
    b = _Builder(draw, opset)
    x = b.new_input(b.shape())
    b.live.append(x)
    if draw(st.booleans()):
        b.live.append(b.new_input(b.shape()))
    for _ in range(draw(st.integers(1, max_steps))):
        family = draw(st.sampled_from(_FAMILY_LIST))
        src = b.live[-1] if draw(st.integers(0, 3)) else draw(st.sampled_from(b.live))
        if src.dtype != FLOAT or not src.shape and family in ("matmul", "softmax", "layer_norm",
                                                             "reduce", "movement", "conv"):
            family = "unary"
        FAMILIES[family](b, src)
    outs = [b.live[-1]]
    extra = [t for t in b.live[:-1] if not t.raw]
    if extra and draw(st.booleans()):
        outs.append(draw(st.sampled_from(extra)))
    if outs[0].raw:  # a graph input as output: route it through an op
        outs[0] = b.add(b.node("Neg", [outs[0].name])[0], outs[0].shape)

    ops_used = {n.op_type for n in b.nodes}
    # a grouped Conv is a group-1 Conv on a block-diagonal weight (nnjit/frontend/onnx_ops/contractions.py):
    # 0 * NaN and 0 * inf spread a non-finite input to every output channel (a known limit of
    # that design), so such graphs get no NaN or inf inputs either
    grouped = any(n.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in n.attribute)
                  for n in b.nodes)
    allow_nan = not (ops_used & NAN_UNSAFE_OPS) and not grouped
    specials = draw(st.sampled_from((0.0, 0.0, 0.05, 0.2)))
    scale = draw(st.sampled_from((1.0, 1.0, 0.01, 10.0)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    feeds: dict[str, np.ndarray] = {}
    for t in b.inputs:
        if t.dtype == TensorProto.BOOL:
            feeds[t.name] = np.asarray(rng.random(t.shape) < 0.7)
        elif t.dtype == TensorProto.INT64:
            n = b.index_inputs[t.name]
            feeds[t.name] = np.asarray(rng.integers(-n, n, size=t.shape), dtype=np.int64)
        elif t.name in b.bool_inputs:
            feeds[t.name] = np.asarray(rng.random(t.shape) < 0.7, dtype=np.float32)
        elif t.name in b.compared_inputs:  # a small set, so that Equal hits
            pool = np.array([-1.0, 0.0, 0.5, 2.0, np.nan if allow_nan else 0.0], np.float32)
            feeds[t.name] = np.asarray(rng.choice(pool, size=t.shape), dtype=np.float32)
        else:
            big = 1e6 if ops_used & RECOMPUTING_OPS else 1e15
            feeds[t.name] = _values(rng, t.shape, scale, specials, allow_nan, big)

    def info(t: Tensor) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(t.name, t.dtype, list(t.shape))

    outputs = []
    seen = set()
    for t in outs:
        if t.name not in seen:
            seen.add(t.name)
            outputs.append(helper.make_tensor_value_info(t.name, t.dtype, None))
    graph = helper.make_graph(b.nodes, "fuzz", [info(t) for t in b.inputs], outputs, b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return FuzzGraph(model, feeds, b.steps)
