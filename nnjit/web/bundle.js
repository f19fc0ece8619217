// Reading an nnjit bundle over HTTP: plan.json, files checked against their SHA-256, weights,
// and the checks on feeds (names, shapes, dtypes) that the Python runtime does.

import { cachedFile } from "./cache.js";
import { decodeCompact } from "./compact.js";

export class NNJitError extends Error {
  constructor(message, { code = "error", file = undefined, cause = undefined } = {}) {
    super(message, cause !== undefined ? { cause } : undefined);
    this.name = "NNJitError";
    this.code = code; // "bundle", "input", "backend", "kernel", "device-lost", ...
    if (file !== undefined) this.file = file;
  }
}

/** An error in the bundle itself (missing file, bad hash, malformed plan): never a reason to
 * fall back to another backend. */
export class BundleError extends NNJitError {
  constructor(message, opts = {}) {
    super(message, { code: "bundle", ...opts });
    this.name = "BundleError";
  }
}

/** A feed that does not match the model's inputs. */
export class InputError extends NNJitError {
  constructor(message, opts = {}) {
    super(message, { code: "input", ...opts });
    this.name = "InputError";
  }
}

/** obj[key] = value as an own property, whatever the key: a model may name a tensor
 * "__proto__" or "constructor", which plain assignment or `in` would take for the object's own
 * machinery. */
export function setOwn(obj, key, value) {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  return obj;
}

const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");

/** SHA-256 of bytes or a string, as lowercase hex (crypto.subtle: secure contexts only). */
export async function sha256Hex(data) {
  if (!globalThis.crypto?.subtle) throw new NNJitError("crypto.subtle is not available (not a secure context)");
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  return hex(await crypto.subtle.digest("SHA-256", bytes));
}

/** A content hash for cache keys: SHA-256 where crypto.subtle exists, else (a page that is
 * not a secure context) two 64-bit FNV-1a hashes, prefixed "fnv:". Not for integrity. */
export async function contentHash(data) {
  if (globalThis.crypto?.subtle) return sha256Hex(data);
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : new Uint8Array(data);
  const P = 0x100000001b3n;
  const M = (1n << 64n) - 1n;
  let a = 0xcbf29ce484222325n;
  let b = 0x84222325cbf29ce4n;
  for (const x of bytes) {
    a = ((a ^ BigInt(x)) * P) & M;
    b = ((b ^ BigInt(x ^ 0x5c)) * P) & M;
  }
  return `fnv:${a.toString(16).padStart(16, "0")}${b.toString(16).padStart(16, "0")}`;
}

function dirUrl(url) {
  const u = new URL(url, globalThis.location?.href);
  if (u.pathname.endsWith("/plan.json")) u.pathname = u.pathname.slice(0, -"plan.json".length);
  else if (!u.pathname.endsWith("/")) u.pathname += "/";
  u.search = "";
  u.hash = "";
  return u.href;
}

/** A bundle directory on a server: its plan and its files, each fetched once and checked. */
/** The generation table is well formed (as nnjit/runtime/generate.py check_generation). */
function generationOk(plan) {
  const g = plan.generation;
  if (g === undefined) return true;
  const n = plan.dynamic?.variants?.length ?? 0;
  const idx = (a) => Array.isArray(a) && a.length > 0 && a.every((i) => Number.isInteger(i) && i >= 0 && i < n);
  return g !== null && typeof g === "object" && Array.isArray(g.cache) && g.cache.length > 0
    && g.cache.every((c) => c && typeof c.past === "string" && typeof c.present === "string")
    && idx(g.prefill) && idx(g.decode) && g.dims && ["sequence", "past", "total"].every((k) => typeof g.dims[k] === "string");
}

/** A variable-length bundle's "dynamic" table has the shape nnjit/web/variants.js reads (as
 * nnjit/runtime/variants.py check_dynamic). */
function dynamicOk(d) {
  const obj = (x) => typeof x === "object" && x !== null && !Array.isArray(x);
  const nat = (x) => Number.isInteger(x) && x >= 0;
  if (!obj(d) || !obj(d.dims) || !Array.isArray(d.variants) || !d.variants.length || (d.outputs !== undefined && !obj(d.outputs))) return false;
  const names = Object.keys(d.dims);
  for (const dim of Object.values(d.dims)) {
    if (!obj(dim) || typeof dim.pad !== "boolean" || !Array.isArray(dim.inputs)) return false;
    if (!dim.inputs.every((x) => Array.isArray(x) && x.length === 2 && typeof x[0] === "string" && nat(x[1]))) return false;
  }
  for (const v of d.variants) {
    if (!obj(v) || !obj(v.bind) || !obj(v.model) || !obj(v.backends)) return false;
    if (!Array.isArray(v.model.inputs) || !Array.isArray(v.model.outputs)) return false;
    const keys = Object.keys(v.bind);
    if (keys.length !== names.length || !names.every((n) => nat(v.bind[n]) && v.bind[n] > 0)) return false;
  }
  return true;
}

