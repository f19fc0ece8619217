"""convert-nn-loop-to-wgsl + the WGSL printer, executed on lavapipe (wgpu-py).

Hand-written nn_loop kernels (matmul with a register tile and vec4, softmax with workgroup
memory and barriers, elementwise erf/tanh/exp/sin/cos, gather with i32 indices, ragged guards,
linearised grids, integer/float op coverage) are converted, printed, compiled and run on
fresh random inputs with NaN-poisoned outputs, and compared with numpy in float64.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from xdsl.parser import Parser

from nnjit.backends.names import WGSL_RESERVED
from nnjit.backends.wgsl_printer import manifest, print_wgsl, wgsl_kernels
from nnjit.dialects import nn_loop
from nnjit.dialects import nn_wgsl as w
from nnjit.errors import UnsupportedError
from nnjit.passes.convert_nn_loop_to_wgsl import ConvertNNLoopToWgslPass
from nnjit.passes.nn_loop_unroll import NNLoopUnrollPass
from nnjit.registry import make_context
from nnjit.targets import TARGETS
from tests.conftest import relative_error

CTX = make_context()
RNG = np.random.default_rng()


@pytest.fixture(scope="module")
def rt():
    from nnjit.runtime.webgpu import default_runtime

    return default_runtime()


def convert(ir: str, **opts) -> list[tuple[str, str, dict]]:
    """The WGSL kernels of nn_loop text, through the target's loop passes (math.erf and
    math.tanh written out by nn-loop-expand-math, loops unrolled, private buffers kept in
    registers by nn-loop-promote-registers) and the conversion."""
    module = Parser(CTX, ir).parse_module()
    module.verify()
    for p in TARGETS["webgpu"].loop_pass_objects():
        p.apply(CTX, module)
    ConvertNNLoopToWgslPass(**opts).apply(CTX, module)
    module.verify()
    return wgsl_kernels(module)


def run(rt, ir: str, arrays: list, **opts) -> list[np.ndarray]:
    ((_, src, man),) = convert(ir, **opts)
    return rt.run_kernel(src, man, arrays)


# ------------------------------------------------------------------------------ matmul


def matmul_ir(m: int, k: int, n: int, rows: int = 2) -> str:
    """C = A @ B: a workgroup per `rows` rows (ragged m), an invocation per 4 columns (vec4
    loads of B and stores of C), a private register tile of `rows` vec4 accumulators, the k
    loop fully unrolled."""
    assert n % 4 == 0
    grid = -(-m // rows) * rows
    return f"""
nn_loop.kernel @mm(%a: memref<{m}x{k}xf32> read, %b: memref<{k}x{n}xf32> read,
                   %c: memref<{m}x{n}xf32> write) kind "matmul" target "wgsl" {{
  %cm = arith.constant {m} : index
  %clast = arith.constant {m - 1} : index
  %zero = arith.constant dense<0.0> : vector<4xf32>
  nn_loop.for %i0 = 0 to {grid} step {rows} map "workgroup.x" {{
    nn_loop.for %j = 0 to {n} step 4 map "invocation.x" {{
      %acc = nn_loop.alloc : memref<{rows}xvector<4xf32>, #nn_loop<space private>>
      nn_loop.for %r = 0 to {rows} unroll {rows} {{
        nn_loop.store %zero, %acc[%r] : vector<4xf32>, memref<{rows}xvector<4xf32>, #nn_loop<space private>>
      }}
      nn_loop.for %kk = 0 to {k} unroll {k} {{
        %bv = nn_loop.load %b[%kk, %j] : memref<{k}x{n}xf32> -> vector<4xf32>
        nn_loop.for %r = 0 to {rows} unroll {rows} {{
          %i = arith.addi %i0, %r : index
          %ic = arith.minsi %i, %clast : index
          %av = nn_loop.load %a[%ic, %kk] : memref<{m}x{k}xf32> -> f32
          %as = nn_loop.splat %av : f32 -> vector<4xf32>
          %old = nn_loop.load %acc[%r] : memref<{rows}xvector<4xf32>, #nn_loop<space private>> -> vector<4xf32>
          %new = math.fma %as, %bv, %old : vector<4xf32>
          nn_loop.store %new, %acc[%r] : vector<4xf32>, memref<{rows}xvector<4xf32>, #nn_loop<space private>>
        }}
      }}
      nn_loop.for %r = 0 to {rows} unroll {rows} {{
        %i = arith.addi %i0, %r : index
        %inb = arith.cmpi slt, %i, %cm : index
        nn_loop.if %inb {{
          %v = nn_loop.load %acc[%r] : memref<{rows}xvector<4xf32>, #nn_loop<space private>> -> vector<4xf32>
          nn_loop.store %v, %c[%i, %j] : vector<4xf32>, memref<{m}x{n}xf32>
        }}
      }}
    }}
  }}
}}
"""


@pytest.mark.parametrize("m,k,n,rows", [(5, 7, 8, 2), (8, 16, 12, 4), (1, 3, 4, 1)])
def test_matmul_register_tile_vec4(rt, m, k, n, rows):
    ((_, src, man),) = convert(matmul_ir(m, k, n, rows))
    # B and C are only accessed as aligned vec4: they are arrays of vec4; A is scalar
    assert re.search(r"var<storage, read> b: array<vec4<f32>>;", src)
    assert re.search(r"var<storage, read_write> c: array<vec4<f32>>;", src)
    assert re.search(r"var<storage, read> a: array<f32>;", src)
    assert man["dispatch"] == [-(-m // rows), 1, 1]
    assert man["workgroup_size"] == [n // 4, 1, 1]
    a = RNG.standard_normal((m, k)).astype(np.float32)
    b = RNG.standard_normal((k, n)).astype(np.float32)
    (c,) = rt.run_kernel(src, man, [a, b, None])
    assert relative_error(c, a.astype(np.float64) @ b) <= 1e-5


# ----------------------------------------------------------------------------- softmax


def softmax_ir(rows: int, cols: int, lanes: int = 32) -> str:
    """Softmax over the last dim: a workgroup per row, `lanes` invocations striding over the
    columns (ragged: guarded), max and sum reduced in workgroup memory with barriers (the max
    tree written out straight-line, the sum tree as a serial loop with a barrier inside)."""
    span = -(-cols // lanes) * lanes
    steps = int(math.log2(lanes))
    tree = []
    s = lanes // 2
    while s >= 1:
        tree.append(f"""
      %cs{s} = arith.constant {s} : index
      %lt{s} = arith.cmpi slt, %l, %cs{s} : index
      nn_loop.if %lt{s} {{
        %x0 = nn_loop.load %red[%l] : memref<{lanes}xf32, #nn_loop<space workgroup>> -> f32
        %o = arith.addi %l, %cs{s} : index
        %x1 = nn_loop.load %red[%o] : memref<{lanes}xf32, #nn_loop<space workgroup>> -> f32
        %mx = arith.maximumf %x0, %x1 : f32
        nn_loop.store %mx, %red[%l] : f32, memref<{lanes}xf32, #nn_loop<space workgroup>>
      }}
      nn_loop.barrier""")
        s //= 2
    tree_text = "".join(tree)
    return f"""
