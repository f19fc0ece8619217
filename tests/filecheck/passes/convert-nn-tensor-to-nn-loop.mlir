// RUN: nnjit-opt %s --split-input-file -p convert-nn-tensor-to-nn-loop | filecheck %s
// RUN: nnjit-opt %s --split-input-file -p 'convert-nn-tensor-to-nn-loop{vec=1}' | filecheck %s --check-prefix=VEC1
// RUN: nnjit-opt %s --split-input-file -p 'convert-nn-tensor-to-nn-loop{target=wasm rows=1}' | filecheck %s --check-prefix=WASM
// RUN: nnjit-opt %s --split-input-file -p 'convert-nn-tensor-to-nn-loop{target=wasm}' | filecheck %s --check-prefix=WASMDEF
// RUN: nnjit-opt %s --split-input-file -p 'convert-nn-tensor-to-nn-loop{rows=2 workgroup=4}' | filecheck %s --check-prefix=ROWS2
// RUN: nnjit-opt %s --split-input-file -p 'convert-nn-tensor-to-nn-loop{target=wasm rows=2}' | filecheck %s --check-prefix=WASMROWS2

/// Each schedule option changes the IR. The kernel records the effective options, so it can
/// be regenerated from its `schedule` alone.

/// Elementwise, wgsl (default): the output in units of vector<4xf32>, one unit per invocation
/// of a 1-D workgroup; the unit index is taken apart into (row, column).
// CHECK:      nn_loop.kernel @k0_elementwise(%in0: memref<2x8xf32> read, %in1: memref<8xf32> read, %out: memref<2x8xf32> write) kind "elementwise" target "wgsl" schedule {workgroup = array<i64: 4>, tile = array<i64: 16>, vec = 4 : i64} {
// CHECK-NEXT:   nn_loop.for %wg = 0 to 1 map "workgroup.x" {
// CHECK-NEXT:     nn_loop.for %lane = 0 to 4 map "invocation.x" {
// CHECK:            %[[ROW:.*]] = arith.divsi
// CHECK:            %[[COL:.*]] = arith.muli
// CHECK-NEXT:       %[[X:.*]] = nn_loop.load %in0[%[[ROW]], %[[COL]]] : memref<2x8xf32> -> vector<4xf32>
// CHECK-NEXT:       %[[B:.*]] = nn_loop.load %in1[%[[COL]]] : memref<8xf32> -> vector<4xf32>
// CHECK-NEXT:       %[[S:.*]] = arith.addf %[[X]], %[[B]] : vector<4xf32>
// CHECK-NEXT:       nn_loop.store %[[S]], %out[%[[ROW]], %[[COL]]] : vector<4xf32>, memref<2x8xf32>
/// @main is destination-passing: the result goes straight into the output argument.
// CHECK:      func.func @main(%[[A0:.*]]: memref<2x8xf32>, %[[A1:.*]]: memref<8xf32>, %[[A2:.*]]: memref<2x8xf32>) attributes {nnjit.num_outputs = 1 : i64} {
// CHECK-NEXT:   nn_loop.launch @k0_elementwise(%[[A0]], %[[A1]], %[[A2]]) : memref<2x8xf32>, memref<8xf32>, memref<2x8xf32>
// CHECK-NEXT:   func.return

/// vec=1: scalars, one element per invocation (16 of them).
// VEC1:       kind "elementwise" target "wgsl" schedule {workgroup = array<i64: 16>, tile = array<i64: 16>, vec = 1 : i64}
// VEC1:         nn_loop.for %lane = 0 to 16 map "invocation.x" {
// VEC1-NOT:       vector
// VEC1:           nn_loop.load %in0[%{{.*}}, %{{.*}}] : memref<2x8xf32> -> f32
// VEC1:           arith.addf %{{.*}}, %{{.*}} : f32

/// wasm rows=1: a "thread" loop over rows, then vector<4xf32> steps along the row.
// WASM:       kind "elementwise" target "wasm" schedule {vec = 4 : i64, rows = 1 : i64} {
// WASM-NEXT:    nn_loop.for %row = 0 to 2 map "thread" {
// WASM-NEXT:      nn_loop.for %j = 0 to 8 step 4 {
// WASM-NEXT:        nn_loop.load %in0[%row, %j] : memref<2x8xf32> -> vector<4xf32>
// WASM-NOT:     workgroup

