// Text generation with a KV cache in the page: session.generate(ids, options) (nnjit.js) runs
// here. nnjit/runtime/generate.py does the same from Python; nnjit/frontend/generation.py says
// how a generation bundle is made (prefill variants, decode variants against a cache of a few
// sizes, `present` outputs that are the step's new rows alone).
//
// The cache lives on the device: a GPU buffer per cached key/value (WebGPU), a region of the
// Wasm memory each (reserved when the memory is made: cacheBytes). A decode step reads it in
// place (its past inputs are bound to it, never uploaded); after the step its new rows are
// copied into the cache at their position on the device. Only the logits are read back.

import { InputError, NNJitError } from "./bundle.js";
import { variantPlan } from "./variants.js";

const F32 = 4;

function bindOf(plan, i) {
  return plan.dynamic.variants[i].bind;
}

/** [{heads, dim}] of the cached tensors, from the largest decode variant's past inputs. */
export function cacheShapes(plan) {
  const gen = plan.generation;
  const top = gen.decode.reduce((a, i) => (bindOf(plan, i)[gen.dims.past] > bindOf(plan, a)[gen.dims.past] ? i : a), gen.decode[0]);
  const shapes = new Map(plan.dynamic.variants[top].model.inputs.map((x) => [x.name, x.shape]));
  return { size: bindOf(plan, top)[gen.dims.past], shapes: gen.cache.map((c) => ({ heads: shapes.get(c.past)[1], dim: shapes.get(c.past)[3] })) };
}

/** Bytes of Wasm memory the cache of a generation bundle needs (0 for other bundles). */
export function cacheBytes(plan) {
  if (!plan.generation || !plan.dynamic) return 0;
  const { size, shapes } = cacheShapes(plan);
  return shapes.reduce((t, s) => t + Math.ceil((s.heads * size * s.dim * F32) / 256) * 256, 0);
}

class Cache {
  constructor(be, plan) {
    const { size, shapes } = cacheShapes(plan);
    this.be = be;
    this.top = size;
    this.shapes = shapes;
    this.size = 0;
    this.handles = [];
    if (be.name === "wasm") {
      let off = be.cacheBase;
      for (const s of shapes) {
        this.handles.push(off);
        off += Math.ceil((s.heads * size * s.dim * F32) / 256) * 256;
      }
    }
  }

  _f32(off, n) {
    return new Float32Array(this.be.memory.buffer, off, n);
  }

  /** Grows to `size` rows per head, keeping rows [0, rows). */
  resize(size, rows) {
    if (size === this.size) return;
    if (this.be.name === "wasm") {
      this.shapes.forEach(({ heads, dim }, k) => {
        const region = this._f32(this.handles[k], heads * size * dim);
        if (this.size && rows) for (let h = heads - 1; h >= 0; h--) region.copyWithin(h * size * dim, h * this.size * dim, h * this.size * dim + rows * dim);
      });
    } else {
      const dev = this.be.device;
      const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
      const made = this.shapes.map(({ heads, dim }, k) => dev.createBuffer({ size: Math.max(16, heads * size * dim * F32), usage, label: `cache${k}` }));
      if (this.size && rows) {
        const enc = dev.createCommandEncoder();
        this.shapes.forEach(({ heads, dim }, k) => {
          for (let h = 0; h < heads; h++) enc.copyBufferToBuffer(this.handles[k], h * this.size * dim * F32, made[k], h * size * dim * F32, rows * dim * F32);
        });
        dev.queue.submit([enc.finish()]);
      }
      for (const b of this.handles) b.destroy();
      this.handles = made;
    }
    this.size = size;
  }

  /** Rows [0, n) of each cached tensor's new rows (`srcs[k]`: a [1, heads, srcRows, dim]
   * buffer or offset) into the cache at rows [pos, pos + n). */
  write(srcs, srcRows, n, pos) {
    if (this.be.name === "wasm") {
      this.shapes.forEach(({ heads, dim }, k) => {
        const src = this._f32(srcs[k], heads * srcRows * dim);
        const dst = this._f32(this.handles[k], heads * this.size * dim);
        for (let h = 0; h < heads; h++) dst.set(src.subarray(h * srcRows * dim, (h * srcRows + n) * dim), (h * this.size + pos) * dim);
      });
      return;
    }
    const enc = this.be.device.createCommandEncoder();
    this.shapes.forEach(({ heads, dim }, k) => {
      for (let h = 0; h < heads; h++) enc.copyBufferToBuffer(srcs[k], h * srcRows * dim * F32, this.handles[k], (h * this.size + pos) * dim * F32, n * dim * F32);
    });
    this.be.device.queue.submit([enc.finish()]);
  }

