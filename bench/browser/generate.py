"""GPT-2 small generating with a KV cache in the browser: nnjit's session.generate against ONNX
Runtime Web's past_key_values loop, in one headless Chromium run.

    python tools/build_models.py --full --models gpt2_past --exporters legacy   # the model, once
    python bench/browser/generate.py                 # Wasm 2 and 1 threads (~10 min)
    python bench/browser/generate.py --configs wasm2 --repeats 5
    python bench/browser/generate.py --contenders nnjit,nnjit-int8,ort,ort-int8  # + ORT-web on quantize_dynamic's model
    python bench/browser/generate.py --smoke         # or NNJIT_BENCH_SMOKE=1: the harness on a tiny case

The model is GPT-2 small (random weights, matrices N(0, 1/fan_in)) exported with its cache and HF's
names (models/gpt2_past-legacy.onnx). One generation bundle is compiled from it with
`nnjit compile MODEL -o gen --backend wasm --lengths 32,48,64,96,128,160 --max-length 160`
(bench/browser/out/generate/bundles/, reused while the sources, model and options are the
same): prefill variants of 32 to 160 prompt tokens and decode variants against caches of 32 to
160 rows, so a 32-token prompt prefills at exactly 32 and the cache grows 48, 64, 96, 128, 160
as the 128 new tokens come (attention over at most 16 to 32 masked rows past the tokens).
A second bundle is compiled the same way with `--weights int8` (contender nnjit-int8: the Wasm
matmuls read their weights as int8 bytes, nnjit/passes/nn_tensor_int8_weights.py); contender
ort-int8 (not run by default) is ORT-web on onnxruntime's quantize_dynamic(QInt8) of the model;
contender nnjit-int8dot (not run by default) adds `--int8-dot 0`: the int8 matmuls quantize
their activation rows to 12-bit integers and take integer dots (same weight bytes, in k pairs).

A page per configuration (Wasm 2 threads, Wasm 1 thread; run.py's server, flags and contenders,
bench.js): nnjit `session.generate(ids, {maxNewTokens})` (greedy) and ORT-web 1.30 on the same
ONNX file running the loop transformers.js runs (the prompt against an empty past [1, 12, 0, 64],
then one token per step with present.* fed back as past_key_values.*, attention_mask all ones,
position_ids; greedy argmax in JS). A warm-up generation each (nnjit compiles its variants'
kernels then), then --repeats interleaved rounds of one full generation each. Timed alike:
prefill = start to the first token (prompt in, first token out), decode tokens/s = (new tokens
- 1) / (last token - first token). The fp32 contenders' tokens are checked against
onnxruntime's (Python, CPU) greedy tokens; a mismatch names the first step where they part and
the reference's margin between its top two logits there. The int8 contenders' agreement with
them is reported (how many of the first 32 tokens are equal: informative, int8 weights change
the logits). nnjit's per-kernel time over the decode steps of the timed rounds comes from the
Wasm backend's step timings.

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
CONTENDERS = {"nnjit": "nnjit (fp32 weights)", "nnjit-int8": "nnjit `--weights int8`",
              "nnjit-int8dot": "nnjit `--weights int8 --int8-dot 0`", "ort": "ORT-web (fp32)",
              "ort-int8": "ORT-web, quantize_dynamic int8"}  # fmt: skip
NNJIT_OPTIONS = {"nnjit": [], "nnjit-int8": ["--weights", "int8"],
                 "nnjit-int8dot": ["--weights", "int8", "--int8-dot", "0"]}  # fmt: skip
"""Each nnjit contender's bundle: `nnjit compile` options past the common ones."""
EXACT = ("nnjit", "ort")  # contenders that must give the reference's tokens
AGREE_TOKENS = 32  # int8 contenders: agreement with the fp32 tokens over this many
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


def _agreement(tokens: list[int], ref: list[int]) -> dict:
    """How an int8 contender's tokens agree with the fp32 reference's: the first step that
    differs and how many of the first AGREE_TOKENS are equal."""
    n = min(AGREE_TOKENS, len(ref))
    return {"first_difference": first_difference(tokens, ref), "equal": sum(a == b for a, b in zip(tokens[:n], ref[:n])), "of": n}


