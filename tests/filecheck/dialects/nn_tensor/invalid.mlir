// RUN: nnjit-opt %s --split-input-file --verify-diagnostics | filecheck %s

/// One case per verifier error of nn_tensor. nnjit-opt (xDSL) prints each diagnostic instead
/// of failing, so every `expected-error` is also checked by the CHECK line after its case.
/// Cases that the custom format cannot express use the generic format.

/// The constant's value type must be its result type.
func.func @constant_type() {
  // expected-error {{attribute tensor<2xf32> expected from variable 'T', but got tensor<f32>}}
  %0 = "nn_tensor.constant"() <{value = dense<1.0> : tensor<f32>}> : () -> tensor<2xf32>
  func.return
}
// CHECK: attribute tensor<2xf32> expected from variable 'T', but got tensor<f32>

// -----

/// Static shapes only.
func.func @dynamic_dim(%x: tensor<?x3xf32>) {
  // expected-error {{dynamic dimension in tensor<?x3xf32>: nnjit needs static shapes}}
  %0 = nn_tensor.relu %x : tensor<?x3xf32> -> tensor<?x3xf32>
  func.return
}
// CHECK: dynamic dimension in tensor<?x3xf32>: nnjit needs static shapes

// -----

func.func @add_no_broadcast(%x: tensor<2x3xf32>, %y: tensor<4x3xf32>) {
  // expected-error {{nn_tensor.add: shapes [(2, 3), (4, 3)] do not broadcast}}
  %0 = nn_tensor.add %x, %y : (tensor<2x3xf32>, tensor<4x3xf32>) -> tensor<2x3xf32>
  func.return
}
// CHECK: nn_tensor.add: shapes [(2, 3), (4, 3)] do not broadcast

// -----

func.func @mul_result_shape(%x: tensor<2x3xf32>, %y: tensor<3xf32>) {
  // expected-error {{nn_tensor.mul: result shape (3,) is not the broadcast shape (2, 3) of the operands}}
  %0 = nn_tensor.mul %x, %y : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<3xf32>
  func.return
}
// CHECK: nn_tensor.mul: result shape (3,) is not the broadcast shape (2, 3) of the operands

// -----

func.func @sub_element_types(%x: tensor<3xf32>, %y: tensor<3xi64>) {
  // expected-error {{nn_tensor.sub: operand and result element types must match, got f32, i64 -> f32}}
  %0 = nn_tensor.sub %x, %y : (tensor<3xf32>, tensor<3xi64>) -> tensor<3xf32>
  func.return
}
// CHECK: nn_tensor.sub: operand and result element types must match, got f32, i64 -> f32

// -----

func.func @compare_not_i1(%x: tensor<3xf32>, %y: tensor<3xf32>) {
  // expected-error {{nn_tensor.less: result must be a tensor of i1}}
  %0 = nn_tensor.less %x, %y : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  func.return
}
// CHECK: nn_tensor.less: result must be a tensor of i1

// -----

func.func @unary_shape(%x: tensor<2x3xf32>) {
  // expected-error {{nn_tensor.neg: result shape (3, 2) differs from input shape (2, 3)}}
  %0 = nn_tensor.neg %x : tensor<2x3xf32> -> tensor<3x2xf32>
  func.return
}
// CHECK: nn_tensor.neg: result shape (3, 2) differs from input shape (2, 3)

// -----

func.func @float_unary_int(%x: tensor<3xi64>) {
  // expected-error {{nn_tensor.sqrt: expects float input and result of one type}}
  %0 = nn_tensor.sqrt %x : tensor<3xi64> -> tensor<3xi64>
  func.return
}
// CHECK: nn_tensor.sqrt: expects float input and result of one type

// -----

