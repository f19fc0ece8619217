// nnjit's Node (V8) measuring harness: runs nnjit Wasm kernels the way a browser does, on
// worker_threads sharing one WebAssembly.Memory, and times them.
//
//   node --experimental-wasm-relaxed-simd node_harness.js
//
// Reads one JSON request per line on stdin, writes one JSON reply per line on stdout:
//   {"cmd":"setup","threads":T}   -> {"ok":true,"node":..,"v8":..,"relaxed_simd":bool,"threads":T}
//   {"cmd":"job","params":[{"bytes","access","dtype"}],"inputs":[file|null per param]}
//       allocates the kernel's buffers in the shared memory and loads the input files (raw
//       little-endian bytes) -> {"ok":true}
//   {"cmd":"measure","wasm":file,"min_runs":n,"max_runs":n,"min_time":s,"output":file,
//    "cutoff"?:s,"max_time"?:s}
//       compiles and instantiates the kernel on every thread, poisons the output (NaN /
//       0x7fffffff), runs once and writes the output bytes to `output`, then times runs ->
//       {"ok":true,"times":[s..],"median":s,"compile_s":s,"checksum":sum of the output}
// Errors: {"ok":false,"kind":"rejected"|"error","message":..} (rejected: V8 refused the module).
//
// Kernel ABI (nnjit/passes/convert_nn_loop_to_wasm.py): imports env.memory (shared), exports
// run(tid, nthreads, b0, b1, ...) with byte offsets; thread t of n runs chunk t.
'use strict';
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');

// control block (Int32Array over a SharedArrayBuffer):
// [0] generation, [1] command (1 run, 2 leave the run loop), [2] done count, [3] nthreads,
// [4..] kernel arguments
const CTRL_WORDS = 4 + 64;

