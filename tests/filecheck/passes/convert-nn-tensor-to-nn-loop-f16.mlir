// f16 matmuls (schedule option `f16`, nnjit/passes/lowering/gemm/plan.py): B, a weight stored as
// float16, is read as f16; the launch takes an f16 weight of the same key; f16=2 also
// multiplies and accumulates in f16. The WGSL enables f16 and the manifest names the feature.
//
// RUN: nnjit-opt %s -p 'convert-nn-tensor-to-nn-loop{target=wgsl f16=1}' | filecheck %s --check-prefix=LOOP
// RUN: nnjit-opt %s -p 'convert-nn-tensor-to-nn-loop{target=wgsl f16=2}' | filecheck %s --check-prefix=ACC16
// RUN: nnjit-opt %s -p 'convert-nn-tensor-to-nn-loop{target=wgsl f16=1},nn-loop-expand-math{target=wgsl},nn-loop-unroll,convert-nn-loop-to-wgsl' -t nnjit-wgsl | filecheck %s --check-prefix=WGSL
// RUN: nnjit-opt %s -p 'convert-nn-tensor-to-nn-loop{target=wgsl},nn-loop-expand-math{target=wgsl},nn-loop-unroll,convert-nn-loop-to-wgsl' -t nnjit-wgsl | filecheck %s --check-prefix=F32

func.func @main(%x: tensor<8x16xf32>) -> tensor<8x32xf32> {
  %w = nn_tensor.weight "w" : tensor<16x32xf32>
  %b = nn_tensor.weight "b" : tensor<32xf32>
  %h = nn_tensor.fused %x, %w, %b {kind = "matmul"} : (tensor<8x16xf32>, tensor<16x32xf32>, tensor<32xf32>) -> tensor<8x32xf32> {
  ^bb0(%ax: tensor<8x16xf32>, %aw: tensor<16x32xf32>, %ab: tensor<32xf32>):
    %m = nn_tensor.matmul %ax, %aw : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
    %y = nn_tensor.add %m, %ab : (tensor<8x32xf32>, tensor<32xf32>) -> tensor<8x32xf32>
    nn_tensor.yield %y : tensor<8x32xf32>
  }
  func.return %h : tensor<8x32xf32>
}

/// f16=1: B is an f16 memref, each loaded vector widened before the f32 fma.
// LOOP-LABEL: nn_loop.kernel @k0_matmul
// LOOP-SAME:    memref<16x32xf16> read
// LOOP-SAME:    schedule {{.*}}f16 = 1
// LOOP:         %[[B:.*]] = nn_loop.load {{.*}} : memref<16x32xf16> -> vector<4xf16>
// LOOP-NEXT:    %[[BW:.*]] = arith.extf %[[B]] : vector<4xf16> to vector<4xf32>
// LOOP:         math.fma {{.*}}, %[[BW]], {{.*}} : vector<4xf32>
/// the launch reads the weight as f16 (the same key); the bias stays f32
// LOOP-LABEL: func.func @main
// LOOP:         %[[W:.*]] = nn_loop.weight "w" : memref<16x32xf32>
// LOOP-NEXT:    %[[W16:.*]] = nn_loop.weight "w" : memref<16x32xf16>
// LOOP:         nn_loop.launch @k0_matmul({{.*}}, %[[W16]], {{.*}})

/// f16=2: f16 accumulators, A rounded to f16, the sums widened for the epilogue.
// ACC16-LABEL: nn_loop.kernel @k0_matmul
// ACC16:         nn_loop.alloc : memref<4x2xvector<4xf16>, #nn_loop<space private>>
// ACC16:         %[[A:.*]] = arith.truncf {{.*}} : f32 to f16
// ACC16-NEXT:    nn_loop.splat %[[A]] : f16 -> vector<4xf16>
// ACC16:         math.fma {{.*}} : vector<4xf16>
// ACC16:         arith.extf {{.*}} : vector<4xf16> to vector<4xf32>

// WGSL-LABEL: // kernel: k0_matmul
// WGSL-NEXT:  // manifest: {"bindings": [{"access": "read", "binding": 0, "bytes": 512, "dtype": "f32", "shape": [8, 16]}, {"access": "read", "binding": 1, "bytes": 1024, "dtype": "f16", "shape": [16, 32]}, {"access": "read", "binding": 2, "bytes": 128, "dtype": "f32", "shape": [32]}, {{.*}}, "features": ["shader-f16"], {{.*}}
// WGSL-NEXT:  enable f16;
// WGSL-EMPTY:
// WGSL-NEXT:  @group(0) @binding(0) var<storage, read> in0: array<vec4<f32>>;
// WGSL-NEXT:  @group(0) @binding(1) var<storage, read> in1: array<vec4<f16>>;
// WGSL:         let [[B:v_[0-9]+]] = in1[
// WGSL-NEXT:    let {{.*}} = vec4<f32>([[B]]);

/// negative: without f16 nothing changes
// F32-LABEL: // kernel: k0_matmul
// F32-NOT:   f16
// F32:       @group(0) @binding(1) var<storage, read> in1: array<vec4<f32>>;
// F32-NOT:   f16
