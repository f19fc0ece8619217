"""Weight-only int8 matmuls on Wasm (nnjit/passes/nn_tensor_int8_weights.py): a matmul / gemm
whose B weight is stored as int8 with a scale per output column (`--weights int8`, or a
model's own per-axis int8 DequantizeLinear weight) reads it as bytes (v128.load8x8_s, widened
in registers) and scales its accumulators in the epilogue. Kernels run in wasmtime on 1 and 2
threads and in the nn_loop interpreter against float64 numpy on the dequantized weight
(ragged M, K, N, batched A, bias and fused activations, outputs poisoned first); bundles keep
the bytes in weights.bin and unwidened in Wasm memory; a generation bundle matches WebGPU,
which reads the same weights dequantized at load."""

from __future__ import annotations

import secrets
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from xdsl.dialects.builtin import ModuleOp
from xdsl.parser import Parser

from nnjit.backends.wat_printer import wat_kernels
from nnjit.compiler import compile_model
from nnjit.errors import NNJitError
from nnjit.frontend.compact import dequantize, quantize
from nnjit.interp.nn_loop_eval import run_kernel
from nnjit.passes.convert_nn_loop_to_wasm import ConvertNNLoopToWasmPass
from nnjit.passes.lowering import lowering_for
from nnjit.passes.lowering.schedule import Schedule
from nnjit.passes.nn_loop_expand_math import NNLoopExpandMathPass
from nnjit.passes.nn_loop_unroll import NNLoopUnrollPass
from nnjit.registry import make_context
from nnjit.runtime.session import Session
from nnjit.runtime.wasm import WasmRuntime
from tests.conftest import relative_error

CTX = make_context()
MODELS = Path(__file__).parent / "models"
TOL = 1e-5  # float32 sums of exact products against float64

# a fused matmul of int8 weights [K, N] (packed in [N/8, K, 8] panels when `packed`) times
# column scales, plus a bias and an activation, as nn-tensor-int8-weights and
# nn-tensor-pack-weights leave it
_SRC = """
func.func @f(%a: tensor<{A}xf32>, %q: tensor<{Q}xi8>, %s: tensor<{N}xf32>, %c: tensor<{N}xf32>) {{
  %r = nn_tensor.fused %a, %q, %s, %c {{kind = "matmul"}} : (tensor<{A}xf32>, tensor<{Q}xi8>, tensor<{N}xf32>, tensor<{N}xf32>) -> tensor<{O}xf32> {{
  ^bb0(%x: tensor<{A}xf32>, %yq: tensor<{Q}xi8>, %ys: tensor<{N}xf32>, %b: tensor<{N}xf32>):
    {UNPACK}
    %f = nn_tensor.cast {W} : tensor<{K}x{N}xi8> -> tensor<{K}x{N}xf32>
    %y = nn_tensor.mul %f, %ys : (tensor<{K}x{N}xf32>, tensor<{N}xf32>) -> tensor<{K}x{N}xf32>
    %m = nn_tensor.matmul %x, %y : (tensor<{A}xf32>, tensor<{K}x{N}xf32>) -> tensor<{O}xf32>
    %d = nn_tensor.add %m, %b : (tensor<{O}xf32>, tensor<{N}xf32>) -> tensor<{O}xf32>
    %g = nn_tensor.{ACT} %d : tensor<{O}xf32> -> tensor<{O}xf32>
    nn_tensor.yield %g : tensor<{O}xf32>
  }}
  func.return
}}"""
_UNPACK = (
    "%t = nn_tensor.transpose %yq {{perm = array<i64: 1, 0, 2>}} : tensor<{P}x{K}x8xi8> -> tensor<{K}x{P}x8xi8>\n"
    "    %w = nn_tensor.reshape %t : tensor<{K}x{P}x8xi8> -> tensor<{K}x{N}xi8>"
)
_ACTS = {"gelu": lambda x: 0.5 * x * (1 + np.vectorize(__import__("math").erf)(x / np.sqrt(2))),
         "relu": lambda x: np.maximum(x, 0), "tanh": np.tanh}  # fmt: skip


