"""nn-tensor-split-weights: a gathered weight over the binding limit becomes row chunks."""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.parser import Parser

from nnjit.interp.nn_tensor_eval import evaluate
from nnjit.passes.nn_tensor_split_weights import (
    NNTensorSplitWeightsPass,
    materialize_weights,
    parse_chunk_key,
)
from nnjit.registry import make_context

IR = """
func.func @main(%ids: tensor<2x9xi64>) -> tensor<2x9x6xf32> {
  %w = nn_tensor.weight "table" : tensor<{V}x6xf32>
  %g = nn_tensor.gather %w, %ids {axis = 0 : i64} : (tensor<{V}x6xf32>, tensor<2x9xi64>) -> tensor<2x9x6xf32>
  func.return %g : tensor<2x9x6xf32>
}
"""


@pytest.mark.parametrize("vocab,max_bytes", [(37, 5 * 24), (37, 36 * 24), (64, 16 * 24)])
def test_split_gather_matches(vocab, max_bytes):
    ctx = make_context()
    module = Parser(ctx, IR.replace("{V}", str(vocab))).parse_module()
    NNTensorSplitWeightsPass(max_bytes=max_bytes).apply(ctx, module)
    module.verify()
    rng = np.random.default_rng()
    table = rng.standard_normal((vocab, 6)).astype(np.float32)
    weights = materialize_weights(module, {"table": table})
    assert "table" not in weights  # the whole table is no longer bound
    for key, arr in weights.items():
        assert arr.nbytes <= max_bytes
        base, start, stop = parse_chunk_key(key)
        assert base == "table" and np.array_equal(arr, table[start:stop])
    ids = rng.integers(-vocab, vocab, size=(2, 9))  # negative ids wrap, as in ONNX
    (got,) = evaluate(module, [ids], weights)
    assert np.array_equal(got, table[ids % vocab].astype(np.float64))


def test_small_weights_untouched():
    ctx = make_context()
    module = Parser(ctx, IR.replace("{V}", "10")).parse_module()
    before = str(module)
    NNTensorSplitWeightsPass().apply(ctx, module)
    assert str(module) == before
