// RUN: nnjit-opt %s --split-input-file --verify-diagnostics | filecheck %s

/// One case per verifier error of nn_wasm. nnjit-opt (xDSL) prints each diagnostic instead
/// of failing, so every `expected-error` is also checked by the CHECK line after its case.

/// Stack discipline: operands come from the top of the stack, in push order.
nn_wasm.module @k manifest {kind = "t", params = [], thread_chunks = 1 : i64, features = []} {
  // expected-error {{nn_wasm.func @run: nn_wasm.i32.sub does not take its operands from the top of the stack}}
  nn_wasm.func @run ("tid": i32) {
    %a = nn_wasm.i32.const 1
    %b = nn_wasm.i32.const 2
    %c = nn_wasm.i32.sub %b, %a
    nn_wasm.drop %c : i32
  }
}
// CHECK: nn_wasm.i32.sub does not take its operands from the top of the stack

// -----

/// Nothing may be left on the stack at the end of a block.
nn_wasm.module @k manifest {kind = "t", params = [], thread_chunks = 1 : i64, features = []} {
  // expected-error {{nn_wasm.func @run: 1 value(s) left on the stack at the end of a block (first defined by nn_wasm.i32.const)}}
  nn_wasm.func @run ("tid": i32) {
    %a = nn_wasm.i32.const 1
  }
}
// CHECK: 1 value(s) left on the stack at the end of a block

// -----

/// Locals must be declared, with the type they are used at.
nn_wasm.module @k manifest {kind = "t", params = [], thread_chunks = 1 : i64, features = []} {
  // expected-error {{nn_wasm.func @run: nn_wasm.local.get 'tid' uses type f32 but the local is i32}}
  nn_wasm.func @run ("tid": i32) {
    %a = nn_wasm.local.get "tid" : f32
    nn_wasm.drop %a : f32
  }
}
// CHECK: uses type f32 but the local is i32

// -----

nn_wasm.module @k manifest {kind = "t", params = [], thread_chunks = 1 : i64, features = []} {
  // expected-error {{nn_wasm.func @run: local 'x' is declared twice}}
  nn_wasm.func @run ("x": i32) locals ("x": f32) {
  }
}
// CHECK: local 'x' is declared twice

// -----

/// Branches target an enclosing block, loop or if.
nn_wasm.module @k manifest {kind = "t", params = [], thread_chunks = 1 : i64, features = []} {
  nn_wasm.func @run ("tid": i32) {
    nn_wasm.block "b" {
    }
    // expected-error {{nn_wasm.br: no enclosing block, loop or if is labelled 'b'}}
    nn_wasm.br "b"
  }
}
// CHECK: no enclosing block, loop or if is labelled 'b'

// -----

/// Calls name a function of the module and match its signature.
nn_wasm.module @k manifest {kind = "t", params = [], thread_chunks = 1 : i64, features = []} {
  nn_wasm.func @f("x": f32) -> (f32) {
    %x = nn_wasm.local.get "x" : f32
    nn_wasm.return %x : f32
  }
  nn_wasm.func @run ("tid": i32) {
    %t = nn_wasm.local.get "tid" : i32
    // expected-error {{nn_wasm.call: the types do not match the signature of @f}}
    %r = nn_wasm.call @f(%t) : (i32) -> (f32)
    nn_wasm.drop %r : f32
  }
}
// CHECK: the types do not match the signature of @f

// -----

/// A function with results returns them.
nn_wasm.module @k manifest {kind = "t", params = [], thread_chunks = 1 : i64, features = []} {
  nn_wasm.func @f("x": f32) -> (f32) {
    %x = nn_wasm.local.get "x" : f32
    %y = nn_wasm.f32.neg %x
    nn_wasm.drop %y : f32
    // expected-error {{nn_wasm.return: returns [] but the function results are ['f32']}}
    nn_wasm.return
  }
}
// CHECK: returns [] but the function results are ['f32']

// -----

/// nn_wasm.return is a terminator: it ends its block.
nn_wasm.module @k manifest {kind = "t", params = [], thread_chunks = 1 : i64, features = []} {
  nn_wasm.func @f("x": f32) -> (f32) {
    %x = nn_wasm.local.get "x" : f32
    // expected-error {{'nn_wasm.return' must be the last operation in its parent block}}
    nn_wasm.return %x : f32
    %y = nn_wasm.f32.const 1.0
    nn_wasm.drop %y : f32
  }
}
// CHECK: 'nn_wasm.return' must be the last operation in its parent block

// -----

/// Memory arguments and lanes.
nn_wasm.module @k manifest {kind = "t", params = [], thread_chunks = 1 : i64, features = []} {
  nn_wasm.func @run ("tid": i32) {
    %a = nn_wasm.local.get "tid" : i32
    // expected-error {{nn_wasm.f32.load: align 8 must be a power of two <= 4}}
    %v = nn_wasm.f32.load align=8 %a
    nn_wasm.drop %v : f32
  }
}
// CHECK: align 8 must be a power of two <= 4

// -----

nn_wasm.module @k manifest {kind = "t", params = [], thread_chunks = 1 : i64, features = []} {
  nn_wasm.func @run ("tid": i32) {
    %c = nn_wasm.v128.const i32x4 [1, 2, 3, 4]
    // expected-error {{nn_wasm.i32x4.extract_lane: lane 4 is not in 0..3}}
    %e = nn_wasm.i32x4.extract_lane 4 %c
    nn_wasm.drop %e : i32
  }
}
// CHECK: lane 4 is not in 0..3

// -----

/// Module-level checks: only imports and functions, known features, complete params.
// expected-error {{nn_wasm.module @k: unknown feature 'gc'}}
nn_wasm.module @k manifest {kind = "t", params = [], thread_chunks = 1 : i64, features = ["gc"]} {
}
// CHECK: unknown feature 'gc'

// -----

// expected-error {{nn_wasm.module @k: param 0 lacks 'bytes'}}
nn_wasm.module @k manifest {kind = "t", params = [{index = 0 : i64, access = "read", dtype = "f32", shape = [1 : i64]}], thread_chunks = 1 : i64, features = []} {
}
// CHECK: param 0 lacks 'bytes'

// -----

nn_wasm.module @k manifest {kind = "t", params = [], thread_chunks = 1 : i64, features = []} {
  // expected-error {{nn_wasm.import_memory: pages must satisfy 0 <= min (2) <= max (1) <= 65536}}
  nn_wasm.import_memory "env" "memory" min 2 max 1 shared
}
// CHECK: pages must satisfy 0 <= min (2) <= max (1) <= 65536

// -----

/// Memory imports and functions belong to a module.
// expected-error {{'nn_wasm.import_memory' expects parent op 'nn_wasm.module'}}
nn_wasm.import_memory "env" "memory" min 1 max 2 shared
// CHECK: 'nn_wasm.import_memory' expects parent op 'nn_wasm.module'
