// RUN: nnjit-opt %s -p nn-loop-unroll,nn-loop-promote-registers,convert-nn-loop-to-wgsl | nnjit-translate -t nnjit-wgsl | filecheck %s

/// A matmul with a register tile of 2 vec4 accumulators: B and C are arrays of vec4, A of
/// f32; the k loop is unrolled and the accumulators live in `let`s (no private array);
/// the ragged last row is guarded.

// CHECK:      // kernel: mm
// CHECK-NEXT: // manifest: {"bindings": [{"access": "read", "binding": 0, "bytes": 60, "dtype": "f32", "shape": [5, 3]}, {"access": "read", "binding": 1, "bytes": 96, "dtype": "f32", "shape": [3, 8]}, {"access": "write", "binding": 2, "bytes": 160, "dtype": "f32", "shape": [5, 8]}], "dispatch": [3, 1, 1], "entry": "main", "kind": "matmul", "name": "mm", "schedule": {"tile": [2, 4]}, "target": "wgsl", "workgroup_size": [2, 1, 1], "workgroup_storage_bytes": 0}
// CHECK-NEXT: @group(0) @binding(0) var<storage, read> a: array<f32>;
// CHECK-NEXT: @group(0) @binding(1) var<storage, read> b: array<vec4<f32>>;
// CHECK-NEXT: @group(0) @binding(2) var<storage, read_write> c: array<vec4<f32>>;
// CHECK-EMPTY:
// CHECK-NEXT: @compute @workgroup_size(2, 1, 1)
// CHECK-NEXT: fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
// CHECK-NEXT:   let zero = vec4<f32>(0.0f);
// CHECK-NEXT:   let wid_x = i32(wid.x);
// CHECK-NEXT:   let lid_x = i32(lid.x);
// CHECK-NEXT:   let i0 = wid_x * 2i;
// CHECK-NEXT:   let j = lid_x * 4i;
// CHECK-NEXT:   let [[BI:.*]] = j >> 2u;
// CHECK-NEXT:   let bv = b[[[BI]]];
// CHECK-NEXT:   let ic = min(i0, 4i);
// CHECK-NEXT:   let [[AI:.*]] = ic * 3i;
// CHECK-NEXT:   let av = a[[[AI]]];
// CHECK-NEXT:   let as_ = vec4<f32>(av);
// CHECK-NEXT:   let new_ = fma(as_, bv, zero);
// CHECK-NOT:    var
// CHECK:        let new_2 = fma(as_2, bv_1, new_);
// CHECK:        let new_5 = fma(as_5, bv_2, new_3);
// CHECK-NEXT:   let inb = i0 < 5i;
// CHECK-NEXT:   if (inb) {
// CHECK-NEXT:     let [[R:.*]] = i0 * 8i;
// CHECK-NEXT:     let [[F:.*]] = [[R]] + j;
// CHECK-NEXT:     let [[C:.*]] = [[F]] >> 2u;
// CHECK-NEXT:     c[[[C]]] = new_4;
// CHECK-NEXT:   }
// CHECK-NEXT:   let inb_1 = i < 5i;
// CHECK-NEXT:   if (inb_1) {
// CHECK:          c[{{.*}}] = new_5;
// CHECK-NEXT:   }
// CHECK-NEXT: }
nn_loop.kernel @mm(%a: memref<5x3xf32> read, %b: memref<3x8xf32> read, %c: memref<5x8xf32> write)
    kind "matmul" target "wgsl" schedule {tile = array<i64: 2, 4>} {
  %cm = arith.constant 5 : index
  %clast = arith.constant 4 : index
  %zero = arith.constant dense<0.0> : vector<4xf32>
  nn_loop.for %i0 = 0 to 6 step 2 map "workgroup.x" {
    nn_loop.for %j = 0 to 8 step 4 map "invocation.x" {
      %acc = nn_loop.alloc : memref<2xvector<4xf32>, #nn_loop<space private>>
      nn_loop.for %r = 0 to 2 unroll 2 {
        nn_loop.store %zero, %acc[%r] : vector<4xf32>, memref<2xvector<4xf32>, #nn_loop<space private>>
      }
      nn_loop.for %kk = 0 to 3 unroll 3 {
        %bv = nn_loop.load %b[%kk, %j] : memref<3x8xf32> -> vector<4xf32>
        nn_loop.for %r = 0 to 2 unroll 2 {
          %i = arith.addi %i0, %r : index
          %ic = arith.minsi %i, %clast : index
          %av = nn_loop.load %a[%ic, %kk] : memref<5x3xf32> -> f32
          %as = nn_loop.splat %av : f32 -> vector<4xf32>
          %old = nn_loop.load %acc[%r] : memref<2xvector<4xf32>, #nn_loop<space private>> -> vector<4xf32>
          %new = math.fma %as, %bv, %old : vector<4xf32>
          nn_loop.store %new, %acc[%r] : vector<4xf32>, memref<2xvector<4xf32>, #nn_loop<space private>>
        }
      }
      nn_loop.for %r = 0 to 2 unroll 2 {
        %i = arith.addi %i0, %r : index
        %inb = arith.cmpi slt, %i, %cm : index
        nn_loop.if %inb {
          %v = nn_loop.load %acc[%r] : memref<2xvector<4xf32>, #nn_loop<space private>> -> vector<4xf32>
          nn_loop.store %v, %c[%i, %j] : vector<4xf32>, memref<5x8xf32>
        }
      }
    }
  }
}

