// The benchmark page's code (index.html imports it; run.py calls it through page.evaluate).
//
// One page = one configuration: `setup({backend: "wasm" | "webgpu", threads})` fixes the thread
// count of ONNX Runtime Web (ort.env.wasm.numThreads) and TensorFlow.js (setThreadsCount),
// which both fix it when their Wasm runtime starts, so every thread count gets a fresh page.
// nnjit takes its thread count per session (`threads`).
//
// Contenders are registered under an id and run through one interface, so the driver can
// interleave them (A B B A ...) and the load of this shared machine hits all of them alike:
//   nnjitLoad(id, bundleUrl, opts)   nnjit.InferenceSession.create (+ tuning), first run
//   ortLoad(id, modelUrl, opts)      fetch the .onnx + ort.InferenceSession.create, first run
//   tfjsLoad(id, spec)               a TF.js op with resident weights (kernels only)
//   interleave(ids, n, warmup)       warm latency: every contender n times, rotating the order
// and, for lengths.py (one contender at several input lengths):
//   useFeeds(id, feedsKey)           switch a contender to other feeds (a variable-length bundle
//                                    compiles that length's kernels on this first run)
//   nnjitEmbedLoad / tjsLoad         text -> embedding: nnjit's session.embed and transformers.js'
//   setText(id, text)                feature-extraction pipeline, one sentence at a time
// and, for generate.py (greedy text generation with a KV cache):
//   nnjitGenLoad / ortGenLoad        nnjit's session.generate on a generation bundle, and
//                                    ORT-web's past_key_values loop as transformers.js runs it
//   generate(id, ids, n)             one greedy generation: tokens, prefill ms, decode tokens/s
//   genProfile(id)                   nnjit's per-kernel time of the decode steps since the last call
// Every call returns plain JSON; outputs come back as base64 float32 for run.py to check.

import * as nnjit from "/runtime/nnjit.js";

const state = { cfg: null, ort: null, tf: null, contenders: new Map(), feeds: new Map() };
const now = () => performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) >> 1] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

function b64(typed) {
  const u8 = new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
  let s = "";
  for (let i = 0; i < u8.length; i += 0x8000) s += String.fromCharCode.apply(null, u8.subarray(i, i + 0x8000));
  return btoa(s);
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const el = document.createElement("script");
    el.src = src;
    el.onload = resolve;
    el.onerror = () => reject(new Error(`cannot load ${src}`));
    document.head.appendChild(el);
  });
}

const ORT_DIST = "/node_modules/onnxruntime-web/dist/";
const TF = "/node_modules/@tensorflow/";

/** Configures the page: ORT-web (and TF.js when `tfjs`) for `backend` with `threads`. */
export async function setup(cfg) {
  if (state.cfg) throw new Error("setup() runs once per page");
  state.cfg = cfg;
  const ort = await import(ORT_DIST + (cfg.backend === "webgpu" ? "ort.webgpu.min.mjs" : "ort.wasm.min.mjs"));
  ort.env.wasm.numThreads = cfg.threads;
  ort.env.wasm.wasmPaths = ORT_DIST;
  ort.env.wasm.proxy = false;
  ort.env.logLevel = "error";
  state.ort = ort;
  const info = {
    userAgent: navigator.userAgent,
    hardwareConcurrency: navigator.hardwareConcurrency,
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    wasmFeatures: nnjit.detectWasmFeatures(),
    ortVersion: ort.env.versions?.web ?? null,
    ortThreads: ort.env.wasm.numThreads,
  };
  if (cfg.backend === "webgpu") {
    const adapter = await navigator.gpu?.requestAdapter();
    if (adapter) {
      const ai = adapter.info ?? (await adapter.requestAdapterInfo?.()) ?? {};
      info.adapter = { vendor: ai.vendor, architecture: ai.architecture, device: ai.device, description: ai.description, isFallbackAdapter: ai.isFallbackAdapter ?? adapter.isFallbackAdapter ?? null };
    } else {
      info.adapter = null;
    }
  }
  if (cfg.tfjs) {
    await loadScript(TF + "tfjs-core/dist/tf-core.min.js");
    const tf = globalThis.tf;
    if (cfg.backend === "webgpu") {
      await loadScript(TF + "tfjs-backend-webgpu/dist/tf-backend-webgpu.min.js");
    } else {
      await loadScript(TF + "tfjs-backend-wasm/dist/tf-backend-wasm.min.js");
      tf.wasm.setWasmPaths(TF + "tfjs-backend-wasm/dist/");
      tf.wasm.setThreadsCount(cfg.threads);
    }
    const ok = await tf.setBackend(cfg.backend);
    if (!ok) throw new Error(`TF.js backend ${cfg.backend} did not initialise`);
    await tf.ready();
    state.tf = tf;
    info.tfjsVersion = tf.version_core ?? tf.version?.["tfjs-core"] ?? null;
    info.tfjsBackend = tf.getBackend();
    info.tfjsThreads = cfg.backend === "wasm" ? tf.wasm.getThreadsCount() : null;
  }
  return info;
}

