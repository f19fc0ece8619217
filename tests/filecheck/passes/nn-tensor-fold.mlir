// RUN: nnjit-opt %s -p nn-tensor-fold | filecheck %s
// RUN: nnjit-opt %s -p 'nn-tensor-fold{max-elements=2}' | filecheck %s --check-prefix=SMALL

// ------------------------------------------------------------------ constant folding

/// Shape arithmetic on constants folds to one constant (evaluated by nn_tensor_eval's rules).
// CHECK-LABEL: func.func @fold_int_chain
// CHECK-NEXT:    %[[C:.*]] = nn_tensor.constant dense<[4, 10, 18]> : tensor<3xi64>
// CHECK-NEXT:    func.return %[[C]] : tensor<3xi64>
/// With max-elements=2 the 3-element product is not materialised.
// SMALL-LABEL: func.func @fold_int_chain
// SMALL:         nn_tensor.mul
func.func @fold_int_chain() -> tensor<3xi64> {
  %a = nn_tensor.constant dense<[1, 2, 3]> : tensor<3xi64>
  %b = nn_tensor.constant dense<[4, 5, 6]> : tensor<3xi64>
  %m = nn_tensor.mul %a, %b : (tensor<3xi64>, tensor<3xi64>) -> tensor<3xi64>
  func.return %m : tensor<3xi64>
}

/// Data movement and comparisons of constants fold too ([1, 3, 2, 4] == [1, 3, 2, 5]).
// CHECK-LABEL: func.func @fold_data_movement
// CHECK-NEXT:    %[[C:.*]] = nn_tensor.constant dense<[true, true, true, false]> : tensor<4xi1>
// CHECK-NEXT:    func.return %[[C]] : tensor<4xi1>
func.func @fold_data_movement() -> tensor<4xi1> {
  %a = nn_tensor.constant dense<[[1, 2], [3, 4]]> : tensor<2x2xi64>
  %t = nn_tensor.transpose %a {perm = array<i64: 1, 0>} : tensor<2x2xi64> -> tensor<2x2xi64>
  %r = nn_tensor.reshape %t : tensor<2x2xi64> -> tensor<4xi64>
  %k = nn_tensor.constant dense<[1, 3, 2, 5]> : tensor<4xi64>
  %e = nn_tensor.equal %r, %k : (tensor<4xi64>, tensor<4xi64>) -> tensor<4xi1>
  func.return %e : tensor<4xi1>
}

/// Float folding: sqrt(4) * 0.5 = 1.
// CHECK-LABEL: func.func @fold_float
// CHECK-NEXT:    %[[C:.*]] = nn_tensor.constant dense<1.000000e+00> : tensor<f32>
// CHECK-NEXT:    func.return %[[C]] : tensor<f32>
/// With max-elements=2 scalars still fold.
// SMALL-LABEL: func.func @fold_float
// SMALL-NEXT:    %[[C:.*]] = nn_tensor.constant dense<1.000000e+00> : tensor<f32>
// SMALL-NEXT:    func.return %[[C]] : tensor<f32>
func.func @fold_float() -> tensor<f32> {
  %a = nn_tensor.constant dense<4.0> : tensor<f32>
  %h = nn_tensor.constant dense<0.5> : tensor<f32>
  %s = nn_tensor.sqrt %a : tensor<f32> -> tensor<f32>
  %m = nn_tensor.mul %s, %h : (tensor<f32>, tensor<f32>) -> tensor<f32>
  func.return %m : tensor<f32>
}

/// A weight is not a constant: nothing to fold.
// CHECK-LABEL: func.func @negative_fold_weight
// CHECK-NEXT:    %[[W:.*]] = nn_tensor.weight "w"
// CHECK-NEXT:    %[[B:.*]] = nn_tensor.constant dense<[4.000000e+00, 5.000000e+00, 6.000000e+00]>
// CHECK-NEXT:    %[[M:.*]] = nn_tensor.mul %[[W]], %[[B]]
// CHECK-NEXT:    func.return %[[M]]
func.func @negative_fold_weight() -> tensor<3xf32> {
  %w = nn_tensor.weight "w" : tensor<3xf32>
  %b = nn_tensor.constant dense<[4.0, 5.0, 6.0]> : tensor<3xf32>
  %m = nn_tensor.mul %w, %b : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  func.return %m : tensor<3xf32>
}

/// An integer division by zero has no value (onnxruntime fails on it): left to run time.
// CHECK-LABEL: func.func @negative_fold_int_div_by_zero
// CHECK:         nn_tensor.div
func.func @negative_fold_int_div_by_zero() -> tensor<2xi64> {
  %a = nn_tensor.constant dense<[7, 8]> : tensor<2xi64>
  %b = nn_tensor.constant dense<[2, 0]> : tensor<2xi64>
  %q = nn_tensor.div %a, %b : (tensor<2xi64>, tensor<2xi64>) -> tensor<2xi64>
  func.return %q : tensor<2xi64>
}

