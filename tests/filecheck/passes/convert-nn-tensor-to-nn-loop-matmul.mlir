// Matmul, gemm and conv kernels of convert-nn-tensor-to-nn-loop (nnjit/passes/lowering/
// matmul.py, conv.py): each RUN line changes schedule options and checks what they change.
//
// RUN: nnjit-opt %s -p 'convert-nn-tensor-to-nn-loop{target=wgsl}' | filecheck %s --check-prefix=WGSL
// RUN: nnjit-opt %s -p 'convert-nn-tensor-to-nn-loop{target=wgsl vec=1}' | filecheck %s --check-prefix=VEC1
// RUN: nnjit-opt %s -p 'convert-nn-tensor-to-nn-loop{target=wgsl shared=1}' | filecheck %s --check-prefix=SHARED
// RUN: nnjit-opt %s -p 'convert-nn-tensor-to-nn-loop{target=wgsl shared=1 tile=8,16,12 kstep=3}' | filecheck %s --check-prefix=PAD
// RUN: nnjit-opt %s -p 'convert-nn-tensor-to-nn-loop{target=wgsl shared=2 tile=8,16,4}' | filecheck %s --check-prefix=SHARED2
// RUN: nnjit-opt %s -p 'convert-nn-tensor-to-nn-loop{target=wgsl workgroup=4,2,2}' | filecheck %s --check-prefix=SLICES
// RUN: nnjit-opt %s -p 'convert-nn-tensor-to-nn-loop{target=wgsl shared=2 workgroup=4,2,2}' | filecheck %s --check-prefix=SLICES2
// RUN: nnjit-opt %s -p 'convert-nn-tensor-to-nn-loop{target=wgsl reg=2,8 tile=4,16 kstep=2}' | filecheck %s --check-prefix=REG
// RUN: nnjit-opt %s -p 'convert-nn-tensor-to-nn-loop{target=wgsl workgroup=4,1}' | filecheck %s --check-prefix=WG
// RUN: nnjit-opt %s -p 'convert-nn-tensor-to-nn-loop{target=wasm}' | filecheck %s --check-prefix=WASM
// RUN: nnjit-opt %s -p 'convert-nn-tensor-to-nn-loop{target=wasm vec=1 reg=3,2 tile=6,8 kstep=2}' | filecheck %s --check-prefix=WASM1
// RUN: nnjit-opt %s -p 'convert-nn-tensor-to-nn-loop{target=wasm},nn-loop-unroll' | filecheck %s --check-prefix=UNROLL

/// k0: BERT-like dense layer, matmul + bias + GELU ([1, 8, 16] x [16, 32]).
/// k1: attention scores Q . K^T: B is a transposed input (read along k: "mode k").
/// k2: gemm with trans_b, alpha 0.5, beta 2 and a C broadcast over rows.
/// k3: ViT-style patch embedding: conv with kernel = stride = 4.
/// k4: a matmul pinned by its own `schedule` attribute (vec 1, reg 2x2).

