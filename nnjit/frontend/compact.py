"""Compact weights in weights.bin: float16, and 8- or 4-bit integers with scales. A runtime
dequantizes them to float32 when it loads the bundle, so the kernels are those of the float32
model (nnjit/web/compact.js is the browser's copy of `decode`).

A compact entry of the weights index keeps the weight's logical "dtype" ("float32"; "int32"
for "int8" and "uint8") and "shape", and says how its `nbytes` bytes at `offset` hold it:

    "compact": {"format": "int8" | "uint8"}
        one byte per value (an int8/uint8 tensor of a quantized model that kernels read as
        int32, e.g. a quantized embedding table that a Gather reads before DequantizeLinear).
    "compact": {"format": "f16"}
        float16 values, row-major (nbytes = 2 * size).
    "compact": {"format": "i16x2", "rows": K, "signed": bool, "zero": bool, "panel": nr}
        the int32 words [ceil(K / 2), N] of nn_tensor.matmul_i16's B (word [j, n]: the 16-bit
        values v[2j, n] low and v[2j+1, n] high, 0 past K) for v = q - zero: q the [K, N]
        integers, one byte each (int8 when "signed", else uint8), row-major, padded with
        zeros to 4 bytes; then (when "zero") N zero points of q's type, one per column
        (a MatMulInteger weight on the Wasm integer kernel; nnjit/passes/nn_tensor_integer_matmul.py).
        With "panel" (nr > 0), the words are stored in [N/nr, ceil(K / 2), nr] panels
        (nn-tensor-pack-weights' layout): word [p, j, c] = word [j, p*nr + c].
    (no "compact", dtype "int8") under a key `W#q8`, `W#q8t` (or their `#pack=kn8` panels)
        the int8 [K, N] of a weight stored as "q8" per output column (one block along the
        contraction axis, no zero points), transposed for `#q8t` (W stored [N, K]), that the
        Wasm matmul kernels read as bytes; `W#q8s` the float32 scales [N] (nnjit/passes/
        nn_tensor_int8_weights.py). Plain entries: the runtimes copy the bytes unwidened.
    "compact": {"format": "q8" | "q4", "axis": a, "block": B, "signed": bool,
                "zero": bool | "u4", "scale": "f32" | "f16" (optional, "f32" if absent)}
        q: the integers, row-major: q8 one byte each (int8 when "signed", else uint8), q4
           two per byte, the low nibble first (0..15); padded with zeros to 4 bytes;
        scales: float32 (4 bytes each) or float16 ("scale": "f16", 2 bytes each), the
           weight's shape with axis a cut into ceil(shape[a] / B) blocks (one scale per
           block of B elements along a), row-major, right after q;
        zero points, right after the scales: with "zero": true one byte per scale, of q's
           type; with "zero": "u4" (q4 only) two per byte, the low nibble first (0..15),
           the last byte's high nibble 0 when there are an odd number.
        value = float(q - zero) * scale, zero = 0 without zero points (8 for q4), as
        onnxruntime's DequantizeLinear and MatMulNBits compute it.

`encode` makes an entry's bytes and "compact" field from a `Blocks` (the integers, scales and
zero points: what `quantize` makes of a float32 array, or what a quantized ONNX model holds);
`load_compact` reads a weights file as `nnjit.frontend.weights.load_weights` does, with the
compact entries decoded. This module imports neither onnx nor xDSL (the runtimes use it).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnjit.errors import ModelFormatError
from nnjit.frontend.weights import load_weights

WEIGHT_MODES = ("f32", "f16", "int8", "int4")
"""The storage modes of `nnjit compile --weights` (nnjit/compact.py chooses the entries)."""
INT4_BLOCK = 32
"""Elements per scale of `quantize(..., bits=4)`: blocks along the contraction axis."""
INT4_CLIP_SEARCH = (1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6)
"""The ranges `quantize(..., bits=4)` tries per block (fractions of [min, max] with 0): the one
of least squared error wins (values past it saturate)."""
INT4_REFITS = 2
"""Least-squares refits of each 4-bit block's scale and zero point after the range search."""


