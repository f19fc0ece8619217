// RUN: nnjit-opt %s --split-input-file -p 'nn-loop-unroll,convert-nn-loop-to-wasm' | filecheck %s
// RUN: nnjit-opt %s --split-input-file -p 'nn-loop-unroll,convert-nn-loop-to-wasm{relaxed-simd=false}' | filecheck %s --check-prefix=STRICT

/// A thread loop of 6 iterations: chunks of ceil(6 / nthreads), f32x4 math, vector fma as
/// relaxed_madd (or mul + add with relaxed-simd=false), loads folded into their users, the
/// constant part of the address in the memarg offset. The inner loop's addresses are
/// pointers (one per buffer) set before it and bumped after each iteration; its iv is
/// only used in addresses, so x's pointer counts the iterations (no local "j").
// CHECK-LABEL: nn_wasm.module @thread_chunks_simd_pointers manifest {kind = "elementwise", schedule = {}, params = [{index = 0 : i64, access = "read", dtype = "f32", shape = [6 : i64, 10 : i64], bytes = 240 : i64}, {index = 1 : i64, access = "read_write", dtype = "f32", shape = [6 : i64, 10 : i64], bytes = 240 : i64}], thread_chunks = 6 : i64, features = ["simd128", "relaxed-simd", "threads"]} {
// CHECK-NEXT:    nn_wasm.import_memory "env" "memory" min 1 max 65536 shared
// CHECK-NEXT:    nn_wasm.func @run export "run" ("tid": i32, "nthreads": i32, "b0": i32, "b1": i32) locals ("chunk": i32, "lo": i32, "hi": i32, "r": i32, "p_x": i32, "p_y": i32, "p_end": i32) {
// CHECK:           nn_wasm.i32.div_u
// CHECK:           nn_wasm.if "idle" %{{.*}} {
// CHECK-NEXT:        nn_wasm.return
// CHECK:           nn_wasm.loop "chunks" {
// CHECK:             nn_wasm.local.set "p_x" %{{.*}} : i32
// CHECK:             nn_wasm.local.set "p_y" %{{.*}} : i32
// CHECK:             %[[PX:.*]] = nn_wasm.local.get "p_x" : i32
// CHECK-NEXT:        %[[END:.*]] = nn_wasm.i32.const 32
// CHECK-NEXT:        %[[E:.*]] = nn_wasm.i32.add %[[PX]], %[[END]]
// CHECK-NEXT:        nn_wasm.local.set "p_end" %[[E]] : i32
// CHECK-NEXT:        nn_wasm.loop "l" {
// CHECK:               %{{.*}} = nn_wasm.f32x4.splat %{{.*}}
// CHECK:               %[[X:.*]] = nn_wasm.local.get "p_x" : i32
// CHECK-NEXT:          %{{.*}} = nn_wasm.v128.load offset=8 align=4 %[[X]]
// CHECK:               %{{.*}} = nn_wasm.f32x4.relaxed_madd %{{.*}}, %{{.*}}, %{{.*}}
// CHECK-NEXT:          nn_wasm.v128.store offset=8 align=4 %{{.*}}, %{{.*}}
// CHECK:               %[[Y:.*]] = nn_wasm.local.get "p_y" : i32
// CHECK-NEXT:          %[[S:.*]] = nn_wasm.i32.const 16
// CHECK-NEXT:          %[[Y2:.*]] = nn_wasm.i32.add %[[Y]], %[[S]]
// CHECK-NEXT:          nn_wasm.local.set "p_y" %[[Y2]] : i32
// CHECK:               %[[T:.*]] = nn_wasm.local.tee "p_x" %{{.*}} : i32
// CHECK-NEXT:          %[[PE:.*]] = nn_wasm.local.get "p_end" : i32
// CHECK-NEXT:          %[[C:.*]] = nn_wasm.i32.ne %[[T]], %[[PE]]
// CHECK-NEXT:          nn_wasm.br_if "l" %[[C]]
// CHECK:             nn_wasm.br_if "chunks" %{{.*}}

