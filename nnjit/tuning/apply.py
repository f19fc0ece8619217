"""Using tuning results when compiling: records pin kernels' schedules, and bundles carry
candidate kernels for the browser's on-device tuning.

* `lower_tuned(tensor_module, backend, loop_options, picks)`: like
  nnjit.pipeline.lower_for_backend, but each fused op whose signature has a pick gets the
  pick as its `schedule` attribute (docs/ir.md), and Wasm kernels picked with
  "relaxed-simd": false are converted without relaxed SIMD.
* `add_candidates(plan, tensor_module, backend, n, bundle_dir)`: for each kernel of a
  backend's plan, writes up to n candidate kernels (the default first) and lists them under
  the kernel's entry: `"candidates": [{"file", "manifest", "options"}]`. Kernels with the
  same signature share the files. The points come from the kernel's space on a generic
  device (WebGPU default limits; Wasm with and without relaxed SIMD); with a count per device
  class (WebGPU's default: 6 for a GPU, 1 for a software adapter) each class takes its first
  points in its prior order (nnjit/tuning/prior.py) and the entry's `"order"` lists, per
  class, the candidates to try, the first being what runs before tuning.
  A WebGPU matmul whose B weight is stored as float16 (nnjit/compact.py) also ships the f16
  twin (`f16: 1`: B read as f16, f32 arithmetic) of each of those points, listed first in
  every class's order: a device with "shader-f16" starts on the f16 kernel, one without
  skips the twins (their manifests name the feature) and runs the float32 points as before.
  (f16 arithmetic, `f16: 2`, is in the tuner's space, not shipped: on-device tuning picks by
  speed alone.)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from xdsl.dialects.builtin import DenseArrayBase, DictionaryAttr, IntegerAttr, ModuleOp, i64
from xdsl.rewriter import Rewriter

from nnjit.dialects import nn_loop
from nnjit.passes.convert_nn_loop_to_wasm import lower_kernel
from nnjit.pipeline import run_pipeline
from nnjit.targets import TARGETS
from nnjit.tuning.kernels import KernelInfo, kernel_info, lower_candidate, prepared_fused_ops
from nnjit.tuning.plugins import space_for
from nnjit.tuning.prior import distance, family, point_key, prior_order
from nnjit.tuning.space import DeviceInfo

log = logging.getLogger("nnjit.tuning")


def schedule_attr(options: dict) -> DictionaryAttr:
    """A fused op's `schedule` attribute for a point (relaxed-simd and hooks left out)."""
    out: dict[str, Any] = {}
    for k, v in options.items():
        if k == "relaxed-simd" or k.startswith("@"):
            continue
        if isinstance(v, (list, tuple)):
            out[k] = DenseArrayBase.from_list(i64, [int(x) for x in v])
        else:
            out[k] = IntegerAttr(int(v), 64)
    return DictionaryAttr(out)


def apply_picks(module: ModuleOp, target: str, picks: dict[str, dict]) -> tuple[dict[int, bool], int]:
    """Sets the `schedule` attribute of every fused op of `module` (mutated: pass a clone)
    whose signature has a pick. Returns ({kernel index: relaxed-simd} for picks that set
    it, number of kernels pinned)."""
    relaxed: dict[int, bool] = {}
    pinned = 0
    if not picks:
        return relaxed, 0
    for i, fused in enumerate(prepared_fused_ops(module)):
        sig = kernel_info(fused, target).signature
        opts = picks.get(sig)
        if not opts:
            continue
        pinned += 1
        attr = schedule_attr(opts)
        if attr.data:
            fused.attributes["schedule"] = attr
        if "relaxed-simd" in opts:
            relaxed[i] = bool(opts["relaxed-simd"])
    return relaxed, pinned


NEAR_DISTANCE = 2.0
"""How far (sum of |log2| of the size ratios, tuning/prior.py distance) a record's kernel may
be from one that has no record of its own for its pick to be used: a length 4x shorter or
longer, or two sizes 2x apart."""