def _fused(batch: tuple[int, ...], m: int, k: int, n: int, packed: bool, act: str):
    dims = lambda *d: "x".join(map(str, d))  # noqa: E731
    unpack = _UNPACK.format(P=n // 8, K=k, N=n) if packed else ""
    src = _SRC.format(A=dims(*batch, m, k), Q=dims(n // 8, k, 8) if packed else dims(k, n), K=k, N=n,
                      O=dims(*batch, m, n), UNPACK=unpack, ACT=act, W="%w" if packed else "%yq")  # fmt: skip
    mod = Parser(CTX, src).parse_module()
    mod.verify()
    return next(op for op in mod.walk() if op.name == "nn_tensor.fused")


def _case(batch: tuple[int, ...], m: int, k: int, n: int, packed: bool, act: str, rng):
    w = rng.standard_normal((k, n)).astype(np.float32)
    blocks = quantize(w, 0, 8)
    q, scale = blocks.q, blocks.scale.reshape(-1)
    a = rng.standard_normal((*batch, m, k)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    ref = _ACTS[act](a.astype(np.float64) @ dequantize(blocks).astype(np.float64) + bias)
    qs = np.ascontiguousarray(q.reshape(k, n // 8, 8).transpose(1, 0, 2)) if packed else q
    return [a, qs, scale, bias], ref


@pytest.fixture(scope="module")
def rts():
    rs = [WasmRuntime(threads=1, initial_bytes=16 << 20), WasmRuntime(threads=2, initial_bytes=16 << 20)]
    yield rs
    for r in rs:
        r.close()


SHAPES = [  # (batch, M, K, N, packed)
    ((), 1, 37, 29, False), ((), 1, 64, 16, True), ((), 3, 19, 40, True), ((), 5, 9, 8, False),
    ((), 2, 130, 77, False), ((3,), 2, 33, 13, False), ((2,), 1, 50, 24, True), ((), 7, 3, 96, True),
]  # fmt: skip
SCHEDULES = {"default": Schedule(target="wasm"), "reg1x32": Schedule(target="wasm", reg=(1, 32), kstep=4),
             "reg3x8": Schedule(target="wasm", reg=(3, 8), kstep=3)}  # fmt: skip


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, (*s[0], *s[1:4]))) + ("p" if s[4] else ""))
@pytest.mark.parametrize("sched", list(SCHEDULES), ids=list(SCHEDULES))
def test_int8_weight_matmul_in_wasmtime(rts, shape, sched):
    batch, m, k, n, packed = shape
    act = ("gelu", "relu", "tanh")[(m + k) % 3]
    kernel = lowering_for("matmul")(_fused(batch, m, k, n, packed, act), "k", SCHEDULES[sched])
    mod = ModuleOp([kernel])
    NNLoopExpandMathPass(target="wasm").apply(CTX, mod)
    NNLoopUnrollPass().apply(CTX, mod)
    ConvertNNLoopToWasmPass().apply(CTX, mod)
    ((_, wat, man),) = wat_kernels(mod)
    assert "v128.load8x8_s" in wat and "i32x4.extend_high_i16x8_s" in wat
    # the weight is a buffer of bytes
    assert man["params"][1]["dtype"] == "i8" and man["params"][1]["bytes"] == k * n
    inputs, ref = _case(batch, m, k, n, packed, act, np.random.default_rng(secrets.randbits(32)))
    for rt in rts:  # (run_kernel poisons the output with NaN first)
        (out,) = rt.run_kernel(wat, man, [*inputs, None])
        err = relative_error(out, ref)
        assert err <= TOL, f"{rt.threads} threads: relative error {err:.2e}"


@pytest.mark.parametrize("shape", [((), 3, 11, 16, True), ((2,), 2, 5, 13, False)])
def test_int8_weight_matmul_in_the_nn_loop_interpreter(shape):
    batch, m, k, n, packed = shape
    kernel = lowering_for("matmul")(_fused(batch, m, k, n, packed, "relu"), "k", Schedule(target="wasm"))
    inputs, ref = _case(batch, m, k, n, packed, "relu", np.random.default_rng(secrets.randbits(32)))
    out = np.full((*batch, m, n), np.nan, np.float32)
    run_kernel(kernel, [*inputs, out])
    assert relative_error(out, ref) <= TOL


def test_int8_weights_have_no_wgsl_kernel_and_need_reg_n_of_8():
    fused = _fused((), 2, 8, 16, True, "relu")
    with pytest.raises(NNJitError, match="int8-weight matmul has no WGSL kernel"):
        lowering_for("matmul")(fused, "k", Schedule(target="wgsl"))
    with pytest.raises(NNJitError, match="reg_n a multiple of 8"):
        lowering_for("matmul")(fused, "k", Schedule(target="wasm", reg=(2, 4)))


def _model(path: Path, m: int, k: int, n: int, *, gemm: bool, trans_b: bool, batch: int | None, act: str,
           rng) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    w = rng.standard_normal((n, k) if trans_b else (k, n)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    a_shape = [m, k] if batch is None else [batch, m, k]
    if gemm:
        nodes = [helper.make_node("Gemm", ["A", "W", "bias"], ["mm"], transB=int(trans_b))]
    else:
        nodes = [helper.make_node("MatMul", ["A", "W"], ["m0"]), helper.make_node("Add", ["m0", "bias"], ["mm"])]
    nodes.append(helper.make_node(act, ["mm"], ["Y"]))
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("A", TensorProto.FLOAT, a_shape)],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [*a_shape[:-1], n])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(bias, "bias")],
    )  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return w, bias


