"""The kernels of quantize_dynamic's activations on Wasm: DynamicQuantizeLinear (its min/max
reductions, its quantize elementwise on f32x4 and i32x4 lanes) and the centred operand
(q - zero point) that MatMulIntegers read, compiled and run in wasmtime against onnxruntime bit
for bit, on ragged shapes (rows not a multiple of 4 lanes), fresh random inputs, and inputs
salted with infinities and huge values (onnxruntime defines those: x / inf is 0, inf / inf
NaN quantizes to 0; NaN itself is left out: its min/max skip it, ONNX's reductions do not).
Also the i32x4 forms of integer elementwise ops (add, sub, mul, max, min, neg, abs, casts)."""

from __future__ import annotations

import json
import secrets

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from nnjit.compiler import compile_model
from nnjit.runtime.session import Session
from tests.conftest import ort_outputs

F = np.float32


def _model(nodes, inputs, outputs, inits=None) -> onnx.ModelProto:
    graph = helper.make_graph(
        list(nodes), "q",
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(np.dtype(dt)), s)
         for n, (dt, s) in inputs.items()],
        [helper.make_empty_tensor_value_info(n) for n in outputs],
        initializer=[numpy_helper.from_array(np.asarray(a), n) for n, a in (inits or {}).items()],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)


def _run(tmp_path, model: onnx.ModelProto, feeds: dict) -> tuple[list, list[dict]]:
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    compile_model(path, tmp_path / "b", web_runtime=False, backends=("wasm",))
    names = [o.name for o in model.graph.output]
    refs = ort_outputs(path, feeds, names)
    outs = [Session(tmp_path / "b", "wasm", threads=t).run(feeds) for t in (1, 2)]
    return list(zip(names, refs)), outs


def _wat(tmp_path) -> str:
    return "\n".join(p.read_text() for p in sorted((tmp_path / "b" / "kernels").glob("*.wat")))


def _salted(rng, shape, salt: str) -> np.ndarray:
    x = (rng.standard_normal(shape) * 3).astype(F)
    flat = x.reshape(-1)
    where = rng.choice(flat.size, 3, replace=False)
    if salt == "inf":
        flat[where[0]] = np.inf
    elif salt == "-inf":
        flat[where[0]] = -np.inf
    elif salt == "both":
        flat[where[0]], flat[where[1]] = np.inf, -np.inf
    elif salt == "huge":
        flat[where[0]], flat[where[1]] = 3e38, -2e38
    elif salt == "positive":
        x = np.abs(x) + 0.5  # (the min clamps to 0: zero point 0)
    elif salt == "halves":  # x / scale on exact halves: round half to even
        x = (rng.integers(-255, 256, shape) / 2).astype(F)
        flat = x.reshape(-1)
        flat[where[0]], flat[where[1]] = -127.5, 0.0  # (scale (127.5 + mx) / 255)
    return x