func.func @where_cond(%c: tensor<3xf32>, %x: tensor<3xf32>) {
  // expected-error {{nn_tensor.where: condition must be a tensor of i1}}
  %0 = nn_tensor.where %c, %x, %x : (tensor<3xf32>, tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  func.return
}
// CHECK: nn_tensor.where: condition must be a tensor of i1

// -----

func.func @matmul_rank(%x: tensor<3xf32>, %y: tensor<3x4xf32>) {
  // expected-error {{nn_tensor.matmul: operands must have rank >= 2}}
  %0 = nn_tensor.matmul %x, %y : (tensor<3xf32>, tensor<3x4xf32>) -> tensor<4xf32>
  func.return
}
// CHECK: nn_tensor.matmul: operands must have rank >= 2

// -----

func.func @matmul_contraction(%x: tensor<2x3xf32>, %y: tensor<4x5xf32>) {
  // expected-error {{nn_tensor.matmul: contraction dims differ: lhs (2, 3) vs rhs (4, 5)}}
  %0 = nn_tensor.matmul %x, %y : (tensor<2x3xf32>, tensor<4x5xf32>) -> tensor<2x5xf32>
  func.return
}
// CHECK: nn_tensor.matmul: contraction dims differ: lhs (2, 3) vs rhs (4, 5)

// -----

func.func @matmul_batch(%x: tensor<2x4x3xf32>, %y: tensor<5x3x4xf32>) {
  // expected-error {{nn_tensor.matmul: batch dims: shapes [(2,), (5,)] do not broadcast}}
  %0 = nn_tensor.matmul %x, %y : (tensor<2x4x3xf32>, tensor<5x3x4xf32>) -> tensor<2x4x4xf32>
  func.return
}
// CHECK: nn_tensor.matmul: batch dims: shapes [(2,), (5,)] do not broadcast

// -----

func.func @matmul_result(%x: tensor<2x3xf32>, %y: tensor<3x4xf32>) {
  // expected-error {{nn_tensor.matmul: result shape (2, 3), expected (2, 4)}}
  %0 = nn_tensor.matmul %x, %y : (tensor<2x3xf32>, tensor<3x4xf32>) -> tensor<2x3xf32>
  func.return
}
// CHECK: nn_tensor.matmul: result shape (2, 3), expected (2, 4)

// -----

func.func @gemm_rank(%x: tensor<1x2x3xf32>, %y: tensor<3x4xf32>) {
  // expected-error {{nn_tensor.gemm: operands must be 2-D}}
  %0 = nn_tensor.gemm %x, %y : (tensor<1x2x3xf32>, tensor<3x4xf32>) -> tensor<2x4xf32>
  func.return
}
// CHECK: nn_tensor.gemm: operands must be 2-D

// -----

/// trans_b = 1 reads the 3x5 B as 5x3: its contraction dim 5 is not A's 3.
func.func @gemm_contraction(%x: tensor<2x3xf32>, %y: tensor<3x5xf32>) {
  // expected-error {{nn_tensor.gemm: contraction dims differ: (2, 3) vs (3, 5)}}
  %0 = nn_tensor.gemm %x, %y {trans_b = 1 : i64} : (tensor<2x3xf32>, tensor<3x5xf32>) -> tensor<2x3xf32>
  func.return
}
// CHECK: nn_tensor.gemm: contraction dims differ: (2, 3) vs (3, 5)

// -----

func.func @gemm_result(%x: tensor<3x2xf32>, %y: tensor<3x4xf32>) {
  // expected-error {{nn_tensor.gemm: result shape (3, 4), expected (2, 4)}}
  %0 = nn_tensor.gemm %x, %y {trans_a = 1 : i64} : (tensor<3x2xf32>, tensor<3x4xf32>) -> tensor<3x4xf32>
  func.return
}
// CHECK: nn_tensor.gemm: result shape (3, 4), expected (2, 4)

// -----

func.func @conv_rank(%x: tensor<1x2x5xf32>, %w: tensor<3x2x3xf32>) {
  // expected-error {{nn_tensor.conv: only 2-D convolution (NCHW) is supported}}
  %0 = nn_tensor.conv %x, %w {strides = array<i64: 1>, pads = array<i64: 0, 0>, dilations = array<i64: 1>} : (tensor<1x2x5xf32>, tensor<3x2x3xf32>) -> tensor<1x3x3xf32>
  func.return
}
// CHECK: nn_tensor.conv: only 2-D convolution (NCHW) is supported

// -----

func.func @conv_channels(%x: tensor<1x4x5x5xf32>, %w: tensor<3x3x3x3xf32>) {
  // expected-error {{nn_tensor.conv: input channels 4 != weight channels 3 * group 1}}
  %0 = nn_tensor.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>} : (tensor<1x4x5x5xf32>, tensor<3x3x3x3xf32>) -> tensor<1x3x3x3xf32>
  func.return
}
// CHECK: nn_tensor.conv: input channels 4 != weight channels 3 * group 1

