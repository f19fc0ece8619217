// RUN: nnjit-opt %s -p 'nn-tensor-integer-matmul{dot=i8}' | filecheck %s
// RUN: nnjit-opt %s -p 'nn-tensor-integer-matmul{dot=i8},nn-tensor-pack-weights' | filecheck %s --check-prefix=PACK
// RUN: nnjit-opt %s -p nn-tensor-integer-matmul | filecheck %s --check-prefix=I16

/// MatMulInteger's form: the elementwise kernel of A (q minus its zero point) writes i32, B is
/// read in i16 pairs (entry "w#i16x2", ceil(5 / 2) = 3 word rows) and the i32 product is cast
/// back to float32 before the epilogue. The float weight goes: nothing else reads it.
// CHECK-LABEL: func.func @centred_times_weight
// CHECK:         %[[A:.*]] = nn_tensor.fused %{{.*}}, %{{.*}} {kind = "elementwise"} : (tensor<3x5xi32>, tensor<i32>) -> tensor<3x5xi32> {
// CHECK:           %[[D:.*]] = nn_tensor.sub
// CHECK-NEXT:      %[[I:.*]] = nn_tensor.cast %[[D]] : tensor<3x5xf32> -> tensor<3x5xi32>
// CHECK-NEXT:      nn_tensor.yield %[[I]] : tensor<3x5xi32>
// CHECK-NOT:     nn_tensor.weight "w" :
// CHECK:         %[[W:.*]] = nn_tensor.weight "w#i16x2" : tensor<3x8xi32>
// CHECK-NEXT:    nn_tensor.fused %[[A]], %[[W]], %{{.*}} {kind = "matmul"} : (tensor<3x5xi32>, tensor<3x8xi32>, tensor<f32>) -> tensor<3x8xf32> {
// CHECK-NEXT:    ^{{.*}}(%[[X:.*]]: tensor<3x5xi32>, %[[Y:.*]]: tensor<3x8xi32>, %[[S:.*]]: tensor<f32>):
// CHECK-NEXT:      %[[P:.*]] = nn_tensor.matmul_i16 %[[X]], %[[Y]] : (tensor<3x5xi32>, tensor<3x8xi32>) -> tensor<3x8xi32>
// CHECK-NEXT:      %[[F:.*]] = nn_tensor.cast %[[P]] : tensor<3x8xi32> -> tensor<3x8xf32>
// CHECK-NEXT:      nn_tensor.mul %[[F]], %[[S]]
/// nn-tensor-pack-weights (next in the Wasm pipeline) stores the words in panels of 8 columns
/// as it does float weights: [N/8, ceil(K / 2), 8].
// PACK-LABEL: func.func @centred_times_weight
// PACK:         %[[P:.*]] = nn_tensor.weight "w#i16x2#pack=kn8" : tensor<1x3x8xi32>
// PACK:         nn_tensor.fused %{{.*}}, %{{.*}}, %[[P]] {kind = "matmul"}
// PACK:           nn_tensor.transpose %{{.*}} {perm = array<i64: 1, 0, 2>} : tensor<1x3x8xi32> -> tensor<3x1x8xi32>
// PACK:           nn_tensor.matmul_i16
func.func @centred_times_weight(%q: tensor<3x5xi32>, %z: tensor<i32>, %s: tensor<f32>) -> tensor<3x8xf32> {
  %a = nn_tensor.fused %q, %z {kind = "elementwise"} : (tensor<3x5xi32>, tensor<i32>) -> tensor<3x5xf32> {
  ^bb0(%x: tensor<3x5xi32>, %y: tensor<i32>):
    %xf = nn_tensor.cast %x : tensor<3x5xi32> -> tensor<3x5xf32>
    %yf = nn_tensor.cast %y : tensor<i32> -> tensor<f32>
    %d = nn_tensor.sub %xf, %yf : (tensor<3x5xf32>, tensor<f32>) -> tensor<3x5xf32>
    nn_tensor.yield %d : tensor<3x5xf32>
  }
  %w = nn_tensor.weight "w" : tensor<5x8xf32>
  %f = nn_tensor.fused %a, %w, %s {kind = "matmul"} : (tensor<3x5xf32>, tensor<5x8xf32>, tensor<f32>) -> tensor<3x8xf32> {
  ^bb0(%x: tensor<3x5xf32>, %b: tensor<5x8xf32>, %t: tensor<f32>):
    %m = nn_tensor.matmul %x, %b {nn_tensor.integer_operands} : (tensor<3x5xf32>, tensor<5x8xf32>) -> tensor<3x8xf32>
    %r = nn_tensor.mul %m, %t : (tensor<3x8xf32>, tensor<f32>) -> tensor<3x8xf32>
    nn_tensor.yield %r : tensor<3x8xf32>
  }
  func.return %f : tensor<3x8xf32>
}

