// RUN: awk -v n=1 'BEGIN { RS = "// -----\n" } NR == n' %s | not nnjit-opt -p convert-nn-loop-to-wasm 2>&1 | filecheck %s --check-prefix=E1
// RUN: awk -v n=2 'BEGIN { RS = "// -----\n" } NR == n' %s | not nnjit-opt -p convert-nn-loop-to-wasm 2>&1 | filecheck %s --check-prefix=E2
// RUN: awk -v n=3 'BEGIN { RS = "// -----\n" } NR == n' %s | not nnjit-opt -p convert-nn-loop-to-wasm 2>&1 | filecheck %s --check-prefix=E3
// RUN: awk -v n=4 'BEGIN { RS = "// -----\n" } NR == n' %s | not nnjit-opt -p convert-nn-loop-to-wasm 2>&1 | filecheck %s --check-prefix=E4
// RUN: awk -v n=5 'BEGIN { RS = "// -----\n" } NR == n' %s | not nnjit-opt -p convert-nn-loop-to-wasm 2>&1 | filecheck %s --check-prefix=E5
// RUN: awk -v n=6 'BEGIN { RS = "// -----\n" } NR == n' %s | not nnjit-opt -p convert-nn-loop-to-wasm 2>&1 | filecheck %s --check-prefix=E6
// RUN: awk -v n=7 'BEGIN { RS = "// -----\n" } NR == n' %s | not nnjit-opt -p convert-nn-loop-to-wasm 2>&1 | filecheck %s --check-prefix=E7
// RUN: awk -v n=8 'BEGIN { RS = "// -----\n" } NR == n' %s | not nnjit-opt -p convert-nn-loop-to-wasm 2>&1 | filecheck %s --check-prefix=E8
// RUN: awk -v n=9 'BEGIN { RS = "// -----\n" } NR == n' %s | not nnjit-opt -p convert-nn-loop-to-wasm 2>&1 | filecheck %s --check-prefix=E9

// Each case runs alone (awk picks the n-th `// -----` split): the conversion raises an error
// that names the kernel and stops, so one input holds one error. These are not xDSL
// diagnostics anchored to an op, so they are checked on stderr rather than with
// --verify-diagnostics / expected-error.

/// WebGPU's ids do not exist on wasm; its parallel loop is map "thread".
// E1: error: nn_loop.kernel @error_invocation_map (target wasm): loop map "invocation.x" is not available on target wasm (use "serial" or "thread")
nn_loop.kernel @error_invocation_map(%a: memref<4xf32> read_write) kind "t" target "wasm" {
  nn_loop.for %i = 0 to 4 map "invocation.x" {
    %v = nn_loop.load %a[%i] : memref<4xf32> -> f32
    nn_loop.store %v, %a[%i] : f32, memref<4xf32>
  }
}

// -----

/// Threads split the kernel's outermost loop into chunks; a thread loop inside a serial
/// loop would need a barrier between workers.
// E2: error: nn_loop.kernel @error_nested_thread_loop (target wasm): a thread loop must be at the top level of the kernel
nn_loop.kernel @error_nested_thread_loop(%a: memref<4x4xf32> read_write) kind "t" target "wasm" {
  nn_loop.for %i = 0 to 4 {
    nn_loop.for %j = 0 to 4 map "thread" {
      %v = nn_loop.load %a[%i, %j] : memref<4x4xf32> -> f32
      nn_loop.store %v, %a[%i, %j] : f32, memref<4x4xf32>
    }
  }
}

// -----

/// Workers do not synchronise inside a kernel.
// E3: error: nn_loop.kernel @error_barrier (target wasm): nn_loop.barrier is not available on target wasm
nn_loop.kernel @error_barrier(%a: memref<4xf32> read_write) kind "t" target "wasm" {
  nn_loop.for %i = 0 to 4 map "thread" {
    %v = nn_loop.load %a[%i] : memref<4xf32> -> f32
    nn_loop.barrier
    nn_loop.store %v, %a[%i] : f32, memref<4xf32>
  }
}