// ---------------------------------------------------------------------------- feeds

/** Registers feeds: {name: {dtype, dims, url}} (raw little-endian files written by run.py). */
export async function loadFeeds(key, spec) {
  const feeds = {};
  for (const [name, f] of Object.entries(spec)) {
    const r = await fetch(f.url);
    if (!r.ok) throw new Error(`fetch ${f.url}: HTTP ${r.status}`);
    const buf = await r.arrayBuffer();
    feeds[name] = { dtype: f.dtype, dims: f.dims, data: f.dtype === "int64" ? new BigInt64Array(buf) : new Float32Array(buf) };
  }
  state.feeds.set(key, feeds);
  return Object.keys(feeds);
}

function feedsFor(kind, key) {
  const feeds = state.feeds.get(key);
  if (!feeds) throw new Error(`no feeds '${key}'`);
  const out = {};
  for (const [name, f] of Object.entries(feeds)) {
    out[name] = kind === "ort" ? new state.ort.Tensor(f.dtype, f.data, f.dims) : new nnjit.Tensor(f.dtype, f.data, f.dims);
  }
  return out;
}

function plainOutputs(out, names) {
  const res = {};
  for (const name of names ?? Object.keys(out)) {
    const t = out[name];
    res[name] = { dims: Array.from(t.dims, Number), b64: b64(t.data instanceof Float32Array ? t.data : Float32Array.from(t.data)) };
  }
  return res;
}

// ---------------------------------------------------------------------------- contenders

/** Loads an nnjit bundle (opts: backend, threads, tuning budgetMs / cache), runs it once on
 * feeds `feedsKey`, keeps the session under `id`. clearCache: empty the tuning store first. */
export async function nnjitLoad(id, url, feedsKey, opts = {}) {
  if (opts.clearCache) await nnjit.clearTuningCache();
  const t0 = now();
  const session = await nnjit.InferenceSession.create(url, {
    backend: opts.backend, fallback: false, threads: opts.threads,
    tuning: opts.tuning === false ? false : { budgetMs: opts.budgetMs ?? 30000, cache: opts.cache ?? true },
  });
  const t1 = now();
  const out = await session.run(feedsFor("nnjit", feedsKey));
  const t2 = now();
  const c = { kind: "nnjit", session, feedsKey, run: (f) => session.run(f) };
  state.contenders.set(id, c);
  const tu = session.tuning ?? {};
  return {
    id, engine: "nnjit", backend: session.backend, threads: session.threads, fallbackReason: session.fallbackReason,
    createMs: t1 - t0, firstRunMs: t2 - t1, firstInferenceMs: t2 - t0,
    setupMs: session.loadTimings?.setupMs ?? null, tuningMs: session.loadTimings?.tuningMs ?? null,
    tuning: { tuned: tu.tuned?.length ?? 0, cached: tu.cached?.length ?? 0, shared: tu.shared?.length ?? 0,
      outOfBudget: tu.outOfBudget?.length ?? 0, failed: tu.failed?.length ?? 0, ignored: tu.ignored?.length ?? 0,
      elapsedMs: tu.elapsedMs ?? 0, notDefault: Object.values(tu.choices ?? {}).filter((c) => c !== 0).length },
    warnings: session.warnings, outputs: plainOutputs(out),
  };
}

