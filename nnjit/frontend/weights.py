"""The weights file: every weight's raw little-endian bytes, each entry 256-byte aligned.

The file has no header: its index (kept by the caller, e.g. in a bundle's manifest) is
`{key: {"offset": int, "nbytes": int, "dtype": str, "shape": [int, ...]}}`, where `dtype`
is a numpy dtype name ("float32", "int64", "int32", "bool", ...; bool is one byte per
element, 0 or 1). Offsets are multiples of ALIGN, so a typed view needs no copy.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from nnjit.errors import ModelFormatError

ALIGN = 256

_DTYPES = ("float32", "float64", "float16", "int64", "int32", "int16", "int8", "uint8", "bool")


def _aligned(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def save_weights(weights: Mapping[str, np.ndarray], path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Write `weights` to `path` (atomically: a temp file renamed) and return the index."""
    path = os.fspath(path)
    index: dict[str, dict[str, Any]] = {}
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".weights-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            offset = 0
            for key, value in weights.items():
                a = np.asarray(value)
                if a.dtype.name not in _DTYPES:
                    raise ValueError(f"weight {key!r}: unsupported dtype {a.dtype}")
                a = a.astype(a.dtype.newbyteorder("<"), order="C", copy=False)
                pad = _aligned(offset) - offset
                if pad:
                    f.write(b"\0" * pad)
                    offset += pad
                f.write(a.tobytes())
                index[key] = {
                    "offset": offset,
                    "nbytes": int(a.nbytes),
                    "dtype": a.dtype.name,
                    "shape": [int(d) for d in a.shape],
                }
                offset += a.nbytes
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return index


def load_weights(
    path: str | os.PathLike[str], index: Mapping[str, Mapping[str, Any]]
) -> dict[str, np.ndarray]:
    """Read-only arrays (views of one memory map) for every entry of `index`."""
    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise ModelFormatError(
            f"cannot read weights file: {e.strerror}", where=path, hint="rebuild the bundle"
        ) from None
    mm = np.memmap(path, dtype=np.uint8, mode="r") if size > 0 else np.zeros(0, np.uint8)
    out: dict[str, np.ndarray] = {}
    for key, entry in index.items():
        try:
            offset, nbytes = int(entry["offset"]), int(entry["nbytes"])
            dtype = np.dtype(str(entry["dtype"])).newbyteorder("<")
            shape = tuple(int(d) for d in entry["shape"])
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFormatError(
                f"weights index entry {key!r} is malformed ({e})", where=path
            ) from None
        if np.dtype(dtype).name not in _DTYPES or nbytes != math.prod(shape) * dtype.itemsize:
            raise ModelFormatError(
                f"weights index entry {key!r}: dtype {entry['dtype']} and shape {list(shape)} "
                f"do not make {nbytes} bytes",
                where=path,
            )
        if offset < 0 or offset + nbytes > size:
            raise ModelFormatError(
                f"weights file is truncated: entry {key!r} ends at byte {offset + nbytes}, "
                f"the file has {size}",
                where=path,
                hint="rebuild the bundle",
            )
        out[key] = mm[offset : offset + nbytes].view(dtype).reshape(shape)
    return out
