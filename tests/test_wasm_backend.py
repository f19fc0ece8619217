"""nn_wasm dialect, convert-nn-loop-to-wasm and the WAT printer.

Hand-written nn_loop kernels (target wasm) are converted, printed, assembled (in process and
with wabt's wat2wasm) and executed in wasmtime against numpy in float64 (relative error, fresh
random inputs, NaN-poisoned outputs, ragged shapes), on 1 and 2 threads and with relaxed SIMD
on and off. The math helpers (exp, tanh, erf, log, pow; scalar and f32x4) are checked on dense
grids.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess

import numpy as np
import pytest
from xdsl.dialects.builtin import ModuleOp
from xdsl.parser import Parser
from xdsl.utils.exceptions import VerifyException

from nnjit.backends.wat_printer import assemble, print_wat, wat_kernels
from nnjit.dialects import nn_loop
from nnjit.dialects import nn_wasm as W
from nnjit.errors import UnsupportedError
from nnjit.ir import approx
from nnjit.passes.convert_nn_loop_to_wasm import ConvertNNLoopToWasmPass
from nnjit.passes.nn_loop_expand_math import NNLoopExpandMathPass
from nnjit.passes.nn_loop_unroll import NNLoopUnrollPass
from nnjit.registry import make_context
from nnjit.runtime.wasm import WasmRuntime

CTX = make_context()
RNG = np.random.default_rng(2024)


@pytest.fixture(scope="module")
def rts():
    rs = {1: WasmRuntime(threads=1, initial_bytes=4 << 20), 2: WasmRuntime(threads=2, initial_bytes=4 << 20)}
    yield rs
    for r in rs.values():
        r.close()


def convert(src: str, relaxed: bool = True) -> ModuleOp:
    """The Wasm kernels of nn_loop text, through the target's loop passes (math.erf and
    math.tanh written out by nn-loop-expand-math, `unroll U` loops unrolled by
    nn-loop-unroll) and the conversion."""
    m = Parser(CTX, src).parse_module()
    m.verify()
    NNLoopExpandMathPass(target="wasm").apply(CTX, m)
    NNLoopUnrollPass().apply(CTX, m)
    ConvertNNLoopToWasmPass(relaxed_simd=relaxed).apply(CTX, m)
    m.verify()
    return m


def run_all(rts, src, inputs, relaxed_options=(True, False)):
    """Runs the kernel on 1 and 2 threads, relaxed SIMD on and off; returns the outputs of
    (1 thread, relaxed) after checking that 1 and 2 threads agree bit for bit."""
    results = {}
    for relaxed in relaxed_options:
        ((_, wat, man),) = wat_kernels(convert(src, relaxed))
        for n, rt in rts.items():
            results[(n, relaxed)] = rt.run_kernel(wat, man, inputs)
        for a, b in zip(results[(1, relaxed)], results[(2, relaxed)]):
            np.testing.assert_array_equal(a, b)
    return results[(1, relaxed_options[0])], results


def rel_err(got, ref) -> float:
    ref = np.asarray(ref, np.float64)
    assert not np.isnan(got).any() or np.isnan(ref).any(), "unwritten (NaN) outputs"
    return float(np.max(np.abs(got - ref))) / max(float(np.max(np.abs(ref))), 1e-30)


# ------------------------------------------------------------------------------- dialect

WASM_TEXT = """
nn_wasm.module @k manifest {kind = "t", schedule = {}, params = [], thread_chunks = 1 : i64, features = ["simd128", "threads"]} {
  nn_wasm.import_memory "env" "memory" min 1 max 65536 shared
  nn_wasm.func @sq("x": f32) -> (f32) {
    %0 = nn_wasm.local.get "x" : f32
    %1 = nn_wasm.local.get "x" : f32
    %2 = nn_wasm.f32.mul %0, %1
    nn_wasm.return %2 : f32
  }
  nn_wasm.func @run export "run" ("tid": i32, "nthreads": i32) locals ("i": i32, "v": !nn_wasm.v128) {
    %0 = nn_wasm.i32.const 0
    nn_wasm.local.set "i" %0 : i32
    nn_wasm.loop "L" {
      %a = nn_wasm.local.get "i" : i32
      %b = nn_wasm.v128.load offset=16 align=4 %a
      %b2 = nn_wasm.local.get "v" : !nn_wasm.v128
      %c = nn_wasm.v128.const f32x4 [1.0, 2.5, -inf, nan]
      %d = nn_wasm.f32x4.relaxed_madd %b, %b2, %c
      %e = nn_wasm.f32x4.extract_lane 2 %d
      %f = nn_wasm.call @sq(%e) : (f32) -> (f32)
      nn_wasm.drop %f : f32
      %g = nn_wasm.local.get "i" : i32
      %h = nn_wasm.i32.const 1
      %j = nn_wasm.i32.add %g, %h
      %k = nn_wasm.local.tee "i" %j : i32
      %l = nn_wasm.i32.const 4
      %m = nn_wasm.i32.lt_s %k, %l
      nn_wasm.br_if "L" %m
    }
    nn_wasm.return
  }
}
"""


def test_dialect_round_trips_custom_and_generic():
    from io import StringIO

    from xdsl.printer import Printer

    m = Parser(CTX, WASM_TEXT).parse_module()
    m.verify()
    again = Parser(CTX, str(m)).parse_module()
    again.verify()
    assert str(again) == str(m)
    out = StringIO()
    Printer(out, print_generic_format=True).print_op(m)
    generic = Parser(CTX, out.getvalue()).parse_module()
    generic.verify()
    assert str(generic) == str(m)
    wat = W.wat_f32(0.1)
    assert np.float32(float(wat)) == np.float32(0.1)


@pytest.mark.parametrize("body,msg", [
    ('%0 = nn_wasm.i32.const 1\n    %1 = nn_wasm.i32.const 2\n    %2 = nn_wasm.i32.add %1, %0\n    nn_wasm.drop %2 : i32',
     "top of the stack"),
    ('%0 = nn_wasm.i32.const 1', "left on the stack"),
    ('%0 = nn_wasm.local.get "nope" : i32\n    nn_wasm.drop %0 : i32', "undeclared local"),
    ('%0 = nn_wasm.local.get "tid" : f32\n    nn_wasm.drop %0 : f32', "the local is i32"),
    ('nn_wasm.br "nowhere"', "labelled 'nowhere'"),
    ('%0 = nn_wasm.f32.const 1.0\n    %1 = nn_wasm.call @missing(%0) : (f32) -> (f32)\n    nn_wasm.drop %1 : f32',
     "no function @missing"),
])  # fmt: skip
def test_verifier_messages(body, msg):
    src = f"""
