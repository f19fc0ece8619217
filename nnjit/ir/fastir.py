"""Fast construction and walking of xDSL IR for the code generators (xDSL 0.74).

Generating one kernel candidate builds a few hundred ops at two IR levels; xDSL's generic
constructors (IRDL argument matching, `Operation.__init__` going through the operand and
successor setters, `Block.add_op` checking that the op is not an ancestor of the block)
cost several times the work itself. These helpers set the same fields directly. They build
exactly what `Operation.create` builds for an op whose properties are all given (tests
compare the two: tests/test_fastir.py); verification stays where it was (nnjit-opt,
the tests), not in the hot path.

This is the one module of nnjit that touches xDSL's private fields (tests/test_layering.py):
the code generators read IR through the getters below, and a change of xDSL's internals is
fixed here alone.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from operator import attrgetter
from typing import Any

from xdsl.dialects.builtin import UNKNOWN_LOC, IntegerAttr, StringAttr
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue
from xdsl.ir.core import OpResult, SSAValues, Use

_new = object.__new__

# ------------------------------------------------------------------- garbage collection

YOUNG_THRESHOLD = 50_000
"""The young-generation threshold while IR is built in bulk (`fewer_collections`)."""


@contextmanager
def fewer_collections(young: int = YOUNG_THRESHOLD) -> Iterator[None]:
    """Raises the cyclic collector's young-generation threshold to `young` allocations for
    the scope, and puts the caller's thresholds back after.

    xDSL IR is cyclic (ops, results, uses and blocks point at each other), so a pass that builds
    and drops a few thousand ops makes work for the collector: at CPython's default of 700 it
    runs several young collections per kernel candidate, each promoting the IR under
    construction, and so triggers the costly middle and full collections (a full one traverses
    every live object of the process). With a larger threshold most of a candidate's objects
    are garbage by the next young collection and die there. Measured on BERT-base's 16 kernels
    in CPU time (bench/results/generation_time_bert_base.md): the median of each kernel's mean
    over its runs, collections included, falls from 5.12 to 3.86 ms (WGSL) and from 4.20 to
    3.60 ms (Wasm); the best runs are the same. Nothing is switched off: the collector
    runs, less often; nested scopes and a collector set up otherwise by the program (a higher
    threshold, 0: off) are left as they are. This is the one place nnjit touches the
    collector (tests/test_layering.py)."""
    old = gc.get_threshold()
    if old[0] == 0 or old[0] >= young:
        yield
        return
    gc.set_threshold(young, old[1], old[2])
    try:
        yield
    finally:
        gc.set_threshold(*old)


# --------------------------------------------------------------------------- reading IR
# The code generators read IR in their inner loops, where xDSL's public properties (Python
# calls: `op.operands`, `v.type`, `op.next_op`...) cost 3-4x a field read. These getters read
# the fields behind them at a field read's cost (operator.attrgetter runs in C); nothing
# outside this module touches xDSL's private fields (tests/test_layering.py checks).

operands_of: Callable[[Operation], SSAValues] = attrgetter("_operands")
"""`op.operands`: the operand values, a tuple."""
type_of: Callable[[SSAValue], Attribute] = attrgetter("_type")
"""`v.type`."""
name_of: Callable[[SSAValue], str | None] = attrgetter("_name")
"""`v.name_hint`."""
first_op_of: Callable[[Block], Operation | None] = attrgetter("_first_op")
"""`block.first_op`."""
next_op_of: Callable[[Operation], Operation | None] = attrgetter("_next_op")
"""`op.next_op`."""
block_args_of: Callable[[Block], tuple] = attrgetter("_args")
"""`block.args`."""
first_block_of: Callable[[Region], Block | None] = attrgetter("_first_block")
"""`region.first_block`."""
use_op_of: Callable[[Use], Operation] = attrgetter("_operation")
"""`use.operation`."""
next_use_of: Callable[[Use], Use | None] = attrgetter("_next_use")
"""The next use of the same value (`SSAValue.uses` walks these from `first_use`)."""


def set_name(v: SSAValue, name: str | None) -> None:
    """`v.name_hint = name` for a name already valid (taken from another value), unchecked."""
    v._name = name



def new_op(
    cls: type[Operation],
    operands: Sequence[SSAValue] = (),
    result_types: Sequence[Attribute] = (),
    properties: dict[str, Attribute] | None = None,
    regions: Sequence[Region] = (),
    attributes: dict[str, Attribute] | None = None,
) -> Operation:
    """`cls.create(operands=..., result_types=..., properties=..., regions=...)`, faster.
    `properties` and `attributes` are taken over (not copied): pass fresh dicts."""
    return init_op(_new(cls), operands, result_types, properties, regions, attributes)


def init_op(
    op: Operation,
    operands: Sequence[SSAValue] = (),
    result_types: Sequence[Attribute] = (),
    properties: dict[str, Attribute] | None = None,
    regions: Sequence[Region] = (),
    attributes: dict[str, Attribute] | None = None,
) -> Operation:
    """`Operation.__init__` of a new (uninitialised) op, as `new_op` builds it. Fields whose
    class default is right (empty operands, results, successors and regions; no parent) are
    left to the class: they are immutable."""
    if operands:
        uses = []
        for i, v in enumerate(operands):
            u = _new(Use)
            u._operation = op
            u._index = i
            first = v.first_use
            u._next_use = first  # (_prev_use: the class default, None)
            if first is not None:
                first._prev_use = u
            v.first_use = u
            uses.append(u)
        op._operands = SSAValues(operands)
        op._operand_uses = tuple(uses)
    if result_types:
        if len(result_types) == 1:  # (most ops: no list to build)
            r = _new(OpResult)
            r._type = result_types[0]
            r.op = op
            r.index = 0
            op.results = SSAValues((r,))
        else:
            res = []
            for i, t in enumerate(result_types):
                r = _new(OpResult)
                r._type = t
                r.op = op
                r.index = i
                res.append(r)
            op.results = SSAValues(res)
    op.properties = {} if properties is None else properties
    op.attributes = {} if attributes is None else attributes
    op.location = UNKNOWN_LOC
    if regions:
        for r in regions:
            if r.parent is not None:
                raise ValueError("Cannot add region that is already attached on an operation.")
            r.parent = op
        op.regions = tuple(regions)
    return op


def fast_init(self: Operation, *, operands=(), result_types=(), properties=None, regions=()):
    """`IRDLOperation.__init__(self, ...)` for ops whose operand groups are given in order
    (a variadic group as a nested list; at most one variadic group, so no segment sizes) and
    whose properties are all given: without IRDL's generic argument processing."""
    ops: list[SSAValue] = []
    for o in operands:
        if isinstance(o, (list, tuple)):
            ops.extend(x if isinstance(x, SSAValue) else SSAValue.get(x) for x in o)
        else:
            ops.append(o if isinstance(o, SSAValue) else SSAValue.get(o))
    res: list[Attribute] = []
    for t in result_types:
        if isinstance(t, (list, tuple)):
            res.extend(t)
        else:
            res.append(t)
    init_op(self, ops, res, dict(properties) if properties else None, regions)


