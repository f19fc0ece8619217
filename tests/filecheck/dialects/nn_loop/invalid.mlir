// RUN: nnjit-opt %s --split-input-file --verify-diagnostics | filecheck %s

/// One case per verifier error of nn_loop. nnjit-opt (xDSL) prints each diagnostic instead
/// of failing, so every `expected-error` is also checked by the CHECK line after its case.
/// Cases that the custom format cannot express use the generic format.

/// A kernel needs one access mode per argument.
// expected-error {{nn_loop.kernel @k: 2 buffer arguments but 1 access modes}}
"nn_loop.kernel"() <{sym_name = "k", access = [#nn_loop<access read>], kind = "copy", target = #nn_loop<target wgsl>}> ({
^bb0(%a: memref<4xf32>, %b: memref<4xf32>):
  "nn_loop.yield"() : () -> ()
}) : () -> ()
// CHECK: nn_loop.kernel @k: 2 buffer arguments but 1 access modes

// -----

/// Kernel arguments live in global memory.
// expected-error {{nn_loop.kernel @k: argument 0 must be a memref in the global space, got memref<4xf32, #nn_loop<space private>>}}
nn_loop.kernel @k(%a: memref<4xf32, #nn_loop<space private>> read) kind "copy" target "wgsl" {
}
// CHECK: nn_loop.kernel @k: argument 0 must be a memref in the global space, got memref<4xf32, #nn_loop<space private>>

// -----

// expected-error {{nn_loop.kernel @k: argument 0 must be a memref in the global space, got f32}}
"nn_loop.kernel"() <{sym_name = "k", access = [#nn_loop<access read>], kind = "copy", target = #nn_loop<target wgsl>}> ({
^bb0(%a: f32):
  "nn_loop.yield"() : () -> ()
}) : () -> ()
// CHECK: nn_loop.kernel @k: argument 0 must be a memref in the global space, got f32

// -----

/// Loops: one index induction variable, a positive step, an unroll factor
/// dividing the trip count.
nn_loop.kernel @k(%a: memref<4xf32> read) kind "copy" target "wasm" {
  // expected-error {{nn_loop.for: body must take one index argument}}
  "nn_loop.for"() <{lb = 0 : i64, ub = 4 : i64, step = 1 : i64, map = #nn_loop<map serial>, unroll = 1 : i64}> ({
  ^bb0(%i: i32):
    "nn_loop.yield"() : () -> ()
  }) : () -> ()
}
// CHECK: nn_loop.for: body must take one index argument

// -----

nn_loop.kernel @k(%a: memref<4xf32> read) kind "copy" target "wasm" {
  // expected-error {{nn_loop.for: step must be positive, got 0}}
  nn_loop.for %i = 0 to 4 step 0 {
  }
}
// CHECK: nn_loop.for: step must be positive, got 0

// -----

nn_loop.kernel @k(%a: memref<4xf32> read) kind "copy" target "wasm" {
  // expected-error {{nn_loop.for: unroll 3 must be >= 1 and divide the trip count 4}}
  nn_loop.for %i = 0 to 8 step 2 unroll 3 {
  }
}
// CHECK: nn_loop.for: unroll 3 must be >= 1 and divide the trip count 4

// -----

nn_loop.kernel @k(%a: memref<4xf32> read) kind "copy" target "wasm" {
  // expected-error {{nn_loop.for: unroll 0 must be >= 1 and divide the trip count 4}}
  nn_loop.for %i = 0 to 4 unroll 0 {
  }
}
// CHECK: nn_loop.for: unroll 0 must be >= 1 and divide the trip count 4

// -----

/// Loads and stores: one index per dim, the buffer's element type (or a 1-D vector of it).
nn_loop.kernel @k(%a: memref<4x4xf32> read) kind "copy" target "wasm" {
  %c0 = arith.constant 0 : index
  // expected-error {{nn_loop.load: 1 indices for a rank-2 buffer}}
  %x = nn_loop.load %a[%c0] : memref<4x4xf32> -> f32
}
// CHECK: nn_loop.load: 1 indices for a rank-2 buffer

// -----

nn_loop.kernel @k(%a: memref<4xf32> read) kind "copy" target "wasm" {
  %c0 = arith.constant 0 : index
  // expected-error {{nn_loop.load: value type i32 does not match buffer element type f32}}
  %x = nn_loop.load %a[%c0] : memref<4xf32> -> i32
}
// CHECK: nn_loop.load: value type i32 does not match buffer element type f32

// -----

