// RUN: nnjit-opt %s -p nn-tensor-pack-weights | filecheck %s
// RUN: nnjit-opt %s -p 'nn-tensor-pack-weights{nr=16}' | filecheck %s --check-prefix=NR16
// RUN: nnjit-opt %s -p 'nn-tensor-pack-weights,nn-tensor-pack-weights' | filecheck %s --check-prefix=TWICE

/// A fused matmul whose B is a weight [K, N] reads it packed in [N/8, K, 8] panels: a new
/// weight entry "w#pack=kn8" replaces the operand and the body unpacks it back to [K, N].
// CHECK-LABEL: func.func @fused_kn
// CHECK-NOT:     nn_tensor.weight "w" :
// CHECK:         %[[P:.*]] = nn_tensor.weight "w#pack=kn8" : tensor<2x5x8xf32>
// CHECK-NEXT:    nn_tensor.fused %{{.*}}, %[[P]] {kind = "matmul"} : (tensor<3x5xf32>, tensor<2x5x8xf32>) -> tensor<3x16xf32> {
// CHECK-NEXT:    ^{{.*}}(%[[X:.*]]: tensor<3x5xf32>, %[[A:.*]]: tensor<2x5x8xf32>):
// CHECK-NEXT:      %[[T:.*]] = nn_tensor.transpose %[[A]] {perm = array<i64: 1, 0, 2>} : tensor<2x5x8xf32> -> tensor<5x2x8xf32>
// CHECK-NEXT:      %[[B:.*]] = nn_tensor.reshape %[[T]] : tensor<5x2x8xf32> -> tensor<5x16xf32>
// CHECK-NEXT:      %[[M:.*]] = nn_tensor.matmul %[[X]], %[[B]]
// CHECK-NEXT:      nn_tensor.gelu %[[M]]
// NR16-LABEL: func.func @fused_kn
// NR16:         nn_tensor.weight "w#pack=kn16" : tensor<1x5x16xf32>
// TWICE-LABEL: func.func @fused_kn
// TWICE:         nn_tensor.weight "w#pack=kn8" : tensor<2x5x8xf32>
// TWICE-NOT:     #pack=kn8#pack
func.func @fused_kn(%x: tensor<3x5xf32>) -> tensor<3x16xf32> {
  %w = nn_tensor.weight "w" : tensor<5x16xf32>
  %f = nn_tensor.fused %x, %w {kind = "matmul"} : (tensor<3x5xf32>, tensor<5x16xf32>) -> tensor<3x16xf32> {
  ^bb0(%a: tensor<3x5xf32>, %b: tensor<5x16xf32>):
    %m = nn_tensor.matmul %a, %b : (tensor<3x5xf32>, tensor<5x16xf32>) -> tensor<3x16xf32>
    %g = nn_tensor.gelu %m : tensor<3x16xf32> -> tensor<3x16xf32>
    nn_tensor.yield %g : tensor<3x16xf32>
  }
  func.return %f : tensor<3x16xf32>
}

