"""Shared pieces of the tensor-to-loop lowerings: types, and an IR builder.

`KernelBuilder` is an xDSL `Builder` with helpers that build nn_loop IR directly (no
rewrite fixpoints: lowering one kernel must take a few milliseconds):

* constants, cached per block (`b.index(3)`, `b.f32(0.5)`, `b.i32(1)`, `b.i1(True)`);
* index arithmetic on `int | SSAValue` that folds constants and x+0, x*1 (`b.add`, `b.mul`,
  `b.sub`, `b.div`, `b.rem`, `b.min`, `b.lt`, `b.and_`, `b.delinearize`);
* `b.loop(lb, ub, body, step=..., map=..., unroll=...)` and `b.if_(cond, body)` with a
  body-builder callback; `b.load`, `b.store`, `b.alloc`, `b.splat`, `b.barrier`;
* `b.erase_unused()`: the pure ops it made that nothing uses are erased (a small DCE);
* `new_kernel(...)` creating an `nn_loop.kernel` with one memref argument per fused input
  (access "read") and the output (access "write").

The schedule options themselves (`Schedule`, their bounds and checks) are in schedule.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from xdsl.builder import Builder
from xdsl.dialects import arith
from xdsl.dialects.builtin import (
    Float32Type,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    MemRefType,
    TensorType,
    VectorType,
)
from xdsl.ir import Attribute, Block, BlockArgument, Operation, Region, SSAValue
from xdsl.irdl import IRDLOperation
from xdsl.irdl.operations import OptionalDef
from xdsl.rewriter import InsertPoint

from nnjit.dialects import nn_loop
from nnjit.errors import UnsupportedError
from nnjit.ir.fastir import append, i64_attr, insert_before, new_op, set_name, str_attr
from nnjit.passes.lowering.schedule import MAX_GRID, MAX_INVOCATIONS, Schedule

f32 = Float32Type()
i32 = IntegerType(32)
i1 = IntegerType(1)
index = IndexType()
vf32 = VectorType(f32, [4])

Idx = int | SSAValue
"""An index-typed value that may still be a Python constant (folded at build time)."""


# ----------------------------------------------------------------------------------- types


def storage_type(elem: Attribute) -> Attribute:
    """Buffer element type of a tensor element type: i64 and i1 are stored as i32."""
    if isinstance(elem, IntegerType):
        return i32
    if isinstance(elem, Float32Type):
        return f32
    raise UnsupportedError(f"element type {elem} is not supported (f32, i64, i32, i1 are)")


def compute_type(elem: Attribute) -> Attribute:
    """Type of a tensor element once loaded: f32, i32 (for i32 and i64), i1 (for bool)."""
    if elem == i1:
        return i1
    return storage_type(elem)


def memref_type(t: Attribute) -> MemRefType:
    """The global-space memref holding a tensor of type `t` (i64 -> i32, i1 -> i32)."""
    if isinstance(t, MemRefType):
        return t
    m = _MEMREFS.get(t)
    if m is not None:
        return m
    if not isinstance(t, TensorType):
        raise UnsupportedError(f"expected a tensor type, got {t}")
    m = MemRefType(storage_type(t.get_element_type()), t.get_shape())
    if len(_MEMREFS) < 4096:  # types are immutable: built once (construction is slow)
        _MEMREFS[t] = m
    return m


_MEMREFS: dict[Attribute, MemRefType] = {}


def tensor_shape(v: SSAValue) -> tuple[int, ...]:
    t = v.type
    assert isinstance(t, TensorType | MemRefType), t
    return tuple(t.get_shape())


def tensor_elem(v: SSAValue) -> Attribute:
    t = v.type
    assert isinstance(t, TensorType | MemRefType), t
    return t.get_element_type()


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def next_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


# --------------------------------------------------------------------------------- builder


_CMPI = {"eq": 0, "ne": 1, "slt": 2, "sle": 3, "sgt": 4, "sge": 5}
_CMPF = {
    "false": 0, "oeq": 1, "ogt": 2, "oge": 3, "olt": 4, "ole": 5, "one": 6, "ord": 7,
    "ueq": 8, "ugt": 9, "uge": 10, "ult": 11, "ule": 12, "une": 13, "uno": 14, "true": 15,
}  # fmt: skip
predicate = i64_attr  # the (cached) i64 attribute of an arith.cmpi / cmpf predicate


class _Same:
    pass


SAME = _Same()
"""`type=SAME`: the result type is the first operand's type."""


