"""nnjit/runtime/wasm.py, and the whole wasm path end to end.

Runtime: memory (alloc/grow/read/write, poison), threads (1 and 2 give identical results; a
kernel without a thread loop runs once), relaxed SIMD on/off, errors (traps, shape mismatch).
End to end: nn_tensor models lowered by convert-nn-tensor-to-nn-loop{target=wasm} with several
schedules, converted by convert-nn-loop-to-wasm, printed, assembled and run in wasmtime, against
nn_tensor_eval in float64 (every output and intermediate buffer poisoned first).
"""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp
from xdsl.parser import Parser

from nnjit.backends.wat_printer import wat_kernels
from nnjit.dialects import nn_loop
from nnjit.errors import NNJitError, ShapeError
from nnjit.passes.convert_nn_loop_to_wasm import ConvertNNLoopToWasmPass
from nnjit.passes.nn_loop_expand_math import NNLoopExpandMathPass
from nnjit.passes.nn_loop_unroll import NNLoopUnrollPass
from nnjit.registry import make_context
from nnjit.runtime.wasm import WasmRuntime

CTX = make_context()
RNG = np.random.default_rng(7)
POISON = {np.dtype(np.float32): np.float32(np.nan), np.dtype(np.int32): np.int32(0x7FFFFFFF)}


@pytest.fixture(scope="module")
def rt1():
    rt = WasmRuntime(threads=1, initial_bytes=1 << 20)
    yield rt
    rt.close()


@pytest.fixture(scope="module")
def rt2():
    rt = WasmRuntime(threads=2, initial_bytes=1 << 20)
    yield rt
    rt.close()


def convert(src: str, relaxed: bool = True) -> ModuleOp:
    m = Parser(CTX, src).parse_module()
    m.verify()
    NNLoopExpandMathPass(target="wasm").apply(CTX, m)
    NNLoopUnrollPass().apply(CTX, m)
    ConvertNNLoopToWasmPass(relaxed_simd=relaxed).apply(CTX, m)
    m.verify()
    return m


SAXPY = """
nn_loop.kernel @saxpy(%x: memref<37xf32> read, %y: memref<37xf32> read_write) kind "elementwise" target "wasm" {
  %a = arith.constant 2.5 : f32
  nn_loop.for %i = 0 to 37 map "thread" {
    %xv = nn_loop.load %x[%i] : memref<37xf32> -> f32
    %yv = nn_loop.load %y[%i] : memref<37xf32> -> f32
    %f = math.fma %a, %xv, %yv : f32
    nn_loop.store %f, %y[%i] : f32, memref<37xf32>
  }
}
"""

SERIAL = """
nn_loop.kernel @prefix(%x: memref<9xi32> read, %y: memref<9xi32> write) kind "reduce" target "wasm" {
  %c0 = arith.constant 0 : index
  %acc = nn_loop.alloc : memref<1xi32, #nn_loop<space private>>
  %z = arith.constant 0 : i32
  nn_loop.store %z, %acc[%c0] : i32, memref<1xi32, #nn_loop<space private>>
  nn_loop.for %i = 0 to 9 {
    %v = nn_loop.load %x[%i] : memref<9xi32> -> i32
    %s = nn_loop.load %acc[%c0] : memref<1xi32, #nn_loop<space private>> -> i32
    %t = arith.addi %s, %v : i32
    nn_loop.store %t, %acc[%c0] : i32, memref<1xi32, #nn_loop<space private>>
    nn_loop.store %t, %y[%i] : i32, memref<9xi32>
  }
}
"""


def kernel_of(src: str, relaxed: bool = True):
    ((_, wat, man),) = wat_kernels(convert(src, relaxed))
    return wat, man


# -------------------------------------------------------------------------------- memory


def test_alloc_is_aligned_and_grows_memory():
    rt = WasmRuntime(threads=1, initial_bytes=1)
    try:
        assert rt.size == 65536
        a = rt.alloc(10)
        b = rt.alloc(100, align=64)
        assert a % 16 == 0 and b % 64 == 0 and b >= a + 10
        big = rt.alloc(3 << 20)  # grows the shared memory
        assert rt.size >= big + (3 << 20)
        x = RNG.standard_normal(1000).astype(np.float32)
        rt.write(big + 12, x)
        np.testing.assert_array_equal(rt.read(big + 12, np.float32, (1000,)), x)
        rt.reset()
        assert rt.alloc(4) == a
    finally:
        rt.close()


