"""Registries of dialects, passes, targets, kernel lowerings and ONNX op converters.

Each registry maps a name to a lazy factory, so tools start without importing what they do
not use. Code outside nnjit extends a registry with the `register_*` functions (docs/extending.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nnjit.errors import NNJitError

if TYPE_CHECKING:
    from xdsl.ir import Dialect
    from xdsl.passes import ModulePass


def _dialect(module: str, name: str) -> Callable[[], Dialect]:
    def load() -> Dialect:
        import importlib

        return getattr(importlib.import_module(module), name)

    return load


def _pass(module: str, name: str) -> Callable[[], type[ModulePass]]:
    def load() -> type[ModulePass]:
        import importlib

        return getattr(importlib.import_module(module), name)

    return load


_DIALECTS: dict[str, Callable[[], Dialect]] = {
    "nn_tensor": _dialect("nnjit.dialects.nn_tensor", "NNTensor"),
    "nn_loop": _dialect("nnjit.dialects.nn_loop", "NNLoop"),
    "nn_wgsl": _dialect("nnjit.dialects.nn_wgsl", "NNWgsl"),
    "nn_wasm": _dialect("nnjit.dialects.nn_wasm", "NNWasm"),
}

_PASSES: dict[str, Callable[[], type[ModulePass]]] = {
    "nn-tensor-fold": _pass("nnjit.passes.nn_tensor_fold", "NNTensorFoldPass"),
    "nn-tensor-fuse": _pass("nnjit.passes.nn_tensor_fuse", "NNTensorFusePass"),
    "nn-tensor-split-weights": _pass(
        "nnjit.passes.nn_tensor_split_weights", "NNTensorSplitWeightsPass"
    ),
    "nn-tensor-pack-weights": _pass(
        "nnjit.passes.nn_tensor_pack_weights", "NNTensorPackWeightsPass"
    ),
    "nn-tensor-int8-weights": _pass(
        "nnjit.passes.nn_tensor_int8_weights", "NNTensorInt8WeightsPass"
    ),
    "nn-tensor-integer-matmul": _pass(
        "nnjit.passes.nn_tensor_integer_matmul", "NNTensorIntegerMatmulPass"
    ),
    "convert-nn-tensor-to-nn-loop": _pass(
        "nnjit.passes.convert_nn_tensor_to_nn_loop", "ConvertNNTensorToNNLoopPass"
    ),
    "nn-loop-unroll": _pass("nnjit.passes.nn_loop_unroll", "NNLoopUnrollPass"),
    "nn-loop-simplify-index": _pass(
        "nnjit.passes.nn_loop_simplify_index", "NNLoopSimplifyIndexPass"
    ),
    "nn-loop-expand-math": _pass("nnjit.passes.nn_loop_expand_math", "NNLoopExpandMathPass"),
    "nn-loop-promote-registers": _pass(
        "nnjit.passes.nn_loop_promote_registers", "NNLoopPromoteRegistersPass"
    ),
    "convert-nn-loop-to-wgsl": _pass(
        "nnjit.passes.convert_nn_loop_to_wgsl", "ConvertNNLoopToWgslPass"
    ),
    "convert-nn-loop-to-wasm": _pass(
        "nnjit.passes.convert_nn_loop_to_wasm", "ConvertNNLoopToWasmPass"
    ),
}

# target name -> lazy `print(module, stream)` function
_TARGETS: dict[str, Callable[[], Callable[..., None]]] = {
    "nnjit-wgsl": lambda: __import__(
        "nnjit.backends.wgsl_printer", fromlist=["print_wgsl"]
    ).print_wgsl,
    "nnjit-wat": lambda: __import__(
        "nnjit.backends.wat_printer", fromlist=["print_wat"]
    ).print_wat,
}

# nn_tensor.fused kind (or lone op name) -> lowering function (see passes/lowering/)
_KERNEL_LOWERINGS: dict[str, Callable[[], Any]] = {}

# (ONNX domain, op type) -> converter (see nnjit/frontend/onnx_ops/base.py for the signature);
# the default domain is "". These take precedence over the built-in converters.
_ONNX_OPS: dict[tuple[str, str], Callable[..., Any]] = {}


def get_all_dialects() -> dict[str, Callable[[], Dialect]]:
    """xDSL's dialects that nnjit uses, plus nnjit's own and any registered from outside."""
    from xdsl.dialects import get_all_dialects as xdsl_dialects

    all_ = xdsl_dialects()
    keep = {k: all_[k] for k in ("builtin", "func", "arith", "math") if k in all_}
    return keep | _DIALECTS


def get_all_passes() -> dict[str, Callable[[], type[ModulePass]]]:
    """nnjit's passes plus xDSL's canonicalize/cse/dce and any registered from outside."""
    from xdsl.transforms import get_all_passes as xdsl_passes

    all_ = xdsl_passes()
    keep = {k: all_[k] for k in ("canonicalize", "cse", "dce") if k in all_}
    return keep | _PASSES


def get_all_targets() -> dict[str, Callable[[], Callable[..., None]]]:
    return dict(_TARGETS)


def get_kernel_lowerings() -> dict[str, Callable[[], Any]]:
    return dict(_KERNEL_LOWERINGS)


def get_onnx_ops() -> dict[tuple[str, str], Callable[..., Any]]:
    return dict(_ONNX_OPS)


def register_dialect(name: str, factory: Callable[[], Dialect]) -> None:
    _DIALECTS[name] = factory


def register_pass(name: str, factory: Callable[[], type[ModulePass]]) -> None:
    global _PASSES_VERSION
    _PASSES[name] = factory
    _PASSES_VERSION += 1


_PASSES_VERSION = 0


def passes_version() -> int:
    """Counts register_pass calls: what caches of built passes are keyed on."""
    return _PASSES_VERSION


def register_target(name: str, factory: Callable[[], Callable[..., None]]) -> None:
    _TARGETS[name] = factory


def register_kernel_lowering(kind: str, factory: Callable[[], Any]) -> None:
    _KERNEL_LOWERINGS[kind] = factory


def register_onnx_op(op_type: str, converter: Callable[..., Any], domain: str = "") -> None:
    """Makes the ONNX frontend convert nodes `domain.op_type` with `converter(cx, ins)`:
    cx is a nnjit.frontend.values.NodeContext, ins the node's inputs (Const / Dyn / None),
    and it returns one value per node output (usually `[cx.emit(op)]`). domain "" (or
    "ai.onnx") is the default ONNX domain; a plugin's converter replaces a built-in one."""
    _ONNX_OPS[("" if domain == "ai.onnx" else domain, op_type)] = converter


