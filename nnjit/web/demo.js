// The demo page: load a bundle, pick a backend, watch tuning, run, compare with the reference
// outputs shipped in the bundle, and chart the time of every kernel.
//
// URL parameters: bundle=URL (default: the page's folder), backend=auto|webgpu|wasm,
// threads=N, tune=0|1, budget=MS, runs=N, autoload=1, autorun=1 (load, then run),
// autoembed=1 (load, then embed the sentences: bundles with a tokenizer), autogenerate=1
// (load, then generate: generation bundles; the view's own parameters are in demo-generate.js).
// A bundle with a tokenizer (plan "tokenizer") also gets the sentence-similarity view: the
// textarea's lines embedded (session.embed, runtime/text.js) and their cosine similarities.
// A generation bundle (plan "generation") gets the generation view (demo-generate.js) instead
// of Run (its variants take a cache only session.generate keeps).
// The page's state is in document.body.dataset.state: idle, loading, ready, running, done,
// error; window.nnjitDemo holds the session and the last results (for tests).

import { GenerationView } from "./demo-generate.js";
import * as nnjit from "./nnjit.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const bundleUrl = new URL(params.get("bundle") ?? "./", location.href).href;
const demo = (window.nnjitDemo = { session: null, outputs: null, check: null, error: null, progress: [], embedding: null, generation: null });

for (const [param, id] of [["backend", "backend"], ["threads", "threads"], ["budget", "budget"], ["runs", "repeat"]]) {
  if (params.has(param)) $(id).value = params.get(param);
}
if (params.has("tune")) $("tune").checked = params.get("tune") !== "0";

function setState(state, text, cls = "") {
  document.body.dataset.state = state;
  if (text !== undefined) {
    $("status").textContent = text;
    $("status").className = cls;
  }
}

function fail(e) {
  demo.error = e.message ?? String(e);
  setState("error", `error: ${demo.error}`, "error");
  $("load").disabled = false;
  console.error(e);
}

/** "google swiftshader (a CPU adapter: times are not GPU speed)", or "" on Wasm. */
function adapterText(s) {
  const a = s.adapter;
  if (!a) return "";
  return a.cpu ? `${a.name} (a CPU adapter: times are not GPU speed)` : a.name;
}

function showInfo(s) {
  const rows = [
    ["bundle", bundleUrl],
    ["backend", s.backend],
    ["fallback reason", s.fallbackReason ?? "none"],
    ["cross-origin isolated", String(globalThis.crossOriginIsolated === true)],
  ];
  const info = s.info ?? {};
  if (s.backend === "wasm") {
    rows.push(["threads", String(info.threads)], ["shared memory", String(info.shared)], ["SIMD / relaxed SIMD", `${info.simd} / ${info.relaxedSimd}`]);
  } else {
    rows.push(["adapter", adapterText(s)]);
  }
  const t = s.tuning;
  if (t) rows.push(["tuning", t.disabled ? "off" : `${t.tuned.length} tuned, ${t.cached.length} from cache, ${t.shared.length} shared, ${t.ignored.length} cache entries ignored, ${t.outOfBudget.length} past the budget, ${t.cutShort.length} cut short (${t.elapsedMs.toFixed(0)} ms)`]);
  if (s.loadTimings) rows.push(["load", `${s.loadTimings.setupMs.toFixed(0)} ms + tuning ${s.loadTimings.tuningMs.toFixed(0)} ms`]);
  const w = s.loadTimings?.weights;
  if (w) rows.push(["weights", `${mb(w.bytes)} MB ${w.from === "cache" ? "from cache" : "downloaded"} in ${w.ms.toFixed(0)} ms`]);
  for (const w of s.warnings) rows.push(["warning", w]);
  $("info").replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v;
    return [dt, dd];
  }));
}

function onProgress(ev) {
  demo.progress.push(ev);
  const bar = $("progress");
  bar.max = Math.max(1, ev.total ?? 1);
  if (ev.phase === "done") {
    bar.value = bar.max;
    const r = ev.report;
    $("progress-text").textContent = ev.total
      ? `${ev.total} kernels with candidates: ${r.tuned.length} tuned, ${r.cached.length} from the cache, ${r.shared.length} shared, ${r.outOfBudget.length} past the budget, ${r.cutShort.length} cut short (${ev.elapsedMs.toFixed(0)} ms)`
      : "nothing to tune (one candidate per kernel)";
    return;
  }
  bar.value = Math.max(0, (ev.index ?? 1) - 1);
  const what = {
    start: `tuning ${ev.total} kernels`,
    cached: `${ev.kernel}: candidate ${ev.choice} from the cache`,
    kernel: `${ev.kernel}: timing ${ev.candidates} candidates`,
    candidate: `${ev.kernel}: candidate ${ev.candidate} takes ${ev.ms?.toFixed(3)} ms`,
    skip: `${ev.kernel}: skipped (${ev.reason})`,
    shared: `${ev.kernel}: candidate ${ev.choice}, as the same kernel earlier`,
  }[ev.phase];
  $("progress-text").textContent = `${ev.index ?? 0}/${ev.total} ${what ?? ev.phase}`;
}

