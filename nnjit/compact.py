"""Which weights a bundle stores compactly (`nnjit compile --weights f32|f16|int8|int4`), in
the format of nnjit/frontend/compact.py. Weight-only: the runtimes dequantize at load, the
kernels are those of the float32 model, except the Wasm matmuls of int8 weights (below).

* The weights a mode compacts are the matrices that contractions and gathers read: the B
  operand of nn_tensor.matmul and gemm (quantized along their contraction axis: int8 with one
  scale per output channel, int4 in blocks) and the tables of nn_tensor.gather (along their
  last axis: an embedding row per scale for int8). Biases, norms and constants stay float32.
* int4 spends INT4_BITS bits per weight element on average, scales (float16) and zero points
  (4 bits) included: `int4_blocks` gives gather tables blocks of INT4_TABLE_BLOCK (embeddings
  are robust to quantization) and matrices blocks of 32, then halves the blocks of the
  matrices (to 16, then 8) in order of size, smallest first, while the budget allows: in a
  transformer the attention projections first, then the FFN's up and down projections (the
  order of their sensitivity, measured on MiniLM-L6; bench/results/compact_weights.md).
* A weight the model itself holds compactly (a float16 initializer, an int8 or 4-bit weight
  of a quantized ONNX model, an int8 table a Gather reads; `ImportedModel.compact`) is stored
  that way in every mode, the integers and scales of the model unchanged; a mode with fewer
  bits re-quantizes it.
* Entries derived from a weight (`#pack=` panels for the Wasm kernels, `#rows=`/`#cols=`
  chunks) are compacted along the same axis; their integers are derived as their values are.
* On Wasm, a matrix stored as int8 with one scale per output column (`int8_blocks`: `--weights
  int8`, or a model's own per-axis int8 weight with zero points 0) is read by the kernels as
  bytes: `mark_int8_weights` marks it for nn-tensor-int8-weights, whose entries `#q8` (the
  int8 [K, N], plain int8 in weights.bin, packed in panels like an f32 weight) and `#q8s` (the
  float32 scales) the compiler makes from these integers and scales.
  A `#i16x2` entry (a MatMulInteger weight in 16-bit pairs for the Wasm integer kernel) keeps
  the model's bytes and zero points ("i16x2"), in every mode.

On WebGPU, a matmul whose B weight is stored as float16 can keep it so on the device:
`mark_f16_weights` tags such fused ops with `F16_ATTR` (the operands read from float16
weights); the kernel's signature then differs from the float32 one's, its space offers the
schedule option `f16` (nnjit/tuning/space.py) and the bundle ships f16 candidates first in
each device class's order (nnjit/tuning/apply.py), which a device without "shader-f16"
skips: it runs the float32 kernels on weights widened at load, as before.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from xdsl.dialects.builtin import DenseArrayBase, IntegerAttr, ModuleOp, i64
from xdsl.ir import BlockArgument

from nnjit.dialects import nn_tensor as nt
from nnjit.errors import NNJitError
from nnjit.frontend.compact import (
    WEIGHT_MODES,
    Blocks,
    Pairs,
    blocks_of,
    dequantize,
    encode,
    pack_pairs,
    quantize,
)
from nnjit.frontend.weights import save_weights
from nnjit.passes.convert_nn_tensor_to_nn_loop import prepare
from nnjit.passes.nn_tensor_int8_weights import INT8_ATTR, parse_int8_key
from nnjit.passes.nn_tensor_integer_matmul import I16X2_TAG
from nnjit.passes.nn_tensor_pack_weights import pack_array, parse_pack_key
from nnjit.passes.nn_tensor_split_weights import COLS_TAG, parse_chunk_key
from nnjit.pipeline import main_func

_BITS = {"f32": 32, "f16": 16, "int8": 8, "int4": 4}


def check_weights_mode(mode: object) -> str:
    if mode not in WEIGHT_MODES:
        raise NNJitError(f"weights={mode!r} is not a weight storage mode",
                         hint=f"choose from {', '.join(WEIGHT_MODES)}")  # fmt: skip
    return str(mode)


INT4_BITS = 5.2
"""Bits per element that `--weights int4` spends on average over the weights it quantizes."""
INT4_TABLE_BLOCK = 64
"""The int4 block of a gather's table (along its rows)."""
INT4_MATRIX_BLOCKS = (32, 16, 8)
"""The int4 blocks of a matrix (along its contraction axis), as the budget allows."""


