"""f16 matmuls on WebGPU (schedule option `f16`, nnjit/passes/lowering/gemm/plan.py): a bundle
compiled with --weights f16 keeps its matmul weights in float16 on a device with
"shader-f16" (the kernels read them as f16) and widens them at load on one without.

Run on lavapipe (wgpu-py over Vulkan), whose adapter has "shader-f16": the f16 kernels are
checked by execution against onnxruntime's float32 run of the same model with its weights
rounded to float16 (the values the bundle stores), on ragged shapes. Error bounds (max |err| /
max |ref|): f16 1 (f32 arithmetic) 1e-5, the float32 kernels' own; f16 2 (f16 products and
sums) 1e-2 for K <= 130 (f16 has an 11-bit significand: a sum of K rounded terms).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from nnjit.compiler import compile_model
from nnjit.errors import NNJitError
from nnjit.runtime import webgpu as wgpu_runtime
from nnjit.runtime.session import Session
from nnjit.tuning.kernels import model_kernels
from nnjit.tuning.space import DeviceInfo, wgsl_matmul
from tests.conftest import relative_error


def _model(m: int, k: int, n: int, trans_b: bool = False, seed: int = 0) -> onnx.ModelProto:
    """x[m, k] @ W + b -> relu -> @ W2[n, 7] (Gemm with transB when trans_b)."""
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((n, k) if trans_b else (k, n)) / np.sqrt(k)).astype(np.float32)
    b = (0.1 * rng.standard_normal(n)).astype(np.float32)
    w2 = (rng.standard_normal((n, 7)) / np.sqrt(n)).astype(np.float32)
    first = (helper.make_node("Gemm", ["x", "W", "b"], ["h2"], transB=1) if trans_b else
             helper.make_node("MatMul", ["x", "W"], ["h"]))  # fmt: skip
    nodes = [first] + ([] if trans_b else [helper.make_node("Add", ["h", "b"], ["h2"])])
    nodes += [helper.make_node("Relu", ["h2"], ["h3"]), helper.make_node("MatMul", ["h3", "W2"], ["y"])]
    g = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, 7])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "b"), numpy_helper.from_array(w2, "W2")],
    )  # fmt: skip
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _reference(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    """onnxruntime on the model with its matmul weights rounded to float16 (what --weights f16
    stores; biases stay float32)."""
    import onnxruntime as ort

    m = onnx.ModelProto()
    m.CopyFrom(model)
    for t in m.graph.initializer:
        if t.name in ("W", "W2"):
            a = numpy_helper.to_array(t).astype(np.float16).astype(np.float32)
            t.CopyFrom(numpy_helper.from_array(a, t.name))
    return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def _x(m: int, k: int) -> np.ndarray:
    return np.random.default_rng(7).standard_normal((m, k)).astype(np.float32)


@pytest.fixture(scope="module")
def has_f16():
    rt = wgpu_runtime.default_runtime()
    if "shader-f16" not in rt.features:
        pytest.skip(f"the WebGPU adapter ({rt.info['name']}) has no shader-f16")


SCHEDULES = [
    ("f16=1", 1e-5),
    ("f16=2", 1e-2),
    ("f16=1 vec=1", 1e-5),
    ("f16=2 vec=1 reg=2,4", 1e-2),
    ("f16=1 reg=2,4 workgroup=8,4,4 kstep=8", 1e-5),  # k slices
    ("f16=2 reg=2,4 workgroup=8,4,4", 1e-2),
    ("f16=1 shared=1 tile=16,32,8 reg=2,4 workgroup=8,8", 1e-5),
    ("f16=1 shared=2 tile=32,32,16 reg=4,4 workgroup=8,8,2", 1e-5),
]


@pytest.mark.parametrize("shape", [(5, 37, 22), (33, 64, 130), (1, 8, 3), (17, 20, 12)])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("options,bound", SCHEDULES)
def test_f16_kernels_against_onnxruntime(tmp_path, has_f16, shape, trans_b, options, bound):
    m, k, n = shape
    model = _model(m, k, n, trans_b)
    out = tmp_path / "b"
    compile_model(model.SerializeToString(), out, backends=("webgpu",), weights="f16", loop_options=options,
                  candidates=0, web_runtime=False)  # fmt: skip
    s = Session(out, "webgpu")
    manifests = [k["manifest"] for k in s.bplan["kernels"].values() if k["manifest"]["kind"] == "matmul"]
    assert manifests and all(mf.get("features") == ["shader-f16"] for mf in manifests)
    assert all(any(b["dtype"] == "f16" for b in mf["bindings"]) for mf in manifests)
    x = _x(m, k)
    err = relative_error(s.run({"x": x})["y"], _reference(model, x))
    assert err <= bound, f"{options}: relative error {err:.2e} > {bound:.0e}"
    # the weights are on the device as float16 only
    assert {dt for (_, dt) in s._impl.by_key if _ in ("W", "W2")} == {"f16"}


def test_f16_bundle_starts_on_f16_candidates_and_keeps_weights_half(tmp_path, has_f16):
    model = _model(9, 40, 24)
    out = tmp_path / "b"
    plan = compile_model(model.SerializeToString(), out, backends=("webgpu",), weights="f16", web_runtime=False)
    for name, k in plan["backends"]["webgpu"]["kernels"].items():
        if k["manifest"]["kind"] != "matmul":
            continue
        cands = k["candidates"]
        for cls, order in k["order"].items():  # f16 twins first, then the float32 points
            half = [cands[i]["options"].get("f16") == 1 for i in order]
            assert half[0] and not half[-1] and half == sorted(half, reverse=True), (name, cls, order)
            assert all(("shader-f16" in cands[i]["manifest"].get("features", [])) == h for i, h in zip(order, half))
    s = Session(out, "webgpu")
    assert all(s.bplan["kernels"][n]["candidates"][c]["options"].get("f16") == 1 for n, c in s.choices.items())
    x = _x(9, 40)
    ref = _reference(model, x)
    assert relative_error(s.run({"x": x})["y"], ref) <= 1e-5
    weights = {key: dt for key, dt in s._impl.by_key if key in ("W", "W2")}
    assert weights == {"W": "f16", "W2": "f16"}
    s.tune(budget=10.0, samples=2)  # float32 candidates timed too: their own (widened) weights
    assert relative_error(s.run({"x": x})["y"], ref) <= 1e-5


def test_no_shader_f16_falls_back_to_float32_kernels(tmp_path, monkeypatch):
    """An adapter without the feature (the runtime asks for none here) runs the float32
    candidates on weights widened at load, and the outputs are the same."""
    model = _model(9, 40, 24)
    out = tmp_path / "b"
    compile_model(model.SerializeToString(), out, backends=("webgpu",), weights="f16", web_runtime=False)
    monkeypatch.setattr(wgpu_runtime, "_OPTIONAL_FEATURES", ("timestamp-query",))
    s = Session(out, "webgpu")
    assert "shader-f16" not in s._impl.rt.features
    assert not any(s.bplan["kernels"][n]["candidates"][c]["options"].get("f16") for n, c in s.choices.items())
    x = _x(9, 40)
    assert relative_error(s.run({"x": x})["y"], _reference(model, x)) <= 1e-5
    assert {dt for (key, dt) in s._impl.by_key if key in ("W", "W2")} == {"f32"}
    report = s.tune(budget=10.0, samples=2)  # the f16 candidates are never tried
    assert not report["failed"], report["failed"]
    half = {n for n, k in s.bplan["kernels"].items() for c, cand in enumerate(k.get("candidates", []))
            if cand["options"].get("f16") and c in report["times"].get(n, {})}  # fmt: skip
    assert not half
    with pytest.raises(NNJitError, match="shader-f16"):
        k = next(k for k in s.bplan["kernels"].values() if k["manifest"]["kind"] == "matmul")
        c = next(c for c in k["candidates"] if c["options"].get("f16"))
        s._impl.rt.create_kernel((out / c["file"]).read_text(), c["manifest"])


def test_float32_bundles_have_no_f16_candidates_and_other_signatures(tmp_path):
    model = _model(9, 40, 24)
    plan = compile_model(model.SerializeToString(), tmp_path / "a", backends=("webgpu",), web_runtime=False)
    for k in plan["backends"]["webgpu"]["kernels"].values():
        assert not any(c["options"].get("f16") for c in k.get("candidates", []))
    half = compile_model(model.SerializeToString(), tmp_path / "b", backends=("webgpu",), weights="f16",
                         web_runtime=False)["backends"]["webgpu"]["kernels"]  # fmt: skip
    full = plan["backends"]["webgpu"]["kernels"]
    for name, k in full.items():
        same = k["manifest"]["kind"] != "matmul"
        assert (k["signature"] == half[name]["signature"]) == same, name


def test_space_offers_f16_only_for_f16_weights_on_devices_with_the_feature():
    from nnjit.compact import mark_f16_weights
    from nnjit.frontend import import_onnx
    from nnjit.pipeline import TENSOR_PIPELINE, run_pipeline

    imported = import_onnx(_model(33, 64, 130).SerializeToString())
    run_pipeline(imported.module, TENSOR_PIPELINE)
    plain = [i for i in model_kernels(imported.module, "webgpu") if i.kind == "matmul"]
    assert mark_f16_weights(imported.module, lambda key: key == "W") == 1
    kernels = [i for i in model_kernels(imported.module, "webgpu") if i.kind == "matmul"]
    assert [s["dtype"] for s in kernels[0].inputs] == ["f32", "f16", "f32"]
    assert [s["dtype"] for s in kernels[1].inputs] == ["f32", "f32"]  # (W2 is not f16 here)
    dev = DeviceInfo.generic("wgsl")
    with_f16 = DeviceInfo("wgsl", dict(dev.limits), {"shader-f16"})
    assert not any("f16" in p for p in wgsl_matmul(kernels[0], dev))
    assert not any("f16" in p for p in wgsl_matmul(kernels[1], with_f16))
    assert not any("f16" in p for p in wgsl_matmul(plain[0], with_f16))
    pts = wgsl_matmul(kernels[0], with_f16)
    assert {"f16": 1} in pts and {"f16": 2} in pts
    assert not any(p.get("f16") == 2 and p.get("shared") for p in pts)


@pytest.mark.parametrize("options,match", [
    ("f16=1", "f16 is a WGSL option"),  # (wasm)
    ("f16=3", "must be 0"),
])  # fmt: skip
def test_f16_option_errors(tmp_path, options, match):
    model = _model(5, 12, 8)
    with pytest.raises(NNJitError, match=match):
        compile_model(model.SerializeToString(), tmp_path / "b", backends=("wasm",), weights="f16",
                      loop_options=options, candidates=0, web_runtime=False)  # fmt: skip


def test_f16_needs_a_weight_and_no_shared_tiles_for_f16_arithmetic(tmp_path):
    from nnjit.frontend import import_onnx
    from nnjit.pipeline import TENSOR_PIPELINE, lower_for_backend, run_pipeline

    # x @ x^T: B is an activation, which no kernel may read as f16
    g = helper.make_graph(
        [helper.make_node("Transpose", ["x"], ["xt"]), helper.make_node("MatMul", ["x", "xt"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 4])],
    )  # fmt: skip
    imported = import_onnx(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    run_pipeline(imported.module, TENSOR_PIPELINE)
    with pytest.raises(NNJitError, match="f16|launched on"):
        lower_for_backend(imported.module, "webgpu", "f16=1")
    imported = import_onnx(_model(5, 12, 8).SerializeToString())
    run_pipeline(imported.module, TENSOR_PIPELINE)
    with pytest.raises(NNJitError, match="registers only|shared 0"):
        lower_for_backend(imported.module, "webgpu", "f16=2 shared=1")


def test_a_record_with_f16_runs_first_and_falls_back(tmp_path, monkeypatch, has_f16):
    """A tuning record that picked an f16 point pins the kernel to it (its own file) and is
    first in every order; a device without shader-f16 starts on a float32 candidate."""
    model = _model(9, 40, 24).SerializeToString()
    first = compile_model(model, tmp_path / "a", backends=("webgpu",), weights="f16", web_runtime=False)
    kernels = first["backends"]["webgpu"]["kernels"]
    sig = next(k["signature"] for k in kernels.values() if k["manifest"]["kind"] == "matmul")
    pick = {"f16": 1, "reg": [2, 4], "workgroup": [8, 4, 4]}
    plan = compile_model(model, tmp_path / "b", backends=("webgpu",), weights="f16", web_runtime=False,
                         tuning_records={sig: pick})["backends"]["webgpu"]  # fmt: skip
    k = next(k for k in plan["kernels"].values() if k["signature"] == sig)
    assert k["manifest"]["schedule"]["f16"] == 1 and k["manifest"]["features"] == ["shader-f16"]
    for order in k["order"].values():
        assert k["candidates"][order[0]]["options"] == pick
        assert any(not k["candidates"][i]["options"].get("f16") for i in order)
    x = _x(9, 40)
    ref = _reference(_model(9, 40, 24), x)
    assert relative_error(Session(tmp_path / "b", "webgpu").run({"x": x})["y"], ref) <= 1e-5
    monkeypatch.setattr(wgpu_runtime, "_OPTIONAL_FEATURES", ("timestamp-query",))
    s = Session(tmp_path / "b", "webgpu")
    assert not any(s.bplan["kernels"][n]["candidates"][c]["options"].get("f16") for n, c in s.choices.items())
    assert relative_error(s.run({"x": x})["y"], ref) <= 1e-5