export class Bundle {
  constructor(url, plan, { verify = true, cache = true, onProgress = undefined } = {}) {
    this.url = url;
    this.plan = plan;
    this.cache = cache ?? true; // the weights file in Cache Storage (cache.js): false, true or {partBytes}
    this.onProgress = onProgress; // {phase: "weights", file, loaded, total, cached}
    this.loaded = {}; // file -> {from: "cache" | "network", bytes, ms} (the weights file)
    this._stored = [];
    this.verify = verify && !!globalThis.crypto?.subtle;
    this.warnings = [];
    if (verify && !this.verify) this.warnings.push("file hashes not checked: crypto.subtle needs a secure context");
    this._files = new Map();
  }

  /** Fetches `<url>/plan.json` and checks its format. */
  static async load(url, { verify = true, fetchFn = globalThis.fetch.bind(globalThis), cache = true, onProgress } = {}) {
    const base = dirUrl(url);
    const planUrl = base + "plan.json";
    let res;
    try {
      res = await fetchFn(planUrl, { cache: "no-cache" });
    } catch (e) {
      throw new BundleError(`${planUrl}: cannot fetch the bundle's plan.json (${e.message})`, { file: "plan.json" });
    }
    if (!res.ok) {
      throw new BundleError(`${planUrl}: not an nnjit bundle (HTTP ${res.status} for plan.json)`, { file: "plan.json" });
    }
    let plan;
    try {
      plan = JSON.parse(await res.text());
    } catch (e) {
      throw new BundleError(`${planUrl}: plan.json is not valid JSON (${e.message})`, { file: "plan.json" });
    }
    if (plan?.format !== "nnjit-plan") throw new BundleError(`${planUrl}: not an nnjit plan (format is ${JSON.stringify(plan?.format)})`, { file: "plan.json" });
    if (plan.version !== 1) throw new BundleError(`${planUrl}: plan version ${plan.version} is not supported (this runtime reads version 1)`, { file: "plan.json" });
    for (const key of ["model", "weights", "backends"]) {
      if (typeof plan[key] !== "object" || plan[key] === null) throw new BundleError(`${planUrl}: plan.json has no "${key}"`, { file: "plan.json" });
    }
    if (!generationOk(plan)) throw new BundleError(`${planUrl}: the "generation" table is malformed (recompile the bundle)`, { file: "plan.json" });
    if (plan.dynamic !== undefined && !dynamicOk(plan.dynamic)) throw new BundleError(`${planUrl}: the "dynamic" table is malformed (recompile the bundle)`, { file: "plan.json" });
    const b = new Bundle(base, plan, { verify, cache, onProgress });
    b._fetch = fetchFn;
    return b;
  }

  /** The bytes of a bundle file (ArrayBuffer), checked against plan.files; fetched once. */
  file(rel) {
    let p = this._files.get(rel);
    if (p === undefined) {
      p = this._fetchChecked(rel);
      this._files.set(rel, p);
    }
    return p;
  }

  async text(rel) {
    return new TextDecoder().decode(await this.file(rel));
  }

