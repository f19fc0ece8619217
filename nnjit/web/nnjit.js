// nnjit's browser runtime: runs a bundle made by `nnjit compile` on WebGPU or WebAssembly.
//
//   import * as nnjit from "./runtime/nnjit.js";
//   const session = await nnjit.InferenceSession.create("./", { backend: "auto" });
//   const out = await session.run({ input_ids: new nnjit.Tensor("int64", ids, [1, 16]), ... });
//   out.last_hidden_state.data  // Float32Array; .dims [1, 16, 64]
//
// See docs/browser.md for the options, the fallback rules and the tuning cache.

import { Bundle, BundleError, InputError, NNJitError, Tensor, candidateOrder, candidatesOf, prepareFeeds, setOwn, syntheticFeeds } from "./bundle.js";
import { WebGPUBackend } from "./webgpu.js";
import { WasmBackend, detectWasmFeatures, unshareMemoryImports } from "./wasm.js";
import { TuningCache, clearTuningCache, tune } from "./tuning.js";
import { clearWeightsCache } from "./cache.js";
import { cutOutputs, padFeeds, pickVariant, variantPlan } from "./variants.js";
import { Generator, notGeneration } from "./generate.js";

export const version = "0.1.0";
export { Bundle, BundleError, InputError, NNJitError, Tensor, TuningCache, clearTuningCache, clearWeightsCache, detectWasmFeatures, syntheticFeeds, unshareMemoryImports };

const BACKENDS = ["auto", "webgpu", "wasm"];

export class InferenceSession {
  /**
   * Loads a bundle and prepares it on a backend.
   *
   * options: {
   *   backend: "auto" | "webgpu" | "wasm"   ("auto": WebGPU, else Wasm)
   *   fallback: true      fall back from WebGPU to Wasm (no adapter, a kernel that does not
   *                       compile, a lost device); the reason is session.fallbackReason
   *   threads: N          Wasm threads (default: hardwareConcurrency, at most 8; 1 unless
   *                       the page is cross-origin isolated)
   *   verify: true        check every fetched file's SHA-256 against plan.json
   *   cache: true         keep the weights file in Cache Storage (cache.js; a later load
   *                       reads it from there, and does not hash it again); {partBytes}:
   *                       in entries of at most that size (default 64 MiB)
   *   onProgress          the weights' download: ({phase: "weights", file, loaded, total, cached})
   *   profile: false      WebGPU: time every kernel (one submission per step) in run()
   *   tuning: {budgetMs: 30000, cache: true, onProgress} or false
   *   powerPreference: "high-performance"
   * }
   */
  static async create(bundleUrl, options = {}) {
    const want = options.backend ?? "auto";
    if (!BACKENDS.includes(want)) throw new NNJitError(`unknown backend '${want}' (choose auto, webgpu or wasm)`);
    const bundle = await Bundle.load(bundleUrl, { verify: options.verify ?? true, cache: options.cache ?? true, onProgress: options.onProgress });
    const s = new InferenceSession(bundle, options);
    const available = bundle.plan.backends;
    const fallback = options.fallback ?? true;
    if (want !== "wasm") {
      if (!available.webgpu) {
        if (want === "webgpu" && (!fallback || !available.wasm)) throw new BundleError("the bundle has no WebGPU kernels (recompile with --backend webgpu)");
        s.fallbackReason = "the bundle has no WebGPU kernels";
      } else {
        try {
          await s._init("webgpu");
          return s;
        } catch (e) {
          if (e instanceof BundleError || e instanceof InputError || !fallback || !available.wasm) throw e;
          s.fallbackReason = e.message;
        }
      }
    }
    if (!available.wasm) throw new BundleError("the bundle has no Wasm kernels (recompile with --backend wasm)");
    await s._init("wasm");
    return s;
  }

  constructor(bundle, options) {
    this.bundle = bundle;
    this.plan = bundle.plan;
    this.options = options;
    this.backend = null;
    this.fallbackReason = null;
    this.tuning = null;
    this.timings = null;
    this.warnings = [...bundle.warnings];
    this.inputNames = bundle.plan.model.inputs.map((i) => i.name);
    this.outputNames = bundle.plan.model.outputs.map((o) => o.name);
    this.inputMetadata = bundle.plan.model.inputs;
    this.outputMetadata = bundle.plan.model.outputs;
    this._be = null;
    this._queue = Promise.resolve();
    this._testing = {
      loseDevice: () => this._be?.loseDevice?.(),
      backendImpl: () => this._be,
    };
  }

