// The page side of the browser tests: loads a bundle with the runtime under test and returns
// plain JSON (outputs as arrays) for Python to compare with onnxruntime.

import * as nnjit from "/runtime/nnjit.js";

const INT = new Set(["int64", "int32", "int16", "int8", "uint8", "bool"]);

function toFeed(f, intAs) {
  if (!INT.has(f.dtype)) return new nnjit.Tensor("float32", Float32Array.from(f.data), f.dims);
  if (intAs === "array") return { data: f.data, dims: f.dims };
  if (intAs === "int32") return new nnjit.Tensor("int32", Int32Array.from(f.data), f.dims);
  return new nnjit.Tensor("int64", BigInt64Array.from(f.data, (v) => BigInt(v)), f.dims);
}

function toFeeds(feeds, intAs) {
  return Object.fromEntries(Object.entries(feeds).map(([k, f]) => [k, toFeed(f, intAs)]));
}

function plainOutputs(out) {
  return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, { dims: t.dims, type: t.type, data: Array.from(t.data) }]));
}

function plainError(e) {
  return { message: e.message, name: e.name, code: e.code ?? null, file: e.file ?? null };
}

function plainTuning(t) {
  return t && JSON.parse(JSON.stringify(t));
}

/**
 * Loads `url` with session options `opts.session`, runs every feed set of `feedsList`, and
 * returns {backend, fallbackReason, threads, info, tuning, timings, loadMs, outputs: [...],
 * runBackends: [...], progress, isolated} or {error} (load failed) or {runError} (a run failed).
 * opts.loseDeviceAfter = i: destroys the WebGPU device after run i.
 */
export async function runBundle(url, feedsList, opts = {}) {
  const progress = [];
  const weightsProgress = [];
  const so = { ...(opts.session ?? {}) };
  if (so.tuning !== false) so.tuning = { ...(so.tuning ?? {}), onProgress: (e) => progress.push({ ...e, report: undefined }) };
  so.onProgress = (e) => weightsProgress.push(e);
  const t0 = performance.now();
  let s;
  try {
    s = await nnjit.InferenceSession.create(url, so);
  } catch (e) {
    return { error: plainError(e), isolated: globalThis.crossOriginIsolated === true, weightsProgress };
  }
  const loadMs = performance.now() - t0;
  const res = {
    backend: s.backend, fallbackReason: s.fallbackReason, threads: s.threads, info: JSON.parse(JSON.stringify(s.info)),
    tuning: plainTuning(s.tuning), loadMs, outputs: [], runBackends: [], runMs: [], progress, weightsProgress,
    loadTimings: JSON.parse(JSON.stringify(s.loadTimings ?? null)),
    isolated: globalThis.crossOriginIsolated === true, warnings: s.warnings, adapter: s.adapter,
  };
  try {
    for (let i = 0; i < feedsList.length; i++) {
      const r0 = performance.now();
      res.outputs.push(plainOutputs(await s.run(toFeeds(feedsList[i], opts.intAs), { profile: opts.profile })));
      res.runMs.push(performance.now() - r0);
      res.runBackends.push(s.backend);
      if (opts.loseDeviceAfter === i) {
        s._testing.loseDevice();
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  } catch (e) {
    res.runError = plainError(e);
  }
  res.fallbackReason = s.fallbackReason;
  res.backend = s.backend;
  res.timings = s.timings && JSON.parse(JSON.stringify(s.timings));
  await s.release();
  return res;
}

/** Runs one session with bad feeds: returns the error of each feed set (null if it ran). */
export async function feedErrors(url, feedsList, opts = {}) {
  const s = await nnjit.InferenceSession.create(url, opts.session ?? { backend: "wasm", tuning: false });
  const errors = [];
  for (const feeds of feedsList) {
    try {
      await s.run(feeds);
      errors.push(null);
    } catch (e) {
      errors.push(plainError(e));
    }
  }
  await s.release();
  return errors;
}

/** The stored tuning records of this origin, as [key, value] pairs. */
export async function tuningEntries() {
  const c = await nnjit.TuningCache.open();
  const e = await c.entries();
  c.close();
  return e;
}

/** Overwrites stored tuning records: {key: value}. */
export async function putTuningEntries(entries) {
  const c = await nnjit.TuningCache.open();
  for (const [k, v] of Object.entries(entries)) await c.put(k, v);
  c.close();
}

export const clearTuningCache = nnjit.clearTuningCache;
export const clearWeightsCache = nnjit.clearWeightsCache;

/** The URLs under which nnjit keeps files in Cache Storage. */
export async function weightsCacheKeys() {
  if (!(await caches.has("nnjit-weights-v1"))) return [];
  return (await (await caches.open("nnjit-weights-v1")).keys()).map((r) => r.url);
}

/** Damages the cached files: "flip" (the same length, every byte inverted), "cut" (the last
 * byte of every entry dropped) or "drop" (the entries of parts > 0 deleted); returns how many
 * entries it changed. */
export async function damageWeightsCache(how) {
  const c = await caches.open("nnjit-weights-v1");
  const keys = await c.keys();
  let n = 0;
  for (const k of keys) {
    if (how === "drop") {
      if (new URL(k.url).searchParams.has("nnjit-part")) n += await c.delete(k);
      continue;
    }
    const r = await c.match(k);
    const b = new Uint8Array(await r.arrayBuffer());
    const out = how === "cut" ? b.slice(0, -1) : b.map((x) => 255 - x);
    await c.put(k, new Response(out, { headers: { "x-nnjit-parts": r.headers.get("x-nnjit-parts") ?? "1" } }));
    n++;
  }
  return n;
}
export const detectWasmFeatures = nnjit.detectWasmFeatures;

/** Instantiates a kernel binary on a non-shared memory with and without patching its import. */
export async function unsharePatchCheck(url) {
  const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
  const mem = new WebAssembly.Memory({ initial: 1, maximum: 2 });
  let unpatched = null;
  try {
    await WebAssembly.instantiate(bytes, { env: { memory: mem } });
    unpatched = "ok";
  } catch (e) {
    unpatched = e.message;
  }
  const { bytes: fixed, patched } = nnjit.unshareMemoryImports(bytes);
  let after = null;
  try {
    await WebAssembly.instantiate(fixed, { env: { memory: mem } });
    after = "ok";
  } catch (e) {
    after = e.message;
  }
  return { unpatched, patched, after, sameLength: fixed.length === bytes.length };
}

/** Generates with a decoder bundle: returns {backend, tokens, streamed (ids as onToken saw
 * them), stats, threads} or {error}. */
export async function generateBundle(url, promptIds, options = {}, session = {}) {
  let s;
  try {
    s = await nnjit.InferenceSession.create(url, { tuning: false, ...session });
  } catch (e) {
    return { error: plainError(e) };
  }
  const streamed = [];
  try {
    const tokens = await s.generate(promptIds, { ...options, onToken: (t) => streamed.push(t) });
    return { backend: s.backend, threads: s.threads, tokens, streamed, stats: s.generationStats };
  } catch (e) {
    return { error: plainError(e), backend: s.backend };
  } finally {
    await s.release();
  }
}
