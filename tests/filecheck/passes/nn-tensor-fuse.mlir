// RUN: nnjit-opt %s -p nn-tensor-fuse | filecheck %s
// RUN: nnjit-opt %s -p nn-tensor-fuse,nn-tensor-fuse | filecheck %s

/// The second RUN line checks that fusing again changes nothing.

// ------------------------------------------------------------------------- matmul

/// A matmul with its epilogue: bias add, GELU and residual add. The bias and the residual
/// are operands (in order of first read); the body yields the last op.
// CHECK-LABEL: func.func @matmul_epilogue
// CHECK-SAME:    (%[[X:.*]]: tensor<2x5x8xf32>, %[[W:.*]]: tensor<8x16xf32>, %[[B:.*]]: tensor<16xf32>, %[[R:.*]]: tensor<2x5x16xf32>)
// CHECK-NEXT:    %[[F:.*]] = nn_tensor.fused %[[X]], %[[W]], %[[B]], %[[R]] {kind = "matmul"} : (tensor<2x5x8xf32>, tensor<8x16xf32>, tensor<16xf32>, tensor<2x5x16xf32>) -> tensor<2x5x16xf32> {
// CHECK-NEXT:    ^{{.*}}(%[[AX:.*]]: tensor<2x5x8xf32>, %[[AW:.*]]: tensor<8x16xf32>, %[[AB:.*]]: tensor<16xf32>, %[[AR:.*]]: tensor<2x5x16xf32>):
// CHECK-NEXT:      %[[M:.*]] = nn_tensor.matmul %[[AX]], %[[AW]]
// CHECK-NEXT:      %[[Y:.*]] = nn_tensor.add %[[M]], %[[AB]]
// CHECK-NEXT:      %[[G:.*]] = nn_tensor.gelu %[[Y]]
// CHECK-NEXT:      %[[Z:.*]] = nn_tensor.add %[[AR]], %[[G]]
// CHECK-NEXT:      nn_tensor.yield %[[Z]] : tensor<2x5x16xf32>
// CHECK-NEXT:    }
// CHECK-NEXT:    func.return %[[F]]
func.func @matmul_epilogue(%x: tensor<2x5x8xf32>, %w: tensor<8x16xf32>, %b: tensor<16xf32>, %r: tensor<2x5x16xf32>) -> tensor<2x5x16xf32> {
  %m = nn_tensor.matmul %x, %w : (tensor<2x5x8xf32>, tensor<8x16xf32>) -> tensor<2x5x16xf32>
  %y = nn_tensor.add %m, %b : (tensor<2x5x16xf32>, tensor<16xf32>) -> tensor<2x5x16xf32>
  %g = nn_tensor.gelu %y : tensor<2x5x16xf32> -> tensor<2x5x16xf32>
  %z = nn_tensor.add %r, %g : (tensor<2x5x16xf32>, tensor<2x5x16xf32>) -> tensor<2x5x16xf32>
  func.return %z : tensor<2x5x16xf32>
}