/// wasm default: an output of at most 131072 elements is one chunk (one thread-loop
/// iteration with all the rows: one thread).
// WASMDEF:    kind "elementwise" target "wasm" schedule {vec = 4 : i64, rows = 2 : i64} {
// WASMDEF-NEXT: nn_loop.for %row0 = 0 to 2 step 2 map "thread" {
// WASMDEF-NEXT:   nn_loop.for %rr = 0 to 2 {

/// workgroup=4 (rows does not apply to elementwise kernels: it is not recorded).
// ROWS2:      kind "elementwise" target "wgsl" schedule {workgroup = array<i64: 4>, tile = array<i64: 16>, vec = 4 : i64}

/// wasm rows=2: each thread-loop iteration does two rows.
// WASMROWS2:  kind "elementwise" target "wasm" schedule {vec = 4 : i64, rows = 2 : i64} {
// WASMROWS2-NEXT: nn_loop.for %row0 = 0 to 2 step 2 map "thread" {
// WASMROWS2-NEXT:   nn_loop.for %rr = 0 to 2 {
func.func @main(%x: tensor<2x8xf32>, %b: tensor<8xf32>) -> tensor<2x8xf32> {
  %y = nn_tensor.add %x, %b : (tensor<2x8xf32>, tensor<8xf32>) -> tensor<2x8xf32>
  func.return %y : tensor<2x8xf32>
}

// -----

/// Softmax, wgsl: one row per workgroup; each invocation reduces its share of the row
/// (vector steps), then a tree over workgroup memory combines the partials (barriers).
// CHECK:      nn_loop.kernel @k0_softmax(%in0: memref<3x16xf32> read, %out: memref<3x16xf32> write) kind "softmax" target "wgsl" schedule {workgroup = array<i64: 4>, vec = 4 : i64, rows = 1 : i64} {
// CHECK-NEXT:   nn_loop.for %wg = 0 to 3 map "workgroup.x" {
// CHECK-NEXT:     nn_loop.for %lane = 0 to 4 map "invocation.x" {
// CHECK-NEXT:       %partials = nn_loop.alloc : memref<1x4xf32, #nn_loop<space workgroup>>
// CHECK:            %acc = nn_loop.alloc : memref<1xvector<4xf32>, #nn_loop<space private>>
// CHECK:            nn_loop.load %in0[%wg, %{{.*}}] : memref<3x16xf32> -> vector<4xf32>
// CHECK:            arith.maximumf %{{.*}}, %{{.*}} : vector<4xf32>
// CHECK:            nn_loop.reduce_lanes max %{{.*}} : vector<4xf32> -> f32
// CHECK:            nn_loop.store %{{.*}}, %partials[%{{.*}}, %lane]
// CHECK-NEXT:       nn_loop.barrier
// CHECK:            math.exp %{{.*}} : vector<4xf32>
// CHECK:            nn_loop.reduce_lanes add %{{.*}} : vector<4xf32> -> f32
// CHECK:            nn_loop.barrier
// CHECK:            arith.divf
// CHECK:            nn_loop.store %{{.*}}, %out[%wg, %{{.*}}] : vector<4xf32>, memref<3x16xf32>

/// vec=1: scalar loads, 16 invocations, a 4-step tree.
// VEC1:       kind "softmax" target "wgsl" schedule {workgroup = array<i64: 16>, vec = 1 : i64, rows = 1 : i64}
// VEC1:         %partials = nn_loop.alloc : memref<1x16xf32, #nn_loop<space workgroup>>
// VEC1:         nn_loop.load %in0[%wg, %lane] : memref<3x16xf32> -> f32

/// wasm rows=1: a thread loop over rows; serial vector passes; no workgroup memory, no barrier.
/// The max pass takes the integer max and min of the f32 bits (lanes extracted at the end);
/// the sum pass computes exp(x - max) inline (FMAs, no math.exp) and stores it to the output,
/// the last pass scales the output by 1 / sum.
// WASM:       kind "softmax" target "wasm" schedule {vec = 4 : i64, rows = 1 : i64} {
// WASM-NEXT:    nn_loop.for %row = 0 to 3 map "thread" {
// WASM-NEXT:      %hi = nn_loop.alloc : memref<1xvector<4xi32>, #nn_loop<space private>>
// WASM-NEXT:      %lo = nn_loop.alloc : memref<1xvector<4xi32>, #nn_loop<space private>>
// WASM:           nn_loop.for %j = 0 to 16 step 4 {
// WASM:             arith.bitcast %{{.*}} : vector<4xf32> to vector<4xi32>
// WASM:             arith.maxsi
// WASM:             arith.minsi
// WASM:           nn_loop.extract
// WASM:           arith.select
// WASM:           nn_loop.for %j{{.*}} = 0 to 16 step 8 {
// WASM-NOT:         math.exp
// WASM:             math.fma
// WASM:             nn_loop.store %{{.*}}, %out
// WASM-NOT:       nn_loop.barrier
// WASM:           nn_loop.reduce_lanes add %{{.*}}
// WASM:           arith.divf
// WASM:           nn_loop.for %j{{.*}} = 0 to 16 step 4 {
// WASM:             nn_loop.load %out
// WASM:             arith.mulf
// WASM:             nn_loop.store %{{.*}}, %out
// WASM-NOT:       nn_loop.barrier
// WASM:         func.func @main