nn_loop.kernel @softmax(%x: memref<{rows}x{cols}xf32> read, %y: memref<{rows}x{cols}xf32> write)
    kind "softmax" target "wgsl" {{
  %ccols = arith.constant {cols} : index
  %c0 = arith.constant 0 : index
  %ninf = arith.constant 0xFF800000 : f32
  %zero = arith.constant 0.0 : f32
  %half = arith.constant {lanes // 2} : index
  nn_loop.for %r = 0 to {rows} map "workgroup.x" {{
    nn_loop.for %l = 0 to {lanes} map "invocation.x" {{
      %red = nn_loop.alloc : memref<{lanes}xf32, #nn_loop<space workgroup>>
      %acc = nn_loop.alloc : memref<1xf32, #nn_loop<space private>>
      nn_loop.store %ninf, %acc[%c0] : f32, memref<1xf32, #nn_loop<space private>>
      nn_loop.for %j0 = 0 to {span} step {lanes} {{
        %j = arith.addi %j0, %l : index
        %in = arith.cmpi slt, %j, %ccols : index
        nn_loop.if %in {{
          %v = nn_loop.load %x[%r, %j] : memref<{rows}x{cols}xf32> -> f32
          %m = nn_loop.load %acc[%c0] : memref<1xf32, #nn_loop<space private>> -> f32
          %mm = arith.maximumf %m, %v : f32
          nn_loop.store %mm, %acc[%c0] : f32, memref<1xf32, #nn_loop<space private>>
        }}
      }}
      %pm = nn_loop.load %acc[%c0] : memref<1xf32, #nn_loop<space private>> -> f32
      nn_loop.store %pm, %red[%l] : f32, memref<{lanes}xf32, #nn_loop<space workgroup>>
      nn_loop.barrier{tree_text}
      %rowmax = nn_loop.load %red[%c0] : memref<{lanes}xf32, #nn_loop<space workgroup>> -> f32
      nn_loop.barrier
      nn_loop.store %zero, %acc[%c0] : f32, memref<1xf32, #nn_loop<space private>>
      nn_loop.for %j0 = 0 to {span} step {lanes} {{
        %j = arith.addi %j0, %l : index
        %in = arith.cmpi slt, %j, %ccols : index
        nn_loop.if %in {{
          %v = nn_loop.load %x[%r, %j] : memref<{rows}x{cols}xf32> -> f32
          %d = arith.subf %v, %rowmax : f32
          %e = math.exp %d : f32
          %s = nn_loop.load %acc[%c0] : memref<1xf32, #nn_loop<space private>> -> f32
          %t = arith.addf %s, %e : f32
          nn_loop.store %t, %acc[%c0] : f32, memref<1xf32, #nn_loop<space private>>
        }}
      }}
      %ps = nn_loop.load %acc[%c0] : memref<1xf32, #nn_loop<space private>> -> f32
      nn_loop.store %ps, %red[%l] : f32, memref<{lanes}xf32, #nn_loop<space workgroup>>
      nn_loop.barrier
      nn_loop.for %k = 0 to {steps} {{
        %s = arith.shrui %half, %k : index
        %lt = arith.cmpi slt, %l, %s : index
        nn_loop.if %lt {{
          %x0 = nn_loop.load %red[%l] : memref<{lanes}xf32, #nn_loop<space workgroup>> -> f32
          %o = arith.addi %l, %s : index
          %x1 = nn_loop.load %red[%o] : memref<{lanes}xf32, #nn_loop<space workgroup>> -> f32
          %sum = arith.addf %x0, %x1 : f32
          nn_loop.store %sum, %red[%l] : f32, memref<{lanes}xf32, #nn_loop<space workgroup>>
        }}
        nn_loop.barrier
      }}
      %total = nn_loop.load %red[%c0] : memref<{lanes}xf32, #nn_loop<space workgroup>> -> f32
      nn_loop.for %j0 = 0 to {span} step {lanes} {{
        %j = arith.addi %j0, %l : index
        %in = arith.cmpi slt, %j, %ccols : index
        nn_loop.if %in {{
          %v = nn_loop.load %x[%r, %j] : memref<{rows}x{cols}xf32> -> f32
          %d = arith.subf %v, %rowmax : f32
          %e = math.exp %d : f32
          %q = arith.divf %e, %total : f32
          nn_loop.store %q, %y[%r, %j] : f32, memref<{rows}x{cols}xf32>
        }}
      }}
    }}
  }}
}}
"""


@pytest.mark.parametrize("rows,cols", [(3, 37), (2, 64), (1, 5)])
def test_softmax_workgroup_memory_barriers(rt, rows, cols):
    ((_, src, man),) = convert(softmax_ir(rows, cols))
    assert "var<workgroup>" in src and "workgroupBarrier();" in src
    assert man["workgroup_storage_bytes"] == 32 * 4
    x = (RNG.standard_normal((rows, cols)) * 4).astype(np.float32)
    (y,) = rt.run_kernel(src, man, [x, None])
    e = np.exp(x.astype(np.float64) - x.max(axis=1, keepdims=True))
    assert relative_error(y, e / e.sum(axis=1, keepdims=True)) <= 1e-5


def test_barrier_in_invocation_dependent_if_is_rejected():
    ir = """
nn_loop.kernel @bad(%y: memref<4xf32> write) kind "t" target "wgsl" {
  %c2 = arith.constant 2 : index
  nn_loop.for %l = 0 to 4 map "invocation.x" {
    %lt = arith.cmpi slt, %l, %c2 : index
    nn_loop.if %lt {
      nn_loop.barrier
    }
  }
}
"""
    with pytest.raises(Exception, match="non-uniform control flow"):
        convert(ir)


# ------------------------------------------------------------------------- elementwise


def elementwise_ir(n: int, vec: int, wg: int = 64) -> str:
    """e = erf(x), t = tanh(x), p = exp(x): vec lanes per invocation, a guard for the ragged
    end (n need not be a multiple of wg * vec)."""
    per = wg * vec
    grid = -(-n // per)
    vt = "f32" if vec == 1 else f"vector<{vec}xf32>"
    lim = n - vec + 1  # index of the last valid start
    return f"""
nn_loop.kernel @ew(%x: memref<{n}xf32> read, %e: memref<{n}xf32> write, %t: memref<{n}xf32> write,
                   %p: memref<{n}xf32> write) kind "elementwise" target "wgsl" {{
  %cper = arith.constant {per} : index
  %cvec = arith.constant {vec} : index
  %clim = arith.constant {lim} : index
  nn_loop.for %g = 0 to {grid} map "workgroup.x" {{
    nn_loop.for %l = 0 to {wg} map "invocation.x" {{
      %base = arith.muli %g, %cper : index
      %off = arith.muli %l, %cvec : index
      %i = arith.addi %base, %off : index
      %in = arith.cmpi slt, %i, %clim : index
      nn_loop.if %in {{
        %v = nn_loop.load %x[%i] : memref<{n}xf32> -> {vt}
        %ev = math.erf %v : {vt}
        %tv = math.tanh %v : {vt}
        %pv = math.exp %v : {vt}
        nn_loop.store %ev, %e[%i] : {vt}, memref<{n}xf32>
        nn_loop.store %tv, %t[%i] : {vt}, memref<{n}xf32>
        nn_loop.store %pv, %p[%i] : {vt}, memref<{n}xf32>
      }}
    }}
  }}
}}
"""


def _erf64(x: np.ndarray) -> np.ndarray:
    return np.array([math.erf(float(v)) for v in x.ravel()]).reshape(x.shape)


@pytest.mark.parametrize("n,vec", [(1003, 1), (1004, 4), (7, 1)])
def test_elementwise_erf_tanh_exp(rt, n, vec):
    ((_, src, man),) = convert(elementwise_ir(n, vec))
    if vec == 4:
        assert "array<vec4<f32>>" in src
    x = RNG.uniform(-9, 9, n).astype(np.float32)
    x[: min(n, 4)] = np.array([0.0, -1e-6, 30.0, -60.0], dtype=np.float32)[: min(n, 4)]
    e, t, p = rt.run_kernel(src, man, [x, None, None, None])
    xd = x.astype(np.float64)
    assert np.all(np.isfinite(e)) and np.all(np.isfinite(t))
    assert np.max(np.abs(e - _erf64(xd))) <= 3e-7
    assert np.max(np.abs(t - np.tanh(xd))) <= 2e-6
    # WGSL allows exp an error of 3 + 2|x| ULP (lavapipe computes exp2(x * log2(e)))
    assert np.all(np.abs(p - np.exp(xd)) <= (3 + 2 * np.abs(xd)) * 2.0**-23 * np.exp(xd))


def test_erf_accuracy_dense_grid(rt):
    """|erf error| <= 2e-7 (plus f32 rounding) over [-6, 6], through the vec4 helper."""
    n = 1 << 16
    ((_, src, man),) = convert(elementwise_ir(n, 4, wg=256))
    x = np.linspace(-6, 6, n).astype(np.float32)
    x[RNG.integers(0, n, 64)] = RNG.uniform(-1, 1, 64).astype(np.float32)  # fresh points
    e, _, _ = rt.run_kernel(src, man, [x, None, None, None])
    assert np.max(np.abs(e - _erf64(x.astype(np.float64)))) <= 2.5e-7


def test_tanh_large_arguments_are_not_nan(rt):
    n = 16
    ((_, src, man),) = convert(elementwise_ir(n, 1))
    x = np.array([20, -20, 50, -50, 100, -100, 1e4, -1e4, 1e30, -1e30, 0, 1, -1, 9, -9, 3e38],
                 dtype=np.float32)  # fmt: skip
    _, t, _ = rt.run_kernel(src, man, [x, None, None, None])
    assert np.max(np.abs(t - np.tanh(x.astype(np.float64)))) <= 2e-6


def sin_cos_ir(n: int, vec: int, wg: int = 64) -> str:
    """s = sin(x), c = cos(x), `vec` lanes per invocation, a guard for the ragged end."""
    per = wg * vec
    vt = "f32" if vec == 1 else f"vector<{vec}xf32>"
    return f"""
nn_loop.kernel @sc(%x: memref<{n}xf32> read, %s: memref<{n}xf32> write, %c: memref<{n}xf32> write)
    kind "elementwise" target "wgsl" {{
  %cper = arith.constant {per} : index
  %cvec = arith.constant {vec} : index
  %clim = arith.constant {n - vec + 1} : index
  nn_loop.for %g = 0 to {-(-n // per)} map "workgroup.x" {{
    nn_loop.for %l = 0 to {wg} map "invocation.x" {{
      %base = arith.muli %g, %cper : index
      %off = arith.muli %l, %cvec : index
      %i = arith.addi %base, %off : index
      %in = arith.cmpi slt, %i, %clim : index
      nn_loop.if %in {{
        %v = nn_loop.load %x[%i] : memref<{n}xf32> -> {vt}
        %sv = math.sin %v : {vt}
        %cv = math.cos %v : {vt}
        nn_loop.store %sv, %s[%i] : {vt}, memref<{n}xf32>
        nn_loop.store %cv, %c[%i] : {vt}, memref<{n}xf32>
      }}
    }}
  }}
}}
"""


@pytest.mark.parametrize("n,vec", [(4099, 1), (1 << 16, 4)])
def test_sin_cos_large_arguments(rt, n, vec):
    """sin and cos as nn-loop-expand-math writes them (approx.py: a Cody-Waite reduction, not
    WGSL's sin/cos, whose error is bounded on [-pi, pi] only): within 1e-7 of numpy's float64
    for |x| <= 1e5 (rotary embeddings: positions times frequencies), NaN for NaN and +-inf,
    |y| <= 1 for any finite x; the outputs start poisoned with NaN."""
    ((_, src, man),) = convert(sin_cos_ir(n, vec))
    assert "sin(" not in src and "cos(" not in src
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, 3e38, -3e38, 1e7, 102943.0,
                         -1e5, 1e4, 512.0, np.pi / 4, -np.pi / 2, np.pi], np.float32)  # fmt: skip
    m = (n - specials.size) // 3
    x = np.concatenate([specials, RNG.uniform(-10, 10, m), RNG.uniform(-1e4, 1e4, m),
                        RNG.uniform(-1e5, 1e5, n - specials.size - 2 * m)]).astype(np.float32)  # fmt: skip
    s, c = rt.run_kernel(src, man, [x, None, None])
    finite = np.isfinite(x)
    near = np.abs(x) <= 1e5
    xd = x[near].astype(np.float64)
    for y, ref in ((s, np.sin), (c, np.cos)):
        np.testing.assert_array_equal(np.isnan(y), ~finite)
        assert np.all(np.abs(y[finite]) <= 1.0)
        err = np.abs(y[near] - ref(xd))
        assert err.max() <= 1e-7, (ref.__name__, float(err.max()), float(x[near][np.argmax(err)]))


# ------------------------------------------------------------------------------ gather


def gather_ir(v: int, d: int, n: int, vec: int) -> str:
    """out[i, :] = table[idx[i], :] with i32 indices; vec lanes per invocation."""
    vt = "f32" if vec == 1 else "vector<4xf32>"
    return f"""
nn_loop.kernel @gather(%table: memref<{v}x{d}xf32> read, %idx: memref<{n}xi32> read,
                       %out: memref<{n}x{d}xf32> write) kind "gather" target "wgsl" {{
  nn_loop.for %i = 0 to {n} map "workgroup.x" {{
    nn_loop.for %j = 0 to {d} step {vec} map "invocation.x" {{
      %iv = nn_loop.load %idx[%i] : memref<{n}xi32> -> i32
      %row = arith.index_cast %iv : i32 to index
      %val = nn_loop.load %table[%row, %j] : memref<{v}x{d}xf32> -> {vt}
      nn_loop.store %val, %out[%i, %j] : {vt}, memref<{n}x{d}xf32>
    }}
  }}
}}
"""


@pytest.mark.parametrize("v,d,n,vec", [(11, 12, 9, 4), (7, 10, 5, 1)])
def test_gather_i32_indices(rt, v, d, n, vec):
    ((_, src, man),) = convert(gather_ir(v, d, n, vec))
    assert [b["dtype"] for b in man["bindings"]] == ["f32", "i32", "f32"]
    assert ("array<vec4<f32>>" in src) == (vec == 4)
    table = RNG.standard_normal((v, d)).astype(np.float32)
    idx = RNG.integers(0, v, n).astype(np.int32)
    (out,) = rt.run_kernel(src, man, [table, idx, None])
    assert relative_error(out, table.astype(np.float64)[idx]) == 0.0


# ------------------------------------------------------------------------ vector access


def vector_access_ir(n: int) -> str:
    """Vector loads at every offset (not multiples of 4: assembled from scalars), lane
    reductions and a vector store at an odd offset (split into scalar stores)."""
    m = n - 3
    return f"""
nn_loop.kernel @vacc(%x: memref<{n}xf32> read, %win: memref<{m}x4xf32> write,
                     %s: memref<{m}xf32> write, %mx: memref<{m}xf32> write,
                     %sh: memref<{n + 1}xf32> read_write) kind "t" target "wgsl" {{
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2.0 : f32
  nn_loop.for %i = 0 to {m} map "invocation.x" {{
    %v = nn_loop.load %x[%i] : memref<{n}xf32> -> vector<4xf32>
    %c0 = arith.constant 0 : index
    nn_loop.store %v, %win[%i, %c0] : vector<4xf32>, memref<{m}x4xf32>
    %sum = nn_loop.reduce_lanes add %v : vector<4xf32> -> f32
    %max = nn_loop.reduce_lanes max %v : vector<4xf32> -> f32
    nn_loop.store %sum, %s[%i] : f32, memref<{m}xf32>
    nn_loop.store %max, %mx[%i] : f32, memref<{m}xf32>
    %l2 = nn_loop.extract %v {{lane = 2}} : vector<4xf32> -> f32
    %two = nn_loop.splat %c2 : f32 -> vector<4xf32>
    %w = arith.mulf %v, %two : vector<4xf32>
    %i4 = arith.muli %i, %c1 : index
    %c3 = arith.constant 3 : index
    %r = arith.remsi %i4, %c3 : index
    %z = arith.cmpi eq, %r, %c0 : index
    %lim = arith.constant {n - 3} : index
    %ok = arith.cmpi slt, %i, %lim : index
    %both = arith.andi %z, %ok : i1
    nn_loop.if %both {{
      %o = arith.addi %i, %c1 : index
      nn_loop.store %w, %sh[%o] : vector<4xf32>, memref<{n + 1}xf32>
    }}
    %zl = arith.cmpi eq, %i, %c0 : index
    nn_loop.if %zl {{
      nn_loop.store %l2, %sh[%c0] : f32, memref<{n + 1}xf32>
    }}
  }}
}}
"""


def test_vector_access_unaligned_and_lane_ops(rt):
    n = 13
    ((_, src, man),) = convert(vector_access_ir(n))
    assert "array<vec4<f32>>" in src  # win: every access aligned
    assert "var<storage, read> x: array<f32>;" in src
    x = RNG.standard_normal(n).astype(np.float32)
    sh0 = RNG.standard_normal(n + 1).astype(np.float32)
    win, s, mx, sh = rt.run_kernel(src, man, [x, None, None, None, sh0])
    xd = x.astype(np.float64)
    ref_win = np.stack([xd[i : i + 4] for i in range(n - 3)])
    assert relative_error(win, ref_win) == 0.0
    assert relative_error(s, ref_win.sum(axis=1)) <= 1e-6
    assert relative_error(mx, ref_win.max(axis=1)) == 0.0
    ref_sh = sh0.astype(np.float64).copy()
    ref_sh[0] = xd[2]
    for i in range(0, n - 3, 3):  # the stores race only on equal values: i multiple of 3
        ref_sh[i + 1 : i + 5] = 2 * xd[i : i + 4]
    assert relative_error(sh, ref_sh) == 0.0


# ------------------------------------------------------------------------- integer ops


def _suffix(text: str, k: int) -> str:
    """Makes the values an op snippet defines (%q, %c, %c1, ...) unique to snippet k."""
    return re.sub(r"%(q|c|c1|c2|c3|ch|ii|ninf)\b", lambda m: f"%{m.group(1)}_{k}", text).replace(
        "%q_", "%q"
    )


def int_ops_ir(n: int) -> str:
    ops = [
        ("divsi", "%q = arith.divsi %a, %b : i32"),
        ("remsi", "%q = arith.remsi %a, %b : i32"),
        ("floordivsi", "%q = arith.floordivsi %a, %b : i32"),
        ("ceildivsi", "%q = arith.ceildivsi %a, %b : i32"),
        ("minsi", "%q = arith.minsi %a, %b : i32"),
        ("maxsi", "%q = arith.maxsi %a, %b : i32"),
        ("shli", "%q = arith.shli %a, %sh : i32"),
        ("shrsi", "%q = arith.shrsi %a, %sh : i32"),
        ("shrui", "%q = arith.shrui %a, %sh : i32"),
        ("xori", "%q = arith.xori %a, %b : i32"),
        ("ult", "%c = arith.cmpi ult, %a, %b : i32\n    %q = arith.extui %c : i1 to i32"),
        ("sge_select", "%c = arith.cmpi sge, %a, %b : i32\n    %q = arith.select %c, %a, %b : i32"),
        ("fptosi", "%q = arith.fptosi %f : f32 to i32"),
        ("divui", "%q = arith.divui %a, %b : i32"),
        ("xor_i1", "%c1 = arith.cmpi slt, %a, %b : i32\n    %c2 = arith.cmpi sgt, %a, %zero : i32\n"
                   "    %c = arith.xori %c1, %c2 : i1\n    %q = arith.extui %c : i1 to i32"),
        ("trunci", "%c = arith.trunci %a : i32 to i1\n    %q = arith.extsi %c : i1 to i32"),
    ]  # fmt: skip
    body = []
    for k, (_, text) in enumerate(ops):
        text = _suffix(text, k)
        body.append(f"""    {text}
    %k{k} = arith.constant {k} : index
    nn_loop.store %q{k}, %o[%k{k}, %i] : i32, memref<{len(ops)}x{n}xi32>""")
    return (
        f"""
nn_loop.kernel @ints(%ai: memref<{n}xi32> read, %bi: memref<{n}xi32> read, %fi: memref<{n}xf32> read,
                     %o: memref<{len(ops)}x{n}xi32> write) kind "t" target "wgsl" {{
  %seven = arith.constant 7 : i32
  %zero = arith.constant 0 : i32
  nn_loop.for %i = 0 to {n} map "invocation.x" {{
    %a = nn_loop.load %ai[%i] : memref<{n}xi32> -> i32
    %b = nn_loop.load %bi[%i] : memref<{n}xi32> -> i32
    %f = nn_loop.load %fi[%i] : memref<{n}xf32> -> f32
    %sh = arith.andi %b, %seven : i32
"""
        + "\n".join(body)
        + "\n  }\n}\n"
    ), [name for name, _ in ops]


def _int_refs(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> dict[str, np.ndarray]:
    a64, b64 = a.astype(np.int64), b.astype(np.int64)
    trunc = np.trunc(a64 / b64).astype(np.int64)
    sh = b64 & 7
    u = lambda x: x.astype(np.int64) & 0xFFFFFFFF  # noqa: E731
    wrap = lambda x: ((x + 2**31) % 2**32 - 2**31)  # noqa: E731
    return {
        "divsi": trunc,
        "remsi": a64 - trunc * b64,
        "floordivsi": a64 // b64,
        "ceildivsi": -((-a64) // b64),
        "minsi": np.minimum(a64, b64),
        "maxsi": np.maximum(a64, b64),
        "shli": wrap(a64 << sh),
        "shrsi": a64 >> sh,
        "shrui": wrap(u(a) >> sh),
        "xori": a64 ^ b64,
        "ult": (u(a) < u(b)).astype(np.int64),
        "sge_select": np.where(a64 >= b64, a64, b64),
        "fptosi": np.trunc(f.astype(np.float64)).astype(np.int64),
        "divui": wrap(u(a) // u(b)),
        "xor_i1": ((a64 < b64) != (a64 > 0)).astype(np.int64),
        "trunci": -(a64 & 1),
    }


def test_integer_ops(rt):
    n = 50
    ir, names = int_ops_ir(n)
    a = RNG.integers(-1000, 1000, n).astype(np.int32)
    b = RNG.integers(1, 40, n).astype(np.int32) * RNG.choice([-1, 1], n).astype(np.int32)
    a[:3] = [-7, 7, 2**31 - 1]
    b[:3] = [2, -2, 3]
    f = RNG.uniform(-100, 100, n).astype(np.float32)
    (o,) = run(rt, ir, [a, b, f, None])
    refs = _int_refs(a, b, f)
    for k, name in enumerate(names):
        np.testing.assert_array_equal(o[k], refs[name].astype(np.int32), err_msg=name)


# --------------------------------------------------------------------------- float ops


def float_ops_ir(n: int) -> tuple[str, list[str]]:
    ops = [
        ("pow3", "%c3 = arith.constant 3.0 : f32\n    %q = math.powf %x, %c3 : f32"),
        ("pow2", "%c2 = arith.constant 2.0 : f32\n    %q = math.powf %x, %c2 : f32"),
        ("pow_var", "%q = math.powf %x, %y : f32"),
        ("pow_half", "%ch = arith.constant 0.5 : f32\n    %q = math.powf %ax, %ch : f32"),
        ("rsqrt", "%q = math.rsqrt %ax1 : f32"),
        ("log", "%q = math.log %ax1 : f32"),
        ("sqrt", "%q = math.sqrt %ax : f32"),
        ("abs", "%q = math.absf %x : f32"),
        ("max", "%q = arith.maximumf %x, %y : f32"),
        ("min", "%q = arith.minimumf %x, %y : f32"),
        ("neg", "%q = arith.negf %x : f32"),
        ("div", "%q = arith.divf %x, %ax1 : f32"),
        ("sub", "%q = arith.subf %x, %y : f32"),
        ("olt_select", "%c = arith.cmpf olt, %x, %y : f32\n    %q = arith.select %c, %x, %y : f32"),
        ("sitofp", "%ii = arith.fptosi %x : f32 to i32\n    %q = arith.sitofp %ii : i32 to f32"),
        ("fma", "%q = math.fma %x, %y, %ax : f32"),
        ("ninf_max", "%ninf = arith.constant 0xFF800000 : f32\n    %q = arith.maximumf %x, %ninf : f32"),
    ]  # fmt: skip
    body = []
    for k, (_, text) in enumerate(ops):
        text = _suffix(text, k)
        body.append(f"""    {text}
    %k{k} = arith.constant {k} : index
    nn_loop.store %q{k}, %o[%k{k}, %i] : f32, memref<{len(ops)}x{n}xf32>""")
    ir = (
        f"""
nn_loop.kernel @floats(%xi: memref<{n}xf32> read, %yi: memref<{n}xf32> read,
                       %o: memref<{len(ops)}x{n}xf32> write) kind "t" target "wgsl" {{
  %one = arith.constant 1.0 : f32
  nn_loop.for %g = 0 to {n} map "workgroup.x" {{
    %i = arith.addi %g, %g : index
    %x = nn_loop.load %xi[%g] : memref<{n}xf32> -> f32
    %y = nn_loop.load %yi[%g] : memref<{n}xf32> -> f32
    %ax = math.absf %x : f32
    %ax1 = arith.addf %ax, %one : f32
"""
        + "\n".join(body).replace("%i]", "%g]")
        + "\n  }\n}\n"
    )
    return ir, [name for name, _ in ops]


def test_float_ops(rt):
    n = 40
    ir, names = float_ops_ir(n)
    x = RNG.uniform(-3, 3, n).astype(np.float32)
    y = np.round(RNG.uniform(-3, 3, n)).astype(np.float32)  # integer exponents for pow_var
    (o,) = run(rt, ir, [x, y, None])
    xd, yd = x.astype(np.float64), y.astype(np.float64)
    ax = np.abs(xd)
    refs = {
        "pow3": xd**3, "pow2": xd**2, "pow_var": xd**yd, "pow_half": np.sqrt(ax),
        "rsqrt": 1 / np.sqrt(ax + 1), "log": np.log(ax + 1), "sqrt": np.sqrt(ax), "abs": ax,
        "max": np.maximum(xd, yd), "min": np.minimum(xd, yd), "neg": -xd, "div": xd / (ax + 1),
        "sub": xd - yd, "olt_select": np.where(xd < yd, xd, yd), "sitofp": np.trunc(xd),
        "fma": xd * yd + ax, "ninf_max": xd,
    }  # fmt: skip
    for k, name in enumerate(names):
        assert relative_error(o[k], refs[name]) <= 2e-6, name


# ---------------------------------------------------------------------- grids and maps


def grid_ir(gx: int, gy: int, gz: int) -> str:
    """Each workgroup writes x + 10 y + 100 z at out[z, y, x] (two invocations write the
    same value: exercises local_invocation_id in a 3-D workgroup too)."""
    return f"""
nn_loop.kernel @grid(%out: memref<{gz}x{gy}x{gx}xi32> write) kind "t" target "wgsl" {{
  nn_loop.for %z = 0 to {gz} map "workgroup.z" {{
    nn_loop.for %y = 0 to {gy} map "workgroup.y" {{
      nn_loop.for %x = 0 to {gx} map "workgroup.x" {{
        nn_loop.for %ly = 0 to 2 map "invocation.y" {{
          nn_loop.for %lx = 0 to 1 map "invocation.x" {{
            %c10 = arith.constant 10 : index
            %c100 = arith.constant 100 : index
            %a = arith.muli %y, %c10 : index
            %b = arith.muli %z, %c100 : index
            %s = arith.addi %a, %b : index
            %t = arith.addi %s, %x : index
            %u = arith.addi %t, %lx : index
            %v = arith.index_cast %u : index to i32
            nn_loop.store %v, %out[%z, %y, %x] : i32, memref<{gz}x{gy}x{gx}xi32>
          }}
        }}
      }}
    }}
  }}
}}
"""


@pytest.mark.parametrize(
    "grid,limit,dispatch",
    [((5, 3, 2), 65535, [5, 3, 2]), ((12, 2, 1), 8, [8, 3, 1]), ((9, 2, 2), 8, [8, 5, 1])],
)
def test_grid_linearisation(rt, grid, limit, dispatch):
    gx, gy, gz = grid
    ((_, src, man),) = convert(grid_ir(gx, gy, gz), max_workgroups_per_dim=limit)
    assert man["dispatch"] == dispatch
    assert man["workgroup_size"] == [1, 2, 1]
    assert ("return;" in src) == (math.prod(dispatch) != gx * gy * gz)
    (out,) = rt.run_kernel(src, man, [None])
    z, y, x = np.meshgrid(np.arange(gz), np.arange(gy), np.arange(gx), indexing="ij")
    np.testing.assert_array_equal(out, (x + 10 * y + 100 * z).astype(np.int32))


def test_grid_above_65535_workgroups(rt):
    n = 70001
    ir = f"""
nn_loop.kernel @big(%x: memref<{n}xf32> read, %y: memref<{n}xf32> write) kind "elementwise" target "wgsl" {{
  nn_loop.for %i = 0 to {n} map "workgroup.x" {{
    %v = nn_loop.load %x[%i] : memref<{n}xf32> -> f32
    %w = arith.addf %v, %v : f32
    nn_loop.store %w, %y[%i] : f32, memref<{n}xf32>
  }}
}}
"""
    ((_, src, man),) = convert(ir)
    assert man["dispatch"] == [35001, 2, 1]
    x = RNG.standard_normal(n).astype(np.float32)
    (y,) = rt.run_kernel(src, man, [x, None])
    assert relative_error(y, 2 * x.astype(np.float64)) == 0.0


# ------------------------------------------------------------------- structure & names


def test_other_ops_untouched_and_manifest():
    ir = matmul_ir(5, 7, 8) + """
nn_loop.kernel @w(%a: memref<4xf32> read_write) kind "t" target "wasm" {
  nn_loop.for %i = 0 to 4 map "thread" {
    %v = nn_loop.load %a[%i] : memref<4xf32> -> f32
    nn_loop.store %v, %a[%i] : f32, memref<4xf32>
  }
}
func.func @main(%a: memref<5x7xf32>, %b: memref<7x8xf32>, %c: memref<5x8xf32>) attributes {nnjit.num_outputs = 1 : i64} {
  nn_loop.launch @mm(%a, %b, %c) : memref<5x7xf32>, memref<7x8xf32>, memref<5x8xf32>
  func.return
}
"""
    module = Parser(CTX, ir).parse_module()
    NNLoopUnrollPass().apply(CTX, module)
    ConvertNNLoopToWgslPass().apply(CTX, module)
    module.verify()
    ops = list(module.ops)
    assert isinstance(ops[0], w.ModuleOp) and ops[0].sym_name.data == "mm"
    assert isinstance(ops[1], nn_loop.KernelOp) and ops[1].target.data == "wasm"
    assert ops[2].name == "func.func"
    man = manifest(ops[0])
    assert man == {
        "name": "mm", "target": "wgsl", "kind": "matmul", "schedule": {}, "entry": "main",
        "workgroup_size": [2, 1, 1], "dispatch": [3, 1, 1],
        "bindings": [
            {"binding": 0, "access": "read", "dtype": "f32", "shape": [5, 7], "bytes": 140},
            {"binding": 1, "access": "read", "dtype": "f32", "shape": [7, 8], "bytes": 224},
            {"binding": 2, "access": "write", "dtype": "f32", "shape": [5, 8], "bytes": 160},
        ],
        "workgroup_storage_bytes": 0,
    }  # fmt: skip
    import io

    out = io.StringIO()
    print_wgsl(module, out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "// kernel: mm"
    assert lines[1].startswith("// manifest: ") and json.loads(lines[1][13:]) == man


def test_wgsl_syntax_in_names_and_attributes(rt):
    evil = 'fn x() {} */ @compute'
    ir = f"""
nn_loop.kernel @"fn main() {{ }}"(%var: memref<4xf32> read, %let.x$-1: memref<4xf32> write)
    kind "{evil}" target "wgsl" schedule {{"fn y() {{}}" = "}}; return;", tile = array<i64: 4>}} {{
  nn_loop.for %main = 0 to 4 map "invocation.x" {{
    %fn = nn_loop.load %var[%main] : memref<4xf32> -> f32
    %__return = arith.mulf %fn, %fn : f32
    %workgroupBarrier = arith.addf %__return, %__return : f32
    %vec4 = arith.subf %workgroupBarrier, %__return : f32
    %max = arith.maximumf %vec4, %fn : f32
    %exp = math.exp %max : f32
    %select = math.log %exp : f32
    nn_loop.store %select, %let.x$-1[%main] : f32, memref<4xf32>
  }}
}}
"""
    ((name, src, man),) = convert(ir)
    assert name == "fn main() { }" and man["name"] == name and man["kind"] == evil
    assert man["schedule"]["fn y() {}"] == "}; return;"
    for s in (evil, "fn x", "fn y", "let x", "@builtin(x)", "return;", "*/"):
        assert s not in src
    idents = set(re.findall(r"\b(?:let|var|fn)\s+([A-Za-z_][A-Za-z0-9_]*)", src))
    idents |= set(re.findall(r"var<[^>]*>\s+([A-Za-z_][A-Za-z0-9_]*)", src))
    assert idents and not (idents - {"main"}) & WGSL_RESERVED
    x = RNG.standard_normal(4).astype(np.float32)
    (y,) = rt.run_kernel(src, man, [x, None])
    xd = x.astype(np.float64)
    assert relative_error(y, np.maximum(xd**2, xd)) <= 1e-6


def test_unsupported_maps_are_errors():
    thread = """
nn_loop.kernel @t(%a: memref<4xf32> read_write) kind "t" target "wgsl" {
  nn_loop.for %i = 0 to 4 map "thread" {
    %v = nn_loop.load %a[%i] : memref<4xf32> -> f32
    nn_loop.store %v, %a[%i] : f32, memref<4xf32>
  }
}
"""
    with pytest.raises(UnsupportedError, match="thread"):
        convert(thread)
    nested = """
nn_loop.kernel @n(%a: memref<4x4xf32> read_write) kind "t" target "wgsl" {
  nn_loop.for %i = 0 to 4 {
    nn_loop.for %j = 0 to 4 map "invocation.x" {
      %v = nn_loop.load %a[%i, %j] : memref<4x4xf32> -> f32
      nn_loop.store %v, %a[%i, %j] : f32, memref<4x4xf32>
    }
  }
}
"""
    with pytest.raises(UnsupportedError, match="inside a serial loop"):
        convert(nested)


def test_partial_unroll_and_mapped_unroll(rt):
    """A serial loop unrolled 3 of 6 times (a loop of step 3 with 3 copies) and a mapped
    loop unrolled twice (half the invocations, two copies each)."""
    ir = """
nn_loop.kernel @u(%x: memref<8x6xf32> read, %y: memref<8xf32> write) kind "t" target "wgsl" {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0.0 : f32
  nn_loop.for %i = 0 to 8 map "invocation.x" unroll 2 {
    %acc = nn_loop.alloc : memref<1xf32, #nn_loop<space private>>
    nn_loop.store %zero, %acc[%c0] : f32, memref<1xf32, #nn_loop<space private>>
    nn_loop.for %k = 0 to 6 unroll 3 {
      %v = nn_loop.load %x[%i, %k] : memref<8x6xf32> -> f32
      %a = nn_loop.load %acc[%c0] : memref<1xf32, #nn_loop<space private>> -> f32
      %s = arith.addf %a, %v : f32
      nn_loop.store %s, %acc[%c0] : f32, memref<1xf32, #nn_loop<space private>>
    }
    %t = nn_loop.load %acc[%c0] : memref<1xf32, #nn_loop<space private>> -> f32
    nn_loop.store %t, %y[%i] : f32, memref<8xf32>
  }
}
"""
    ((_, src, man),) = convert(ir)
    assert man["workgroup_size"] == [4, 1, 1]
    assert re.search(r"for \(var \w+: i32 = 0i; \w+ < 6i; \w+ \+= 3i\)", src)
    x = RNG.standard_normal((8, 6)).astype(np.float32)
    (y,) = rt.run_kernel(src, man, [x, None])
    assert relative_error(y, x.astype(np.float64).sum(axis=1)) <= 1e-6


BERT_MATMUL = """
func.func @main(%a: tensor<128x768xf32>, %b: tensor<768x768xf32>, %c: tensor<768xf32>) -> tensor<128x768xf32> {
  %m = nn_tensor.matmul %a, %b : (tensor<128x768xf32>, tensor<768x768xf32>) -> tensor<128x768xf32>
  %s = nn_tensor.add %m, %c : (tensor<128x768xf32>, tensor<768xf32>) -> tensor<128x768xf32>
  %g = nn_tensor.gelu %s : tensor<128x768xf32> -> tensor<128x768xf32>
  func.return %g : tensor<128x768xf32>
}"""


# ---------------------------------------------------------- end to end through the lowering
#
# nn_tensor @main -> convert-nn-tensor-to-nn-loop{target=wgsl, schedule} -> this pass ->
# WGSL -> wgpu, compared with nn_tensor_eval in float64. @main is executed by a small
# WebGPU interpreter of the nn_loop model level (weights, constants, poisoned intermediates,
# views sharing their buffer, launches in order).


def _t(shape, elem="f32") -> str:
    return "tensor<" + "".join(f"{d}x" for d in shape) + elem + ">"


def _random(shape, elem="f32"):
    if elem == "f32":
        return RNG.standard_normal(shape).astype(np.float32)
    if elem == "i1":
        return RNG.random(shape) < 0.5
    return RNG.integers(-5, 6, shape).astype(np.int64 if elem == "i64" else np.int32)


def _storage(x, mem) -> np.ndarray:
    dt = np.float32 if mem.get_element_type() == w.f32 else np.int32
    return np.ascontiguousarray(np.asarray(x).astype(dt).reshape(mem.get_shape()))


def run_model_webgpu(rt, module, inputs, weights) -> list[np.ndarray]:
    """Runs a bufferized @main whose kernels were converted to nn_wgsl.module ops."""
    from xdsl.dialects import func

    kernels = {name: rt.create_kernel(src, man) for name, src, man in wgsl_kernels(module)}
    main = next(op for op in module.ops if isinstance(op, func.FuncOp))
    block = main.body.block
    n_out = main.attributes["nnjit.num_outputs"].value.data
    n_in = len(block.args) - n_out
    env, outs = {}, []

    def fresh(mem, values=None):
        dt = np.float32 if mem.get_element_type() == w.f32 else np.int32
        if values is None:  # poison
            values = np.full(mem.get_shape(), np.nan if dt == np.float32 else 0x7FFFFFFF, dt)
        buf = rt.create_buffer(max(4, values.nbytes))
        rt.write_buffer(buf, values)
        return buf

    for k, a in enumerate(block.args):
        env[a] = fresh(a.type, _storage(inputs[k], a.type) if k < n_in else None)
        if k >= n_in:
            outs.append(a)
    for op in block.ops:
        if isinstance(op, nn_loop.WeightOp):
            env[op.result] = fresh(op.result.type, _storage(weights[op.key.data], op.result.type))
        elif isinstance(op, nn_loop.ConstantOp):
            vals = np.array(list(op.value.get_values()))
            env[op.result] = fresh(op.result.type, _storage(vals, op.result.type))
        elif isinstance(op, nn_loop.BufferOp):
            env[op.result] = fresh(op.result.type)
        elif isinstance(op, nn_loop.ViewOp):
            env[op.result] = env[op.input]
        elif isinstance(op, nn_loop.LaunchOp):
            rt.dispatch(kernels[op.callee.root_reference.data], [env[a] for a in op.args])
    got = []
    for a in outs:
        dt = np.float32 if a.type.get_element_type() == w.f32 else np.int32
        got.append(rt.read_buffer(env[a], dt, a.type.get_shape()))
    return got


def e2e(rt, src: str, inputs, weights=None, tol=1e-5, fuse=False, **sched):
    from nnjit.interp.nn_tensor_eval import evaluate
    from nnjit.passes.convert_nn_tensor_to_nn_loop import ConvertNNTensorToNNLoopPass

    weights = weights or {}
    ref = evaluate(Parser(CTX, src).parse_module(), inputs, weights)
    module = Parser(CTX, src).parse_module()
    if fuse:
        from nnjit.passes.nn_tensor_fuse import NNTensorFusePass

        NNTensorFusePass().apply(CTX, module)
    ConvertNNTensorToNNLoopPass(target="wgsl", **sched).apply(CTX, module)
    for p in TARGETS["webgpu"].loop_pass_objects():
        p.apply(CTX, module)
    ConvertNNLoopToWgslPass().apply(CTX, module)
    module.verify()
    got = run_model_webgpu(rt, module, inputs, weights)
    assert len(got) == len(ref)
    for k, (g, r) in enumerate(zip(got, ref)):
        r = np.asarray(r)
        if r.dtype.kind == "f":
            err = relative_error(g, r)
            assert err <= tol, f"output {k}: relative error {err:.3g} > {tol} ({sched})"
        else:
            np.testing.assert_array_equal(g, r.astype(np.int32), err_msg=f"output {k} ({sched})")
    return module


ROW_SCHEDULES = [{}, {"vec": 1}, {"workgroup": (3,), "rows": 2}, {"workgroup": (8,), "vec": 4}]
EW_SCHEDULES = [{}, {"vec": 1}, {"workgroup": (4,), "tile": (16,)}, {"workgroup": (3,), "vec": 4}]
MM_SCHEDULES = [
    {},
    {"shared": 1},
    {"vec": 1, "reg": (2, 2), "tile": (4, 8), "kstep": 3},
    {"vec": 4, "reg": (2, 8), "workgroup": (2, 4), "kstep": 1},
    {"vec": 4, "shared": 1, "reg": (4, 4), "tile": (8, 16, 4), "kstep": 2},
    {"vec": 1, "shared": 1, "reg": (1, 1), "workgroup": (8, 4), "tile": (4, 8, 3), "kstep": 5},
    {"shared": 2},
    {"shared": 2, "reg": (4, 4), "workgroup": (2, 2, 2), "tile": (8, 8, 8)},
    {"reg": (2, 4), "workgroup": (2, 2, 3)},
    {"shared": 1, "reg": (8, 4), "workgroup": (2, 1, 2), "tile": (8, 8, 4), "kstep": 1},
]


def _sid(s: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in s.items()) or "default"


@pytest.mark.parametrize("sched", MM_SCHEDULES, ids=_sid)
@pytest.mark.parametrize("sa,sb", [((5, 7), (7, 9)), ((2, 5, 7), (7, 12)), ((16, 8), (8, 16))])
def test_e2e_matmul_bias_gelu(rt, sched, sa, sb):
    so = (*sa[:-1], sb[-1])
    src = f"""
func.func @main(%a: {_t(sa)}, %b: {_t(sb)}, %c: {_t(sb[-1:])}) -> {_t(so)} {{
  %m = nn_tensor.matmul %a, %b : ({_t(sa)}, {_t(sb)}) -> {_t(so)}
  %s = nn_tensor.add %m, %c : ({_t(so)}, {_t(sb[-1:])}) -> {_t(so)}
  %g = nn_tensor.gelu %s : {_t(so)} -> {_t(so)}
  func.return %g : {_t(so)}
}}"""
    e2e(rt, src, [_random(sa), _random(sb), _random(sb[-1:])], fuse=True, **sched)


@pytest.mark.parametrize(
    "sched",
    [{"shared": 1, "reg": (4, 4), "workgroup": (2, 4), "tile": (16, 8, 8)},
     {"shared": 2, "reg": (4, 8), "workgroup": (2, 2, 2), "tile": (8, 16, 8)}],
    ids=_sid,
)  # fmt: skip
@pytest.mark.parametrize("which", ["", "a", "b", "ab"])
@pytest.mark.parametrize("mkn", [(8, 16, 12), (13, 20, 8)], ids=str)
def test_e2e_staged_matmul_layouts(rt, sched, which, mkn):
    """Staged tiles from transposed and plain operands: vec4 global loads, lane stores into
    vec4 workgroup arrays (A k-major), ragged M with aligned K and N."""
    m, n, k = mkn
    sa = (2, k, m) if "a" in which else (2, m, k)
    sb = (2, n, k) if "b" in which else (2, k, n)
    ta = (2, m, k)
    tb = (2, k, n)
    lines = []
    x, y = "%a", "%b"
    if "a" in which:
        lines.append(f"%at = nn_tensor.transpose %a {{perm = array<i64: 0, 2, 1>}} : {_t(sa)} -> {_t(ta)}")
        x = "%at"
    if "b" in which:
        lines.append(f"%bt = nn_tensor.transpose %b {{perm = array<i64: 0, 2, 1>}} : {_t(sb)} -> {_t(tb)}")
        y = "%bt"
    so = (2, m, n)
    body = "\n  ".join(lines)
    src = f"""
func.func @main(%a: {_t(sa)}, %b: {_t(sb)}) -> {_t(so)} {{
  {body}
  %m = nn_tensor.matmul {x}, {y} : ({_t(ta)}, {_t(tb)}) -> {_t(so)}
  func.return %m : {_t(so)}
}}"""
    module = e2e(rt, src, [_random(sa), _random(sb)], fuse=True, **sched)
    text = str(module)
    assert "!nn_wgsl.array<workgroup, vector<4xf32>" in text  # the staged tiles are vec4


@pytest.mark.parametrize("sched", EW_SCHEDULES, ids=_sid)
def test_e2e_elementwise_chain(rt, sched):
    src = """
func.func @main(%x: tensor<3x10xf32>, %b: tensor<10xf32>) -> tensor<3x10xf32> {
  %s = nn_tensor.add %x, %b : (tensor<3x10xf32>, tensor<10xf32>) -> tensor<3x10xf32>
  %t = nn_tensor.tanh %s : tensor<3x10xf32> -> tensor<3x10xf32>
  %e = nn_tensor.erf %s : tensor<3x10xf32> -> tensor<3x10xf32>
  %p = nn_tensor.exp %t : tensor<3x10xf32> -> tensor<3x10xf32>
  %q = nn_tensor.mul %p, %e : (tensor<3x10xf32>, tensor<3x10xf32>) -> tensor<3x10xf32>
  %r = nn_tensor.sigmoid %q : tensor<3x10xf32> -> tensor<3x10xf32>
  func.return %r : tensor<3x10xf32>
}"""
    e2e(rt, src, [_random((3, 10)) * 3, _random((10,))], fuse=True, **sched)


@pytest.mark.parametrize("sched", ROW_SCHEDULES, ids=_sid)
@pytest.mark.parametrize("shape,axis", [((3, 10), 1), ((2, 3, 8), 2), ((5, 3), 0), ((2, 37), 1)])
def test_e2e_softmax(rt, sched, shape, axis):
    src = f"""
func.func @main(%x: {_t(shape)}) -> {_t(shape)} {{
  %y = nn_tensor.softmax %x {{axis = {axis} : i64}} : {_t(shape)} -> {_t(shape)}
  func.return %y : {_t(shape)}
}}"""
    e2e(rt, src, [_random(shape) * 4], **sched)


@pytest.mark.parametrize("sched", ROW_SCHEDULES, ids=_sid)
@pytest.mark.parametrize("shape,pshape", [((3, 10), (10,)), ((2, 3, 8), (8,)), ((5, 33), (33,))])
def test_e2e_layer_norm(rt, sched, shape, pshape):
    axis = len(shape) - 1
    src = f"""
func.func @main(%x: {_t(shape)}, %s: {_t(pshape)}, %b: {_t(pshape)}) -> {_t(shape)} {{
  %y = nn_tensor.layer_norm %x, %s, %b {{axis = {axis} : i64, epsilon = 1.0e-05 : f32}} : ({_t(shape)}, {_t(pshape)}, {_t(pshape)}) -> {_t(shape)}
  func.return %y : {_t(shape)}
}}"""
    x = _random(shape) + 3.0
    e2e(rt, src, [x, _random(pshape), _random(pshape)], tol=2e-5, **sched)


@pytest.mark.parametrize("sched", ROW_SCHEDULES, ids=_sid)
@pytest.mark.parametrize("op", ["reduce_sum", "reduce_mean", "reduce_max"])
@pytest.mark.parametrize("shape,axes,keep", [((3, 10), (1,), 1), ((2, 3, 8), (1, 2), 0),
                                             ((3, 5, 4), (0, 2), 0)])  # fmt: skip
def test_e2e_reduce(rt, sched, op, shape, axes, keep):
    out = tuple((1 if d in axes else s) for d, s in enumerate(shape) if keep or d not in axes)
    src = f"""
func.func @main(%x: {_t(shape)}) -> {_t(out)} {{
  %y = nn_tensor.{op} %x {{axes = array<i64: {', '.join(map(str, axes))}>, keepdims = {keep} : i64}} : {_t(shape)} -> {_t(out)}
  func.return %y : {_t(out)}
}}"""
    e2e(rt, src, [_random(shape)], **sched)


@pytest.mark.parametrize("sched", EW_SCHEDULES, ids=_sid)
def test_e2e_movement(rt, sched):
    src = """
func.func @main(%w: tensor<7x8xf32>, %i: tensor<2x3xi64>, %x: tensor<2x3x5xf32>, %y: tensor<2x1x5xf32>, %z: tensor<3x1xf32>)
    -> (tensor<2x3x8xf32>, tensor<5x2x3xf32>, tensor<2x2x2xf32>, tensor<2x4x5xf32>, tensor<2x3x4xf32>) {
  %g = nn_tensor.gather %w, %i {axis = 0 : i64} : (tensor<7x8xf32>, tensor<2x3xi64>) -> tensor<2x3x8xf32>
  %t = nn_tensor.transpose %x {perm = array<i64: 2, 0, 1>} : tensor<2x3x5xf32> -> tensor<5x2x3xf32>
  %s = nn_tensor.slice %x {starts = array<i64: 0, 1, 0>, steps = array<i64: 1, 1, 3>} : tensor<2x3x5xf32> -> tensor<2x2x2xf32>
  %c = nn_tensor.concat %x, %y {axis = 1 : i64} : (tensor<2x3x5xf32>, tensor<2x1x5xf32>) -> tensor<2x4x5xf32>
  %e = nn_tensor.expand %z : tensor<3x1xf32> -> tensor<2x3x4xf32>
  func.return %g, %t, %s, %c, %e : tensor<2x3x8xf32>, tensor<5x2x3xf32>, tensor<2x2x2xf32>, tensor<2x4x5xf32>, tensor<2x3x4xf32>
}"""
    idx = RNG.integers(-7, 7, (2, 3)).astype(np.int64)  # negative indices count from the end
    ins = [_random((7, 8)), idx, _random((2, 3, 5)), _random((2, 1, 5)), _random((3, 1))]
    e2e(rt, src, ins, **sched)


def test_e2e_conv(rt):
    src = """
func.func @main(%x: tensor<1x2x7x6xf32>, %w: tensor<3x2x3x3xf32>, %b: tensor<3xf32>) -> tensor<1x3x4x3xf32> {
  %c = nn_tensor.conv %x, %w, %b {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 0>, dilations = array<i64: 1, 1>} : (tensor<1x2x7x6xf32>, tensor<3x2x3x3xf32>, tensor<3xf32>) -> tensor<1x3x4x3xf32>
  func.return %c : tensor<1x3x4x3xf32>
}"""
    e2e(rt, src, [_random((1, 2, 7, 6)), _random((3, 2, 3, 3)), _random((3,))])


def test_e2e_weights_constants_views_and_intermediates(rt):
    """Two kernels through an intermediate buffer, a weight, a reshape (view)."""
    src = """
func.func @main(%x: tensor<4x6xf32>) -> tensor<2x12xf32> {
  %w = nn_tensor.weight "proj.weight" : tensor<6x6xf32>
  %m = nn_tensor.matmul %x, %w : (tensor<4x6xf32>, tensor<6x6xf32>) -> tensor<4x6xf32>
  %r = nn_tensor.reshape %m : tensor<4x6xf32> -> tensor<2x12xf32>
  %s = nn_tensor.softmax %r {axis = 1 : i64} : tensor<2x12xf32> -> tensor<2x12xf32>
  func.return %s : tensor<2x12xf32>
}"""
    e2e(rt, src, [_random((4, 6))], {"proj.weight": _random((6, 6))})


# --------------------------------------------------------------------- Tint (Chromium) check

_TINT_PAGE = """<!doctype html><meta charset="utf-8"><title>tint</title>
<script type="module">
window.check = async (kernels) => {
  const adapter = await navigator.gpu.requestAdapter();
  const device = await adapter.requestDevice();
  const problems = [];
  for (const k of kernels) {
    device.pushErrorScope("validation");
    const module = device.createShaderModule({code: k.wgsl, label: k.name});
    const info = await module.getCompilationInfo();
    const msgs = info.messages.filter(m => m.type !== "info")
      .map(m => `${m.type} ${m.lineNum}:${m.linePos} ${m.message}`);
    let pipeline = null;
    try {
      const entries = k.bindings.map(b => ({binding: b.binding, visibility: GPUShaderStage.COMPUTE,
        buffer: {type: b.access === "read" ? "read-only-storage" : "storage"}}));
      const layout = device.createPipelineLayout(
        {bindGroupLayouts: [device.createBindGroupLayout({entries})]});
      await device.createComputePipelineAsync({layout, compute: {module, entryPoint: "main"}});
    } catch (e) { pipeline = String(e.message || e); }
    const err = await device.popErrorScope();
    if (msgs.length || pipeline || err) problems.push({name: k.name, msgs, pipeline, err: err && err.message});
  }
  return problems;
};
window.ready = true;
</script>"""


def test_wgsl_is_accepted_by_tint(tmp_path):
    """The WGSL of the hand-written kernels also compiles in Chromium (Tint: stricter
    uniformity analysis and literal rules than naga), with no warnings."""
    from tests.browser.harness import skip_reason

    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    import functools
    import http.server
    import threading

    from playwright.sync_api import sync_playwright

    from tests.browser.harness import launch

    sources = [
        matmul_ir(5, 7, 8), softmax_ir(3, 37), elementwise_ir(1004, 4), elementwise_ir(7, 1),
        gather_ir(11, 12, 9, 4), vector_access_ir(13), int_ops_ir(8)[0], float_ops_ir(8)[0],
        grid_ir(9, 2, 2),
    ]  # fmt: skip
    kernels = []
    for ir in sources:
        for name, src, man in convert(ir, max_workgroups_per_dim=8 if "@grid" in ir else 65535):
            kernels.append({"name": name, "wgsl": src, "bindings": man["bindings"]})
    # generated matmuls: double-buffered staged tiles (lane stores into vec4 workgroup
    # arrays) with k slices, from a transposed A
    from nnjit.compiler import kernels_of, lower_for_backend

    mm = Parser(CTX, """
func.func @main(%a: tensor<12x8xf32>, %b: tensor<12x16xf32>) -> tensor<8x16xf32> {
  %t = nn_tensor.transpose %a {perm = array<i64: 1, 0>} : tensor<12x8xf32> -> tensor<8x12xf32>
  %m = nn_tensor.matmul %t, %b : (tensor<8x12xf32>, tensor<12x16xf32>) -> tensor<8x16xf32>
  func.return %m : tensor<8x16xf32>
}""").parse_module()
    for opts in ("shared=2 reg=4,4 workgroup=2,2,2 tile=8,8,8", "reg=2,4 workgroup=2,2,3"):
        for name, src, man in kernels_of(lower_for_backend(mm, "webgpu", opts), "webgpu"):
            kernels.append({"name": name, "wgsl": src, "bindings": man["bindings"]})
    (tmp_path / "index.html").write_text(_TINT_PAGE)
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    result: dict = {}

    def check_in_chromium() -> None:
        # playwright's sync API refuses to run where an asyncio loop is running (the browser
        # suites keep one open in the main thread): a thread of its own has none
        try:
            with sync_playwright() as pw:
                ctx = launch(pw, tmp_path / "profile")
                try:
                    page = ctx.new_page()
                    page.goto(f"http://127.0.0.1:{server.server_port}/index.html")
                    page.wait_for_function("window.ready === true")
                    result["problems"] = page.evaluate("k => window.check(k)", kernels)
                finally:
                    ctx.close()
        except Exception as e:  # noqa: BLE001 - re-raised in the test thread
            result["error"] = e

    try:
        worker = threading.Thread(target=check_in_chromium)
        worker.start()
        worker.join()
    finally:
        server.shutdown()
    if "error" in result:
        raise result["error"]
    assert result["problems"] == []


def test_a_pointwise_kernel_over_65535_ragged_workgroups_runs(tmp_path):
    """A concat of 86 x 50257 elements (vec 1: 67,533 workgroups of 64, over one grid dim's
    65535, so a 2-D grid with spare groups): it once failed to lower (the invocation loop sat
    inside the grid's guard); GPT-2's split LM head makes such a concat at prefill."""
    from onnx import TensorProto, helper

    from nnjit.compiler import compile_model
    from nnjit.runtime.session import Session

    rows, n1, n2 = 86, 25136, 25121
    ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, rows, c]) for n, c in (("a", n1), ("b", n2))]
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, rows, n1 + n2])
    graph = helper.make_graph([helper.make_node("Concat", ["a", "b"], ["y"], axis=2)], "g", ins, [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    compile_model(model.SerializeToString(), tmp_path / "b", backends=["webgpu"], web_runtime=False)
    rng = np.random.default_rng()
    a = rng.standard_normal((1, rows, n1)).astype(np.float32)
    b = rng.standard_normal((1, rows, n2)).astype(np.float32)
    out = Session(tmp_path / "b", "webgpu").run({"a": a, "b": b})["y"]
    np.testing.assert_array_equal(out, np.concatenate([a, b], 2))
