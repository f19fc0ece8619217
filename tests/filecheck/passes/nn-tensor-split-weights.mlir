// RUN: nnjit-opt %s -p 'nn-tensor-split-weights{max_bytes=480}' | filecheck %s

/// A 50x6 f32 table (1200 bytes) gathered on axis 0 becomes chunks of 20 rows (480 bytes),
/// each gathered with clamped indices and selected by the index range.
// CHECK-LABEL: func.func @split_gather
func.func @split_gather(%ids: tensor<3xi64>) -> tensor<3x6xf32> {
  %w = nn_tensor.weight "emb" : tensor<50x6xf32>
  %g = nn_tensor.gather %w, %ids {axis = 0 : i64} : (tensor<50x6xf32>, tensor<3xi64>) -> tensor<3x6xf32>
  func.return %g : tensor<3x6xf32>
}
// CHECK-NOT:  nn_tensor.weight "emb" :
// CHECK:      nn_tensor.weight "emb#rows=0:20" : tensor<20x6xf32>
// CHECK:      nn_tensor.gather
// CHECK:      nn_tensor.weight "emb#rows=20:40" : tensor<20x6xf32>
// CHECK:      nn_tensor.gather
// CHECK:      nn_tensor.where
// CHECK:      nn_tensor.weight "emb#rows=40:50" : tensor<10x6xf32>
// CHECK:      nn_tensor.gather
// CHECK:      %[[OUT:.*]] = nn_tensor.where
// CHECK:      func.return %[[OUT]]

/// The B operand of a matmul (50x6: 200 bytes a column) becomes column chunks of 2 columns
/// (`#cols=`), one matmul each, concatenated along the last axis.
// CHECK-LABEL: func.func @split_matmul
func.func @split_matmul(%x: tensor<2x50xf32>) -> tensor<2x6xf32> {
  %w = nn_tensor.weight "head" : tensor<50x6xf32>
  %m = nn_tensor.matmul %x, %w : (tensor<2x50xf32>, tensor<50x6xf32>) -> tensor<2x6xf32>
  func.return %m : tensor<2x6xf32>
}
// CHECK-NOT:  nn_tensor.weight "head" :
// CHECK:      %[[W0:.*]] = nn_tensor.weight "head#cols=0:2" : tensor<50x2xf32>
// CHECK-NEXT: %[[M0:.*]] = nn_tensor.matmul %{{.*}}, %[[W0]] : (tensor<2x50xf32>, tensor<50x2xf32>) -> tensor<2x2xf32>
// CHECK:      nn_tensor.weight "head#cols=2:4" : tensor<50x2xf32>
// CHECK:      nn_tensor.weight "head#cols=4:6" : tensor<50x2xf32>
// CHECK:      %[[M2:.*]] = nn_tensor.matmul
// CHECK-NEXT: %[[CAT:.*]] = nn_tensor.concat %[[M0]], %{{.*}}, %[[M2]] {axis = 1 : i64}
// CHECK-NEXT: func.return %[[CAT]]

/// A gemm reading B transposed (N x K) takes row chunks of B; its C is added after the
/// concatenation, scaled by beta.
// CHECK-LABEL: func.func @split_gemm_trans_b
func.func @split_gemm_trans_b(%x: tensor<2x50xf32>, %c: tensor<6xf32>) -> tensor<2x6xf32> {
  %w = nn_tensor.weight "proj" : tensor<6x50xf32>
  %g = nn_tensor.gemm %x, %w, %c {trans_b = 1 : i64, beta = 0.5 : f32} : (tensor<2x50xf32>, tensor<6x50xf32>, tensor<6xf32>) -> tensor<2x6xf32>
  func.return %g : tensor<2x6xf32>
}
// CHECK:      nn_tensor.weight "proj#rows=0:2" : tensor<2x50xf32>
// CHECK-NEXT: nn_tensor.gemm {{.*}}trans_b = 1 : i64
// CHECK:      nn_tensor.weight "proj#rows=4:6" : tensor<2x50xf32>
// CHECK:      %[[CAT:.*]] = nn_tensor.concat
// CHECK-NEXT: %[[BETA:.*]] = nn_tensor.constant dense<5.000000e-01> : tensor<f32>
// CHECK-NEXT: %[[C:.*]] = nn_tensor.mul %{{.*}}, %[[BETA]]
// CHECK-NEXT: %[[OUT:.*]] = nn_tensor.add %[[CAT]], %[[C]]
// CHECK-NEXT: func.return %[[OUT]]

/// A weight under the limit, or one neither gathered nor a matmul's B, is left alone.
// CHECK-LABEL: func.func @negative_small_or_other_use
func.func @negative_small_or_other_use(%x: tensor<50x6xf32>, %ids: tensor<3xi64>) -> (tensor<50x6xf32>, tensor<3x6xf32>) {
  %w = nn_tensor.weight "big" : tensor<50x6xf32>
  %s = nn_tensor.weight "small" : tensor<2x6xf32>
  %a = nn_tensor.add %x, %w : (tensor<50x6xf32>, tensor<50x6xf32>) -> tensor<50x6xf32>
  %g = nn_tensor.gather %s, %ids {axis = 0 : i64} : (tensor<2x6xf32>, tensor<3xi64>) -> tensor<3x6xf32>
  func.return %a, %g : tensor<50x6xf32>, tensor<3x6xf32>
}
// CHECK:      nn_tensor.weight "big" : tensor<50x6xf32>
// CHECK-NEXT: nn_tensor.weight "small" : tensor<2x6xf32>
// CHECK-NEXT: nn_tensor.add
// CHECK-NEXT: nn_tensor.gather