nn_loop.kernel @k(%a: memref<4xf32> read) kind "copy" target "wasm" {
  %c0 = arith.constant 0 : index
  // expected-error {{nn_loop.load: only 1-D vectors are supported}}
  %x = nn_loop.load %a[%c0] : memref<4xf32> -> vector<2x2xf32>
}
// CHECK: nn_loop.load: only 1-D vectors are supported

// -----

nn_loop.kernel @k(%a: memref<4xf32> write) kind "copy" target "wasm" {
  %c0 = arith.constant 0 : index
  %v = arith.constant 1 : i32
  // expected-error {{nn_loop.store: value type i32 does not match buffer element type f32}}
  nn_loop.store %v, %a[%c0] : i32, memref<4xf32>
}
// CHECK: nn_loop.store: value type i32 does not match buffer element type f32

// -----

nn_loop.kernel @k(%a: memref<4x4xf32> write) kind "copy" target "wasm" {
  %c0 = arith.constant 0 : index
  %v = arith.constant 1.0 : f32
  // expected-error {{nn_loop.store: 3 indices for a rank-2 buffer}}
  nn_loop.store %v, %a[%c0, %c0, %c0] : f32, memref<4x4xf32>
}
// CHECK: nn_loop.store: 3 indices for a rank-2 buffer

// -----

/// Scratch memory is private or workgroup.
nn_loop.kernel @k(%a: memref<4xf32> read) kind "copy" target "wasm" {
  // expected-error {{nn_loop.alloc: memory space must be #nn_loop<space private> or #nn_loop<space workgroup>, got #nn_loop<space global>}}
  %s = nn_loop.alloc : memref<4xf32, #nn_loop<space global>>
}
// CHECK: nn_loop.alloc: memory space must be #nn_loop<space private> or #nn_loop<space workgroup>, got #nn_loop<space global>

// -----

nn_loop.kernel @k(%a: memref<4xf32> read) kind "copy" target "wasm" {
  // expected-error {{nn_loop.alloc: memory space must be #nn_loop<space private> or #nn_loop<space workgroup>, got none}}
  %s = nn_loop.alloc : memref<4xf32>
}
// CHECK: nn_loop.alloc: memory space must be #nn_loop<space private> or #nn_loop<space workgroup>, got none

// -----

/// A memory space is an #nn_loop<space ...> attribute, not a string.
nn_loop.kernel @k(%a: memref<4xf32> read) kind "copy" target "wasm" {
  // expected-error {{nn_loop.alloc: memory space must be #nn_loop<space private> or #nn_loop<space workgroup>, got "private"}}
  %s = nn_loop.alloc : memref<4xf32, "private">
}
// CHECK: nn_loop.alloc: memory space must be #nn_loop<space private> or #nn_loop<space workgroup>, got "private"

// -----

/// Vector ops.
nn_loop.kernel @k(%a: memref<4xf32> read) kind "copy" target "wasm" {
  %x = arith.constant 1 : i32
  // expected-error {{nn_loop.splat: lane type must equal the operand type}}
  %v = nn_loop.splat %x : i32 -> vector<4xf32>
}
// CHECK: nn_loop.splat: lane type must equal the operand type

// -----

nn_loop.kernel @k(%a: memref<4xf32> read) kind "copy" target "wasm" {
  %x = arith.constant 1.0 : f32
  %v = nn_loop.splat %x : f32 -> vector<4xf32>
  // expected-error {{nn_loop.extract: lane 4 out of range}}
  %l = nn_loop.extract %v {lane = 4 : i64} : vector<4xf32> -> f32
}
// CHECK: nn_loop.extract: lane 4 out of range

// -----

/// Views keep the element count and type.
func.func @view_count(%a: memref<4x4xf32>) {
  // expected-error {{nn_loop.view: element counts differ}}
  %v = nn_loop.view %a : memref<4x4xf32> -> memref<15xf32>
  func.return
}
// CHECK: nn_loop.view: element counts differ

// -----

func.func @view_type(%a: memref<4x4xf32>) {
  // expected-error {{nn_loop.view: element types differ}}
  %v = nn_loop.view %a : memref<4x4xf32> -> memref<16xi32>
  func.return
}
// CHECK: nn_loop.view: element types differ

// -----

/// A launch passes buffers of the kernel's argument types.
nn_loop.kernel @k(%a: memref<4xf32> read) kind "copy" target "wasm" {
}
func.func @main(%x: memref<8xf32>) {
  // expected-error {{nn_loop.launch: argument types ['memref<8xf32>'] do not match kernel @k ['memref<4xf32>']}}
  nn_loop.launch @k(%x) : memref<8xf32>
  func.return
}
// CHECK: nn_loop.launch: argument types ['memref<8xf32>'] do not match kernel @k ['memref<4xf32>']
