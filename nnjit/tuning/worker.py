"""The measuring process of the wasmtime and wgpu runners (`python -m nnjit.tuning.worker B`).

The tuner never runs candidate code in its own process: a candidate that hangs is cut by
killing this process, one that crashes it (wasmtime aborts on a fault in host-created shared
memory) costs a restart. Requests and replies are pickled frames (4-byte little-endian
length + pickle) on stdin / stdout; anything the process prints goes to stderr.

Requests, each `(command, argument)`; replies `("ok", result)`, `("rejected", message)` (the
driver refused the kernel) or `("error", message)`:

* `("setup", {"threads": T, "relaxed_simd": bool})` -> device info (dict)
* `("job", {"params": [{"bytes", "access", "dtype", "shape"}], "inputs": [spec...],
  "seed": int, "key"?: str})` -> None: allocates the buffers and fills the inputs
  (kernels.make_inputs). With a `key` the buffers stay allocated: a later job with the same
  key switches back to them without regenerating the inputs (the tuner's final rounds go
  over several kernels in turn).
* `("measure", {"code": bytes | str, "manifest": dict, "min_runs", "max_runs",
  "min_time", "cutoff", "max_time"?})` -> {"times": [s...], "output": ndarray, "compile_s": s}:
  compiles, poisons the output (NaN / 0x7fffffff), runs once (the checked output; on wasmtime
  also the first time sample), then times runs until min_runs and min_time are reached
  (max_runs at most), a run is slower than cutoff, or max_time seconds have passed since the
  request came (the tuner's deadline; at least the checked run is done).
* `("measure_set", {"codes": [...], "manifests": [...], "min_runs", "max_runs", "min_time",
  "max_time"?})` -> {"times": [[s...] per kernel], "outputs": [ndarray per kernel]} (wasmtime):
  several kernels' runs interleaved round by round (final rounds, A/B comparisons).
"""

from __future__ import annotations

import os
import pickle
import struct
import sys
import time
from typing import Any

import numpy as np

from nnjit.errors import NNJitError


class Rejected(Exception):
    """The driver (wasmtime / WebGPU) refused to compile the kernel."""


def read_frame(stream) -> Any:
    head = stream.read(4)
    if len(head) < 4:
        return None
    (n,) = struct.unpack("<I", head)
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            return None
        data += chunk
    return pickle.loads(data)


def write_frame(stream, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack("<I", len(data)) + data)
    stream.flush()


def make_inputs(specs: list[dict], seed: int) -> list[np.ndarray]:
    """Fresh random inputs: floats N(0, 1) (in [0.5, 1.5) for "positive"), ints in
    [0, range) — gather indices below the gathered dim, masks 0/1."""
    rng = np.random.default_rng(seed)
    out = []
    for s in specs:
        shape = tuple(s["shape"])
        if s["dtype"] == "i32":
            out.append(rng.integers(0, int(s.get("range", 2)), size=shape, dtype=np.int32))
        elif s["dtype"] == "f16":  # a weight stored as float16: values it can hold, as f32
            out.append(rng.standard_normal(shape, dtype=np.float32).astype(np.float16).astype(np.float32))
        elif s.get("positive"):
            out.append(rng.uniform(0.5, 1.5, size=shape).astype(np.float32))
        else:
            out.append(rng.standard_normal(shape, dtype=np.float32))
    return out


def _adaptive(run_once, min_runs: int, max_runs: int, min_time: float,
              cutoff: float | None = None, first: float | None = None,
              stop_at: float | None = None) -> list[float]:  # fmt: skip
    """Run times: `first` (the checked run, when timed) counts as the first sample. No run
    starts when the next one would end after `stop_at` (perf_counter time), once there is a
    sample."""
    times: list[float] = [first] if first is not None else []
    t_start = time.perf_counter() - (first or 0.0)
    if first is not None and cutoff is not None and first > cutoff:
        return times
    while len(times) < max_runs:
        if stop_at is not None and times and time.perf_counter() + min(times) > stop_at:
            break
        t0 = time.perf_counter()
        run_once()
        times.append(time.perf_counter() - t0)
        if cutoff is not None and len(times) == 1 and times[0] > cutoff:
            break
        if len(times) >= min_runs and time.perf_counter() - t_start >= min_time:
            break
    return times


def _stop_at(arg: dict, t_request: float) -> float | None:
    m = arg.get("max_time")
    return None if m is None else t_request + float(m)


