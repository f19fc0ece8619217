"""nn-tensor-pack-weights: matmul weights stored in column panels for the Wasm kernels.

A Wasm matmul kernel computes an output panel of `nr` columns with its B operand read as
`B[k, n0 .. n0+nr)` for k = 0 .. K-1. Row-major, those reads are `nr` floats every N*4
bytes: with N*4 a multiple of 4 KiB (BERT's 768 and 3072 columns) every row of a panel maps
to the same few L1 cache sets, and a K x nr panel does not stay in cache. This pass stores
such a B, when it is a weight, in panels: entry `key#pack=kn<nr>` (or `nk<nr>` when the
weight is stored [N, K], e.g. a Gemm with transB) of shape [N/nr, K, nr] with

    packed[p, k, j] = B[k, p*nr + j]          (B the logical [K, N] operand)

so that a kernel streams each panel contiguously. In the fused body the packed argument is
unpacked back into the stored layout with nn_tensor ops (exact semantics, so the reference
interpreter and every lowering still see the same matmul):

    %t = nn_tensor.transpose %packed {perm = [1, 0, 2]} : [N/nr, K, nr] -> [K, N/nr, nr]
    %b = nn_tensor.reshape %t : [K, N/nr, nr] -> [K, N]            (kn)
    %b = nn_tensor.transpose %b {perm = [1, 0]} : [K, N] -> [N, K]  (nk only)

and the matmul lowering (nnjit/passes/lowering/matmul.py) recognises the pattern and
indexes the packed buffer directly. The compiler materialises `#pack=` keys from the
weights file (`materialize_packed`). The i16-pair words of nn_tensor.matmul_i16 (a word row
per two k) and the int8 bytes of nn-tensor-int8-weights (B = cast(q) * scale: q is packed)
are packed the same way, and the k-pair bytes of nn_tensor.matmul_q8p ([ceil(K/2), 2N]) in
panels of 2 nr bytes (nr columns). Only 2-D weights with N % nr == 0 are packed; lone
matmul/gemm ops are first wrapped in fused ops of kind "matmul" and weights inside fused
bodies become operands, as convert-nn-tensor-to-nn-loop does. The pass is meant for the
wasm target (a GPU kernel would read this layout uncoalesced).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Block, BlockArgument, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from nnjit.dialects import nn_tensor as nt
from nnjit.passes.convert_nn_tensor_to_nn_loop import hoist_body_buffers, wrap_lone_op

PACK_TAG = "#pack="


def pack_key(key: str, layout: str, nr: int) -> str:
    """The weights-file key of `key` packed in panels of `nr` columns (layout "kn" or "nk":
    how the entry `key` stores B)."""
    return f"{key}{PACK_TAG}{layout}{nr}"


def parse_pack_key(key: str) -> tuple[str, str, int] | None:
    """(base key, layout, nr) of a packed key, or None for another key."""
    base, sep, spec = key.rpartition(PACK_TAG)
    if not sep or spec[:2] not in ("kn", "nk") or not spec[2:].isdigit():
        return None
    return base, spec[:2], int(spec[2:])


def pack_array(b: np.ndarray, layout: str, nr: int) -> np.ndarray:
    """B (stored [K, N] for "kn", [N, K] for "nk") as contiguous [N/nr, K, nr] panels."""
    kn = b if layout == "kn" else b.T
    k, n = kn.shape
    if n % nr:
        raise ValueError(f"cannot pack {n} columns in panels of {nr}")
    return np.ascontiguousarray(kn.reshape(k, n // nr, nr).transpose(1, 0, 2))


def materialize_packed(keys, weights: dict) -> dict:
    """The packed entries among `keys` (strings), computed from their base entries."""
    out = {}
    for key in keys:
        parsed = parse_pack_key(key)
        if parsed is None or key in weights or key in out:
            continue
        base, layout, nr = parsed
        if base not in weights:
            raise KeyError(f"weight '{base}' (packed as '{key}') is not in the weights file")
        out[key] = pack_array(np.asarray(weights[base]), layout, nr)
    return out


def _trace_b(v: SSAValue) -> tuple[BlockArgument, bool] | None:
    """(block argument, stored transposed) of a matmul B operand reached through swaps of a
    2-D operand (and the int8 weight of `cast(q) * scale`: nn-tensor-int8-weights), or None."""
    trans = False
    while isinstance(v.owner, nt.TransposeOp):
        if tuple(nt.array_values(v.owner.perm)) != (1, 0):
            return None
        trans = not trans
        v = v.owner.input
    if isinstance(v.owner, nt.MulOp) and isinstance(v.owner.lhs.owner, nt.CastOp):
        v = v.owner.lhs.owner.input
    return (v, trans) if isinstance(v, BlockArgument) else None


def _root(fused: nt.FusedOp) -> nt.MatmulOp | nt.GemmOp | nt.MatmulI16Op | nt.MatmulI8Op | nt.MatmulQ8POp | None:
    roots = [o for o in fused.body.block.ops
             if isinstance(o, (nt.MatmulOp, nt.GemmOp, nt.MatmulI16Op, nt.MatmulI8Op, nt.MatmulQ8POp))]  # fmt: skip
    return roots[0] if len(roots) == 1 else None


def _only_feeds(arg: BlockArgument, target: SSAValue) -> bool:
    """Whether every use of `arg` is the chain of transposes that ends in `target`."""
    v: SSAValue = arg
    while v is not target:
        uses = list(v.uses)
        if len(uses) != 1 or not isinstance(uses[0].operation, (nt.TransposeOp, nt.CastOp, nt.MulOp)):
            return False
        if isinstance(uses[0].operation, nt.MulOp) and uses[0].index != 0:
            return False
        v = uses[0].operation.results[0]
    return len(list(arg.uses)) <= 1


@dataclass(frozen=True)
class NNTensorPackWeightsPass(ModulePass):
    """Stores weight B operands of matmul kernels in panels of `nr` columns (module doc)."""

    name = "nn-tensor-pack-weights"

    nr: int = 8
    """Panel width in columns (a multiple of 4: the kernels read f32x4 vectors)."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.nr <= 0 or self.nr % 4:
            raise ValueError(
                f"nn-tensor-pack-weights: nr must be a positive multiple of 4, got {self.nr}"
            )

        for f in [o for o in op.walk() if isinstance(o, func.FuncOp)]:
            packed: dict[tuple[SSAValue, str], nt.WeightOp] = {}
            for o in list(f.body.block.ops):
                if isinstance(o, (nt.MatmulOp, nt.GemmOp)):
                    o = wrap_lone_op(o, "matmul")
                if isinstance(o, nt.FusedOp) and o.kind.data == "matmul":
                    self._pack(hoist_body_buffers(o), packed)

    def _pack(self, fused: nt.FusedOp, packed: dict) -> None:
        root = _root(fused)
        if root is None:
            return
        b_val = root.b if isinstance(root, nt.GemmOp) else root.rhs
        traced = _trace_b(b_val)
        if traced is None:
            return
        arg, _ = traced
        if arg.owner is not fused.body.block or not _only_feeds(arg, b_val):
            return
        w = fused.inputs[arg.index]
        if not isinstance(w.owner, nt.WeightOp):
            return
        shape = nt.shape_of(w)
        if len(shape) != 2:
            return
        # how the weight stores the logical B [K, N]: transposes between the argument and
        # the root, and gemm's transB
        trans = traced[1] ^ (isinstance(root, nt.GemmOp) and bool(root.trans_b.value.data))
        layout = "nk" if trans else "kn"
        k, n = (shape[1], shape[0]) if trans else shape
        nr = self.nr * (2 if isinstance(root, nt.MatmulQ8POp) else 1)  # (k-pair bytes: 2 per column)
        if n % nr or n < nr:
            return
        wt = w.type
        assert isinstance(wt, TensorType)
        ptype = TensorType(wt.get_element_type(), [n // nr, k, nr])
        pw = packed.get((w, layout))
        if pw is None:
            pw = nt.WeightOp(pack_key(w.owner.key.data, layout, nr), ptype)
            Rewriter.insert_op(pw, InsertPoint.after(w.owner))
            packed[(w, layout)] = pw
        # the body: a new argument for the packed weight, unpacked to the stored layout
        block: Block = fused.body.block
        parg = block.insert_arg(ptype, len(block.args))
        kt = TensorType(wt.get_element_type(), [k, n // nr, nr])
        t = nt.TransposeOp.create(
            operands=[parg], result_types=[kt], properties={"perm": nt.i64_array([1, 0, 2])}
        )
        r = nt.ReshapeOp(t.result, TensorType(wt.get_element_type(), [k, n]))
        ops = [t, r]
        stored: SSAValue = r.result
        if layout == "nk":
            s = nt.TransposeOp.create(
                operands=[stored], result_types=[wt], properties={"perm": nt.i64_array([1, 0])}
            )
            ops.append(s)
            stored = s.result
        Rewriter.insert_op(ops, InsertPoint.at_start(block))
        index = arg.index
        arg.replace_all_uses_with(stored)
        block.erase_arg(arg)
        inputs = [v for i, v in enumerate(fused.inputs) if i != index] + [pw.result]
        body = fused.detach_region(fused.body)
        new = nt.FusedOp(fused.kind.data, inputs, fused.result.type, body)
        new.attributes |= fused.attributes
        Rewriter.replace_op(fused, new)
        if not w.uses:
            Rewriter.erase_op(w.owner)


__all__ = [
    "NNTensorPackWeightsPass", "PACK_TAG", "materialize_packed", "pack_array", "pack_key",
    "parse_pack_key",
]  # fmt: skip