const mb = (n) => (n / 1e6).toFixed(1);

/** The weights' download (or read from Cache Storage): a bar and "x / y MB". */
function onWeights(ev) {
  const bar = $("weights-progress");
  bar.max = Math.max(1, ev.total ?? ev.loaded);
  bar.value = ev.loaded;
  const of = ev.total !== undefined ? ` / ${mb(ev.total)}` : "";
  $("weights-text").textContent = ev.cached ? `weights: ${mb(ev.loaded)}${of} MB from cache` : `weights: ${mb(ev.loaded)}${of} MB downloaded`;
}

async function load() {
  $("load").disabled = true;
  $("run").disabled = true;
  $("generate").disabled = true;
  demo.error = null;
  demo.progress = [];
  setState("loading", `loading ${bundleUrl} ...`);
  try {
    if (demo.session) await demo.session.release();
    demo.session = null;
    await generation.show(null);
    const threads = $("threads").value ? Number($("threads").value) : undefined;
    const tuning = $("tune").checked ? { budgetMs: Number($("budget").value || 30000), onProgress } : false;
    const t0 = performance.now();
    const s = await nnjit.InferenceSession.create(bundleUrl, { backend: $("backend").value, threads, tuning, profile: true, onProgress: onWeights });
    demo.session = s;
    $("model").textContent = `inputs ${s.inputMetadata.map((i) => `${i.name} ${i.dtype}[${i.shape}]`).join(", ")} -> outputs ${s.outputMetadata.map((o) => `${o.name} [${o.shape}]`).join(", ")}`;
    showInfo(s);
    const on = s.adapter ? `${s.backend}, adapter ${adapterText(s)},` : s.backend;
    const embeds = Boolean(s.plan.tokenizer) && !s.plan.generation;
    $("text-section").hidden = !embeds;
    $("embed").disabled = !embeds;
    await generation.show(s);
    $("chart").parentElement.hidden = Boolean(s.plan.generation);
    setState("ready", `loaded on ${on} in ${(performance.now() - t0).toFixed(0)} ms${s.fallbackReason ? ` (fell back: ${s.fallbackReason})` : ""}`, "ok");
    $("run").disabled = Boolean(s.plan.generation);
  } catch (e) {
    fail(e);
  } finally {
    $("load").disabled = false;
  }
}

function relativeError(got, ref) {
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < ref.length; i++) {
    const g = Number(got[i]);
    const r = Number(ref[i]);
    if (!Number.isFinite(g)) return Infinity;
    maxDiff = Math.max(maxDiff, Math.abs(g - r));
    maxRef = Math.max(maxRef, Math.abs(r));
  }
  return maxDiff / Math.max(maxRef, 1e-30);
}

async function run() {
  const s = demo.session;
  if (!s) return;
  $("run").disabled = true;
  setState("running", "running ...");
  try {
    const ref = await s.bundle.reference();
    const feeds = ref ? ref.inputs : nnjit.syntheticFeeds(s.plan.model);
    const runs = Math.max(1, Number($("repeat").value || 1));
    const times = [];
    let out;
    for (let r = 0; r < runs; r++) {
      const t0 = performance.now();
      out = await s.run(feeds);
      times.push(performance.now() - t0);
    }
    demo.outputs = out;
    demo.timings = s.timings;
    times.sort((a, b) => a - b);
    $("run-times").textContent = `${runs} runs: median ${times[times.length >> 1].toFixed(2)} ms, best ${times[0].toFixed(2)} ms`;
    drawChart(s.timings);
    if (ref) {
      const errs = Object.entries(ref.outputs).map(([name, r]) => [name, relativeError(out[name].data, r.data)]);
      const worst = Math.max(...errs.map(([, e]) => e));
      demo.check = { errors: Object.fromEntries(errs), worst, passed: worst <= 1e-4 };
      $("check").innerHTML = "";
      const p = document.createElement("span");
      p.className = demo.check.passed ? "pass" : "fail";
      p.textContent = `${demo.check.passed ? "passed" : "FAILED"}: max relative error ${worst.toExponential(2)} (tolerance 1e-4)`;
      $("check").append(p, ` over ${errs.map(([n, e]) => `${n}: ${e.toExponential(2)}`).join(", ")}`);
    }
    showInfo(s);
    setState("done", `ran on ${s.backend}${demo.check ? `; check ${demo.check.passed ? "passed" : "FAILED"}` : ""}`, demo.check && !demo.check.passed ? "error" : "ok");
  } catch (e) {
    fail(e);
  } finally {
    $("run").disabled = false;
  }
}