class IdentityCache:
    """f(a) for immutable attributes `a` (types, literals), cached by identity: equality and
    hashing of parametrized attributes are Python-level and recursive, and generated IR
    shares its attribute objects, so an id() lookup finds them. An entry keeps its attribute
    alive, so the id is not reused while it is cached; the cache is emptied past 4096."""

    def __init__(self, f: Callable[[Attribute], Any]):
        self.f = f
        self.entries: dict[int, tuple[Attribute, Any]] = {}

    def __call__(self, a: Attribute) -> Any:
        e = self.entries.get(id(a))
        if e is not None and e[0] is a:
            return e[1]
        value = self.f(a)
        if len(self.entries) > 4096:
            self.entries.clear()
        self.entries[id(a)] = (a, value)
        return value


@functools.lru_cache(maxsize=4096)
def i64_attr(v: int) -> IntegerAttr:
    """A shared i64 IntegerAttr (attributes are immutable; checking one costs ~10 us)."""
    return IntegerAttr(v, 64)


@functools.lru_cache(maxsize=4096)
def str_attr(v: str) -> StringAttr:
    """A shared StringAttr."""
    return StringAttr(v)


def result(op: Operation) -> SSAValue:
    return op.results[0]


def append(block: Block, op: Operation) -> None:
    """`block.add_op(op)` for a new op (no parent; regionless or not containing `block`)."""
    if op.parent is not None:
        raise ValueError("Can't add to a block an operation already attached to a block.")
    op.parent = block
    last = block._last_op
    if last is None:
        block._first_op = op
    else:
        last._next_op = op
        op._prev_op = last
    block._last_op = op


def detach(op: Operation) -> None:
    """`op.detach()`: unlinks op from its block (which must be its parent), faster."""
    block = op.parent
    if block is None:
        raise ValueError("Cannot detach a toplevel operation.")
    op.parent = None
    prev, nxt = op._prev_op, op._next_op
    if prev is None:
        block._first_op = nxt
    else:
        prev._next_op = nxt
        op._prev_op = None
    if nxt is None:
        block._last_op = prev
    else:
        nxt._prev_op = prev
        op._next_op = None