def test_read_write_round_trip_and_bounds(rt1):
    off = rt1.alloc(24)
    v = np.arange(6, dtype=np.int32).reshape(2, 3) - 3
    rt1.write(off, v)
    np.testing.assert_array_equal(rt1.read(off, np.int32, (2, 3)), v)
    with pytest.raises(NNJitError):
        rt1.read(rt1.size - 4, np.float32, (2,))


# ------------------------------------------------------------------------------- running


def test_run_kernel_read_write_and_threads_identical(rt1, rt2):
    wat, man = kernel_of(SAXPY)
    assert man["thread_chunks"] == 37
    x = RNG.standard_normal(37).astype(np.float32)
    y = RNG.standard_normal(37).astype(np.float32)
    (o1,) = rt1.run_kernel(wat, man, [x, y])
    (o2,) = rt2.run_kernel(wat, man, [x, y])
    ref = 2.5 * x.astype(np.float64) + y
    assert np.max(np.abs(o1 - ref)) / np.max(np.abs(ref)) < 1e-6
    np.testing.assert_array_equal(o1, o2)


def test_kernel_without_thread_loop_runs_once(rt2):
    wat, man = kernel_of(SERIAL)
    assert man["thread_chunks"] == 1
    x = RNG.integers(-50, 50, 9).astype(np.int32)
    (y,) = rt2.run_kernel(wat, man, [x, None])
    np.testing.assert_array_equal(y, np.cumsum(x))


def test_outputs_are_poisoned_before_running(rt1):
    # a kernel that writes only part of its output: the rest must read back as the poison
    src = """
nn_loop.kernel @half(%x: memref<8xf32> read, %y: memref<8xf32> write, %z: memref<3xi32> write) kind "copy" target "wasm" {
  nn_loop.for %i = 0 to 4 map "thread" {
    %v = nn_loop.load %x[%i] : memref<8xf32> -> f32
    nn_loop.store %v, %y[%i] : f32, memref<8xf32>
  }
}"""
    wat, man = kernel_of(src)
    x = RNG.standard_normal(8).astype(np.float32)
    y, z = rt1.run_kernel(wat, man, [x, None, None])
    np.testing.assert_array_equal(y[:4], x[:4])
    assert np.isnan(y[4:]).all()
    assert (z == 0x7FFFFFFF).all()


def test_time_kernel_and_compile_cache(rt2):
    wat, man = kernel_of(SAXPY)
    k = rt2.compile(wat, man)
    assert rt2.compile(wat, man) is k
    offs = [rt2.alloc(p["bytes"]) for p in man["params"]]
    times = rt2.time_kernel(k, offs, 3)
    assert len(times) == 3 and all(t > 0 for t in times)


def test_relaxed_simd_off_runtime_rejects_relaxed_kernel():
    src = """
nn_loop.kernel @vfma(%x: memref<8xf32> read_write) kind "elementwise" target "wasm" {
  nn_loop.for %i = 0 to 8 step 4 map "thread" {
    %v = nn_loop.load %x[%i] : memref<8xf32> -> vector<4xf32>
    %f = math.fma %v, %v, %v : vector<4xf32>
    nn_loop.store %f, %x[%i] : vector<4xf32>, memref<8xf32>
  }
}"""
    x = RNG.standard_normal(8).astype(np.float32)
    ref = x.astype(np.float64) ** 2 + x
    rt = WasmRuntime(threads=1, initial_bytes=1, relaxed_simd=False)
    try:
        wat, man = kernel_of(src, relaxed=True)
        assert "relaxed-simd" in man["features"]
        with pytest.raises(NNJitError, match="relaxed"):
            rt.compile(wat, man)
        wat, man = kernel_of(src, relaxed=False)
        assert "relaxed-simd" not in man["features"]
        (y,) = rt.run_kernel(wat, man, [x])
        assert np.max(np.abs(y - ref)) / np.max(np.abs(ref)) < 1e-6
    finally:
        rt.close()


