// One benchmark worker (a module worker): instantiates Wasm modules on the shared memory, then
// serves kernel runs the main thread starts through a control block (Int32Array on a
// SharedArrayBuffer): it waits for GEN to change (polling briefly, then Atomics.wait), runs
// its share `run(tid, nthreads, ...args)` of kernel KERNEL, counts itself in DONE (the last
// one notifies the main thread).
// Workers with tid >= NTHREADS skip the kernel but still count themselves.
const GEN = 0, KERNEL = 1, NTHREADS = 2, NARGS = 3, DONE = 4, STOP = 5, NWORKERS = 6, ARGS = 16;

let memory = null, ctl = null, tid = 0;
let fns = [];

// After a run a worker polls GEN for SPIN_MS before it blocks in Atomics.wait, as thread pools
// do between the kernels of a model (a futex wake-up costs tens to hundreds of microseconds).
const SPIN_MS = 2;

function serve() {
  let seen = Atomics.load(ctl, GEN);
  for (;;) {
    const t0 = performance.now();
    while (Atomics.load(ctl, GEN) === seen && performance.now() - t0 < SPIN_MS) {}
    Atomics.wait(ctl, GEN, seen);
    const g = Atomics.load(ctl, GEN);
    if (g === seen) continue;
    seen = g;
    if (Atomics.load(ctl, STOP)) break;
    const n = ctl[NTHREADS];
    if (tid < n) {
      const fn = fns[ctl[KERNEL]];
      const nargs = ctl[NARGS];
      // up to 8 buffer arguments (nnjit kernels of single matmuls take 3-4)
      fn(tid, n, ctl[ARGS], ctl[ARGS + 1], ctl[ARGS + 2], ctl[ARGS + 3],
         ctl[ARGS + 4], ctl[ARGS + 5], ctl[ARGS + 6], ctl[ARGS + 7], nargs);
    }
    if (Atomics.add(ctl, DONE, 1) === ctl[NWORKERS] - 1) Atomics.notify(ctl, DONE);
  }
  postMessage({ type: "stopped" });
}

onmessage = async (ev) => {
  const m = ev.data;
  try {
    if (m.type === "init") {
      memory = m.memory;
      ctl = new Int32Array(m.control);
      tid = m.tid;
    } else if (m.type === "load") {
      fns = [];
      for (const module of m.modules) {
        const instance = await WebAssembly.instantiate(module, { env: { memory } });
        fns.push(instance.exports.run);
      }
    } else if (m.type === "serve") {
      postMessage({ type: "ok" });
      serve();
      return;
    }
    postMessage({ type: "ok" });
  } catch (e) {
    postMessage({ type: "error", error: `worker ${tid}: ${e.message}` });
  }
};
