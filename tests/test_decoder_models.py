"""The tiny decoders with a KV cache (tests/models/{gpt2,llama}_past-legacy.onnx): their
interface is the one HF exporters write, and the reference greedy loop of tests/generation_ref.py
(prompt with an empty past, then one token per step through the cache) gives the logits of the
same tokens fed at once without a cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nnjit.runtime.generate import reference_greedy
from tests.generation_ref import empty_past, ort_session, ort_step

MODELS = Path(__file__).parent / "models"
DECODERS = [MODELS / "gpt2_past-legacy.onnx", MODELS / "llama_past-legacy.onnx"]
PROMPT = [5, 17, 42, 3, 64]


@pytest.mark.parametrize("path", DECODERS, ids=[p.stem for p in DECODERS])
def test_decoder_interface(path: Path):
    sess = ort_session(path)
    ins = {i.name: i for i in sess.get_inputs()}
    outs = {o.name: o for o in sess.get_outputs()}
    layers = sum(n.endswith(".key") for n in ins)
    assert layers == 2
    past = [f"past_key_values.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]
    assert list(ins) == ["input_ids", "attention_mask", "position_ids", *past]
    present = [f"present.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]
    assert list(outs) == ["logits", *present]
    assert ins["input_ids"].shape == ["batch_size", "sequence_length"]
    assert ins["attention_mask"].shape == ["batch_size", "total_sequence_length"]
    assert ins["position_ids"].shape == ["batch_size", "sequence_length"]
    assert outs["logits"].shape == ["batch_size", "sequence_length", 99]
    for name in past:
        assert ins[name].type == "tensor(float)"
        assert ins[name].shape[:3] == ["batch_size", 2, "past_sequence_length"]
    for name in present:
        assert outs[name].shape[:3] == ["batch_size", 2, "total_sequence_length"]


@pytest.mark.parametrize("path", DECODERS, ids=[p.stem for p in DECODERS])
def test_greedy_with_cache_matches_full_sequence(path: Path):
    tokens, logits = reference_greedy(path, PROMPT, 8)
    assert len(tokens) == len(logits) == 8
    assert all(lg.shape == (99,) and lg.dtype == np.float32 for lg in logits)
    assert tokens == [int(np.argmax(lg)) for lg in logits]
    # the prompt and the generated tokens (but the last) at once, no cache: position
    # len(PROMPT) - 1 + i predicts token i
    sess = ort_session(path)
    full, _ = ort_step(sess, PROMPT + tokens[:-1], 0, empty_past(sess))
    for i, lg in enumerate(logits):
        ref = full[len(PROMPT) - 1 + i]
        err = np.abs(lg - ref).max() / np.abs(ref).max()
        assert err <= 1e-4, f"step {i}: relative error {err:.2e}"
