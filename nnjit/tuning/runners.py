"""Runners: compile a candidate, time it, return its output — in a process that can be cut.

    class Runner(Protocol):
        name: str; target: str                      # "wgsl" | "wasm"
        def device(self) -> DeviceInfo              # limits, features, fingerprint
        def prepare(self, kernel: KernelInfo, seed: int) -> None   # fresh inputs
        def measure(self, cand: Candidate, timeout: float, cutoff=None) -> Measurement
        def close(self) -> None

A runner's `measure` may also take `max_time` (seconds): the tuner's deadline, after which no
timed run may start (the built-in runners do; the tuner passes it only to runners whose
`measure` has the parameter, and cuts the others with `timeout`). A runner may also have
`measure_set(cands, timeout, max_time=None)` (wasmtime has): several candidates of the
current kernel with their runs interleaved one by one, for the tuner's final rounds.

`measure` raises `CandidateError(reason, message)` when the candidate is broken: "rejected"
(the driver refuses it), "timeout" (it ran past `timeout` seconds: the measuring process is
killed and restarted), "crashed" (the process died), "error" (anything else). The tuner logs
the reason and goes on.

Built in (nnjit.tuning.plugins registers them; plugins add more):

* "wasmtime": WasmRuntime (nnjit/runtime/wasm.py) on `threads` threads in a worker process.
* "node": V8 through Node (nnjit/tuning/node_harness.js): worker_threads sharing one
  WebAssembly.Memory, the way a browser runs nnjit's Wasm kernels.
* "wgpu": WebGPURuntime (nnjit/runtime/webgpu.py) in a worker process.

Timing: the first run's output is the checked one (on Wasm its time is the first sample);
runs are timed until `min_runs` and `min_time` are reached (`max_runs` at most), or stop
after the first when it took longer than `cutoff` seconds (a candidate clearly slower than
the best so far costs one run), or when the next run would end past `max_time`. `Measurement.score` is the statistic the tuner compares: the
minimum by default (noise from other processes only ever adds time; NNJIT_TUNE_STAT=median
compares medians).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from nnjit.errors import NNJitError
from nnjit.tuning.kernels import Candidate, KernelInfo
from nnjit.tuning.space import DeviceInfo, host_cpu
from nnjit.tuning.worker import make_inputs


class CandidateError(Exception):
    """A broken candidate: `reason` is "rejected", "timeout", "crashed", "wrong" or "error"."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        self.message = message
        super().__init__(f"{reason}: {message}")


