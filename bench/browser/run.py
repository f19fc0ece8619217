"""nnjit against ONNX Runtime Web and TensorFlow.js in one headless Chromium run.

    python bench/browser/run.py                 # everything (~15 min on a 2-core machine)
    python bench/browser/run.py --quick         # MiniLM only, 5 runs (a smoke test, ~3 min)
    python bench/browser/run.py --configs wasm1,wasm2 --models minilm --runs 20
    python bench/browser/run.py --smoke         # or NNJIT_BENCH_SMOKE=1: the harness on a tiny case

It installs the pinned npm packages into bench/browser/node_modules (npm ci) when they are
missing, writes the single-op ONNX models and the inputs, compiles every nnjit bundle with
`nnjit compile MODEL -o DIR --candidates N` (kept in bench/browser/out/ and recompiled when the
nnjit sources or the model change), serves bench/browser/ cross-origin isolated with
`nnjit serve`'s server, and drives the system Chromium through Python playwright: one page per
configuration (Wasm 1 thread, Wasm 2 threads, WebGPU), every contender of a measurement loaded
in the same page and run interleaved. Outputs are checked against onnxruntime (Python, CPU)
for the models and numpy (float64) for the kernels. Writes bench/browser/RESULTS.md,
bench/browser/results.png and bench/browser/results.json. docs/benchmarks.md explains it.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
OUT = HERE / "out"
CHROMIUM = Path(os.environ.get("NNJIT_CHROMIUM", "/usr/lib/chromium/chromium"))
FLAGS = [
    "--headless", "--no-sandbox", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic",
]  # fmt: skip
# WebGPU on, and no GPU shader disk cache: a cold start compiles its shaders
EXTRA_FLAGS = ["--enable-unsafe-webgpu", "--disable-gpu-shader-disk-cache"]

# name -> (label, ONNX file); batch 1, sequence 128
FULL_MODELS = {
    "minilm": ("MiniLM-L6", ROOT / "models" / "minilm-legacy.onnx"),
    "bert": ("BERT-base", ROOT / "models" / "bert-legacy.onnx"),
    "gpt2": ("GPT-2 small", ROOT / "models" / "gpt2-legacy.onnx"),
}
# configuration -> (backend, threads for nnjit / ORT-web numThreads / TF.js setThreadsCount)
CONFIGS = {
    "wasm1": ("wasm", 1),
    "wasm2": ("wasm", 2),
    "webgpu": ("webgpu", 1),
}
CONFIG_LABEL = {"wasm1": "Wasm, 1 thread", "wasm2": "Wasm, 2 threads", "webgpu": "WebGPU (SwiftShader, software)"}
ENGINES = {"nnjit": "nnjit", "ort": "ORT-web 1.30", "tfjs": "TF.js 4.22"}
TOLERANCE = 1e-3  # relative error above which a result is flagged (nnjit's own tests use 1e-4)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------------------ npm


def ensure_node_modules() -> dict[str, str]:
    """Installs package.json's exact versions into node_modules (npm ci) unless they are there."""
    deps = json.loads((HERE / "package.json").read_text())["dependencies"]

    def installed() -> dict[str, str | None]:
        out = {}
        for name in deps:
            p = HERE / "node_modules" / name / "package.json"
            out[name] = json.loads(p.read_text())["version"] if p.is_file() else None
        return out

    have = installed()
    if have != deps:
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit("npm is not installed (apt-get install -y npm); it installs the pinned contenders")
        lock = (HERE / "package-lock.json").is_file()
        cmd = [npm, "ci" if lock else "install", "--no-audit", "--no-fund"]
        log(f"installing {', '.join(f'{k}@{v}' for k, v in deps.items())}: {' '.join(cmd[1:])}")
        subprocess.run(cmd, cwd=HERE, check=True)
        have = installed()
        if have != deps:
            raise SystemExit(f"node_modules does not hold the pinned versions after npm: {have}")
    return deps


# ------------------------------------------------------------------------------ models, inputs


def _onnx_model(nodes, inputs, outputs, inits=()) -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    f = TensorProto.FLOAT
    g = helper.make_graph(
        nodes, "bench",
        [helper.make_tensor_value_info(n, f, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, f, s) for n, s in outputs],
        [numpy_helper.from_array(a, n) for n, a in inits],
    )  # fmt: skip
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m.SerializeToString()