nn_wasm.module @k manifest {{kind = "t", params = [], thread_chunks = 1 : i64, features = []}} {{
  nn_wasm.func @run ("tid": i32) {{
    {body}
  }}
}}"""
    m = Parser(CTX, src).parse_module()
    with pytest.raises(VerifyException, match=msg):
        m.verify()


# ---------------------------------------------------------------------- hand-written kernels


def matmul_kernel(M: int, N: int, K: int, ku: int = 1, name: str = "mm") -> str:
    """C = A @ B: a thread loop over 4-row blocks, a 4x8 register tile of vector<4xf32>
    accumulators in a private buffer (math.fma on vectors, A elements splatted), clamped A
    rows and guarded stores for ragged M, a scalar column remainder for ragged N."""
    Mt = -(-M // 4) * 4
    Nm = N // 8 * 8
    kun = f" unroll {ku}" if ku > 1 else ""
    main = rem = ""
    if Nm:
        main = f"""
    nn_loop.for %j0 = 0 to {Nm} step 8 {{
      %zero = arith.constant dense<0.0> : vector<4xf32>
      nn_loop.for %r = 0 to 4 unroll 4 {{
        nn_loop.for %c = 0 to 2 unroll 2 {{
          nn_loop.store %zero, %acc[%r, %c] : vector<4xf32>, memref<4x2xvector<4xf32>, #nn_loop<space private>>
        }}
      }}
      nn_loop.for %k = 0 to {K}{kun} {{
        nn_loop.for %r = 0 to 4 unroll 4 {{
          %row = arith.addi %i0, %r : index
          %rc = arith.minsi %row, %cM1 : index
          %a = nn_loop.load %A[%rc, %k] : memref<{M}x{K}xf32> -> f32
          %av = nn_loop.splat %a : f32 -> vector<4xf32>
          nn_loop.for %c = 0 to 2 unroll 2 {{
            %c4 = arith.constant 4 : index
            %jo = arith.muli %c, %c4 : index
            %j = arith.addi %j0, %jo : index
            %b = nn_loop.load %B[%k, %j] : memref<{K}x{N}xf32> -> vector<4xf32>
            %p = nn_loop.load %acc[%r, %c] : memref<4x2xvector<4xf32>, #nn_loop<space private>> -> vector<4xf32>
            %f = math.fma %av, %b, %p : vector<4xf32>
            nn_loop.store %f, %acc[%r, %c] : vector<4xf32>, memref<4x2xvector<4xf32>, #nn_loop<space private>>
          }}
        }}
      }}
      nn_loop.for %r = 0 to 4 unroll 4 {{
        %row = arith.addi %i0, %r : index
        %ok = arith.cmpi slt, %row, %cM : index
        nn_loop.if %ok {{
          nn_loop.for %c = 0 to 2 unroll 2 {{
            %c4 = arith.constant 4 : index
            %jo = arith.muli %c, %c4 : index
            %j = arith.addi %j0, %jo : index
            %v = nn_loop.load %acc[%r, %c] : memref<4x2xvector<4xf32>, #nn_loop<space private>> -> vector<4xf32>
            nn_loop.store %v, %C[%row, %j] : vector<4xf32>, memref<{M}x{N}xf32>
          }}
        }}
      }}
    }}"""
    if Nm < N:
        rem = f"""
    nn_loop.for %r = 0 to 4 unroll 4 {{
      %row = arith.addi %i0, %r : index
      %ok = arith.cmpi slt, %row, %cM : index
      nn_loop.if %ok {{
        nn_loop.for %j = {Nm} to {N} {{
          %z = arith.constant 0.0 : f32
          nn_loop.store %z, %s[%c0] : f32, memref<1xf32, #nn_loop<space private>>
          nn_loop.for %k = 0 to {K} {{
            %a = nn_loop.load %A[%row, %k] : memref<{M}x{K}xf32> -> f32
            %b = nn_loop.load %B[%k, %j] : memref<{K}x{N}xf32> -> f32
            %p = nn_loop.load %s[%c0] : memref<1xf32, #nn_loop<space private>> -> f32
            %f = math.fma %a, %b, %p : f32
            nn_loop.store %f, %s[%c0] : f32, memref<1xf32, #nn_loop<space private>>
          }}
          %v = nn_loop.load %s[%c0] : memref<1xf32, #nn_loop<space private>> -> f32
          nn_loop.store %v, %C[%row, %j] : f32, memref<{M}x{N}xf32>
        }}
      }}
    }}"""
    return f"""
nn_loop.kernel @{name}(%A: memref<{M}x{K}xf32> read, %B: memref<{K}x{N}xf32> read, %C: memref<{M}x{N}xf32> write) kind "matmul" target "wasm" schedule {{reg = array<i64: 4, 8>}} {{
  %cM = arith.constant {M} : index
  %cM1 = arith.constant {M - 1} : index
  %c0 = arith.constant 0 : index
  nn_loop.for %i0 = 0 to {Mt} step 4 map "thread" {{
    %acc = nn_loop.alloc : memref<4x2xvector<4xf32>, #nn_loop<space private>>
    %s = nn_loop.alloc : memref<1xf32, #nn_loop<space private>>{main}{rem}
  }}
}}
"""


@pytest.mark.parametrize("mnk,ku", [((7, 13, 5), 1), ((16, 16, 12), 4), ((5, 3, 9), 1), ((9, 24, 17), 1)])
def test_matmul_register_tile(rts, mnk, ku):
    M, N, K = mnk
    a = RNG.standard_normal((M, K)).astype(np.float32)
    b = RNG.standard_normal((K, N)).astype(np.float32)
    (c,), results = run_all(rts, matmul_kernel(M, N, K, ku), [a, b, None])
    ref = a.astype(np.float64) @ b
    assert rel_err(c, ref) < 1e-5
    assert rel_err(results[(1, False)][0], ref) < 1e-5


def test_matmul_wat_uses_simd_and_relaxed_madd_only_when_asked():
    ((_, wat, man),) = wat_kernels(convert(matmul_kernel(8, 16, 4)))
    assert wat.count("f32x4.relaxed_madd") == 8 and "v128.load32_splat" in wat
    assert man["features"] == ["simd128", "relaxed-simd", "threads"]
    assert man["thread_chunks"] == 2 and man["kind"] == "matmul"
    assert man["schedule"] == {"reg": [4, 8]}
    assert [p["access"] for p in man["params"]] == ["read", "read", "write"]
    assert man["params"][2] == {"index": 2, "access": "write", "dtype": "f32", "shape": [8, 16], "bytes": 512}
    ((_, wat2, man2),) = wat_kernels(convert(matmul_kernel(8, 16, 4), relaxed=False))
    assert "relaxed" not in wat2 and wat2.count("f32x4.mul") == 8 and wat2.count("f32x4.add") >= 8
    assert "relaxed-simd" not in man2["features"]


def _ew_kernel(n_rows: int, n: int, body_ops: str) -> str:
    """y[r, :] = f(x[r, :]) with vec4 main loop and scalar remainder; body_ops uses %v -> %o."""
    nm = n // 4 * 4
    vec = body_ops.replace("TYPE", "vector<4xf32>")
    sca = body_ops.replace("TYPE", "f32")
    parts = []
    if nm:
        parts.append(f"""
    nn_loop.for %j = 0 to {nm} step 4 {{
      %v = nn_loop.load %x[%r, %j] : memref<{n_rows}x{n}xf32> -> vector<4xf32>
      {vec}
      nn_loop.store %o, %y[%r, %j] : vector<4xf32>, memref<{n_rows}x{n}xf32>
    }}""")
    if nm < n:
        parts.append(f"""
    nn_loop.for %j = {nm} to {n} {{
      %v = nn_loop.load %x[%r, %j] : memref<{n_rows}x{n}xf32> -> f32
      {sca}
      nn_loop.store %o, %y[%r, %j] : f32, memref<{n_rows}x{n}xf32>
    }}""")
    return f"""
nn_loop.kernel @ew(%x: memref<{n_rows}x{n}xf32> read, %y: memref<{n_rows}x{n}xf32> write) kind "elementwise" target "wasm" {{
  nn_loop.for %r = 0 to {n_rows} map "thread" {{{''.join(parts)}
  }}
}}"""


UNARY = {
    "exp": ("%o = math.exp %v : TYPE", np.exp),
    "tanh": ("%o = math.tanh %v : TYPE", np.tanh),
    "erf": ("%o = math.erf %v : TYPE", np.vectorize(math.erf)),
    "log": ("%a = math.absf %v : TYPE\n      %o = math.log %a : TYPE", lambda x: np.log(np.abs(x))),
    "rsqrt": ("%a = math.absf %v : TYPE\n      %o = math.rsqrt %a : TYPE", lambda x: 1 / np.sqrt(np.abs(x))),
    "gelu_tanh": ("%h = arith.mulf %v, %v : TYPE\n      %t = math.tanh %h : TYPE\n"
                  "      %o = arith.subf %t, %v : TYPE", lambda x: np.tanh(x * x) - x),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(UNARY))
def test_elementwise_vec4_with_scalar_remainder(rts, name):
    body, fn = UNARY[name]
    x = (RNG.standard_normal((3, 11)) * 3).astype(np.float32)
    (y,), _ = run_all(rts, _ew_kernel(3, 11, body), [x, None], relaxed_options=(True,))
    ref = fn(x.astype(np.float64))
    # elementwise relative error (stricter than the max-normalised one)
    err = np.max(np.abs(y - ref) / np.maximum(np.abs(ref), 1e-3))
    assert err < 5e-7, err


def test_softmax_rows(rts):
    n_rows, n = 5, 13
    src = f"""
