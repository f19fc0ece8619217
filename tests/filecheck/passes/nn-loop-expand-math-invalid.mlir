// RUN: not nnjit-opt %s -p 'nn-loop-expand-math{target=webgpu}' 2>&1 | filecheck %s

/// The target names the kernels to expand and the forms to use: wgsl or wasm only (an
/// unknown name is an error, not a pass that silently does nothing).
// CHECK: error: nn-loop-expand-math: unknown target 'webgpu' (wgsl or wasm)
nn_loop.kernel @error_unknown_target(%a: memref<4xf32> read, %y: memref<4xf32> write) kind "elementwise" target "wasm" {
  nn_loop.for %i = 0 to 4 map "thread" {
    %v = nn_loop.load %a[%i] : memref<4xf32> -> f32
    %o = math.erf %v : f32
    nn_loop.store %o, %y[%i] : f32, memref<4xf32>
  }
}
