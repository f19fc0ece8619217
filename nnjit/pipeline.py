"""The lowering steps the compiler and the tuner share: running pipelines, loading and fusing a
model, a backend's copy of the fused module, lowering it (whole, or one kernel under one
schedule point) and reading its kernels back.

It sits below both: nnjit/compiler.py (bundles) and nnjit/tuning/ (kernels, spaces, the
tuner) import it, it imports neither, so the tuner never calls back into the compiler.

    module, seconds = load_fused_model("model.onnx")              # nn_tensor, fused
    web = lower_for_backend(module, "wasm", "reg=4,8")             # nn_wasm modules
    kernels = kernels_of(web, "wasm")                              # [(name, WAT, manifest)]
    kernels = lower_and_print(module, "wasm", "reg=4,8")           # the two in one
    kernels = lower_point(kernel_module, TARGETS["wasm"], {"reg": [3, 16]})
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass, PassPipeline

from nnjit import registry
from nnjit.errors import NNJitError
from nnjit.ir.fastir import clone_op, fewer_collections
from nnjit.targets import Target, target_named

TENSOR_PIPELINE = "nn-tensor-fold,cse,nn-tensor-split-weights,nn-tensor-fuse,canonicalize,dce"
"""The tensor-level passes every backend shares (then each Target's `tensor_passes`)."""


def run_pipeline(module: ModuleOp, spec: str) -> None:
    """Applies a textual pass pipeline (the same syntax as nnjit-opt -p)."""
    # Parsing a spec costs more than a small pass: parsed pipelines are kept (passes are frozen
    # dataclasses), keyed by the spec and the registry's version (a register_pass call, a
    # plugin's, may give a name another class).
    key = (spec, registry.passes_version())
    pipeline = _PIPELINES.get(key)
    if pipeline is None:
        pipeline = PassPipeline.parse_spec(registry.get_all_passes(), spec)
        if len(_PIPELINES) < 256:
            _PIPELINES[key] = pipeline
    with fewer_collections():  # (passes build and drop IR in bulk: see fastir)
        pipeline.apply(registry.make_context(), module)


_PIPELINES: dict[tuple[str, int], PassPipeline] = {}


def run_passes(module: ModuleOp, passes: Iterable[ModulePass]) -> None:
    """Applies pass objects in order (a pipeline already built, e.g. a schedule point's)."""
    with fewer_collections():
        PassPipeline(tuple(passes)).apply(registry.make_context(), module)


def main_func(module: ModuleOp) -> func.FuncOp:
    """The module's `func.func @main` (the model)."""
    for op in module.ops:
        if isinstance(op, func.FuncOp) and op.sym_name.data == "main":
            return op
    raise NNJitError("the module has no func.func @main", hint="nnjit compiles whole models")


def load_fused_model(model: Any, shapes: dict | None = None) -> tuple[ModuleOp, float]:
    """(fused nn_tensor module, import seconds) of an ONNX model (path or bytes)."""
    from nnjit.frontend import import_onnx  # (onnx: loaded when a model is)

    t0 = time.perf_counter()
    imported = import_onnx(model, shapes=shapes)
    run_pipeline(imported.module, TENSOR_PIPELINE)
    return imported.module, time.perf_counter() - t0


def backend_module(tensor_module: ModuleOp, target: Target) -> ModuleOp:
    """The module a backend lowers: `tensor_module` itself, or a clone through the target's
    tensor-level passes (Wasm: packed matmul weights)."""
    if not target.tensor_passes:
        return tensor_module
    module = tensor_module.clone()
    run_pipeline(module, target.tensor_passes)
    return module


def lower_for_backend(tensor_module: ModuleOp, backend: str, loop_options: str = "") -> ModuleOp:
    """Clones a fused nn_tensor module and lowers it to the web level of `backend`."""
    target = target_named(backend)
    module = clone_op(tensor_module, {})  # (ModuleOp.clone, faster)
    run_pipeline(module, target.lowering_pipeline(loop_options))
    return module


def kernels_of(module: ModuleOp, backend: str) -> list[tuple[str, str, dict]]:
    """(name, source, manifest) of every kernel of a web-level module."""
    return target_named(backend).kernels_of(module)


def lower_and_print(tensor_module: ModuleOp, backend: str, loop_options: str = "") -> list[tuple[str, str, dict]]:
    """The kernels of `tensor_module` lowered for `backend` (lower_for_backend + kernels_of),
    in one `fewer_collections` scope: the lowered IR is garbage when the scope ends, so the
    collection the scope put off frees it rather than promoting it (nnjit/ir/fastir.py)."""
    with fewer_collections():
        return kernels_of(lower_for_backend(tensor_module, backend, loop_options), backend)


def lower_point(kernel_module: ModuleOp, target: Target, point: Mapping[str, Any]) -> list[tuple[str, str, dict]]:
    """One schedule point's kernels: a clone of `kernel_module` (a kernel's standalone
    module) lowered through `target.schedule_passes(point)` and printed (in one
    `fewer_collections` scope, as lower_and_print)."""
    with fewer_collections():
        module = clone_op(kernel_module, {})
        run_passes(module, target.schedule_passes(point, convert=True))
        return target.kernels_of(module)


__all__ = [
    "TENSOR_PIPELINE", "run_pipeline", "run_passes", "main_func", "load_fused_model",
    "backend_module", "lower_for_backend", "kernels_of", "lower_and_print", "lower_point",
]  # fmt: skip
