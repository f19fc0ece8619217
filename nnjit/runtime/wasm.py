"""Runs nnjit's Wasm kernels (WAT or binary + manifest) in wasmtime, on threads sharing memory.

`WasmRuntime` owns one Engine (SIMD, relaxed SIMD, threads, shared memory), one SharedMemory
that all kernels import as `env.memory` (grown on demand up to 4 GiB) and, per worker thread,
one Store in which every compiled kernel is instantiated. `run` calls the exported
`run(tid, nthreads, b0, ...)` of thread t's instance on thread t: thread 0 is the calling thread,
the others come from a persistent pool. `run` checks that every buffer lies inside the memory
(kernels only touch their buffers): an out-of-bounds access to a host-created shared memory
makes wasmtime 50 abort the process instead of trapping. wasmtime-py calls into the engine through ctypes, which
releases the GIL, so the threads really run in parallel.

wasmtime-py 50 cannot pass a SharedMemory as an import: `SharedMemory._as_extern` wraps its
pointer in one `ctypes.pointer` too many (TypeError "incompatible types, LP_LP_..."), and
`SharedMemory.size` has the same bug. `_SharedMemory` below is a subclass that overrides those
two methods; nothing in site-packages is patched.
"""

from __future__ import annotations

import ctypes
import hashlib
import math
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import wasmtime
from wasmtime import _ffi as ffi

from nnjit.errors import NNJitError, ShapeError

_PAGE = 65536
_MAX_PAGES = 65536  # 4 GiB
_DTYPES = {"f32": np.dtype(np.float32), "i32": np.dtype(np.int32), "i8": np.dtype(np.int8)}
_POISON = {"f32": np.float32(np.nan), "i32": np.int32(0x7FFFFFFF)}


class _SharedMemory(wasmtime.SharedMemory):
    """wasmtime.SharedMemory whose `_as_extern`/`size` pass the pointer itself (see above)."""

    def _as_extern(self) -> ffi.wasmtime_extern_t:
        union = ffi.wasmtime_extern_union(sharedmemory=self.ptr())
        return ffi.wasmtime_extern_t(ffi.WASMTIME_EXTERN_SHAREDMEMORY, union)

    def size(self) -> int:
        return ffi.wasmtime_sharedmemory_size(self.ptr())


class Kernel:
    """A compiled kernel: its module, one instance (and `run` export) per thread, manifest."""

    def __init__(self, name: str, manifest: dict, module: wasmtime.Module, runs: list[Any]):
        self.name = name
        self.manifest = manifest
        self.module = module
        self.runs = runs  # runs[t] = (store, func)
        self.thread_chunks = int(manifest.get("thread_chunks", 1))
        self.params = manifest.get("params", [])

    def __repr__(self) -> str:
        return f"<wasm Kernel {self.name}: {len(self.params)} params, {self.thread_chunks} chunks>"