@dataclass
class Measurement:
    times: list[float]
    output: np.ndarray
    compile_s: float = 0.0
    stat: str = field(default_factory=lambda: os.environ.get("NNJIT_TUNE_STAT", "min"))

    @property
    def median(self) -> float:
        t = sorted(self.times)
        return t[len(t) // 2]

    @property
    def best(self) -> float:
        return min(self.times)

    @property
    def score(self) -> float:
        return self.median if self.stat == "median" else self.best


@runtime_checkable
class Runner(Protocol):
    name: str
    target: str

    def device(self) -> DeviceInfo: ...

    def prepare(self, kernel: KernelInfo, seed: int) -> None: ...

    def measure(self, cand: Candidate, timeout: float, cutoff: float | None = None) -> Measurement: ...

    def close(self) -> None: ...


@dataclass
class TimingPolicy:
    min_runs: int = 3
    max_runs: int = 30
    min_time: float = 0.05


# ------------------------------------------------------------------------ process plumbing


class _Dead(Exception):
    pass


class _Process:
    """A child process spoken to by request / reply, killed (its whole process group) when a
    reply does not come in time. `codec` is "pickle" (4-byte length frames) or "json" (lines)."""

    def __init__(self, argv: list[str], codec: str, cwd: str | None = None, env: dict | None = None):
        self.argv, self.codec, self.cwd, self.env = argv, codec, cwd, env
        self.proc: subprocess.Popen | None = None
        self._buf = b""
        self._log = tempfile.TemporaryFile()

    def start(self) -> None:
        self._buf = b""
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            cwd=self.cwd, env=self.env, start_new_session=True,
        )  # fmt: skip

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for s in (self.proc.stdin, self.proc.stdout):
            try:
                if s is not None:
                    s.close()
            except OSError:
                pass
        self.proc = None

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()

    def stderr_tail(self, n: int = 400) -> str:
        try:
            self._log.seek(0, os.SEEK_END)
            size = self._log.tell()
            self._log.seek(max(0, size - n))
            return self._log.read().decode(errors="replace").strip().replace("\n", " | ")
        except OSError:
            return ""

    def request(self, obj: Any, timeout: float) -> Any:
        self.send(obj)
        return self.receive(timeout)

    def send(self, obj: Any) -> None:
        if not self.alive:
            raise _Dead("not running")
        assert self.proc is not None and self.proc.stdin is not None
        if self.codec == "pickle":
            import pickle

            data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
            payload = struct.pack("<I", len(data)) + data
        else:
            payload = (json.dumps(obj) + "\n").encode()
        try:
            self.proc.stdin.write(payload)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise _Dead("closed its input") from None

    def receive(self, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        if self.codec == "pickle":
            head = self._read_exact(4, deadline)
            (n,) = struct.unpack("<I", head)
            import pickle

            return pickle.loads(self._read_exact(n, deadline))
        while b"\n" not in self._buf:
            self._fill(deadline)
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def _fill(self, deadline: float) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            raise TimeoutError
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            raise _Dead("exited")
        self._buf += chunk

    def _read_exact(self, n: int, deadline: float) -> bytes:
        while len(self._buf) < n:
            self._fill(deadline)
        out, self._buf = self._buf[:n], self._buf[n:]
        return out


class ProcessRunner:
    """Shared logic of runners that measure in a child process: restart after a hang or a
    crash, replaying the setup and the current job."""

    name = "process"
    target = "wasm"
    setup_timeout = 120.0
    job_timeout = 300.0

    def __init__(self, timing: TimingPolicy | None = None):
        self.timing = timing or TimingPolicy()
        self._proc: _Process | None = None
        self._setup_reply: Any = None
        self._job: Any = None
        self._job_sent = False
        self._pending = False
        self.restarts = 0

    # subclasses
    def _argv(self) -> tuple[list[str], str, str | None, dict | None]:
        raise NotImplementedError

    def _setup_request(self) -> Any:
        raise NotImplementedError

    def _unwrap(self, reply: Any) -> Any:
        raise NotImplementedError

    # plumbing
    def start(self) -> None:
        """Starts the measuring process and sends its setup without waiting for the reply:
        the process starts up while the caller does other work (tune_model: the model's
        import). Optional for runners; the first measurement starts it otherwise."""
        if self._proc is not None and (self._proc.alive or self._pending):
            return
        argv, codec, cwd, env = self._argv()
        self._proc = _Process(argv, codec, cwd, env)
        self._proc.start()
        self._job_sent = False
        try:
            self._proc.send(self._setup_request())
            self._pending = True
        except _Dead:
            self._pending = False

    def _ensure(self) -> None:
        if self._proc is not None and self._pending:
            self._pending = False
            try:
                self._setup_reply = self._unwrap(self._proc.receive(self.setup_timeout))
                return
            except (TimeoutError, _Dead) as e:
                tail = self._proc.stderr_tail()
                self._proc.kill()
                raise NNJitError(f"runner '{self.name}' did not start ({e}): {tail}") from None
        if self._proc is not None and self._proc.alive:
            return
        if self._proc is not None:
            self._proc.kill()
            self.restarts += 1
        argv, codec, cwd, env = self._argv()
        self._proc = _Process(argv, codec, cwd, env)
        self._proc.start()
        self._job_sent = False
        try:
            self._setup_reply = self._unwrap(self._proc.request(self._setup_request(), self.setup_timeout))
        except (TimeoutError, _Dead) as e:
            tail = self._proc.stderr_tail()
            self._proc.kill()
            raise NNJitError(f"runner '{self.name}' did not start ({e}): {tail}") from None

    def _call(self, req: Any, timeout: float) -> Any:
        self._ensure()
        if self._job is not None and not self._job_sent:
            self._job_sent = True
            self._unwrap(self._checked(self._job, self.job_timeout))
        return self._checked(req, timeout)

    def _checked(self, req: Any, timeout: float) -> Any:
        assert self._proc is not None
        try:
            return self._proc.request(req, timeout)
        except TimeoutError:
            self._proc.kill()
            raise CandidateError("timeout", f"no result after {timeout:.1f} s (process killed)") from None
        except _Dead as e:
            tail = self._proc.stderr_tail()
            self._proc.kill()
            raise CandidateError("crashed", f"the measuring process {e}: {tail}"[:300]) from None

    def close(self) -> None:
        if self._proc is not None:
            self._proc.close()
            self._proc = None
        self._pending = False


def _python_argv(backend: str) -> tuple[list[str], str, str | None, dict | None]:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    env.setdefault("XDG_RUNTIME_DIR", "/tmp")
    return [sys.executable, "-m", "nnjit.tuning.worker", backend], "pickle", None, env


class _PickleRunner(ProcessRunner):
    backend = "wasmtime"

    def _argv(self):
        return _python_argv(self.backend)

    def _unwrap(self, reply: Any) -> Any:
        status, value = reply
        if status == "ok":
            return value
        if status == "rejected":
            raise CandidateError("rejected", value)
        raise CandidateError("error", value)

    def prepare(self, kernel: KernelInfo, seed: int) -> None:
        """Inputs for `kernel` from `seed`; the worker keeps them (by signature and seed), so
        going back to a kernel prepared before costs no new inputs."""
        params = [dict(s, access="read", bytes=4 * int(np.prod(s["shape"], dtype=np.int64)))
                  for s in kernel.inputs]  # fmt: skip
        out = kernel.output
        params.append(dict(out, access="write", bytes=4 * int(np.prod(out["shape"], dtype=np.int64))))
        self._job = ("job", {"params": params, "inputs": kernel.inputs, "seed": int(seed),
                             "key": f"{kernel.signature}:{int(seed)}"})  # fmt: skip
        self._job_sent = False

    def measure(self, cand: Candidate, timeout: float, cutoff: float | None = None,
                max_time: float | None = None) -> Measurement:  # fmt: skip
        code = cand.binary if cand.binary is not None else cand.source
        t = self.timing
        req = ("measure", {"code": code, "manifest": cand.manifest, "min_runs": t.min_runs,
                           "max_runs": t.max_runs, "min_time": t.min_time, "cutoff": cutoff,
                           "max_time": max_time})  # fmt: skip
        r = self._unwrap(self._call(req, timeout))
        return Measurement(r["times"], r["output"], r["compile_s"])


class WasmtimeRunner(_PickleRunner):
    """Wasm kernels on wasmtime (nnjit/runtime/wasm.py), `threads` threads, in a worker."""

    def measure_set(self, cands: list[Candidate], timeout: float, max_time: float | None = None,
                    min_time: float | None = None) -> list[Measurement]:  # fmt: skip
        """Several candidates of the current kernel measured with their runs interleaved (one
        run of each per round, the order rotating), so that load from other processes hits
        them alike; `min_time` per candidate. One Measurement per candidate."""
        t = self.timing
        req = ("measure_set", {"codes": [c.binary if c.binary is not None else c.source for c in cands],
                               "manifests": [c.manifest for c in cands], "min_runs": t.min_runs,
                               "max_runs": t.max_runs, "min_time": t.min_time if min_time is None else min_time,
                               "max_time": max_time})  # fmt: skip
        r = self._unwrap(self._call(req, timeout))
        return [Measurement(ts, out) for ts, out in zip(r["times"], r["outputs"])]

    name = "wasmtime"
    target = "wasm"
    backend = "wasmtime"

    def __init__(self, threads: int = 0, relaxed_simd: bool = True, timing: TimingPolicy | None = None):
        super().__init__(timing)
        self.threads = threads or os.cpu_count() or 1
        self.relaxed_simd = relaxed_simd

    def _setup_request(self):
        return ("setup", {"threads": self.threads, "relaxed_simd": self.relaxed_simd})

    def device(self) -> DeviceInfo:
        from importlib.metadata import version

        cpu = host_cpu()
        feats = {"simd128", "threads"} | ({"relaxed-simd"} if self.relaxed_simd else set())
        fp = {"runner": "wasmtime", "wasmtime": version("wasmtime"), "cpu": cpu["model"],
              "cores": cpu["cores"], "threads": self.threads, "relaxed-simd": self.relaxed_simd}  # fmt: skip
        return DeviceInfo("wasm", {}, feats, self.threads, cpu["l1_bytes"], cpu["l2_bytes"],
                          cpu["simd_registers"], fp)  # fmt: skip


class WebGPURunner(_PickleRunner):
    """WGSL kernels on wgpu-py (nnjit/runtime/webgpu.py) in a worker: GPU timestamps when the
    adapter has them, else wall clock around submit + sync."""

    name = "wgpu"
    target = "wgsl"
    backend = "wgpu"
    setup_timeout = 180.0

    def __init__(self, timing: TimingPolicy | None = None):
        super().__init__(timing or TimingPolicy(min_runs=3, max_runs=20, min_time=0.05))

    def _setup_request(self):
        return ("setup", {})

    def device(self) -> DeviceInfo:
        self._ensure()
        info = self._setup_reply
        fp = {"runner": "wgpu", "name": info.get("name", ""), "vendor": info.get("vendor", ""),
              "architecture": info.get("architecture", ""),
              "driver": info.get("description", ""), "backend": info.get("backend", "")}  # fmt: skip
        return DeviceInfo("wgsl", dict(info.get("limits", {})), set(info.get("features", [])),
                          fingerprint=fp)  # fmt: skip


class NodeRunner(ProcessRunner):
    """Wasm kernels in V8 through Node (nnjit/tuning/node_harness.js): worker_threads sharing
    one WebAssembly.Memory; relaxed SIMD with --experimental-wasm-relaxed-simd (Node 20)."""

    name = "node"
    target = "wasm"

    def __init__(self, threads: int = 0, relaxed_simd: bool = True, node: str | None = None,
                 timing: TimingPolicy | None = None):  # fmt: skip
        super().__init__(timing)
        self.threads = threads or os.cpu_count() or 1
        self.relaxed_simd = relaxed_simd
        self.node = node or shutil.which("node") or "node"
        self._dir = tempfile.TemporaryDirectory(prefix="nnjit-node-")
        self._count = 0
        self._out_spec: dict | None = None

    def _argv(self):
        harness = str(Path(__file__).resolve().parent / "node_harness.js")
        flags = ["--experimental-wasm-relaxed-simd"] if self.relaxed_simd and self._needs_flag() else []
        return [self.node, *flags, harness], "json", self._dir.name, None

    def _needs_flag(self) -> bool:
        v = self.node_version()
        try:
            major = int(v.lstrip("v").split(".")[0])
        except ValueError:
            return True
        return major < 22

    def node_version(self) -> str:
        if not hasattr(self, "_version"):
            try:
                self._version = subprocess.run([self.node, "--version"], capture_output=True,
                                               text=True, timeout=30).stdout.strip()  # fmt: skip
            except (OSError, subprocess.TimeoutExpired) as e:
                raise NNJitError(f"cannot run node ({e})", hint="install Node.js 20 or newer") from None
        return self._version

    def _setup_request(self):
        return {"cmd": "setup", "threads": self.threads}

    def _unwrap(self, reply: Any) -> Any:
        if reply.get("ok"):
            return reply
        if reply.get("kind") == "rejected":
            raise CandidateError("rejected", reply.get("message", ""))
        raise CandidateError("error", reply.get("message", ""))

    def device(self) -> DeviceInfo:
        self._ensure()
        cpu = host_cpu()
        relaxed = bool(self._setup_reply.get("relaxed_simd")) and self.relaxed_simd
        feats = {"simd128", "threads"} | ({"relaxed-simd"} if relaxed else set())
        fp = {"runner": "node", "node": self.node_version(), "v8": self._setup_reply.get("v8"),
              "cpu": cpu["model"], "cores": cpu["cores"], "threads": self.threads,
              "relaxed-simd": relaxed}  # fmt: skip
        return DeviceInfo("wasm", {}, feats, self.threads, cpu["l1_bytes"], cpu["l2_bytes"],
                          cpu["simd_registers"], fp)  # fmt: skip

    def prepare(self, kernel: KernelInfo, seed: int) -> None:
        d = Path(self._dir.name)
        for f in d.glob("in*.bin"):
            f.unlink()
        arrays = make_inputs(kernel.inputs, seed)
        files = []
        for i, a in enumerate(arrays):
            p = d / f"in{i}.bin"
            a.tofile(p)
            files.append(str(p))
        params = [{"bytes": 4 * int(np.prod(s["shape"], dtype=np.int64)), "access": "read",
                   "dtype": s["dtype"]} for s in kernel.inputs]  # fmt: skip
        out = kernel.output
        params.append({"bytes": 4 * int(np.prod(out["shape"], dtype=np.int64)), "access": "write",
                       "dtype": out["dtype"]})  # fmt: skip
        self._out_spec = out
        self._job = {"cmd": "job", "params": params, "inputs": files + [None]}
        self._job_sent = False

    def measure(self, cand: Candidate, timeout: float, cutoff: float | None = None,
                max_time: float | None = None) -> Measurement:  # fmt: skip
        assert cand.binary is not None and self._out_spec is not None
        d = Path(self._dir.name)
        self._count += 1
        wasm = d / f"c{self._count % 4}.wasm"
        wasm.write_bytes(cand.binary)
        out_file = d / "out.bin"
        t = self.timing
        req = {"cmd": "measure", "wasm": str(wasm), "output": str(out_file),
               "min_runs": t.min_runs, "max_runs": t.max_runs, "min_time": t.min_time,
               "cutoff": cutoff, "max_time": max_time,
               "thread_chunks": int(cand.manifest.get("thread_chunks", 1)),
               "export": cand.manifest.get("export", "run")}  # fmt: skip
        r = self._unwrap(self._call(req, timeout))
        dt = np.float32 if self._out_spec["dtype"] == "f32" else np.int32
        output = np.fromfile(out_file, dtype=dt).reshape(self._out_spec["shape"])
        return Measurement(list(r["times"]), output, float(r.get("compile_s", 0.0)))

    def close(self) -> None:
        super().close()
        self._dir.cleanup()


__all__ = [
    "Runner", "Measurement", "CandidateError", "TimingPolicy", "ProcessRunner",
    "WasmtimeRunner", "WebGPURunner", "NodeRunner",
]  # fmt: skip
