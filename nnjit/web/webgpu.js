// The WebGPU backend: one GPUBuffer per plan slot and per weight, a compute pipeline per kernel
// (createComputePipelineAsync, explicit bind-group layouts from the manifests), one command
// encoder per run, outputs read back through mapped staging buffers. A weight has one buffer
// per dtype its kernels bind it as: a matmul candidate that reads a float16 weight as f16
// (manifest feature "shader-f16", binding dtype "f16") gets its stored bytes, so on a device
// with the feature the weight is on the GPU in half the bytes; a device without it runs the
// float32 candidates on the weight widened at load.

import { weightKeys } from "./variants.js";
import { BundleError, NNJitError, candidateOrder, candidatesOf, rootBuffer } from "./bundle.js";
import { halfBytes } from "./compact.js";

/** Errors that mean "this device cannot run the bundle": the session falls back to Wasm. */
export class WebGPUUnavailable extends NNJitError {
  constructor(message, opts = {}) {
    super(message, { code: "webgpu", ...opts });
    this.name = "WebGPUUnavailable";
  }
}

export class DeviceLostError extends NNJitError {
  constructor(message) {
    super(message, { code: "device-lost" });
    this.name = "DeviceLostError";
  }
}

// adapter limits requested as they are (the defaults are too small for real models)
const LIMITS = [
  "maxStorageBufferBindingSize", "maxBufferSize", "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup", "maxComputeWorkgroupSizeX", "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ", "maxComputeWorkgroupsPerDimension", "maxStorageBuffersPerShaderStage",
  "maxBindingsPerBindGroup",
];
const FEATURES = ["shader-f16", "subgroups", "timestamp-query"];
const pad16 = (n) => Math.max(16, Math.ceil(n / 16) * 16);
const now = () => performance.now();
// a step this slow (ms) is timed by single runs when there are no timestamp queries
const SLOW_STEP_MS = 20;
// software adapters (Chromium's SwiftShader, Mesa's lavapipe/llvmpipe): their times are CPU times
const CPU_ADAPTER = /swiftshader|llvmpipe|lavapipe|software|\bcpu\b/i;

/** The adapter in words ("google swiftshader") and whether it runs on the CPU. */
export function describeAdapter(adapter) {
  const ai = adapter?.info ?? {};
  const name = [ai.vendor, ai.architecture, ai.device, ai.description].filter(Boolean).join(" ") || "unknown adapter";
  const cpu = ai.isFallbackAdapter === true || adapter?.isFallbackAdapter === true || CPU_ADAPTER.test(name);
  return { name, cpu };
}