def test_trap_and_shape_errors(rt2):
    # a division by zero traps on every thread: the trap becomes an NNJitError
    src = """
nn_loop.kernel @div(%x: memref<6xi32> read, %y: memref<6xi32> write) kind "elementwise" target "wasm" {
  nn_loop.for %i = 0 to 6 map "thread" {
    %v = nn_loop.load %x[%i] : memref<6xi32> -> i32
    %q = arith.divsi %v, %v : i32
    nn_loop.store %q, %y[%i] : i32, memref<6xi32>
  }
}"""
    wat, man = kernel_of(src)
    (ok,) = rt2.run_kernel(wat, man, [np.arange(1, 7, dtype=np.int32), None])
    np.testing.assert_array_equal(ok, 1)
    with pytest.raises(NNJitError, match="trapped on thread .: integer divide by zero"):
        rt2.run_kernel(wat, man, [np.zeros(6, np.int32), None])
    # buffers outside memory are refused before running
    wat, man = kernel_of(SAXPY)
    k = rt2.compile(wat, man)
    with pytest.raises(ShapeError, match="outside wasm memory"):
        rt2.run(k, [rt2.size - 8, rt2.alloc(148)])
    with pytest.raises(ShapeError):
        rt2.run(k, [0])
    with pytest.raises(ShapeError):
        rt2.run_kernel(wat, man, [np.zeros(5, np.float32), np.zeros(37, np.float32)])


# ---------------------------------------------------------------------- end to end (models)


def run_model_wasm(rt: WasmRuntime, module: ModuleOp, inputs, weights, relaxed=True):
    """Runs a bufferized @main (docs/ir.md) whose kernels target wasm, in `rt`."""
    from nnjit.interp.nn_loop_eval import _constant, _to_storage, find_main

    NNLoopExpandMathPass(target="wasm").apply(CTX, module)
    NNLoopUnrollPass().apply(CTX, module)
    ConvertNNLoopToWasmPass(relaxed_simd=relaxed).apply(CTX, module)
    module.verify()
    kernels = {name: rt.compile(w, man) for name, w, man in wat_kernels(module)}
    main = find_main(module)
    block = main.body.block
    n_out = main.attributes["nnjit.num_outputs"].value.data  # type: ignore[attr-defined]
    args = list(block.args)
    n_in = len(args) - n_out
    env: dict = {}
    mark = rt.mark()

    def put(v, arr):
        off = rt.alloc(arr.nbytes)
        rt.write(off, arr)
        env[v] = (off, arr.dtype, arr.shape)

    def poison(v):
        t = v.type
        dt = np.dtype(np.float32) if str(t.get_element_type()) == "f32" else np.dtype(np.int32)
        put(v, np.full(t.get_shape(), POISON[dt], dt))

    try:
        for a, x in zip(args[:n_in], inputs):
            put(a, _to_storage(x, a.type))
        for a in args[n_in:]:
            poison(a)
        for op in block.ops:
            if isinstance(op, nn_loop.WeightOp):
                put(op.result, _to_storage(weights[op.key.data], op.result.type))
            elif isinstance(op, nn_loop.ConstantOp):
                t = op.result.type
                put(op.result, _to_storage(_constant(op.value, t), t))
            elif isinstance(op, nn_loop.BufferOp):
                poison(op.result)
            elif isinstance(op, nn_loop.ViewOp):
                off, dt, _ = env[op.input]
                env[op.result] = (off, dt, op.result.type.get_shape())
            elif isinstance(op, nn_loop.LaunchOp):
                rt.run(kernels[op.callee.root_reference.data], [env[a][0] for a in op.args])
            elif isinstance(op, func.ReturnOp):
                break
        return [rt.read(*env[a]) for a in args[n_in:]]
    finally:
        rt.release(mark)


def _t(shape, elem="f32") -> str:
    return "tensor<" + "".join(f"{d}x" for d in shape) + elem + ">"


def _rand(shape):
    return RNG.standard_normal(shape).astype(np.float32)


