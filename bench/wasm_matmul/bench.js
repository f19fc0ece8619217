// The benchmark page's code. The Python driver (run.py) opens index.html in headless Chromium
// and calls these functions with page.evaluate; each returns JSON-ready results.
//
//   benchWasm(cfg)  nnjit kernels and the SIMD peak kernels: Wasm modules instantiated on one
//                   shared memory in `workers` module workers (worker.js), runs started with
//                   Atomics (notify) and awaited with Atomics.waitAsync, timed on this thread.
//   benchOrt(cfg)   onnxruntime-web (wasm EP) sessions of single-MatMul ONNX models.
//   benchTfjs(cfg)  tf.matMul on the TensorFlow.js wasm backend.
//   drawChart(data) a bar chart on the page's canvas (the driver screenshots it).
//
// ORT-web and TF.js fix their thread count when their Wasm runtime starts, so the driver opens
// a fresh page per (contender, thread count); every page of one benchmark runs in the same
// browser process.

const GEN = 0, KERNEL = 1, NTHREADS = 2, NARGS = 3, DONE = 4, STOP = 5, NWORKERS = 6, ARGS = 16;

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) >> 1] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

async function fetchBytes(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`fetch ${url}: ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

async function fetchF32(url) {
  const b = await fetchBytes(url);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

function relErr(got, ref) {
  let num = 0, den = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(got[i] - ref[i]);
    if (!(d <= num)) num = d; // NaN propagates
    const a = Math.abs(ref[i]);
    if (a > den) den = a;
  }
  return num / den;
}

function onceMessage(w) {
  return new Promise((resolve, reject) => {
    w.onmessage = (ev) => (ev.data.type === "error" ? reject(new Error(ev.data.error)) : resolve(ev.data));
    w.onerror = (e) => reject(new Error(`worker error: ${e.message}`));
  });
}

class Pool {
  constructor(nworkers, pages) {
    this.n = nworkers;
    this.memory = new WebAssembly.Memory({ initial: pages, maximum: 65536, shared: true });
    this.control = new SharedArrayBuffer(256);
    this.ctl = new Int32Array(this.control);
    this.ctl[NWORKERS] = nworkers;
    this.workers = [];
  }
  async start() {
    for (let t = 0; t < this.n; t++) {
      const w = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
      this.workers.push(w);
      const p = onceMessage(w);
      w.postMessage({ type: "init", memory: this.memory, control: this.control, tid: t });
      await p;
    }
  }
  async load(modules) {
    await Promise.all(this.workers.map((w) => {
      const p = onceMessage(w);
      w.postMessage({ type: "load", modules });
      return p;
    }));
    await Promise.all(this.workers.map((w) => {
      const p = onceMessage(w);
      w.postMessage({ type: "serve" });
      return p;
    }));
  }
  async run(kernel, nthreads, args) {
    const c = this.ctl;
    c[KERNEL] = kernel;
    c[NTHREADS] = nthreads;
    c[NARGS] = args.length;
    for (let i = 0; i < args.length; i++) c[ARGS + i] = args[i];
    Atomics.store(c, DONE, 0);
    Atomics.add(c, GEN, 1);
    Atomics.notify(c, GEN);
    for (;;) {
      const v = Atomics.load(c, DONE);
      if (v >= this.n) return;
      const r = Atomics.waitAsync(c, DONE, v);
      if (r.async) await r.value;
    }
  }
  async stop() {
    Atomics.store(this.ctl, STOP, 1);
    Atomics.add(this.ctl, GEN, 1);
    Atomics.notify(this.ctl, GEN);
    for (const w of this.workers) w.terminate();
  }
}

// cfg = {workers, pages, modules: [url], buffers: [{offset, src: url}],
//        jobs: [{name, module, threads, args: [int], flops, warmup, warmup_ms, runs, max_ms,
//                check?: {offset, count, src}}]}
// wasmSetup(cfg) starts the workers and loads modules and buffers; wasmJob(i) runs job i (the
// driver waits for an idle machine between jobs); wasmTeardown() stops the workers.
// benchWasm(cfg) does all three.
let W = null;

export async function wasmSetup(cfg) {
  const pool = new Pool(cfg.workers, cfg.pages);
  await pool.start();
  const modules = [];
  // compiled once here and shared: one NativeModule, so V8's tier-up (Liftoff -> TurboFan)
  // of a function is shared by both workers
  for (const url of cfg.modules) modules.push(await WebAssembly.compile(await fetchBytes(url)));
  await pool.load(modules);
  const heap = new Uint8Array(pool.memory.buffer);
  for (const b of cfg.buffers || []) heap.set(await fetchBytes(b.src), b.offset);
  W = { cfg, pool, refs: new Map() };
  return cfg.jobs.length;
}

export async function wasmJob(i) {
  const { cfg, pool, refs } = W;
  const job = cfg.jobs[i];
  const res = { name: job.name, threads: job.threads };
  if (job.check) {
    // poison the output, run once, compare with the reference
    new Float32Array(pool.memory.buffer, job.check.offset, job.check.count).fill(NaN);
    await pool.run(job.module, job.threads, job.args);
    if (!refs.has(job.check.src)) refs.set(job.check.src, await fetchF32(job.check.src));
    res.rel_err = relErr(new Float32Array(pool.memory.buffer, job.check.offset, job.check.count),
                         refs.get(job.check.src));
  }
  // warm-up: `warmup` runs and at least `warmup_ms` (V8 tiers hot functions up to TurboFan in
  // the background; a call uses the new code from the next call on)
  const w0 = performance.now();
  for (let i = 0; i < job.warmup || performance.now() - w0 < (job.warmup_ms ?? 300); i++) {
    await pool.run(job.module, job.threads, job.args);
  }
  const times = [];
  const deadline = performance.now() + (job.max_ms || 1e9);
  for (let i = 0; i < job.runs; i++) {
    const t0 = performance.now();
    await pool.run(job.module, job.threads, job.args);
    times.push(performance.now() - t0);
    if (performance.now() > deadline && times.length >= 5) break;
  }
  return finish(res, times, job.flops);
}

export async function wasmTeardown() {
  if (W) await W.pool.stop();
  W = null;
}

export async function benchWasm(cfg) {
  const n = await wasmSetup(cfg);
  const out = [];
  for (let i = 0; i < n; i++) out.push(await wasmJob(i));
  await wasmTeardown();
  return out;
}

function finish(res, times, flops) {
  res.ms = median(times);
  res.min_ms = Math.min(...times);
  res.n = times.length;
  res.gflops = flops / (res.ms * 1e6);
  res.best_gflops = flops / (res.min_ms * 1e6);
  return res;
}

// ------------------------------------------------------------------------- ORT-web, TF.js

const NM = "./node_modules/";
let C = null; // the contender loaded in this page: {kind, threads, jobs: [...], ...}

async function timeRuns(job, fn) {
  const w0 = performance.now();
  for (let i = 0; i < job.warmup || performance.now() - w0 < (job.warmup_ms ?? 300); i++) await fn();
  const times = [];
  const deadline = performance.now() + (job.max_ms || 1e9);
  for (let i = 0; i < job.runs; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
    if (performance.now() > deadline && times.length >= 5) break;
  }
  return times;
}

// cfg = {threads, jobs: [{name, model: url, inputs: [{name, src, dims}], output: {src}, flops,
//        warmup, warmup_ms, runs, max_ms}]}
export async function ortSetup(cfg) {
  const ort = await import(NM + "onnxruntime-web/dist/ort.wasm.min.mjs");
  ort.env.wasm.numThreads = cfg.threads;
  ort.env.wasm.simd = true;
  ort.env.wasm.proxy = false;
  ort.env.wasm.wasmPaths = new URL(NM + "onnxruntime-web/dist/", location.href).href;
  const jobs = [];
  for (const j of cfg.jobs) {
    const session = await ort.InferenceSession.create(new URL(j.model, location.href).href, {
      executionProviders: ["wasm"], graphOptimizationLevel: "all", executionMode: "sequential",
    });
    const feeds = {};
    for (const inp of j.inputs) feeds[inp.name] = new ort.Tensor("float32", await fetchF32(inp.src), inp.dims);
    jobs.push({ ...j, session, feeds });
  }
  C = { kind: "ort", threads: cfg.threads, jobs, ort };
  return { version: ort.env.versions?.web ?? "", numThreads: ort.env.wasm.numThreads,
           crossOriginIsolated };
}

export async function ortJob(i) {
  const j = C.jobs[i];
  const res = { name: j.name, threads: C.threads };
  const ref = await fetchF32(j.output.src);
  const out = await j.session.run(j.feeds);
  res.rel_err = relErr(out[j.session.outputNames[0]].data, ref);
  const times = await timeRuns(j, async () => {
    const r = await j.session.run(j.feeds);
    for (const k in r) r[k].dispose?.();
  });
  return finish(res, times, j.flops);
}

function loadScript(url) {
  return new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = url;
    s.onload = resolve;
    s.onerror = () => reject(new Error(`cannot load ${url}`));
    document.head.appendChild(s);
  });
}

// cfg = {threads, jobs: [{name, a: {src, dims}, b: {src, dims}, output: {src}, flops, ...}]}
export async function tfjsSetup(cfg) {
  // tfjs-backend-wasm caps XNNPACK's thread pool at navigator.hardwareConcurrency / 2
  // (backend.cc: min(setThreadsCount, hardwareConcurrency / 2)): on a 2-core machine it
  // would run one thread whatever setThreadsCount says. Report enough cores for the count
  // asked (the page's own navigator; checked with getThreadsCount below).
  const hc = navigator.hardwareConcurrency;
  let hcOverride = null;
  if (cfg.threads > Math.floor(hc / 2)) {
    hcOverride = 2 * cfg.threads;
    Object.defineProperty(Navigator.prototype, "hardwareConcurrency", {
      get: () => hcOverride, configurable: true,
    });
  }
  await loadScript(NM + "@tensorflow/tfjs-core/dist/tf-core.min.js");
  await loadScript(NM + "@tensorflow/tfjs-backend-wasm/dist/tf-backend-wasm.min.js");
  const tf = window.tf;
  tf.wasm.setWasmPaths(new URL(NM + "@tensorflow/tfjs-backend-wasm/dist/", location.href).href);
  tf.wasm.setThreadsCount(cfg.threads);
  if (!(await tf.setBackend("wasm"))) throw new Error("tfjs: the wasm backend did not start");
  await tf.ready();
  const jobs = [];
  for (const j of cfg.jobs) {
    const a = tf.tensor(await fetchF32(j.a.src), j.a.dims, "float32");
    const b = tf.tensor(await fetchF32(j.b.src), j.b.dims, "float32");
    jobs.push({ ...j, ta: a, tb: b });
  }
  C = { kind: "tfjs", threads: cfg.threads, jobs, tf };
  const backend = tf.backend();
  return {
    version: tf.version_core,
    backend: tf.getBackend(),
    threadsCount: tf.wasm.getThreadsCount ? tf.wasm.getThreadsCount() : null,
    hardwareConcurrency: hc,
    hardwareConcurrencyOverride: hcOverride,
    multithread: await tf.env().getAsync("WASM_HAS_MULTITHREAD_SUPPORT"),
    simd: await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT"),
    crossOriginIsolated,
  };
}

export async function tfjsJob(i) {
  const { tf } = C;
  const j = C.jobs[i];
  const res = { name: j.name, threads: C.threads };
  const ref = await fetchF32(j.output.src);
  const tb = !!j.b.trans; // B stored transposed: matMul(a, b, transposeA=false, transposeB=true)
  const o = tf.matMul(j.ta, j.tb, false, tb);
  res.rel_err = relErr(o.dataSync(), ref);
  o.dispose();
  // the wasm backend runs the kernel inside tf.matMul (synchronously); no read-back in the loop
  const times = await timeRuns(j, async () => tf.matMul(j.ta, j.tb, false, tb).dispose());
  return finish(res, times, j.flops);
}

// ------------------------------------------------------------------------------ the chart

// data = {title, subtitle, groups: [label], series: [{label, color, values: [number|null]}],
//         ylabel, lines: [{label, value, color}]}
export function drawChart(data) {
  const cv = document.getElementById("chart");
  cv.style.display = "block";
  const g = cv.getContext("2d");
  const W = cv.width, H = cv.height;
  const L = 70, R = 20, T = 70, B = 90;
  g.fillStyle = "#fff";
  g.fillRect(0, 0, W, H);
  const vmax = Math.max(...data.series.flatMap((s) => s.values.filter((v) => v != null)),
                        ...(data.lines || []).map((l) => l.value)) * 1.12;
  const y = (v) => T + (H - T - B) * (1 - v / vmax);
  g.fillStyle = "#000";
  g.font = "bold 18px sans-serif";
  g.fillText(data.title, L, 28);
  g.font = "13px sans-serif";
  g.fillText(data.subtitle || "", L, 50);
  // grid
  g.strokeStyle = "#ddd";
  g.fillStyle = "#444";
  g.font = "12px sans-serif";
  const step = vmax > 150 ? 25 : vmax > 60 ? 10 : 5;
  for (let v = 0; v <= vmax; v += step) {
    g.beginPath(); g.moveTo(L, y(v)); g.lineTo(W - R, y(v)); g.stroke();
    g.fillText(String(v), L - 30, y(v) + 4);
  }
  g.save(); g.translate(18, (T + H - B) / 2); g.rotate(-Math.PI / 2);
  g.fillText(data.ylabel || "", 0, 0); g.restore();
  const ng = data.groups.length, ns = data.series.length;
  const gw = (W - L - R) / ng, bw = (gw * 0.8) / ns;
  data.groups.forEach((label, gi) => {
    const x0 = L + gi * gw + gw * 0.1;
    data.series.forEach((s, si) => {
      const v = s.values[gi];
      if (v == null) return;
      g.fillStyle = s.color;
      g.fillRect(x0 + si * bw, y(v), bw - 2, y(0) - y(v));
      g.fillStyle = "#222";
      g.font = "10px sans-serif";
      g.fillText(v.toFixed(0), x0 + si * bw + 1, y(v) - 3);
    });
    g.fillStyle = "#000";
    g.font = "12px sans-serif";
    g.fillText(label, x0, H - B + 18);
  });
  for (const l of data.lines || []) {
    g.strokeStyle = l.color; g.setLineDash([6, 4]);
    g.beginPath(); g.moveTo(L, y(l.value)); g.lineTo(W - R, y(l.value)); g.stroke();
    g.setLineDash([]);
    g.fillStyle = l.color; g.font = "11px sans-serif";
    g.fillText(l.label, W - R - 260, y(l.value) - 4);
  }
  // legend
  let lx = L;
  data.series.forEach((s) => {
    g.fillStyle = s.color; g.fillRect(lx, H - 40, 14, 14);
    g.fillStyle = "#000"; g.font = "12px sans-serif";
    g.fillText(s.label, lx + 18, H - 29);
    lx += 30 + g.measureText(s.label).width;
  });
  return true;
}
