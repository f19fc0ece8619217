"""What the Wasm conversion knows about nn_loop values while it emits: index values as affine
forms, sign facts, integer and float constants, the copy of an unrolled body being emitted
(`IndexFacts`), and which value ops are computed where their single user is (`FoldPlan`).

Tables of values and ops are keyed by id(): xDSL hashes IR objects in Python, ints hash in C;
the kernel keeps the objects alive while it is lowered.
"""

from __future__ import annotations

from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    VectorType,
)
from xdsl.ir import Attribute, Block, BlockArgument, Operation, SSAValue

from nnjit.dialects import nn_loop
from nnjit.ir.fastir import (
    block_args_of,
    first_block_of,
    first_op_of,
    next_op_of,
    next_use_of,
    operands_of,
    type_of,
    use_op_of,
)

_PURE_PREFIXES = ("arith.", "math.")
_ALWAYS_VIRTUAL = frozenset(("arith.constant", "arith.index_cast", "arith.index_castui"))
AFFINE_OPS = frozenset(("arith.addi", "arith.subi", "arith.muli"))
_PURE_NN_LOAD = (nn_loop.SplatOp, nn_loop.ExtractOp, nn_loop.ReduceLanesOp, nn_loop.LoadOp)
_UNKNOWN = object()  # (a cache's "not looked at yet", where None is an answer)

Affine = tuple[dict[SSAValue, int], int]
"""sum(coeff * atom) + const: ({atom: coeff}, const)."""


def body_of(op: Operation) -> Block:
    """The single block of a loop's or if's body."""
    return first_block_of(op.regions[0])  # type: ignore[return-value]


def prop(op: Operation, name: str) -> int:
    """An integer property (lb, ub, step, unroll, lane) of an nn_loop op."""
    return op.properties[name].value.data  # type: ignore[attr-defined]