def drop_references(op: Operation) -> None:
    """`op.drop_all_references()` for an op without successors: its uses of values leave
    their use lists (regions, where it has any, drop theirs through xDSL)."""
    if op._successors:
        raise ValueError("drop_references: an op with successors")
    op.parent = None
    for v, use in zip(op._operands, op._operand_uses):
        prev, nxt = use._prev_use, use._next_use
        if prev is None:
            v.first_use = nxt
        else:
            prev._next_use = nxt
        if nxt is not None:
            nxt._prev_use = prev
    op._operand_uses = ()
    for region in op.regions:
        region.drop_all_references()


def replace_all_uses(old: SSAValue, new: SSAValue) -> None:
    """`old.replace_all_uses_with(new)`, faster: each use of `old` moves (the same Use object)
    to the front of `new`'s use list, in the order xDSL moves them, and its op's operand
    tuple gets `new` at the use's index; `new` takes old's name where it has none."""
    if new is old:
        return
    use = old.first_use
    while use is not None:
        nxt = use._next_use
        op = use._operation
        i = use._index
        ops = op._operands
        op._operands = SSAValues((*ops[:i], new, *ops[i + 1 :]))
        first = new.first_use
        use._prev_use = None
        use._next_use = first
        if first is not None:
            first._prev_use = use
        new.first_use = use
        use = nxt
    old.first_use = None
    if new._name is None:
        new._name = old._name


def insert_before(block: Block, op: Operation, before: Operation) -> None:
    """`block.insert_op_before(op, before)` for a new op (see `append`)."""
    if op.parent is not None:
        raise ValueError("Can't add to a block an operation already attached to a block.")
    if before.parent is not block:
        raise ValueError("Can't insert operation before operation not in this block.")
    op.parent = block
    prev = before._prev_op
    op._prev_op = prev
    op._next_op = before
    before._prev_op = op
    if prev is None:
        block._first_op = op
    else:
        prev._next_op = op


def clone_op(op: Operation, vmap: dict[SSAValue, SSAValue]) -> Operation:
    """`op.clone(value_mapper=vmap)` for an op without successors: operands are mapped
    through `vmap` (values defined outside `op` and not in `vmap` stay), results and block
    arguments are added to it, name hints are kept; regions are cloned the same way."""
    if op._successors:
        return op.clone(value_mapper=vmap)
    get = vmap.get
    regions = ()
    if op.regions:
        regions = []
        for region in op.regions:
            blocks = []
            for block in region.blocks:
                nb = Block(arg_types=[a._type for a in block._args])
                for a, b in zip(block._args, nb._args):
                    vmap[a] = b
                    b._name = a._name
                o = block._first_op
                while o is not None:
                    append(nb, clone_op(o, vmap))
                    o = o._next_op
                blocks.append(nb)
            regions.append(Region(blocks))
    new = new_op(
        type(op),
        [get(v, v) for v in op._operands],
        [r._type for r in op.results],
        dict(op.properties),
        regions,
        attributes=dict(op.attributes) if op.attributes else None,
    )
    new.location = op.location
    for a, b in zip(op.results, new.results):
        vmap[a] = b
        b._name = a._name
    return new




def clone_block_into(
    src: Block,
    dest: Block,
    before: Operation | None,
    vmap: dict[int, SSAValue],
    skip: type[Operation] | None = None,
    fold: Callable[[Operation, list[SSAValue]], SSAValue | Operation | None] | None = None,
    fold_types: frozenset[type[Operation]] = frozenset(),
    stop: Operation | None = None,
) -> None:
    """Clones the ops of `src` up to `stop` (excluded; None: all), but those of class `skip`
    (a terminator), into `dest` before `before` (at its end if None), as `clone_op` would, with `vmap` keyed by id(value) (an
    SSAValue hashes in Python, an int in C); nested regions are cloned the same way.

    For an op whose class is in `fold_types`, `fold(op, mapped operands)` may give a value
    to use instead of its result (no op is made), or an op (made with `new_op`, no
    results used yet) to put in its place; None clones it."""
    get = vmap.get
    o = src._first_op
    while o is not stop:
        cls = type(o)
        if cls is skip:
            o = o._next_op
            continue
        operands = [get(id(v), v) for v in o._operands]
        if cls in fold_types:
            r = fold(o, operands)  # type: ignore[misc]
            if r is not None:
                if isinstance(r, Operation):  # (a new op: no name hint)
                    vmap[id(o.results[0])] = r.results[0]
                    _link(dest, r, before)
                else:
                    vmap[id(o.results[0])] = r
                o = o._next_op
                continue
        # (init_op, inlined: this loop is most of nn-loop-unroll's time)
        new = _new(cls)
        if o.regions:  # (first, as init_op gets them: uses are made in the same order)
            regions = []
            for region in o.regions:
                blocks = []
                for block in region.blocks:
                    nb = Block(arg_types=[a._type for a in block._args])
                    for a, b in zip(block._args, nb._args):
                        vmap[id(a)] = b
                        b._name = a._name
                    clone_block_into(block, nb, None, vmap, None, fold, fold_types)
                    blocks.append(nb)
                region = Region(blocks)
                region.parent = new
                regions.append(region)
            new.regions = tuple(regions)
        if operands:
            uses = []
            i = 0
            for v in operands:
                u = _new(Use)
                u._operation = new
                u._index = i
                first = v.first_use
                u._next_use = first
                if first is not None:
                    first._prev_use = u
                v.first_use = u
                uses.append(u)
                i += 1
            new._operands = SSAValues(operands)
            new._operand_uses = tuple(uses)
        results = o.results
        if results:
            res = []
            i = 0
            for a in results:
                r = _new(OpResult)
                r._type = a._type
                r.op = new
                r.index = i
                r._name = a._name
                vmap[id(a)] = r
                res.append(r)
                i += 1
            new.results = SSAValues(res)
        new.properties = dict(o.properties)
        new.attributes = dict(o.attributes) if o.attributes else {}
        new.location = o.location
        _link(dest, new, before)
        o = o._next_op


