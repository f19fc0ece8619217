// RUN: nnjit-opt %s -p nn-loop-simplify-index | filecheck %s

/// Index arithmetic on constants folds to one constant.
// CHECK-LABEL: nn_loop.kernel @fold_constants
nn_loop.kernel @fold_constants(%a: memref<16xf32> read_write) kind "t" target "wasm" {
  %c2 = arith.constant 2 : index
  %c3 = arith.constant 3 : index
  %s = arith.addi %c2, %c3 : index
  %p = arith.muli %s, %c3 : index
  %v = nn_loop.load %a[%p] : memref<16xf32> -> f32
  nn_loop.store %v, %a[%s] : f32, memref<16xf32>
}
// CHECK-NEXT:  %[[S:.*]] = arith.constant 5 : index
// CHECK-NEXT:  %[[P:.*]] = arith.constant 15 : index
// CHECK-NEXT:  nn_loop.load %a[%[[P]]]
// CHECK-NEXT:  nn_loop.store %{{.*}}, %a[%[[S]]]
// CHECK-NEXT:  }

/// x * 1, x + 0 and x - 0 are x (and the constants they used go).
// CHECK-LABEL: nn_loop.kernel @identities
nn_loop.kernel @identities(%a: memref<16xf32> read_write) kind "t" target "wasm" {
  nn_loop.for %i = 0 to 16 {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %x = arith.muli %i, %c1 : index
    %y = arith.addi %x, %c0 : index
    %z = arith.subi %y, %c0 : index
    %v = nn_loop.load %a[%z] : memref<16xf32> -> f32
    nn_loop.store %v, %a[%i] : f32, memref<16xf32>
  }
}
// CHECK:       nn_loop.for %[[I:.*]] = 0 to 16 {
// CHECK-NEXT:    nn_loop.load %a[%[[I]]]
// CHECK-NEXT:    nn_loop.store %{{.*}}, %a[%[[I]]]
// CHECK-NEXT:  }

/// ((i + 1) + 2) * 8 + j: the terms in order, the constant parts gathered last.
// CHECK-LABEL: nn_loop.kernel @constants_gathered_last
nn_loop.kernel @constants_gathered_last(%a: memref<64xf32> read_write) kind "t" target "wasm" {
  nn_loop.for %i = 0 to 8 {
    nn_loop.for %j = 0 to 4 {
      %c1 = arith.constant 1 : index
      %c2 = arith.constant 2 : index
      %c8 = arith.constant 8 : index
      %x = arith.addi %i, %c1 : index
      %y = arith.addi %x, %c2 : index
      %r = arith.muli %y, %c8 : index
      %z = arith.addi %r, %j : index
      %v = nn_loop.load %a[%z] : memref<64xf32> -> f32
      nn_loop.store %v, %a[%j] : f32, memref<64xf32>
    }
  }
}
// CHECK:         nn_loop.for %[[J:.*]] = 0 to 4 {
// CHECK-NEXT:      %[[C8:.*]] = arith.constant 8 : index
// CHECK-NEXT:      %[[T:.*]] = arith.muli %i, %[[C8]] : index
// CHECK-NEXT:      %[[C24:.*]] = arith.constant 24 : index
// CHECK-NEXT:      %[[U:.*]] = arith.addi %[[T]], %[[J]] : index
// CHECK-NEXT:      %[[Z:.*]] = arith.addi %[[U]], %[[C24]] : index
// CHECK-NEXT:      nn_loop.load %a[%[[Z]]]

/// A canonical expression is left as it is.
// CHECK-LABEL: nn_loop.kernel @negative_already_canonical
nn_loop.kernel @negative_already_canonical(%a: memref<64xf32> read_write) kind "t" target "wasm" {
  nn_loop.for %i = 0 to 8 {
    %c8 = arith.constant 8 : index
    %c3 = arith.constant 3 : index
    %x = arith.muli %i, %c8 : index
    %y = arith.addi %x, %c3 : index
    %v = nn_loop.load %a[%y] : memref<64xf32> -> f32
    nn_loop.store %v, %a[%i] : f32, memref<64xf32>
  }
}
// CHECK:       %c8 = arith.constant 8 : index
// CHECK-NEXT:  %c3 = arith.constant 3 : index
// CHECK-NEXT:  %x = arith.muli %i, %c8 : index
// CHECK-NEXT:  %y = arith.addi %x, %c3 : index
// CHECK-NEXT:  nn_loop.load %a[%y]

/// (4i + 6) / 4 is i + 1 and (4i + 6) % 4 is 2: the dividend is >= 0 (i counts from 0).
// CHECK-LABEL: nn_loop.kernel @division_of_nonnegative
nn_loop.kernel @division_of_nonnegative(%a: memref<64xf32> read_write) kind "t" target "wasm" {
  nn_loop.for %i = 0 to 8 {
    %c4 = arith.constant 4 : index
    %c6 = arith.constant 6 : index
    %x = arith.muli %i, %c4 : index
    %y = arith.addi %x, %c6 : index
    %q = arith.divsi %y, %c4 : index
    %r = arith.remsi %y, %c4 : index
    %v = nn_loop.load %a[%q] : memref<64xf32> -> f32
    nn_loop.store %v, %a[%r] : f32, memref<64xf32>
  }
}
// CHECK:       nn_loop.for %[[I:.*]] = 0 to 8 {
// CHECK-NEXT:    %[[C1:.*]] = arith.constant 1 : index
// CHECK-NEXT:    %[[Q:.*]] = arith.addi %[[I]], %[[C1]] : index
// CHECK-NEXT:    %[[R:.*]] = arith.constant 2 : index
// CHECK-NEXT:    nn_loop.load %a[%[[Q]]]
// CHECK-NEXT:    nn_loop.store %{{.*}}, %a[%[[R]]]
// CHECK-NEXT:  }

