// RUN: nnjit-opt %s --split-input-file -p 'nn-loop-unroll,convert-nn-loop-to-wgsl' | filecheck %s
// RUN: nnjit-opt %s --split-input-file -p 'nn-loop-unroll,convert-nn-loop-to-wgsl{max_workgroups_per_dim=4}' | filecheck %s --check-prefix=LIN

/// Workgroup and invocation loops become workgroup_id / local_invocation_id (iv = lb + id *
/// step); a buffer only accessed by aligned vector<4> accesses becomes an array of vec4.
// CHECK-LABEL: nn_wgsl.module @ids_and_vec4_buffers kind "elementwise" dispatch [6, 1, 1] schedule {vec = 4 : i64} {
// CHECK-NEXT:    %x = nn_wgsl.binding 0 read shape [6, 8] : !nn_wgsl.array<storage, vector<4xf32>>
// CHECK-NEXT:    %y = nn_wgsl.binding 1 write shape [6, 8] : !nn_wgsl.array<storage, vector<4xf32>>
// CHECK-NEXT:    nn_wgsl.entry workgroup_size [2, 1, 1] {
// CHECK:           %[[TWO:.*]] = nn_wgsl.const 2.000000e+00 : f32
// CHECK-NEXT:      %[[C2:.*]] = nn_wgsl.construct (%[[TWO]]) : (f32) -> vector<4xf32>
// CHECK:           %[[WX:.*]] = nn_wgsl.builtin workgroup_id x : i32
// CHECK-NEXT:      %[[LX:.*]] = nn_wgsl.builtin local_invocation_id x : i32
// CHECK-NEXT:      %[[J:.*]] = nn_wgsl.binary "*" %[[LX]], %{{.*}} : i32, i32 -> i32
// CHECK-NEXT:      %[[ROW:.*]] = nn_wgsl.binary "*" %[[WX]], %{{.*}} : i32, i32 -> i32
// CHECK-NEXT:      %[[FLAT:.*]] = nn_wgsl.binary "+" %[[ROW]], %[[J]] : i32, i32 -> i32
// CHECK-NEXT:      %[[V4:.*]] = nn_wgsl.binary ">>" %[[FLAT]], %{{.*}} : i32, ui32 -> i32
// CHECK-NEXT:      %[[V:.*]] = nn_wgsl.load %x[%[[V4]]] : !nn_wgsl.array<storage, vector<4xf32>>, i32
// CHECK-NEXT:      %[[W:.*]] = nn_wgsl.binary "*" %[[V]], %[[C2]] : vector<4xf32>, vector<4xf32> -> vector<4xf32>
// CHECK-NEXT:      nn_wgsl.store %[[W]], %y[%[[V4]]] : !nn_wgsl.array<storage, vector<4xf32>>, i32
// CHECK-NEXT:    }
// CHECK-NEXT:  }
nn_loop.kernel @ids_and_vec4_buffers(%x: memref<6x8xf32> read, %y: memref<6x8xf32> write) kind "elementwise" target "wgsl" schedule {vec = 4 : i64} {
  %c2 = arith.constant dense<2.0> : vector<4xf32>
  nn_loop.for %i = 0 to 6 map "workgroup.x" {
    nn_loop.for %j = 0 to 8 step 4 map "invocation.x" {
      %v = nn_loop.load %x[%i, %j] : memref<6x8xf32> -> vector<4xf32>
      %w = arith.mulf %v, %c2 : vector<4xf32>
      nn_loop.store %w, %y[%i, %j] : vector<4xf32>, memref<6x8xf32>
    }
  }
}

// -----

