"""Elementwise nn_tensor ops as scalar (or vector<4xf32>) arith/math code.

* `emit_elementwise(b, op, args)`: the arith/math ops computing ONE nn_tensor elementwise op
  on already-loaded values (f32; i32 for i32/i64 tensors; i1 for bools). erf, tanh (and
  GELU's erf), sin and cos stay math.erf / tanh / sin / cos: nn-loop-expand-math writes them
  as the target's approximations (nnjit/ir/approx.py).
* `emit_value_at(b, value, index, load_arg, overrides, vec)`: evaluates the elementwise
  expression DAG of a fused body that produces `value`, at one index of `value`'s shape,
  following numpy broadcasting down to the block arguments (loaded through `load_arg`).
* `can_vectorize(value, stop)`: whether that DAG can be computed on vector<4xf32>.
* `to_storage` / `from_storage`: i1 <-> i32 buffer elements.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from xdsl.builder import Builder
from xdsl.dialects import arith, math
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    FloatAttr,
    IndexType,
    IntegerAttr,
    VectorType,
    i64,
)
from xdsl.ir import Attribute, BlockArgument, Operation, SSAValue

from nnjit.dialects import nn_loop
from nnjit.dialects import nn_tensor as nt
from nnjit.errors import UnsupportedError
from nnjit.passes.lowering.common import (
    SAME,
    KernelBuilder,
    cmpf_op,
    cmpi_op,
    compute_type,
    constant_value,
    f32,
    i1,
    i32,
    make_op,
    vector_type,
)

LoadArg = Callable[[BlockArgument, list[SSAValue], int], SSAValue]
"""load_arg(arg, index, lanes) loads a fused block argument at an index of its shape: the
buffer element (f32 or i32), or for lanes > 1 the vector<lanes x T> of it and the elements
after it along the innermost dim (emit_value_at asks for lanes > 1 where the operand varies
along that dim)."""


# ------------------------------------------------------------------------------- helpers


def _const(b: Builder, value: float | int | bool, type_: Attribute) -> SSAValue:
    """A constant of `type_` (splat for vectors), cached when `b` is a KernelBuilder."""
    if isinstance(b, KernelBuilder):
        return b.const(value, type_)
    if isinstance(type_, VectorType):
        scalar = _const(b, value, type_.get_element_type())
        op: Operation = nn_loop.SplatOp(scalar, type_)
    elif type_ == f32:
        op = arith.ConstantOp(FloatAttr(float(value), f32))
    elif type_ == i1:
        op = arith.ConstantOp(IntegerAttr(-1 if value else 0, i1))
    else:
        op = arith.ConstantOp(IntegerAttr(int(value), type_))
    b.insert(op)
    return op.results[0]


def _emit(b: Builder, op: Operation) -> SSAValue:
    b.insert(op)
    return op.results[0]


def _mk(b: Builder, cls: type[Operation], *operands: SSAValue, type=SAME, **props) -> SSAValue:
    return _emit(b, make_op(cls, *operands, type=type, **props))


def _is_float(t: Attribute) -> bool:
    if isinstance(t, VectorType):
        t = t.get_element_type()
    return t == f32


def _index_value(b: Builder, i: int | SSAValue) -> SSAValue:
    if not isinstance(i, int):
        return i
    if isinstance(b, KernelBuilder):
        return b.index(i)
    return _emit(b, arith.ConstantOp(IntegerAttr(i, IndexType())))


def to_storage(b: Builder, v: SSAValue) -> SSAValue:
    """A computed value as a buffer element: i1 becomes i32 0/1 (extui); others unchanged."""
    if v.type == i1:
        return _mk(b, arith.ExtUIOp, v, type=i32)
    return v


def from_storage(b: Builder, v: SSAValue, tensor_elem: Attribute) -> SSAValue:
    """A loaded buffer element as the tensor's compute type: bools (stored as i32) != 0."""
    if tensor_elem == i1 and v.type == i32:
        return _emit(b, cmpi_op("ne", v, _const(b, 0, i32)))
    return v


# ---------------------------------------------------------------------------- one op


def _pow(b: Builder, x: SSAValue, y: SSAValue) -> SSAValue:
    c = constant_value(y)
    if _is_float(x.type):
        if c == 2:
            return _mk(b, arith.MulfOp, x, x)
        if c == 1:
            return x
        if c == 0.5:
            return _mk(b, math.SqrtOp, x)
        if c == 3:
            return _mk(b, arith.MulfOp, _mk(b, arith.MulfOp, x, x), x)
        if c == -1:
            return _mk(b, arith.DivfOp, _const(b, 1.0, x.type), x)
        if c == -0.5:
            return _mk(b, math.RsqrtOp, x)
        return _mk(b, math.PowFOp, x, y)
    if c is not None and int(c) == c and 0 <= c <= 8:
        acc = _const(b, 1, x.type)
        for _ in range(int(c)):
            acc = _mk(b, arith.MuliOp, acc, x)
        return acc
    raise UnsupportedError("nn_tensor.pow on integers needs a small constant exponent")