_DEFAULT_PROPS: dict[type[Operation], dict[str, Attribute]] = {}


def _default_props(cls: type[Operation]) -> dict[str, Attribute]:
    d = _DEFAULT_PROPS.get(cls)
    if d is None:
        d = {}
        if issubclass(cls, IRDLOperation):
            for name, pdef in cls.get_irdl_definition().properties.items():
                if not isinstance(pdef, OptionalDef) and pdef.default_value is not None:
                    d[name] = pdef.default_value
        _DEFAULT_PROPS[cls] = d
    return d


def make_op(
    cls: type[Operation],
    *operands: SSAValue,
    type: Attribute | _Same | None = SAME,
    **props: Attribute,
) -> Operation:
    """`cls` built directly from operands, result type and properties (defaults filled in).

    Lowering builds thousands of ops per second, so this skips the generic constructors
    (IRDL argument matching, `Operation.__init__`) and sets the fields that
    `Operation.__init__` sets for an op without regions or successors (xDSL 0.74; the
    lowering tests compare the result with `Operation.create`)."""
    if type is SAME:
        result_types: Sequence[Attribute] = (operands[0].type,)
    elif type is None:
        result_types = ()
    else:
        result_types = (type,)  # type: ignore[assignment]
    defaults = _default_props(cls)
    return new_op(cls, operands, result_types, {**defaults, **props} if defaults else props)


def cmpi_op(pred: str, a: SSAValue, c: SSAValue) -> Operation:
    return make_op(arith.CmpiOp, a, c, type=i1, predicate=predicate(_CMPI[pred]))


def cmpf_op(pred: str, a: SSAValue, c: SSAValue) -> Operation:
    return make_op(arith.CmpfOp, a, c, type=i1, predicate=predicate(_CMPF[pred]))


_PURE = ("arith.", "math.", "nn_loop.splat", "nn_loop.extract", "nn_loop.reduce_lanes", "nn_loop.fptosi",
         "nn_loop.sitofp")
"""Names of the pure ops the lowerings make."""