def bench_config(page, cfg: str, urls: dict, info: dict, prompt: list[int], ref: dict, args) -> dict:
    """Loads the contenders, warms up, runs --repeats interleaved rounds; checks the tokens."""
    _, threads = harness.CONFIGS[cfg]
    cids = list(urls["contenders"])
    res: dict = {"loadavg_start": os.getloadavg(), "uptime_start": uptime(), "contenders": cids, "load": {}, "first": {},
                 "runs": {c: [] for c in cids}}  # fmt: skip
    for cid, url in urls["contenders"].items():
        if cid.startswith("nnjit"):
            log(f"{cfg}: {cid} create() of the generation bundle")
            res["load"][cid] = page.call("nnjitGenLoad", cid, url, {"threads": threads})
        else:
            log(f"{cfg}: {cid} fetch + create")
            res["load"][cid] = page.call("ortGenLoad", cid, url, {"heads": info["heads"], "dim": info["dim"]})
    n = args.new_tokens
    for cid in cids:
        r = page.call("generate", cid, prompt, n)
        res["first"][cid] = r
        log(f"{cfg} {cid}: warm-up generation {r['ms'] / 1000:.1f} s (prefill {r['prefillMs']:.0f} ms, "
            f"{r['decodeTokensPerS']:.1f} tokens/s)")  # fmt: skip
    for cid in cids:
        if cid.startswith("nnjit"):
            page.call("genProfile", cid)  # (from here on, the decode steps' kernel times)
    for rnd in range(args.repeats):
        order = cids[rnd % len(cids):] + cids[: rnd % len(cids)]  # (each contender first in turn)
        for cid in order:
            time.sleep(args.pause_s)  # lets the other runtime's threads go idle
            r = page.call("generate", cid, prompt, n)
            r["loadavg"] = os.getloadavg()[0]
            res["runs"][cid].append(r)
        last = {c: res["runs"][c][-1] for c in order}
        log(f"{cfg} round {rnd + 1}/{args.repeats}: " + ", ".join(
            f"{c} prefill {r['prefillMs']:.0f} ms, {r['decodeTokensPerS']:.1f} tokens/s" for c, r in last.items())
            + f" (load {os.getloadavg()[0]:.2f})")  # fmt: skip
    res["profiles"] = {cid: profile_groups(page.call("genProfile", cid)) for cid in cids if cid.startswith("nnjit")}
    res["profile"] = res["profiles"].get("nnjit")
    page.call("releaseAll")
    # the tokens: every fp32 run against onnxruntime's; the int8 contenders' agreement with them
    mismatches = []
    res["agreement"] = {}
    for cid in cids:
        runs = [res["first"][cid], *res["runs"][cid]]
        if cid not in EXACT:
            res["agreement"][cid] = [_agreement(r["tokens"], ref["tokens"]) for r in runs]
            continue
        for i, r in enumerate(runs):
            d = first_difference(r["tokens"], ref["tokens"])
            if d is not None:
                mismatches.append({"engine": cid, "run": i, "step": d, "got": r["tokens"][d] if d < len(r["tokens"]) else None,
                                   "reference": ref["tokens"][d], "reference_margin": ref["margins"][d]})  # fmt: skip
    if "nnjit" in cids and "ort" in cids:
        pairs = zip(res["runs"]["nnjit"], res["runs"]["ort"], strict=True)
        res["nnjit_vs_ort"] = [first_difference(a["tokens"], b["tokens"]) for a, b in pairs]
    res["mismatches"] = mismatches
    for cid in cids:
        runs = res["runs"][cid]
        res[cid] = {"prefill_ms": median([r["prefillMs"] for r in runs]),
                    "decode_tokens_per_s": median([r["decodeTokensPerS"] for r in runs]),
                    "decode_min": min(r["decodeTokensPerS"] for r in runs), "decode_max": max(r["decodeTokensPerS"] for r in runs)}  # fmt: skip
        for r in runs:
            r.pop("tokens")
    for r in res["first"].values():
        r.pop("tokens")
    base = res["ort"]["decode_tokens_per_s"] if "ort" in cids else float("nan")
    res["ratios"] = {cid: res[cid]["decode_tokens_per_s"] / base for cid in cids}
    res["ratio"] = res["ratios"].get("nnjit", float("nan"))
    res["loadavg_end"] = os.getloadavg()
    res["uptime_end"] = uptime()
    log(f"{cfg}: " + ", ".join(f"{c} {res[c]['decode_tokens_per_s']:.1f} tokens/s (prefill {res[c]['prefill_ms']:.0f} ms, "
                               f"{res['ratios'][c]:.2f}x ORT-web)" for c in cids)
        + f"; token mismatches {len(mismatches)}")  # fmt: skip
    return res


