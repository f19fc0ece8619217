// RUN: nnjit-opt %s -p 'nn-tensor-int8-weights{dot=i16 max-m=4}' | filecheck %s
// RUN: nnjit-opt %s -p 'nn-tensor-int8-weights{dot=i16 max-m=4},nn-tensor-pack-weights' | filecheck %s --check-prefix=PACK

/// dot=i16: A's rows are quantized by two kernels before the matmul (max|row| / 2047, then
/// round(a / s) as i32); the matmul reads the k-pair bytes "w#q8p" [ceil(K/2), 2N] and scales
/// the i32 product by the column scales and the row scale before the epilogue.
// CHECK-LABEL: func.func @fused_kn
// CHECK-NOT:     nn_tensor.weight "w" {
// CHECK:         %[[P:.*]] = nn_tensor.weight "w#q8p" : tensor<3x32xi8>
// CHECK-NEXT:    %[[S:.*]] = nn_tensor.weight "w#q8s" : tensor<16xf32>
// CHECK-NEXT:    %[[RS:.*]] = nn_tensor.fused %[[X:.*]] {kind = "reduce"} : (tensor<3x5xf32>) -> tensor<3x1xf32> {
// CHECK:           nn_tensor.abs
// CHECK-NEXT:      nn_tensor.reduce_max %{{.*}} {axes = array<i64: 1>} : tensor<3x5xf32> -> tensor<3x1xf32>
// CHECK-NEXT:      nn_tensor.constant dense<0.000488519785> : tensor<f32>
// CHECK:         %[[Q:.*]] = nn_tensor.fused %[[X]], %[[RS]] {kind = "elementwise"} : (tensor<3x5xf32>, tensor<3x1xf32>) -> tensor<3x5xi32> {
// CHECK:           nn_tensor.div
// CHECK-NEXT:      nn_tensor.round
// CHECK-NEXT:      nn_tensor.cast %{{.*}} : tensor<3x5xf32> -> tensor<3x5xi32>
// CHECK:         nn_tensor.fused %[[Q]], %[[P]], %[[S]], %[[RS]] {kind = "matmul"}
// CHECK-NEXT:    ^{{.*}}(%[[XQ:.*]]: tensor<3x5xi32>, %[[YP:.*]]: tensor<3x32xi8>, %[[YS:.*]]: tensor<16xf32>, %[[R:.*]]: tensor<3x1xf32>):
// CHECK-NEXT:      %[[M:.*]] = nn_tensor.matmul_q8p %[[XQ]], %[[YP]] : (tensor<3x5xi32>, tensor<3x32xi8>) -> tensor<3x16xi32>
// CHECK-NEXT:      %[[F:.*]] = nn_tensor.cast %[[M]] : tensor<3x16xi32> -> tensor<3x16xf32>
// CHECK-NEXT:      %[[C:.*]] = nn_tensor.mul %[[F]], %[[YS]]
// CHECK-NEXT:      %[[D:.*]] = nn_tensor.mul %[[C]], %[[R]] : (tensor<3x16xf32>, tensor<3x1xf32>) -> tensor<3x16xf32>
// CHECK-NEXT:      nn_tensor.gelu %[[D]]
/// nn-tensor-pack-weights packs the pairs in panels of 8 columns (16 bytes).
// PACK-LABEL: func.func @fused_kn
// PACK:         nn_tensor.weight "w#q8p#pack=kn16" : tensor<2x3x16xi8>
// PACK:           nn_tensor.transpose %{{.*}} {perm = array<i64: 1, 0, 2>} : tensor<2x3x16xi8> -> tensor<3x2x16xi8>
// PACK-NEXT:      nn_tensor.reshape %{{.*}} : tensor<3x2x16xi8> -> tensor<3x32xi8>
// PACK-NEXT:      nn_tensor.matmul_q8p
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

/// A gemm with transB, alpha and beta: the pairs come from the [K, N] integers ("wt#q8p"), and
/// alpha * product + beta * C is computed after the scales.
// CHECK-LABEL: func.func @lone_gemm_nk
// CHECK:         nn_tensor.weight "wt#q8p" : tensor<2x16xi8>
// CHECK:           nn_tensor.matmul_q8p %{{.*}}, %{{.*}} : (tensor<2x4xi32>, tensor<2x16xi8>) -> tensor<2x8xi32>
// CHECK:           %[[A:.*]] = nn_tensor.constant dense<5.000000e-01> : tensor<f32>
// CHECK-NEXT:      %[[AP:.*]] = nn_tensor.mul %{{.*}}, %[[A]]
// CHECK-NEXT:      %[[B:.*]] = nn_tensor.constant dense<2.000000e+00> : tensor<f32>
// CHECK-NEXT:      %[[BC:.*]] = nn_tensor.mul %{{.*}}, %[[B]]
// CHECK-NEXT:      %[[Y:.*]] = nn_tensor.add %[[AP]], %[[BC]]
// CHECK-NEXT:      nn_tensor.yield %[[Y]]
func.func @lone_gemm_nk(%x: tensor<2x4xf32>) -> tensor<2x8xf32> {
  %w = nn_tensor.weight "wt" {nnjit.int8_weight = 1 : i64} : tensor<8x4xf32>
  %c = nn_tensor.weight "bias" : tensor<8xf32>
  %g = nn_tensor.gemm %x, %w, %c {alpha = 0.5 : f32, beta = 2.0 : f32, trans_a = 0 : i64, trans_b = 1 : i64} : (tensor<2x4xf32>, tensor<8x4xf32>, tensor<8xf32>) -> tensor<2x8xf32>
  func.return %g : tensor<2x8xf32>
}

/// More rows than max-m (5 > 4): the float path ("w#q8", widened in registers).
// CHECK-LABEL: func.func @negative_too_many_rows
// CHECK-NOT:     matmul_q8p
// CHECK:         nn_tensor.weight "w#q8" : tensor<5x16xi8>
// CHECK:         nn_tensor.matmul %{{.*}}, %{{.*}} : (tensor<5x5xf32>, tensor<5x16xf32>)
func.func @negative_too_many_rows(%x: tensor<5x5xf32>) -> tensor<5x16xf32> {
  %w = nn_tensor.weight "w" {nnjit.int8_weight = 0 : i64} : tensor<5x16xf32>
  %m = nn_tensor.matmul %x, %w : (tensor<5x5xf32>, tensor<5x16xf32>) -> tensor<5x16xf32>
  func.return %m : tensor<5x16xf32>
}

/// A transposed A (gemm transA) keeps the float path.
// CHECK-LABEL: func.func @negative_trans_a
// CHECK-NOT:     matmul_q8p
// CHECK:         nn_tensor.weight "w#q8" : tensor<4x8xi8>
func.func @negative_trans_a(%x: tensor<4x2xf32>) -> tensor<2x8xf32> {
  %w = nn_tensor.weight "w" {nnjit.int8_weight = 0 : i64} : tensor<4x8xf32>
  %g = nn_tensor.gemm %x, %w {alpha = 1.0 : f32, beta = 1.0 : f32, trans_a = 1 : i64, trans_b = 0 : i64} : (tensor<4x2xf32>, tensor<4x8xf32>) -> tensor<2x8xf32>
  func.return %g : tensor<2x8xf32>
}
