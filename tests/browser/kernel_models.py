"""Small ONNX models, one per kernel kind, for the browser tests (ragged shapes: no dimension a
multiple of a tile or vector width unless said so)."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

F, I64 = TensorProto.FLOAT, TensorProto.INT64


def _model(nodes, inputs, outputs, inits=(), opset=17) -> bytes:
    g = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs],
        [numpy_helper.from_array(a, n) for n, a in inits],
    )  # fmt: skip
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m.SerializeToString()


def kernel_models() -> dict[str, tuple[bytes, str]]:
    """name -> (ONNX bytes, the kernel kind the model must produce)."""
    rng = np.random.default_rng(7)
    r = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    return {
        "matmul": (_model(
            [helper.make_node("MatMul", ["x", "w"], ["y"])],
            [("x", F, [5, 7])], [("y", F, [5, 9])], [("w", r(7, 9))]), "matmul"),
        "matmul_batched": (_model(
            [helper.make_node("MatMul", ["a", "b"], ["y"])],
            [("a", F, [2, 3, 5, 6]), ("b", F, [2, 3, 6, 11])], [("y", F, [2, 3, 5, 11])]), "matmul"),
        "gemm_bias_gelu": (_model(
            [helper.make_node("Gemm", ["x", "w", "c"], ["g"], transB=1),
             helper.make_node("Mul", ["g", "half"], ["h"]), helper.make_node("Erf", ["h"], ["e"]),
             helper.make_node("Add", ["e", "one"], ["e1"]), helper.make_node("Mul", ["g", "e1"], ["y"])],
            [("x", F, [6, 10])], [("y", F, [6, 13])],
            [("w", r(13, 10)), ("c", r(13)), ("half", np.array(0.70710677, np.float32)),
             ("one", np.array(1.0, np.float32))]), "matmul"),
        "conv": (_model(
            [helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1], strides=[2, 2])],
            [("x", F, [1, 3, 9, 9])], [("y", F, [1, 4, 5, 5])], [("w", r(4, 3, 3, 3)), ("b", r(4))]), "conv"),
        "softmax": (_model(
            [helper.make_node("Softmax", ["x"], ["y"], axis=-1)],
            [("x", F, [3, 5, 7])], [("y", F, [3, 5, 7])]), "softmax"),
        "layer_norm": (_model(
            [helper.make_node("LayerNormalization", ["x", "s", "b"], ["y"], axis=-1, epsilon=1e-5)],
            [("x", F, [2, 5, 33])], [("y", F, [2, 5, 33])], [("s", r(33)), ("b", r(33))]), "layer_norm"),
        "reduce": (_model(
            [helper.make_node("ReduceMean", ["x"], ["y"], axes=[1], keepdims=0)],
            [("x", F, [3, 5, 7])], [("y", F, [3, 7])]), "reduce"),
        "elementwise": (_model(
            [helper.make_node("Mul", ["a", "b"], ["m"]), helper.make_node("Tanh", ["m"], ["t"]),
             helper.make_node("Abs", ["b"], ["ab"]), helper.make_node("Sqrt", ["ab"], ["s"]),
             helper.make_node("Sub", ["t", "s"], ["y"])],
            [("a", F, [3, 1, 7]), ("b", F, [5, 7])], [("y", F, [3, 5, 7])]), "elementwise"),
        "gather": (_model(
            [helper.make_node("Gather", ["table", "ids"], ["y"], axis=0)],
            [("ids", I64, [2, 5])], [("y", F, [2, 5, 6])], [("table", r(11, 6))]), "gather"),
        "gather_nd": (_model(
            [helper.make_node("GatherND", ["x", "idx"], ["y"])],
            [("x", F, [4, 5, 3])], [("y", F, [3, 3])],
            [("idx", np.array([[0, 1], [3, 4], [2, 0]], np.int64))]), "gather_nd"),
        "transpose": (_model(
            [helper.make_node("Transpose", ["x"], ["y"], perm=[0, 2, 1, 3])],
            [("x", F, [2, 3, 5, 7])], [("y", F, [2, 5, 3, 7])]), "transpose"),
        "slice": (_model(
            [helper.make_node("Slice", ["x", "st", "en", "ax", "sp"], ["y"])],
            [("x", F, [6, 9])], [("y", F, [4, 4])],
            [("st", np.array([1, 2], np.int64)), ("en", np.array([5, 9], np.int64)),
             ("ax", np.array([0, 1], np.int64)), ("sp", np.array([1, 2], np.int64))]), "slice"),
        "concat": (_model(
            [helper.make_node("Concat", ["a", "b"], ["y"], axis=1)],
            [("a", F, [3, 4]), ("b", F, [3, 5])], [("y", F, [3, 9])]), "concat"),
        "expand": (_model(
            [helper.make_node("Expand", ["x", "shape"], ["y"])],
            [("x", F, [3, 1])], [("y", F, [2, 3, 5])], [("shape", np.array([2, 3, 5], np.int64))]), "expand"),
    }  # fmt: skip


def tuning_model() -> bytes:
    """MatMul -> Softmax -> LayerNormalization: three kernels for the tuning tests."""
    rng = np.random.default_rng(11)
    return _model(
        [helper.make_node("MatMul", ["x", "w"], ["m"]),
         helper.make_node("Softmax", ["m"], ["s"], axis=-1),
         helper.make_node("LayerNormalization", ["s", "g", "b"], ["y"], axis=-1, epsilon=1e-5)],
        [("x", F, [8, 24])], [("y", F, [8, 20])],
        [("w", rng.standard_normal((24, 20)).astype(np.float32)),
         ("g", rng.standard_normal(20).astype(np.float32)),
         ("b", rng.standard_normal(20).astype(np.float32))],
    )  # fmt: skip
