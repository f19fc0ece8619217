// RUN: nnjit-opt %s | nnjit-opt | filecheck %s
// RUN: nnjit-opt %s --print-op-generic | nnjit-opt | filecheck %s
// RUN: nnjit-opt %s --print-op-generic | filecheck %s --check-prefix=GENERIC

/// Every nn_tensor op in its custom format. The first RUN line prints and parses the custom
/// format twice; the second parses the generic format back and prints the custom one again.

// CHECK-LABEL: func.func @values
// GENERIC-LABEL: "func.func"() <{sym_name = "values"
func.func @values() -> (tensor<4x3xf32>, tensor<f32>, tensor<3xi64>, tensor<2xi1>, tensor<2x2xi32>) {
  %w = nn_tensor.weight "encoder.layer.0.weight" : tensor<4x3xf32>
  %s = nn_tensor.constant dense<5.000000e-01> : tensor<f32>
  %i = nn_tensor.constant dense<[1, -2, 3]> : tensor<3xi64>
  %b = nn_tensor.constant dense<[true, false]> : tensor<2xi1>
  %j = nn_tensor.constant dense<7> : tensor<2x2xi32>
  func.return %w, %s, %i, %b, %j : tensor<4x3xf32>, tensor<f32>, tensor<3xi64>, tensor<2xi1>, tensor<2x2xi32>
}
// CHECK-NEXT:  %[[W:.*]] = nn_tensor.weight "encoder.layer.0.weight" : tensor<4x3xf32>
// CHECK-NEXT:  %[[S:.*]] = nn_tensor.constant dense<5.000000e-01> : tensor<f32>
// CHECK-NEXT:  %[[I:.*]] = nn_tensor.constant dense<[1, -2, 3]> : tensor<3xi64>
// CHECK-NEXT:  %[[B:.*]] = nn_tensor.constant dense<[true, false]> : tensor<2xi1>
// CHECK-NEXT:  %[[J:.*]] = nn_tensor.constant dense<7> : tensor<2x2xi32>
// CHECK-NEXT:  func.return %[[W]], %[[S]], %[[I]], %[[B]], %[[J]]
// GENERIC:     "nn_tensor.weight"() <{key = "encoder.layer.0.weight"}> : () -> tensor<4x3xf32>
// GENERIC:     "nn_tensor.constant"() <{value = dense<5.000000e-01> : tensor<f32>}> : () -> tensor<f32>

