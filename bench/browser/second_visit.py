"""Time to first output on a second visit (weights in Cache Storage, tuning in IndexedDB) next to
ONNX Runtime Web's cold start and nnjit's own, in one headless Chromium run.

    python bench/browser/second_visit.py                      # MiniLM-L6 and BERT-base, 3 visits each
    python bench/browser/second_visit.py --models minilm --reps 5 --threads 2
    python bench/browser/second_visit.py --smoke              # or NNJIT_BENCH_SMOKE=1: tiny models

Every visit is a fresh page of one browser profile (a user's visits: the caches persist, the
page's modules and Wasm runtimes start again), served by run.py's server (`Cache-Control:
no-store`, so nothing comes from the HTTP cache). Per model, once: nnjit's first visit (both
caches empty, on-device tuning with run.py's budget), then `--reps` rounds of, interleaved:
ORT-web cold (fetch the .onnx, create, first run), nnjit with tuning cached and the weights
from the network (`cache: false`: every file fetched and hashed), nnjit's second visit (weights
and tuning cached). Bundles come from run.py's compile_bundles (out/bundles/NAME, --candidates
4); outputs are checked against onnxruntime. Writes bench/results/second_visit.md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run as rb  # noqa: E402 - bench/browser/run.py: models, bundles, server, inputs

ROOT = HERE.parent.parent
RESULTS = ROOT / "bench" / "results"


def visit(ctx, base: str, fn: str, *args):
    """A fresh page: loads second_visit.html, calls second_visit.js's `fn`, closes."""
    page = ctx.new_page()
    log: list[str] = []
    page.on("console", lambda m: log.append(m.text))
    try:
        page.goto(base + "second_visit.html")
        page.wait_for_function("window.visitReady === true", timeout=60_000)
        return page.evaluate("([fn, args]) => window.visit[fn](...args)", [fn, list(args)])
    except Exception as e:
        raise RuntimeError(f"{fn} failed: {e}\n" + "\n".join(log[-15:])) from None
    finally:
        page.close()


def checked(res: dict, refs: dict) -> dict:
    res["error"] = rb.errors_of(res, refs)  # (drops the outputs)
    return res


def measure(ctx, base: str, name: str, feeds: dict, refs: dict, args) -> dict:
    bundle = rb.out_url(f"bundles/{name}/")
    opts = {"threads": args.threads, "budgetMs": args.budget_ms}
    rb.log(f"{name}: nnjit first visit (nothing cached, tuning budget {args.budget_ms / 1000:.0f} s)")
    visit(ctx, base, "clear", ["weights", "tuning"])
    out: dict = {"first": checked(visit(ctx, base, "nnjitVisit", bundle, feeds, {**opts, "cache": True}), refs)}
    for k in ("ort_cold", "nnjit_weights_network", "nnjit_second"):
        out[k] = []
    for r in range(args.reps):
        rb.log(f"{name}: round {r + 1}/{args.reps}")
        out["ort_cold"].append(checked(visit(ctx, base, "ortVisit", rb.out_url(f"models/{name}.onnx"), feeds, args.threads), refs))
        out["nnjit_weights_network"].append(checked(visit(ctx, base, "nnjitVisit", bundle, feeds, {**opts, "cache": False}), refs))
        out["nnjit_second"].append(checked(visit(ctx, base, "nnjitVisit", bundle, feeds, {**opts, "cache": True}), refs))
    for k in ("ort_cold", "nnjit_weights_network", "nnjit_second"):
        out[k + "_median_ms"] = statistics.median(x["firstOutputMs"] for x in out[k])
    second = out["nnjit_second"]
    assert all(x["weights"]["from"] == "cache" and x["tuning"]["tuned"] == 0 for x in second), second
    rb.log(f"{name}: second visit {out['nnjit_second_median_ms']:.0f} ms, ORT-web cold {out['ort_cold_median_ms']:.0f} ms, "
           f"nnjit weights from the network {out['nnjit_weights_network_median_ms']:.0f} ms, first visit {out['first']['firstOutputMs']:.0f} ms")  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="minilm,bert", help="comma list of: minilm, bert")
    ap.add_argument("--reps", type=int, default=3, help="visits of each kind per model (medians)")
    ap.add_argument("--threads", type=int, default=2, help="Wasm threads (nnjit and ORT-web)")
    ap.add_argument("--candidates", type=int, default=4, help="nnjit compile --candidates N (as run.py)")
    ap.add_argument("--budget-ms", type=int, default=30000, help="the first visit's tuning budget (as run.py)")
    ap.add_argument("--results", default=str(RESULTS), help="folder for second_visit.md and .json")
    ap.add_argument("--smoke", action="store_true", default=os.environ.get("NNJIT_BENCH_SMOKE") == "1",
                    help="tiny models, one round, one candidate (checks the harness runs)")  # fmt: skip
    args = ap.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    if args.smoke:
        rb.OUT = HERE / "out" / "smoke"
        for m in rb.FULL_MODELS:
            label = rb.FULL_MODELS[m][0]
            rb.FULL_MODELS[m] = (f"{label} (tiny)", ROOT / "tests" / "models" / f"{m}-legacy.onnx")
        models, args.reps, args.candidates, args.budget_ms = models[:1], 1, 1, 2000
        if args.results == str(RESULTS):
            args.results = str(rb.OUT / "results")
    rb.ensure_node_modules()
    t_start = time.perf_counter()
    feeds_of, refs_of = {}, {}
    (rb.OUT / "models").mkdir(parents=True, exist_ok=True)
    for m in models:
        src = rb.FULL_MODELS[m][1]
        if not src.is_file():
            raise SystemExit(f"{src} is missing: python tools/build_models.py --full --models {m} --exporters legacy")
        link = rb.OUT / "models" / f"{m}.onnx"
        if not (link.is_file() and link.stat().st_ino == src.stat().st_ino):
            link.unlink(missing_ok=True)
            try:
                os.link(src, link)
            except OSError:
                link.write_bytes(src.read_bytes())
        f = rb.tiny_inputs(src) if args.smoke else rb.model_inputs()
        feeds_of[m] = rb.write_feeds(rb.OUT / "inputs" / m, f)
        refs_of[m] = rb.ort_reference(src, f)
    compiled = rb.compile_bundles({m: rb.OUT / "models" / f"{m}.onnx" for m in models}, args.candidates, False)

    from playwright.sync_api import sync_playwright

    server = rb.make_server()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    res: dict = {"machine": rb.machine_info(), "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                 "nnjit_commit": rb._git_describe(), "threads": args.threads, "reps": args.reps,
                 "candidates": args.candidates, "budget_ms": args.budget_ms, "compile": compiled,
                 "loadavg_start": os.getloadavg(), "models": {}}  # fmt: skip
    try:
        with sync_playwright() as pw, rb.chromium_context(pw, "nnjit-second-visit-") as ctx:
            for m in models:
                res["models"][m] = {"label": rb.FULL_MODELS[m][0], "loadavg": os.getloadavg(),
                                    **measure(ctx, server.url, m, feeds_of[m], refs_of[m], args)}  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    res["loadavg_end"] = os.getloadavg()
    res["seconds"] = time.perf_counter() - t_start
    dest = Path(args.results)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "second_visit.json").write_text(json.dumps(res, indent=1))
    (dest / "second_visit.md").write_text(report(res, argv))
    rb.log(f"wrote {dest / 'second_visit.md'} ({res['seconds'] / 60:.1f} min)")
    return 0