/** Fetches an ONNX model and creates an ORT-web session on the page's backend, runs it once. */
export async function ortLoad(id, url, feedsKey, opts = {}) {
  const ort = state.ort;
  const ep = state.cfg.backend === "webgpu" ? "webgpu" : "wasm";
  const t0 = now();
  const r = await fetch(url);
  if (!r.ok) throw new Error(`fetch ${url}: HTTP ${r.status}`);
  const bytes = new Uint8Array(await r.arrayBuffer());
  const tFetched = now();
  const session = await ort.InferenceSession.create(bytes, { executionProviders: [ep], graphOptimizationLevel: opts.graphOptimizationLevel ?? "all" });
  const t1 = now();
  const out = await session.run(feedsFor("ort", feedsKey));
  const t2 = now();
  const c = { kind: "ort", session, feedsKey, run: (f) => session.run(f) };
  state.contenders.set(id, c);
  return {
    id, engine: "ort", backend: ep, threads: ort.env.wasm.numThreads, fetchMs: tFetched - t0,
    createMs: t1 - t0, firstRunMs: t2 - t1, firstInferenceMs: t2 - t0, outputs: plainOutputs(out, session.outputNames),
  };
}

const TF_OPS = {
  // inputs are made from the feeds each call (as ORT and nnjit copy theirs in), weights resident
  matmul: (tf, x, w) => tf.matMul(x.x, w.w),
  bmm: (tf, x) => tf.matMul(x.a, x.b),
  softmax: (tf, x) => tf.softmax(x.x, -1),
  layernorm: (tf, x, w, eps) => {
    const { mean, variance } = tf.moments(x.x, -1, true);
    return tf.add(tf.mul(tf.mul(tf.sub(x.x, mean), tf.rsqrt(tf.add(variance, eps))), w.gamma), w.beta);
  },
};

/** A TF.js op as a contender: spec {op, weights: {name: {dims, url}}, eps}; runs it once. */
export async function tfjsLoad(id, spec, feedsKey) {
  const tf = state.tf;
  const t0 = now();
  const weights = {};
  for (const [name, w] of Object.entries(spec.weights ?? {})) {
    const buf = await (await fetch(w.url)).arrayBuffer();
    weights[name] = tf.tensor(new Float32Array(buf), w.dims, "float32");
  }
  const op = TF_OPS[spec.op];
  const feeds = state.feeds.get(feedsKey);
  const run = async () => {
    const y = tf.tidy(() => {
      const x = {};
      for (const [name, f] of Object.entries(feeds)) x[name] = tf.tensor(f.data, f.dims, "float32");
      return op(tf, x, weights, spec.eps ?? 1e-12);
    });
    const data = await y.data();
    const dims = y.shape;
    y.dispose();
    return { y: { data, dims } };
  };
  const out = await run();
  const t1 = now();
  state.contenders.set(id, { kind: "tfjs", feedsKey: null, run, weights });
  return { id, engine: "tfjs", backend: tf.getBackend(), firstInferenceMs: t1 - t0, outputs: plainOutputs(out) };
}

/** Warm latency: `warmup` untimed runs each (and more, round by round, until `warmupMs` have
 * passed), then `n` rounds; round r runs the contenders in the order rotated by r (A B C,
 * B C A, ...). Returns {id: {ms: [...], median, min}} and, for nnjit sessions, the median
 * compute time (Wasm: the kernel loop; WebGPU: submission to map). */
