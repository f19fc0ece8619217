"""Reference text generation for the decoders with a KV cache (tests/models/*_past-legacy.onnx,
made by tools/build_models.py): a test helper module, not a test file.

`ort_step(sess, ids, start, past)` runs one step of a decoder in onnxruntime (the prompt first
with `empty_past`, [1, kv_heads, 0, head_dim]); the greedy loop over it that nnjit's generation
is checked against is nnjit.runtime.generate.reference_greedy (also behind `nnjit generate
--check`).

`decoder_shapes(path, ...)` binds a decoder's dynamic dims (batch_size, sequence_length,
past_sequence_length, total_sequence_length) to one step's sizes, as `import_onnx(shapes=...)`
takes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

# decoders that nnjit does not import yet, and why (tests xfail them, not strictly)
IMPORT_GAPS: dict[str, str] = {}


def decoder_param(path: Path) -> object:
    """pytest.param of a tests/models file, xfail where IMPORT_GAPS names it."""
    import pytest

    reason = IMPORT_GAPS.get(path.stem)
    marks = [pytest.mark.xfail(reason=reason, strict=False)] if reason is not None else []
    return pytest.param(path, id=path.stem, marks=marks)


def decoder_shapes(
    path: str | Path, batch: int = 1, seq: int = 3, past: int = 5
) -> dict[str, tuple[int, ...]]:
    """{input name: shape} of a decoder with a KV cache for one step of `seq` new tokens after
    `past` cached ones."""
    import onnx

    dims = {
        "batch_size": batch,
        "sequence_length": seq,
        "past_sequence_length": past,
        "total_sequence_length": past + seq,
    }
    graph = onnx.load(str(path), load_external_data=False).graph
    return {
        i.name: tuple(dims.get(d.dim_param, d.dim_value) for d in i.type.tensor_type.shape.dim)
        for i in graph.input
    }


def ort_session(path: str | Path) -> object:
    """An onnxruntime CPU session of `path`, warnings off."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def empty_past(sess: object, batch: int = 1) -> dict[str, np.ndarray]:
    """Empty past tensors [batch, kv_heads, 0, head_dim] for every past_key_values.* input."""
    feeds = {}
    for i in sess.get_inputs():  # type: ignore[attr-defined]
        if i.name.startswith("past_key_values."):
            _, heads, _, head_dim = i.shape
            feeds[i.name] = np.zeros((batch, heads, 0, head_dim), np.float32)
    return feeds


def ort_step(
    sess: object, ids: Sequence[int], start: int, past: dict[str, np.ndarray]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Run `ids` (batch 1) at positions start.. after `past`: (logits [len(ids), vocab], the next
    past, from the present.* outputs)."""
    n = len(ids)
    feeds = {
        "input_ids": np.asarray([ids], np.int64),
        "attention_mask": np.ones((1, start + n), np.int64),
        "position_ids": np.arange(start, start + n, dtype=np.int64)[None],
        **past,
    }
    names = [o.name for o in sess.get_outputs()]  # type: ignore[attr-defined]
    outs = sess.run(names, feeds)  # type: ignore[attr-defined]
    got = dict(zip(names, outs))
    nxt = {
        name.replace("present.", "past_key_values.", 1): v
        for name, v in got.items()
        if name.startswith("present.")
    }
    return got["logits"][0], nxt