  async _fetchChecked(rel) {
    const url = typeof rel === "string" ? new URL(rel, this.url).href : "";
    // a plan's file names stay inside the bundle (as the Python runtime requires): no "..",
    // no absolute path or other origin
    if (!url.startsWith(this.url) || rel.startsWith("/") || rel.includes("\\")) {
      throw new BundleError(`bundle file ${rel}: lies outside the bundle (recompile the bundle)`, { file: String(rel) });
    }
    const files = this.plan.files ?? {};
    if (this.verify && !(rel in files)) {
      throw new BundleError(`bundle file ${rel}: not listed in plan.json "files" (cannot check it; recompile the bundle)`, { file: rel });
    }
    const fetchOk = async (init = { cache: "no-cache" }) => {
      let res;
      try {
        res = await (this._fetch ?? fetch)(url, init);
      } catch (e) {
        throw new BundleError(`bundle file ${rel}: cannot fetch ${url} (${e.message})`, { file: rel });
      }
      if (!res.ok) {
        const why = res.status === 404 ? "missing from the bundle" : `HTTP ${res.status}`;
        throw new BundleError(`bundle file ${rel}: ${why} (${url}); recompile the bundle`, { file: rel });
      }
      return res;
    };
    const weights = rel === this.plan.weights.file;
    let cache = weights && this.cache && typeof files[rel] === "string";
    if (cache && !globalThis.crypto?.subtle) {
      this.warnings.push(`${rel}: not cached: Cache Storage needs a secure context (crypto.subtle checks what it stores)`);
      cache = false;
    }
    if ((this.verify || cache) && !/^[0-9a-f]{64}$/.test(files[rel] ?? "")) {
      throw new BundleError(`bundle file ${rel}: plan.json gives its SHA-256 as ${JSON.stringify(files[rel]).slice(0, 80)}, not 64 hex digits (recompile the bundle)`, { file: rel });
    }
    // hashed once, when fetched: a mismatch is an error where verify is on, else just not cached
    const check = async (bytes) => {
      if (!this.verify && !cache) return false;
      const ok = (await sha256Hex(bytes)) === files[rel];
      if (!ok && this.verify) throw new BundleError(`bundle file ${rel}: SHA-256 does not match plan.json (the file was changed or corrupted; recompile the bundle)`, { file: rel });
      return ok;
    };
    if (!weights) {
      const bytes = await (await fetchOk()).arrayBuffer();
      await check(bytes);
      return bytes;
    }
    const t0 = performance.now();
    const got = await cachedFile({
      url, sha: files[rel], name: rel, size: weightsEnd(this.plan.weights), fetchOk, check, cache: cache && this.cache,
      fail: (msg) => new BundleError(`bundle file ${rel}: ${msg} (recompile the bundle)`, { file: rel }),
      onProgress: this.onProgress && ((ev) => this.onProgress({ phase: "weights", file: rel, ...ev })),
      warn: (msg) => this.warnings.push(msg),
    });
    this.loaded[rel] = { from: got.cached ? "cache" : "network", bytes: got.bytes.byteLength, ms: performance.now() - t0 };
    this._stored.push(got.stored);
    return got.bytes;
  }

  /** Settles when every fetched file that goes into Cache Storage is there (or failed to,
   * with a warning). */
  async stored() {
    await Promise.all(this._stored);
  }

  /** Weight arrays by key: {bytes (as kernels read them: float32 / int32; a compact entry is
   * decoded on first use, throwing BundleError when it is malformed), raw (the stored bytes),
   * compact (its format, or undefined), dtype, shape}, views into weights.bin. */
  async weights() {
    const w = this.plan.weights;
    const raw = await this.file(w.file);
    const out = new Map();
    for (const [key, e] of Object.entries(w.entries)) {
      if (e.offset + e.nbytes > raw.byteLength) throw new BundleError(`bundle file ${w.file}: entry '${key}' lies past the end of the file`, { file: w.file });
      const bytes = new Uint8Array(raw, e.offset, e.nbytes);
      if (!e.compact) {
        out.set(key, { bytes, raw: bytes, dtype: e.dtype, shape: e.shape });
        continue;
      }
      let decoded = null; // (a float16 weight the GPU reads as f16 is never widened)
      out.set(key, {
        get bytes() {
          return (decoded ??= new Uint8Array(compactWeight(w.file, key, bytes, e).buffer));
        },
        raw: bytes, compact: e.compact, dtype: e.dtype, shape: e.shape,
      });
    }
    return out;
  }

  /** The reference inputs and outputs shipped by `nnjit compile --reference-outputs`, or null. */
  async reference() {
    const r = this.plan.reference;
    if (!r) return null;
    const raw = await this.file(r.file);
    const take = (e) => typedArrayOf(e.dtype, raw.slice(e.offset, e.offset + e.nbytes));
    const inputs = {};
    const outputs = {};
    for (const info of this.plan.model.inputs) {
      const e = r.entries[`input:${info.name}`];
      setOwn(inputs, info.name, new Tensor(info.dtype, take(e), e.shape));
    }
    for (const info of this.plan.model.outputs) {
      const e = r.entries[`output:${info.name}`];
      setOwn(outputs, info.name, { data: take(e), dims: e.shape });
    }
    return { inputs, outputs, seed: r.seed };
  }
}

/** The length of a weights file: where its last entry ends (undefined if the entries are
 * malformed; weights() names what is wrong with them). */
function weightsEnd(w) {
  let end = 0;
  for (const e of Object.values(w.entries ?? {})) {
    if (!Number.isSafeInteger(e?.offset) || !Number.isSafeInteger(e?.nbytes) || e.offset < 0 || e.nbytes < 0) return undefined;
    end = Math.max(end, e.offset + e.nbytes);
  }
  return end;
}

