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

With `dot=i16` (`nnjit compile --int8-dot ROWS`: opt-in, the numerics differ slightly) a matmul
of at most `max_m` rows (0: any) with K <= DOT_MAX_K and an untransposed A computes on integer
dots instead: two kernels before it quantize A's rows (shared by the matmuls that read one A),

    %s = nn_tensor.fused %a {kind = "reduce"}       ; max|a row| / 2047          [..., M, 1]
    %q = nn_tensor.fused %a, %s {kind = "elementwise"} ; round(a / s) as i32    [..., M, K]

and the matmul takes the int8 weights in k pairs (`W#q8p`: [ceil(K/2), 2N] bytes, [j, 2n + h]
= q[2j + h, n], packed in panels of 8 columns by nn-tensor-pack-weights where N allows):

    %p = nn_tensor.matmul_q8p %q, %w8p : ... -> tensor<...xMxNxi32>
    %m = (cast %p to f32) * column scales * %s        ; then gemm's alpha, beta * C, the epilogue

On Wasm a k pair of 4 columns is one v128.load8x8_s (i16x8) and one i32x4.dot_i16x8_s against
the splat of the activation pair, then i32x4.add: per 32 multiply-adds (16 columns, 2 k) 14
instructions instead of the float path's ~30 (8 bytes widened: 2 extends, 2 converts, 2 fmas per
8 weights). The i32 sums are exact (|sum| <= 2047 * 128 * K < 2**31 for K <= DOT_MAX_K); the
error is the activations' quantization: |A - q s| <= s / 2 per element, so an output is within
s / 2 * sum_k |B[k, n]| (B dequantized) of the float path's, s = max|A row| / 2047. Every matmul
the option takes reads only `#q8p` (the bytes are stored once); those it leaves keep `#q8`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, TensorType, f32, i8, i32
from xdsl.ir import Block, BlockArgument, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from nnjit.dialects import nn_tensor as nt
from nnjit.passes.convert_nn_tensor_to_nn_loop import hoist_body_buffers, wrap_lone_op
from nnjit.passes.nn_tensor_fold import from_numpy

INT8_ATTR = "nnjit.int8_weight"
"""An nn_tensor.weight's attribute (i64): stored as int8 with a scale per output column,
quantized along this (contraction) axis of its stored layout."""
INT8_TAG = "#q8"
"""`key#q8`: the int8 [K, N] of weight `key` stored [K, N]; `key#q8t`: of one stored [N, K]
(transposed); `key#q8s`: the float32 scales [N]."""
MIN_COLUMNS = 8
"""The kernel reads 8 columns of bytes per load: narrower weights stay float32."""


DOT_BITS = 12
"""dot=i16: activations quantized to signed integers of this many bits (|q| <= 2**11 - 1)."""
DOT_LEVEL = 2 ** (DOT_BITS - 1) - 1
DOT_MAX_K = 8192
"""dot=i16: the longest contraction: |sum| <= 2047 * 128 * K stays below 2**31 (a longer one
keeps the float path)."""


def int8_keys(key: str) -> tuple[str, str, str]:
    """(`#q8`, `#q8t`, `#q8s` keys) of weight `key`."""
    return f"{key}{INT8_TAG}", f"{key}{INT8_TAG}t", f"{key}{INT8_TAG}s"


def pairs_key(key: str) -> str:
    """`key#q8p`: the int8 of weight `key` in k pairs (nn_tensor.matmul_q8p's rhs)."""
    return f"{key}{INT8_TAG}p"


def parse_int8_key(key: str) -> tuple[str, str] | None:
    """(base key, "" | "t" | "s" | "p") of a `#q8` key, or None for another key."""
    base, tag, rest = key.rpartition(INT8_TAG)
    return (base, rest) if tag and rest in ("", "t", "s", "p") else None