  destroy() {
    if (this.be.name !== "wasm") for (const b of this.handles) b.destroy();
    this.handles = [];
  }
}

/** A seeded PRNG (mulberry32): sampling with a seed repeats in the page (not Python's draws). */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The next token: argmax at temperature 0, else drawn from softmax(logits / temperature)
 * among the topK most likely (0: all), then the smallest set reaching topP. */
export function sample(logits, { temperature = 0, topK = 0, topP = 1, random = Math.random } = {}) {
  if (!temperature) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    return best;
  }
  let order = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b);
  if (topK) order = order.slice(0, topK);
  const top = logits[order[0]] / temperature;
  let p = order.map((i) => Math.exp(logits[i] / temperature - top));
  let sum = p.reduce((a, b) => a + b, 0);
  p = p.map((x) => x / sum);
  if (topP < 1) {
    let acc = 0;
    let keep = 0;
    while (keep < p.length && acc < topP) acc += p[keep++];
    order = order.slice(0, keep);
    p = p.slice(0, keep);
    sum = p.reduce((a, b) => a + b, 0);
    p = p.map((x) => x / sum);
  }
  let r = random();
  for (let i = 0; i < p.length; i++) {
    r -= p[i];
    if (r < 0) return order[i];
  }
  return order[order.length - 1];
}

function checkOptions(o) {
  const nat = (v) => Number.isInteger(v) && v >= 0;
  if (!nat(o.maxNewTokens) || o.maxNewTokens < 1) throw new InputError(`maxNewTokens=${o.maxNewTokens}: give a count from 1`);
  if (typeof o.temperature !== "number" || !(o.temperature >= 0) || !Number.isFinite(o.temperature)) throw new InputError(`temperature=${o.temperature}: give 0 (greedy) or a positive number`);
  if (!nat(o.topK)) throw new InputError(`topK=${o.topK}: give 0 (all tokens) or a count`);
  if (typeof o.topP !== "number" || !(o.topP > 0 && o.topP <= 1)) throw new InputError(`topP=${o.topP}: give a probability in (0, 1]`);
  if (o.seed !== undefined && o.seed !== null && !nat(o.seed)) throw new InputError(`seed=${o.seed}: give a non-negative integer`);
  if (o.eosTokenId !== undefined && o.eosTokenId !== null && !nat(o.eosTokenId)) throw new InputError(`eosTokenId=${o.eosTokenId}: give a token id`);
}

/** Generation for one session (made on first use by InferenceSession.generate). */
export class Generator {
  constructor(session) {
    this.session = session;
    this.plan = session.plan;
    const gen = this.plan.generation;
    this.gen = gen;
    this.dims = gen.dims;
    this.prefill = [...gen.prefill].sort((a, b) => bindOf(this.plan, a)[gen.dims.sequence] - bindOf(this.plan, b)[gen.dims.sequence]);
    this.decode = [...gen.decode].sort((a, b) => bindOf(this.plan, a)[gen.dims.past] - bindOf(this.plan, b)[gen.dims.past]);
    this.pastNames = gen.cache.map((c) => c.past);
    this.presentNames = gen.cache.map((c) => c.present);
    this.maxPrompt = bindOf(this.plan, this.prefill.at(-1))[gen.dims.sequence];
    this.maxLength = bindOf(this.plan, this.decode.at(-1))[gen.dims.past];
    const ids = this.plan.model.inputs.find((i) => i.name === "input_ids");
    this.vocab = ids?.range ?? null;
    this.cache = null;
    this.be = null;
  }

  /** Runs variant `index`: feeds {name: typed array} (the others: the cache when given, else
   * zeros); returns {be, names (outputs), logits}. */
  async _step(index, feeds, cache) {
    const be = await this.session._variantBackend(index);
    const model = variantPlan(this.plan, index).model;
    const external = new Map();
    const arrays = model.inputs.map((info, i) => {
      if (feeds[info.name] !== undefined) return feeds[info.name];
      const k = this.pastNames.indexOf(info.name);
      if (cache && k >= 0) {
        external.set(be.rootId(be.plan.inputs[i].buffer), cache.handles[k]);
        return null;
      }
      return new Float32Array(info.shape.reduce((a, b) => a * b, 1));
    });
    be.bindExternal(external);
    const names = model.outputs.map((o) => o.name);
    const k = names.indexOf(this.gen.logits ?? "logits");
    try {
      const res = await be.run(arrays, { read: [k] });
      return { be, names, logits: res.outputs[k] };
    } finally {
      be.bindExternal(null);
    }
  }

