#!/usr/bin/env python3
"""Summarises exhaustive schedule sweeps (bench/gpu_space.py on a device) into the prior that
nnjit ships (nnjit/tuning/prior_data/<target>-<class>.json, read by nnjit/tuning/prior.py).

    python tools/make_prior.py SPACE.json [SPACE.json ...] [--class gpu] [--keep 16] [--out FILE]
    python tools/make_prior.py            # prints the shipped prior, kernel by kernel

For every swept kernel it keeps its kind, geometry and the `--keep` fastest points with their
time relative to the fastest (1.0), rounded to 3 digits; a kernel swept in several files keeps
the file that measured more points. Points that failed or were rejected are left out (the
space functions decide what a device can run). Prints what it kept, kernel by kernel, with the
default schedule's time relative to the best, so a regression of the default shows.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def summarise(sweeps: list[dict], keep: int) -> list[dict]:
    from nnjit.tuning.prior import point_key

    by_sig: dict[str, dict] = {}
    for sweep in sweeps:
        for k in sweep["kernels"]:
            ok = [t for t in k["trials"] if t.get("ms") is not None]
            if not ok:
                continue
            prev = by_sig.get(k["signature"])
            if prev is not None and len(prev["_ok"]) >= len(ok):
                continue
            by_sig[k["signature"]] = {**k, "_ok": ok}
    out = []
    for sig, k in sorted(by_sig.items(), key=lambda kv: (kv[1]["kind"], json.dumps(kv[1]["geometry"], sort_keys=True))):
        best = min(t["ms"] for t in k["_ok"])
        ranked = sorted(k["_ok"], key=lambda t: t["ms"])[:keep]
        rel = {point_key(t["options"]): round(t["ms"] / best, 3) for t in ranked}
        default = next((t["ms"] for t in k["_ok"] if t["options"] == {}), None)
        out.append({"kind": k["kind"], "geometry": k["geometry"], "signature": sig, "best_ms": round(best, 5),
                    "default_rel": round(default / best, 3) if default else None,
                    "cublas_ms": k.get("cublas_ms"), "rel": rel})  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    from nnjit.tuning.prior import DATA_DIR, FORMAT, VERSION

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweeps", nargs="*", type=Path, help="JSON from bench/gpu_space.py (none: show the shipped prior)")
    ap.add_argument("--class", dest="cls", default="gpu", choices=("gpu", "cpu"))
    ap.add_argument("--target", default="wgsl")
    ap.add_argument("--keep", type=int, default=16, help="points kept per kernel (the fastest)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if not args.sweeps:
        files = sorted(DATA_DIR.glob("*.json"))
        for path in files:
            data = json.loads(path.read_text())
            print(f"{path.relative_to(ROOT)}: {len(data['kernels'])} kernels, {data.get('source', {})}")
            _print(data["kernels"])
        if not files:
            print(f"no prior shipped in {DATA_DIR.relative_to(ROOT)}")
        return 0
    if args.keep < 1:
        ap.error(f"--keep {args.keep}: keep at least 1 point per kernel")
    sweeps = []
    for p in args.sweeps:
        try:
            data = json.loads(p.read_text())
            if not isinstance(data, dict) or not isinstance(data.get("kernels"), list):
                raise ValueError('no "kernels" list')
            sweeps.append(data)
        except (OSError, UnicodeDecodeError, ValueError) as e:
            print(f"make_prior: {p}: not a sweep written by bench/gpu_space.py --out ({e})", file=sys.stderr)
            return 2
    try:
        kernels = summarise(sweeps, args.keep)
    except (KeyError, TypeError, ZeroDivisionError) as e:
        print(f"make_prior: a sweep's kernel entry is malformed ({type(e).__name__}: {e})", file=sys.stderr)
        return 2
    if not kernels:
        print("make_prior: no kernel with a measured point in the sweeps: nothing written", file=sys.stderr)
        return 2
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=False).stdout.strip()  # fmt: skip
    except OSError:
        commit = ""
    devices = sorted({json.dumps(s.get("device", {}).get("fingerprint", {}), sort_keys=True) for s in sweeps})
    data = {"format": FORMAT, "version": VERSION, "target": args.target, "class": args.cls,
            "source": {"devices": [json.loads(d) for d in devices], "made_by": "bench/gpu_space.py + tools/make_prior.py",
                       "sweeps": [p.name for p in args.sweeps], "commit": commit,
                       "date": time.strftime("%Y-%m-%d", time.gmtime())},
            "kernels": kernels}  # fmt: skip
    out = args.out or DATA_DIR / f"{args.target}-{args.cls}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    _print(kernels)
    print(f"wrote {out} ({len(kernels)} kernels)")
    return 0


def _print(kernels: list[dict]) -> None:
    for k in kernels:
        top = next(iter(k["rel"]))
        print(f"{k['kind']:12s} {json.dumps(k['geometry'], sort_keys=True):70s} best {k['best_ms']:.4f} ms "
              f"default x{k['default_rel'] or float('nan'):.2f}  first: {top}")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