function compactWeight(file, key, bytes, e) {
  try {
    return decodeCompact(bytes, e.shape, e.compact);
  } catch (err) {
    throw new BundleError(`bundle file ${file}: entry '${key}': ${err.message} (recompile the bundle)`, { file });
  }
}

const CTORS = {
  float32: Float32Array, float64: Float64Array, int32: Int32Array, int64: BigInt64Array,
  int16: Int16Array, int8: Int8Array, uint8: Uint8Array, bool: Uint8Array,
};

export function typedArrayOf(dtype, buffer) {
  const C = CTORS[dtype];
  if (!C) throw new NNJitError(`unsupported dtype ${dtype}`);
  return new C(buffer);
}

/** A tensor as onnxruntime-web has it: `new Tensor("int64", BigInt64Array.from(...), [1, 8])`. */
export class Tensor {
  constructor(type, data, dims) {
    if (typeof type !== "string" && type !== undefined) [type, data, dims] = [undefined, type, data]; // Tensor(data, dims)
    this.type = type ?? dtypeOfArray(data);
    this.data = data;
    this.dims = dims !== undefined ? Array.from(dims, Number) : [data.length];
  }
  get size() {
    return this.data.length;
  }
}

function dtypeOfArray(data) {
  if (data instanceof Float32Array) return "float32";
  if (data instanceof Float64Array) return "float64";
  if (data instanceof BigInt64Array) return "int64";
  if (data instanceof BigUint64Array) return "uint64";
  if (data instanceof Int32Array) return "int32";
  if (data instanceof Uint32Array) return "uint32";
  if (data instanceof Int16Array) return "int16";
  if (data instanceof Uint16Array) return "uint16";
  if (data instanceof Int8Array) return "int8";
  if (data instanceof Uint8Array || data instanceof Uint8ClampedArray) return "uint8";
  if (Array.isArray(data)) return undefined; // plain arrays take the input's dtype
  return typeof data;
}

const INT_TYPES = new Set(["int64", "int32", "int16", "int8", "uint64", "uint32", "uint16", "uint8", "bool"]);
const isInt = (t) => INT_TYPES.has(t);
const prod = (dims) => dims.reduce((a, b) => a * b, 1);
const fmtDims = (d) => `[${d.join(", ")}]`;

/** The multi-index of flat element `i` of a row-major array of shape `dims`. */
function unravel(i, dims) {
  const idx = new Array(dims.length);
  for (let k = dims.length - 1; k >= 0; k--) {
    idx[k] = i % dims[k];
    i = Math.floor(i / dims[k]);
  }
  return idx;
}

/** Checks feeds against the model's inputs; returns one typed array per input in model order,
 * as kernels read them: Float32Array, or Int32Array for integer inputs (int64 -> int32). */
