// RUN: nnjit-opt %s --split-input-file --verify-diagnostics | filecheck %s

/// One case per verifier error of nn_wgsl. nnjit-opt (xDSL) prints each diagnostic instead
/// of failing, so every `expected-error` is also checked by the CHECK line after its case.
/// Cases that the custom format cannot express use the generic format.

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  // expected-error {{nn_wgsl.array: a workgroup array needs a fixed element count}}
  %w = nn_wgsl.workgroup_var : !nn_wgsl.array<workgroup, f32>
  nn_wgsl.entry workgroup_size [1, 1, 1] {
  }
}
// CHECK: nn_wgsl.array: a workgroup array needs a fixed element count

// -----

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  // expected-error {{nn_wgsl.array: element type i1 must be f32, i32, u32, f16 or a vector of them}}
  %w = nn_wgsl.workgroup_var : !nn_wgsl.array<workgroup, i1, 4>
  nn_wgsl.entry workgroup_size [1, 1, 1] {
  }
}
// CHECK: nn_wgsl.array: element type i1 must be f32, i32, u32, f16 or a vector of them

// -----

// expected-error {{nn_wgsl.module @k: expected exactly one nn_wgsl.entry, found 0}}
nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
}
// CHECK: nn_wgsl.module @k: expected exactly one nn_wgsl.entry, found 0

// -----

// expected-error {{nn_wgsl.module @k: dispatch must be three non-negative integers}}
nn_wgsl.module @k kind "t" dispatch [1, 1] {
  nn_wgsl.entry workgroup_size [1, 1, 1] {
  }
}
// CHECK: nn_wgsl.module @k: dispatch must be three non-negative integers

// -----

// expected-error {{nn_wgsl.module @k: binding 0 is declared twice}}
nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  %a = nn_wgsl.binding 0 read shape [4] : !nn_wgsl.array<storage, f32>
  %b = nn_wgsl.binding 0 read shape [4] : !nn_wgsl.array<storage, f32>
  nn_wgsl.entry workgroup_size [1, 1, 1] {
  }
}
// CHECK: nn_wgsl.module @k: binding 0 is declared twice

// -----

// expected-error {{nn_wgsl.module @k: only nn_wgsl.binding, nn_wgsl.workgroup_var, nn_wgsl.func and nn_wgsl.entry may appear at module level, found nn_wgsl.const}}
nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  %c = nn_wgsl.const 1 : i32
  nn_wgsl.entry workgroup_size [1, 1, 1] {
  }
}
// CHECK: nn_wgsl.module @k: only nn_wgsl.binding, nn_wgsl.workgroup_var, nn_wgsl.func and nn_wgsl.entry may appear at module level, found nn_wgsl.const

// -----

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  // expected-error {{nn_wgsl.binding: the type must be a runtime-sized storage array, got !nn_wgsl.array<storage, f32, 4>}}
  %b = nn_wgsl.binding 0 read shape [4] : !nn_wgsl.array<storage, f32, 4>
  nn_wgsl.entry workgroup_size [1, 1, 1] {
  }
}
// CHECK: nn_wgsl.binding: the type must be a runtime-sized storage array, got !nn_wgsl.array<storage, f32, 4>

// -----

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  // expected-error {{nn_wgsl.binding: buffer elements must be f32, i32 or f16 (or vectors)}}
  %b = nn_wgsl.binding 0 read shape [4] : !nn_wgsl.array<storage, ui32>
  nn_wgsl.entry workgroup_size [1, 1, 1] {
  }
}
// CHECK: nn_wgsl.binding: buffer elements must be f32, i32 or f16 (or vectors)

// -----

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  // expected-error {{nn_wgsl.entry: workgroup_size must be three positive integers}}
  nn_wgsl.entry workgroup_size [0, 1, 1] {
  }
}
// CHECK: nn_wgsl.entry: workgroup_size must be three positive integers

// -----

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  %b = nn_wgsl.binding 0 read shape [4] : !nn_wgsl.array<storage, f32>
  nn_wgsl.entry workgroup_size [1, 1, 1] {
    %i = nn_wgsl.const 0 : i32
    %v = nn_wgsl.const 1.0 : f32
    // expected-error {{nn_wgsl.store: binding 0 is read-only}}
    nn_wgsl.store %v, %b[%i] : !nn_wgsl.array<storage, f32>, i32
  }
}
// CHECK: nn_wgsl.store: binding 0 is read-only

