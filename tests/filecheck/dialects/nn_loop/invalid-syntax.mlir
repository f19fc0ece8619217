// RUN: nnjit-opt %s --split-input-file --parsing-diagnostics | filecheck %s

/// The closed sets of words of nn_loop are enum attributes: the parser names the words it
/// accepts. (Their verifier errors are in invalid.mlir.)

nn_loop.kernel @k(%a: memref<4xf32> readonly) kind "copy" target "wgsl" {
}
// CHECK: Expected `read`, `write`, or `read_write`.

// -----

nn_loop.kernel @k(%a: memref<4xf32> read) kind "copy" target "cuda" {
}
// CHECK: Expected `wgsl`, or `wasm`.

// -----

nn_loop.kernel @k(%a: memref<4xf32> read) kind "copy" target "wgsl" {
  nn_loop.for %i = 0 to 4 map "warp" {
  }
}
// CHECK: Expected `serial`, `workgroup.x`, `workgroup.y`, `workgroup.z`, `invocation.x`, `invocation.y`, `invocation.z`, or `thread`.

// -----

nn_loop.kernel @k(%a: memref<4xf32> read) kind "copy" target "wasm" {
  %x = arith.constant 1.0 : f32
  %v = nn_loop.splat %x : f32 -> vector<4xf32>
  %l = nn_loop.reduce_lanes min %v : vector<4xf32> -> f32
}
// CHECK: Expected `add`, or `max`.

// -----

/// The generic form names the attribute.
"nn_loop.kernel"() <{sym_name = "k", access = [#nn_loop<access write_only>], kind = "copy", target = #nn_loop<target wgsl>}> ({
^bb0(%a: memref<4xf32>):
  "nn_loop.yield"() : () -> ()
}) : () -> ()
// CHECK: Expected `read`, `write`, or `read_write`.

// -----

/// Words are also accepted unquoted, as the generic form prints them.
// CHECK-LABEL: nn_loop.kernel @unquoted
// CHECK-SAME:    target "wgsl"
// CHECK:         nn_loop.for %{{.*}} = 0 to 4 map "invocation.x"
nn_loop.kernel @unquoted(%a: memref<4xf32> "read") kind "copy" target wgsl {
  nn_loop.for %i = 0 to 4 map invocation.x {
  }
}