def trips(loop: nn_loop.ForOp) -> int:
    """The trip count of a loop (ForOp.trip_count, read directly)."""
    lb, ub, st = prop(loop, "lb"), prop(loop, "ub"), prop(loop, "step")
    return max(0, (ub - lb + st - 1) // st)


def full_unroll(loop: nn_loop.ForOp) -> bool:
    """Whether a loop is unrolled completely (its unroll factor is its trip count)."""
    u = prop(loop, "unroll")
    return u > 1 and u == trips(loop)


def is_vec(t: Attribute) -> bool:
    return type(t) is VectorType


def scalar_of(t: Attribute) -> Attribute:
    return t.get_element_type() if type(t) is VectorType else t


def _combine(a: dict[SSAValue, int], b: dict[SSAValue, int], scale: int) -> dict[SSAValue, int]:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + scale * v
    return {k: v for k, v in out.items() if v}


class IndexFacts:
    """Affine forms, sign facts and constants of a kernel's values, for the copy of the
    unrolled bodies being emitted (`enter` / `leave`)."""

    def __init__(self) -> None:
        self.iv_const: dict[int, int] = {}  # iv of an unrolled copy -> its constant
        self.iv_off: dict[int, int] = {}  # iv of a partially unrolled copy -> its offset
        self.iv_nonneg: dict[int, bool] = {}  # loop ivs known to be >= 0
        self._affine: dict[int, Affine] = {}
        self._nonneg: dict[int, bool] = {}
        self._const_ints: dict[int, int | None] = {}  # id(op result) -> const_int
        self._virtual: dict[int, bool] = {}  # id(op) -> is_virtual(op)
        # the copies of unrolled loops being emitted, outermost first, as (id(loop), copy)
        self.inst: tuple[tuple[int, int], ...] = ()
        self._outer_caches: list[tuple[dict, dict]] = []  # (see enter)

    # ------------------------------------------------------------------- unrolled copies

    def enter(self, loop: nn_loop.ForOp, copy: int, const: int | None = None, off: int = 0):
        """Starts emitting copy `copy` of an unrolled body: its iv is the constant `const`
        (a fully unrolled loop, or a loop of one iteration) or the loop's iv + `off` (a
        partially unrolled one). Affine forms and sign facts may depend on it: the copy gets
        caches of its own (the enclosing ones are back after `leave`)."""
        self.inst = (*self.inst, (id(loop), copy))
        iv = block_args_of(body_of(loop))[0]
        if const is not None:
            self.iv_const[id(iv)] = const
        else:
            self.iv_off[id(iv)] = off
        self._outer_caches.append((self._affine, self._nonneg))
        self._affine, self._nonneg = {}, {}

    def leave(self, loop: nn_loop.ForOp) -> None:
        self.inst = self.inst[:-1]
        iv = block_args_of(body_of(loop))[0]
        self.iv_const.pop(id(iv), None)
        self.iv_off.pop(id(iv), None)
        self._affine, self._nonneg = self._outer_caches.pop()

    # ---------------------------------------------------------------------- index values

    def affine(self, v: SSAValue) -> Affine:
        """v (index) as sum(coeff * atom) + const; atoms are ivs and non-affine values."""
        res = self._affine.get(id(v))
        if res is not None:
            return res
        res = ({v: 1}, 0)
        if id(v) in self.iv_const:
            res = ({}, self.iv_const[id(v)])
        elif type(v) is BlockArgument:
            off = self.iv_off.get(id(v))
            if off:
                res = ({v: 1}, off)
        else:
            op = v.op
            c = self.const_int(v)
            if c is not None:
                res = ({}, c)
            elif op.name in AFFINE_OPS and type(type_of(v)) is IndexType:
                x, y = operands_of(op)
                (ta, ca), (tb, cb) = self.affine(x), self.affine(y)
                if op.name == "arith.addi":
                    res = (_combine(ta, tb, 1), ca + cb)
                elif op.name == "arith.subi":
                    res = (_combine(ta, tb, -1), ca - cb)
                elif not ta:
                    res = ({k: x * ca for k, x in tb.items()}, ca * cb)
                elif not tb:
                    res = ({k: x * cb for k, x in ta.items()}, ca * cb)
        self._affine[id(v)] = res
        return res

    def nonneg(self, v: SSAValue) -> bool:
        """Whether index value v is known to be >= 0 (loop ivs from a bound >= 0, constants,
        and sums, products, quotients, remainders, min/max and selects of such values)."""
        r = self._nonneg.get(id(v))
        if r is not None:
            return r
        r = False
        if id(v) in self.iv_const:
            r = self.iv_const[id(v)] >= 0
        elif id(v) in self.iv_nonneg:
            r = self.iv_nonneg[id(v)]
        elif type(v) is not BlockArgument:
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
            elif op.name in ("arith.index_cast", "arith.index_castui"):
                r = self.nonneg(operands_of(op)[0])
        self._nonneg[id(v)] = r
        return r

    def is_virtual(self, op: Operation) -> bool:
        """Ops never emitted as statements: constants (emitted at each use), index
        add/sub/mul-by-constant (emitted as affine expressions) and no-op casts."""
        r = self._virtual.get(id(op))
        if r is None:
            name = op.name
            r = name in _ALWAYS_VIRTUAL
            if not r and name in AFFINE_OPS:
                (res,) = op.results
                r = type(type_of(res)) is IndexType and self.affine(res)[0] != {res: 1}
            self._virtual[id(op)] = r
        return r

    def eff_users(self, v: SSAValue) -> list[Operation]:
        """The users of v, looking through virtual ops to their users."""
        out: list[Operation] = []
        use = v.first_use
        while use is not None:
            u = use_op_of(use)
            if self.is_virtual(u):
                (r,) = u.results
                out.extend(self.eff_users(r))
            else:
                out.append(u)
            use = next_use_of(use)
        return out

    # ------------------------------------------------------------------------ constants

    @staticmethod
    def const_attr(v: SSAValue) -> Attribute | None:
        """The value attribute of an arith.constant result, else None."""
        if type(v) is BlockArgument:
            return None
        op = v.op
        if op.name != "arith.constant":
            return None
        a = op.properties.get("value")
        return a if a is not None else op.attributes.get("value")

    def const_int(self, v: SSAValue) -> int | None:
        """The value of an integer constant (or of the iv of an unrolled copy), else None."""
        if type(v) is BlockArgument:
            return self.iv_const.get(id(v))
        # (an op result's answer is the same in every copy: it is kept for the whole kernel)
        x = self._const_ints.get(id(v), _UNKNOWN)
        if x is _UNKNOWN:
            x = None
            a = self.const_attr(v)
            if isinstance(a, IntegerAttr) and not is_vec(v.type):
                x = a.value.data
                if type(v.type) is IntegerType and v.type.width.data == 1:
                    x &= 1
            self._const_ints[id(v)] = x
        return x  # type: ignore[return-value]

    def const_float(self, v: SSAValue) -> float | None:
        """A float constant, or the splat value of a constant float vector."""
        a = self.const_attr(v)
        if isinstance(a, FloatAttr):
            return a.value.data
        if isinstance(a, DenseIntOrFPElementsAttr):
            vals = a.get_values()
            if len(set(vals)) == 1 and isinstance(vals[0], float):
                return vals[0]
        if type(v) is not BlockArgument and type(v.owner) is nn_loop.SplatOp:
            return self.const_float(v.owner.input)
        return None


class FoldPlan:
    """Which value ops are computed where their single user is (folded into its operand
    tree) and which are dead; a block is looked at once, before it is first emitted."""

    def __init__(self, facts: IndexFacts):
        self.facts = facts
        self.folded: set[int] = set()  # id(op) of ops computed where their user is
        self.dead: set[int] = set()  # id(op) of value ops without users
        self._analysed: set[Block] = set()

    def _writes(self, op: Operation) -> bool:
        if type(op) is nn_loop.StoreOp:
            return True
        if not op.regions:
            return False
        if type(op) is nn_loop.ForOp and full_unroll(op):  # straight-line copies
            o = first_op_of(body_of(op))
            while o is not None:
                if self._writes(o):
                    return True
                o = next_op_of(o)
            return False
        return True

    def analyse_block(self, block: Block):
        """Decides which value ops are folded into their (single, same-block) user: pure ops
        and loads with no store between them and the statement their user is emitted in.
        The decisions do not depend on which copy of an unrolled body is emitted."""
        if block in self._analysed:
            return
        self._analysed.add(block)
        is_virtual, eff_users = self.facts.is_virtual, self.facts.eff_users
        ops: list[Operation] = []
        op = first_op_of(block)
        while op is not None:
            ops.append(op)
            op = next_op_of(op)
        pos = {op: k for k, op in enumerate(ops)}
        root: dict[Operation, int] = {}  # op -> position of the statement it is emitted in
        for op in reversed(ops):
            if len(op.results) != 1:
                continue
            t = type(op)
            if not (t in _PURE_NN_LOAD or op.name.startswith(_PURE_PREFIXES)):
                continue
            if is_virtual(op):
                continue
            (r,) = op.results
            users = eff_users(r)
            if not users:
                self.dead.add(id(op))
                continue
            if len(users) != 1 or users[0].parent is not block:
                continue
            u = users[0]
            at = root.get(u, pos[u])
            if t is nn_loop.LoadOp and any(
                self._writes(ops[k]) for k in range(pos[op] + 1, at)
            ):
                continue
            self.folded.add(id(op))
            root[op] = at
