"""Decoders that generate with a KV cache: recognising them, the graph change that lets the
cache stay in place, and the shape variants a generation bundle compiles.

A decoder exported with a cache (HF names: inputs `input_ids`, `attention_mask`,
`position_ids`, `past_key_values.N.key/value` [batch, heads, past, head_dim]; outputs `logits`,
`present.N.key/value`) computes each `present` as `Concat(past, new, axis=2)`. Fed back as the
next step's past, that is a copy of the whole cache per token. nnjit changes the graph so that
`present.N.*` is the new rows alone ([batch, heads, sequence, head_dim]); the runtime keeps one
cache per layer on the device and writes the new rows into it in place, at their positions
(nnjit/runtime/generate.py, nnjit/web/generate.js).

The cache has a few compiled sizes (buckets) and holds masked holes: at position p with a
cache of P >= p + 1 rows, rows [0, p) are the tokens so far, rows [p, P) are masked out by
`attention_mask` (zeros there), and the new token is the Concat's row P. Prefill runs the
prompt (padded up to a prompt bucket S, masked) against a past of one masked row. So a
generation bundle compiles two families of variants (all sharing one weights file):

    prefill: sequence = S (prompt buckets), past = 1, total = S + 1
    decode:  sequence = 1, past = P (cache buckets), total = P + 1
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass

import onnx

from nnjit.errors import NNJitError
from nnjit.frontend.dynamic import (
    DEFAULT_LENGTHS,
    DEFAULT_MAX_LENGTH,
    MAX_VARIANTS,
    Dim,
    default_max_length,
    dynamic_dims,
)
from nnjit.frontend.onnx_import import MAX_MODEL_FILE_BYTES

PAST = re.compile(r"past_key_values\.(\d+)\.(key|value)")
CACHE_AXIS = 2
MIN_CACHE = 8
"""The smallest cache bucket (below it a decode step costs the same anyway)."""


@dataclass
class GenerationDims:
    """The names of the decoder's dynamic dims, found from where they appear."""

    batch: str
    sequence: str  # input_ids axis 1
    past: str  # past_key_values.*: axis 2
    total: str  # attention_mask axis 1


def _load(model: str | os.PathLike | bytes) -> onnx.ModelProto | None:
    try:
        if isinstance(model, (bytes, bytearray)):
            return onnx.load_model_from_string(bytes(model))
        path = os.fspath(model)
        if not os.path.isfile(path) or os.path.getsize(path) > MAX_MODEL_FILE_BYTES:
            return None
        return onnx.load(path)
    except Exception:  # noqa: BLE001 - import_onnx names the problem
        return None


def cache_pairs(graph: onnx.GraphProto) -> list[tuple[str, str]]:
    """(past input, present output) of every cached key/value, in layer order; [] when the
    graph has no `past_key_values.N.*` input."""
    inits = {t.name for t in graph.initializer}
    outs = {o.name for o in graph.output}
    pairs = []
    for vi in graph.input:
        m = PAST.fullmatch(vi.name)
        if m and vi.name not in inits:
            present = f"present.{m[1]}.{m[2]}"
            if present not in outs:
                raise NNJitError(f"input '{vi.name}' has no output '{present}'",
                                 hint="export the decoder with HF's cache names (past_key_values.N.key/value "
                                      "in, present.N.key/value out)")  # fmt: skip
            pairs.append((int(m[1]), m[2] == "value", vi.name, present))
    return [(p, q) for _, _, p, q in sorted(pairs)]


def is_generation(model: str | os.PathLike | bytes | onnx.ModelProto) -> bool:
    """Whether the model is a decoder with a cache (it has `past_key_values.N.*` inputs)."""
    proto = model if isinstance(model, onnx.ModelProto) else _load(model)
    return proto is not None and any(PAST.fullmatch(i.name) for i in proto.graph.input)