def _cast(b: Builder, x: SSAValue, dst: Attribute) -> SSAValue:
    """x (a scalar, or a vector of f32 / i32 lanes) as `dst`'s scalar type, lane by lane."""
    src = x.type
    if src == dst:
        return x
    if isinstance(src, VectorType):
        elem, shape = src.get_element_type(), src.get_shape()
        if elem == dst:  # (an integer cast between types that both live in i32 lanes)
            return x
        if (elem, dst) == (i32, f32):  # (also an integer matmul's accumulators)
            return _mk(b, nn_loop.SIToFPOp, x, type=VectorType(f32, shape))
        if (elem, dst) == (f32, i32):
            return _mk(b, nn_loop.FPToSIOp, x, type=VectorType(i32, shape))
        raise UnsupportedError(f"nn_tensor.cast from {src} to {dst} is not supported on vectors")
    if src == f32:
        if dst == i32:
            return _mk(b, arith.FPToSIOp, x, type=i32)
        if dst == i1:
            return _emit(b, cmpf_op("une", x, _const(b, 0.0, f32)))
    if src == i32:
        if dst == f32:
            return _mk(b, arith.SIToFPOp, x, type=f32)
        if dst == i1:
            return _emit(b, cmpi_op("ne", x, _const(b, 0, i32)))
    if src == i1:
        if dst == f32:
            return _mk(b, arith.SelectOp, x, _const(b, 1.0, f32), _const(b, 0.0, f32), type=f32)
        if dst == i32:
            return _mk(b, arith.ExtUIOp, x, type=i32)
    raise UnsupportedError(f"nn_tensor.cast from {src} to {dst} is not supported")


_FLOAT_BIN = {
    nt.AddOp: arith.AddfOp, nt.SubOp: arith.SubfOp, nt.MulOp: arith.MulfOp,
    nt.DivOp: arith.DivfOp, nt.MaxOp: arith.MaximumfOp, nt.MinOp: arith.MinimumfOp,
}  # fmt: skip
_INT_BIN = {
    nt.AddOp: arith.AddiOp, nt.SubOp: arith.SubiOp, nt.MulOp: arith.MuliOp,
    nt.DivOp: arith.DivSIOp, nt.MaxOp: arith.MaxSIOp, nt.MinOp: arith.MinSIOp,
    nt.AndOp: arith.AndIOp, nt.OrOp: arith.OrIOp,
}  # fmt: skip
_FLOAT_UN = {
    nt.SqrtOp: math.SqrtOp, nt.ErfOp: math.ErfOp, nt.TanhOp: math.TanhOp,
    nt.SinOp: math.SinOp, nt.CosOp: math.CosOp,
    nt.ExpOp: math.ExpOp, nt.LogOp: math.LogOp, nt.AbsOp: math.AbsFOp,
    nt.RoundOp: math.RoundEvenOp,
}  # fmt: skip
_CMP = {nt.EqualOp: ("oeq", "eq"), nt.LessOp: ("olt", "slt"), nt.GreaterOp: ("ogt", "sgt")}

_SQRT1_2 = 0.7071067811865476


