"""MatMulInteger on Wasm in integers (nnjit/passes/nn_tensor_integer_matmul.py): ONNX graphs
of ragged shapes, int8 and uint8 operands, zero points 0 and not, compiled for Wasm and run in
wasmtime against onnxruntime: MatMulInteger's int32 result must be equal, and so must the
float32 values quantize_dynamic computes from it (Cast, Mul by the scale: the same float ops);
past 2**24 too, where the float32 path that WebGPU keeps rounds. The tiny quantize_dynamic
models end to end; the pass leaves WebGPU float32 and is a no-op on unmarked matmuls.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from nnjit.compiler import compile_model
from nnjit.dialects import nn_tensor as nt
from nnjit.frontend.compact import Pairs, decode, encode
from nnjit.interp.nn_tensor_eval import unpack_i16x2
from nnjit.passes.nn_tensor_integer_matmul import materialize_i16x2, pack_i16x2
from nnjit.passes.nn_tensor_pack_weights import pack_array
from nnjit.pipeline import backend_module, load_fused_model
from nnjit.runtime.session import Session, random_feeds
from nnjit.targets import TARGETS
from tests.conftest import ort_outputs, relative_error

F = np.float32
QUANT = Path(__file__).parent / "models" / "quant"
DYNAMIC = sorted(QUANT.glob("*.q*int8.onnx"))  # quantize_dynamic: qint8, quint8 weights


def _graph(a_type, w: np.ndarray, za: int, wz: np.ndarray | None, shape) -> onnx.ModelProto:
    """x (float32 integers) -> QuantizeLinear(scale 1) -> MatMulInteger(q, w, za, wz) -> acc,
    and y = float(acc) * 0.01 (quantize_dynamic's Cast and Mul)."""
    ins = ["q", "w", "za", "wz" if wz is not None else ""]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "one", "z0"], ["q"]),
        helper.make_node("MatMulInteger", ins, ["acc"]),
        helper.make_node("Cast", ["acc"], ["accf"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["accf", "s"], ["y"]),
    ]
    inits = {"one": np.array(1.0, F), "z0": np.array(0, a_type), "w": w,
             "za": np.array(za, a_type), "s": np.array(0.01, F)}  # fmt: skip
    if wz is not None:
        inits["wz"] = wz
    graph = helper.make_graph(
        nodes, "mmi", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_empty_tensor_value_info(n) for n in ("acc", "y")],
        initializer=[numpy_helper.from_array(np.asarray(a), n) for n, a in inits.items()],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)


def _wasm_integer_kernels(bundle: Path) -> int:
    return sum("i32x4.dot_i16x8_s" in t or "i32x4.relaxed_dot_i8x16_i7x16_add_s" in t
               for t in (p.read_text() for p in (bundle / "kernels").glob("*.wat")))


def _check(tmp_path: Path, model: onnx.ModelProto, x: np.ndarray, backends=("wasm",)) -> None:
    """MatMulInteger's result (a float32 tensor in nnjit: the int32 value rounded to float32)
    and y, equal to onnxruntime's."""
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    compile_model(path, tmp_path / "b", web_runtime=False, backends=backends)
    assert _wasm_integer_kernels(tmp_path / "b") == 1
    acc, y = ort_outputs(path, {"x": x}, ["acc", "y"])
    for backend in backends:
        for threads in (1, 2):
            outs = Session(tmp_path / "b", backend, threads=threads).run({"x": x})
            what = f"{backend}, {threads} threads"
            np.testing.assert_array_equal(outs["acc"], acc.astype(F), err_msg=what)
            np.testing.assert_array_equal(outs["y"], y, err_msg=what)


