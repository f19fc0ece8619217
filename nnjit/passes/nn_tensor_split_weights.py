"""nn-tensor-split-weights: keep every weight a kernel binds under a byte limit.

WebGPU binds a storage buffer whole, and a device only promises 128 MiB per binding
(maxStorageBufferBindingSize); GPT-2's token embedding alone is 147 MiB. This pass splits a
weight larger than `max-bytes` that is read by `nn_tensor.gather` along axis 0 into row chunks
`nn_tensor.weight "key#rows=A:B"` (rows A..B of entry `key`; the compiler slices the weights
file accordingly), gathers from every chunk with clamped indices, and selects per index:

    ids' = where(ids < 0, ids + V, ids)
    out  = gather(W[0:R], clamp(ids', 0, R-1))
    out  = where(ids' >= R, gather(W[R:2R], clamp(ids' - R, 0, R-1)), out)    ...

Weights used any other way are left alone (the runtime reports a clear error if a device
cannot bind them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    IntegerAttr,
    IntegerType,
    ModuleOp,
    TensorType,
    i1,
)
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from nnjit.dialects import nn_tensor as nt

ROWS_TAG = "#rows="


def chunk_key(key: str, start: int, stop: int) -> str:
    return f"{key}{ROWS_TAG}{start}:{stop}"


def parse_chunk_key(key: str) -> tuple[str, int, int] | None:
    """(base key, start row, stop row) of a chunk key, or None for a plain key."""
    base, sep, rows = key.rpartition(ROWS_TAG)
    if not sep:
        return None
    start, _, stop = rows.partition(":")
    return base, int(start), int(stop)


def _elem_bytes(t: TensorType) -> int:
    e = t.get_element_type()
    return 4 if not isinstance(e, IntegerType) else max(1, e.width.data // 8)


@dataclass(frozen=True)
class NNTensorSplitWeightsPass(ModulePass):
    """Splits weights over `max_bytes` read by axis-0 gathers into row chunks (see module doc)."""

    name = "nn-tensor-split-weights"
    max_bytes: int = 128 << 20

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for w in [o for o in op.walk() if isinstance(o, nt.WeightOp)]:
            t = w.result.type
            assert isinstance(t, TensorType)
            shape = tuple(t.get_shape())
            if math.prod(shape) * 4 <= self.max_bytes or not shape:
                continue
            for use in list(w.result.uses):
                g = use.operation
                if isinstance(g, nt.GatherOp) and use.index == 0 and g.axis.value.data == 0:
                    self._split_gather(w, g, shape)
            if not w.result.uses:
                Rewriter.erase_op(w)

    def _split_gather(self, w: nt.WeightOp, g: nt.GatherOp, shape: tuple[int, ...]) -> None:
        t = w.result.type
        assert isinstance(t, TensorType)
        row_bytes = math.prod(shape[1:]) * 4
        rows = max(1, self.max_bytes // row_bytes)
        ids = g.indices
        it = ids.type
        assert isinstance(it, TensorType)
        ishape = tuple(it.get_shape())
        elem = it.get_element_type()
        ops: list[Operation] = []

        def const(v: int) -> SSAValue:
            c = nt.ConstantOp(DenseIntOrFPElementsAttr.from_list(TensorType(elem, []), [v]))
            ops.append(c)
            return c.result

        def add(op: Operation) -> SSAValue:
            ops.append(op)
            return op.results[0]

        bool_t = TensorType(i1, ishape)
        neg = add(nt.LessOp(ids, const(0), bool_t))
        wrapped = add(nt.AddOp(ids, const(shape[0]), it))
        ids = add(nt.WhereOp(neg, wrapped, ids, it))
        out: SSAValue | None = None
        out_t = g.result.type
        mask_shape = (*ishape, *([1] * (len(shape) - 1)))
        for start in range(0, shape[0], rows):
            stop = min(shape[0], start + rows)
            chunk_t = TensorType(t.get_element_type(), (stop - start, *shape[1:]))
            chunk = add(nt.WeightOp(chunk_key(w.key.data, start, stop), chunk_t))
            local = add(nt.SubOp(ids, const(start), it)) if start else ids
            local = add(nt.MaxOp(local, const(0), it))
            local = add(nt.MinOp(local, const(stop - start - 1), it))
            gathered = add(
                nt.GatherOp.create(
                    operands=[chunk, local],
                    result_types=[out_t],
                    properties={"axis": IntegerAttr(0, 64)},
                )
            )
            if out is None:
                out = gathered
                continue
            below = add(nt.LessOp(ids, const(start), bool_t))
            inside = add(nt.NotOp(below, bool_t))
            mask = add(nt.ReshapeOp(inside, TensorType(i1, mask_shape)))
            out = add(nt.WhereOp(mask, gathered, out, out_t))
        assert out is not None
        Rewriter.insert_op(ops, InsertPoint.before(g))
        g.result.replace_all_uses_with(out)
        Rewriter.erase_op(g)


def materialize_weights(module: Operation, weights: dict) -> dict:
    """The weights the IR under `module` names, chunk keys sliced from their base entries;
    entries the IR no longer uses are dropped."""
    out = {}
    for op in module.walk():
        if not isinstance(op, nt.WeightOp) or op.key.data in out:
            continue
        key = op.key.data
        if key in weights:
            out[key] = weights[key]
            continue
        parsed = parse_chunk_key(key)
        if parsed is None or parsed[0] not in weights:
            raise KeyError(f"weight '{key}' is not in the weights file")
        base, start, stop = parsed
        out[key] = weights[base][start:stop]
    return out
