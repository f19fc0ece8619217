"""nn-loop-simplify-index: the index arithmetic of nn_loop kernels in one canonical form.

Takes nn_loop IR; gives the same IR where, inside every `nn_loop.kernel`, each index-typed
`arith.addi` / `subi` / `muli` is written as its affine form (nnjit/ir/affine.py): constants
folded, `x * 1`, `x + 0`, `x - 0` gone, `(x + c1) + c2` as `x + (c1 + c2)`, the terms in the
order they first appear, each `atom` or `atom * k` (negative ones subtracted), and the
constant part added last (`... + c`, `c` negative for a difference). Index `divsi` / `divui` /
`remsi` / `remui` by a constant d > 0 fold where the facts allow it:

* both operands constant (divui / remui: non-negative ones);
* `(d * y + c) / d` is `y + c / d` when d divides c (an exact quotient, divsi), or when the
  dividend is known to be >= 0 (truncation is then floor: `y + floor(c / d)`);
* `(d * y + c) % d` is `c % d` when the dividend is known to be >= 0, 0 when d divides c.

Everything else is left alone: non-index arithmetic (i32, i1, floats, vectors), ops outside
kernels, products of two non-constants, divisions that are not exact and may see a negative
dividend. Expressions already in canonical form are not rebuilt; the index ops a rewrite
leaves without users are erased (others stay: `dce` removes them).

Every pipeline runs it first among the loop passes (Target.loop_passes, nnjit/targets.py).
It changes the generated code of 1947 of the 2760 candidates of the codegen corpus (1576
WGSL, 371 Wasm; the WGSL conversion builds its expressions from the IR's shape, so
`m0 + (6 + lid_y)` becomes `(m0 + lid_y) + 6`, often sharing more); the speed of the changed
kernels before and after is in bench/results/simplify_index.md. The conversions read index
arithmetic through the same analysis, so they need no canonical input.

The rewrite is one forward sweep over a kernel's ops with one `IndexAnalysis` (tables keyed
by id(): the ops it erases are kept alive until the sweep ends, so ids are not reused), not
a pattern walker: a rewritten value's users see it through the analysis at once, and a
kernel of a few thousand ops is simplified in one pass over it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from xdsl.context import Context
from xdsl.dialects import arith
from xdsl.dialects.builtin import IndexType, IntegerAttr, ModuleOp
from xdsl.ir import Block, BlockArgument, Operation, SSAValue
from xdsl.passes import ModulePass

from nnjit.ir.affine import AFFINE_OPS, Affine, IndexAnalysis
from nnjit.ir.fastir import (
    detach,
    drop_references,
    insert_before,
    kernels_under,
    new_op,
    operands_of,
    replace_all_uses,
    type_of,
    walk,
)

_INDEX = IndexType()
_NO_OVERFLOW = arith.IntegerOverflowAttr("none")
_CONSTS: dict[int, IntegerAttr] = {}
_DIVISIONS = frozenset(("arith.divsi", "arith.divui", "arith.remsi", "arith.remui"))
_HANDLED = AFFINE_OPS | _DIVISIONS
_BINARY: dict[str, type[Operation]] = {
    "arith.addi": arith.AddiOp, "arith.subi": arith.SubiOp, "arith.muli": arith.MuliOp,
}  # fmt: skip


def index_const(value: int) -> Operation:
    """`arith.constant value : index`, built fast (attributes cached)."""
    attr = _CONSTS.get(value)
    if attr is None:
        attr = IntegerAttr(value, _INDEX)
        if len(_CONSTS) < 1 << 14:
            _CONSTS[value] = attr
    return new_op(arith.ConstantOp, (), (_INDEX,), {"value": attr})


def _erase(op: Operation, graveyard: list[Operation]) -> None:
    """Detaches op, drops its uses of values and keeps it alive (its id stays unique)."""
    detach(op)
    drop_references(op)
    graveyard.append(op)


# ----------------------------------------------------------------------- canonical forms


def canonical(
    form: Affine,
    const: Callable[[int], Any],
    binary: Callable[[str, Any, Any], Any],
    atom: Callable[[SSAValue], Any],
) -> Any:
    """Builds the canonical expression of an affine form through three builders (a constant,
    a binary op by name, an atom): the terms in order, `atom * k` for k != 1 (subtracted
    when k < 0 after the first), then `+ c`."""
    terms, c = form
    expr = None
    for a, k in terms.items():
        if expr is None:
            expr = atom(a) if k == 1 else binary("arith.muli", atom(a), const(k))
        else:
            m = abs(k)
            term = atom(a) if m == 1 else binary("arith.muli", atom(a), const(m))
            expr = binary("arith.addi" if k > 0 else "arith.subi", expr, term)
    if expr is None:
        return const(c)
    return binary("arith.addi", expr, const(c)) if c else expr


def _const_key(c: int) -> tuple:
    return ("c", c)


def _bin_key(name: str, a: tuple, b: tuple) -> tuple:
    return (name, a, b)


def _atom_key(v: SSAValue) -> tuple:
    return ("a", id(v))


class _Simplifier:
    """One kernel's sweep: the analysis, the shapes of the expressions (existing and built),
    the values visible per block by shape (reused when a canonical form is built), the
    erased ops (kept alive)."""

    def __init__(self) -> None:
        self.facts = IndexAnalysis()
        self.shapes: dict[int, tuple] = {}
        # id(block) -> shape -> a value of that shape defined so far in the block (the
        # sweep is in program order: what an enclosing block holds dominates a nested one)
        self.avail: dict[int, dict[tuple, SSAValue]] = {}
        self.blocks: list[Block] = []  # (the blocks of `avail`, kept alive)
        self.graveyard: list[Operation] = []
        self.rewritten = 0

    def shape(self, v: SSAValue) -> tuple:
        """The structure of an index expression, as `canonical` keys it."""
        s = self.shapes.get(id(v))
        if s is not None:
            return s
        c = self.facts.const_int(v)
        if c is not None and type(v) is not BlockArgument:
            s = ("c", c)
        elif type(v) is BlockArgument or v.owner.name not in AFFINE_OPS:  # type: ignore[union-attr]
            s = ("a", id(v))
        else:
            op = v.owner
            x, y = operands_of(op)  # type: ignore[arg-type]
            s = (op.name, self.shape(x), self.shape(y))  # type: ignore[union-attr]
        self.shapes[id(v)] = s
        return s

    def form(self, op: Operation) -> Affine | None:
        """The affine form op's result should have, or None where nothing is known."""
        facts = self.facts
        (r,) = op.results
        if op.name in AFFINE_OPS:
            return facts.affine(r)
        x, d = operands_of(op)
        dc = facts.const_int(d)
        if dc is None or dc <= 0:
            return None
        unsigned = op.name in ("arith.divui", "arith.remui")
        terms, c = facts.affine(x)
        if any(k % dc for k in terms.values()):
            return None
        exact = c % dc == 0
        if not (facts.nonneg(x) or (exact and not unsigned)):
            return None
        if op.name.startswith("arith.div"):
            # (exact: c // dc is the quotient whatever the sign; else the dividend is >= 0)
            return ({a: k // dc for a, k in terms.items()}, c // dc)
        return ({}, c % dc)

    def offer(self, v: SSAValue, block: Block) -> None:
        """Makes v (defined in `block`) visible for reuse from here on."""
        table = self.avail.get(id(block))
        if table is None:
            table = self.avail[id(block)] = {}
            self.blocks.append(block)
        table.setdefault(self.shape(v), v)

    def find(self, shape: tuple, block: Block | None) -> SSAValue | None:
        """A value of `shape` visible from the end of `block` (so far), else None."""
        while block is not None:
            table = self.avail.get(id(block))
            v = table.get(shape) if table is not None else None
            if v is not None and v.owner.parent is not None:  # type: ignore[union-attr]
                return v
            parent = block.parent_op()
            block = parent.parent_block() if parent is not None else None
        return None

    def build(self, form: Affine, before: Operation) -> SSAValue:
        """The canonical expression of `form`, built before `before` (reusing the values of
        the same shape that are visible there)."""
        block = before.parent
        assert block is not None

        def made(shape: tuple, op: Operation) -> tuple[tuple, SSAValue]:
            insert_before(block, op, before)
            (v,) = op.results
            self.shapes[id(v)] = shape
            self.offer(v, block)
            return shape, v

        def const(c: int) -> tuple[tuple, SSAValue]:
            shape = ("c", c)
            v = self.find(shape, block)
            return (shape, v) if v is not None else made(shape, index_const(c))

        def binary(name: str, a: tuple, b: tuple) -> tuple[tuple, SSAValue]:
            shape = (name, a[0], b[0])
            v = self.find(shape, block)
            if v is not None:
                return shape, v
            props = {"overflowFlags": _NO_OVERFLOW}
            return made(shape, new_op(_BINARY[name], (a[1], b[1]), (_INDEX,), props))

        return canonical(form, const, binary, lambda a: (("a", id(a)), a))[1]

    def run(self, kernel: Operation) -> None:
        for op in walk(kernel):
            name = op.name
            if name not in _HANDLED and name != "arith.constant":
                continue
            if op.parent is None:  # (erased)
                continue
            (r,) = op.results
            if type(type_of(r)) is not IndexType:
                continue
            if name == "arith.constant":
                self.offer(r, op.parent)
                continue
            form = self.form(op)
            if form is None:
                continue
            terms, c = form
            if r in terms:  # (its own atom: a product of non-constants)
                continue
            want = canonical(form, _const_key, _bin_key, _atom_key)
            if name in AFFINE_OPS and want == self.shape(r):
                self.offer(r, op.parent)
                continue
            if want[0] == "a":  # the form is one of its atoms: use it
                new = next(iter(terms))
            else:
                new = self.find(want, op.parent)
                if new is None:
                    new = self.build(form, op)
            self.replace(op, new)

    def replace(self, op: Operation, new: SSAValue) -> None:
        """Replaces op's result by `new` (which takes its name where it has none, as xDSL's
        replace_all_uses_with does), erases op and then the index ops it leaves dead."""
        self.rewritten += 1
        replace_all_uses(op.results[0], new)
        work = [op]
        while work:
            o = work.pop()
            if o.parent is None or o.results[0].first_use is not None:
                continue
            defs = [x.owner for x in operands_of(o) if type(x) is not BlockArgument]
            _erase(o, self.graveyard)
            for d in defs:
                if (d.name in _HANDLED or d.name == "arith.constant") and len(d.results) == 1:
                    if type(type_of(d.results[0])) is IndexType:
                        work.append(d)  # type: ignore[arg-type]


def simplify_index(root: Operation) -> int:
    """Rewrites the index arithmetic of every kernel under `root` (a kernel itself, or a
    module) into canonical form; the number of ops replaced."""
    n = 0
    for kernel in kernels_under(root):
        s = _Simplifier()
        s.run(kernel)
        n += s.rewritten
    return n


# ----------------------------------------------------------- constant folding (unrolling)


def fold_index_op(
    op: Operation, lhs: SSAValue, rhs: SSAValue, const_int: Callable[[SSAValue], int | None]
) -> SSAValue | Operation | None:
    """What an index addi/subi/muli `op` with operands lhs, rhs folds to: a new constant op
    for two constants; x for x + 0, 0 + x, x - 0, x * 1 and 1 * x; None otherwise (what
    nn-loop-unroll folds in the copies it makes, as it clones them; the rest of the canonical
    form is `simplify_index`'s)."""
    if type(type_of(op.results[0])) is not IndexType:
        return None
    a, b = const_int(lhs), const_int(rhs)
    cls = type(op)
    mul = cls is arith.MuliOp
    if a is not None and b is not None:
        return index_const(a * b if mul else a + b if cls is arith.AddiOp else a - b)
    if b == (1 if mul else 0):
        return lhs
    if a == (1 if mul else 0) and cls is not arith.SubiOp:
        return rhs
    return None


@dataclass(frozen=True)
class NNLoopSimplifyIndexPass(ModulePass):
    """Writes the index arithmetic of nn_loop kernels in canonical form (see the module
    docstring).

    Takes nn_loop IR; gives the same IR with each index addi/subi/muli in a kernel rebuilt as
    `t1 + t2 - t3 ... + c` from its affine form, and index divisions and remainders by
    constants folded where exact or where the dividend is known non-negative.
    """

    name = "nn-loop-simplify-index"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        simplify_index(op)
