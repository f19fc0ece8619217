"""nn-tensor-integer-matmul: MatMulInteger's matmuls as nn_tensor.matmul_i16 (Wasm).

onnxruntime's quantize_dynamic writes MatMulInteger(q, W, a_zero, w_zero). The frontend
imports it as a float32 nn_tensor.matmul of the centred operands, marked
`nn_tensor.integer_operands` (nnjit/frontend/onnx_ops/quantization.py): A = float(q - a_zero),
computed by an elementwise kernel, and B = float(W - w_zero), a folded weight; both hold
integers of at most 9 bits. This pass takes a fused matmul whose root is so marked, with A
the result of an elementwise fused op that only such matmuls read (as A: Q/K/V read one
quantized tensor, one centred A after `cse`) and B a 2-D weight [K, N]:

    %a = nn_tensor.fused ... {kind = "elementwise"} : (...) -> tensor<MxKxf32> { ... yield %d }
    %w = nn_tensor.weight "W" : tensor<KxNxf32>
    %r = nn_tensor.fused %a, %w, ... {kind = "matmul"} ... {
    ^bb0(%x: tensor<MxKxf32>, %y: tensor<KxNxf32>, ...):
      %m = nn_tensor.matmul %x, %y {nn_tensor.integer_operands} : ... -> tensor<MxNxf32>
      ... (an epilogue of %m)
    }

and gives the integer form: the elementwise kernel writes i32, B is stored in i16 pairs
(nn_tensor.matmul_i16's layout, entry `W#i16x2`) and the product is cast back to float32:

    %a = nn_tensor.fused ... -> tensor<MxKxi32> { ... %i = nn_tensor.cast %d : ... -> ...xi32 ... }
    %w = nn_tensor.weight "W#i16x2" : tensor<ceil(K/2)xNxi32>
    %r = nn_tensor.fused %a, %w, ... {kind = "matmul"} ... {
    ^bb0(%x: tensor<MxKxi32>, %y: tensor<ceil(K/2)xNxi32>, ...):
      %p = nn_tensor.matmul_i16 %x, %y : ... -> tensor<MxNxi32>
      %m = nn_tensor.cast %p : tensor<MxNxi32> -> tensor<MxNxf32>
      ... (the same epilogue)
    }

It is exact: A's float32 values are integers (the cast to i32 keeps them), the i32 products
and sums do not wrap (|sum| <= 255 * 255 * K < 2**31, K <= MAX_K), so %p is MatMulInteger's
own int32 result, and its cast rounds as onnxruntime's Cast to float does. The compiler makes
the `#i16x2` entries from their base weights (`materialize_i16x2`, which checks that they
hold 16-bit integers; a constant B, small, is packed in the IR). Other matmuls are left alone. The pass is meant for the wasm target
(nn_loop.dot_i16x2 has no WGSL form): WebGPU's matmuls stay float32.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import Float32Type, ModuleOp, TensorType, i32
from xdsl.ir import BlockArgument, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)
from xdsl.rewriter import InsertPoint

from nnjit.dialects import nn_tensor as nt
from nnjit.frontend.compact import pack_pairs as pack_i16x2
from nnjit.frontend.compact import pack_quads as pack_i8x4
from nnjit.passes.convert_nn_tensor_to_nn_loop import hoist_body_buffers, wrap_lone_op
from nnjit.passes.nn_tensor_fold import from_numpy, to_numpy

I16X2_TAG = "#i16x2"
I8X4_TAG = "#i8x4"
MAX_K = 32768
"""The longest contraction computed in integers: 255 * 255 * K stays below 2**31."""


def materialize_i16x2(keys, weights: dict) -> dict:
    """The `#i16x2` entries among `keys` (strings), packed from their base entries; ValueError
    when a base entry is not integers of int16 range."""
    out = {}
    for key in keys:
        base, tag, rest = key.rpartition(I16X2_TAG)
        if not tag or rest or key in weights or key in out:
            continue
        if base not in weights:
            raise KeyError(f"weight '{base}' (as 16-bit pairs '{key}') is not in the weights file")
        b = np.asarray(weights[base])
        if b.ndim != 2 or not _is_int16(b):
            raise ValueError(f"weight '{base}' {list(b.shape)} is not a matrix of 16-bit integers")
        out[key] = pack_i16x2(b)
    return out


def materialize_i8x4(keys, weights: dict) -> dict:
    """The `#i8x4` entries among `keys` (strings), packed from their base entries; ValueError
    when a base entry is not integers of int8 range."""
    out = {}
    for key in keys:
        base, tag, rest = key.rpartition(I8X4_TAG)
        if not tag or rest or key in weights or key in out:
            continue
        if base not in weights:
            raise KeyError(f"weight '{base}' (as byte quads '{key}') is not in the weights file")
        b = np.asarray(weights[base])
        if b.ndim != 2 or not _is_int8(b):
            raise ValueError(f"weight '{base}' {list(b.shape)} is not a matrix of 8-bit integers")
        out[key] = pack_i8x4(b)
    return out


def _is_int8(b: np.ndarray) -> bool:
    return bool(np.array_equal(b, np.rint(b)) and (b.size == 0 or (b.min() >= -128 and b.max() <= 127)))


def _elementwise_producer(v: SSAValue) -> tuple[nt.FusedOp, list[nt.ReshapeOp]] | None:
    """The elementwise fused op computing float32 `v` (through reshapes, innermost first),
    when nothing else reads it or them; without reshapes, `v` may have other readers (the
    caller checks them)."""
    reshapes: list[nt.ReshapeOp] = []
    while isinstance(v.owner, nt.ReshapeOp) and v.has_one_use():
        reshapes.insert(0, v.owner)
        v = v.owner.input
    op = v.owner
    if not isinstance(op, nt.FusedOp) or op.kind.data != "elementwise":
        return None
    if reshapes and not v.has_one_use():
        return None
    return (op, reshapes) if isinstance(nt.elem_of(v), Float32Type) else None


def _quads_of(b: nt.WeightOp | nt.ConstantOp, k: int, n: int) -> nt.WeightOp | nt.ConstantOp | None:
    """B [K, N] in byte quads (and the bias row): a weight `key#i8x4`, or a constant packed
    now (None when its values are not 8-bit integers)."""
    words = TensorType(i32, [(k + 3) // 4 + 1, n])
    if isinstance(b, nt.WeightOp):
        return nt.WeightOp(f"{b.key.data}{I8X4_TAG}", words)
    values = to_numpy(b.value)
    if not _is_int8(values):
        return None
    return nt.ConstantOp(from_numpy(pack_i8x4(values), words))


def _pairs_of(b: nt.WeightOp | nt.ConstantOp, k: int, n: int) -> nt.WeightOp | nt.ConstantOp | None:
    """B [K, N] in i16 pairs: a weight `key#i16x2`, or a constant packed now (None when its
    values are not 16-bit integers)."""
    words = TensorType(i32, [(k + 1) // 2, n])
    if isinstance(b, nt.WeightOp):
        return nt.WeightOp(f"{b.key.data}{I16X2_TAG}", words)
    values = to_numpy(b.value)
    if not _is_int16(values):
        return None
    return nt.ConstantOp(from_numpy(pack_i16x2(values), words))


def _is_int16(b: np.ndarray) -> bool:
    return bool(np.array_equal(b, np.rint(b)) and (b.size == 0 or np.abs(b).max() <= 32767))


def _marked_matmul(fused: Operation) -> tuple[nt.MatmulOp, BlockArgument, BlockArgument] | None:
    """(root, x, y) of a fused matmul whose one root is a marked nn_tensor.matmul of two block
    arguments read by it alone, B a 2-D weight or constant [K, N] with K <= MAX_K, N >= 4."""
    if not isinstance(fused, nt.FusedOp) or fused.kind.data != "matmul":
        return None
    block = fused.body.block
    roots = [o for o in block.ops if isinstance(o, (nt.MatmulOp, nt.GemmOp, nt.MatmulI16Op))]
    if len(roots) != 1 or not isinstance(roots[0], nt.MatmulOp):
        return None
    root = roots[0]
    if nt.INTEGER_OPERANDS not in root.attributes:
        return None
    x, y = root.lhs, root.rhs
    if not (isinstance(x, BlockArgument) and isinstance(y, BlockArgument) and x.owner is block
            and y.owner is block and x.has_one_use() and y.has_one_use()):  # fmt: skip
        return None
    w = fused.inputs[y.index]
    shape = nt.shape_of(w)
    if not isinstance(w.owner, (nt.WeightOp, nt.ConstantOp)) or len(shape) != 2:
        return None
    if shape[0] > MAX_K or shape[1] < 4:  # (the integer kernel reads B in vectors of 4 columns)
        return None
    return root, x, y


def _int8_rhs(user: Operation) -> bool:
    """Whether a marked fused matmul's B holds 8-bit integers (the frontend's mark, or a
    constant's values)."""
    root, _, y = _marked_matmul(user)  # type: ignore[misc]
    w = user.operands[y.index].owner
    if isinstance(w, nt.ConstantOp):
        return _is_int8(to_numpy(w.value))
    return nt.INT8_RHS in root.attributes


