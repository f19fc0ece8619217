"""What the ONNX importer knows about each tensor name: a constant, or a value of the IR.

`Const` holds a value known at import time (an initializer, a Constant node, or anything
computed only from those: shape sub-graphs fold this way). It becomes an
`nn_tensor.weight` or `nn_tensor.constant` only when an IR op uses it ("materialised").
`Dyn` is an SSA value of the nn_tensor function being built (static shape, known dtype).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from xdsl.dialects.builtin import Float32Type, IntegerType, TensorType, i32, i64
from xdsl.ir import Attribute, Operation, SSAValue

from nnjit.errors import UnsupportedError

if TYPE_CHECKING:
    import onnx

# numpy dtype <-> nn_tensor element type, for values that reach the IR
_ELEM_OF: dict[np.dtype[Any], Attribute] = {
    np.dtype(np.float32): Float32Type(),
    np.dtype(np.int64): i64,
    np.dtype(np.int32): i32,
    np.dtype(np.bool_): IntegerType(1),
}
SUPPORTED_DTYPES = tuple(_ELEM_OF)
SUPPORTED_DTYPE_NAMES = "float32, int64, int32 and bool"


# int8/uint8 tensors of quantized models (constants, QuantizeLinear results) are i32 in the IR
_NARROW_INTS = (np.dtype(np.int8), np.dtype(np.uint8))


def elem_type(dtype: np.dtype[Any] | type) -> Attribute:
    """The nn_tensor element type of a numpy dtype (raises KeyError if unsupported)."""
    dt = np.dtype(dtype)
    return i32 if dt in _NARROW_INTS else _ELEM_OF[dt]


def np_dtype(elem: Attribute) -> np.dtype[Any]:
    """The numpy dtype of an nn_tensor element type."""
    for k, v in _ELEM_OF.items():
        if v == elem:
            return k
    raise KeyError(f"no numpy dtype for element type {elem}")


def tensor_type(shape: Sequence[int], dtype: np.dtype[Any] | type) -> TensorType[Any]:
    return TensorType(elem_type(dtype), [int(d) for d in shape])


class Const:
    """A tensor known at import time. `name` is the ONNX tensor name (weights key hint)."""

    __slots__ = ("array", "name", "initializer", "ssa", "compact")

    def __init__(self, array: np.ndarray, name: str, initializer: bool = False):
        self.array = np.asarray(array)
        self.name = name
        self.initializer = initializer
        self.ssa: SSAValue | None = None  # set when materialised
        # how the value can be stored compactly, exactly: "f16" (a float16 initializer) or a
        # quantization.Quantized (dequantized integers); see nnjit/frontend/compact.py
        self.compact: Any = None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.array.shape)

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.array.dtype


class Dyn:
    """A tensor computed at run time: an SSA value of the function being built."""

    __slots__ = ("ssa",)

    def __init__(self, ssa: SSAValue):
        self.ssa = ssa

    @property
    def shape(self) -> tuple[int, ...]:
        t = self.ssa.type
        assert isinstance(t, TensorType)
        return tuple(int(d) for d in t.get_shape())

    @property
    def dtype(self) -> np.dtype[Any]:
        t = self.ssa.type
        assert isinstance(t, TensorType)
        return np_dtype(t.get_element_type())


Value = Const | Dyn


class NodeContext:
    """One ONNX node being converted: its attributes, opset and helpers to emit IR."""

    def __init__(
        self,
        node: onnx.NodeProto,
        where: str,
        attrs: dict[str, Any],
        opset: int,
        emit: Callable[[Operation], Operation],
        materialize: Callable[[Value], SSAValue],
    ):
        self.node = node
        self.where = where
        self.attrs = attrs
        self.opset = opset
        self._emit = emit
        self._materialize = materialize

    def emit(self, op: Operation) -> Dyn:
        """Append `op` to the function; its (single) result as a Dyn."""
        self._emit(op)
        return Dyn(op.results[0])

    def emit_multi(self, op: Operation) -> list[Value]:
        self._emit(op)
        return [Dyn(r) for r in op.results]

    def ssa(self, v: Value) -> SSAValue:
        """The IR value for `v`, materialising a constant as weight/constant if needed."""
        return self._materialize(v)

    def attr(self, name: str, default: Any = None) -> Any:
        return self.attrs.get(name, default)

    def fail(self, message: str, hint: str | None = None) -> UnsupportedError:
        return UnsupportedError(message, where=self.where, hint=hint)

    def const(self, ins: Sequence[Value | None], i: int, what: str) -> np.ndarray | None:
        """Input `i` as a numpy array (None if absent); it must be known at import time."""
        if i >= len(ins) or ins[i] is None:
            return None
        v = ins[i]
        if isinstance(v, Const):
            return v.array
        raise self.fail(
            f"input {i} ({what}) depends on the model's inputs at run time; nnjit needs it "
            f"known at import time",
            hint="export the model with static shapes",
        )

    def input(self, ins: Sequence[Value | None], i: int) -> Value:
        if i >= len(ins) or ins[i] is None:
            raise self.fail(f"required input {i} is missing")
        v = ins[i]
        assert v is not None
        return v