func.func @main(%x: tensor<1x8x16xf32>, %w: tensor<16x32xf32>, %b: tensor<32xf32>, %q: tensor<1x2x8x16xf32>, %k: tensor<1x2x8x16xf32>, %ga: tensor<6x16xf32>, %gb: tensor<12x16xf32>, %gc: tensor<12xf32>, %img: tensor<1x3x8x8xf32>, %pw: tensor<6x3x4x4xf32>, %pb: tensor<6xf32>) -> (tensor<1x8x32xf32>, tensor<1x2x8x8xf32>, tensor<6x12xf32>, tensor<1x6x2x2xf32>, tensor<1x8x32xf32>) {
  %h = nn_tensor.fused %x, %w, %b {kind = "matmul"} : (tensor<1x8x16xf32>, tensor<16x32xf32>, tensor<32xf32>) -> tensor<1x8x32xf32> {
  ^bb0(%ax: tensor<1x8x16xf32>, %aw: tensor<16x32xf32>, %ab: tensor<32xf32>):
    %m = nn_tensor.matmul %ax, %aw : (tensor<1x8x16xf32>, tensor<16x32xf32>) -> tensor<1x8x32xf32>
    %y = nn_tensor.add %m, %ab : (tensor<1x8x32xf32>, tensor<32xf32>) -> tensor<1x8x32xf32>
    %g = nn_tensor.gelu %y : tensor<1x8x32xf32> -> tensor<1x8x32xf32>
    nn_tensor.yield %g : tensor<1x8x32xf32>
  }
  %s = nn_tensor.fused %q, %k {kind = "matmul"} : (tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>) -> tensor<1x2x8x8xf32> {
  ^bb0(%aq: tensor<1x2x8x16xf32>, %ak: tensor<1x2x8x16xf32>):
    %kt = nn_tensor.transpose %ak {perm = array<i64: 0, 1, 3, 2>} : tensor<1x2x8x16xf32> -> tensor<1x2x16x8xf32>
    %m = nn_tensor.matmul %aq, %kt : (tensor<1x2x8x16xf32>, tensor<1x2x16x8xf32>) -> tensor<1x2x8x8xf32>
    nn_tensor.yield %m : tensor<1x2x8x8xf32>
  }
  %gg = nn_tensor.gemm %ga, %gb, %gc {alpha = 5.000000e-01 : f32, beta = 2.000000e+00 : f32, trans_b = 1 : i64} : (tensor<6x16xf32>, tensor<12x16xf32>, tensor<12xf32>) -> tensor<6x12xf32>
  %c = nn_tensor.conv %img, %pw, %pb {strides = array<i64: 4, 4>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>} : (tensor<1x3x8x8xf32>, tensor<6x3x4x4xf32>, tensor<6xf32>) -> tensor<1x6x2x2xf32>
  %p = nn_tensor.fused %x, %w {kind = "matmul", schedule = {vec = 1 : i64, reg = array<i64: 2, 2>}} : (tensor<1x8x16xf32>, tensor<16x32xf32>) -> tensor<1x8x32xf32> {
  ^bb0(%ax: tensor<1x8x16xf32>, %aw: tensor<16x32xf32>):
    %m = nn_tensor.matmul %ax, %aw : (tensor<1x8x16xf32>, tensor<16x32xf32>) -> tensor<1x8x32xf32>
    nn_tensor.yield %m : tensor<1x8x32xf32>
  }
  func.return %h, %s, %gg, %c, %p : tensor<1x8x32xf32>, tensor<1x2x8x8xf32>, tensor<6x12xf32>, tensor<1x6x2x2xf32>, tensor<1x8x32xf32>
}

// ------------------------------------------------------------------------ wgsl default

/// Workgroup loops over 8x32 tiles, a 4x2 invocation grid, a 4x(8/4) register tile of
/// vector<4xf32> accumulators; kstep 4 with A contiguous along k: each k loop step covers 4
/// k, reading one A vector per row (its lanes splat in turn) and the B vectors per k; fma.
// WGSL-LABEL: nn_loop.kernel @k0_matmul
// WGSL-SAME:    kind "matmul" target "wgsl" schedule {workgroup = array<i64: 4, 2>, tile = array<i64: 8, 32>, reg = array<i64: 4, 8>, vec = 4 : i64, kstep = 4 : i64, shared = 0 : i64}
// WGSL-NEXT:    nn_loop.for %{{.*}} = 0 to 1 map "workgroup.y" {
// WGSL-NEXT:      nn_loop.for %{{.*}} = 0 to 1 map "workgroup.x" {
// WGSL-NEXT:        nn_loop.for %{{.*}} = 0 to 2 map "invocation.y" {
// WGSL-NEXT:          nn_loop.for %{{.*}} = 0 to 4 map "invocation.x" {
// WGSL-NEXT:            %[[ACC:.*]] = nn_loop.alloc : memref<4x2xvector<4xf32>, #nn_loop<space private>>
// WGSL-NOT:             #nn_loop<space workgroup>
// WGSL-NOT:             nn_loop.barrier
// WGSL:                 nn_loop.for %[[K:.*]] = 0 to 16 step 4 {
// WGSL:                   %[[A:.*]] = nn_loop.load %{{.*}}[%{{.*}}, %{{.*}}, %[[K]]] : memref<1x8x16xf32> -> vector<4xf32>
// WGSL:                   %[[B:.*]] = nn_loop.load %{{.*}}[%[[K]], %{{.*}}] : memref<16x32xf32> -> vector<4xf32>
// WGSL-NEXT:              nn_loop.load %{{.*}}[%[[K]], %{{.*}}] : memref<16x32xf32> -> vector<4xf32>
// WGSL-NEXT:              %[[A0:.*]] = nn_loop.extract %[[A]] {lane = 0 : i64} : vector<4xf32> -> f32
// WGSL-NEXT:              %[[AS:.*]] = nn_loop.splat %[[A0]] : f32 -> vector<4xf32>
// WGSL-NEXT:              %[[C:.*]] = nn_loop.load %[[ACC]][%{{.*}}, %{{.*}}] : memref<4x2xvector<4xf32>, #nn_loop<space private>> -> vector<4xf32>
// WGSL-NEXT:              %[[F:.*]] = math.fma %[[AS]], %[[B]], %[[C]] : vector<4xf32>
// WGSL-NEXT:              nn_loop.store %[[F]], %[[ACC]]
// WGSL:                   nn_loop.extract %[[A]] {lane = 3 : i64} : vector<4xf32> -> f32
/// The epilogue (bias, GELU) runs on the vector accumulator, once per register row.
// WGSL:                 nn_loop.for %[[I:.*]] = 0 to 4 unroll 4 {
// WGSL-NEXT:              nn_loop.for %[[G:.*]] = 0 to 2 unroll 2 {
// WGSL:                   %[[V:.*]] = nn_loop.load %[[ACC]][%[[I]], %[[G]]] : memref<4x2xvector<4xf32>, #nn_loop<space private>> -> vector<4xf32>
// WGSL-NEXT:              %[[BIAS:.*]] = nn_loop.load %{{.*}}[%{{.*}}] : memref<32xf32> -> vector<4xf32>
// WGSL-NEXT:              arith.addf %[[V]], %[[BIAS]] : vector<4xf32>
// WGSL:                   math.erf %{{.*}} : vector<4xf32>
// WGSL:                   nn_loop.store %{{.*}}, %{{.*}}[%{{.*}}, %{{.*}}, %{{.*}}] : vector<4xf32>, memref<1x8x32xf32>

