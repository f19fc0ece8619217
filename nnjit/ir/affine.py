"""What is known about the `index` values of nn_loop IR: integer constants, affine forms of loop
ivs (`sum(coeff * atom) + const`), non-negativity, and a divisor of every value a value takes.

One analysis, shared by everything that folds or inspects index arithmetic: the pass
nn-loop-simplify-index (which rewrites index arithmetic into the canonical form these facts
give), nn-loop-unroll (which folds what unrolling made constant), the Wasm conversion (byte
offsets as affine expressions, address streams, sign facts: its `IndexFacts` adds the copy of
an unrolled body being emitted), the WGSL conversion (vec4 storage where every vector access
is at a multiple of 4) and the matmul lowering (column panels at a known multiple).

    facts = IndexAnalysis()
    facts.affine(v)     # ({iv: 4, x: 1}, 3): v == 4*iv + x + 3
    facts.const_int(v)  # 7, or None
    facts.nonneg(v)     # True when v >= 0 at every point it is computed
    facts.divisor(v)    # g dividing every value of v (0: v is 0)

Ops are recognised by name (`arith.addi`, `nn_loop.for`): this module sits below the dialects.
Tables are keyed by id(): xDSL hashes IR objects in Python, ints hash in C. The IR must outlive
the analysis and not change under it (a value's facts are computed once): a pass that rewrites
keeps the ops it erases alive while the analysis is in use, so that ids are not reused.
"""

from __future__ import annotations

from math import gcd

from xdsl.dialects.builtin import IndexType, IntegerAttr, IntegerType, VectorType
from xdsl.ir import Attribute, BlockArgument, SSAValue

from nnjit.ir.fastir import operands_of, type_of

Affine = tuple[dict[SSAValue, int], int]
"""sum(coeff * atom) + const: ({atom: coeff}, const). Atoms are loop ivs and the index values
that are not sums or products by constants (loads, quotients, ...); no coefficient is 0."""

AFFINE_OPS = frozenset(("arith.addi", "arith.subi", "arith.muli"))
"""The index ops whose result is an affine form of their operands' (muli: when one is constant)."""

_CASTS = frozenset(("arith.index_cast", "arith.index_castui"))
_DIVISOR_GCD = frozenset(("arith.addi", "arith.subi", "arith.minsi", "arith.maxsi"))
_UNKNOWN = object()  # (a cache's "not looked at yet", where None is an answer)


def const_attr(v: SSAValue) -> Attribute | None:
    """The value attribute of an arith.constant result, else None."""
    if type(v) is BlockArgument:
        return None
    op = v.op  # type: ignore[attr-defined]
    if op.name != "arith.constant":
        return None
    a = op.properties.get("value")
    return a if a is not None else op.attributes.get("value")


def combine(a: dict[SSAValue, int], b: dict[SSAValue, int], scale: int) -> dict[SSAValue, int]:
    """The terms of a + scale * b (terms whose coefficient cancels are dropped)."""
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + scale * v
    return {k: v for k, v in out.items() if v}


def loop_of(iv: BlockArgument) -> object | None:
    """The nn_loop.for whose iv `iv` is, else None."""
    parent = iv.owner.parent_op()  # type: ignore[union-attr]
    if parent is None or parent.name != "nn_loop.for" or iv.index != 0:
        return None
    return parent


def _prop(op: object, name: str) -> int:
    return op.properties[name].value.data  # type: ignore[attr-defined]