// -----

/// Only private buffers (which become locals) can be allocated.
// E4: error: nn_loop.kernel @error_workgroup_memory (target wasm): workgroup memory is not available on target wasm (use private buffers (registers))
nn_loop.kernel @error_workgroup_memory(%a: memref<4xf32> read_write) kind "t" target "wasm" {
  %t = nn_loop.alloc : memref<4xf32, #nn_loop<space workgroup>>
  %c0 = arith.constant 0 : index
  %v = nn_loop.load %a[%c0] : memref<4xf32> -> f32
  nn_loop.store %v, %t[%c0] : f32, memref<4xf32, #nn_loop<space workgroup>>
}

// -----

/// Buffers are of f32 or i32 (Wasm has no f16 loads).
// E5: error: nn_loop.kernel @error_f16_buffer (target wasm): argument 0 has element type f16 (use f32, i32 or i8 buffers)
nn_loop.kernel @error_f16_buffer(%a: memref<4xf16> read_write) kind "t" target "wasm" {
  nn_loop.for %i = 0 to 4 map "thread" {
    %v = nn_loop.load %a[%i] : memref<4xf16> -> f16
    nn_loop.store %v, %a[%i] : f16, memref<4xf16>
  }
}

// -----

/// An input with only kernels of the other target is a wrong pipeline, not a no-op.
// E6: error: convert-nn-loop-to-wasm has nothing to convert: the input is nn_loop kernels (target "wgsl")
nn_loop.kernel @error_only_wgsl_kernels(%a: memref<4xf32> read_write) kind "t" target "wgsl" {
  nn_loop.for %i = 0 to 4 map "invocation.x" {
    %v = nn_loop.load %a[%i] : memref<4xf32> -> f32
    nn_loop.store %v, %a[%i] : f32, memref<4xf32>
  }
}

// -----

/// erf, tanh, sin and cos are nn-loop-expand-math's to write out (nnjit/ir/approx.py), not
/// the conversion's: a leftover one names the pass to run first.
// E7: error: nn_loop.kernel @error_erf_not_expanded (target wasm): math.erf is not converted to Wasm (run nn-loop-expand-math{target=wasm} before convert-nn-loop-to-wasm)
nn_loop.kernel @error_erf_not_expanded(%a: memref<4xf32> read_write) kind "t" target "wasm" {
  nn_loop.for %i = 0 to 4 {
    %v = nn_loop.load %a[%i] : memref<4xf32> -> f32
    %e = math.erf %v : f32
    nn_loop.store %e, %a[%i] : f32, memref<4xf32>
  }
}

// -----

/// sin on vectors too (the conversion has no sin of its own).
// E8: error: nn_loop.kernel @error_sin_not_expanded (target wasm): math.sin is not converted to Wasm (run nn-loop-expand-math{target=wasm} before convert-nn-loop-to-wasm)
nn_loop.kernel @error_sin_not_expanded(%a: memref<8xf32> read_write) kind "t" target "wasm" {
  nn_loop.for %i = 0 to 8 step 4 {
    %v = nn_loop.load %a[%i] : memref<8xf32> -> vector<4xf32>
    %e = math.sin %v : vector<4xf32>
    nn_loop.store %e, %a[%i] : vector<4xf32>, memref<8xf32>
  }
}

// -----

/// `unroll U` is nn-loop-unroll's to apply (the targets' loop passes run it): the conversion
/// has no unroller of its own, and a loop still marked names the pass to run first.
// E9: error: nn_loop.kernel @error_unroll_mark (target wasm): a loop marked unroll 2 is not converted to Wasm (run nn-loop-unroll before convert-nn-loop-to-wasm)
nn_loop.kernel @error_unroll_mark(%a: memref<4xf32> read_write) kind "t" target "wasm" {
  nn_loop.for %i = 0 to 4 unroll 2 {
    %v = nn_loop.load %a[%i] : memref<4xf32> -> f32
    nn_loop.store %v, %a[%i] : f32, memref<4xf32>
  }
}