/// A reshape between A's kernel and the matmul (a batch folded into rows) becomes an i32
/// reshape; a weight that two matmuls read is stored in pairs once.
// CHECK-LABEL: func.func @through_reshape_shared_weight
// CHECK:         %[[A:.*]] = nn_tensor.fused %{{.*}} {kind = "elementwise"} : (tensor<1x2x4xi32>) -> tensor<1x2x4xi32>
// CHECK:         %[[R:.*]] = nn_tensor.reshape %[[A]] : tensor<1x2x4xi32> -> tensor<2x4xi32>
// CHECK:         %[[W:.*]] = nn_tensor.weight "v#i16x2" : tensor<2x4xi32>
// CHECK-NOT:     nn_tensor.weight
// CHECK:         nn_tensor.fused %[[R]], %[[W]] {kind = "matmul"}
// CHECK:         nn_tensor.fused %{{.*}}, %[[W]] {kind = "matmul"}
func.func @through_reshape_shared_weight(%q: tensor<1x2x4xi32>, %p: tensor<2x4xi32>) -> (tensor<2x4xf32>, tensor<2x4xf32>) {
  %a = nn_tensor.fused %q {kind = "elementwise"} : (tensor<1x2x4xi32>) -> tensor<1x2x4xf32> {
  ^bb0(%x: tensor<1x2x4xi32>):
    %xf = nn_tensor.cast %x : tensor<1x2x4xi32> -> tensor<1x2x4xf32>
    nn_tensor.yield %xf : tensor<1x2x4xf32>
  }
  %a2 = nn_tensor.reshape %a : tensor<1x2x4xf32> -> tensor<2x4xf32>
  %c = nn_tensor.fused %p {kind = "elementwise"} : (tensor<2x4xi32>) -> tensor<2x4xf32> {
  ^bb0(%x: tensor<2x4xi32>):
    %xf = nn_tensor.cast %x : tensor<2x4xi32> -> tensor<2x4xf32>
    nn_tensor.yield %xf : tensor<2x4xf32>
  }
  %w = nn_tensor.weight "v" : tensor<4x4xf32>
  %f = nn_tensor.fused %a2, %w {kind = "matmul"} : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32> {
  ^bb0(%x: tensor<2x4xf32>, %b: tensor<4x4xf32>):
    %m = nn_tensor.matmul %x, %b {nn_tensor.integer_operands} : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
    nn_tensor.yield %m : tensor<2x4xf32>
  }
  %g = nn_tensor.fused %c, %w {kind = "matmul"} : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32> {
  ^bb0(%x: tensor<2x4xf32>, %b: tensor<4x4xf32>):
    %m = nn_tensor.matmul %x, %b {nn_tensor.integer_operands} : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
    nn_tensor.yield %m : tensor<2x4xf32>
  }
  func.return %f, %g : tensor<2x4xf32>, tensor<2x4xf32>
}

