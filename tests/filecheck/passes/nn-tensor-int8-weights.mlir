// RUN: nnjit-opt %s -p nn-tensor-int8-weights | filecheck %s
// RUN: nnjit-opt %s -p nn-tensor-int8-weights,nn-tensor-pack-weights | filecheck %s --check-prefix=PACK

/// A fused matmul whose B is a weight marked int8 (stored [K, N], quantized along K) reads
/// the int8 entry "w#q8" and the column scales "w#q8s": the body casts and scales them back.
// CHECK-LABEL: func.func @fused_kn
// CHECK-NOT:     nn_tensor.weight "w" {
// CHECK:         %[[Q:.*]] = nn_tensor.weight "w#q8" : tensor<5x16xi8>
// CHECK-NEXT:    %[[S:.*]] = nn_tensor.weight "w#q8s" : tensor<16xf32>
// CHECK-NEXT:    nn_tensor.fused %{{.*}}, %[[Q]], %[[S]] {kind = "matmul"} : (tensor<3x5xf32>, tensor<5x16xi8>, tensor<16xf32>) -> tensor<3x16xf32> {
// CHECK-NEXT:    ^{{.*}}(%[[X:.*]]: tensor<3x5xf32>, %[[YQ:.*]]: tensor<5x16xi8>, %[[YS:.*]]: tensor<16xf32>):
// CHECK-NEXT:      %[[F:.*]] = nn_tensor.cast %[[YQ]] : tensor<5x16xi8> -> tensor<5x16xf32>
// CHECK-NEXT:      %[[B:.*]] = nn_tensor.mul %[[F]], %[[YS]] : (tensor<5x16xf32>, tensor<16xf32>) -> tensor<5x16xf32>
// CHECK-NEXT:      %[[M:.*]] = nn_tensor.matmul %[[X]], %[[B]]
// CHECK-NEXT:      nn_tensor.gelu %[[M]]
/// nn-tensor-pack-weights then packs the int8 entry in panels (the cast reads the unpacked bytes).
// PACK-LABEL: func.func @fused_kn
// PACK:         %[[P:.*]] = nn_tensor.weight "w#q8#pack=kn8" : tensor<2x5x8xi8>
// PACK:         ^{{.*}}(%{{.*}}: tensor<3x5xf32>, %[[YS:.*]]: tensor<16xf32>, %[[A:.*]]: tensor<2x5x8xi8>):
// PACK-NEXT:      %[[T:.*]] = nn_tensor.transpose %[[A]] {perm = array<i64: 1, 0, 2>} : tensor<2x5x8xi8> -> tensor<5x2x8xi8>
// PACK-NEXT:      %[[R:.*]] = nn_tensor.reshape %[[T]] : tensor<5x2x8xi8> -> tensor<5x16xi8>
// PACK-NEXT:      %[[F:.*]] = nn_tensor.cast %[[R]] : tensor<5x16xi8> -> tensor<5x16xf32>
// PACK-NEXT:      nn_tensor.mul %[[F]], %[[YS]]
func.func @fused_kn(%x: tensor<3x5xf32>) -> tensor<3x16xf32> {
  %w = nn_tensor.weight "w" {nnjit.int8_weight = 0 : i64} : tensor<5x16xf32>
  %f = nn_tensor.fused %x, %w {kind = "matmul"} : (tensor<3x5xf32>, tensor<5x16xf32>) -> tensor<3x16xf32> {
  ^bb0(%a: tensor<3x5xf32>, %b: tensor<5x16xf32>):
    %m = nn_tensor.matmul %a, %b : (tensor<3x5xf32>, tensor<5x16xf32>) -> tensor<3x16xf32>
    %g = nn_tensor.gelu %m : tensor<3x16xf32> -> tensor<3x16xf32>
    nn_tensor.yield %g : tensor<3x16xf32>
  }
  func.return %f : tensor<3x16xf32>
}

/// A lone gemm with transB (B stored [N, K], quantized along its axis 1) is wrapped in a fused
/// op; its int8 entry is the transposed "wt#q8t" [K, N], swapped back in the body for the gemm.
// CHECK-LABEL: func.func @lone_gemm_nk
// CHECK:         %[[Q:.*]] = nn_tensor.weight "wt#q8t" : tensor<4x8xi8>
// CHECK-NEXT:    %[[S:.*]] = nn_tensor.weight "wt#q8s" : tensor<8xf32>
// CHECK:         nn_tensor.fused %{{.*}}, %{{.*}}, %[[Q]], %[[S]] {kind = "matmul"}
// CHECK:           %[[F:.*]] = nn_tensor.cast %{{.*}} : tensor<4x8xi8> -> tensor<4x8xf32>
// CHECK-NEXT:      %[[B:.*]] = nn_tensor.mul %[[F]], %{{.*}} : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
// CHECK-NEXT:      %[[T:.*]] = nn_tensor.transpose %[[B]] {perm = array<i64: 1, 0>} : tensor<4x8xf32> -> tensor<8x4xf32>
// CHECK-NEXT:      nn_tensor.gemm %{{.*}}, %[[T]], %{{.*}}
// PACK-LABEL: func.func @lone_gemm_nk
// PACK:         nn_tensor.weight "wt#q8t#pack=kn8" : tensor<1x4x8xi8>
func.func @lone_gemm_nk(%x: tensor<2x4xf32>) -> tensor<2x8xf32> {
  %w = nn_tensor.weight "wt" {nnjit.int8_weight = 1 : i64} : tensor<8x4xf32>
  %c = nn_tensor.weight "bias" : tensor<8xf32>
  %g = nn_tensor.gemm %x, %w, %c {alpha = 1.0 : f32, beta = 1.0 : f32, trans_a = 0 : i64, trans_b = 1 : i64} : (tensor<2x4xf32>, tensor<8x4xf32>, tensor<8xf32>) -> tensor<2x8xf32>
  func.return %g : tensor<2x8xf32>
}

/// Left alone: an unmarked weight, fewer than 8 columns, a weight quantized along another
/// axis than the contraction's.
// CHECK-LABEL: func.func @negative_unmarked_narrow_other_axis
// CHECK-NOT:     #q8
// CHECK:         func.return
func.func @negative_unmarked_narrow_other_axis(%x: tensor<3x5xf32>) -> (tensor<3x16xf32>, tensor<3x4xf32>, tensor<3x16xf32>) {
  %w = nn_tensor.weight "w" : tensor<5x16xf32>
  %m = nn_tensor.matmul %x, %w : (tensor<3x5xf32>, tensor<5x16xf32>) -> tensor<3x16xf32>
  %n = nn_tensor.weight "n" {nnjit.int8_weight = 0 : i64} : tensor<5x4xf32>
  %k = nn_tensor.matmul %x, %n : (tensor<3x5xf32>, tensor<5x4xf32>) -> tensor<3x4xf32>
  %o = nn_tensor.weight "o" {nnjit.int8_weight = 1 : i64} : tensor<5x16xf32>
  %p = nn_tensor.matmul %x, %o : (tensor<3x5xf32>, tensor<5x16xf32>) -> tensor<3x16xf32>
  func.return %m, %k, %p : tensor<3x16xf32>, tensor<3x4xf32>, tensor<3x16xf32>
}