class KernelBuilder(Builder):
    """An xDSL Builder appending to a block (before its terminator, if any) with helpers for
    nn_loop IR. Index helpers accept `int | SSAValue` and fold what is constant."""

    def __init__(self, block: Block):
        last = block.last_op
        point = InsertPoint(block, last) if isinstance(last, nn_loop.YieldOp) else InsertPoint(block)
        super().__init__(point)
        self._visible: dict[tuple[object, Attribute], SSAValue] = {}
        """The cached constants and pure index ops visible at the insertion point: those made
        in the insertion block or in a block around it (down from `block`)."""
        self._made_here: list[tuple[object, Attribute]] = []
        """The keys of `_visible` made in the insertion block (forgotten when it is left)."""
        self._made: list[Operation] = []
        """Every op inserted, in order (for `erase_unused`)."""

    # -- insertion ---------------------------------------------------------------------

    @property
    def block(self) -> Block:
        return self.insertion_point.block

    def insert(self, op):  # type: ignore[override]
        """Appends `op` at the insertion point (a lighter path than Builder.insert)."""
        ip = self.insertion_point
        if ip.insert_before is not None:
            insert_before(ip.block, op, ip.insert_before)
        else:
            append(ip.block, op)
        self._made.append(op)
        return op

    def erase_unused(self) -> None:
        """Erases the pure ops it inserted that nothing uses (e.g. the exponent constant of a
        pow turned into a multiply), the last inserted first (an op's users come after it)."""
        for op in reversed(self._made):
            if op.name.startswith(_PURE) and op.results and all(r.first_use is None for r in op.results):
                op.detach()
                op.erase()
        self._made = []

    def emit(self, op: Operation) -> SSAValue:
        """Inserts a one-result op and returns its result."""
        self.insert(op)
        (value,) = op.results
        return value

    def op(
        self,
        cls: type[Operation],
        *operands: SSAValue,
        type: Attribute | _Same | None = SAME,
        **props: Attribute,
    ) -> SSAValue:
        """Inserts `cls(operands)` (see make_op) and returns its result."""
        return self.emit(make_op(cls, *operands, type=type, **props))

    def _in_block(self, block: Block, fn: Callable[[], None]) -> None:
        """Runs fn() inserting into `block`, a new block nested in the insertion block."""
        saved = self.insertion_point
        last = block.last_op
        self.insertion_point = (
            InsertPoint(block, last) if isinstance(last, nn_loop.YieldOp) else InsertPoint(block)
        )
        outer = self._made_here
        self._made_here = []
        try:
            fn()
        finally:
            for k in self._made_here:
                del self._visible[k]
            self._made_here = outer
            self.insertion_point = saved

    # -- constants ---------------------------------------------------------------------

    def _const(self, key: object, type_: Attribute, make: Callable[[], Operation]) -> SSAValue:
        """The value cached under (key, type_) in the insertion block or a block around it,
        else make()'s, inserted and cached here."""
        k = (key, type_)
        v = self._visible.get(k)
        if v is None:
            v = self._visible[k] = self.emit(make())
            self._made_here.append(k)
        return v

    def _pure(self, cls: type[Operation], a: Idx, b: Idx) -> SSAValue:
        """A pure index op, reused when the same one is visible from here (a tiny CSE)."""
        x, y = self.index(a), self.index(b)
        return self._const((cls, x, y), index, lambda: make_op(cls, x, y))

    def index(self, n: Idx) -> SSAValue:
        """An index value (a cached arith.constant for ints)."""
        if not isinstance(n, int):
            return n
        return self._const(n, index, lambda: _constant(_attr(n, index), index))

    def i32(self, n: int) -> SSAValue:
        return self._const(n, i32, lambda: _constant(_attr(n, i32), i32))

    def i1(self, v: bool) -> SSAValue:
        return self._const(bool(v), i1, lambda: _constant(_attr(-1 if v else 0, i1), i1))

    def f32(self, x: float) -> SSAValue:
        key = ("f", repr(float(x)))
        return self._const(key, f32, lambda: _constant(_attr(float(x), f32), f32))

    def const(self, value: float | int | bool, type_: Attribute) -> SSAValue:
        """A scalar constant of type f32 / i32 / i1 / index, or a splat vector of one."""
        if isinstance(type_, VectorType):
            scalar = self.const(value, type_.get_element_type())
            return self._const(
                ("splat", scalar), type_, lambda: make_op(nn_loop.SplatOp, scalar, type=type_)
            )
        if type_ == f32:
            return self.f32(float(value))
        if type_ == i1:
            return self.i1(bool(value))
        if type_ == i32:
            return self.i32(int(value))
        if isinstance(type_, IndexType):
            return self.index(int(value))
        raise UnsupportedError(f"no constant of type {type_}")

    def splat(self, v: SSAValue, width: int = 4) -> SSAValue:
        """`v` broadcast to a vector<width x T> (constants are cached)."""
        t = vector_type(v.type, width)
        c = constant_value(v)
        if c is not None:
            return self._const(("splat", v), t, lambda: make_op(nn_loop.SplatOp, v, type=t))
        return self.op(nn_loop.SplatOp, v, type=t)

    # -- index arithmetic --------------------------------------------------------------

    def add(self, a: Idx, b: Idx) -> Idx:
        if isinstance(a, int) and isinstance(b, int):
            return a + b
        if isinstance(b, int) and b == 0:
            return a
        if isinstance(a, int) and a == 0:
            return b
        return self._pure(arith.AddiOp, a, b)

    def sub(self, a: Idx, b: Idx) -> Idx:
        if isinstance(a, int) and isinstance(b, int):
            return a - b
        if isinstance(b, int) and b == 0:
            return a
        return self._pure(arith.SubiOp, a, b)

    def mul(self, a: Idx, b: Idx) -> Idx:
        if isinstance(a, int) and isinstance(b, int):
            return a * b
        if (isinstance(a, int) and a == 0) or (isinstance(b, int) and b == 0):
            return 0
        if isinstance(b, int) and b == 1:
            return a
        if isinstance(a, int) and a == 1:
            return b
        return self._pure(arith.MuliOp, a, b)

    def div(self, a: Idx, b: Idx) -> Idx:
        """a // b for non-negative a and positive b."""
        if isinstance(a, int) and isinstance(b, int):
            return a // b
        if isinstance(b, int) and b == 1:
            return a
        return self._pure(arith.DivSIOp, a, b)

    def rem(self, a: Idx, b: Idx) -> Idx:
        """a % b for non-negative a and positive b."""
        if isinstance(a, int) and isinstance(b, int):
            return a % b
        if isinstance(b, int) and b == 1:
            return 0
        return self._pure(arith.RemSIOp, a, b)

    def min(self, a: Idx, b: Idx) -> Idx:
        if isinstance(a, int) and isinstance(b, int):
            return min(a, b)
        return self._pure(arith.MinSIOp, a, b)

    def max(self, a: Idx, b: Idx) -> Idx:
        if isinstance(a, int) and isinstance(b, int):
            return max(a, b)
        return self._pure(arith.MaxSIOp, a, b)

    def cmp(self, pred: str, a: Idx, b: Idx) -> SSAValue | bool:
        """Integer comparison (i1); folds to a Python bool when both sides are constant."""
        if isinstance(a, int) and isinstance(b, int):
            return {
                "eq": a == b, "ne": a != b, "slt": a < b, "sle": a <= b, "sgt": a > b,
                "sge": a >= b,
            }[pred]  # fmt: skip
        x, y = self.index(a), self.index(b)
        return self._const(("cmpi", pred, x, y), i1, lambda: cmpi_op(pred, x, y))

    def lt(self, a: Idx, b: Idx) -> SSAValue | bool:
        return self.cmp("slt", a, b)

    def and_(self, a: SSAValue | bool, b: SSAValue | bool) -> SSAValue | bool:
        if isinstance(a, bool):
            return b if a else False
        if isinstance(b, bool):
            return a if b else False
        return self.op(arith.AndIOp, a, b)

    def delinearize(self, linear: Idx, shape: Sequence[int]) -> list[Idx]:
        """Row-major multi-index of `linear` in `shape` (constant dims fold away)."""
        out: list[Idx] = []
        rest = linear
        for k in range(len(shape) - 1, -1, -1):
            d = shape[k]
            if k == 0:
                out.append(rest if d != 1 else 0)
            elif d == 1:
                out.append(0)
            else:
                out.append(self.rem(rest, d))
                if any(e != 1 for e in shape[:k]):  # (else no outer index needs the quotient)
                    rest = self.div(rest, d)
        return out[::-1]

    def linearize(self, idx: Sequence[Idx], shape: Sequence[int]) -> Idx:
        acc: Idx = 0
        for i, d in zip(idx, shape):
            acc = self.add(self.mul(acc, d), i)
        return acc

    def indices(self, idx: Sequence[Idx]) -> list[SSAValue]:
        return [self.index(i) for i in idx]

    # -- structure ---------------------------------------------------------------------

    def loop(
        self,
        lb: int,
        ub: int,
        body: Callable[[SSAValue], None],
        step: int = 1,
        map: str = "serial",
        unroll: int = 1,
        name: str | None = None,
    ) -> nn_loop.ForOp:
        """`nn_loop.for %iv = lb to ub step S map M unroll U { body(iv) }` (`name`: the
        iv's name in printed IR)."""
        block = Block(arg_types=(index,))
        append(block, new_op(nn_loop.YieldOp))
        op = new_op(
            nn_loop.ForOp,
            properties={
                "lb": _int64(lb), "ub": _int64(ub), "step": _int64(step),
                "map": nn_loop.MAP_ATTRS[map], "unroll": _int64(unroll),
            },
            regions=[Region(block)],
        )  # fmt: skip
        self.insert(op)
        if name is not None:
            op.iv.name_hint = name
        self._in_block(op.body.block, lambda: body(op.iv))
        return op

    def if_(self, cond: SSAValue | bool, body: Callable[[], None]) -> None:
        """`nn_loop.if %cond { body() }` (a constant condition folds the if away)."""
        if isinstance(cond, bool):
            if cond:
                body()
            return
        block = Block()
        append(block, new_op(nn_loop.YieldOp))
        op = new_op(nn_loop.IfOp, [cond], regions=[Region(block)])
        self.insert(op)
        self._in_block(op.body.block, body)

    def load(self, buf: SSAValue, idx: Sequence[Idx], type_: Attribute | None = None) -> SSAValue:
        """nn_loop.load of buf[idx] (a vector<N x T> when type_ says so)."""
        if type_ is None:
            type_ = buf.type.get_element_type()  # type: ignore[attr-defined]
        return self.op(nn_loop.LoadOp, buf, *self.indices(idx), type=type_)

    def store(self, value: SSAValue, buf: SSAValue, idx: Sequence[Idx]) -> None:
        self.insert(make_op(nn_loop.StoreOp, value, buf, *self.indices(idx), type=None))

    def alloc(
        self, shape: Sequence[int], elem: Attribute, space: str = "private", name: str | None = None
    ) -> SSAValue:
        key = (tuple(shape), elem, space)
        t = _MEMREFS.get(key)
        if t is None:
            t = _MEMREFS[key] = MemRefType(elem, list(shape), memory_space=nn_loop.SPACE_ATTRS[space])
        v = self.op(nn_loop.AllocOp, type=t)
        if name is not None:
            v.name_hint = name
        return v

    @staticmethod
    def name(v: Idx, hint: str) -> Idx:
        """Names a computed value in printed IR (block arguments keep their names)."""
        if isinstance(v, SSAValue) and not isinstance(v, BlockArgument) and v.name_hint is None:
            v.name_hint = hint
        return v

    def barrier(self) -> None:
        self.insert(new_op(nn_loop.BarrierOp))