class WasmtimeBackend:
    KEEP_BYTES = 1 << 30
    """Kept jobs (buffers of earlier kernels) are dropped when they would pass this size."""

    def __init__(self) -> None:
        self.rt: Any = None
        self.offsets: list[int] = []
        self.params: list[dict] = []
        self.kept: dict[str, tuple[list[dict], list[int]]] = {}

    def setup(self, arg: dict) -> dict:
        from nnjit.runtime.wasm import WasmRuntime

        self.rt = WasmRuntime(threads=int(arg.get("threads", 1)),
                              relaxed_simd=bool(arg.get("relaxed_simd", True)))  # fmt: skip
        return {"threads": self.rt.threads}

    def job(self, arg: dict) -> None:
        rt = self.rt
        key = arg.get("key")
        if key is not None and key in self.kept:
            self.params, self.offsets = self.kept[key]
            return
        need = sum(max(16, int(p["bytes"])) + 64 for p in arg["params"])
        if key is None or rt.mark() + need > self.KEEP_BYTES:
            rt.reset()
            self.kept.clear()
        self.params = arg["params"]
        self.offsets = [rt.alloc(max(16, int(p["bytes"])), align=64) for p in self.params]
        inputs = make_inputs(arg["inputs"], int(arg["seed"]))
        reads = [i for i, p in enumerate(self.params) if p["access"] == "read"]
        for i, a in zip(reads, inputs):
            rt.write(self.offsets[i], a)
        if key is not None:
            self.kept[key] = (self.params, self.offsets)

    def measure(self, arg: dict) -> dict:
        from nnjit.runtime.wasm import _DTYPES, _POISON

        rt = self.rt
        t0 = time.perf_counter()
        stop_at = _stop_at(arg, t0)
        try:
            kernel = rt.compile(arg["code"], arg["manifest"])
        except NNJitError as e:
            raise Rejected(str(e)) from None
        compile_s = time.perf_counter() - t0
        if [int(p["bytes"]) for p in kernel.params] != [int(p["bytes"]) for p in self.params]:
            raise Rejected("the kernel's parameters differ from the job's buffers")
        out_i = [i for i, p in enumerate(self.params) if p["access"] != "read"][-1]
        p = self.params[out_i]
        rt.write(self.offsets[out_i], np.full(p["shape"], _POISON[p["dtype"]], _DTYPES[p["dtype"]]))
        t0 = time.perf_counter()
        rt.run(kernel, self.offsets)
        first = time.perf_counter() - t0
        output = rt.read(self.offsets[out_i], _DTYPES[p["dtype"]], p["shape"])
        times = _adaptive(lambda: rt.run(kernel, self.offsets), int(arg["min_runs"]),
                          int(arg["max_runs"]), float(arg["min_time"]), arg.get("cutoff"), first,
                          stop_at)  # fmt: skip
        return {"times": times, "output": output, "compile_s": compile_s}


    def measure_set(self, arg: dict) -> dict:
        """Several kernels on the current job, their runs interleaved: each round runs every
        kernel once (the order rotating from round to round), so load from other processes
        hits them alike; rounds until min_runs and min_time x kernels are reached, max_runs
        at most, or the next round would end past max_time."""
        from nnjit.runtime.wasm import _DTYPES, _POISON

        rt = self.rt
        t0 = time.perf_counter()
        stop_at = _stop_at(arg, t0)
        kernels = []
        for code, manifest in zip(arg["codes"], arg["manifests"]):
            try:
                kernel = rt.compile(code, manifest)
            except NNJitError as e:
                raise Rejected(str(e)) from None
            if [int(p["bytes"]) for p in kernel.params] != [int(p["bytes"]) for p in self.params]:
                raise Rejected("the kernel's parameters differ from the job's buffers")
            kernels.append(kernel)
        out_i = [i for i, p in enumerate(self.params) if p["access"] != "read"][-1]
        p = self.params[out_i]
        outputs = []
        for kernel in kernels:
            rt.write(self.offsets[out_i], np.full(p["shape"], _POISON[p["dtype"]], _DTYPES[p["dtype"]]))
            rt.run(kernel, self.offsets)
            outputs.append(rt.read(self.offsets[out_i], _DTYPES[p["dtype"]], p["shape"]))
        n = len(kernels)
        times: list[list[float]] = [[] for _ in kernels]
        t_start = time.perf_counter()
        rounds = 0
        while rounds < int(arg["max_runs"]):
            est = sum(min(t) for t in times) if rounds else 0.0
            if stop_at is not None and rounds and time.perf_counter() + est > stop_at:
                break
            for j in [(rounds + k) % n for k in range(n)]:
                t1 = time.perf_counter()
                rt.run(kernels[j], self.offsets)
                times[j].append(time.perf_counter() - t1)
            rounds += 1
            if rounds >= int(arg["min_runs"]) and time.perf_counter() - t_start >= float(arg["min_time"]) * n:
                break
        return {"times": times, "outputs": outputs}


