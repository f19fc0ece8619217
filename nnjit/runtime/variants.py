"""Variable-length bundles at run time: which shape variant serves an input, padding the
inputs up to it, cutting the outputs back (the plan's "dynamic" table, written by
nnjit/frontend/dynamic.py; nnjit/web/variants.js does the same in the page).

    index, sizes = pick_variant(plan, feeds)      # the cheapest variant that holds the input
    padded = pad_feeds(plan, index, feeds)        # zeros past the input's end (mask 0: ignored)
    outs = cut_outputs(plan, sizes, outs)         # back to the input's sizes
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nnjit.errors import ModelFormatError, ShapeError


def check_dynamic(plan: dict, where: str) -> None:
    """The "dynamic" table is well formed (each variant is checked like a plan when used)."""
    dyn = plan.get("dynamic")
    if dyn is None:
        return
    ok = isinstance(dyn, dict) and isinstance(dyn.get("dims"), dict) and isinstance(dyn.get("variants"), list)
    ok = ok and bool(dyn["variants"]) and isinstance(dyn.get("outputs", {}), dict)
    for d in (dyn.get("dims") or {}).values() if ok else ():
        ok = ok and isinstance(d, dict) and isinstance(d.get("pad"), bool) and isinstance(d.get("inputs"), list)
        ok = ok and all(isinstance(x, list) and len(x) == 2 and isinstance(x[0], str) and _nat(x[1])
                        for x in d["inputs"])  # fmt: skip
    for v in dyn["variants"] if ok else ():
        ok = ok and isinstance(v, dict) and isinstance(v.get("bind"), dict) and isinstance(v.get("model"), dict)
        ok = ok and isinstance(v.get("backends"), dict) and set(v["bind"]) == set(dyn["dims"])
        ok = ok and all(_nat(n) and n > 0 for n in v["bind"].values())
    if not ok:
        raise ModelFormatError(f'{where}: the "dynamic" table is malformed', hint="recompile the bundle")


def _nat(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def variant_plan(plan: dict, index: int) -> dict:
    """The plan of one variant, shaped like a fixed bundle's (its own model and backends)."""
    v = plan["dynamic"]["variants"][index]
    return {**plan, "model": v["model"], "backends": v["backends"]}


def pick_variant(plan: dict, feeds: dict[str, Any]) -> tuple[int, dict[str, int]]:
    """(index of the cheapest variant that holds the inputs, the inputs' size of each dim)."""
    dyn = plan["dynamic"]
    dims = dyn["dims"]
    model_inputs = {i["name"]: i for i in plan["model"]["inputs"]}
    sizes: dict[str, int] = {}
    for name, d in dims.items():
        for inp, axis in d["inputs"]:
            if inp not in feeds:
                continue  # (prepare_feeds names a missing input)
            shape = np.shape(feeds[inp])
            if len(shape) != len(model_inputs[inp]["shape"]):
                raise ShapeError(f"input '{inp}' has {len(shape)} dims, the model takes "
                                 f"{len(model_inputs[inp]['shape'])}")  # fmt: skip
            n = int(shape[axis])
            if sizes.setdefault(name, n) != n:
                raise ShapeError(f"inputs disagree on dim '{name}': {sizes[name]} and {n} (input '{inp}' "
                                 f"axis {axis})", hint="inputs that share a dim need the same size")  # fmt: skip
    for name, n in sizes.items():
        if n < 1:
            raise ShapeError(f"dim '{name}' has size 0: give at least one {_what(dims[name])}")
    best, cost = -1, math.inf
    for i, v in enumerate(dyn["variants"]):
        fits = all(
            v["bind"][n] == s or (dims[n]["pad"] and v["bind"][n] > s) for n, s in sizes.items()
        )
        c = math.prod(v["bind"].values())
        if fits and c < cost:
            best, cost = i, c
    if best < 0:
        raise ShapeError(no_variant(dyn, sizes), hint=no_variant_hint(dyn, sizes))
    return best, sizes


def _what(d: dict) -> str:
    return "row" if d.get("role") == "batch" else "position"


def no_variant(dyn: dict, sizes: dict[str, int]) -> str:
    dims = dyn["dims"]
    for name, n in sizes.items():
        have = sorted({v["bind"][name] for v in dyn["variants"]})
        if n > have[-1]:
            return f"dim '{name}' is {n}, over the largest the bundle was compiled for ({have[-1]})"
        if not dims[name]["pad"] and n not in have:
            return (f"dim '{name}' is {n}; the bundle runs it at {have} only (the model has no attention "
                    "mask on it, so a shorter input cannot be padded)")
    return f"no compiled variant holds the input sizes {sizes}"


def no_variant_hint(dyn: dict, sizes: dict[str, int]) -> str:
    return "recompile with --max-length / --max-batch / --lengths to cover it, or cut the input"


def pad_feeds(plan: dict, index: int, feeds: dict[str, Any]) -> dict[str, Any]:
    """The feeds padded with zeros up to variant `index`'s sizes (a zero mask hides the padding)."""
    v = plan["dynamic"]["variants"][index]
    shapes = {i["name"]: i["shape"] for i in v["model"]["inputs"]}
    out = {}
    for name, a in feeds.items():
        want = shapes.get(name)
        arr = np.asarray(a)
        if want is None or list(arr.shape) == list(want) or arr.ndim != len(want):
            out[name] = a  # (prepare_feeds names what is wrong)
            continue
        if any(s > w for s, w in zip(arr.shape, want)):
            out[name] = a
            continue
        padded = np.zeros(want, dtype=arr.dtype)
        padded[tuple(slice(0, s) for s in arr.shape)] = arr
        out[name] = padded
    return out


def cut_outputs(plan: dict, sizes: dict[str, int], outs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Outputs cut back along the axes that follow a dynamic dim to the input's sizes."""
    axes_of = plan["dynamic"].get("outputs", {})
    result = {}
    for name, arr in outs.items():
        cut = [slice(None)] * arr.ndim
        for axis, dim in axes_of.get(name, ()):
            if dim in sizes and 0 <= axis < arr.ndim:
                cut[axis] = slice(0, sizes[dim])
        result[name] = np.ascontiguousarray(arr[tuple(cut)])
    return result


__all__ = ["check_dynamic", "variant_plan", "pick_variant", "pad_feeds", "cut_outputs"]
