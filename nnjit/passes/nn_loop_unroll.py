"""nn-loop-unroll: replicate the bodies of nn_loop.for loops that ask for it (`unroll U`)."""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import arith
from xdsl.dialects.builtin import IndexType, ModuleOp
from xdsl.ir import Block, Operation, SSAValue
from xdsl.passes import ModulePass

from nnjit.dialects.nn_loop import ForOp, YieldOp
from nnjit.ir.fastir import (
    append,
    clone_op,
    insert_before,
    new_op,
    next_op_of,
)
from nnjit.ir.fastir import walk as _walk
from nnjit.passes.nn_loop_simplify_index import fold_index_constants, index_const

_INDEX = IndexType()
_NO_OVERFLOW = arith.IntegerOverflowAttr("none")


def _insert(block: Block, op: Operation, before: Operation | None) -> None:
    if before is None:
        append(block, op)
    else:
        insert_before(block, op, before)


def _clone_body(body: Block, iv_value: SSAValue, block: Block, before: Operation | None):
    """Clones the ops of `body` (minus its terminator) into `block` before `before` (at
    its end if None), with the iv mapped."""
    mapping: dict[SSAValue, SSAValue] = {body.args[0]: iv_value}
    op = body.first_op
    while op is not None:
        if type(op) is not YieldOp:
            _insert(block, clone_op(op, mapping), before)
        op = next_op_of(op)


def unroll_loop(loop: ForOp) -> None:
    """Unrolls `loop` by its `unroll` factor U: a loop of step S*U with U copies of the body,
    or straight-line code with constant ivs when U is the trip count."""
    props = loop.properties
    factor = props["unroll"].value.data
    if factor <= 1:
        return
    lb, step = props["lb"].value.data, props["step"].value.data
    body = loop.body.block
    parent = loop.parent
    assert parent is not None
    if factor == loop.trip_count:
        for k in range(factor):
            iv = index_const(lb + k * step)
            insert_before(parent, iv, loop)
            _clone_body(body, iv.results[0], parent, loop)
        _erase(loop)
        return
    new_loop = ForOp(lb, props["ub"].value.data, step * factor, props["map"].data, 1)
    new_loop.attributes |= loop.attributes
    new_body = new_loop.body.block
    new_body.args[0].name_hint = body.args[0].name_hint
    yield_op = new_body.last_op  # the copies go before it
    for k in range(factor):
        if k == 0:
            iv: SSAValue = new_body.args[0]
        else:
            off = index_const(k * step)
            add = new_op(
                arith.AddiOp, (new_body.args[0], off.results[0]), (_INDEX,),
                {"overflowFlags": _NO_OVERFLOW},
            )  # fmt: skip
            insert_before(new_body, off, yield_op)
            insert_before(new_body, add, yield_op)
            iv = add.results[0]
            iv.name_hint = body.args[0].name_hint  # (the conversions name a copy's iv so)
        _clone_body(body, iv, new_body, yield_op)
    parent.insert_op_before(new_loop, loop)
    _erase(loop)


def _erase(op: Operation) -> None:
    """Detaches op and drops the uses it (and the ops nested in it) make of values."""
    op.parent.detach_op(op)  # type: ignore[union-attr]
    op.drop_all_references()


@dataclass(frozen=True)
class NNLoopUnrollPass(ModulePass):
    """Unrolls every nn_loop.for with `unroll U` > 1 (innermost first).

    Takes nn_loop IR; gives the same IR with those loops replaced by a loop of step S*U whose
    body holds U copies of the original body (ivs iv, iv+S, ...), or, when U equals the trip
    count, by U copies with constant ivs and no loop at all.
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
    """Unrolls every marked loop under `root`, innermost loops first, then folds the index
    arithmetic that unrolling made constant (so private-buffer indices become constants)."""
    loops = _loops(root)
    for loop in reversed(loops):  # pre-order: reversed visits inner loops first
        unroll_loop(loop)
    if loops:  # (the folding sweep is nn-loop-simplify-index's, which owns index folding)
        fold_index_constants(root)
