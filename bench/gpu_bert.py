"""BERT-base end to end on a GPU: nnjit on WebGPU (wgpu-py) against PyTorch fp32 eager, one run.

The GPU machine has no model files and takes at most 64 MiB of carried files, so:

    python bench/gpu_bert.py slim models/bert-legacy.onnx out/bert_slim     # here: compile, then
        # keep plan.json + kernels + the small weights (< 1 MiB each); big float weights are
        # regenerated on the GPU machine from a seed (speed does not depend on their values)
    python3 bench/gpu_bert.py run out/bert_slim                               # there
    (slim ... --tuning-records DIR applies records, e.g. from `nnjit tune --backend webgpu` there;
    slim ... --weights f16 stores the matmul weights as float16: bench/gpu_f16.py --bert runs it
    against PyTorch fp16)
    python bench/gpu_bert.py --smoke    # or NNJIT_BENCH_SMOKE=1: slim and run the tiny BERT of
        # tests/models on any adapter (lavapipe), 2 runs; PyTorch skipped with a line without CUDA

`run` rebuilds weights.bin, runs the bundle on WebGPU (warm median of --repeat runs), checks its
output against the same bundle on Wasm (wasmtime, CPU) when wasmtime is importable, and times a
PyTorch BERT-base written out here (same sizes: 12 layers, hidden 768, 12 heads, FFN 3072, seq 128,
exact GELU, TF32 off, eager, CUDA events) with random weights.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
SMALL = 1 << 20


def slim(model: str, out: str, records: str | None = None, candidates: int | None = None,
         weights_mode: str = "f32") -> None:  # fmt: skip
    from nnjit.compiler import compile_model
    from nnjit.frontend.compact import load_compact

    full = Path(out + ".full")
    compile_model(model, full, backends=["webgpu", "wasm"], tuning_records=records, candidates=candidates,
                  weights=weights_mode)  # fmt: skip
    plan = json.loads((full / "plan.json").read_text())
    entries = plan["weights"]["entries"]
    weights = load_compact(full / "weights.bin", {k: e for k, e in entries.items()
                                                  if e.get("compact", {}).get("format") in (None, "f16")})  # fmt: skip
    small = {k: np.asarray(v) for k, v in weights.items() if v.nbytes < SMALL or v.dtype.kind != "f"}
    dst = Path(out)
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(full, dst, ignore=shutil.ignore_patterns("weights.bin", "*.wat"))
    np.savez(dst / "small_weights.npz", **{f"w{i}": v for i, v in enumerate(small.values())})
    (dst / "small_keys.json").write_text(json.dumps(list(small)))
    shutil.rmtree(full)
    print(f"slim bundle: {dst} ({sum(f.stat().st_size for f in dst.rglob('*') if f.is_file()) >> 20} MiB)")


def rebuild_weights(bundle: Path) -> None:
    from nnjit.frontend.weights import save_weights

    plan = json.loads((bundle / "plan.json").read_text())
    keys = json.loads((bundle / "small_keys.json").read_text())
    npz = np.load(bundle / "small_weights.npz")
    small = {k: npz[f"w{i}"] for i, k in enumerate(keys)}
    from nnjit.frontend.compact import encode
    from nnjit.passes.nn_tensor_pack_weights import pack_array, parse_pack_key

    rng = np.random.default_rng(0)
    weights = {}
    entries = plan["weights"]["entries"]
    for key, e in entries.items():
        half = e.get("compact", {}).get("format") == "f16"  # (--weights f16: stored as float16)
        if key in small:
            weights[key] = encode(small[key])[0] if half else small[key]
        elif parse_pack_key(key) is None:
            w = (rng.standard_normal(e["shape"]) * 0.02).astype(e["dtype"])
            weights[key] = encode(w)[0] if half else w
    for key, e in entries.items():  # Wasm reads matmul weights packed: pack the same values
        parsed = parse_pack_key(key)
        if parsed is not None and key not in weights:
            base, layout, nr = parsed
            if base not in weights:  # the base itself is not in the bundle: make it once
                shape = _unpacked_shape(e["shape"], layout, nr)
                weights[base] = (rng.standard_normal(shape) * 0.02).astype(e["dtype"])
            base_w = weights[base]
            if base_w.dtype == np.uint8:  # (a float16 entry's bytes)
                base_w = base_w.view("<f2").astype(np.float32).reshape(_unpacked_shape(e["shape"], layout, nr))
            packed = pack_array(base_w, layout, nr)
            weights[key] = encode(packed)[0] if e.get("compact", {}).get("format") == "f16" else packed
    weights = {k: weights[k] for k in entries}
    index = save_weights(weights, bundle / "weights.bin")
    assert all(index[k]["offset"] == e["offset"] for k, e in plan["weights"]["entries"].items())


def _unpacked_shape(packed: list[int], layout: str, nr: int) -> list[int]:
    """[K, N] of a B matrix packed as [N/nr, K, nr] ("kn") or [K/nr, N, nr] ("nk")."""
    a, b, _ = packed
    return [b, a * nr] if layout == "kn" else [a * nr, b]


def torch_bert_ms(repeat: int, half: bool = False) -> float:
    """PyTorch eager BERT-base, fp32 (TF32 off) or, with `half`, everything in fp16."""
    import torch
    import torch.nn.functional as F

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = "cuda"
    dt = torch.float16 if half else torch.float32
    L, H, NH, FF, S, V = 12, 768, 12, 3072, 128, 30522
    g = torch.Generator(device=dev).manual_seed(0)

    def w(*shape):
        return (torch.randn(*shape, device=dev, generator=g) * 0.02).to(dt)

    emb, pos, typ = w(V, H), w(512, H), w(2, H)
    layers = [
        dict(qkv=w(H, 3 * H), bqkv=w(3 * H), o=w(H, H), bo=w(H), f1=w(H, FF), b1=w(FF),
             f2=w(FF, H), b2=w(H), g1=torch.ones(H, device=dev, dtype=dt), e1=w(H),
             g2=torch.ones(H, device=dev, dtype=dt), e2=w(H))  # fmt: skip
        for _ in range(L)
    ]
    ids = torch.randint(0, V, (1, S), device=dev)
    mask = torch.ones(1, S, device=dev, dtype=dt)

    @torch.no_grad()
    def forward():
        x = emb[ids] + pos[:S] + typ[0]
        x = F.layer_norm(x, (H,))
        bias = (1.0 - mask[:, None, None, :]) * -10000.0
        for p in layers:
            q, k, v = (x @ p["qkv"] + p["bqkv"]).split(H, dim=-1)
            q, k, v = (t.view(1, S, NH, H // NH).transpose(1, 2) for t in (q, k, v))
            a = torch.softmax(q @ k.transpose(-1, -2) / 8.0 + bias, dim=-1) @ v
            a = a.transpose(1, 2).reshape(1, S, H) @ p["o"] + p["bo"]
            x = F.layer_norm(x + a, (H,), p["g1"], p["e1"])
            f = F.gelu(x @ p["f1"] + p["b1"]) @ p["f2"] + p["b2"]
            x = F.layer_norm(x + f, (H,), p["g2"], p["e2"])
        return x

    for _ in range(5):
        forward()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        forward()
        e.record()
        torch.cuda.synchronize()
        times.append(s.elapsed_time(e))
    return statistics.median(times)


def _timed(sess, feeds, repeat: int) -> tuple[float, float]:
    """(warm median ms of whole runs, sum of the steps' GPU times in ms)."""
    sess.run(feeds)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        sess.run(feeds)
        times.append(time.perf_counter() - t0)
    impl = sess._impl  # GPU time of the kernels alone: each step timed with timestamp queries
    gpu_s = sum(
        statistics.median(impl.rt.time_kernel(impl.kernels[st["kernel"]],
                                              impl._args(st, impl.kernels[st["kernel"]]), 5))
        for st in impl.bplan["steps"]
    )  # fmt: skip
    return statistics.median(times) * 1000, gpu_s * 1000


def run(bundle: str, repeat: int, smoke: bool = False, tune: float | None = None, tuned: str | None = None) -> None:
    """Times the bundle as it loads (each kernel: its device class's first candidate, or its
    own file), and with `tune`: the shipped default `{}` of every kernel (candidate 0, what ran
    before the prior), then the page's tuning within `tune` seconds (Session.tune); `tuned`: a
    second bundle (e.g. compiled with exhaustive records) timed in the same run."""
    from nnjit.runtime.session import Session, random_feeds

    rows: list[tuple[str, float, float]] = []
    b = Path(bundle)
    t0 = time.perf_counter()
    rebuild_weights(b)
    print(f"weights rebuilt in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    sess = Session(b, "webgpu", verify=False)
    load = time.perf_counter() - t0
    print(f"device: {sess._impl.rt.info.get('name')} (class {sess._impl.device_class}); bundle loaded in {load:.2f} s")
    feeds = random_feeds(sess.plan, 3)
    t0 = time.perf_counter()
    out = sess.run(feeds)
    first = time.perf_counter() - t0
    rows.append(("as loaded (each kernel: its class's first candidate)", *_timed(sess, feeds, repeat)))
    if tune is not None:
        impl = sess._impl
        picked = dict(impl.choices)
        for name in picked:  # the default schedule everywhere: what a page ran before the prior
            impl._use(name, impl.bplan["kernels"][name], 0)
        rows.insert(0, ("default schedules `{}` (candidate 0)", *_timed(sess, feeds, repeat)))
        for name, c in picked.items():
            impl._use(name, impl.bplan["kernels"][name], c)
        rep = sess.tune(budget=tune)
        print(f"page-like tuning: {len(rep['tuned'])} kernels timed, {len(rep['shared'])} shared, "
              f"{len(rep['out_of_budget'])} past the budget, {len(rep['cut_short'])} cut short, "
              f"{len(rep['failed'])} failed, {rep['elapsed_s']:.1f} s (budget {tune:g} s)")  # fmt: skip
        rows.append((f"tuned in the run among the shipped candidates ({tune:g} s budget)", *_timed(sess, feeds, repeat)))
    if tuned:
        tb = Path(tuned)
        rebuild_weights(tb)
        ts = Session(tb, "webgpu", verify=False)
        rows.append((f"{tb.name} (as loaded)", *_timed(ts, feeds, repeat)))
    try:
        wasm = Session(b, "wasm", verify=False, threads=os.cpu_count() or 1)
        ref = wasm.run(feeds)
        errs = []
        for k in out:
            r = ref[k].astype(np.float64)
            errs.append(float(np.max(np.abs(out[k] - r)) / np.max(np.abs(r))))
        check = f"{max(errs):.2e} (WebGPU vs Wasm on the CPU)"
    except ImportError:
        check = "not checked (no wasmtime)"
    from bench.smoke import cuda_missing

    why = cuda_missing()
    if why is not None and smoke:
        print(f"smoke: PyTorch side skipped ({why})")
    torch_ms = torch_bert_ms(repeat) if why is None or not smoke else float("nan")
    print(f"\nfirst run: {first * 1000:.1f} ms")
    print("\n| BERT-base, batch 1, seq 128, fp32 | warm median (ms) | kernels alone, sum of GPU times (ms) | / PyTorch |")
    print("|---|---|---|---|")
    for what, ms, gpu in rows:
        print(f"| nnjit WebGPU (wgpu-py, Vulkan): {what} | {ms:.2f} | {gpu:.2f} | {ms / torch_ms:.2f} |")
    print(f"| PyTorch eager (cuBLAS, TF32 off) | {torch_ms:.2f} | - | 1.00 |")
    print(f"\noutput check: {check}")


def main() -> int:
    from bench.smoke import TINY_DEFAULT, add_flag

    ap = argparse.ArgumentParser()
    add_flag(ap)
    sub = ap.add_subparsers(dest="cmd")
    s = sub.add_parser("slim")
    s.add_argument("model")
    s.add_argument("out")
    s.add_argument("--tuning-records", help="records file/dir (e.g. tuned on the GPU machine)")
    s.add_argument("--candidates", type=int, default=None, help="nnjit compile --candidates (default: its default)")
    s.add_argument("--weights", default="f32", help="nnjit compile --weights (f16: float16 matmul weights)")
    r = sub.add_parser("run")
    r.add_argument("bundle")
    r.add_argument("--repeat", type=int, default=20)
    r.add_argument("--tune", type=float, default=None, metavar="SECONDS",
                   help="also time the default schedules and the page's tuning within SECONDS")
    r.add_argument("--tuned", metavar="BUNDLE", help="another slim bundle to time in the same run")
    args = ap.parse_args()
    if args.cmd is None and args.smoke:
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            slim(str(TINY_DEFAULT), str(Path(d) / "slim"))
            run(str(Path(d) / "slim"), 2, smoke=True, tune=5.0)
        return 0
    if args.cmd is None:
        ap.error("say slim or run (or --smoke)")
    if args.cmd == "slim":
        slim(args.model, args.out, args.tuning_records, args.candidates, args.weights)
    else:
        run(args.bundle, args.repeat, tune=args.tune, tuned=args.tuned)
    return 0


if __name__ == "__main__":
    sys.exit(main())