/// Gather indices lie in [-dim, dim): -4 of a dim of 3 is not wrapped to -1.
// CHECK-LABEL: func.func @negative_fold_gather_out_of_range
// CHECK:         nn_tensor.gather
func.func @negative_fold_gather_out_of_range() -> tensor<1xf32> {
  %d = nn_tensor.constant dense<[1.0, 2.0, 3.0]> : tensor<3xf32>
  %i = nn_tensor.constant dense<[-4]> : tensor<1xi64>
  %g = nn_tensor.gather %d, %i {axis = 0 : i64} : (tensor<3xf32>, tensor<1xi64>) -> tensor<1xf32>
  func.return %g : tensor<1xf32>
}

// --------------------------------------------------------------------------- no-ops

/// Reshape to its own type disappears; reshape of reshape becomes one reshape.
// CHECK-LABEL: func.func @reshape_noops
// CHECK-SAME:    (%[[X:.*]]: tensor<2x6xf32>)
// CHECK-NEXT:    %[[R:.*]] = nn_tensor.reshape %[[X]] : tensor<2x6xf32> -> tensor<3x4xf32>
// CHECK-NEXT:    func.return %[[R]] : tensor<3x4xf32>
func.func @reshape_noops(%x: tensor<2x6xf32>) -> tensor<3x4xf32> {
  %s = nn_tensor.reshape %x : tensor<2x6xf32> -> tensor<2x6xf32>
  %a = nn_tensor.reshape %s : tensor<2x6xf32> -> tensor<12xf32>
  %b = nn_tensor.reshape %a : tensor<12xf32> -> tensor<3x4xf32>
  func.return %b : tensor<3x4xf32>
}

/// Identity transposes disappear; two transposes compose (here into [2, 1, 0]).
// CHECK-LABEL: func.func @transpose_noops
// CHECK-SAME:    (%[[X:.*]]: tensor<2x3x4xf32>)
// CHECK-NEXT:    %[[T:.*]] = nn_tensor.transpose %[[X]] {perm = array<i64: 2, 1, 0>} : tensor<2x3x4xf32> -> tensor<4x3x2xf32>
// CHECK-NEXT:    func.return %[[T]] : tensor<4x3x2xf32>
func.func @transpose_noops(%x: tensor<2x3x4xf32>) -> tensor<4x3x2xf32> {
  %i = nn_tensor.transpose %x {perm = array<i64: 0, 1, 2>} : tensor<2x3x4xf32> -> tensor<2x3x4xf32>
  %a = nn_tensor.transpose %i {perm = array<i64: 1, 2, 0>} : tensor<2x3x4xf32> -> tensor<3x4x2xf32>
  %b = nn_tensor.transpose %a {perm = array<i64: 1, 0, 2>} : tensor<3x4x2xf32> -> tensor<4x3x2xf32>
  func.return %b : tensor<4x3x2xf32>
}

/// A transpose undone by its inverse leaves the input.
// CHECK-LABEL: func.func @transpose_inverse
// CHECK-SAME:    (%[[X:.*]]: tensor<2x3x4xf32>)
// CHECK-NEXT:    func.return %[[X]] : tensor<2x3x4xf32>
func.func @transpose_inverse(%x: tensor<2x3x4xf32>) -> tensor<2x3x4xf32> {
  %a = nn_tensor.transpose %x {perm = array<i64: 1, 2, 0>} : tensor<2x3x4xf32> -> tensor<3x4x2xf32>
  %b = nn_tensor.transpose %a {perm = array<i64: 2, 0, 1>} : tensor<3x4x2xf32> -> tensor<2x3x4xf32>
  func.return %b : tensor<2x3x4xf32>
}

/// Expand and cast to the input's own type are no-ops.
// CHECK-LABEL: func.func @expand_cast_noops
// CHECK-SAME:    (%[[X:.*]]: tensor<2x3xf32>)
// CHECK-NEXT:    func.return %[[X]] : tensor<2x3xf32>
func.func @expand_cast_noops(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %e = nn_tensor.expand %x : tensor<2x3xf32> -> tensor<2x3xf32>
  %c = nn_tensor.cast %e : tensor<2x3xf32> -> tensor<2x3xf32>
  func.return %c : tensor<2x3xf32>
}

