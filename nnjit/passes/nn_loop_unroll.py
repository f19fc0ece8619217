"""nn-loop-unroll: replicate the bodies of nn_loop.for loops that ask for it (`unroll U`)."""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import arith
from xdsl.dialects.builtin import IndexType, IntegerAttr, ModuleOp
from xdsl.ir import Block, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from nnjit.dialects.nn_loop import ForOp, YieldOp


def _clone_body(body: Block, iv_value: SSAValue, rewriter: Rewriter, point: InsertPoint):
    """Clones the ops of `body` (minus its terminator) at `point`, with the iv mapped."""
    mapping: dict[SSAValue, SSAValue] = {body.args[0]: iv_value}
    for op in body.ops:
        if isinstance(op, YieldOp):
            continue
        rewriter.insert_op(op.clone(value_mapper=mapping), point)


def unroll_loop(loop: ForOp) -> None:
    """Unrolls `loop` by its `unroll` factor U: a loop of step S*U with U copies of the body,
    or straight-line code with constant ivs when U is the trip count."""
    factor = loop.unroll.value.data
    if factor <= 1:
        return
    lb, step = loop.lb.value.data, loop.step.value.data
    rewriter = Rewriter()
    body = loop.body.block
    if factor == loop.trip_count:
        point = InsertPoint.before(loop)
        for k in range(factor):
            iv = arith.ConstantOp(IntegerAttr(lb + k * step, IndexType()))
            rewriter.insert_op(iv, point)
            _clone_body(body, iv.result, rewriter, point)
        rewriter.erase_op(loop)
        return
    new_loop = ForOp(lb, loop.ub.value.data, step * factor, loop.map.data, 1)
    new_loop.attributes |= loop.attributes
    new_body = new_loop.body.block
    point = InsertPoint.before(new_body.last_op)  # before the yield
    for k in range(factor):
        if k == 0:
            iv: SSAValue = new_body.args[0]
        else:
            off = arith.ConstantOp(IntegerAttr(k * step, IndexType()))
            add = arith.AddiOp(new_body.args[0], off.result)
            rewriter.insert_op([off, add], point)
            iv = add.result
        _clone_body(body, iv, rewriter, point)
    rewriter.replace_op(loop, new_loop, [])


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


def unroll_all(root: Operation) -> None:
    """Unrolls every marked loop under `root`, innermost loops first, then folds the index
    arithmetic that unrolling made constant (so private-buffer indices become constants)."""
    loops = [o for o in root.walk() if isinstance(o, ForOp) and o.unroll.value.data > 1]
    for loop in reversed(loops):  # walk is pre-order: reversed visits inner loops first
        unroll_loop(loop)
    if loops:
        fold_index_arith(root)


_FOLDS = {
    arith.AddiOp: lambda a, b: a + b,
    arith.SubiOp: lambda a, b: a - b,
    arith.MuliOp: lambda a, b: a * b,
}


def _const_index(v: SSAValue) -> int | None:
    op = v.owner
    if isinstance(op, arith.ConstantOp) and isinstance(v.type, IndexType):
        val = op.value
        if isinstance(val, IntegerAttr):
            return val.value.data
    return None


def fold_index_arith(root: Operation) -> None:
    """Folds index add/sub/mul of constants, and x + 0, x - 0, x * 1 (one forward sweep)."""
    rewriter = Rewriter()
    for op in list(root.walk()):
        fold = _FOLDS.get(type(op))
        if fold is None or not isinstance(op.results[0].type, IndexType):
            continue
        lhs, rhs = op.operands
        a, b = _const_index(lhs), _const_index(rhs)
        if a is not None and b is not None:
            rewriter.replace_op(op, arith.ConstantOp(IntegerAttr(fold(a, b), IndexType())))
        elif (b == 0 and not isinstance(op, arith.MuliOp)) or (b == 1 and isinstance(op, arith.MuliOp)):
            rewriter.replace_op(op, [], [lhs])
        elif (a == 0 and isinstance(op, arith.AddiOp)) or (a == 1 and isinstance(op, arith.MuliOp)):
            rewriter.replace_op(op, [], [rhs])