// -----

func.func @conv_attributes(%x: tensor<1x3x5x5xf32>, %w: tensor<3x3x3x3xf32>) {
  // expected-error {{nn_tensor.conv: strides/dilations need 2 values, pads 4}}
  %0 = nn_tensor.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0>, dilations = array<i64: 1, 1>} : (tensor<1x3x5x5xf32>, tensor<3x3x3x3xf32>) -> tensor<1x3x3x3xf32>
  func.return
}
// CHECK: nn_tensor.conv: strides/dilations need 2 values, pads 4

// -----

func.func @conv_result(%x: tensor<1x3x5x5xf32>, %w: tensor<3x3x3x3xf32>) {
  // expected-error {{nn_tensor.conv: result shape (1, 3, 5, 5), expected (1, 3, 3, 3)}}
  %0 = nn_tensor.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>} : (tensor<1x3x5x5xf32>, tensor<3x3x3x3xf32>) -> tensor<1x3x5x5xf32>
  func.return
}
// CHECK: nn_tensor.conv: result shape (1, 3, 5, 5), expected (1, 3, 3, 3)

// -----

func.func @softmax_axis(%x: tensor<2x3xf32>) {
  // expected-error {{nn_tensor.softmax: axis 2 out of range}}
  %0 = nn_tensor.softmax %x {axis = 2 : i64} : tensor<2x3xf32> -> tensor<2x3xf32>
  func.return
}
// CHECK: nn_tensor.softmax: axis 2 out of range

// -----

func.func @softmax_type(%x: tensor<2x3xf32>) {
  // expected-error {{nn_tensor.softmax: result type must equal input type}}
  %0 = nn_tensor.softmax %x {axis = 1 : i64} : tensor<2x3xf32> -> tensor<3x2xf32>
  func.return
}
// CHECK: nn_tensor.softmax: result type must equal input type

// -----

func.func @layer_norm_axis(%x: tensor<2x3xf32>, %g: tensor<3xf32>) {
  // expected-error {{nn_tensor.layer_norm: axis 2 out of range}}
  %0 = nn_tensor.layer_norm %x, %g {axis = 2 : i64, epsilon = 1.0e-05 : f32} : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  func.return
}
// CHECK: nn_tensor.layer_norm: axis 2 out of range

// -----

func.func @layer_norm_type(%x: tensor<2x3xf32>, %g: tensor<3xf32>) {
  // expected-error {{nn_tensor.layer_norm: result type must equal input type}}
  %0 = nn_tensor.layer_norm %x, %g {axis = 1 : i64, epsilon = 1.0e-05 : f32} : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<3x2xf32>
  func.return
}
// CHECK: nn_tensor.layer_norm: result type must equal input type

// -----

func.func @layer_norm_scale(%x: tensor<2x3xf32>, %g: tensor<4xf32>) {
  // expected-error {{nn_tensor.layer_norm: scale/bias shape (4,) does not broadcast to the normalised dims (3,)}}
  %0 = nn_tensor.layer_norm %x, %g {axis = 1 : i64, epsilon = 1.0e-05 : f32} : (tensor<2x3xf32>, tensor<4xf32>) -> tensor<2x3xf32>
  func.return
}
// CHECK: nn_tensor.layer_norm: scale/bias shape (4,) does not broadcast to the normalised dims (3,)

// -----

func.func @reduce_axes(%x: tensor<2x3xf32>) {
  // expected-error {{nn_tensor.reduce_sum: axes [1, 0] must be sorted, unique and in [0, 2)}}
  %0 = nn_tensor.reduce_sum %x {axes = array<i64: 1, 0>} : tensor<2x3xf32> -> tensor<1x1xf32>
  func.return
}
// CHECK: nn_tensor.reduce_sum: axes [1, 0] must be sorted, unique and in [0, 2)