/// rows=2: two rows per workgroup (invocation.y), the last workgroup's second row is past
/// the end: it computes a clamped row and does not store.
// ROWS2:      kind "softmax" target "wgsl" schedule {workgroup = array<i64: 4>, vec = 4 : i64, rows = 2 : i64} {
// ROWS2-NEXT:   nn_loop.for %wg = 0 to 2 map "workgroup.x" {
// ROWS2-NEXT:     nn_loop.for %slot = 0 to 2 map "invocation.y" {
// ROWS2-NEXT:       nn_loop.for %lane = 0 to 4 map "invocation.x" {
// ROWS2-NEXT:         %partials = nn_loop.alloc : memref<2x4xf32, #nn_loop<space workgroup>>
// ROWS2:              %row = arith.addi %{{.*}}, %slot : index
// ROWS2:              %[[VALID:.*]] = arith.cmpi slt, %row, %{{.*}} : index
// ROWS2-NEXT:         %row_c = arith.minsi %row, %{{.*}} : index
// ROWS2:              nn_loop.store %{{.*}}, %partials[%slot, %lane]
// ROWS2:              nn_loop.if %[[VALID]] {
// ROWS2:                nn_loop.store %{{.*}}, %out[%row_c, %{{.*}}]

/// wasm rows=2: two rows per thread-loop iteration, the ragged one guarded.
// WASMROWS2:  kind "softmax" target "wasm" schedule {vec = 4 : i64, rows = 2 : i64} {
// WASMROWS2-NEXT: nn_loop.for %row0 = 0 to 4 step 2 map "thread" {
// WASMROWS2-NEXT:   nn_loop.for %rr = 0 to 2 {
// WASMROWS2:          nn_loop.if
func.func @main(%x: tensor<3x16xf32>) -> tensor<3x16xf32> {
  %y = nn_tensor.softmax %x {axis = 1 : i64} : tensor<3x16xf32> -> tensor<3x16xf32>
  func.return %y : tensor<3x16xf32>
}

// -----

/// The model level: i64 and i1 tensors are i32 buffers; weights, constants, views; a fused
/// op's own `schedule` (vec = 1) wins over the pass options; outputs that are views or
/// inputs get copy kernels; names of inputs and outputs are kept for the plan.
// CHECK:      nn_loop.kernel @k0_gather(%in0: memref<10x8xf32> read, %in1: memref<4xi32> read, %out: memref<4x8xf32> write) kind "gather"
// CHECK:        %[[I:.*]] = nn_loop.load %in1[%{{.*}}] : memref<4xi32> -> i32
// CHECK:        %[[IX:.*]] = arith.index_cast %{{.*}} : i32 to index
// CHECK-NEXT:   nn_loop.load %in0[%[[IX]], %{{.*}}] : memref<10x8xf32> -> vector<4xf32>
// CHECK:      nn_loop.kernel @k1_elementwise(%in0: memref<4x8xf32> read, %in1: memref<1x8xf32> read, %out: memref<4x8xf32> write) kind "elementwise" target "wgsl" schedule {workgroup = array<i64: 32>, tile = array<i64: 32>, vec = 1 : i64}
// CHECK:      nn_loop.kernel @k2_copy(%in0: memref<2x16xf32> read, %out: memref<2x16xf32> write) kind "copy"
// CHECK:      nn_loop.kernel @k3_copy(%in0: memref<4xi32> read, %out: memref<4xi32> write) kind "copy"
// CHECK:      func.func @main(%[[IDS:.*]]: memref<4xi32>, %[[M:.*]]: memref<4xi32>, %[[O0:.*]]: memref<4x8xf32>, %[[O1:.*]]: memref<2x16xf32>, %[[O2:.*]]: memref<4xi32>) attributes {nnjit.input_names = ["ids", "m"], nnjit.output_names = ["emb", "flat", "m"], nnjit.num_outputs = 3 : i64} {
// CHECK-NEXT:   %[[W:.*]] = nn_loop.weight "word_embeddings" : memref<10x8xf32>
// CHECK-NEXT:   %[[C:.*]] = nn_loop.constant dense<{{.*}}> : tensor<1x8xf32> : memref<1x8xf32>
// CHECK-NEXT:   %[[T:.*]] = nn_loop.buffer : memref<4x8xf32>
// CHECK-NEXT:   nn_loop.launch @k0_gather(%[[W]], %[[IDS]], %[[T]])
// CHECK-NEXT:   nn_loop.launch @k1_elementwise(%[[T]], %[[C]], %[[O0]])
// CHECK-NEXT:   %[[V:.*]] = nn_loop.view %[[O0]] : memref<4x8xf32> -> memref<2x16xf32>
// CHECK-NEXT:   nn_loop.launch @k2_copy(%[[V]], %[[O1]])
// CHECK-NEXT:   nn_loop.launch @k3_copy(%[[M]], %[[O2]])
// CHECK-NEXT:   func.return

