// Text in, in the page: the bundle's tokenizer.json (plan "tokenizer") read by
// @huggingface/tokenizers (vendored: ./vendor/tokenizers.mjs), as nnjit/text.py reads it with
// HF tokenizers, so that both give the same ids. The session's entry points are
// session.encode / runText / embed (nnjit.js), which load this module on first use.
//
//   const feeds = await session.encode(["a sentence", "another"]);   // {input_ids, attention_mask}
//   const emb = await session.embed(["a sentence", "another"]);      // Tensor [2, hidden], unit rows
//   cosineSimilarities(emb)                                          // [[1, s], [s, 1]]

import { Tokenizer } from "./vendor/tokenizers.mjs";
import { BundleError, InputError, NNJitError, Tensor, setOwn } from "./bundle.js";

/** Model inputs a tokenizer fills (as nnjit/text.py FIELDS). */
export const FIELDS = ["input_ids", "attention_mask", "token_type_ids"];
const MAX_TEXTS = 100000;

function inputInfo(plan, name) {
  return plan.model.inputs.find((i) => i.name === name);
}

/** The sequence length texts whose encodings have `lengths` tokens are padded (or truncated)
 * to: the one place that decides it (as nnjit/text.py padding_length). A bundle of one
 * compiled length takes that length whatever the texts. */
export function paddingLength(plan, lengths) {
  const d = dimOf(plan, 1);
  if (d) {
    const longest = Math.max(1, ...lengths);
    const top = Math.max(...d.sizes);
    if (d.pad) return Math.min(longest, top);
    return d.sizes.find((s) => s >= longest) ?? top;
  }
  return inputInfo(plan, "input_ids").shape[1];
}

/** Rows the compiled model takes per run (at most, for a dynamic batch dim). */
export function batchSize(plan) {
  const d = dimOf(plan, 0);
  return d ? Math.max(...d.sizes) : inputInfo(plan, "input_ids").shape[0];
}

/** The dynamic dim (plan "dynamic") input_ids has at `axis`, or null. */
export function dimOf(plan, axis) {
  for (const d of Object.values(plan.dynamic?.dims ?? {})) if (d.inputs.some(([n, a]) => n === "input_ids" && a === axis)) return d;
  return null;
}

/** plan.tokenizer, checked (as nnjit/text.py tokenizer_entry). */
export function tokenizerEntry(plan) {
  const e = plan.tokenizer;
  if (e === undefined || e === null) throw new NNJitError("the bundle has no tokenizer, so it takes token ids, not text (recompile with --tokenizer PATH/tokenizer.json)", { code: "no-tokenizer" });
  const names = new Set(plan.model.inputs.map((i) => i.name));
  const ok = typeof e === "object" && typeof e.file === "string" && Array.isArray(e.inputs) && e.inputs.includes("input_ids")
    && e.inputs.every((n) => FIELDS.includes(n) && names.has(n)) && Number.isInteger(e.pad_id);
  if (!ok) throw new BundleError('plan.json: "tokenizer" is malformed (recompile the bundle)', { file: "plan.json" });
  return e;
}

function checkTexts(texts) {
  if (typeof texts === "string") return [texts];
  if (!Array.isArray(texts) || !texts.length || !texts.every((t) => typeof t === "string")) throw new InputError("texts: give a string or a non-empty array of strings");
  if (texts.length > MAX_TEXTS) throw new InputError(`texts: ${texts.length} texts, over ${MAX_TEXTS} at once`);
  return texts;
}

/** The bundle's tokenizer: texts -> feeds, and texts through a session. */
export class TextCodec {
  constructor(plan, tokenizerJson) {
    this.plan = plan;
    this.entry = tokenizerEntry(plan);
    try {
      this.tokenizer = new Tokenizer(tokenizerJson, {});
    } catch (e) {
      throw new BundleError(`bundle file ${this.entry.file}: the tokenizer library cannot read it (${e.message})`, { file: this.entry.file, cause: e });
    }
  }

  /** Fetches (and checks, as every bundle file) the tokenizer.json the plan names. */
  static async load(bundle) {
    const entry = tokenizerEntry(bundle.plan);
    let json;
    try {
      json = JSON.parse(await bundle.text(entry.file));
    } catch (e) {
      if (e instanceof NNJitError) throw e;
      throw new BundleError(`bundle file ${entry.file}: not valid JSON (${e.message})`, { file: entry.file });
    }
    return new TextCodec(bundle.plan, json);
  }

  /** {ids, typeIds} of one text, at most `length` tokens: a longer text loses its last tokens,
   * keeping the special ones around them (HF tokenizers' truncation of one sequence). */
  _encodeOne(text, length) {
    const tok = this.tokenizer;
    const e = tok.encode(text, { return_token_type_ids: true });
    if (e.ids.length <= length) return { ids: e.ids, typeIds: e.token_type_ids ?? null };
    const bare = tok.encode(text, { add_special_tokens: false }).tokens;
    const keep = Math.max(0, length - (e.ids.length - bare.length));
    const pp = tok.post_processor ? tok.post_processor.post_process(bare.slice(0, keep), null, true) : { tokens: bare.slice(0, length) };
    const unk = tok.model.unk_token_id;
    return { ids: pp.tokens.map((t) => tok.token_to_id(t) ?? unk), typeIds: pp.token_type_ids ?? null };
  }

