// The demo page's generation view, for a bundle whose plan has "generation" (a decoder with its
// KV cache: docs/generation.md). A prompt (token ids; or text, when the bundle ships a
// tokenizer), max new tokens, temperature / top-k / top-p / seed; Generate runs
// session.generate and shows each token as onToken streams it, with the live tokens/s and the
// prefill time. Text is encoded and decoded by the bundle's tokenizer (text.js, the vendored
// @huggingface/tokenizers); without one the page shows ids.
//
// demo.js makes one GenerationView and calls show(session) after every load. URL parameters
// (read here): prompt=, tokens=N, temperature=, topk=, topp=, seed=, input=ids|text.
// window.nnjitDemo.generation holds the last run: {prompt, tokens, streamed, text (what the
// tokens add to the prompt's text; null without a tokenizer), stats, tokensPerS} (for tests).

const $ = (id) => document.getElementById(id);

/** "3, 14 15" -> [3, 14, 15]; an InputError-like Error naming the first thing that is not an id. */
export function parseIds(text) {
  const parts = text.split(/[\s,]+/).filter((p) => p);
  if (!parts.length) throw new Error("prompt: give token ids, separated by spaces or commas");
  return parts.map((p) => {
    if (!/^-?\d+$/.test(p)) throw new Error(`prompt: '${p.slice(0, 20)}' is not a token id (give ids separated by spaces or commas)`);
    return Number(p);
  });
}

function numberOf(id, { integer = false, min = 0 } = {}) {
  const raw = $(id).value.trim();
  const v = Number(raw);
  const label = $(id).closest("label")?.firstChild?.textContent?.trim() ?? id;
  if (raw === "" || !Number.isFinite(v) || v < min || (integer && !Number.isInteger(v))) {
    throw new Error(`${label}: '${raw}' is not ${integer ? "an integer" : "a number"} from ${min}`);
  }
  return v;
}

export class GenerationView {
  /** `page`: {demo (window.nnjitDemo), setState(state, text, cls), fail(error)} of demo.js. */
  constructor(page, params) {
    this.page = page;
    this.session = null;
    this.codec = null;
    for (const [param, id] of [["prompt", "gen-prompt"], ["tokens", "gen-max"], ["temperature", "gen-temperature"], ["topk", "gen-topk"], ["topp", "gen-topp"], ["seed", "gen-seed"]]) {
      if (params.has(param)) $(id).value = params.get(param);
    }
    this.inputParam = params.get("input");
    $("generate").addEventListener("click", () => this.generate());
    $("gen-input").addEventListener("change", () => this._placeholder());
  }

  /** Shows the view for a generation bundle (hides it otherwise); loads the tokenizer if any. */
  async show(session) {
    this.session = session;
    this.codec = null;
    const on = Boolean(session?.plan.generation);
    $("gen-section").hidden = !on;
    $("generate").disabled = !on;
    if (!on) return;
    const text = Boolean(session.plan.tokenizer);
    if (text) {
      const { TextCodec } = await import("./text.js");
      this.codec = await TextCodec.load(session.bundle);
    }
    const mode = $("gen-input");
    mode.querySelector("option[value=text]").disabled = !text;
    mode.value = this.inputParam ?? (text ? "text" : "ids");
    if (mode.value === "text" && !text) mode.value = "ids";
    const vocab = session.plan.model.inputs.find((i) => i.name === "input_ids")?.range;
    $("gen-about").textContent = `A decoder with its KV cache on the device${vocab ? `, ${vocab} token ids` : ""}; ${text ? "text in and out through the bundle's tokenizer" : "no tokenizer in the bundle: ids in, ids out"}.`;
    this._placeholder();
  }

  _placeholder() {
    $("gen-prompt").placeholder = $("gen-input").value === "text" ? "a prompt" : "token ids, e.g. 3 14 15 92";
  }