def report(res: dict, argv: list[str] | None) -> str:
    m = res["machine"]
    cmd = " ".join(["python bench/browser/second_visit.py", *(argv if argv is not None else sys.argv[1:])])
    lines = [
        "# Time to first output on a second visit (nnjit) and a cold start (ORT-web)",
        "",
        f"`{cmd}`, {res['started']}, nnjit {res['nnjit_commit']}. {m['cpu']}, {m['cores']} cores, {m['memory']}; "
        f"{m['chromium']} (headless); Wasm, {res['threads']} threads, cross-origin isolated. Load average "
        f"{res['loadavg_start'][0]:.2f} at the start, {res['loadavg_end'][0]:.2f} at the end (another job shared the machine).",
        "",
        "Every number is create() (or ORT-web's fetch of the .onnx + create) to the first output, in a fresh page "
        f"of one browser profile; medians of {res['reps']} visits of each kind, interleaved, except the first visit "
        f"(one). Bundles: `nnjit compile --candidates {res['candidates']}`; the first visit tunes with a "
        f"{res['budget_ms'] / 1000:.0f} s budget and stores its decisions and the weights; the server sends "
        "`Cache-Control: no-store`, so nothing comes from the HTTP cache. A bundle's weights.bin holds both "
        "backends' weights (the Wasm kernels' packed copies too: 340 of BERT-base's 774 MB), so it is larger "
        "than the .onnx ORT-web fetches; Cache Storage keeps it in parts of 64 MiB.",
        "",
        "| model | nnjit second visit (weights + tuning cached) | ORT-web 1.30 cold | second / ORT | nnjit, tuning cached, weights from the network | nnjit first visit (nothing cached) | weights read from the cache | error nnjit / ORT |",
        "|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for r in res["models"].values():
        sec = r["nnjit_second"]
        wms = statistics.median(x["weights"]["ms"] for x in sec)
        mb = sec[0]["weights"]["bytes"] / 1e6
        lines.append(
            f"| {r['label']} | **{r['nnjit_second_median_ms'] / 1000:.2f} s** | {r['ort_cold_median_ms'] / 1000:.2f} s | "
            f"{r['nnjit_second_median_ms'] / r['ort_cold_median_ms']:.2f} | {r['nnjit_weights_network_median_ms'] / 1000:.2f} s | "
            f"{r['first']['firstOutputMs'] / 1000:.2f} s ({r['first']['tuningMs'] / 1000:.1f} s tuning) | {mb:.1f} MB in {wms:.0f} ms | "
            f"{max(x['error'] for x in sec):.1e} / {max(x['error'] for x in r['ort_cold']):.1e} |"
        )
    lines += ["", "Each visit (ms, first output; load average when the model started):", ""]
    for r in res["models"].values():
        fmt = lambda xs: ", ".join(f"{x['firstOutputMs']:.0f}" for x in xs)  # noqa: E731
        lines.append(f"- {r['label']} (load {r['loadavg'][0]:.2f}): second visit {fmt(r['nnjit_second'])}; ORT-web cold "
                     f"{fmt(r['ort_cold'])}; weights from the network {fmt(r['nnjit_weights_network'])}")  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