  /** Feeds {name: Tensor [texts.length, length]} for the model's text inputs, padded with
   * plan pad_id (attention_mask 0 there); also .lengths, each text's token count. */
  encode(texts) {
    texts = checkTexts(texts);
    const full = texts.map((t) => this._encodeOne(t, Infinity));
    const length = paddingLength(this.plan, full.map((e) => e.ids.length));
    const encs = full.map((e, i) => (e.ids.length > length ? this._encodeOne(texts[i], length) : e));
    const n = texts.length;
    const fill = {
      input_ids: (e, j) => (j < e.ids.length ? e.ids[j] : this.entry.pad_id),
      attention_mask: (e, j) => (j < e.ids.length ? 1 : 0),
      token_type_ids: (e, j) => (j < e.ids.length && e.typeIds ? e.typeIds[j] : 0),
    };
    const feeds = {};
    for (const name of this.entry.inputs) {
      const int64 = inputInfo(this.plan, name).dtype === "int64";
      const data = int64 ? new BigInt64Array(n * length) : new Int32Array(n * length);
      encs.forEach((e, i) => {
        for (let j = 0; j < length; j++) {
          const v = fill[name](e, j);
          data[i * length + j] = int64 ? BigInt(v) : v;
        }
      });
      setOwn(feeds, name, new Tensor(int64 ? "int64" : "int32", data, [n, length]));
    }
    Object.defineProperty(feeds, "lengths", { value: encs.map((e) => Math.min(e.ids.length, length)), enumerable: false });
    return feeds;
  }

  /** Runs `texts` through `runFn` (a session's run) in batches of the compiled batch size;
   * {outputs: {name: Tensor, one row per text}, mask: Int32Array [texts.length * length]}. */
  async run(runFn, texts) {
    texts = checkTexts(texts);
    const b = batchSize(this.plan);
    const parts = {};
    const masks = [];
    for (let i = 0; i < texts.length; i += b) {
      const chunk = texts.slice(i, i + b);
      const fill = dimOf(this.plan, 0) ? 0 : b - chunk.length; // (a dynamic batch takes the rows there are)
      const feeds = this.encode([...chunk, ...Array(fill).fill("")]);
      const out = await runFn(feeds);
      for (const [name, t] of Object.entries(out)) {
        const row = t.data.length / t.dims[0];
        (parts[name] ??= { rows: [], dims: t.dims, type: t.type }).rows.push(t.data.slice(0, chunk.length * row));
      }
      const mask = feeds.attention_mask?.data;
      const length = feeds.input_ids.dims[1];
      masks.push(Int32Array.from({ length: chunk.length * length }, (_, k) => (mask ? Number(mask[k]) : 1)));
    }
    const outputs = {};
    for (const [name, p] of Object.entries(parts)) {
      setOwn(outputs, name, new Tensor(p.type, concat(p.rows), [texts.length, ...p.dims.slice(1)]));
    }
    return { outputs, mask: concat(masks) };
  }

  /** Unit-length sentence embeddings: Tensor [texts.length, hidden]. */
  async embed(runFn, texts) {
    texts = checkTexts(texts);
    const { outputs, mask } = await this.run(runFn, texts);
    return sentenceEmbeddings(outputs, mask, texts.length);
  }
}

function concat(arrays) {
  const out = new arrays[0].constructor(arrays.reduce((a, x) => a + x.length, 0));
  let o = 0;
  for (const a of arrays) {
    out.set(a, o);
    o += a.length;
  }
  return out;
}

/** Mean of the token vectors where `mask` is 1, L2-normalised (as nnjit/text.py
 * sentence_embeddings): the output named sentence_embedding or the first 2-D one (already
 * pooled: only normalised), else the first 3-D one [n, sequence, hidden]. */
export function sentenceEmbeddings(outputs, mask, n) {
  const all = Object.entries(outputs);
  let t = outputs.sentence_embedding ?? all.find(([, o]) => o.dims.length === 2)?.[1];
  let pooled;
  if (t) {
    pooled = Float64Array.from(t.data);
  } else {
    t = all.find(([, o]) => o.dims.length === 3 && o.dims[0] === n && o.dims[1] * n === mask.length)?.[1];
    if (!t) throw new NNJitError(`no output to pool: outputs ${all.map(([k, o]) => `${k} [${o.dims}]`).join(", ")}`);
    const [, L, h] = t.dims;
    pooled = new Float64Array(n * h);
    for (let i = 0; i < n; i++) {
      let count = 0;
      for (let j = 0; j < L; j++) {
        if (!mask[i * L + j]) continue;
        count++;
        for (let k = 0; k < h; k++) pooled[i * h + k] += t.data[(i * L + j) * h + k];
      }
      for (let k = 0; k < h; k++) pooled[i * h + k] /= Math.max(count, 1e-9);
    }
  }
  const h = pooled.length / n;
  const out = new Float32Array(n * h);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = 0; k < h; k++) s += pooled[i * h + k] ** 2;
    const norm = Math.max(Math.sqrt(s), 1e-12);
    for (let k = 0; k < h; k++) out[i * h + k] = pooled[i * h + k] / norm;
  }
  return new Tensor("float32", out, [n, h]);
}

/** Pairwise cosine similarities of the rows of an embedding Tensor [n, hidden] (unit rows:
 * dot products), as an array of n arrays. */
export function cosineSimilarities(emb) {
  const [n, h] = emb.dims;
  const sim = [];
  for (let i = 0; i < n; i++) {
    sim.push([]);
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < h; k++) s += emb.data[i * h + k] * emb.data[j * h + k];
      sim[i].push(s);
    }
  }
  return sim;
}