def move_ops_before(src: Block, stop: Operation | None, dest: Block, before: Operation) -> None:
    """Moves the ops of `src` up to `stop` (excluded; None: all) to `dest` before `before`,
    in order (`detach_op` + `insert_op_before` for each, without the checks)."""
    first = src._first_op
    if first is None or first is stop:
        return
    last = first
    while True:
        last.parent = dest
        if last._next_op is stop:
            break
        last = last._next_op
    # unlink [first, last] from src
    src._first_op = stop
    if stop is None:
        src._last_op = None
    else:
        stop._prev_op = None
    # link it before `before`
    prev = before._prev_op
    first._prev_op = prev
    last._next_op = before
    before._prev_op = last
    if prev is None:
        dest._first_op = first
    else:
        prev._next_op = first


def _link(block: Block, op: Operation, before: Operation | None) -> None:
    """`insert_before` (`append` if before is None) without the checks: op is new."""
    op.parent = block
    if before is None:
        last = block._last_op
        if last is None:
            block._first_op = op
        else:
            last._next_op = op
            op._prev_op = last
        block._last_op = op
    else:
        prev = before._prev_op
        op._prev_op = prev
        op._next_op = before
        before._prev_op = op
        if prev is None:
            block._first_op = op
        else:
            prev._next_op = op


def _children(op: Operation) -> list[Operation]:
    """The ops directly nested in op's regions, in order."""
    out: list[Operation] = []
    for region in op.regions:
        for block in region.blocks:
            o = block._first_op
            while o is not None:
                out.append(o)
                o = o._next_op
    return out


def walk(root: Operation) -> list[Operation]:
    """root and the ops nested in it, pre-order (Operation.walk, as a list, faster)."""
    out: list[Operation] = []
    stack: list[Operation] = [root]
    while stack:
        op = stack.pop()
        out.append(op)
        if op.regions:
            nested = _children(op)
            nested.reverse()
            stack.extend(nested)
    return out


def ops_under(root: Operation, cls: type[Operation] | str) -> list[Operation]:
    """The `cls` ops (a class, or an op name) under `root` (root included) in program order,
    without walking into them."""
    out: list[Operation] = []
    stack = [root]
    named = isinstance(cls, str)
    while stack:
        op = stack.pop()
        if (op.name == cls) if named else isinstance(op, cls):  # type: ignore[arg-type]
            out.append(op)
            continue
        nested = _children(op)
        nested.reverse()
        stack.extend(nested)
    return out


def kernels_under(root: Operation) -> list[Operation]:
    """The nn_loop.kernel ops under `root` in program order, without walking their bodies."""
    return ops_under(root, "nn_loop.kernel")


def replace_kernels(root: Operation, target: str, convert) -> None:
    """Replaces each nn_loop.kernel of `target` under `root` by `convert(kernel)` (an op
    of the same symbol, inserted where the kernel was; the kernel is detached, not erased:
    nothing outside it uses its values)."""
    for k in kernels_under(root):
        if k.target.data != target:
            continue
        new = convert(k)
        block = k.parent
        block.insert_op_before(new, k)
        block.detach_op(k)


__all__ = [
    "replace_all_uses", "detach", "drop_references", "fewer_collections", "YOUNG_THRESHOLD",
    "operands_of", "type_of", "name_of", "first_op_of", "next_op_of", "block_args_of",
    "first_block_of", "use_op_of", "next_use_of", "set_name",
    "new_op", "init_op", "fast_init", "insert_before", "append", "clone_op", "clone_block_into",
    "move_ops_before",
    "result",
    "kernels_under", "ops_under", "replace_kernels", "walk", "i64_attr", "str_attr", "IdentityCache",
]  # fmt: skip