def nearest_picks(tensor_module: ModuleOp, target: str, picks: dict[str, dict], near: list[dict]) -> dict[str, dict]:
    """`picks` plus, for each kernel of `tensor_module` without one, the pick of the nearest
    recorded kernel of the same kind (records carry their geometry: `near`, from picks_from),
    when it is within NEAR_DISTANCE and lowers for this kernel. So a record made at one length
    of a variable-length bundle serves its neighbours (a 128-token matmul's pick the 96- and
    192-token ones); an exact record always wins."""
    out = dict(picks)
    if not near:
        return out
    for fused in prepared_fused_ops(tensor_module.clone()):
        info = kernel_info(fused, target)
        if info.signature in out:
            continue
        fam = family(info.kind)
        ranked = sorted(
            (distance(fam, r["geometry"], info.geometry), i) for i, r in enumerate(near)
            if r["target"] == target and r["kind"] == info.kind
        )  # fmt: skip
        half = any(s["dtype"] == "f16" for s in info.inputs)
        for d, i in ranked:
            if d > NEAR_DISTANCE:
                break
            if near[i]["options"].get("f16") and not half:
                continue  # (f16 reads B as float16: only where the weight is stored so)
            try:
                lower_candidate(info, near[i]["options"])
            except Exception as e:  # noqa: BLE001 - a pick that does not fit this shape is skipped
                log.info("record of %s does not fit %s: %s", near[i]["geometry"], info.geometry, e)
                continue
            out[info.signature] = dict(near[i]["options"])
            break
    return out


def lower_tuned(tensor_module: ModuleOp, backend: str, loop_options: str, picks: dict[str, dict]) -> ModuleOp:
    """Clones a fused nn_tensor module and lowers it to the web level of `backend` with the
    picks applied (see the module doc)."""
    target = TARGETS[backend]
    module = tensor_module.clone()
    relaxed, pinned = apply_picks(module, target.kernel_target, picks)
    run_pipeline(module, target.lowering_pipeline(loop_options, convert=False))
    off = {i for i, on in relaxed.items() if not on}
    if off and "relaxed-simd" in target.convert_keys:
        # (kernels picked without relaxed SIMD: converted one by one with it off)
        for op in list(module.body.block.ops):
            if isinstance(op, nn_loop.KernelOp) and op.target.data == target.kernel_target:
                idx = _kernel_index(op.sym_name.data)
                if idx in off:
                    Rewriter.replace_op(op, lower_kernel(op, False))
    run_pipeline(module, target.convert)
    log.info("%s: %d kernels pinned by tuning records", backend, pinned)
    return module


def _kernel_index(name: str) -> int | None:
    head = name.split("_", 1)[0]
    if head.startswith("k") and head[1:].isdigit():
        return int(head[1:])
    return None


def add_candidates(plan: dict, tensor_module: ModuleOp, backend: str, n: int | dict[str, int],
                   bundle_dir: Path, picks: dict[str, dict] | None = None) -> int:  # fmt: skip
    """Writes candidate kernels for every kernel of `plan` (a backend plan with "kernels") and
    lists them in it; returns the number of files written.

    `n`: candidates per kernel, or {device class: count} (Target.default_candidates). With
    classes, each class takes its first `count` points in its own order (prior.prior_order:
    the measured prior for "gpu", the space's order for "cpu"), the default `{}` is always
    candidate 0, and the kernel's entry says in which order each class tries them:
    `"order": {"gpu": [3, 0, 1, ...], "cpu": [0]}` (first: what runs before tuning)."""
    target = TARGETS[backend].kernel_target
    counts = dict(n) if isinstance(n, dict) else {"": int(n)}  # "": one list, no classes
    module = tensor_module.clone()
    fused_ops = prepared_fused_ops(module)
    by_sig: dict[str, tuple[list[dict], dict[str, list[int]]]] = {}
    written = 0
    for name, entry in plan["kernels"].items():
        idx = _kernel_index(name)
        if idx is None or idx >= len(fused_ops) or name.endswith("_copy"):
            continue
        info = kernel_info(fused_ops[idx], target)
        if info.signature not in by_sig:
            by_sig[info.signature] = _candidates(info, entry, name, counts, target, Path(bundle_dir),
                                                 (picks or {}).get(info.signature))  # fmt: skip
            written += sum(1 for c in by_sig[info.signature][0] if c["file"] != entry["file"])
        cands, order = by_sig[info.signature]
        entry["candidates"] = [
            {**c, "manifest": {**c["manifest"], "name": name}} for c in cands
        ]
        if "" not in order:
            entry["order"] = {cls: list(ix) for cls, ix in order.items()}
        elif any(s["dtype"] == "f16" for s in info.inputs) and target == "wgsl":
            entry["order"] = {cls: list(order[""]) for cls in ("gpu", "cpu")}  # (f16 twins first)
        entry["signature"] = info.signature
    return written