/// GPT-2's tanh GELU reads the biased value three times: the epilogue is a DAG, and its
/// splat constants are cloned into the body rather than passed as buffers.
// CHECK-LABEL: func.func @matmul_tanh_gelu
// CHECK-SAME:    (%[[X:.*]]: tensor<3x4xf32>, %[[W:.*]]: tensor<4x6xf32>, %[[B:.*]]: tensor<6xf32>)
// CHECK-NOT:     nn_tensor.constant
// CHECK-NEXT:    %[[F:.*]] = nn_tensor.fused %[[X]], %[[W]], %[[B]] {kind = "matmul"}
// CHECK-NEXT:    ^{{.*}}(%[[AX:.*]]: tensor<3x4xf32>, %[[AW:.*]]: tensor<4x6xf32>, %[[AB:.*]]: tensor<6xf32>):
// CHECK-NEXT:      %[[H:.*]] = nn_tensor.constant dense<5.000000e-01> : tensor<f32>
// CHECK-NEXT:      %[[C3:.*]] = nn_tensor.constant dense<3.000000e+00> : tensor<f32>
// CHECK-NEXT:      %[[K:.*]] = nn_tensor.constant dense<4.471500e-02> : tensor<f32>
// CHECK-NEXT:      %[[S:.*]] = nn_tensor.constant dense<0.797884583> : tensor<f32>
// CHECK-NEXT:      %[[ONE:.*]] = nn_tensor.constant dense<1.000000e+00> : tensor<f32>
// CHECK-NEXT:      %[[M:.*]] = nn_tensor.gemm %[[AX]], %[[AW]]
// CHECK-NEXT:      %[[Y:.*]] = nn_tensor.add %[[M]], %[[AB]]
// CHECK-NEXT:      %[[HY:.*]] = nn_tensor.mul %[[Y]], %[[H]]
// CHECK-NEXT:      %[[P:.*]] = nn_tensor.pow %[[Y]], %[[C3]]
// CHECK-NEXT:      %[[KP:.*]] = nn_tensor.mul %[[K]], %[[P]]
// CHECK-NEXT:      %[[I:.*]] = nn_tensor.add %[[Y]], %[[KP]]
// CHECK-NEXT:      %[[SI:.*]] = nn_tensor.mul %[[I]], %[[S]]
// CHECK-NEXT:      %[[T:.*]] = nn_tensor.tanh %[[SI]]
// CHECK-NEXT:      %[[T1:.*]] = nn_tensor.add %[[T]], %[[ONE]]
// CHECK-NEXT:      %[[OUT:.*]] = nn_tensor.mul %[[HY]], %[[T1]]
// CHECK-NEXT:      nn_tensor.yield %[[OUT]]
// CHECK-NEXT:    }
// CHECK-NEXT:    func.return %[[F]]
func.func @matmul_tanh_gelu(%x: tensor<3x4xf32>, %w: tensor<4x6xf32>, %b: tensor<6xf32>) -> tensor<3x6xf32> {
  %half = nn_tensor.constant dense<0.5> : tensor<f32>
  %three = nn_tensor.constant dense<3.0> : tensor<f32>
  %k = nn_tensor.constant dense<0.044715> : tensor<f32>
  %s = nn_tensor.constant dense<0.797884583> : tensor<f32>
  %one = nn_tensor.constant dense<1.0> : tensor<f32>
  %m = nn_tensor.gemm %x, %w : (tensor<3x4xf32>, tensor<4x6xf32>) -> tensor<3x6xf32>
  %y = nn_tensor.add %m, %b : (tensor<3x6xf32>, tensor<6xf32>) -> tensor<3x6xf32>
  %hy = nn_tensor.mul %y, %half : (tensor<3x6xf32>, tensor<f32>) -> tensor<3x6xf32>
  %p = nn_tensor.pow %y, %three : (tensor<3x6xf32>, tensor<f32>) -> tensor<3x6xf32>
  %kp = nn_tensor.mul %k, %p : (tensor<f32>, tensor<3x6xf32>) -> tensor<3x6xf32>
  %i = nn_tensor.add %y, %kp : (tensor<3x6xf32>, tensor<3x6xf32>) -> tensor<3x6xf32>
  %si = nn_tensor.mul %i, %s : (tensor<3x6xf32>, tensor<f32>) -> tensor<3x6xf32>
  %t = nn_tensor.tanh %si : tensor<3x6xf32> -> tensor<3x6xf32>
  %t1 = nn_tensor.add %t, %one : (tensor<3x6xf32>, tensor<f32>) -> tensor<3x6xf32>
  %out = nn_tensor.mul %hy, %t1 : (tensor<3x6xf32>, tensor<3x6xf32>) -> tensor<3x6xf32>
  func.return %out : tensor<3x6xf32>
}