def quantized_model(model: Path, out: Path) -> Path:
    """onnxruntime's quantize_dynamic(QInt8) of the model (the ort-int8 contender's), made once."""
    q = out / f"{model.stem}.qint8.onnx"
    if not q.is_file() or q.stat().st_mtime < model.stat().st_mtime:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        log(f"quantize_dynamic(QInt8) of {model.name}")
        tmp = q.with_suffix(".tmp.onnx")
        quantize_dynamic(str(model), str(tmp), weight_type=QuantType.QInt8)
        tmp.replace(q)
    return q


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
    cids = [c for c in args.contenders.split(",") if c]
    for c in cids:
        if c not in CONTENDERS:
            raise SystemExit(f"unknown contender '{c}' (choose from {', '.join(CONTENDERS)})")
    jobs = {name + c.removeprefix("nnjit"): c for c in cids if c.startswith("nnjit")}
    extra = {b: options + NNJIT_OPTIONS[c] for b, c in jobs.items()}
    compiled = harness.compile_bundles({b: local for b in jobs}, None, args.recompile, extra)
    sizes = {c: lengths.bundle_sizes(out / "bundles" / b) for b, c in jobs.items()}
    plan = json.loads((out / "bundles" / next(iter(jobs)) / "plan.json").read_text())
    by_cid = {c: harness.out_url(f"bundles/{b}/") for b, c in jobs.items()}
    if "ort" in cids:
        by_cid["ort"] = harness.out_url(f"models/{local.name}")
    if "ort-int8" in cids:
        by_cid["ort-int8"] = harness.out_url(f"models/{quantized_model(local, out / 'models').name}")
    urls = {"contenders": {c: by_cid[c] for c in cids}}

    from playwright.sync_api import sync_playwright

    server = harness.make_server()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    results: dict = {
        "machine": harness.machine_info(), "packages": deps, "smoke": args.smoke,
        "model": str(model.relative_to(ROOT) if model.is_relative_to(ROOT) else model), "decoder": info,
        "prompt": prompt, "new_tokens": args.new_tokens, "repeats": args.repeats, "pause_s": args.pause_s,
        "compile_options": options, "compile": {c: compiled[b] for b, c in jobs.items()}, "onnx_bytes": model.stat().st_size,
        "compile_loadavg": compile_load, "sizes": sizes, "contenders": cids,
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
    """Bytes a kernel reads: its operands (all but its result; their manifest bytes: 1 an
    element for int8 weights, 4 for the others), but for a gather the rows it picks (as many
    as it writes)."""
    if k["kind"] == "gather":
        return 4 * int(np.prod(k["shapes"][-1]))
    return sum(k["bytes"][:-1]) if k.get("bytes") else sum(4 * int(np.prod(x)) for x in k["shapes"][:-1])


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
        f"| configuration | contender | decode tokens/s | vs ORT-web fp32 | target ≥ {TARGET:g}x | prefill ms | tokens | load (start–end) |",
        "|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    summary = []
    for cfg, e in res["configs"].items():
        for cid in _contenders(e):
            a = e[cid]
            ratio = _ratios(e)[cid]
            if cid in EXACT:
                bad = [x for x in e["mismatches"] if x["engine"] == cid]
                same = "= reference" if not bad else f"**differ** ({len(bad)} runs)"
            else:
                ag = e["agreement"][cid]
                same = f"{min(x['equal'] for x in ag)}–{max(x['equal'] for x in ag)} of {ag[0]['of']} equal"
            target = "" if cid.startswith("ort") else ("✓" if ratio >= TARGET else "✗")
            lines.append(
                f"| {CONFIG_LABEL[cfg]} | {CONTENDERS[cid]} | {a['decode_tokens_per_s']:.1f} ({a['decode_min']:.1f}–{a['decode_max']:.1f}) | "
                f"{'**' if cid.startswith('nnjit') else ''}{ratio:.2f}x{'**' if cid.startswith('nnjit') else ''} | {target} | "
                f"{a['prefill_ms']:.0f} | {same} | {e['loadavg_start'][0]:.2f}–{e['loadavg_end'][0]:.2f} |"
            )  # fmt: skip
        summary.append(f"{CONFIG_LABEL[cfg]}: " + ", ".join(
            f"{CONTENDERS[c]} {e[c]['decode_tokens_per_s']:.1f} tokens/s ({_ratios(e)[c]:.2f}x ORT-web fp32), prefill {e[c]['prefill_ms']:.0f} ms"
            for c in _contenders(e)))  # fmt: skip
    lines += ["", "Warm-up generation (the first in the page; nnjit compiles the kernels of each variant on its first use):", "",
              "| configuration | contender | create() / fetch + create s | first generation s |", "|---|---|---|---|"]  # fmt: skip
    for cfg, e in res["configs"].items():
        for cid in _contenders(e):
            lines.append(f"| {CONFIG_LABEL[cfg]} | {CONTENDERS[cid]} | {e['load'][cid]['createMs'] / 1000:.1f} | {e['first'][cid]['ms'] / 1000:.1f} |")
    lines += ["", "## Tokens", ""]
    ref = res["reference"]
    bad = [(cfg, x) for cfg, e in res["configs"].items() for x in e["mismatches"]]
    exact = [CONTENDERS[c] for c in EXACT if c in res.get("contenders", EXACT)]
    if not bad:
        lines.append(f"Every run of {' and '.join(exact)} gave onnxruntime's (Python, CPU) {n} greedy tokens; the smallest margin "
                     f"between the reference's two largest logits over the steps was {min(ref['margins']):.2e}.")  # fmt: skip
    else:
        lines.append("**Mismatch** (a bug: both run the same model):")
        lines += [f"* {CONFIG_LABEL[cfg]}, {x['engine']} run {x['run']}: first differs at step {x['step']} "
                  f"(got {x['got']}, onnxruntime {x['reference']}; reference top-2 logit margin there {x['reference_margin']:.2e})"
                  for cfg, x in bad]  # fmt: skip
    agree = [(cfg, c, x) for cfg, e in res["configs"].items() for c, xs in e.get("agreement", {}).items() for x in xs[:1]]
    for cfg, c, x in agree:
        d = x["first_difference"]
        lines.append(f"* {CONFIG_LABEL[cfg]}, {CONTENDERS[c]} (informative: int8 weights change the logits): {x['equal']} of the "
                     f"first {x['of']} greedy tokens equal the fp32 reference's; " + ("all equal." if d is None else
                     f"first different at step {d} (reference top-2 logit margin there {ref['margins'][d]:.2e})."))  # fmt: skip
    sizes = res["sizes"] if "total" not in res["sizes"] else {"nnjit": res["sizes"]}
    compiled = res["compile"] if "seconds" not in res["compile"] else {"nnjit": res["compile"]}
    lines += ["", "## The bundles", "",
              "| bundle | total MB | weights MB | Wasm kernels (.wasm) MB | .wat MB | plan.json MB | compile s |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for cid, s in sizes.items():
        c = compiled[cid]
        lines.append(f"| {CONTENDERS[cid]} | {_mb(s['total'])} | {_mb(s['weights'])} | {_mb(s['wasm'])} | {_mb(s['wat'])} | {_mb(s['plan'])} | "
                     f"{c['seconds']:.0f}{'' if c['compiled'] else ' (earlier run)'} |")  # fmt: skip
    lines += ["", "Compile s: wall time of `nnjit compile` on this machine (\"earlier run\": this run reused the bundle: same "
              f"sources, model and options); load average {res['compile_loadavg'][0]:.1f} when compiling started. ORT-web "
              f"fetches the .onnx ({_mb(res['onnx_bytes'])} MB).", ""]  # fmt: skip
    for cfg, e in res["configs"].items():
        for cid, prof in (e.get("profiles") or {"nnjit": e.get("profile")}).items():
            if not prof or not prof["steps"]:
                continue
            lines += _profile_section(cfg, cid, prof, e[cid]["decode_tokens_per_s"])
    lines += ["## Summary", "", *[f"* {x}" for x in summary], ""]
    if res.get("notes"):  # (written into generation.json by hand after a run; --report renders them)
        lines += ["## Notes", "", *[f"* {x}" for x in res["notes"]], ""]
    return "\n".join(lines)


def _contenders(e: dict) -> list[str]:
    return e.get("contenders", ["nnjit", "ort"])


def _ratios(e: dict) -> dict[str, float]:
    return e.get("ratios") or {"nnjit": e["ratio"], "ort": 1.0}


def _profile_section(cfg: str, cid: str, prof: dict, tokens_per_s: float) -> list[str]:
    rows, krows, per_step, mb = profile_rows(prof)
    step_ms = 1000 / tokens_per_s
    return [f"## Where the decode step goes: {CONTENDERS[cid]}, {CONFIG_LABEL[cfg]}", "",
                  f"The Wasm backend's time per kernel over the {prof['steps']} decode steps of the timed rounds (calls per step: averaged over them, whatever the cache size): "
                  f"{per_step:.1f} ms of kernels per step, of a step's {step_ms:.1f} ms at the median tokens/s (the rest: "
                  "writing the inputs, copying the new cache rows, reading the logits back, the argmax, the page). "
                  f"The kernels read {mb:.0f} MB of operands per step (weights and activations): {mb / per_step:.2f} GB/s "
                  "over the step. Kernels of the same kind and shapes (a transformer's layers) counted together; shapes "
                  "are the operands (weights included) → the result; MB and GB/s are the bytes read (a gather's: its rows).", "",
                  "| kernel | calls per step | ms per step | share of kernel time | MB per step | GB/s |",
                  "|---|---|---|---|---|---|", *rows, "",
                  "| kind | ms per step | share |", "|---|---|---|", *krows, ""]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(MODEL), help="a decoder exported with its cache (HF names)")
    ap.add_argument("--configs", default="wasm2,wasm1", help="comma list of: wasm2, wasm1")
    ap.add_argument("--contenders", default="nnjit,nnjit-int8,ort", help=f"comma list of: {', '.join(CONTENDERS)}")
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