/// Q . K^T: a workgroup.z loop over the 2 heads; vectors along k from both operands, lanes
/// summed by reduce_lanes, scalar stores.
// WGSL-LABEL: nn_loop.kernel @k1_matmul
// WGSL-SAME:    schedule {workgroup = array<i64: 2, 4>, tile = array<i64: 8, 8>, reg = array<i64: 2, 4>, vec = 4 : i64, kstep = 1 : i64, shared = 0 : i64}
// WGSL-NEXT:    nn_loop.for %{{.*}} = 0 to 2 map "workgroup.z" {
// WGSL:         nn_loop.alloc : memref<2x4xvector<4xf32>, #nn_loop<space private>>
// WGSL:         nn_loop.for %[[K:.*]] = 0 to 16 step 4 {
// WGSL-NEXT:      %[[A:.*]] = nn_loop.load %in0[%{{.*}}, %{{.*}}, %{{.*}}, %[[K]]] : memref<1x2x8x16xf32> -> vector<4xf32>
// WGSL:           %[[B:.*]] = nn_loop.load %in1[%{{.*}}, %{{.*}}, %{{.*}}, %[[K]]] : memref<1x2x8x16xf32> -> vector<4xf32>
// WGSL:           math.fma %[[A]], %[[B]], %{{.*}} : vector<4xf32>
// WGSL:         nn_loop.reduce_lanes add %{{.*}} : vector<4xf32> -> f32
// WGSL-NEXT:    nn_loop.store %{{.*}}, %out[%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}] : f32, memref<1x2x8x8xf32>

/// Gemm: alpha and beta scale the accumulator and C.
// WGSL-LABEL: nn_loop.kernel @k2_matmul
// WGSL:         %[[S:.*]] = nn_loop.reduce_lanes
// WGSL-NEXT:    %[[ALPHA:.*]] = arith.mulf %[[S]], %{{.*}} : f32
// WGSL-NEXT:    %[[C:.*]] = nn_loop.load %in2[%{{.*}}] : memref<12xf32> -> f32
// WGSL-NEXT:    %[[BETA:.*]] = arith.mulf %[[C]], %{{.*}} : f32
// WGSL-NEXT:    arith.addf %[[ALPHA]], %[[BETA]] : f32

/// Patch embedding: k splits into (channel, ky, kx); weights and patch rows are read as
/// vectors along kx; the conv bias is added per output channel.
// WGSL-LABEL: nn_loop.kernel @k3_conv
// WGSL-SAME:    kind "conv" target "wgsl"
// WGSL:         nn_loop.for %[[K:.*]] = 0 to 48 step 4 {
// WGSL-NEXT:      %[[CH:.*]] = arith.divsi %[[K]], %{{.*}} : index
// WGSL:           nn_loop.load %in1[%{{.*}}, %[[CH]], %{{.*}}, %{{.*}}] : memref<6x3x4x4xf32> -> vector<4xf32>
// WGSL:           nn_loop.load %in0[%{{.*}}, %[[CH]], %{{.*}}, %{{.*}}] : memref<1x3x8x8xf32> -> vector<4xf32>
// WGSL:         nn_loop.reduce_lanes
// WGSL:         nn_loop.load %in2[%{{.*}}] : memref<6xf32> -> f32
// WGSL:         nn_loop.store %{{.*}}, %out[%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}] : f32, memref<1x6x2x2xf32>