class WasmRuntime:
    """Compiles and runs Wasm kernels on `threads` threads over one shared memory."""

    def __init__(self, threads: int = 1, initial_bytes: int = 64 << 20, relaxed_simd: bool = True):
        if threads < 1:
            raise ValueError("threads must be >= 1")
        self.threads = threads
        self.relaxed_simd = relaxed_simd
        cfg = wasmtime.Config()
        cfg.wasm_simd = True
        cfg.wasm_relaxed_simd = relaxed_simd
        cfg.wasm_threads = True
        cfg.shared_memory = True
        cfg.cranelift_opt_level = "speed"
        self.engine = wasmtime.Engine(cfg)
        pages = max(1, min(_MAX_PAGES, -(-int(initial_bytes) // _PAGE)))
        self.memory = _SharedMemory(
            self.engine, wasmtime.MemoryType(wasmtime.Limits(pages, _MAX_PAGES), shared=True)
        )
        self.stores = [wasmtime.Store(self.engine) for _ in range(threads)]
        self._pool = ThreadPoolExecutor(threads - 1, "nnjit-wasm") if threads > 1 else None
        self._top = 16  # offset 0 is kept unused, so a zero offset is never a live buffer
        self._view: np.ndarray | None = None
        self._lock = threading.Lock()
        self._cache: dict[bytes, Kernel] = {}

    # ---------------------------------------------------------------------------- memory

    @property
    def size(self) -> int:
        """Current size of the shared memory in bytes."""
        return self.memory.data_len()

    def _bytes(self) -> np.ndarray:
        n = self.memory.data_len()
        if self._view is None or self._view.size != n:
            addr = ctypes.addressof(self.memory.data_ptr().contents)
            self._view = np.ctypeslib.as_array((ctypes.c_ubyte * n).from_address(addr))
        return self._view

    def alloc(self, nbytes: int, align: int = 16) -> int:
        """Reserves `nbytes` of shared memory; returns its byte offset (bump allocator)."""
        with self._lock:
            off = -(-self._top // align) * align
            end = off + max(int(nbytes), 0)
            if end > _MAX_PAGES * _PAGE:
                raise NNJitError(
                    f"wasm memory exhausted: {end} bytes needed, 4 GiB at most",
                    hint="run smaller batches",
                )
            have = self.memory.data_len()
            if end > have:
                self.memory.grow(-(-(end - have) // _PAGE))
            self._top = end
            return off

    def reset(self) -> None:
        """Frees every allocation (kernels stay compiled)."""
        with self._lock:
            self._top = 16

    def mark(self) -> int:
        return self._top

    def release(self, mark: int) -> None:
        """Frees what was allocated after `mark()` returned `mark`."""
        with self._lock:
            self._top = mark

    def write(self, offset: int, array: np.ndarray) -> None:
        a = np.ascontiguousarray(array)
        raw = a.reshape(-1).view(np.uint8)
        mem = self._bytes()
        if offset < 0 or offset + raw.size > mem.size:
            raise NNJitError(f"write of {raw.size} bytes at {offset} is outside wasm memory")
        mem[offset : offset + raw.size] = raw

    def view(self, offset: int, dtype, shape) -> np.ndarray:
        """The memory at `offset` as an array of `shape` (no copy: valid until memory grows)."""
        dt = np.dtype(dtype)
        shape = tuple(int(s) for s in shape)
        n = math.prod(shape) * dt.itemsize
        mem = self._bytes()
        if offset < 0 or offset + n > mem.size or offset % dt.itemsize:
            raise NNJitError(f"view of {n} bytes at {offset} is outside wasm memory")
        return mem[offset : offset + n].view(dt).reshape(shape)

    def read(self, offset: int, dtype, shape) -> np.ndarray:
        dt = np.dtype(dtype)
        shape = tuple(int(s) for s in shape)
        n = math.prod(shape) * dt.itemsize
        mem = self._bytes()
        if offset < 0 or offset + n > mem.size:
            raise NNJitError(f"read of {n} bytes at {offset} is outside wasm memory")
        return mem[offset : offset + n].copy().view(dt).reshape(shape)

    # ---------------------------------------------------------------------------- kernels

    def compile(self, wat_or_wasm: str | bytes, manifest: dict) -> Kernel:
        """Compiles a kernel and instantiates it once per thread (cached by content)."""
        data = wat_or_wasm.encode() if isinstance(wat_or_wasm, str) else bytes(wat_or_wasm)
        key = hashlib.sha256(data).digest()
        if key in self._cache:
            return self._cache[key]
        name = manifest.get("name", "kernel")
        try:
            module = wasmtime.Module(self.engine, wat_or_wasm)
        except wasmtime.WasmtimeError as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else "invalid module"
            hint = None
            if "relaxed" in str(e).lower() or (
                not self.relaxed_simd and "relaxed-simd" in manifest.get("features", [])
            ):
                hint = "the kernel uses relaxed SIMD: convert it with relaxed-simd=false"
            raise NNJitError(f"cannot compile wasm kernel {name}: {first}", hint=hint) from e
        export = manifest.get("export", "run")
        runs = []
        for store in self.stores:
            inst = wasmtime.Instance(store, module, [self.memory])
            fn = inst.exports(store)[export]
            runs.append((store, fn))
        kernel = Kernel(name, manifest, module, runs)
        self._cache[key] = kernel
        return kernel

    def run(self, kernel: Kernel, offsets: Sequence[int]) -> None:
        """Runs `kernel` with its arguments at `offsets` on min(threads, thread_chunks) threads."""
        if len(offsets) != len(kernel.params):
            raise ShapeError(
                f"kernel {kernel.name} takes {len(kernel.params)} buffers, got {len(offsets)}"
            )
        args = [int(o) for o in offsets]
        size = self.memory.data_len()
        for p, off in zip(kernel.params, args):
            # kernels only touch their buffers; a buffer outside memory would make wasmtime
            # abort the process (a fault in a host-created shared memory is not a clean trap)
            if off < 0 or off + int(p["bytes"]) > size:
                raise ShapeError(
                    f"kernel {kernel.name}: buffer {p['index']} at offset {off} "
                    f"({p['bytes']} bytes) is outside wasm memory ({size} bytes)"
                )
        n = max(1, min(self.threads, kernel.thread_chunks))
        if n == 1:
            store, fn = kernel.runs[0]
            self._call(kernel, fn, store, 0, 1, args)
            return
        assert self._pool is not None
        futures = [
            self._pool.submit(self._call, kernel, *kernel.runs[t][::-1], t, n, args)
            for t in range(1, n)
        ]
        err: BaseException | None = None
        try:
            store, fn = kernel.runs[0]
            self._call(kernel, fn, store, 0, n, args)
        except BaseException as e:  # wait for the others before raising
            err = e
        for f in futures:
            try:
                f.result()
            except BaseException as e:
                err = err or e
        if err is not None:
            raise err

    @staticmethod
    def _call(kernel: Kernel, fn, store, tid: int, nthreads: int, args: list[int]) -> None:
        try:
            fn(store, tid, nthreads, *args)
        except wasmtime.Trap as e:
            lines = [ln.strip() for ln in str(e).splitlines() if "wasm trap:" in ln]
            msg = lines[0].split("wasm trap:", 1)[1].strip() if lines else str(e).split("\n")[0]
            raise NNJitError(f"wasm kernel {kernel.name} trapped on thread {tid}: {msg}") from e

    def run_kernel(
        self, wat: str | bytes, manifest: dict, arrays: Sequence[np.ndarray | None]
    ) -> list[np.ndarray]:
        """Allocates the kernel's buffers, uploads the inputs, poisons the outputs (NaN for
        f32, 0x7fffffff for i32), runs, and returns the written arguments in param order."""
        kernel = self.compile(wat, manifest)
        params = kernel.params
        if len(arrays) != len(params):
            raise ShapeError(f"kernel {kernel.name} takes {len(params)} arrays, got {len(arrays)}")
        mark = self.mark()
        try:
            offsets = []
            for p, a in zip(params, arrays):
                dt = _DTYPES[p["dtype"]]
                off = self.alloc(p["bytes"])
                offsets.append(off)
                if p["access"] == "write" or a is None:
                    if p["access"] != "write":
                        raise ShapeError(f"kernel {kernel.name}: param {p['index']} needs an input")
                    self.write(off, np.full(p["shape"], _POISON[p["dtype"]], dt))
                    continue
                a = np.asarray(a)
                if math.prod(a.shape) != math.prod(p["shape"]):
                    raise ShapeError(
                        f"kernel {kernel.name}: param {p['index']} has shape {list(p['shape'])}, "
                        f"got an array of shape {list(a.shape)}"
                    )
                self.write(off, a.astype(dt, copy=False))
            self.run(kernel, offsets)
            return [
                self.read(off, _DTYPES[p["dtype"]], p["shape"])
                for p, off in zip(params, offsets)
                if p["access"] in ("write", "read_write")
            ]
        finally:
            self.release(mark)

    def time_kernel(self, kernel: Kernel, offsets: Sequence[int], repeat: int) -> list[float]:
        """Wall-clock seconds of `repeat` runs (after one warm-up run)."""
        self.run(kernel, offsets)
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            self.run(kernel, offsets)
            times.append(time.perf_counter() - t0)
        return times

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


__all__ = ["WasmRuntime", "Kernel"]