nn_loop.kernel @softmax(%x: memref<{n_rows}x{n}xf32> read, %y: memref<{n_rows}x{n}xf32> write) kind "softmax" target "wasm" {{
  %c0 = arith.constant 0 : index
  nn_loop.for %r = 0 to {n_rows} map "thread" {{
    %acc = nn_loop.alloc : memref<2xf32, #nn_loop<space private>>
    %ninf = arith.constant 0xFF800000 : f32
    %zero = arith.constant 0.0 : f32
    %c1 = arith.constant 1 : index
    nn_loop.store %ninf, %acc[%c0] : f32, memref<2xf32, #nn_loop<space private>>
    nn_loop.store %zero, %acc[%c1] : f32, memref<2xf32, #nn_loop<space private>>
    nn_loop.for %j = 0 to {n} {{
      %v = nn_loop.load %x[%r, %j] : memref<{n_rows}x{n}xf32> -> f32
      %m = nn_loop.load %acc[%c0] : memref<2xf32, #nn_loop<space private>> -> f32
      %mx = arith.maximumf %m, %v : f32
      nn_loop.store %mx, %acc[%c0] : f32, memref<2xf32, #nn_loop<space private>>
    }}
    %m = nn_loop.load %acc[%c0] : memref<2xf32, #nn_loop<space private>> -> f32
    nn_loop.for %j = 0 to {n} {{
      %v = nn_loop.load %x[%r, %j] : memref<{n_rows}x{n}xf32> -> f32
      %d = arith.subf %v, %m : f32
      %e = math.exp %d : f32
      nn_loop.store %e, %y[%r, %j] : f32, memref<{n_rows}x{n}xf32>
      %s = nn_loop.load %acc[%c1] : memref<2xf32, #nn_loop<space private>> -> f32
      %s2 = arith.addf %s, %e : f32
      nn_loop.store %s2, %acc[%c1] : f32, memref<2xf32, #nn_loop<space private>>
    }}
    %s = nn_loop.load %acc[%c1] : memref<2xf32, #nn_loop<space private>> -> f32
    %one = arith.constant 1.0 : f32
    %inv = arith.divf %one, %s : f32
    nn_loop.for %j = 0 to {n} {{
      %e = nn_loop.load %y[%r, %j] : memref<{n_rows}x{n}xf32> -> f32
      %p = arith.mulf %e, %inv : f32
      nn_loop.store %p, %y[%r, %j] : f32, memref<{n_rows}x{n}xf32>
    }}
  }}
}}"""
    x = (RNG.standard_normal((n_rows, n)) * 5).astype(np.float32)
    (y,), _ = run_all(rts, src, [x, None], relaxed_options=(True,))
    e = np.exp(x - x.max(1, keepdims=True).astype(np.float64))
    assert rel_err(y, e / e.sum(1, keepdims=True)) < 1e-6


def test_gather_with_i32_indices_and_guards(rts):
    # y[i, :] = table[idx[i] mod-wrapped, :] for idx >= -n; rows with idx out of range are 0
    src = """
nn_loop.kernel @gather(%t: memref<6x5xf32> read, %idx: memref<7xi32> read, %y: memref<7x5xf32> write) kind "gather" target "wasm" {
  %n = arith.constant 6 : i32
  %zero = arith.constant 0 : i32
  %fz = arith.constant 0.0 : f32
  nn_loop.for %i = 0 to 7 map "thread" {
    %raw = nn_loop.load %idx[%i] : memref<7xi32> -> i32
    %neg = arith.cmpi slt, %raw, %zero : i32
    %wrapped = arith.addi %raw, %n : i32
    %k = arith.select %neg, %wrapped, %raw : i32
    %ok = arith.cmpi slt, %k, %n : i32
    %bad = arith.xori %ok, %true : i1
    %true = arith.constant true
    %ki = arith.index_cast %k : i32 to index
    nn_loop.if %ok {
      nn_loop.for %j = 0 to 5 {
        %v = nn_loop.load %t[%ki, %j] : memref<6x5xf32> -> f32
        nn_loop.store %v, %y[%i, %j] : f32, memref<7x5xf32>
      }
    }
    nn_loop.if %bad {
      nn_loop.for %j = 0 to 5 {
        nn_loop.store %fz, %y[%i, %j] : f32, memref<7x5xf32>
      }
    }
  }
}"""
    src = src.replace("    %bad = arith.xori %ok, %true : i1\n    %true = arith.constant true\n",
                      "    %true = arith.constant true\n    %bad = arith.xori %ok, %true : i1\n")  # fmt: skip
    t = RNG.standard_normal((6, 5)).astype(np.float32)
    idx = np.array([0, 5, -1, -6, 9, 2, 6], np.int32)
    (y,), _ = run_all(rts, src, [t, idx, None], relaxed_options=(True,))
    ref = np.zeros((7, 5))
    for i, k in enumerate(idx):
        k = k + 6 if k < 0 else k
        if k < 6:
            ref[i] = t[k]
    np.testing.assert_array_equal(y, ref.astype(np.float32))


def test_vector_reduce_extract_and_int_vectors(rts):
    src = """
nn_loop.kernel @vmix(%x: memref<8xf32> read, %q: memref<8xi32> read, %y: memref<8xi32> write, %s: memref<2xf32> write) kind "elementwise" target "wasm" {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %three = arith.constant dense<3> : vector<4xi32>
  nn_loop.for %j = 0 to 8 step 4 {
    %qi = nn_loop.load %q[%j] : memref<8xi32> -> vector<4xi32>
    %qm = arith.muli %qi, %three : vector<4xi32>
    %qa = arith.addi %qm, %qi : vector<4xi32>
    %qx = arith.maxsi %qa, %three : vector<4xi32>
    nn_loop.store %qx, %y[%j] : vector<4xi32>, memref<8xi32>
  }
  %v0 = nn_loop.load %x[%c0] : memref<8xf32> -> vector<4xf32>
  %sum = nn_loop.reduce_lanes add %v0 : vector<4xf32> -> f32
  nn_loop.store %sum, %s[%c0] : f32, memref<2xf32>
  %c4 = arith.constant 4 : index
  %v1 = nn_loop.load %x[%c4] : memref<8xf32> -> vector<4xf32>
  %mx = nn_loop.reduce_lanes max %v1 : vector<4xf32> -> f32
  %e = nn_loop.extract %v1 {lane = 2 : i64} : vector<4xf32> -> f32
  %m2 = arith.addf %mx, %e : f32
  nn_loop.store %m2, %s[%c1] : f32, memref<2xf32>
}"""
    x = RNG.standard_normal(8).astype(np.float32)
    q = RNG.integers(-9, 9, 8).astype(np.int32)
    (y, s), _ = run_all(rts, src, [x, q, None, None], relaxed_options=(True,))
    np.testing.assert_array_equal(y, np.maximum(4 * q, 3))
    np.testing.assert_allclose(s, [x[:4].astype(np.float64).sum(), x[4:].max() + x[6]], rtol=1e-6)


# ------------------------------------------------------------------------- math helpers


def _helper_kernel(fn: str, n: int, vec: bool, two: bool = False) -> str:
    t = "vector<4xf32>" if vec else "f32"
    step = " step 4" if vec else ""
    y_load = f"%w = nn_loop.load %b[%i] : memref<{n}xf32> -> {t}" if two else ""
    op = f"%o = math.powf %v, %w : {t}" if two else f"%o = math.{fn} %v : {t}"
    b_arg = f", %b: memref<{n}xf32> read" if two else ""
    return f"""
