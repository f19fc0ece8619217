// RUN: nnjit-opt %s | nnjit-opt | filecheck %s
// RUN: nnjit-opt %s --print-op-generic | nnjit-opt | filecheck %s
// RUN: nnjit-opt %s --print-op-generic | filecheck %s --check-prefix=GENERIC

/// Every nn_wgsl op in its custom format. The first RUN line prints and parses the custom
/// format twice; the second parses the generic format back and prints the custom one again.

// CHECK-LABEL: nn_wgsl.module @k0 kind "matmul" dispatch [2, 1, 1] schedule {tile = array<i64: 4, 4>} {
// GENERIC-LABEL: "nn_wgsl.module"() <{sym_name = "k0", kind = "matmul", schedule = {tile = array<i64: 4, 4>}, dispatch = array<i64: 2, 1, 1>}>
nn_wgsl.module @k0 kind "matmul" dispatch [2, 1, 1] schedule {tile = array<i64: 4, 4>} {
  %a = nn_wgsl.binding 0 read shape [5, 8] : !nn_wgsl.array<storage, vector<4xf32>>
  %idx = nn_wgsl.binding 1 read shape [3] : !nn_wgsl.array<storage, i32>
  %out = nn_wgsl.binding 2 write shape [5] : !nn_wgsl.array<storage, f32>
  %tile = nn_wgsl.workgroup_var : !nn_wgsl.array<workgroup, f32, 64>
  %tv = nn_wgsl.workgroup_var : !nn_wgsl.array<workgroup, !nn_wgsl.array<workgroup, vector<4xf32>, 4>, 2>
  nn_wgsl.func @sq(%x: f32) -> f32 {
    %y = nn_wgsl.binary "*" %x, %x : f32, f32 -> f32
    nn_wgsl.return %y : f32
  }
  nn_wgsl.entry workgroup_size [64, 1, 1] {
    %c0 = nn_wgsl.const 0 : i32
    %c2 = nn_wgsl.const 2 : ui32
    %h = nn_wgsl.const 1.500000e+00 : f32
    %t = nn_wgsl.const true
    %w = nn_wgsl.builtin workgroup_id x : i32
    %l = nn_wgsl.builtin local_invocation_id y : i32
    %acc = nn_wgsl.function_var : !nn_wgsl.array<function, vector<4xf32>, 2>
    %v = nn_wgsl.load %a[%l] : !nn_wgsl.array<storage, vector<4xf32>>, i32
    %s = nn_wgsl.lane %v 2 : vector<4xf32>
    %e = nn_wgsl.call "exp"(%s) : (f32) -> f32
    %q = nn_wgsl.call_func @sq(%e) : (f32) -> f32
    %sp = nn_wgsl.construct(%q) : (f32) -> vector<4xf32>
    %m = nn_wgsl.binary "*" %sp, %h : vector<4xf32>, f32 -> vector<4xf32>
    %sh = nn_wgsl.binary ">>" %l, %c2 : i32, ui32 -> i32
    %lt = nn_wgsl.binary "<" %l, %w : i32, i32 -> i1
    %n = nn_wgsl.unary "-" %s : f32
    %f = nn_wgsl.convert %w : i32 -> f32
    %bc = nn_wgsl.bitcast %f : f32 -> i32
    %sel = nn_wgsl.call "select"(%n, %s, %lt) : (f32, f32, i1) -> f32
    nn_wgsl.store %m, %acc[%c0] : !nn_wgsl.array<function, vector<4xf32>, 2>, i32
    nn_wgsl.store %sel, %tv[%l][%w][%c0] : !nn_wgsl.array<workgroup, !nn_wgsl.array<workgroup, vector<4xf32>, 4>, 2>, i32, i32, i32
    %tl = nn_wgsl.load %tv[%l][%c0] : !nn_wgsl.array<workgroup, !nn_wgsl.array<workgroup, vector<4xf32>, 4>, 2>, i32, i32
    nn_wgsl.for %i = 0 to 8 step 2 {
      nn_wgsl.store %sel, %tile[%i] : !nn_wgsl.array<workgroup, f32, 64>, i32
      nn_wgsl.barrier
    }
    %wu = nn_wgsl.binary "<" %w, %c0 : i32, i32 -> i1
    nn_wgsl.if %wu {
      nn_wgsl.return
    }
    nn_wgsl.if %lt {
      nn_wgsl.store %s, %out[%l] : !nn_wgsl.array<storage, f32>, i32
    }
  }
}
// CHECK-NEXT:    %a = nn_wgsl.binding 0 read shape [5, 8] : !nn_wgsl.array<storage, vector<4xf32>>
// CHECK-NEXT:    %idx = nn_wgsl.binding 1 read shape [3] : !nn_wgsl.array<storage, i32>
// CHECK-NEXT:    %out = nn_wgsl.binding 2 write shape [5] : !nn_wgsl.array<storage, f32>
// CHECK-NEXT:    %tile = nn_wgsl.workgroup_var : !nn_wgsl.array<workgroup, f32, 64>
// CHECK-NEXT:    %tv = nn_wgsl.workgroup_var : !nn_wgsl.array<workgroup, !nn_wgsl.array<workgroup, vector<4xf32>, 4>, 2>
// CHECK-NEXT:    nn_wgsl.func @sq(%x: f32) -> f32 {
// CHECK-NEXT:      %y = nn_wgsl.binary "*" %x, %x : f32, f32 -> f32
// CHECK-NEXT:      nn_wgsl.return %y : f32
// CHECK-NEXT:    }
// CHECK-NEXT:    nn_wgsl.entry workgroup_size [64, 1, 1] {
// CHECK-NEXT:      %c0 = nn_wgsl.const 0 : i32
// CHECK-NEXT:      %c2 = nn_wgsl.const 2 : ui32
// CHECK-NEXT:      %h = nn_wgsl.const 1.500000e+00 : f32
// CHECK-NEXT:      %t = nn_wgsl.const true
// CHECK-NEXT:      %w = nn_wgsl.builtin workgroup_id x : i32
// CHECK-NEXT:      %l = nn_wgsl.builtin local_invocation_id y : i32
// CHECK-NEXT:      %acc = nn_wgsl.function_var : !nn_wgsl.array<function, vector<4xf32>, 2>
// CHECK-NEXT:      %v = nn_wgsl.load %a[%l] : !nn_wgsl.array<storage, vector<4xf32>>, i32
// CHECK-NEXT:      %s = nn_wgsl.lane %v 2 : vector<4xf32>
// CHECK-NEXT:      %e = nn_wgsl.call "exp"(%s) : (f32) -> f32
// CHECK-NEXT:      %q = nn_wgsl.call_func @sq(%e) : (f32) -> f32
// CHECK-NEXT:      %sp = nn_wgsl.construct (%q) : (f32) -> vector<4xf32>
// CHECK-NEXT:      %m = nn_wgsl.binary "*" %sp, %h : vector<4xf32>, f32 -> vector<4xf32>
// CHECK-NEXT:      %sh = nn_wgsl.binary ">>" %l, %c2 : i32, ui32 -> i32
// CHECK-NEXT:      %lt = nn_wgsl.binary "<" %l, %w : i32, i32 -> i1
// CHECK-NEXT:      %n = nn_wgsl.unary "-" %s : f32
// CHECK-NEXT:      %f = nn_wgsl.convert %w : i32 -> f32
// CHECK-NEXT:      %bc = nn_wgsl.bitcast %f : f32 -> i32
// CHECK-NEXT:      %sel = nn_wgsl.call "select"(%n, %s, %lt) : (f32, f32, i1) -> f32
// CHECK-NEXT:      nn_wgsl.store %m, %acc[%c0] : !nn_wgsl.array<function, vector<4xf32>, 2>, i32
// CHECK-NEXT:      nn_wgsl.store %sel, %tv[%l][%w][%c0] : !nn_wgsl.array<workgroup, !nn_wgsl.array<workgroup, vector<4xf32>, 4>, 2>, i32, i32, i32
// CHECK-NEXT:      %tl = nn_wgsl.load %tv[%l][%c0] : !nn_wgsl.array<workgroup, !nn_wgsl.array<workgroup, vector<4xf32>, 4>, 2>, i32, i32
// CHECK-NEXT:      nn_wgsl.for %i = 0 to 8 step 2 {
// CHECK-NEXT:        nn_wgsl.store %sel, %tile[%i] : !nn_wgsl.array<workgroup, f32, 64>, i32
// CHECK-NEXT:        nn_wgsl.barrier
// CHECK-NEXT:      }
// CHECK-NEXT:      %wu = nn_wgsl.binary "<" %w, %c0 : i32, i32 -> i1
// CHECK-NEXT:      nn_wgsl.if %wu {
// CHECK-NEXT:        nn_wgsl.return
// CHECK-NEXT:      }
// CHECK-NEXT:      nn_wgsl.if %lt {
// CHECK-NEXT:        nn_wgsl.store %s, %out[%l] : !nn_wgsl.array<storage, f32>, i32
// CHECK-NEXT:      }
// CHECK-NEXT:    }
// CHECK-NEXT:  }

