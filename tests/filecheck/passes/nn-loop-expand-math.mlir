// RUN: nnjit-opt %s --split-input-file -p 'nn-loop-expand-math{target=wasm}' | filecheck %s --check-prefix=WASM
// RUN: nnjit-opt %s --split-input-file -p 'nn-loop-expand-math{target=wgsl}' | filecheck %s --check-prefix=WGSL

/// wasm: erf is the exp-free rational form, a P(a^2) / Q(a^2) on a = min(|x|, 3.9), with the
/// sign and "exactly 1 at the clamp" put on the bits; no math.exp (a helper call on wasm).
// WASM-LABEL: nn_loop.kernel @wasm_erf_scalar
// WASM-NOT:     math.erf
// WASM-NOT:     math.exp
// WASM:         %[[XB:.*]] = arith.bitcast %[[X:.*]] : f32 to i32
// WASM:         %[[SIGN:.*]] = arith.andi %[[XB]], %{{.*}} : i32
// WASM:         %[[A:.*]] = math.absf %[[X]] : f32
// WASM:         %[[C:.*]] = arith.constant 3.900000e+00 : f32
// WASM-NEXT:    %[[AC:.*]] = arith.minimumf %[[A]], %[[C]] : f32
// WASM-NEXT:    %[[Z:.*]] = arith.mulf %[[AC]], %[[AC]] : f32
// WASM:         math.fma %{{.*}}, %[[Z]], %{{.*}} : f32
// WASM:         %[[R:.*]] = arith.divf %{{.*}}, %{{.*}} : f32
// WASM:         arith.maxsi
// WASM:         %[[S:.*]] = arith.ori %{{.*}}, %[[SIGN]] : i32
// WASM-NEXT:    %[[E:.*]] = arith.bitcast %[[S]] : i32 to f32
// WASM-NEXT:    nn_loop.store %[[E]], %y[%{{.*}}] : f32, memref<4xf32>
/// wgsl: erf is x P(x^2) below 0.875, else 1 - exp(-a^2) Q(t), picked by a select.
// WGSL-LABEL: nn_loop.kernel @wasm_erf_scalar
// WGSL:         math.erf
nn_loop.kernel @wasm_erf_scalar(%a: memref<4xf32> read, %y: memref<4xf32> write) kind "elementwise" target "wasm" {
  nn_loop.for %i = 0 to 4 map "thread" {
    %v = nn_loop.load %a[%i] : memref<4xf32> -> f32
    %o = math.erf %v : f32
    nn_loop.store %o, %y[%i] : f32, memref<4xf32>
  }
}

// -----

/// Vectors: the same ops on vector<4xf32> / vector<4xi32>, constants splatted.
// WASM-LABEL: nn_loop.kernel @wasm_tanh_vector
// WASM-NOT:     math.tanh
// WASM:         %[[C:.*]] = arith.constant 7.90531111 : f32
// WASM-NEXT:    %[[CV:.*]] = nn_loop.splat %[[C]] : f32 -> vector<4xf32>
// WASM-NEXT:    arith.minimumf %{{.*}}, %[[CV]] : vector<4xf32>
// WASM:         arith.divf %{{.*}}, %{{.*}} : vector<4xf32>
// WASM:         arith.bitcast %{{.*}} : vector<4xf32> to vector<4xi32>
// WASM:         %[[R:.*]] = arith.bitcast %{{.*}} : vector<4xi32> to vector<4xf32>
// WASM-NEXT:    nn_loop.store %[[R]], %y[%{{.*}}] : vector<4xf32>, memref<8xf32>
// WGSL-LABEL: nn_loop.kernel @wasm_tanh_vector
// WGSL:         math.tanh
nn_loop.kernel @wasm_tanh_vector(%a: memref<8xf32> read, %y: memref<8xf32> write) kind "elementwise" target "wasm" {
  nn_loop.for %i = 0 to 8 step 4 map "thread" {
    %v = nn_loop.load %a[%i] : memref<8xf32> -> vector<4xf32>
    %o = math.tanh %v : vector<4xf32>
    nn_loop.store %o, %y[%i] : vector<4xf32>, memref<8xf32>
  }
}

// -----