def _reads_as_a(a: SSAValue, user: Operation) -> bool:
    """Whether `user` is a marked fused matmul (`_marked_matmul`) reading `a` only as A."""
    found = _marked_matmul(user)
    if found is None:
        return False
    _, x, _ = found
    return [k for k, v in enumerate(user.operands) if v is a] == [x.index]


@dataclass
class IntegerMatmulPattern(RewritePattern):
    """Marked matmuls of an elementwise result and a weight, computed in integers (the
    matmuls that read one elementwise result, e.g. Q/K/V of one quantized tensor, together)."""

    dot: str = "i16"
    words: dict[tuple[SSAValue, str], nt.WeightOp | nt.ConstantOp] = field(default_factory=dict)
    """Weights already stored in pairs / quads (a weight that several matmuls read is stored once)."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, fused: nt.FusedOp, rewriter: PatternRewriter) -> None:
        found = _marked_matmul(fused)
        if found is None:
            return
        _, x, _ = found
        a = fused.inputs[x.index]
        traced = _elementwise_producer(a)
        if traced is None:
            return
        users = [u.operation for u in a.uses]
        readers = list(dict.fromkeys(users))  # (in order, once each)
        if len(users) != len(readers) or not all(_reads_as_a(a, u) for u in readers):
            return
        fmt = "i8" if self.dot == "i8" and all(_int8_rhs(u) for u in readers) else "i16"
        pairs = []
        for user in readers:
            _, _, y = _marked_matmul(user)  # type: ignore[misc]
            w = user.operands[y.index]
            k, n = nt.shape_of(w)
            pw = self.words.get((w, fmt))
            if pw is None:
                of = _quads_of if fmt == "i8" else _pairs_of
                pw = of(w.owner, k, n)  # type: ignore[arg-type]
                if pw is None:
                    return
                self.words[(w, fmt)] = pw
                rewriter.insert(pw, InsertPoint.after(w.owner))  # type: ignore[arg-type]
            pairs.append(pw)
        a_int = self._integer_producer(traced, rewriter)
        for user, pw in zip(readers, pairs):
            self._rewrite_matmul(user, a_int, pw, fmt, rewriter)  # type: ignore[arg-type]

    @staticmethod
    def _integer_producer(
        traced: tuple[nt.FusedOp, list[nt.ReshapeOp]], rewriter: PatternRewriter
    ) -> SSAValue:
        """The elementwise kernel writing its (integer) values as i32 (and its reshapes)."""
        producer, reshapes = traced
        last = producer.body.block.last_op
        assert isinstance(last, nt.YieldOp)
        p_type = TensorType(i32, nt.shape_of(producer.result))
        cast = nt.CastOp(last.values[0], p_type)
        rewriter.insert(cast, InsertPoint.before(last))
        last.operands = [cast.result]
        new_producer = nt.FusedOp("elementwise", producer.inputs, p_type,
                                  producer.detach_region(producer.body))  # fmt: skip
        new_producer.attributes |= producer.attributes
        rewriter.replace(producer, new_producer)
        a_int: SSAValue = new_producer.result
        for r in reshapes:
            new_r = nt.ReshapeOp(a_int, TensorType(i32, nt.shape_of(r.result)))
            rewriter.replace(r, new_r)
            a_int = new_r.result
        return a_int

    @staticmethod
    def _rewrite_matmul(fused: nt.FusedOp, a_int: SSAValue, pw: nt.WeightOp | nt.ConstantOp,
                        fmt: str, rewriter: PatternRewriter) -> None:  # fmt: skip
        """The body: i32 arguments in the same places, matmul_i16 (i8) cast back to float32."""
        root, x, y = _marked_matmul(fused)  # type: ignore[misc]
        block = fused.body.block
        w = fused.inputs[y.index]
        xi = block.insert_arg(a_int.type, x.index)
        yi = block.insert_arg(pw.result.type, y.index)
        out = root.result.type
        assert isinstance(out, TensorType)
        cls = nt.MatmulI8Op if fmt == "i8" else nt.MatmulI16Op
        mm = cls(xi, yi, TensorType(i32, out.get_shape()))
        back = nt.CastOp(mm.result, out)
        rewriter.replace(root, [mm, back])
        for arg in (x, y):
            block.erase_arg(arg)
        inputs = list(fused.inputs)
        inputs[xi.index], inputs[yi.index] = a_int, pw.result
        new = nt.FusedOp("matmul", inputs, fused.result.type, fused.detach_region(fused.body))
        new.attributes |= fused.attributes
        rewriter.replace(fused, new)
        if w.first_use is None:
            rewriter.erase(w.owner)  # type: ignore[arg-type]


@dataclass(frozen=True)
class NNTensorIntegerMatmulPass(ModulePass):
    """Marked matmuls (MatMulInteger) as nn_tensor.matmul_i16 of i16-pair weights (module doc)."""

    name = "nn-tensor-integer-matmul"

    dot: str = "i16"
    """"i8": matmuls whose B fits int8 on nn_tensor.matmul_i8 (the relaxed i8 dot; exact
    16-bit dots where the Wasm conversion has relaxed-simd=false); "i16" (the default: faster
    in V8 on x86, bench/results/int8_wasm.md): all on matmul_i16."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for f in [o for o in op.walk() if isinstance(o, func.FuncOp)]:
            for o in list(f.body.block.ops):
                if isinstance(o, nt.MatmulOp) and nt.INTEGER_OPERANDS in o.attributes:
                    o = wrap_lone_op(o, "matmul")
                if isinstance(o, nt.FusedOp) and o.kind.data == "matmul" and any(
                    nt.INTEGER_OPERANDS in b.attributes for b in o.body.block.ops
                ):  # fmt: skip
                    hoist_body_buffers(o)
        if self.dot not in ("i8", "i16"):
            raise ValueError(f"nn-tensor-integer-matmul: dot={self.dot!r}; expected i8 or i16")
        PatternRewriteWalker(IntegerMatmulPattern(self.dot), apply_recursively=False).rewrite_module(op)


__all__ = [
    "NNTensorIntegerMatmulPass", "IntegerMatmulPattern", "I16X2_TAG", "I8X4_TAG", "MAX_K",
    "materialize_i16x2", "materialize_i8x4", "pack_i16x2", "pack_i8x4",
]  # fmt: skip