# (batch dims, M, K, N): K odd and even, N not a multiple of 4, M past the register tile
SHAPES = [((), 5, 9, 7), ((2,), 5, 48, 4), ((), 37, 13, 21), ((1,), 3, 385, 40)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, (*s[0], *s[1:]))))
@pytest.mark.parametrize(("a_type", "w_type", "zero"), [
    (np.uint8, np.int8, False), (np.uint8, np.int8, True), (np.uint8, np.uint8, True),
    (np.int8, np.int8, True), (np.int8, np.uint8, False),
])  # fmt: skip
def test_matmul_integer_exact(tmp_path, shape, a_type, w_type, zero):
    batch, m, k, n = shape
    rng = np.random.default_rng(secrets.randbits(32))
    lo, hi = np.iinfo(a_type).min, np.iinfo(a_type).max
    x = rng.integers(lo, hi + 1, (*batch, m, k)).astype(F)
    wlo, whi = np.iinfo(w_type).min, np.iinfo(w_type).max
    w = rng.integers(wlo, whi + 1, (k, n)).astype(w_type)
    za = int(rng.integers(lo, hi + 1)) if zero else 0
    wz = rng.integers(wlo, whi + 1, n).astype(w_type) if zero else None
    _check(tmp_path, _graph(a_type, w, za, wz, (*batch, m, k)), x)


def test_matmul_integer_exact_past_float_precision(tmp_path):
    """Sums of 385 products 255 * 255 (25034625 > 2**24): exact in integers, then rounded once
    to float32 as onnxruntime's Cast does (25034624), where a float32 accumulation gives
    25034500."""
    k, n = 385, 8
    w = np.full((k, n), 255, np.uint8)
    w[::2, 1::2] = 0  # (columns of different sums)
    x = np.full((3, k), 255, F)
    _check(tmp_path, _graph(np.uint8, w, 0, np.zeros(n, np.uint8), (3, k)), x)
    y = Session(tmp_path / "b", "wasm").run({"x": x})["y"]
    assert y[0, 0] == F(F(255 * 255 * k) * F(0.01))
    s = F(0)
    for _ in range(k):
        s = F(s + F(255 * 255))
    assert s != F(255 * 255 * k)


def test_webgpu_keeps_float(tmp_path):
    """Both backends in one bundle: the Wasm plan reads the i16-pair weight, WebGPU the float32
    one, and both compute MatMulInteger's values (here below 2**24: exact in float32 too)."""
    rng = np.random.default_rng(secrets.randbits(32))
    w = rng.integers(-128, 128, (19, 12)).astype(np.int8)
    x = rng.integers(0, 256, (4, 19)).astype(F)
    model = _graph(np.uint8, w, 3, rng.integers(-4, 4, 12).astype(np.int8), (4, 19))
    _check(tmp_path, model, x, backends=("wasm", "webgpu"))
    import json

    plan = json.loads((tmp_path / "b" / "plan.json").read_text())
    keys = {b: {x["key"] for x in plan["backends"][b]["buffers"] if "key" in x} for b in ("wasm", "webgpu")}
    assert any("#i16x2" in k for k in keys["wasm"])
    assert not any("#i16x2" in k for k in keys["webgpu"])