/** A horizontal bar chart of the time per kernel (sum over its steps), slowest first. */
function drawChart(timings) {
  const canvas = $("chart");
  const ctx = canvas.getContext("2d");
  const entries = Object.entries(timings.kernels ?? {}).sort((a, b) => b[1].ms - a[1].ms).slice(0, 40);
  const rowH = 16;
  canvas.height = Math.max(60, entries.length * rowH + 30);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.font = "11px system-ui, sans-serif";
  ctx.textBaseline = "middle";
  if (!entries.length) {
    ctx.fillStyle = "#666";
    ctx.fillText("no per-kernel timings", 10, 20);
    return;
  }
  const labelW = 150;
  const max = Math.max(...entries.map(([, v]) => v.ms), 1e-6);
  const w = canvas.width - labelW - 70;
  entries.forEach(([name, v], i) => {
    const y = 10 + i * rowH;
    ctx.fillStyle = "#333";
    ctx.fillText(name.length > 22 ? `${name.slice(0, 21)}…` : name, 4, y + rowH / 2);
    ctx.fillStyle = "#4a7fd4";
    ctx.fillRect(labelW, y + 2, Math.max(1, (v.ms / max) * w), rowH - 4);
    ctx.fillStyle = "#333";
    ctx.fillText(`${v.ms.toFixed(3)}`, labelW + Math.max(1, (v.ms / max) * w) + 4, y + rowH / 2);
  });
  ctx.fillStyle = "#666";
  ctx.fillText(`total ${entries.reduce((a, [, v]) => a + v.ms, 0).toFixed(2)} ms over ${timings.steps.length} steps (${timings.backend})`, labelW, canvas.height - 10);
}

/** The sentence-similarity view: embeds the textarea's lines, shows a table of cosine
 * similarities (a cell's shade: how similar). */
async function embedSentences() {
  const s = demo.session;
  if (!s) return;
  const texts = $("sentences").value.split("\n").map((t) => t.trim()).filter((t) => t);
  if (!texts.length) {
    $("embed-status").textContent = "type a sentence a line";
    return;
  }
  $("embed").disabled = true;
  setState("running", `embedding ${texts.length} sentences ...`);
  try {
    const { cosineSimilarities } = await import("./text.js");
    const t0 = performance.now();
    const emb = await s.embed(texts);
    const ms = performance.now() - t0;
    const sim = cosineSimilarities(emb);
    demo.embedding = { texts, similarity: sim, dims: emb.dims, ms, ids: Array.from((await s.encode(texts)).input_ids.data, Number) };
    $("embed-status").textContent = `${texts.length} sentences, ${emb.dims[1]} dimensions, ${ms.toFixed(1)} ms on ${s.backend}`;
    const head = document.createElement("tr");
    head.append(document.createElement("th"), ...texts.map((_, j) => Object.assign(document.createElement("th"), { textContent: `[${j}]` })));
    const rows = texts.map((t, i) => {
      const tr = document.createElement("tr");
      tr.append(Object.assign(document.createElement("th"), { textContent: `[${i}] ${t}`, title: t }));
      for (const v of sim[i]) {
        const td = document.createElement("td");
        td.textContent = v.toFixed(3);
        td.style.background = `rgba(74, 127, 212, ${Math.max(0, Math.min(1, v)) * 0.6})`;
        tr.append(td);
      }
      return tr;
    });
    $("similarity").replaceChildren(head, ...rows);
    setState("done", `embedded ${texts.length} sentences on ${s.backend}`, "ok");
  } catch (e) {
    fail(e);
  } finally {
    $("embed").disabled = false;
  }
}

const generation = new GenerationView({ demo, setState, fail }, params);
$("load").addEventListener("click", load);
$("embed").addEventListener("click", embedSentences);
$("run").addEventListener("click", run);
$("clear-cache").addEventListener("click", async () => {
  await nnjit.clearTuningCache();
  $("progress-text").textContent = "tuning cache cleared";
});

$("clear-weights").addEventListener("click", async () => {
  await nnjit.clearWeightsCache();
  $("weights-text").textContent = "weights cache cleared";
});

if (["autoload", "autorun", "autoembed", "autogenerate"].some((p) => params.get(p) === "1")) {
  load().then(async () => {
    if (params.get("autorun") === "1" && demo.session && !demo.session.plan.generation) await run();
    if (params.get("autoembed") === "1" && demo.session?.plan.tokenizer && !demo.session.plan.generation) await embedSentences();
    if (params.get("autogenerate") === "1" && demo.session?.plan.generation) await generation.generate();
  });
}