def make_context():
    """An xDSL Context with every registered dialect available (loaded lazily)."""
    from xdsl.context import Context

    ctx = Context(allow_unregistered=False)
    for name, factory in get_all_dialects().items():
        ctx.register_dialect(name, factory)
    return ctx


_PLUGINS_LOADED = False


def load_plugins(extra_modules: list[str] | None = None) -> None:
    """Imports plugins: entry points in group "nnjit.plugins" (each a callable run once, or a
    module that registers on import), modules named in $NNJIT_PLUGINS (comma-separated), and
    `extra_modules`. Plugins call the register_* functions above."""
    global _PLUGINS_LOADED
    import importlib
    import os
    from importlib.metadata import entry_points

    modules = list(extra_modules or [])
    if not _PLUGINS_LOADED:
        _PLUGINS_LOADED = True
        for ep in entry_points(group="nnjit.plugins"):
            obj = ep.load()
            if callable(obj):
                obj()
        modules += [m for m in os.environ.get("NNJIT_PLUGINS", "").split(",") if m.strip()]
    for m in modules:
        try:
            importlib.import_module(m.strip())
        except ImportError as e:
            raise NNJitError(
                f"cannot import plugin module '{m.strip()}': {e}",
                hint="check the module name and PYTHONPATH",
            ) from None
        except Exception as e:  # noqa: BLE001 - a broken plugin is the user's error, say which
            raise NNJitError(
                f"plugin module '{m.strip()}' failed while loading: {type(e).__name__}: {e}",
                hint="fix the plugin",
            ) from None