nn_loop.kernel @h(%a: memref<{n}xf32> read{b_arg}, %y: memref<{n}xf32> write) kind "elementwise" target "wasm" {{
  nn_loop.for %i = 0 to {n}{step} map "thread" {{
    %v = nn_loop.load %a[%i] : memref<{n}xf32> -> {t}
    {y_load}
    {op}
    nn_loop.store %o, %y[%i] : {t}, memref<{n}xf32>
  }}
}}"""


def _grid(lo, hi, n=4000):
    x = np.concatenate([np.linspace(lo, hi, n), RNG.uniform(lo, hi, n)])
    return x.astype(np.float32)


@pytest.mark.parametrize("vec", [False, True], ids=["f32", "f32x4"])
@pytest.mark.parametrize("fn,lo,hi,ref,kind,tol", [
    ("exp", -87.0, 88.5, np.exp, "rel", 3e-7),
    ("exp", -103.0, -87.5, np.exp, "abs", 1e-44),  # subnormal results
    # (tanh, erf: approx.py's rational forms, 3.5e-7 and 3.8e-7 as its docstring measures)
    ("tanh", -12.0, 12.0, np.tanh, "rel", 3.6e-7),
    ("tanh", -1e-3, 1e-3, np.tanh, "rel", 3.6e-7),
    ("erf", -6.0, 6.0, np.vectorize(math.erf), "abs", 3.9e-7),
    ("erf", -1e-3, 1e-3, np.vectorize(math.erf), "rel", 3.9e-7),
    ("log", 1e-30, 1e30, np.log, "rel", 3e-7),
    ("log", 0.5, 2.0, np.log, "abs", 1.2e-7),
    ("log", 1e-44, 1e-38, np.log, "rel", 3e-7),  # subnormal inputs
])  # fmt: skip
def test_math_helpers_accuracy(rts, fn, lo, hi, ref, kind, tol, vec):
    x = _grid(lo, hi) if fn != "log" or hi <= 2 else np.exp(_grid(np.log(lo), np.log(hi))).astype(np.float32)
    ((_, wat, man),) = wat_kernels(convert(_helper_kernel(fn, x.size, vec)))
    (y,) = rts[2].run_kernel(wat, man, [x, None])
    if fn in approx.FORMS["wasm"]:  # what approx.py computes, bit for bit (fma fused or not)
        exact = [approx.evaluate("wasm", fn, x, fused=f) for f in (False, True)]
        assert np.all((y == exact[0]) | (y == exact[1])), fn
    r = ref(x.astype(np.float64))
    err = np.abs(y - r)
    if kind == "rel":
        err = err / np.abs(r)
    assert err.max() <= tol, (fn, float(err.max()), x[np.argmax(err)])


@pytest.mark.parametrize("vec", [False, True], ids=["f32", "f32x4"])
def test_math_helper_special_values(rts, vec):
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -1.0, 100.0, -200.0], np.float32)
    for fn, ref in (("exp", np.exp), ("tanh", np.tanh), ("erf", np.vectorize(math.erf)), ("log", np.log)):
        ((_, wat, man),) = wat_kernels(convert(_helper_kernel(fn, 8, vec)))
        (y,) = rts[1].run_kernel(wat, man, [x, None])
        with np.errstate(all="ignore"):
            r = ref(x.astype(np.float64)).astype(np.float32)
        if fn in approx.FORMS["wasm"]:  # (-1.0: approx.py's value, a few ulp from erf(-1))
            r[5] = approx.evaluate("wasm", fn, x[5])
        np.testing.assert_array_equal(y, r, err_msg=fn)


@pytest.mark.parametrize("vec", [False, True], ids=["f32", "f32x4"])
def test_pow_helper(rts, vec):
    n = 64
    x = RNG.uniform(-4, 4, n).astype(np.float32)
    yexp = RNG.integers(-3, 4, n).astype(np.float32)
    yexp[::3] = RNG.uniform(-2, 2, len(yexp[::3])).astype(np.float32)  # fractional powers
    x[::5] = np.abs(x[::5])
    x[7] = 0.0
    ((_, wat, man),) = wat_kernels(convert(_helper_kernel("powf", n, vec, two=True)))
    (got,) = rts[1].run_kernel(wat, man, [x, yexp, None])
    with np.errstate(all="ignore"):
        ref = np.power(x.astype(np.float64), yexp.astype(np.float64))
    fin = np.isfinite(ref)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    assert np.all(np.abs(got[fin] - ref[fin]) <= 2e-6 * np.abs(ref[fin]) + 1e-30)


# ------------------------------------------------------------------------- pass and printer


def test_pass_replaces_only_wasm_kernels_and_keeps_main():
    src = """
nn_loop.kernel @w(%x: memref<4xf32> read_write) kind "elementwise" target "wgsl" {
  nn_loop.for %i = 0 to 4 map "invocation.x" {
    %v = nn_loop.load %x[%i] : memref<4xf32> -> f32
    nn_loop.store %v, %x[%i] : f32, memref<4xf32>
  }
}
nn_loop.kernel @k(%x: memref<4xf32> read_write) kind "elementwise" target "wasm" {
  nn_loop.for %i = 0 to 4 unroll 2 {
    %v = nn_loop.load %x[%i] : memref<4xf32> -> f32
    %n = arith.negf %v : f32
    nn_loop.store %n, %x[%i] : f32, memref<4xf32>
  }
}
func.func @main(%x: memref<4xf32>) {
  nn_loop.launch @k(%x) : memref<4xf32>
  nn_loop.launch @w(%x) : memref<4xf32>
  func.return
}"""
    m = convert(src)
    names = [(op.name, op.sym_name.data) for op in m.ops]
    assert names == [("nn_loop.kernel", "w"), ("nn_wasm.module", "k"), ("func.func", "main")]
    assert str(ConvertNNLoopToWasmPass(relaxed_simd=False)) is not None
    assert ConvertNNLoopToWasmPass(relaxed_simd=False).pipeline_pass_spec().name == "convert-nn-loop-to-wasm"


@pytest.mark.parametrize("src,msg", [
    ("""nn_loop.kernel @k(%x: memref<4xf32> read_write) kind "t" target "wasm" {
  %p = nn_loop.alloc : memref<4xf32, #nn_loop<space private>>
  nn_loop.for %i = 0 to 4 {
    %v = nn_loop.load %x[%i] : memref<4xf32> -> f32
    nn_loop.store %v, %p[%i] : f32, memref<4xf32, #nn_loop<space private>>
  }
}""", "not a constant after unrolling"),
    ("""nn_loop.kernel @k(%x: memref<4xf32> read_write) kind "t" target "wasm" {
  nn_loop.for %i = 0 to 4 unroll 2 {
    %v = nn_loop.load %x[%i] : memref<4xf32> -> f32
    nn_loop.store %v, %x[%i] : f32, memref<4xf32>
  }
}""", "a loop marked unroll 2 is not converted to Wasm .run nn-loop-unroll before"),
    ("""nn_loop.kernel @k(%x: memref<4xf32> read_write) kind "t" target "wasm" {
  nn_loop.for %i = 0 to 4 map "invocation.x" {
    nn_loop.barrier
  }
}""", "not available on target wasm"),
    ("""nn_loop.kernel @k(%x: memref<4xf32> read_write) kind "t" target "wasm" {
  nn_loop.for %i = 0 to 4 {
    %v = nn_loop.load %x[%i] : memref<4xf32> -> f32
    %d = math.floor %v : f32
    nn_loop.store %d, %x[%i] : f32, memref<4xf32>
  }
}""", "math.floor is not supported by the wasm backend"),
    ("""nn_loop.kernel @k(%x: memref<4xf32> read_write) kind "t" target "wasm" {
  nn_loop.for %i = 0 to 4 {
    %v = nn_loop.load %x[%i] : memref<4xf32> -> f32
    %d = math.cos %v : f32
    nn_loop.store %d, %x[%i] : f32, memref<4xf32>
  }
}""", "math.cos is not converted to Wasm .run nn-loop-expand-math"),
])  # fmt: skip
def test_pass_errors_are_clear(src, msg):
    m = Parser(CTX, src).parse_module()
    with pytest.raises(UnsupportedError, match=msg):
        ConvertNNLoopToWasmPass().apply(CTX, m)


def test_print_wat_and_both_assemblers(tmp_path):
    from io import StringIO

    m = convert(matmul_kernel(7, 13, 5) + _ew_kernel(3, 11, UNARY["erf"][0]))
    out = StringIO()
    print_wat(m, out)
    text = out.getvalue()
    assert text.count(";; kernel: ") == 2
    kernels = wat_kernels(m)
    for name, wat, man in kernels:
        line = f";; manifest: {json.dumps(man, sort_keys=True)}"
        assert f";; kernel: {name}" in text and line in text
        assert man["target"] == "wasm" and man["export"] == "run" and man["name"] == name
        assert assemble(wat)[:4] == b"\0asm"
        wabt = shutil.which("wat2wasm")
        if wabt is None:
            pytest.skip("wabt's wat2wasm is not installed")
        p = tmp_path / f"{name}.wat"
        p.write_text(wat)
        r = subprocess.run([wabt, "--enable-relaxed-simd", "--enable-threads", str(p), "-o",
                            str(tmp_path / f"{name}.wasm")], capture_output=True, text=True)  # fmt: skip
        assert r.returncode == 0, r.stderr


def test_hostile_names_are_sanitised():
    src = """