def check_model(rt, src, inputs, weights=None, tol=1e-5, relaxed=True, **opts):
    from nnjit.interp.nn_tensor_eval import evaluate
    from nnjit.passes.convert_nn_tensor_to_nn_loop import ConvertNNTensorToNNLoopPass

    weights = weights or {}
    ref = evaluate(Parser(CTX, src).parse_module(), inputs, weights)
    m = Parser(CTX, src).parse_module()
    ConvertNNTensorToNNLoopPass(target="wasm", **opts).apply(CTX, m)
    m.verify()
    got = run_model_wasm(rt, m, inputs, weights, relaxed)
    assert len(got) == len(ref)
    for k, (g, r) in enumerate(zip(got, ref)):
        r = np.asarray(r)
        if r.dtype.kind == "f":
            assert not np.isnan(g).any() or np.isnan(r).any(), f"output {k}: unwritten NaNs"
            err = float(np.abs(g - r).max()) / max(float(np.abs(r).max()), 1e-30)
            assert err <= tol, f"output {k}: relative error {err:.3g} ({opts})"
        else:
            np.testing.assert_array_equal(g, r.astype(np.int32))
    return got


def _unary(op, shape):
    return f"""
func.func @main(%x: {_t(shape)}) -> {_t(shape)} {{
  %y = nn_tensor.{op} %x : {_t(shape)} -> {_t(shape)}
  func.return %y : {_t(shape)}
}}"""


ROW_SCHEDULES = [{}, {"vec": 1}, {"rows": 2}]


@pytest.mark.parametrize("op", ["erf", "tanh", "exp", "log", "sigmoid", "gelu", "sqrt"])
def test_e2e_unary(rt2, op):
    x = _rand((5, 11)) * 3
    if op in ("log", "sqrt"):
        x = np.abs(x) + 0.01
    check_model(rt2, _unary(op, (5, 11)), [x])


@pytest.mark.parametrize("sched", ROW_SCHEDULES)
def test_e2e_fused_elementwise_broadcast_pow(rt2, sched):
    src = """
func.func @main(%x: tensor<3x10xf32>, %b: tensor<10xf32>) -> tensor<3x10xf32> {
  %r = nn_tensor.fused %x, %b {kind = "elementwise"} : (tensor<3x10xf32>, tensor<10xf32>) -> tensor<3x10xf32> {
  ^bb0(%a0: tensor<3x10xf32>, %a1: tensor<10xf32>):
    %two = nn_tensor.constant dense<2.0> : tensor<f32>
    %s = nn_tensor.add %a0, %a1 : (tensor<3x10xf32>, tensor<10xf32>) -> tensor<3x10xf32>
    %p = nn_tensor.pow %s, %two : (tensor<3x10xf32>, tensor<f32>) -> tensor<3x10xf32>
    %g = nn_tensor.gelu %p : tensor<3x10xf32> -> tensor<3x10xf32>
    %m = nn_tensor.mul %g, %s : (tensor<3x10xf32>, tensor<3x10xf32>) -> tensor<3x10xf32>
    nn_tensor.yield %m : tensor<3x10xf32>
  }
  func.return %r : tensor<3x10xf32>
}"""
    check_model(rt2, src, [_rand((3, 10)), _rand((10,))], **sched)


@pytest.mark.parametrize("sched", ROW_SCHEDULES)
@pytest.mark.parametrize("shape,axis", [((4, 13), 1), ((2, 3, 8), 2), ((6, 5), 0)])
def test_e2e_softmax(rt2, shape, axis, sched):
    src = f"""
func.func @main(%x: {_t(shape)}) -> {_t(shape)} {{
  %y = nn_tensor.softmax %x {{axis = {axis} : i64}} : {_t(shape)} -> {_t(shape)}
  func.return %y : {_t(shape)}
}}"""
    check_model(rt2, src, [_rand(shape) * 4], **sched)


