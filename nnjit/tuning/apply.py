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
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from xdsl.dialects.builtin import DenseArrayBase, DictionaryAttr, IntegerAttr, ModuleOp, i64
from xdsl.rewriter import Rewriter

from nnjit.dialects import nn_loop
from nnjit.passes.convert_nn_loop_to_wasm import lower_kernel
from nnjit.passes.nn_loop_unroll import unroll_all
from nnjit.pipeline import run_pipeline
from nnjit.targets import TARGETS
from nnjit.tuning.kernels import kernel_info, lower_candidate, prepared_fused_ops
from nnjit.tuning.plugins import space_for
from nnjit.tuning.prior import point_key, prior_order
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
                    unroll_all(op)
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
    ext = TARGETS[backend].extension
    device = DeviceInfo.generic(target)
    per_class = dict(n) if isinstance(n, dict) else None
    module = tensor_module.clone()
    fused_ops = prepared_fused_ops(module)
    by_sig: dict[str, tuple[list[dict], dict[str, list[int]] | None]] = {}
    written = 0
    for name, entry in plan["kernels"].items():
        idx = _kernel_index(name)
        if idx is None or idx >= len(fused_ops) or name.endswith("_copy"):
            continue
        info = kernel_info(fused_ops[idx], target)
        if info.signature not in by_sig:
            points = [p for p in space_for(info, device) if not any(k.startswith("@") for k in p)]
            pick = (picks or {}).get(info.signature)
            if pick and pick not in points:
                points.insert(1, dict(pick))
            orders = {cls: prior_order(info, points, cls) for cls in per_class} if per_class else {"": points}
            counts = per_class or {"": int(n)}  # type: ignore[arg-type]
            if pick:  # a record's pick (measured on a device) is every class's first
                for pts in orders.values():
                    pts.remove(pick)
                    pts.insert(0, dict(pick))
            cands: list[dict] = []
            keys: dict[str, int] = {}  # point_key / code hash -> candidate index
            chosen: dict[str, list[int]] = {}
            # candidate 0 is the default; then the classes' points, round robin by rank
            queue = [(0, "", {})] + sorted(
                (r, cls, p) for cls, pts in orders.items() for r, p in enumerate(pts[: counts[cls]])
                if p != {}
            )  # fmt: skip
            for _, cls, p in queue:
                k = point_key(p)
                if k not in keys:
                    try:
                        c = lower_candidate(info, p)
                    except Exception as e:  # noqa: BLE001 - an invalid point is left out
                        log.info("candidate %s of %s left out: %s", p, name, e)
                        keys[k] = -1
                        continue
                    same = keys.get(c.code_hash)
                    if same is None:
                        same = keys[c.code_hash] = len(cands)
                        data = c.source.encode() if target == "wgsl" else c.binary
                        assert data is not None
                        own = Path(bundle_dir) / entry["file"]
                        if own.is_file() and own.read_bytes() == data:
                            rel = entry["file"]  # the kernel's own file: not written twice
                        else:
                            rel = f"kernels/{name}.c{same}.{ext}"
                            (Path(bundle_dir) / rel).write_bytes(data)
                            written += 1
                        cands.append({"file": rel, "manifest": dict(c.manifest), "options": _json_options(p)})
                    keys[k] = same
                if keys[k] >= 0 and cls:
                    chosen.setdefault(cls, [])
                    if keys[k] not in chosen[cls]:
                        chosen[cls].append(keys[k])
            order = None
            if per_class:
                order = {}
                for cls, pts in orders.items():
                    ranked = [keys[point_key(p)] for p in pts if keys.get(point_key(p), -1) >= 0]
                    order[cls] = list(dict.fromkeys(ranked))[: max(1, counts[cls])]
            by_sig[info.signature] = (cands, order)
        cands, order = by_sig[info.signature]
        entry["candidates"] = [
            {**c, "manifest": {**c["manifest"], "name": name}} for c in cands
        ]
        if order is not None:
            entry["order"] = {cls: list(ix) for cls, ix in order.items()}
        entry["signature"] = info.signature
    return written


def _json_options(p: dict) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in p.items()}


__all__ = ["lower_tuned", "apply_picks", "add_candidates", "schedule_attr"]