@dataclass
class Blocks:
    """Integers `q` (the weight's shape) with one scale (and zero point) per block of `block`
    elements along `axis`: `scale` and `zero` have q's shape with that axis in blocks."""

    q: np.ndarray
    scale: np.ndarray
    zero: np.ndarray | None
    axis: int
    block: int
    bits: int

    @property
    def signed(self) -> bool:
        return self.bits == 8 and self.q.dtype == np.int8


@dataclass
class Pairs:
    """A matrix q [K, N] of int8/uint8 with a zero point per column (or none), stored for
    nn_tensor.matmul_i16 as the 16-bit pairs of q - zero ("i16x2"), in panels of `panel`
    columns when > 0."""

    q: np.ndarray
    zero: np.ndarray | None
    panel: int = 0


def pack_pairs(v: np.ndarray) -> np.ndarray:
    """[K, N] values of int16 range -> [ceil(K / 2), N] int32 words: word [j, n] holds v[2j, n]
    in its low and v[2j+1, n] in its high 16 bits (0 past K)."""
    k, n = v.shape
    if k % 2:
        v = np.vstack([v, np.zeros((1, n), v.dtype)])
    pairs = np.ascontiguousarray(v.astype("<i2").reshape(-1, 2, n).transpose(0, 2, 1))
    return pairs.view("<i4").reshape(-1, n).astype(np.int32)


def pack_quads(v: np.ndarray) -> np.ndarray:
    """[K, N] values of int8 range -> [ceil(K / 4) + 1, N] int32 words (nn_tensor.matmul_i8's
    B, "i8x4"): word [j, n] holds v[4j + i, n] as its byte i, low first (0 past K); the last
    row is -256 * sum_k v[k, n] (the kernel's activations are offset by 256)."""
    k, n = v.shape
    pad = -k % 4
    if pad:
        v = np.vstack([v, np.zeros((pad, n), v.dtype)])
    quads = np.ascontiguousarray(v.astype(np.int8).reshape(-1, 4, n).transpose(0, 2, 1))
    words = quads.view("<i4").reshape(-1, n).astype(np.int32)
    bias = (-256 * v.astype(np.int64).sum(axis=0)).astype(np.int32)
    return np.vstack([words, bias[None, :]])


def _expand(a: np.ndarray, axis: int, block: int, size: int) -> np.ndarray:
    return np.take(np.repeat(a, block, axis=axis), np.arange(size), axis=axis)


def dequantize(b: Blocks) -> np.ndarray:
    """float32(q - zero) * scale, per element."""
    size = b.q.shape[b.axis]
    d = b.q.astype(np.int32)
    if b.zero is not None:
        d = d - _expand(b.zero.astype(np.int32), b.axis, b.block, size)
    elif b.bits == 4:
        d = d - 8
    return d.astype(np.float32) * _expand(b.scale.astype(np.float32), b.axis, b.block, size)


