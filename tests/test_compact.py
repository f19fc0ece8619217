"""Compact weights (nnjit/compact.py, nnjit/frontend/compact.py): quantized ONNX models end to
end, each `--weights` mode's size and accuracy, the storage format, and bad input. Models run
on WebGPU (lavapipe) and Wasm (wasmtime) against onnxruntime on fresh random inputs."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnjit.compact import INT4_BITS, TableAxis, int4_blocks
from nnjit.compiler import compile_model
from nnjit.errors import ModelFormatError, NNJitError
from nnjit.frontend.compact import decode, dequantize, encode, quantize
from nnjit.runtime.session import Session, random_feeds
from tests.conftest import ort_outputs, relative_error

MODELS = Path(__file__).parent / "models"
QUANT = sorted((MODELS / "quant").glob("*.onnx"))

# nnjit against onnxruntime on the same quantized model. Both compute the same integers; a
# value within float rounding of a rounding boundary of DynamicQuantizeLinear may land on the
# other side (one quantization step), and onnxruntime computes float16 models in float16.
QUANT_TOL = 1e-2
# A QDQ model quantizes activations between every pair of layers: one such flip early on moves
# later activations by whole steps, so its worst element can reach a few 1e-2 on random inputs
# (measured up to 2.6e-2 for bert.qdq); the bulk must still agree closely.
QDQ_TOL, QDQ_BULK_TOL = 1e-1, 1e-3


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.reshape(-1).astype(np.float64), b.reshape(-1).astype(np.float64)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.mark.parametrize("model", QUANT, ids=[p.stem for p in QUANT])
def test_quantized_model_end_to_end(tmp_path, model):
    """Every variant tools/quantize_models.py makes imports, keeps its weights compact in the
    bundle, and runs on both backends as onnxruntime does."""
    plan = compile_model(model, tmp_path / "b", web_runtime=False)
    assert any("compact" in e for e in plan["weights"]["entries"].values())
    feeds = random_feeds(plan, secrets.randbits(31))
    names = [o["name"] for o in plan["model"]["outputs"]]
    refs = ort_outputs(model, feeds, names)
    for backend in ("webgpu", "wasm"):
        outs = Session(tmp_path / "b", backend, threads=2).run(feeds)
        for name, ref in zip(names, refs):
            err = relative_error(outs[name], ref)
            tol = QDQ_TOL if model.stem.endswith(".qdq") else QUANT_TOL
            assert err <= tol, f"{model.stem} on {backend}: {name} relative error {err:.2e}"
            bulk = np.median(np.abs(outs[name].astype(np.float64) - ref)) / np.abs(ref).max()
            assert bulk <= QDQ_BULK_TOL, f"{model.stem} on {backend}: {name} median error {bulk:.2e}"


# each mode: weights.bin at most this share of the float32 bundle's, outputs within this
# relative error of onnxruntime's float32 outputs (tiny random models: one int4 block is most
# of a row) and at least this cosine similarity
MODES = {"f16": (0.55, 2e-3, 0.99999), "int8": (0.35, 5e-2, 0.999), "int4": (0.25, 0.5, 0.95)}


@pytest.mark.parametrize("model", ["minilm-legacy", "bert-legacy", "gpt2-dynamo"])
def test_weights_modes(tmp_path, model):
    path = MODELS / f"{model}.onnx"
    base = compile_model(path, tmp_path / "f32", web_runtime=False)
    assert not any("compact" in e for e in base["weights"]["entries"].values())
    full = (tmp_path / "f32" / "weights.bin").stat().st_size
    feeds = random_feeds(base, secrets.randbits(31))
    names = [o["name"] for o in base["model"]["outputs"]]
    refs = ort_outputs(path, feeds, names)
    for mode, (share, tol, cos) in MODES.items():
        compile_model(path, tmp_path / mode, web_runtime=False, weights=mode)
        size = (tmp_path / mode / "weights.bin").stat().st_size
        assert size <= share * full, f"{model} --weights {mode}: {size} bytes of {full}"
        for backend in ("webgpu", "wasm"):
            outs = Session(tmp_path / mode, backend, threads=2).run(feeds)
            for name, ref in zip(names, refs):
                err, c = relative_error(outs[name], ref), _cosine(outs[name], ref)
                assert err <= tol and c >= cos, f"{model} {mode} {backend}: error {err:.2e}, cosine {c:.5f}"


@pytest.mark.parametrize("shape", [(37, 13), (5, 70, 3), (64,), (1, 33)])
@pytest.mark.parametrize(("bits", "block", "half"), [(8, None, False), (4, None, False), (4, 8, True), (4, 64, True)])
def test_quantize_encode_decode(shape, bits, block, half):
    """decode(encode(quantize(w))) is the dequantized weight, on ragged shapes (K not a multiple
    of the block) and each axis: int8 within a quantization step of max|w|, int4 with a root
    mean square error under half a step (its range search may saturate a block's extremes);
    float16 scales (and 4-bit zero points, two per byte) take the bytes the format says."""
    rng = np.random.default_rng(secrets.randbits(32))
    w = rng.standard_normal(shape).astype(np.float32)
    for axis in range(len(shape)):
        b = quantize(w, axis, bits, block, half)
        raw, desc = encode(b)
        desc = json.loads(json.dumps(desc))
        got = decode(raw, shape, desc)
        np.testing.assert_array_equal(got, dequantize(b))
        step = np.abs(w).max() / (127 if bits == 8 else 7)
        if bits == 8:
            assert np.abs(got - w).max() <= step, (shape, axis)
        assert np.sqrt(np.mean((got - w) ** 2)) <= step / 2, (shape, axis)
        size, blocks = int(np.prod(shape)), -(-shape[axis] // (shape[axis] if bits == 8 else block or 32))
        nscales = size // shape[axis] * blocks
        assert desc.get("scale", "f32") == ("f16" if half else "f32") and b.scale.size == nscales
        qbytes = size if bits == 8 else (size + 1) // 2
        zbytes = 0 if bits == 8 else (nscales + 1) // 2
        assert raw.size == (qbytes + 3) // 4 * 4 + (2 if half else 4) * nscales + zbytes
    raw, desc = encode(w)
    np.testing.assert_array_equal(decode(raw, shape, desc), w.astype(np.float16).astype(np.float32))


def test_int4_half_scales_fall_back():
    """A block whose scale float16 cannot hold (beyond its range) keeps float32 scales."""
    w = np.array([[1e-9, 2e-9, 0, 1e-9], [7e5, -7e5, 1, 2]], np.float32).T
    b = quantize(w, 0, 4, 4, half=True)
    assert b.scale.dtype == np.float32
    raw, desc = encode(b)
    assert "scale" not in desc
    got = decode(raw, w.shape, desc)
    np.testing.assert_array_equal(got, dequantize(b))
    np.testing.assert_allclose(got[:, 0], w[:, 0], rtol=0.1, atol=2e-10)  # (float16: all 0)
    assert np.abs(got[:, 1] - w[:, 1]).max() <= 0.2 * 1.4e6
    ok = quantize(w[:, :1] * 1e6, 0, 4, 4, half=True)
    assert ok.scale.dtype == np.float16


def test_bad_weights_mode(tmp_path):
    with pytest.raises(NNJitError, match="weights='int3' is not a weight storage mode"):
        compile_model(MODELS / "bert-legacy.onnx", tmp_path / "b", weights="int3")
    assert not (tmp_path / "b").exists()
    res = subprocess.run([sys.executable, "-m", "nnjit.tools.nnjit_main", "compile", str(MODELS / "bert-legacy.onnx"),
                          "-o", str(tmp_path / "c"), "--weights", "int3"], capture_output=True, text=True)  # fmt: skip
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "invalid choice: 'int3'" in res.stderr and "f32" in res.stderr


@pytest.mark.parametrize("change", ["nbytes", "format", "axis", "scale", "zero"])
def test_malformed_compact_entry(tmp_path, change):
    """A compact entry that does not fit its bytes is a ModelFormatError naming the entry."""
    compile_model(MODELS / "bert-legacy.onnx", tmp_path / "b", web_runtime=False, weights="int4", backends=("wasm",))
    bad = tmp_path / "bad"
    shutil.copytree(tmp_path / "b", bad)
    plan = json.loads((bad / "plan.json").read_text())
    key, entry = next((k, e) for k, e in plan["weights"]["entries"].items() if "compact" in e)
    if change == "nbytes":
        entry["nbytes"] -= 4
    elif change == "format":
        entry["compact"]["format"] = "q5"
    elif change == "axis":
        entry["compact"]["axis"] = 7
    else:
        entry["compact"][change] = {"scale": "f8", "zero": "u8"}[change]
    (bad / "plan.json").write_text(json.dumps(plan))
    with pytest.raises(ModelFormatError, match="weights index entry") as e:
        Session(bad, "wasm", verify=False)
    assert key[:20] in str(e.value)


def test_int4_blocks_spend_the_budget():
    """`int4_blocks`: tables in blocks of 64, matrices halved from 32 smallest first, and the
    encoded entries within INT4_BITS bits a weight on average (K not a multiple of a block)."""
    rng = np.random.default_rng(secrets.randbits(32))
    shapes = {"table": (1001, 96), "attn": (96, 96), "up": (96, 384), "down": (384, 96), "head": (99, 1000)}
    weights = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    axes = {k: TableAxis(1) if k == "table" else 0 for k in shapes}
    blocks = int4_blocks(weights, axes, {})
    assert blocks["table"] == 64 and blocks["attn"] == 8 and blocks["head"] == 16, blocks
    assert blocks["up"] <= blocks["down"] <= blocks["head"], blocks
    bits = sum(encode(quantize(weights[k], axes[k], 4, b, half=True))[0].size * 8 for k, b in blocks.items())
    assert bits <= INT4_BITS * sum(w.size for w in weights.values()) + 32 * len(shapes), blocks
    assert int4_blocks(weights, {**axes, "table": 1}, {})["table"] < 64  # (a matrix, not a table)