class TableAxis(int):
    """The axis of a gather's table in `weight_axes` (an int: the axis to quantize along)."""


def weight_axes(module: ModuleOp) -> dict[str, int]:
    """The weights that contractions and gathers read, by key: the axis to quantize along (a
    `TableAxis` for a gather's table)."""
    axes: dict[str, int] = {}

    def note(v: Any, axis: int) -> None:
        if isinstance(v.owner, nt.WeightOp):
            axes.setdefault(v.owner.key.data, axis)

    for op in module.walk():
        if isinstance(op, nt.MatmulOp):
            note(op.rhs, len(nt.shape_of(op.rhs)) - 2)
        elif isinstance(op, nt.GemmOp):
            note(op.b, 1 if op.trans_b.value.data else 0)
        elif isinstance(op, nt.GatherOp):
            note(op.data, TableAxis(len(nt.shape_of(op.data)) - 1))
    return {k: a for k, a in axes.items() if a >= 0}


def _trace(key: str) -> tuple[str, list[Callable[[np.ndarray], np.ndarray]], Callable[[int], int | None]]:
    """(base key, the array functions that derive `key`'s entry from the base's, and how they
    move an axis: None when the axis does not survive as one axis)."""
    packed = parse_pack_key(key)
    if packed is not None:
        base, layout, nr = packed
        root, fns, moved = _trace(base)
        k_axis = 0 if layout == "kn" else 1  # ([N/nr, K, nr] panels keep K as axis 1)
        return root, [*fns, lambda a: pack_array(a, layout, nr)], lambda ax: (1 if moved(ax) == k_axis else None)
    if parse_int8_key(key) is not None:  # (int8 bytes and scales: stored as they are)
        return key, [], lambda ax: ax
    cols, rows = parse_chunk_key(key, COLS_TAG), parse_chunk_key(key)
    if cols is not None or rows is not None:
        base, start, stop = cols or rows  # type: ignore[misc]
        root, fns, moved = _trace(base)
        cut = (lambda a: a[..., start:stop]) if cols else (lambda a: a[start:stop])
        return root, [*fns, cut], moved
    return key, [], lambda ax: ax


def _derive(a: np.ndarray, fns: list[Callable[[np.ndarray], np.ndarray]]) -> np.ndarray:
    for f in fns:
        a = f(a)
    return a


def _from_model(hint: Any, fns: list, moved: Callable[[int], int | None], array: np.ndarray) -> Blocks | str | None:
    """The model's own compact form of a weight, carried through `fns`, if it is exactly `array`."""
    if hint == "f16":
        return "f16"
    axis = moved(hint.axis)
    if axis is None:
        return None
    q = _derive(hint.q, fns)
    scale = _derive(np.broadcast_to(hint.scale, hint.q.shape), fns)
    zero = None if hint.zero is None else _derive(np.broadcast_to(hint.zero, hint.q.shape), fns)
    b = blocks_of(q, scale, zero, axis, hint.block, hint.bits)
    return b if b is not None and np.array_equal(dequantize(b), array) else None


def _pairs(key: str, array: np.ndarray, hints: Mapping[str, Any]) -> Pairs | None:
    """A `#i16x2` entry (nn-tensor-integer-matmul's words) as the integers of the weight it
    packs, when that weight is the model's own 8-bit integers with a unit scale (MatMulInteger's
    B minus its zero points): any mode stores them so, being exact."""
    packed = parse_pack_key(key)
    nr = 0
    if packed is not None and packed[1] == "kn":
        key, _, nr = packed
    base, tag, rest = key.rpartition(I16X2_TAG)
    hint = hints.get(base) if tag and not rest else None
    if hint is None or isinstance(hint, str) or hint.bits != 8 or hint.q.ndim != 2:
        return None
    q = hint.q
    if q.dtype not in (np.int8, np.uint8) or not np.all(np.asarray(hint.scale) == 1):
        return None
    zero = None
    if hint.zero is not None:
        z = np.broadcast_to(hint.zero, q.shape)
        if not np.array_equal(z, np.broadcast_to(z[:1], q.shape)):  # (one zero point per column)
            return None
        zero = np.ascontiguousarray(z[0]).astype(q.dtype)
    v = q.astype(np.int32) - (0 if zero is None else zero.astype(np.int32))
    words = pack_pairs(v)
    if nr:
        if words.shape[1] % nr:
            return None
        words = pack_array(words, "kn", nr)
    return Pairs(np.ascontiguousarray(q), zero, nr) if np.array_equal(words, array) else None