def emit_elementwise(b: Builder, op: Operation, args: list[SSAValue]) -> SSAValue:
    """Emits arith/math ops computing the nn_tensor elementwise `op` on `args` (one loaded
    value per operand: scalars, or vector<4xf32> for float ops) and returns the result.

    Types: f32; i32 stands for i32 and i64 tensors; i1 for bools. Casts between them act on
    those (an i64 cast is an i32 operation on the i32 storage)."""
    cls = type(op)
    if isinstance(op, nt.CastOp):
        dst = compute_type(nt.elem_of(op.result))
        return _cast(b, args[0], dst)
    if isinstance(op, nt.WhereOp):
        return _mk(b, arith.SelectOp, args[0], args[1], args[2], type=args[1].type)
    x = args[0]
    t = x.type
    is_f = _is_float(t)
    if cls in _CMP:
        fp, ip = _CMP[cls]
        if is_f:
            return _emit(b, cmpf_op(fp, x, args[1]))
        return _emit(b, cmpi_op(ip, x, args[1]))
    if isinstance(op, nt.PowOp):
        return _pow(b, x, args[1])
    if is_f and cls in _FLOAT_BIN:
        return _mk(b, _FLOAT_BIN[cls], x, args[1])
    if not is_f and cls in _INT_BIN:
        return _mk(b, _INT_BIN[cls], x, args[1])
    if is_f and cls in _FLOAT_UN:
        return _mk(b, _FLOAT_UN[cls], x)
    if isinstance(op, nt.NegOp):
        if is_f:
            return _mk(b, arith.NegfOp, x)
        return _mk(b, arith.SubiOp, _const(b, 0, t), x)
    if isinstance(op, nt.AbsOp):  # integer abs: max(x, -x)
        return _mk(b, arith.MaxSIOp, x, _mk(b, arith.SubiOp, _const(b, 0, t), x))
    if isinstance(op, nt.ReciprocalOp):
        return _mk(b, arith.DivfOp, _const(b, 1.0, t), x)
    if isinstance(op, nt.ReluOp):
        return _mk(b, arith.MaximumfOp, x, _const(b, 0.0, t))
    if isinstance(op, nt.SigmoidOp):
        e = _mk(b, math.ExpOp, _mk(b, arith.NegfOp, x))
        one = _const(b, 1.0, t)
        return _mk(b, arith.DivfOp, one, _mk(b, arith.AddfOp, one, e))
    if isinstance(op, nt.GeluOp):
        # x/2 (1 + erf(x / sqrt(2))): a product, so an erf of exactly -1 gives exactly 0 for a
        # large negative x on every driver (the multiply-add x/2 + x/2 erf gave 0.014 for
        # x = -1e6 on lavapipe, whose fast-math reassociates it; tests/test_fuzz_regressions.py)
        erf = _mk(b, math.ErfOp, _mk(b, arith.MulfOp, x, _const(b, _SQRT1_2, t)))
        half_x = _mk(b, arith.MulfOp, x, _const(b, 0.5, t))
        return _mk(b, arith.MulfOp, half_x, _mk(b, arith.AddfOp, _const(b, 1.0, t), erf))
    if isinstance(op, nt.NotOp):
        return _mk(b, arith.XOrIOp, x, _const(b, True, i1))
    if isinstance(op, nt.IsNaNOp):
        if not is_f:
            return _const(b, False, i1)
        return _emit(b, cmpf_op("uno", x, x))
    raise UnsupportedError(f"{op.name} on {t} is not supported in a kernel")


# --------------------------------------------------------------------- vectorisability


_VECTOR_OPS = (
    nt.AddOp, nt.SubOp, nt.MulOp, nt.DivOp, nt.PowOp, nt.MaxOp, nt.MinOp, nt.SqrtOp,
    nt.ErfOp, nt.TanhOp, nt.SinOp, nt.CosOp, nt.ExpOp, nt.LogOp, nt.NegOp, nt.AbsOp,
    nt.ReciprocalOp, nt.ReluOp, nt.SigmoidOp, nt.GeluOp, nt.CastOp, nt.RoundOp,
)  # fmt: skip
_INT_VECTOR_OPS = (nt.AddOp, nt.SubOp, nt.MulOp, nt.MaxOp, nt.MinOp, nt.NegOp, nt.AbsOp, nt.CastOp)
"""Ops on integer tensors with an i32x4 form (no division: Wasm has no i32x4.div)."""


def _int_lanes(elem: Attribute) -> bool:
    """i32 and i64 tensors (computed in i32 lanes; not bools)."""
    return elem == i32 or elem == i64


def can_vectorize(value: SSAValue, stop: Sequence[SSAValue] = (), ints: bool = False) -> bool:
    """Whether the elementwise DAG producing `value` (down to block arguments, constants, the
    values in `stop` and values of one element along the innermost dim, which stay scalars)
    is made of ops that work on vector<4xf32>: all f32; with `ints`
    (Wasm: i32x4 lanes), also i32/i64 values of add, sub, mul, max, min, neg, abs and casts
    between f32 and the integers."""
    seen: set[SSAValue] = set()
    stops = set(stop)
    work = [value]
    while work:
        v = work.pop()
        if v in seen or v in stops:
            continue
        seen.add(v)
        shape = nt.shape_of(v)
        if not shape or shape[-1] == 1:  # (constant along the lanes: computed once, as a scalar)
            continue
        elem = nt.elem_of(v)
        is_int = ints and _int_lanes(elem)
        if elem != f32 and not is_int:
            return False
        if isinstance(v, BlockArgument):
            continue
        op = v.owner
        if isinstance(op, nt.ConstantOp):
            continue
        if not isinstance(op, _INT_VECTOR_OPS if is_int else _VECTOR_OPS):
            return False
        work.extend(op.operands)
    return True


# ---------------------------------------------------------------------- the DAG at an index


