// The Wasm backend: one WebAssembly.Memory holding the weights and the activation arena at
// fixed offsets (the same layout as the Python runtime), every kernel instantiated on it.
//
// Threads: on a cross-origin-isolated page the memory is shared and `threads - 1` module
// workers (wasm-worker.js) instantiate the same kernel modules on it. A run is coordinated
// through a small SharedArrayBuffer control block: the main thread writes the kernel and its
// arguments, bumps a generation counter and notifies. The kernel's thread loop is cut into T
// chunks (chunk c of T is run(c, T, offsets...); T up to CHUNKS_PER_THREAD per thread), and the
// main thread and the workers claim chunks one at a time from a shared counter, so a worker that
// wakes late (waitAsync wake-ups take up to milliseconds) leaves its share to the others instead
// of stalling the kernel. The counter holds generation << 32 | next chunk and is only advanced by
// compare-and-swap, so a stale worker can never claim a chunk of a later kernel. The main thread
// spins (Atomics.wait is not allowed on a page's main thread) until all T chunks are completed.
//
// Without isolation there is no SharedArrayBuffer: the memory is not shared, one thread runs,
// and each kernel binary is patched at load time so that its `env.memory` import is not declared
// `shared` (a shared import cannot be satisfied by a non-shared memory). Atomic instructions stay
// valid on a non-shared memory.

import { BundleError, NNJitError, rootBuffer } from "./bundle.js";
import { maxArenaBytes, weightKeys } from "./variants.js";
import { cacheBytes } from "./generate.js";

const PAGE = 65536;
const now = () => performance.now();

const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 8, 1, 6, 0, 65, 0, 253, 17, 11]);
const RELAXED_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 15, 1, 13, 0, 65, 0, 253, 17, 65, 0, 253, 17, 253, 128, 2, 11]);
const THREADS_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 127, 3, 2, 1, 0, 5, 4, 1, 3, 1, 1, 10, 10, 1, 8, 0, 65, 0, 254, 16, 2, 0, 11]);

/** What this browser's WebAssembly can do: {simd, relaxedSimd, threads (atomics + shared
 * memory validate), sharedMemory (SharedArrayBuffer usable: a cross-origin-isolated page)}. */
export function detectWasmFeatures() {
  const v = (bytes) => {
    try {
      return WebAssembly.validate(bytes);
    } catch {
      return false;
    }
  };
  return {
    simd: v(SIMD_PROBE),
    relaxedSimd: v(RELAXED_PROBE),
    threads: v(THREADS_PROBE),
    sharedMemory: globalThis.crossOriginIsolated === true && typeof SharedArrayBuffer === "function",
  };
}

function readLeb(bytes, pos) {
  let result = 0;
  let shift = 0;
  for (;;) {
    const b = bytes[pos++];
    if (b === undefined) throw new Error("truncated LEB128");
    result += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if (!(b & 0x80)) return [result, pos];
  }
}

/** A copy of a Wasm binary whose memory imports are not `shared` (flag bit 1 of the limits
 * cleared in the import section: the same byte length, nothing else moves). Returns
 * {bytes, patched: number of imports changed}. */
export function unshareMemoryImports(input) {
  const bytes = new Uint8Array(input.slice(0));
  if (bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) throw new Error("not a WebAssembly binary");
  let pos = 8;
  let patched = 0;
  while (pos < bytes.length) {
    const id = bytes[pos++];
    let size;
    [size, pos] = readLeb(bytes, pos);
    const end = pos + size;
    if (id === 2) {
      let p = pos;
      let count;
      [count, p] = readLeb(bytes, p);
      for (let i = 0; i < count; i++) {
        let n;
        [n, p] = readLeb(bytes, p); p += n; // module name
        [n, p] = readLeb(bytes, p); p += n; // field name
        const kind = bytes[p++];
        if (kind === 0x00) {
          [, p] = readLeb(bytes, p); // function type index
        } else if (kind === 0x01) {
          p++; // reference type
          const flags = bytes[p++];
          [, p] = readLeb(bytes, p);
          if (flags & 1) [, p] = readLeb(bytes, p);
        } else if (kind === 0x02) {
          const flags = bytes[p];
          if (flags & 0x02) {
            bytes[p] = flags & ~0x02;
            patched++;
          }
          p++;
          [, p] = readLeb(bytes, p);
          if (flags & 1) [, p] = readLeb(bytes, p);
        } else if (kind === 0x03) {
          p += 2; // value type, mutability
        } else if (kind === 0x04) {
          p++; // tag attribute
          [, p] = readLeb(bytes, p);
        } else {
          throw new Error(`unknown import kind ${kind}`);
        }
      }
      return { bytes, patched };
    }
    pos = end;
  }
  return { bytes, patched };
}