// CHECK-LABEL: func.func @binary
// GENERIC-LABEL: "func.func"() <{sym_name = "binary"
func.func @binary(%x: tensor<2x3xf32>, %y: tensor<3xf32>, %p: tensor<2x3xi1>, %q: tensor<1x3xi1>) {
  %0 = nn_tensor.add %x, %y : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %1 = nn_tensor.sub %x, %y : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %2 = nn_tensor.mul %y, %x : (tensor<3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %3 = nn_tensor.div %x, %x : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %4 = nn_tensor.pow %x, %y : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %5 = nn_tensor.max %x, %y : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %6 = nn_tensor.min %x, %y : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %7 = nn_tensor.and %p, %q : (tensor<2x3xi1>, tensor<1x3xi1>) -> tensor<2x3xi1>
  %8 = nn_tensor.or %p, %q : (tensor<2x3xi1>, tensor<1x3xi1>) -> tensor<2x3xi1>
  %9 = nn_tensor.equal %x, %y : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xi1>
  %10 = nn_tensor.less %x, %y : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xi1>
  %11 = nn_tensor.greater %x, %y : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xi1>
  %12 = nn_tensor.where %p, %x, %y : (tensor<2x3xi1>, tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  func.return
}
// CHECK-SAME:  (%[[X:.*]]: tensor<2x3xf32>, %[[Y:.*]]: tensor<3xf32>, %[[P:.*]]: tensor<2x3xi1>, %[[Q:.*]]: tensor<1x3xi1>)
// CHECK-NEXT:  nn_tensor.add %[[X]], %[[Y]] : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:  nn_tensor.sub %[[X]], %[[Y]] : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:  nn_tensor.mul %[[Y]], %[[X]] : (tensor<3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:  nn_tensor.div %[[X]], %[[X]] : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:  nn_tensor.pow %[[X]], %[[Y]] : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:  nn_tensor.max %[[X]], %[[Y]] : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:  nn_tensor.min %[[X]], %[[Y]] : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:  nn_tensor.and %[[P]], %[[Q]] : (tensor<2x3xi1>, tensor<1x3xi1>) -> tensor<2x3xi1>
// CHECK-NEXT:  nn_tensor.or %[[P]], %[[Q]] : (tensor<2x3xi1>, tensor<1x3xi1>) -> tensor<2x3xi1>
// CHECK-NEXT:  nn_tensor.equal %[[X]], %[[Y]] : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xi1>
// CHECK-NEXT:  nn_tensor.less %[[X]], %[[Y]] : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xi1>
// CHECK-NEXT:  nn_tensor.greater %[[X]], %[[Y]] : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xi1>
// CHECK-NEXT:  nn_tensor.where %[[P]], %[[X]], %[[Y]] : (tensor<2x3xi1>, tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
// GENERIC:     "nn_tensor.add"(%{{.*}}, %{{.*}}) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
// GENERIC:     "nn_tensor.where"(%{{.*}}, %{{.*}}, %{{.*}}) : (tensor<2x3xi1>, tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>

// CHECK-LABEL: func.func @unary
func.func @unary(%x: tensor<2x3xf32>, %p: tensor<2x3xi1>, %i: tensor<2x3xi64>) {
  %0 = nn_tensor.sqrt %x : tensor<2x3xf32> -> tensor<2x3xf32>
  %1 = nn_tensor.erf %x : tensor<2x3xf32> -> tensor<2x3xf32>
  %2 = nn_tensor.tanh %x : tensor<2x3xf32> -> tensor<2x3xf32>
  %3 = nn_tensor.exp %x : tensor<2x3xf32> -> tensor<2x3xf32>
  %4 = nn_tensor.log %x : tensor<2x3xf32> -> tensor<2x3xf32>
  %5 = nn_tensor.neg %i : tensor<2x3xi64> -> tensor<2x3xi64>
  %6 = nn_tensor.abs %x : tensor<2x3xf32> -> tensor<2x3xf32>
  %7 = nn_tensor.reciprocal %x : tensor<2x3xf32> -> tensor<2x3xf32>
  %8 = nn_tensor.relu %x : tensor<2x3xf32> -> tensor<2x3xf32>
  %9 = nn_tensor.sigmoid %x : tensor<2x3xf32> -> tensor<2x3xf32>
  %10 = nn_tensor.gelu %x : tensor<2x3xf32> -> tensor<2x3xf32>
  %11 = nn_tensor.not %p : tensor<2x3xi1> -> tensor<2x3xi1>
  %12 = nn_tensor.isnan %x : tensor<2x3xf32> -> tensor<2x3xi1>
  %13 = nn_tensor.cast %i : tensor<2x3xi64> -> tensor<2x3xf32>
  %14 = nn_tensor.round %x : tensor<2x3xf32> -> tensor<2x3xf32>
  %15 = nn_tensor.sin %x : tensor<2x3xf32> -> tensor<2x3xf32>
  %16 = nn_tensor.cos %x : tensor<2x3xf32> -> tensor<2x3xf32>
  func.return
}
// CHECK-SAME:  (%[[X:.*]]: tensor<2x3xf32>, %[[P:.*]]: tensor<2x3xi1>, %[[I:.*]]: tensor<2x3xi64>)
// CHECK-NEXT:  nn_tensor.sqrt %[[X]] : tensor<2x3xf32> -> tensor<2x3xf32>
// CHECK-NEXT:  nn_tensor.erf %[[X]] : tensor<2x3xf32> -> tensor<2x3xf32>
// CHECK-NEXT:  nn_tensor.tanh %[[X]] : tensor<2x3xf32> -> tensor<2x3xf32>
// CHECK-NEXT:  nn_tensor.exp %[[X]] : tensor<2x3xf32> -> tensor<2x3xf32>
// CHECK-NEXT:  nn_tensor.log %[[X]] : tensor<2x3xf32> -> tensor<2x3xf32>
// CHECK-NEXT:  nn_tensor.neg %[[I]] : tensor<2x3xi64> -> tensor<2x3xi64>
// CHECK-NEXT:  nn_tensor.abs %[[X]] : tensor<2x3xf32> -> tensor<2x3xf32>
// CHECK-NEXT:  nn_tensor.reciprocal %[[X]] : tensor<2x3xf32> -> tensor<2x3xf32>
// CHECK-NEXT:  nn_tensor.relu %[[X]] : tensor<2x3xf32> -> tensor<2x3xf32>
// CHECK-NEXT:  nn_tensor.sigmoid %[[X]] : tensor<2x3xf32> -> tensor<2x3xf32>
// CHECK-NEXT:  nn_tensor.gelu %[[X]] : tensor<2x3xf32> -> tensor<2x3xf32>
// CHECK-NEXT:  nn_tensor.not %[[P]] : tensor<2x3xi1> -> tensor<2x3xi1>
// CHECK-NEXT:  nn_tensor.isnan %[[X]] : tensor<2x3xf32> -> tensor<2x3xi1>
// CHECK-NEXT:  nn_tensor.cast %[[I]] : tensor<2x3xi64> -> tensor<2x3xf32>
// CHECK-NEXT:  nn_tensor.round %[[X]] : tensor<2x3xf32> -> tensor<2x3xf32>
// CHECK-NEXT:  nn_tensor.sin %[[X]] : tensor<2x3xf32> -> tensor<2x3xf32>
// CHECK-NEXT:  nn_tensor.cos %[[X]] : tensor<2x3xf32> -> tensor<2x3xf32>

// CHECK-LABEL: func.func @contractions
// GENERIC-LABEL: "func.func"() <{sym_name = "contractions"
func.func @contractions(%a: tensor<2x5x3xf32>, %b: tensor<3x4xf32>, %c: tensor<4xf32>, %m: tensor<5x3xf32>, %n: tensor<4x3xf32>, %img: tensor<1x4x9x7xf32>, %k: tensor<6x2x3x3xf32>, %kb: tensor<6xf32>) {
  %0 = nn_tensor.matmul %a, %b : (tensor<2x5x3xf32>, tensor<3x4xf32>) -> tensor<2x5x4xf32>
  %1 = nn_tensor.gemm %m, %n, %c {alpha = 2.000000e+00 : f32, beta = 5.000000e-01 : f32, trans_b = 1 : i64} : (tensor<5x3xf32>, tensor<4x3xf32>, tensor<4xf32>) -> tensor<5x4xf32>
  %2 = nn_tensor.gemm %m, %b : (tensor<5x3xf32>, tensor<3x4xf32>) -> tensor<5x4xf32>
  %3 = nn_tensor.conv %img, %k, %kb {strides = array<i64: 2, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 2>, group = 2 : i64} : (tensor<1x4x9x7xf32>, tensor<6x2x3x3xf32>, tensor<6xf32>) -> tensor<1x6x5x5xf32>
  %4 = nn_tensor.conv %img, %k {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 2 : i64} : (tensor<1x4x9x7xf32>, tensor<6x2x3x3xf32>) -> tensor<1x6x7x5xf32>
  func.return
}
// CHECK-SAME:  (%[[A:.*]]: tensor<2x5x3xf32>, %[[B:.*]]: tensor<3x4xf32>, %[[C:.*]]: tensor<4xf32>, %[[M:.*]]: tensor<5x3xf32>, %[[N:.*]]: tensor<4x3xf32>, %[[IMG:.*]]: tensor<1x4x9x7xf32>, %[[K:.*]]: tensor<6x2x3x3xf32>, %[[KB:.*]]: tensor<6xf32>)
// CHECK-NEXT:  nn_tensor.matmul %[[A]], %[[B]] : (tensor<2x5x3xf32>, tensor<3x4xf32>) -> tensor<2x5x4xf32>
// CHECK-NEXT:  nn_tensor.gemm %[[M]], %[[N]], %[[C]] {
// CHECK-DAG:     alpha = 2.000000e+00 : f32
// CHECK-DAG:     beta = 5.000000e-01 : f32
// CHECK-DAG:     trans_b = 1 : i64
// CHECK-SAME:  } : (tensor<5x3xf32>, tensor<4x3xf32>, tensor<4xf32>) -> tensor<5x4xf32>
// CHECK-NEXT:  nn_tensor.gemm %[[M]], %[[B]] {{.*}}: (tensor<5x3xf32>, tensor<3x4xf32>) -> tensor<5x4xf32>
// CHECK-NEXT:  nn_tensor.conv %[[IMG]], %[[K]], %[[KB]] {
// CHECK-DAG:     strides = array<i64: 2, 1>
// CHECK-DAG:     pads = array<i64: 1, 1, 1, 1>
// CHECK-DAG:     dilations = array<i64: 1, 2>
// CHECK-DAG:     group = 2 : i64
// CHECK-SAME:  } : (tensor<1x4x9x7xf32>, tensor<6x2x3x3xf32>, tensor<6xf32>) -> tensor<1x6x5x5xf32>
// CHECK-NEXT:  nn_tensor.conv %[[IMG]], %[[K]] {{.*}}: (tensor<1x4x9x7xf32>, tensor<6x2x3x3xf32>) -> tensor<1x6x7x5xf32>
// GENERIC:     "nn_tensor.gemm"(%{{.*}}, %{{.*}}, %{{.*}}) <{{.*}}trans_b = 1 : i64{{.*}}}>
// GENERIC:     "nn_tensor.conv"(%{{.*}}, %{{.*}}, %{{.*}}) <{{.*}}group = 2 : i64{{.*}}}>

// CHECK-LABEL: func.func @normalisation
func.func @normalisation(%x: tensor<2x5x8xf32>, %g: tensor<8xf32>, %b: tensor<8xf32>) {
  %0 = nn_tensor.softmax %x {axis = 2 : i64} : tensor<2x5x8xf32> -> tensor<2x5x8xf32>
  %1 = nn_tensor.layer_norm %x, %g, %b {axis = 2 : i64, epsilon = 1.000000e-05 : f32} : (tensor<2x5x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<2x5x8xf32>
  %2 = nn_tensor.layer_norm %x, %g {axis = 2 : i64, epsilon = 1.000000e-12 : f32} : (tensor<2x5x8xf32>, tensor<8xf32>) -> tensor<2x5x8xf32>
  %3 = nn_tensor.reduce_mean %x {axes = array<i64: 2>} : tensor<2x5x8xf32> -> tensor<2x5x1xf32>
  %4 = nn_tensor.reduce_sum %x {axes = array<i64: 0, 2>, keepdims = 0 : i64} : tensor<2x5x8xf32> -> tensor<5xf32>
  %5 = nn_tensor.reduce_max %x {axes = array<i64: 1>, keepdims = 1 : i64} : tensor<2x5x8xf32> -> tensor<2x1x8xf32>
  func.return
}
// CHECK-SAME:  (%[[X:.*]]: tensor<2x5x8xf32>, %[[G:.*]]: tensor<8xf32>, %[[B:.*]]: tensor<8xf32>)
// CHECK-NEXT:  nn_tensor.softmax %[[X]] {axis = 2 : i64} : tensor<2x5x8xf32> -> tensor<2x5x8xf32>
// CHECK-NEXT:  nn_tensor.layer_norm %[[X]], %[[G]], %[[B]] {axis = 2 : i64, epsilon = 1.000000e-05 : f32} : (tensor<2x5x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<2x5x8xf32>
// CHECK-NEXT:  nn_tensor.layer_norm %[[X]], %[[G]] {axis = 2 : i64, epsilon = 1.000000e-12 : f32} : (tensor<2x5x8xf32>, tensor<8xf32>) -> tensor<2x5x8xf32>
// CHECK-NEXT:  nn_tensor.reduce_mean %[[X]] {axes = array<i64: 2>{{.*}}} : tensor<2x5x8xf32> -> tensor<2x5x1xf32>
// CHECK-NEXT:  nn_tensor.reduce_sum %[[X]] {axes = array<i64: 0, 2>, keepdims = 0 : i64} : tensor<2x5x8xf32> -> tensor<5xf32>
// CHECK-NEXT:  nn_tensor.reduce_max %[[X]] {axes = array<i64: 1>{{.*}}} : tensor<2x5x8xf32> -> tensor<2x1x8xf32>

// CHECK-LABEL: func.func @data_movement
func.func @data_movement(%x: tensor<2x3x4xf32>, %ids: tensor<5xi64>, %nd: tensor<2x1xi64>, %s: tensor<1x3x4xf32>) {
  %0 = nn_tensor.transpose %x {perm = array<i64: 2, 0, 1>} : tensor<2x3x4xf32> -> tensor<4x2x3xf32>
  %1 = nn_tensor.reshape %x : tensor<2x3x4xf32> -> tensor<6x4xf32>
  %2 = nn_tensor.expand %s : tensor<1x3x4xf32> -> tensor<5x3x4xf32>
  %3 = nn_tensor.gather %x, %ids {axis = 1 : i64} : (tensor<2x3x4xf32>, tensor<5xi64>) -> tensor<2x5x4xf32>
  %4 = nn_tensor.gather_nd %x, %nd {batch_dims = 1 : i64} : (tensor<2x3x4xf32>, tensor<2x1xi64>) -> tensor<2x4xf32>
  %5 = nn_tensor.slice %x {starts = array<i64: 1, 2, 3>, steps = array<i64: 1, -1, -2>} : tensor<2x3x4xf32> -> tensor<1x3x2xf32>
  %6:3 = nn_tensor.split %x {axis = 2 : i64} : tensor<2x3x4xf32> -> tensor<2x3x1xf32>, tensor<2x3x2xf32>, tensor<2x3x1xf32>
  %7 = nn_tensor.concat %x, %s {axis = 0 : i64} : (tensor<2x3x4xf32>, tensor<1x3x4xf32>) -> tensor<3x3x4xf32>
  func.return
}
// CHECK-SAME:  (%[[X:.*]]: tensor<2x3x4xf32>, %[[IDS:.*]]: tensor<5xi64>, %[[ND:.*]]: tensor<2x1xi64>, %[[S:.*]]: tensor<1x3x4xf32>)
// CHECK-NEXT:  nn_tensor.transpose %[[X]] {perm = array<i64: 2, 0, 1>} : tensor<2x3x4xf32> -> tensor<4x2x3xf32>
// CHECK-NEXT:  nn_tensor.reshape %[[X]] : tensor<2x3x4xf32> -> tensor<6x4xf32>
// CHECK-NEXT:  nn_tensor.expand %[[S]] : tensor<1x3x4xf32> -> tensor<5x3x4xf32>
// CHECK-NEXT:  nn_tensor.gather %[[X]], %[[IDS]] {axis = 1 : i64} : (tensor<2x3x4xf32>, tensor<5xi64>) -> tensor<2x5x4xf32>
// CHECK-NEXT:  nn_tensor.gather_nd %[[X]], %[[ND]] {batch_dims = 1 : i64} : (tensor<2x3x4xf32>, tensor<2x1xi64>) -> tensor<2x4xf32>
// CHECK-NEXT:  nn_tensor.slice %[[X]] {starts = array<i64: 1, 2, 3>, steps = array<i64: 1, -1, -2>} : tensor<2x3x4xf32> -> tensor<1x3x2xf32>
// CHECK-NEXT:  %{{.*}}, %{{.*}}, %{{.*}} = nn_tensor.split %[[X]] {axis = 2 : i64} : tensor<2x3x4xf32> -> tensor<2x3x1xf32>, tensor<2x3x2xf32>, tensor<2x3x1xf32>
// CHECK-NEXT:  nn_tensor.concat %[[X]], %[[S]] {axis = 0 : i64} : (tensor<2x3x4xf32>, tensor<1x3x4xf32>) -> tensor<3x3x4xf32>

// CHECK-LABEL: func.func @fused
// GENERIC-LABEL: "func.func"() <{sym_name = "fused"
func.func @fused(%x: tensor<2x3xf32>, %y: tensor<3xf32>) -> tensor<2x3xf32> {
  %r = nn_tensor.fused %x, %y {kind = "elementwise"} : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32> {
  ^bb0(%a: tensor<2x3xf32>, %b: tensor<3xf32>):
    %h = nn_tensor.constant dense<5.000000e-01> : tensor<f32>
    %s = nn_tensor.add %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
    %m = nn_tensor.mul %s, %h : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32>
    nn_tensor.yield %m : tensor<2x3xf32>
  }
  func.return %r : tensor<2x3xf32>
}
// CHECK-SAME:  (%[[X:.*]]: tensor<2x3xf32>, %[[Y:.*]]: tensor<3xf32>)
// CHECK-NEXT:  %[[R:.*]] = nn_tensor.fused %[[X]], %[[Y]] {kind = "elementwise"} : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32> {
// CHECK-NEXT:  ^{{.*}}(%[[A:.*]]: tensor<2x3xf32>, %[[B:.*]]: tensor<3xf32>):
// CHECK-NEXT:    %[[H:.*]] = nn_tensor.constant dense<5.000000e-01> : tensor<f32>
// CHECK-NEXT:    %[[S:.*]] = nn_tensor.add %[[A]], %[[B]]
// CHECK-NEXT:    %[[M:.*]] = nn_tensor.mul %[[S]], %[[H]]
// CHECK-NEXT:    nn_tensor.yield %[[M]] : tensor<2x3xf32>
// CHECK-NEXT:  }
// CHECK-NEXT:  func.return %[[R]] : tensor<2x3xf32>
// GENERIC:     "nn_tensor.fused"(%{{.*}}, %{{.*}}) <{kind = "elementwise"}> ({
// GENERIC:       "nn_tensor.yield"(%{{.*}}) : (tensor<2x3xf32>) -> ()
// GENERIC:     }) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>

/// matmul_q8p: 16-bit activations (i32) against int8 weights in k pairs ([ceil(K/2), 2N] bytes).
// CHECK-LABEL: func.func @matmul_q8p
// GENERIC-LABEL: "func.func"() <{sym_name = "matmul_q8p"
func.func @matmul_q8p(%a: tensor<2x3x5xi32>, %w: tensor<3x16xi8>) -> tensor<2x3x8xi32> {
  %r = nn_tensor.matmul_q8p %a, %w : (tensor<2x3x5xi32>, tensor<3x16xi8>) -> tensor<2x3x8xi32>
  func.return %r : tensor<2x3x8xi32>
}
// CHECK-NEXT:  %{{.*}} = nn_tensor.matmul_q8p %{{.*}}, %{{.*}} : (tensor<2x3x5xi32>, tensor<3x16xi8>) -> tensor<2x3x8xi32>
// GENERIC:     "nn_tensor.matmul_q8p"(%{{.*}}, %{{.*}}) : (tensor<2x3x5xi32>, tensor<3x16xi8>) -> tensor<2x3x8xi32>
