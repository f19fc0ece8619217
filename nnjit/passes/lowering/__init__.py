"""Kernel lowerings: one function per nn_tensor.fused kind, turning the fused op into an
nn_loop.kernel (docs/ir.md).

A lowering is `lower(fused, name, schedule) -> nn_loop.KernelOp`: it takes the fused op (its
body is the semantics), the kernel's symbol name and the schedule (pass options already
merged with the fused op's own `schedule` attribute), and returns a kernel whose arguments
are one memref per fused input (access "read") followed by the output (access "write"),
with target = schedule.target, kind = the kind, and schedule = the effective options.

`lowering_for(kind)` looks in the plugin registry first (nnjit.registry), then here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from nnjit.errors import UnsupportedError
from nnjit.registry import get_kernel_lowerings

if TYPE_CHECKING:
    from nnjit.dialects.nn_loop import KernelOp
    from nnjit.dialects.nn_tensor import FusedOp
    from nnjit.passes.lowering.schedule import Schedule

Lowering = Callable[["FusedOp", str, "Schedule"], "KernelOp"]

_BUILTIN: dict[str, tuple[str, str]] = {
    "matmul": ("nnjit.passes.lowering.matmul", "lower_matmul"),
    "gemm": ("nnjit.passes.lowering.matmul", "lower_matmul"),
    "conv": ("nnjit.passes.lowering.conv", "lower_conv"),
    "elementwise": ("nnjit.passes.lowering.elementwise", "lower_elementwise"),
    "copy": ("nnjit.passes.lowering.elementwise", "lower_copy"),
    "transpose": ("nnjit.passes.lowering.movement", "lower_transpose"),
    "gather": ("nnjit.passes.lowering.movement", "lower_gather"),
    "gather_nd": ("nnjit.passes.lowering.movement", "lower_gather_nd"),
    "slice": ("nnjit.passes.lowering.movement", "lower_slice"),
    "concat": ("nnjit.passes.lowering.movement", "lower_concat"),
    "expand": ("nnjit.passes.lowering.movement", "lower_expand"),
    "softmax": ("nnjit.passes.lowering.reduce", "lower_softmax"),
    "layer_norm": ("nnjit.passes.lowering.reduce", "lower_layer_norm"),
    "reduce": ("nnjit.passes.lowering.reduce", "lower_reduce"),
}

BUILTIN_KINDS = tuple(_BUILTIN)


def lowering_for(kind: str) -> Lowering:
    """The lowering of fused ops of `kind`: a registered plugin, else a built-in one."""
    plugin = get_kernel_lowerings().get(kind)
    if plugin is not None:
        return plugin()
    entry = _BUILTIN.get(kind)
    if entry is None:
        raise UnsupportedError(
            f"no kernel lowering for fused kind '{kind}'",
            hint="register one with nnjit.registry.register_kernel_lowering",
        )
    module, name = entry
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name != module:
            raise
        raise UnsupportedError(f"the '{kind}' kernel lowering ({module}) is not available") from e
    return getattr(mod, name)


__all__ = ["Lowering", "lowering_for", "BUILTIN_KINDS"]