// VEC1:       nn_loop.kernel @k0_gather
// VEC1-SAME:    schedule {workgroup = array<i64: 32>, tile = array<i64: 32>, vec = 1 : i64}
// WASM:       nn_loop.kernel @k0_gather
// WASM-SAME:    target "wasm" schedule {vec = 4 : i64, rows = 1 : i64}
// WASM:       nn_loop.kernel @k1_elementwise
// WASM-SAME:    target "wasm" schedule {vec = 1 : i64, rows = 1 : i64}
func.func @main(%ids: tensor<4xi64>, %m: tensor<4xi1>) -> (tensor<4x8xf32>, tensor<2x16xf32>, tensor<4xi1>) attributes {nnjit.input_names = ["ids", "m"], nnjit.output_names = ["emb", "flat", "m"]} {
  %w = nn_tensor.weight "word_embeddings" : tensor<10x8xf32>
  %s = nn_tensor.constant dense<[[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]]> : tensor<1x8xf32>
  %g = nn_tensor.gather %w, %ids {axis = 0 : i64} : (tensor<10x8xf32>, tensor<4xi64>) -> tensor<4x8xf32>
  %e = nn_tensor.fused %g, %s {kind = "elementwise", schedule = {vec = 1 : i64}} : (tensor<4x8xf32>, tensor<1x8xf32>) -> tensor<4x8xf32> {
  ^bb0(%a: tensor<4x8xf32>, %c: tensor<1x8xf32>):
    %p = nn_tensor.mul %a, %c : (tensor<4x8xf32>, tensor<1x8xf32>) -> tensor<4x8xf32>
    nn_tensor.yield %p : tensor<4x8xf32>
  }
  %r = nn_tensor.reshape %e : tensor<4x8xf32> -> tensor<2x16xf32>
  func.return %e, %r, %m : tensor<4x8xf32>, tensor<2x16xf32>, tensor<4xi1>
}

// -----

/// GELU: x/2 (1 + erf(x / sqrt(2))) as math.erf, an add and a product on both targets
/// (nn-loop-expand-math writes erf out per target later), no math.exp, no multiply-add.
// CHECK:      kind "elementwise" target "wgsl"
// CHECK:        %[[E:.*]] = math.erf %{{.*}} : vector<4xf32>
// CHECK:        %[[S:.*]] = arith.addf %{{.*}}, %[[E]] : vector<4xf32>
// CHECK:        arith.mulf %{{.*}}, %[[S]] : vector<4xf32>
// WASM:       kind "elementwise" target "wasm"
// WASM:         %[[E:.*]] = math.erf %{{.*}} : vector<4xf32>
// WASM:         %[[S:.*]] = arith.addf %{{.*}}, %[[E]] : vector<4xf32>
// WASM:         arith.mulf %{{.*}}, %[[S]] : vector<4xf32>
// WASM-NOT:     math.exp
// WASM:       func.func @main
func.func @main(%x: tensor<2x8xf32>) -> tensor<2x8xf32> {
  %y = nn_tensor.gelu %x : tensor<2x8xf32> -> tensor<2x8xf32>
  func.return %y : tensor<2x8xf32>
}
