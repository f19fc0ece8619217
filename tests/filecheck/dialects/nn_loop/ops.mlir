// RUN: nnjit-opt %s | nnjit-opt | filecheck %s
// RUN: nnjit-opt %s --print-op-generic | nnjit-opt | filecheck %s
// RUN: nnjit-opt %s --print-op-generic | filecheck %s --check-prefix=GENERIC

/// Every nn_loop op in its custom format: kernels (access modes, kind, target, schedule),
/// loops with each option (step, map, unroll), if, loads/stores (scalar and vector), private
/// and workgroup scratch, barrier, splat/extract/reduce_lanes, and the model-level ops. The
/// first RUN line prints and parses the custom format twice; the second goes through the
/// generic format and back; the third checks the generic format itself (implicit
/// terminators and default properties made explicit).

nn_loop.kernel @k0(%a: memref<5x8xf32> read, %b: memref<8xf32> read, %c: memref<5x8xf32> write) kind "elementwise" target "wgsl" schedule {vec = 4 : i64, workgroup = array<i64: 8>} {
  nn_loop.for %i = 0 to 5 map "workgroup.x" {
    nn_loop.for %j = 0 to 8 step 4 map "invocation.x" unroll 2 {
      %wg = nn_loop.alloc : memref<2x8xf32, #nn_loop<space workgroup>>
      %acc = nn_loop.alloc : memref<1xvector<4xf32>, #nn_loop<space private>>
      %x = nn_loop.load %a[%i, %j] : memref<5x8xf32> -> vector<4xf32>
      %s = nn_loop.load %b[%j] : memref<8xf32> -> f32
      %v = nn_loop.splat %s : f32 -> vector<4xf32>
      %y = arith.addf %x, %v : vector<4xf32>
      %zero = arith.constant 0 : index
      nn_loop.store %y, %acc[%zero] : vector<4xf32>, memref<1xvector<4xf32>, #nn_loop<space private>>
      %l = nn_loop.extract %y {lane = 3 : i64} : vector<4xf32> -> f32
      %m = nn_loop.reduce_lanes max %y : vector<4xf32> -> f32
      nn_loop.store %m, %wg[%zero, %zero] : f32, memref<2x8xf32, #nn_loop<space workgroup>>
      nn_loop.barrier
      %four = arith.constant 4 : index
      %p = arith.cmpi slt, %j, %four : index
      nn_loop.if %p {
        nn_loop.store %y, %c[%i, %j] : vector<4xf32>, memref<5x8xf32>
      }
    }
  }
}
nn_loop.kernel @k1(%a: memref<5x8xf32> read_write) kind "reduce" target "wasm" {
  nn_loop.for %r = 0 to 5 map "thread" {
    nn_loop.for %k = 0 to 8 {
      %x = nn_loop.load %a[%r, %k] : memref<5x8xf32> -> f32
      nn_loop.store %x, %a[%r, %k] : f32, memref<5x8xf32>
    }
  }
}
func.func @main(%in: memref<5x8xf32>, %out: memref<40xf32>) attributes {nnjit.num_outputs = 1 : i64} {
  %w = nn_loop.weight "decoder.bias" : memref<8xf32>
  %c = nn_loop.constant dense<[1, 2]> : tensor<2xi32> : memref<2xi32>
  %t = nn_loop.buffer : memref<5x8xf32>
  nn_loop.launch @k0(%in, %w, %t) : memref<5x8xf32>, memref<8xf32>, memref<5x8xf32>
  nn_loop.launch @k1(%t) : memref<5x8xf32>
  %v = nn_loop.view %t : memref<5x8xf32> -> memref<40xf32>
  func.return
}

