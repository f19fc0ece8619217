"""Runs WGSL kernels (with their manifests) on a WebGPU device through wgpu-py.

`WebGPURuntime` owns one adapter + device. Work is recorded into a pending command encoder
(`dispatch`), submitted by `flush` and waited for by `sync` (reading a small buffer: wgpu-py's
`on_submitted_work_done_sync` is not usable everywhere). Bind groups are cached per
(kernel, buffers). `default_runtime()` gives one shared runtime per process (creating a
device takes about a second on lavapipe).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import OrderedDict
from typing import Any

import numpy as np

from nnjit.errors import NNJitError, ShapeError
from nnjit.runtime.adapters import is_cpu_adapter

_OPTIONAL_FEATURES = ("subgroup", "shader-f16", "timestamp-query")
_RAISED_LIMITS = (
    "max-storage-buffer-binding-size",
    "max-buffer-size",
    "max-compute-workgroup-storage-size",
    "max-compute-invocations-per-workgroup",
    "max-compute-workgroup-size-x",
    "max-compute-workgroup-size-y",
    "max-compute-workgroup-size-z",
    "max-compute-workgroups-per-dimension",
    "max-storage-buffers-per-shader-stage",
    "max-bindings-per-bind-group",
)
_DTYPES = {"f32": np.float32, "i32": np.int32, "f16": np.float16}
_POISON = {"f32": np.float32(np.nan), "i32": np.int32(0x7FFFFFFF), "f16": np.float16(np.nan)}
_BIND_GROUP_CACHE = 4096


def _padded(nbytes: int) -> int:
    """GPU buffers are allocated in multiples of 16 bytes (a vec4<f32> array element)."""
    return max(16, -(-int(nbytes) // 16) * 16)


class Kernel:
    """A compiled kernel: shader module, pipeline and bind-group layout from its manifest."""

    def __init__(self, name: str, wgsl: str, manifest: dict, pipeline: Any, layout: Any):
        self.name = name
        self.wgsl = wgsl
        self.manifest = manifest
        self.pipeline = pipeline
        self.layout = layout
        self.dispatch_grid = tuple(int(d) for d in manifest["dispatch"])
        self.bindings = sorted(manifest["bindings"], key=lambda b: b["binding"])

    def __repr__(self) -> str:
        return f"<Kernel {self.name} dispatch={self.dispatch_grid}>"


class WebGPURuntime:
    """One WebGPU adapter + device; compiles kernels, owns buffers, dispatches and times."""

    def __init__(self, power_preference: str = "high-performance"):
        os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
        import wgpu

        self._wgpu = wgpu
        adapter = wgpu.gpu.request_adapter_sync(power_preference=power_preference)
        if adapter is None:
            raise NNJitError("no WebGPU adapter found", hint="install a Vulkan driver (lavapipe)")
        features = [f for f in _OPTIONAL_FEATURES if f in adapter.features]
        limits = {k: adapter.limits[k] for k in _RAISED_LIMITS if k in adapter.limits}
        self.adapter = adapter
        self.device = adapter.request_device_sync(
            required_features=features, required_limits=limits
        )
        self.queue = self.device.queue
        self.features = set(features)
        self.limits = dict(self.device.limits)
        ainfo = adapter.info
        self.info: dict[str, Any] = {
            "name": ainfo.get("device", ""),
            "vendor": ainfo.get("vendor", ""),
            "architecture": ainfo.get("architecture", ""),
            "description": ainfo.get("description", ""),
            "backend": ainfo.get("backend_type", ""),
            "device_type": ainfo.get("adapter_type", ""),
            "features": sorted(self.features),
            "adapter_features": sorted(adapter.features),
            "limits": self.limits,
        }
        self._encoder: Any = None
        self._pass: Any = None
        self._bind_groups: OrderedDict[tuple, Any] = OrderedDict()
        self._kernels: dict[tuple[str, str], Kernel] = {}
        self._sync_buf = self.device.create_buffer(
            size=16, usage=wgpu.BufferUsage.STORAGE | wgpu.BufferUsage.COPY_SRC
        )
        self._query_set: Any = None

    # ------------------------------------------------------------------ kernels

    def create_kernel(self, wgsl: str, manifest: dict) -> Kernel:
        """Shader module + compute pipeline; a compile error raises NNJitError naming the kernel."""
        wgpu = self._wgpu
        name = str(manifest.get("name", "kernel"))
        key = (wgsl, json.dumps(manifest, sort_keys=True))
        cached = self._kernels.get(key)
        if cached is not None:
            return cached
        self._check_manifest(name, manifest)
        try:
            module = self.device.create_shader_module(code=wgsl, label=name)
            entries = [
                {
                    "binding": b["binding"],
                    "visibility": wgpu.ShaderStage.COMPUTE,
                    "buffer": {
                        "type": wgpu.BufferBindingType.read_only_storage
                        if b["access"] == "read"
                        else wgpu.BufferBindingType.storage
                    },
                }
                for b in manifest["bindings"]
            ]
            layout = self.device.create_bind_group_layout(entries=entries, label=name)
            playout = self.device.create_pipeline_layout(bind_group_layouts=[layout], label=name)
            pipeline = self.device.create_compute_pipeline(
                layout=playout,
                compute={"module": module, "entry_point": manifest.get("entry", "main")},
                label=name,
            )
        except wgpu.GPUError as e:
            msg = str(getattr(e, "message", e)).strip()
            raise NNJitError(
                f"WGSL kernel '{name}' failed to compile: {msg}", where=f"kernel {name}"
            ) from None
        k = Kernel(name, wgsl, manifest, pipeline, layout)
        self._kernels[key] = k
        return k

    def unsupported(self, manifest: dict) -> str | None:
        """Why this device cannot run a kernel of `manifest` for want of a feature (a kernel
        that reads float16 needs "shader-f16"), or None."""
        for f in manifest.get("features", ()):
            if f not in self.features:
                return f"needs the WebGPU feature '{f}', which this adapter lacks"
        return None

    def _check_manifest(self, name: str, m: dict) -> None:
        why = self.unsupported(m)
        if why is not None:
            raise NNJitError(f"kernel '{name}' {why}", hint="use a candidate without it (f32 weights)")
        lim = self.limits
        ws = [int(x) for x in m["workgroup_size"]]
        if math.prod(ws) > lim.get("max-compute-invocations-per-workgroup", 256):
            raise NNJitError(
                f"kernel '{name}': workgroup size {ws} exceeds the device's "
                f"{lim.get('max-compute-invocations-per-workgroup')} invocations per workgroup",
                hint="choose a smaller workgroup in the schedule",
            )
        wgs = int(m.get("workgroup_storage_bytes", 0))
        if wgs > lim.get("max-compute-workgroup-storage-size", 16384):
            raise NNJitError(
                f"kernel '{name}': {wgs} bytes of workgroup memory exceed the device's "
                f"{lim.get('max-compute-workgroup-storage-size')}",
                hint="choose smaller tiles in the schedule",
            )
        binding = lim.get("max-storage-buffer-binding-size", 128 << 20)
        for b in m["bindings"]:
            if int(b["bytes"]) > binding:
                raise NNJitError(
                    f"kernel '{name}': binding {b['binding']} takes {b['bytes']} bytes, over the "
                    f"device's maxStorageBufferBindingSize of {binding}",
                    hint="recompile with NNJIT_MAX_BINDING_BYTES at most that (the default, "
                    "128 MiB, fits every device)",
                )
        per_dim = lim.get("max-compute-workgroups-per-dimension", 65535)
        if any(int(d) > per_dim for d in m["dispatch"]):
            raise NNJitError(
                f"kernel '{name}': dispatch {m['dispatch']} exceeds {per_dim} per dimension"
            )

    # ------------------------------------------------------------------ buffers

    def create_buffer(self, nbytes: int) -> Any:
        """A storage buffer of at least `nbytes` (rounded up to 16), copyable both ways."""
        wgpu = self._wgpu
        usage = wgpu.BufferUsage.STORAGE | wgpu.BufferUsage.COPY_SRC | wgpu.BufferUsage.COPY_DST
        return self.device.create_buffer(size=_padded(nbytes), usage=usage)

    def write_buffer(self, buf: Any, array: np.ndarray) -> None:
        """Copies `array` (its bytes, C order) to the start of `buf` (after pending work)."""
        self.flush()  # keep program order: work recorded before this write sees the old data
        data = np.ascontiguousarray(array)
        if data.nbytes > buf.size:
            raise ShapeError(f"{data.nbytes} bytes do not fit a buffer of {buf.size} bytes")
        if data.nbytes % 4:
            data = np.frombuffer(data.tobytes() + b"\0" * (4 - data.nbytes % 4), dtype=np.uint8)
        if data.nbytes:
            self.queue.write_buffer(buf, 0, data)

    def read_buffer(self, buf: Any, dtype: Any, shape: Any) -> np.ndarray:
        """The first prod(shape) elements of `buf` as an array (waits for pending work)."""
        self.flush()
        dt = np.dtype(_DTYPES.get(dtype, dtype) if isinstance(dtype, str) else dtype)
        shape = tuple(int(s) for s in shape)
        n = math.prod(shape) * dt.itemsize
        if n == 0:
            return np.zeros(shape, dtype=dt)
        size = -(-n // 4) * 4
        raw = self.queue.read_buffer(buf, 0, size)
        return np.frombuffer(raw, dtype=np.uint8)[:n].view(dt).reshape(shape).copy()

    # ----------------------------------------------------------------- dispatch

    def _bind_group(self, kernel: Kernel, buffers: list) -> Any:
        key = (id(kernel), *(id(b) for b in buffers))
        bg = self._bind_groups.get(key)
        if bg is not None and bg[1] is kernel and all(x is y for x, y in zip(bg[2], buffers)):
            self._bind_groups.move_to_end(key)
            return bg[0]
        if len(buffers) != len(kernel.bindings):
            raise ShapeError(
                f"kernel '{kernel.name}' takes {len(kernel.bindings)} buffers, got {len(buffers)}"
            )
        entries = []
        for b, buf in zip(kernel.bindings, buffers):
            if buf.size < b["bytes"]:
                raise ShapeError(
                    f"kernel '{kernel.name}': binding {b['binding']} needs {b['bytes']} bytes, "
                    f"the buffer has {buf.size}"
                )
            resource = {"buffer": buf, "offset": 0, "size": buf.size}
            entries.append({"binding": b["binding"], "resource": resource})
        group = self.device.create_bind_group(layout=kernel.layout, entries=entries)
        # keep kernel and buffers alive with the entry so that ids are not reused
        self._bind_groups[key] = (group, kernel, list(buffers))
        if len(self._bind_groups) > _BIND_GROUP_CACHE:
            self._bind_groups.popitem(last=False)
        return group

    def dispatch(self, kernel: Kernel, buffers: list) -> None:
        """Records one dispatch of `kernel` on `buffers` (in binding order) into pending work."""
        group = self._bind_group(kernel, buffers)
        if any(d == 0 for d in kernel.dispatch_grid):
            return
        if self._pass is None:
            if self._encoder is None:
                self._encoder = self.device.create_command_encoder()
            self._pass = self._encoder.begin_compute_pass()
        self._pass.set_pipeline(kernel.pipeline)
        self._pass.set_bind_group(0, group)
        self._pass.dispatch_workgroups(*kernel.dispatch_grid)

    def copy_buffer(self, src: Any, src_offset: int, dst: Any, dst_offset: int, nbytes: int) -> None:
        """Records a copy of `nbytes` between two buffers (offsets and size multiples of 4)
        into pending work, after the dispatches recorded so far."""
        if self._pass is not None:
            self._pass.end()
            self._pass = None
        if self._encoder is None:
            self._encoder = self.device.create_command_encoder()
        self._encoder.copy_buffer_to_buffer(src, src_offset, dst, dst_offset, nbytes)

    def flush(self) -> None:
        """Submits the pending work (if any)."""
        if self._pass is not None:
            self._pass.end()
            self._pass = None
        if self._encoder is not None:
            self.queue.submit([self._encoder.finish()])
            self._encoder = None

    def sync(self) -> None:
        """Submits pending work and waits until the device has finished all of it."""
        self.flush()
        self.queue.read_buffer(self._sync_buf, 0, 4)

    # ---------------------------------------------------------------- one-shot

    def run_kernel(self, wgsl: str, manifest: dict, arrays: list) -> list[np.ndarray]:
        """Runs one kernel on fresh buffers: uploads the arrays of read/read_write bindings,
        fills write-only ones with NaN (0x7fffffff for i32), dispatches, and returns the
        arrays of the written bindings (write and read_write) in binding order.

        `arrays` has one entry per binding; an entry for a write-only binding may be None."""
        kernel = self.create_kernel(wgsl, manifest)
        if len(arrays) != len(kernel.bindings):
            raise ShapeError(
                f"kernel '{kernel.name}' takes {len(kernel.bindings)} arrays, got {len(arrays)}"
            )
        bufs, outs = [], []
        for b, arr in zip(kernel.bindings, arrays):
            dt = _DTYPES[b["dtype"]]
            shape = tuple(b["shape"])
            buf = self.create_buffer(b["bytes"])
            if b["access"] == "write":
                if arr is not None and tuple(np.shape(arr)) != shape:
                    raise ShapeError(f"binding {b['binding']}: shape {np.shape(arr)} != {shape}")
                n = buf.size // np.dtype(dt).itemsize
                self.write_buffer(buf, np.full(n, _POISON[b["dtype"]], dtype=dt))
            else:
                a = np.asarray(arr)
                if a.shape != shape:
                    raise ShapeError(f"binding {b['binding']}: shape {a.shape} != {shape}")
                if dt == np.int32 and a.dtype != np.int32:
                    if a.size and (a.min() < -(2**31) or a.max() >= 2**31):
                        raise ShapeError(f"binding {b['binding']}: values do not fit in i32")
                self.write_buffer(buf, a.astype(dt, copy=False))
            bufs.append(buf)
        self.dispatch(kernel, bufs)
        for b, buf in zip(kernel.bindings, bufs):
            if b["access"] != "read":
                outs.append(self.read_buffer(buf, _DTYPES[b["dtype"]], b["shape"]))
        return outs

    # ------------------------------------------------------------------- timing

    def time_kernel(self, kernel: Kernel, buffers: list, repeat: int) -> list[float]:
        """Seconds per run of `kernel` on `buffers`, `repeat` runs (after one warm-up run):
        GPU timestamps around each compute pass when the device has them, else wall clock
        around submit + sync."""
        repeat = max(1, int(repeat))
        group = self._bind_group(kernel, buffers)
        self.dispatch(kernel, buffers)  # warm-up
        self.sync()
        if "timestamp-query" in self.features:
            times: list[float] = []
            while len(times) < repeat:  # query sets hold at most 4096 timestamps
                times += self._time_with_timestamps(kernel, group, min(1024, repeat - len(times)))
            return times
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            self.dispatch(kernel, buffers)
            self.sync()
            times.append(time.perf_counter() - t0)
        return times

    def _time_with_timestamps(self, kernel: Kernel, group: Any, repeat: int) -> list[float]:
        wgpu = self._wgpu
        n = 2 * repeat
        qs = self.device.create_query_set(type=wgpu.QueryType.timestamp, count=n)
        resolve = self.device.create_buffer(
            size=8 * n, usage=wgpu.BufferUsage.QUERY_RESOLVE | wgpu.BufferUsage.COPY_SRC
        )
        enc = self.device.create_command_encoder()
        for r in range(repeat):
            p = enc.begin_compute_pass(
                timestamp_writes={
                    "query_set": qs,
                    "beginning_of_pass_write_index": 2 * r,
                    "end_of_pass_write_index": 2 * r + 1,
                }
            )
            p.set_pipeline(kernel.pipeline)
            p.set_bind_group(0, group)
            if all(d > 0 for d in kernel.dispatch_grid):
                p.dispatch_workgroups(*kernel.dispatch_grid)
            p.end()
        enc.resolve_query_set(qs, 0, n, resolve, 0)
        self.queue.submit([enc.finish()])
        ticks = np.frombuffer(self.queue.read_buffer(resolve, 0, 8 * n), dtype=np.uint64)
        qs.destroy()
        resolve.destroy()
        # WebGPU timestamps are nanoseconds
        return [
            max(0.0, float(int(ticks[2 * r + 1]) - int(ticks[2 * r]))) * 1e-9
            for r in range(repeat)
        ]


def describe_adapter(info: dict) -> tuple[str, bool]:
    """(the adapter in words, whether it runs on the CPU) from WebGPURuntime.info: a CPU
    (software) adapter's times say nothing about GPU speed."""
    parts = [str(info.get("name") or "unknown adapter")]
    for key, label in (("backend", "backend"), ("vendor", "vendor"), ("architecture", "architecture"),
                       ("device_type", "type")):  # fmt: skip
        if info.get(key):
            parts.append(f"{label} {info[key]}")
    text = ", ".join(parts)
    return text, is_cpu_adapter(info)


_DEFAULT: WebGPURuntime | None = None


def default_runtime() -> WebGPURuntime:
    """One WebGPURuntime per process (tests and tools share it)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = WebGPURuntime()
    return _DEFAULT


__all__ = ["WebGPURuntime", "Kernel", "default_runtime", "describe_adapter"]