def _candidates(info: KernelInfo, entry: dict, name: str, counts: dict[str, int], target: str, bundle_dir: Path,
                pick: dict | None) -> tuple[list[dict], dict[str, list[int]]]:  # fmt: skip
    """The candidates of one kernel signature (files written under `bundle_dir`) and each
    class's order of them: the default `{}` first, then every class's first `counts[cls]`
    points of its prior order (a record's `pick` first in each), round robin by rank; a point
    that does not lower is left out, identical code is listed once, and code identical to the
    kernel's own file points at that file."""
    points = [p for p in space_for(info, DeviceInfo.generic(target)) if not any(k.startswith("@") for k in p)]
    orders = {cls: prior_order(info, points, cls or None) for cls in counts}
    if pick:  # measured on a device: every class's first
        for pts in orders.values():
            if pick in pts:
                pts.remove(pick)
            pts.insert(0, dict(pick))
    take = dict(counts)
    if target == "wgsl" and any(s["dtype"] == "f16" for s in info.inputs):
        head = [dict(pick)] if pick and pick.get("f16") else []  # (a record's f16 pick: first)
        for cls, pts in orders.items():  # f16 twins first (see the module doc)
            plain = [{k: v for k, v in p.items() if k != "f16"} for p in pts]
            f32 = list({point_key(p): p for p in plain}.values())[: counts[cls]]
            orders[cls] = head + [{**p, "f16": 1} for p in f32] + f32
            take[cls] = len(orders[cls])
    own = bundle_dir / entry["file"]
    own_data = own.read_bytes() if own.is_file() else None
    ext = TARGETS[info.backend].extension
    cands: list[dict] = []
    by_point: dict[str, int] = {}  # point_key -> candidate index (-1: does not lower)
    by_code: dict[str, int] = {}  # code hash -> candidate index
    queue = [{}] + [p for _, _, p in sorted(
        (r, cls, p) for cls, pts in orders.items() for r, p in enumerate(pts[: take[cls]]) if p != {}
    )]  # fmt: skip
    for p in queue:
        key = point_key(p)
        if key in by_point:
            continue
        try:
            c = lower_candidate(info, p)
        except Exception as e:  # noqa: BLE001 - an invalid point is left out
            log.info("candidate %s of %s left out: %s", p, name, e)
            by_point[key] = -1
            continue
        if c.code_hash not in by_code:
            by_code[c.code_hash] = len(cands)
            data = c.source.encode() if target == "wgsl" else c.binary
            assert data is not None
            rel = entry["file"]  # the kernel's own file: not written twice
            if data != own_data:
                rel = f"kernels/{name}.c{len(cands)}.{ext}"
                (bundle_dir / rel).write_bytes(data)
            cands.append({"file": rel, "manifest": dict(c.manifest), "options": _json_options(p)})
        by_point[key] = by_code[c.code_hash]
    order = {}
    for cls, pts in orders.items():
        ranked = [by_point[point_key(p)] for p in pts if by_point.get(point_key(p), -1) >= 0]
        order[cls] = list(dict.fromkeys(ranked))[: max(1, take[cls])]
    return cands, order


def _json_options(p: dict) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in p.items()}


__all__ = ["nearest_picks", "lower_tuned", "apply_picks", "add_candidates", "schedule_attr"]
