// RUN: awk -v n=1 'BEGIN { RS = "// -----\n" } NR == n' %s | not nnjit-opt -p 'convert-nn-loop-to-wgsl{max_workgroups_per_dim=4}' 2>&1 | filecheck %s --check-prefix=E1
// RUN: awk -v n=2 'BEGIN { RS = "// -----\n" } NR == n' %s | not nnjit-opt -p 'convert-nn-loop-to-wgsl{max_workgroups_per_dim=4}' 2>&1 | filecheck %s --check-prefix=E2
// RUN: awk -v n=3 'BEGIN { RS = "// -----\n" } NR == n' %s | not nnjit-opt -p 'convert-nn-loop-to-wgsl{max_workgroups_per_dim=4}' 2>&1 | filecheck %s --check-prefix=E3
// RUN: awk -v n=4 'BEGIN { RS = "// -----\n" } NR == n' %s | not nnjit-opt -p 'convert-nn-loop-to-wgsl{max_workgroups_per_dim=4}' 2>&1 | filecheck %s --check-prefix=E4
// RUN: awk -v n=5 'BEGIN { RS = "// -----\n" } NR == n' %s | not nnjit-opt -p 'convert-nn-loop-to-wgsl{max_workgroups_per_dim=4}' 2>&1 | filecheck %s --check-prefix=E5
// RUN: awk -v n=6 'BEGIN { RS = "// -----\n" } NR == n' %s | not nnjit-opt -p 'convert-nn-loop-to-wgsl{max_workgroups_per_dim=4}' 2>&1 | filecheck %s --check-prefix=E6
// RUN: awk -v n=7 'BEGIN { RS = "// -----\n" } NR == n' %s | not nnjit-opt -p 'convert-nn-loop-to-wgsl{max_workgroups_per_dim=4}' 2>&1 | filecheck %s --check-prefix=E7
// RUN: awk -v n=8 'BEGIN { RS = "// -----\n" } NR == n' %s | not nnjit-opt -p 'convert-nn-loop-to-wgsl{max_workgroups_per_dim=4}' 2>&1 | filecheck %s --check-prefix=E8
// RUN: awk -v n=9 'BEGIN { RS = "// -----\n" } NR == n' %s | not nnjit-opt -p 'convert-nn-loop-to-wgsl{max_workgroups_per_dim=4}' 2>&1 | filecheck %s --check-prefix=E9
// RUN: awk -v n=10 'BEGIN { RS = "// -----\n" } NR == n' %s | not nnjit-opt -p 'convert-nn-loop-to-wgsl{max_workgroups_per_dim=4}' 2>&1 | filecheck %s --check-prefix=E10

// Each case runs alone (awk picks the n-th `// -----` split): the conversion raises an error
// that names the kernel and stops, so one input holds one error. These are not xDSL
// diagnostics anchored to an op, so they are checked on stderr rather than with
// --verify-diagnostics / expected-error.

/// map "thread" is the wasm backend's (one chunk per worker); WebGPU has workgroups and
/// invocations.
// E1: error: nn_loop.kernel @error_thread_map: map "thread" is for target wasm, not wgsl
nn_loop.kernel @error_thread_map(%a: memref<4xf32> read_write) kind "t" target "wgsl" {
  nn_loop.for %i = 0 to 4 map "thread" {
    %v = nn_loop.load %a[%i] : memref<4xf32> -> f32
    nn_loop.store %v, %a[%i] : f32, memref<4xf32>
  }
}

// -----

/// Each of the six ids (workgroup/invocation x, y, z) can drive one loop only.
// E2: error: nn_loop.kernel @error_same_map_twice: two loops are mapped to "invocation.x"
nn_loop.kernel @error_same_map_twice(%a: memref<4x4xf32> read_write) kind "t" target "wgsl" {
  nn_loop.for %i = 0 to 4 map "invocation.x" {
    nn_loop.for %j = 0 to 4 map "invocation.x" {
      %v = nn_loop.load %a[%i, %j] : memref<4x4xf32> -> f32
      nn_loop.store %v, %a[%i, %j] : f32, memref<4x4xf32>
    }
  }
}

// -----

/// Mapped loops become builtin ids, so they must all be outside every serial loop.
// E3: error: nn_loop.kernel @error_mapped_inside_serial: the loop mapped to "invocation.x" is inside a serial loop or an nn_loop.if
nn_loop.kernel @error_mapped_inside_serial(%a: memref<4x4xf32> read_write) kind "t" target "wgsl" {
  nn_loop.for %i = 0 to 4 {
    nn_loop.for %j = 0 to 4 map "invocation.x" {
      %v = nn_loop.load %a[%i, %j] : memref<4x4xf32> -> f32
      nn_loop.store %v, %a[%i, %j] : f32, memref<4x4xf32>
    }
  }
}

