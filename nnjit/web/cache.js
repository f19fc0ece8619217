// A bundle's weights file kept in the browser's Cache Storage, and fetched with progress.
//
// Takes: the file's URL, its SHA-256 from plan.json and its size (where its entries' ends say
// it), a function that fetches it (bundle.js: an ok Response, or a BundleError) and one that
// checks fetched bytes against the hash. Gives: the file's bytes, from the cache when an entry
// for that hash is there, else from the network, streamed (progress events along the way),
// checked, then stored in the cache "nnjit-weights-v1" under `URL?nnjit-sha256=HASH`, in parts
// of at most 64 MiB (Chromium stores no entry over about 256 MiB; BERT-base's file is 774 MB):
// part 0 under that key, with the count in its `x-nnjit-parts` header, part i under
// `...&nnjit-part=i`. A new entry replaces the file's older ones (a recompiled bundle gets a new
// key, and its old bytes go). A cached entry is read without hashing it again: it was checked
// before it was stored, it is addressed by its hash, and Cache Storage is the origin's own
// (docs/browser.md). Cache Storage missing (not a secure context) or failing (quota) is a
// warning, never an error: the bytes then come from the network as without the cache.

export const WEIGHTS_CACHE = "nnjit-weights-v1";
export const PART_BYTES = 64 << 20;
const MAX_PARTS = 100000;

/** Deletes every file nnjit keeps in Cache Storage; resolves to whether there was any. */
export async function clearWeightsCache() {
  if (!globalThis.caches) return false;
  return caches.delete(WEIGHTS_CACHE);
}

/** The cache key of part `part` of the file at `url` with content hash `sha`. */
export function cacheKey(url, sha, part = 0) {
  const u = new URL(url);
  u.searchParams.set("nnjit-sha256", sha);
  if (part > 0) u.searchParams.set("nnjit-part", String(part));
  return u.href;
}

/**
 * The bytes (ArrayBuffer) of a bundle file, from the cache or the network.
 *
 * opts: {
 *   url, sha, name     the file, its SHA-256 (hex) and its name in messages
 *   size               its length in bytes where the plan says it (else undefined)
 *   fetchOk(init)      fetches it: an ok Response, or throws
 *   check(bytes)       checks fetched bytes: true if they match `sha` (storable); throws or
 *                      returns false otherwise
 *   fail(message)      the error to throw for a file of the wrong size
 *   cache              false, or true / {partBytes}: use Cache Storage
 *   onProgress(ev)     {loaded, total, cached} (total: undefined when unknown)
 *   warn(message)
 * }
 * Resolves to {bytes, cached, stored}: `stored` a promise that settles (never rejects) when the
 * fetched bytes are in the cache.
 */
export async function cachedFile(opts) {
  const { url, sha, name, size, fetchOk, check, fail, onProgress, warn } = opts;
  const store = opts.cache ? await openStore(warn, name) : null;
  if (store) {
    try {
      const bytes = await readCached(store, url, sha, new Sink(size, (l, t) => onProgress?.({ loaded: l, total: t, cached: true }), fail));
      if (bytes) return { bytes, cached: true, stored: Promise.resolve() };
    } catch (e) {
      warn(`${name}: the cached copy is damaged (${e.message}); fetched again`);
      await store.delete(url, { ignoreSearch: true }).catch(() => {});
    }
  }
  // (no copy in the HTTP cache as well when Cache Storage keeps the file)
  const res = await fetchOk({ cache: store ? "no-store" : "no-cache" });
  const sink = new Sink(size, (l, t) => onProgress?.({ loaded: l, total: t, cached: false }), fail);
  await sink.read(res, true);
  const bytes = sink.done();
  const storable = await check(bytes);
  let stored = Promise.resolve();
  if (store && !storable) {
    warn(`${name}: not kept in Cache Storage (its SHA-256 does not match plan.json)`);
  } else if (store) {
    const partBytes = Math.max(1, Math.floor(opts.cache.partBytes ?? PART_BYTES));
    stored = put(store, url, sha, bytes, partBytes).catch((e) => {
      warn(`${name}: not kept in Cache Storage (${e.name}: ${e.message}); the next load downloads it again`);
      return store.delete(url, { ignoreSearch: true }).catch(() => {});
    });
  }
  return { bytes, cached: false, stored };
}