// GENERIC: "nn_wgsl.binding"() <{binding = 0 : i64, access = #nn_wgsl<access read>, shape = array<i64: 5, 8>}> : () -> !nn_wgsl.array<storage, vector<4xf32>>
// GENERIC: "nn_wgsl.entry"() <{workgroup_size = array<i64: 64, 1, 1>}>
// GENERIC: "nn_wgsl.call_func"(%{{.*}}) <{callee = @sq}> : (f32) -> f32
// GENERIC: "nn_wgsl.binary"(%{{.*}}, %{{.*}}) <{op = #nn_wgsl<binary_op "*">}> : (vector<4xf32>, f32) -> vector<4xf32>
// GENERIC: "nn_wgsl.store"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) : (f32, !nn_wgsl.array<workgroup, !nn_wgsl.array<workgroup, vector<4xf32>, 4>, 2>, i32, i32, i32) -> ()
// GENERIC: "nn_wgsl.load"(%{{.*}}, %{{.*}}, %{{.*}}) : (!nn_wgsl.array<workgroup, !nn_wgsl.array<workgroup, vector<4xf32>, 4>, 2>, i32, i32) -> vector<4xf32>
// GENERIC: "nn_wgsl.for"() <{lb = 0 : i64, ub = 8 : i64, step = 2 : i64}> ({
// GENERIC-NEXT: ^{{.*}}(%{{.*}}: i32):