  _feeds(index, feeds) {
    const have = new Set(variantPlan(this.plan, index).model.inputs.map((i) => i.name));
    return Object.fromEntries(Object.entries(feeds).filter(([k]) => have.has(k)));
  }

  async generate(promptIds, options = {}) {
    const o = { maxNewTokens: 32, temperature: 0, topK: 0, topP: 1, ...options };
    checkOptions(o);
    const ids = Array.from(promptIds ?? [], Number);
    if (!ids.length || !ids.every(Number.isInteger)) throw new InputError("promptIds: give a non-empty array of token ids");
    const bad = ids.find((t) => t < 0 || (this.vocab !== null && t >= this.vocab));
    if (bad !== undefined) throw new InputError(`promptIds: token id ${bad} is outside the vocabulary [0, ${this.vocab - 1}]`);
    const n = ids.length;
    if (n > this.maxPrompt) throw new InputError(`the prompt has ${n} tokens, over the ${this.maxPrompt} the bundle prefills (recompile with a larger --max-length, or cut the prompt)`);
    if (n + o.maxNewTokens > this.maxLength) throw new InputError(`${n} prompt tokens + ${o.maxNewTokens} new ones are over the bundle's ${this.maxLength} positions (recompile with --max-length, or ask for fewer tokens)`);
    const random = o.temperature ? prng(o.seed ?? Math.floor(Math.random() * 2 ** 32)) : null;
    const { sequence: seq, past } = this.dims;
    const t0 = performance.now();
    const pre = this.prefill.find((i) => bindOf(this.plan, i)[seq] >= n);
    const s = bindOf(this.plan, pre)[seq];
    const mask = new Int32Array(s + 1);
    mask.fill(1, 1, n + 1);
    const prompt = new Int32Array(s);
    prompt.set(ids);
    // (with "logits_position" the LM head computes the last prompt token's row alone)
    const position = this.gen.logits_position ?? null;
    const preFeeds = { input_ids: prompt, attention_mask: mask, position_ids: Int32Array.from({ length: s }, (_, i) => i) };
    if (position !== null) preFeeds[position] = Int32Array.of(n - 1);
    let step = await this._step(pre, this._feeds(pre, preFeeds), null);
    let last = position !== null ? step.logits : step.logits.subarray((n - 1) * (step.logits.length / s), n * (step.logits.length / s));
    if (!this.cache || this.cache.be !== this.session._be) {
      this.cache?.destroy();
      this.cache = new Cache(this.session._be, this.plan);
    }
    const cache = this.cache;
    cache.size = 0;
    const tokens = [];
    let tFirst = null;
    for (;;) {
      const tok = sample(last, { temperature: o.temperature, topK: o.topK, topP: o.topP, random });
      tokens.push(tok);
      tFirst ??= performance.now();
      await o.onToken?.(tok, { index: tokens.length - 1 });
      if (tokens.length >= o.maxNewTokens || tok === o.eosTokenId) break;
      const p = n + tokens.length - 1;
      const dec = this.decode.find((i) => bindOf(this.plan, i)[past] >= p + 1);
      const size = bindOf(this.plan, dec)[past];
      const srcs = (st) => this.presentNames.map((name) => st.be.outputHandle(st.names.indexOf(name)));
      if (cache.size === 0) {
        cache.resize(size, 0);
        cache.write(srcs(step), s, n, 0);
      } else {
        cache.resize(size, p);
      }
      const m = new Int32Array(size + 1);
      m.fill(1, 0, p);
      m[size] = 1;
      const decFeeds = { input_ids: Int32Array.of(tok), position_ids: Int32Array.of(p), attention_mask: m };
      if (position !== null) decFeeds[position] = Int32Array.of(0);
      step = await this._step(dec, this._feeds(dec, decFeeds), cache);
      cache.write(srcs(step), 1, 1, p);
      last = step.logits;
    }
    const tEnd = performance.now();
    const steps = tokens.length - 1;
    this.stats = { promptTokens: n, newTokens: tokens.length, prefillMs: tFirst - t0, decodeTokensPerS: steps && tEnd > tFirst ? (steps * 1000) / (tEnd - tFirst) : null };
    return tokens;
  }
}

export function notGeneration() {
  return new NNJitError("this bundle is not a generation bundle (compile a decoder exported with its cache: past_key_values.N.key/value inputs, present.N.key/value outputs)", { code: "input" });
}