_int64 = i64_attr
_string = str_attr


_ATTRS: dict[tuple[object, Attribute], Attribute] = {}
_VECTORS: dict[tuple[Attribute, int], VectorType] = {}
_MEMREFS: dict[tuple[tuple[int, ...], Attribute, str], MemRefType] = {}


def _attr(value: float | int, type_: Attribute) -> Attribute:
    """A cached IntegerAttr / FloatAttr."""
    key = (repr(value) if isinstance(value, float) else value, type_)
    attr = _ATTRS.get(key)
    if attr is None:
        if isinstance(value, float):
            attr = FloatAttr(value, type_)  # type: ignore[arg-type]
        else:
            attr = IntegerAttr(value, type_)  # type: ignore[arg-type]
        _ATTRS[key] = attr
    return attr


def vector_type(elem: Attribute, width: int) -> VectorType:
    """The (cached) type vector<width x elem>."""
    t = _VECTORS.get((elem, width))
    if t is None:
        t = _VECTORS[(elem, width)] = VectorType(elem, [width])
    return t


def _constant(value: Attribute, type_: Attribute) -> Operation:
    return new_op(arith.ConstantOp, (), (type_,), {"value": value})


def constant_value(v: SSAValue) -> float | int | None:
    """The scalar value of an arith.constant (or a splat of one), else None."""
    op = v.owner
    if isinstance(op, nn_loop.SplatOp):
        return constant_value(op.input)
    if isinstance(op, arith.ConstantOp):
        val = op.value
        if isinstance(val, FloatAttr):
            return float(val.value.data)
        if isinstance(val, IntegerAttr):
            return int(val.value.data)
    return None


