"""NaN and infinities through the ops whose WGSL builtins leave NaN to the driver (max, min,
clamp, tanh, pow, `x != x`) and through sin and cos: both backends match onnxruntime bit for
bit in where NaN is, on fresh random inputs salted with NaN, +-Inf and huge values (lavapipe's
max and clamp drop NaN, so Relu(NaN) was 0 on WebGPU)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

R, C = 3, 16  # C = 16: the elementwise kernels run on vec4
OPS = [  # (output, op, inputs, attributes)
    ("relu", "Relu", ["x"], {}),
    ("leaky_relu", "LeakyRelu", ["x"], {"alpha": 0.1}),
    ("max", "Max", ["x", "y"], {}),
    ("min", "Min", ["x", "y"], {}),
    ("clip", "Clip", ["x", "lo", "hi"], {}),
    ("tanh", "Tanh", ["x"], {}),
    ("isnan", "IsNaN", ["x"], {}),
    ("pow", "Pow", ["x", "y"], {}),
    ("pow_frac", "Pow", ["x", "p15"], {}),
    ("pow_odd", "Pow", ["x", "p3"], {}),
    ("reduce_max", "ReduceMax", ["x"], {"keepdims": 1}),
    ("softmax", "Softmax", ["x"], {"axis": -1}),
    ("sigmoid", "Sigmoid", ["x"], {}),
    ("where", "Where", ["c", "x", "y"], {}),
    ("mm", "MatMul", ["xm", "w"], {}),  # (NaN but no infinities: inf - inf depends on order)
    ("mm_relu", "Relu", ["mm"], {}),  # fused into the matmul's epilogue
    ("mm_bias", "Add", ["mm", "bias"], {}),
    ("mm_gelu", "Gelu", ["mm_bias"], {}),  # matmul + bias + GELU: one kernel
    ("clip_relu", "Relu", ["clip"], {}),  # an elementwise chain
    ("gelu", "Gelu", ["x"], {}),
    ("sqrt", "Sqrt", ["x"], {}),
    ("log", "Log", ["x"], {}),
    ("exp", "Exp", ["x"], {}),
    ("div", "Div", ["x", "y"], {}),
    ("less", "Less", ["x", "y"], {}),
    ("equal", "Equal", ["x", "y"], {}),
    # reductions over NaN and infinities but no huge finite values (whether 3e38 + 3e38 - 3e38
    # overflows depends on the order of the sum)
    ("layer_norm", "LayerNormalization", ["xr", "gamma", "beta"], {"axis": -1}),
    ("softmax_inf", "Softmax", ["xr"], {"axis": -1}),
    # sin and cos of +-inf are NaN (huge finite arguments are left out: nnjit's are accurate to
    # |x| <= 1e5 only, nnjit/ir/approx.py)
    ("sin", "Sin", ["xr"], {}),
    ("cos", "Cos", ["xr"], {}),
    ("reduce_sum", "ReduceSum", ["xr"], {"keepdims": 1}),
]
BOOL = {"isnan", "less", "equal"}
# onnxruntime's ReduceMax keeps a NaN only when it is the first element (a sequential
# `if (x > m) m = x`): nnjit's reductions run in parallel and propagate NaN wherever it is, as
# numpy and nn_tensor's reference interpreter do. That output is checked against numpy.
NUMPY = {"reduce_max": lambda feeds: np.max(feeds["x"], keepdims=True)}


def _model() -> bytes:
    nodes = [helper.make_node(op, ins, [out], **attrs) for out, op, ins, attrs in OPS]
    outs = [
        helper.make_tensor_value_info(out, TensorProto.BOOL if out in BOOL else TensorProto.FLOAT, None)
        for out, _, _, _ in OPS
    ]
    inits = [
        numpy_helper.from_array(np.array(-1.0, np.float32), "lo"),
        numpy_helper.from_array(np.array(1.0, np.float32), "hi"),
        numpy_helper.from_array(np.array(1.5, np.float32), "p15"),
        numpy_helper.from_array(np.array(3.0, np.float32), "p3"),
        numpy_helper.from_array(np.random.default_rng(1).standard_normal((C, C)).astype(np.float32), "w"),
    ] + [numpy_helper.from_array(np.random.default_rng(2).standard_normal(C).astype(np.float32), n)
         for n in ("bias", "gamma", "beta")]  # fmt: skip
    graph = helper.make_graph(
        nodes, "nan",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [R, C]),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, [R, C]),
         helper.make_tensor_value_info("c", TensorProto.BOOL, [R, C]),
         helper.make_tensor_value_info("xm", TensorProto.FLOAT, [R, C]),
         helper.make_tensor_value_info("xr", TensorProto.FLOAT, [R, C])],
        outs, inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=9)
    return model.SerializeToString()


def _salted(rng, huge: bool = True) -> np.ndarray:
    a = (rng.standard_normal((R, C)) * 3).astype(np.float32)
    specials = [np.nan, np.inf, -np.inf, 0.0, -0.0] + ([3e38, -3e38] if huge else [])
    specials = np.array(specials, np.float32)
    mask = rng.random((R, C)) < (0.4 if huge else 0.05)
    a[mask] = rng.choice(specials, size=int(mask.sum()))
    return a


def salted_feeds(rng) -> dict[str, np.ndarray]:
    """Fresh inputs for _model: salted with specials, a NaN the reduction and one row of the
    product see, and zero bases to small and negative powers (WGSL's pow is exp2(y * log2(x)):
    SwiftShader gave pow(0, 0.04) = 0.03)."""
    feeds = {"x": _salted(rng), "y": _salted(rng), "c": rng.random((R, C)) < 0.5}
    feeds["xm"] = rng.standard_normal((R, C)).astype(np.float32)
    feeds["xm"][1, rng.integers(C)] = np.nan  # one row of the product is NaN, the others not
    feeds["xr"] = _salted(rng, huge=False)
    feeds["x"][rng.integers(R), rng.integers(1, C)] = np.nan  # the reduction sees a NaN
    feeds["x"][:, 0] = [0.0, -0.0, 0.0]
    feeds["y"][:, 0] = [rng.uniform(0.01, 0.1), rng.uniform(-2.0, -0.1), rng.uniform(0.5, 2.0)]
    return feeds


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from nnjit.compiler import compile_model

    model = _model()
    out = tmp_path_factory.mktemp("nan") / "b"
    compile_model(model, out, web_runtime=False)
    return model, out


@pytest.mark.parametrize("backend", ["webgpu", "wasm"])
def test_nan_and_inf_match_onnxruntime(bundle, backend):
    import onnxruntime as ort

    from nnjit.runtime.session import Session

    model, path = bundle
    feeds = salted_feeds(np.random.default_rng())
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    names = [o[0] for o in OPS]
    ref = dict(zip(names, sess.run(names, feeds)))
    ref.update({name: f(feeds) for name, f in NUMPY.items()})
    got = Session(path, backend, threads=1).run(feeds)
    bad = []
    for name in names:
        r, g = ref[name].astype(np.float64), got[name].astype(np.float64)
        assert g.shape == r.shape, name
        if not np.array_equal(np.isnan(r), np.isnan(g)):
            bad.append(f"{name}: NaN where onnxruntime has {g[np.isnan(r) != np.isnan(g)][:4]}")
            continue
        with np.errstate(invalid="ignore"):
            ok = np.isnan(r) | (r == g) | (np.abs(g - r) <= 1e-5 * np.maximum(1.0, np.abs(r)))
        if not ok.all():
            bad.append(f"{name}: {g[~ok][:4]} where onnxruntime has {r[~ok][:4]}")
    assert not bad, "; ".join(bad)