// STRICT-LABEL: nn_wasm.module @thread_chunks_simd_pointers
// STRICT-SAME:    features = ["simd128", "threads"]
// STRICT-NOT:     relaxed_madd
// STRICT:         %[[M:.*]] = nn_wasm.f32x4.mul %{{.*}}, %{{.*}}
// STRICT:         %{{.*}} = nn_wasm.f32x4.add %[[M]], %{{.*}}
// STRICT-NOT:     relaxed_madd
nn_loop.kernel @thread_chunks_simd_pointers(%x: memref<6x10xf32> read, %y: memref<6x10xf32> read_write) kind "elementwise" target "wasm" {
  %a = arith.constant 0.5 : f32
  %c2 = arith.constant 2 : index
  nn_loop.for %r = 0 to 6 map "thread" {
    nn_loop.for %j = 0 to 8 step 4 {
      %j2 = arith.addi %j, %c2 : index
      %xv = nn_loop.load %x[%r, %j2] : memref<6x10xf32> -> vector<4xf32>
      %yv = nn_loop.load %y[%r, %j2] : memref<6x10xf32> -> vector<4xf32>
      %av = nn_loop.splat %a : f32 -> vector<4xf32>
      %f = math.fma %av, %xv, %yv : vector<4xf32>
      nn_loop.store %f, %y[%r, %j2] : vector<4xf32>, memref<6x10xf32>
    }
  }
}

// -----

/// Without a thread loop, thread 0 does everything; a private buffer indexed by constants
/// (after nn-loop-unroll) becomes locals; scalar fma is f32.mul + f32.add; exp calls a helper.
// CHECK-LABEL: nn_wasm.module @no_thread_loop_private_locals manifest
// CHECK-SAME:      thread_chunks = 1 : i64, features = ["simd128", "threads"]
// CHECK:           nn_wasm.func @run export "run" ("tid": i32, "nthreads": i32, "b0": i32) locals ("acc_0": f32, "acc_1": f32{{.*}}) {
// CHECK-NEXT:        %{{.*}} = nn_wasm.local.get "tid" : i32
// CHECK-NEXT:        nn_wasm.if "not_thread0" %{{.*}} {
// CHECK-NEXT:          nn_wasm.return
// CHECK:             nn_wasm.local.set "acc_0" %{{.*}} : f32
// CHECK:             nn_wasm.local.set "acc_1" %{{.*}} : f32
// CHECK:             %{{.*}} = nn_wasm.call @exp_f32(%{{.*}}) : (f32) -> (f32)
// CHECK:             %[[P:.*]] = nn_wasm.f32.mul %{{.*}}, %{{.*}}
// CHECK-NEXT:        %[[Q:.*]] = nn_wasm.local.get "acc_1" : f32
// CHECK-NEXT:        %{{.*}} = nn_wasm.f32.add %[[P]], %[[Q]]
// CHECK:           nn_wasm.func @exp_f32("x": f32) -> (f32) locals
// CHECK:             nn_wasm.f32.nearest
// CHECK:             nn_wasm.return %{{.*}} : f32
nn_loop.kernel @no_thread_loop_private_locals(%x: memref<2xf32> read_write) kind "reduce" target "wasm" {
  %acc = nn_loop.alloc : memref<2xf32, #nn_loop<space private>>
  nn_loop.for %i = 0 to 2 unroll 2 {
    %v = nn_loop.load %x[%i] : memref<2xf32> -> f32
    nn_loop.store %v, %acc[%i] : f32, memref<2xf32, #nn_loop<space private>>
  }
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %a = nn_loop.load %acc[%c0] : memref<2xf32, #nn_loop<space private>> -> f32
  %e = math.exp %a : f32
  %b = nn_loop.load %acc[%c1] : memref<2xf32, #nn_loop<space private>> -> f32
  %f = math.fma %e, %e, %b : f32
  nn_loop.store %f, %x[%c0] : f32, memref<2xf32>
}

// -----

/// Kernels for WebGPU and @main are left alone (a wasm kernel is there so that the pass
/// has something to convert).
// CHECK-LABEL: nn_wasm.module @copy manifest
// CHECK-LABEL: nn_loop.kernel @negative_other_target(%x: memref<4xf32> read_write) kind "t" target "wgsl" {
// CHECK-NEXT:    nn_loop.for %{{.*}} = 0 to 4 map "invocation.x" {
// CHECK:       func.func @negative_main(%x: memref<4xf32>) {
// CHECK-NEXT:    nn_loop.launch @copy(%x) : memref<4xf32>
nn_loop.kernel @copy(%x: memref<4xf32> read_write) kind "t" target "wasm" {
  nn_loop.for %i = 0 to 4 map "thread" {
    %v = nn_loop.load %x[%i] : memref<4xf32> -> f32
    nn_loop.store %v, %x[%i] : f32, memref<4xf32>
  }
}
nn_loop.kernel @negative_other_target(%x: memref<4xf32> read_write) kind "t" target "wgsl" {
  nn_loop.for %i = 0 to 4 map "invocation.x" {
    %v = nn_loop.load %x[%i] : memref<4xf32> -> f32
    nn_loop.store %v, %x[%i] : f32, memref<4xf32>
  }
}
func.func @negative_main(%x: memref<4xf32>) {
  nn_loop.launch @copy(%x) : memref<4xf32>
  func.return
}

