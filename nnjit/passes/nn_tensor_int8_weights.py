"""nn-tensor-int8-weights: matmul weights that the Wasm kernels read as int8 bytes.

`nnjit compile --weights int8` stores a matmul's B weight as int8 with one float32 scale per
output column (symmetric), and a quantized model's own per-axis int8 DequantizeLinear weight
(zero point 0) is the same form (nnjit/compact.py). The compiler marks such a weight with
`INT8_ATTR`, the weight's contraction axis in its stored layout (0: stored [K, N], 1: stored
[N, K], a Gemm's transB). This pass takes each fused matmul/gemm whose B operand (through
swaps of its two dims) is an argument fed by a marked 2-D weight, read along that axis, with
N >= 8 columns, and reads it as int8 times a scale per column instead:

    %w = nn_tensor.weight "W" {nnjit.int8_weight = 0 : i64} : tensor<KxNxf32>
    %r = nn_tensor.fused %a, %w, ... {kind = "matmul"} ... {
    ^bb0(%x: tensor<MxKxf32>, %y: tensor<KxNxf32>, ...):
      %m = nn_tensor.matmul %x, %y : ... ; ... (an epilogue of %m)
    }

gives

    %q = nn_tensor.weight "W#q8" : tensor<KxNxi8>
    %s = nn_tensor.weight "W#q8s" : tensor<Nxf32>
    %r = nn_tensor.fused %a, ..., %q, %s {kind = "matmul"} ... {
    ^bb0(%x: tensor<MxKxf32>, ..., %yq: tensor<KxNxi8>, %ys: tensor<Nxf32>):
      %f = nn_tensor.cast %yq : tensor<KxNxi8> -> tensor<KxNxf32>
      %y = nn_tensor.mul %f, %ys : (tensor<KxNxf32>, tensor<Nxf32>) -> tensor<KxNxf32>
      %m = nn_tensor.matmul %x, %y : ... ; ... (the same epilogue)
    }

The body keeps the meaning exactly (B = float(q) * scale, the dequantized weight); the
integers are always stored [K, N], so a kernel reads 8 consecutive bytes per k and 8 columns
(`W#q8t`: a weight stored [N, K], transposed; a swap in the body gives the stored layout
back). nn-tensor-pack-weights packs `W#q8` in column panels like an f32 weight, and the
matmul lowering recognises cast + mul: it loads the bytes widened in registers and multiplies
the accumulators by the column scales in the epilogue (nnjit/passes/lowering/matmul.py). The
compiler makes the `#q8` entries from the weight's integers and scales (`materialize_int8`).
Meant for the wasm target: WebGPU's matmuls read the weight dequantized at load.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, TensorType, f32, i8
from xdsl.ir import Block, BlockArgument, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from nnjit.dialects import nn_tensor as nt
from nnjit.passes.convert_nn_tensor_to_nn_loop import hoist_body_buffers, wrap_lone_op

INT8_ATTR = "nnjit.int8_weight"
"""An nn_tensor.weight's attribute (i64): stored as int8 with a scale per output column,
quantized along this (contraction) axis of its stored layout."""
INT8_TAG = "#q8"
"""`key#q8`: the int8 [K, N] of weight `key` stored [K, N]; `key#q8t`: of one stored [N, K]
(transposed); `key#q8s`: the float32 scales [N]."""
MIN_COLUMNS = 8
"""The kernel reads 8 columns of bytes per load: narrower weights stay float32."""


def int8_keys(key: str) -> tuple[str, str, str]:
    """(`#q8`, `#q8t`, `#q8s` keys) of weight `key`."""
    return f"{key}{INT8_TAG}", f"{key}{INT8_TAG}t", f"{key}{INT8_TAG}s"


def parse_int8_key(key: str) -> tuple[str, str] | None:
    """(base key, "" | "t" | "s") of a `#q8` key, or None for another key."""
    base, tag, rest = key.rpartition(INT8_TAG)
    return (base, rest) if tag and rest in ("", "t", "s") else None


def materialize_int8(
    keys: Iterable[str], blocks: Callable[[str], tuple[np.ndarray, np.ndarray, int] | None]
) -> dict:
    """The `#q8` entries among `keys`: `blocks(base)` gives the base weight's (int8 q in its
    stored layout, float32 scale per output column [N], contraction axis); KeyError when it
    has none."""
    out = {}
    for key in keys:
        parsed = parse_int8_key(key)
        if parsed is None or key in out:
            continue
        base, what = parsed
        got = blocks(base)
        if got is None:
            raise KeyError(f"weight '{base}' (as int8 '{key}') is not stored as int8 per column")
        q, scale, axis = got
        if what == "s":
            out[key] = np.ascontiguousarray(scale, np.float32).reshape(-1)
        else:
            out[key] = np.ascontiguousarray(q if axis == 0 else q.T, np.int8)
    return out


def _trace_b(v: SSAValue) -> tuple[BlockArgument, bool] | None:
    """(argument, swapped) of a B operand reached through swaps of its two dims."""
    swapped = False
    while isinstance(v.owner, nt.TransposeOp):
        if tuple(nt.array_values(v.owner.perm)) != (1, 0):
            return None
        swapped = not swapped
        v = v.owner.input
    return (v, swapped) if isinstance(v, BlockArgument) else None


def _only_feeds(arg: BlockArgument, target: SSAValue) -> bool:
    v: SSAValue = arg
    while v is not target:
        uses = list(v.uses)
        if len(uses) != 1 or not isinstance(uses[0].operation, nt.TransposeOp):
            return False
        v = uses[0].operation.results[0]
    return len(list(arg.uses)) <= 1


@dataclass(frozen=True)
class NNTensorInt8WeightsPass(ModulePass):
    """Marked matmul weights read as int8 times per-column scales (module doc)."""

    name = "nn-tensor-int8-weights"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for f in [o for o in op.walk() if isinstance(o, func.FuncOp)]:
            made: dict[tuple[SSAValue, bool], tuple[nt.WeightOp, nt.WeightOp]] = {}
            for o in list(f.body.block.ops):
                if isinstance(o, (nt.MatmulOp, nt.GemmOp)) and _marked(
                    o.rhs if isinstance(o, nt.MatmulOp) else o.b
                ):
                    o = wrap_lone_op(o, "matmul")
                if isinstance(o, nt.FusedOp) and o.kind.data == "matmul":
                    self._rewrite(hoist_body_buffers(o), made)

    def _rewrite(self, fused: nt.FusedOp, made: dict) -> None:
        roots = [
            o
            for o in fused.body.block.ops
            if isinstance(o, (nt.MatmulOp, nt.GemmOp, nt.MatmulI16Op))
        ]
        if len(roots) != 1 or isinstance(roots[0], nt.MatmulI16Op):
            return
        root = roots[0]
        b_val = root.b if isinstance(root, nt.GemmOp) else root.rhs
        traced = _trace_b(b_val)
        if traced is None:
            return
        arg, swapped = traced
        if arg.owner is not fused.body.block or not _only_feeds(arg, b_val):
            return
        w = fused.inputs[arg.index]
        mark = w.owner.attributes.get(INT8_ATTR) if isinstance(w.owner, nt.WeightOp) else None
        shape = nt.shape_of(w)
        if not isinstance(mark, IntegerAttr) or len(shape) != 2 or nt.elem_of(w) != f32:
            return
        # the stored layout: [N, K] when the swaps and gemm's transB make one swap
        nk = swapped ^ (isinstance(root, nt.GemmOp) and bool(root.trans_b.value.data))
        if mark.value.data != (1 if nk else 0):
            return  # (quantized along another axis than this contraction's)
        k, n = (shape[1], shape[0]) if nk else shape
        if n < MIN_COLUMNS:
            return
        pair = made.get((w, nk))
        if pair is None:
            qkey, tkey, skey = int8_keys(w.owner.key.data)
            q = nt.WeightOp(tkey if nk else qkey, TensorType(i8, [k, n]))
            s = nt.WeightOp(skey, TensorType(f32, [n]))
            Rewriter.insert_op([q, s], InsertPoint.after(w.owner))
            pair = made[(w, nk)] = (q, s)
        q, s = pair
        block: Block = fused.body.block
        yq = block.insert_arg(q.result.type, len(block.args))
        ys = block.insert_arg(s.result.type, len(block.args))
        kn = TensorType(f32, [k, n])
        cast = nt.CastOp(yq, kn)
        mul = nt.MulOp(cast.result, ys, kn)
        ops: list = [cast, mul]
        b: SSAValue = mul.result
        if nk:
            t = nt.TransposeOp.create(
                operands=[b], result_types=[w.type], properties={"perm": nt.i64_array([1, 0])}
            )
            ops.append(t)
            b = t.result
        Rewriter.insert_op(ops, InsertPoint.at_start(block))
        index = arg.index
        arg.replace_all_uses_with(b)
        block.erase_arg(arg)
        inputs = [v for i, v in enumerate(fused.inputs) if i != index] + [q.result, s.result]
        new = nt.FusedOp(
            fused.kind.data, inputs, fused.result.type, fused.detach_region(fused.body)
        )
        new.attributes |= fused.attributes
        Rewriter.replace_op(fused, new)
        if not w.uses:
            Rewriter.erase_op(w.owner)


def _marked(v: SSAValue) -> bool:
    while isinstance(v.owner, nt.TransposeOp):
        v = v.owner.input
    return isinstance(v.owner, nt.WeightOp) and INT8_ATTR in v.owner.attributes


__all__ = [
    "NNTensorInt8WeightsPass", "INT8_ATTR", "INT8_TAG", "MIN_COLUMNS", "int8_keys", "parse_int8_key",
    "materialize_int8",
]  # fmt: skip
