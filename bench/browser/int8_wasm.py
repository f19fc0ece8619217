"""nnjit on an int8 model (quantize_dynamic: MatMulInteger on the Wasm integer kernel) against
ONNX Runtime Web on the same file and nnjit on the float32 model, in one headless Chromium run.

    python tools/build_models.py --full --models minilm --exporters legacy   # the fp32 model, once
    python bench/browser/int8_wasm.py                     # MiniLM-L6, Wasm 1 and 2 threads
    python bench/browser/int8_wasm.py --models minilm,bert --runs 10
    python bench/browser/int8_wasm.py --baseline minilm=DIR   # also a bundle of the int8 file made
                                                          # by an older nnjit (float32 MatMulInteger)
    python bench/browser/int8_wasm.py --smoke             # the harness on the tiny MiniLM

Each model (batch 1, 128 tokens: run.py's padded sentence) is quantized with onnxruntime's
quantize_dynamic (QInt8 weights, tools/quantize_models.py); both files are compiled for Wasm
(`nnjit compile MODEL -o DIR --backend wasm`). Per configuration one page loads the four
contenders (nnjit int8, ORT-web int8, nnjit fp32, ORT-web fp32: run.py's harness, bench.js) and
runs them interleaved: --runs rounds after a warm-up, 100 ms between runs. Outputs are checked
against onnxruntime (Python, CPU) on the same file. Writes bench/results/int8_wasm.md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run as harness  # noqa: E402  (bench/browser/run.py: npm, bundles, page, server)

ROOT = harness.ROOT
CONFIGS = ("wasm1", "wasm2")
CONTENDERS = {"int8": "nnjit int8", "ort8": "ORT-web int8", "fp32": "nnjit fp32", "ort32": "ORT-web fp32",
              "base": "nnjit int8, --baseline bundle"}  # fmt: skip
TARGET_VS_ORT = 1.5  # issue 12: nnjit int8 >= 1.5x ORT-web int8, and faster than nnjit fp32


def log(msg: str) -> None:
    harness.log(msg)


def quantized(model: Path, dest: Path) -> Path:
    """quantize_dynamic(QInt8) of `model` in `dest` (made once per model file)."""
    out = dest / f"{model.stem}.qint8.onnx"
    if not out.is_file() or out.stat().st_mtime < model.stat().st_mtime:
        dest.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, str(ROOT / "tools" / "quantize_models.py"), str(model), "-o", str(dest),
               "--variants", "qint8"]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True)
    return out


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def bench(page, cfg: str, name: str, urls: dict, refs: dict, args) -> dict:
    backend, threads = harness.CONFIGS[cfg]
    opts = {"backend": backend, "threads": threads, "budgetMs": 0}
    res: dict = {"measured": time.strftime("%H:%M:%S"), "uptime_start": _uptime(), "cold": {}}
    ids = [c for c in CONTENDERS if c != "base" or "bundle-base" in urls]
    for cid in ids:
        log(f"{cfg} {name}: {CONTENDERS[cid]}: load")
        kind = "fp32" if cid.endswith("32") else "int8"
        page.call("loadFeeds", f"{name}-{cid}", urls["feeds"])
        if cid.startswith("ort"):
            r = page.call("ortLoad", cid, urls[f"onnx-{kind}"], f"{name}-{cid}")
        else:
            url = urls["bundle-base" if cid == "base" else f"bundle-{kind}"]
            r = page.call("nnjitLoad", cid, url, f"{name}-{cid}", {**opts, "clearCache": True})
        r["error"] = harness.errors_of(r, refs[kind])
        res["cold"][cid] = r
    log(f"{cfg} {name}: {args.runs} interleaved rounds")
    res["warm"] = page.call("interleave", ids, args.runs, 1, 100, int(args.warmup_s * 1000))
    res["runs"] = args.runs
    res["uptime_end"] = _uptime()
    page.call("releaseAll")
    w = res["warm"]
    log(f"{cfg} {name}: " + ", ".join(f"{CONTENDERS[c]} {w[c]['median']:.1f} ms" for c in ids))
    return res


def run(args) -> dict:
    t0 = time.perf_counter()
    deps = harness.ensure_node_modules()
    names = [m for m in args.models.split(",") if m]
    out = harness.OUT
    (out / "models").mkdir(parents=True, exist_ok=True)
    models, jobs = {}, {}
    for name in names:
        fp32 = harness.FULL_MODELS[name][1]
        if not fp32.is_file():
            raise SystemExit(f"{fp32} is missing: python tools/build_models.py --full --models {name} --exporters legacy")
        local = out / "models" / f"{name}.onnx"
        if not local.is_file() or local.stat().st_size != fp32.stat().st_size:
            shutil.copyfile(fp32, local)
        int8 = quantized(local, out / "models")
        models[name] = {"fp32": local, "int8": int8}
        jobs[f"{name}-fp32"], jobs[f"{name}-int8"] = local, int8
    baselines = dict(b.split("=", 1) for b in args.baseline)
    for name, folder in baselines.items():  # (hard links: the server answers no link out of its folder)
        dest = out / "bundles" / f"{name}-base"
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(folder, dest, copy_function=_link_or_copy)
    uptime_compile = _uptime()
    compiled = harness.compile_bundles(jobs, None, args.recompile, {k: ["--backend", "wasm"] for k in jobs})
    feeds = harness.tiny_inputs(models[names[0]]["fp32"]) if args.smoke else harness.model_inputs()
    spec = harness.write_feeds(out / "inputs" / "int8", feeds)
    from playwright.sync_api import sync_playwright

    server = harness.make_server()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    results: dict = {
        "machine": harness.machine_info(), "packages": deps, "models": names, "runs": args.runs,
        "warmup_s": args.warmup_s, "compile": compiled, "uptime_compile": uptime_compile,
        "sizes": {k: sum(p.stat().st_size for p in (out / "bundles" / k).rglob("*") if p.is_file() and p.suffix != ".wat")
                  for k in jobs},  # fmt: skip
        "onnx_sizes": {f"{n}-{k}": p.stat().st_size for n, m in models.items() for k, p in m.items()},
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "nnjit_commit": harness._git_describe(),
        "smoke": args.smoke, "baselines": baselines, "configs": {},
    }  # fmt: skip
    try:
        with sync_playwright() as pw, harness.chromium_context(pw, "nnjit-bench-int8-") as ctx:
            for cfg in args.configs.split(","):
                for name in names:
                    refs = {k: harness.ort_reference(p, feeds) for k, p in models[name].items()}
                    urls = {"feeds": spec, "onnx-fp32": harness.out_url(f"models/{name}.onnx"),
                            "onnx-int8": harness.out_url(f"models/{models[name]['int8'].name}"),
                            "bundle-fp32": harness.out_url(f"bundles/{name}-fp32/"),
                            "bundle-int8": harness.out_url(f"bundles/{name}-int8/")}  # fmt: skip
                    if name in baselines:
                        urls["bundle-base"] = harness.out_url(f"bundles/{name}-base/")
                    entry = {"info": None}
                    with harness.open_page(ctx, server.url, cfg, tfjs=False, entry=entry) as page:
                        r = bench(page, cfg, name, urls, refs, args)
                        r["info"] = entry["info"]
                    results["configs"].setdefault(cfg, {})[name] = r
    finally:
        server.shutdown()
        server.server_close()
    results["seconds"] = time.perf_counter() - t0
    return results


def report(res: dict) -> str:
    m, pk = res["machine"], res["packages"]
    label = {n: harness.FULL_MODELS[n][0] for n in res["models"]}
    lines = [
        "# Int8 on Wasm: MatMulInteger on the integer kernel (issue 12)", "",
        f"Measured {res['started']} by `python bench/browser/int8_wasm.py"
        + (f" --models {','.join(res['models'])}" if res["models"] != ["minilm"] else "")
        + f" --runs {res['runs']}` in one headless Chromium run ({res['seconds'] / 60:.1f} min), nnjit `{res['nnjit_commit']}`."
        + (" **Smoke run: tiny model, numbers mean nothing.**" if res["smoke"] else ""), "",
        f"* Machine: {m['cpu']}, {m['cores']} cores, {m['memory']} RAM, {m['os']}; shared with other helpers' work: "
        f"`uptime` when compiling: `{res['uptime_compile']}`; per page below.",
        f"* Browser: {m['chromium']} (headless, fresh profile, cross-origin isolated, `Cache-Control: no-store`).",
        "* Models: batch 1, 128 tokens (run.py's padded sentence: 102 real tokens, mask 0 after), fp32 from "
        "`tools/build_models.py --full --exporters legacy`; int8 = onnxruntime's `quantize_dynamic(weight_type=QInt8)` of it "
        "(`tools/quantize_models.py --variants qint8`: DynamicQuantizeLinear + MatMulInteger, int8 weights, uint8 activations).",
        "* nnjit: `nnjit compile MODEL -o DIR --backend wasm` for both files (int8: every MatMulInteger on the integer "
        "kernel, `nn-tensor-integer-matmul`). ORT-web: `onnxruntime-web@" + str(pk.get("onnxruntime-web"))
        + "`, wasm EP, `numThreads` as the configuration, graph optimisation `all`, on the same files.",
        f"* Warm: median (fastest) over {res['runs']} interleaved rounds of the four contenders after one run each and "
        f"a {res['warmup_s']:g} s warm-up, 100 ms pause between runs, wall clock around `run()`. Error: max |out - ref| / "
        "max |ref| against onnxruntime (Python, CPU) on the same file.", "",
    ]  # fmt: skip
    summary = []
    for cfg, per in res["configs"].items():
        for name, r in per.items():
            w, c = r["warm"], r["cold"]
            lines += [f"## {label[name]}, {harness.CONFIG_LABEL[cfg]}", "",
                      "| contender | median ms (min) | error vs onnxruntime | matmul ms (median run) |", "|---|---|---|---|"]  # fmt: skip
            for cid, what in CONTENDERS.items():
                if cid not in w:
                    continue
                if cid == "base":
                    what = f"nnjit int8, `{res['baselines'][name]}` ({res.get('baseline_label', 'float32 MatMulInteger')})"
                kinds = w[cid].get("kinds") or {}
                mm = next((v for k, v in kinds.items() if "matmul" in k), None)
                lines.append(f"| {what} | {harness._ms(w[cid]['median'])} ({harness._ms(w[cid]['min'])}) | "
                             f"{c[cid]['error']:.1e} | {harness._ms(mm) if mm is not None else '–'} |")  # fmt: skip
            vs_ort = w["ort8"]["median"] / w["int8"]["median"]
            vs_fp32 = w["fp32"]["median"] / w["int8"]["median"]
            lines += ["", f"nnjit int8 vs ORT-web int8: **{vs_ort:.2f}x** (target ≥ {TARGET_VS_ORT}x: "
                      f"{'met' if vs_ort >= TARGET_VS_ORT else 'missed'}); vs nnjit fp32: **{vs_fp32:.2f}x** "
                      f"({'faster' if vs_fp32 > 1 else 'not faster'}). `uptime` at the start: `{r['uptime_start']}`; "
                      f"at the end: `{r['uptime_end']}`.", ""]  # fmt: skip
            summary.append(f"{label[name]}, {harness.CONFIG_LABEL[cfg]}: nnjit int8 {harness._ms(w['int8']['median'])} ms, "
                           f"ORT-web int8 {harness._ms(w['ort8']['median'])} ms ({vs_ort:.2f}x), nnjit fp32 "
                           f"{harness._ms(w['fp32']['median'])} ms ({vs_fp32:.2f}x)")  # fmt: skip
    lines += ["## Bundle sizes", "", "| bundle | MB (no .wat) | ONNX file MB |", "|---|---|---|"]
    for k, v in res["sizes"].items():
        lines.append(f"| {k} | {v / 1e6:.1f} | {res['onnx_sizes'].get(k, 0) / 1e6:.1f} |")
    lines += ["", "## Summary", "", *[f"* {s}" for s in summary], ""]
    if res.get("notes"):
        lines += ["## Notes", "", *[f"* {x}" for x in res["notes"]], ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="minilm", help="comma list of minilm, bert")
    ap.add_argument("--configs", default="wasm1,wasm2", help="comma list of wasm1, wasm2")
    ap.add_argument("--runs", type=int, default=20, help="interleaved warm rounds")
    ap.add_argument("--warmup-s", type=float, default=2.0, help="seconds of warm-up runs")
    ap.add_argument("--baseline", action="append", default=[], metavar="MODEL=DIR",
                    help="a bundle of MODEL's int8 file made by another nnjit tree, measured beside")  # fmt: skip
    ap.add_argument("--recompile", action="store_true", help="recompile the bundles even if they are up to date")
    ap.add_argument("--results", default=str(ROOT / "bench" / "results"), help="folder for int8_wasm.md and .json")
    ap.add_argument("--smoke", action="store_true", default=os.environ.get("NNJIT_BENCH_SMOKE") == "1",
                    help="the tiny MiniLM, 2 runs, no warm-up (also NNJIT_BENCH_SMOKE=1)")  # fmt: skip
    ap.add_argument("--report", metavar="JSON", help="only write the report again from a results file")
    args = ap.parse_args(argv)
    if args.report:
        res = json.loads(Path(args.report).read_text())
        (Path(args.report).parent / "int8_wasm.md").write_text(report(res))
        return 0
    harness.OUT = HERE / "out" / "int8"
    if args.smoke:
        harness.OUT = HERE / "out" / "int8-smoke"
        harness.FULL_MODELS["minilm"] = ("MiniLM (tiny)", ROOT / "tests" / "models" / "minilm-legacy.onnx")
        args.models, args.runs, args.warmup_s = "minilm", 2, 0.0
        if args.results == str(ROOT / "bench" / "results"):
            args.results = str(harness.OUT / "results")
    harness.save_results(args.results, "int8_wasm", run(args), report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