class WgpuBackend:
    def __init__(self) -> None:
        self.rt: Any = None
        self.bufs: list[Any] = []
        self.half: dict[int, Any] = {}
        self.inputs: dict[int, np.ndarray] = {}
        self.params: list[dict] = []

    def setup(self, arg: dict) -> dict:
        from nnjit.runtime.webgpu import WebGPURuntime

        self.rt = WebGPURuntime()
        info = dict(self.rt.info)
        info["limits"] = {k: int(v) for k, v in self.rt.limits.items() if isinstance(v, int)}
        return info

    def job(self, arg: dict) -> None:
        rt = self.rt
        for b in [*self.bufs, *self.half.values()]:
            b.destroy()
        self.params = arg["params"]
        self.bufs = [rt.create_buffer(max(16, int(p["bytes"]))) for p in self.params]
        self.half = {}
        inputs = make_inputs(arg["inputs"], int(arg["seed"]))
        reads = [i for i, p in enumerate(self.params) if p["access"] == "read"]
        self.inputs = dict(zip(reads, inputs))
        for i, a in self.inputs.items():
            rt.write_buffer(self.bufs[i], a)

    def _buffers(self, kernel: Any) -> list[Any]:
        """The job's buffers as `kernel` binds them: an input it reads as f16 (a float16 weight,
        schedule f16) gets an f16 copy, made once per job."""
        out = []
        for i, b in enumerate(kernel.bindings):
            if b["dtype"] == "f16" and i in self.inputs:
                if i not in self.half:
                    arr = self.inputs[i].astype(np.float16)
                    self.half[i] = self.rt.create_buffer(max(16, arr.nbytes))
                    self.rt.write_buffer(self.half[i], arr)
                out.append(self.half[i])
            else:
                out.append(self.bufs[i])
        return out

    def measure(self, arg: dict) -> dict:
        from nnjit.runtime.webgpu import _DTYPES, _POISON

        rt = self.rt
        t0 = time.perf_counter()
        stop_at = _stop_at(arg, t0)
        try:
            kernel = rt.create_kernel(arg["code"], arg["manifest"])
        except NNJitError as e:
            raise Rejected(str(e)) from None
        compile_s = time.perf_counter() - t0
        if [list(b["shape"]) for b in kernel.bindings] != [list(p["shape"]) for p in self.params]:
            raise Rejected("the kernel's bindings differ from the job's buffers")
        bufs = self._buffers(kernel)
        out_i = [i for i, p in enumerate(self.params) if p["access"] != "read"][-1]
        p = self.params[out_i]
        buf = self.bufs[out_i]
        rt.write_buffer(buf, np.full(buf.size // 4, _POISON[p["dtype"]], dtype=_DTYPES[p["dtype"]]))
        rt.dispatch(kernel, bufs)
        output = rt.read_buffer(buf, p["dtype"], p["shape"])
        # warm-up: a GPU left idle while the tuner lowers the next candidate clocks down;
        # keep it busy for a moment so every candidate is timed at the same clocks
        t_end = time.perf_counter() + float(arg.get("warmup", 0.02))
        while time.perf_counter() < t_end:
            for _ in range(4):
                rt.dispatch(kernel, bufs)
            rt.sync()
        # first estimate with min_runs, then enough runs for min_time
        cutoff = arg.get("cutoff")
        times = rt.time_kernel(kernel, bufs, 1 if cutoff is not None else int(arg["min_runs"]))
        if cutoff is not None and times[0] > cutoff:
            return {"times": times, "output": output, "compile_s": compile_s}
        if len(times) < int(arg["min_runs"]):
            times += rt.time_kernel(kernel, bufs, int(arg["min_runs"]) - len(times))
        per = max(1e-6, sorted(times)[len(times) // 2])
        more = min(int(arg["max_runs"]) - len(times), int(float(arg["min_time"]) / per))
        if stop_at is not None:
            more = min(more, int((stop_at - time.perf_counter()) / per))
        if more > 0:
            times += rt.time_kernel(kernel, bufs, more)
        return {"times": times, "output": output, "compile_s": compile_s}


BACKENDS = {"wasmtime": WasmtimeBackend, "wgpu": WgpuBackend}


def main() -> int:
    proto = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints go to stderr, never into the protocol
    sys.stdout = sys.stderr
    inp = sys.stdin.buffer
    backend = BACKENDS[sys.argv[1]]()
    while True:
        msg = read_frame(inp)
        if msg is None:
            return 0
        cmd, arg = msg
        try:
            result = getattr(backend, cmd)(arg)
            write_frame(proto, ("ok", result))
        except Rejected as e:
            write_frame(proto, ("rejected", str(e)))
        except Exception as e:  # noqa: BLE001 - reported to the tuner, which goes on
            write_frame(proto, ("error", f"{type(e).__name__}: {e}".splitlines()[0]))


if __name__ == "__main__":
    sys.exit(main())