// -----

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  %b = nn_wgsl.binding 0 read shape [4] : !nn_wgsl.array<storage, f32>
  nn_wgsl.entry workgroup_size [1, 1, 1] {
    %i = nn_wgsl.const 0.0 : f32
    // expected-error {{nn_wgsl.load: index 0 must be i32 or u32, got f32}}
    %v = nn_wgsl.load %b[%i] : !nn_wgsl.array<storage, f32>, f32
  }
}
// CHECK: nn_wgsl.load: index 0 must be i32 or u32, got f32

// -----

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  %b = nn_wgsl.binding 0 read shape [4] : !nn_wgsl.array<storage, f32>
  nn_wgsl.entry workgroup_size [1, 1, 1] {
    %i = nn_wgsl.const 0 : i32
    // expected-error {{nn_wgsl.load: result type i32 is not the element type f32}}
    %v = "nn_wgsl.load"(%b, %i) : (!nn_wgsl.array<storage, f32>, i32) -> i32
  }
}
// CHECK: nn_wgsl.load: result type i32 is not the element type f32

// -----

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  nn_wgsl.entry workgroup_size [1, 1, 1] {
    %p = nn_wgsl.function_var : !nn_wgsl.array<function, f32, 4>
    %i = nn_wgsl.const 0 : i32
    // expected-error {{nn_wgsl.store: value type i32 is not the element type f32}}
    "nn_wgsl.store"(%i, %p, %i) : (i32, !nn_wgsl.array<function, f32, 4>, i32) -> ()
  }
}
// CHECK: nn_wgsl.store: value type i32 is not the element type f32

// -----

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  %t = nn_wgsl.workgroup_var : !nn_wgsl.array<workgroup, f32, 8>
  nn_wgsl.entry workgroup_size [1, 1, 1] {
    %i = nn_wgsl.const 0 : i32
    // expected-error {{nn_wgsl.load: 2 indices are too many for !nn_wgsl.array<workgroup, f32, 8>}}
    %v = "nn_wgsl.load"(%t, %i, %i) : (!nn_wgsl.array<workgroup, f32, 8>, i32, i32) -> f32
  }
}
// CHECK: nn_wgsl.load: 2 indices are too many for !nn_wgsl.array<workgroup, f32, 8>

// -----

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  %t = nn_wgsl.workgroup_var : !nn_wgsl.array<workgroup, !nn_wgsl.array<workgroup, vector<4xf32>, 2>, 8>
  nn_wgsl.entry workgroup_size [1, 1, 1] {
    %i = nn_wgsl.const 0 : i32
    // expected-error {{nn_wgsl.load: 1 indices designate an array, not a value}}
    %v = "nn_wgsl.load"(%t, %i) : (!nn_wgsl.array<workgroup, !nn_wgsl.array<workgroup, vector<4xf32>, 2>, 8>, i32) -> vector<4xf32>
  }
}
// CHECK: nn_wgsl.load: 1 indices designate an array, not a value

// -----

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  %t = nn_wgsl.workgroup_var : !nn_wgsl.array<workgroup, vector<4xf32>, 8>
  nn_wgsl.entry workgroup_size [1, 1, 1] {
    %i = nn_wgsl.const 0 : i32
    %f = nn_wgsl.const 0.0 : f32
    // expected-error {{nn_wgsl.store: index 1 must be i32 or u32, got f32}}
    "nn_wgsl.store"(%f, %t, %i, %f) : (f32, !nn_wgsl.array<workgroup, vector<4xf32>, 8>, i32, f32) -> ()
  }
}
// CHECK: nn_wgsl.store: index 1 must be i32 or u32, got f32

// -----

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  %t = nn_wgsl.workgroup_var : !nn_wgsl.array<workgroup, vector<4xf32>, 8>
  nn_wgsl.entry workgroup_size [1, 1, 1] {
    %i = nn_wgsl.const 0 : i32
    // expected-error {{nn_wgsl.store: value type i32 is not the element type f32}}
    "nn_wgsl.store"(%i, %t, %i, %i) : (i32, !nn_wgsl.array<workgroup, vector<4xf32>, 8>, i32, i32) -> ()
  }
}
// CHECK: nn_wgsl.store: value type i32 is not the element type f32

// -----

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  // expected-error {{nested arrays are fixed-size workgroup or function arrays of one space}}
  %t = nn_wgsl.workgroup_var : !nn_wgsl.array<workgroup, !nn_wgsl.array<function, f32, 2>, 8>
  nn_wgsl.entry workgroup_size [1, 1, 1] {
  }
}
// CHECK: nested arrays are fixed-size workgroup or function arrays of one space