// -----

/// math.roundeven (nn_tensor.round: ONNX Round, halves to even) is the target's own rounding.
// CHECK-LABEL: nn_wasm.module @round_half_even
// CHECK:         %{{.*}} = nn_wasm.f32.nearest %{{.*}}
nn_loop.kernel @round_half_even(%x: memref<8xf32> read, %y: memref<8xf32> write) kind "elementwise" target "wasm" {
  nn_loop.for %i = 0 to 8 map "thread" {
    %v = nn_loop.load %x[%i] : memref<8xf32> -> f32
    %r = math.roundeven %v : f32
    nn_loop.store %r, %y[%i] : f32, memref<8xf32>
  }
}

// -----

/// Int8 weights (nn-tensor-int8-weights): a vector<8xi16> load from an i8 buffer is one
/// v128.load8x8_s (byte addresses: the k loop's pointer steps by one row of 24 bytes), each
/// half of it i32x4.extend_low/high_i16x8_s then f32x4.convert_i32x4_s; the i8 param's bytes
/// are its element count.
// CHECK-LABEL: nn_wasm.module @int8_widening_load manifest
// CHECK-SAME:    {index = 0 : i64, access = "read", dtype = "i8", shape = [3 : i64, 24 : i64], bytes = 72 : i64}
// CHECK:         nn_wasm.loop "l" {
// CHECK:           %[[W:.*]] = nn_wasm.v128.load8x8_s offset=8 align=1 %{{.*}}
// CHECK-NEXT:      nn_wasm.local.set "w" %[[W]] : !nn_wasm.v128
// CHECK:           %[[L:.*]] = nn_wasm.i32x4.extend_low_i16x8_s %{{.*}}
// CHECK-NEXT:      nn_wasm.f32x4.convert_i32x4_s %[[L]]
// CHECK:           %[[H:.*]] = nn_wasm.i32x4.extend_high_i16x8_s %{{.*}}
// CHECK-NEXT:      nn_wasm.f32x4.convert_i32x4_s %[[H]]
// CHECK:           %[[S:.*]] = nn_wasm.i32.const 24
// CHECK-NEXT:      nn_wasm.i32.add %{{.*}}, %[[S]]
nn_loop.kernel @int8_widening_load(%q: memref<3x24xi8> read, %o: memref<8xf32> read_write) kind "matmul" target "wasm" {
  %acc = nn_loop.alloc : memref<2xvector<4xf32>, #nn_loop<space private>>
  %z = arith.constant 0 : index
  %one = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  nn_loop.for %k = 0 to 3 {
    %w = nn_loop.load %q[%k, %c8] : memref<3x24xi8> -> vector<8xi16>
    %flo = nn_loop.widen_half %w {half = 0 : i64} : vector<8xi16> -> vector<4xf32>
    %fhi = nn_loop.widen_half %w {half = 1 : i64} : vector<8xi16> -> vector<4xf32>
    %a0 = nn_loop.load %acc[%z] : memref<2xvector<4xf32>, #nn_loop<space private>> -> vector<4xf32>
    %s0 = arith.addf %a0, %flo : vector<4xf32>
    nn_loop.store %s0, %acc[%z] : vector<4xf32>, memref<2xvector<4xf32>, #nn_loop<space private>>
    %a1 = nn_loop.load %acc[%one] : memref<2xvector<4xf32>, #nn_loop<space private>> -> vector<4xf32>
    %s1 = arith.addf %a1, %fhi : vector<4xf32>
    nn_loop.store %s1, %acc[%one] : vector<4xf32>, memref<2xvector<4xf32>, #nn_loop<space private>>
  }
  %r0 = nn_loop.load %acc[%z] : memref<2xvector<4xf32>, #nn_loop<space private>> -> vector<4xf32>
  %r1 = nn_loop.load %acc[%one] : memref<2xvector<4xf32>, #nn_loop<space private>> -> vector<4xf32>
  %c4 = arith.constant 4 : index
  nn_loop.store %r0, %o[%z] : vector<4xf32>, memref<8xf32>
  nn_loop.store %r1, %o[%c4] : vector<4xf32>, memref<8xf32>
}