/// An exact quotient folds whatever the sign: (4i - 8) / 4 is i - 2.
// CHECK-LABEL: nn_loop.kernel @exact_division
nn_loop.kernel @exact_division(%a: memref<64xf32> read_write) kind "t" target "wasm" {
  nn_loop.for %i = 0 to 8 {
    %c4 = arith.constant 4 : index
    %c8 = arith.constant 8 : index
    %c40 = arith.constant 40 : index
    %x = arith.muli %i, %c4 : index
    %y = arith.subi %x, %c8 : index
    %q = arith.divsi %y, %c4 : index
    %w = arith.addi %q, %c40 : index
    %v = nn_loop.load %a[%w] : memref<64xf32> -> f32
    nn_loop.store %v, %a[%i] : f32, memref<64xf32>
  }
}
// CHECK:       %[[C38:.*]] = arith.constant 38 : index
// CHECK-NEXT:  %[[W:.*]] = arith.addi %i, %[[C38]] : index
// CHECK-NEXT:  nn_loop.load %a[%[[W]]]
// CHECK-NOT:   arith.divsi

/// (4i - 6) / 4 may see a negative dividend and is not exact (divsi truncates): kept, and
/// so are i / 4 (not exact) and an unsigned division of a possibly negative value; the
/// differences become sums of a negative constant, the product is reused.
// CHECK-LABEL: nn_loop.kernel @negative_division_kept
nn_loop.kernel @negative_division_kept(%a: memref<64xf32> read_write) kind "t" target "wasm" {
  nn_loop.for %i = 0 to 8 {
    %c4 = arith.constant 4 : index
    %c6 = arith.constant 6 : index
    %c8 = arith.constant 8 : index
    %c40 = arith.constant 40 : index
    %x = arith.muli %i, %c4 : index
    %y = arith.subi %x, %c6 : index
    %q = arith.divsi %y, %c4 : index
    %w = arith.addi %q, %c40 : index
    %e = arith.divsi %i, %c4 : index
    %n = arith.subi %x, %c8 : index
    %u = arith.divui %n, %c4 : index
    %v = nn_loop.load %a[%w] : memref<64xf32> -> f32
    nn_loop.store %v, %a[%e] : f32, memref<64xf32>
    nn_loop.store %v, %a[%u] : f32, memref<64xf32>
  }
}
// CHECK:       %x = arith.muli %i, %c4 : index
// CHECK-NEXT:  %[[M6:.*]] = arith.constant -6 : index
// CHECK-NEXT:  %y = arith.addi %x, %[[M6]] : index
// CHECK-NEXT:  %[[Q:.*]] = arith.divsi %y, %c4 : index
// CHECK-NEXT:  %[[W:.*]] = arith.addi %[[Q]], %c40 : index
// CHECK-NEXT:  %[[E:.*]] = arith.divsi %i, %c4 : index
// CHECK-NEXT:  %[[M8:.*]] = arith.constant -8 : index
// CHECK-NEXT:  %n = arith.addi %x, %[[M8]] : index
// CHECK-NEXT:  %[[U:.*]] = arith.divui %n, %c4 : index
// CHECK-NEXT:  nn_loop.load %a[%[[W]]]
// CHECK-NEXT:  nn_loop.store %{{.*}}, %a[%[[E]]]
// CHECK-NEXT:  nn_loop.store %{{.*}}, %a[%[[U]]]

/// Integer arithmetic on other types and float arithmetic are left alone.
// CHECK-LABEL: nn_loop.kernel @negative_not_index
nn_loop.kernel @negative_not_index(%a: memref<16xi32> read_write, %b: memref<16xf32> read_write) kind "t" target "wasm" {
  %c0 = arith.constant 0 : index
  %z = arith.constant 0 : i32
  %t = arith.constant 2 : i32
  %x = nn_loop.load %a[%c0] : memref<16xi32> -> i32
  %y = arith.addi %x, %z : i32
  %s = arith.addi %t, %t : i32
  %u = arith.muli %y, %s : i32
  nn_loop.store %u, %a[%c0] : i32, memref<16xi32>
  %f = nn_loop.load %b[%c0] : memref<16xf32> -> f32
  %fz = arith.constant 0.000000e+00 : f32
  %g = arith.addf %f, %fz : f32
  nn_loop.store %g, %b[%c0] : f32, memref<16xf32>
}
// CHECK:       %y = arith.addi %x, %z : i32
// CHECK-NEXT:  %s = arith.addi %t, %t : i32
// CHECK-NEXT:  %u = arith.muli %y, %s : i32
// CHECK:       %g = arith.addf %f, %fz : f32

/// Index arithmetic outside kernels is left alone.
// CHECK-LABEL: func.func @negative_outside_kernels
func.func @negative_outside_kernels() -> index {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %s = arith.addi %c0, %c1 : index
  func.return %s : index
}
// CHECK-NEXT:  %c0 = arith.constant 0 : index
// CHECK-NEXT:  %c1 = arith.constant 1 : index
// CHECK-NEXT:  %s = arith.addi %c0, %c1 : index