export class WebGPUBackend {
  static async create(bundle, options = {}) {
    const gpu = globalThis.navigator?.gpu;
    if (!gpu) throw new WebGPUUnavailable("WebGPU is not available here (navigator.gpu is undefined: the browser lacks WebGPU or the page is not a secure context)");
    let adapter;
    try {
      adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? "high-performance" });
    } catch (e) {
      throw new WebGPUUnavailable(`requestAdapter failed: ${e.message}`);
    }
    if (!adapter) throw new WebGPUUnavailable("no WebGPU adapter (navigator.gpu.requestAdapter() returned null)");
    const requiredLimits = {};
    for (const k of LIMITS) if (adapter.limits[k] !== undefined) requiredLimits[k] = adapter.limits[k];
    const requiredFeatures = FEATURES.filter((f) => adapter.features.has(f));
    let device;
    try {
      device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
    } catch (e) {
      throw new WebGPUUnavailable(`requestDevice failed: ${e.message}`);
    }
    return new WebGPUBackend(bundle, adapter, device);
  }

  constructor(bundle, adapter, device) {
    this.name = "webgpu";
    this.bundle = bundle;
    this.plan = bundle.plan.backends.webgpu;
    this.adapter = adapter;
    this.device = device;
    this.lost = null;
    this.uncaptured = [];
    this.lostPromise = device.lost.then((info) => {
      this.lost = info;
      return info;
    });
    device.addEventListener?.("uncapturederror", (ev) => this.uncaptured.push(ev.error?.message ?? String(ev.error)));
    const ai = adapter.info ?? {};
    this.info = {
      vendor: ai.vendor ?? "", architecture: ai.architecture ?? "", device: ai.device ?? "",
      description: ai.description ?? "", features: [...device.features].sort(),
      limits: Object.fromEntries(LIMITS.map((k) => [k, device.limits[k]])),
    };
    const { name, cpu } = describeAdapter(adapter);
    this.adapterName = name;
    this.cpuAdapter = cpu;
    this.warnings = cpu ? [`WebGPU runs on a CPU adapter (${name}): its times are not GPU speed`] : [];
    this.kernels = new Map(); // plan kernel name -> compiled kernel in use
    this._groups = new Map(); // compiled kernel -> [bind group per step index or undefined]
    this._pipelines = new Map(); // code + entry + binding access -> Promise<{pipeline, layout} | {failure}>
    this._buffers = null;
  }

  /** What tuning results depend on: the adapter, its limits and features, the browser. */
  fingerprint() {
    return JSON.stringify({ backend: "webgpu", ...this.info, ua: navigator.userAgent });
  }

  /** "cpu" on a software adapter, else "gpu": which "order" of a kernel's candidates applies. */
  get deviceClass() {
    return this.cpuAdapter ? "cpu" : "gpu";
  }

  /** The adapter in words, and whether it is a CPU (software) adapter. */
  get adapterInfo() {
    return { name: this.adapterName, cpu: this.cpuAdapter };
  }

  /** Why this device cannot run a candidate, or null. */
  unsupported(candidate) {
    const m = candidate.manifest;
    const lim = this.device.limits;
    const ws = m.workgroup_size ?? [1, 1, 1];
    const inv = ws.reduce((a, b) => a * b, 1);
    if (inv > lim.maxComputeInvocationsPerWorkgroup) return `workgroup size [${ws}] has ${inv} invocations, the device allows ${lim.maxComputeInvocationsPerWorkgroup}`;
    const dimLim = [lim.maxComputeWorkgroupSizeX, lim.maxComputeWorkgroupSizeY, lim.maxComputeWorkgroupSizeZ];
    for (let i = 0; i < 3; i++) if ((ws[i] ?? 1) > dimLim[i]) return `workgroup size [${ws}] exceeds the device's per-dimension limit ${dimLim[i]}`;
    const wgs = m.workgroup_storage_bytes ?? 0;
    if (wgs > lim.maxComputeWorkgroupStorageSize) return `${wgs} bytes of workgroup memory exceed the device's ${lim.maxComputeWorkgroupStorageSize}`;
    if ((m.dispatch ?? []).some((d) => d > lim.maxComputeWorkgroupsPerDimension)) return `dispatch [${m.dispatch}] exceeds ${lim.maxComputeWorkgroupsPerDimension} workgroups per dimension`;
    if (m.bindings.length > lim.maxStorageBuffersPerShaderStage) return `${m.bindings.length} storage buffers exceed the device's ${lim.maxStorageBuffersPerShaderStage} per shader stage`;
    for (const b of m.bindings) if (b.bytes > lim.maxStorageBufferBindingSize) return `binding ${b.binding} (${b.bytes} bytes) exceeds maxStorageBufferBindingSize ${lim.maxStorageBufferBindingSize}`;
    for (const f of m.features ?? []) if (!this.device.features.has(f)) return `needs the WebGPU feature '${f}'`;
    return null;
  }

  _checkLost() {
    if (this.lost) throw new DeviceLostError(`WebGPU device lost (${this.lost.reason}${this.lost.message ? `: ${this.lost.message}` : ""})`);
  }

  /** Uploads weights (each in the dtype the kernels that will run first bind it as) and makes
   * the slot buffers. */
  async allocate(weights) {
    const dev = this.device;
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    dev.pushErrorScope("out-of-memory");
    dev.pushErrorScope("validation");
    this.slotBuffers = this.plan.slots.map((s, i) => dev.createBuffer({ size: pad16(s.bytes), usage, label: `slot${i}` }));
    this._weights = weights;
    this._byKey = new Map(); // "key|dtype" -> buffer (every shape variant's weights, each once)
    let thrown = null;
    try {
      const first = this._firstDtypes();
      for (const [key] of weightKeys(this.bundle.plan, "webgpu")) {
        for (const dtype of first.get(key) ?? [null]) this._weightBuffer(key, dtype);
      }
    } catch (e) {
      thrown = e;
    }
    const verr = await dev.popErrorScope();
    const oerr = await dev.popErrorScope();
    if (thrown instanceof BundleError) throw thrown;
    if (thrown) throw new WebGPUUnavailable(`uploading weights failed: ${thrown.message}`);
    if (oerr) throw new WebGPUUnavailable(`out of GPU memory making buffers: ${oerr.message}`);
    if (verr) throw new WebGPUUnavailable(`making buffers failed: ${verr.message}`);
    this._staging = new Map();
  }

  /** key -> the dtypes (a Set) the weight is bound as by the candidate each kernel of this plan
   * starts with (compileKernels' choice: the first of the class's order the device runs). */
  _firstDtypes() {
    const out = new Map();
    const chosen = new Map();
    for (const [name, k] of Object.entries(this.plan.kernels)) {
      const cands = candidatesOf(k);
      const idx = candidateOrder(k, this.deviceClass).find((i) => this.unsupported(cands[i]) === null);
      if (idx !== undefined) chosen.set(name, [...cands[idx].manifest.bindings].sort((a, b) => a.binding - b.binding));
    }
    for (const step of this.plan.steps) {
      const bindings = chosen.get(step.kernel);
      step.args.forEach((a, i) => {
        const r = rootBuffer(this.plan.buffers, a);
        if (r.kind !== "weight" || !bindings?.[i]) return;
        if (!out.has(r.key)) out.set(r.key, new Set());
        out.get(r.key).add(bindings[i].dtype);
      });
    }
    return out;
  }

  /** The buffer of weight `key` as `dtype` (null: as stored for float32 kernels), made at first
   * use: f16 takes the weight's float16 bytes (halfBytes), other dtypes its float32 / int32 values. */
  _weightBuffer(key, dtype) {
    const id = `${key}|${dtype === "f16" ? "f16" : ""}`;
    let buf = this._byKey.get(id);
    if (buf) return buf;
    const w = this._weights.get(key);
    if (!w) throw new BundleError(`weight '${key}' is not in the weights file`);
    const bytes = dtype === "f16" ? halfBytes(w) : w.bytes;
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    buf = this.device.createBuffer({ size: pad16(bytes.byteLength), usage, mappedAtCreation: true, label: key });
    new Uint8Array(buf.getMappedRange()).set(bytes);
    buf.unmap();
    this._byKey.set(id, buf);
    return buf;
  }

  /** The backend of one shape variant of a variable-length bundle: this device, pipelines and
   * weight buffers; its own plan, kernels, slot buffers and bind groups. */
  variant(plan) {
    const v = Object.create(this);
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    v.plan = plan;
    v.kernels = new Map();
    v._groups = new Map();
    v._staging = new Map();
    v.slotBuffers = plan.slots.map((s, i) => this.device.createBuffer({ size: pad16(s.bytes), usage, label: `slot${i}` }));
    v.destroy = () => v.slotBuffers.forEach((b) => b.destroy());
    return v;
  }

  /** The buffer of plan buffer `id`; a weight as `dtype` (the binding's: "f16" for a kernel that
   * reads it as float16). */
  bufferOf(id, dtype = null) {
    const r = rootBuffer(this.plan.buffers, id);
    const ext = this.external?.get(r.id);
    if (ext) return ext;
    return r.kind === "weight" ? this._weightBuffer(r.key, dtype) : this.slotBuffers[r.slot];
  }

  rootId(id) {
    return rootBuffer(this.plan.buffers, id).id;
  }

  /** Root buffer id -> a GPU buffer that replaces its slot (a generation cache bound as a past
   * input; generate.js), or null for none. Bind groups are made again when it changes. */
  bindExternal(map) {
    const same = (a, b) => (a?.size ?? 0) === (b?.size ?? 0) && [...(a ?? new Map())].every(([k, v]) => b?.get(k) === v);
    if (map && map.size && !same(map, this._lastExternal)) {
      this._groups = new Map();
      this._lastExternal = map;
    }
    this.external = map && map.size ? map : null;
  }

  outputHandle(i) {
    return this.bufferOf(this.plan.outputs[i].buffer);
  }

  /** Shader module + pipeline of one candidate; throws NNJitError (code "kernel") naming the
   * kernel and the file when the WGSL does not compile. */
  async compile(name, candidate, index = 0) {
    this._checkLost();
    const m = candidate.manifest;
    const why = this.unsupported(candidate);
    if (why) throw new NNJitError(`WGSL kernel '${name}' (${candidate.file}) cannot run on this device: ${why}`, { code: "kernel", file: candidate.file });
    const code = await this.bundle.text(candidate.file);
    // identical kernels (the layers of a transformer) share one pipeline
    const key = `${m.entry ?? "main"}|${m.bindings.map((b) => `${b.binding}:${b.access}`).join(",")}|${code}`;
    let built = this._pipelines.get(key);
    if (!built) {
      built = this._buildPipeline(name, code, m);
      this._pipelines.set(key, built);
    }
    const { pipeline, layout, failure } = await built;
    this._checkLost();
    if (failure) {
      const first = failure.split("\n").find((l) => l.trim()) ?? failure;
      throw new NNJitError(`WGSL kernel '${name}' (${candidate.file}) failed to compile: ${first.trim()}`, { code: "kernel", file: candidate.file });
    }
    const bindings = [...m.bindings].sort((a, b) => a.binding - b.binding);
    return { name, index, candidate, pipeline, layout, bindings, dispatch: (m.dispatch ?? [1, 1, 1]).map(Number) };
  }

  /** {pipeline, layout} or {failure: message}; never throws. No error scopes: kernels compile
   * concurrently and scopes are one stack per device; the module's compilation messages and
   * the pipeline promise belong to this kernel alone. */
  async _buildPipeline(label, code, m) {
    const dev = this.device;
    const module = dev.createShaderModule({ code, label });
    const info = await module.getCompilationInfo?.();
    const errors = (info?.messages ?? []).filter((msg) => msg.type === "error");
    const layout = dev.createBindGroupLayout({
      label,
      entries: m.bindings.map((b) => ({
        binding: b.binding,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: b.access === "read" ? "read-only-storage" : "storage" },
      })),
    });
    let failure = errors.length ? errors.map((e) => `line ${e.lineNum}: ${e.message}`).join("; ") : null;
    let pipeline = null;
    try {
      pipeline = await dev.createComputePipelineAsync({
        label,
        layout: dev.createPipelineLayout({ bindGroupLayouts: [layout], label }),
        compute: { module, entryPoint: m.entry ?? "main" },
      });
    } catch (e) {
      failure = failure ?? e.message;
    }
    return failure ? { failure } : { pipeline, layout };
  }

  use(name, compiled) {
    this.kernels.set(name, compiled);
  }

  _group(stepIndex, k) {
    let groups = this._groups.get(k);
    if (!groups) this._groups.set(k, (groups = []));
    let g = groups[stepIndex];
    if (g) return g;
    const step = this.plan.steps[stepIndex];
    if (step.args.length !== k.bindings.length) throw new BundleError(`kernel '${k.name}' takes ${k.bindings.length} buffers, step ${stepIndex} passes ${step.args.length}`);
    const entries = k.bindings.map((b, i) => {
      const buffer = this.bufferOf(step.args[i], b.dtype);
      if (buffer.size < b.bytes) throw new BundleError(`kernel '${k.name}': binding ${b.binding} needs ${b.bytes} bytes, its buffer has ${buffer.size}`);
      // bind what the kernel uses: a slot shared by larger buffers may exceed the binding limit
      return { binding: b.binding, resource: { buffer, offset: 0, size: Math.min(buffer.size, pad16(b.bytes)) } };
    });
    g = this.device.createBindGroup({ layout: k.layout, entries, label: `${k.name}@${stepIndex}` });
    groups[stepIndex] = g;
    return g;
  }

  _encodeStep(pass, stepIndex, k, times = 1) {
    if (k.dispatch.some((d) => d === 0)) return;
    pass.setPipeline(k.pipeline);
    pass.setBindGroup(0, this._group(stepIndex, k));
    for (let t = 0; t < times; t++) pass.dispatchWorkgroups(k.dispatch[0], k.dispatch[1] ?? 1, k.dispatch[2] ?? 1);
  }

  writeInputs(arrays) {
    this._checkLost();
    this.plan.inputs.forEach((info, i) => {
      const a = arrays[i];
      if (a && a.byteLength) this.device.queue.writeBuffer(this.bufferOf(info.buffer), 0, a.buffer, a.byteOffset, a.byteLength);
    });
  }

  async _submitAndWait(encoder) {
    this.device.queue.submit([encoder.finish()]);
    await Promise.race([this.device.queue.onSubmittedWorkDone(), this.lostPromise]);
    this._checkLost();
  }

  /** Runs one step with the kernel in use (the tuning run goes step by step). */
  async runStep(stepIndex, compiled = undefined) {
    const k = compiled ?? this.kernels.get(this.plan.steps[stepIndex].kernel);
    const enc = this.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    this._encodeStep(pass, stepIndex, k);
    pass.end();
    await this._submitAndWait(enc);
  }

  /** Milliseconds per dispatch of `compiled` on step `stepIndex`'s buffers (`samples` values).
   * With the "timestamp-query" feature: GPU timestamps around a compute pass of K back-to-back
   * dispatches, K grown until a pass lasts minMs. Without it, the wall clock around submit ->
   * mapAsync has a fixed latency of milliseconds (more than a small kernel takes), so each
   * sample is a slope: (time of K dispatches - time of one) / (K - 1), K grown until the
   * difference is well above the latency. Kernels never write what they read, so repeating a
   * dispatch changes nothing. */
  /** Times of one step with `compiled` in ms, one per sample; sampling stops early (after at
   * least one sample) once performance.now() passes `deadline`. */
  async timeStep(stepIndex, compiled, { samples = 5, minMs = 2, deadline = Infinity } = {}) {
    this.device.pushErrorScope("validation");
    const times = this.device.features.has("timestamp-query")
      ? await this._timeWithTimestamps(stepIndex, compiled, samples, minMs, deadline)
      : await this._timeWithClock(stepIndex, compiled, samples, minMs, deadline);
    const err = await this.device.popErrorScope();
    if (err) throw new NNJitError(`kernel '${compiled.name}' failed to run: ${err.message}`, { code: "kernel" });
    return times;
  }

  async _timeWithTimestamps(stepIndex, k, samples, minMs, deadline) {
    const dev = this.device;
    if (!this._ts) {
      this._ts = {
        qs: dev.createQuerySet({ type: "timestamp", count: 2 }),
        resolve: dev.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC }),
        read: dev.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }),
      };
    }
    const { qs, resolve, read } = this._ts;
    const pass = async (inner) => {
      const enc = dev.createCommandEncoder();
      const p = enc.beginComputePass({ timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } });
      this._encodeStep(p, stepIndex, k, inner);
      p.end();
      enc.resolveQuerySet(qs, 0, 2, resolve, 0);
      enc.copyBufferToBuffer(resolve, 0, read, 0, 16);
      dev.queue.submit([enc.finish()]);
      await Promise.race([read.mapAsync(GPUMapMode.READ), this.lostPromise]);
      this._checkLost();
      const t = new BigInt64Array(read.getMappedRange());
      const ms = Number(t[1] - t[0]) / 1e6;
      read.unmap();
      return Math.max(0, ms);
    };
    await pass(1); // warm-up (pipeline, bind group)
    let inner = 1;
    for (let t = await pass(1); t < minMs && inner < 1024; ) {
      inner = Math.min(1024, inner * Math.max(2, Math.min(16, Math.ceil(minMs / Math.max(t, minMs / 16)))));
      t = await pass(inner);
    }
    const times = [];
    for (let s = 0; s < samples && !(s > 0 && now() > deadline); s++) times.push((await pass(inner)) / inner);
    return times;
  }

  async _timeWithClock(stepIndex, compiled, samples, minMs, deadline) {
    await this._timeOnce(stepIndex, compiled, 1); // warm-up (pipeline, bind group)
    const base = Math.min(await this._timeOnce(stepIndex, compiled, 1), await this._timeOnce(stepIndex, compiled, 1));
    if (base >= SLOW_STEP_MS) {
      // a slow step (software adapters): the submit-and-map round trip is noise next to it,
      // so single runs are timed directly instead of differencing batches of runs
      const times = [base];
      for (let s = 1; s < samples && now() <= deadline; s++) times.push(await this._timeOnce(stepIndex, compiled, 1));
      return times;
    }
    const want = Math.max(minMs, 2 * base);
    let k = 4;
    for (;;) {
      const t = await this._timeOnce(stepIndex, compiled, k);
      if (t - base >= want || k >= 1024) break;
      k = Math.min(1024, k * Math.max(2, Math.min(8, Math.ceil(want / Math.max(t - base, want / 8)))));
    }
    const times = [];
    for (let s = 0; s < samples && !(s > 0 && now() > deadline); s++) {
      const tk = await this._timeOnce(stepIndex, compiled, k);
      const t1 = await this._timeOnce(stepIndex, compiled, 1);
      times.push(Math.max(0, tk - t1) / (k - 1));
    }
    return times;
  }

  async _timeOnce(stepIndex, k, inner) {
    const dev = this.device;
    this._probe ??= dev.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = dev.createCommandEncoder();
    const pass = enc.beginComputePass();
    this._encodeStep(pass, stepIndex, k, inner);
    pass.end();
    enc.copyBufferToBuffer(this.bufferOf(this.plan.steps[stepIndex].args.at(-1)), 0, this._probe, 0, 16);
    const t0 = now();
    dev.queue.submit([enc.finish()]);
    await Promise.race([this._probe.mapAsync(GPUMapMode.READ), this.lostPromise]);
    this._checkLost();
    this._probe.unmap();
    return now() - t0;
  }

  /** A whole run: inputs written, every step in one command encoder, outputs copied to staging
   * buffers and read back. Profiling, each step is its own compute pass with GPU timestamps
   * ("timestamp-query"), or without them its own submission timed by the wall clock (which
   * includes milliseconds of submission latency per step). */
  async run(arrays, { profile = false, read = null } = {}) {
    this._checkLost();
    const dev = this.device;
    const plan = this.plan;
    const n = plan.steps.length;
    const t0 = now();
    dev.pushErrorScope("validation");
    this.writeInputs(arrays);
    let stepMs = null;
    const stamps = profile && n > 0 && dev.features.has("timestamp-query") ? this._stepStamps(n) : null;
    const enc = dev.createCommandEncoder();
    if (stamps) {
      plan.steps.forEach((s, i) => {
        const pass = enc.beginComputePass({ timestampWrites: { querySet: stamps.qs, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } });
        this._encodeStep(pass, i, this.kernels.get(s.kernel));
        pass.end();
      });
      enc.resolveQuerySet(stamps.qs, 0, 2 * n, stamps.resolve, 0);
      enc.copyBufferToBuffer(stamps.resolve, 0, stamps.read, 0, 16 * n);
    } else if (profile) {
      stepMs = [];
      for (let i = 0; i < n; i++) {
        const e = dev.createCommandEncoder();
        const p = e.beginComputePass();
        this._encodeStep(p, i, this.kernels.get(plan.steps[i].kernel));
        p.end();
        const s0 = now();
        await this._submitAndWait(e);
        stepMs.push(now() - s0);
      }
    } else {
      const pass = enc.beginComputePass();
      plan.steps.forEach((s, i) => this._encodeStep(pass, i, this.kernels.get(s.kernel)));
      pass.end();
    }
    const t1 = now();
    const staging = plan.outputs.map((o, i) => {
      if (read && !read.includes(i)) return null;
      const b = plan.buffers[o.buffer];
      const size = pad16(b.bytes);
      let st = this._staging.get(o.buffer);
      if (!st) {
        st = dev.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: `read ${o.name}` });
        this._staging.set(o.buffer, st);
      }
      enc.copyBufferToBuffer(this.bufferOf(o.buffer), 0, st, 0, size);
      return st;
    });
    dev.queue.submit([enc.finish()]);
    const err = await dev.popErrorScope();
    if (err) throw new NNJitError(`WebGPU run failed: ${err.message}`, { code: "webgpu" });
    try {
      await Promise.all(staging.filter((st) => st).map((st) => Promise.race([st.mapAsync(GPUMapMode.READ), this.lostPromise])));
      this._checkLost();
    } catch (e) {
      this._checkLost();
      await Promise.race([this.lostPromise, new Promise((r) => setTimeout(r, 50))]);
      this._checkLost();
      throw e;
    }
    if (stamps) {
      await Promise.race([stamps.read.mapAsync(GPUMapMode.READ), this.lostPromise]);
      this._checkLost();
      const t = new BigInt64Array(stamps.read.getMappedRange(0, 16 * n));
      stepMs = plan.steps.map((_, i) => Math.max(0, Number(t[2 * i + 1] - t[2 * i]) / 1e6));
      stamps.read.unmap();
    }
    const t2 = now();
    const outputs = plan.outputs.map((o, i) => {
      if (!staging[i]) return null;
      const b = plan.buffers[o.buffer];
      const n = b.shape.reduce((x, y) => x * y, 1);
      const C = b.dtype === "i32" ? Int32Array : Float32Array;
      const out = new C(n);
      out.set(new C(staging[i].getMappedRange(0, pad16(b.bytes)), 0, n));
      staging[i].unmap();
      return out;
    });
    return { outputs, timings: { encodeMs: t1 - t0, gpuAndReadMs: t2 - t1, stepMs, stepClock: stamps ? "gpu-timestamps" : stepMs ? "wall-clock" : null } };
  }

  _stepStamps(n) {
    if (this._stamps?.n !== n) {
      const dev = this.device;
      this._stamps = {
        n,
        qs: dev.createQuerySet({ type: "timestamp", count: 2 * n }),
        resolve: dev.createBuffer({ size: 16 * n, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC }),
        read: dev.createBuffer({ size: 16 * n, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }),
      };
    }
    return this._stamps;
  }

  /** For tests: loses the device as a driver crash would. */
  loseDevice() {
    this.device.destroy();
  }

  destroy() {
    for (const b of this.slotBuffers ?? []) b.destroy();
    for (const b of this._byKey?.values() ?? []) b.destroy();
    for (const b of this._staging?.values() ?? []) b.destroy();
    this._probe?.destroy();
    for (const t of [this._ts, this._stamps]) if (t) for (const x of [t.qs, t.resolve, t.read]) x.destroy();
    this.device.destroy();
  }
}