// CHECK:      nn_loop.kernel @k0(%a: memref<5x8xf32> read, %b: memref<8xf32> read, %c: memref<5x8xf32> write) kind "elementwise" target "wgsl" schedule {vec = 4 : i64, workgroup = array<i64: 8>} {
// CHECK-NEXT: nn_loop.for %i = 0 to 5 map "workgroup.x" {
// CHECK-NEXT: nn_loop.for %j = 0 to 8 step 4 map "invocation.x" unroll 2 {
// CHECK-NEXT: %wg = nn_loop.alloc : memref<2x8xf32, #nn_loop<space workgroup>>
// CHECK-NEXT: %acc = nn_loop.alloc : memref<1xvector<4xf32>, #nn_loop<space private>>
// CHECK-NEXT: %x = nn_loop.load %a[%i, %j] : memref<5x8xf32> -> vector<4xf32>
// CHECK-NEXT: %s = nn_loop.load %b[%j] : memref<8xf32> -> f32
// CHECK-NEXT: %v = nn_loop.splat %s : f32 -> vector<4xf32>
// CHECK-NEXT: %y = arith.addf %x, %v : vector<4xf32>
// CHECK-NEXT: %zero = arith.constant 0 : index
// CHECK-NEXT: nn_loop.store %y, %acc[%zero] : vector<4xf32>, memref<1xvector<4xf32>, #nn_loop<space private>>
// CHECK-NEXT: %l = nn_loop.extract %y {lane = 3 : i64} : vector<4xf32> -> f32
// CHECK-NEXT: %m = nn_loop.reduce_lanes max %y : vector<4xf32> -> f32
// CHECK-NEXT: nn_loop.store %m, %wg[%zero, %zero] : f32, memref<2x8xf32, #nn_loop<space workgroup>>
// CHECK-NEXT: nn_loop.barrier
// CHECK-NEXT: %four = arith.constant 4 : index
// CHECK-NEXT: %p = arith.cmpi slt, %j, %four : index
// CHECK-NEXT: nn_loop.if %p {
// CHECK-NEXT: nn_loop.store %y, %c[%i, %j] : vector<4xf32>, memref<5x8xf32>
// CHECK-NEXT: }
// CHECK-NEXT: }
// CHECK-NEXT: }
// CHECK-NEXT: }
// CHECK-NEXT: nn_loop.kernel @k1(%a: memref<5x8xf32> read_write) kind "reduce" target "wasm" {
// CHECK-NEXT: nn_loop.for %r = 0 to 5 map "thread" {
// CHECK-NEXT: nn_loop.for %k = 0 to 8 {
// CHECK-NEXT: %x = nn_loop.load %a[%r, %k] : memref<5x8xf32> -> f32
// CHECK-NEXT: nn_loop.store %x, %a[%r, %k] : f32, memref<5x8xf32>
// CHECK-NEXT: }
// CHECK-NEXT: }
// CHECK-NEXT: }
// CHECK-NEXT: func.func @main(%in: memref<5x8xf32>, %out: memref<40xf32>) attributes {nnjit.num_outputs = 1 : i64} {
// CHECK-NEXT: %w = nn_loop.weight "decoder.bias" : memref<8xf32>
// CHECK-NEXT: %c = nn_loop.constant dense<[1, 2]> : tensor<2xi32> : memref<2xi32>
// CHECK-NEXT: %t = nn_loop.buffer : memref<5x8xf32>
// CHECK-NEXT: nn_loop.launch @k0(%in, %w, %t) : memref<5x8xf32>, memref<8xf32>, memref<5x8xf32>
// CHECK-NEXT: nn_loop.launch @k1(%t) : memref<5x8xf32>
// CHECK-NEXT: %v = nn_loop.view %t : memref<5x8xf32> -> memref<40xf32>
// CHECK-NEXT: func.return
// CHECK-NEXT: }