export async function interleave(ids, n, warmup = 1, pauseMs = 10, warmupMs = 0) {
  const cs = ids.map((id) => {
    const c = state.contenders.get(id);
    if (!c) throw new Error(`no contender '${id}'`);
    return [id, c, c.feedsKey === null ? null : feedsFor(c.kind, c.feedsKey)];
  });
  for (const [, c, f] of cs) for (let i = 0; i < warmup; i++) await c.run(f);
  for (const tw = now(); now() - tw < warmupMs; ) for (const [, c, f] of cs) await c.run(f);
  const ms = Object.fromEntries(ids.map((id) => [id, []]));
  const compute = Object.fromEntries(ids.map((id) => [id, []]));
  const kinds = Object.fromEntries(ids.map((id) => [id, []]));
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < cs.length; j++) {
      const [id, c, f] = cs[(j + r) % cs.length];
      await sleep(pauseMs); // lets the previous contender's threads go idle
      const t0 = now();
      await c.run(f);
      ms[id].push(now() - t0);
      if (c.kind === "nnjit") {
        compute[id].push(c.session.timings?.computeMs ?? NaN);
        kinds[id].push(nnjitKinds(id));
      }
    }
  }
  const res = {};
  for (const id of ids) {
    res[id] = { ms: ms[id], median: median(ms[id]), min: Math.min(...ms[id]) };
    if (compute[id].length) res[id].computeMedian = median(compute[id]);
    // the kernel-kind split of the median run (Wasm keeps per-kernel times on every run)
    const order = ms[id].map((v, i) => [v, i]).sort((a, b) => a[0] - b[0]);
    const mid = order.length ? order[(order.length - 1) >> 1][1] : -1;
    if (mid >= 0 && kinds[id][mid]) res[id].kinds = kinds[id][mid];
  }
  return res;
}

/** nnjit's time per kernel kind in its last run ({kind: ms}), or null where the run kept no
 * per-kernel times (WebGPU without profiling). */
export function nnjitKinds(id) {
  const k = state.contenders.get(id)?.session?.timings?.kernels;
  if (!k) return null;
  const out = {};
  for (const v of Object.values(k)) out[v.kind ?? "?"] = (out[v.kind ?? "?"] ?? 0) + v.ms;
  return out;
}

/** nnjit's per-step times of its last run ([{kernel, ms}]), or null where none were kept. */
export function nnjitSteps(id) {
  return state.contenders.get(id)?.session?.timings?.steps ?? null;
}

/** Switches contender `id` (nnjit or ORT-web) to feeds `feedsKey` and runs it once:
 * {ms, outputs}. */
export async function useFeeds(id, feedsKey) {
  const c = state.contenders.get(id);
  if (!c) throw new Error(`no contender '${id}'`);
  c.feedsKey = feedsKey;
  const t0 = now();
  const out = await c.run(feedsFor(c.kind, feedsKey));
  return { ms: now() - t0, outputs: plainOutputs(out, c.kind === "ort" ? c.session.outputNames : undefined) };
}

// ---------------------------------------------------------------------------- text in

/** An nnjit session on text: create (+ tuning, as nnjitLoad), then session.embed([text]) once.
 * The contender runs session.embed([its text]): tokenizer, model, pooling, normalisation. */
export async function nnjitEmbedLoad(id, url, text, opts = {}) {
  if (opts.clearCache) await nnjit.clearTuningCache();
  const t0 = now();
  const session = await nnjit.InferenceSession.create(url, {
    backend: opts.backend, fallback: false, threads: opts.threads,
    tuning: opts.tuning === false ? false : { budgetMs: opts.budgetMs ?? 30000, cache: opts.cache ?? true },
  });
  const t1 = now();
  const c = { kind: "nnjit-text", session, feedsKey: null, text, run: () => session.embed([c.text]) };
  const emb = await c.run();
  const t2 = now();
  state.contenders.set(id, c);
  const enc = await session.encode([text]);
  return { id, engine: "nnjit", createMs: t1 - t0, firstInferenceMs: t2 - t0, tokens: enc.lengths[0], embedding: plainOutputs({ e: emb }).e };
}

const TJS = "/node_modules/@huggingface/transformers/";

/** transformers.js' feature-extraction pipeline (mean pooling, normalize) on a local model
 * folder (opts.localModelPath + opts.model: config.json, tokenizer.json, tokenizer_config.json,
 * onnx/model.onnx), Wasm with opts.threads, nothing remote; runs `text` once. Its ONNX Runtime
 * (its own onnxruntime-web, a nested dependency) loads from node_modules, not from its CDN. */
