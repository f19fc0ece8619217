"""The ONNX op converters (nodes with at least one run-time input) to nn_tensor ops: one
table, `CONVERTERS` (op type -> converter, see base.py), filled by the family modules:
elementwise, contractions (MatMul, Gemm, Conv), normalization (and reductions), movement
(and shape queries), decompositions (ops built from existing nn_tensor ops), quantization
(quantized and float16 forms).

Each converter takes the node's context and its input values (`Const` or `Dyn`, None for an
omitted optional input) and returns one value per node output. Nodes whose inputs are all
constants never get here: the importer folds them (see onnx_import.py). Attribute and input
forms of both the opset-17 (torch legacy) and opset-18 (torch dynamo) exports are handled.
Adding an op: a converter with `@register("OpType")` in its family's module.
"""

from nnjit.frontend.onnx_ops import (  # noqa: F401 - importing a family registers its converters
    contractions,
    decompositions,
    elementwise,
    movement,
    normalization,
    quantization,
)
from nnjit.frontend.onnx_ops.base import CONVERTERS, Converter
from nnjit.frontend.onnx_ops.movement import slice_params


def supported_ops() -> list[str]:
    return sorted(CONVERTERS)


# ops whose converter folds constant inputs itself (keeping what a compact bundle needs)
SELF_FOLDING = frozenset({"DequantizeLinear"})
# the ops of other domains that have converters (onnxruntime's quantized forms)
CONTRIB_OPS = frozenset({("com.microsoft", "MatMulNBits"), ("com.microsoft", "GatherBlockQuantized")})

__all__ = ["CONTRIB_OPS", "CONVERTERS", "Converter", "SELF_FOLDING", "supported_ops", "slice_params"]
