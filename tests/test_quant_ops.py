"""Quantized and float16 ONNX forms (nnjit/frontend/onnx_ops/quantization.py): each compiled
and run on WebGPU (lavapipe) and Wasm (wasmtime) against onnxruntime, on ragged shapes and
fresh random inputs. Integer outputs must match exactly; float outputs to 1e-5 (float16
models, computed in float32, to the float16 rounding onnxruntime does)."""

from __future__ import annotations

import secrets

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from nnjit.errors import NNJitError
from nnjit.frontend import import_onnx
from tests.conftest import relative_error

F = np.float32
MS = "com.microsoft"


def _model(nodes, inputs, outputs, inits=None, opset=21, ms=False):
    graph = helper.make_graph(
        list(nodes), "quant",
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(np.dtype(dt)), s)
         for n, (dt, s) in inputs.items()],
        [helper.make_empty_tensor_value_info(n) for n in outputs],
        initializer=[numpy_helper.from_array(np.asarray(a), n) for n, a in (inits or {}).items()],
    )  # fmt: skip
    opsets = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(MS, 1)] if ms else [])
    return helper.make_model(graph, opset_imports=opsets, ir_version=10)


def check_both_backends(model: onnx.ModelProto, tmp_path, feeds=None, tol: float = 1e-5) -> None:
    """Compile `model` for both backends; each output must match onnxruntime's, unoptimized
    (its graph optimizer rewrites DequantizeLinear + MatMul into a matmul that quantizes
    the activations: not the semantics of the ops)."""
    import onnxruntime as ort

    from nnjit.compiler import compile_model
    from nnjit.runtime.session import Session

    rng = _rng()
    feeds = dict(feeds or {})
    for vi in model.graph.input:
        if vi.name not in feeds:
            shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
            feeds[vi.name] = rng.standard_normal(shape).astype(F)
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    compile_model(path, tmp_path / "bundle", web_runtime=False)
    names = [o.name for o in model.graph.output]
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    refs = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(names, feeds)
    for backend in ("webgpu", "wasm"):
        outs = Session(tmp_path / "bundle", backend, threads=2).run(feeds)
        for name, ref in zip(names, refs):
            if ref.dtype.kind in "iub":
                np.testing.assert_array_equal(outs[name], ref, err_msg=f"{backend} {name}")
            else:
                err = relative_error(outs[name], ref)
                assert err <= tol, f"{backend} output {name}: relative error {err:.2e}"


def _rng():
    return np.random.default_rng(secrets.randbits(32))


@pytest.mark.parametrize(("qtype", "per_axis"), [(np.uint8, False), (np.int8, False), (np.int8, True), (np.uint8, True)])
def test_quantize_dequantize(tmp_path, qtype, per_axis):
    """QuantizeLinear (round half to even, saturate) and DequantizeLinear on run-time tensors;
    the input hits halves exactly and runs past the range."""
    rng = _rng()
    shape = (3, 7, 5)
    n = shape[1] if per_axis else 1
    scale = (rng.random(n) * 0.1 + 0.02).astype(F)
    zp = rng.integers(-20, 20, n).astype(qtype) if qtype == np.int8 else rng.integers(100, 150, n).astype(qtype)
    sc = scale.reshape(1, -1, 1) if per_axis else scale.reshape(())
    x = (rng.integers(-600, 600, shape) / 2).astype(F) * sc  # k/2 * scale: exact halves
    inits = {"s": scale if per_axis else scale.reshape(()), "z": zp if per_axis else zp.reshape(())}
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], axis=1),
        helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], axis=1),
    ]
    m = _model(nodes, {"x": (F, shape)}, ["q", "y"], inits)
    check_both_backends(m, tmp_path, {"x": x.astype(F)}, tol=1e-6)