  /** Adapter (WebGPU) or thread/feature (Wasm) facts of the backend in use. */
  get info() {
    return this._be?.info ?? null;
  }

  get threads() {
    return this._be?.threads ?? null;
  }

  /** WebGPU: {name, cpu} of the adapter in use (cpu: a software adapter, whose times are not
   * GPU speed); null on Wasm. */
  get adapter() {
    return this._be?.adapterInfo ?? null;
  }

  async _init(name) {
    const t0 = performance.now();
    const opts = this.options;
    const be = name === "webgpu"
      ? await WebGPUBackend.create(this.bundle, opts)
      : await WasmBackend.create(this.bundle, { threads: opts.threads });
    try {
      await be.allocate(await this.bundle.weights());
      const kernels = Object.entries(be.plan.kernels);
      await compileKernels(be, name);
      const t1 = performance.now();
      const tuningOpts = opts.tuning === false ? null : (opts.tuning ?? {});
      const tunable = kernels.some(([, k]) => candidateOrder(k, be.deviceClass ?? null).length > 1);
      if (tuningOpts && tuningOpts.enabled !== false && tunable) {
        be.writeInputs(prepareFeeds(this.plan.model, syntheticFeeds(this.plan.model)));
        this.tuning = await tune(this.bundle, be, tuningOpts);
      } else {
        this.tuning = { tuned: [], cached: [], cachedPartial: [], shared: [], ignored: [], skipped: [], failed: [], outOfBudget: [], cutShort: [], choices: {}, times: {}, elapsedMs: 0, cache: false, disabled: !tuningOpts };
        tuningOpts?.onProgress?.({ phase: "done", total: 0, elapsedMs: 0, report: this.tuning });
      }
      await this.bundle.stored();
      this.loadTimings = { backend: name, setupMs: t1 - t0, tuningMs: performance.now() - t1, weights: this.bundle.loaded[this.plan.weights.file] ?? null };
    } catch (e) {
      try {
        be.destroy();
      } catch {
        /* already gone */
      }
      throw e;
    }
    for (const w of [...this.bundle.warnings, ...(be.warnings ?? [])]) if (!this.warnings.includes(w)) this.warnings.push(w);
    this._be = be;
    this.backend = name;
    // a variable-length bundle: the top-level plan is its largest variant's
    this._variants = new Map(this.plan.dynamic ? [[this.plan.dynamic.variants.length - 1, be]] : []);
  }

  /** The backend of shape variant `index`, made on first use (it shares the device or memory,
   * the weights and the compiled kernels of the others). */
  async _variantBackend(index) {
    let be = this._variants.get(index);
    if (!be) {
      be = this._be.variant(variantPlan(this.plan, index).backends[this.backend]);
      await compileKernels(be, this.backend);
      this._variants.set(index, be);
    }
    return be;
  }

  /** Runs the model: feeds {name: Tensor | {data, dims} | TypedArray | Array}; resolves to
   * {name: Tensor{data: Float32Array, dims}}. Runs are queued one after another. */
  run(feeds, runOptions = {}) {
    const p = this._queue.then(() => this._run(feeds, runOptions));
    this._queue = p.catch(() => {});
    return p;
  }

