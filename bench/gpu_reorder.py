"""Gives a bundle compiled with every point as a candidate (`--candidates 48`) the device-class
orders that `nnjit compile` would write with the prior now in nnjit/tuning/prior_data, and
writes a copy whose every kernel starts on the exhaustive best of a sweep: so that on the GPU
machine (no model file there) one bundle yields both "as shipped" and "exhaustively tuned".

    python bench/gpu_reorder.py BUNDLE KERNELS.json SPACE.json EXHAUSTIVE_OUT
        # KERNELS.json: bench/tuning_bert.py --save-kernels; SPACE.json: bench/gpu_space.py --out

The shipped GPU order is the first Target.default_candidates["gpu"] points of
prior_order(space_for(kernel, generic device), "gpu"), as nnjit/tuning/apply.py picks them.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    from nnjit.targets import TARGETS
    from nnjit.tuning.kernels import KernelInfo
    from nnjit.tuning.plugins import space_for
    from nnjit.tuning.prior import point_key, prior_order
    from nnjit.tuning.space import DeviceInfo

    bundle, kernels_file, space_file, ex_out = (Path(a) for a in sys.argv[1:5])
    infos = {i.signature: i for i in (KernelInfo.from_json(d) for d in json.loads(kernels_file.read_text()))}
    sweep = {k["signature"]: k for k in json.loads(space_file.read_text())["kernels"]}
    n_gpu = dict(TARGETS["webgpu"].default_candidates)["gpu"]
    generic = DeviceInfo.generic("wgsl")
    plan = json.loads((bundle / "plan.json").read_text())
    ex_plan = json.loads((bundle / "plan.json").read_text())
    for name, k in plan["backends"]["webgpu"]["kernels"].items():
        info = infos.get(k.get("signature"))
        if info is None or not k.get("candidates"):
            continue
        index = {point_key(c["options"]): i for i, c in enumerate(k["candidates"])}
        ranked = [index[point_key(p)] for p in prior_order(info, space_for(info, generic), "gpu") if point_key(p) in index]
        k["order"] = {"gpu": list(dict.fromkeys(ranked))[:n_gpu], "cpu": [0]}
        trials = [t for t in sweep.get(info.signature, {}).get("trials", []) if t["ms"] is not None and point_key(t["options"]) in index]
        if trials:
            best = index[point_key(min(trials, key=lambda t: t["ms"])["options"])]
            ex_plan["backends"]["webgpu"]["kernels"][name]["order"] = {"gpu": [best], "cpu": [best]}
    (bundle / "plan.json").write_text(json.dumps(plan))
    if ex_out.exists():
        shutil.rmtree(ex_out)
    shutil.copytree(bundle, ex_out)
    (ex_out / "plan.json").write_text(json.dumps(ex_plan))
    print(f"orders written: {bundle} (prior), {ex_out} (exhaustive best of the sweep)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