nn_loop.kernel @k(%x: memref<4xf32> read_write) kind "t" target "wasm" {
  nn_loop.for %loop = 0 to 4 {
    %local = nn_loop.load %x[%loop] : memref<4xf32> -> f32
    %module = math.exp %local : f32
    %func = arith.addf %module, %module : f32
    nn_loop.store %func, %x[%loop] : f32, memref<4xf32>
  }
}"""
    ((_, wat, _),) = wat_kernels(convert(src))
    import re

    idents = set(re.findall(r"\$([A-Za-z0-9_]+)", wat))
    from nnjit.backends.names import WAT_RESERVED

    assert not idents & WAT_RESERVED
    assert assemble(wat)



# ------------------------------------------------------------- lowered softmax in wasmtime

_SOFTMAX_FUSED = """
func.func @f(%x: tensor<{s}xf32>, %mask: tensor<{ms}xf32>) {{
  %r = nn_tensor.fused %x, %mask {{kind = "softmax"}} : (tensor<{s}xf32>, tensor<{ms}xf32>) -> tensor<{s}xf32> {{
  ^bb0(%a: tensor<{s}xf32>, %m: tensor<{ms}xf32>):
    %k = nn_tensor.constant dense<0.125> : tensor<f32>
    %xs = nn_tensor.mul %a, %k : (tensor<{s}xf32>, tensor<f32>) -> tensor<{s}xf32>
    %xm = nn_tensor.add %xs, %m : (tensor<{s}xf32>, tensor<{ms}xf32>) -> tensor<{s}xf32>
    %y = nn_tensor.softmax %xm {{axis = {axis} : i64}} : tensor<{s}xf32> -> tensor<{s}xf32>
    %e = nn_tensor.mul %y, %k : (tensor<{s}xf32>, tensor<f32>) -> tensor<{s}xf32>
    nn_tensor.yield {res} : tensor<{s}xf32>
  }}
  func.return
}}"""


@pytest.mark.parametrize("shape", [(2, 3, 128), (1, 3, 5, 37), (4, 13), (3, 5), (2, 2, 64)])
@pytest.mark.parametrize("epilogue", [False, True])
@pytest.mark.parametrize("vec", [0, 1])
def test_lowered_softmax_in_wasmtime(rts, shape, epilogue, vec):
    """The Wasm softmax (max pass with several accumulators, exp(x - max) kept in the output,
    scaling pass) on large, masked (-1e4) and -FLT_MAX entries, 1 and 2 threads."""
    from nnjit.passes.lowering import lowering_for
    from nnjit.passes.lowering.schedule import Schedule

    s = "x".join(map(str, shape))
    ms = "x".join(["1"] * (len(shape) - 1) + [str(shape[-1])])
    src = _SOFTMAX_FUSED.format(s=s, ms=ms, axis=len(shape) - 1, res="%e" if epilogue else "%y")
    m = Parser(CTX, src).parse_module()
    fused = next(op for op in m.walk() if op.name == "nn_tensor.fused")
    k = lowering_for("softmax")(fused, "k", Schedule(target="wasm", vec=vec))
    # exp(x - max) is computed once per element, inline (no math.exp helper call): every
    # loop computing it (its polynomial's FMAs) stores the output, and the scaling pass
    # re-reads the output instead
    out = k.body.block.args[-1]
    assert not any(o.name == "math.exp" for o in k.walk())
    loops = [op for op in k.walk() if isinstance(op, nn_loop.ForOp)
             and not any(isinstance(o, nn_loop.ForOp) for o in op.body.walk())]  # fmt: skip
    exp_loops = [lp for lp in loops if any(o.name == "math.fma" for o in lp.body.walk())]
    assert exp_loops
    for lp in exp_loops:
        assert any(isinstance(o, nn_loop.StoreOp) and o.operands[1] is out for o in lp.body.walk())
    assert any(isinstance(o, nn_loop.LoadOp) and o.operands[0] is out for o in k.walk())
    mod = ModuleOp([k])
    NNLoopUnrollPass().apply(CTX, mod)
    ConvertNNLoopToWasmPass().apply(CTX, mod)
    ((_, wat, man),) = wat_kernels(mod)
    x = (RNG.standard_normal(shape) * 300).astype(np.float32)
    flat = x.reshape(-1)
    flat[RNG.random(flat.size) < 0.1] = -1e4
    flat[RNG.random(flat.size) < 0.05] = np.finfo(np.float32).min
    mask = np.where(RNG.random(shape[-1]) < 0.3, -1e4, 0.0).astype(np.float32).reshape(
        (1,) * (len(shape) - 1) + (shape[-1],))
    t = x.astype(np.float64) * 0.125 + mask
    e = np.exp(t - t.max(-1, keepdims=True))
    ref = e / e.sum(-1, keepdims=True) * (0.125 if epilogue else 1.0)
    outs = [rt.run_kernel(wat, man, [x, mask, None])[0] for rt in rts.values()]
    np.testing.assert_array_equal(outs[0], outs[1])
    assert rel_err(outs[0], ref) <= 1e-6


def _lowered_softmax_wat(shape, relaxed: bool = True, vec: int = 0):
    s = "x".join(map(str, shape))
    src = f"""