def _dims(graph: onnx.GraphProto, pairs: list[tuple[str, str]]) -> GenerationDims:
    shapes = {vi.name: [d.dim_param if not d.HasField("dim_value") else d.dim_value
                        for d in vi.type.tensor_type.shape.dim] for vi in graph.input}  # fmt: skip

    def dim(name: str, axis: int, rank: int) -> str:
        shape = shapes.get(name)
        if shape is None:
            raise NNJitError(f"a decoder with a cache needs an input '{name}'",
                             hint="inputs: input_ids, attention_mask, position_ids, past_key_values.N.key/value")  # fmt: skip
        if len(shape) != rank or not isinstance(shape[axis], str) or not shape[axis]:
            raise NNJitError(f"input '{name}' has shape {shape}: generation needs a named dynamic dim at axis "
                             f"{axis} of {rank}", hint="export with dynamic axes (batch, sequence, past)")  # fmt: skip
        return shape[axis]

    d = GenerationDims(dim("input_ids", 0, 2), dim("input_ids", 1, 2), dim(pairs[0][0], CACHE_AXIS, 4),
                       dim("attention_mask", 1, 2))  # fmt: skip
    if "position_ids" in shapes and dim("position_ids", 1, 2) != d.sequence:
        raise NNJitError(f"position_ids axis 1 is '{shapes['position_ids'][1]}', input_ids axis 1 '{d.sequence}'")
    if len({d.sequence, d.past, d.total}) != 3:
        raise NNJitError(f"the sequence, past and total lengths share names ({d.sequence}, {d.past}, {d.total})",
                         hint="export with distinct dynamic axes for them")  # fmt: skip
    for past, _ in pairs:
        if dim(past, 0, 4) != d.batch or dim(past, CACHE_AXIS, 4) != d.past:
            raise NNJitError(f"input '{past}' has shape {shapes[past]}: its batch and past dims differ from "
                             f"the others' ({d.batch}, {d.past})")  # fmt: skip
    return d


def rewrite_for_cache(proto: onnx.ModelProto) -> tuple[onnx.ModelProto, list[tuple[str, str]], GenerationDims]:
    """A copy of the decoder whose `present.N.*` outputs are the new rows alone (the second
    input of the Concat that made them), with the cache pairs and the dims' names."""
    model = onnx.ModelProto()
    model.CopyFrom(proto)
    graph = model.graph
    pairs = cache_pairs(graph)
    dims = _dims(graph, pairs)
    producer = {o: n for n in graph.node for o in n.output}

    def source(name: str) -> str:
        """name, or what it copies (through Identity and one-input Concat nodes)."""
        node = producer.get(name)
        while node is not None and (node.op_type == "Identity" or (node.op_type == "Concat" and len(node.input) == 1)):
            name = node.input[0]
            node = producer.get(name)
        return name

    for past, present in pairs:
        node = producer.get(source(present))
        axis = next((a.i for a in node.attribute if a.name == "axis"), None) if node is not None else None
        if (node is None or node.op_type != "Concat" or len(node.input) != 2 or source(node.input[0]) != past
                or axis not in (CACHE_AXIS, CACHE_AXIS - 4)):  # fmt: skip
            raise NNJitError(
                f"output '{present}' is not Concat('{past}', new rows, axis={CACHE_AXIS})",
                where=f"node '{node.name}' ({node.op_type})" if node is not None else None,
                hint="nnjit keeps the cache in place by changing that Concat; export the decoder as HF "
                "does (torch.onnx.export of the model with its past_key_values)",
            )
        out = f"{present}::nnjit_full"
        old = node.output[0]
        node.output[0] = out
        for n in graph.node:  # (other readers of the whole present read the renamed value)
            for k, name in enumerate(n.input):
                if name == old:
                    n.input[k] = out
        graph.node.append(onnx.helper.make_node("Identity", [node.input[1]], [present],
                                                name=f"{present}::nnjit_new"))  # fmt: skip
        for o in graph.output:
            if o.name == present:
                shape = o.type.tensor_type.shape
                if len(shape.dim) == 4:
                    shape.dim[CACHE_AXIS].Clear()
                    shape.dim[CACHE_AXIS].dim_param = dims.sequence
    return model, pairs, dims


def last_row_logits(model: onnx.ModelProto, dims: GenerationDims) -> str | None:
    """Makes the LM head compute the logits of one position, chosen by a new int64 input [1]
    (the prefill's last prompt token; 0 in a decode step), when `logits` is a MatMul of the
    hidden states [batch, sequence, hidden] by a weight: a prompt of S tokens then costs one
    row of the (large) LM head, not S. Returns the new input's name (None: left as it was)."""
    graph = model.graph
    producer = {o: n for n in graph.node for o in n.output}
    inits = {t.name: t for t in graph.initializer}
    node = producer.get("logits")
    if node is None or node.op_type != "MatMul" or node.input[1] not in inits or len(inits[node.input[1]].dims) != 2:
        return None
    taken = {v.name for v in graph.input} | set(inits) | {o for n in graph.node for o in n.output}
    name = next(f"nnjit_logits_position{k or ''}" for k in range(len(taken) + 1)
                if f"nnjit_logits_position{k or ''}" not in taken)  # fmt: skip
    graph.input.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.INT64, [1]))
    row = f"{name}::hidden"
    at = next(i for i, n in enumerate(graph.node) if n is node)
    graph.node.insert(at, onnx.helper.make_node("Gather", [node.input[0], name], [row], axis=1, name=row))
    node = graph.node[at + 1]
    node.input[0] = row
    for o in graph.output:
        if o.name == "logits" and len(o.type.tensor_type.shape.dim) == 3:
            d = o.type.tensor_type.shape.dim[1]
            d.Clear()
            d.dim_value = 1
    return name