export async function tjsLoad(id, text, opts) {
  const t0 = now();
  const tjs = await import(TJS + "dist/transformers.js");
  const env = tjs.env;
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = opts.localModelPath;
  env.useBrowserCache = false;
  env.useWasmCache = false;
  const ortDist = TJS + "node_modules/onnxruntime-web/dist/";
  const flavour = opts.ortFlavour ?? ".asyncify"; // transformers.js' own default build (from its CDN)
  env.backends.onnx.wasm.wasmPaths = { mjs: `${ortDist}ort-wasm-simd-threaded${flavour}.mjs`, wasm: `${ortDist}ort-wasm-simd-threaded${flavour}.wasm` };
  env.backends.onnx.wasm.numThreads = opts.threads;
  env.backends.onnx.wasm.proxy = false;
  const t1 = now();
  const extractor = await tjs.pipeline("feature-extraction", opts.model, { device: "wasm", dtype: opts.dtype ?? "fp32" });
  const t2 = now();
  const c = { kind: "tjs", feedsKey: null, text, extractor, run: () => extractor([c.text], { pooling: "mean", normalize: true }) };
  const emb = await c.run();
  const t3 = now();
  state.contenders.set(id, c);
  const enc = extractor.tokenizer([text]);
  return {
    id, engine: "transformers.js", version: tjs.env.version, ortVersion: env.backends.onnx.versions?.web ?? null,
    ortThreads: env.backends.onnx.wasm.numThreads, importMs: t1 - t0, createMs: t2 - t0, firstInferenceMs: t3 - t0,
    tokens: Number(enc.input_ids.dims[1]), embedding: { dims: emb.dims, b64: b64(Float32Array.from(emb.data)) },
  };
}

/** Sets a text contender's sentence and runs it once: {ms, tokens, embedding}. */
export async function setText(id, text) {
  const c = state.contenders.get(id);
  if (!c || c.text === undefined) throw new Error(`no text contender '${id}'`);
  c.text = text;
  const t0 = now();
  const emb = await c.run();
  const ms = now() - t0;
  const tokens = c.kind === "tjs" ? Number(c.extractor.tokenizer([text]).input_ids.dims[1]) : (await c.session.encode([text])).lengths[0];
  return { ms, tokens, embedding: { dims: Array.from(emb.dims, Number), b64: b64(Float32Array.from(emb.data)) } };
}

// ---------------------------------------------------------------------------- generation