/// Attention scores: the K transpose that swaps the last two dims is the matmul's prologue;
/// the scale and the mask add are its epilogue (they come before the softmax's prologue).
// CHECK-LABEL: func.func @attention_scores
// CHECK-SAME:    (%[[Q:.*]]: tensor<1x2x5x4xf32>, %[[K:.*]]: tensor<1x2x5x4xf32>, %[[MASK:.*]]: tensor<1x1x1x5xf32>)
// CHECK-NEXT:    %[[S:.*]] = nn_tensor.fused %[[K]], %[[Q]], %[[MASK]] {kind = "matmul"}
// CHECK-NEXT:    ^{{.*}}(%[[AK:.*]]: tensor<1x2x5x4xf32>, %[[AQ:.*]]: tensor<1x2x5x4xf32>, %[[AM:.*]]: tensor<1x1x1x5xf32>):
// CHECK-NEXT:      %[[C:.*]] = nn_tensor.constant dense<5.000000e-01> : tensor<f32>
// CHECK-NEXT:      %[[KT:.*]] = nn_tensor.transpose %[[AK]] {perm = array<i64: 0, 1, 3, 2>}
// CHECK-NEXT:      %[[MM:.*]] = nn_tensor.matmul %[[AQ]], %[[KT]]
// CHECK-NEXT:      %[[SC:.*]] = nn_tensor.mul %[[MM]], %[[C]]
// CHECK-NEXT:      %[[SM:.*]] = nn_tensor.add %[[SC]], %[[AM]]
// CHECK-NEXT:      nn_tensor.yield %[[SM]]
// CHECK-NEXT:    }
// CHECK-NEXT:    %[[P:.*]] = nn_tensor.fused %[[S]] {kind = "softmax"}
// CHECK-NEXT:    ^{{.*}}(%[[AS:.*]]: tensor<1x2x5x5xf32>):
// CHECK-NEXT:      %[[PS:.*]] = nn_tensor.softmax %[[AS]] {axis = 3 : i64}
// CHECK-NEXT:      nn_tensor.yield %[[PS]]
// CHECK-NEXT:    }
// CHECK-NEXT:    func.return %[[P]]
func.func @attention_scores(%q: tensor<1x2x5x4xf32>, %k: tensor<1x2x5x4xf32>, %mask: tensor<1x1x1x5xf32>) -> tensor<1x2x5x5xf32> {
  %kt = nn_tensor.transpose %k {perm = array<i64: 0, 1, 3, 2>} : tensor<1x2x5x4xf32> -> tensor<1x2x4x5xf32>
  %s = nn_tensor.matmul %q, %kt : (tensor<1x2x5x4xf32>, tensor<1x2x4x5xf32>) -> tensor<1x2x5x5xf32>
  %c = nn_tensor.constant dense<0.5> : tensor<f32>
  %sc = nn_tensor.mul %s, %c : (tensor<1x2x5x5xf32>, tensor<f32>) -> tensor<1x2x5x5xf32>
  %sm = nn_tensor.add %sc, %mask : (tensor<1x2x5x5xf32>, tensor<1x1x1x5xf32>) -> tensor<1x2x5x5xf32>
  %p = nn_tensor.softmax %sm {axis = 3 : i64} : tensor<1x2x5x5xf32> -> tensor<1x2x5x5xf32>
  func.return %p : tensor<1x2x5x5xf32>
}

/// A transpose that moves a batch dim is not a matmul prologue: it is a kernel of its own.
/// So is one whose result is also used elsewhere.
// CHECK-LABEL: func.func @negative_matmul_transpose
// CHECK-SAME:    (%[[A:.*]]: tensor<2x3x4xf32>, %[[B:.*]]: tensor<4x2x5xf32>)
// CHECK-NEXT:    %[[T:.*]] = nn_tensor.fused %[[B]] {kind = "transpose"}
// CHECK-NEXT:    ^{{.*}}(%[[AB:.*]]: tensor<4x2x5xf32>):
// CHECK-NEXT:      %[[TT:.*]] = nn_tensor.transpose %[[AB]] {perm = array<i64: 1, 0, 2>}
// CHECK-NEXT:      nn_tensor.yield %[[TT]]
// CHECK-NEXT:    }
// CHECK-NEXT:    %[[U:.*]] = nn_tensor.fused %[[A]] {kind = "transpose"}
// CHECK:         %[[M1:.*]] = nn_tensor.fused %[[A]], %[[T]] {kind = "matmul"}
// CHECK-NEXT:    ^{{.*}}(%{{.*}}: tensor<2x3x4xf32>, %{{.*}}: tensor<2x4x5xf32>):
// CHECK-NEXT:      nn_tensor.matmul
// CHECK-NEXT:      nn_tensor.yield
// CHECK-NEXT:    }
// CHECK-NEXT:    %[[M2:.*]] = nn_tensor.fused %[[U]], %[[A]] {kind = "matmul"}
// CHECK-NEXT:    ^{{.*}}(%{{.*}}: tensor<2x4x3xf32>, %{{.*}}: tensor<2x3x4xf32>):
// CHECK-NEXT:      nn_tensor.matmul
// CHECK-NEXT:      nn_tensor.yield
// CHECK-NEXT:    }
// CHECK-NEXT:    func.return %[[M1]], %[[M2]], %[[U]]
func.func @negative_matmul_transpose(%a: tensor<2x3x4xf32>, %b: tensor<4x2x5xf32>) -> (tensor<2x3x5xf32>, tensor<2x4x4xf32>, tensor<2x4x3xf32>) {
  %t = nn_tensor.transpose %b {perm = array<i64: 1, 0, 2>} : tensor<4x2x5xf32> -> tensor<2x4x5xf32>
  %u = nn_tensor.transpose %a {perm = array<i64: 0, 2, 1>} : tensor<2x3x4xf32> -> tensor<2x4x3xf32>
  %m1 = nn_tensor.matmul %a, %t : (tensor<2x3x4xf32>, tensor<2x4x5xf32>) -> tensor<2x3x5xf32>
  %m2 = nn_tensor.matmul %u, %a : (tensor<2x4x3xf32>, tensor<2x3x4xf32>) -> tensor<2x4x4xf32>
  func.return %m1, %m2, %u : tensor<2x3x5xf32>, tensor<2x4x4xf32>, tensor<2x4x3xf32>
}

