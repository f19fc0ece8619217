"""nn-tensor-split-weights: keep every weight a kernel binds under a byte limit.

WebGPU binds a storage buffer whole, and a device only promises 128 MiB per binding
(maxStorageBufferBindingSize); GPT-2's token embedding alone is 147 MiB, and so is its LM head.
This pass splits a weight larger than `max_bytes` (default: $NNJIT_MAX_BINDING_BYTES, else
128 MiB) in two uses:

- read by `nn_tensor.gather` along axis 0: row chunks `nn_tensor.weight "key#rows=A:B"` (rows
  A..B of entry `key`; the compiler slices the weights file accordingly), gathered from with
  clamped indices, selected per index:

    ids' = where(ids < 0, ids + V, ids)
    out  = gather(W[0:R], clamp(ids', 0, R-1))
    out  = where(ids' >= R, gather(W[R:2R], clamp(ids' - R, 0, R-1)), out)    ...

- the 2-D B operand of `nn_tensor.matmul` or `nn_tensor.gemm`: column chunks of B
  (`"key#cols=A:B"`, the last axis; row chunks when a gemm reads B transposed), one product per
  chunk, concatenated along the last axis (a gemm's C is added after the concatenation):

    out = concat(A @ W[:, 0:C], A @ W[:, C:2C], ..., axis=-1)

Weights used any other way are left alone; the compiler then names the weight and the limit.
"""

from __future__ import annotations

import math
import os
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
from nnjit.errors import NNJitError

ROWS_TAG = "#rows="
COLS_TAG = "#cols="
WEBGPU_DEFAULT_BINDING_BYTES = 128 << 20  # maxStorageBufferBindingSize every device offers
BINDING_ENV = "NNJIT_MAX_BINDING_BYTES"


def max_binding_bytes() -> int:
    """The per-binding byte limit kernels are compiled for: $NNJIT_MAX_BINDING_BYTES (to test the
    split path, or to use a device that allows more), else WebGPU's default 128 MiB."""
    raw = os.environ.get(BINDING_ENV, "").strip()
    if not raw:
        return WEBGPU_DEFAULT_BINDING_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 16:
        raise NNJitError(
            f"{BINDING_ENV}={raw!r} is not a byte count", hint="set it to an integer >= 16, or unset it"
        )
    return value


def chunk_key(key: str, start: int, stop: int) -> str:
    return f"{key}{ROWS_TAG}{start}:{stop}"


def cols_key(key: str, start: int, stop: int) -> str:
    return f"{key}{COLS_TAG}{start}:{stop}"


def parse_chunk_key(key: str, tag: str = ROWS_TAG) -> tuple[str, int, int] | None:
    """(base key, start, stop) of a row chunk key (of a column chunk key with tag=COLS_TAG),
    or None for a key without that tag."""
    base, sep, rows = key.rpartition(tag)
    if not sep:
        return None
    start, _, stop = rows.partition(":")
    return base, int(start), int(stop)