/// A real broadcast and a real conversion stay.
// CHECK-LABEL: func.func @negative_expand_cast
// CHECK:         nn_tensor.expand
// CHECK-NEXT:    nn_tensor.cast
func.func @negative_expand_cast(%x: tensor<1x3xf32>) -> tensor<2x3xi32> {
  %e = nn_tensor.expand %x : tensor<1x3xf32> -> tensor<2x3xf32>
  %c = nn_tensor.cast %e : tensor<2x3xf32> -> tensor<2x3xi32>
  func.return %c : tensor<2x3xi32>
}

/// x * 1, 1 * x, x + 0, 0 + x, x - 0 and x / 1 with splat constants are x.
// CHECK-LABEL: func.func @neutral_elements
// CHECK-SAME:    (%[[X:.*]]: tensor<2x3xf32>)
// CHECK-NEXT:    func.return %[[X]] : tensor<2x3xf32>
func.func @neutral_elements(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %one = nn_tensor.constant dense<1.0> : tensor<f32>
  %ones = nn_tensor.constant dense<1.0> : tensor<1x3xf32>
  %zero = nn_tensor.constant dense<0.0> : tensor<3xf32>
  %a = nn_tensor.mul %x, %one : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32>
  %b = nn_tensor.mul %ones, %a : (tensor<1x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %c = nn_tensor.add %b, %zero : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %d = nn_tensor.add %zero, %c : (tensor<3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %e = nn_tensor.sub %d, %zero : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %f = nn_tensor.div %e, %one : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32>
  func.return %f : tensor<2x3xf32>
}

/// 0 - x is -x, not x; x / 2 is not x; x * 1 that broadcasts x to a bigger shape is not x.
// CHECK-LABEL: func.func @negative_neutral_elements
// CHECK:         nn_tensor.sub
// CHECK-NEXT:    nn_tensor.div
// CHECK-NEXT:    nn_tensor.mul
// CHECK-SAME:    -> tensor<4x3xf32>
func.func @negative_neutral_elements(%x: tensor<3xf32>) -> tensor<4x3xf32> {
  %zero = nn_tensor.constant dense<0.0> : tensor<f32>
  %two = nn_tensor.constant dense<2.0> : tensor<f32>
  %ones = nn_tensor.constant dense<1.0> : tensor<4x3xf32>
  %a = nn_tensor.sub %zero, %x : (tensor<f32>, tensor<3xf32>) -> tensor<3xf32>
  %b = nn_tensor.div %a, %two : (tensor<3xf32>, tensor<f32>) -> tensor<3xf32>
  %c = nn_tensor.mul %b, %ones : (tensor<3xf32>, tensor<4x3xf32>) -> tensor<4x3xf32>
  func.return %c : tensor<4x3xf32>
}

/// A slice of everything, a concat of one input and a split into one output are no-ops.
// CHECK-LABEL: func.func @data_movement_noops
// CHECK-SAME:    (%[[X:.*]]: tensor<2x3xf32>)
// CHECK-NEXT:    func.return %[[X]] : tensor<2x3xf32>
func.func @data_movement_noops(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %s = nn_tensor.slice %x {starts = array<i64: 0, 0>, steps = array<i64: 1, 1>} : tensor<2x3xf32> -> tensor<2x3xf32>
  %c = nn_tensor.concat %s {axis = 1 : i64} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %p = nn_tensor.split %c {axis = 0 : i64} : tensor<2x3xf32> -> tensor<2x3xf32>
  func.return %p : tensor<2x3xf32>
}

/// A full-size slice that reverses a dim is not a no-op.
// CHECK-LABEL: func.func @negative_slice_reverse
// CHECK:         nn_tensor.slice %{{.*}} {starts = array<i64: 0, 2>, steps = array<i64: 1, -1>}
func.func @negative_slice_reverse(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %s = nn_tensor.slice %x {starts = array<i64: 0, 2>, steps = array<i64: 1, -1>} : tensor<2x3xf32> -> tensor<2x3xf32>
  func.return %s : tensor<2x3xf32>
}

// ------------------------------------------------------------------ reshape sinking

/// GPT-2: Gemm (2-D) -> reshape (3-D) -> elementwise. The reshape moves past the
/// elementwise ops (scalars and the trailing-dim bias are kept; the residual gets a view),
/// so they can become the gemm's epilogue.
// CHECK-LABEL: func.func @sink_reshape
// CHECK-SAME:    (%[[X:.*]]: tensor<6x4xf32>, %[[W:.*]]: tensor<4x8xf32>, %[[B:.*]]: tensor<8xf32>, %[[R:.*]]: tensor<2x3x8xf32>)
// CHECK-NEXT:    %[[H:.*]] = nn_tensor.constant dense<5.000000e-01> : tensor<f32>
// CHECK-NEXT:    %[[G:.*]] = nn_tensor.gemm %[[X]], %[[W]]
// CHECK-NEXT:    %[[M:.*]] = nn_tensor.mul %[[G]], %[[H]] : (tensor<6x8xf32>, tensor<f32>) -> tensor<6x8xf32>
// CHECK-NEXT:    %[[A:.*]] = nn_tensor.add %[[M]], %[[B]] : (tensor<6x8xf32>, tensor<8xf32>) -> tensor<6x8xf32>
// CHECK-NEXT:    %[[RV:.*]] = nn_tensor.reshape %[[R]] : tensor<2x3x8xf32> -> tensor<6x8xf32>
// CHECK-NEXT:    %[[S:.*]] = nn_tensor.add %[[RV]], %[[A]] : (tensor<6x8xf32>, tensor<6x8xf32>) -> tensor<6x8xf32>
// CHECK-NEXT:    %[[OUT:.*]] = nn_tensor.reshape %[[S]] : tensor<6x8xf32> -> tensor<2x3x8xf32>
// CHECK-NEXT:    func.return %[[OUT]]
func.func @sink_reshape(%x: tensor<6x4xf32>, %w: tensor<4x8xf32>, %b: tensor<8xf32>, %r: tensor<2x3x8xf32>) -> tensor<2x3x8xf32> {
  %half = nn_tensor.constant dense<0.5> : tensor<f32>
  %g = nn_tensor.gemm %x, %w : (tensor<6x4xf32>, tensor<4x8xf32>) -> tensor<6x8xf32>
  %v = nn_tensor.reshape %g : tensor<6x8xf32> -> tensor<2x3x8xf32>
  %m = nn_tensor.mul %v, %half : (tensor<2x3x8xf32>, tensor<f32>) -> tensor<2x3x8xf32>
  %a = nn_tensor.add %m, %b : (tensor<2x3x8xf32>, tensor<8xf32>) -> tensor<2x3x8xf32>
  %s = nn_tensor.add %r, %a : (tensor<2x3x8xf32>, tensor<2x3x8xf32>) -> tensor<2x3x8xf32>
  func.return %s : tensor<2x3x8xf32>
}

/// The operand %c broadcasts over a dim that the reshape splits (3x1 over 2x3x8 vs 6x8):
/// the reshape stays before the add. The reshape of %y, defined after %x's, is sunk past
/// the mul (towards %y's producer); the reshape of %x then stays (no ping-pong).
// CHECK-LABEL: func.func @negative_sink_reshape
// CHECK-SAME:    (%[[X:.*]]: tensor<6x8xf32>, %[[C:.*]]: tensor<3x1xf32>, %[[Y:.*]]: tensor<48xf32>)
// CHECK-NEXT:    %[[V:.*]] = nn_tensor.reshape %[[X]] : tensor<6x8xf32> -> tensor<2x3x8xf32>
// CHECK-NEXT:    %[[A:.*]] = nn_tensor.add %[[V]], %[[C]] : (tensor<2x3x8xf32>, tensor<3x1xf32>) -> tensor<2x3x8xf32>
// CHECK-NEXT:    %[[E:.*]] = nn_tensor.exp %[[Y]] : tensor<48xf32> -> tensor<48xf32>
// CHECK-NEXT:    %[[XV:.*]] = nn_tensor.reshape %[[X]] : tensor<6x8xf32> -> tensor<48xf32>
// CHECK-NEXT:    %[[M:.*]] = nn_tensor.mul %[[XV]], %[[E]] : (tensor<48xf32>, tensor<48xf32>) -> tensor<48xf32>
// CHECK-NEXT:    %[[MV:.*]] = nn_tensor.reshape %[[M]] : tensor<48xf32> -> tensor<2x3x8xf32>
// CHECK-NEXT:    func.return %[[A]], %[[MV]]
func.func @negative_sink_reshape(%x: tensor<6x8xf32>, %c: tensor<3x1xf32>, %y: tensor<48xf32>) -> (tensor<2x3x8xf32>, tensor<2x3x8xf32>) {
  %v = nn_tensor.reshape %x : tensor<6x8xf32> -> tensor<2x3x8xf32>
  %a = nn_tensor.add %v, %c : (tensor<2x3x8xf32>, tensor<3x1xf32>) -> tensor<2x3x8xf32>
  %e = nn_tensor.exp %y : tensor<48xf32> -> tensor<48xf32>
  %ev = nn_tensor.reshape %e : tensor<48xf32> -> tensor<2x3x8xf32>
  %m = nn_tensor.mul %v, %ev : (tensor<2x3x8xf32>, tensor<2x3x8xf32>) -> tensor<2x3x8xf32>
  func.return %a, %m : tensor<2x3x8xf32>, tensor<2x3x8xf32>
}

// ----------------------------------------------------------------------------- split

/// Split becomes one slice per output, at the running offset along the axis.
// CHECK-LABEL: func.func @split_to_slices
// CHECK-SAME:    (%[[X:.*]]: tensor<2x9xf32>)
// CHECK-NOT:     nn_tensor.split
// CHECK:         %[[A:.*]] = nn_tensor.slice %[[X]] {starts = array<i64: 0, 0>, steps = array<i64: 1, 1>} : tensor<2x9xf32> -> tensor<2x2xf32>
// CHECK-NEXT:    %[[B:.*]] = nn_tensor.slice %[[X]] {starts = array<i64: 0, 2>, steps = array<i64: 1, 1>} : tensor<2x9xf32> -> tensor<2x4xf32>
// CHECK-NEXT:    %[[C:.*]] = nn_tensor.slice %[[X]] {starts = array<i64: 0, 6>, steps = array<i64: 1, 1>} : tensor<2x9xf32> -> tensor<2x3xf32>
// CHECK-NEXT:    func.return %[[A]], %[[B]], %[[C]]
func.func @split_to_slices(%x: tensor<2x9xf32>) -> (tensor<2x2xf32>, tensor<2x4xf32>, tensor<2x3xf32>) {
  %a, %b, %c = nn_tensor.split %x {axis = 1 : i64} : tensor<2x9xf32> -> tensor<2x2xf32>, tensor<2x4xf32>, tensor<2x3xf32>
  func.return %a, %b, %c : tensor<2x2xf32>, tensor<2x4xf32>, tensor<2x3xf32>
}

// ------------------------------------------------------------------------------ GELU

/// The legacy torch exporter (and HF BERT's gelu): (x * (erf(x / 1.4142135) + 1)) * 0.5.
// CHECK-LABEL: func.func @gelu_torch_legacy
// CHECK-SAME:    (%[[X:.*]]: tensor<2x5xf32>)
// CHECK-NEXT:    %[[G:.*]] = nn_tensor.gelu %[[X]] : tensor<2x5xf32> -> tensor<2x5xf32>
// CHECK-NEXT:    func.return %[[G]]
func.func @gelu_torch_legacy(%x: tensor<2x5xf32>) -> tensor<2x5xf32> {
  %sqrt2 = nn_tensor.constant dense<1.41421354> : tensor<f32>
  %one = nn_tensor.constant dense<1.0> : tensor<f32>
  %half = nn_tensor.constant dense<0.5> : tensor<f32>
  %d = nn_tensor.div %x, %sqrt2 : (tensor<2x5xf32>, tensor<f32>) -> tensor<2x5xf32>
  %e = nn_tensor.erf %d : tensor<2x5xf32> -> tensor<2x5xf32>
  %a = nn_tensor.add %e, %one : (tensor<2x5xf32>, tensor<f32>) -> tensor<2x5xf32>
  %m = nn_tensor.mul %x, %a : (tensor<2x5xf32>, tensor<2x5xf32>) -> tensor<2x5xf32>
  %r = nn_tensor.mul %m, %half : (tensor<2x5xf32>, tensor<f32>) -> tensor<2x5xf32>
  func.return %r : tensor<2x5xf32>
}

/// The other association: (x * 0.5) * (1 + erf(x * 0.70710677)).
// CHECK-LABEL: func.func @gelu_half_first
// CHECK-SAME:    (%[[X:.*]]: tensor<3x4xf32>)
// CHECK-NEXT:    %[[G:.*]] = nn_tensor.gelu %[[X]]
// CHECK-NEXT:    func.return %[[G]]
func.func @gelu_half_first(%x: tensor<3x4xf32>) -> tensor<3x4xf32> {
  %half = nn_tensor.constant dense<0.5> : tensor<f32>
  %rsqrt2 = nn_tensor.constant dense<0.707106769> : tensor<f32>
  %one = nn_tensor.constant dense<1.0> : tensor<1xf32>
  %h = nn_tensor.mul %x, %half : (tensor<3x4xf32>, tensor<f32>) -> tensor<3x4xf32>
  %s = nn_tensor.mul %rsqrt2, %x : (tensor<f32>, tensor<3x4xf32>) -> tensor<3x4xf32>
  %e = nn_tensor.erf %s : tensor<3x4xf32> -> tensor<3x4xf32>
  %a = nn_tensor.add %one, %e : (tensor<1xf32>, tensor<3x4xf32>) -> tensor<3x4xf32>
  %r = nn_tensor.mul %h, %a : (tensor<3x4xf32>, tensor<3x4xf32>) -> tensor<3x4xf32>
  func.return %r : tensor<3x4xf32>
}

/// 0.5 * (x * (1 + erf(x / sqrt 2))), the half split as 2 * 0.25.
// CHECK-LABEL: func.func @gelu_split_half
// CHECK-SAME:    (%[[X:.*]]: tensor<7xf32>)
// CHECK-NEXT:    %[[G:.*]] = nn_tensor.gelu %[[X]]
// CHECK-NEXT:    func.return %[[G]]
func.func @gelu_split_half(%x: tensor<7xf32>) -> tensor<7xf32> {
  %sqrt2 = nn_tensor.constant dense<1.41421354> : tensor<f32>
  %one = nn_tensor.constant dense<1.0> : tensor<f32>
  %two = nn_tensor.constant dense<2.0> : tensor<f32>
  %quarter = nn_tensor.constant dense<0.25> : tensor<f32>
  %d = nn_tensor.div %x, %sqrt2 : (tensor<7xf32>, tensor<f32>) -> tensor<7xf32>
  %e = nn_tensor.erf %d : tensor<7xf32> -> tensor<7xf32>
  %a = nn_tensor.add %one, %e : (tensor<f32>, tensor<7xf32>) -> tensor<7xf32>
  %q = nn_tensor.mul %two, %a : (tensor<f32>, tensor<7xf32>) -> tensor<7xf32>
  %m = nn_tensor.mul %x, %q : (tensor<7xf32>, tensor<7xf32>) -> tensor<7xf32>
  %r = nn_tensor.mul %quarter, %m : (tensor<f32>, tensor<7xf32>) -> tensor<7xf32>
  func.return %r : tensor<7xf32>
}

/// x / 1.5 is not x / sqrt(2): left alone.
// CHECK-LABEL: func.func @negative_gelu_wrong_constant
// CHECK-NOT:     nn_tensor.gelu
// CHECK:         nn_tensor.erf
// CHECK:         func.return
func.func @negative_gelu_wrong_constant(%x: tensor<4xf32>) -> tensor<4xf32> {
  %c = nn_tensor.constant dense<1.5> : tensor<f32>
  %one = nn_tensor.constant dense<1.0> : tensor<f32>
  %half = nn_tensor.constant dense<0.5> : tensor<f32>
  %d = nn_tensor.div %x, %c : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  %e = nn_tensor.erf %d : tensor<4xf32> -> tensor<4xf32>
  %a = nn_tensor.add %e, %one : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  %m = nn_tensor.mul %x, %a : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %r = nn_tensor.mul %m, %half : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  func.return %r : tensor<4xf32>
}

/// The erf reads y, the product reads x: not a GELU of anything.
// CHECK-LABEL: func.func @negative_gelu_two_values
// CHECK-NOT:     nn_tensor.gelu
// CHECK:         func.return
func.func @negative_gelu_two_values(%x: tensor<4xf32>, %y: tensor<4xf32>) -> tensor<4xf32> {
  %c = nn_tensor.constant dense<1.41421354> : tensor<f32>
  %one = nn_tensor.constant dense<1.0> : tensor<f32>
  %half = nn_tensor.constant dense<0.5> : tensor<f32>
  %d = nn_tensor.div %y, %c : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  %e = nn_tensor.erf %d : tensor<4xf32> -> tensor<4xf32>
  %a = nn_tensor.add %e, %one : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  %m = nn_tensor.mul %x, %a : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %r = nn_tensor.mul %m, %half : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  func.return %r : tensor<4xf32>
}

/// Without the 0.5 the product is 2 * gelu(x): left alone.
// CHECK-LABEL: func.func @negative_gelu_no_half
// CHECK-NOT:     nn_tensor.gelu
// CHECK:         func.return
func.func @negative_gelu_no_half(%x: tensor<4xf32>) -> tensor<4xf32> {
  %c = nn_tensor.constant dense<1.41421354> : tensor<f32>
  %one = nn_tensor.constant dense<1.0> : tensor<f32>
  %d = nn_tensor.div %x, %c : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  %e = nn_tensor.erf %d : tensor<4xf32> -> tensor<4xf32>
  %a = nn_tensor.add %e, %one : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  %m = nn_tensor.mul %x, %a : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  func.return %m : tensor<4xf32>
}

// ------------------------------------------------------------------------ layer norm

/// The decomposition of torch's LayerNorm at opset < 17 over the last axis.
// CHECK-LABEL: func.func @layer_norm
// CHECK-SAME:    (%[[X:.*]]: tensor<2x3x8xf32>, %[[G:.*]]: tensor<8xf32>, %[[B:.*]]: tensor<8xf32>)
// CHECK-NEXT:    %[[L:.*]] = nn_tensor.layer_norm %[[X]], %[[G]], %[[B]] {axis = 2 : i64, epsilon = 1.000000e-12 : f32} : (tensor<2x3x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<2x3x8xf32>
// CHECK-NEXT:    func.return %[[L]]
func.func @layer_norm(%x: tensor<2x3x8xf32>, %g: tensor<8xf32>, %b: tensor<8xf32>) -> tensor<2x3x8xf32> {
  %m = nn_tensor.reduce_mean %x {axes = array<i64: 2>} : tensor<2x3x8xf32> -> tensor<2x3x1xf32>
  %d = nn_tensor.sub %x, %m : (tensor<2x3x8xf32>, tensor<2x3x1xf32>) -> tensor<2x3x8xf32>
  %two = nn_tensor.constant dense<2.0> : tensor<f32>
  %p = nn_tensor.pow %d, %two : (tensor<2x3x8xf32>, tensor<f32>) -> tensor<2x3x8xf32>
  %v = nn_tensor.reduce_mean %p {axes = array<i64: 2>} : tensor<2x3x8xf32> -> tensor<2x3x1xf32>
  %eps = nn_tensor.constant dense<1.0e-12> : tensor<f32>
  %ve = nn_tensor.add %v, %eps : (tensor<2x3x1xf32>, tensor<f32>) -> tensor<2x3x1xf32>
  %s = nn_tensor.sqrt %ve : tensor<2x3x1xf32> -> tensor<2x3x1xf32>
  %n = nn_tensor.div %d, %s : (tensor<2x3x8xf32>, tensor<2x3x1xf32>) -> tensor<2x3x8xf32>
  %y = nn_tensor.mul %n, %g : (tensor<2x3x8xf32>, tensor<8xf32>) -> tensor<2x3x8xf32>
  %z = nn_tensor.add %y, %b : (tensor<2x3x8xf32>, tensor<8xf32>) -> tensor<2x3x8xf32>
  func.return %z : tensor<2x3x8xf32>
}

/// Commuted operands, d * d for the square, no bias, a 1x5 scale (reshaped to 5).
// CHECK-LABEL: func.func @layer_norm_variant
// CHECK-SAME:    (%[[X:.*]]: tensor<4x5xf32>, %[[G:.*]]: tensor<1x5xf32>)
// CHECK-NEXT:    %[[R:.*]] = nn_tensor.reshape %[[G]] : tensor<1x5xf32> -> tensor<5xf32>
// CHECK-NEXT:    %[[L:.*]] = nn_tensor.layer_norm %[[X]], %[[R]] {axis = 1 : i64, epsilon = 1.000000e-05 : f32} : (tensor<4x5xf32>, tensor<5xf32>) -> tensor<4x5xf32>
// CHECK-NEXT:    func.return %[[L]]
func.func @layer_norm_variant(%x: tensor<4x5xf32>, %g: tensor<1x5xf32>) -> tensor<4x5xf32> {
  %m = nn_tensor.reduce_mean %x {axes = array<i64: 1>} : tensor<4x5xf32> -> tensor<4x1xf32>
  %d = nn_tensor.sub %x, %m : (tensor<4x5xf32>, tensor<4x1xf32>) -> tensor<4x5xf32>
  %p = nn_tensor.mul %d, %d : (tensor<4x5xf32>, tensor<4x5xf32>) -> tensor<4x5xf32>
  %v = nn_tensor.reduce_mean %p {axes = array<i64: 1>} : tensor<4x5xf32> -> tensor<4x1xf32>
  %eps = nn_tensor.constant dense<1.0e-5> : tensor<1xf32>
  %ve = nn_tensor.add %eps, %v : (tensor<1xf32>, tensor<4x1xf32>) -> tensor<4x1xf32>
  %s = nn_tensor.sqrt %ve : tensor<4x1xf32> -> tensor<4x1xf32>
  %n = nn_tensor.div %d, %s : (tensor<4x5xf32>, tensor<4x1xf32>) -> tensor<4x5xf32>
  %y = nn_tensor.mul %g, %n : (tensor<1x5xf32>, tensor<4x5xf32>) -> tensor<4x5xf32>
  func.return %y : tensor<4x5xf32>
}

/// Normalising over a middle axis is not a layer norm over trailing axes.
// CHECK-LABEL: func.func @negative_layer_norm_middle_axis
// CHECK-NOT:     nn_tensor.layer_norm
// CHECK:         func.return
func.func @negative_layer_norm_middle_axis(%x: tensor<2x3x8xf32>, %g: tensor<3x1xf32>) -> tensor<2x3x8xf32> {
  %m = nn_tensor.reduce_mean %x {axes = array<i64: 1>} : tensor<2x3x8xf32> -> tensor<2x1x8xf32>
  %d = nn_tensor.sub %x, %m : (tensor<2x3x8xf32>, tensor<2x1x8xf32>) -> tensor<2x3x8xf32>
  %two = nn_tensor.constant dense<2.0> : tensor<f32>
  %p = nn_tensor.pow %d, %two : (tensor<2x3x8xf32>, tensor<f32>) -> tensor<2x3x8xf32>
  %v = nn_tensor.reduce_mean %p {axes = array<i64: 1>} : tensor<2x3x8xf32> -> tensor<2x1x8xf32>
  %eps = nn_tensor.constant dense<1.0e-5> : tensor<f32>
  %ve = nn_tensor.add %v, %eps : (tensor<2x1x8xf32>, tensor<f32>) -> tensor<2x1x8xf32>
  %s = nn_tensor.sqrt %ve : tensor<2x1x8xf32> -> tensor<2x1x8xf32>
  %n = nn_tensor.div %d, %s : (tensor<2x3x8xf32>, tensor<2x1x8xf32>) -> tensor<2x3x8xf32>
  %y = nn_tensor.mul %n, %g : (tensor<2x3x8xf32>, tensor<3x1xf32>) -> tensor<2x3x8xf32>
  func.return %y : tensor<2x3x8xf32>
}

/// The variance of x (not of x - mean) is not a layer norm.
// CHECK-LABEL: func.func @negative_layer_norm_wrong_variance
// CHECK-NOT:     nn_tensor.layer_norm
// CHECK:         func.return
func.func @negative_layer_norm_wrong_variance(%x: tensor<2x8xf32>, %g: tensor<8xf32>) -> tensor<2x8xf32> {
  %m = nn_tensor.reduce_mean %x {axes = array<i64: 1>} : tensor<2x8xf32> -> tensor<2x1xf32>
  %d = nn_tensor.sub %x, %m : (tensor<2x8xf32>, tensor<2x1xf32>) -> tensor<2x8xf32>
  %two = nn_tensor.constant dense<2.0> : tensor<f32>
  %p = nn_tensor.pow %x, %two : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
  %v = nn_tensor.reduce_mean %p {axes = array<i64: 1>} : tensor<2x8xf32> -> tensor<2x1xf32>
  %eps = nn_tensor.constant dense<1.0e-5> : tensor<f32>
  %ve = nn_tensor.add %v, %eps : (tensor<2x1xf32>, tensor<f32>) -> tensor<2x1xf32>
  %s = nn_tensor.sqrt %ve : tensor<2x1xf32> -> tensor<2x1xf32>
  %n = nn_tensor.div %d, %s : (tensor<2x8xf32>, tensor<2x1xf32>) -> tensor<2x8xf32>
  %y = nn_tensor.mul %n, %g : (tensor<2x8xf32>, tensor<8xf32>) -> tensor<2x8xf32>
  func.return %y : tensor<2x8xf32>
}

// ----------------------------------------------------------------------------- gemm

/// Gemm keeps its alpha/beta/trans flags and its 1-D C: the lowering handles them.
// CHECK-LABEL: func.func @negative_gemm
// CHECK-SAME:    (%[[A:.*]]: tensor<5x3xf32>, %[[B:.*]]: tensor<4x3xf32>, %[[C:.*]]: tensor<4xf32>, %[[D:.*]]: tensor<3x4xf32>)
// CHECK-NEXT:    %[[G:.*]] = nn_tensor.gemm %[[A]], %[[B]], %[[C]] {{{.*}}trans_b = 1 : i64{{.*}}} : (tensor<5x3xf32>, tensor<4x3xf32>, tensor<4xf32>) -> tensor<5x4xf32>
// CHECK-NEXT:    %[[H:.*]] = nn_tensor.gemm %[[A]], %[[D]], %[[C]] : (tensor<5x3xf32>, tensor<3x4xf32>, tensor<4xf32>) -> tensor<5x4xf32>
func.func @negative_gemm(%a: tensor<5x3xf32>, %b: tensor<4x3xf32>, %c: tensor<4xf32>, %d: tensor<3x4xf32>) -> (tensor<5x4xf32>, tensor<5x4xf32>) {
  %g = nn_tensor.gemm %a, %b, %c {beta = 0.5 : f32, trans_b = 1 : i64} : (tensor<5x3xf32>, tensor<4x3xf32>, tensor<4xf32>) -> tensor<5x4xf32>
  %h = nn_tensor.gemm %a, %d, %c : (tensor<5x3xf32>, tensor<3x4xf32>, tensor<4xf32>) -> tensor<5x4xf32>
  func.return %g, %h : tensor<5x4xf32>, tensor<5x4xf32>
}
