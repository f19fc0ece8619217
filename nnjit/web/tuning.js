// On-device tuning: a plan kernel may carry "candidates": [{file, manifest, options}] (the
// default first). Tuning times the candidates each backend can run and keeps the fastest.
//
// It happens during one "tuning run" of the model on synthetic inputs, step by step: when a
// step's kernel has candidates left to decide, each candidate is timed right there, on that
// step's real buffers holding the values a real run would give them, and the winner is run to
// leave its result for the next steps. Decisions are kept in IndexedDB under
//   key = SHA-256(device fingerprint) + ":" + SHA-256(kernel content)
// (FNV-1a instead of SHA-256 on a page that is not a secure context: no crypto.subtle there)
// where the fingerprint names the adapter (or the CPU and thread count) and the browser, and
// the kernel content is every candidate's file hash, manifest (less its name) and options. A record carries
// its format, version, candidate count and the chosen candidate's own hash: one that does not
// check out (corrupt or stale) is ignored and overwritten by a fresh decision.

import { candidateOrder, candidatesOf, contentHash } from "./bundle.js";

const DB_NAME = "nnjit-tuning";
const STORE = "choices";
export const RECORD_FORMAT = "nnjit-tuning";
export const RECORD_VERSION = 1;

function req2promise(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** The IndexedDB store of tuning decisions. `open()` resolves to null where IndexedDB is not
 * available (then nothing is cached). */
export class TuningCache {
  static async open(name = DB_NAME) {
    if (!globalThis.indexedDB) return null;
    try {
      const req = indexedDB.open(name, 1);
      req.onupgradeneeded = () => {
        if (!req.result.objectStoreNames.contains(STORE)) req.result.createObjectStore(STORE);
      };
      return new TuningCache(await req2promise(req));
    } catch {
      return null;
    }
  }

  constructor(db) {
    this.db = db;
  }

  _store(mode) {
    return this.db.transaction(STORE, mode).objectStore(STORE);
  }

  get(key) {
    return req2promise(this._store("readonly").get(key));
  }

  put(key, value) {
    const tx = this.db.transaction(STORE, "readwrite");
    tx.objectStore(STORE).put(value, key);
    return new Promise((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  }

  keys() {
    return req2promise(this._store("readonly").getAllKeys());
  }

  async entries() {
    const keys = await this.keys();
    const values = await req2promise(this._store("readonly").getAll());
    return keys.map((k, i) => [k, values[i]]);
  }

  clear() {
    return req2promise(this._store("readwrite").clear());
  }

  close() {
    this.db.close();
  }
}

/** Deletes every stored tuning decision (of this origin). */
export async function clearTuningCache() {
  const c = await TuningCache.open();
  if (c) {
    await c.clear();
    c.close();
  }
}

/** Content hashes of a kernel: one per candidate, and one of the whole list. */
export async function kernelHashes(bundle, kernel) {
  const cands = candidatesOf(kernel);
  const files = bundle.plan.files ?? {};
  const each = [];
  for (const c of cands) {
    const fileHash = files[c.file] ?? (await contentHash(await bundle.file(c.file)));
    const { name: _name, ...manifest } = c.manifest; // the same kernel under another name is the same
    each.push(await contentHash(JSON.stringify([fileHash, manifest, c.options ?? {}])));
  }
  return { candidates: each, kernel: await contentHash(JSON.stringify(each)) };
}

/** Why a stored record cannot be used, or null when it is a valid decision for this kernel. */
export function checkRecord(rec, key, candHashes) {
  if (rec === null || typeof rec !== "object" || Array.isArray(rec)) return "not a record";
  if (rec.format !== RECORD_FORMAT) return "wrong format";
  if (rec.version !== RECORD_VERSION) return `version ${rec.version}, not ${RECORD_VERSION}`;
  if (rec.key !== key) return "key does not match";
  if (rec.count !== candHashes.length) return `made for ${rec.count} candidates, the kernel has ${candHashes.length}`;
  if (!Number.isInteger(rec.choice) || rec.choice < 0 || rec.choice >= candHashes.length) return `choice ${rec.choice} out of range`;
  if (rec.candidate !== candHashes[rec.choice]) return "the chosen candidate's hash does not match (stale)";
  return null;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[s.length >> 1] : Infinity;
};

/**
 * Tunes the kernels of `backend` (already compiled with their default candidates and in use)
 * during one step-by-step run on the inputs already written to it.
 *
 * options: {budgetMs = 30000, cache = true, resume = false, onProgress(event), samples = 5,
 * minMs = 2, compileAhead = true}
 * The budget bounds the tuning: no kernel or candidate starts once it is spent, a candidate
 * whose timing would run past it (as long as the slowest one timed so far) is not started,
 * and a candidate being timed stops sampling at the deadline. Kernels the budget cut short
 * keep the best candidate timed (their default if none) and are stored as partial records:
 * a later load uses them and tunes nothing, unless `resume` asks to tune those again.
 * onProgress gets {phase: "start"|"cached"|"kernel"|"candidate"|"shared"|"skip"|"done", kernel,
 * index, total, candidate, ms, choice, elapsedMs}.
 * Resolves to a report: kernel names that were tuned (timed), cached (decision from the
 * store; cachedPartial: those of them from partial records), shared (same content as a
 * kernel tuned earlier in this run), outOfBudget (kept their default), cutShort (timed, but
 * not every candidate within the budget); ignored store records and skipped / failed candidates with reasons;
 * choices {kernel: candidate index}; times {kernel: [ms per candidate or null]}; elapsedMs.
 */
export async function tune(bundle, backend, options = {}) {
  const budgetMs = options.budgetMs ?? 30000;
  const onProgress = options.onProgress ?? (() => {});
  const plan = backend.plan;
  const t0 = performance.now();
  const elapsed = () => performance.now() - t0;
  const report = {
    tuned: [], cached: [], cachedPartial: [], shared: [], ignored: [], skipped: [], failed: [],
    outOfBudget: [], cutShort: [], choices: {}, times: {}, elapsedMs: 0, cache: false,
  };
  const deadline = t0 + budgetMs;
  let slowestMs = 0; // the longest wall time one candidate's timing took in this run
  const cls = backend.deviceClass ?? null;
  const names = Object.keys(plan.kernels).filter((n) => candidateOrder(plan.kernels[n], cls).length > 1);
  const total = names.length;
  let cache = null;
  if (options.cache !== false && total) cache = await TuningCache.open();
  report.cache = cache !== null;
  const fingerprint = await contentHash(backend.fingerprint());
  onProgress({ phase: "start", total, elapsedMs: elapsed() });

  const pending = new Map(); // kernel name -> {key, hashes}
  let index = 0;
  for (const name of names) {
    const hashes = await kernelHashes(bundle, plan.kernels[name]);
    const key = `${fingerprint}:${hashes.kernel}`;
    if (cache) {
      let rec;
      try {
        rec = await cache.get(key);
      } catch {
        rec = undefined;
      }
      if (rec !== undefined && !(rec?.partial && options.resume)) {
        const why = checkRecord(rec, key, hashes.candidates);
        const cand = why === null ? candidatesOf(plan.kernels[name])[rec.choice] : null;
        if (why === null && backend.unsupported(cand) === null) {
          try {
            if (backend.kernels.get(name)?.index !== rec.choice) backend.use(name, await backend.compile(name, cand, rec.choice));
            report.cached.push(name);
            if (rec.partial) report.cachedPartial.push(name);
            report.choices[name] = rec.choice;
            onProgress({ phase: "cached", kernel: name, index: ++index, total, choice: rec.choice, elapsedMs: elapsed() });
            continue;
          } catch (e) {
            report.ignored.push({ kernel: name, reason: `cached candidate failed: ${e.message}` });
          }
        } else {
          report.ignored.push({ kernel: name, reason: why ?? "cached candidate not supported here" });
        }
      }
    }
    pending.set(name, { key, hashes });
  }

  // the tuning run: every step in order; kernels still undecided are timed at their first step,
  // and a kernel with the same content as one decided earlier in the run takes its decision
  const decided = new Map(); // kernel content hash -> chosen candidate index
  const steps = pending.size ? plan.steps.length : 0; // all decided (cache): no run needed
  // compile every candidate still to be timed up front: pipelines and modules compile
  // concurrently (identical code once) while the run goes on
  const ahead = new Map(); // `${name}/${c}` -> Promise<compiled | {error}>
  if (options.compileAhead !== false) {
    for (const [name] of pending) {
      const cands = candidatesOf(plan.kernels[name]);
      for (const c of candidateOrder(plan.kernels[name], cls)) {
        if (backend.kernels.get(name)?.index === c || backend.unsupported(cands[c])) continue;
        ahead.set(`${name}/${c}`, backend.compile(name, cands[c], c).catch((error) => ({ error })));
      }
    }
  }
  const store = async (p, name, count, choice, times, partial) => {
    if (!cache) return;
    const rec = { format: RECORD_FORMAT, version: RECORD_VERSION, key: p.key, backend: backend.name, kernel: name, count, choice, candidate: p.hashes.candidates[choice], timesMs: times, partial, created: Date.now() };
    try {
      await cache.put(p.key, rec);
    } catch {
      /* a full or blocked store only costs a retune next time */
    }
  };
  const compileCandidate = async (name, cand, c) => {
    const p = ahead.get(`${name}/${c}`);
    if (p === undefined) return backend.compile(name, cand, c);
    const r = await p;
    if (r.error) throw r.error;
    return r;
  };
  for (let i = 0; i < steps; i++) {
    const name = plan.steps[i].kernel;
    const p = pending.get(name);
    if (p !== undefined) {
      pending.delete(name);
      const cands = candidatesOf(plan.kernels[name]);
      const same = decided.get(p.hashes.kernel);
      let sharedOk = false;
      if (same !== undefined) {
        try {
          if (backend.kernels.get(name)?.index !== same) backend.use(name, await compileCandidate(name, cands[same], same));
          report.shared.push(name);
          report.choices[name] = same;
          onProgress({ phase: "shared", kernel: name, index: ++index, total, choice: same, elapsedMs: elapsed() });
          sharedOk = true;
        } catch (e) {
          if (e.code === "device-lost") throw e;
          report.failed.push({ kernel: name, candidate: same, reason: e.message });
        }
      }
      if (sharedOk) {
        // decided like its twin
      } else if (elapsed() >= budgetMs) {
        const inUse = backend.kernels.get(name)?.index ?? 0;
        report.outOfBudget.push(name);
        report.choices[name] = inUse;
        await store(p, name, cands.length, inUse, cands.map(() => null), true);
        onProgress({ phase: "skip", kernel: name, index: ++index, total, reason: "budget", elapsedMs: elapsed() });
      } else {
        onProgress({ phase: "kernel", kernel: name, index: index + 1, total, candidates: cands.length, elapsedMs: elapsed() });
        // times[c] for candidate c (null: not timed); tried in this device class's order
        const times = cands.map(() => null);
        let best = -1;
        let bestMs = Infinity;
        let bestCompiled = null;
        let cut = false;
        const order = candidateOrder(plan.kernels[name], cls);
        for (const [n, c] of order.entries()) {
          if (n > 0 && elapsed() + slowestMs > budgetMs) {
            cut = true;
            continue;
          }
          const why = backend.unsupported(cands[c]);
          if (why) {
            report.skipped.push({ kernel: name, candidate: c, reason: why });
            continue;
          }
          try {
            const inUse = backend.kernels.get(name);
            const compiled = inUse?.index === c ? inUse : await compileCandidate(name, cands[c], c);
            const c0 = performance.now();
            const ms = median(await backend.timeStep(i, compiled, { samples: options.samples ?? 5, minMs: options.minMs ?? 2, deadline }));
            slowestMs = Math.max(slowestMs, performance.now() - c0);
            times[c] = ms;
            onProgress({ phase: "candidate", kernel: name, index: index + 1, total, candidate: c, ms, elapsedMs: elapsed() });
            if (ms < bestMs) {
              best = c;
              bestMs = ms;
              bestCompiled = compiled;
            }
          } catch (e) {
            if (e.code === "device-lost") throw e;
            report.failed.push({ kernel: name, candidate: c, reason: e.message });
          }
        }
        index++;
        report.times[name] = times;
        if (best >= 0) {
          backend.use(name, bestCompiled);
          report.choices[name] = best;
          report.tuned.push(name);
          decided.set(p.hashes.kernel, best);
          if (cut) report.cutShort.push(name);
          // failed candidates make no record (the next load retries them); the budget makes a partial one
          const failed = report.failed.some((f) => f.kernel === name);
          if (!failed) await store(p, name, cands.length, best, times, cut);
        } else {
          report.choices[name] = backend.kernels.get(name)?.index ?? 0;
        }
      }
    }
    await backend.runStep(i);
  }
  // candidates compiled ahead but never timed (budget) finish in the background, errors caught
  cache?.close();
  report.elapsedMs = elapsed();
  onProgress({ phase: "done", total, elapsedMs: report.elapsedMs, report });
  return report;
}
