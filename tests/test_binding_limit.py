"""Weights over WebGPU's per-binding limit (maxStorageBufferBindingSize): compiled with an
artificially low limit ($NNJIT_MAX_BINDING_BYTES), a tied-embedding LM (gather table, matmul LM
head, gemm with a transposed B and a bias) is split into chunks under the limit and still matches
onnxruntime on both backends; a weight that cannot be split is named, with the limit, at compile
time."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from nnjit.errors import NNJitError
from nnjit.passes.nn_tensor_split_weights import cols_key
from tests.conftest import relative_error

V, D, S = 37, 8, 5
LIMIT = 800  # bytes: the 37x8 table, the LM head and the gemm's B are over it, activations not


def _lm_model(rng) -> bytes:
    """ids -> embedding (Gather) -> tanh -> logits by the tied table (MatMul with its transpose)
    + a Gemm over the same rows with transB=1, beta=0.5 and a bias."""
    wte = rng.standard_normal((V, D)).astype(np.float32)
    proj = rng.standard_normal((V, D)).astype(np.float32)  # Gemm B, N x K (transB=1)
    bias = rng.standard_normal(V).astype(np.float32)
    nodes = [
        helper.make_node("Gather", ["wte", "ids"], ["emb"]),
        helper.make_node("Tanh", ["emb"], ["h"]),
        helper.make_node("Transpose", ["wte"], ["wte_t"], perm=[1, 0]),
        helper.make_node("MatMul", ["h", "wte_t"], ["logits"]),
        helper.make_node("Reshape", ["h", "flat"], ["h2"]),
        helper.make_node("Gemm", ["h2", "proj", "bias"], ["scores"], transB=1, beta=0.5),
        helper.make_node("Gemm", ["h2", "wte"], ["tied"], transB=1),  # the gathered table again
    ]
    graph = helper.make_graph(
        nodes, "tied_lm",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, S])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, S, V]),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, [S, V]),
         helper.make_tensor_value_info("tied", TensorProto.FLOAT, [S, V])],
        [numpy_helper.from_array(wte, "wte"), numpy_helper.from_array(proj, "proj"),
         numpy_helper.from_array(bias, "bias"),
         numpy_helper.from_array(np.array([S, D], np.int64), "flat")],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()


def test_weights_over_the_binding_limit_are_split_and_match(tmp_path, monkeypatch):
    import onnxruntime as ort

    from nnjit.compiler import compile_model
    from nnjit.runtime.session import Session

    monkeypatch.setenv("NNJIT_MAX_BINDING_BYTES", str(LIMIT))
    rng = np.random.default_rng()
    model = _lm_model(rng)
    plan = compile_model(model, tmp_path / "b", web_runtime=False)
    for backend in ("webgpu", "wasm"):
        weights = [b for b in plan["backends"][backend]["buffers"] if b["kind"] == "weight"]
        assert all(b["bytes"] <= LIMIT for b in weights), backend
        keys = {b["key"] for b in weights}
        assert not keys & {"wte", "proj"}  # only chunks are bound
        assert any("#rows=" in k for k in keys) and any("#cols=" in k for k in keys)
        # the tied Gemm reads the gather's row chunks of "wte": the same entries, not copies
        assert len([k for k in keys if k.startswith("wte#rows=")]) == -(-V // (LIMIT // (D * 4)))
    ids = rng.integers(-V, V, size=(1, S))  # negative ids wrap, as in ONNX
    so = ort.SessionOptions()
    so.log_severity_level = 3
    ref = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"]).run(None, {"ids": ids})
    for backend in ("webgpu", "wasm"):
        got = Session(tmp_path / "b", backend, threads=1).run({"ids": ids})
        assert relative_error(got["logits"], ref[0]) <= 1e-5, backend
        assert relative_error(got["scores"], ref[1]) <= 1e-5, backend
        assert relative_error(got["tied"], ref[2]) <= 1e-5, backend


def test_a_weight_that_cannot_be_split_is_named_with_the_limit(tmp_path, monkeypatch):
    from nnjit.compiler import compile_model

    monkeypatch.setenv("NNJIT_MAX_BINDING_BYTES", "64")
    w = numpy_helper.from_array(np.ones((4, 8), np.float32), "big_bias")  # 128 bytes, added
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "big_bias"], ["y"])], "add",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 8])], [w],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    with pytest.raises(NNJitError) as e:
        compile_model(model.SerializeToString(), tmp_path / "b", backends=["webgpu"])
    msg = str(e.value)
    assert "'big_bias'" in msg and "64 bytes" in msg and "maxStorageBufferBindingSize" in msg
    assert "\n" not in msg
    assert not (tmp_path / "b").exists()
    # the Wasm backend has no binding limit
    compile_model(model.SerializeToString(), tmp_path / "w", backends=["wasm"], web_runtime=False)


def test_a_bad_binding_limit_is_one_clear_error(tmp_path, monkeypatch, capsys):
    from nnjit.tools.nnjit_main import main

    model = tmp_path / "lm.onnx"
    model.write_bytes(_lm_model(np.random.default_rng(0)))
    monkeypatch.setenv("NNJIT_MAX_BINDING_BYTES", "lots")
    assert main(["compile", str(model), "-o", str(tmp_path / "b"), "--backend", "webgpu"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: NNJIT_MAX_BINDING_BYTES='lots'") and "Traceback" not in err
    assert not (tmp_path / "b").exists()


def test_the_runtime_names_a_binding_over_the_device_limit(monkeypatch):
    """A bundle compiled for a larger limit than the device has fails before any dispatch."""
    from nnjit.runtime.webgpu import default_runtime

    rt = default_runtime()
    monkeypatch.setitem(rt.limits, "max-storage-buffer-binding-size", 64)
    manifest = {"name": "k", "workgroup_size": [1, 1, 1], "dispatch": [1, 1, 1],
                "bindings": [{"binding": 0, "bytes": 128, "access": "read", "dtype": "f32"}]}  # fmt: skip
    with pytest.raises(NNJitError, match="binding 0 takes 128 bytes, over the device's maxStorage"):
        rt.create_kernel("@compute @workgroup_size(1) fn main() {}", manifest)


def test_the_session_names_a_weight_over_the_device_limit(tmp_path, monkeypatch):
    """A bundle compiled for more than the device allows: the weight is named before any
    kernel or buffer is made (the device says 1 KiB here)."""
    import nnjit.runtime.webgpu as webgpu
    from nnjit.compiler import compile_model
    from nnjit.runtime.session import Session

    monkeypatch.setenv("NNJIT_MAX_BINDING_BYTES", str(1 << 30))
    compile_model(_lm_model(np.random.default_rng(0)), tmp_path / "b", backends=["webgpu"],
                  web_runtime=False)  # fmt: skip

    class SmallDevice(webgpu.WebGPURuntime):
        def __init__(self):
            super().__init__()
            self.limits["max-storage-buffer-binding-size"] = 1024

    monkeypatch.setattr(webgpu, "WebGPURuntime", SmallDevice)
    with pytest.raises(NNJitError, match=r"weight '(wte|proj)' takes 1184 bytes, over this device's maxStorage"):
        Session(tmp_path / "b", "webgpu")


def test_a_ragged_last_column_chunk_is_cut_at_a_multiple_of_16(tmp_path, monkeypatch):
    """An LM head of 53 columns under a limit of 32 columns: chunks 0:32, then 32:48 and the 5
    columns left (Wasm packs B panels only for widths that are multiples of theirs), the
    products concatenated back; both backends match onnxruntime."""
    import onnxruntime as ort

    from nnjit.compiler import compile_model
    from nnjit.runtime.session import Session

    n, k = 53, 8
    monkeypatch.setenv("NNJIT_MAX_BINDING_BYTES", str(32 * k * 4))
    rng = np.random.default_rng()
    head = rng.standard_normal((k, n)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["h", "head"], ["logits"])], "head",
        [helper.make_tensor_value_info("h", TensorProto.FLOAT, [1, 3, k])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3, n])],
        [numpy_helper.from_array(head, "head")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()
    plan = compile_model(model, tmp_path / "b", web_runtime=False)
    keys = {b["key"] for b in plan["backends"]["webgpu"]["buffers"] if b["kind"] == "weight"}
    assert {cols_key("head", 0, 32), cols_key("head", 32, 48), cols_key("head", 48, 53)} <= keys
    h = rng.standard_normal((1, 3, k)).astype(np.float32)
    ref = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"h": h})[0]
    for backend in ("webgpu", "wasm"):
        got = Session(tmp_path / "b", backend, threads=1).run({"h": h})["logits"]
        assert relative_error(got, ref) <= 1e-5, backend