func.func @f(%x: tensor<{s}xf32>) {{
  %r = nn_tensor.fused %x {{kind = "softmax"}} : (tensor<{s}xf32>) -> tensor<{s}xf32> {{
  ^bb0(%a: tensor<{s}xf32>):
    %y = nn_tensor.softmax %a {{axis = {len(shape) - 1} : i64}} : tensor<{s}xf32> -> tensor<{s}xf32>
    nn_tensor.yield %y : tensor<{s}xf32>
  }}
  func.return
}}"""
    return _lowered_kernel_wat(src, "softmax", relaxed, vec=vec)


@pytest.mark.parametrize("n", [128, 131])
@pytest.mark.parametrize("relaxed", [True, False])
@pytest.mark.parametrize("vec", [0, 1])
def test_lowered_softmax_exp_accuracy(rts, n, relaxed, vec):
    """The inline exp of the Wasm softmax, element by element: each row holds its max (0)
    and x - max on a dense grid of [-79.3, 0] (exp(x - max) is then within 2.5e-7 of
    float64, relative, for every element: exp's 1e-7 and the scaling's roundings), terms below exp(-79.4) (down to -1e30, -FLT_MAX
    and -inf) are exactly 0, a NaN makes its row NaN (as in numpy) and so does a row of -inf;
    outputs poisoned, 1 and 2 threads, relaxed SIMD on and off, scalar and vector code."""
    wat, man = _lowered_softmax_wat((64, n), relaxed, vec)
    rows = 64
    grid = -np.linspace(0.0, 79.3, (rows - 4) * (n - 1)).astype(np.float32)
    x = np.zeros((rows, n), np.float32)
    x[: rows - 4, 1:] = RNG.permutation(grid).reshape(rows - 4, n - 1)
    x[: rows - 4] += RNG.uniform(-50, 50, (rows - 4, 1)).astype(np.float32)  # max != 0
    x[: rows - 4] -= x[: rows - 4].max(1, keepdims=True)  # exact differences
    tiny = np.float32([-79.5, -80.0, -88.0, -100.0, -1e4, -1e30, np.finfo(np.float32).min,
                       -np.inf])  # fmt: skip
    x[rows - 4] = RNG.choice(tiny, n)
    x[rows - 4, 0] = 3.0
    x[rows - 4] += 3.0  # max 6: every other term is x - max <= -79.5
    x[rows - 3] = RNG.standard_normal(n).astype(np.float32)
    x[rows - 3, n // 2] = np.nan
    x[rows - 2] = -np.inf
    x[rows - 1] = (RNG.standard_normal(n) * 1e4).astype(np.float32)
    t = x.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        e = np.exp(t - t.max(-1, keepdims=True))
        ref = e / e.sum(-1, keepdims=True)
    outs = [rt.run_kernel(wat, man, [x, None])[0] for rt in rts.values()]
    np.testing.assert_array_equal(outs[0], outs[1])
    got = outs[0]
    assert np.isnan(got[rows - 3]).all() and np.isnan(got[rows - 2]).all()
    fine = np.ones_like(x, bool)
    fine[rows - 3 : rows - 1] = False
    with np.errstate(invalid="ignore"):
        small = (t - t.max(-1, keepdims=True)) < -79.4
    assert (got[small & fine] == 0).all()
    # exp itself: column 0 holds each grid row's max, exp(0) = 1 exactly, so out / out[:, :1]
    # is exp(x - max) up to the two roundings of the scaling
    g = slice(0, rows - 4)
    ratio = got[g].astype(np.float64) / got[g, :1]
    want = np.exp(t[g] - t[g, :1])
    rel = np.abs(ratio[~small[g]] / want[~small[g]] - 1)
    assert rel.max() <= 2.5e-7, rel.max()
    assert np.abs(got[fine] - ref[fine]).max() <= 1e-6 * ref[fine].max()


@pytest.mark.parametrize("n", [128, 37, 6])
def test_lowered_softmax_row_max_signs(rts, n):
    """The Wasm softmax's row max from integer max/min of the f32 bits: rows all negative,
    all positive, mixed, with -0.0 / +0.0 as the max, -inf, a lone positive, a NaN with and
    without sign bit (the row is NaN), against float64; 1 and 2 threads."""
    wat, man = _lowered_softmax_wat((10, n))
    x = np.empty((10, n), np.float32)
    x[0] = -RNG.uniform(1, 50, n)  # all negative
    x[1] = RNG.uniform(1, 50, n)  # all positive
    x[2] = RNG.uniform(-50, 50, n)  # mixed
    x[3] = -RNG.uniform(1, 5, n)
    x[3, n // 2] = -0.0  # the max is -0.0
    x[4] = -RNG.uniform(1, 5, n)
    x[4, 1] = 0.0  # the max is +0.0
    x[5] = -RNG.uniform(1, 5, n)
    x[5, :2] = -np.inf
    x[6] = -1e30
    x[6, n - 1] = 1e-30  # a lone (tiny) positive
    x[7] = np.float32(-3.0)  # constant negative row
    x[8] = RNG.standard_normal(n)
    x[8, n - 2] = np.float32(np.nan)
    x[9] = RNG.standard_normal(n)
    x[9, 0] = -np.float32(np.nan)  # sign bit set
    t = x.astype(np.float64)
    with np.errstate(invalid="ignore"):
        e = np.exp(t - t.max(-1, keepdims=True))
        ref = e / e.sum(-1, keepdims=True)
    outs = [rt.run_kernel(wat, man, [x, None])[0] for rt in rts.values()]
    np.testing.assert_array_equal(outs[0], outs[1])
    got = outs[0]
    assert np.isnan(got[8:]).all()
    for r in range(8):
        assert rel_err(got[r], ref[r]) <= 1e-6, r


_LAYER_NORM_FUSED = """
func.func @f(%x: tensor<{s}xf32>, %res: tensor<{s}xf32>, %g: tensor<{n}xf32>, %o: tensor<{n}xf32>) {{
  %r = nn_tensor.fused %x, %res, %g, %o {{kind = "layer_norm"}} : (tensor<{s}xf32>, tensor<{s}xf32>, tensor<{n}xf32>, tensor<{n}xf32>) -> tensor<{s}xf32> {{
  ^bb0(%a: tensor<{s}xf32>, %q: tensor<{s}xf32>, %sc: tensor<{n}xf32>, %bi: tensor<{n}xf32>):
    %xr = nn_tensor.add %a, %q : (tensor<{s}xf32>, tensor<{s}xf32>) -> tensor<{s}xf32>
    %in = {inp}
    %y = nn_tensor.layer_norm %in, %sc, %bi {{axis = {axis} : i64, epsilon = 1.0e-12 : f32}} : (tensor<{s}xf32>, tensor<{n}xf32>, tensor<{n}xf32>) -> tensor<{s}xf32>
    %e = nn_tensor.mul %y, %q : (tensor<{s}xf32>, tensor<{s}xf32>) -> tensor<{s}xf32>
    nn_tensor.yield {res} : tensor<{s}xf32>
  }}
  func.return
}}"""


@pytest.mark.parametrize("shape", [(2, 64, 384), (3, 37), (5, 768), (4, 3)])
@pytest.mark.parametrize("prologue", [False, True])
@pytest.mark.parametrize("epilogue", [False, True])
@pytest.mark.parametrize("relaxed", [True, False])
def test_lowered_layer_norm_in_wasmtime(rts, shape, prologue, epilogue, relaxed):
    """The Wasm layer norm (mean and variance passes with several accumulators; a prologue
    computed once and kept in the output row) against float64: rows with a large mean and
    a small spread (two-pass variance), large magnitudes, a constant row; outputs poisoned,
    1 and 2 threads, relaxed SIMD on and off."""
    from nnjit.passes.lowering import lowering_for
    from nnjit.passes.lowering.schedule import Schedule

    s = "x".join(map(str, shape))
    n = shape[-1]
    inp = f"nn_tensor.add %xr, %a : (tensor<{s}xf32>, tensor<{s}xf32>) -> tensor<{s}xf32>"
    src = _LAYER_NORM_FUSED.format(
        s=s, n=n, axis=len(shape) - 1, inp=inp if prologue else f"nn_tensor.neg %a : tensor<{s}xf32> -> tensor<{s}xf32>",
        res="%e" if epilogue else "%y",
    )  # fmt: skip
    if not prologue:  # the root reads the block argument directly
        src = src.replace(f"%in = nn_tensor.neg %a : tensor<{s}xf32> -> tensor<{s}xf32>\n", "")
        src = src.replace("layer_norm %in,", "layer_norm %a,")
    m = Parser(CTX, src).parse_module()
    fused = next(op for op in m.walk() if op.name == "nn_tensor.fused")
    k = lowering_for("layer_norm")(fused, "k", Schedule(target="wasm"))
    mod = ModuleOp([k])
    NNLoopExpandMathPass(target="wasm").apply(CTX, mod)
    NNLoopUnrollPass().apply(CTX, mod)
    ConvertNNLoopToWasmPass(relaxed_simd=relaxed).apply(CTX, mod)
    ((_, wat, man),) = wat_kernels(mod)
    rows = int(np.prod(shape[:-1]))
    x = RNG.standard_normal((rows, n)).astype(np.float32)
    x[0] = 100 + x[0] * 0.1  # large mean, small spread
    x[-1] = (x[-1] * 1e4).astype(np.float32)
    if rows > 2:
        x[1] = 7.0  # constant row: variance 0, output = bias
    res = RNG.standard_normal((rows, n)).astype(np.float32)
    g = RNG.standard_normal(n).astype(np.float32)
    o = RNG.standard_normal(n).astype(np.float32)
    t = x.astype(np.float64)
    if prologue:
        t = ((x + res) + x).astype(np.float64)  # the prologue's f32 additions
    mu = t.mean(-1, keepdims=True)
    var = ((t - mu) ** 2).mean(-1, keepdims=True)
    ref = (t - mu) / np.sqrt(var + 1e-12) * g + o
    if epilogue:
        ref = ref * res
    args = [x.reshape(shape), res.reshape(shape), g, o, None]
    outs = [rt.run_kernel(wat, man, args)[0].reshape(rows, n) for rt in rts.values()]
    np.testing.assert_array_equal(outs[0], outs[1])
    for r in range(rows):  # each row against its own scale
        # f32 sums leave ~1e-6 of |mean| / std (~1e-5 for short rows with the prologue); row
        # 0 (mean 100 or 200, spread 0.1) ~1e-4, where E[x^2] - E[x]^2 would leave ~1e-1
        assert rel_err(outs[0][r], ref[r]) <= (5e-4 if r == 0 else 1e-5), r


def _lowered_kernel_wat(src: str, kind: str, relaxed: bool = True, **sched):
    """(WAT, manifest) of the one fused op of `src`, lowered for wasm under `sched`."""
    from nnjit.passes.lowering import lowering_for
    from nnjit.passes.lowering.schedule import Schedule

    m = Parser(CTX, src).parse_module()
    fused = next(op for op in m.walk() if op.name == "nn_tensor.fused")
    mod = ModuleOp([lowering_for(kind)(fused, "k", Schedule(target="wasm", **sched))])
    NNLoopExpandMathPass(target="wasm").apply(CTX, mod)
    NNLoopUnrollPass().apply(CTX, mod)
    ConvertNNLoopToWasmPass(relaxed_simd=relaxed).apply(CTX, mod)
    ((_, wat, man),) = wat_kernels(mod)
    return wat, man


@pytest.mark.parametrize("n", [1536, 131])
@pytest.mark.parametrize("relaxed", [True, False])
@pytest.mark.parametrize("vec", [0, 1])
def test_lowered_gelu_in_wasmtime(rts, n, relaxed, vec):
    """The inline Wasm GELU (rational erf, no helper calls) with a bias add, element by
    element against float64 on a dense grid of [-12, 12], large magnitudes, +-inf and NaN;
    outputs poisoned, 1 and 2 threads, relaxed SIMD on and off, scalar and vector code."""
    s, b = f"64x{n}", f"{n}"
    src = f"""