/// The matmul's result is also returned: it must be written out, so no epilogue; the
/// relu becomes an elementwise kernel.
// CHECK-LABEL: func.func @negative_epilogue_multi_use
// CHECK-NEXT:    %[[M:.*]] = nn_tensor.fused %{{.*}}, %{{.*}} {kind = "matmul"}
// CHECK-NEXT:    ^{{.*}}(%{{.*}}: tensor<3x4xf32>, %{{.*}}: tensor<4x5xf32>):
// CHECK-NEXT:      nn_tensor.matmul
// CHECK-NEXT:      nn_tensor.yield
// CHECK-NEXT:    }
// CHECK-NEXT:    %[[R:.*]] = nn_tensor.fused %[[M]] {kind = "elementwise"}
// CHECK-NEXT:    ^{{.*}}(%[[AM:.*]]: tensor<3x5xf32>):
// CHECK-NEXT:      %[[RR:.*]] = nn_tensor.relu %[[AM]]
// CHECK-NEXT:      nn_tensor.yield %[[RR]]
// CHECK-NEXT:    }
// CHECK-NEXT:    func.return %[[M]], %[[R]]
func.func @negative_epilogue_multi_use(%x: tensor<3x4xf32>, %w: tensor<4x5xf32>) -> (tensor<3x5xf32>, tensor<3x5xf32>) {
  %m = nn_tensor.matmul %x, %w : (tensor<3x4xf32>, tensor<4x5xf32>) -> tensor<3x5xf32>
  %r = nn_tensor.relu %m : tensor<3x5xf32> -> tensor<3x5xf32>
  func.return %m, %r : tensor<3x5xf32>, tensor<3x5xf32>
}

/// An add that broadcasts the matmul's result to a bigger shape is not an epilogue.
// CHECK-LABEL: func.func @negative_epilogue_broadcast
// CHECK-NEXT:    %[[M:.*]] = nn_tensor.fused %{{.*}}, %{{.*}} {kind = "matmul"}
// CHECK-NEXT:    ^{{.*}}(%{{.*}}: tensor<3x4xf32>, %{{.*}}: tensor<4x5xf32>):
// CHECK-NEXT:      nn_tensor.matmul
// CHECK-NEXT:      nn_tensor.yield
// CHECK-NEXT:    }
// CHECK-NEXT:    %[[A:.*]] = nn_tensor.fused %[[M]], %{{.*}} {kind = "elementwise"} : (tensor<3x5xf32>, tensor<2x3x5xf32>) -> tensor<2x3x5xf32>
func.func @negative_epilogue_broadcast(%x: tensor<3x4xf32>, %w: tensor<4x5xf32>, %r: tensor<2x3x5xf32>) -> tensor<2x3x5xf32> {
  %m = nn_tensor.matmul %x, %w : (tensor<3x4xf32>, tensor<4x5xf32>) -> tensor<3x5xf32>
  %a = nn_tensor.add %m, %r : (tensor<3x5xf32>, tensor<2x3x5xf32>) -> tensor<2x3x5xf32>
  func.return %a : tensor<2x3x5xf32>
}

