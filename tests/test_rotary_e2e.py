"""Sin and Cos through the whole pipeline (ONNX import, nn_tensor, kernels, nn-loop-expand-math,
both backends): a rotary embedding (cos and sin of positions times frequencies, as Llama
computes it at run time) and Sin/Cos of raw arguments up to 1e5 with NaN and +-inf, compiled
and run on WebGPU (lavapipe) and Wasm (wasmtime) on fresh inputs, against numpy in float64
(absolute error <= 1e-7 for |x| <= 1e5; NaN exactly where x is NaN or +-inf); and the tiny
Llama-style decoder with a KV cache (tests/models/llama_past-legacy.onnx) against onnxruntime
at positions past 512 (relative error <= 1e-4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.conftest import ort_outputs, relative_error
from tests.generation_ref import decoder_shapes

S, H, N = 24, 16, 1000  # positions, frequencies (head_dim / 2), raw arguments
RNG = np.random.default_rng()
INV_FREQ = (1.0 / 10000.0 ** (np.arange(H) * 2 / (2 * H))).astype(np.float32)
LLAMA = Path(__file__).parent / "models" / "llama_past-legacy.onnx"


def _rotary_model() -> bytes:
    """freqs = position_ids (int64) as float times inv_freq; emb = [freqs, freqs]; cos(emb),
    sin(emb); and sin(x), cos(x) of an input x."""
    nodes = [
        helper.make_node("Cast", ["position_ids"], ["pos"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["pos", "axis"], ["pos_col"]),
        helper.make_node("Mul", ["pos_col", "inv_freq"], ["freqs"]),
        helper.make_node("Concat", ["freqs", "freqs"], ["emb"], axis=-1),
        helper.make_node("Cos", ["emb"], ["cos"]),
        helper.make_node("Sin", ["emb"], ["sin"]),
        helper.make_node("Sin", ["x"], ["sin_x"]),
        helper.make_node("Cos", ["x"], ["cos_x"]),
    ]
    inits = [numpy_helper.from_array(INV_FREQ.reshape(1, 1, H), "inv_freq"),
             numpy_helper.from_array(np.array([-1], np.int64), "axis")]  # fmt: skip
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("cos", "sin", "sin_x", "cos_x")]
    graph = helper.make_graph(
        nodes, "rotary",
        [helper.make_tensor_value_info("position_ids", TensorProto.INT64, [1, S]),
         helper.make_tensor_value_info("x", TensorProto.FLOAT, [N])],
        outs, inits,
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9).SerializeToString()


@pytest.fixture(scope="module")
def rotary_bundle(tmp_path_factory):
    from nnjit.compiler import compile_model

    out = tmp_path_factory.mktemp("rotary") / "b"
    compile_model(_rotary_model(), out, web_runtime=False)
    return out


def _feeds() -> dict[str, np.ndarray]:
    start = RNG.integers(0, 4096)
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, 3e38, -3e38, 1e7, 1e5, -1e5,
                         8192.5, np.pi / 4, np.pi / 2, -np.pi], np.float32)  # fmt: skip
    m = (N - specials.size) // 2
    x = np.concatenate([specials, RNG.uniform(-10, 10, m), RNG.uniform(-1e5, 1e5, N - specials.size - m)])
    return {"position_ids": (start + np.arange(S))[None].astype(np.int64), "x": x.astype(np.float32)}


def _check(y: np.ndarray, x: np.ndarray, ref, name: str) -> None:
    finite = np.isfinite(x)
    np.testing.assert_array_equal(np.isnan(y), ~finite, err_msg=name)
    assert np.all(np.abs(y[finite]) <= 1.0), name
    near = np.abs(x) <= 1e5
    err = np.abs(y[near].astype(np.float64) - ref(x[near].astype(np.float64)))
    assert err.max() <= 1e-7, (name, float(err.max()), float(x[near][np.argmax(err)]))


@pytest.mark.parametrize("backend", ["webgpu", "wasm"])
def test_rotary_sin_cos_match_float64(rotary_bundle, backend):
    from nnjit.runtime.session import Session

    sess = Session(rotary_bundle, backend, threads=2)
    feeds = _feeds()
    got = sess.run(feeds)
    # the arguments as the kernels form them: an f32 product of position and frequency
    freqs = (feeds["position_ids"][0].astype(np.float32)[:, None] * INV_FREQ[None, :]).astype(np.float32)
    emb = np.concatenate([freqs, freqs], axis=-1)[None]
    assert got["cos"].shape == emb.shape
    _check(got["cos"], emb, np.cos, "cos")
    _check(got["sin"], emb, np.sin, "sin")
    _check(got["sin_x"], feeds["x"], np.sin, "sin_x")
    _check(got["cos_x"], feeds["x"], np.cos, "cos_x")


@pytest.mark.parametrize("backend", ["webgpu", "wasm"])
def test_llama_decoder_step_matches_onnxruntime(tmp_path_factory, backend):
    """One decode step of 2 tokens after a cache of 600 (positions 600, 601): logits and
    present key/values within 1e-4 of onnxruntime."""
    from nnjit.compiler import compile_model
    from nnjit.runtime.session import Session

    past, seq = 600, 2
    shapes = decoder_shapes(LLAMA, seq=seq, past=past)
    out = tmp_path_factory.mktemp("llama") / "b"
    compile_model(LLAMA, out, backends=(backend,), shapes=shapes, web_runtime=False)
    feeds = {}
    for name, shape in shapes.items():
        if name == "input_ids":
            feeds[name] = RNG.integers(0, 99, shape).astype(np.int64)
        elif name == "attention_mask":
            feeds[name] = np.ones(shape, np.int64)
        elif name == "position_ids":
            feeds[name] = (past + np.arange(seq))[None].astype(np.int64)
        else:
            feeds[name] = RNG.standard_normal(shape).astype(np.float32)
    got = Session(out, backend, threads=2).run(feeds)
    names = list(got)
    for name, ref in zip(names, ort_outputs(LLAMA, feeds, names)):
        err = relative_error(got[name], ref)
        assert err <= 1e-4, f"llama_past {backend} output {name!r}: relative error {err:.2e}"