func.func @f(%x: tensor<{s}xf32>, %b: tensor<{b}xf32>) {{
  %r = nn_tensor.fused %x, %b {{kind = "elementwise"}} : (tensor<{s}xf32>, tensor<{b}xf32>) -> tensor<{s}xf32> {{
  ^bb0(%a: tensor<{s}xf32>, %c: tensor<{b}xf32>):
    %t = nn_tensor.add %a, %c : (tensor<{s}xf32>, tensor<{b}xf32>) -> tensor<{s}xf32>
    %y = nn_tensor.gelu %t : tensor<{s}xf32> -> tensor<{s}xf32>
    nn_tensor.yield %y : tensor<{s}xf32>
  }}
  func.return
}}"""
    wat, man = _lowered_kernel_wat(src, "elementwise", relaxed, vec=vec)
    assert "call" not in wat  # no erf / exp helper
    x = RNG.permutation(np.linspace(-12, 12, 64 * n).astype(np.float32)).reshape(64, n)
    x[0] = (RNG.standard_normal(n) * 1e4).astype(np.float32)
    x[1, :4] = [np.inf, -np.inf, np.nan, 0.0]
    bias = (RNG.standard_normal(n) * 0.5).astype(np.float32)
    bias[:4] = 0.0
    t = (x + bias).astype(np.float64)  # the f32 bias add, then float64
    with np.errstate(invalid="ignore"):
        ref = 0.5 * t * (1.0 + np.vectorize(math.erf)(t / math.sqrt(2.0)))
    outs = [rt.run_kernel(wat, man, [x, bias, None])[0] for rt in rts.values()]
    np.testing.assert_array_equal(outs[0], outs[1])
    got = outs[0]
    assert got[1, 0] == np.inf and np.isnan(got[1, 1]) and np.isnan(got[1, 2]) and got[1, 3] == 0
    fin = np.isfinite(t)
    assert (np.abs(got[fin] - ref[fin]) <= 3.5e-7 * np.abs(t[fin]) + 1e-37).all()


@pytest.mark.parametrize("n", [1536, 131])
@pytest.mark.parametrize("relaxed", [True, False])
@pytest.mark.parametrize("vec", [0, 1])
def test_lowered_tanh_in_wasmtime(rts, n, relaxed, vec):
    """The inline Wasm tanh (rational fit on a clamped |x|, no helper call) after a scale,
    element by element against float64 on a dense grid of [-12, 12], tiny and large
    magnitudes, +-0, +-inf and NaN; outputs poisoned, 1 and 2 threads, relaxed SIMD on and
    off, scalar and vector code."""
    s = f"64x{n}"
    src = f"""
func.func @f(%x: tensor<{s}xf32>) {{
  %r = nn_tensor.fused %x {{kind = "elementwise"}} : (tensor<{s}xf32>) -> tensor<{s}xf32> {{
  ^bb0(%a: tensor<{s}xf32>):
    %k = nn_tensor.constant dense<0.5> : tensor<f32>
    %t = nn_tensor.mul %a, %k : (tensor<{s}xf32>, tensor<f32>) -> tensor<{s}xf32>
    %y = nn_tensor.tanh %t : tensor<{s}xf32> -> tensor<{s}xf32>
    nn_tensor.yield %y : tensor<{s}xf32>
  }}
  func.return
}}"""
    wat, man = _lowered_kernel_wat(src, "elementwise", relaxed, vec=vec)
    assert "call" not in wat  # no tanh helper
    x = RNG.permutation(np.linspace(-24, 24, 64 * n).astype(np.float32)).reshape(64, n)
    x[0] = (RNG.standard_normal(n) * 1e4).astype(np.float32)
    x[2] = np.geomspace(1e-37, 30, n).astype(np.float32) * np.where(np.arange(n) % 2, 1, -1)
    x[1, :6] = [np.inf, -np.inf, np.nan, 0.0, -0.0, 3.0e38]
    t = x.astype(np.float64) * 0.5  # (exact in f32 too)
    ref = np.tanh(t)
    outs = [rt.run_kernel(wat, man, [x, None])[0] for rt in rts.values()]
    np.testing.assert_array_equal(outs[0], outs[1])
    got = outs[0]
    assert np.isnan(got[1, 2]) and got[1, 3] == 0 and np.signbit(got[1, 4]) and got[1, 4] == 0
    assert 1 - 3.5e-7 <= got[1, 0] <= 1 and -1 <= got[1, 1] <= -1 + 3.5e-7 and got[1, 5] <= 1
    fin = np.isfinite(t)
    err = np.abs(got[fin] - ref[fin])
    assert (err <= 3.5e-7 * np.minimum(1.0, np.abs(t[fin]) * 4) + 1e-44).all(), err.max()
    assert (np.abs(got[~np.isnan(x)]) <= 1).all()


# ------------------------------------------------------------------------- address streams


def _stream_kernel(R: int, N: int, lo: int) -> str:
    """y[r, j] = x[r, j] + x[r, j + 1] + (j >= 1 ? x[r, j - 1] : 0) + x[r, N - 1 - j]
    + x[r, ids[j]] for j in [lo, N - 1), y elsewhere untouched: loads with constant offsets
    (one pointer), a negative offset and a reversed index (no stream: full address), a
    loop-carried guard (the iv stays), an index loaded in the loop body, lb > 0."""
    return f"""
