"""One nn_loop.kernel (target wgsl) to one nn_wgsl.module: the storage and launch geometry
(`access`), the bindings, the workgroup / invocation ids, the body through the per-op patterns
of `patterns`, then the clean-up (expressions and function-scope arrays nothing uses, constants
hoisted to the entry).
"""

from __future__ import annotations

from xdsl.dialects.builtin import MemRefType, f16, f32, i32
from xdsl.ir import Operation

from nnjit.dialects import nn_loop
from nnjit.dialects import nn_wgsl as w
from nnjit.ir.fastir import append as _append
from nnjit.ir.fastir import insert_before as _insert_before
from nnjit.ir.fastir import name_of, set_name, type_of
from nnjit.passes.wgsl.access import analyse, array_type
from nnjit.passes.wgsl.emitter import Emitter, used_consts
from nnjit.passes.wgsl.patterns import PATTERNS
from nnjit.passes.wgsl.patterns_control import map_workgroups
from nnjit.passes.wgsl.typefacts import elem_of, shape_of

MAX_WORKGROUPS_PER_DIM = 65535
"""WebGPU's default maxComputeWorkgroupsPerDimension."""


_PURE = frozenset((
    w.BinaryOp, w.UnaryOp, w.CallOp, w.CallFuncOp, w.ConstructOp, w.LaneOp, w.ConvertOp,
    w.BitcastOp, w.LoadOp,
))  # fmt: skip
"""The expression ops (one result each)."""


def _erase_dead(made: list[Operation]) -> None:
    """Erases the expressions nothing uses (index parts that flat offsets folded into
    constants, say) among the ops `made`, users before their operands (an op is made after
    its operands), so one pass in reverse finds them all."""
    for op in reversed(made):
        if type(op) in _PURE:
            (r,) = op.results
            if r.first_use is None:
                op.detach()
                op.erase()


def convert_kernel(
    kernel: nn_loop.KernelOp, max_workgroups_per_dim: int = MAX_WORKGROUPS_PER_DIM
) -> w.ModuleOp:
    """The nn_wgsl.module for one (already unrolled) wgsl kernel; the kernel is not modified."""
    k = kernel
    cx = Emitter(kernel, max_workgroups_per_dim, PATTERNS)
    grid, ws, _ = analyse(cx)
    # bindings
    for i, (arg, mode) in enumerate(zip(k.body.block.args, k.access.data)):
        t = type_of(arg)
        assert isinstance(t, MemRefType)
        if elem_of(t) not in (f32, i32, f16):
            raise cx.error(f"argument {i}: buffer elements must be f32, i32 or f16, got {t}")
        b = w.BindingOp(i, mode.data, shape_of(t), array_type(cx, arg, "storage"))
        set_name(b.results[0], name_of(arg) or f"b{i}")  # (valid names: no checking setter)
        cx.module_ops.append(b)
        cx.arrays[id(arg)] = b.result
    entry = w.EntryOp(ws)
    cx.block = entry.body.block
    dispatch = map_workgroups(cx, grid)
    for d in "xyz":
        if f"invocation.{d}" in cx.maps:
            cx.ids[f"invocation.{d}"] = cx.builtin("local_invocation_id", d)
    cx.emit_block(k.body.block)
    _erase_dead(cx.made)
    for var in cx.function_vars:  # (nn-loop-promote-registers forwarded every access)
        if var.results[0].first_use is None:
            var.detach()
            var.erase()
    # constants first, in creation order (those still used)
    block = entry.body.block
    first = block.first_op
    for op in used_consts(cx.const_ops, cx.cvals):
        if first is not None:
            _insert_before(block, op, first)
        else:
            _append(block, op)
    module = w.ModuleOp(cx.name, k.kind.data, dispatch, k.schedule)
    module.attributes |= {a: v for a, v in k.attributes.items() if a not in ("sym_name",)}
    mblock = module.body.block
    for op in cx.module_ops:
        _append(mblock, op)
    _append(mblock, entry)
    return module