/// The add's other operand depends on the matmul (through a transpose): fusing it would
/// make the kernel read its own output.
// CHECK-LABEL: func.func @negative_epilogue_depends_on_root
// CHECK-NEXT:    %[[M:.*]] = nn_tensor.fused %{{.*}} {kind = "matmul"}
// CHECK-NEXT:    ^{{.*}}(%{{.*}}: tensor<4x4xf32>):
// CHECK-NEXT:      nn_tensor.matmul
// CHECK-NEXT:      nn_tensor.yield
// CHECK-NEXT:    }
// CHECK-NEXT:    %[[T:.*]] = nn_tensor.fused %[[M]] {kind = "transpose"}
// CHECK:         %[[A:.*]] = nn_tensor.fused %[[M]], %[[T]] {kind = "elementwise"}
func.func @negative_epilogue_depends_on_root(%x: tensor<4x4xf32>) -> tensor<4x4xf32> {
  %m = nn_tensor.matmul %x, %x : (tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>
  %t = nn_tensor.transpose %m {perm = array<i64: 1, 0>} : tensor<4x4xf32> -> tensor<4x4xf32>
  %a = nn_tensor.add %m, %t : (tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>
  func.return %a : tensor<4x4xf32>
}

// --------------------------------------------------------------------------- conv

/// Conv with a bias operand and a relu epilogue.
// CHECK-LABEL: func.func @conv_relu
// CHECK-SAME:    (%[[X:.*]]: tensor<1x3x6x6xf32>, %[[W:.*]]: tensor<4x3x3x3xf32>, %[[B:.*]]: tensor<4xf32>)
// CHECK-NEXT:    %[[F:.*]] = nn_tensor.fused %[[X]], %[[W]], %[[B]] {kind = "conv"}
// CHECK-NEXT:    ^{{.*}}(%[[AX:.*]]: tensor<1x3x6x6xf32>, %[[AW:.*]]: tensor<4x3x3x3xf32>, %[[AB:.*]]: tensor<4xf32>):
// CHECK-NEXT:      %[[C:.*]] = nn_tensor.conv %[[AX]], %[[AW]], %[[AB]]
// CHECK-NEXT:      %[[R:.*]] = nn_tensor.relu %[[C]]
// CHECK-NEXT:      nn_tensor.yield %[[R]]
// CHECK-NEXT:    }
// CHECK-NEXT:    func.return %[[F]]
func.func @conv_relu(%x: tensor<1x3x6x6xf32>, %w: tensor<4x3x3x3xf32>, %b: tensor<4xf32>) -> tensor<1x4x4x4xf32> {
  %c = nn_tensor.conv %x, %w, %b {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>} : (tensor<1x3x6x6xf32>, tensor<4x3x3x3xf32>, tensor<4xf32>) -> tensor<1x4x4x4xf32>
  %r = nn_tensor.relu %c : tensor<1x4x4x4xf32> -> tensor<1x4x4x4xf32>
  func.return %r : tensor<1x4x4x4xf32>
}

// ------------------------------------------------------------- softmax, norm, reduce

/// softmax(x * scale + mask): the prologue computing the input is fused, and so is the
/// epilogue on the result.
// CHECK-LABEL: func.func @softmax_prologue_epilogue
// CHECK-SAME:    (%[[X:.*]]: tensor<2x7xf32>, %[[MASK:.*]]: tensor<7xf32>)
// CHECK-NEXT:    %[[F:.*]] = nn_tensor.fused %[[X]], %[[MASK]] {kind = "softmax"}
// CHECK-NEXT:    ^{{.*}}(%[[AX:.*]]: tensor<2x7xf32>, %[[AM:.*]]: tensor<7xf32>):
// CHECK-NEXT:      %[[C:.*]] = nn_tensor.constant dense<1.250000e-01> : tensor<f32>
// CHECK-NEXT:      %[[S:.*]] = nn_tensor.mul %[[AX]], %[[C]]
// CHECK-NEXT:      %[[A:.*]] = nn_tensor.add %[[S]], %[[AM]]
// CHECK-NEXT:      %[[P:.*]] = nn_tensor.softmax %[[A]] {axis = 1 : i64}
// CHECK-NEXT:      %[[L:.*]] = nn_tensor.log %[[P]]
// CHECK-NEXT:      nn_tensor.yield %[[L]]
// CHECK-NEXT:    }
// CHECK-NEXT:    func.return %[[F]]
func.func @softmax_prologue_epilogue(%x: tensor<2x7xf32>, %mask: tensor<7xf32>) -> tensor<2x7xf32> {
  %c = nn_tensor.constant dense<0.125> : tensor<f32>
  %s = nn_tensor.mul %x, %c : (tensor<2x7xf32>, tensor<f32>) -> tensor<2x7xf32>
  %a = nn_tensor.add %s, %mask : (tensor<2x7xf32>, tensor<7xf32>) -> tensor<2x7xf32>
  %p = nn_tensor.softmax %a {axis = 1 : i64} : tensor<2x7xf32> -> tensor<2x7xf32>
  %l = nn_tensor.log %p : tensor<2x7xf32> -> tensor<2x7xf32>
  func.return %l : tensor<2x7xf32>
}

/// A residual add feeding a layer norm is its prologue; scale and bias stay operands.
// CHECK-LABEL: func.func @layer_norm_prologue
// CHECK-SAME:    (%[[X:.*]]: tensor<2x3x8xf32>, %[[R:.*]]: tensor<2x3x8xf32>, %[[G:.*]]: tensor<8xf32>, %[[B:.*]]: tensor<8xf32>)
// CHECK-NEXT:    %[[F:.*]] = nn_tensor.fused %[[X]], %[[R]], %[[G]], %[[B]] {kind = "layer_norm"}
// CHECK-NEXT:    ^{{.*}}(%[[AX:.*]]: tensor<2x3x8xf32>, %[[AR:.*]]: tensor<2x3x8xf32>, %[[AG:.*]]: tensor<8xf32>, %[[AB:.*]]: tensor<8xf32>):
// CHECK-NEXT:      %[[S:.*]] = nn_tensor.add %[[AX]], %[[AR]]
// CHECK-NEXT:      %[[L:.*]] = nn_tensor.layer_norm %[[S]], %[[AG]], %[[AB]]
// CHECK-NEXT:      nn_tensor.yield %[[L]]
// CHECK-NEXT:    }
// CHECK-NEXT:    func.return %[[F]]
func.func @layer_norm_prologue(%x: tensor<2x3x8xf32>, %r: tensor<2x3x8xf32>, %g: tensor<8xf32>, %b: tensor<8xf32>) -> tensor<2x3x8xf32> {
  %s = nn_tensor.add %x, %r : (tensor<2x3x8xf32>, tensor<2x3x8xf32>) -> tensor<2x3x8xf32>
  %l = nn_tensor.layer_norm %s, %g, %b {axis = 2 : i64, epsilon = 1.0e-5 : f32} : (tensor<2x3x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<2x3x8xf32>
  func.return %l : tensor<2x3x8xf32>
}

/// The residual sum is also read by the next residual add: it is not a prologue but a
/// kernel of its own, read by the layer norm kernel, whose epilogue is that next add.
// CHECK-LABEL: func.func @negative_layer_norm_prologue
// CHECK-SAME:    (%[[X:.*]]: tensor<2x8xf32>, %[[R:.*]]: tensor<2x8xf32>, %[[G:.*]]: tensor<8xf32>, %[[B:.*]]: tensor<8xf32>)
// CHECK-NEXT:    %[[S:.*]] = nn_tensor.fused %[[X]], %[[R]] {kind = "elementwise"}
// CHECK-NEXT:    ^{{.*}}(%[[AX:.*]]: tensor<2x8xf32>, %[[AR:.*]]: tensor<2x8xf32>):
// CHECK-NEXT:      %[[SS:.*]] = nn_tensor.add %[[AX]], %[[AR]]
// CHECK-NEXT:      nn_tensor.yield %[[SS]]
// CHECK-NEXT:    }
// CHECK-NEXT:    %[[L:.*]] = nn_tensor.fused %[[S]], %[[G]], %[[B]] {kind = "layer_norm"}
// CHECK-NEXT:    ^{{.*}}(%[[AS:.*]]: tensor<2x8xf32>, %[[AG:.*]]: tensor<8xf32>, %[[AB:.*]]: tensor<8xf32>):
// CHECK-NEXT:      %[[LL:.*]] = nn_tensor.layer_norm %[[AS]], %[[AG]], %[[AB]]
// CHECK-NEXT:      %[[T:.*]] = nn_tensor.add %[[AS]], %[[LL]]
// CHECK-NEXT:      nn_tensor.yield %[[T]]
// CHECK-NEXT:    }
// CHECK-NEXT:    func.return %[[L]]
func.func @negative_layer_norm_prologue(%x: tensor<2x8xf32>, %r: tensor<2x8xf32>, %g: tensor<8xf32>, %b: tensor<8xf32>) -> tensor<2x8xf32> {
  %s = nn_tensor.add %x, %r : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
  %l = nn_tensor.layer_norm %s, %g, %b {axis = 1 : i64, epsilon = 1.0e-5 : f32} : (tensor<2x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<2x8xf32>
  %t = nn_tensor.add %s, %l : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
  func.return %t : tensor<2x8xf32>
}

/// RMS-style statistics: reduce_mean(x * x) with its prologue, then + eps and sqrt as
/// its epilogue (on the reduced shape).
// CHECK-LABEL: func.func @reduce_prologue_epilogue
// CHECK-SAME:    (%[[X:.*]]: tensor<3x5xf32>)
// CHECK-NEXT:    %[[F:.*]] = nn_tensor.fused %[[X]] {kind = "reduce"} : (tensor<3x5xf32>) -> tensor<3x1xf32>
// CHECK-NEXT:    ^{{.*}}(%[[AX:.*]]: tensor<3x5xf32>):
// CHECK-NEXT:      %[[E:.*]] = nn_tensor.constant dense<1.000000e-05> : tensor<f32>
// CHECK-NEXT:      %[[SQ:.*]] = nn_tensor.mul %[[AX]], %[[AX]]
// CHECK-NEXT:      %[[M:.*]] = nn_tensor.reduce_mean %[[SQ]]
// CHECK-NEXT:      %[[A:.*]] = nn_tensor.add %[[M]], %[[E]]
// CHECK-NEXT:      %[[R:.*]] = nn_tensor.sqrt %[[A]]
// CHECK-NEXT:      nn_tensor.yield %[[R]]
// CHECK-NEXT:    }
// CHECK-NEXT:    func.return %[[F]]
func.func @reduce_prologue_epilogue(%x: tensor<3x5xf32>) -> tensor<3x1xf32> {
  %sq = nn_tensor.mul %x, %x : (tensor<3x5xf32>, tensor<3x5xf32>) -> tensor<3x5xf32>
  %m = nn_tensor.reduce_mean %sq {axes = array<i64: 1>} : tensor<3x5xf32> -> tensor<3x1xf32>
  %e = nn_tensor.constant dense<1.0e-5> : tensor<f32>
  %a = nn_tensor.add %m, %e : (tensor<3x1xf32>, tensor<f32>) -> tensor<3x1xf32>
  %r = nn_tensor.sqrt %a : tensor<3x1xf32> -> tensor<3x1xf32>
  func.return %r : tensor<3x1xf32>
}

// ---------------------------------------------------------------------- elementwise

/// A chain through single-use values is one kernel; the value used twice (%e) ends its
/// own kernel. A non-splat constant is an operand (a buffer), not cloned.
// CHECK-LABEL: func.func @elementwise_groups
// CHECK-SAME:    (%[[X:.*]]: tensor<2x3xf32>, %[[Y:.*]]: tensor<3xf32>)
// CHECK-NEXT:    %[[V:.*]] = nn_tensor.constant dense<[1.000000e+00, 2.000000e+00, 3.000000e+00]> : tensor<3xf32>
// CHECK-NEXT:    %[[E:.*]] = nn_tensor.fused %[[X]], %[[Y]] {kind = "elementwise"} : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:    ^{{.*}}(%[[AX:.*]]: tensor<2x3xf32>, %[[AY:.*]]: tensor<3xf32>):
// CHECK-NEXT:      %[[A:.*]] = nn_tensor.add %[[AX]], %[[AY]]
// CHECK-NEXT:      %[[EE:.*]] = nn_tensor.exp %[[A]]
// CHECK-NEXT:      nn_tensor.yield %[[EE]]
// CHECK-NEXT:    }
// CHECK-NEXT:    %[[O:.*]] = nn_tensor.fused %[[E]], %[[V]] {kind = "elementwise"} : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xi1>
// CHECK-NEXT:    ^{{.*}}(%[[AE:.*]]: tensor<2x3xf32>, %[[AV:.*]]: tensor<3xf32>):
// CHECK-NEXT:      %[[C:.*]] = nn_tensor.constant dense<2.000000e+00> : tensor<f32>
// CHECK-NEXT:      %[[N:.*]] = nn_tensor.neg %[[AE]]
// CHECK-NEXT:      %[[M:.*]] = nn_tensor.mul %[[AE]], %[[C]]
// CHECK-NEXT:      %[[W:.*]] = nn_tensor.max %[[N]], %[[AV]]
// CHECK-NEXT:      %[[G:.*]] = nn_tensor.greater %[[M]], %[[W]]
// CHECK-NEXT:      nn_tensor.yield %[[G]] : tensor<2x3xi1>
// CHECK-NEXT:    }
// CHECK-NEXT:    func.return %[[E]], %[[O]]
func.func @elementwise_groups(%x: tensor<2x3xf32>, %y: tensor<3xf32>) -> (tensor<2x3xf32>, tensor<2x3xi1>) {
  %v = nn_tensor.constant dense<[1.0, 2.0, 3.0]> : tensor<3xf32>
  %two = nn_tensor.constant dense<2.0> : tensor<f32>
  %a = nn_tensor.add %x, %y : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %e = nn_tensor.exp %a : tensor<2x3xf32> -> tensor<2x3xf32>
  %n = nn_tensor.neg %e : tensor<2x3xf32> -> tensor<2x3xf32>
  %m = nn_tensor.mul %e, %two : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32>
  %w = nn_tensor.max %n, %v : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %g = nn_tensor.greater %m, %w : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xi1>
  func.return %e, %g : tensor<2x3xf32>, tensor<2x3xi1>
}

/// Reshapes stay outside fused ops (they become views): they split elementwise chains.
/// Lone data-movement ops are kernels of their own kind.
// CHECK-LABEL: func.func @data_movement
// CHECK-SAME:    (%[[IDS:.*]]: tensor<1x4xi64>, %[[X:.*]]: tensor<1x4x6xf32>)
// CHECK-NEXT:    %[[W:.*]] = nn_tensor.weight "embeddings" : tensor<10x6xf32>
// CHECK-NEXT:    %[[G:.*]] = nn_tensor.fused %[[W]], %[[IDS]] {kind = "gather"}
// CHECK-NEXT:    ^{{.*}}(%[[AW:.*]]: tensor<10x6xf32>, %[[AI:.*]]: tensor<1x4xi64>):
// CHECK-NEXT:      %[[GG:.*]] = nn_tensor.gather %[[AW]], %[[AI]] {axis = 0 : i64}
// CHECK-NEXT:      nn_tensor.yield %[[GG]]
// CHECK-NEXT:    }
// CHECK-NEXT:    %[[R:.*]] = nn_tensor.reshape %[[G]] : tensor<1x4x6xf32> -> tensor<4x6xf32>
// CHECK-NEXT:    %[[S:.*]] = nn_tensor.fused %[[R]] {kind = "slice"}
// CHECK:         %[[E:.*]] = nn_tensor.fused %[[S]] {kind = "expand"}
// CHECK:         %[[C:.*]] = nn_tensor.fused %[[E]], %[[X]] {kind = "concat"}
// CHECK:         %[[K:.*]] = nn_tensor.fused %[[C]] {kind = "elementwise"}
// CHECK-NEXT:    ^{{.*}}(%[[AC:.*]]: tensor<1x6x6xf32>):
// CHECK-NEXT:      %[[KK:.*]] = nn_tensor.tanh %[[AC]]
// CHECK-NEXT:      nn_tensor.yield %[[KK]]
// CHECK-NEXT:    }
// CHECK-NEXT:    %[[F:.*]] = nn_tensor.reshape %[[K]] : tensor<1x6x6xf32> -> tensor<36xf32>
// CHECK-NEXT:    %[[N:.*]] = nn_tensor.fused %[[F]] {kind = "elementwise"}
// CHECK:         func.return %[[N]]
func.func @data_movement(%ids: tensor<1x4xi64>, %x: tensor<1x4x6xf32>) -> tensor<36xf32> {
  %w = nn_tensor.weight "embeddings" : tensor<10x6xf32>
  %g = nn_tensor.gather %w, %ids {axis = 0 : i64} : (tensor<10x6xf32>, tensor<1x4xi64>) -> tensor<1x4x6xf32>
  %r = nn_tensor.reshape %g : tensor<1x4x6xf32> -> tensor<4x6xf32>
  %s = nn_tensor.slice %r {starts = array<i64: 1, 0>, steps = array<i64: 2, 1>} : tensor<4x6xf32> -> tensor<2x6xf32>
  %e = nn_tensor.expand %s : tensor<2x6xf32> -> tensor<1x2x6xf32>
  %c = nn_tensor.concat %e, %x {axis = 1 : i64} : (tensor<1x2x6xf32>, tensor<1x4x6xf32>) -> tensor<1x6x6xf32>
  %k = nn_tensor.tanh %c : tensor<1x6x6xf32> -> tensor<1x6x6xf32>
  %f = nn_tensor.reshape %k : tensor<1x6x6xf32> -> tensor<36xf32>
  %n = nn_tensor.neg %f : tensor<36xf32> -> tensor<36xf32>
  func.return %n : tensor<36xf32>
}

/// A splat constant read by a data-movement op (or a root) is an operand like any other:
/// only elementwise ops get splat constants cloned into the body.
// CHECK-LABEL: func.func @splat_constant_operand
// CHECK-SAME:    (%[[W:.*]]: tensor<4x6xf32>)
// CHECK-NEXT:    %[[I:.*]] = nn_tensor.constant dense<2> : tensor<i64>
// CHECK-NEXT:    %[[G:.*]] = nn_tensor.fused %[[W]], %[[I]] {kind = "gather"}
// CHECK-NEXT:    ^{{.*}}(%[[AW:.*]]: tensor<4x6xf32>, %[[AI:.*]]: tensor<i64>):
// CHECK-NEXT:      %[[GG:.*]] = nn_tensor.gather %[[AW]], %[[AI]] {axis = 0 : i64}
// CHECK-NEXT:      nn_tensor.yield %[[GG]]
// CHECK-NEXT:    }
// CHECK-NEXT:    func.return %[[G]]
func.func @splat_constant_operand(%w: tensor<4x6xf32>) -> tensor<6xf32> {
  %i = nn_tensor.constant dense<2> : tensor<i64>
  %g = nn_tensor.gather %w, %i {axis = 0 : i64} : (tensor<4x6xf32>, tensor<i64>) -> tensor<6xf32>
  func.return %g : tensor<6xf32>
}
