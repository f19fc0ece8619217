"""Matmul and gemm kernels: `nn_tensor.fused` of kind "matmul" lowered to one `nn_loop.kernel`.

The kernel is built by a generator shared with conv (conv.py): both are "GEMM-like" problems
C[b, r, c] = sum_k A[b, r, k] * B[b, k, c], described by a `GemmSpec` that says how to load
A and B elements (or 4-lane vectors) and how to finish and store an output element (bias,
alpha/beta, the fused elementwise epilogue). Matmul's spec (here) reads A and B straight from
buffers, swapping indices for transposed operands and broadcasting batch dims; conv's spec
gathers B from the input image (implicit im2col). A B operand `cast(q) * scale` of int8
weights q (nn-tensor-int8-weights) is read as bytes, 8 columns per load widened in registers,
and the column scales multiply the accumulators first thing in the epilogue (Wasm).

The generator, its schedule options, defaults and measurements: nnjit/passes/lowering/gemm/
(plan.py states the options, wgsl.py and wasm.py the kernels per target).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from xdsl.dialects import arith
from xdsl.dialects.builtin import Float32Type, MemRefType, TensorType, VectorType, f16, i8
from xdsl.ir import BlockArgument, SSAValue

from nnjit.dialects import nn_loop as L
from nnjit.dialects import nn_tensor as T
from nnjit.errors import UnsupportedError
from nnjit.passes.lowering.gemm import KB, GemmSpec, build_kernel, cached_memref_type, value_at
from nnjit.passes.lowering.scalar import can_vectorize, map_index


def _batch_index(kb: KB, bz: SSAValue | int, dims: Sequence[int]) -> list[SSAValue]:
    """Row-major multi-index of linear `bz` over `dims` (size-1 dims read 0)."""
    out: list[SSAValue] = []
    rest: SSAValue | int = bz
    for k in range(len(dims) - 1, -1, -1):
        d = dims[k]
        if d == 1:
            out.append(kb.c(0))
        elif all(e == 1 for e in dims[:k]):
            out.append(kb.ix(rest))  # the outermost varying dim takes the rest
            rest = 0
        else:
            out.append(kb.rem(rest, d))
            rest = kb.div(rest, d)
    return out[::-1]


def _operand_batch(kb: KB, shape: Sequence[int], out_batch: Sequence[SSAValue]) -> list[SSAValue]:
    """An operand's batch indices (its dims before the last two), broadcast from the
    output's batch indices (aligned right; size-1 dims read index 0)."""
    nb = len(shape) - 2
    off = len(out_batch) - nb
    return [kb.c(0) if shape[i] == 1 else out_batch[off + i] for i in range(nb)]


@dataclass
class _Operand:
    arg: int  # block argument number = kernel buffer number
    shape: tuple[int, ...]  # stored shape (a packed operand: the unpacked [K, N])
    trans: bool  # stored with its last two dims swapped
    pack: int = 0  # > 0: stored in [N/pack, K, pack] panels (nn-tensor-pack-weights)
    scale: int = -1  # >= 0: int8 values times this argument's per-column scales (B only)


def _trace_operand(v: SSAValue, what: str) -> _Operand:
    trans = False
    while isinstance(v.owner, T.TransposeOp):
        t = v.owner
        perm = T.array_values(t.perm)
        r = len(perm)
        if r < 2 or tuple(perm) != (*range(r - 2), r - 1, r - 2):
            raise UnsupportedError(
                f"matmul {what} operand: transpose perm {list(perm)} is not a swap of the "
                "last two dims",
                hint="only last-two-dim transposes fuse into a matmul",
            )
        trans = not trans
        v = t.input
    scale = -1
    int8 = _trace_int8(v)
    if int8 is not None:
        v, scale = int8
    packed = _trace_packed(v)
    if packed is not None:
        return _Operand(packed[0].index, T.shape_of(v), trans, packed[1], scale)
    if not isinstance(v, BlockArgument):
        op = v.owner
        raise UnsupportedError(
            f"matmul {what} operand is computed by {getattr(op, 'name', op)} inside the fused "
            "op; only transposes of inputs are supported there",
            hint="fuse elementwise prologues into a separate kernel",
        )
    return _Operand(v.index, T.shape_of(v), trans, 0, scale)