def map_index(idx: Sequence, out_shape: Sequence[int], in_shape: Sequence[int]) -> list:
    """The index of a broadcast operand of shape `in_shape` at output index `idx`: trailing
    dims aligned, size-1 dims read at 0, missing leading dims dropped."""
    off = len(out_shape) - len(in_shape)
    return [0 if d == 1 else idx[off + k] for k, d in enumerate(in_shape)]


def _constant_at(b: Builder, op: nt.ConstantOp, idx: Sequence) -> SSAValue:
    attr: DenseIntOrFPElementsAttr = op.value
    elem = attr.get_element_type()
    ct = compute_type(elem)
    values = attr.get_values()
    shape = attr.get_shape()
    if len(values) == 1 or attr.is_splat():
        pos = 0
    elif all(isinstance(i, int) for i in idx):
        pos = 0
        for i, d in zip(idx, shape):
            pos = pos * d + i
    else:
        raise UnsupportedError(
            "a non-splat nn_tensor.constant inside a fused body is read at a varying index",
            hint="pass it to the fused op as an operand",
        )
    v = values[pos]
    if ct == i1:
        return _const(b, v != 0, i1)
    return _const(b, v, ct)


def emit_value_at(
    b: Builder,
    value: SSAValue,
    index: Sequence[SSAValue | int],
    load_arg: LoadArg,
    overrides: dict[SSAValue, SSAValue] | None = None,
    vec: int = 1,
) -> SSAValue:
    """Emits the computation of `value` (a value of a fused body) at `index` (one index per
    dim of `value`'s shape) and returns it.

    Operands are read at the index broadcast onto their shape (`map_index`); block arguments
    are read with `load_arg(arg, index)` (buffer elements; bools are compared != 0 here);
    values in `overrides` are used as given (e.g. the root op's result at this index).
    nn_tensor.constant ops in the body become arith constants.

    With vec > 1, `index[-1]` is the first of `vec` consecutive lanes: operands that vary
    along the innermost dim are read as vector<vec x T> (a scalar nn_loop.load returned by
    load_arg is widened to a vector load), the others as scalars that are splat where they
    meet a vector. The result is a vector unless nothing along the way varied."""
    overrides = overrides or {}
    memo: dict[SSAValue, SSAValue] = {}

    def widen(v: SSAValue) -> SSAValue:
        if vec > 1 and not isinstance(v.type, VectorType):
            if isinstance(b, KernelBuilder):
                return b.splat(v, vec)
            return _mk(b, nn_loop.SplatOp, v, type=vector_type(v.type, vec))
        return v

    def at(v: SSAValue, idx: list) -> SSAValue:
        got = memo.get(v)
        if got is not None:
            return got
        if v in overrides:
            res = overrides[v]
        elif isinstance(v, BlockArgument):
            res = _load(v, idx)
        else:
            op = v.owner
            if isinstance(op, nt.ConstantOp):
                res = _constant_at(b, op, idx)
            elif isinstance(op, nt.ELEMENTWISE_OPS):
                shape = nt.shape_of(v)
                args = [at(o, map_index(idx, shape, nt.shape_of(o))) for o in op.operands]
                if vec > 1 and any(isinstance(a.type, VectorType) for a in args):
                    args = [widen(a) for a in args]
                res = emit_elementwise(b, op, args)
            else:
                raise UnsupportedError(
                    f"{op.name} inside a fused body is not elementwise and has no value here"
                )
        memo[v] = res
        return res

    def _load(arg: BlockArgument, idx: list) -> SSAValue:
        shape = nt.shape_of(arg)
        lanes = vec if vec > 1 and len(shape) > 0 and shape[-1] > 1 else 1
        raw = load_arg(arg, [_index_value(b, i) for i in idx], lanes)
        return from_storage(b, raw, nt.elem_of(arg))

    return at(value, list(index))


def buffer_loader(b: Builder, buffers: Sequence[SSAValue], block_args: Sequence[SSAValue]) -> LoadArg:
    """A `load_arg` reading fused block argument k from `buffers[k]` with nn_loop.load."""
    where = {a: buf for a, buf in zip(block_args, buffers)}

    def load(arg: BlockArgument, idx: list[SSAValue], lanes: int = 1) -> SSAValue:
        buf = where[arg]
        elem = buf.type.get_element_type()  # type: ignore[attr-defined]
        return _mk(b, nn_loop.LoadOp, buf, *idx, type=elem if lanes == 1 else vector_type(elem, lanes))

    return load


__all__ = [
    "emit_elementwise", "emit_value_at", "can_vectorize", "map_index", "buffer_loader",
    "to_storage", "from_storage", "LoadArg",
]  # fmt: skip
