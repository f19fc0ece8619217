"""nn-loop-unroll: replicate the bodies of nn_loop.for loops that ask for it (`unroll U`)."""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import arith
from xdsl.dialects.builtin import IndexType, ModuleOp
from xdsl.ir import Block, Operation, SSAValue
from xdsl.passes import ModulePass

from nnjit.dialects.nn_loop import ForOp, YieldOp
from nnjit.ir.affine import IndexAnalysis
from nnjit.ir.fastir import (
    clone_block_into,
    detach,
    drop_references,
    i64_attr,
    insert_before,
    move_ops_before,
    name_of,
    new_op,
    operands_of,
    replace_all_uses,
    set_name,
)
from nnjit.ir.fastir import walk as _walk
from nnjit.passes.nn_loop_simplify_index import fold_index_op, index_const

_INDEX = IndexType()
_NO_OVERFLOW = arith.IntegerOverflowAttr("none")
_FOLDED = frozenset((arith.AddiOp, arith.SubiOp, arith.MuliOp))


class _Fold:
    """Index arithmetic of the copies folded as they are cloned (`fold_index_op`: two
    constants, or x + 0, x * 1...), with the constants known so far."""

    def __init__(self) -> None:
        self.const_int = IndexAnalysis().const_int  # (cached by id: see `graveyard`)
        self.graveyard: list[Operation] = []  # erased loops, kept alive: ids stay unique

    def __call__(self, op: Operation, operands: list[SSAValue]) -> SSAValue | Operation | None:
        lhs, rhs = operands
        return fold_index_op(op, lhs, rhs, self.const_int)


def _clone_body(body: Block, iv_value: SSAValue, block: Block, before: Operation, fold: _Fold,
                stop: Operation | None = None) -> None:  # fmt: skip
    """Clones the ops of `body` (minus its terminator; up to `stop` if given) into `block`
    before `before`, with the iv mapped and the index arithmetic folded."""
    clone_block_into(body, block, before, {id(body.args[0]): iv_value}, YieldOp, fold, _FOLDED, stop)


def _fold_in_place(ops: list[Operation], fold: _Fold) -> None:
    """Folds the index arithmetic among `ops` (in program order) as `_Fold` decides."""
    for op in ops:
        if type(op) not in _FOLDED:
            continue
        r = fold(op, list(operands_of(op)))
        if r is None:
            continue
        if isinstance(r, Operation):
            insert_before(op.parent, r, op)  # type: ignore[arg-type]
            r = r.results[0]
        replace_all_uses(op.results[0], r)
        _erase(op, fold)


def unroll_loop(loop: ForOp, fold: _Fold | None = None) -> None:
    """Unrolls `loop` by its `unroll` factor U: a loop of step S*U with U copies of the body,
    or straight-line code with constant ivs when U is the trip count; the copies' index
    arithmetic that became constant is folded.

    The loop's own body is one of the copies (the last one of a full unroll, the first one
    of a partial unroll, whose loop is `loop` itself with a new step), so U - 1 are cloned:
    cloning is most of the pass's time (bench/results/generation_time_bert_base.md)."""
    fold = fold or _Fold()
    props = loop.properties
    factor = props["unroll"].value.data
    if factor <= 1:
        return
    lb, step = props["lb"].value.data, props["step"].value.data
    body = loop.body.block
    parent = loop.parent
    assert parent is not None
    iv = body.args[0]
    yield_op = body.last_op
    original = _walk(loop)[1:]  # (the body's ops, nested ones included, in program order)
    if factor == loop.trip_count:
        for k in range(factor - 1):
            c = index_const(lb + k * step)
            insert_before(parent, c, loop)
            _clone_body(body, c.results[0], parent, loop, fold)
        c = index_const(lb + (factor - 1) * step)
        insert_before(parent, c, loop)
        replace_all_uses(iv, c.results[0])
        move_ops_before(body, yield_op, parent, loop)
        _fold_in_place(original, fold)
        _erase(loop, fold)
        return
    # the loop itself, with step S*U, holds the copies
    loop.properties = {**props, "step": i64_attr(step * factor), "unroll": i64_attr(1)}
    end: Operation | None = None  # the first op after the original ones
    for k in range(1, factor):
        off = index_const(k * step)
        add = new_op(
            arith.AddiOp, (iv, off.results[0]), (_INDEX,), {"overflowFlags": _NO_OVERFLOW},
        )  # fmt: skip
        set_name(add.results[0], name_of(iv))  # (copy k's iv: the iv's name)
        insert_before(body, off, yield_op)
        insert_before(body, add, yield_op)
        end = end or off
        _clone_body(body, add.results[0], body, yield_op, fold, stop=end)
    _fold_in_place(original, fold)


def _erase(op: Operation, fold: _Fold) -> None:
    """Detaches op and drops the uses it (and the ops nested in it) make of values."""
    detach(op)
    drop_references(op)
    fold.graveyard.append(op)


@dataclass(frozen=True)
class NNLoopUnrollPass(ModulePass):
    """Unrolls every nn_loop.for with `unroll U` > 1 (innermost first).

    Takes nn_loop IR; gives the same IR with each such loop stepping by S*U over U copies
    of its body (ivs iv, iv+S, ...), or, when U equals the trip count, replaced by U copies
    with constant ivs and no loop at all. The index arithmetic that the copies make constant
    is folded (nn_loop_simplify_index.fold_index_op).
    """

    name = "nn-loop-unroll"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        unroll_all(op)


def _loops(root: Operation) -> list[ForOp]:
    """The nn_loop.for ops with `unroll` > 1 under `root`, in pre-order."""
    out: list[ForOp] = []
    for op in _walk(root):
        if type(op) is ForOp and op.properties["unroll"].value.data > 1:
            out.append(op)
    return out


def unroll_all(root: Operation) -> None:
    """Unrolls every marked loop under `root`, innermost loops first, folding the index
    arithmetic that unrolling makes constant as it clones (so private-buffer indices become
    constants) rather than in a sweep afterwards: cloning ops only to fold them cost more
    than the rest of the pass (bench/results/generation_time_bert_base.md)."""
    fold = _Fold()
    for loop in reversed(_loops(root)):  # pre-order: reversed visits inner loops first
        unroll_loop(loop, fold)
