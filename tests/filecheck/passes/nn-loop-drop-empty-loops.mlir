// RUN: env PYTHONPATH=%S/../../../examples nnjit-opt %s --split-input-file --plugin nnjit_empty_loops -p nn-loop-drop-empty-loops | filecheck %s
// RUN: not nnjit-opt %s -p nn-loop-drop-empty-loops 2>&1 | filecheck %s --check-prefix=NOPLUGIN

/// The pass of the plugin examples/nnjit_empty_loops (docs/extending.md, "Adding a pass to
/// the loop level"). Without the plugin the pass is unknown: one line, no traceback.
// NOPLUGIN: error: invalid pass pipeline
// NOPLUGIN-SAME: nn-loop-drop-empty-loops
// NOPLUGIN-NOT: Traceback

/// A loop with ub == lb never runs: it is erased with its body; the store after it stays.
// CHECK-LABEL: nn_loop.kernel @empty_loop_erased
// CHECK-NOT:     nn_loop.for
// CHECK:         %[[V:.*]] = nn_loop.load %a[%{{.*}}] : memref<4xf32> -> f32
// CHECK-NEXT:    nn_loop.store %[[V]], %a[%{{.*}}] : f32, memref<4xf32>
// CHECK-NEXT:  }
nn_loop.kernel @empty_loop_erased(%a: memref<4xf32> read_write) kind "t" target "wasm" {
  nn_loop.for %i = 2 to 2 {
    %v = nn_loop.load %a[%i] : memref<4xf32> -> f32
    nn_loop.store %v, %a[%i] : f32, memref<4xf32>
  }
  %c0 = arith.constant 0 : index
  %w = nn_loop.load %a[%c0] : memref<4xf32> -> f32
  nn_loop.store %w, %a[%c0] : f32, memref<4xf32>
}

// -----

/// ub < lb is zero trips as well; an empty loop nested in a live one goes, the outer stays.
// CHECK-LABEL: nn_loop.kernel @empty_inner_loop_erased
// CHECK-NEXT:    nn_loop.for %[[I:.*]] = 0 to 4 map "thread" {
// CHECK-NEXT:      %[[V:.*]] = nn_loop.load %a[%[[I]]] : memref<4xf32> -> f32
// CHECK-NEXT:      nn_loop.store %[[V]], %a[%[[I]]] : f32, memref<4xf32>
// CHECK-NEXT:    }
// CHECK-NEXT:  }
nn_loop.kernel @empty_inner_loop_erased(%a: memref<4xf32> read_write) kind "t" target "wasm" {
  nn_loop.for %i = 0 to 4 map "thread" {
    nn_loop.for %k = 8 to 4 step 2 {
      %u = nn_loop.load %a[%k] : memref<4xf32> -> f32
      nn_loop.store %u, %a[%k] : f32, memref<4xf32>
    }
    %v = nn_loop.load %a[%i] : memref<4xf32> -> f32
    nn_loop.store %v, %a[%i] : f32, memref<4xf32>
  }
}

// -----

/// A loop of one trip runs its body once: it is not empty and stays.
// CHECK-LABEL: nn_loop.kernel @negative_one_trip
// CHECK-NEXT:    nn_loop.for %{{.*}} = 3 to 4 {
nn_loop.kernel @negative_one_trip(%a: memref<4xf32> read_write) kind "t" target "wgsl" {
  nn_loop.for %i = 3 to 4 {
    %v = nn_loop.load %a[%i] : memref<4xf32> -> f32
    nn_loop.store %v, %a[%i] : f32, memref<4xf32>
  }
}

// -----

/// A kernel as convert-nn-tensor-to-nn-loop{target=wasm} gives it for a 4x8 relu has no
/// empty loop: it is unchanged, and so is @main.
// CHECK-LABEL: nn_loop.kernel @negative_lowered_relu
// CHECK-NEXT:    nn_loop.for %[[R:.*]] = 0 to 4 step 4 map "thread" {
// CHECK-NEXT:      nn_loop.for %{{.*}} = 0 to 4 {
// CHECK:             nn_loop.for %{{.*}} = 0 to 8 step 4 {
// CHECK:       func.func @main
// CHECK-NEXT:    nn_loop.launch @negative_lowered_relu
nn_loop.kernel @negative_lowered_relu(%in0: memref<4x8xf32> read, %out: memref<4x8xf32> write) kind "elementwise" target "wasm" schedule {vec = 4 : i64, rows = 4 : i64} {
  nn_loop.for %row0 = 0 to 4 step 4 map "thread" {
    nn_loop.for %rr = 0 to 4 {
      %0 = arith.addi %row0, %rr : index
      nn_loop.for %j = 0 to 8 step 4 {
        %1 = nn_loop.load %in0[%0, %j] : memref<4x8xf32> -> vector<4xf32>
        %2 = arith.constant 0.000000e+00 : f32
        %3 = nn_loop.splat %2 : f32 -> vector<4xf32>
        %4 = arith.maximumf %1, %3 : vector<4xf32>
        nn_loop.store %4, %out[%0, %j] : vector<4xf32>, memref<4x8xf32>
      }
    }
  }
}
func.func @main(%0: memref<4x8xf32>, %1: memref<4x8xf32>) attributes {nnjit.num_outputs = 1 : i64} {
  nn_loop.launch @negative_lowered_relu(%0, %1) : memref<4x8xf32>, memref<4x8xf32>
  func.return
}