/// A lone gemm with transB (B stored [N, K]) is wrapped in a fused op; the panels come from
/// the transposed entry ("nk8") and the body transposes the unpacked [K, N] back to [N, K]
/// for the gemm. The bias stays an operand.
// CHECK-LABEL: func.func @lone_gemm_nk
// CHECK:         %[[P:.*]] = nn_tensor.weight "wt#pack=nk8" : tensor<1x4x8xf32>
// CHECK:         nn_tensor.fused %{{.*}}, %{{.*}}, %[[P]] {kind = "matmul"}
// CHECK:           %[[T:.*]] = nn_tensor.transpose %{{.*}} {perm = array<i64: 1, 0, 2>} : tensor<1x4x8xf32> -> tensor<4x1x8xf32>
// CHECK-NEXT:      %[[R:.*]] = nn_tensor.reshape %[[T]] : tensor<4x1x8xf32> -> tensor<4x8xf32>
// CHECK-NEXT:      %[[S:.*]] = nn_tensor.transpose %[[R]] {perm = array<i64: 1, 0>} : tensor<4x8xf32> -> tensor<8x4xf32>
// CHECK-NEXT:      nn_tensor.gemm %{{.*}}, %[[S]], %{{.*}}
// NR16-LABEL: func.func @lone_gemm_nk
// NR16-NOT:     #pack
// NR16:         func.return
func.func @lone_gemm_nk(%x: tensor<2x4xf32>) -> tensor<2x8xf32> {
  %w = nn_tensor.weight "wt" : tensor<8x4xf32>
  %c = nn_tensor.weight "bias" : tensor<8xf32>
  %g = nn_tensor.gemm %x, %w, %c {alpha = 1.0 : f32, beta = 1.0 : f32, trans_a = 0 : i64, trans_b = 1 : i64} : (tensor<2x4xf32>, tensor<8x4xf32>, tensor<8xf32>) -> tensor<2x8xf32>
  func.return %g : tensor<2x8xf32>
}

/// Two matmuls on the same weight share one packed entry; a weight still used elsewhere
/// (here: returned) keeps its plain entry too.
// CHECK-LABEL: func.func @shared
// CHECK:         nn_tensor.weight "s" : tensor<4x8xf32>
// CHECK-NEXT:    %[[P:.*]] = nn_tensor.weight "s#pack=kn8" : tensor<1x4x8xf32>
// CHECK-NOT:     nn_tensor.weight
// CHECK:         nn_tensor.fused %{{.*}}, %[[P]]
// CHECK:         nn_tensor.fused %{{.*}}, %[[P]]
func.func @shared(%x: tensor<2x4xf32>, %y: tensor<3x4xf32>) -> (tensor<2x8xf32>, tensor<3x8xf32>, tensor<4x8xf32>) {
  %w = nn_tensor.weight "s" : tensor<4x8xf32>
  %a = nn_tensor.matmul %x, %w : (tensor<2x4xf32>, tensor<4x8xf32>) -> tensor<2x8xf32>
  %b = nn_tensor.matmul %y, %w : (tensor<3x4xf32>, tensor<4x8xf32>) -> tensor<3x8xf32>
  func.return %a, %b, %w : tensor<2x8xf32>, tensor<3x8xf32>, tensor<4x8xf32>
}

/// Left alone: N not a multiple of nr, an activation B, a batched (3-D) weight, and a
/// weight that is the A operand.
// CHECK-LABEL: func.func @negative
// CHECK-NOT:     #pack
// CHECK:         func.return
func.func @negative(%x: tensor<2x4xf32>, %y: tensor<4x8xf32>, %z: tensor<3x2x4xf32>) -> (tensor<2x6xf32>, tensor<2x8xf32>, tensor<3x2x8xf32>, tensor<8x8xf32>) {
  %w6 = nn_tensor.weight "n6" : tensor<4x6xf32>
  %a = nn_tensor.matmul %x, %w6 : (tensor<2x4xf32>, tensor<4x6xf32>) -> tensor<2x6xf32>
  %b = nn_tensor.matmul %x, %y : (tensor<2x4xf32>, tensor<4x8xf32>) -> tensor<2x8xf32>
  %w3 = nn_tensor.weight "b3" : tensor<3x4x8xf32>
  %c = nn_tensor.matmul %z, %w3 : (tensor<3x2x4xf32>, tensor<3x4x8xf32>) -> tensor<3x2x8xf32>
  %wa = nn_tensor.weight "wa" : tensor<8x4xf32>
  %d = nn_tensor.matmul %wa, %y : (tensor<8x4xf32>, tensor<4x8xf32>) -> tensor<8x8xf32>
  func.return %a, %b, %c, %d : tensor<2x6xf32>, tensor<2x8xf32>, tensor<3x2x8xf32>, tensor<8x8xf32>
}
