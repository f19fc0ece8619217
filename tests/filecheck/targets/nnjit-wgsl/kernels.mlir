// RUN: nnjit-opt %s -p 'nn-loop-expand-math{target=wgsl},convert-nn-loop-to-wgsl' -t nnjit-wgsl | filecheck %s

/// Elementwise: erf and tanh arrive written out by nn-loop-expand-math (nnjit/ir/approx.py's
/// exp forms): WGSL's exp, fma and select, no helper function; the ragged end is guarded by
/// an `if`.
// CHECK:      // kernel: ew
// CHECK-NEXT: // manifest: {"bindings": [{"access": "read", "binding": 0, "bytes": 40, "dtype": "f32", "shape": [10]}, {"access": "write", "binding": 1, "bytes": 40, "dtype": "f32", "shape": [10]}], "dispatch": [1, 1, 1], "entry": "main", "kind": "elementwise", "name": "ew", "schedule": {}, "target": "wgsl", "workgroup_size": [16, 1, 1], "workgroup_storage_bytes": 0}
// CHECK-NEXT: @group(0) @binding(0) var<storage, read> x: array<f32>;
// CHECK-NEXT: @group(0) @binding(1) var<storage, read_write> y: array<f32>;
// CHECK-EMPTY:
// CHECK-NEXT: @compute @workgroup_size(16, 1, 1)
// CHECK-NEXT: fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
// CHECK-NEXT:   let wid_x = i32(wid.x);
// CHECK-NEXT:   let lid_x = i32(lid.x);
// CHECK-NEXT:   let in = lid_x < 10i;
// CHECK-NEXT:   if (in) {
// CHECK-NEXT:     let [[V:.*]] = x[lid_x];
// CHECK-NOT:      erf
// CHECK-NOT:      tanh
// CHECK:          exp(
// CHECK:          fma(
// CHECK:          select(
// CHECK:          let m = s * 0.5f;
// CHECK-NEXT:     y[lid_x] = m;
// CHECK-NEXT:   }
// CHECK-NEXT: }
nn_loop.kernel @ew(%x: memref<10xf32> read, %y: memref<10xf32> write) kind "elementwise" target "wgsl" {
  %c10 = arith.constant 10 : index
  %half = arith.constant 0.5 : f32
  nn_loop.for %g = 0 to 1 map "workgroup.x" {
    nn_loop.for %i = 0 to 16 map "invocation.x" {
      %in = arith.cmpi slt, %i, %c10 : index
      nn_loop.if %in {
        %v = nn_loop.load %x[%i] : memref<10xf32> -> f32
        %e = math.erf %v : f32
        %t = math.tanh %v : f32
        %s = arith.addf %e, %t : f32
        %m = arith.mulf %s, %half : f32
        nn_loop.store %m, %y[%i] : f32, memref<10xf32>
      }
    }
  }
}

/// Gather: i32 indices; the row offset idx * 8 is a multiple of 4, so the table is read
/// as vec4 (and "table" is renamed: it is reserved in WGSL).
// CHECK-LABEL: // kernel: gather
// CHECK:      @group(0) @binding(0) var<storage, read> table_: array<vec4<f32>>;
// CHECK-NEXT: @group(0) @binding(1) var<storage, read> idx: array<i32>;
// CHECK-NEXT: @group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;
// CHECK:        let iv = idx[wid_x];
// CHECK-NEXT:   let [[R:.*]] = iv * 8i;
// CHECK-NEXT:   let [[F:.*]] = [[R]] + j;
// CHECK-NEXT:   let [[I:.*]] = [[F]] >> 2u;
// CHECK-NEXT:   let val = table_[[[I]]];
nn_loop.kernel @gather(%table: memref<7x8xf32> read, %idx: memref<3xi32> read, %out: memref<3x8xf32> write) kind "gather" target "wgsl" {
  nn_loop.for %i = 0 to 3 map "workgroup.x" {
    nn_loop.for %j = 0 to 8 step 4 map "invocation.x" {
      %iv = nn_loop.load %idx[%i] : memref<3xi32> -> i32
      %row = arith.index_cast %iv : i32 to index
      %val = nn_loop.load %table[%row, %j] : memref<7x8xf32> -> vector<4xf32>
      nn_loop.store %val, %out[%i, %j] : vector<4xf32>, memref<3x8xf32>
    }
  }
}

