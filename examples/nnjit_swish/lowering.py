"""The kernel for kind "swish": one loop over the elements, mapped to the target's parallelism."""

import math

from xdsl.builder import Builder
from xdsl.dialects import arith
from xdsl.dialects import math as xmath
from xdsl.dialects.builtin import FloatAttr, IndexType, IntegerAttr, MemRefType, f32
from xdsl.ir import SSAValue
from xdsl.rewriter import InsertPoint

from nnjit.dialects import nn_loop, nn_tensor

GROUP = 64  # invocations per workgroup on WebGPU


def lower_swish(fused: nn_tensor.FusedOp, name: str, sched) -> nn_loop.KernelOp:
    shape = nn_tensor.shape_of(fused.result)
    buf = MemRefType(f32, shape)
    kernel = nn_loop.KernelOp(name, [buf, buf], ["read", "write"], "swish", sched.target)
    src, dst = kernel.body.block.args
    n = math.prod(shape)

    def index(b: Builder, v: int) -> SSAValue:
        return b.insert(arith.ConstantOp(IntegerAttr(v, IndexType()))).result

    def body(b: Builder, flat: SSAValue):
        idx, rest = [], flat
        for d in reversed(shape):  # unflatten the row-major index
            idx.append(b.insert(arith.RemSIOp(rest, index(b, d))).result)
            rest = b.insert(arith.DivSIOp(rest, index(b, d))).result
        idx.reverse()
        x = b.insert(nn_loop.LoadOp(src, idx)).result
        neg = b.insert(arith.NegfOp(x)).result
        e = b.insert(xmath.ExpOp(neg)).result
        one = b.insert(arith.ConstantOp(FloatAttr(1.0, f32))).result
        den = b.insert(arith.AddfOp(one, e)).result
        y = b.insert(arith.DivfOp(x, den)).result
        b.insert(nn_loop.StoreOp(y, dst, idx))


    top = kernel.body.block
    yield_point = InsertPoint.before(top.last_op)
    if sched.target == "wgsl":
        wg = nn_loop.ForOp(0, (n + GROUP - 1) // GROUP, 1, "workgroup.x")
        Builder(yield_point).insert(wg)
        inv = nn_loop.ForOp(0, GROUP, 1, "invocation.x")
        Builder(InsertPoint.before(wg.body.block.last_op)).insert(inv)
        b = Builder(InsertPoint.before(inv.body.block.last_op))
        base = b.insert(arith.MuliOp(wg.iv, index(b, GROUP))).result
        flat = b.insert(arith.AddiOp(base, inv.iv)).result
        inside = b.insert(arith.CmpiOp(flat, index(b, n), "slt")).result
        guard = b.insert(nn_loop.IfOp(inside))
        body(Builder(InsertPoint.before(guard.body.block.last_op)), flat)
    else:
        th = nn_loop.ForOp(0, n, 1, "thread")
        Builder(yield_point).insert(th)
        body(Builder(InsertPoint.before(th.body.block.last_op)), th.iv)
    return kernel