@pytest.mark.parametrize("m,k,n,gemm,trans_b,batch", [
    (1, 37, 29, False, False, None), (4, 70, 48, False, False, 2), (3, 19, 40, True, True, None),
    (1, 130, 64, True, False, None), (2, 24, 5, False, False, None),
])  # fmt: skip
def test_weights_int8_bundle_on_wasm(tmp_path, m, k, n, gemm, trans_b, batch):
    """`--weights int8` end to end: weights.bin holds the int8 bytes (and no float32 copy),
    the Wasm memory holds them unwidened, outputs are those of the dequantized weight; a
    weight of fewer than 8 columns stays on the float32 kernel (dequantized at load)."""
    rng = np.random.default_rng(secrets.randbits(32))
    w, bias = _model(tmp_path / "m.onnx", m, k, n, gemm=gemm, trans_b=trans_b, batch=batch, act="Relu", rng=rng)
    plan = compile_model(tmp_path / "m.onnx", tmp_path / "b", backends=["wasm"], weights="int8", web_runtime=False)
    entries = plan["weights"]["entries"]
    blocks = quantize(w, 1 if trans_b else 0, 8)
    q = blocks.q.T if trans_b else blocks.q  # [K, N]
    s = Session(tmp_path / "b", "wasm", threads=2)
    keys = {b["key"]: b for b in plan["backends"]["wasm"]["buffers"] if b["kind"] == "weight"}
    if n >= 8:
        (qkey,) = [key for key in keys if "#q8" in key and not key.endswith("#q8s")]
        assert entries[qkey]["dtype"] == "int8" and entries[qkey]["nbytes"] == k * n
        assert keys[qkey]["dtype"] == "i8" and keys[qkey]["bytes"] == k * n
        assert not any(e["dtype"] == "float32" and e["nbytes"] >= 4 * k * n for e in entries.values())
        size = (tmp_path / "b" / "weights.bin").stat().st_size
        assert size < k * n + 8 * n + 1024, f"weights.bin {size} bytes"
        shape = keys[qkey]["shape"]
        mem = s._impl.rt.read(s._impl.by_key[qkey], np.int8, shape)  # type: ignore[attr-defined]
        want = q.reshape(k, n // 8, 8).transpose(1, 0, 2) if "#pack=" in qkey else q
        np.testing.assert_array_equal(mem, want)
    else:
        assert not any("#q8" in key for key in keys)
    a = rng.standard_normal(plan["model"]["inputs"][0]["shape"]).astype(np.float32)
    out = s.run({"A": a})["Y"]
    wd = dequantize(blocks).astype(np.float64)
    ref = np.maximum(a.astype(np.float64) @ (wd.T if trans_b else wd) + bias, 0)
    assert relative_error(out, ref) <= TOL


def test_a_models_own_per_axis_int8_weight_is_read_as_bytes(tmp_path):
    """An int8 initializer under a per-axis DequantizeLinear (zero point 0) feeding a MatMul is
    read as bytes on Wasm in every mode (its integers and scales as the model has them); with a
    non-zero zero point it stays on the float32 kernel."""
    rng = np.random.default_rng(secrets.randbits(32))
    k, n = 40, 24
    q = rng.integers(-127, 128, (k, n)).astype(np.int8)
    scale = (rng.random(n) * 0.1 + 0.01).astype(np.float32)
    for zero, bytes_ in ((np.zeros(n, np.int8), True), (rng.integers(-3, 4, n).astype(np.int8), False)):
        graph = helper.make_graph(
            [helper.make_node("DequantizeLinear", ["Q", "S", "Z"], ["W"], axis=1),
             helper.make_node("MatMul", ["A", "W"], ["Y"])],
            "g", [helper.make_tensor_value_info("A", TensorProto.FLOAT, [3, k])],
            [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [3, n])],
            [numpy_helper.from_array(q, "Q"), numpy_helper.from_array(scale, "S"), numpy_helper.from_array(zero, "Z")],
        )  # fmt: skip
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "q.onnx")
        plan = compile_model(tmp_path / "q.onnx", tmp_path / "b", backends=["wasm"], web_runtime=False)
        dtypes = {b["dtype"] for b in plan["backends"]["wasm"]["buffers"] if b["kind"] == "weight"}
        assert ("i8" in dtypes) == bytes_, dtypes
        a = rng.standard_normal((3, k)).astype(np.float32)
        ref = a.astype(np.float64) @ ((q.astype(np.float64) - zero) * scale)
        out = Session(tmp_path / "b", "wasm").run({"A": a})["Y"]
        assert relative_error(out, ref) <= TOL