nn_loop.kernel @st(%x: memref<{R}x{N}xf32> read, %ids: memref<{N}xi32> read, %y: memref<{R}x{N}xf32> read_write) kind "t" target "wasm" {{
  %c1 = arith.constant 1 : index
  %cn1 = arith.constant {N - 1} : index
  %zero = arith.constant 0.0 : f32
  nn_loop.for %r = 0 to {R} map "thread" {{
    nn_loop.for %j = {lo} to {N - 1} {{
      %a = nn_loop.load %x[%r, %j] : memref<{R}x{N}xf32> -> f32
      %j1 = arith.addi %j, %c1 : index
      %b = nn_loop.load %x[%r, %j1] : memref<{R}x{N}xf32> -> f32
      %s = arith.addf %a, %b : f32
      %jm = arith.subi %j, %c1 : index
      %ok = arith.cmpi sge, %j, %c1 : index
      %jc = arith.maxsi %jm, %c1 : index
      %p = nn_loop.load %x[%r, %jm] : memref<{R}x{N}xf32> -> f32
      %pz = arith.select %ok, %p, %zero : f32
      %s2 = arith.addf %s, %pz : f32
      %jr = arith.subi %cn1, %j : index
      %q = nn_loop.load %x[%r, %jr] : memref<{R}x{N}xf32> -> f32
      %s3 = arith.addf %s2, %q : f32
      %i = nn_loop.load %ids[%j] : memref<{N}xi32> -> i32
      %ii = arith.index_cast %i : i32 to index
      %g = nn_loop.load %x[%r, %ii] : memref<{R}x{N}xf32> -> f32
      %s4 = arith.addf %s3, %g : f32
      nn_loop.store %s4, %y[%r, %j] : f32, memref<{R}x{N}xf32>
    }}
  }}
}}"""


@pytest.mark.parametrize("lo", [1, 3])
def test_address_streams_execute(rts, lo):
    R, N = 3, 11
    x = RNG.standard_normal((R, N)).astype(np.float32)
    ids = RNG.integers(0, N, N).astype(np.int32)
    y0 = RNG.standard_normal((R, N)).astype(np.float32)
    src = _stream_kernel(R, N, lo)
    # the guarded x[r, j - 1] with j = lo >= 1 reads in bounds
    (y,), _ = run_all(rts, src, [x, ids, y0], relaxed_options=(True,))
    ref = y0.astype(np.float64)
    xd = x.astype(np.float64)
    for j in range(lo, N - 1):
        ref[:, j] = xd[:, j] + xd[:, j + 1] + (xd[:, j - 1] if j >= 1 else 0) + xd[:, N - 1 - j] + xd[:, ids[j]]
    assert rel_err(y, ref) < 1e-6
    ((_, wat, _),) = wat_kernels(convert(src))
    inner = wat[wat.index("loop $l") :]
    inner = inner[: inner.index("br_if $l")]
    # x[r, j] and x[r, j + 1] share one pointer with memarg offsets 0 and 4; y has its own
    assert "local.get $p_x\n" in inner and "f32.load offset=4" in inner
    assert "local.get $p_y\n" in inner
    assert "local.get $j\n" in inner  # the guard and the shifted/reversed loads keep the iv


def test_address_streams_replace_the_iv_and_scaled_indices():
    """nnjit's matmul kernel (weights packed): in the k loop every address is a pointer plus a
    memarg offset; no multiplication and no iv are left, and the loop counts with the first
    pointer (until it equals a precomputed end)."""
    from nnjit.compiler import run_pipeline

    src = """
func.func @main(%x: tensor<13x24xf32>) -> tensor<13x32xf32> {
  %w = nn_tensor.weight "w" : tensor<24x32xf32>
  %m = nn_tensor.matmul %x, %w : (tensor<13x24xf32>, tensor<24x32xf32>) -> tensor<13x32xf32>
  func.return %m : tensor<13x32xf32>
}"""
    m = Parser(CTX, src).parse_module()
    run_pipeline(m, "nn-tensor-pack-weights,convert-nn-tensor-to-nn-loop{target=wasm},nn-loop-unroll,convert-nn-loop-to-wasm")
    ((_, wat, _),) = wat_kernels(m)
    start = wat.rindex("loop $", 0, wat.index("relaxed_madd"))  # the k loop
    label = wat[start + 5 : wat.index("\n", start)]
    body = wat[start : wat.index(f"br_if {label}", start)]
    assert "i32.mul" not in body and "local.get $k" not in body
    # default 2x16 register tile, k unrolled twice: 2 A splats and 8 FMAs per row and k step
    assert body.count("v128.load32_splat") == 4 and body.count("relaxed_madd") == 16
    assert "v128.load offset=48" in body  # the second k step's second B vector
    assert "v128.load offset=768" in body  # the next panel (24 x 8 floats further)
    tail = body[-200:]
    assert "i32.ne" in tail and "local.get $p_end" in tail


def test_memarg_offsets_for_non_negative_index_expressions():
    """Constant address parts go to the memarg offset when every other term is provably
    non-negative (here rem/div/min of loop ivs); never with a possibly negative term."""
    src = """
nn_loop.kernel @nn(%x: memref<64xf32> read, %y: memref<64xf32> write) kind "t" target "wasm" {
  %c3 = arith.constant 3 : index
  %c8 = arith.constant 8 : index
  %c2 = arith.constant 2 : index
  %c50 = arith.constant 50 : index
  nn_loop.for %t = 0 to 16 map "thread" {
    %a = arith.remsi %t, %c3 : index
    %b = arith.divsi %t, %c2 : index
    %m = arith.minsi %b, %c50 : index
    %i = arith.addi %a, %m : index
    %i2 = arith.addi %i, %c8 : index
    %v = nn_loop.load %x[%i2] : memref<64xf32> -> f32
    %n = arith.subi %a, %c2 : index
    %n2 = arith.addi %n, %c8 : index
    %w = nn_loop.load %x[%n2] : memref<64xf32> -> f32
    %r = arith.subi %c8, %a : index
    %u = nn_loop.load %x[%r] : memref<64xf32> -> f32
    %w2 = arith.addf %w, %u : f32
    %s = arith.addf %v, %w2 : f32
    nn_loop.store %s, %y[%t] : f32, memref<64xf32>
  }
}
"""
    ((_, wat, _),) = wat_kernels(convert(src))
    assert "f32.load offset=32" in wat  # x[a + min(t/2, 50) + 8]
    assert "f32.load offset=24" in wat  # x[(a - 2) + 8] = x[a + 6]
    assert wat.count("offset=") == 2  # not x[8 - a]: -a is negative