/// The fused op's own schedule wins over the pass options.
// WGSL-LABEL: nn_loop.kernel @k4_matmul
// WGSL-SAME:    schedule {workgroup = array<i64: 8, 4>, tile = array<i64: 8, 16>, reg = array<i64: 2, 2>, vec = 1 : i64, kstep = 4 : i64, shared = 0 : i64}
// WGSL:         nn_loop.alloc : memref<2x2xf32, #nn_loop<space private>>
// WGSL:         math.fma %{{.*}}, %{{.*}}, %{{.*}} : f32

// --------------------------------------------------------------------------------- vec=1

/// Scalar accumulators (4x8 f32), scalar B loads, scalar fma: no vectors in k0 at all.
// VEC1-LABEL: nn_loop.kernel @k0_matmul
// VEC1-SAME:    schedule {workgroup = array<i64: 4, 2>, tile = array<i64: 8, 32>, reg = array<i64: 4, 8>, vec = 1 : i64, kstep = 4 : i64, shared = 0 : i64}
// VEC1-NOT:     vector
// VEC1:         nn_loop.alloc : memref<4x8xf32, #nn_loop<space private>>
// VEC1-NOT:     vector
// VEC1:         nn_loop.load %in1[%{{.*}}, %{{.*}}] : memref<16x32xf32> -> f32
// VEC1-NOT:     vector
// VEC1:         math.fma %{{.*}}, %{{.*}}, %{{.*}} : f32
// VEC1-NOT:     vector
// VEC1-LABEL: nn_loop.kernel @k1_matmul
// VEC1-NOT:     reduce_lanes
// VEC1-LABEL: nn_loop.kernel @k2_matmul

// ---------------------------------------------------------------------------- shared=1

/// A and B tiles staged k-major in workgroup memory (tile_k 16): A is read from global
/// memory as vectors along k and its lanes go to 4 k rows; B rows are vectors along n,
/// stored as such. After a barrier, each register step reads the invocation's 4
/// consecutive rows of A as one vector (lanes splat) and two B vectors; a barrier follows.
// SHARED-LABEL: nn_loop.kernel @k0_matmul
// SHARED-SAME:    tile = array<i64: 8, 32, 16>, {{.*}} kstep = 16 : i64, shared = 1 : i64}
// SHARED:         %[[AS:.*]] = nn_loop.alloc : memref<16x8xf32, #nn_loop<space workgroup>>
// SHARED-NEXT:    %[[BS:.*]] = nn_loop.alloc : memref<16x32xf32, #nn_loop<space workgroup>>
// SHARED-NEXT:    nn_loop.alloc : memref<4x2xvector<4xf32>, #nn_loop<space private>>
// SHARED:         %[[AV:.*]] = nn_loop.load %in0[%{{.*}}, %{{.*}}, %{{.*}}] : memref<1x8x16xf32> -> vector<4xf32>
// SHARED:         %[[BV:.*]] = nn_loop.load %in1[%{{.*}}, %{{.*}}] : memref<16x32xf32> -> vector<4xf32>
// SHARED:         %[[L0:.*]] = nn_loop.extract %[[AV]] {lane = 0 : i64} : vector<4xf32> -> f32
// SHARED-NEXT:    nn_loop.store %[[L0]], %[[AS]][%[[KA:.*]], %[[RA:.*]]] : f32, memref<16x8xf32, #nn_loop<space workgroup>>
// SHARED-NEXT:    %[[L1:.*]] = nn_loop.extract %[[AV]] {lane = 1 : i64} : vector<4xf32> -> f32
// SHARED-NEXT:    %[[KA1:.*]] = arith.addi %[[KA]], %{{.*}} : index
// SHARED-NEXT:    nn_loop.store %[[L1]], %[[AS]][%[[KA1]], %[[RA]]] : f32, memref<16x8xf32, #nn_loop<space workgroup>>
// SHARED:         nn_loop.store %[[BV]], %[[BS]][%{{.*}}, %{{.*}}] : vector<4xf32>, memref<16x32xf32, #nn_loop<space workgroup>>
// SHARED:         nn_loop.barrier
// SHARED-NEXT:    nn_loop.for %[[KK:.*]] = 0 to 16 unroll 16 {
// SHARED-NEXT:      %[[A4:.*]] = nn_loop.load %[[AS]][%[[KK]], %{{.*}}] : memref<16x8xf32, #nn_loop<space workgroup>> -> vector<4xf32>
// SHARED-NEXT:      %[[A0:.*]] = nn_loop.extract %[[A4]] {lane = 0 : i64}
// SHARED:           %[[B0:.*]] = nn_loop.load %[[BS]][%[[KK]], %{{.*}}] : memref<16x32xf32, #nn_loop<space workgroup>> -> vector<4xf32>
// SHARED-NEXT:      nn_loop.load %[[BS]][%[[KK]], %{{.*}}] : memref<16x32xf32, #nn_loop<space workgroup>> -> vector<4xf32>
// SHARED-NEXT:      %[[S0:.*]] = nn_loop.splat %[[A0]] : f32 -> vector<4xf32>
// SHARED-NEXT:      %[[C0:.*]] = nn_loop.load %{{.*}}[%{{.*}}, %{{.*}}] : memref<4x2xvector<4xf32>, #nn_loop<space private>> -> vector<4xf32>
// SHARED-NEXT:      math.fma %[[S0]], %[[B0]], %[[C0]] : vector<4xf32>
// SHARED:         nn_loop.barrier
/// Q . K^T staged: K is contiguous along k, so its tile is read as vectors along k and its
/// lanes go to 4 k rows of the [k][n] tile; vectors run along n again (no reduce_lanes).
// SHARED-LABEL: nn_loop.kernel @k1_matmul
// SHARED:         %[[KS:.*]] = nn_loop.alloc : memref<16x8xf32, #nn_loop<space workgroup>>
// SHARED-NEXT:    %[[BT:.*]] = nn_loop.alloc : memref<16x8xf32, #nn_loop<space workgroup>>
// SHARED-NOT:     reduce_lanes
// SHARED:         %[[KV:.*]] = nn_loop.load %in1[%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}] : memref<1x2x8x16xf32> -> vector<4xf32>
// SHARED:         %[[KL:.*]] = nn_loop.extract %[[KV]] {lane = 0 : i64}
// SHARED-NEXT:    nn_loop.store %[[KL]], %[[BT]][%{{.*}}, %{{.*}}] : f32, memref<16x8xf32, #nn_loop<space workgroup>>
// SHARED-NOT:     reduce_lanes
// SHARED-LABEL: nn_loop.kernel @k2_matmul