// -----

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  nn_wgsl.entry workgroup_size [1, 1, 1] {
    %a = nn_wgsl.const 1 : i32
    %f = nn_wgsl.const 1.0 : f32
    // expected-error {{nn_wgsl.binary: '+' operand types i32 and f32 do not match}}
    %b = nn_wgsl.binary "+" %a, %f : i32, f32 -> i32
  }
}
// CHECK: nn_wgsl.binary: '+' operand types i32 and f32 do not match

// -----

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  nn_wgsl.entry workgroup_size [1, 1, 1] {
    %a = nn_wgsl.const 1 : i32
    // expected-error {{nn_wgsl.binary: '<<' needs an integer left operand and a u32 right operand}}
    %b = nn_wgsl.binary "<<" %a, %a : i32, i32 -> i32
  }
}
// CHECK: nn_wgsl.binary: '<<' needs an integer left operand and a u32 right operand

// -----

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  nn_wgsl.entry workgroup_size [1, 1, 1] {
    %a = nn_wgsl.const 1.0 : f32
    // expected-error {{nn_wgsl.binary: '<' on f32 and f32 gives i1, not f32}}
    %b = nn_wgsl.binary "<" %a, %a : f32, f32 -> f32
  }
}
// CHECK: nn_wgsl.binary: '<' on f32 and f32 gives i1, not f32

// -----

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  nn_wgsl.entry workgroup_size [1, 1, 1] {
    %a = nn_wgsl.const true
    // expected-error {{nn_wgsl.binary: '^' is not defined on i1}}
    %b = nn_wgsl.binary "^" %a, %a : i1, i1 -> i1
  }
}
// CHECK: nn_wgsl.binary: '^' is not defined on i1

// -----

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  nn_wgsl.entry workgroup_size [1, 1, 1] {
    %a = nn_wgsl.const 1.0 : f64
    // expected-error {{nn_wgsl.const: value must be an f32, i32, u32 or i1 literal, got 1.000000e+00 : f64}}
  }
}
// CHECK: nn_wgsl.const: value must be an f32, i32, u32 or i1 literal, got 1.000000e+00 : f64

// -----

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  nn_wgsl.entry workgroup_size [1, 1, 1] {
    %a = nn_wgsl.const 1.0 : f32
    // expected-error {{nn_wgsl.unary: '!' is not defined on f32}}
    %b = nn_wgsl.unary "!" %a : f32
  }
}
// CHECK: nn_wgsl.unary: '!' is not defined on f32

// -----

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  nn_wgsl.entry workgroup_size [1, 1, 1] {
    %a = nn_wgsl.const 1.0 : f32
    // expected-error {{nn_wgsl.call: exp takes 1 arguments, got 2}}
    %b = nn_wgsl.call "exp"(%a, %a) : (f32, f32) -> f32
  }
}
// CHECK: nn_wgsl.call: exp takes 1 arguments, got 2

// -----

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  nn_wgsl.entry workgroup_size [1, 1, 1] {
    %a = nn_wgsl.const 1.0 : f32
    // expected-error {{nn_wgsl.call: select(f, t, cond) needs f and t of one type and a bool (or matching vector of bool) condition}}
    %b = nn_wgsl.call "select"(%a, %a, %a) : (f32, f32, f32) -> f32
  }
}
// CHECK: nn_wgsl.call: select(f, t, cond) needs f and t of one type and a bool (or matching vector of bool) condition

// -----

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  nn_wgsl.entry workgroup_size [1, 1, 1] {
    %a = nn_wgsl.const 1 : i32
    // expected-error {{nn_wgsl.call: tanh needs floating-point arguments}}
    %b = nn_wgsl.call "tanh"(%a) : (i32) -> i32
  }
}
// CHECK: nn_wgsl.call: tanh needs floating-point arguments

// -----

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  nn_wgsl.entry workgroup_size [1, 1, 1] {
    %a = nn_wgsl.const 1.0 : f32
    // expected-error {{nn_wgsl.construct: vector<4xf32> needs 1 or 4 scalars, got 2}}
    %b = nn_wgsl.construct(%a, %a) : (f32, f32) -> vector<4xf32>
  }
}
// CHECK: nn_wgsl.construct: vector<4xf32> needs 1 or 4 scalars, got 2

// -----

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  nn_wgsl.entry workgroup_size [1, 1, 1] {
    %a = nn_wgsl.const 1.0 : f32
    %v = nn_wgsl.construct(%a) : (f32) -> vector<4xf32>
    // expected-error {{nn_wgsl.lane: lane 4 out of range for vector<4xf32>}}
    %b = nn_wgsl.lane %v 4 : vector<4xf32>
  }
}
// CHECK: nn_wgsl.lane: lane 4 out of range for vector<4xf32>