/// A vector load at an offset that is not a multiple of 4 is assembled from scalars (the
/// buffer stays an array of f32); the aligned store still uses vec4.
// CHECK-LABEL: nn_wgsl.module @unaligned_vector_load kind "t" dispatch [1, 1, 1] {
// CHECK-NEXT:    %x = nn_wgsl.binding 0 read shape [9] : !nn_wgsl.array<storage, f32>
// CHECK-NEXT:    %y = nn_wgsl.binding 1 write shape [8] : !nn_wgsl.array<storage, vector<4xf32>>
// CHECK:           %[[O:.*]] = nn_wgsl.binary "+" %{{.*}}, %{{.*}} : i32, i32 -> i32
// CHECK-NEXT:      %[[E0:.*]] = nn_wgsl.load %x[%[[O]]] : !nn_wgsl.array<storage, f32>, i32
// CHECK-NEXT:      %[[I1:.*]] = nn_wgsl.binary "+" %[[O]], %{{.*}} : i32, i32 -> i32
// CHECK-NEXT:      %[[E1:.*]] = nn_wgsl.load %x[%[[I1]]] : !nn_wgsl.array<storage, f32>, i32
// CHECK-NEXT:      %[[I2:.*]] = nn_wgsl.binary "+" %[[O]], %{{.*}} : i32, i32 -> i32
// CHECK-NEXT:      %[[E2:.*]] = nn_wgsl.load %x[%[[I2]]] : !nn_wgsl.array<storage, f32>, i32
// CHECK-NEXT:      %[[I3:.*]] = nn_wgsl.binary "+" %[[O]], %{{.*}} : i32, i32 -> i32
// CHECK-NEXT:      %[[E3:.*]] = nn_wgsl.load %x[%[[I3]]] : !nn_wgsl.array<storage, f32>, i32
// CHECK-NEXT:      %{{.*}} = nn_wgsl.construct (%[[E0]], %[[E1]], %[[E2]], %[[E3]]) : (f32, f32, f32, f32) -> vector<4xf32>
nn_loop.kernel @unaligned_vector_load(%x: memref<9xf32> read, %y: memref<8xf32> write) kind "t" target "wgsl" {
  %c1 = arith.constant 1 : index
  nn_loop.for %j = 0 to 8 step 4 map "invocation.x" {
    %o = arith.addi %j, %c1 : index
    %v = nn_loop.load %x[%o] : memref<9xf32> -> vector<4xf32>
    nn_loop.store %v, %y[%j] : vector<4xf32>, memref<8xf32>
  }
}

// -----

/// A buffer that also has a scalar access is not turned into vec4: %x stays an array of
/// f32 and its vector load is assembled from four scalar loads.
// CHECK-LABEL: nn_wgsl.module @negative_scalar_access_keeps_f32 kind "t" dispatch [1, 1, 1] {
// CHECK-NEXT:    %x = nn_wgsl.binding 0 read shape [8] : !nn_wgsl.array<storage, f32>
// CHECK-NEXT:    %y = nn_wgsl.binding 1 write shape [8] : !nn_wgsl.array<storage, vector<4xf32>>
// CHECK-NOT:       nn_wgsl.load %x[%{{.*}}] : !nn_wgsl.array<storage, vector<4xf32>>
// CHECK:           %[[V:.*]] = nn_wgsl.construct (%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) : (f32, f32, f32, f32) -> vector<4xf32>
// CHECK-NEXT:      %[[S:.*]] = nn_wgsl.load %x[%{{.*}}] : !nn_wgsl.array<storage, f32>, i32
// CHECK-NEXT:      %[[B:.*]] = nn_wgsl.construct (%[[S]]) : (f32) -> vector<4xf32>
// CHECK-NEXT:      %{{.*}} = nn_wgsl.binary "+" %[[V]], %[[B]] : vector<4xf32>, vector<4xf32> -> vector<4xf32>
nn_loop.kernel @negative_scalar_access_keeps_f32(%x: memref<8xf32> read, %y: memref<8xf32> write) kind "t" target "wgsl" {
  %c0 = arith.constant 0 : index
  nn_loop.for %j = 0 to 8 step 4 map "invocation.x" {
    %v = nn_loop.load %x[%j] : memref<8xf32> -> vector<4xf32>
    %s = nn_loop.load %x[%c0] : memref<8xf32> -> f32
    %b = nn_loop.splat %s : f32 -> vector<4xf32>
    %w = arith.addf %v, %b : vector<4xf32>
    nn_loop.store %w, %y[%j] : vector<4xf32>, memref<8xf32>
  }
}

// -----

