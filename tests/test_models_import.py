"""Every tiny model in tests/models/ (both torch exporters) and the embedded default model:
imported as nn_tensor IR, run by the float64 reference evaluator on fresh random inputs, and
compared with onnxruntime (relative error <= 1e-4)."""

from __future__ import annotations

import secrets
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from nnjit.errors import UnsupportedError
from nnjit.frontend import import_onnx
from nnjit.interp import evaluate
from tests.generation_ref import decoder_param, decoder_shapes

ROOT = Path(__file__).resolve().parent.parent
MODELS = sorted((ROOT / "tests" / "models").glob("*.onnx")) + [ROOT / "nnjit/models/default.onnx"]
DYNAMIC_SHAPES = {"input_ids": (1, 11), "attention_mask": (1, 11)}


def _shapes(path: Path):
    if "_past" in path.name:  # decoders with a KV cache: 3 new tokens after a past of 5
        return decoder_shapes(path)
    return DYNAMIC_SHAPES if "dynamic" in path.name else None


def _vocab_of(imported, arg_index: int) -> int | None:
    """Rows of the table that the given int input indexes (its embedding), if any."""
    from nnjit.dialects import nn_tensor as nt

    func = next(op for op in imported.module.walk() if op.name == "func.func")
    arg = func.body.block.args[arg_index]
    for use in arg.uses:
        if isinstance(use.operation, nt.GatherOp) and use.operation.indices is arg:
            return nt.shape_of(use.operation.data)[use.operation.axis.value.data]
    return None


def random_feeds(imported, rng: np.random.Generator) -> dict[str, np.ndarray]:
    feeds = {}
    for i, t in enumerate(imported.inputs):
        if "mask" in t.name:  # 1 for tokens, then padding
            keep = rng.integers(1, t.shape[-1] + 1)
            a = (np.arange(t.shape[-1]) < keep).astype(t.dtype)
            feeds[t.name] = np.broadcast_to(a, t.shape).copy()
        elif t.dtype.kind == "i" and "position" in t.name and _vocab_of(imported, i) is None:
            # positions of a rotary embedding (Llama: cos and sin of position * frequency),
            # not an index: consecutive, from anywhere below 1024
            pos = rng.integers(0, 1024) + np.arange(t.shape[-1])
            feeds[t.name] = np.broadcast_to(pos, t.shape).astype(t.dtype)
        elif t.dtype.kind == "i":
            vocab = _vocab_of(imported, i)
            assert vocab is not None, f"no embedding found for {t.name}"
            feeds[t.name] = rng.integers(0, vocab, size=t.shape).astype(t.dtype)
        else:
            feeds[t.name] = rng.standard_normal(t.shape).astype(t.dtype)
    return feeds


def test_tiny_models_present_and_small():
    names = {p.name for p in MODELS}
    for model in ("bert", "gpt2", "vit", "minilm"):
        for exporter in ("dynamo", "legacy"):
            assert f"{model}-{exporter}.onnx" in names
    assert any("dynamic" in n for n in names)
    sizes = [p.stat().st_size for p in MODELS if p.parent.name == "models" and "tests" in p.parts]
    assert max(sizes) < 300_000 and sum(sizes) < 3_000_000
    assert (ROOT / "nnjit/models/default.onnx").stat().st_size < 500_000


@pytest.mark.parametrize("path", [decoder_param(p) for p in MODELS])
def test_model_matches_onnxruntime(path: Path):
    import onnxruntime as ort

    imported = import_onnx(path, shapes=_shapes(path))
    ops = {op.name for op in imported.module.walk()}
    assert ops <= {"builtin.module", "func.func", "func.return"} | {
        n for n in ops if n.startswith("nn_tensor.")
    }
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    seed = secrets.randbits(32)
    rng = np.random.default_rng(seed)
    for _ in range(2):
        feeds = random_feeds(imported, rng)
        ref = sess.run([t.name for t in imported.outputs], feeds)
        got = evaluate(imported.module, [feeds[t.name] for t in imported.inputs], imported.weights)
        for info, g, r in zip(imported.outputs, got, ref):
            assert g.shape == r.shape == info.shape and info.dtype == r.dtype
            err = np.abs(g - r).max() / np.abs(r).max()
            assert err <= 1e-4, f"{path.name} {info.name}: relative error {err:.2e} (seed {seed})"


def test_dynamic_model_needs_shapes():
    path = next(p for p in MODELS if "dynamic" in p.name)
    with pytest.raises(UnsupportedError, match="input 'input_ids' has dynamic dim 'sequence'"):
        import_onnx(path)
    imported = import_onnx(path, shapes={"input_ids": (1, 5), "attention_mask": (1, 5)})
    assert imported.outputs[0].shape[:2] == (1, 5)
    # bound to the static model's sequence length, the shape sub-graphs (Shape, Range,
    # Slice, ...) fold away and the IR has exactly the static export's ops
    bound = import_onnx(path, shapes={"input_ids": (1, 12), "attention_mask": (1, 12)})
    static = import_onnx(path.with_name("bert-legacy.onnx"))
    assert Counter(op.name for op in bound.module.walk()) == Counter(
        op.name for op in static.module.walk()
    )


def test_ir_round_trips_through_text():
    from xdsl.parser import Parser

    from nnjit.registry import make_context

    imported = import_onnx(ROOT / "nnjit/models/default.onnx")
    text = str(imported.module)
    again = Parser(make_context(), text).parse_module()
    again.verify()
    assert str(again) == text