@pytest.mark.parametrize("model", DYNAMIC, ids=[p.stem for p in DYNAMIC])
def test_tiny_quantized_models_in_integers(tmp_path, model):
    """Every MatMulInteger of the tiny quantize_dynamic models runs on the integer kernel, and
    the outputs stay within float rounding of onnxruntime's (measured: 2.3e-7 relative), or of
    activations quantized one step apart: a float difference of an ulp upstream of a
    DynamicQuantizeLinear can move a value across a rounding boundary, and the step spreads
    through the later layers (measured: 1.6e-3 on MiniLM and 1.0e-2 on BERT, in about one run
    of ten). A wrong integer kernel is off by far more (order 1); the kernel's exactness is
    checked on its own above."""
    module, _ = load_fused_model(model)
    count = sum(n.op_type == "MatMulInteger" for n in onnx.load(str(model)).graph.node)
    wasm = backend_module(module, TARGETS["wasm"])
    assert sum(isinstance(o, (nt.MatmulI16Op, nt.MatmulI8Op)) for o in wasm.walk()) == count
    assert not any(isinstance(o, (nt.MatmulI16Op, nt.MatmulI8Op)) for o in module.walk())  # (WebGPU's copy)
    plan = compile_model(model, tmp_path / "b", web_runtime=False, backends=("wasm",))
    assert _wasm_integer_kernels(tmp_path / "b") >= 1
    # the pairs keep the model's bytes: one a weight, not two
    pairs = {k: e for k, e in plan["weights"]["entries"].items() if "#i16x2" in k}
    quads = {k: e for k, e in plan["weights"]["entries"].items() if "#i8x4" in k}
    assert len(pairs) + len(quads) == count and all(e["compact"]["format"] == "i16x2" for e in pairs.values())
    assert not quads  # (the relaxed i8 dot is opt-in: nn-tensor-integer-matmul{dot=i8})
    for e in quads.values():  # (the words themselves: one byte per value, plus the bias row)
        assert "compact" not in e and e["dtype"] == "int32"
    for e in pairs.values():  # (one byte per value, and a zero point per column)
        k = e["compact"]["rows"]
        n = int(np.prod(e["shape"])) // ((k + 1) // 2)
        assert e["nbytes"] == -(-k * n // 4) * 4 + (n if e["compact"]["zero"] else 0)
    seed = secrets.randbits(31)
    feeds = random_feeds(plan, seed)
    names = [o["name"] for o in plan["model"]["outputs"]]
    for threads in (1, 2):
        outs = Session(tmp_path / "b", "wasm", threads=threads).run(feeds)
        for name, ref in zip(names, ort_outputs(model, feeds, names)):
            err = relative_error(outs[name], ref)
            assert err <= 5e-2, f"{model.stem}: {name} relative error {err:.2e} ({threads} threads, seed {seed})"


def test_pairs_and_their_checks():
    b = np.random.default_rng(3).integers(-255, 256, (7, 5)).astype(F)
    words = materialize_i16x2(["w#i16x2", "v"], {"w": b})["w#i16x2"]
    assert words.shape == (4, 5) and words.dtype == np.int32
    np.testing.assert_array_equal(unpack_i16x2(words, 7), b)
    np.testing.assert_array_equal(pack_i16x2(b.astype(np.int64)), words)
    with pytest.raises(ValueError, match="16-bit integers"):
        materialize_i16x2(["w#i16x2"], {"w": b + 0.5})
    with pytest.raises(KeyError, match="not in the weights file"):
        materialize_i16x2(["u#i16x2"], {})


@pytest.mark.parametrize(("k", "qtype", "zero"), [(7, np.int8, False), (8, np.uint8, True), (5, np.int8, True)])
def test_pairs_storage_round_trip(k, qtype, zero):
    """The "i16x2" compact format: the model's bytes and zero points in, the words out."""
    rng = np.random.default_rng(k)
    info = np.iinfo(qtype)
    q = rng.integers(info.min, info.max + 1, (k, 6)).astype(qtype)
    z = rng.integers(info.min, info.max + 1, 6).astype(qtype) if zero else None
    raw, desc = encode(Pairs(q, z))
    assert desc == {"format": "i16x2", "rows": k, "signed": qtype == np.int8, "zero": zero}
    v = q.astype(np.int32) - (0 if z is None else z.astype(np.int32))
    words = decode(raw, ((k + 1) // 2, 6), desc)
    np.testing.assert_array_equal(words, pack_i16x2(v))
    np.testing.assert_array_equal(unpack_i16x2(words, k), v)
    raw2, desc2 = encode(Pairs(q, z, 2))  # (in panels of 2 columns, as nn-tensor-pack-weights)
    assert raw2.tobytes() == raw.tobytes() and desc2["panel"] == 2
    np.testing.assert_array_equal(decode(raw2, (3, (k + 1) // 2, 2), desc2), pack_array(words, "kn", 2))
    with pytest.raises(ValueError, match="takes"):
        decode(raw[:-1], ((k + 1) // 2, 6), desc)
    with pytest.raises(ValueError, match="does not fit"):
        decode(raw, ((k + 1) // 2 + 1, 6), desc)