// -----

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  nn_wgsl.entry workgroup_size [1, 1, 1] {
    %a = nn_wgsl.const 1.0 : f32
    %v = nn_wgsl.construct(%a) : (f32) -> vector<4xf32>
    // expected-error {{nn_wgsl.convert: vector<4xf32> and i32 have different lane counts}}
    %b = nn_wgsl.convert %v : vector<4xf32> -> i32
  }
}
// CHECK: nn_wgsl.convert: vector<4xf32> and i32 have different lane counts

// -----

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  nn_wgsl.entry workgroup_size [1, 1, 1] {
    %a = nn_wgsl.const true
    // expected-error {{nn_wgsl.bitcast: bool has no bit representation}}
    %b = nn_wgsl.bitcast %a : i1 -> i1
  }
}
// CHECK: nn_wgsl.bitcast: bool has no bit representation

// -----

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  nn_wgsl.entry workgroup_size [1, 1, 1] {
    // expected-error {{nn_wgsl.for: step must be positive, got 0}}
    nn_wgsl.for %i = 0 to 4 step 0 {
    }
  }
}
// CHECK: nn_wgsl.for: step must be positive, got 0

// -----

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  nn_wgsl.entry workgroup_size [4, 1, 1] {
    %l = nn_wgsl.builtin local_invocation_id x : i32
    %c = nn_wgsl.const 2 : i32
    %lt = nn_wgsl.binary "<" %l, %c : i32, i32 -> i1
    nn_wgsl.if %lt {
      // expected-error {{nn_wgsl.barrier: inside an nn_wgsl.if whose condition may differ between the invocations of a workgroup (non-uniform control flow)}}
      nn_wgsl.barrier
    }
  }
}
// CHECK: nn_wgsl.barrier: inside an nn_wgsl.if whose condition may differ between the invocations of a workgroup (non-uniform control flow)

// -----

/// A condition that only depends on workgroup_id is uniform: no error.
// CHECK-LABEL: nn_wgsl.module @uniform
nn_wgsl.module @uniform kind "t" dispatch [1, 1, 1] {
  nn_wgsl.entry workgroup_size [4, 1, 1] {
    %w = nn_wgsl.builtin workgroup_id x : i32
    %c = nn_wgsl.const 2 : i32
    %lt = nn_wgsl.binary "<" %w, %c : i32, i32 -> i1
    nn_wgsl.if %lt {
      nn_wgsl.barrier
    }
  }
}
// CHECK: nn_wgsl.barrier

// -----

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  nn_wgsl.entry workgroup_size [1, 1, 1] {
    %a = nn_wgsl.const 1.0 : f32
    // expected-error {{nn_wgsl.return: the entry function returns no value}}
    nn_wgsl.return %a : f32
  }
}
// CHECK: nn_wgsl.return: the entry function returns no value

// -----

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  nn_wgsl.func @f(%x: f32) -> f32 {
    %c = nn_wgsl.const 1 : i32
    // expected-error {{nn_wgsl.return: @f must return a value of type f32}}
    nn_wgsl.return %c : i32
  }
  nn_wgsl.entry workgroup_size [1, 1, 1] {
  }
}
// CHECK: nn_wgsl.return: @f must return a value of type f32

// -----

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  nn_wgsl.entry workgroup_size [1, 1, 1] {
    %a = nn_wgsl.const 1.0 : f32
    // expected-error {{nn_wgsl.call_func: @g is not an nn_wgsl.func}}
    %b = nn_wgsl.call_func @g(%a) : (f32) -> f32
  }
}
// CHECK: nn_wgsl.call_func: @g is not an nn_wgsl.func

// -----

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  nn_wgsl.func @f(%x: f32) -> f32 {
    nn_wgsl.return %x : f32
  }
  nn_wgsl.entry workgroup_size [1, 1, 1] {
    %a = nn_wgsl.const 1 : i32
    // expected-error {{nn_wgsl.call_func: the operand or result types do not match @f}}
    %b = nn_wgsl.call_func @f(%a) : (i32) -> f32
  }
}
// CHECK: nn_wgsl.call_func: the operand or result types do not match @f

// -----

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  nn_wgsl.entry workgroup_size [1, 1, 1] {
  }
  // expected-error {{nn_wgsl.function_var: must be inside nn_wgsl.entry or nn_wgsl.func}}
  %q = nn_wgsl.function_var : !nn_wgsl.array<function, f32, 4>
}
// CHECK: nn_wgsl.function_var: must be inside nn_wgsl.entry or nn_wgsl.func