def kernel_specs() -> dict[str, dict]:
    """BERT-base's kernels as single-op models: name -> {label, onnx, inputs, weights, op,
    reference (float64), flops}."""
    from onnx import helper

    rng = np.random.default_rng(2024)
    r = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    specs: dict[str, dict] = {}
    for m, k, n in [(128, 768, 768), (128, 768, 3072), (128, 3072, 768)]:
        x, w = r(m, k), (r(k, n) / np.sqrt(k)).astype(np.float32)
        specs[f"matmul_{m}x{k}x{n}"] = {
            "label": f"matmul {m}x{k}x{n}",
            "onnx": _onnx_model([helper.make_node("MatMul", ["x", "w"], ["y"])], [("x", [m, k])], [("y", [m, n])], [("w", w)]),
            "inputs": {"x": x}, "weights": {"w": w}, "op": "matmul",
            "reference": x.astype(np.float64) @ w.astype(np.float64), "flops": 2 * m * k * n,
        }  # fmt: skip
    a, b = r(12, 128, 64), r(12, 64, 128)
    specs["bmm_12x128x64x128"] = {
        "label": "batched matmul 12x128x64x128",
        "onnx": _onnx_model([helper.make_node("MatMul", ["a", "b"], ["y"])], [("a", [12, 128, 64]), ("b", [12, 64, 128])], [("y", [12, 128, 128])]),
        "inputs": {"a": a, "b": b}, "weights": {}, "op": "bmm",
        "reference": a.astype(np.float64) @ b.astype(np.float64), "flops": 2 * 12 * 128 * 64 * 128,
    }  # fmt: skip
    x = r(12, 128, 128) * 3
    e = np.exp(x.astype(np.float64) - x.max(-1, keepdims=True))
    specs["softmax_12x128x128"] = {
        "label": "softmax 12x128x128",
        "onnx": _onnx_model([helper.make_node("Softmax", ["x"], ["y"], axis=-1)], [("x", [12, 128, 128])], [("y", [12, 128, 128])]),
        "inputs": {"x": x}, "weights": {}, "op": "softmax",
        "reference": e / e.sum(-1, keepdims=True), "flops": 5 * x.size,
    }  # fmt: skip
    x, gamma, beta = r(128, 768) + 0.5, r(768), r(768)
    x64 = x.astype(np.float64)
    mu, var = x64.mean(-1, keepdims=True), x64.var(-1, keepdims=True)
    specs["layernorm_128x768"] = {
        "label": "layer norm 128x768",
        "onnx": _onnx_model(
            [helper.make_node("LayerNormalization", ["x", "gamma", "beta"], ["y"], axis=-1, epsilon=1e-12)],
            [("x", [128, 768])], [("y", [128, 768])], [("gamma", gamma), ("beta", beta)]),
        "inputs": {"x": x}, "weights": {"gamma": gamma, "beta": beta}, "op": "layernorm", "eps": 1e-12,
        "reference": (x64 - mu) / np.sqrt(var + 1e-12) * gamma + beta, "flops": 8 * x.size,
    }  # fmt: skip
    return specs


def model_inputs(seed: int = 0) -> dict[str, np.ndarray]:
    """A padded sentence of 128 tokens: [CLS] 100 random ids [SEP], then padding (mask 0)."""
    rng = np.random.default_rng(seed)
    ids = np.zeros((1, 128), np.int64)
    ids[0, 0], ids[0, 101] = 101, 102
    ids[0, 1:101] = rng.integers(1000, 20000, 100)
    mask = np.zeros((1, 128), np.int64)
    mask[0, :102] = 1
    return {"input_ids": ids, "attention_mask": mask}


def out_url(rel: str) -> str:
    """The URL path of OUT/rel on the benchmark's server (which serves bench/browser/)."""
    return f"/{OUT.relative_to(HERE).as_posix()}/{rel}"


