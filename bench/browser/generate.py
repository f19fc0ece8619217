"""GPT-2 small generating with a KV cache in the browser: nnjit's session.generate against ONNX
Runtime Web's past_key_values loop, in one headless Chromium run.

    python tools/build_models.py --full --models gpt2_past --exporters legacy   # the model, once
    python bench/browser/generate.py                 # Wasm 2 and 1 threads (~10 min)
    python bench/browser/generate.py --configs wasm2 --repeats 5
    python bench/browser/generate.py --smoke         # or NNJIT_BENCH_SMOKE=1: the harness on a tiny case

The model is GPT-2 small (random weights, matrices N(0, 1/fan_in)) exported with its cache and HF's
names (models/gpt2_past-legacy.onnx). One generation bundle is compiled from it with
`nnjit compile MODEL -o gen --backend wasm --lengths 32,48,64,96,128,160 --max-length 160`
(bench/browser/out/generate/bundles/, reused while the sources, model and options are the
same): prefill variants of 32 to 160 prompt tokens and decode variants against caches of 32 to
160 rows, so a 32-token prompt prefills at exactly 32 and the cache grows 48, 64, 96, 128, 160
as the 128 new tokens come (attention over at most 16 to 32 masked rows past the tokens).

A page per configuration (Wasm 2 threads, Wasm 1 thread; run.py's server, flags and contenders,
bench.js): nnjit `session.generate(ids, {maxNewTokens})` (greedy) and ORT-web 1.30 on the same
ONNX file running the loop transformers.js runs (the prompt against an empty past [1, 12, 0, 64],
then one token per step with present.* fed back as past_key_values.*, attention_mask all ones,
position_ids; greedy argmax in JS). A warm-up generation each (nnjit compiles its variants'
kernels then), then --repeats interleaved rounds of one full generation each. Timed alike:
prefill = start to the first token (prompt in, first token out), decode tokens/s = (new tokens
- 1) / (last token - first token). Every run's tokens are checked against the others and against
onnxruntime's (Python, CPU) greedy tokens; a mismatch names the first step where they part and
the reference's margin between its top two logits there. nnjit's per-kernel time over the
decode steps of the timed rounds comes from the Wasm backend's step timings.

Writes bench/results/generation.md and generation.json (smoke: out/generate-smoke/results/).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import lengths  # noqa: E402  (bench/browser/lengths.py: bundle_sizes, _link)
import run as harness  # noqa: E402  (bench/browser/run.py: npm, bundles, page, server, Chromium)

ROOT = harness.ROOT
MODEL = ROOT / "models" / "gpt2_past-legacy.onnx"
TINY_MODEL = ROOT / "tests" / "models" / "gpt2_past-legacy.onnx"
COMPILE_LENGTHS = "32,48,64,96,128,160"
TARGET = 1.5  # nnjit decode tokens/s >= 1.5x ORT-web's
CONFIG_LABEL = {"wasm1": "Wasm, 1 thread", "wasm2": "Wasm, 2 threads"}
TOP_KERNELS = 12


def log(msg: str) -> None:
    harness.log(msg)


def uptime() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())


def decoder_info(model: Path) -> dict:
    """{heads, dim, vocab, positions} of the decoder, from onnxruntime's view of its inputs."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    s = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
    past = next(i for i in s.get_inputs() if i.name.startswith("past_key_values."))
    logits = next(o for o in s.get_outputs() if o.name == "logits")
    return {"heads": int(past.shape[1]), "dim": int(past.shape[3]), "vocab": int(logits.shape[2])}


def reference(model: Path, prompt: list[int], n: int) -> dict:
    """onnxruntime's greedy tokens (Python, CPU, step by step as transformers.js) and, per
    step, the margin between its two largest logits (a near-tie makes a mismatch plausible)."""
    from nnjit.runtime.generate import reference_greedy

    t0 = time.perf_counter()
    tokens, logits = reference_greedy(model, prompt, n)
    secs = time.perf_counter() - t0
    margins = [float(np.diff(np.sort(x)[-2:])[0]) for x in logits]
    return {"tokens": tokens, "margins": margins, "seconds": secs}


