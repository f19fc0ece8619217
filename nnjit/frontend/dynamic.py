"""A model's dynamic input dims and the shape variants a variable-length bundle compiles.

nnjit's kernels have static shapes. A model whose inputs have dynamic dims (HF exporters write
`batch_size` and `sequence_length`) compiles, unless `--shape` fixes them, into one bundle of
*variants*: the model at a few sizes of each dynamic dim (length buckets), all sharing one
weights file. At run time the runtime takes the smallest variant that holds the input, pads the
inputs up to it and cuts the outputs back (nnjit/runtime/variants.py).

Padding is exact only where the model masks the padded positions out: a length dim is padded
when an input whose name holds "mask" (attention_mask) has it; a batch dim (axis 0) always is
(its rows do not mix). A dim without a mask runs its listed sizes exactly, and only those.

The trade-off against symbolic sizes in the kernels (measured, docs/variable_length.md): every
kernel stays specialised and as fast as a fixed-shape compile, at the price of kernel files per
variant (small next to the weights) and tuning per variant.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import onnx

from nnjit.errors import NNJitError
from nnjit.frontend.onnx_import import MAX_MODEL_FILE_BYTES

DEFAULT_LENGTHS = (1, 8, 16, 32, 48, 64, 96, 128, 192, 256, 384, 512)
"""The length buckets of a variable-length bundle (up to --max-length, which is added)."""
DEFAULT_MAX_LENGTH = 512
MAX_VARIANTS = 64


@dataclass
class Dim:
    """One dynamic dim of the model's inputs: which (input, axis) pairs carry it, whether a
    shorter input may be padded up to a compiled size, and the compiled sizes."""

    name: str
    role: str  # "batch" (axis 0) | "length"
    inputs: list[tuple[str, int]] = field(default_factory=list)
    pad: bool = False
    sizes: list[int] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"role": self.role, "pad": self.pad, "sizes": self.sizes,
                "inputs": [list(x) for x in self.inputs]}  # fmt: skip


def _proto(model: str | os.PathLike | bytes) -> onnx.ModelProto | None:
    """The model's graph without its external data, or None where it cannot be read."""
    try:
        if isinstance(model, (bytes, bytearray)):
            proto = onnx.load_model_from_string(bytes(model))
        else:
            path = os.fspath(model)
            # (only a regular file of a model's size: /dev/zero or a FIFO would never end;
            # import_onnx names what is wrong with anything else)
            if not os.path.isfile(path) or os.path.getsize(path) > MAX_MODEL_FILE_BYTES:
                return None
            proto = onnx.load(path, load_external_data=False)
    except Exception:  # noqa: BLE001 - import_onnx names the problem
        return None
    return proto


_POSITION_TABLE_NAMES = ("position", "wpe", "pos_emb")
"""Initializer names of learned position tables as HF exporters keep them
(`embeddings.position_embeddings.weight`, GPT-2's `transformer.wpe.weight`)."""


def position_limit(model: str | os.PathLike | bytes | onnx.ModelProto) -> int | None:
    """The most positions the model has embeddings for (the default --max-length), or None
    where it has no learned position table (rotary models, or a name nnjit does not know).

    The table is a 2-D initializer read by a Gather whose name says position; its rows are the
    limit, less the offset RoBERTa-style models add to their position ids (padding_idx + 1 = 2:
    they count positions with a CumSum over the mask, and their tables have 514 rows for 512
    tokens)."""
    proto = model if isinstance(model, onnx.ModelProto) else _proto(model)
    if proto is None:
        return None
    tables = {t.name: t.dims[0] for t in proto.graph.initializer
              if len(t.dims) == 2 and any(k in t.name.lower() for k in _POSITION_TABLE_NAMES)}  # fmt: skip
    rows = [tables[n.input[0]] for n in proto.graph.node if n.op_type == "Gather" and n.input and n.input[0] in tables]
    if not rows:
        return None
    offset = 2 if any(n.op_type == "CumSum" for n in proto.graph.node) else 0
    limit = min(rows) - offset
    return limit if limit >= 1 else None


def _input_dims(model: str | os.PathLike | bytes | onnx.ModelProto, outputs: bool = False) -> list[tuple[str, list]]:
    """(name, dims) of the graph's real inputs (not initializers), or of its outputs; a dim is
    an int or a name ("" for an unnamed dynamic dim)."""
    proto = model if isinstance(model, onnx.ModelProto) else _proto(model)
    if proto is None:
        return []
    inits = {t.name for t in proto.graph.initializer}
    out = []
    for vi in proto.graph.output if outputs else proto.graph.input:
        if vi.name in inits or not vi.type.tensor_type.HasField("shape"):
            continue
        dims = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in vi.type.tensor_type.shape.dim]
        out.append((vi.name, dims))
    return out