/// A constant B (a small weight held in the IR) is packed in the IR: in byte quads when its
/// values fit int8 (word 0x00030201 = 197121: bytes 1, 2, 3, 0; the bias row -256 * 6).
// CHECK-LABEL: func.func @constant_weight
// CHECK:         nn_tensor.constant dense<{{\[\[}}197121, 197121, 197121, 197121], [-1536, -1536, -1536, -1536]]> : tensor<2x4xi32>
// CHECK:         nn_tensor.matmul_i8
func.func @constant_weight(%q: tensor<2x3xi32>) -> tensor<2x4xf32> {
  %a = nn_tensor.fused %q {kind = "elementwise"} : (tensor<2x3xi32>) -> tensor<2x3xf32> {
  ^bb0(%x: tensor<2x3xi32>):
    %xf = nn_tensor.cast %x : tensor<2x3xi32> -> tensor<2x3xf32>
    nn_tensor.yield %xf : tensor<2x3xf32>
  }
  %w = nn_tensor.constant dense<[[1.0, 1.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0], [3.0, 3.0, 3.0, 3.0]]> : tensor<3x4xf32>
  %f = nn_tensor.fused %a, %w {kind = "matmul"} : (tensor<2x3xf32>, tensor<3x4xf32>) -> tensor<2x4xf32> {
  ^bb0(%x: tensor<2x3xf32>, %b: tensor<3x4xf32>):
    %m = nn_tensor.matmul %x, %b {nn_tensor.integer_operands} : (tensor<2x3xf32>, tensor<3x4xf32>) -> tensor<2x4xf32>
    nn_tensor.yield %m : tensor<2x4xf32>
  }
  func.return %f : tensor<2x4xf32>
}

/// Left alone: an unmarked matmul; A's kernel also read elsewhere; B computed at run time;
/// fewer than 4 columns (the integer kernel reads B in vectors of 4); a constant B that is not
/// integers.
// CHECK-LABEL: func.func @negative_cases
// CHECK-NOT:     matmul_i16
// CHECK-NOT:     i16x2
// CHECK:         func.return
func.func @negative_cases(%q: tensor<2x4xi32>, %r: tensor<4x4xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x3xf32>, tensor<2x4xf32>) {
  %a = nn_tensor.fused %q {kind = "elementwise"} : (tensor<2x4xi32>) -> tensor<2x4xf32> {
  ^bb0(%x: tensor<2x4xi32>):
    %xf = nn_tensor.cast %x : tensor<2x4xi32> -> tensor<2x4xf32>
    nn_tensor.yield %xf : tensor<2x4xf32>
  }
  %w = nn_tensor.weight "u" : tensor<4x4xf32>
  %f = nn_tensor.fused %a, %w {kind = "matmul"} : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32> {
  ^bb0(%x: tensor<2x4xf32>, %b: tensor<4x4xf32>):
    %m = nn_tensor.matmul %x, %b : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
    nn_tensor.yield %m : tensor<2x4xf32>
  }
  %a2 = nn_tensor.fused %q {kind = "elementwise"} : (tensor<2x4xi32>) -> tensor<2x4xf32> {
  ^bb0(%x: tensor<2x4xi32>):
    %xf = nn_tensor.cast %x : tensor<2x4xi32> -> tensor<2x4xf32>
    nn_tensor.yield %xf : tensor<2x4xf32>
  }
  %g = nn_tensor.fused %a2, %w {kind = "matmul"} : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32> {
  ^bb0(%x: tensor<2x4xf32>, %b: tensor<4x4xf32>):
    %m = nn_tensor.matmul %x, %b {nn_tensor.integer_operands} : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
    nn_tensor.yield %m : tensor<2x4xf32>
  }
  %a3 = nn_tensor.fused %q {kind = "elementwise"} : (tensor<2x4xi32>) -> tensor<2x4xf32> {
  ^bb0(%x: tensor<2x4xi32>):
    %xf = nn_tensor.cast %x : tensor<2x4xi32> -> tensor<2x4xf32>
    nn_tensor.yield %xf : tensor<2x4xf32>
  }
  %h = nn_tensor.fused %a3, %r {kind = "matmul"} : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32> {
  ^bb0(%x: tensor<2x4xf32>, %b: tensor<4x4xf32>):
    %m = nn_tensor.matmul %x, %b {nn_tensor.integer_operands} : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
    nn_tensor.yield %m : tensor<2x4xf32>
  }
  %a4 = nn_tensor.fused %q {kind = "elementwise"} : (tensor<2x4xi32>) -> tensor<2x4xf32> {
  ^bb0(%x: tensor<2x4xi32>):
    %xf = nn_tensor.cast %x : tensor<2x4xi32> -> tensor<2x4xf32>
    nn_tensor.yield %xf : tensor<2x4xf32>
  }
  %w3 = nn_tensor.weight "narrow" : tensor<4x3xf32>
  %i = nn_tensor.fused %a4, %w3 {kind = "matmul"} : (tensor<2x4xf32>, tensor<4x3xf32>) -> tensor<2x3xf32> {
  ^bb0(%x: tensor<2x4xf32>, %b: tensor<4x3xf32>):
    %m = nn_tensor.matmul %x, %b {nn_tensor.integer_operands} : (tensor<2x4xf32>, tensor<4x3xf32>) -> tensor<2x3xf32>
    nn_tensor.yield %m : tensor<2x3xf32>
  }
  %a5 = nn_tensor.fused %q {kind = "elementwise"} : (tensor<2x4xi32>) -> tensor<2x4xf32> {
  ^bb0(%x: tensor<2x4xi32>):
    %xf = nn_tensor.cast %x : tensor<2x4xi32> -> tensor<2x4xf32>
    nn_tensor.yield %xf : tensor<2x4xf32>
  }
  %c = nn_tensor.constant dense<[[0.5, 1.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]]> : tensor<4x4xf32>
  %j = nn_tensor.fused %a5, %c {kind = "matmul"} : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32> {
  ^bb0(%x: tensor<2x4xf32>, %b: tensor<4x4xf32>):
    %m = nn_tensor.matmul %x, %b {nn_tensor.integer_operands} : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
    nn_tensor.yield %m : tensor<2x4xf32>
  }
  func.return %f, %g, %a2, %h, %i, %j : tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x3xf32>, tensor<2x4xf32>
}

