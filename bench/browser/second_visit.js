// The page side of second_visit.py: one call per fresh page (a visit), timed from create() to
// the first output. nnjit's caches (weights in Cache Storage, tuning in IndexedDB) persist
// between the pages of one browser profile, as between a user's visits.

import * as nnjit from "/runtime/nnjit.js";

const ORT = "/node_modules/onnxruntime-web/dist/";
const now = () => performance.now();

async function feeds(spec, Tensor) {
  const out = {};
  for (const [name, f] of Object.entries(spec)) {
    const buf = await (await fetch(f.url)).arrayBuffer();
    out[name] = new Tensor(f.dtype, f.dtype === "int64" ? new BigInt64Array(buf) : new Float32Array(buf), f.dims);
  }
  return out;
}

function b64(typed) {
  const u8 = new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
  let s = "";
  for (let i = 0; i < u8.length; i += 0x8000) s += String.fromCharCode.apply(null, u8.subarray(i, i + 0x8000));
  return btoa(s);
}

const plain = (out) => Object.fromEntries(Object.entries(out).map(([k, t]) => [k, { dims: Array.from(t.dims, Number), b64: b64(t.data) }]));

/** Empties nnjit's caches: `what` is a list of "weights", "tuning". */
export async function clear(what) {
  if (what.includes("weights")) await nnjit.clearWeightsCache();
  if (what.includes("tuning")) await nnjit.clearTuningCache();
}

/** nnjit: create (weights cached or not, tuning with `budgetMs` or from its cache) + first run. */
export async function nnjitVisit(url, feedSpec, opts) {
  const f = await feeds(feedSpec, nnjit.Tensor);
  const t0 = now();
  const s = await nnjit.InferenceSession.create(url, {
    backend: "wasm", fallback: false, threads: opts.threads, cache: opts.cache,
    tuning: { budgetMs: opts.budgetMs, cache: true },
  });
  const t1 = now();
  const out = await s.run(f);
  const t2 = now();
  const t = s.tuning;
  const res = {
    createMs: t1 - t0, firstRunMs: t2 - t1, firstOutputMs: t2 - t0, threads: s.threads, weights: s.loadTimings.weights,
    setupMs: s.loadTimings.setupMs, tuningMs: s.loadTimings.tuningMs,
    tuning: { tuned: t.tuned.length, cached: t.cached.length, shared: t.shared.length },
    warnings: s.warnings, outputs: plain(out),
  };
  await s.release();
  return res;
}

/** ONNX Runtime Web (Wasm, `threads`): fetch the .onnx, create, first run. */
export async function ortVisit(url, feedSpec, threads) {
  const ort = await import(ORT + "ort.wasm.min.mjs");
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.wasmPaths = ORT;
  ort.env.wasm.proxy = false;
  ort.env.logLevel = "error";
  const f = await feeds(feedSpec, ort.Tensor);
  const t0 = now();
  const r = await fetch(url);
  const bytes = new Uint8Array(await r.arrayBuffer());
  const tf = now();
  const s = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
  const t1 = now();
  const out = await s.run(f);
  const t2 = now();
  const res = { fetchMs: tf - t0, createMs: t1 - t0, firstRunMs: t2 - t1, firstOutputMs: t2 - t0, version: ort.env.versions?.web ?? null, outputs: plain(out) };
  await s.release();
  return res;
}