// GENERIC:      "nn_loop.kernel"() <{sym_name = "k0", access = [#nn_loop<access read>, #nn_loop<access read>, #nn_loop<access write>], kind = "elementwise", target = #nn_loop<target wgsl>, schedule = {vec = 4 : i64, workgroup = array<i64: 8>}}> ({
// GENERIC-NEXT: ^bb0(%{{.*}}: memref<5x8xf32>, %{{.*}}: memref<8xf32>, %{{.*}}: memref<5x8xf32>):
// GENERIC-NEXT:   "nn_loop.for"() <{lb = 0 : i64, ub = 5 : i64, step = 1 : i64, map = #nn_loop<map workgroup.x>, unroll = 1 : i64}> ({
// GENERIC-NEXT:   ^bb0(%{{.*}}: index):
// GENERIC-NEXT:     "nn_loop.for"() <{lb = 0 : i64, ub = 8 : i64, step = 4 : i64, map = #nn_loop<map invocation.x>, unroll = 2 : i64}> ({
// GENERIC:          "nn_loop.alloc"() : () -> memref<2x8xf32, #nn_loop<space workgroup>>
// GENERIC:          "nn_loop.load"(%{{.*}}, %{{.*}}, %{{.*}}) : (memref<5x8xf32>, index, index) -> vector<4xf32>
// GENERIC:          "nn_loop.splat"(%{{.*}}) : (f32) -> vector<4xf32>
// GENERIC:          "nn_loop.extract"(%{{.*}}) <{lane = 3 : i64}> : (vector<4xf32>) -> f32
// GENERIC:          "nn_loop.reduce_lanes"(%{{.*}}) <{kind = #nn_loop<reduction max>}> : (vector<4xf32>) -> f32
// GENERIC:          "nn_loop.barrier"() : () -> ()
// GENERIC:          "nn_loop.if"(%{{.*}}) ({
// GENERIC-NEXT:       "nn_loop.store"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) : (vector<4xf32>, memref<5x8xf32>, index, index) -> ()
// GENERIC-NEXT:       "nn_loop.yield"() : () -> ()
// GENERIC-NEXT:     }) : (i1) -> ()
// GENERIC:      "nn_loop.kernel"() <{sym_name = "k1", access = [#nn_loop<access read_write>], kind = "reduce", target = #nn_loop<target wasm>, schedule = {}}>
// GENERIC:      "nn_loop.weight"() <{key = "decoder.bias"}> : () -> memref<8xf32>
// GENERIC:      "nn_loop.constant"() <{value = dense<[1, 2]> : tensor<2xi32>}> : () -> memref<2xi32>
// GENERIC:      "nn_loop.buffer"() : () -> memref<5x8xf32>
// GENERIC:      "nn_loop.launch"(%{{.*}}, %{{.*}}, %{{.*}}) <{callee = @k0}> : (memref<5x8xf32>, memref<8xf32>, memref<5x8xf32>) -> ()
// GENERIC:      "nn_loop.view"(%{{.*}}) : (memref<5x8xf32>) -> memref<40xf32>

/// dot_i16x2 of an i16 pair splat and 8 int8 weights widened at the load (nn_tensor.matmul_q8p).
nn_loop.kernel @k2(%a: memref<4xi32> read, %b: memref<2x16xi8> read, %c: memref<4xi32> write) kind "matmul" target "wasm" {
  %zero = arith.constant 0 : index
  %one = arith.constant 1 : index
  %lo = nn_loop.load %a[%zero] : memref<4xi32> -> i32
  %hi = nn_loop.load %a[%one] : memref<4xi32> -> i32
  %pair = nn_loop.pair_splat %lo, %hi : vector<4xi32>
  %w = nn_loop.load %b[%zero, %zero] : memref<2x16xi8> -> vector<8xi16>
  %acc = nn_loop.load %c[%zero] : memref<4xi32> -> vector<4xi32>
  %d = nn_loop.dot_i16x2 %pair, %w, %acc : vector<8xi16>, vector<4xi32>
  nn_loop.store %d, %c[%zero] : vector<4xi32>, memref<4xi32>
}
// CHECK-LABEL: nn_loop.kernel @k2
// CHECK:         %[[W:.*]] = nn_loop.load %{{.*}}[%{{.*}}, %{{.*}}] : memref<2x16xi8> -> vector<8xi16>
// CHECK:         nn_loop.dot_i16x2 %{{.*}}, %[[W]], %{{.*}} : vector<8xi16>, vector<4xi32>
// GENERIC-LABEL: sym_name = "k2"
// GENERIC:       "nn_loop.dot_i16x2"(%{{.*}}, %{{.*}}, %{{.*}}) : (vector<4xi32>, vector<8xi16>, vector<4xi32>) -> vector<4xi32>
