// RUN: nnjit-opt %s --split-input-file --parsing-diagnostics | filecheck %s

/// The closed sets of words of nn_wgsl (address spaces, access modes, builtins and their
/// dimensions, operators, builtin functions) are enum attributes: the parser names the words
/// it accepts. (Verifier errors are in invalid.mlir.)

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  %b = nn_wgsl.binding 0 read shape [4] : !nn_wgsl.array<shared, f32>
  nn_wgsl.entry workgroup_size [1, 1, 1] {
  }
}
// CHECK: Expected `storage`, `workgroup`, or `function`.

// -----

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  %b = nn_wgsl.binding 0 readwrite shape [4] : !nn_wgsl.array<storage, f32>
  nn_wgsl.entry workgroup_size [1, 1, 1] {
  }
}
// CHECK: Expected `read`, `write`, or `read_write`.

// -----

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  nn_wgsl.entry workgroup_size [1, 1, 1] {
    %a = nn_wgsl.const 1 : i32
    %b = nn_wgsl.binary "**" %a, %a : i32, i32 -> i32
  }
}
// CHECK: Expected `+`, `-`, `*`, `/`, `%`, `&`, `|`, `^`, `<<`, `>>`, `==`, `!=`, `<`, `<=`, `>`, `>=`, `&&`, or `||`.

// -----

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  nn_wgsl.entry workgroup_size [1, 1, 1] {
    %a = nn_wgsl.const 1.0 : f32
    %b = nn_wgsl.call "erf"(%a) : (f32) -> f32
  }
}
// CHECK: Expected `exp`, `exp2`, `log`, `log2`, `tanh`, `sqrt`, `inverseSqrt`, `abs`, `floor`, `ceil`, `round`, `sign`, `sin`, `cos`, `pow`, `max`, `min`, `dot`, `fma`, `clamp`, or `select`.

// -----

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  nn_wgsl.entry workgroup_size [1, 1, 1] {
    %a = nn_wgsl.builtin global_invocation_id x : i32
  }
}
// CHECK: Expected `workgroup_id`, or `local_invocation_id`.

// -----

nn_wgsl.module @k kind "t" dispatch [1, 1, 1] {
  nn_wgsl.entry workgroup_size [1, 1, 1] {
    %a = nn_wgsl.builtin workgroup_id w : i32
  }
}
// CHECK: Expected `x`, `y`, or `z`.
