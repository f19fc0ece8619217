"""GPT-2 small text generation on a GPU: nnjit on WebGPU (wgpu-py) against PyTorch eager fp32,
one run: prefill of a 32-token prompt and greedy decode tokens/s over 128 new tokens.

The GPU machine has no model files and takes at most 64 MiB of carried files, so, as
bench/gpu_bert.py does:

    python bench/gpu_generate.py slim models/gpt2_past-legacy.onnx out/gpt2_slim   # here
    python3 bench/gpu_generate.py run out/gpt2_slim                                # there
    python bench/gpu_generate.py --smoke    # or NNJIT_BENCH_SMOKE=1: the tiny GPT-2 of
        # tests/models on any adapter (lavapipe); PyTorch skipped without CUDA

`slim` compiles a WebGPU generation bundle (prompt bucket 32, cache sizes up to 160) and keeps
plan.json, the kernels and the small weights; `run` regenerates the big float weights from a
seed (a step's speed does not depend on their values), generates on WebGPU, and times a PyTorch
GPT-2 small written out here (12 layers, hidden 768, 12 heads, vocab 50257, KV cache by
torch.cat, TF32 off, eager) with random weights of the same shapes, the same loop (a token's
argmax read back at every step).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")

PROMPT, NEW = 32, 128
LENGTHS = [32, 48, 64, 96, 128, 160]


def slim(model: str, out: str, lengths: list[int], max_length: int) -> None:
    import json
    import shutil

    import numpy as np

    from bench.gpu_bert import SMALL
    from nnjit.compiler import compile_model
    from nnjit.frontend.weights import load_weights

    full = Path(out + ".full")
    t0 = time.perf_counter()
    compile_model(model, full, backends=["webgpu"], lengths=lengths, max_length=max_length, web_runtime=False)
    print(f"compiled in {time.perf_counter() - t0:.1f} s")
    plan = json.loads((full / "plan.json").read_text())
    weights = load_weights(full / "weights.bin", plan["weights"]["entries"])
    small = {k: np.asarray(v) for k, v in weights.items() if v.nbytes < SMALL or v.dtype.kind != "f"}
    dst = Path(out)
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(full, dst, ignore=shutil.ignore_patterns("weights.bin"))
    np.savez(dst / "small_weights.npz", **{f"w{i}": v for i, v in enumerate(small.values())})
    (dst / "small_keys.json").write_text(json.dumps(list(small)))
    shutil.rmtree(full)
    print(f"slim bundle: {dst} ({sum(f.stat().st_size for f in dst.rglob('*') if f.is_file()) >> 20} MiB)")


def torch_gpt2(prompt_len: int, new: int, repeat: int) -> tuple[float, float]:
    """(prefill ms, decode tokens/s) of a PyTorch GPT-2 small, eager fp32, medians."""
    import torch
    import torch.nn.functional as F

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = "cuda"
    L, H, NH, V, P = 12, 768, 12, 50257, 1024
    D = H // NH
    g = torch.Generator(device=dev).manual_seed(0)

    def w(*shape):
        return torch.randn(*shape, device=dev, generator=g) * 0.02

    wte, wpe = w(V, H), w(P, H)
    layers = [dict(qkv=w(H, 3 * H), bqkv=w(3 * H), o=w(H, H), bo=w(H), f1=w(H, 4 * H), b1=w(4 * H),
                   f2=w(4 * H, H), b2=w(H)) for _ in range(L)]  # fmt: skip

    @torch.no_grad()
    def step(ids, pos0, cache):
        n = ids.shape[1]
        x = wte[ids] + wpe[pos0 : pos0 + n]
        for i, p in enumerate(layers):
            h = F.layer_norm(x, (H,))
            q, k, v = (h @ p["qkv"] + p["bqkv"]).split(H, dim=-1)
            q, k, v = (t.view(1, n, NH, D).transpose(1, 2) for t in (q, k, v))
            if cache[i] is not None:
                k, v = torch.cat([cache[i][0], k], 2), torch.cat([cache[i][1], v], 2)
            cache[i] = (k, v)
            a = F.scaled_dot_product_attention(q, k, v, is_causal=n > 1)
            x = x + a.transpose(1, 2).reshape(1, n, H) @ p["o"] + p["bo"]
            h = F.layer_norm(x, (H,))
            x = x + F.gelu(h @ p["f1"] + p["b1"], approximate="tanh") @ p["f2"] + p["b2"]
        return F.layer_norm(x[:, -1], (H,)) @ wte.T

    def generate():
        cache = [None] * L
        ids = torch.randint(0, V, (1, prompt_len), device=dev, generator=g)
        t0 = time.perf_counter()
        tok = int(step(ids, 0, cache).argmax())
        t1 = time.perf_counter()
        for i in range(new - 1):
            tok = int(step(torch.tensor([[tok]], device=dev), prompt_len + i, cache).argmax())
        t2 = time.perf_counter()
        return (t1 - t0) * 1e3, (new - 1) / (t2 - t1)

    generate()
    runs = [generate() for _ in range(repeat)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def run(bundle: str, repeat: int, smoke: bool = False) -> None:
    import numpy as np

    from bench.gpu_bert import rebuild_weights
    from bench.smoke import cuda_missing
    from nnjit.runtime.session import Session

    b = Path(bundle)
    rebuild_weights(b)
    sess = Session(b, "webgpu", verify=False)
    print(f"device: {sess._impl.rt.info.get('name')}")
    gen = sess.plan["generation"]
    top = max(sess.plan["dynamic"]["variants"][i]["bind"][gen["dims"]["past"]] for i in gen["decode"])
    prompt_len, new = (PROMPT, NEW) if top >= PROMPT + NEW else (4, top - 4)
    vocab = next(i for i in sess.plan["model"]["inputs"] if i["name"] == "input_ids").get("range", 2)
    prompt = np.random.default_rng(0).integers(0, vocab, prompt_len).tolist()
    t0 = time.perf_counter()
    sess.generate(prompt, new)
    print(f"first generation (kernels made): {time.perf_counter() - t0:.1f} s")
    stats = []
    for _ in range(repeat):
        sess.generate(prompt, new)
        stats.append(sess.generation_stats)
    pre = statistics.median(s["prefill_ms"] for s in stats)
    rate = statistics.median(s["decode_tokens_per_s"] for s in stats)
    why = cuda_missing()
    if why is not None and smoke:
        print(f"smoke: PyTorch side skipped ({why})")
        t_pre, t_rate = float("nan"), float("nan")
    else:
        t_pre, t_rate = torch_gpt2(prompt_len, new, repeat)
    print(f"\n| GPT-2 small, fp32, prompt {prompt_len}, {new} new tokens, greedy | prefill (ms) | decode (tokens/s) |")
    print("|---|---|---|")
    print(f"| nnjit WebGPU (wgpu-py, Vulkan) | {pre:.1f} | {rate:.1f} |")
    print(f"| PyTorch eager fp32 (cuBLAS, TF32 off) | {t_pre:.1f} | {t_rate:.1f} |")
    print(f"\nnnjit / PyTorch decode tokens/s: {rate / t_rate:.2f}")


def main() -> int:
    from bench.smoke import add_flag

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_flag(ap)
    sub = ap.add_subparsers(dest="cmd")
    s = sub.add_parser("slim")
    s.add_argument("model")
    s.add_argument("out")
    s.add_argument("--lengths", default=",".join(map(str, LENGTHS)))
    s.add_argument("--max-length", type=int, default=PROMPT + NEW)
    r = sub.add_parser("run")
    r.add_argument("bundle")
    r.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if args.smoke:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            out = str(Path(tmp) / "slim")
            slim(str(ROOT / "tests" / "models" / "gpt2_past-legacy.onnx"), out, [8, 16], 32)
            run(out, 1, smoke=True)
        return 0
    if args.cmd == "slim":
        slim(args.model, args.out, [int(x) for x in args.lengths.split(",")], args.max_length)
    elif args.cmd == "run":
        run(args.bundle, args.repeat)
    else:
        ap.error("give slim or run (or --smoke)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
