"""Conv kernels: `nn_tensor.fused` of kind "conv" lowered to one `nn_loop.kernel`.

A 2-D NCHW convolution (group 1) is an implicit GEMM per image n:

    out[n, f, p] = bias[f] + sum_k W[f, k] * im2col[n, k, p]
    k = (c, ky, kx), p = (oy, ox)
    im2col[n, k, p] = x[n, c, oy*s0 - p0 + ky*d0, ox*s1 - p1 + kx*d1]

(zero outside the image). Rows are output channels f, columns output pixels p (so the output
is contiguous along the columns), batch = images. `ConvSpec` describes that to the GEMM
generator (nnjit/passes/lowering/gemm/), which supplies the schedules (gemm/plan.py): the same
options and defaults apply, with these layout facts deciding the vector mode:

* W is contiguous along k within a kernel row: vectors along k need KW % 4 == 0.
* im2col is gathered: it is never read as vectors along p from global memory, so vec=4 along
  the output columns needs shared=1 (the tiles are gathered into workgroup memory) and
  OW % 4 == 0 (a vector group stays within one output row); it is read as vectors along k
  when KW % 4 == 0, dilation_x == 1 and there is no padding: ViT's patch embedding (kernel =
  stride = patch, pads 0) runs in mode k (W and patch rows are both 4-lane contiguous).
* pixel coordinates of each column are computed once per register tile; k is split into
  (c, ky, kx) once per k step; padding reads are clamped and replaced by 0 with a select
  (only on the sides where the window can leave the image).
"""

from __future__ import annotations

from typing import Any

from xdsl.dialects import arith
from xdsl.dialects.builtin import Float32Type, TensorType
from xdsl.ir import BlockArgument, SSAValue

from nnjit.dialects import nn_loop as L
from nnjit.dialects import nn_tensor as T
from nnjit.errors import UnsupportedError
from nnjit.passes.lowering.gemm import KB, GemmSpec, build_kernel, cached_memref_type, value_at
from nnjit.passes.lowering.scalar import can_vectorize


def _block_arg(v: SSAValue, what: str) -> BlockArgument:
    if not isinstance(v, BlockArgument):
        raise UnsupportedError(
            f"conv {what} is computed inside the fused op ({getattr(v.owner, 'name', '?')}); "
            "only fused inputs are supported there",
            hint="fuse elementwise prologues into a separate kernel",
        )
    return v