// -----

func.func @reduce_result(%x: tensor<2x3xf32>) {
  // expected-error {{nn_tensor.reduce_mean: result shape (2,), expected (2, 1)}}
  %0 = nn_tensor.reduce_mean %x {axes = array<i64: 1>} : tensor<2x3xf32> -> tensor<2xf32>
  func.return
}
// CHECK: nn_tensor.reduce_mean: result shape (2,), expected (2, 1)

// -----

func.func @transpose_perm(%x: tensor<2x3xf32>) {
  // expected-error {{nn_tensor.transpose: perm [0, 0] is not a permutation}}
  %0 = nn_tensor.transpose %x {perm = array<i64: 0, 0>} : tensor<2x3xf32> -> tensor<2x2xf32>
  func.return
}
// CHECK: nn_tensor.transpose: perm [0, 0] is not a permutation

// -----

func.func @transpose_result(%x: tensor<2x3xf32>) {
  // expected-error {{nn_tensor.transpose: result shape does not match perm}}
  %0 = nn_tensor.transpose %x {perm = array<i64: 1, 0>} : tensor<2x3xf32> -> tensor<2x3xf32>
  func.return
}
// CHECK: nn_tensor.transpose: result shape does not match perm

// -----

func.func @reshape_count(%x: tensor<2x3xf32>) {
  // expected-error {{nn_tensor.reshape: element counts differ}}
  %0 = nn_tensor.reshape %x : tensor<2x3xf32> -> tensor<7xf32>
  func.return
}
// CHECK: nn_tensor.reshape: element counts differ

// -----

func.func @reshape_type(%x: tensor<2x3xf32>) {
  // expected-error {{nn_tensor.reshape: element types differ}}
  %0 = nn_tensor.reshape %x : tensor<2x3xf32> -> tensor<6xi32>
  func.return
}
// CHECK: nn_tensor.reshape: element types differ

// -----

func.func @expand_incompatible(%x: tensor<2x3xf32>) {
  // expected-error {{nn_tensor.expand: shapes [(2, 3), (2, 4)] do not broadcast}}
  %0 = nn_tensor.expand %x : tensor<2x3xf32> -> tensor<2x4xf32>
  func.return
}
// CHECK: nn_tensor.expand: shapes [(2, 3), (2, 4)] do not broadcast

// -----

/// Expand never shrinks: the input's 3 is not the result's 1.
func.func @expand_shrinks(%x: tensor<2x3xf32>) {
  // expected-error {{nn_tensor.expand: input does not broadcast to the result}}
  %0 = nn_tensor.expand %x : tensor<2x3xf32> -> tensor<2x1xf32>
  func.return
}
// CHECK: nn_tensor.expand: input does not broadcast to the result

// -----

func.func @gather_axis(%x: tensor<2x3xf32>, %i: tensor<4xi64>) {
  // expected-error {{nn_tensor.gather: axis 2 out of range}}
  %0 = nn_tensor.gather %x, %i {axis = 2 : i64} : (tensor<2x3xf32>, tensor<4xi64>) -> tensor<2x3x4xf32>
  func.return
}
// CHECK: nn_tensor.gather: axis 2 out of range

// -----

func.func @gather_result(%x: tensor<2x3xf32>, %i: tensor<4xi64>) {
  // expected-error {{nn_tensor.gather: result shape mismatch}}
  %0 = nn_tensor.gather %x, %i {axis = 0 : i64} : (tensor<2x3xf32>, tensor<4xi64>) -> tensor<2x4xf32>
  func.return
}
// CHECK: nn_tensor.gather: result shape mismatch

// -----

func.func @gather_nd_rank0(%x: tensor<3xf32>, %i: tensor<i64>) {
  // expected-error {{nn_tensor.gather_nd: indices need rank >= 1 (their last dim is the index depth)}}
  %0 = nn_tensor.gather_nd %x, %i : (tensor<3xf32>, tensor<i64>) -> tensor<f32>
  func.return
}
// CHECK: nn_tensor.gather_nd: indices need rank >= 1 (their last dim is the index depth)