@pytest.mark.parametrize("sched", ROW_SCHEDULES)
def test_e2e_layer_norm(rt2, sched):
    shape, p = (5, 19), (19,)
    src = f"""
func.func @main(%x: {_t(shape)}, %s: {_t(p)}, %b: {_t(p)}) -> {_t(shape)} {{
  %y = nn_tensor.layer_norm %x, %s, %b {{axis = 1 : i64, epsilon = 1.0e-05 : f32}} : ({_t(shape)}, {_t(p)}, {_t(p)}) -> {_t(shape)}
  func.return %y : {_t(shape)}
}}"""
    check_model(rt2, src, [_rand(shape) * 2 + 1, _rand(p), _rand(p)], tol=2e-5, **sched)


@pytest.mark.parametrize("op", ["reduce_mean", "reduce_sum", "reduce_max"])
def test_e2e_reduce(rt2, op):
    src = f"""
func.func @main(%x: tensor<3x7x5xf32>) -> tensor<3x1x5xf32> {{
  %y = nn_tensor.{op} %x {{axes = array<i64: 1>, keepdims = 1 : i64}} : tensor<3x7x5xf32> -> tensor<3x1x5xf32>
  func.return %y : tensor<3x1x5xf32>
}}"""
    check_model(rt2, src, [_rand((3, 7, 5))])


def test_e2e_movement(rt2):
    src = """
func.func @main(%x: tensor<2x3x5xf32>, %d: tensor<7x6xf32>, %i: tensor<2x3xi64>) -> (tensor<5x2x3xf32>, tensor<2x3x6xf32>, tensor<2x3xf32>) {
  %t = nn_tensor.transpose %x {perm = array<i64: 2, 0, 1>} : tensor<2x3x5xf32> -> tensor<5x2x3xf32>
  %g = nn_tensor.gather %d, %i {axis = 0 : i64} : (tensor<7x6xf32>, tensor<2x3xi64>) -> tensor<2x3x6xf32>
  %s = nn_tensor.slice %x {starts = array<i64: 0, 2, 4>, steps = array<i64: 1, -1, -2>} : tensor<2x3x5xf32> -> tensor<2x3x3xf32>
  %r = nn_tensor.reduce_sum %s {axes = array<i64: 2>, keepdims = 0 : i64} : tensor<2x3x3xf32> -> tensor<2x3xf32>
  func.return %t, %g, %r : tensor<5x2x3xf32>, tensor<2x3x6xf32>, tensor<2x3xf32>
}"""
    idx = RNG.integers(-7, 7, (2, 3)).astype(np.int64)
    check_model(rt2, src, [_rand((2, 3, 5)), _rand((7, 6)), idx])


MATMUL_SCHEDULES = [{}, {"vec": 1, "reg": (3, 2), "kstep": 2}, {"reg": (2, 4), "tile": (4, 8)},
                    {"reg": (4, 8), "kstep": 4}]  # fmt: skip


@pytest.mark.parametrize("sched", MATMUL_SCHEDULES)
@pytest.mark.parametrize("mkn", [(7, 9, 13), (16, 8, 32)])
def test_e2e_matmul_bias_gelu(rt1, rt2, mkn, sched):
    m, k, n = mkn
    src = f"""
func.func @main(%a: {_t((m, k))}) -> {_t((m, n))} {{
  %w = nn_tensor.weight "w" : {_t((k, n))}
  %b = nn_tensor.weight "b" : {_t((n,))}
  %y = nn_tensor.matmul %a, %w : ({_t((m, k))}, {_t((k, n))}) -> {_t((m, n))}
  %z = nn_tensor.add %y, %b : ({_t((m, n))}, {_t((n,))}) -> {_t((m, n))}
  %g = nn_tensor.gelu %z : {_t((m, n))} -> {_t((m, n))}
  func.return %g : {_t((m, n))}
}}"""
    weights = {"w": _rand((k, n)), "b": _rand((n,))}
    a = _rand((m, k))
    (g1,) = check_model(rt1, src, [a], weights, **sched)
    (g2,) = check_model(rt2, src, [a], weights, **sched)
    np.testing.assert_array_equal(g1, g2)  # threads split rows; results are identical
    (g3,) = check_model(rt2, src, [a], weights, relaxed=False, **sched)
    assert np.max(np.abs(g3 - g1)) <= 1e-5 * np.max(np.abs(g1))