def quantize(w: np.ndarray, axis: int, bits: int, block: int | None = None, half: bool = False) -> Blocks:
    """Weight-only quantization of a float32 array along `axis` (its contraction axis):
    8 bits symmetric with one scale per output channel (all of `axis`: scale = max|w| / 127),
    4 bits asymmetric in blocks of `block` (INT4_BLOCK by default; `_q4` chooses each block's
    scale and zero point), the scales float16 when `half` and every block's scale is a
    positive finite float16 (else float32). Halves round to even, as onnxruntime's quantizers do."""
    w = np.asarray(w, np.float32)
    k = w.shape[axis]
    block = k if bits == 8 else block or INT4_BLOCK
    nb = -(-k // block)
    pad = [(0, 0)] * w.ndim
    pad[axis] = (0, nb * block - k)
    wp = np.pad(w, pad)
    shape = (*wp.shape[:axis], nb, block, *wp.shape[axis + 1 :])
    g = wp.reshape(shape)
    if bits == 8:
        scale = np.abs(g).max(axis=axis + 1) / np.float32(127)
        scale = np.where(scale > 0, scale, np.float32(1)).astype(np.float32)
        q = np.clip(np.rint(g / np.expand_dims(scale, axis + 1)), -127, 127).astype(np.int8)
        return Blocks(q.reshape(wp.shape).take(np.arange(k), axis=axis), scale, None, axis, block, 8)
    rows = np.moveaxis(g, axis + 1, -1)  # [..., nb, ..., block]
    q, scale, zero = _q4(rows.reshape(-1, block), half)
    q = np.moveaxis(q.reshape(rows.shape), -1, axis + 1).reshape(wp.shape).take(np.arange(k), axis=axis)
    sshape = rows.shape[:-1]
    return Blocks(np.ascontiguousarray(q), scale.reshape(sshape), zero.reshape(sshape), axis, block, 4)


def _q4(rows: np.ndarray, half: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(q, scale, zero) of 4-bit blocks (the rows): per block, of least squared error among
    the ranges INT4_CLIP_SEARCH (scale = (hi - lo) / 15, zero = round(-lo / scale), [lo, hi]
    a fraction of the block's [min, max] with 0; values past it saturate), then INT4_REFITS
    least-squares refits of (scale, zero) to the integers of the best so far (a refit that
    does not lower the error is dropped). Scales round to float16 when `half` (see quantize)."""
    lo0, hi0 = np.minimum(rows.min(axis=1), 0), np.maximum(rows.max(axis=1), 0)
    if half:
        with np.errstate(over="ignore"):
            top = ((hi0 - lo0) / np.float32(15)).astype(np.float16)
            low = ((hi0 - lo0) * np.float32(min(INT4_CLIP_SEARCH) / 15)).astype(np.float16)
        half = bool(np.isfinite(top).all() and ((low > 0) | (hi0 == lo0)).all())
    stype = np.float16 if half else np.float32

    def stored(scale: np.ndarray) -> np.ndarray:
        return np.where(scale > 0, scale, np.float32(1)).astype(stype).astype(np.float32)

    def fit(scale: np.ndarray, zero: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        bad = ~(np.isfinite(scale) & (scale > 0))  # (a refit's scale out of float16's range)
        scale = np.where(bad, np.float32(1), scale)
        zero = np.clip(np.rint(np.where(bad, 0, zero)), 0, 15).astype(np.uint8)
        q = np.clip(np.rint(rows / scale[:, None]) + zero[:, None], 0, 15).astype(np.uint8)
        err = (((q.astype(np.float32) - zero[:, None]) * scale[:, None] - rows) ** 2).sum(axis=1)
        return np.where(bad, np.float32(np.inf), err), q, scale, zero

    def keep(best: list[np.ndarray], new: tuple[np.ndarray, ...]) -> list[np.ndarray]:
        better = new[0] < best[0]
        return [np.where(better[:, None] if a.ndim == 2 else better, b, a) for a, b in zip(best, new)]

    best: list[np.ndarray] = []
    for shrink in INT4_CLIP_SEARCH:
        lo, hi = lo0 * np.float32(shrink), hi0 * np.float32(shrink)
        scale = stored(((hi - lo) / np.float32(15)).astype(np.float32))
        new = fit(scale, -lo / scale)
        best = keep(best, new) if best else list(new)
    for _ in range(INT4_REFITS):  # rows ~ a * q + b over each block: scale a, zero -b / a
        q = best[1].astype(np.float64)
        qm, rm = q.mean(axis=1), rows.mean(axis=1, dtype=np.float64)
        var = ((q - qm[:, None]) ** 2).sum(axis=1)
        cov = ((q - qm[:, None]) * (rows - rm[:, None])).sum(axis=1)
        a = np.where(var > 0, cov / np.where(var > 0, var, 1), 0)
        ok = a > 0
        a = stored(np.where(ok, a, best[2]).astype(np.float32))
        new = fit(a, np.where(ok, qm - rm / a, best[3]))
        best = keep(best, new)
    return best[1], best[2].astype(stype), best[3]


def blocks_of(q: np.ndarray, scale: np.ndarray, zero: np.ndarray | None, axis: int, block: int,
              bits: int) -> Blocks | None:  # fmt: skip
    """`Blocks` from per-element scales and zero points (broadcastable to q), or None when they
    are not constant over blocks of `block` along `axis`."""
    k = q.shape[axis]
    starts = np.arange(0, k, block)
    full_s = np.broadcast_to(scale, q.shape)
    s = np.take(full_s, starts, axis=axis)
    if not np.array_equal(_expand(s, axis, block, k), full_s):
        return None
    z = None
    if zero is not None:
        full_z = np.broadcast_to(zero, q.shape)
        z = np.take(full_z, starts, axis=axis)
        if not np.array_equal(_expand(z, axis, block, k), full_z):
            return None
    if bits == 4:
        if q.min() < 0 or q.max() > 15:
            return None
        q = q.astype(np.uint8)
        z = None if z is None else z.astype(np.uint8)
    else:
        if q.dtype not in (np.int8, np.uint8):
            return None
        if z is not None:
            if z.min() < np.iinfo(q.dtype).min or z.max() > np.iinfo(q.dtype).max:
                return None
            z = z.astype(q.dtype)
    return Blocks(np.ascontiguousarray(q), np.ascontiguousarray(s, np.float32), z, axis, block, bits)


def _pad4(n: int) -> int:
    return (n + 3) // 4 * 4


def encode(b: Blocks | Pairs | np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """The bytes (uint8) of a compact entry and its "compact" field; a float array gives f16,
    an int8 or uint8 array itself."""
    if isinstance(b, Pairs):
        data = np.ascontiguousarray(b.q).reshape(-1).view(np.uint8)
        parts = [data.tobytes(), b"\0" * (_pad4(data.size) - data.size)]
        if b.zero is not None:
            parts.append(np.ascontiguousarray(b.zero, b.q.dtype).reshape(-1).view(np.uint8).tobytes())
        desc = {"format": "i16x2", "rows": int(b.q.shape[0]), "signed": b.q.dtype == np.int8,
                "zero": b.zero is not None, **({"panel": b.panel} if b.panel else {})}  # fmt: skip
        return np.frombuffer(b"".join(parts), np.uint8), desc
    if isinstance(b, np.ndarray) and b.dtype in (np.int8, np.uint8):
        return np.ascontiguousarray(b).reshape(-1).view(np.uint8), {"format": b.dtype.name}
    if isinstance(b, np.ndarray):
        return np.frombuffer(b.astype("<f2").tobytes(), np.uint8), {"format": "f16"}
    flat = b.q.reshape(-1)
    if b.bits == 4:
        if flat.size % 2:
            flat = np.append(flat, np.uint8(0))
        data = (flat[0::2] | (flat[1::2] << 4)).astype(np.uint8)
    else:
        data = flat.view(np.uint8)
    half = b.scale.dtype == np.float16
    parts = [data.tobytes(), b"\0" * (_pad4(data.size) - data.size), b.scale.astype("<f2" if half else "<f4").tobytes()]
    zero: bool | str = b.zero is not None
    if b.zero is not None and b.bits == 4:  # (two per byte)
        z = b.zero.reshape(-1).astype(np.uint8)
        z = np.append(z, np.uint8(0)) if z.size % 2 else z
        parts.append((z[0::2] | (z[1::2] << 4)).astype(np.uint8).tobytes())
        zero = "u4"
    elif b.zero is not None:
        parts.append(b.zero.reshape(-1).view(np.uint8).tobytes())
    desc = {"format": f"q{b.bits}", "axis": b.axis, "block": b.block, "signed": b.signed, "zero": zero,
            **({"scale": "f16"} if half else {})}  # fmt: skip
    return np.frombuffer(b"".join(parts), np.uint8), desc


def decode(raw: np.ndarray, shape: tuple[int, ...], desc: Mapping[str, Any]) -> np.ndarray:
    """The float32 weight of a compact entry's bytes; ValueError says what does not fit."""
    size = math.prod(shape)
    fmt = desc.get("format")
    if fmt == "f16":
        if raw.size != 2 * size:
            raise ValueError(f"f16 of shape {list(shape)} takes {2 * size} bytes, not {raw.size}")
        return raw.view("<f2").astype(np.float32).reshape(shape)
    if fmt in ("int8", "uint8"):
        if raw.size != size:
            raise ValueError(f"{fmt} of shape {list(shape)} takes {size} bytes, not {raw.size}")
        return raw.view(fmt).astype(np.int32).reshape(shape)
    if fmt == "i16x2":
        return _decode_pairs(raw, shape, desc)
    if fmt not in ("q8", "q4"):
        raise ValueError(f"unknown compact format {fmt!r}")
    axis, block = desc.get("axis"), desc.get("block")
    if not (isinstance(axis, int) and 0 <= axis < len(shape) and isinstance(block, int) and block > 0):
        raise ValueError(f"axis {axis!r} and block {block!r} do not fit shape {list(shape)}")
    bits = 8 if fmt == "q8" else 4
    nb = -(-shape[axis] // block)
    sshape = (*shape[:axis], nb, *shape[axis + 1 :])
    nscales = math.prod(sshape)
    qbytes = size if bits == 8 else (size + 1) // 2
    off = _pad4(qbytes)
    stype, zero = desc.get("scale", "f32"), desc.get("zero", False)
    sbytes = {"f32": 4, "f16": 2}.get(stype) if isinstance(stype, str) else None
    if sbytes is None or zero not in (True, False) and not (zero == "u4" and bits == 4):
        raise ValueError(f"scale {stype!r} and zero {zero!r} are not a {fmt} form")
    zbytes = (nscales + 1) // 2 if zero == "u4" else nscales if zero else 0
    want = off + sbytes * nscales + zbytes
    if raw.size != want:
        raise ValueError(f"{fmt} of shape {list(shape)} in blocks of {block} takes {want} bytes, not {raw.size}")
    qtype = np.int8 if desc.get("signed") else np.uint8
    if bits == 8:
        q = raw[:size].view(qtype)
    else:
        q = np.stack([raw[:qbytes] & 0x0F, raw[:qbytes] >> 4], axis=-1).reshape(-1)[:size]
    scale = raw[off : off + sbytes * nscales].view("<f4" if sbytes == 4 else "<f2").reshape(sshape)
    z = raw[off + sbytes * nscales :]
    if zero == "u4":
        z = np.stack([z & 0x0F, z >> 4], axis=-1).reshape(-1)[:nscales]
    zeros = z.view(qtype).reshape(sshape) if zero else None
    return dequantize(Blocks(q.reshape(shape), scale, zeros, axis, block, bits))


def _decode_pairs(raw: np.ndarray, shape: tuple[int, ...], desc: Mapping[str, Any]) -> np.ndarray:
    k, nr = desc.get("rows"), desc.get("panel", 0)
    words = (shape[1], shape[0] * shape[2]) if nr and len(shape) == 3 else shape
    if (not isinstance(k, int) or k < 1 or not isinstance(nr, int) or nr < 0 or len(words) != 2
            or words[0] != (k + 1) // 2 or (nr and shape[2] != nr)):  # fmt: skip
        raise ValueError(f"i16x2 of {k!r} rows (panel {nr!r}) does not fit shape {list(shape)}")
    n = words[1]
    want = _pad4(k * n) + (n if desc.get("zero") else 0)
    if raw.size != want:
        raise ValueError(f"i16x2 of {k} x {n} takes {want} bytes, not {raw.size}")
    qtype = np.int8 if desc.get("signed") else np.uint8
    v = raw[: k * n].view(qtype).astype(np.int32).reshape(k, n)
    if desc.get("zero"):
        v = v - raw[_pad4(k * n) :].view(qtype).astype(np.int32)
    w = pack_pairs(v)
    return np.ascontiguousarray(w.reshape(w.shape[0], -1, nr).transpose(1, 0, 2)) if nr else w


def load_compact(path: str | os.PathLike[str], entries: Mapping[str, Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """`load_weights` for an index that may have compact entries (decoded to float32)."""
    plain = {k: e for k, e in entries.items() if not (isinstance(e, Mapping) and "compact" in e)}
    out = load_weights(path, plain)
    rest = {k: e for k, e in entries.items() if k not in plain}
    if not rest:
        return out
    raw = {k: {"offset": e.get("offset"), "nbytes": e.get("nbytes"), "dtype": "uint8",
               "shape": [e.get("nbytes")]} for k, e in rest.items()}  # fmt: skip
    for key, data in load_weights(path, raw).items():
        e = rest[key]
        try:
            desc = e["compact"]
            if not isinstance(desc, Mapping):
                raise ValueError(f"'compact' is {desc!r}")
            out[key] = decode(data, tuple(int(d) for d in e["shape"]), desc)
        except (KeyError, TypeError, ValueError) as err:
            raise ModelFormatError(f"weights index entry {key!r}: {err}", where=os.fspath(path),
                                   hint="rebuild the bundle") from None  # fmt: skip
    return out