/// Workgroup memory of rank 2 is a nested array (one index per dim: a constant index needs
/// no bounds clamp, a dynamic one is clamped once and shared); vec4 accesses make it an
/// array of vec4 whose scalar accesses pick a lane (here the transposed store of a staged
/// tile: a computed lane). Flat offsets gather constant parts: `(x >> 2u) + 1i`.

// CHECK:      // kernel: staged
// CHECK:      var<workgroup> t: array<array<vec4<f32>, 2>, 4>;
// CHECK-EMPTY:
// CHECK-NEXT: @compute @workgroup_size(8, 1, 1)
// CHECK:        let [[V:.*]] = x[{{.*}}];
// CHECK:        let [[Q:.*]] = lid_x >> 2u;
// CHECK-NEXT:   let [[L:.*]] = lid_x & 3i;
// CHECK-NEXT:   t[0i][[[Q]]][[[L]]] = [[V]];
// CHECK:        workgroupBarrier();
// CHECK-NEXT:   let [[R:.*]] = t[3i][1i];
// CHECK:        let [[F:.*]] = {{.*}} >> 2u;
// CHECK-NEXT:   let [[G:.*]] = [[F]] + 1i;
// CHECK-NEXT:   y[[[G]]] = [[R]];
nn_loop.kernel @staged(%x: memref<8x8xf32> read, %y: memref<2x8xf32> write)
    kind "matmul" target "wgsl" schedule {} {
  nn_loop.for %l = 0 to 8 map "invocation.x" {
    %t = nn_loop.alloc : memref<4x8xf32, #nn_loop<space workgroup>>
    %c0 = arith.constant 0 : index
    %c3 = arith.constant 3 : index
    %c4 = arith.constant 4 : index
    %c1 = arith.constant 1 : index
    %v = nn_loop.load %x[%l, %c0] : memref<8x8xf32> -> f32
    nn_loop.store %v, %t[%c0, %l] : f32, memref<4x8xf32, #nn_loop<space workgroup>>
    nn_loop.barrier
    %w = nn_loop.load %t[%c3, %c4] : memref<4x8xf32, #nn_loop<space workgroup>> -> vector<4xf32>
    %r = arith.divsi %l, %c4 : index
    %r4 = arith.muli %r, %c4 : index
    %j = arith.addi %r4, %c4 : index
    %row = arith.remsi %r, %c1 : index
    nn_loop.store %w, %y[%row, %j] : vector<4xf32>, memref<2x8xf32>
  }
}