class IndexAnalysis:
    """Constants, affine forms, sign facts and divisors of index values, computed on demand
    and cached by id().

    `iv_const` (id(iv) -> constant) substitutes a loop iv by a constant, for a client that
    knows it (a loop of one iteration); set it before the iv's users are looked at."""

    def __init__(self) -> None:
        self.iv_const: dict[int, int] = {}  # iv of a loop of one iteration -> its constant
        self._affine: dict[int, Affine] = {}
        self._nonneg: dict[int, bool] = {}
        self._const_ints: dict[int, int | None] = {}  # id(op result) -> const_int
        self._divisors: dict[int, int] = {}

    # ------------------------------------------------------------------------ constants

    def const_int(self, v: SSAValue) -> int | None:
        """The value of an integer constant (or of a substituted iv), else None."""
        if type(v) is BlockArgument:
            return self.iv_const.get(id(v))
        # (an op result's answer does not depend on the substitutions: kept for good)
        x = self._const_ints.get(id(v), _UNKNOWN)
        if x is _UNKNOWN:
            x = None
            a = const_attr(v)
            if isinstance(a, IntegerAttr) and type(v.type) is not VectorType:
                x = a.value.data
                if type(v.type) is IntegerType and v.type.width.data == 1:
                    x &= 1
            self._const_ints[id(v)] = x
        return x  # type: ignore[return-value]

    # --------------------------------------------------------------------- affine forms

    def affine(self, v: SSAValue) -> Affine:
        """v (index) as sum(coeff * atom) + const, through addi, subi and muli by a
        constant (index-typed ops only)."""
        res = self._affine.get(id(v))
        if res is not None:
            return res
        res = ({v: 1}, 0)
        if id(v) in self.iv_const:
            res = ({}, self.iv_const[id(v)])
        elif type(v) is BlockArgument:
            pass
        else:
            op = v.op  # type: ignore[attr-defined]
            c = self.const_int(v)
            if c is not None:
                res = ({}, c)
            elif op.name in AFFINE_OPS and type(type_of(v)) is IndexType:
                x, y = operands_of(op)
                (ta, ca), (tb, cb) = self.affine(x), self.affine(y)
                if op.name == "arith.addi":
                    res = (combine(ta, tb, 1), ca + cb)
                elif op.name == "arith.subi":
                    res = (combine(ta, tb, -1), ca - cb)
                elif not ta:
                    res = ({k: x * ca for k, x in tb.items()}, ca * cb)
                elif not tb:
                    res = ({k: x * cb for k, x in ta.items()}, ca * cb)
        self._affine[id(v)] = res
        return res

    # ------------------------------------------------------------------------ sign facts

    def arg_nonneg(self, iv: BlockArgument) -> bool:
        """Whether block argument `iv` is known to be >= 0: the iv of an nn_loop.for from a
        bound >= 0 (steps are positive)."""
        loop = loop_of(iv)
        return loop is not None and _prop(loop, "lb") >= 0

    def nonneg(self, v: SSAValue) -> bool:
        """Whether index value v is known to be >= 0 (loop ivs from a bound >= 0, constants,
        and sums, products, quotients, remainders, min/max and selects of such values)."""
        r = self._nonneg.get(id(v))
        if r is not None:
            return r
        r = False
        if id(v) in self.iv_const:
            r = self.iv_const[id(v)] >= 0
        elif type(v) is BlockArgument:
            r = self.arg_nonneg(v)
        else:
            op = v.owner
            c = self.const_int(v)
            if c is not None:
                r = c >= 0
            elif op.name in ("arith.addi", "arith.muli", "arith.minsi", "arith.minui"):
                r = all(self.nonneg(x) for x in operands_of(op))
            elif op.name in ("arith.divsi", "arith.remsi", "arith.divui", "arith.remui"):
                d = self.const_int(operands_of(op)[1])
                r = d is not None and d > 0 and self.nonneg(operands_of(op)[0])
            elif op.name == "arith.maxsi":
                r = any(self.nonneg(x) for x in operands_of(op))
            elif op.name == "arith.select":
                r = self.nonneg(operands_of(op)[1]) and self.nonneg(operands_of(op)[2])
            elif op.name in _CASTS:
                r = self.nonneg(operands_of(op)[0])
        self._nonneg[id(v)] = r
        return r

    # -------------------------------------------------------------------------- divisors

    def divisor(self, v: SSAValue) -> int:
        """The largest g known to divide every value of index value `v` (0: v is 0): from
        constants, loop ivs (gcd of bound and step), sums, differences, min/max (gcd),
        products (product) and casts; 1 when nothing is known."""
        g = self._divisors.get(id(v))
        if g is not None:
            return g
        g = 1
        if type(v) is BlockArgument:
            c = self.iv_const.get(id(v))
            if c is not None:
                g = abs(c)
            else:
                loop = loop_of(v)
                if loop is not None:
                    g = gcd(_prop(loop, "lb"), _prop(loop, "step"))
        else:
            op = v.owner
            name = op.name
            if name == "arith.constant":
                value = op.properties["value"]
                if isinstance(value, IntegerAttr):
                    g = abs(value.value.data)
            elif name in _DIVISOR_GCD:
                x, y = operands_of(op)
                g = gcd(self.divisor(x), self.divisor(y))
            elif name == "arith.muli":
                x, y = operands_of(op)
                g = self.divisor(x) * self.divisor(y)
            elif name == "arith.index_cast":
                g = self.divisor(operands_of(op)[0])
        self._divisors[id(v)] = g
        return g
