"""nnjit.runtime.webgpu on lavapipe: device setup, buffers, dispatch order, bind-group cache,
compile errors, NaN poisoning, timing."""

from __future__ import annotations

import numpy as np
import pytest

from nnjit.errors import NNJitError, ShapeError

RNG = np.random.default_rng()

# y[i] = x[i] * 2 + 1 for i < n (one invocation per element)
SCALE_WGSL = """
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i < arrayLength(&x)) {
    y[i] = x[i] * 2.0f + 1.0f;
  }
}
"""


def scale_manifest(n: int, written: int | None = None) -> dict:
    return {
        "name": "scale",
        "target": "wgsl",
        "kind": "elementwise",
        "schedule": {},
        "entry": "main",
        "workgroup_size": [64, 1, 1],
        "dispatch": [-(-(written if written is not None else n) // 64), 1, 1],
        "bindings": [
            {"binding": 0, "access": "read", "dtype": "f32", "shape": [n], "bytes": 4 * n},
            {"binding": 1, "access": "write", "dtype": "f32", "shape": [n], "bytes": 4 * n},
        ],
        "workgroup_storage_bytes": 0,
    }


@pytest.fixture(scope="module")
def rt():
    from nnjit.runtime.webgpu import default_runtime

    return default_runtime()


def test_default_runtime_is_shared_and_describes_the_device(rt):
    from nnjit.runtime.webgpu import default_runtime

    assert default_runtime() is rt
    info = rt.info
    for key in ("name", "vendor", "backend", "device_type", "features", "limits"):
        assert key in info
    # optional features are requested when the adapter has them
    for f in ("subgroup", "shader-f16", "timestamp-query"):
        assert (f in info["features"]) == (f in info["adapter_features"])
    # limits are raised to the adapter's
    assert rt.limits["max-storage-buffer-binding-size"] == rt.adapter.limits[
        "max-storage-buffer-binding-size"
    ]
    assert rt.limits["max-compute-invocations-per-workgroup"] == rt.adapter.limits[
        "max-compute-invocations-per-workgroup"
    ]


@pytest.mark.parametrize("dtype,n", [(np.float32, 5), (np.int32, 7), (np.float32, 1000)])
def test_buffer_round_trip(rt, dtype, n):
    a = (RNG.standard_normal(n) * 1000).astype(dtype)
    buf = rt.create_buffer(a.nbytes)
    assert buf.size % 16 == 0 and buf.size >= a.nbytes
    rt.write_buffer(buf, a)
    got = rt.read_buffer(buf, dtype, (n,))
    np.testing.assert_array_equal(got, a)
    assert rt.read_buffer(buf, "f32" if dtype == np.float32 else "i32", (n,)).dtype == dtype


def test_run_kernel_poisons_outputs(rt):
    n = 100
    x = RNG.standard_normal(n).astype(np.float32)
    # the dispatch covers only 64 invocations: elements 64.. keep the poison
    (y,) = rt.run_kernel(SCALE_WGSL, scale_manifest(n, written=64), [x, None])
    np.testing.assert_allclose(y[:64], x[:64] * 2 + 1, rtol=1e-6)
    assert np.all(np.isnan(y[64:]))
    (y,) = rt.run_kernel(SCALE_WGSL, scale_manifest(n), [x, None])
    np.testing.assert_allclose(y, x * 2 + 1, rtol=1e-6)


def test_i32_outputs_are_poisoned_with_int_max(rt):
    src = """
@group(0) @binding(0) var<storage, read_write> y: array<i32>;
@compute @workgroup_size(1, 1, 1)
fn main() { y[1] = 5i; }
"""
    man = {
        "name": "poke", "entry": "main", "workgroup_size": [1, 1, 1], "dispatch": [1, 1, 1],
        "bindings": [{"binding": 0, "access": "write", "dtype": "i32", "shape": [3], "bytes": 12}],
        "workgroup_storage_bytes": 0,
    }  # fmt: skip
    (y,) = rt.run_kernel(src, man, [None])
    np.testing.assert_array_equal(y, [0x7FFFFFFF, 5, 0x7FFFFFFF])


def test_dispatch_flush_sync_keep_program_order(rt):
    n = 256
    k = rt.create_kernel(SCALE_WGSL, scale_manifest(n))
    x = rt.create_buffer(4 * n)
    y = rt.create_buffer(4 * n)
    z = rt.create_buffer(4 * n)
    a = RNG.standard_normal(n).astype(np.float32)
    b = RNG.standard_normal(n).astype(np.float32)
    rt.write_buffer(x, a)
    rt.dispatch(k, [x, y])  # y = 2a + 1
    rt.dispatch(k, [y, z])  # z = 2y + 1 (reads the first dispatch's result)
    rt.write_buffer(x, b)  # recorded work must still see a
    rt.dispatch(k, [x, y])  # y = 2b + 1
    rt.sync()
    np.testing.assert_allclose(rt.read_buffer(z, np.float32, (n,)), 4 * a + 3, rtol=1e-6)
    np.testing.assert_allclose(rt.read_buffer(y, np.float32, (n,)), 2 * b + 1, rtol=1e-6)


def test_bind_groups_are_cached_per_kernel_and_buffers(rt):
    n = 64
    k = rt.create_kernel(SCALE_WGSL, scale_manifest(n))
    assert rt.create_kernel(SCALE_WGSL, scale_manifest(n)) is k  # pipelines cached too
    x, y, z = (rt.create_buffer(4 * n) for _ in range(3))
    g1 = rt._bind_group(k, [x, y])
    assert rt._bind_group(k, [x, y]) is g1
    assert rt._bind_group(k, [x, z]) is not g1
    with pytest.raises(ShapeError):
        rt.dispatch(k, [x])
    small = rt.create_buffer(16)
    with pytest.raises(ShapeError, match="needs 256 bytes"):
        rt.dispatch(k, [x, small])


def test_compile_error_names_kernel_and_driver_message(rt):
    bad = SCALE_WGSL.replace("2.0f", "2.0f + true")
    man = scale_manifest(8)
    man["name"] = "k7_matmul"
    with pytest.raises(NNJitError) as e:
        rt.create_kernel(bad, man)
    msg = str(e.value)
    assert "k7_matmul" in msg and "failed to compile" in msg
    assert "bool" in msg or "true" in msg  # the driver's diagnostic is kept


def test_manifest_limits_are_checked(rt):
    man = scale_manifest(8)
    man["workgroup_size"] = [rt.limits["max-compute-invocations-per-workgroup"] + 1, 1, 1]
    with pytest.raises(NNJitError, match="invocations per workgroup"):
        rt.create_kernel(SCALE_WGSL, man)
    man = scale_manifest(8)
    man["workgroup_storage_bytes"] = rt.limits["max-compute-workgroup-storage-size"] + 4
    with pytest.raises(NNJitError, match="workgroup memory"):
        rt.create_kernel(SCALE_WGSL, man)


def test_run_kernel_checks_shapes(rt):
    with pytest.raises(ShapeError):
        rt.run_kernel(SCALE_WGSL, scale_manifest(8), [np.zeros(9, np.float32), None])
    with pytest.raises(ShapeError):
        rt.run_kernel(SCALE_WGSL, scale_manifest(8), [np.zeros(8, np.float32)])


def test_time_kernel(rt):
    n = 1 << 16
    k = rt.create_kernel(SCALE_WGSL, scale_manifest(n))
    x, y = rt.create_buffer(4 * n), rt.create_buffer(4 * n)
    rt.write_buffer(x, RNG.standard_normal(n).astype(np.float32))
    times = rt.time_kernel(k, [x, y], repeat=5)
    assert len(times) == 5
    assert all(0 < t < 1.0 for t in times)
    # the kernel really ran
    out = rt.read_buffer(y, np.float32, (n,))
    assert np.all(np.isfinite(out))
