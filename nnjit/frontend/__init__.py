"""ONNX frontend: ONNX model -> nn_tensor IR plus a weights dict; the weights file format.

This package is the only part of nnjit that imports `onnx`, and only when `import_onnx`
is used: `nnjit.frontend.weights` (needed at run time) does not pull it in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nnjit.frontend.weights import load_weights, save_weights

if TYPE_CHECKING:
    from nnjit.frontend.onnx_import import ImportedModel, TensorInfo, import_onnx

__all__ = ["ImportedModel", "TensorInfo", "import_onnx", "load_weights", "save_weights"]


def __getattr__(name: str) -> Any:
    if name in ("ImportedModel", "TensorInfo", "import_onnx"):
        from nnjit.frontend import onnx_import

        return getattr(onnx_import, name)
    raise AttributeError(f"module 'nnjit.frontend' has no attribute {name!r}")