/// wgsl erf (vector): exp of -a^2 with a = min(|x|, 4), and a select on |x| < 0.875.
// WGSL-LABEL: nn_loop.kernel @wgsl_erf_vector
// WGSL-NOT:     math.erf
// WGSL:         %[[A:.*]] = math.absf %[[X:.*]] : vector<4xf32>
// WGSL:         %[[C4:.*]] = nn_loop.splat %{{.*}} : f32 -> vector<4xf32>
// WGSL-NEXT:    %[[AC:.*]] = arith.minimumf %[[A]], %[[C4]] : vector<4xf32>
// WGSL:         %[[SQ:.*]] = arith.mulf %[[AC]], %[[AC]] : vector<4xf32>
// WGSL-NEXT:    %[[NSQ:.*]] = arith.negf %[[SQ]] : vector<4xf32>
// WGSL-NEXT:    math.exp %[[NSQ]] : vector<4xf32>
// WGSL:         %[[LT:.*]] = arith.cmpf olt, %{{.*}}, %{{.*}} : vector<4xf32>
// WGSL-NEXT:    %[[R:.*]] = arith.select %[[LT]], %{{.*}}, %{{.*}} : vector<4xf32>
// WGSL-NEXT:    nn_loop.store %[[R]], %y[%{{.*}}] : vector<4xf32>, memref<8xf32>
// WASM-LABEL: nn_loop.kernel @wgsl_erf_vector
// WASM:         math.erf
nn_loop.kernel @wgsl_erf_vector(%a: memref<8xf32> read, %y: memref<8xf32> write) kind "elementwise" target "wgsl" {
  nn_loop.for %i = 0 to 2 map "invocation.x" {
    %c4 = arith.constant 4 : index
    %j = arith.muli %i, %c4 : index
    %v = nn_loop.load %a[%j] : memref<8xf32> -> vector<4xf32>
    %o = math.erf %v : vector<4xf32>
    nn_loop.store %o, %y[%j] : vector<4xf32>, memref<8xf32>
  }
}

// -----

/// wgsl tanh (scalar): 1 - 2 / (exp(2 min(|x|, 9.5)) + 1), the odd polynomial below 0.625,
/// the sign of x put back on the bits.
// WGSL-LABEL: nn_loop.kernel @wgsl_tanh_scalar
// WGSL-NOT:     math.tanh
// WGSL:         %[[A:.*]] = math.absf %[[X:.*]] : f32
// WGSL:         %[[C:.*]] = arith.constant 9.500000e+00 : f32
// WGSL-NEXT:    %[[AC:.*]] = arith.minimumf %[[A]], %[[C]] : f32
// WGSL:         math.exp %{{.*}} : f32
// WGSL:         arith.cmpf olt, %[[A]], %{{.*}} : f32
// WGSL:         arith.select
// WGSL:         arith.bitcast %[[X]] : f32 to i32
// WGSL:         %[[R:.*]] = arith.bitcast %{{.*}} : i32 to f32
// WGSL-NEXT:    nn_loop.store %[[R]], %y[%{{.*}}] : f32, memref<4xf32>
// WASM-LABEL: nn_loop.kernel @wgsl_tanh_scalar
// WASM:         math.tanh
nn_loop.kernel @wgsl_tanh_scalar(%a: memref<4xf32> read, %y: memref<4xf32> write) kind "elementwise" target "wgsl" {
  nn_loop.for %i = 0 to 4 map "invocation.x" {
    %v = nn_loop.load %a[%i] : memref<4xf32> -> f32
    %o = math.tanh %v : f32
    nn_loop.store %o, %y[%i] : f32, memref<4xf32>
  }
}

// -----

/// math.exp is not expanded (WGSL has it; on wasm it stays a helper call of the conversion).
// WASM-LABEL: nn_loop.kernel @negative_exp_kept
// WASM:         math.exp %{{.*}} : f32
// WGSL-LABEL: nn_loop.kernel @negative_exp_kept
// WGSL:         math.exp %{{.*}} : f32
nn_loop.kernel @negative_exp_kept(%a: memref<4xf32> read, %y: memref<4xf32> write) kind "elementwise" target "wasm" {
  nn_loop.for %i = 0 to 4 map "thread" {
    %v = nn_loop.load %a[%i] : memref<4xf32> -> f32
    %o = math.exp %v : f32
    nn_loop.store %o, %y[%i] : f32, memref<4xf32>
  }
}

// -----

/// Ops outside kernels (here a func.func) are not the pass's: left alone on both targets.
// WASM-LABEL: func.func @negative_outside_kernel
// WASM-NEXT:    math.erf %{{.*}} : f32
// WASM-NEXT:    math.tanh %{{.*}} : f32
// WGSL-LABEL: func.func @negative_outside_kernel
// WGSL-NEXT:    math.erf %{{.*}} : f32
// WGSL-NEXT:    math.tanh %{{.*}} : f32
func.func @negative_outside_kernel(%x: f32) -> f32 {
  %e = math.erf %x : f32
  %t = math.tanh %e : f32
  func.return %t : f32
}

// -----

