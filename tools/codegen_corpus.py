#!/usr/bin/env python3
"""The codegen corpus: every candidate of every distinct kernel of a set of models, lowered and
printed, kept as one hash per candidate, so that a refactoring of the lowering can show that the
generated WGSL and WAT did not change (or list exactly what did).

    python tools/codegen_corpus.py save corpus.json            # the models in tests/models
    python tools/codegen_corpus.py check corpus.json           # exit 1 and list what changed
    python tools/codegen_corpus.py save c.json --models models/bert-dynamo.onnx --backends wasm

A candidate is (backend, kernel signature, schedule point of the generic device's space); its
entry is the SHA-256 of the printed source and of the manifest (JSON, sorted keys), or the
first line of the error when the lowering rejects the point (rejections must not change
either).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _default_models() -> list[Path]:
    """The fixed-shape models of tests/models (a model with unbound dynamic dims, as the
    *_dynamic and *_past decoders have, has no kernels until a shape is chosen)."""
    models = (ROOT / "tests" / "models").glob("*.onnx")
    return sorted(p for p in models if "_dynamic" not in p.name and "_past" not in p.name)


def corpus(models: list[Path], backends: list[str], log=print) -> dict[str, str]:
    from nnjit.errors import NNJitError
    from nnjit.tuning.kernels import lower_candidate, model_kernels
    from nnjit.tuning.plugins import space_for
    from nnjit.tuning.space import DeviceInfo
    from nnjit.tuning.tuner import load_fused_model

    entries: dict[str, str] = {}
    for model in models:
        module, _ = load_fused_model(str(model), None)
        for backend in backends:
            t0, n = time.perf_counter(), 0
            for info in model_kernels(module, backend):
                device = DeviceInfo.generic(info.target)
                for point in [{}, *space_for(info, device)]:
                    key = f"{backend}/{info.signature}/{json.dumps(point, sort_keys=True)}"
                    if key in entries:
                        continue
                    try:
                        cand = lower_candidate(info, point)
                        src = cand.source if isinstance(cand.source, str) else bytes(cand.source).hex()
                        man = json.dumps(cand.manifest, sort_keys=True, default=str)
                        digest = hashlib.sha256((src + "\0" + man).encode()).hexdigest()
                    except NNJitError as e:
                        digest = "rejected: " + str(e).splitlines()[0]
                    entries[key] = digest
                    n += 1
            log(f"{model.name} {backend}: {n} candidates in {time.perf_counter() - t0:.1f} s")
    return entries


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("save", "check"))
    ap.add_argument("file", type=Path)
    ap.add_argument("--models", nargs="+", type=Path, default=None,
                    help="ONNX models (default: tests/models/*.onnx)")  # fmt: skip
    ap.add_argument("--backends", default="webgpu,wasm")
    args = ap.parse_args(argv)
    models = args.models or _default_models()
    got = corpus(models, [b for b in args.backends.split(",") if b])
    if args.mode == "save":
        args.file.write_text(json.dumps(got, indent=0, sort_keys=True) + "\n")
        print(f"saved {len(got)} candidates to {args.file}")
        return 0
    want = json.loads(args.file.read_text())
    changed = sorted(k for k in want.keys() & got.keys() if want[k] != got[k])
    missing, new = sorted(want.keys() - got.keys()), sorted(got.keys() - want.keys())
    for k in changed:
        print(f"changed: {k}")
    for k in missing:
        print(f"missing: {k}")
    for k in new:
        print(f"new: {k}")
    same = len(want.keys() & got.keys()) - len(changed)
    print(f"{same} identical, {len(changed)} changed, {len(missing)} missing, {len(new)} new")
    return 1 if changed or missing or new else 0


if __name__ == "__main__":
    sys.exit(main())