# ---------------------------------------------------------------------------------- kernels


def new_kernel(
    name: str,
    input_types: Sequence[Attribute],
    output_type: Attribute,
    kind: str,
    schedule: Schedule,
) -> tuple[nn_loop.KernelOp, KernelBuilder]:
    """An nn_loop.kernel over memrefs of the given tensor types (inputs read, output write)
    and a builder inserting into its body. `schedule` should hold the effective values."""
    types = [memref_type(t) for t in (*input_types, output_type)]
    block = Block(arg_types=types)
    append(block, new_op(nn_loop.YieldOp))
    for k, a in enumerate(block.args[:-1]):
        set_name(a, f"in{k}")
    set_name(block.args[-1], "out")
    kernel = nn_loop.KernelOp(
        name,
        types,
        ["read"] * len(input_types) + ["write"],
        kind,
        schedule.target,
        schedule.as_dict(),
        Region(block),
    )
    return kernel, KernelBuilder(block)


def fused_kernel(
    fused: Operation, name: str, kind: str, schedule: Schedule
) -> tuple[nn_loop.KernelOp, KernelBuilder]:
    """`new_kernel` for an nn_tensor.fused op (its inputs' types, then its result type)."""
    return new_kernel(
        name, [a.type for a in fused.regions[0].block.args], fused.results[0].type, kind,
        schedule,
    )


