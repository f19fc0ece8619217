// Variable-length bundles in the page: which shape variant serves an input, padding the inputs
// up to it, cutting the outputs back. The plan's "dynamic" table is written by `nnjit compile`
// (nnjit/frontend/dynamic.py); nnjit/runtime/variants.py does the same in Python.

import { InputError, Tensor, nestedDims, setOwn } from "./bundle.js";

const prod = (dims) => dims.reduce((a, b) => a * b, 1);

/** The plan of variant `index`, shaped like a fixed bundle's plan. */
export function variantPlan(plan, index) {
  const v = plan.dynamic.variants[index];
  return { ...plan, model: v.model, backends: v.backends };
}

/** {data (flat), dims, type} of a feed, or null when its dims cannot be known (a flat typed array). */
function flatFeed(feed) {
  let data, dims, type;
  if (feed instanceof Tensor || (feed && typeof feed === "object" && !Array.isArray(feed) && !ArrayBuffer.isView(feed) && "data" in feed)) {
    data = feed.data;
    dims = feed.dims !== undefined ? Array.from(feed.dims, Number) : undefined;
    type = feed.type;
  } else if (Array.isArray(feed)) {
    data = feed;
  } else {
    return null;
  }
  if (Array.isArray(data) && data.some(Array.isArray)) {
    if (dims === undefined) dims = nestedDims(data);
    data = data.flat(Infinity);
  }
  return dims === undefined ? null : { data, dims, type };
}

/** {index, sizes}: the cheapest variant that holds the feeds, and the feeds' size of each dynamic dim. */
export function pickVariant(plan, feeds) {
  if (feeds === null || typeof feeds !== "object") throw new InputError("feeds must be an object {inputName: tensor}");
  const dyn = plan.dynamic;
  const sizes = {};
  for (const [name, d] of Object.entries(dyn.dims)) {
    for (const [input, axis] of d.inputs) {
      if (!Object.hasOwn(feeds, input)) continue; // (prepareFeeds names a missing input)
      const f = flatFeed(feeds[input]);
      if (!f) throw new InputError(`input '${input}': give its dims (a Tensor or {data, dims}); the bundle takes inputs of several sizes`);
      const n = f.dims[axis];
      if (n === undefined) throw new InputError(`input '${input}' has ${f.dims.length} dims, the model takes more`);
      if (sizes[name] !== undefined && sizes[name] !== n) throw new InputError(`inputs disagree on dim '${name}': ${sizes[name]} and ${n} (input '${input}' axis ${axis}); inputs that share a dim need the same size`);
      sizes[name] = n;
    }
  }
  for (const [name, n] of Object.entries(sizes)) if (n < 1) throw new InputError(`dim '${name}' has size 0`);
  let best = -1;
  let cost = Infinity;
  dyn.variants.forEach((v, i) => {
    const fits = Object.entries(sizes).every(([n, s]) => v.bind[n] === s || (dyn.dims[n].pad && v.bind[n] > s));
    const c = prod(Object.values(v.bind));
    if (fits && c < cost) [best, cost] = [i, c];
  });
  if (best < 0) {
    for (const [name, n] of Object.entries(sizes)) {
      const have = [...new Set(dyn.variants.map((v) => v.bind[name]))].sort((a, b) => a - b);
      if (n > have.at(-1)) throw new InputError(`dim '${name}' is ${n}, over the largest the bundle was compiled for (${have.at(-1)}); recompile with --max-length / --max-batch, or cut the input`);
      if (!dyn.dims[name].pad && !have.includes(n)) throw new InputError(`dim '${name}' is ${n}; the bundle runs it at [${have.join(", ")}] only (the model has no attention mask on it, so a shorter input cannot be padded)`);
    }
    throw new InputError(`no compiled variant holds the input sizes ${JSON.stringify(sizes)}`);
  }
  return { index: best, sizes };
}

/** Copies the row-major block `src` (dims `from`) into the corner of `dst` (dims `to`) or, with
 * cut, the corner of `src` (dims `from`) into `dst` (dims `to`). */
function copyBlock(src, from, dst, to, cut) {
  const inner = cut ? to : from; // the dims walked
  const rank = inner.length;
  if (!rank) {
    dst[0] = src[0];
    return;
  }
  const rows = prod(inner.slice(0, -1));
  const last = inner[rank - 1];
  const idx = new Array(rank - 1).fill(0);
  for (let r = 0; r < rows; r++) {
    let a = 0, b = 0; // row starts in src and dst
    for (let k = 0; k < rank - 1; k++) {
      a = (a + idx[k]) * from[k + 1];
      b = (b + idx[k]) * to[k + 1];
    }
    for (let j = 0; j < last; j++) dst[b + j] = src[a + j];
    for (let k = rank - 2; k >= 0; k--) {
      if (++idx[k] < inner[k]) break;
      idx[k] = 0;
    }
  }
}

/** The feeds padded with zeros up to variant `index`'s shapes (a zero mask hides the padding). */
export function padFeeds(plan, index, feeds) {
  const shapes = Object.fromEntries(plan.dynamic.variants[index].model.inputs.map((i) => [i.name, i.shape]));
  const out = {};
  for (const [name, feed] of Object.entries(feeds)) {
    const want = shapes[name];
    const f = want ? flatFeed(feed) : null;
    if (!f || f.dims.length !== want.length || f.dims.every((d, i) => d === want[i]) || f.dims.some((d, i) => d > want[i]) || f.data.length !== prod(f.dims)) {
      setOwn(out, name, feed); // (prepareFeeds names what is wrong)
      continue;
    }
    const C = Array.isArray(f.data) ? Array : f.data.constructor;
    const data = new C(prod(want));
    data.fill(typeof f.data[0] === "bigint" ? 0n : 0);
    copyBlock(f.data, f.dims, data, want, false);
    setOwn(out, name, { data, dims: want, type: f.type });
  }
  return out;
}

/** Outputs cut back along the axes that follow a dynamic dim to the inputs' sizes. */
export function cutOutputs(plan, sizes, outputs) {
  const axesOf = plan.dynamic.outputs ?? {};
  const res = {};
  for (const [name, t] of Object.entries(outputs)) {
    const dims = [...t.dims];
    for (const [axis, dim] of axesOf[name] ?? []) if (sizes[dim] !== undefined && axis < dims.length) dims[axis] = sizes[dim];
    if (dims.every((d, i) => d === t.dims[i])) {
      setOwn(res, name, t);
      continue;
    }
    const data = new t.data.constructor(prod(dims));
    copyBlock(t.data, t.dims, data, dims, true);
    setOwn(res, name, new Tensor(t.type, data, dims));
  }
  return res;
}

/** Every weight key any variant's `backend` plan reads (the backends upload them once). */
export function weightKeys(plan, backend) {
  const plans = plan.dynamic ? plan.dynamic.variants.map((v) => v.backends[backend]) : [plan.backends[backend]];
  const keys = new Map();
  for (const p of plans) for (const b of p?.buffers ?? []) if (b.kind === "weight" && !keys.has(b.key)) keys.set(b.key, b.bytes);
  return keys;
}

/** The largest activation arena of any variant's Wasm plan. */
export function maxArenaBytes(plan) {
  const plans = plan.dynamic ? plan.dynamic.variants.map((v) => v.backends.wasm) : [plan.backends.wasm];
  return Math.max(...plans.map((p) => p?.arena_bytes ?? 0));
}