class ConvSpec(GemmSpec):
    """nn_tensor.conv (NCHW, group 1) with an elementwise epilogue, as an implicit GEMM."""

    kind = "conv"

    def __init__(self, fused: T.FusedOp):
        roots = [op for op in fused.body.block.ops if isinstance(op, T.ConvOp)]
        if len(roots) != 1:
            raise UnsupportedError(
                f"fused conv needs exactly one nn_tensor.conv, found {len(roots)}"
            )
        conv = self.root = roots[0]
        if conv.group.value.data != 1:
            raise UnsupportedError(
                f"conv with group {conv.group.value.data}: only group 1 is supported",
                hint="grouped and depthwise convolutions are not implemented yet",
            )
        for t in (conv.input.type, conv.weight.type, fused.result.type):
            assert isinstance(t, TensorType)
            if not isinstance(t.get_element_type(), Float32Type):
                raise UnsupportedError(f"conv on {t}: only f32 convolutions are supported")
        self.x = _block_arg(conv.input, "input").index
        self.w = _block_arg(conv.weight, "weight").index
        self.bias = conv.bias
        self.nb, self.c, self.h, self.wd = T.shape_of(conv.input)
        self.f, _, self.kh, self.kw = T.shape_of(conv.weight)
        _, _, self.oh, self.ow = T.shape_of(conv.result)
        self.s = T.array_values(conv.strides)
        self.d = T.array_values(conv.dilations)
        self.p = T.array_values(conv.pads)  # top, left, bottom, right
        self.M, self.N, self.K = self.f, self.oh * self.ow, self.c * self.kh * self.kw
        self.nbatch = self.nb
        # can a window row/column leave the image? (static: checked only on those sides)
        top = self.p[0] > 0
        left = self.p[1] > 0
        bottom = (self.oh - 1) * self.s[0] - self.p[0] + (self.kh - 1) * self.d[0] >= self.h
        right = (self.ow - 1) * self.s[1] - self.p[1] + (self.kw - 1) * self.d[1] >= self.wd
        self.edges = (top, left, bottom, right)
        self.a_vec_k = self.kw % 4 == 0
        self.b_vec_n = False
        self.b_vec_k = self.kw % 4 == 0 and self.d[1] == 1 and not (left or right)
        self.a_fast = "k"
        self.b_fast = "n" if self.s[1] == 1 else "k"
        self.yielded = fused.body.block.last_op.operands[0]  # type: ignore[union-attr]
        self.epilogue_vec = can_vectorize(self.yielded, [conv.result])
        self.arg_types = [cached_memref_type(v.type) for v in fused.inputs] + [
            cached_memref_type(fused.result.type)
        ]
        self.access = ["read"] * len(fused.inputs) + ["write"]
        if T.shape_of(self.yielded) != T.shape_of(conv.result):
            raise UnsupportedError("conv epilogue changes the result shape")

    def n_vec_ok(self, vec: int) -> bool:
        return self.ow % vec == 0

    def batch(self, kb: KB, bz: SSAValue | None) -> Any:
        return bz if bz is not None else kb.c(0)

    def row(self, kb: KB, bi: Any, r: SSAValue) -> Any:
        return r

    def col(self, kb: KB, bi: Any, c: SSAValue) -> Any:
        oy, ox = kb.div(c, self.ow), kb.rem(c, self.ow)
        iy0 = kb.add(kb.mul(oy, self.s[0]), -self.p[0]) if self.p[0] else kb.mul(oy, self.s[0])
        ix0 = kb.add(kb.mul(ox, self.s[1]), -self.p[1]) if self.p[1] else kb.mul(ox, self.s[1])
        return oy, ox, iy0, ix0

    def kinfo(self, kb: KB, k: SSAValue) -> Any:
        area = self.kh * self.kw
        ch, rest = kb.div(k, area), kb.rem(k, area)
        return ch, kb.div(rest, self.kw), kb.rem(rest, self.kw)

    def load_a(self, kb: KB, bi: Any, ri: Any, ki: Any, vec: int) -> SSAValue:
        ch, ky, kx = ki
        return kb.load(self.bufs[self.w], [ri, ch, ky, kx], vec)

    def load_b(self, kb: KB, bi: Any, ki: Any, ci: Any, vec: int, along: str) -> SSAValue:
        ch, ky, kx = ki
        _, _, iy0, ix0 = ci
        iy = kb.add(iy0, kb.mul(ky, self.d[0]))
        ix = kb.add(ix0, kb.mul(kx, self.d[1]))
        top, left, bottom, right = self.edges
        inside = []
        if top:
            inside.append(kb.ge(iy, 0))
            iy = kb.max(iy, 0)
        if bottom:
            inside.append(kb.lt(iy, self.h))
            iy = kb.min(iy, self.h - 1)
        if left:
            inside.append(kb.ge(ix, 0))
            ix = kb.max(ix, 0)
        if right:
            inside.append(kb.lt(ix, self.wd))
            ix = kb.min(ix, self.wd - 1)
        v = kb.load(self.bufs[self.x], [bi, ch, iy, ix], vec)
        cond = kb.and_(inside)
        if cond is not None:
            v = kb.select(cond, v, kb.f(0.0, vec))
        return v

    def finish(self, kb: KB, bi: Any, ri: Any, ci: Any, acc: SSAValue, vec: int) -> None:
        oy, ox, iy0, ix0 = ci
        if vec > 1 and not self.epilogue_vec:
            for lane in range(vec):
                s = kb.extract(acc, lane)
                self.finish(kb, bi, ri, (oy, kb.add(ox, lane), iy0, ix0), s, 1)
            return
        v = acc

        def load_arg(arg: BlockArgument, idx: list[SSAValue], lanes: int = 1) -> SSAValue:
            return kb.load(self.bufs[arg.index], idx, lanes)

        if self.bias is not None:
            b = value_at(kb, self.bias, [ri], load_arg, None, 1)
            v = kb.fbin(arith.AddfOp, v, kb.splat(b, vec))
        idx = [bi, ri, oy, ox]
        if self.yielded is not self.root.result:
            v = value_at(kb, self.yielded, idx, load_arg, {self.root.result: v}, vec)
        kb.store(v, self.bufs[-1], idx)


def lower_conv(fused: T.FusedOp, name: str, sched: Any) -> L.KernelOp:
    """The nn_loop.kernel computing a fused conv (and its epilogue) under `sched`."""
    return build_kernel(ConvSpec(fused), name, sched)