def test_dynamic_quantize_linear(tmp_path):
    m = _model([helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"])],
               {"x": (F, (5, 13))}, ["y", "s", "z"])  # fmt: skip
    # any values, all positive (min clamps to 0), all zero (scale 1)
    for name, x in [("any", None), ("pos", np.abs(_rng().standard_normal((5, 13))).astype(F) + 1),
                    ("zero", np.zeros((5, 13), F))]:  # fmt: skip
        (tmp_path / name).mkdir()
        check_both_backends(m, tmp_path / name, None if x is None else {"x": x})


@pytest.mark.parametrize("per_column", [False, True])
def test_matmul_integer(tmp_path, per_column):
    """quantize_dynamic's form: DynamicQuantizeLinear, MatMulInteger with an int8 weight and zero
    points, Cast to float, Mul by the scales."""
    rng = _rng()
    k, n = 37, 11
    w = rng.integers(-128, 128, (k, n)).astype(np.int8)
    wzp = rng.integers(-5, 5, n if per_column else ()).astype(np.int8)
    nodes = [
        helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
        helper.make_node("MatMulInteger", ["xq", "w", "xz", "wz"], ["acc"]),
        helper.make_node("Cast", ["acc"], ["accf"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["accf", "xs"], ["y0"]),
        helper.make_node("Mul", ["y0", "ws"], ["y"]),
    ]
    inits = {"w": w, "wz": wzp, "ws": np.array(0.01, F)}
    m = _model(nodes, {"x": (F, (2, 5, k))}, ["acc", "y"], inits)
    check_both_backends(m, tmp_path, tol=1e-6)


def test_dequantize_weight_folds(tmp_path):
    """DequantizeLinear of an int8 initializer (QDQ form) folds at import into a float weight
    that remembers its integers."""
    rng = _rng()
    w = rng.integers(-128, 128, (19, 6)).astype(np.int8)
    s = (rng.random(6) * 0.05 + 0.01).astype(F)
    nodes = [helper.make_node("DequantizeLinear", ["w", "s"], ["wf"], axis=1),
             helper.make_node("MatMul", ["x", "wf"], ["y"])]  # fmt: skip
    m = _model(nodes, {"x": (F, (3, 19))}, ["y"], {"w": w, "s": s})
    imported = import_onnx(m)
    (key,) = imported.compact
    np.testing.assert_array_equal(imported.weights[key], w.astype(F) * s)
    check_both_backends(m, tmp_path)


def _nbits_inputs(rng, k, n, bs, zero_points):
    nb = -(-k // bs)
    q = rng.integers(0, 16, (n, nb * bs)).astype(np.uint8)
    packed = (q[:, 0::2] | (q[:, 1::2] << 4)).reshape(n, nb, bs // 2)
    scales = (rng.random(n * nb) * 0.1 + 0.01).astype(F)
    inits = {"b": packed, "s": scales}
    if zero_points:
        zq = rng.integers(0, 16, (n, nb + nb % 2)).astype(np.uint8)
        inits["z"] = (zq[:, 0::2] | (zq[:, 1::2] << 4)).reshape(-1)
    return inits


@pytest.mark.parametrize(("k", "n", "bs", "zero_points"), [(40, 9, 16, True), (64, 7, 32, False), (33, 5, 32, True)])
def test_matmul_nbits(tmp_path, k, n, bs, zero_points):
    """com.microsoft MatMulNBits (4 bits), K not a multiple of the block, with and without zero
    points, with a bias."""
    rng = _rng()
    inits = _nbits_inputs(rng, k, n, bs, zero_points)
    inits["bias"] = rng.standard_normal(n).astype(F)
    ins = ["x", "b", "s", "z" if zero_points else "", "", "bias"]
    node = helper.make_node("MatMulNBits", ins, ["y"], domain=MS, K=k, N=n, bits=4, block_size=bs)
    m = _model([node], {"x": (F, (2, 3, k))}, ["y"], inits, ms=True)
    check_both_backends(m, tmp_path)


@pytest.mark.parametrize(("change", "message"), [
    ({"block_size": 24}, "block_size=24 must be a power of two"),
    ({"scales": 1}, "scales has"),
    ({"B": 1}, "B has uint8"),
    ({"bits": 3}, "bits=3 is not supported"),
])  # fmt: skip
def test_matmul_nbits_malformed(change, message):
    """A malformed MatMulNBits is an NNJitError that names the node."""
    rng = _rng()
    k, n, bs = 40, 9, 16
    inits = _nbits_inputs(rng, k, n, bs, False)
    if "scales" in change:
        inits["s"] = inits["s"][:-1]
    if "B" in change:
        inits["b"] = inits["b"][:, :-1]
    attrs = {"K": k, "N": n, "bits": change.get("bits", 4), "block_size": change.get("block_size", bs)}
    node = helper.make_node("MatMulNBits", ["x", "b", "s"], ["y"], name="q4_proj", domain=MS, **attrs)
    m = _model([node], {"x": (F, (2, k))}, ["y"], inits, ms=True)
    with pytest.raises(NNJitError, match=message) as e:
        import_onnx(m)
    assert "q4_proj" in str(e.value) and "MatMulNBits" in str(e.value)


def test_gather_block_quantized(tmp_path):
    rng = _rng()
    v, d, bs = 23, 40, 16
    nb = -(-d // bs)
    q = rng.integers(0, 16, (v, d)).astype(np.uint8)
    data = q[:, 0::2] | (q[:, 1::2] << 4)
    scales = (rng.random((v, nb)) * 0.1 + 0.01).astype(F)
    node = helper.make_node("GatherBlockQuantized", ["data", "ids", "s"], ["y"], domain=MS,
                            bits=4, block_size=bs, gather_axis=0, quantize_axis=1)  # fmt: skip
    m = _model([node], {"ids": (np.int64, (2, 5))}, ["y"], {"data": data, "s": scales}, ms=True)
    ids = rng.integers(0, v, (2, 5)).astype(np.int64)
    try:
        check_both_backends(m, tmp_path, {"ids": ids})
    except Exception as e:  # onnxruntime builds without this contrib op
        if "GatherBlockQuantized" in str(e) and "NOT_IMPLEMENTED" in str(e):
            pytest.skip("onnxruntime lacks GatherBlockQuantized for this form")
        raise


def test_float16_model(tmp_path):
    """float16 initializers and Casts to and from float16: computed in float32, within float16
    rounding of onnxruntime's float16 arithmetic."""
    rng = _rng()
    w = rng.standard_normal((13, 6)).astype(np.float16)
    b = rng.standard_normal(6).astype(np.float16)
    nodes = [
        helper.make_node("Cast", ["x"], ["xh"], to=TensorProto.FLOAT16),
        helper.make_node("MatMul", ["xh", "w"], ["h"]),
        helper.make_node("Add", ["h", "b"], ["hb"]),
        helper.make_node("Cast", ["hb"], ["y"], to=TensorProto.FLOAT),
    ]
    m = _model(nodes, {"x": (F, (3, 13))}, ["y"], {"w": w, "b": b}, opset=17)
    imported = import_onnx(m)
    assert set(imported.compact.values()) == {"f16"}
    check_both_backends(m, tmp_path, tol=1e-2)


def test_float16_input_is_refused():
    m = _model([helper.make_node("Identity", ["x"], ["y"])], {"x": (np.float16, (2,))}, ["y"], opset=17)
    with pytest.raises(NNJitError, match="element type FLOAT16"):
        import_onnx(m)


def test_round(tmp_path):
    """ONNX Round (nn_tensor.round): halves to even on both backends."""
    m = _model([helper.make_node("Round", ["x"], ["y"])], {"x": (F, (3, 37))}, ["y"], opset=17)
    x = (_rng().integers(-40, 40, (3, 37)) / 4).astype(F)
    check_both_backends(m, tmp_path, {"x": x}, tol=0)