function argmax(x) {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** An nnjit generation bundle on Wasm (opts.threads) as a contender; greedy generate() is
 * session.generate and its generationStats. The weights are not kept in Cache Storage. */
export async function nnjitGenLoad(id, url, opts = {}) {
  const t0 = now();
  const session = await nnjit.InferenceSession.create(url, { backend: "wasm", fallback: false, threads: opts.threads, tuning: false, cache: false });
  const c = {
    kind: "nnjit-gen", session, profile: null,
    generate: async (ids, n) => {
      const tokens = await session.generate(ids, { maxNewTokens: n });
      const s = session.generationStats;
      return { tokens, prefillMs: s.prefillMs, decodeTokensPerS: s.decodeTokensPerS };
    },
  };
  state.contenders.set(id, c);
  return { id, engine: "nnjit", backend: session.backend, threads: session.threads, createMs: now() - t0 };
}

/** ORT-web on the decoder's ONNX file (the page's numThreads) with the loop transformers.js
 * runs: the prompt against an empty past [1, heads, 0, dim], then one token per step, each
 * step's present.* fed back as past_key_values.*, attention_mask all ones, position_ids the
 * positions; greedy argmax of the last row of logits in JS. Timed as nnjit's generationStats:
 * prefill = start to the first token, decode tokens/s = (tokens - 1) / (end - first token). */
export async function ortGenLoad(id, url, opts) {
  const ort = state.ort;
  const t0 = now();
  const r = await fetch(url);
  if (!r.ok) throw new Error(`fetch ${url}: HTTP ${r.status}`);
  const session = await ort.InferenceSession.create(new Uint8Array(await r.arrayBuffer()), { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
  const pastNames = session.inputNames.filter((n) => n.startsWith("past_key_values."));
  const i64 = (xs) => BigInt64Array.from(xs, (x) => BigInt(x));
  const generate = async (ids, n) => {
    const tStart = now();
    let past = Object.fromEntries(pastNames.map((p) => [p, new ort.Tensor("float32", new Float32Array(0), [1, opts.heads, 0, opts.dim])]));
    let cur = ids;
    let pos = 0;
    const tokens = [];
    let tFirst = null;
    for (;;) {
      const L = cur.length;
      const feeds = {
        input_ids: new ort.Tensor("int64", i64(cur), [1, L]),
        attention_mask: new ort.Tensor("int64", i64(new Array(pos + L).fill(1)), [1, pos + L]),
        position_ids: new ort.Tensor("int64", i64(Array.from({ length: L }, (_, i) => pos + i)), [1, L]),
        ...past,
      };
      const out = await session.run(feeds);
      const V = out.logits.dims[2];
      tokens.push(argmax(out.logits.data.subarray((L - 1) * V, L * V)));
      tFirst ??= now();
      if (tokens.length >= n) break;
      past = Object.fromEntries(pastNames.map((p) => [p, out[p.replace("past_key_values.", "present.")]]));
      pos += L;
      cur = [tokens.at(-1)];
    }
    const tEnd = now();
    return { tokens, prefillMs: tFirst - tStart, decodeTokensPerS: n > 1 ? ((n - 1) * 1000) / (tEnd - tFirst) : null };
  };
  state.contenders.set(id, { kind: "ort-gen", session, generate });
  return { id, engine: "ort", backend: "wasm", threads: ort.env.wasm.numThreads, createMs: now() - t0 };
}

/** One greedy generation of `n` tokens after `ids` by contender `id`. */
export async function generate(id, ids, n) {
  const c = state.contenders.get(id);
  if (!c?.generate) throw new Error(`no generation contender '${id}'`);
  const t0 = now();
  const res = await c.generate(ids, n);
  return { ...res, ms: now() - t0 };
}

/** nnjit's time per kernel in the decode steps run since the last call: {steps, kernels: {name:
 * {ms, calls, kind, shapes}} by variant/kernel} (the Wasm backend times every step of every run; this wraps the
 * decode variants' run(), which exist once a generation has used them). */
export function genProfile(id) {
  const c = state.contenders.get(id);
  if (c?.kind !== "nnjit-gen") throw new Error(`no nnjit generation contender '${id}'`);
  const s = c.session;
  const prof = c.profile;
  c.profile = { steps: 0, kernels: {} };
  for (const i of s.plan.generation.decode) {
    const be = s._variants.get(i);
    if (!be || Object.hasOwn(be, "_genbench")) continue;
    be._genbench = true;
    // (the largest variant is the session's own backend, which the others inherit from:
    // `this` says which variant runs, and only this one's steps are counted here)
    const run = be.run;
    be.run = async function (arrays, o) {
      const res = await run.call(this, arrays, o);
      if (this !== be) return res;
      const p = c.profile;
      p.steps++;
      be.plan.steps.forEach((st, j) => {
        const man = be.plan.kernels[st.kernel].manifest ?? {};
        const k = (p.kernels[`v${i}/${st.kernel}`] ??= { ms: 0, calls: 0, kind: man.kind ?? "?", shapes: (man.params ?? []).map((x) => x.shape), bytes: (man.params ?? []).map((x) => x.bytes) });
        k.ms += res.timings.stepMs[j];
        k.calls++;
      });
      return res;
    };
  }
  return prof;
}

export async function release(id) {
  const c = state.contenders.get(id);
  if (!c) return;
  state.contenders.delete(id);
  if (c.kind === "nnjit" || c.kind === "nnjit-text" || c.kind === "nnjit-gen") await c.session.release();
  else if (c.kind === "ort" || c.kind === "ort-gen") await c.session.release();
  else if (c.kind === "tjs") await c.extractor.dispose?.();
  else for (const w of Object.values(c.weights)) w.dispose();
}

export async function releaseAll() {
  for (const id of [...state.contenders.keys()]) await release(id);
}
