"""What the Wasm conversion knows about nn_loop values while it emits: the index analysis
(affine forms, sign facts, integer constants: nnjit/ir/affine.py), float constants, which ops are never statements (`IndexFacts`), and which
value ops are computed where their single user is (`FoldPlan`).

Tables of values and ops are keyed by id(): xDSL hashes IR objects in Python, ints hash in C;
the kernel keeps the objects alive while it is lowered.
"""

from __future__ import annotations

from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    FloatAttr,
    IndexType,
    VectorType,
)
from xdsl.ir import Attribute, Block, BlockArgument, Operation, SSAValue

from nnjit.dialects import nn_loop
from nnjit.ir.affine import AFFINE_OPS, IndexAnalysis, const_attr
from nnjit.ir.fastir import (
    first_block_of,
    first_op_of,
    next_op_of,
    next_use_of,
    type_of,
    use_op_of,
)

_PURE_PREFIXES = ("arith.", "math.")
_ALWAYS_VIRTUAL = frozenset(("arith.constant", "arith.index_cast", "arith.index_castui"))
_PURE_NN_LOAD = (nn_loop.SplatOp, nn_loop.ExtractOp, nn_loop.ReduceLanesOp, nn_loop.LoadOp,
                 nn_loop.FPToSIOp, nn_loop.SIToFPOp)


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


def is_vec(t: Attribute) -> bool:
    return type(t) is VectorType


def scalar_of(t: Attribute) -> Attribute:
    return t.get_element_type() if type(t) is VectorType else t


class IndexFacts(IndexAnalysis):
    """The index analysis (nnjit/ir/affine.py) of a kernel, with what the conversion adds:
    which ops are never emitted as statements, constants of other types."""

    def __init__(self) -> None:
        super().__init__()
        self.iv_nonneg: dict[int, bool] = {}  # loop ivs known to be >= 0 (as they are emitted)
        self._virtual: dict[int, bool] = {}  # id(op) -> is_virtual(op)
        self._outer_caches: list[tuple[dict, dict]] = []  # (see enter)

    def enter(self, iv: BlockArgument, const: int) -> None:
        """Starts emitting the body of a loop of one iteration: its iv is the constant
        `const`. Affine forms and sign facts may depend on it: the body gets caches of its
        own (the enclosing ones are back after `leave`)."""
        self.iv_const[id(iv)] = const
        self._outer_caches.append((self._affine, self._nonneg))
        self._affine, self._nonneg = {}, {}

    def leave(self) -> None:
        self._affine, self._nonneg = self._outer_caches.pop()

    # ---------------------------------------------------------------------- index values

    def arg_nonneg(self, iv: BlockArgument) -> bool:
        """An iv is known to be >= 0 once its loop is emitted (from a bound >= 0)."""
        return self.iv_nonneg.get(id(iv), False)

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

    const_attr = staticmethod(const_attr)

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
        return bool(op.regions)

    def analyse_block(self, block: Block):
        """Decides which value ops are folded into their (single, same-block) user: pure ops
        and loads with no store between them and the statement their user is emitted in."""
        if block in self._analysed:
            return
        self._analysed.add(block)
        is_virtual, eff_users = self.facts.is_virtual, self.facts.eff_users
        ops: list[Operation] = []
        op = first_op_of(block)
        while op is not None:
            ops.append(op)
            op = next_op_of(op)
        pos = {id(op): k for k, op in enumerate(ops)}
        # writes[k]: how many of ops[:k] write memory (a store, or an op with a body), so that
        # "a write between positions i and j" is one subtraction, not a scan
        writes = [0]
        for op in ops:
            writes.append(writes[-1] + self._writes(op))
        root: dict[int, int] = {}  # id(op) -> position of the statement it is emitted in
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
            u = id(users[0])
            at = root.get(u, pos[u])
            if t is nn_loop.LoadOp and writes[at] - writes[pos[id(op)] + 1] > 0:
                continue
            self.folded.add(id(op))
            root[id(op)] = at
