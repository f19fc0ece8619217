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

/// A weight under the limit, or one not read by a gather, is left alone.
// CHECK-LABEL: func.func @negative_small_or_not_gathered
func.func @negative_small_or_not_gathered(%x: tensor<2x50xf32>) -> tensor<2x6xf32> {
  %w = nn_tensor.weight "big" : tensor<50x6xf32>
  %m = nn_tensor.matmul %x, %w : (tensor<2x50xf32>, tensor<50x6xf32>) -> tensor<2x6xf32>
  func.return %m : tensor<2x6xf32>
}
// CHECK:      nn_tensor.weight "big" : tensor<50x6xf32>
// CHECK-NEXT: nn_tensor.matmul