def pack_k_pairs(q: np.ndarray) -> np.ndarray:
    """int8 B [K, N] as nn_tensor.matmul_q8p's [ceil(K / 2), 2N] bytes: [j, 2n + h] = B[2j + h, n]
    (0 past K)."""
    k, n = q.shape
    padded = np.zeros(((k + 1) // 2 * 2, n), np.int8)
    padded[:k] = q
    return np.ascontiguousarray(padded.reshape(-1, 2, n).transpose(0, 2, 1).reshape(-1, 2 * n))


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
        elif what == "p":
            out[key] = pack_k_pairs(np.asarray(q if axis == 0 else q.T, np.int8))
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

    dot: str = "f32"
    """"f32" (the default): the weights are widened to float32 in registers; "i16": matmuls of
    at most `max_m` rows (0: any) and K <= DOT_MAX_K quantize their activation rows to 12-bit
    integers and take integer dots of the k-pair bytes `#q8p` (module doc)."""
    max_m: int = 0
    """dot=i16: the most rows (the product of A's dims before K) a matmul may have (0: any)."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.dot not in ("f32", "i16"):
            raise ValueError(f"nn-tensor-int8-weights: dot={self.dot!r}; expected f32 or i16")
        if self.max_m < 0:
            raise ValueError(f"nn-tensor-int8-weights: max-m={self.max_m}; expected >= 0")
        for f in [o for o in op.walk() if isinstance(o, func.FuncOp)]:
            made: dict = {}
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
        if self.dot == "i16" and self._rewrite_dot(fused, root, arg, w, k, n, made):
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


    def _rewrite_dot(self, fused: nt.FusedOp, root, arg: BlockArgument, w: SSAValue, k: int, n: int,
                     made: dict) -> bool:  # fmt: skip
        """dot=i16: the fused matmul on nn_tensor.matmul_q8p of the activations quantized per
        row (two kernels before it, shared by the matmuls of one A) when its A is an untransposed
        argument, K <= DOT_MAX_K and its rows at most max_m; False (unchanged) otherwise."""
        block: Block = fused.body.block
        x = root.a if isinstance(root, nt.GemmOp) else root.lhs
        if isinstance(root, nt.GemmOp) and root.trans_a.value.data:
            return False
        if not isinstance(x, BlockArgument) or x.owner is not block or not x.has_one_use():
            return False
        a = fused.inputs[x.index]
        a_shape = nt.shape_of(a)
        rows = 1
        for d in a_shape[:-1]:
            rows *= d
        if k > DOT_MAX_K or nt.elem_of(a) != f32 or (self.max_m and rows > self.max_m):
            return False
        quant = made.get(("quant", a))
        if quant is None:
            quant = made[("quant", a)] = _quantize_rows(a, fused)
        a_q, a_scale = quant
        pq = made.get(("pairs", w))
        if pq is None:
            key = w.owner.key.data  # type: ignore[union-attr]
            p = nt.WeightOp(pairs_key(key), TensorType(i8, [(k + 1) // 2, 2 * n]))
            sc = nt.WeightOp(int8_keys(key)[2], TensorType(f32, [n]))
            Rewriter.insert_op([p, sc], InsertPoint.after(w.owner))  # type: ignore[arg-type]
            pq = made[("pairs", w)] = (p, sc)
        p, sc = pq
        # the body: matmul_q8p of the new arguments, cast and scaled (column, then row scale),
        # then what the root computed from its product (gemm: alpha, beta * C)
        xq = block.insert_arg(a_q.type, len(block.args))
        yp = block.insert_arg(p.result.type, len(block.args))
        ys = block.insert_arg(sc.result.type, len(block.args))
        rs = block.insert_arg(a_scale.type, len(block.args))
        out = nt.shape_of(root.result)
        f_t = TensorType(f32, out)
        mm = nt.MatmulQ8POp(xq, yp, TensorType(i32, out))
        ops: list = [mm, nt.CastOp(mm.result, f_t)]
        ops.append(nt.MulOp(ops[-1].results[0], ys, f_t))
        ops.append(nt.MulOp(ops[-1].results[0], rs, f_t))
        if isinstance(root, nt.GemmOp):
            alpha, beta = root.alpha.value.data, root.beta.value.data
            y: SSAValue = ops[-1].results[0]
            if alpha != 1.0:
                ops += _times_const(y, alpha)
                y = ops[-1].results[0]
            if root.c is not None and beta != 0.0:
                c: SSAValue = root.c
                if beta != 1.0:
                    ops += _times_const(c, beta)
                    c = ops[-1].results[0]
                ops.append(nt.AddOp(y, c, f_t))
        Rewriter.insert_op(ops, InsertPoint.before(root))
        root.result.replace_all_uses_with(ops[-1].results[0])
        b_val = root.b if isinstance(root, nt.GemmOp) else root.rhs
        Rewriter.erase_op(root)
        _erase_chain(b_val)
        # block arguments: A and the float B out, the quantized A, pairs and scales in
        a_index, b_index = x.index, arg.index
        block.erase_arg(x)
        block.erase_arg(arg)
        inputs = [v for i, v in enumerate(fused.inputs) if i not in (a_index, b_index)]
        inputs += [a_q, p.result, sc.result, a_scale]
        new = nt.FusedOp(fused.kind.data, inputs, fused.result.type, fused.detach_region(fused.body))
        new.attributes |= fused.attributes
        Rewriter.replace_op(fused, new)
        if not w.uses:
            Rewriter.erase_op(w.owner)  # type: ignore[arg-type]
        return True


def _times_const(v: SSAValue, c: float) -> list:
    k = nt.ConstantOp(from_numpy(np.array(c, np.float32), TensorType(f32, [])))
    return [k, nt.MulOp(v, k.result, v.type)]


def _erase_chain(v: SSAValue) -> None:
    """Erases the (now unused) transposes computing `v` from a block argument."""
    while not isinstance(v, BlockArgument) and not v.uses:
        op = v.owner
        nxt = op.operands[0] if op.operands else None  # type: ignore[union-attr]
        Rewriter.erase_op(op)  # type: ignore[arg-type]
        if nxt is None:
            return
        v = nxt


def _quantize_rows(a: SSAValue, before: nt.FusedOp) -> tuple[SSAValue, SSAValue]:
    """(q, s): two kernels before `before`: s = max|a| / 2047 per row (a "reduce" kernel,
    [..., M, 1]) and q = round(a / s) as i32 (an "elementwise" kernel; a row of zeros reads
    0 through a tiny floor on s), so that |q| <= 2047 and a = q * s within s / 2."""
    shape = nt.shape_of(a)
    a_t = TensorType(f32, shape)
    s_t = TensorType(f32, [*shape[:-1], 1])
    scalar = TensorType(f32, [])
    # max|a| / 2047
    rb = Block(arg_types=[a_t])
    ab = nt.AbsOp(rb.args[0])
    mx = nt.ReduceMaxOp.create(operands=[ab.result], result_types=[s_t],
                               properties={"axes": nt.i64_array([len(shape) - 1]), "keepdims": IntegerAttr(1, 64)})  # fmt: skip
    inv = nt.ConstantOp(from_numpy(np.array(1.0 / DOT_LEVEL, np.float32), scalar))
    sc = nt.MulOp(mx.results[0], inv.result, s_t)
    for o in (ab, mx, inv, sc, nt.YieldOp(sc.result)):
        rb.add_op(o)
    red = nt.FusedOp("reduce", [a], s_t, Region(rb))
    # round(a / max(s, tiny)) as i32
    eb = Block(arg_types=[a_t, s_t])
    tiny = nt.ConstantOp(from_numpy(np.array(1e-30, np.float32), scalar))
    floor = nt.MaxOp(eb.args[1], tiny.result, s_t)
    div = nt.DivOp(eb.args[0], floor.result, a_t)
    rnd = nt.RoundOp(div.result)
    cast = nt.CastOp(rnd.result, TensorType(i32, shape))
    for o in (tiny, floor, div, rnd, cast, nt.YieldOp(cast.result)):
        eb.add_op(o)
    q = nt.FusedOp("elementwise", [a, red.result], TensorType(i32, shape), Region(eb))
    Rewriter.insert_op([red, q], InsertPoint.before(before))
    return q.result, red.result


def _marked(v: SSAValue) -> bool:
    while isinstance(v.owner, nt.TransposeOp):
        v = v.owner.input
    return isinstance(v.owner, nt.WeightOp) and INT8_ATTR in v.owner.attributes


__all__ = [
    "NNTensorInt8WeightsPass", "INT8_ATTR", "INT8_TAG", "MIN_COLUMNS", "DOT_BITS", "DOT_MAX_K", "int8_keys",
    "pairs_key", "parse_int8_key", "pack_k_pairs", "materialize_int8",
]  # fmt: skip
