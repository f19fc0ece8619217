"""The GEMM kernel generator shared by matmul (matmul.py) and conv (conv.py).

The kernel is built by a generator shared with conv (conv.py): both are "GEMM-like" problems
C[b, r, c] = sum_k A[b, r, k] * B[b, k, c], described by a `GemmSpec` that says how to load
A and B elements (or 4-lane vectors) and how to finish and store an output element (bias,
alpha/beta, the fused elementwise epilogue). Matmul's spec (here) reads A and B straight from
buffers, swapping indices for transposed operands and broadcasting batch dims; conv's spec
gathers B from the input image (implicit im2col).

`build_kernel(spec, name, schedule)` is the entry: the schedule is checked and completed into
a `Plan` (gemm/plan.py, which also states the options), then the kernel body is generated
per target (gemm/wgsl.py, gemm/wasm.py: each states its loop structure, defaults and
measurements) from the register tile (gemm/steps.py) with the op builder `KB`
(gemm/builder.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from xdsl.ir import Block, Region, SSAValue

from nnjit.dialects import nn_loop as L
from nnjit.errors import NNJitError
from nnjit.ir.fastir import append, new_op, set_name
from nnjit.passes.lowering.common import KernelBuilder
from nnjit.passes.lowering.gemm.builder import KB, cached_memref_type
from nnjit.passes.lowering.gemm.plan import GemmSpec, Plan, plan_wasm, plan_wgsl
from nnjit.passes.lowering.gemm.wasm import gen_wasm
from nnjit.passes.lowering.gemm.wgsl import gen_wgsl
from nnjit.passes.lowering.scalar import emit_value_at


def build_kernel(spec: GemmSpec, name: str, sched: Any) -> L.KernelOp:
    """One nn_loop.kernel for `spec` under schedule options `sched` (see module doc)."""
    target = sched.target or "wgsl"
    if target == "wgsl":
        plan = plan_wgsl(spec, sched)
    elif target == "wasm":
        plan = plan_wasm(spec, sched)
    else:
        raise NNJitError(f"unknown target '{target}'", hint="use wgsl or wasm")
    if plan.f16:
        spec.read_b_half(keep=plan.f16 == 2)
    block = Block(arg_types=spec.arg_types)
    for k, a in enumerate(block.args[:-1]):
        set_name(a, f"in{k}")
    set_name(block.args[-1], "out")
    kernel = L.KernelOp(
        name, spec.arg_types, spec.access, spec.kind, target, plan.record(sched), Region(block)
    )
    spec.bufs = block.args
    kb = KB(block)
    if target == "wgsl":
        gen_wgsl(kb, spec, plan)
    else:
        gen_wasm(kb, spec, plan)
    append(block, new_op(L.YieldOp))
    return kernel


def value_at(
    kb: KB,
    value: SSAValue,
    index: Sequence[SSAValue],
    load_arg: Callable[..., SSAValue],
    overrides: dict[SSAValue, SSAValue] | None,
    vec: int,
) -> SSAValue:
    """The fused body's `value` at `index` (an index of value's own shape), emitted at the
    end of the current block by the lowering core's emit_value_at."""
    return emit_value_at(KernelBuilder(kb.block), value, list(index), load_arg, overrides, vec)


__all__ = ["KB", "GemmSpec", "Plan", "build_kernel", "cached_memref_type", "value_at"]