def tiny_inputs(model: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """--smoke: token ids below 100 (the tiny models' vocabularies) at the model's own length."""
    import onnx

    dims = onnx.load(str(model), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    seq = dims[1].dim_value
    ids = np.random.default_rng(seed).integers(1, 100, (1, seq)).astype(np.int64)
    mask = np.ones((1, seq), np.int64)
    mask[0, seq - 2:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def smoke(args) -> None:
    """--smoke (or NNJIT_BENCH_SMOKE=1): the whole harness on a tiny case, to check that it runs
    (tests/test_docs.py); it measures nothing worth keeping. The tiny models of tests/models
    stand in for the full ones, the first asked model only, 2 runs, no single-op kernels, one
    candidate and a 2 s tuning budget; bundles in out/smoke/, results in out/smoke/results/
    unless --results is given."""
    global OUT
    OUT = HERE / "out" / "smoke"
    for name, (label, _) in FULL_MODELS.items():
        FULL_MODELS[name] = (f"{label} (tiny)", ROOT / "tests" / "models" / f"{name}-legacy.onnx")
    args.models = args.webgpu_models = args.models.split(",")[0]
    args.kernels = False
    args.runs = args.webgpu_bert_runs = 2
    args.kernel_runs = args.min_runs = 1
    args.candidates, args.budget_ms = 1, 2000
    if args.results == str(HERE):
        args.results = str(OUT / "results")


def ort_reference(model: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    s = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
    names = [o.name for o in s.get_outputs()]
    return dict(zip(names, s.run(names, feeds), strict=True))


def write_feeds(folder: Path, arrays: dict[str, np.ndarray]) -> dict:
    """Writes raw arrays for the page; returns the feed spec {name: {dtype, dims, url}}."""
    folder.mkdir(parents=True, exist_ok=True)
    spec = {}
    for name, a in arrays.items():
        a = np.ascontiguousarray(a)
        (folder / f"{name}.bin").write_bytes(a.tobytes())
        spec[name] = {"dtype": str(a.dtype), "dims": list(a.shape), "url": "/" + str((folder / f"{name}.bin").relative_to(HERE))}
    return spec


# ------------------------------------------------------------------------------ bundles


def _nnjit_source_hash() -> str:
    """Hash of the compiler's sources (not the browser runtime, which is served live)."""
    h = hashlib.sha256()
    pkg = ROOT / "nnjit"
    for p in sorted(pkg.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts and p.suffix in (".py", ".js", ".json") and "web" not in p.relative_to(pkg).parts[:1]:
            h.update(str(p.relative_to(pkg)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def _nnjit_cmd() -> list[str]:
    exe = shutil.which("nnjit")
    return [exe] if exe else [sys.executable, "-m", "nnjit.tools.nnjit_main"]


def compile_bundles(jobs: dict[str, Path], candidates: int | None, force: bool,
                    extra: dict[str, list[str]] | None = None) -> dict[str, dict]:
    """`nnjit compile MODEL -o out/bundles/NAME --candidates N` for each job (two at a time),
    skipped when the bundle was made from the same model, sources and options. candidates None:
    no --candidates (nnjit's default); extra: more options per job name."""
    src = _nnjit_source_hash()
    extra = extra or {}
    info: dict[str, dict] = {}
    todo = []
    for name, model in jobs.items():
        st = model.stat()
        what = [src, str(model.resolve()), st.st_size, st.st_mtime_ns, candidates] + ([extra[name]] if name in extra else [])
        key = hashlib.sha256(json.dumps(what).encode()).hexdigest()
        out = OUT / "bundles" / name
        keyfile = OUT / "bundles" / f"{name}.key"
        if not force and (out / "plan.json").is_file() and keyfile.is_file() and keyfile.read_text() == key:
            info[name] = {"compiled": False, "seconds": json.loads((OUT / "bundles" / f"{name}.time").read_text())}
            continue
        todo.append((name, model, out, keyfile, key))

    def one(job):
        name, model, out, keyfile, key = job
        opts = ([] if candidates is None else ["--candidates", str(candidates)]) + extra.get(name, [])
        cmd = _nnjit_cmd() + ["compile", str(model), "-o", str(out), *opts]
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True)
        secs = time.perf_counter() - t0
        if p.returncode != 0:
            raise SystemExit(f"nnjit compile {model.name} failed:\n{p.stdout}\n{p.stderr}")
        keyfile.write_text(key)
        (OUT / "bundles" / f"{name}.time").write_text(json.dumps(secs))
        log(f"compiled {name} ({model.name}) in {secs:.1f} s")
        return name, {"compiled": True, "seconds": secs}

    (OUT / "bundles").mkdir(parents=True, exist_ok=True)
    if todo:
        how = "nnjit's default options" if candidates is None else f"--candidates {candidates}"
        log(f"compiling {len(todo)} bundle(s) with {how}: {', '.join(j[0] for j in todo)}")
        with ThreadPoolExecutor(2) as ex:
            for name, i in ex.map(one, todo):
                info[name] = i
    return info


# ------------------------------------------------------------------------------ the browser


class Page:
    """One benchmark page (one configuration) and calls into bench.js."""

    def __init__(self, ctx, url: str, hardware_concurrency: int | None = None):
        self.page = ctx.new_page()
        self.log: list[str] = []
        self.page.on("console", lambda m: self.log.append(f"[{m.type}] {m.text}"))
        self.page.on("pageerror", lambda e: self.log.append(f"[pageerror] {e}"))
        if hardware_concurrency is not None:
            self.page.add_init_script(
                "Object.defineProperty(Navigator.prototype, 'hardwareConcurrency', "
                f"{{get: () => {int(hardware_concurrency)}, configurable: true}});"
            )
        self.page.goto(url)
        self.page.wait_for_function("window.benchReady === true", timeout=60_000)
        if not self.page.evaluate("crossOriginIsolated"):
            raise SystemExit("the benchmark page is not cross-origin isolated (COOP/COEP headers missing)")

    def call(self, fn: str, *args):
        try:
            return self.page.evaluate("([fn, args]) => window.bench[fn](...args)", [fn, list(args)])
        except Exception as e:
            tail = "\n".join(self.log[-15:])
            raise RuntimeError(f"bench.{fn} failed: {e}\npage log:\n{tail}") from None

    def close(self) -> None:
        self.page.close()


def decode(o: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(o["b64"]), dtype=np.float32).reshape(o["dims"])


def rel_error(got: np.ndarray, ref: np.ndarray) -> float:
    got = np.asarray(got, np.float64).reshape(ref.shape)
    if not np.all(np.isfinite(got)):
        return float("inf")
    return float(np.max(np.abs(got - ref)) / max(float(np.max(np.abs(ref))), 1e-30))


def errors_of(res: dict, refs: dict[str, np.ndarray]) -> float:
    """Worst relative error over the outputs a load returned (and drops them from `res`)."""
    outs = res.pop("outputs")
    if len(refs) == 1 and len(outs) == 1:  # TF.js names its output 'y'
        return rel_error(decode(next(iter(outs.values()))), next(iter(refs.values())))
    return max(rel_error(decode(outs[k]), ref) for k, ref in refs.items())


def n_runs(runs: int, min_runs: int, per_run_ms: float, cap_s: float) -> int:
    """`runs`, or fewer (but at least `min_runs`) when `runs` rounds would take over cap_s seconds."""
    if per_run_ms <= 0:
        return runs
    return int(max(min(min_runs, runs), min(runs, cap_s * 1000 // per_run_ms)))


def bench_model(page: Page, cfg: str, name: str, feeds_spec: dict, refs: dict, args) -> dict:
    backend, threads = CONFIGS[cfg]
    label = FULL_MODELS[name][0]
    page.call("loadFeeds", name, feeds_spec)
    bundle = out_url(f"bundles/{name}/")
    opts = {"backend": backend, "threads": threads, "budgetMs": args.budget_ms}
    res: dict = {"model": label, "measured": time.strftime("%H:%M:%S"), "loadavg": os.getloadavg()[0]}
    log(f"{cfg} {label}: nnjit cold load with tuning (budget {args.budget_ms / 1000:.0f} s)")
    r = page.call("nnjitLoad", "nnjit-tune", bundle, name, {**opts, "clearCache": True})
    r["error"] = errors_of(r, refs)
    res["nnjit_tune"] = r
    page.call("release", "nnjit-tune")
    log(f"{cfg} {label}: ORT-web cold load")
    r = page.call("ortLoad", "ort", out_url(f"models/{name}.onnx"), name)
    r["error"] = errors_of(r, refs)
    res["ort_cold"] = r
    log(f"{cfg} {label}: nnjit cold load from the tuning cache")
    r = page.call("nnjitLoad", "nnjit", bundle, name, opts)
    r["error"] = errors_of(r, refs)
    res["nnjit_cached"] = r
    # BERT-base on the software WebGPU adapter: ORT-web takes ~30 s a run, so fewer rounds
    n = args.webgpu_bert_runs if (backend, name) == ("webgpu", "bert") else args.runs
    log(f"{cfg} {label}: warm latency, {n} interleaved rounds")
    # 100 ms between runs: a runtime's pool threads may still spin after its run (ORT-web's
    # did for a few ms), which would slow whichever contender runs next
    res["warm"] = page.call("interleave", ["nnjit", "ort"], n, 1, 100)
    res["runs"] = n
    res["nnjit_kinds"] = res["warm"]["nnjit"].get("kinds")
    page.call("releaseAll")
    w = res["warm"]
    log(f"{cfg} {label}: nnjit {w['nnjit']['median']:.1f} ms, ORT-web {w['ort']['median']:.1f} ms "
        f"(errors {res['nnjit_cached']['error']:.1e} / {res['ort_cold']['error']:.1e})")  # fmt: skip
    return res


def bench_kernel(page: Page, cfg: str, name: str, spec: dict, feeds_spec: dict, weights_spec: dict, args) -> dict:
    backend, threads = CONFIGS[cfg]
    ref = {"y": spec["reference"]}
    page.call("loadFeeds", name, feeds_spec)
    res: dict = {"kernel": spec["label"], "flops": spec["flops"], "measured": time.strftime("%H:%M:%S"), "loadavg": os.getloadavg()[0]}
    r = page.call("nnjitLoad", "nnjit", out_url(f"bundles/k_{name}/"), name,
                  {"backend": backend, "threads": threads, "budgetMs": args.budget_ms})  # fmt: skip
    r["error"] = errors_of(r, ref)
    res["nnjit"] = r
    r = page.call("ortLoad", "ort", out_url(f"models/k_{name}.onnx"), name)
    r["error"] = errors_of(r, ref)
    res["ort"] = r
    r = page.call("tfjsLoad", "tfjs", {"op": spec["op"], "weights": weights_spec, "eps": spec.get("eps", 1e-12)}, name)
    r["error"] = errors_of(r, ref)
    res["tfjs"] = r
    per_run = r["firstInferenceMs"] + res["ort"]["firstRunMs"] + res["nnjit"]["firstRunMs"]
    n = n_runs(args.kernel_runs, args.min_runs, per_run, args.kernel_cap_s)
    res["warm"] = page.call("interleave", ["nnjit", "ort", "tfjs"], n, 1 if per_run > 300 else 3, 2)
    res["runs"] = n
    page.call("releaseAll")
    w = res["warm"]
    log(f"{cfg} {spec['label']}: nnjit {w['nnjit']['median']:.2f} ms, ORT-web {w['ort']['median']:.2f} ms, "
        f"TF.js {w['tfjs']['median']:.2f} ms")  # fmt: skip
    return res


def _git_describe() -> str:
    """The tree the bundles were compiled from: commit, '-dirty' with uncommitted changes."""
    try:
        p = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True, timeout=30)
        return p.stdout.strip() or "?"
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def machine_info() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        mem = f"{kb / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    try:
        chromium = subprocess.run([str(CHROMIUM), "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        chromium = "?"
    return {"cpu": cpu, "cores": os.cpu_count(), "memory": mem, "os": platform.platform(),
            "chromium": chromium, "python": platform.python_version()}  # fmt: skip


def make_server():
    """nnjit serve's server for bench/browser/ (cross-origin isolated, nnjit's runtime at
    /runtime/) with `Cache-Control: no-store` added: no HTTP cache, so no Wasm code cache
    either, and every page's cold start fetches and compiles everything again."""
    from nnjit.tools import serve

    class Handler(serve.BundleRequestHandler):
        isolated = True

        def end_headers(self) -> None:
            self.send_header("Cache-Control", "no-store")
            super().end_headers()

    def factory(*a, **kw):
        return Handler(*a, directory=str(HERE), **kw)

    return serve.BundleServer(("127.0.0.1", 0), factory)


@contextlib.contextmanager
def chromium_context(pw, prefix: str = "nnjit-bench-"):
    """The system Chromium (playwright `pw`) with the benchmark's flags on a fresh profile (a
    temporary folder, removed after), long default timeouts: one browser context for a whole
    run, every page of it in the same profile (so IndexedDB and Cache Storage persist between
    pages, as for a user's visits)."""
    if not CHROMIUM.is_file():
        raise SystemExit(f"{CHROMIUM} is missing (apt-get install -y chromium); never `playwright install`")
    profile = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        ctx = pw.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True,
            args=[f for f in FLAGS if f != "--headless"] + EXTRA_FLAGS,  # playwright adds --headless
        )  # fmt: skip
        ctx.set_default_timeout(900_000)
        try:
            yield ctx
        finally:
            ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@contextlib.contextmanager
def open_page(ctx, base_url: str, cfg: str, *, tfjs: bool, entry: dict):
    """A fresh benchmark page set up for configuration `cfg` (its info kept in entry["info"])."""
    backend, threads = CONFIGS[cfg]
    # TF.js caps its thread pool at hardwareConcurrency / 2: on a page that runs TF.js, report
    # enough cores for the asked thread count (ORT-web and nnjit take explicit counts)
    cores = os.cpu_count() or 1
    hc = 2 * threads if tfjs and backend == "wasm" and 2 * threads > cores else None
    page = Page(ctx, base_url + "index.html", hc)
    try:
        info = page.call("setup", {"backend": backend, "threads": threads, "tfjs": tfjs})
        info["hardwareConcurrencyOverride"] = hc
        if entry["info"] is None or tfjs:
            entry["info"] = {**(entry["info"] or {}), **info}
        log(f"page {cfg}: ORT-web {info['ortVersion']} numThreads={info['ortThreads']}"
            + (f", TF.js {info.get('tfjsVersion')} {info.get('tfjsBackend')} threads={info.get('tfjsThreads')}" if tfjs else "")
            + (f", adapter {info.get('adapter')}" if backend == "webgpu" else ""))  # fmt: skip
        yield page
    finally:
        page.close()


def run(args) -> dict:
    t_start = time.perf_counter()
    deps = ensure_node_modules()
    (OUT / "models").mkdir(parents=True, exist_ok=True)
    models = [m for m in args.models.split(",") if m]
    configs = [c for c in args.configs.split(",") if c]
    for m in models:
        if m not in FULL_MODELS:
            raise SystemExit(f"unknown model '{m}' (choose from {', '.join(FULL_MODELS)})")
        if not FULL_MODELS[m][1].is_file():
            raise SystemExit(f"{FULL_MODELS[m][1]} is missing: python tools/build_models.py --full")
    for c in configs:
        if c not in CONFIGS:
            raise SystemExit(f"unknown configuration '{c}' (choose from {', '.join(CONFIGS)})")

    # models, inputs, references
    feeds = model_inputs()
    model_feeds, model_refs = {}, {}
    for m in models:
        link = OUT / "models" / f"{m}.onnx"
        if link.is_symlink() or link.exists():
            link.unlink()
        # a hard link (else a copy): `nnjit serve`'s server answers no symbolic link out of its folder
        try:
            os.link(FULL_MODELS[m][1].resolve(), link)
        except OSError:
            shutil.copyfile(FULL_MODELS[m][1], link)
        f = tiny_inputs(FULL_MODELS[m][1]) if args.smoke else feeds
        model_feeds[m] = write_feeds(OUT / "inputs" / m, f)
        model_refs[m] = ort_reference(FULL_MODELS[m][1], f)
    specs = kernel_specs() if args.kernels else {}
    kernel_feeds, kernel_weights = {}, {}
    for k, s in specs.items():
        path = OUT / "models" / f"k_{k}.onnx"
        if not path.is_file() or path.read_bytes() != s["onnx"]:
            path.write_bytes(s["onnx"])
        kernel_feeds[k] = write_feeds(OUT / "inputs" / f"k_{k}", s["inputs"])
        kernel_weights[k] = write_feeds(OUT / "inputs" / f"k_{k}" / "weights", s["weights"])
    jobs = {m: OUT / "models" / f"{m}.onnx" for m in models}
    jobs.update({f"k_{k}": OUT / "models" / f"k_{k}.onnx" for k in specs})
    compiled = compile_bundles(jobs, args.candidates, args.recompile)

    from playwright.sync_api import sync_playwright

    server = make_server()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    results: dict = {
        "machine": machine_info(), "packages": deps, "candidates": args.candidates, "budget_ms": args.budget_ms,
        "runs": args.runs, "kernel_runs": args.kernel_runs, "compile": compiled, "configs": {},
        "loadavg_start": os.getloadavg(), "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "nnjit_commit": _git_describe(),
    }  # fmt: skip
    try:
        with sync_playwright() as pw, chromium_context(pw, "nnjit-bench-browser-") as ctx:
            for cfg in configs:
                backend, threads = CONFIGS[cfg]
                entry = results["configs"][cfg] = {"backend": backend, "threads": threads, "info": None, "models": {}, "kernels": {}}
                cfg_models = [m for m in models if backend != "webgpu" or m in args.webgpu_models.split(",")]
                # a fresh page per model: cold starts are cold for every contender (ORT-web's
                # runtime starts in the first session of a page)
                for m in cfg_models:
                    with open_page(ctx, server.url, cfg, tfjs=False, entry=entry) as page:
                        r = bench_model(page, cfg, m, model_feeds[m], model_refs[m], args)
                        r["log"] = page.log[-20:]
                        entry["models"][m] = r
                if specs:
                    with open_page(ctx, server.url, cfg, tfjs=True, entry=entry) as page:
                        for k, s in specs.items():
                            entry["kernels"][k] = bench_kernel(page, cfg, k, s, kernel_feeds[k], kernel_weights[k], args)
    finally:
        server.shutdown()
        server.server_close()
    results["loadavg_end"] = os.getloadavg()
    results["seconds"] = time.perf_counter() - t_start
    return results


# ------------------------------------------------------------------------------ report


def save_results(folder: str | Path, stem: str, res: dict, report_of) -> None:
    """Writes FOLDER/STEM.json (every sample) and FOLDER/STEM.md (`report_of(res)`)."""
    dest = Path(folder)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / f"{stem}.json").write_text(json.dumps(res, indent=1))
    (dest / f"{stem}.md").write_text(report_of(res))
    log(f"wrote {dest / stem}.md and {stem}.json ({res['seconds'] / 60:.1f} min)")


def _ms(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def _s(ms: float | None) -> str:
    return "–" if ms is None else f"{ms / 1000:.1f}"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "–"


def _err(e: float) -> str:
    mark = "" if e <= TOLERANCE else " ✗"
    return f"{e:.0e}{mark}"


def report(res: dict) -> str:
    m = res["machine"]
    cfgs = res["configs"]
    lines = [
        "# Browser benchmark: nnjit vs ONNX Runtime Web vs TensorFlow.js",
        "",
        ("Measured by `python bench/browser/run.py`, runs merged (listed below). " if res.get("merged") else
         f"Measured {res['started']} by `python bench/browser/run.py` in one headless Chromium run "
         f"({res['seconds'] / 60:.1f} min). ") + "docs/benchmarks.md says how and what each number means.",
        "",
        f"* Machine: {m['cpu']}, {m['cores']} cores, {m['memory']} RAM, {m['os']}; no GPU. Shared with other "
        f"work while measuring (load average {res['loadavg_start'][0]:.1f} at the start, "
        f"{res['loadavg_end'][0]:.1f} at the end): times are noisy, ratios between interleaved runs less so.",
        f"* Browser: {m['chromium']} (headless, `--enable-unsafe-webgpu --disable-gpu-shader-disk-cache`, "
        "fresh profile; the server sends `Cache-Control: no-store`, so nothing is cached between pages but "
        "nnjit's tuning decisions in IndexedDB).",
        "* Contenders: nnjit (" + (f"`{res['nnjit_commit']}`" if res.get("nnjit_commit") else "this tree")
        + ", bundles from `nnjit compile --candidates "
        f"{res['candidates']}`, on-device tuning budget {res['budget_ms'] / 1000:.0f} s), "
        + ", ".join(f"`{k}@{v}`" for k, v in res["packages"].items()) + ", all served from node_modules.",
    ]  # fmt: skip
    if res.get("merged"):
        lines.append("* Merged from " + "; ".join(
            f"a run started {r['started']} ({r['seconds'] / 60:.1f} min, load average {r['loadavg_start'][0]:.1f}–{r['loadavg_end'][0]:.1f}"
            + (f", nnjit {r['nnjit_commit']}" if r.get("nnjit_commit") else "") + ")"
            for r in res["merged"]) + " (`run.py --merge` replaces the cells it measures).")  # fmt: skip
    for cfg, e in cfgs.items():
        info = e["info"]
        bits = [f"nnjit threads={e['threads'] if e['backend'] == 'wasm' else '–'}",
                f"ORT-web `numThreads={info['ortThreads']}` ({'wasm' if e['backend'] == 'wasm' else 'webgpu'} EP)"]  # fmt: skip
        if info.get("tfjsBackend"):
            bits.append(f"TF.js {info['tfjsBackend']} backend" + (f" `setThreadsCount({e['threads']})` → {info['tfjsThreads']} thread(s)" if info.get("tfjsThreads") else ""))
        if e["backend"] == "webgpu":
            a = info.get("adapter") or {}
            bits.append(f"adapter {a.get('vendor')}/{a.get('architecture')} (fallback adapter: {a.get('isFallbackAdapter')}) — **software** (SwiftShader on the CPU), says nothing about GPU speed")
        if info.get("hardwareConcurrencyOverride"):
            bits.append(f"`navigator.hardwareConcurrency` reported as {info['hardwareConcurrencyOverride']} to this page (TF.js caps its pool at half of it)")
        lines.append(f"* {CONFIG_LABEL[cfg]}: " + "; ".join(bits) + ".")
    lines += ["", "## Full models (batch 1, sequence 128)", "",
              "Warm: median (and fastest) over interleaved runs (nnjit, ORT-web alternating) after one warm-up "
              "run, wall clock around `session.run()` including input and output copies; the fastest run shows "
              "what a quiet machine gives when a burst of other work lifted the median. Cold: from "
              "`create()` (fetching the model / bundle) to the first run's outputs, in seconds; nnjit's "
              "tuning time is inside its cold number and given again separately; a second load tunes only the "
              "kernels the first left out of budget (and looks the others up). Error: max |out - ref| "
              "/ max |ref| against onnxruntime 1.31 (Python, CPU) on the same inputs.", "",
              "| model | backend | nnjit warm ms (min) | ORT-web warm ms (min) | nnjit / ORT | nnjit cold, tuning s (of which tuning) | nnjit cold, cached s (tuning) | ORT-web cold s | error nnjit / ORT | runs |",
              "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for cfg, e in cfgs.items():
        for r in e["models"].values():
            w = r["warm"]
            t = r["nnjit_tune"]
            lines.append(
                f"| {r['model']} | {CONFIG_LABEL[cfg]} | {_ms(w['nnjit']['median'])} ({_ms(w['nnjit']['min'])}) | "
                f"{_ms(w['ort']['median'])} ({_ms(w['ort']['min'])}) | "
                f"**{_ratio(w['nnjit']['median'], w['ort']['median'])}** | {_s(t['firstInferenceMs'])} ({_s(t['tuningMs'])}; "
                f"{t['tuning']['tuned']} tuned, {t['tuning']['outOfBudget']} out of budget) | "
                f"{_s(r['nnjit_cached']['firstInferenceMs'])} ({_s(r['nnjit_cached']['tuningMs'])}) | "
                f"{_s(r['ort_cold']['firstInferenceMs'])} | {_err(r['nnjit_cached']['error'])} / {_err(r['ort_cold']['error'])} | {r['runs']} |"
            )  # fmt: skip
    # where nnjit's time goes
    kind_rows = []
    for cfg, e in cfgs.items():
        for r in e["models"].values():
            kinds = r.get("nnjit_kinds")
            if kinds:
                tot = sum(kinds.values())
                top = sorted(kinds.items(), key=lambda kv: -kv[1])[:4]
                kind_rows.append(f"| {r['model']} | {CONFIG_LABEL[cfg]} | {_ms(tot)} | " + ", ".join(f"{k} {100 * v / tot:.0f}%" for k, v in top) + " |")
    if kind_rows:
        lines += ["", "nnjit's own time per kernel kind (Wasm: `session.timings` of the warm run with the median time):", "",
                  "| model | backend | kernels ms | share |", "|---|---|---|---|", *kind_rows]  # fmt: skip
    krows = []
    for cfg, e in cfgs.items():
        for r in e["kernels"].values():
            w = r["warm"]
            n, o, t = w["nnjit"]["median"], w["ort"]["median"], w["tfjs"]["median"]
            gf = f" ({r['flops'] / (n * 1e6):.1f} GFLOP/s)" if "matmul" in r["kernel"] else ""
            krows.append(
                f"| {r['kernel']} | {CONFIG_LABEL[cfg]} | {_ms(n)}{gf} | {_ms(o)} | {_ms(t)} | **{_ratio(n, o)}** | **{_ratio(n, t)}** | "
                f"{_err(r['nnjit']['error'])} / {_err(r['ort']['error'])} / {_err(r['tfjs']['error'])} | {r['runs']} |"
            )  # fmt: skip
    if krows:
        lines += ["", "## BERT-base kernels as single-op models", "",
                  "The same ONNX model (onnx.helper: MatMul with a weight initializer, MatMul of two inputs, "
                  "Softmax, LayerNormalization) for nnjit and ORT-web; TF.js runs `tf.matMul`, `tf.softmax`, and "
                  "`tf.moments` + elementwise ops for layer norm, weights resident, inputs made from the same "
                  "Float32Arrays each call and the output read back (`await y.data()`), as the other two copy in and "
                  "out. Median ms per call over interleaved rounds (after 3 warm-up calls, 1 where a call takes over "
                  "300 ms); error against numpy in float64.", "",
                  "| kernel | backend | nnjit ms | ORT-web ms | TF.js ms | nnjit / ORT | nnjit / TF.js | error nnjit / ORT / TF.js | runs |",
                  "|---|---|---|---|---|---|---|---|---|", *krows]  # fmt: skip
    lines += ["", "Ratios below 1 mean nnjit is faster. ✗ marks a relative error above "
              f"{TOLERANCE:g}.", "", "![results](results.png)", ""]  # fmt: skip
    return "\n".join(lines)


def chart(res: dict, path: Path) -> None:
    """Two panels: full-model warm latency (ms, log) and kernel ratios nnjit / ORT-web and
    nnjit / TF.js (log, 1 = parity), one row per (model or kernel, configuration)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"nnjit": "#d62728", "ort": "#1f77b4", "tfjs": "#ff7f0e"}
    mrows = [(f"{r['model']}\n{CONFIG_LABEL[c]}", r) for c, e in res["configs"].items() for r in e["models"].values()]
    krows = [(f"{r['kernel']} — {CONFIG_LABEL[c]}", r) for c, e in res["configs"].items() for r in e["kernels"].values()]
    heights = [max(1.0, 0.55 * len(mrows)), max(1.0, 0.32 * len(krows))]
    panels = [h for h, rows in zip(heights, (mrows, krows)) if rows]
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, sum(panels) + 1.6), squeeze=False,
                             gridspec_kw={"height_ratios": panels})  # fmt: skip
    axes = list(axes[:, 0])
    if mrows:
        ax = axes.pop(0)
        y = np.arange(len(mrows))
        for i, eng in enumerate(["nnjit", "ort"]):
            v = np.array([r["warm"][eng]["median"] for _, r in mrows])
            ax.barh(y + (i - 0.5) * 0.4, v, 0.4, label=ENGINES[eng], color=colors[eng])
            for yy, vv in zip(y, v):
                ax.text(vv * 1.03, yy + (i - 0.5) * 0.4, f"{vv:.0f} ms", va="center", fontsize=7)
        ax.set_yticks(y, [n for n, _ in mrows], fontsize=8)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlim(right=ax.get_xlim()[1] * 2)
        ax.set_xlabel("warm latency, ms (log scale; lower is better)")
        ax.set_title("Full models, batch 1, sequence 128", fontsize=10)
        ax.legend(fontsize=8, loc="best")
    if krows:
        ax = axes.pop(0)
        y = np.arange(len(krows))
        for i, (eng, lab) in enumerate([("ort", "nnjit / ORT-web"), ("tfjs", "nnjit / TF.js")]):
            v = np.array([r["warm"]["nnjit"]["median"] / r["warm"][eng]["median"] for _, r in krows])
            ax.barh(y + (i - 0.5) * 0.4, v - 1.0, 0.4, left=1.0, label=lab, color=colors[eng])  # from parity
            for yy, vv in zip(y, v):
                ax.text(vv * (1.04 if vv >= 1 else 1 / 1.04), yy + (i - 0.5) * 0.4, f"{vv:.2f}", va="center",
                        ha="left" if vv >= 1 else "right", fontsize=6)  # fmt: skip
        ax.axvline(1.0, color="black", lw=0.8)
        ax.set_yticks(y, [n for n, _ in krows], fontsize=7)
        ax.invert_yaxis()
        ax.set_xscale("log")
        lo, hi = ax.get_xlim()
        ax.set_xlim(lo / 1.4, hi * 1.4)
        ticks = [t for t in (0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10) if lo / 1.4 <= t <= hi * 1.4]
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("time ratio (log scale): < 1 nnjit faster, > 1 nnjit slower")
        ax.set_title("BERT-base kernels as single-op models", fontsize=10)
        ax.legend(fontsize=8, loc="best")
    m = res["machine"]
    fig.suptitle(f"nnjit vs ORT-web 1.30 vs TF.js 4.22 — {m['chromium']}, {m['cores']}-core x86-64, shared machine; "
                 "WebGPU = SwiftShader (software)", fontsize=9)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def merge(old: dict, new: dict) -> dict:
    """`old` with the cells (model or kernel, per configuration) that `new` measured replaced."""
    keys = ("started", "seconds", "loadavg_start", "loadavg_end", "nnjit_commit")
    runs = old.pop("merged", None) or [{k: old.get(k) for k in keys}]
    runs.append({k: new.get(k) for k in keys})
    for cfg, e in new["configs"].items():
        o = old["configs"].setdefault(cfg, e)
        if o is not e:
            o["models"].update(e["models"])
            o["kernels"].update(e["kernels"])
            o["info"] = o["info"] or e["info"]
    old["merged"] = runs
    old["compile"].update(new["compile"])
    return old


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="minilm,bert", help="comma list of: " + ", ".join(FULL_MODELS))
    ap.add_argument("--configs", default="wasm1,wasm2,webgpu", help="comma list of: " + ", ".join(CONFIGS))
    ap.add_argument("--no-kernels", dest="kernels", action="store_false", help="skip the single-op kernels (and TF.js)")
    ap.add_argument("--webgpu-models", default="minilm,bert",
                    help="the models measured on WebGPU ('minilm' saves ~5 min: ORT-web takes ~30 s per BERT-base run on SwiftShader)")  # fmt: skip
    ap.add_argument("--runs", type=int, default=10, help="warm runs per model")
    ap.add_argument("--webgpu-bert-runs", type=int, default=3, help="warm runs of BERT-base on WebGPU (the exception)")
    ap.add_argument("--kernel-runs", type=int, default=20, help="warm runs per kernel")
    ap.add_argument("--kernel-cap-s", type=float, default=30.0,
                    help="seconds of warm runs per kernel; fewer runs (but --min-runs) where --kernel-runs would take longer")  # fmt: skip
    ap.add_argument("--min-runs", type=int, default=10, help="fewest warm runs per kernel")
    ap.add_argument("--merge", action="store_true",
                    help="merge into the existing results.json (replacing the cells measured now) instead of starting anew")  # fmt: skip
    ap.add_argument("--candidates", type=int, default=4, help="nnjit compile --candidates N")
    ap.add_argument("--budget-ms", type=int, default=30000, help="nnjit on-device tuning budget")
    ap.add_argument("--recompile", action="store_true", help="recompile the bundles even if they are up to date")
    ap.add_argument("--quick", action="store_true", help="MiniLM and the kernels, 5 runs (a smoke test)")
    ap.add_argument("--results", default=str(HERE), help="folder for RESULTS.md, results.png, results.json")
    ap.add_argument("--smoke", action="store_true", default=os.environ.get("NNJIT_BENCH_SMOKE") == "1",
                    help="a tiny case that checks the harness runs (also NNJIT_BENCH_SMOKE=1)")  # fmt: skip
    args = ap.parse_args(argv)
    if args.quick:
        args.models, args.runs, args.kernel_runs, args.min_runs = "minilm", 5, 10, 5
    if args.smoke:
        smoke(args)
    res = run(args)
    dest = Path(args.results)
    dest.mkdir(parents=True, exist_ok=True)
    if args.merge and (dest / "results.json").is_file():
        res = merge(json.loads((dest / "results.json").read_text()), res)
    (dest / "results.json").write_text(json.dumps(res, indent=1))
    (dest / "RESULTS.md").write_text(report(res))
    chart(res, dest / "results.png")
    log(f"wrote {dest / 'RESULTS.md'}, results.png, results.json ({res['seconds'] / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
