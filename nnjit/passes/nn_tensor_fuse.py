"""nn-tensor-fuse: group nn_tensor ops into `nn_tensor.fused` kernels.

Contract of the fused ops this pass builds (the tensor-to-loop lowering relies on it):

    %r = nn_tensor.fused %in0, %in1, ... {kind = "<kind>"} : (T0, T1, ...) -> R {
    ^bb0(%a0: T0, %a1: T1, ...):
      %c = nn_tensor.constant dense<v> : tensor<...>   // cloned splat constants, first
      ... prologue ops ...                             // elementwise (or one transpose)
      %root = <root op>                                // absent for kind "elementwise"
      ... epilogue ops ...                             // elementwise, shape of the root
      nn_tensor.yield %last : R
    }

* Operands are the distinct values from outside that the body reads, in order of first read
  (walking the body in order, each op's operands in order); block argument i is operand i.
  A splat `nn_tensor.constant` read by an elementwise op of the body is cloned once at the
  top of the body instead (so the kernel sees a scalar, not a buffer); the root and
  data-movement ops read everything (splat constants included) from block arguments.
  Non-splat constants and weights are always operands.
* The body is in the original program order; it has exactly one result, yielded last. Every
  value defined in the body other than the yielded one is used only inside the body.
* Kinds and bodies:
  - "matmul": root `nn_tensor.matmul` or `nn_tensor.gemm`. Prologue: at most one
    `nn_tensor.transpose` per matmul operand (A and/or B), only when it swaps the last two dims
    and keeps the batch dims (perm = [0, ..., n-1, n-2]) and the matmul is its only user.
    Epilogue: elementwise ops (below).
  - "conv": root `nn_tensor.conv`; epilogue only.
  - "softmax", "layer_norm", "reduce" (reduce_mean, reduce_sum, reduce_max): root plus an
    elementwise prologue computing the root's first operand (the input; never scale or bias),
    plus an epilogue. Every prologue value is used only by other prologue ops or as the root's
    first operand.
  - "elementwise": no root; a maximal group of elementwise ops (`nn_tensor.ElementwiseOp`
    subclasses) whose values other than the result are used only inside the group. The
    yielded result's shape is the kernel's iteration space; every operand and intermediate
    broadcasts (numpy rules) to it.
  - "transpose", "gather", "gather_nd", "slice", "concat", "expand": one data-movement op
    alone (body = that op and the yield). This pass always wraps lone data-movement ops; it
    never leaves a kernel-worthy op outside a fused op.
  Epilogue (matmul, conv, softmax, layer_norm, reduce): elementwise ops applied after the
  root whose result shapes all equal the root's result shape; the root's result and each
  epilogue value other than the last are used only inside the body (a DAG is allowed: the
  tanh-GELU chain reads its input three times); their other operands do not depend on the
  root. Of the candidate epilogues the largest one is taken.
* `nn_tensor.reshape`, `nn_tensor.weight`, `nn_tensor.constant` stay outside fused ops
  (a reshape becomes a view), as do ops with several results (`nn_tensor.split`: run
  nn-tensor-fold first, which turns it into slices) and existing `nn_tensor.fused` ops (the
  pass is idempotent).
* Roots are grouped first in program order (so a producer's epilogue wins over a consumer's
  prologue), then elementwise groups (from the last op backwards), then the lone
  data-movement ops. The fused op is placed where its yielded op was.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import builtin, func
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from nnjit.dialects import nn_tensor as nt

ROOT_KINDS: dict[type[Operation], str] = {
    nt.MatmulOp: "matmul",
    nt.GemmOp: "matmul",
    nt.ConvOp: "conv",
    nt.SoftmaxOp: "softmax",
    nt.LayerNormOp: "layer_norm",
    nt.ReduceMeanOp: "reduce",
    nt.ReduceSumOp: "reduce",
    nt.ReduceMaxOp: "reduce",
}
"""Root ops and the kind of the kernel they head."""

DATA_MOVEMENT_KINDS: dict[type[Operation], str] = {
    nt.TransposeOp: "transpose",
    nt.GatherOp: "gather",
    nt.GatherNDOp: "gather_nd",
    nt.SliceOp: "slice",
    nt.ConcatOp: "concat",
    nt.ExpandOp: "expand",
}
"""Data-movement ops that become kernels of their own."""

_PROLOGUE_KINDS = ("softmax", "layer_norm", "reduce")

MAX_FUSED_ELEMENTWISE = 32
"""Elementwise ops one kernel takes (an elementwise group, a prologue or an epilogue): a
longer chain is split over several kernels. A kernel's expressions nest as deep as its chain,
and the lowerings and printers walk them recursively (300 chained Sigmoids hit Python's
recursion limit in one kernel)."""


def is_kernel_worthy(op: Operation) -> bool:
    """Whether `op` must end up inside exactly one nn_tensor.fused op after this pass."""
    return (
        type(op) in ROOT_KINDS
        or type(op) in DATA_MOVEMENT_KINDS
        or isinstance(op, nt.ElementwiseOp)
    )


def _is_splat_constant(value: SSAValue) -> bool:
    op = value.owner
    if not isinstance(op, nt.ConstantOp):
        return False
    return op.value.is_splat() if len(op.value) > 0 else False


def _users(value: SSAValue) -> set[Operation]:
    return {u.operation for u in value.uses}


def _swaps_last_two(op: nt.TransposeOp) -> bool:
    perm = list(nt.array_values(op.perm))
    n = len(perm)
    return n >= 2 and perm == [*range(n - 2), n - 1, n - 2]


@dataclass
class _Group:
    kind: str
    ops: list[Operation]  # in program order; ops[-1] is the yielded op


class _BlockFuser:
    """Finds the groups of one block (a function body) and builds their fused ops."""

    def __init__(self, block: Block):
        self.block = block
        self.order = {op: i for i, op in enumerate(block.ops)}
        self.claimed: set[Operation] = set()

    def _free_elementwise(self, value: SSAValue) -> Operation | None:
        op = value.owner
        if (
            isinstance(op, nt.ElementwiseOp)
            and op.parent is self.block
            and op not in self.claimed
            and len(op.results) == 1
        ):
            return op
        return None

    # ------------------------------------------------------------------- prologues

    def _transpose_prologue(self, root: Operation) -> list[Operation]:
        ops = []
        for operand in root.operands[:2]:
            t = operand.owner
            if (
                isinstance(t, nt.TransposeOp)
                and t.parent is self.block
                and t not in self.claimed
                and t not in ops
                and _swaps_last_two(t)
                and _users(t.result) == {root}
            ):
                ops.append(t)
        return ops

    def _elementwise_prologue(self, root: Operation) -> list[Operation]:
        main = root.operands[0]
        group: set[Operation] = set()

        def uses_ok(op: Operation) -> bool:
            for use in op.results[0].uses:
                if use.operation is root:
                    if use.index != 0:
                        return False
                elif use.operation not in group:
                    return False
            return True

        changed = True
        while changed:
            changed = False
            frontier = [main] + [v for op in group for v in op.operands]
            for v in frontier:
                if len(group) >= MAX_FUSED_ELEMENTWISE:
                    break
                p = self._free_elementwise(v)
                if p is not None and p not in group and uses_ok(p):
                    group.add(p)
                    changed = True
        if main.owner not in group:
            return []
        return list(group)

    # -------------------------------------------------------------------- epilogue

    def _epilogue(self, root: Operation, inside: set[Operation]) -> list[Operation]:
        shape = nt.shape_of(root.results[0])
        closure: list[Operation] = []
        seen: set[Operation] = set()
        work = [root]
        while work:
            op = work.pop()
            for r in op.results:
                for user in _users(r):
                    if user in seen:
                        continue
                    e = self._free_elementwise(user.results[0]) if user.results else None
                    if e is None or nt.shape_of(e.results[0]) != shape:
                        continue
                    seen.add(e)
                    closure.append(e)
                    work.append(e)
        if not closure:
            return []
        universe = seen | {root}
        best: list[Operation] = []
        for out in sorted(closure, key=self.order.__getitem__, reverse=True):
            members: set[Operation] = set()
            stack = [out]
            while stack:
                op = stack.pop()
                if op in members or op is root:
                    continue
                members.add(op)
                stack.extend(v.owner for v in op.operands if v.owner in universe)
            everything = members | inside
            ok = all(
                _users(r) <= everything
                for op in everything
                if op is not out
                for r in op.results
            )
            if ok and len(best) < len(members) <= MAX_FUSED_ELEMENTWISE:
                best = sorted(members, key=self.order.__getitem__)
        return best

    # ---------------------------------------------------------------------- groups

    def _claim(self, kind: str, ops: Iterable[Operation]) -> _Group:
        ops = sorted(set(ops), key=self.order.__getitem__)
        self.claimed.update(ops)
        return _Group(kind, ops)

    def find_groups(self) -> list[_Group]:
        groups: list[_Group] = []
        ops = list(self.block.ops)
        for op in ops:
            kind = ROOT_KINDS.get(type(op))
            if kind is None or op in self.claimed:
                continue
            self.claimed.add(op)
            if kind == "matmul":
                prologue = self._transpose_prologue(op)
            elif kind in _PROLOGUE_KINDS:
                prologue = self._elementwise_prologue(op)
            else:
                prologue = []
            self.claimed.update(prologue)
            epilogue = self._epilogue(op, {op, *prologue})
            groups.append(self._claim(kind, [*prologue, op, *epilogue]))
        for op in reversed(ops):
            if not isinstance(op, nt.ElementwiseOp) or op in self.claimed:
                continue
            if len(op.results) != 1:
                continue
            group = {op}
            self.claimed.add(op)
            changed = True
            while changed:
                changed = False
                for member in list(group):
                    for v in member.operands:
                        if len(group) >= MAX_FUSED_ELEMENTWISE:
                            break
                        p = self._free_elementwise(v)
                        if p is not None and _users(p.results[0]) <= group:
                            group.add(p)
                            self.claimed.add(p)
                            changed = True
            groups.append(self._claim("elementwise", group))
        for op in ops:
            kind = DATA_MOVEMENT_KINDS.get(type(op))
            if kind is not None and op not in self.claimed:
                groups.append(self._claim(kind, [op]))
        return groups


def build_fused(kind: str, ops: list[Operation]) -> nt.FusedOp:
    """Replace `ops` (program order, last one yielded) by one nn_tensor.fused op of `kind`."""
    members = set(ops)
    output = ops[-1]
    inputs: list[SSAValue] = []
    constants: list[SSAValue] = []
    for op in ops:
        for v in op.operands:
            if isinstance(v.owner, Operation) and v.owner in members:
                continue
            cloned = _is_splat_constant(v) and isinstance(op, nt.ElementwiseOp)
            target = constants if cloned else inputs
            if v not in target:
                target.append(v)
    block = Block(arg_types=[v.type for v in inputs])
    mapper: dict[SSAValue, SSAValue] = {}
    for v, arg in zip(inputs, block.args):
        mapper[v] = arg
        if v.name_hint is not None:
            arg.name_hint = v.name_hint
    scalars: dict[SSAValue, SSAValue] = {}
    for v in constants:
        clone = v.owner.clone()  # pyright: ignore[reportOptionalMemberAccess]
        block.add_op(clone)
        scalars[v] = clone.results[0]
    for op in ops:
        local = {**mapper, **scalars} if isinstance(op, nt.ElementwiseOp) else dict(mapper)
        new = op.clone(value_mapper=local)
        mapper.update(zip(op.results, new.results))
        block.add_op(new)
    block.add_op(nt.YieldOp(mapper[output.results[0]]))
    fused = nt.FusedOp(kind, inputs, output.results[0].type, Region(block))
    fused.result.name_hint = output.results[0].name_hint
    Rewriter.insert_op(fused, InsertPoint.before(output))
    output.results[0].replace_all_uses_with(fused.result)
    for op in reversed(ops):
        Rewriter.erase_op(op)
    for v in constants:
        if v.owner is not None and not v.uses:
            Rewriter.erase_op(v.owner)  # pyright: ignore[reportArgumentType]
    return fused


@dataclass(frozen=True)
class NNTensorFusePass(ModulePass):
    """Groups every kernel-worthy nn_tensor op into exactly one nn_tensor.fused op."""

    name = "nn-tensor-fuse"

    def apply(self, ctx: Context, op: builtin.ModuleOp) -> None:
        for f in op.walk():
            if not isinstance(f, func.FuncOp) or not f.body.blocks:
                continue
            for block in list(f.body.blocks):
                for group in _BlockFuser(block).find_groups():
                    build_fused(group.kind, group.ops)