// -----

func.func @gather_nd_depth(%x: tensor<2x3xf32>, %i: tensor<4x3xi64>) {
  // expected-error {{nn_tensor.gather_nd: index depth exceeds data rank}}
  %0 = nn_tensor.gather_nd %x, %i : (tensor<2x3xf32>, tensor<4x3xi64>) -> tensor<4xf32>
  func.return
}
// CHECK: nn_tensor.gather_nd: index depth exceeds data rank

// -----

func.func @gather_nd_result(%x: tensor<2x3xf32>, %i: tensor<4x1xi64>) {
  // expected-error {{nn_tensor.gather_nd: result shape mismatch}}
  %0 = nn_tensor.gather_nd %x, %i : (tensor<2x3xf32>, tensor<4x1xi64>) -> tensor<4xf32>
  func.return
}
// CHECK: nn_tensor.gather_nd: result shape mismatch

// -----

func.func @slice_arity(%x: tensor<2x3xf32>) {
  // expected-error {{nn_tensor.slice: starts/steps need one value per dim}}
  %0 = nn_tensor.slice %x {starts = array<i64: 0>, steps = array<i64: 1>} : tensor<2x3xf32> -> tensor<2x3xf32>
  func.return
}
// CHECK: nn_tensor.slice: starts/steps need one value per dim

// -----

func.func @slice_step_zero(%x: tensor<2x3xf32>) {
  // expected-error {{nn_tensor.slice: step of dim 1 is 0}}
  %0 = nn_tensor.slice %x {starts = array<i64: 0, 0>, steps = array<i64: 1, 0>} : tensor<2x3xf32> -> tensor<2x3xf32>
  func.return
}
// CHECK: nn_tensor.slice: step of dim 1 is 0

// -----

/// Starting at 1 with step 1, three elements would read index 3 of a dim of size 3.
func.func @slice_bounds(%x: tensor<2x3xf32>) {
  // expected-error {{nn_tensor.slice: dim 1 reads out of bounds}}
  %0 = nn_tensor.slice %x {starts = array<i64: 0, 1>, steps = array<i64: 1, 1>} : tensor<2x3xf32> -> tensor<2x3xf32>
  func.return
}
// CHECK: nn_tensor.slice: dim 1 reads out of bounds

// -----

func.func @split_off_axis(%x: tensor<2x6xf32>) {
  // expected-error {{nn_tensor.split: output shapes must match the input off-axis}}
  %0:2 = nn_tensor.split %x {axis = 1 : i64} : tensor<2x6xf32> -> tensor<2x3xf32>, tensor<1x3xf32>
  func.return
}
// CHECK: nn_tensor.split: output shapes must match the input off-axis

// -----

func.func @split_sizes(%x: tensor<2x6xf32>) {
  // expected-error {{nn_tensor.split: output sizes must add up to the input dim}}
  %0:2 = nn_tensor.split %x {axis = 1 : i64} : tensor<2x6xf32> -> tensor<2x3xf32>, tensor<2x2xf32>
  func.return
}
// CHECK: nn_tensor.split: output sizes must add up to the input dim

// -----

func.func @concat_axis(%x: tensor<2x3xf32>) {
  // expected-error {{nn_tensor.concat: axis 2 out of range}}
  %0 = nn_tensor.concat %x, %x {axis = 2 : i64} : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x6xf32>
  func.return
}
// CHECK: nn_tensor.concat: axis 2 out of range

// -----

func.func @concat_off_axis(%x: tensor<2x3xf32>, %y: tensor<2x4xf32>) {
  // expected-error {{nn_tensor.concat: input shapes must match the result off-axis}}
  %0 = nn_tensor.concat %x, %y {axis = 0 : i64} : (tensor<2x3xf32>, tensor<2x4xf32>) -> tensor<4x3xf32>
  func.return
}
// CHECK: nn_tensor.concat: input shapes must match the result off-axis

// -----