/// Loops marked `unroll` are unrolled first; a private alloc is a function-scope array and
/// each of its loads and stores one access of it, at a constant index when its indices are
/// constants (the conversion forwards nothing: nn-loop-promote-registers keeps such
/// elements in SSA values before it, see nn-loop-promote-registers.mlir).
// CHECK-LABEL: nn_wgsl.module @unroll_and_private_accesses kind "reduce" dispatch [3, 1, 1] {
// CHECK:         nn_wgsl.entry workgroup_size [1, 1, 1] {
// CHECK:           %[[C0:.*]] = nn_wgsl.const 0 : i32
// CHECK-NEXT:      %[[ZERO:.*]] = nn_wgsl.const 0.000000e+00 : f32
// CHECK-NOT:       nn_wgsl.for
// CHECK:           %acc = nn_wgsl.function_var : !nn_wgsl.array<function, f32, 1>
// CHECK-NEXT:      nn_wgsl.store %[[ZERO]], %acc[%[[C0]]] : !nn_wgsl.array<function, f32, 1>, i32
// CHECK:           %[[V0:.*]] = nn_wgsl.load %x[%{{.*}}] : !nn_wgsl.array<storage, f32>, i32
// CHECK-NEXT:      %[[E0:.*]] = nn_wgsl.call "abs"(%[[V0]]) : (f32) -> f32
// CHECK-NEXT:      %[[A0:.*]] = nn_wgsl.load %acc[%[[C0]]] : !nn_wgsl.array<function, f32, 1>, i32
// CHECK-NEXT:      %[[S0:.*]] = nn_wgsl.binary "+" %[[A0]], %[[E0]] : f32, f32 -> f32
// CHECK-NEXT:      nn_wgsl.store %[[S0]], %acc[%[[C0]]] : !nn_wgsl.array<function, f32, 1>, i32
// CHECK-COUNT-9:   nn_wgsl.store %{{.*}}, %acc[%[[C0]]]
// CHECK-NEXT:      %[[T:.*]] = nn_wgsl.load %acc[%[[C0]]] : !nn_wgsl.array<function, f32, 1>, i32
// CHECK-NEXT:      nn_wgsl.store %[[T]], %y[%{{.*}}] : !nn_wgsl.array<storage, f32>, i32
// CHECK-NEXT:    }
nn_loop.kernel @unroll_and_private_accesses(%x: memref<3x10xf32> read, %y: memref<3xf32> write) kind "reduce" target "wgsl" {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0.0 : f32
  nn_loop.for %r = 0 to 3 map "workgroup.x" {
    %acc = nn_loop.alloc : memref<1xf32, #nn_loop<space private>>
    nn_loop.store %zero, %acc[%c0] : f32, memref<1xf32, #nn_loop<space private>>
    nn_loop.for %k = 0 to 10 step 2 unroll 5 {
      nn_loop.for %kk = 0 to 2 unroll 2 {
        %j = arith.addi %k, %kk : index
        %v = nn_loop.load %x[%r, %j] : memref<3x10xf32> -> f32
        %e = math.absf %v : f32
        %a = nn_loop.load %acc[%c0] : memref<1xf32, #nn_loop<space private>> -> f32
        %s = arith.addf %a, %e : f32
        nn_loop.store %s, %acc[%c0] : f32, memref<1xf32, #nn_loop<space private>>
      }
    }
    %t = nn_loop.load %acc[%c0] : memref<1xf32, #nn_loop<space private>> -> f32
    nn_loop.store %t, %y[%r] : f32, memref<3xf32>
  }
}

// -----

/// Serial loops become `for` loops: private-array values are stored before the loop and
/// at the end of its body; workgroup memory is declared at module level; barriers stay.
// CHECK-LABEL: nn_wgsl.module @serial_loop_and_workgroup_memory kind "t" dispatch [2, 1, 1] {
// CHECK-NEXT:    %x = nn_wgsl.binding 0 read shape [2, 16] : !nn_wgsl.array<storage, f32>
// CHECK-NEXT:    %y = nn_wgsl.binding 1 write shape [2, 4] : !nn_wgsl.array<storage, f32>
// CHECK-NEXT:    %tile = nn_wgsl.workgroup_var : !nn_wgsl.array<workgroup, f32, 4>
// CHECK-NEXT:    nn_wgsl.entry workgroup_size [4, 1, 1] {
// CHECK:           %acc = nn_wgsl.function_var : !nn_wgsl.array<function, f32, 1>
// CHECK-NEXT:      nn_wgsl.store %{{.*}}, %acc[%{{.*}}] : !nn_wgsl.array<function, f32, 1>, i32
// CHECK-NEXT:      nn_wgsl.for %k = 0 to 16 step 4 {
// CHECK:             nn_wgsl.store %{{.*}}, %tile[%{{.*}}] : !nn_wgsl.array<workgroup, f32, 4>, i32
// CHECK-NEXT:        nn_wgsl.barrier
// CHECK:             %[[A:.*]] = nn_wgsl.load %acc[%{{.*}}] : !nn_wgsl.array<function, f32, 1>, i32
// CHECK:             nn_wgsl.barrier
// CHECK-NEXT:        nn_wgsl.store %{{.*}}, %acc[%{{.*}}] : !nn_wgsl.array<function, f32, 1>, i32
// CHECK-NEXT:      }
// CHECK-NEXT:      %[[T:.*]] = nn_wgsl.load %acc[%{{.*}}] : !nn_wgsl.array<function, f32, 1>, i32
// CHECK:           nn_wgsl.store %[[T]], %y[%{{.*}}] : !nn_wgsl.array<storage, f32>, i32
nn_loop.kernel @serial_loop_and_workgroup_memory(%x: memref<2x16xf32> read, %y: memref<2x4xf32> write) kind "t" target "wgsl" {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0.0 : f32
  nn_loop.for %r = 0 to 2 map "workgroup.x" {
    nn_loop.for %l = 0 to 4 map "invocation.x" {
      %tile = nn_loop.alloc : memref<4xf32, #nn_loop<space workgroup>>
      %acc = nn_loop.alloc : memref<1xf32, #nn_loop<space private>>
      nn_loop.store %zero, %acc[%c0] : f32, memref<1xf32, #nn_loop<space private>>
      nn_loop.for %k = 0 to 16 step 4 {
        %j = arith.addi %k, %l : index
        %v = nn_loop.load %x[%r, %j] : memref<2x16xf32> -> f32
        nn_loop.store %v, %tile[%l] : f32, memref<4xf32, #nn_loop<space workgroup>>
        nn_loop.barrier
        %a = nn_loop.load %acc[%c0] : memref<1xf32, #nn_loop<space private>> -> f32
        %c3 = arith.constant 3 : index
        %m = arith.subi %c3, %l : index
        %u = nn_loop.load %tile[%m] : memref<4xf32, #nn_loop<space workgroup>> -> f32
        %s = arith.addf %a, %u : f32
        nn_loop.barrier
        nn_loop.store %s, %acc[%c0] : f32, memref<1xf32, #nn_loop<space private>>
      }
      %t = nn_loop.load %acc[%c0] : memref<1xf32, #nn_loop<space private>> -> f32
      nn_loop.store %t, %y[%r, %l] : f32, memref<2x4xf32>
    }
  }
}

