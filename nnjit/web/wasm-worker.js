// A Wasm worker thread (a module worker): instantiates kernel modules on the shared memory and
// runs its chunk of each kernel the main thread starts (see wasm.js for the control block).
// After each chunk it polls the control block for half a millisecond (the next kernel of a run
// starts sooner than a wake-up would take), then waits with Atomics.waitAsync, so its event
// loop stays free for new kernels (tuning compiles candidates while the workers are running);
// without waitAsync it waits in short blocking slices and yields to the event loop between them.

const GEN = 0, KERNEL = 1, NTHREADS = 2, NARGS = 3, COMPLETED = 4, ERROR = 5, STOP = 6, ARGS = 16;
const CLAIM = 7; // BigUint64Array index: generation << 32 | next chunk (see wasm.js)
const ERRTEXT = 64 * 4;

let memory = null;
let control = null;
let ctl = null;
let claim = null;
let tid = 0;
const kernels = new Map(); // id -> exported run function

const macrotask = () => new Promise((r) => setTimeout(r, 0));

async function waitChange(seen) {
  if (typeof Atomics.waitAsync === "function") {
    const r = Atomics.waitAsync(ctl, GEN, seen);
    if (r.async) await r.value;
    return;
  }
  while (Atomics.load(ctl, GEN) === seen) {
    if (Atomics.wait(ctl, GEN, seen, 20) === "timed-out") await macrotask();
  }
}

// Claims chunks of generation `gen`'s kernel until none is left. The kernel and its arguments
// are read before claiming: a claim only succeeds while the counter still holds `gen`, and the
// main thread writes the next kernel only after every chunk of this one is completed, so what
// was read belongs to the claimed chunk.
function runChunks(gen) {
  const n = ctl[NTHREADS];
  const fn = kernels.get(ctl[KERNEL]);
  if (!fn) return; // not instantiated here (yet): the other threads take every chunk
  const nargs = ctl[NARGS];
  const args = new Array(nargs);
  for (let i = 0; i < nargs; i++) args[i] = ctl[ARGS + i];
  const base = BigInt(gen) << 32n;
  for (;;) {
    const cur = Atomics.load(claim, CLAIM);
    const c = cur - base;
    if (c < 0n || c >= BigInt(n)) return; // another generation, or no chunk left
    if (Atomics.compareExchange(claim, CLAIM, cur, cur + 1n) !== cur) continue;
    runChunk(fn, Number(c), n, args);
    Atomics.add(ctl, COMPLETED, 1);
  }
}

function runChunk(fn, c, n, args) {
  try {
    fn(c, n, ...args);
  } catch (e) {
    if (Atomics.compareExchange(ctl, ERROR, 0, 1) === 0) {
      const text = new TextEncoder().encode(`thread ${tid}, chunk ${c} of ${n}: ${e.message}`);
      const dst = new Uint8Array(control, ERRTEXT, 1024);
      dst.fill(0);
      dst.set(text.subarray(0, 1023));
    }
  }
}

// After a chunk the next kernel of the same run usually starts within microseconds: poll for
// it this long before parking in waitAsync, whose wake-up costs tens of microseconds.
const SPIN_MS = 0.5;

function spinChange(seen) {
  const until = performance.now() + SPIN_MS;
  do {
    for (let i = 0; i < 64; i++) if (Atomics.load(ctl, GEN) !== seen) return true;
  } while (performance.now() < until);
  return false;
}

async function loop(seen) {
  for (;;) {
    if (!spinChange(seen)) await waitChange(seen);
    const gen = Atomics.load(ctl, GEN);
    if (gen === seen) continue;
    seen = gen;
    if (Atomics.load(ctl, STOP)) return;
    runChunks(gen >>> 0);
  }
}

self.onmessage = async (ev) => {
  const msg = ev.data;
  try {
    if (msg.type === "init") {
      memory = msg.memory;
      control = msg.control;
      ctl = new Int32Array(control);
      claim = new BigUint64Array(control, 0, 8);
      tid = msg.tid;
      loop(Atomics.load(ctl, GEN));
    } else if (msg.type === "kernel") {
      const instance = await WebAssembly.instantiate(msg.module, { env: { memory } });
      const fn = instance.exports[msg.export];
      if (typeof fn !== "function") throw new Error(`kernel ${msg.name} has no export '${msg.export}'`);
      kernels.set(msg.id, fn);
    }
    self.postMessage({ id: msg.id });
  } catch (e) {
    self.postMessage({ id: msg.id, error: `Wasm worker ${tid}: ${e.message}` });
  }
};
