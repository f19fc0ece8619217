// RUN: nnjit-opt %s -p nn-loop-unroll | filecheck %s

/// A full unroll (factor == trip count) leaves straight-line code with constant ivs.
// CHECK-LABEL: nn_loop.kernel @full_unroll
nn_loop.kernel @full_unroll(%a: memref<3xf32> read_write) kind "t" target "wasm" {
  nn_loop.for %i = 0 to 3 unroll 3 {
    %v = nn_loop.load %a[%i] : memref<3xf32> -> f32
    nn_loop.store %v, %a[%i] : f32, memref<3xf32>
  }
}
// CHECK-NOT:   nn_loop.for
// CHECK:       %[[I0:.*]] = arith.constant 0 : index
// CHECK-NEXT:  nn_loop.load %a[%[[I0]]]
// CHECK:       %[[I1:.*]] = arith.constant 1 : index
// CHECK-NEXT:  nn_loop.load %a[%[[I1]]]
// CHECK:       %[[I2:.*]] = arith.constant 2 : index
// CHECK-NEXT:  nn_loop.load %a[%[[I2]]]

/// A partial unroll multiplies the step and offsets the copies' ivs.
// CHECK-LABEL: nn_loop.kernel @partial_unroll
nn_loop.kernel @partial_unroll(%a: memref<8xf32> read_write) kind "t" target "wasm" {
  nn_loop.for %i = 0 to 8 step 2 map "thread" unroll 2 {
    %v = nn_loop.load %a[%i] : memref<8xf32> -> f32
    nn_loop.store %v, %a[%i] : f32, memref<8xf32>
  }
}
// CHECK:       nn_loop.for %[[IV:.*]] = 0 to 8 step 4 map "thread" {
// CHECK-NEXT:    nn_loop.load %a[%[[IV]]]
// CHECK:         %[[C2:.*]] = arith.constant 2 : index
// CHECK-NEXT:    %[[IV2:.*]] = arith.addi %[[IV]], %[[C2]] : index
// CHECK-NEXT:    nn_loop.load %a[%[[IV2]]]

/// Loops without an unroll factor are left alone.
// CHECK-LABEL: nn_loop.kernel @negative_no_unroll
nn_loop.kernel @negative_no_unroll(%a: memref<4xf32> read_write) kind "t" target "wasm" {
  nn_loop.for %i = 0 to 4 {
    %v = nn_loop.load %a[%i] : memref<4xf32> -> f32
    nn_loop.store %v, %a[%i] : f32, memref<4xf32>
  }
}
// CHECK:       nn_loop.for %{{.*}} = 0 to 4 {