if (!isMainThread) {
  const ctrl = new Int32Array(workerData.ctrl);
  const tid = workerData.tid;
  let run = null;
  let gen = 0;
  parentPort.on('message', (m) => {
    if (m.type === 'load') {
      try {
        const inst = new WebAssembly.Instance(m.module, { env: { memory: m.memory } });
        run = inst.exports[m.export || 'run'];
        gen = Atomics.load(ctrl, 0);
        parentPort.postMessage({ ok: true });
      } catch (e) {
        parentPort.postMessage({ ok: false, message: String(e) });
        return;
      }
      loop();
    }
  });
  function loop() {
    for (;;) {
      Atomics.wait(ctrl, 0, gen);
      gen = Atomics.load(ctrl, 0);
      const cmd = Atomics.load(ctrl, 1);
      if (cmd === 2) {
        Atomics.add(ctrl, 2, 1);
        Atomics.notify(ctrl, 2);
        return;
      }
      const n = Atomics.load(ctrl, 3);
      if (tid < n) {
        const nargs = Atomics.load(ctrl, 4);
        const args = [];
        for (let i = 0; i < nargs; i++) args.push(Atomics.load(ctrl, 5 + i));
        run(tid, n, ...args);
      }
      Atomics.add(ctrl, 2, 1);
      Atomics.notify(ctrl, 2);
    }
  }
} else {
  const fs = require('fs');
  const readline = require('readline');
  const PAGE = 65536;
  const ctrlBuf = new SharedArrayBuffer(4 * CTRL_WORDS);
  const ctrl = new Int32Array(ctrlBuf);
  let memory = new WebAssembly.Memory({ initial: 1, maximum: 65536, shared: true });
  let workers = [];
  let inLoop = false;
  let threads = 1;
  let params = [];
  let offsets = [];

  function relaxedAvailable() {
    // (module (func (param v128 v128 v128) (result v128) local.get 0 local.get 1 local.get 2
    //  f32x4.relaxed_madd) (export "f" (func 0)))
    const bytes = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 8, 1, 96, 3, 123, 123, 123, 1,
      123, 3, 2, 1, 0, 7, 5, 1, 1, 102, 0, 0, 10, 13, 1, 11, 0, 32, 0, 32, 1, 32, 2, 253, 133, 2,
      11]);
    try { return WebAssembly.validate(bytes); } catch (e) { return false; }
  }

  function waitDone(count) {
    for (;;) {
      const d = Atomics.load(ctrl, 2);
      if (d >= count) return;
      Atomics.wait(ctrl, 2, d, 1000);
    }
  }

  function leaveLoop() {
    if (!inLoop || workers.length === 0) return;
    Atomics.store(ctrl, 2, 0);
    Atomics.store(ctrl, 1, 2);
    Atomics.add(ctrl, 0, 1);
    Atomics.notify(ctrl, 0);
    waitDone(workers.length);
    inLoop = false;
  }

  async function load(module, exportName) {
    leaveLoop();
    const acks = workers.map((w) => new Promise((res) => w.once('message', res)));
    for (const w of workers) w.postMessage({ type: 'load', module, memory, export: exportName });
    const replies = await Promise.all(acks);
    for (const r of replies) if (!r.ok) throw new Error(r.message);
    if (workers.length) inLoop = true;
  }

  function runAll(mainRun, n, args) {
    Atomics.store(ctrl, 2, 0);
    Atomics.store(ctrl, 1, 1);
    Atomics.store(ctrl, 3, n);
    Atomics.store(ctrl, 4, args.length);
    for (let i = 0; i < args.length; i++) Atomics.store(ctrl, 5 + i, args[i]);
    if (workers.length) {
      Atomics.add(ctrl, 0, 1);
      Atomics.notify(ctrl, 0);
    }
    mainRun(0, n, ...args);
    if (workers.length) waitDone(workers.length);
  }

  async function setup(req) {
    threads = Math.max(1, req.threads | 0);
    for (let t = 1; t < threads; t++) {
      workers.push(new Worker(__filename, { workerData: { ctrl: ctrlBuf, tid: t } }));
    }
    return { ok: true, node: process.version, v8: process.versions.v8,
             relaxed_simd: relaxedAvailable(), threads };
  }

  function job(req) {
    params = req.params;
    let top = 64;
    offsets = params.map((p) => { const off = top; top += Math.ceil(Math.max(16, p.bytes) / 64) * 64; return off; });
    const have = memory.buffer.byteLength;
    if (top > have) memory.grow(Math.ceil((top - have) / PAGE));
    const bytes = new Uint8Array(memory.buffer);
    req.inputs.forEach((file, i) => {
      if (file) bytes.set(fs.readFileSync(file), offsets[i]);
    });
    return { ok: true };
  }

  function poison(i) {
    const p = params[i];
    const n = p.bytes / 4;
    if (p.dtype === 'i32') new Int32Array(memory.buffer, offsets[i], n).fill(0x7fffffff);
    else new Float32Array(memory.buffer, offsets[i], n).fill(NaN);
  }

  async function measure(req) {
    const t0 = performance.now();
    let module;
    try {
      module = new WebAssembly.Module(fs.readFileSync(req.wasm));
    } catch (e) {
      return { ok: false, kind: 'rejected', message: String(e) };
    }
    const inst = new WebAssembly.Instance(module, { env: { memory } });
    const run = inst.exports[req.export || 'run'];
    await load(module, req.export);
    const compile_s = (performance.now() - t0) / 1000;
    const n = Math.max(1, Math.min(threads, req.thread_chunks || threads));
    const outIndex = params.map((p) => p.access).lastIndexOf('write');
    poison(outIndex);
    const f0 = performance.now();
    runAll(run, n, offsets);
    const first = (performance.now() - f0) / 1000;
    const out = new Uint8Array(memory.buffer, offsets[outIndex], params[outIndex].bytes);
    fs.writeFileSync(req.output, out);
    let checksum = 0;
    if (params[outIndex].dtype === 'f32') {
      const f = new Float32Array(memory.buffer, offsets[outIndex], params[outIndex].bytes / 4);
      for (let i = 0; i < f.length; i++) checksum += f[i];
    }
    const times = [first];  // the checked run is the first sample
    const start = performance.now() - first * 1000;
    while (times.length < req.max_runs && !(req.cutoff != null && first > req.cutoff)) {
      // the tuner's deadline: no run that would end after max_time seconds from the request
      if (req.max_time != null && (performance.now() - t0) / 1000 + Math.min(...times) > req.max_time) break;
      const a = performance.now();
      runAll(run, n, offsets);
      times.push((performance.now() - a) / 1000);
      if (times.length >= req.min_runs && (performance.now() - start) / 1000 >= req.min_time) break;
    }
    const sorted = [...times].sort((x, y) => x - y);
    return { ok: true, times, median: sorted[Math.floor(sorted.length / 2)], compile_s, checksum };
  }

  const handlers = { setup, job, measure };
  const rl = readline.createInterface({ input: process.stdin });
  let queue = Promise.resolve();
  rl.on('line', (line) => {
    queue = queue.then(async () => {
      let reply;
      try {
        const req = JSON.parse(line);
        const h = handlers[req.cmd];
        reply = h ? await h(req) : { ok: false, kind: 'error', message: `unknown command ${req.cmd}` };
      } catch (e) {
        reply = { ok: false, kind: 'error', message: String(e && e.stack ? e.stack.split('\n')[0] : e) };
      }
      process.stdout.write(JSON.stringify(reply) + '\n');
    });
  });
  rl.on('close', () => { queue.then(() => process.exit(0)); });
}