/// sin (one form for both targets): k = roundeven(x 2/pi); r = x - k C1 - k C2 - k C3, each
/// part of pi/2 multiplying its own copy of k (k's bits with low bits cleared), so a driver
/// cannot merge two parts into one rounded constant; r clamped; the quadrant (the bits of
/// k + 1.5 2^23) picks and signs sin r or cos r on the bits; NaN or-ed in where x is not finite.
// WASM-LABEL: nn_loop.kernel @wasm_sin_scalar
// WASM-NOT:     math.sin
// WASM-NOT:     math.exp
// WASM:         %[[Y:.*]] = arith.mulf %[[X:.*]], %{{.*}} : f32
// WASM-NEXT:    %[[K:.*]] = math.roundeven %[[Y]] : f32
// WASM-NEXT:    %[[KB:.*]] = arith.bitcast %[[K]] : f32 to i32
// WASM:         %[[R1:.*]] = math.fma %[[K]], %{{.*}}, %[[X]] : f32
// WASM:         %[[K2B:.*]] = arith.andi %[[KB]], %{{.*}} : i32
// WASM-NEXT:    %[[K2:.*]] = arith.bitcast %[[K2B]] : i32 to f32
// WASM:         %[[R2:.*]] = math.fma %[[K2]], %{{.*}}, %[[R1]] : f32
// WASM:         %[[K3B:.*]] = arith.andi %[[KB]], %{{.*}} : i32
// WASM-NEXT:    %[[K3:.*]] = arith.bitcast %[[K3B]] : i32 to f32
// WASM:         %[[R3:.*]] = math.fma %[[K3]], %{{.*}}, %[[R2]] : f32
// WASM:         %[[RC:.*]] = arith.minimumf %[[R3]], %{{.*}} : f32
// WASM:         arith.maximumf %[[RC]], %{{.*}} : f32
// WASM:         %[[SH:.*]] = arith.constant 0x4B400000 : f32
// WASM-NEXT:    %[[Q:.*]] = arith.addf %[[K]], %[[SH]] : f32
// WASM:         arith.xori
// WASM:         %[[B:.*]] = arith.ori %{{.*}}, %{{.*}} : i32
// WASM-NEXT:    %[[S:.*]] = arith.bitcast %[[B]] : i32 to f32
// WASM-NEXT:    nn_loop.store %[[S]], %y[%{{.*}}] : f32, memref<4xf32>
// WGSL-LABEL: nn_loop.kernel @wasm_sin_scalar
// WGSL:         math.sin
nn_loop.kernel @wasm_sin_scalar(%a: memref<4xf32> read, %y: memref<4xf32> write) kind "elementwise" target "wasm" {
  nn_loop.for %i = 0 to 4 map "thread" {
    %v = nn_loop.load %a[%i] : memref<4xf32> -> f32
    %o = math.sin %v : f32
    nn_loop.store %o, %y[%i] : f32, memref<4xf32>
  }
}

// -----

/// wgsl cos (vector): the same form, the quadrant of k + 1 (1.5 2^23 + 1); no exp, no
/// compare or select, no WGSL cos.
// WGSL-LABEL: nn_loop.kernel @wgsl_cos_vector
// WGSL-NOT:     math.cos
// WGSL-NOT:     math.exp
// WGSL-NOT:     arith.cmpf
// WGSL:         %[[K:.*]] = math.roundeven %{{.*}} : vector<4xf32>
// WGSL:         %[[SH:.*]] = arith.constant 0x4B400001 : f32
// WGSL-NEXT:    %[[SHV:.*]] = nn_loop.splat %[[SH]] : f32 -> vector<4xf32>
// WGSL-NEXT:    arith.addf %[[K]], %[[SHV]] : vector<4xf32>
// WGSL:         arith.xori %{{.*}}, %{{.*}} : vector<4xi32>
// WGSL:         %[[R:.*]] = arith.bitcast %{{.*}} : vector<4xi32> to vector<4xf32>
// WGSL-NEXT:    nn_loop.store %[[R]], %y[%{{.*}}] : vector<4xf32>, memref<8xf32>
// WASM-LABEL: nn_loop.kernel @wgsl_cos_vector
// WASM:         math.cos
nn_loop.kernel @wgsl_cos_vector(%a: memref<8xf32> read, %y: memref<8xf32> write) kind "elementwise" target "wgsl" {
  nn_loop.for %i = 0 to 2 map "invocation.x" {
    %c4 = arith.constant 4 : index
    %j = arith.muli %i, %c4 : index
    %v = nn_loop.load %a[%j] : memref<8xf32> -> vector<4xf32>
    %o = math.cos %v : vector<4xf32>
    nn_loop.store %o, %y[%j] : vector<4xf32>, memref<8xf32>
  }
}