/// tile_k 12 does not divide K = 16: the second k tile is zero-filled (k clamped to
/// K - 4 for the vector load, then a select), and kstep 3 unrolls the 12-step tile loop.
// PAD-LABEL: nn_loop.kernel @k0_matmul
// PAD-SAME:    tile = array<i64: 8, 16, 12>, reg = array<i64: 4, 8>, vec = 4 : i64, kstep = 3 : i64, shared = 1 : i64}
// PAD:         nn_loop.alloc : memref<12x8xf32, #nn_loop<space workgroup>>
// PAD-NEXT:    nn_loop.alloc : memref<12x16xf32, #nn_loop<space workgroup>>
// PAD:         nn_loop.for %[[K0:.*]] = 0 to 24 step 12 {
// PAD-NEXT:      %[[KG:.*]] = arith.addi %[[K0]], %{{.*}} : index
// PAD-NEXT:      %[[KC:.*]] = arith.minsi %[[KG]], %{{.*}} : index
// PAD-NEXT:      %[[R:.*]] = arith.addi %{{.*}}, %{{.*}} : index
// PAD-NEXT:      %[[V:.*]] = nn_loop.load %in0[%{{.*}}, %[[R]], %[[KC]]] : memref<1x8x16xf32> -> vector<4xf32>
// PAD-NEXT:      %[[IN:.*]] = arith.cmpi slt, %[[KG]], %{{.*}} : index
// PAD-NEXT:      arith.select %[[IN]], %[[V]], %{{.*}} : vector<4xf32>
// PAD:           nn_loop.barrier
// PAD-NEXT:      nn_loop.for %{{.*}} = 0 to 12 unroll 3 {
// PAD:           nn_loop.barrier

// ---------------------------------------------------------------------------- shared=2