def check_target(schedule: Schedule) -> None:
    if schedule.target not in ("wgsl", "wasm"):
        raise UnsupportedError(f"unknown target '{schedule.target}' (wgsl or wasm)")


def check_workgroup(workgroup: Sequence[int], what: str) -> None:
    total = math.prod(workgroup)
    if any(w < 1 or w > MAX_INVOCATIONS for w in workgroup) or total > MAX_INVOCATIONS:
        raise UnsupportedError(
            f"{what}: workgroup {tuple(workgroup)} exceeds {MAX_INVOCATIONS} invocations"
        )


def grid_loops(
    b: KernelBuilder, count: int, body: Callable[[Idx], None], guard: bool = True
) -> None:
    """Workgroup loops over `count` workgroups (x, and y when count > 65535); body gets the
    linear workgroup id. Workgroups past `count` (when y is used) are skipped by a guard,
    or, with guard=False, run the body with an id >= count (the caller clamps: a body that
    has barriers must not sit inside nn_loop.if)."""
    if count <= MAX_GRID:
        b.loop(0, count, body, map="workgroup.x", name="wg")
        return
    gy = ceil_div(count, MAX_GRID)
    gx = ceil_div(count, gy)

    def outer(wy: SSAValue) -> None:
        def inner(wx: SSAValue) -> None:
            wid = b.add(b.mul(wy, gx), wx)
            ragged = guard and gx * gy != count
            b.if_(b.lt(wid, count) if ragged else True, lambda: body(wid))

        b.loop(0, gx, inner, map="workgroup.x", name="wgx")

    b.loop(0, gy, outer, map="workgroup.y", name="wgy")


def lane_loop(
    b: KernelBuilder,
    lane: Idx,
    lanes: int,
    start: int,
    end: int,
    width: int,
    body: Callable[[Idx], None],
    unroll: int = 1,
) -> None:
    """Runs body(j) for j in [start, end) step `width`, split over `lanes` cooperating
    invocations (lane `lane` takes j = start + (k*lanes + lane)*width); (end-start) must be a
    multiple of width. With one lane it is a plain serial loop."""
    count = end - start
    if count <= 0:
        return
    assert count % width == 0
    span = lanes * width
    if lanes == 1:
        if count == width:
            body(start)
            return
        b.loop(start, end, lambda j: body(j), step=width, name="j")
        return
    full = ceil_div(count, span) * span
    ragged = count % span != 0

    def inner(jj: Idx) -> None:
        j = b.add(jj, b.mul(lane, width))
        b.if_(b.lt(j, end) if ragged else True, lambda: body(j))

    if full == span:
        inner(start)
    else:
        b.loop(start, start + full, inner, step=span, name="jj")


def invocation_loops(
    b: KernelBuilder, sizes: Sequence[int], body: Callable[[list[SSAValue]], None]
) -> None:
    """Invocation loops (x innermost in the list order: sizes[0] is x, sizes[1] is y); the
    loops nest y outside x. body gets [ix, iy, ...]."""
    names = ["invocation.x", "invocation.y", "invocation.z"]
    ivs: list[SSAValue] = [None] * len(sizes)  # type: ignore[list-item]

    def level(k: int) -> None:
        if k < 0:
            body(ivs)
            return

        def f(iv: SSAValue) -> None:
            ivs[k] = iv
            level(k - 1)

        b.loop(0, sizes[k], f, map=names[k], name=("lane", "slot", "iz")[k])

    level(len(sizes) - 1)


__all__ = [
    "KernelBuilder", "Idx", "new_kernel", "fused_kernel", "memref_type",
    "storage_type", "compute_type", "tensor_shape", "tensor_elem", "ceil_div", "next_pow2",
    "constant_value", "grid_loops", "lane_loop", "invocation_loops", "check_workgroup",
    "check_target", "f32", "i32", "i1", "index", "vf32",
    "make_op", "cmpi_op", "cmpf_op", "SAME", "vector_type",
]  # fmt: skip