def dynamic_dims(model: str | os.PathLike | bytes, *, lengths: Sequence[int] | None = None,
                 max_length: int | None = None, max_batch: int | None = None) -> dict[str, Dim]:  # fmt: skip
    """The model's dynamic input dims with the sizes to compile ({} for a static model)."""
    dims: dict[str, Dim] = {}
    masked: set[str] = set()
    proto = _proto(model)
    for name, shape in _input_dims(proto) if proto is not None else ():
        for axis, d in enumerate(shape):
            if isinstance(d, int):
                continue  # (static; import_onnx refuses a bad size)
            key = d or f"{name}:{axis}"
            dim = dims.setdefault(key, Dim(key, "batch" if axis == 0 else "length"))
            dim.inputs.append((name, axis))
            if "mask" in name.lower():
                masked.add(key)
    if not dims:
        return {}
    top = default_max_length(proto) if max_length is None else max_length
    if lengths is not None:
        base = sorted(set(int(n) for n in lengths))
        top = max(base) if max_length is None else top
    else:
        base = list(DEFAULT_LENGTHS)
    for n in [*base, top]:
        if not 1 <= n <= 1 << 20:
            raise NNJitError(f"length {n}: give lengths from 1 to {1 << 20}")
    length_sizes = sorted({n for n in base if n <= top} | {top})
    b = 1 if max_batch is None else max_batch
    batch_sizes = sorted({1 << k for k in range(max(0, b.bit_length())) if 1 << k < b} | {b})
    for dim in dims.values():
        dim.pad = dim.role == "batch" or dim.name in masked
        dim.sizes = batch_sizes if dim.role == "batch" else length_sizes
    count = math.prod(len(d.sizes) for d in dims.values())
    if count > MAX_VARIANTS:
        raise NNJitError(
            f"{count} shape variants for the dynamic dims {sorted(dims)}, over {MAX_VARIANTS}",
            hint="give fewer sizes (--lengths 16,128 --max-batch 1), or fix the shape with --shape",
        )
    return dims


def default_max_length(model: str | os.PathLike | bytes | onnx.ModelProto | None) -> int:
    """--max-length when none is given: the model's position limit where it has one, else
    DEFAULT_MAX_LENGTH."""
    limit = position_limit(model) if model is not None else None
    return DEFAULT_MAX_LENGTH if limit is None else limit


def variants(dims: dict[str, Dim]) -> list[dict[str, int]]:
    """Every combination of the dims' sizes, cheapest (fewest elements) first."""
    names = list(dims)
    combos = [dict(zip(names, c)) for c in itertools.product(*(dims[n].sizes for n in names))]
    return sorted(combos, key=lambda b: (math.prod(b.values()), [b[n] for n in names]))


def bound_shapes(model: str | os.PathLike | bytes, bind: dict[str, int]) -> dict[str, tuple[int, ...]]:
    """Input shapes for import_onnx with every dynamic dim set as `bind` says."""
    shapes = {}
    for name, shape in _input_dims(model):
        if all(isinstance(d, int) for d in shape):
            continue
        shapes[name] = tuple(d if isinstance(d, int) else bind[d or f"{name}:{axis}"] for axis, d in enumerate(shape))
    return shapes


def output_dims(model: str | os.PathLike | bytes, variant_models: list[dict], binds: list[dict[str, int]],
                dims: dict[str, Dim]) -> dict:  # fmt: skip
    """{output name: [[axis, dim name], ...]}: the output axes that follow a dynamic dim (their
    size is the dim's in every variant), so the runtime cuts them back to the input's size.
    An output axis whose size changes between variants in any other way cannot be cut back:
    that is an error when the bundle pads (an exact-size bundle returns it whole)."""
    static = {n: [a for a, d in enumerate(ds) if isinstance(d, int)]
              for n, ds in _input_dims(model, outputs=True)}  # fmt: skip
    out: dict[str, list] = {}
    for k, info in enumerate(variant_models[0]["outputs"]):
        axes = []
        for axis in range(len(info["shape"])):
            if axis in static.get(info["name"], ()):
                continue
            sizes = [m["outputs"][k]["shape"][axis] for m in variant_models]
            match = [n for n in dims if all(b[n] == s for b, s in zip(binds, sizes))]
            if not match and len(set(sizes)) == 1:
                continue  # fixed
            if not match:
                if any(d.pad for d in dims.values()):
                    raise NNJitError(
                        f"output '{info['name']}' axis {axis} has sizes {sizes} in the shape variants "
                        f"{binds}, which follow no input dim, so nnjit cannot cut padded outputs back",
                        hint="fix the input shape with --shape",
                    )
                continue
            role = "batch" if axis == 0 else "length"
            match.sort(key=lambda n: dims[n].role != role)
            axes.append([axis, match[0]])
        if axes:
            out[info["name"]] = axes
    return out


__all__ = ["Dim", "DEFAULT_LENGTHS", "dynamic_dims", "variants", "bound_shapes", "output_dims"]