/// Double buffering: two tiles of each operand; the first is staged before the loop; each
/// k tile then loads the next tile into registers (k clamped: the last prefetch reads past
/// K), runs the register steps on buffer (k0 / 4) % 2, stores the registers to the other
/// buffer and meets one barrier.
// SHARED2-LABEL: nn_loop.kernel @k0_matmul
// SHARED2-SAME:    tile = array<i64: 8, 16, 4>, {{.*}} kstep = 4 : i64, shared = 2 : i64}
// SHARED2:         %[[AS:.*]] = nn_loop.alloc : memref<2x4x8xf32, #nn_loop<space workgroup>>
// SHARED2-NEXT:    %[[BS:.*]] = nn_loop.alloc : memref<2x4x16xf32, #nn_loop<space workgroup>>
// SHARED2:         nn_loop.store %{{.*}}, %[[BS]][%[[Z:.*]], %{{.*}}, %{{.*}}] : vector<4xf32>, memref<2x4x16xf32, #nn_loop<space workgroup>>
// SHARED2:         nn_loop.barrier
// SHARED2-NEXT:    nn_loop.for %[[K0:.*]] = 0 to 16 step 4 {
// SHARED2-NEXT:      %[[T:.*]] = arith.divsi %[[K0]], %{{.*}} : index
// SHARED2-NEXT:      %[[CUR:.*]] = arith.remsi %[[T]], %{{.*}} : index
// SHARED2-NEXT:      %[[T1:.*]] = arith.addi %[[T]], %{{.*}} : index
// SHARED2-NEXT:      %[[NXT:.*]] = arith.remsi %[[T1]], %{{.*}} : index
// SHARED2-NEXT:      %[[KN:.*]] = arith.addi %[[K0]], %{{.*}} : index
// SHARED2:           %[[PA:.*]] = nn_loop.load %in0[{{.*}}] : memref<1x8x16xf32> -> vector<4xf32>
// SHARED2:           %[[PB:.*]] = nn_loop.load %in1[{{.*}}] : memref<16x32xf32> -> vector<4xf32>
// SHARED2-NOT:       nn_loop.barrier
// SHARED2:           nn_loop.for %[[KK:.*]] = 0 to 4 unroll 4 {
// SHARED2-NEXT:        nn_loop.load %[[AS]][%[[CUR]], %[[KK]], %{{.*}}] : memref<2x4x8xf32, #nn_loop<space workgroup>> -> vector<4xf32>
// SHARED2:           }
// SHARED2-NOT:       nn_loop.barrier
// SHARED2:           nn_loop.store %{{.*}}, %[[AS]][%[[NXT]], %{{.*}}, %{{.*}}] : f32, memref<2x4x8xf32, #nn_loop<space workgroup>>
// SHARED2:           nn_loop.store %[[PB]], %[[BS]][%[[NXT]], %{{.*}}, %{{.*}}] : vector<4xf32>, memref<2x4x16xf32, #nn_loop<space workgroup>>
// SHARED2:           nn_loop.barrier
// SHARED2-NEXT:    }
/// The conv's tiles vectorise along k (output rows of 2 pixels): one buffer, as shared=1.
// SHARED2-LABEL: nn_loop.kernel @k3_conv
// SHARED2-SAME:    shared = 1 : i64}

// ------------------------------------------------------------------- k slices (z > 1)

