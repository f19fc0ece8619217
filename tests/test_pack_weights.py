"""nn-tensor-pack-weights (nnjit/passes/nn_tensor_pack_weights.py): matmul weights stored in
[N/nr, K, nr] panels for the Wasm kernels.

The pass keeps nn_tensor semantics (the reference interpreter gives the same results before
and after, with the packed entries materialised from the plain ones); compile_model packs for
the wasm backend only and writes the packed entries; bundles run through the wasm runtime
against numpy (float64, fresh random inputs) on 1 and 2 threads.
"""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.parser import Parser

from nnjit.compiler import run_pipeline
from nnjit.interp.nn_tensor_eval import evaluate
from nnjit.passes.nn_tensor_pack_weights import (
    NNTensorPackWeightsPass,
    materialize_packed,
    pack_array,
    pack_key,
    parse_pack_key,
)
from nnjit.registry import make_context

RNG = np.random.default_rng(7)

MODULE = """
func.func @main(%x: tensor<2x5x16xf32>, %y: tensor<3x12xf32>) -> (tensor<2x5x24xf32>, tensor<3x16xf32>, tensor<3x6xf32>) {
  %w = nn_tensor.weight "w" : tensor<16x24xf32>
  %a = nn_tensor.matmul %x, %w : (tensor<2x5x16xf32>, tensor<16x24xf32>) -> tensor<2x5x24xf32>
  %wt = nn_tensor.weight "wt" : tensor<16x12xf32>
  %c = nn_tensor.weight "c" : tensor<16xf32>
  %g = nn_tensor.gemm %y, %wt, %c {alpha = 0.5 : f32, beta = 1.0 : f32, trans_a = 0 : i64, trans_b = 1 : i64} : (tensor<3x12xf32>, tensor<16x12xf32>, tensor<16xf32>) -> tensor<3x16xf32>
  %w6 = nn_tensor.weight "w6" : tensor<12x6xf32>
  %s = nn_tensor.matmul %y, %w6 : (tensor<3x12xf32>, tensor<12x6xf32>) -> tensor<3x6xf32>
  func.return %a, %g, %s : tensor<2x5x24xf32>, tensor<3x16xf32>, tensor<3x6xf32>
}
"""


def weights():
    return {
        "w": RNG.standard_normal((16, 24)).astype(np.float32),
        "wt": RNG.standard_normal((16, 12)).astype(np.float32),
        "c": RNG.standard_normal(16).astype(np.float32),
        "w6": RNG.standard_normal((12, 6)).astype(np.float32),
    }


def test_keys_and_arrays():
    assert pack_key("enc.0.w", "kn", 8) == "enc.0.w#pack=kn8"
    assert parse_pack_key("enc.0.w#pack=nk16") == ("enc.0.w", "nk", 16)
    assert parse_pack_key("w#rows=0:4") is None and parse_pack_key("w#pack=xx8") is None
    b = np.arange(3 * 16, dtype=np.float32).reshape(3, 16)  # [K, N]
    p = pack_array(b, "kn", 8)
    assert p.shape == (2, 3, 8) and p.flags.c_contiguous
    assert np.array_equal(p[1, 2], b[2, 8:16])
    assert np.array_equal(pack_array(np.ascontiguousarray(b.T), "nk", 8), p)
    with pytest.raises(ValueError, match="panels of 8"):
        pack_array(np.zeros((3, 12), np.float32), "kn", 8)
    with pytest.raises(KeyError, match="not in the weights file"):
        materialize_packed(["nope#pack=kn8"], {})
    assert materialize_packed(["w", "x#pack=kn8"], {"x": b}).keys() == {"x#pack=kn8"}


@pytest.mark.parametrize("nr", [4, 8])
def test_pass_keeps_semantics(nr):
    ctx = make_context()
    m = Parser(ctx, MODULE).parse_module()
    ins = [RNG.standard_normal((2, 5, 16)).astype(np.float32), RNG.standard_normal((3, 12)).astype(np.float32)]
    ws = weights()
    ref = evaluate(m, ins, ws)
    NNTensorPackWeightsPass(nr=nr).apply(ctx, m)
    m.verify()
    keys = sorted(o.key.data for o in m.walk() if o.name == "nn_tensor.weight")
    # w6 (6 columns, not a multiple of nr) and the bias stay plain
    assert keys == ["c", f"w#pack=kn{nr}", "w6", f"wt#pack=nk{nr}"]
    got = evaluate(m, ins, {**ws, **materialize_packed(keys, ws)})
    for g, r in zip(got, ref, strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-12)


def test_pass_option_is_checked():
    with pytest.raises(ValueError, match="multiple of 4"):
        NNTensorPackWeightsPass(nr=6).apply(make_context(), Parser(make_context(), MODULE).parse_module())


def test_compile_and_run_on_wasm(tmp_path):
    """A MatMul on a 3-D input and a Gemm with transB and bias, through compile_model: the
    wasm plan reads packed entries, the webgpu plan the plain ones; a wasm-only bundle holds
    no plain copy of a packed weight; results match numpy on 1 and 2 threads."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from nnjit.compiler import compile_model
    from nnjit.runtime.session import Session

    w = RNG.standard_normal((16, 24)).astype(np.float32)
    wt = RNG.standard_normal((8, 24)).astype(np.float32)
    c = RNG.standard_normal(8).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]),
         helper.make_node("Reshape", ["h", "shape"], ["h2"]),
         helper.make_node("Gemm", ["h2", "wt", "c"], ["y"], transB=1, alpha=0.5)],
        "packed",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 7, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [14, 8])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(wt, "wt"),
         numpy_helper.from_array(c, "c"), numpy_helper.from_array(np.array([14, 24], np.int64), "shape")],
    )  # fmt: skip
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    x = RNG.standard_normal((2, 7, 16)).astype(np.float32)
    ref = 0.5 * ((x.astype(np.float64) @ w).reshape(14, 24) @ wt.T) + c

    both = compile_model(path, tmp_path / "both", backends=("wasm", "webgpu"))
    wasm_keys = {b["key"] for b in both["backends"]["wasm"]["buffers"] if "key" in b}
    gpu_keys = {b["key"] for b in both["backends"]["webgpu"]["buffers"] if "key" in b}
    assert {"w#pack=kn8", "wt#pack=nk8", "c"} <= wasm_keys and not {"w", "wt"} & wasm_keys
    assert {"w", "wt"} <= gpu_keys and not any("#pack=" in k for k in gpu_keys)
    assert {"w", "wt", "w#pack=kn8", "wt#pack=nk8"} <= set(both["weights"]["entries"])
    only = compile_model(path, tmp_path / "wasm", backends=("wasm",))
    assert not {"w", "wt"} & set(only["weights"]["entries"])
    for threads in (1, 2):
        out = Session(tmp_path / "wasm", backend="wasm", threads=threads).run({"x": x})
        (y,) = out.values()
        assert np.max(np.abs(y - ref)) / np.max(np.abs(ref)) < 1e-5


def test_pipeline_packs_lone_and_fused_matmuls_once():
    ctx = make_context()
    m = Parser(ctx, MODULE).parse_module()
    run_pipeline(m, "nn-tensor-fuse,nn-tensor-pack-weights,nn-tensor-pack-weights")
    keys = [o.key.data for o in m.walk() if o.name == "nn_tensor.weight"]
    assert sorted(keys) == ["c", "w#pack=kn8", "w6", "wt#pack=nk8"]