async function openStore(warn, name) {
  if (!globalThis.caches) {
    warn(`${name}: not cached: Cache Storage is not available (not a secure context)`);
    return null;
  }
  try {
    return await caches.open(WEIGHTS_CACHE);
  } catch (e) {
    warn(`${name}: not cached: Cache Storage cannot be opened (${e.name}: ${e.message})`);
    return null;
  }
}

/** The cached bytes, or null if there is no entry; throws if the entry is damaged. */
async function readCached(store, url, sha, sink) {
  const first = await store.match(cacheKey(url, sha));
  if (!first) return null;
  const parts = Number(first.headers.get("x-nnjit-parts") ?? "1");
  if (!Number.isInteger(parts) || parts < 1 || parts > MAX_PARTS) throw new Error(`its part count is ${JSON.stringify(first.headers.get("x-nnjit-parts"))}`);
  await sink.read(first);
  for (let i = 1; i < parts; i++) {
    const res = await store.match(cacheKey(url, sha, i));
    if (!res) throw new Error(`part ${i} of ${parts} is missing`);
    await sink.read(res);
  }
  return sink.done();
}

/** Stores the bytes in parts, part 0 (which names the count) last: a reader that finds it
 * finds the others. */
async function put(store, url, sha, bytes, partBytes) {
  await store.delete(url, { ignoreSearch: true }); // the file's older entries (other hashes)
  const parts = Math.max(1, Math.ceil(bytes.byteLength / partBytes));
  for (let i = parts - 1; i >= 0; i--) {
    const view = new Uint8Array(bytes, i * partBytes, Math.min(partBytes, bytes.byteLength - i * partBytes));
    const headers = { "content-type": "application/octet-stream", "content-length": String(view.byteLength), "x-nnjit-parts": String(parts) };
    await store.put(cacheKey(url, sha, i), new Response(view, { headers }));
  }
}

const PROGRESS_STEPS = 100; // events per file at most (and the first and last)

/** Response bodies streamed into one buffer: `size` bytes exactly where given (more is
 * refused as soon as it arrives), with progress(loaded, total) along the way. */
class Sink {
  constructor(size, progress, fail) {
    this.size = size;
    this.progress = progress;
    this.fail = fail;
    this.out = size !== undefined ? new Uint8Array(size) : null;
    this.chunks = [];
    this.loaded = 0;
    this.total = size;
    this.told = -1;
    this.next = 0;
  }

  _tell() {
    this.progress((this.told = this.loaded), this.total);
    this.next = this.loaded + (this.total ? Math.max(1, Math.floor(this.total / PROGRESS_STEPS)) : Infinity);
  }

  _add(chunk) {
    if (this.size !== undefined) {
      if (this.loaded + chunk.byteLength > this.size) throw this.fail(`larger than the ${this.size} bytes its plan announces`);
      this.out.set(chunk, this.loaded);
    } else {
      this.chunks.push(chunk);
    }
    this.loaded += chunk.byteLength;
    if (this.loaded >= this.next) this._tell();
  }

  /** Reads a response's body: the whole file (`whole`: its Content-Length is the file's), or
   * the next part of it. */
  async read(res, whole = false) {
    if (this.told < 0) {
      const encoded = res.headers.get("content-encoding");
      const length = whole && res.headers.has("content-length") && !encoded ? Number(res.headers.get("content-length")) : NaN;
      if (this.size !== undefined && length > this.size) throw this.fail(`${length} bytes, larger than the ${this.size} its plan announces`);
      this.total ??= Number.isFinite(length) ? length : undefined;
      this._tell();
    }
    if (!res.body?.getReader) {
      this._add(new Uint8Array(await res.arrayBuffer()));
    } else {
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        try {
          this._add(value);
        } catch (e) {
          await reader.cancel().catch(() => {});
          throw e;
        }
      }
    }
  }

  /** The file (an ArrayBuffer), once every body is read. */
  done() {
    if (this.size !== undefined && this.loaded !== this.size) throw this.fail(`${this.loaded} bytes, but the plan's weights end at byte ${this.size}`);
    let out = this.out;
    if (out === null) {
      out = new Uint8Array(this.loaded);
      let at = 0;
      for (const c of this.chunks) {
        out.set(c, at);
        at += c.byteLength;
      }
      this.total ??= this.loaded;
    }
    if (this.told !== this.loaded || this.total === undefined) this._tell();
    return out.buffer;
  }
}