/// workgroup z = 2 splits k between two slices of the invocation grid (invocation.z):
/// slice z reads k in [8z, 8z + 8); slice 1 then hands its accumulators to slice 0 through
/// the workgroup buffer, and only slice 0 runs the epilogue.
// SLICES-LABEL: nn_loop.kernel @k0_matmul
// SLICES-SAME:    schedule {workgroup = array<i64: 4, 2, 2>, tile = array<i64: 8, 32>,
// SLICES:         nn_loop.for %[[Z:.*]] = 0 to 2 map "invocation.z" {
// SLICES-NEXT:      nn_loop.for %{{.*}} = 0 to 2 map "invocation.y" {
// SLICES-NEXT:        nn_loop.for %{{.*}} = 0 to 4 map "invocation.x" {
// SLICES-NEXT:          %[[RED:.*]] = nn_loop.alloc : memref<4x2x8xvector<4xf32>, #nn_loop<space workgroup>>
// SLICES-NEXT:          %[[ACC:.*]] = nn_loop.alloc : memref<4x2xvector<4xf32>, #nn_loop<space private>>
// SLICES:               %[[KZ:.*]] = arith.muli %[[Z]], %{{.*}} : index
// SLICES-NEXT:          nn_loop.for %[[J:.*]] = 0 to 8 step 4 {
// SLICES-NEXT:            %[[K:.*]] = arith.addi %[[KZ]], %[[J]] : index
// SLICES:                 nn_loop.load %in0[%{{.*}}, %{{.*}}, %[[K]]] : memref<1x8x16xf32> -> vector<4xf32>
// SLICES:                 nn_loop.load %in1[%[[K]], %{{.*}}] : memref<16x32xf32> -> vector<4xf32>
// SLICES:               %[[IS1:.*]] = arith.cmpi eq, %[[Z]], %{{.*}} : index
// SLICES-NEXT:          nn_loop.if %[[IS1]] {
// SLICES-NEXT:            %[[V:.*]] = nn_loop.load %[[ACC]]
// SLICES-NEXT:            nn_loop.store %[[V]], %[[RED]]
// SLICES:               nn_loop.barrier
// SLICES-NEXT:          %[[IS0:.*]] = arith.cmpi eq, %[[Z]], %{{.*}} : index
// SLICES-NEXT:          nn_loop.if %[[IS0]] {
// SLICES-NEXT:            %[[MINE:.*]] = nn_loop.load %[[ACC]]
// SLICES-NEXT:            %[[THEIRS:.*]] = nn_loop.load %[[RED]]
// SLICES-NEXT:            %[[SUM:.*]] = arith.addf %[[MINE]], %[[THEIRS]] : vector<4xf32>
// SLICES-NEXT:            nn_loop.store %[[SUM]], %[[ACC]]
// SLICES:               %[[EPI:.*]] = arith.cmpi eq, %[[Z]], %{{.*}} : index
// SLICES-NEXT:          nn_loop.if %[[EPI]] {
// SLICES:                 math.erf
// SLICES:                 nn_loop.store %{{.*}}, %out
/// Staged with k slices: the tiles' k dim is split into (slice, step); slice z reads its
/// steps of each tile.
// SLICES2-LABEL: nn_loop.kernel @k0_matmul
// SLICES2-SAME:    schedule {workgroup = array<i64: 4, 2, 2>, tile = array<i64: 8, 32, 16>, {{.*}} kstep = 8 : i64, shared = 2 : i64}
// SLICES2:         nn_loop.for %[[Z:.*]] = 0 to 2 map "invocation.z" {
// SLICES2:         %[[AS:.*]] = nn_loop.alloc : memref<2x2x8x8xf32, #nn_loop<space workgroup>>
// SLICES2-NEXT:    nn_loop.alloc : memref<2x2x8x32xf32, #nn_loop<space workgroup>>
// SLICES2-NEXT:    nn_loop.alloc : memref<4x2x8xvector<4xf32>, #nn_loop<space workgroup>>
// SLICES2:         nn_loop.for %[[KK:.*]] = 0 to 8 unroll 8 {
// SLICES2-NEXT:      nn_loop.load %[[AS]][%{{.*}}, %[[Z]], %[[KK]], %{{.*}}] : memref<2x2x8x8xf32, #nn_loop<space workgroup>> -> vector<4xf32>

// ------------------------------------------------------------------ reg, tile, workgroup

/// reg 2x8 with tile 4x16: a 2x2 invocation grid, 2x2 vector accumulators, kstep 2.
// REG-LABEL: nn_loop.kernel @k0_matmul
// REG-SAME:    schedule {workgroup = array<i64: 2, 2>, tile = array<i64: 4, 16>, reg = array<i64: 2, 8>, vec = 4 : i64, kstep = 2 : i64, shared = 0 : i64}
// REG-NEXT:    nn_loop.for %{{.*}} = 0 to 2 map "workgroup.y" {
// REG-NEXT:      nn_loop.for %{{.*}} = 0 to 2 map "workgroup.x" {
// REG-NEXT:        nn_loop.for %{{.*}} = 0 to 2 map "invocation.y" {
// REG-NEXT:          nn_loop.for %{{.*}} = 0 to 2 map "invocation.x" {
// REG-NEXT:            nn_loop.alloc : memref<2x2xvector<4xf32>, #nn_loop<space private>>
// REG:                 nn_loop.for %{{.*}} = 0 to 16 unroll 2 {

/// workgroup 4x1 (x, y) with the default reg 4x8 gives tile 4x32.
// WG-LABEL: nn_loop.kernel @k0_matmul
// WG-SAME:    schedule {workgroup = array<i64: 4, 1>, tile = array<i64: 4, 32>, reg = array<i64: 4, 8>
// WG-NEXT:    nn_loop.for %{{.*}} = 0 to 2 map "workgroup.y" {
// WG-NEXT:      nn_loop.for %{{.*}} = 0 to 1 map "workgroup.x" {
// WG-NEXT:        nn_loop.for %{{.*}} = 0 to 1 map "invocation.y" {
// WG-NEXT:          nn_loop.for %{{.*}} = 0 to 4 map "invocation.x" {