// -----

/// WGSL storage buffers here are of f32, i32 or f16 (`enable f16;`); WGSL has no f64.
// E4: error: nn_loop.kernel @error_f64_buffer: argument 0: buffer elements must be f32, i32 or f16, got memref<4xf64>
nn_loop.kernel @error_f64_buffer(%a: memref<4xf64> read_write) kind "t" target "wgsl" {
  nn_loop.for %i = 0 to 4 map "invocation.x" {
    %v = nn_loop.load %a[%i] : memref<4xf64> -> f64
    nn_loop.store %v, %a[%i] : f64, memref<4xf64>
  }
}

// -----

/// WGSL has no NaN literal (and a NaN-producing expression is not portable).
// E5: error: nn_loop.kernel @error_nan_constant: NaN constants cannot be written in WGSL
nn_loop.kernel @error_nan_constant(%a: memref<4xf32> read_write) kind "t" target "wgsl" {
  %nan = arith.constant 0x7FC00000 : f32
  nn_loop.for %i = 0 to 4 map "invocation.x" {
    nn_loop.store %nan, %a[%i] : f32, memref<4xf32>
  }
}

// -----

/// With max_workgroups_per_dim=4, 17 workgroups need a y extent of 5 > 4.
// E6: error: nn_loop.kernel @error_too_many_workgroups: the grid (17, 1, 1) has too many workgroups (17)
nn_loop.kernel @error_too_many_workgroups(%a: memref<17xf32> read_write) kind "t" target "wgsl" {
  nn_loop.for %i = 0 to 17 map "workgroup.x" {
    %v = nn_loop.load %a[%i] : memref<17xf32> -> f32
    nn_loop.store %v, %a[%i] : f32, memref<17xf32>
  }
}

// -----

/// An input with only kernels of the other target is a wrong pipeline, not a no-op.
// E7: error: convert-nn-loop-to-wgsl has nothing to convert: the input is nn_loop kernels (target "wasm")
nn_loop.kernel @error_only_wasm_kernels(%a: memref<4xf32> read_write) kind "t" target "wasm" {
  nn_loop.for %i = 0 to 4 map "thread" {
    %v = nn_loop.load %a[%i] : memref<4xf32> -> f32
    nn_loop.store %v, %a[%i] : f32, memref<4xf32>
  }
}

// -----

/// erf, tanh, sin and cos are nn-loop-expand-math's to write out (nnjit/ir/approx.py), not
/// the conversion's: a leftover one names the pass to run first.
// E8: error: nn_loop.kernel @error_tanh_not_expanded: math.tanh is not converted to WGSL: run nn-loop-expand-math{target=wgsl} before convert-nn-loop-to-wgsl
nn_loop.kernel @error_tanh_not_expanded(%a: memref<4xf32> read_write) kind "t" target "wgsl" {
  nn_loop.for %i = 0 to 4 map "invocation.x" {
    %v = nn_loop.load %a[%i] : memref<4xf32> -> f32
    %t = math.tanh %v : f32
    nn_loop.store %t, %a[%i] : f32, memref<4xf32>
  }
}

// -----

/// sin and cos too: WGSL's builtins bound their error on [-pi, pi] only (rotary embeddings
/// take sin and cos of arguments in the thousands).
// E9: error: nn_loop.kernel @error_cos_not_expanded: math.cos is not converted to WGSL: run nn-loop-expand-math{target=wgsl} before convert-nn-loop-to-wgsl
nn_loop.kernel @error_cos_not_expanded(%a: memref<4xf32> read_write) kind "t" target "wgsl" {
  nn_loop.for %i = 0 to 4 map "invocation.x" {
    %v = nn_loop.load %a[%i] : memref<4xf32> -> f32
    %t = math.cos %v : f32
    nn_loop.store %t, %a[%i] : f32, memref<4xf32>
  }
}

// -----

/// `unroll U` is nn-loop-unroll's to apply (the targets' loop passes run it): the conversion
/// has no unroller of its own, and a loop still marked names the pass to run first.
// E10: error: nn_loop.kernel @error_unroll_mark: a loop marked unroll 2 is not converted to WGSL: run nn-loop-unroll before convert-nn-loop-to-wgsl
nn_loop.kernel @error_unroll_mark(%a: memref<4xf32> read_write) kind "t" target "wgsl" {
  nn_loop.for %i = 0 to 4 unroll 2 {
    %v = nn_loop.load %a[%i] : memref<4xf32> -> f32
    nn_loop.store %v, %a[%i] : f32, memref<4xf32>
  }
}