def first_difference(a: list[int], b: list[int]) -> int | None:
    """The first step where two token lists differ (None: equal)."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def median(xs: list[float]) -> float:
    return float(np.median(xs)) if xs else float("nan")


# ------------------------------------------------------------------------------ the page


def bench_config(page, cfg: str, urls: dict, info: dict, prompt: list[int], ref: dict, args) -> dict:
    """Loads both contenders, warms up, runs --repeats interleaved rounds; checks the tokens."""
    _, threads = harness.CONFIGS[cfg]
    res: dict = {"loadavg_start": os.getloadavg(), "uptime_start": uptime(), "load": {}, "first": {}, "runs": {"nnjit": [], "ort": []}}
    log(f"{cfg}: nnjit create() of the generation bundle")
    res["load"]["nnjit"] = page.call("nnjitGenLoad", "nnjit", urls["bundle"], {"threads": threads})
    log(f"{cfg}: ORT-web fetch + create")
    res["load"]["ort"] = page.call("ortGenLoad", "ort", urls["onnx"], {"heads": info["heads"], "dim": info["dim"]})
    n = args.new_tokens
    for cid in ("nnjit", "ort"):
        r = page.call("generate", cid, prompt, n)
        res["first"][cid] = r
        log(f"{cfg} {cid}: warm-up generation {r['ms'] / 1000:.1f} s (prefill {r['prefillMs']:.0f} ms, "
            f"{r['decodeTokensPerS']:.1f} tokens/s)")  # fmt: skip
    page.call("genProfile", "nnjit")  # (from here on, the decode steps' kernel times)
    for rnd in range(args.repeats):
        order = ("nnjit", "ort") if rnd % 2 == 0 else ("ort", "nnjit")
        for cid in order:
            time.sleep(args.pause_s)  # lets the other runtime's threads go idle
            r = page.call("generate", cid, prompt, n)
            r["loadavg"] = os.getloadavg()[0]
            res["runs"][cid].append(r)
        last = {c: res["runs"][c][-1] for c in order}
        log(f"{cfg} round {rnd + 1}/{args.repeats}: " + ", ".join(
            f"{c} prefill {r['prefillMs']:.0f} ms, {r['decodeTokensPerS']:.1f} tokens/s" for c, r in last.items())
            + f" (load {os.getloadavg()[0]:.2f})")  # fmt: skip
    res["profile"] = profile_groups(page.call("genProfile", "nnjit"))
    page.call("releaseAll")
    # the tokens: every run against onnxruntime's, and nnjit against ORT-web run by run
    mismatches = []
    for cid, runs in (("nnjit", res["runs"]["nnjit"]), ("ort", res["runs"]["ort"])):
        for i, r in enumerate([res["first"][cid], *runs]):
            d = first_difference(r["tokens"], ref["tokens"])
            if d is not None:
                mismatches.append({"engine": cid, "run": i, "step": d, "got": r["tokens"][d] if d < len(r["tokens"]) else None,
                                   "reference": ref["tokens"][d], "reference_margin": ref["margins"][d]})  # fmt: skip
    pairs = zip(res["runs"]["nnjit"], res["runs"]["ort"], strict=True)
    res["nnjit_vs_ort"] = [first_difference(a["tokens"], b["tokens"]) for a, b in pairs]
    res["mismatches"] = mismatches
    for cid in ("nnjit", "ort"):
        runs = res["runs"][cid]
        res[cid] = {"prefill_ms": median([r["prefillMs"] for r in runs]),
                    "decode_tokens_per_s": median([r["decodeTokensPerS"] for r in runs]),
                    "decode_min": min(r["decodeTokensPerS"] for r in runs), "decode_max": max(r["decodeTokensPerS"] for r in runs)}  # fmt: skip
        for r in runs:
            r.pop("tokens")
    for r in res["first"].values():
        r.pop("tokens")
    res["ratio"] = res["nnjit"]["decode_tokens_per_s"] / res["ort"]["decode_tokens_per_s"]
    res["loadavg_end"] = os.getloadavg()
    res["uptime_end"] = uptime()
    log(f"{cfg}: nnjit {res['nnjit']['decode_tokens_per_s']:.1f} tokens/s (prefill {res['nnjit']['prefill_ms']:.0f} ms), "
        f"ORT-web {res['ort']['decode_tokens_per_s']:.1f} tokens/s (prefill {res['ort']['prefill_ms']:.0f} ms): "
        f"{res['ratio']:.2f}x; token mismatches {len(mismatches)}")  # fmt: skip
    return res


def smoke(args) -> None:
    """--smoke (or NNJIT_BENCH_SMOKE=1): the harness on the tiny GPT-2 of tests/models (a prompt
    of 8, 16 new tokens, compiled lengths 8,16,24), the first configuration, one round."""
    harness.OUT = HERE / "out" / "generate-smoke"
    args.model = str(TINY_MODEL)
    args.prompt_tokens, args.new_tokens, args.repeats, args.pause_s = 8, 16, 1, 0.0
    args.lengths, args.max_length = "8,16,24", 24
    args.configs = args.configs.split(",")[0]
    if args.results == str(ROOT / "bench" / "results"):
        args.results = str(harness.OUT / "results")


def run(args) -> dict:
    t_start = time.perf_counter()
    deps = harness.ensure_node_modules()
    model = Path(args.model)
    if not model.is_file():
        raise SystemExit(f"{model} is missing: python tools/build_models.py --full --models gpt2_past --exporters legacy")
    configs = [c for c in args.configs.split(",") if c]
    for c in configs:
        if c not in CONFIG_LABEL:
            raise SystemExit(f"unknown configuration '{c}' (choose from {', '.join(CONFIG_LABEL)})")
    out = harness.OUT
    (out / "models").mkdir(parents=True, exist_ok=True)
    local = out / "models" / f"{model.stem.removesuffix('-legacy')}.onnx"
    lengths._link(model, local)
    info = decoder_info(model)
    prompt = [int(t) for t in np.random.default_rng(args.seed).integers(0, info["vocab"], args.prompt_tokens)]
    log(f"onnxruntime (Python) reference: {args.new_tokens} greedy tokens after a {len(prompt)}-token prompt")
    ref = reference(model, prompt, args.new_tokens)
    options = ["--backend", "wasm", "--lengths", args.lengths, "--max-length", str(args.max_length)]
    compile_load = os.getloadavg()
    name = local.stem
    compiled = harness.compile_bundles({name: local}, None, args.recompile, {name: options})
    sizes = lengths.bundle_sizes(out / "bundles" / name)
    plan = json.loads((out / "bundles" / name / "plan.json").read_text())
    urls = {"bundle": harness.out_url(f"bundles/{name}/"), "onnx": harness.out_url(f"models/{local.name}")}

    from playwright.sync_api import sync_playwright

    server = harness.make_server()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    results: dict = {
        "machine": harness.machine_info(), "packages": deps, "smoke": args.smoke,
        "model": str(model.relative_to(ROOT) if model.is_relative_to(ROOT) else model), "decoder": info,
        "prompt": prompt, "new_tokens": args.new_tokens, "repeats": args.repeats, "pause_s": args.pause_s,
        "compile_options": options, "compile": compiled[name], "onnx_bytes": model.stat().st_size, "compile_loadavg": compile_load, "sizes": sizes,
        "variants": len(plan["dynamic"]["variants"]), "reference": ref, "configs": {},
        "command": " ".join(["python bench/browser/generate.py", *args.argv]),
        "loadavg_start": os.getloadavg(), "uptime_start": uptime(), "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "nnjit_commit": harness._git_describe(),
    }  # fmt: skip
    try:
        with sync_playwright() as pw, harness.chromium_context(pw, "nnjit-bench-generate-") as ctx:
            for cfg in configs:
                entry = {"info": None}
                with harness.open_page(ctx, server.url, cfg, tfjs=False, entry=entry) as page:
                    r = bench_config(page, cfg, urls, info, prompt, ref, args)
                    r["info"], r["log"] = entry["info"], page.log[-20:]
                    results["configs"][cfg] = r
    finally:
        server.shutdown()
        server.server_close()
    results["loadavg_end"] = os.getloadavg()
    results["uptime_end"] = uptime()
    results["seconds"] = time.perf_counter() - t_start
    return results


# ------------------------------------------------------------------------------ report


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f}"


def _kernel_label(k: dict) -> str:
    """A kernel by its kind and operand shapes (weights and activations), e.g. matmul 1x768 · 768x2304."""
    shapes = ["x".join(map(str, s)) for s in k["shapes"]]
    return f"{k['kind']} " + " · ".join(shapes[:-1]) + (f" → {shapes[-1]}" if shapes else "")


def _operand_bytes(k: dict) -> int:
    """Bytes a kernel reads: its operands (all but its result; 4-byte elements), but for a
    gather the rows it picks (as many as it writes)."""
    if k["kind"] == "gather":
        return 4 * int(np.prod(k["shapes"][-1]))
    return sum(4 * int(np.prod(x)) for x in k["shapes"][:-1])


def profile_groups(prof: dict) -> dict:
    """The page's decode profile ({steps, kernels: {variant/kernel: {ms, calls, kind, shapes}}})
    with kernels of the same kind and shapes (a transformer's layers, the same kernel in
    several variants) counted together: {steps, groups: {label: {ms, calls, bytes, kind}}},
    bytes = the operands' (weights included)."""
    groups: dict[str, dict] = {}
    for k in prof["kernels"].values():
        g = groups.setdefault(_kernel_label(k), {"ms": 0.0, "calls": 0, "bytes": 0, "kind": k["kind"]})
        g["ms"] += k["ms"]
        g["calls"] += k["calls"]
        g["bytes"] += k["calls"] * _operand_bytes(k)
    return {"steps": prof["steps"], "groups": groups}