// control block (Int32Array over a SharedArrayBuffer)
const GEN = 0, KERNEL = 1, NTHREADS = 2, NARGS = 3, COMPLETED = 4, ERROR = 5, STOP = 6, ARGS = 16, MAXARGS = 48;
const CLAIM = 7; // index in a BigUint64Array over the same block (bytes 56-63): generation << 32 | next chunk
const CHUNKS_PER_THREAD = 4;
const ERRTEXT = 64 * 4; // byte offset of the error text
const CONTROL_BYTES = ERRTEXT + 1024;

export class WasmBackend {
  static async create(bundle, options = {}) {
    const features = detectWasmFeatures();
    const plan = bundle.plan.backends.wasm;
    const shared = features.sharedMemory && features.threads;
    const cores = globalThis.navigator?.hardwareConcurrency || 1;
    let threads = Math.max(1, Math.floor(options.threads ?? Math.min(cores, 8)));
    const warnings = [];
    if (!shared && threads > 1) {
      if (options.threads !== undefined) warnings.push(`${threads} threads asked for, running on 1: Wasm threads need a cross-origin-isolated page (COOP/COEP headers)`);
      threads = 1;
    }
    // layout: [16 unused][weights, 256-aligned][arena]; a variable-length bundle's variants
    // share the weights (each key once) and the arena (the largest variant's)
    let top = 16;
    const keyOffsets = new Map();
    for (const [key, bytes] of weightKeys(bundle.plan, "wasm")) {
      top = Math.ceil(top / 256) * 256;
      keyOffsets.set(key, top);
      top += Math.max(16, bytes);
    }
    const weightOffsets = new Map(plan.buffers.filter((b) => b.kind === "weight").map((b) => [b.id, keyOffsets.get(b.key)]));
    top = Math.ceil(top / 256) * 256;
    const arena = top;
    top += Math.max(16, maxArenaBytes(bundle.plan));
    top = Math.ceil(top / 256) * 256;
    const cacheBase = top; // a generation bundle's KV cache (generate.js)
    top += cacheBytes(bundle.plan);
    const pages = Math.max(1, Math.ceil(top / PAGE));
    if (pages > 65536) throw new NNJitError(`the model needs ${top} bytes of Wasm memory, more than 4 GiB`, { code: "wasm" });
    let memory;
    try {
      memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared });
    } catch (e) {
      throw new NNJitError(`cannot make a ${pages * 64} KiB Wasm memory: ${e.message}`, { code: "wasm" });
    }
    const be = new WasmBackend(bundle, plan, { memory, shared, threads, features, weightOffsets, arena, warnings });
    be.keyOffsets = keyOffsets;
    be.cacheBase = cacheBase;
    if (threads > 1) {
      try {
        await be._startWorkers(threads - 1);
      } catch (e) {
        be.destroy();
        be.threads = 1;
        be.info.threads = 1;
        be.ctl = null;
        warnings.push(`running on 1 thread: ${e.message}`);
      }
    }
    return be;
  }

  constructor(bundle, plan, { memory, shared, threads, features, weightOffsets, arena, warnings }) {
    this.name = "wasm";
    this.bundle = bundle;
    this.plan = plan;
    this.memory = memory;
    this.shared = shared;
    this.threads = threads;
    this.features = features;
    this.weightOffsets = weightOffsets;
    this.arena = arena;
    this.warnings = warnings;
    this.kernels = new Map();
    this._modules = new Map(); // file hash -> Promise<{id, fn} | {failure}>
    this.workers = [];
    this._ids = { next: 0 }; // (an object: shape variants share the counter)
    this.info = { ...features, shared, threads, isolated: globalThis.crossOriginIsolated === true };
  }

  fingerprint() {
    const f = this.features;
    return JSON.stringify({ backend: "wasm", threads: this.threads, cores: navigator.hardwareConcurrency, simd: f.simd, relaxedSimd: f.relaxedSimd, ua: navigator.userAgent });
  }

  unsupported(candidate) {
    const feats = candidate.manifest.features ?? [];
    if (feats.includes("simd128") && !this.features.simd) return "needs WebAssembly SIMD, which this browser lacks";
    if (feats.includes("relaxed-simd") && !this.features.relaxedSimd) return "needs WebAssembly relaxed SIMD, which this browser lacks (recompile with relaxed SIMD off)";
    return null;
  }

  async _startWorkers(n) {
    this.control = new SharedArrayBuffer(CONTROL_BYTES);
    this.ctl = new Int32Array(this.control);
    this.claim = new BigUint64Array(this.control, 0, 8);
    const url = new URL("./wasm-worker.js", import.meta.url);
    const starts = [];
    for (let i = 0; i < n; i++) {
      const w = new Worker(url, { type: "module", name: `nnjit-wasm-${i + 1}` });
      const pending = new Map();
      w.onmessage = (ev) => {
        const { id, error } = ev.data;
        const p = pending.get(id);
        if (p) {
          pending.delete(id);
          error ? p.reject(new NNJitError(error, { code: "wasm" })) : p.resolve();
        }
      };
      const failed = new Promise((_, reject) => {
        w.onerror = (ev) => reject(new NNJitError(`Wasm worker ${i + 1} failed to start: ${ev.message ?? "error"}`, { code: "wasm" }));
      });
      failed.catch(() => {});
      const call = (msg) => Promise.race([new Promise((resolve, reject) => { pending.set(msg.id, { resolve, reject }); w.postMessage(msg); }), failed]);
      this.workers.push({ worker: w, call });
      starts.push(call({ type: "init", id: this._ids.next++, tid: i + 1, memory: this.memory, control: this.control }));
    }
    await Promise.all(starts);
  }

  async allocate(weights) {
    const mem = new Uint8Array(this.memory.buffer);
    for (const [key, off] of this.keyOffsets) {
      const w = weights.get(key);
      if (!w) throw new BundleError(`weight '${key}' is not in the weights file`);
      mem.set(w.bytes, off);
    }
  }

  /** The backend of one shape variant of a variable-length bundle: this memory, workers and
   * compiled modules; its own plan and kernels. */
  variant(plan) {
    const v = Object.create(this);
    v.plan = plan;
    v.kernels = new Map();
    v.weightOffsets = new Map(plan.buffers.filter((b) => b.kind === "weight").map((b) => [b.id, this.keyOffsets.get(b.key)]));
    return v;
  }

  offsetOf(id) {
    const r = rootBuffer(this.plan.buffers, id);
    const ext = this.external?.get(r.id);
    if (ext !== undefined) return ext;
    return r.kind === "weight" ? this.weightOffsets.get(r.id) : this.arena + r.offset;
  }

  rootId(id) {
    return rootBuffer(this.plan.buffers, id).id;
  }

  /** Root buffer id -> a memory offset that replaces its arena place (a generation cache bound
   * as a past input; generate.js), or null for none. */
  bindExternal(map) {
    this.external = map && map.size ? map : null;
  }

  outputHandle(i) {
    return this.offsetOf(this.plan.outputs[i].buffer);
  }

  async compile(name, candidate, index = 0) {
    const why = this.unsupported(candidate);
    if (why) throw new NNJitError(`Wasm kernel '${name}' (${candidate.file}) cannot run here: ${why}`, { code: "kernel", file: candidate.file });
    // identical binaries (the layers of a transformer) are compiled and instantiated once
    const key = this.bundle.plan.files?.[candidate.file] ?? candidate.file;
    let loaded = this._modules.get(key);
    if (!loaded) {
      loaded = this._load(candidate);
      this._modules.set(key, loaded);
    }
    const { id, fn, failure } = await loaded;
    if (failure) throw new NNJitError(`Wasm kernel '${name}' (${candidate.file}) ${failure}`, { code: "kernel", file: candidate.file });
    const m = candidate.manifest;
    return { name, index, candidate, id, fn, chunks: Math.max(1, m.thread_chunks ?? 1), params: m.params ?? [] };
  }

  /** {id, fn} of a kernel binary compiled and instantiated here and on every worker, or
   * {failure}; throws only bundle errors (a missing file, a wrong hash). */
  async _load(candidate) {
    const m = candidate.manifest;
    const exp = m.export ?? "run";
    try {
      let bytes = new Uint8Array(await this.bundle.file(candidate.file));
      if (!this.shared) bytes = unshareMemoryImports(bytes).bytes;
      let module;
      let instance;
      try {
        module = await WebAssembly.compile(bytes);
        instance = await WebAssembly.instantiate(module, { env: { memory: this.memory } });
      } catch (e) {
        return { failure: `failed to load: ${e.message}` };
      }
      const fn = instance.exports[exp];
      if (typeof fn !== "function") return { failure: `has no export '${exp}'` };
      const id = this._ids.next++;
      if (this.workers.length) await Promise.all(this.workers.map((w) => w.call({ type: "kernel", id, module, export: exp, name: candidate.file })));
      return { id, fn };
    } catch (e) {
      if (e instanceof NNJitError && e.code === "bundle") throw e;
      return { failure: `failed to load: ${e.message}` };
    }
  }

  use(name, compiled) {
    this.kernels.set(name, compiled);
  }

  _args(stepIndex, k) {
    const step = this.plan.steps[stepIndex];
    if (step.args.length !== k.params.length) throw new BundleError(`kernel '${k.name}' takes ${k.params.length} buffers, step ${stepIndex} passes ${step.args.length}`);
    return step.args.map((a, i) => {
      const need = k.params[i]?.bytes ?? 0;
      if (this.plan.buffers[a].bytes < need) throw new BundleError(`kernel '${k.name}': param ${i} needs ${need} bytes, buffer ${a} has ${this.plan.buffers[a].bytes}`);
      return this.offsetOf(a);
    });
  }

  /** Runs one kernel on its step's buffers: min(threads * CHUNKS_PER_THREAD, thread_chunks)
   * chunks claimed by this thread and the workers. */
  _call(k, args) {
    const n = this.workers.length ? Math.min(this.threads * CHUNKS_PER_THREAD, k.chunks) : 1;
    if (n === 1) {
      try {
        k.fn(0, 1, ...args);
      } catch (e) {
        throw new NNJitError(`Wasm kernel '${k.name}' trapped: ${e.message}`, { code: "kernel" });
      }
      return;
    }
    const ctl = this.ctl;
    if (args.length > MAXARGS) throw new NNJitError(`kernel '${k.name}' has more than ${MAXARGS} buffers`);
    const claim = this.claim;
    ctl[KERNEL] = k.id;
    ctl[NTHREADS] = n;
    ctl[NARGS] = args.length;
    for (let i = 0; i < args.length; i++) ctl[ARGS + i] = args[i];
    Atomics.store(ctl, COMPLETED, 0);
    Atomics.store(ctl, ERROR, 0);
    const gen = (Atomics.load(ctl, GEN) + 1) >>> 0;
    const base = BigInt(gen) << 32n;
    Atomics.store(claim, CLAIM, base);
    Atomics.add(ctl, GEN, 1);
    Atomics.notify(ctl, GEN);
    let err = null;
    for (;;) {
      const cur = Atomics.load(claim, CLAIM);
      const c = Number(cur - base);
      if (c >= n) break;
      if (Atomics.compareExchange(claim, CLAIM, cur, cur + 1n) !== cur) continue;
      try {
        k.fn(c, n, ...args);
      } catch (e) {
        err ??= e;
      }
      Atomics.add(ctl, COMPLETED, 1);
    }
    const deadline = now() + 60000;
    let spins = 0;
    while (Atomics.load(ctl, COMPLETED) < n) {
      if (++spins % 4096 === 0 && now() > deadline) throw new NNJitError(`Wasm kernel '${k.name}': worker threads did not finish within 60 s`, { code: "wasm" });
    }
    if (err) throw new NNJitError(`Wasm kernel '${k.name}' trapped on thread 0: ${err.message}`, { code: "kernel" });
    if (Atomics.load(ctl, ERROR)) {
      const raw = new Uint8Array(this.control, ERRTEXT, 1024);
      const text = new TextDecoder().decode(raw.slice(0, raw.indexOf(0) < 0 ? 1024 : raw.indexOf(0)));
      throw new NNJitError(`Wasm kernel '${k.name}' trapped on a worker thread: ${text}`, { code: "kernel" });
    }
  }

  writeInputs(arrays) {
    const mem = new Uint8Array(this.memory.buffer);
    this.plan.inputs.forEach((info, i) => {
      const a = arrays[i];
      if (a) mem.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), this.offsetOf(info.buffer));
    });
  }

  async runStep(stepIndex, compiled = undefined) {
    const k = compiled ?? this.kernels.get(this.plan.steps[stepIndex].kernel);
    this._call(k, this._args(stepIndex, k));
  }

  /** Times of one step with `compiled` in ms, one per sample; sampling stops early (after at
   * least one sample) once performance.now() passes `deadline`. */
  async timeStep(stepIndex, compiled, { samples = 5, minMs = 2, deadline = Infinity } = {}) {
    const args = this._args(stepIndex, compiled);
    this._call(compiled, args); // warm-up
    let t0 = now();
    this._call(compiled, args);
    const first = now() - t0;
    const inner = first < minMs ? Math.min(256, Math.ceil(minMs / Math.max(first, 0.005))) : 1;
    const times = [];
    for (let s = 0; s < samples && !(s > 0 && now() > deadline); s++) {
      t0 = now();
      for (let r = 0; r < inner; r++) this._call(compiled, args);
      times.push((now() - t0) / inner);
      if (s % 2 === 1) await new Promise((r) => setTimeout(r, 0)); // let the page breathe
    }
    return times;
  }

  async run(arrays, { read = null } = {}) {
    const plan = this.plan;
    const t0 = now();
    this.writeInputs(arrays);
    const stepMs = [];
    for (let i = 0; i < plan.steps.length; i++) {
      const k = this.kernels.get(plan.steps[i].kernel);
      const s0 = now();
      this._call(k, this._args(i, k));
      stepMs.push(now() - s0);
    }
    const t1 = now();
    const outputs = plan.outputs.map((o, i) => {
      if (read && !read.includes(i)) return null;
      const b = plan.buffers[o.buffer];
      const n = b.shape.reduce((x, y) => x * y, 1);
      const C = b.dtype === "i32" ? Int32Array : Float32Array;
      const off = this.offsetOf(o.buffer);
      const out = new C(n);
      out.set(new C(this.memory.buffer, off, n)); // a copy (works for shared memory too)
      return out;
    });
    return { outputs, timings: { computeMs: t1 - t0, stepMs } };
  }

  destroy() {
    if (this.ctl) {
      Atomics.store(this.ctl, STOP, 1);
      Atomics.add(this.ctl, GEN, 1);
      Atomics.notify(this.ctl, GEN);
    }
    for (const w of this.workers) w.worker.terminate();
    this.workers = [];
  }
}

export const CONTROL = { GEN, KERNEL, NTHREADS, NARGS, COMPLETED, ERROR, STOP, ARGS, ERRTEXT, CLAIM };