def generation_binds(dims: GenerationDims, lengths: list[int] | None, max_length: int | None,
                     max_batch: int | None, default_max: int = DEFAULT_MAX_LENGTH,
                     ) -> tuple[list[dict[str, int]], list[int], list[int]]:  # fmt: skip
    """(binds, prefill variant indices, decode variant indices): prompt buckets from `lengths`
    (default DEFAULT_LENGTHS) up to `max_length` tokens in all (default: the largest of
    `lengths`, else `default_max`, the model's position limit), cache buckets the same sizes
    from MIN_CACHE up, and max_length."""
    if max_batch not in (None, 1):
        raise NNJitError(f"max_batch={max_batch}: generation runs one sequence at a time",
                         hint="compile with --max-batch 1 (the default)")  # fmt: skip
    top = max_length or (max(lengths) if lengths else default_max)
    base = sorted({n for n in (lengths or DEFAULT_LENGTHS) if n <= top} | {top})
    prompts = base if not lengths else sorted({n for n in lengths if n <= top})
    caches = sorted({n for n in base if n >= MIN_CACHE} | {top})
    if len(prompts) + len(caches) > MAX_VARIANTS:
        raise NNJitError(f"{len(prompts) + len(caches)} shape variants, over {MAX_VARIANTS}",
                         hint="give fewer --lengths")  # fmt: skip
    binds = [{dims.batch: 1, dims.sequence: s, dims.past: 1, dims.total: s + 1} for s in prompts]
    binds += [{dims.batch: 1, dims.sequence: 1, dims.past: p, dims.total: p + 1} for p in caches]
    return binds, list(range(len(prompts))), list(range(len(prompts), len(binds)))


def generation_table(pairs: list[tuple[str, str]], dims: GenerationDims, prefill: list[int],
                     decode: list[int], max_length: int) -> dict:  # fmt: skip
    """The plan's "generation" table (the runtimes read it)."""
    return {
        "cache": [{"past": p, "present": q} for p, q in pairs],
        "axis": CACHE_AXIS,
        "dims": {"batch": dims.batch, "sequence": dims.sequence, "past": dims.past, "total": dims.total},
        "prefill": prefill,
        "decode": decode,
        "max_length": max_length,
        "logits": "logits",
    }


def prepare_generation(model: str | os.PathLike | bytes, lengths: list[int] | None, max_length: int | None,
                       max_batch: int | None) -> tuple[bytes, dict, dict[str, Dim], list[dict[str, int]]]:  # fmt: skip
    """(the changed model, its "generation" table, its dims as dynamic_dims gives them, the
    binds of its variants in order) for compile_model."""
    proto = _load(model)
    if proto is None:
        raise NNJitError("the decoder cannot be read as ONNX", hint="check the file with onnx.checker")
    changed, pairs, gdims = rewrite_for_cache(proto)
    position = last_row_logits(changed, gdims)
    data = changed.SerializeToString()
    binds, prefill, decode = generation_binds(gdims, lengths, max_length, max_batch, default_max_length(proto))
    dims = dynamic_dims(data, lengths=[1], max_length=1)
    for name, d in dims.items():
        d.pad = name == gdims.total
        d.sizes = sorted({b[name] for b in binds if name in b})
    missing = set(dims) - set(asdict(gdims).values())
    if missing:
        raise NNJitError(f"dynamic dims {sorted(missing)} are none of batch, sequence, past and total length",
                         hint="fix them with --shape NAME=DIMS")  # fmt: skip
    top = max(b[gdims.past] for b in binds)
    table = generation_table(pairs, gdims, prefill, decode, top)
    if position is not None:
        table["logits_position"] = position
    return data, table, dims, binds


__all__ = ["is_generation", "rewrite_for_cache", "generation_binds", "generation_table", "prepare_generation",
           "GenerationDims", "CACHE_AXIS"]  # fmt: skip