# (rows, columns): columns past the lanes (13, 37), and the model's widths
SHAPES = [(3, 13), (5, 37), (128, 48), (7, 1536)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("salt", ["none", "inf", "-inf", "both", "huge", "positive", "halves"])
def test_dynamic_quantize_linear_bitwise(tmp_path, shape, salt):
    """DynamicQuantizeLinear's three outputs, equal to onnxruntime's."""
    x = _salted(np.random.default_rng(secrets.randbits(32)), (1, *shape), salt)
    m = _model([helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"])],
               {"x": (F, x.shape)}, ["y", "s", "z"])  # fmt: skip
    refs, outs = _run(tmp_path, m, {"x": x})
    assert "f32x4.nearest" in _wat(tmp_path) and "i32x4.trunc_sat_f32x4_s" in _wat(tmp_path)
    for threads, got in zip((1, 2), outs):
        for name, ref in refs:
            np.testing.assert_array_equal(got[name], ref, err_msg=f"{name}, {salt}, {threads} threads")


@pytest.mark.parametrize("shape", [(5, 37), (128, 48), (3, 384)], ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("salt", ["none", "both", "halves"])
def test_shared_quantized_operand(tmp_path, shape, salt):
    """quantize_dynamic's Q/K/V: one DynamicQuantizeLinear read by three MatMulIntegers (and
    one read by a single one); their int32 results and the scaled float32 outputs equal
    onnxruntime's."""
    rng = np.random.default_rng(secrets.randbits(32))
    m, k = shape
    n = 24
    x = _salted(rng, (1, m, k), salt)
    nodes = [helper.make_node("DynamicQuantizeLinear", ["x"], ["q", "s", "z"])]
    inits = {}
    outs = []
    for name in ("a", "b", "c"):
        inits[f"w{name}"] = rng.integers(-128, 128, (k, n)).astype(np.int8)
        nodes += [helper.make_node("MatMulInteger", ["q", f"w{name}", "z"], [f"acc{name}"]),
                  helper.make_node("Cast", [f"acc{name}"], [f"f{name}"], to=TensorProto.FLOAT),
                  helper.make_node("Mul", [f"f{name}", "s"], [f"y{name}"])]  # fmt: skip
        outs += [f"acc{name}", f"y{name}"]
    nodes += [helper.make_node("DynamicQuantizeLinear", ["ya"], ["q2", "s2", "z2"]),
              helper.make_node("MatMulInteger", ["q2", "w2", "z2"], ["acc2"])]  # fmt: skip
    inits["w2"] = rng.integers(-128, 128, (n, 8)).astype(np.int8)
    outs.append("acc2")
    refs, got = _run(tmp_path, _model(nodes, {"x": (F, x.shape)}, outs, inits), {"x": x})
    # q - zero point is computed once, by the quantize kernel itself, for the three matmuls
    wasm = json.loads((tmp_path / "b" / "plan.json").read_text())["backends"]["wasm"]
    bufs = {b["id"]: b for b in wasm["buffers"]}
    writers = [st["kernel"] for st in wasm["steps"]
               if bufs[st["args"][-1]]["dtype"] == "i32" and bufs[st["args"][-1]]["shape"] == [1, m, k]]  # fmt: skip
    assert len(writers) == 1 and "elementwise" in writers[0], writers
    readers = [st for st in wasm["steps"] if any(bufs[a]["shape"] == [1, m, k] and bufs[a]["dtype"] == "i32"
                                                 for a in st["args"][:-1])]  # fmt: skip
    assert len(readers) == 3 and all("matmul" in st["kernel"] for st in readers)
    for threads, o in zip((1, 2), got):
        for name, ref in refs:
            want = ref.astype(F) if name.startswith("acc") else ref  # (nnjit keeps int32 as float32)
            np.testing.assert_array_equal(o[name], want, err_msg=f"{name}, {salt}, {threads} threads")


@pytest.mark.parametrize("shape", [(3, 13), (2, 5, 38), (1, 4)], ids=lambda s: "x".join(map(str, s)))
def test_int32_elementwise_on_lanes(tmp_path, shape):
    """Integer add, sub, mul (wrapping), max, min, neg, abs and float <-> int casts in one
    elementwise chain on i32x4 lanes, equal to onnxruntime's."""
    rng = np.random.default_rng(secrets.randbits(32))
    a = rng.integers(-(2**31), 2**31, shape, dtype=np.int64).astype(np.int32)
    b = rng.integers(-(2**31), 2**31, shape, dtype=np.int64).astype(np.int32)
    a.reshape(-1)[0], b.reshape(-1)[0] = -(2**31), -1  # (abs and neg of INT_MIN wrap)
    x = (rng.standard_normal(shape) * 1e6).astype(F)
    x.reshape(-1)[-1] = -2.5  # (truncation toward zero)
    nodes = [
        helper.make_node("Add", ["a", "b"], ["t0"]),
        helper.make_node("Mul", ["t0", "b"], ["t1"]),
        helper.make_node("Sub", ["t1", "a"], ["t2"]),
        helper.make_node("Max", ["t2", "b"], ["t3"]),
        helper.make_node("Neg", ["t3"], ["t4"]),
        helper.make_node("Abs", ["t4"], ["t5"]),
        helper.make_node("Cast", ["x"], ["xi"], to=TensorProto.INT32),
        helper.make_node("Min", ["t5", "xi"], ["t6"]),
        helper.make_node("Add", ["t6", "seven"], ["y"]),
        helper.make_node("Cast", ["y"], ["yf"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["yf", "x"], ["z"]),
    ]
    inputs = {"a": (np.int32, shape), "b": (np.int32, shape), "x": (F, shape)}
    m = _model(nodes, inputs, ["y", "z"], {"seven": np.array(7, np.int32)})
    refs, outs = _run(tmp_path, m, {"a": a, "b": b, "x": x})
    assert "i32x4.mul" in _wat(tmp_path) and "i32x4.max_s" in _wat(tmp_path)
    for threads, got in zip((1, 2), outs):
        for name, ref in refs:
            np.testing.assert_array_equal(got[name], ref, err_msg=f"{name}, {threads} threads")


@pytest.mark.parametrize("shape", [(2, 9), (1, 16)], ids=lambda s: "x".join(map(str, s)))
def test_integer_casts_between_lane_types(tmp_path, shape):
    """Casts between int64 and int32 inside an integer chain on i32x4 lanes (RoBERTa's position
    ids: the mask cast to int32, summed, cast back to int64): both types live in i32 lanes, so
    the cast is the value itself; once refused with "not supported on vectors"."""
    rng = np.random.default_rng(secrets.randbits(32))
    m64 = rng.integers(-1000, 1000, shape, dtype=np.int64)
    nodes = [
        helper.make_node("Cast", ["m"], ["m32"], to=TensorProto.INT32),
        helper.make_node("Mul", ["m32", "m32"], ["sq"]),
        helper.make_node("Cast", ["sq"], ["sq64"], to=TensorProto.INT64),
        helper.make_node("Add", ["sq64", "m"], ["y"]),
    ]
    m = _model(nodes, {"m": (np.int64, shape)}, ["y"])
    refs, outs = _run(tmp_path, m, {"m": m64})
    for threads, got in zip((1, 2), outs):
        for name, ref in refs:
            np.testing.assert_array_equal(got[name], ref, err_msg=f"{name}, {threads} threads")