export function prepareFeeds(model, feeds) {
  if (feeds === null || typeof feeds !== "object") throw new InputError("feeds must be an object {inputName: tensor}");
  const names = model.inputs.map((i) => i.name);
  const unknown = Object.keys(feeds).filter((k) => !names.includes(k));
  if (unknown.length) throw new InputError(`unknown input(s) ${unknown.map((n) => `'${n}'`).join(", ")}; the model's inputs are ${names.map((n) => `'${n}'`).join(", ")}`);
  const arrays = [];
  for (const info of model.inputs) {
    const name = info.name;
    const want = info.dtype;
    const expected = info.shape;
    if (!Object.hasOwn(feeds, name)) throw new InputError(`missing input '${name}' (shape ${fmtDims(expected)}, ${want})`);
    let feed = feeds[name];
    let data;
    let dims;
    let type;
    if (feed instanceof Tensor || (feed && typeof feed === "object" && !Array.isArray(feed) && !ArrayBuffer.isView(feed) && "data" in feed)) {
      data = feed.data;
      dims = feed.dims !== undefined ? Array.from(feed.dims, Number) : undefined;
      type = feed.type ?? dtypeOfArray(data);
    } else if (Array.isArray(feed) || ArrayBuffer.isView(feed)) {
      data = feed;
      type = dtypeOfArray(data);
    } else {
      throw new InputError(`input '${name}' is not a tensor, typed array or array`);
    }
    if (Array.isArray(data) && data.some(Array.isArray)) {
      if (dims === undefined) dims = nestedDims(data);
      data = data.flat(Infinity);
    }
    if (!(Array.isArray(data) || ArrayBuffer.isView(data))) throw new InputError(`input '${name}': data is not an array`);
    if (dims !== undefined) {
      if (dims.length !== expected.length || dims.some((d, i) => d !== expected[i])) {
        throw new InputError(`input '${name}' has shape ${fmtDims(dims)}, the compiled model takes ${fmtDims(expected)} (recompile with --shape to change it)`);
      }
    }
    if (data.length !== prod(expected)) {
      throw new InputError(`input '${name}' has ${data.length} elements, the compiled model takes shape ${fmtDims(expected)} (${prod(expected)} elements)`);
    }
    if (type !== undefined && type !== want && !(isInt(type) && isInt(want))) {
      throw new InputError(`input '${name}' has dtype ${type}, the model takes ${want}`);
    }
    if (isInt(want)) {
      const out = new Int32Array(data.length);
      const range = Number.isInteger(info.range) ? info.range : undefined;
      for (let i = 0; i < data.length; i++) {
        const v = data[i];
        const n = typeof v === "bigint" ? v : typeof v === "boolean" ? (v ? 1 : 0) : v;
        if (typeof n === "number" && !Number.isInteger(n)) throw new InputError(`input '${name}' has a non-integer value ${n} at index ${i} (dtype ${want})`);
        if (n < -2147483648 || n > 2147483647) throw new InputError(`input '${name}' has value ${n} at index ${i}, outside int32, which nnjit stores`);
        // indices into a table (plan "range": its rows) lie in [-range, range-1], as onnxruntime
        // requires; the kernels clamp, which would hide the error
        if (range !== undefined && (n < -range || n >= range)) {
          throw new InputError(`input '${name}' has value ${n} at index ${fmtDims(unravel(i, expected))}, outside [${-range}, ${range - 1}] (it indexes a table of ${range} rows; onnxruntime: indices element out of data bounds)`);
        }
        out[i] = Number(n);
      }
      arrays.push(out);
    } else {
      if (data.length && typeof data[0] === "bigint") throw new InputError(`input '${name}' has integer (BigInt) data, the model takes ${want}`);
      arrays.push(data instanceof Float32Array ? data : Float32Array.from(data));
    }
  }
  return arrays;
}

export function nestedDims(a) {
  const dims = [];
  while (Array.isArray(a)) {
    dims.push(a.length);
    a = a[0];
  }
  return dims;
}

/** Valid synthetic inputs (for tuning and the demo page): token ids below the input's range,
 * masks of ones, small deterministic floats. */
export function syntheticFeeds(model, seed = 1) {
  let s = seed >>> 0 || 1;
  const rnd = () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
  const feeds = {};
  for (const info of model.inputs) {
    const n = prod(info.shape);
    if (isInt(info.dtype)) {
      const a = info.dtype === "int64" ? new BigInt64Array(n) : new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const v = info.range !== undefined ? Math.floor(rnd() * info.range) : 1;
        a[i] = info.dtype === "int64" ? BigInt(v) : v;
      }
      setOwn(feeds, info.name, new Tensor(info.dtype === "int64" ? "int64" : "int32", a, info.shape));
    } else {
      const a = new Float32Array(n);
      for (let i = 0; i < n; i++) a[i] = (rnd() - 0.5) * 2;
      setOwn(feeds, info.name, new Tensor("float32", a, info.shape));
    }
  }
  return feeds;
}

/** The buffer a view aliases (following views to their base). */
export function rootBuffer(buffers, id) {
  let b = buffers[id];
  while (b.kind === "view") b = buffers[b.base];
  return b;
}

/**
 * Indices of a plan kernel's candidates in the order a device class ("gpu" | "cpu"; null for
 * Wasm) tries them: the kernel's "order" entry for the class (its first runs before tuning;
 * nnjit/tuning/prior.py measured it), else all of them in list order. The order is a hint:
 * entries naming no candidate are dropped, and an unusable order means list order.
 */
export function candidateOrder(kernel, deviceClass) {
  const n = candidatesOf(kernel).length;
  const ix = deviceClass ? kernel.order?.[deviceClass] : undefined;
  if (Array.isArray(ix)) {
    const valid = [...new Set(ix.filter((i) => Number.isInteger(i) && i >= 0 && i < n))];
    if (valid.length) return valid;
  }
  return [...Array(n).keys()];
}

/** The candidates of a plan kernel: its "candidates" list, or the kernel itself alone. */
export function candidatesOf(kernel) {
  if (Array.isArray(kernel.candidates) && kernel.candidates.length) return kernel.candidates;
  return [{ file: kernel.file, manifest: kernel.manifest, options: {} }];
}