def _elem_bytes(t: TensorType) -> int:
    e = t.get_element_type()
    return 4 if not isinstance(e, IntegerType) else max(1, e.width.data // 8)


@dataclass(frozen=True)
class NNTensorSplitWeightsPass(ModulePass):
    """Splits weights over `max_bytes` read by axis-0 gathers (row chunks) or as a matmul's or
    gemm's B (column chunks, concatenated): see the module doc."""

    name = "nn-tensor-split-weights"
    # 0: max_binding_bytes() when the pass runs (not when it is built: the compiler keeps
    # parsed pipelines, and $NNJIT_MAX_BINDING_BYTES may change in between)
    max_bytes: int = 0

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.max_bytes <= 0:
            return NNTensorSplitWeightsPass(max_bytes=max_binding_bytes()).apply(ctx, op)
        for w in [o for o in op.walk() if isinstance(o, nt.WeightOp)]:
            t = w.result.type
            assert isinstance(t, TensorType)
            shape = tuple(t.get_shape())
            if math.prod(shape) * 4 <= self.max_bytes or not shape:
                continue
            uses = list(w.result.uses)
            gathered = [u.operation for u in uses if isinstance(u.operation, nt.GatherOp)
                        and u.index == 0 and u.operation.axis.value.data == 0]  # fmt: skip
            for use in uses:
                g = use.operation
                if g in gathered:
                    self._split_gather(w, g, shape)  # type: ignore[arg-type]
                elif isinstance(g, (nt.MatmulOp, nt.GemmOp)) and use.index == 1 and len(shape) == 2:
                    self._split_matmul(w, g, shape, tied=bool(gathered))
            if not w.result.uses:
                Rewriter.erase_op(w)

    def _split_matmul(self, w: nt.WeightOp, mm: nt.MatmulOp | nt.GemmOp, shape: tuple[int, ...],
                      tied: bool) -> None:  # fmt: skip
        """B (K x N, or N x K for a gemm with trans_b) in chunks of output columns; `tied`: the
        weight is also a gathered table (a tied embedding)."""
        trans_b = isinstance(mm, nt.GemmOp) and bool(mm.trans_b.value.data)
        k = shape[1] if trans_b else shape[0]
        n = shape[0] if trans_b else shape[1]
        most = self.max_bytes // (k * 4)
        if most < 1:  # one column alone is over the limit: nothing to split
            return
        if most >= 16:  # chunk widths a multiple of 16 where they can be (vec4 access, packed
            most -= most % 16  # 8-column panels)
        even = -(-n // -(-n // most))  # chunks of even width...
        cols = min(most, -(-even // 16) * 16) if most >= 16 else even  # ...rounded up to 16
        if trans_b and tied:  # a tied embedding: the gather's row chunks (the same keys: the
            cols = max(1, self.max_bytes // (k * 4))  # weights file holds it once)
        t = w.result.type
        out_t = mm.result.type
        assert isinstance(t, TensorType) and isinstance(out_t, TensorType)
        elem = t.get_element_type()
        out_shape = tuple(out_t.get_shape())
        ops: list[Operation] = []
        parts: list[SSAValue] = []
        bounds = [(start, min(n, start + cols)) for start in range(0, n, cols)]
        start, stop = bounds[-1]
        if cols % 16 == 0 and (stop - start) % 16 and stop - start > 16:
            # a ragged last chunk: its columns up to a multiple of 16, then the few left (a
            # Wasm kernel streams B in packed panels only when the width is a multiple of
            # theirs; GPT-2's 50257-column LM head read unpacked took a third of a decode step)
            cut = stop - (stop - start) % 16
            bounds[-1:] = [(start, cut), (cut, stop)]
        for start, stop in bounds:
            if trans_b:
                chunk = nt.WeightOp(chunk_key(w.key.data, start, stop), TensorType(elem, (stop - start, k)))
            else:
                chunk = nt.WeightOp(cols_key(w.key.data, start, stop), TensorType(elem, (k, stop - start)))
            part_t = TensorType(out_t.get_element_type(), (*out_shape[:-1], stop - start))
            if isinstance(mm, nt.MatmulOp):
                part = nt.MatmulOp(mm.lhs, chunk.result, part_t)
            else:
                part = nt.GemmOp.create(
                    operands=[mm.a, chunk.result],
                    result_types=[part_t],
                    properties={"alpha": mm.alpha, "trans_a": mm.trans_a, "trans_b": mm.trans_b},
                )
            ops += [chunk, part]
            parts.append(part.results[0])
        cat = nt.ConcatOp.create(
            operands=parts, result_types=[out_t],
            properties={"axis": IntegerAttr(len(out_shape) - 1, 64)},
        )  # fmt: skip
        ops.append(cat)
        result = cat.result
        if isinstance(mm, nt.GemmOp) and mm.c is not None:
            c = mm.c
            beta = mm.beta.value.data
            if beta != 1.0:
                ct = c.type
                assert isinstance(ct, TensorType)
                scale = nt.ConstantOp(DenseIntOrFPElementsAttr.from_list(TensorType(elem, []), [beta]))
                scaled = nt.MulOp(c, scale.result, ct)
                ops += [scale, scaled]
                c = scaled.result
            add = nt.AddOp(result, c, out_t)
            ops.append(add)
            result = add.result
        Rewriter.insert_op(ops, InsertPoint.before(mm))
        mm.result.replace_all_uses_with(result)
        Rewriter.erase_op(mm)

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
        rows, cols = parse_chunk_key(key), parse_chunk_key(key, COLS_TAG)
        parsed = rows or cols
        if parsed is None or parsed[0] not in weights:
            raise KeyError(f"weight '{key}' is not in the weights file")
        base, start, stop = parsed
        out[key] = weights[base][start:stop] if rows else weights[base][..., start:stop]
    return out