  /** The prompt's ids, from the box as ids or as text. */
  _promptIds() {
    const raw = $("gen-prompt").value;
    if ($("gen-input").value !== "text") return parseIds(raw);
    if (!raw.trim()) throw new Error("prompt: type some text");
    return this.codec.tokenizer.encode(raw).ids;
  }

  /** The ids as text (the tokenizer's decode), or null without a tokenizer. */
  _decode(ids) {
    if (!this.codec || !ids.length) return this.codec ? "" : null;
    return this.codec.tokenizer.decode(ids, { skip_special_tokens: false });
  }

  /** The text `tokens` add after `prompt` (decoded together, so that a word piece joins the
   * word before it and spaces fall where the tokenizer puts them). */
  _continuation(prompt, promptText, tokens) {
    const all = this._decode([...prompt, ...tokens]);
    return all.startsWith(promptText) ? all.slice(promptText.length) : this._decode(tokens);
  }

  async generate() {
    const s = this.session;
    if (!s?.plan.generation) return;
    const { demo, setState, fail } = this.page;
    const out = $("gen-output");
    const stats = $("gen-stats");
    $("generate").disabled = true;
    stats.className = "";
    try {
      const prompt = this._promptIds();
      const options = {
        maxNewTokens: numberOf("gen-max", { integer: true, min: 1 }),
        temperature: numberOf("gen-temperature"),
        topK: numberOf("gen-topk", { integer: true }),
        topP: numberOf("gen-topp"),
      };
      if ($("gen-seed").value.trim() !== "") options.seed = numberOf("gen-seed", { integer: true });
      const promptText = this._decode(prompt);
      const run = (demo.generation = { prompt, tokens: null, streamed: [], text: null, stats: null, tokensPerS: null });
      const head = Object.assign(document.createElement("span"), { className: "prompt", textContent: promptText ?? prompt.join(" ") });
      const tail = Object.assign(document.createElement("span"), { className: "generated" });
      out.replaceChildren(head, tail);
      $("gen-ids").textContent = "";
      setState("running", `generating up to ${options.maxNewTokens} tokens on ${s.backend} ...`);
      stats.textContent = "prefill ...";
      const t0 = performance.now();
      let tFirst = null;
      const onToken = (tok, { index }) => {
        const now = performance.now();
        tFirst ??= now;
        run.streamed.push(tok);
        if (this.codec) {
          tail.textContent = this._continuation(prompt, promptText, run.streamed);
        } else {
          tail.append(" ", Object.assign(document.createElement("span"), { className: "token", textContent: String(tok) }));
        }
        $("gen-ids").textContent = `ids: ${run.streamed.join(" ")}`;
        run.tokensPerS = index && now > tFirst ? (index * 1000) / (now - tFirst) : null;
        const rate = run.tokensPerS === null ? "" : `, ${run.tokensPerS.toFixed(1)} tokens/s`;
        stats.textContent = `${index + 1} / ${options.maxNewTokens} tokens${rate}, prefill ${(tFirst - t0).toFixed(1)} ms`;
      };
      const tokens = await s.generate(prompt, { ...options, onToken });
      run.tokens = tokens;
      run.stats = s.generationStats;
      run.text = this.codec ? this._continuation(prompt, promptText, tokens) : null;
      const g = run.stats;
      const rate = g.decodeTokensPerS === null ? "one token, no decode step" : `decode ${g.decodeTokensPerS.toFixed(1)} tokens/s`;
      stats.textContent = `${g.newTokens} tokens after ${g.promptTokens} prompt tokens: prefill ${g.prefillMs.toFixed(1)} ms, ${rate} (${s.backend})`;
      setState("done", `generated ${tokens.length} tokens on ${s.backend}`, "ok");
    } catch (e) {
      stats.textContent = `error: ${e.message ?? e}`;
      stats.className = "error";
      fail(e);
    } finally {
      $("generate").disabled = false;
    }
  }
}