def profile_rows(prof: dict) -> tuple[list[str], list[str], float, float]:
    """(top kernels rows, per-kind rows, kernel ms per decode step, operand MB per step) of a
    grouped decode profile. GB/s: the operands' bytes over the kernel's time."""
    steps = max(prof["steps"], 1)
    groups = prof["groups"]
    total = sum(g["ms"] for g in groups.values()) or 1.0
    top = sorted(groups.items(), key=lambda kv: -kv[1]["ms"])[:TOP_KERNELS]
    rows = [f"| {label} | {g['calls'] / steps:.0f} | {g['ms'] / steps:.2f} | {100 * g['ms'] / total:.1f}% | "
            f"{g['bytes'] / steps / 1e6:.1f} | {g['bytes'] / max(g['ms'], 1e-9) / 1e6:.2f} |" for label, g in top]  # fmt: skip
    kinds: dict[str, float] = {}
    for g in groups.values():
        kinds[g["kind"]] = kinds.get(g["kind"], 0.0) + g["ms"]
    krows = [f"| {k} | {v / steps:.2f} | {100 * v / total:.1f}% |" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])]
    return rows, krows, total / steps, sum(g["bytes"] for g in groups.values()) / steps / 1e6


def report(res: dict) -> str:
    m = res["machine"]
    pk = res["packages"]
    d = res["decoder"]
    n = res["new_tokens"]
    lines = [
        "# Text generation in the browser: GPT-2 small, nnjit against ONNX Runtime Web",
        "",
        f"Measured {res['started']} by `{res['command']}` in one headless Chromium run ({res['seconds'] / 60:.1f} min), "
        f"nnjit `{res['nnjit_commit']}`." + (" **Smoke run: tiny model, numbers mean nothing.**" if res["smoke"] else ""),
        "",
        f"* Model: `{res['model']}` (" + ("the tiny test GPT-2" if res["smoke"] else
        "GPT-2 small, 124M parameters, random weights (matrices N(0, 1/fan_in)), exported with its cache by "
        "`python tools/build_models.py --full --models gpt2_past --exporters legacy`: opset 17, HF's names and dynamic axes, "
        "the LM head a copy of the embedding") + f"; {_mb(res['onnx_bytes'])} MB; {d['heads']} heads of {d['dim']}, vocabulary {d['vocab']}). "
        "The same file for both contenders.",
        f"* Task: a prompt of {len(res['prompt'])} token ids (random, seed 0), {n} new tokens, greedy. "
        f"Warm: one generation each first (nnjit compiles its variants' kernels then), then {res['repeats']} interleaved "
        f"rounds of one full generation each (order alternating, {res['pause_s']:g} s pause between); medians (min–max) "
        "over the rounds. Prefill = start of generate() to the first token (prompt in, first token out); decode = "
        f"({n} - 1) tokens / (last token - first token), the steps' own time with the argmax (and, for ORT-web, the "
        "copies of the cache in and out of its heap, as transformers.js pays).",
        "* nnjit: `" + " ".join(["nnjit compile model.onnx -o gen", *res["compile_options"]]) + "` "
        f"({res['variants']} shape variants: prefill at each length, decode against a cache of each length; one weights file), "
        "`session.generate(ids, {maxNewTokens})`, Wasm, `threads` as the configuration; its KV cache stays in the "
        "Wasm memory and only the logits are read back.",
        f"* ORT-web: `onnxruntime-web@{pk.get('onnxruntime-web')}`, wasm EP, `numThreads` as the configuration, graph "
        "optimisation `all`, with the past_key_values loop as transformers.js runs it: the prompt against an empty past "
        f"[1, {d['heads']}, 0, {d['dim']}], then one token per step with present.* fed back as past_key_values.*, "
        "attention_mask all ones, position_ids; argmax in JS.",
        f"* Machine: {m['cpu']}, {m['cores']} cores, {m['memory']} RAM, {m['os']}; {m['chromium']} (headless, fresh profile, "
        "cross-origin isolated). **Shared with other helpers' work**: /proc/loadavg "
        f"`{res['uptime_start']}` at the start, `{res['uptime_end']}` at the end (the load per configuration and per "
        "round is in generation.json); with a load above the core count every number is slower than on a quiet machine, "
        "the interleaved ratios less so.",
        "",
        "## Decode tokens/s and prefill",
        "",
        f"| configuration | nnjit decode tokens/s | ORT-web decode tokens/s | nnjit / ORT-web | target ≥ {TARGET:g}x | "
        "nnjit prefill ms | ORT-web prefill ms | tokens equal | load (start–end) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    summary = []
    for cfg, e in res["configs"].items():
        a, b = e["nnjit"], e["ort"]
        ok = e["ratio"] >= TARGET
        same = "yes" if not e["mismatches"] else f"**no** ({len(e['mismatches'])} runs differ)"
        lines.append(
            f"| {CONFIG_LABEL[cfg]} | {a['decode_tokens_per_s']:.1f} ({a['decode_min']:.1f}–{a['decode_max']:.1f}) | "
            f"{b['decode_tokens_per_s']:.1f} ({b['decode_min']:.1f}–{b['decode_max']:.1f}) | **{e['ratio']:.2f}x** | "
            f"{'✓' if ok else '✗'} | {a['prefill_ms']:.0f} | {b['prefill_ms']:.0f} | {same} | "
            f"{e['loadavg_start'][0]:.2f}–{e['loadavg_end'][0]:.2f} |"
        )  # fmt: skip
        summary.append(f"{CONFIG_LABEL[cfg]}: nnjit/ORT-web decode {e['ratio']:.2f}x (target {TARGET:g}x {'met' if ok else 'missed'}), "
                       f"prefill {a['prefill_ms']:.0f} vs {b['prefill_ms']:.0f} ms")  # fmt: skip
    lines += ["", "Warm-up generation (the first in the page; nnjit compiles the kernels of each variant on its first use):", "",
              "| configuration | nnjit create() s | nnjit first generation s | ORT-web fetch + create s | ORT-web first generation s |",
              "|---|---|---|---|---|"]  # fmt: skip
    for cfg, e in res["configs"].items():
        lines.append(f"| {CONFIG_LABEL[cfg]} | {e['load']['nnjit']['createMs'] / 1000:.1f} | {e['first']['nnjit']['ms'] / 1000:.1f} | "
                     f"{e['load']['ort']['createMs'] / 1000:.1f} | {e['first']['ort']['ms'] / 1000:.1f} |")  # fmt: skip
    lines += ["", "## Tokens", ""]
    ref = res["reference"]
    bad = [(cfg, x) for cfg, e in res["configs"].items() for x in e["mismatches"]]
    if not bad:
        lines.append(f"Every run of both contenders gave onnxruntime's (Python, CPU) {n} greedy tokens; the smallest margin "
                     f"between the reference's two largest logits over the steps was {min(ref['margins']):.2e}.")  # fmt: skip
    else:
        lines.append("**Mismatch** (a bug: both run the same model):")
        lines += [f"* {CONFIG_LABEL[cfg]}, {x['engine']} run {x['run']}: first differs at step {x['step']} "
                  f"(got {x['got']}, onnxruntime {x['reference']}; reference top-2 logit margin there {x['reference_margin']:.2e})"
                  for cfg, x in bad]  # fmt: skip
    s = res["sizes"]
    c = res["compile"]
    lines += ["", "## The bundle", "",
              "| total MB | weights MB | Wasm kernels (.wasm) MB | .wat MB | plan.json MB | compile s |", "|---|---|---|---|---|---|",
              f"| {_mb(s['total'])} | {_mb(s['weights'])} | {_mb(s['wasm'])} | {_mb(s['wat'])} | {_mb(s['plan'])} | {c['seconds']:.0f} |",
              "", "Compile s: wall time of `nnjit compile` on this machine, " + (
                  "from the earlier run that made the bundle (this run reused it: same sources, model and options)." if not c["compiled"]
                  else f"load average {res['compile_loadavg'][0]:.1f} when it started.") + " ORT-web fetches the .onnx "
              f"({_mb(res['onnx_bytes'])} MB).", ""]  # fmt: skip
    for cfg, e in res["configs"].items():
        prof = e.get("profile")
        if not prof or not prof["steps"]:
            continue
        rows, krows, per_step, mb = profile_rows(prof)
        step_ms = 1000 / e["nnjit"]["decode_tokens_per_s"]
        lines += [f"## Where nnjit's decode step goes, {CONFIG_LABEL[cfg]}", "",
                  f"The Wasm backend's time per kernel over the {prof['steps']} decode steps of the timed rounds (calls per step: averaged over them, whatever the cache size): "
                  f"{per_step:.1f} ms of kernels per step, of a step's {step_ms:.1f} ms at the median tokens/s (the rest: "
                  "writing the inputs, copying the new cache rows, reading the logits back, the argmax, the page). "
                  f"The kernels read {mb:.0f} MB of operands per step (weights and activations): {mb / per_step:.2f} GB/s "
                  "over the step. Kernels of the same kind and shapes (a transformer's layers) counted together; shapes "
                  "are the operands (weights included) → the result; MB and GB/s are the bytes read (a gather's: its rows).", "",
                  "| kernel | calls per step | ms per step | share of kernel time | MB per step | GB/s |",
                  "|---|---|---|---|---|---|", *rows, "",
                  "| kind | ms per step | share |", "|---|---|---|", *krows, ""]  # fmt: skip
    lines += ["## Summary", "", *[f"* {x}" for x in summary], ""]
    if res.get("notes"):  # (written into generation.json by hand after a run; --report renders them)
        lines += ["## Notes", "", *[f"* {x}" for x in res["notes"]], ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(MODEL), help="a decoder exported with its cache (HF names)")
    ap.add_argument("--configs", default="wasm2,wasm1", help="comma list of: wasm2, wasm1")
    ap.add_argument("--prompt-tokens", type=int, default=32, help="prompt length (random ids)")
    ap.add_argument("--new-tokens", type=int, default=128, help="tokens to generate (greedy)")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved timed rounds per configuration")
    ap.add_argument("--pause-s", type=float, default=1.0, help="seconds between two generations")
    ap.add_argument("--lengths", default=COMPILE_LENGTHS, help="nnjit compile --lengths")
    ap.add_argument("--max-length", type=int, default=160, help="nnjit compile --max-length (prompt + new tokens)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the prompt's ids")
    ap.add_argument("--recompile", action="store_true", help="recompile the bundle even if it is up to date")
    ap.add_argument("--results", default=str(ROOT / "bench" / "results"), help="folder for generation.md and .json")
    ap.add_argument("--smoke", action="store_true", default=os.environ.get("NNJIT_BENCH_SMOKE") == "1",
                    help="a tiny case that checks the harness runs (also NNJIT_BENCH_SMOKE=1)")  # fmt: skip
    ap.add_argument("--report", metavar="JSON", help="only write the report again from a results file (generation.json)")
    args = ap.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.report:
        res = json.loads(Path(args.report).read_text())
        (Path(args.report).parent / "generation.md").write_text(report(res))
        return 0
    harness.OUT = HERE / "out" / "generate"
    if args.smoke:
        smoke(args)
    if args.prompt_tokens + args.new_tokens > args.max_length:
        raise SystemExit(f"--prompt-tokens + --new-tokens is over --max-length {args.max_length}")
    harness.save_results(args.results, "generation", run(args), report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