func.func @concat_sizes(%x: tensor<2x3xf32>) {
  // expected-error {{nn_tensor.concat: input sizes must add up to the result dim}}
  %0 = nn_tensor.concat %x, %x {axis = 0 : i64} : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<5x3xf32>
  func.return
}
// CHECK: nn_tensor.concat: input sizes must add up to the result dim

// -----

func.func @fused_arg_types(%x: tensor<3xf32>) {
  // expected-error {{nn_tensor.fused: block argument types must match operands}}
  %0 = nn_tensor.fused %x {kind = "elementwise"} : (tensor<3xf32>) -> tensor<3xf32> {
  ^bb0(%a: tensor<4xf32>):
    %r = nn_tensor.slice %a {starts = array<i64: 0>, steps = array<i64: 1>} : tensor<4xf32> -> tensor<3xf32>
    nn_tensor.yield %r : tensor<3xf32>
  }
  func.return
}
// CHECK: nn_tensor.fused: block argument types must match operands

// -----

func.func @fused_no_yield(%x: tensor<3xf32>) {
  // expected-error {{nn_tensor.fused: body must end in nn_tensor.yield of one value}}
  %0 = nn_tensor.fused %x {kind = "elementwise"} : (tensor<3xf32>) -> tensor<3xf32> {
  ^bb0(%a: tensor<3xf32>):
    nn_tensor.yield %a, %a : tensor<3xf32>, tensor<3xf32>
  }
  func.return
}
// CHECK: nn_tensor.fused: body must end in nn_tensor.yield of one value

// -----

func.func @fused_yield_type(%x: tensor<3xf32>) {
  // expected-error {{nn_tensor.fused: yielded type must equal the result type}}
  %0 = nn_tensor.fused %x {kind = "elementwise"} : (tensor<3xf32>) -> tensor<3xi1> {
  ^bb0(%a: tensor<3xf32>):
    nn_tensor.yield %a : tensor<3xf32>
  }
  func.return
}
// CHECK: nn_tensor.fused: yielded type must equal the result type

// -----

/// A fused body reads outside values only through its block arguments.
func.func @fused_isolated(%x: tensor<3xf32>) {
  %0 = nn_tensor.fused %x {kind = "elementwise"} : (tensor<3xf32>) -> tensor<3xf32> {
  ^bb0(%a: tensor<3xf32>):
    // expected-error {{Operation using value defined out of its IsolatedFromAbove parent}}
    %r = nn_tensor.add %a, %x : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
    nn_tensor.yield %r : tensor<3xf32>
  }
  func.return
}
// CHECK: Operation using value defined out of its IsolatedFromAbove parent

// -----

func.func @yield_outside() {
  // expected-error {{'nn_tensor.yield' expects parent op 'nn_tensor.fused'}}
  "nn_tensor.yield"() : () -> ()
}
// CHECK: 'nn_tensor.yield' expects parent op 'nn_tensor.fused'

// -----

/// matmul_q8p's rhs holds ceil(K / 2) rows of k pairs (K = 5: 3 rows).
func.func @matmul_q8p_rows(%a: tensor<2x5xi32>, %w: tensor<2x16xi8>) {
  // expected-error {{nn_tensor.matmul_q8p: rhs (2, 16) must be [ceil(K / 2), 2N] = [3, 2N] bytes for K = 5}}
  %r = nn_tensor.matmul_q8p %a, %w : (tensor<2x5xi32>, tensor<2x16xi8>) -> tensor<2x8xi32>
  func.return
}
// CHECK: nn_tensor.matmul_q8p: rhs (2, 16) must be [ceil(K / 2), 2N] = [3, 2N] bytes for K = 5

// -----

/// matmul_q8p's rhs is bytes.
func.func @matmul_q8p_bytes(%a: tensor<2x4xi32>, %w: tensor<2x16xi32>) {
  // expected-error {{nn_tensor.matmul_q8p: tensor<2x16xi32> is not an i8 tensor}}
  %r = nn_tensor.matmul_q8p %a, %w : (tensor<2x4xi32>, tensor<2x16xi32>) -> tensor<2x8xi32>
  func.return
}
// CHECK: nn_tensor.matmul_q8p: tensor<2x16xi32> is not an i8 tensor