def test_generation_bundle_with_int8_weights(tmp_path):
    """GPT-2 with a KV cache, `--weights int8`: the Wasm plan reads its matmul weights as bytes
    (the LM head too: a Gather reads the tied table, dequantized at load), and generates the
    tokens and logits of the WebGPU plan of the same bundle, which reads them dequantized."""
    model = MODELS / "gpt2_past-legacy.onnx"
    compile_model(model, tmp_path / "g", lengths=[8, 16, 32], max_length=48, weights="int8", web_runtime=False)
    plan = Session(tmp_path / "g", "wasm").plan
    variants = [v["backends"]["wasm"] for v in plan["dynamic"]["variants"]]
    assert all(any(b["dtype"] == "i8" for b in p["buffers"]) for p in variants)
    prompt = np.random.default_rng().integers(0, 99, 6).tolist()
    runs = {}
    for backend in ("wasm", "webgpu"):
        logits: list[np.ndarray] = []
        s = Session(tmp_path / "g", backend, threads=2)
        runs[backend] = (s.generate(prompt, 24, on_logits=lambda a: logits.append(a.copy())), logits)  # noqa: B023
    assert runs["wasm"][0] == runs["webgpu"][0]
    for step, (a, r) in enumerate(zip(runs["wasm"][1], runs["webgpu"][1], strict=True)):
        err = relative_error(a, r)
        assert err <= 1e-4, f"step {step}: logits relative error {err:.2e}"
