// RUN: nnjit-opt %s --split-input-file --parsing-diagnostics | filecheck %s

/// A v128 constant's lane shape is an enum attribute: the parser names the shapes it accepts.

nn_wasm.module @k manifest {kind = "t", params = [], thread_chunks = 1 : i64, features = []} {
  nn_wasm.func @run("tid": i32) {
    %c = nn_wasm.v128.const f64x2 [1.0, 2.0]
    nn_wasm.drop %c : !nn_wasm.v128
  }
}
// CHECK: Expected `f32x4`, or `i32x4`.

// -----

/// The generic form names the attribute.
// CHECK-LABEL: nn_wasm.func @generic
// CHECK:         nn_wasm.v128.const i32x4 [1, 2, 3, 4]
nn_wasm.module @k manifest {kind = "t", params = [], thread_chunks = 1 : i64, features = []} {
  nn_wasm.func @generic("tid": i32) {
    %c = "nn_wasm.v128.const"() <{shape = #nn_wasm<shape i32x4>, lanes = [1 : i64, 2 : i64, 3 : i64, 4 : i64]}> : () -> !nn_wasm.v128
    nn_wasm.drop %c : !nn_wasm.v128
  }
}