/// A weight whose integers fit int8 (the frontend's nn_tensor.int8_rhs) is read in byte quads
/// for the relaxed i8 dot: entry "w#i8x4", ceil(5 / 4) + 1 = 3 word rows (the last: the
/// bias row); the default, dot=i16, keeps it on the i16 pairs.
// CHECK-LABEL: func.func @int8_weight_on_quads
// CHECK:         %[[W:.*]] = nn_tensor.weight "w#i8x4" : tensor<3x8xi32>
// CHECK-NEXT:    nn_tensor.fused %{{.*}}, %[[W]] {kind = "matmul"} : (tensor<3x5xi32>, tensor<3x8xi32>) -> tensor<3x8xf32> {
// CHECK-NEXT:    ^{{.*}}(%[[X:.*]]: tensor<3x5xi32>, %[[Y:.*]]: tensor<3x8xi32>):
// CHECK-NEXT:      %[[P:.*]] = nn_tensor.matmul_i8 %[[X]], %[[Y]] : (tensor<3x5xi32>, tensor<3x8xi32>) -> tensor<3x8xi32>
// CHECK-NEXT:      nn_tensor.cast %[[P]] : tensor<3x8xi32> -> tensor<3x8xf32>
// PACK-LABEL: func.func @int8_weight_on_quads
// PACK:         nn_tensor.weight "w#i8x4#pack=kn8" : tensor<1x3x8xi32>
// PACK:         nn_tensor.matmul_i8
// I16-LABEL: func.func @int8_weight_on_quads
// I16:         nn_tensor.weight "w#i16x2" : tensor<3x8xi32>
// I16:         nn_tensor.matmul_i16
func.func @int8_weight_on_quads(%q: tensor<3x5xi32>) -> tensor<3x8xf32> {
  %a = nn_tensor.fused %q {kind = "elementwise"} : (tensor<3x5xi32>) -> tensor<3x5xf32> {
  ^bb0(%x: tensor<3x5xi32>):
    %xf = nn_tensor.cast %x : tensor<3x5xi32> -> tensor<3x5xf32>
    nn_tensor.yield %xf : tensor<3x5xf32>
  }
  %w = nn_tensor.weight "w" : tensor<5x8xf32>
  %f = nn_tensor.fused %a, %w {kind = "matmul"} : (tensor<3x5xf32>, tensor<5x8xf32>) -> tensor<3x8xf32> {
  ^bb0(%x: tensor<3x5xf32>, %b: tensor<5x8xf32>):
    %m = nn_tensor.matmul %x, %b {nn_tensor.integer_operands, nn_tensor.int8_rhs} : (tensor<3x5xf32>, tensor<5x8xf32>) -> tensor<3x8xf32>
    nn_tensor.yield %m : tensor<3x8xf32>
  }
  func.return %f : tensor<3x8xf32>
}