// --------------------------------------------------------------------------------- wasm

/// One "thread" loop over macro tiles (by default 16 columns of B by as many rows as leave
/// >= 16 tiles: 2 rows here), serial loops over 2x16 register blocks, 2x4 f32x4
/// accumulators, four B vectors and one A splat per row and k, k unrolled twice; no
/// workgroup/invocation maps.
// WASM-LABEL: nn_loop.kernel @k0_matmul
// WASM-SAME:    kind "matmul" target "wasm" schedule {tile = array<i64: 2, 16>, reg = array<i64: 2, 16>, vec = 4 : i64, kstep = 2 : i64}
// WASM-NEXT:    nn_loop.for %{{.*}} = 0 to 8 map "thread" {
// WASM-NEXT:      %[[ACC:.*]] = nn_loop.alloc : memref<2x4xvector<4xf32>, #nn_loop<space private>>
// WASM-NOT:       map
// WASM:           nn_loop.for %[[K:.*]] = 0 to 16 unroll 2 {
// WASM-NEXT:        %[[B0:.*]] = nn_loop.load %in1[%[[K]], %{{.*}}] : memref<16x32xf32> -> vector<4xf32>
// WASM-NEXT:        %[[B1:.*]] = nn_loop.load %in1[%[[K]], %{{.*}}] : memref<16x32xf32> -> vector<4xf32>
// WASM-NEXT:        nn_loop.load %in1[%[[K]], %{{.*}}] : memref<16x32xf32> -> vector<4xf32>
// WASM-NEXT:        nn_loop.load %in1[%[[K]], %{{.*}}] : memref<16x32xf32> -> vector<4xf32>
// WASM-NEXT:        %[[A:.*]] = nn_loop.load %in0[%{{.*}}, %{{.*}}, %[[K]]] : memref<1x8x16xf32> -> f32
// WASM-NEXT:        %[[AS:.*]] = nn_loop.splat %[[A]] : f32 -> vector<4xf32>
// WASM-NEXT:        %[[C:.*]] = nn_loop.load %[[ACC]]
// WASM-NEXT:        math.fma %[[AS]], %[[B0]], %[[C]] : vector<4xf32>
// WASM:             math.fma %[[AS]], %[[B1]], %{{.*}} : vector<4xf32>
/// Q . K^T on wasm: 2x4 register tile of k-vectors.
// WASM-LABEL: nn_loop.kernel @k1_matmul
// WASM-SAME:    schedule {tile = array<i64: 2, 4>, reg = array<i64: 2, 4>, vec = 4 : i64, kstep = 1 : i64}
// WASM-NEXT:    nn_loop.for %{{.*}} = 0 to 16 map "thread" {
// WASM-NEXT:      nn_loop.alloc : memref<2x4xvector<4xf32>, #nn_loop<space private>>
// WASM:           nn_loop.reduce_lanes

/// vec 1, reg 3x2, tile 6x8, kstep 2: scalar accumulators; M = 8 is covered by row blocks
/// starting at min(r, 8 - 3) (the last one recomputes a row).
// WASM1-LABEL: nn_loop.kernel @k0_matmul
// WASM1-SAME:    schedule {tile = array<i64: 6, 8>, reg = array<i64: 3, 2>, vec = 1 : i64, kstep = 2 : i64}
// WASM1-NEXT:    nn_loop.for %{{.*}} = 0 to 8 map "thread" {
// WASM1-NEXT:      nn_loop.alloc : memref<3x2xf32, #nn_loop<space private>>
// WASM1:           nn_loop.for %[[RB:.*]] = 0 to 6 step 3 {
// WASM1:             arith.minsi %{{.*}}, %{{.*}} : index
// WASM1:             nn_loop.for %{{.*}} = 0 to 8 step 2 {
// WASM1:               nn_loop.for %{{.*}} = 0 to 16 unroll 2 {
// WASM1:                 math.fma %{{.*}}, %{{.*}}, %{{.*}} : f32

/// After nn-loop-unroll every private index is a constant (no unrolled loops remain); the
/// k loop unrolled twice steps by 2.
// UNROLL-LABEL: nn_loop.kernel @k0_matmul
// UNROLL-NOT:     unroll
// UNROLL:         %[[ACC:.*]] = nn_loop.alloc : memref<2x4xvector<4xf32>, #nn_loop<space private>>
// UNROLL-NOT:     unroll
// UNROLL:         nn_loop.for %{{.*}} = 0 to 16 step 2 {
// UNROLL-NOT:     unroll
// UNROLL-LABEL: nn_loop.kernel @k1_matmul