// -----

/// Kernels of other targets and @main are left alone (a wgsl kernel is there so that the
/// pass has something to convert).
// CHECK-LABEL: nn_wgsl.module @copy kind "t"
// CHECK-LABEL: nn_loop.kernel @negative_other_target(%a: memref<4xf32> read_write) kind "t" target "wasm" {
// CHECK-NEXT:    nn_loop.for %{{.*}} = 0 to 4 map "thread" {
// CHECK:       func.func @negative_main(%x: memref<4xf32>) attributes {nnjit.num_outputs = 1 : i64} {
// CHECK-NEXT:    nn_loop.launch @copy(%x) : memref<4xf32>
nn_loop.kernel @copy(%a: memref<4xf32> read_write) kind "t" target "wgsl" {
  nn_loop.for %i = 0 to 4 map "invocation.x" {
    %v = nn_loop.load %a[%i] : memref<4xf32> -> f32
    nn_loop.store %v, %a[%i] : f32, memref<4xf32>
  }
}
nn_loop.kernel @negative_other_target(%a: memref<4xf32> read_write) kind "t" target "wasm" {
  nn_loop.for %i = 0 to 4 map "thread" {
    %v = nn_loop.load %a[%i] : memref<4xf32> -> f32
    nn_loop.store %v, %a[%i] : f32, memref<4xf32>
  }
}
func.func @negative_main(%x: memref<4xf32>) attributes {nnjit.num_outputs = 1 : i64} {
  nn_loop.launch @copy(%x) : memref<4xf32>
  func.return
}

/// With max_workgroups_per_dim=4 the 6-workgroup grid of @ids_and_vec4_buffers is linearised over x and y
/// (dispatch [3, 2, 1]: exactly 6, so no guard); @unroll_and_private_accesses's 3 workgroups fit.
// LIN-LABEL: nn_wgsl.module @ids_and_vec4_buffers kind "elementwise" dispatch [3, 2, 1]
// LIN:         %[[WX:.*]] = nn_wgsl.builtin workgroup_id x : i32
// LIN-NEXT:    %[[WY:.*]] = nn_wgsl.builtin workgroup_id y : i32
// LIN-NEXT:    %[[M:.*]] = nn_wgsl.binary "*" %[[WY]], %{{.*}} : i32, i32 -> i32
// LIN-NEXT:    %{{.*}} = nn_wgsl.binary "+" %[[WX]], %[[M]] : i32, i32 -> i32
// LIN-NOT:     nn_wgsl.return
// LIN-LABEL: nn_wgsl.module @unroll_and_private_accesses kind "reduce" dispatch [3, 1, 1]

// -----

/// math.roundeven (nn_tensor.round: ONNX Round, halves to even) is the target's own rounding.
// CHECK-LABEL: nn_wgsl.module @round_half_even
// CHECK:         %{{.*}} = nn_wgsl.call "round"(%{{.*}}) : (f32) -> f32
nn_loop.kernel @round_half_even(%x: memref<8xf32> read, %y: memref<8xf32> write) kind "elementwise" target "wgsl" {
  nn_loop.for %i = 0 to 8 map "invocation.x" {
    %v = nn_loop.load %x[%i] : memref<8xf32> -> f32
    %r = math.roundeven %v : f32
    nn_loop.store %r, %y[%i] : f32, memref<8xf32>
  }
}