def _trace_int8(v: SSAValue) -> tuple[SSAValue, int] | None:
    """(q, scale argument number) when v = cast(q) * scale: int8 weights q [K, N] (packed
    or not) and float32 scales [N], one per column (nnjit/passes/nn_tensor_int8_weights.py)."""
    mul = v.owner
    if not isinstance(mul, T.MulOp) or not isinstance(mul.lhs.owner, T.CastOp):
        return None
    q, s = mul.lhs.owner.input, mul.rhs
    shape = T.shape_of(q)
    if T.elem_of(q) != i8 or len(shape) != 2 or not isinstance(s, BlockArgument) or T.shape_of(s) != shape[1:]:
        return None
    return q, s.index


def _trace_packed(v: SSAValue) -> tuple[BlockArgument, int] | None:
    """(argument, nr) when v = reshape(transpose(arg, [1, 0, 2])) unpacks a [N/nr, K, nr]
    panel argument into [K, N] (see nnjit/passes/nn_tensor_pack_weights.py)."""
    if not isinstance(v.owner, T.ReshapeOp):
        return None
    t = v.owner.input
    if not isinstance(t.owner, T.TransposeOp) or tuple(T.array_values(t.owner.perm)) != (1, 0, 2):
        return None
    arg = t.owner.input
    if not isinstance(arg, BlockArgument):
        return None
    np_, k, nr = T.shape_of(arg)
    if T.shape_of(v) != (k, np_ * nr) or nr % 4:
        return None
    return arg, nr


