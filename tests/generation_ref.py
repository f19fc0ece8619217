"""Reference text generation for the decoders with a KV cache (tests/models/*_past-legacy.onnx,
made by tools/build_models.py): a test helper module, not a test file.

`decoder_shapes(path, ...)` binds a decoder's dynamic dims (batch_size, sequence_length,
past_sequence_length, total_sequence_length) to one step's sizes, as `import_onnx(shapes=...)`
takes them.
"""

from __future__ import annotations

from pathlib import Path

# decoders that nnjit does not import yet, and why (tests xfail them, not strictly)
IMPORT_GAPS = {
    "llama_past-legacy": "Cos/Sin (the rotary embedding of position_ids, an input) not converted yet",
}


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