  async _run(feeds, runOptions) {
    if (!this._be) throw new NNJitError("the session was released");
    if (this.plan.generation) throw new InputError("a generation bundle's variants take a cache that generate() keeps on the device: call session.generate(promptIds, options)");
    // a variable-length bundle runs the cheapest variant that holds the input, padded (masked out)
    const pick = this.plan.dynamic ? pickVariant(this.plan, feeds) : null;
    const model = pick ? variantPlan(this.plan, pick.index).model : this.plan.model;
    const arrays = prepareFeeds(model, pick ? padFeeds(this.plan, pick.index, feeds) : feeds);
    const profile = runOptions.profile ?? this.options.profile ?? false;
    const t0 = performance.now();
    let res;
    let be = pick ? await this._variantBackend(pick.index) : this._be;
    try {
      res = await be.run(arrays, { profile });
    } catch (e) {
      const lost = e.code === "device-lost" || this._be.lost;
      if (this.backend !== "webgpu" || !lost || this.options.fallback === false || !this.plan.backends.wasm) throw e;
      this.fallbackReason = e.message;
      const old = this._be;
      this._be = null;
      try {
        old.destroy();
      } catch {
        /* lost */
      }
      await this._init("wasm");
      be = pick ? await this._variantBackend(pick.index) : this._be;
      res = await be.run(arrays, { profile });
    }
    const totalMs = performance.now() - t0;
    const bplan = be.plan;
    const kernels = {};
    let steps = null;
    if (res.timings.stepMs) {
      steps = bplan.steps.map((s, i) => ({ kernel: s.kernel, ms: res.timings.stepMs[i] }));
      for (const s of steps) {
        const k = (kernels[s.kernel] ??= { calls: 0, ms: 0, kind: bplan.kernels[s.kernel].manifest?.kind });
        k.calls++;
        k.ms += s.ms;
      }
    }
    this.timings = { backend: this.backend, totalMs, ...res.timings, kernels: steps ? kernels : null, steps };
    const out = {};
    model.outputs.forEach((info, i) => {
      const data = res.outputs[i];
      setOwn(out, info.name, new Tensor(data instanceof Int32Array ? "int32" : "float32", data, info.shape));
    });
    return pick ? cutOutputs(this.plan, pick.sizes, out) : out;
  }

  /** Generates up to options.maxNewTokens token ids after `promptIds` with a decoder bundle
   * (plan "generation"; the logic is generate.js), its KV cache kept on the device. options:
   * {maxNewTokens: 32, temperature: 0 (greedy), topK: 0, topP: 1, seed, eosTokenId,
   * onToken(id, {index})} (onToken streams each token as it comes). Resolves to the ids;
   * session.generationStats has {promptTokens, newTokens, prefillMs, decodeTokensPerS}. */
  generate(promptIds, options = {}) {
    const p = this._queue.then(async () => {
      if (!this._be) throw new NNJitError("the session was released");
      if (!this.plan.generation) throw notGeneration();
      this._generator ??= new Generator(this);
      try {
        return await this._generator.generate(promptIds, options);
      } finally {
        this.generationStats = this._generator.stats ?? null;
      }
    });
    this._queue = p.catch(() => {});
    return p;
  }

  /** Text in (a bundle with a tokenizer; the logic is text.js): feeds {input_ids,
   * attention_mask, ...} of Tensors [texts.length, length] for a string or array of strings. */
  async encode(texts) {
    return (await this._textCodec()).encode(texts);
  }

  /** run() on texts, in batches of the compiled batch size: {name: Tensor, one row per text}. */
  async runText(texts) {
    return (await (await this._textCodec()).run((f) => this.run(f), texts)).outputs;
  }

  /** Unit-length sentence embeddings, Tensor [texts.length, hidden] (mean pooling over the
   * attention mask, then L2 normalisation, as sentence-transformers). */
  async embed(texts) {
    return (await this._textCodec()).embed((f) => this.run(f), texts);
  }

  _textCodec() {
    this._text ??= import("./text.js").then((m) => m.TextCodec.load(this.bundle));
    this._text.catch(() => (this._text = null));
    return this._text;
  }

  /** Frees the GPU device / Wasm workers. */
  async release() {
    await this._queue;
    this._be?.destroy();
    this._be = null;
  }
}

/** Compiles every kernel of a backend's plan: the first candidate of the device class's order
 * that the device can run (a GPU: the prior's best). */
async function compileKernels(be, name) {
  await Promise.all(Object.entries(be.plan.kernels).map(async ([kname, k]) => {
    const cands = candidatesOf(k);
    const idx = candidateOrder(k, be.deviceClass ?? null).find((i) => be.unsupported(cands[i]) === null) ?? -1;
    if (idx < 0) throw new NNJitError(`kernel '${kname}' (${cands[0].file}) cannot run on ${name}: ${be.unsupported(cands[0])}`, { code: "kernel", file: cands[0].file });
    be.use(kname, await be.compile(kname, cands[idx], idx));
  }));
}

export default { InferenceSession, Tensor, NNJitError, BundleError, InputError, detectWasmFeatures, clearTuningCache, clearWeightsCache, TuningCache, version };