/// A reduction in workgroup memory: var<workgroup> at module level, barriers in straight
/// code and inside a serial loop; -inf (no WGSL literal) becomes the lowest finite f32;
/// arith.maximumf keeps a NaN operand (WGSL's max may drop it), a constant is not tested.
// CHECK-LABEL: // kernel: rowmax
// CHECK:      "workgroup_storage_bytes": 128}
// CHECK:      var<workgroup> red: array<f32, 32>;
// CHECK:        let [[MB:.*]] = max(a, b);
// CHECK-NEXT:   let [[BB:.*]] = bitcast<u32>(b);
// CHECK-NEXT:   let [[BM:.*]] = [[BB]] & 2147483647u;
// CHECK-NEXT:   let [[BN:.*]] = [[BM]] > 2139095040u;
// CHECK-NEXT:   let [[M1:.*]] = select([[MB]], b, [[BN]]);
// CHECK-NEXT:   let [[AB:.*]] = bitcast<u32>(a);
// CHECK-NEXT:   let [[AM:.*]] = [[AB]] & 2147483647u;
// CHECK-NEXT:   let [[AN:.*]] = [[AM]] > 2139095040u;
// CHECK-NEXT:   let m = select([[M1]], a, [[AN]]);
// CHECK-NEXT:   let [[M2:.*]] = max(m, (-3.402823466e+38f));
// CHECK:        let m2 = select([[M2]], m, {{.*}});
// CHECK-NEXT:   red[lid_x] = m2;
// CHECK-NEXT:   workgroupBarrier();
// CHECK-NEXT:   for (var k: i32 = 0i; k < 5i; k++) {
// CHECK-NEXT:     let [[U:.*]] = bitcast<u32>(16i);
// CHECK-NEXT:     let [[K:.*]] = bitcast<u32>(k);
// CHECK-NEXT:     let [[S:.*]] = [[U]] >> [[K]];
// CHECK-NEXT:     let s = bitcast<i32>([[S]]);
// CHECK-NEXT:     let lt = lid_x < s;
// CHECK-NEXT:     if (lt) {
// CHECK:            red[lid_x] = mx;
// CHECK-NEXT:     }
// CHECK-NEXT:     workgroupBarrier();
// CHECK-NEXT:   }
nn_loop.kernel @rowmax(%x: memref<2x64xf32> read, %y: memref<2xf32> write) kind "reduce" target "wgsl" {
  %c0 = arith.constant 0 : index
  %ninf = arith.constant 0xFF800000 : f32
  %c16 = arith.constant 16 : index
  nn_loop.for %r = 0 to 2 map "workgroup.x" {
    nn_loop.for %l = 0 to 32 map "invocation.x" {
      %red = nn_loop.alloc : memref<32xf32, #nn_loop<space workgroup>>
      %a = nn_loop.load %x[%r, %l] : memref<2x64xf32> -> f32
      %o = arith.addi %l, %c16 : index
      %o2 = arith.addi %o, %c16 : index
      %b = nn_loop.load %x[%r, %o2] : memref<2x64xf32> -> f32
      %m = arith.maximumf %a, %b : f32
      %m2 = arith.maximumf %m, %ninf : f32
      nn_loop.store %m2, %red[%l] : f32, memref<32xf32, #nn_loop<space workgroup>>
      nn_loop.barrier
      nn_loop.for %k = 0 to 5 {
        %s = arith.shrui %c16, %k : index
        %lt = arith.cmpi slt, %l, %s : index
        nn_loop.if %lt {
          %p = nn_loop.load %red[%l] : memref<32xf32, #nn_loop<space workgroup>> -> f32
          %q0 = arith.addi %l, %s : index
          %q = nn_loop.load %red[%q0] : memref<32xf32, #nn_loop<space workgroup>> -> f32
          %mx = arith.maximumf %p, %q : f32
          nn_loop.store %mx, %red[%l] : f32, memref<32xf32, #nn_loop<space workgroup>>
        }
        nn_loop.barrier
      }
      %z = arith.cmpi eq, %l, %c0 : index
      nn_loop.if %z {
        %t = nn_loop.load %red[%c0] : memref<32xf32, #nn_loop<space workgroup>> -> f32
        nn_loop.store %t, %y[%r] : f32, memref<2xf32>
      }
    }
  }
}

/// math.log: a negative argument gives NaN and a NaN stays NaN, whatever the driver's log does
/// (SwiftShader: a number for log(-1), inf for exp(NaN)); the NaN is made from the argument's
/// bits (Tint rejects a NaN constant expression).
// CHECK-LABEL: // kernel: lognan
// CHECK:        let [[V:.*]] = x[lid_x];
// CHECK-NEXT:   let [[L:.*]] = log([[V]]);
// CHECK-NEXT:   let [[B:.*]] = bitcast<u32>([[V]]);
// CHECK-NEXT:   let [[Q:.*]] = [[B]] | 2143289344u;
// CHECK-NEXT:   let [[N:.*]] = bitcast<f32>([[Q]]);
// CHECK-NEXT:   let [[NEG:.*]] = [[V]] < 0.0f;
// CHECK-NEXT:   let [[S:.*]] = select([[L]], [[N]], [[NEG]]);
// CHECK-NEXT:   let [[M:.*]] = [[B]] & 2147483647u;
// CHECK-NEXT:   let [[ISNAN:.*]] = [[M]] > 2139095040u;
// CHECK-NEXT:   let l = select([[S]], [[V]], [[ISNAN]]);
// CHECK-NEXT:   y[lid_x] = l;
nn_loop.kernel @lognan(%x: memref<4xf32> read, %y: memref<4xf32> write) kind "elementwise" target "wgsl" {
  nn_loop.for %i = 0 to 4 map "invocation.x" {
    %v = nn_loop.load %x[%i] : memref<4xf32> -> f32
    %l = math.log %v : f32
    nn_loop.store %l, %y[%i] : f32, memref<4xf32>
  }
}
