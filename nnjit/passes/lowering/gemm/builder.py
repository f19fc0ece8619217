"""The op builder of the GEMM kernel generator: `KB` appends nn_loop/arith/math ops to a
current block, folding index arithmetic on known constants, with the structured helpers the
kernels are written with (`for_`, `if_`, `loop` with a remainder, `unrolled`).

Takes nothing but the block to fill; gives the ops. Ops are made without IRDL's checks
(nnjit.ir.fastir) and attributes are cached per process: see `KB`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from xdsl.dialects import arith
from xdsl.dialects import math as xmath
from xdsl.dialects.builtin import (
    FloatAttr,
    IndexType,
    IntegerAttr,
    MemRefType,
    StringAttr,
    VectorType,
    f16,
    f32,
    i1,
    i32,
)
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue

from nnjit.dialects import nn_loop as L
from nnjit.ir.affine import IndexAnalysis
from nnjit.ir.fastir import append as _append
from nnjit.ir.fastir import i64_attr as _i64
from nnjit.ir.fastir import insert_before as _insert_before
from nnjit.ir.fastir import new_op as _new_op
from nnjit.passes.lowering.common import ceil_div, memref_type

INDEX = IndexType()
VEC4 = VectorType(f32, [4])
VEC4I = VectorType(i32, [4])
VEC4_F16 = VectorType(f16, [4])

_NO_OVERFLOW = arith.IntegerOverflowAttr("none")
_NO_FASTMATH = arith.FastMathFlagsAttr("none")
_ATTRS: dict[tuple[str, Any], Attribute] = {}


def _index_attr(n: int) -> Attribute:
    a = _ATTRS.get(("index", n))
    if a is None:
        a = _ATTRS[("index", n)] = IntegerAttr(n, INDEX)
    return a


def _str(s: str) -> Attribute:
    a = _ATTRS.get(("str", s))
    if a is None:
        a = _ATTRS[("str", s)] = StringAttr(s)
    return a


def _vec_type(elem: Attribute, n: int) -> VectorType:
    a = _ATTRS.get(("vec", elem, n))
    if a is None:
        a = _ATTRS[("vec", elem, n)] = VectorType(elem, [n])
    return a  # type: ignore[return-value]


def cached_memref_type(t: Attribute) -> MemRefType:
    """memref_type (common) of a tensor type, cached: MemRefType construction is slow."""
    a = _ATTRS.get(("buf", t))
    if a is None:
        a = _ATTRS[("buf", t)] = memref_type(t)
    return a  # type: ignore[return-value]


_CMPI = {"eq": 0, "slt": 2, "sge": 5}


class KB:
    """Appends ops to a current block and folds index arithmetic on known constants.

    Ops are made with `Op.create` and cached attributes: lowering one kernel variant has to
    take a few milliseconds, and the checked constructors cost 3x more. Index constants are
    created once, at the top of `const_block` (the SPMD body), so they dominate every use.
    """

    def __init__(self, block: Block):
        self.block = block
        self.const_block: Block | None = None
        self._anchor: Operation | None = None
        self._consts: dict[tuple[Attribute, Any], SSAValue] = {}
        self._indices: dict[int, SSAValue] = {}  # (the index constants: the most asked for)
        self.known: dict[SSAValue, int] = {}
        self._divs: dict[tuple[Block, Any, int], SSAValue] = {}
        self.facts = IndexAnalysis()  # (the values it has looked at stay in the kernel)

    # -- plumbing
    def op(self, op: Operation) -> Operation:
        _append(self.block, op)
        return op

    def v(self, op: Operation) -> SSAValue:
        _append(self.block, op)
        return op.results[0]

    def new(
        self,
        cls: type[Operation],
        operands: Sequence[SSAValue],
        result_type: Attribute | None,
        props: dict[str, Attribute] | None = None,
    ) -> SSAValue:
        """Appends a `cls` op (`props` is taken over: pass a fresh dict) and returns its
        result (None for an op without one)."""
        if result_type is None:
            _append(self.block, _new_op(cls, operands, (), props))
            return None  # type: ignore[return-value]
        op = _new_op(cls, operands, (result_type,), props)
        _append(self.block, op)
        (value,) = op.results
        return value

    def set_const_block(self, block: Block, anchor: Operation | None = None):
        self.const_block, self._anchor, self._consts, self._indices = block, anchor, {}, {}

    def _insert_const(self, op: Operation) -> SSAValue:
        """Inserts a constant op after the previous one at the top of const_block."""
        blk = self.const_block if self.const_block is not None else self.block
        after = self._anchor.next_op if self._anchor is not None else blk.first_op
        if after is not None:
            _insert_before(blk, op, after)
        else:
            _append(blk, op)
        self._anchor = op
        (value,) = op.results
        return value

    def _const(self, attr: Attribute, typ: Attribute, key: Any) -> SSAValue:
        k = (typ, key)
        if k not in self._consts:
            op = _new_op(arith.ConstantOp, (), (typ,), {"value": attr})
            self._consts[k] = self._insert_const(op)
        return self._consts[k]

    @contextmanager
    def at(self, block: Block) -> Iterator[None]:
        old = self.block
        self.block = block
        try:
            yield
        finally:
            self.block = old

    # -- constants
    def c(self, n: int) -> SSAValue:
        v = self._indices.get(n)
        if v is None:
            op = _new_op(arith.ConstantOp, (), (INDEX,), {"value": _index_attr(n)})
            v = self._indices[n] = self._insert_const(op)
            self.known[v] = n
        return v

    def f(self, x: float, vec: int = 1, elem: Attribute = f32) -> SSAValue:
        """An f32 (or `elem`: f16) constant (splat to a vector when vec > 1; splats are
        cached too)."""
        s = self._consts.get((elem, float(x)))
        if s is None:
            a = _ATTRS.get((elem, float(x)))
            if a is None:
                a = _ATTRS[(elem, float(x))] = FloatAttr(x, elem)  # type: ignore[arg-type]
            s = self._const(a, elem, float(x))
        if vec == 1:
            return s
        vt = _vec_type(elem, vec)
        key = (vt, ("splat", float(x)))
        v = self._consts.get(key)
        if v is None:
            op = _new_op(L.SplatOp, (s,), (vt,))
            v = self._consts[key] = self._insert_const(op)
        return v

    def i(self, n: int, vec: int = 1) -> SSAValue:
        """An i32 constant (splat to a vector when vec > 1)."""
        s = self._consts.get((i32, n))
        if s is None:
            a = _ATTRS.get(("i32", n))
            if a is None:
                a = _ATTRS[("i32", n)] = IntegerAttr(n, i32)
            s = self._const(a, i32, n)
        if vec == 1:
            return s
        key = (VEC4I, ("splat", n))
        v = self._consts.get(key)
        if v is None:
            op = _new_op(L.SplatOp, (s,), (_vec_type(i32, vec),))
            v = self._consts[key] = self._insert_const(op)
        return v

    def ibin(self, cls: type[Operation], a: SSAValue, b: SSAValue) -> SSAValue:
        """An i32 (or i32 vector) arith op."""
        props = {"overflowFlags": _NO_OVERFLOW} if cls in (arith.AddiOp, arith.MuliOp, arith.ShLIOp) else None
        return self.new(cls, [a, b], a.type, props)

    def load_i8x8(self, buf: SSAValue, idx: Sequence[SSAValue | int]) -> SSAValue:
        """buf[idx .. idx+8) of an i8 buffer, sign-extended to vector<8xi16> (one load)."""
        return self.new(L.LoadOp, [buf, *(self.ix(i) for i in idx)], L.WIDENED_I8)

    def widen_half(self, v: SSAValue, half: int) -> SSAValue:
        """Lanes [4 * half, 4 * half + 4) of a vector<8xi16> as vector<4xf32>."""
        return self.new(L.WidenHalfOp, [v], VEC4, {"half": _i64(half)})

    def dot_i16x2(self, a: SSAValue, b: SSAValue, acc: SSAValue) -> SSAValue:
        return self.new(L.DotI16x2Op, [a, b, acc], acc.type)

    def ix(self, x: SSAValue | int) -> SSAValue:
        return self.c(x) if isinstance(x, int) else x

    def cv(self, x: SSAValue | int) -> int | None:
        return x if isinstance(x, int) else self.known.get(x)

    # -- index arithmetic (folded when constant)
    def _ibin(self, cls: type[Operation], a: SSAValue | int, b: SSAValue | int) -> SSAValue:
        props = {"overflowFlags": _NO_OVERFLOW} if cls in (arith.AddiOp, arith.MuliOp) else None
        return self.new(cls, [self.ix(a), self.ix(b)], INDEX, props)

    def add(self, a: SSAValue | int, b: SSAValue | int) -> SSAValue:
        ca, cb = self.cv(a), self.cv(b)
        if ca is not None and cb is not None:
            return self.c(ca + cb)
        if ca == 0:
            return self.ix(b)
        if cb == 0:
            return self.ix(a)
        return self._ibin(arith.AddiOp, a, b)

    def mul(self, a: SSAValue | int, b: SSAValue | int) -> SSAValue:
        ca, cb = self.cv(a), self.cv(b)
        if ca is not None and cb is not None:
            return self.c(ca * cb)
        if ca == 0 or cb == 0:
            return self.c(0)
        if ca == 1:
            return self.ix(b)
        if cb == 1:
            return self.ix(a)
        return self._ibin(arith.MuliOp, a, b)

    def div(self, a: SSAValue | int, n: int) -> SSAValue:
        ca = self.cv(a)
        if ca is not None:
            return self.c(ca // n)
        if n == 1:
            return self.ix(a)
        return self._ibin(arith.DivSIOp, a, n)

    def rem(self, a: SSAValue | int, n: int) -> SSAValue:
        ca = self.cv(a)
        if ca is not None:
            return self.c(ca % n)
        if n == 1:
            return self.c(0)
        return self._ibin(arith.RemSIOp, a, n)

    def alignment(self, a: SSAValue | int) -> int:
        """A known divisor of index value `a` (0: a is 0; nnjit/ir/affine.py's divisor: from
        constants, loop ivs (lb and step), sums, products, min and max); 1 when nothing is
        known."""
        ca = self.cv(a)
        if ca is not None:
            return abs(ca)
        return self.facts.divisor(a)  # type: ignore[arg-type]

    def divmod_aligned(self, a: SSAValue | int, n: int) -> tuple[SSAValue, SSAValue] | None:
        """(a // n, a % n) for an index a >= 0 when a = x + c with x a known multiple of n
        and c >= 0 a constant: the quotient x // n + c // n and the constant remainder c % n;
        None otherwise."""
        x: SSAValue | int = a
        c = 0
        while (
            not isinstance(x, int) and self.cv(x) is None and isinstance(x.owner, arith.AddiOp)
            and self.cv(x.owner.rhs) is not None
        ):  # fmt: skip
            c += self.cv(x.owner.rhs)  # type: ignore[operator]
            x = x.owner.lhs
        cx = self.cv(x)
        if cx is not None:
            x, c = 0, c + cx
        if c >= 0 and self.alignment(x) % n == 0:
            key = (self.block, x, n)  # one quotient per block for the columns of a tile
            q = self._divs.get(key)
            if q is None:
                q = self._divs[key] = self.div(x, n)
            return self.add(q, c // n), self.c(c % n)
        return None

    def min(self, a: SSAValue | int, n: int) -> SSAValue:
        ca = self.cv(a)
        if ca is not None:
            return self.c(min(ca, n))
        return self._ibin(arith.MinSIOp, a, n)

    def max(self, a: SSAValue | int, n: int) -> SSAValue:
        ca = self.cv(a)
        if ca is not None:
            return self.c(max(ca, n))
        return self._ibin(arith.MaxSIOp, a, n)

    def _cmp(self, pred: str, a: SSAValue | int, n: int) -> SSAValue:
        return self.new(arith.CmpiOp, [self.ix(a), self.c(n)], i1, {"predicate": _i64(_CMPI[pred])})

    def lt(self, a: SSAValue | int, n: int) -> SSAValue:
        """a < n as i1."""
        return self._cmp("slt", a, n)

    def ge(self, a: SSAValue | int, n: int) -> SSAValue:
        return self._cmp("sge", a, n)

    def eq(self, a: SSAValue | int, n: int) -> SSAValue:
        return self._cmp("eq", a, n)

    def and_(self, conds: Sequence[SSAValue | None]) -> SSAValue | None:
        out: SSAValue | None = None
        for c in conds:
            if c is None:
                continue
            out = c if out is None else self.new(arith.AndIOp, [out, c], i1)
        return out

    # -- values and memory
    def splat(self, s: SSAValue, vec: int) -> SSAValue:
        """s in `vec` lanes (a vector already, e.g. an i16 pair of nn_loop.pair_splat, as is)."""
        if vec == 1 or isinstance(s.type, VectorType):
            return s
        return self.new(L.SplatOp, [s], _vec_type(s.type, vec))

    def fbin(self, cls: type[Operation], a: SSAValue, b: SSAValue) -> SSAValue:
        return self.new(cls, [a, b], a.type, {"fastmath": _NO_FASTMATH})

    def fma(self, a: SSAValue, b: SSAValue, c: SSAValue) -> SSAValue:
        return self.new(xmath.FmaOp, [a, b, c], c.type, {"fastmath": _NO_FASTMATH})

    def _cast(self, cls: type[Operation], v: SSAValue, elem: Attribute) -> SSAValue:
        t = v.type
        rt = _vec_type(elem, t.get_shape()[0]) if isinstance(t, VectorType) else elem
        return v if t == rt else self.new(cls, [v], rt)

    def extf(self, v: SSAValue) -> SSAValue:
        """An f16 value (or vector) as f32; an f32 one as it is."""
        return self._cast(arith.ExtFOp, v, f32)

    def truncf(self, v: SSAValue) -> SSAValue:
        """An f32 value (or vector) rounded to f16 (to nearest); an f16 one as it is."""
        return self._cast(arith.TruncFOp, v, f16)

    def select(self, cond: SSAValue, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.new(arith.SelectOp, [cond, a, b], a.type)

    def extract(self, v: SSAValue, lane: int) -> SSAValue:
        t = v.type
        assert isinstance(t, VectorType)
        return self.new(L.ExtractOp, [v], t.get_element_type(), {"lane": _i64(lane)})

    def reduce_add(self, v: SSAValue) -> SSAValue:
        t = v.type
        assert isinstance(t, VectorType)
        return self.new(L.ReduceLanesOp, [v], t.get_element_type(), {"kind": L.REDUCTION_ATTRS["add"]})

    def load(self, buf: SSAValue, idx: Sequence[SSAValue | int], vec: int = 1) -> SSAValue:
        t = buf.type
        assert isinstance(t, MemRefType)
        elem = t.get_element_type()
        rt = elem if vec == 1 else _vec_type(elem, vec)
        return self.new(L.LoadOp, [buf, *(self.ix(i) for i in idx)], rt)

    def store(self, val: SSAValue, buf: SSAValue, idx: Sequence[SSAValue | int]):
        self.new(L.StoreOp, [val, buf, *(self.ix(i) for i in idx)], None)

    def alloc(self, shape: Sequence[int], elem: Attribute, space: str, name: str) -> SSAValue:
        key = ("memref", elem, tuple(shape), space)
        t = _ATTRS.get(key)
        if t is None:
            t = _ATTRS[key] = MemRefType(elem, list(shape), memory_space=L.SPACE_ATTRS[space])
        v = self.new(L.AllocOp, [], t)
        v.name_hint = name
        return v

    def barrier(self) -> None:
        self.op(_new_op(L.BarrierOp))

    # -- structure
    @contextmanager
    def for_(
        self,
        lb: int,
        ub: int,
        step: int = 1,
        map: str = "serial",
        unroll: int = 1,
        name: str | None = None,
    ) -> Iterator[SSAValue]:
        """`nn_loop.for` (`name`: the iv's name in printed IR)."""
        block = Block(arg_types=[INDEX])
        if name is not None:
            block.args[0].name_hint = name
        props = {
            "lb": _i64(lb), "ub": _i64(ub), "step": _i64(step), "map": L.MAP_ATTRS[map],
            "unroll": _i64(unroll),
        }  # fmt: skip
        _append(self.block, _new_op(L.ForOp, properties=props, regions=[Region(block)]))
        with self.at(block):
            yield block.args[0]
            _append(block, _new_op(L.YieldOp))

    @contextmanager
    def if_(self, cond: SSAValue | None) -> Iterator[None]:
        """A guarded region; no guard at all when cond is None (statically true)."""
        if cond is None:
            yield
            return
        block = Block()
        _append(self.block, _new_op(L.IfOp, (cond,), regions=[Region(block)]))
        with self.at(block):
            yield
            _append(block, _new_op(L.YieldOp))

    def loop(
        self,
        lb: int,
        ub: int,
        step: int,
        unroll: int,
        body: Callable[[SSAValue], None],
        name: str | None = None,
    ) -> None:
        """for iv in range(lb, ub, step) with `unroll`; a fully unrolled remainder loop takes
        the iterations that `unroll` does not divide; a single iteration needs no loop."""
        trip = max(0, ceil_div(ub - lb, step))
        if trip == 0:
            return
        if trip == 1:
            body(self.c(lb))
            return
        u = max(1, min(unroll, trip))
        main = trip // u * u
        if main:
            with self.for_(lb, lb + main * step, step, unroll=u, name=name) as iv:
                body(iv)
        rest = trip - main
        if rest == 1:
            body(self.c(lb + main * step))
        elif rest:
            with self.for_(lb + main * step, lb + trip * step, step, unroll=rest, name=name) as iv:
                body(iv)

    def unrolled(self, n: int, body: Callable[[SSAValue], None], name: str | None = None) -> None:
        """body(i) for i in range(n), as a loop that nn-loop-unroll turns into straight-line
        code (constant i: private indices stay constant)."""
        self.loop(0, n, 1, n, body, name)


__all__ = ["INDEX", "VEC4", "VEC4I", "VEC4_F16", "KB", "cached_memref_type"]