def _int4_bits(n: int, k: int, block: int) -> int:
    """The bits of n 4-bit weights in blocks along an axis of k (a float16 scale and a 4-bit
    zero point per block, a ragged block counting whole)."""
    return 4 * n + (16 + 4) * (n // k) * -(-k // block)


def int4_blocks(weights: Mapping[str, np.ndarray], axes: Mapping[str, int], hints: Mapping[str, Any]) -> dict[str, int]:
    """The int4 block of each weight (by base key) that `--weights int4` quantizes: INT4_BITS
    on average (see the module's docstring)."""
    sizes: dict[str, tuple[int, int]] = {}  # base -> (elements, contraction size)
    for key, array in weights.items():
        base, _, moved = _trace(key)
        hint = hints.get(base)
        if (array.dtype != np.float32 or array.ndim == 0 or array.size < 2 or base not in axes
                or (isinstance(hint, Blocks) and hint.bits <= 4)):  # fmt: skip
            continue
        axis = moved(axes[base])
        if axis is not None:
            sizes[base] = max(sizes.get(base, (0, 0)), (array.size, array.shape[axis]))
    blocks = {b: INT4_TABLE_BLOCK if isinstance(axes[b], TableAxis) else INT4_MATRIX_BLOCKS[0] for b in sizes}
    budget = INT4_BITS * sum(n for n, _ in sizes.values())
    spent = sum(_int4_bits(n, k, blocks[b]) for b, (n, k) in sizes.items())
    order = sorted((s, b) for b, s in sizes.items() if not isinstance(axes[b], TableAxis))
    for block in INT4_MATRIX_BLOCKS[1:]:
        for (n, k), b in order:
            more = _int4_bits(n, k, block) - _int4_bits(n, k, blocks[b])
            if spent + more <= budget:
                blocks[b], spent = block, spent + more
    return blocks


def _choose(key: str, array: np.ndarray, mode: str, axes: Mapping[str, int],
            hints: Mapping[str, Any], blocks: Mapping[str, int] | None = None) -> Blocks | Pairs | str | None:  # fmt: skip
    """How to store one entry: a Blocks, Pairs, "f16", an int8/uint8 array, or None (as it is);
    int4 in the blocks of `blocks` (by base key; float16 scales)."""
    if array.dtype == np.int32 and I16X2_TAG in key:
        return _pairs(key, array, hints)
    base, fns, moved = _trace(key)
    if array.dtype == np.int32 and hints.get(base) in ("int8", "uint8"):
        return array.astype(hints[base])
    if array.dtype != np.float32 or array.ndim == 0 or array.size < 2:
        return None
    form = None
    if base in hints:
        form = _from_model(hints[base], fns, moved, array)
    bits = 16 if form == "f16" else form.bits if isinstance(form, Blocks) else 32
    if _BITS[mode] < bits and base in axes:
        axis = moved(axes[base])
        if mode == "f16":
            form = "f16"
        elif axis is not None and mode == "int4":
            form = quantize(array, axis, 4, (blocks or {}).get(base), half=True)
        elif axis is not None:
            form = quantize(array, axis, _BITS[mode])
    if form == "f16":
        with np.errstate(over="ignore"):
            fits = np.isfinite(array.astype(np.float16)) | ~np.isfinite(array)
        return "f16" if fits.all() else None
    return form


def int8_blocks(key: str, array: np.ndarray, mode: str, axes: Mapping[str, int],
                hints: Mapping[str, Any]) -> Blocks | None:  # fmt: skip
    """The integers and scales of a matrix that `save_compact` stores as int8 with one scale
    per output column (`--weights int8`, or the model's own per-axis int8 weight with zero
    points 0), or None: the Wasm kernels read such a weight as bytes
    (nnjit/passes/nn_tensor_int8_weights.py)."""
    if array.dtype != np.float32 or array.ndim != 2:
        return None
    form = _choose(key, array, mode, axes, hints)
    if not isinstance(form, Blocks) or form.bits != 8 or not form.signed:
        return None
    if form.block < array.shape[form.axis] or (form.zero is not None and np.any(form.zero)):
        return None
    return form


def mark_int8_weights(module: ModuleOp, axis_of: Callable[[str], int | None]) -> int:
    """Marks the nn_tensor.weight ops (mutated) whose key `axis_of` gives a contraction axis
    for (a weight stored as int8 per column, quantized along that axis) with `INT8_ATTR`, for
    nn-tensor-int8-weights; returns how many."""
    n = 0
    for op in module.walk():
        if isinstance(op, nt.WeightOp):
            axis = axis_of(op.key.data)
            if axis is not None:
                op.attributes[INT8_ATTR] = IntegerAttr(axis, i64)
                n += 1
    return n


F16_ATTR = "nnjit.f16_weights"
"""A fused matmul's attribute: the operand numbers (array<i64>) read from weights stored as
float16 (its B operand), which a WebGPU kernel may read as f16 (schedule f16)."""


def stored_f16(key: str, array: np.ndarray, mode: str, axes: Mapping[str, int], hints: Mapping[str, Any]) -> bool:
    """Whether `save_compact` stores weight `key` as float16 (only --weights f16 and a model's
    own float16 weights can be: other weights are not quantized here)."""
    if mode != "f16" and hints.get(_trace(key)[0]) != "f16":
        return False
    form = _choose(key, array, mode, axes, hints)
    return isinstance(form, str) and form == "f16"


def _b_operand(fused: nt.FusedOp) -> int | None:
    """The operand number of a fused matmul's B (through transposes), or None."""
    roots = [op for op in fused.body.block.ops if isinstance(op, (nt.MatmulOp, nt.GemmOp))]
    if fused.kind.data != "matmul" or len(roots) != 1:
        return None
    v = roots[0].b if isinstance(roots[0], nt.GemmOp) else roots[0].rhs
    while isinstance(v.owner, nt.TransposeOp):
        v = v.owner.input
    return v.index if isinstance(v, BlockArgument) else None


def mark_f16_weights(module: ModuleOp, is_f16: Callable[[str], bool]) -> int:
    """Tags the fused matmuls of a fused nn_tensor module (mutated; convert-nn-tensor-to-
    nn-loop's `prepare` is applied first) whose B operand is a weight that `is_f16(key)`
    says is stored as float16 with `F16_ATTR`; returns how many."""
    main = main_func(module)
    prepare(main)
    n = 0
    for fused in [op for op in main.body.block.ops if isinstance(op, nt.FusedOp)]:
        b = _b_operand(fused)
        if b is None:
            continue
        w = fused.inputs[b].owner
        if isinstance(w, nt.WeightOp) and is_f16(w.key.data):
            fused.attributes[F16_ATTR] = DenseArrayBase.from_list(i64, [b])
            n += 1
    return n


def f16_operands(fused: nt.FusedOp) -> tuple[int, ...]:
    """The operands of a fused op tagged as read from float16 weights (`F16_ATTR`)."""
    a = fused.attributes.get(F16_ATTR)
    return tuple(int(x) for x in a.get_values()) if isinstance(a, DenseArrayBase) else ()


def save_compact(weights: Mapping[str, np.ndarray], path: str | os.PathLike[str], mode: str,
                 axes: Mapping[str, int], hints: Mapping[str, Any]) -> dict[str, dict[str, Any]]:  # fmt: skip
    """`save_weights` with the entries `mode` and the model's own compact weights (`hints`)
    store compactly; returns the index (compact entries keep their float32 dtype and shape)."""
    out: dict[str, np.ndarray] = {}
    compact: dict[str, tuple[list[int], dict[str, Any]]] = {}
    blocks = int4_blocks(weights, axes, hints) if mode == "int4" else {}
    for key, array in weights.items():
        form = _choose(key, array, mode, axes, hints, blocks)
        if form is None:
            out[key] = array
            continue
        raw, desc = encode(array if isinstance(form, str) else form)
        out[key] = raw
        compact[key] = ([int(d) for d in array.shape], desc)
    index = save_weights(out, path)
    for key, (shape, desc) in compact.items():
        dtype = "int32" if desc["format"] in ("int8", "uint8", "i16x2") else "float32"
        index[key].update(dtype=dtype, shape=shape, compact=desc)
    return index