class MatmulSpec(GemmSpec):
    """nn_tensor.matmul / nn_tensor.gemm with transposed operands and an epilogue."""

    kind = "matmul"

    def __init__(self, fused: T.FusedOp):
        roots = [op for op in fused.body.block.ops
                 if isinstance(op, (T.MatmulOp, T.GemmOp, T.MatmulI16Op, T.MatmulI8Op, T.MatmulQ8POp))]  # fmt: skip
        if len(roots) != 1:
            raise UnsupportedError(
                f"fused matmul needs exactly one nn_tensor.matmul or gemm, found {len(roots)}"
            )
        root = self.root = roots[0]
        self.fused = fused
        self.alpha, self.beta = 1.0, 1.0
        self.c_value: SSAValue | None = None
        if isinstance(root, T.GemmOp):
            a = _trace_operand(root.a, "A")
            b = _trace_operand(root.b, "B")
            a.trans ^= bool(root.trans_a.value.data)
            b.trans ^= bool(root.trans_b.value.data)
            self.alpha = root.alpha.value.data
            self.beta = root.beta.value.data
            self.c_value = root.c
            lhs_t, rhs_t = root.a.type, root.b.type
        else:
            a = _trace_operand(root.lhs, "A")
            b = _trace_operand(root.rhs, "B")
            lhs_t, rhs_t = root.lhs.type, root.rhs.type
        self.integer = isinstance(root, (T.MatmulI16Op, T.MatmulI8Op, T.MatmulQ8POp))
        self.int8 = isinstance(root, T.MatmulI8Op)
        self.q8p = isinstance(root, T.MatmulQ8POp)  # B: int8 k pairs [ceil(K/2), 2N], 4 columns a load
        for t in (lhs_t, rhs_t) if self.integer else (lhs_t, rhs_t, fused.result.type):
            assert isinstance(t, TensorType)
            if not isinstance(t.get_element_type(), Float32Type) and not self.integer:
                raise UnsupportedError(f"matmul on {t}: only f32 matmuls are supported")
        self.a, self.b = a, b
        out = T.shape_of(root.result)
        self.out_batch = out[:-2]
        self.m, self.N = out[-2], out[-1]
        self.K = a.shape[-2] if a.trans else a.shape[-1]
        if self.integer:  # a k step is a pair (quad) of k: B rows are words of two i16 (4 i8)
            if a.trans or b.trans:
                raise UnsupportedError("integer matmul operands must be untransposed block arguments")
            self.k_elems, self.K = self.K, b.shape[0] - (1 if self.int8 else 0)
        nb = math.prod(self.out_batch)
        self.fold = nb > 1 and math.prod(b.shape[:-2]) == 1
        self.nbatch = 1 if self.fold else nb
        self.M = self.m * nb if self.fold else self.m
        if self.q8p and b.pack % 8:
            raise UnsupportedError(f"matmul_q8p: panels of {b.pack} bytes; the kernel reads 4 columns' "
                                   "k pairs (8 bytes) at a time", hint="nn-tensor-pack-weights packs 2 nr bytes")  # fmt: skip
        if b.pack and b.trans:
            raise UnsupportedError("matmul B operand: a packed weight is used transposed",
                                   hint="nn-tensor-pack-weights packs the B layout of a matmul")
        self.b_int8 = b.scale >= 0
        if self.b_int8 and (b.trans or (b.pack and b.pack % 8) or self.integer):
            raise UnsupportedError("matmul B operand: int8 weights are read along n, 8 columns at a time",
                                   hint="nn-tensor-int8-weights stores them [K, N]")  # fmt: skip
        self.a_vec_k = not a.trans and not self.integer
        self.a_vec_m = a.trans and self.m % 4 == 0
        self.b_vec_n = not b.trans
        self.b_vec_k = b.trans
        self.a_fast = "m" if a.trans else "k"
        self.b_fast = "k" if b.trans else "n"
        self.yielded = fused.body.block.last_op.operands[0]  # type: ignore[union-attr]
        self.arg_types = [cached_memref_type(v.type) for v in fused.inputs] + [cached_memref_type(fused.result.type)]
        if self.b_int8 or self.q8p:  # (an i8 tensor is an i32 buffer by default)
            self.arg_types[b.arg] = MemRefType(i8, T.shape_of(fused.inputs[b.arg]))
        self.access = ["read"] * len(fused.inputs) + ["write"]
        self.epilogue_vec = can_vectorize(self.yielded, [root.result]) and (
            self.c_value is None or can_vectorize(self.c_value)
        )
        if T.shape_of(self.yielded) != out:
            raise UnsupportedError(
                f"matmul epilogue changes the shape {out} to {T.shape_of(self.yielded)}"
            )

    # batch: output batch indices (None when the batch is folded into the rows)
    def batch(self, kb: KB, bz: SSAValue | None) -> Any:
        if self.fold:
            return None
        return _batch_index(kb, bz if bz is not None else 0, self.out_batch)

    def row(self, kb: KB, bi: Any, r: SSAValue) -> Any:
        if self.fold:
            m = kb.rem(r, self.m)
            bi = _batch_index(kb, kb.div(r, self.m), self.out_batch)
        else:
            m = r
        return bi, m, _operand_batch(kb, self.a.shape, bi)

    def col(self, kb: KB, bi: Any, c: SSAValue) -> Any:
        # a packed B: (panel, column in panel) where c is panel-aligned plus a constant (else
        # computed at the load)
        pk = kb.divmod_aligned(c, self.b.pack // (2 if self.q8p else 1)) if self.b.pack else None
        if bi is None:  # folded: B has no batch (all ones)
            return c, [kb.c(0)] * (len(self.b.shape) - 2), pk
        return c, _operand_batch(kb, self.b.shape, bi), pk

    def load_a(self, kb: KB, bi: Any, ri: Any, ki: Any, vec: int) -> SSAValue:
        _, m, ab = ri
        if self.int8:
            return self._load_a_quad(kb, m, ab, ki)
        if self.integer:
            return self._load_a_pair(kb, m, ab, ki)
        idx = [*ab, ki, m] if self.a.trans else [*ab, m, ki]
        return kb.load(self.bufs[self.a.arg], idx, vec)

    def _load_a_pair(self, kb: KB, m: SSAValue, ab: list[SSAValue], j: SSAValue) -> SSAValue:
        """A[m, 2j] and A[m, 2j+1] as 16-bit halves in every lane (nn_loop.pair_splat): the
        pair that word row j of B holds. For odd K the last pair's high half is A[m, K-1]
        again: B's high half is 0 there."""
        buf = self.bufs[self.a.arg]
        k0 = kb.mul(j, 2)
        k1 = kb.add(k0, 1)
        if self.k_elems % 2:
            k1 = kb.min(k1, self.k_elems - 1)
        lo, hi = kb.load(buf, [*ab, m, k0]), kb.load(buf, [*ab, m, k1])
        return kb.new(L.PairSplatOp, [lo, hi], VectorType(lo.type, [4]))

    def _load_a_quad(self, kb: KB, m: SSAValue, ab: list[SSAValue], j: SSAValue) -> SSAValue:
        """A[m, 4j..4j+3] (+ 256, as 16-bit halves: nn_loop.quad_splat), the quad that word row
        j of B holds. Past K the index repeats A[m, K-1]: B's bytes are 0 there."""
        buf = self.bufs[self.a.arg]
        k0 = kb.mul(j, 4)
        ks = [k0] + [kb.add(k0, i) for i in range(1, 4)]
        if self.k_elems % 4:
            ks = [ks[0]] + [kb.min(k, self.k_elems - 1) for k in ks[1:]]
        cs = [kb.load(buf, [*ab, m, k]) for k in ks]
        return kb.new(L.QuadSplatOp, cs, VectorType(cs[0].type, [4]))

    def load_b(self, kb: KB, bi: Any, ki: Any, ci: Any, vec: int, along: str) -> SSAValue:
        n, bb, pk = ci
        if self.q8p:  # 4 columns' k pairs: 8 bytes widened to i16 lanes (a panel: pack / 2 columns)
            if not self.b.pack:
                return kb.load_i8x8(self.bufs[self.b.arg], [ki, kb.mul(n, 2)])
            nr = self.b.pack // 2
            q, r = pk if pk is not None else (kb.div(n, nr), kb.rem(n, nr))
            return kb.load_i8x8(self.bufs[self.b.arg], [q, ki, kb.mul(r, 2)])
        if self.b.pack:  # vectors along n stay in one panel: groups are 4-aligned
            q, r = pk if pk is not None else (kb.div(n, self.b.pack), kb.rem(n, self.b.pack))
            return kb.load(self.bufs[self.b.arg], [q, ki, r], vec)
        idx = [*bb, n, ki] if self.b.trans else [*bb, ki, n]
        v = kb.load(self.bufs[self.b.arg], idx, vec)
        return kb.extf(v) if self.b_half == "f32" else v

    def load_b_int8(self, kb: KB, bi: Any, ki: Any, cis: list[Any]) -> list[SSAValue]:
        """B[k, c..c+4) as float32 vectors for the column groups `cis` (pairs of 4 columns
        in a row): 8 int8 weights per load, widened in registers (the scales come in
        `finish`)."""
        out: list[SSAValue] = []
        for g in range(0, len(cis), 2):
            n, _, pk = cis[g]
            if self.b.pack:
                q, r = pk if pk is not None else (kb.div(n, self.b.pack), kb.rem(n, self.b.pack))
                idx = [q, ki, r]
            else:
                idx = [ki, n]
            w = kb.load_i8x8(self.bufs[self.b.arg], idx)
            out += [kb.widen_half(w, h) for h in (0, 1)]
        return out

    b_half = ""  # "": B is f32; "f32": f16 in memory, widened at the load; "keep": f16 values

    def read_b_half(self, keep: bool) -> None:
        arg = self.fused.body.block.args[self.b.arg]
        if self.b.pack or len(list(arg.uses)) != 1:
            raise UnsupportedError("schedule f16: the matmul's B operand is packed or read by "
                                   "more than the contraction", hint="f16 reads a plain weight")  # fmt: skip
        t = self.arg_types[self.b.arg]
        self.arg_types = list(self.arg_types)
        self.arg_types[self.b.arg] = MemRefType(f16, t.get_shape())
        self.b_half = "keep" if keep else "f32"

    def _load_arg(self, kb: KB):
        def load_arg(arg: BlockArgument, idx: list[SSAValue], lanes: int = 1) -> SSAValue:
            return kb.load(self.bufs[arg.index], idx, lanes)

        return load_arg

    def finish(self, kb: KB, bi: Any, ri: Any, ci: Any, acc: SSAValue, vec: int) -> None:
        obi, m, _ = ri
        n, bb, _ = ci
        if vec > 1 and not self.epilogue_vec:
            for lane in range(vec):
                s = kb.extract(acc, lane)
                self.finish(kb, bi, ri, (kb.add(n, lane), bb, None), s, 1)
            return
        idx = [*obi, m, n]
        v = acc
        if self.b_int8:  # the int8 weights' column scales
            v = kb.fbin(arith.MulfOp, v, kb.load(self.bufs[self.b.scale], [n], vec))
        load_arg = self._load_arg(kb)
        if self.alpha != 1.0:
            v = kb.fbin(arith.MulfOp, v, kb.f(self.alpha, vec))
        if self.c_value is not None and self.beta != 0.0:
            cidx = map_index(idx, T.shape_of(self.root.result), T.shape_of(self.c_value))
            cv = value_at(kb, self.c_value, cidx, load_arg, None, vec)
            if vec > 1 and not isinstance(cv.type, VectorType):
                cv = kb.splat(cv, vec)
            if self.beta != 1.0:
                cv = kb.fbin(arith.MulfOp, cv, kb.f(self.beta, vec))
            v = kb.fbin(arith.AddfOp, v, cv)
        if self.yielded is not self.root.result:
            v = value_at(kb, self.yielded, idx, load_arg, {self.root.result: v}, vec)
        kb.store(v, self.bufs[-1], idx)


def lower_matmul(fused: T.FusedOp, name: str, sched: Any) -> L.KernelOp:
    """The nn_loop.kernel computing a fused matmul/gemm (and its epilogue) under `sched`."""
    return build_kernel(MatmulSpec(fused), name, sched)
