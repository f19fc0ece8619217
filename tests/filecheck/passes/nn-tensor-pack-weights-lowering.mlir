// RUN: nnjit-opt %s -p 'nn-tensor-pack-weights,convert-nn-tensor-to-nn-loop{target=wasm}' | filecheck %s
// RUN: nnjit-opt %s -p 'nn-tensor-pack-weights,convert-nn-tensor-to-nn-loop{target=wasm},nn-loop-unroll,convert-nn-loop-to-wasm' | filecheck %s --check-prefix=WASM

/// The Wasm matmul kernel reads the packed panels directly: B is a [N/8, K, 8] buffer
/// indexed [panel, k, column in panel] with the panel folded from the tile's first column;
/// the default 2x16 register tile reads two panels.
// CHECK-LABEL: nn_loop.kernel @k0_matmul(%in0: memref<3x8xf32> read, %in1: memref<2x8x8xf32> read, %out: memref<3x16xf32> write)
// CHECK-DAG:     %[[C0:.*]] = arith.constant 0 : index
// CHECK-DAG:     %[[C1:.*]] = arith.constant 1 : index
// CHECK-DAG:     %[[C4:.*]] = arith.constant 4 : index
// CHECK:         nn_loop.for %[[K:.*]] = 0 to 8 unroll 2
// CHECK-NEXT:      nn_loop.load %in1[%[[C0]], %[[K]], %[[C0]]] : memref<2x8x8xf32> -> vector<4xf32>
// CHECK-NEXT:      nn_loop.load %in1[%[[C0]], %[[K]], %[[C4]]] : memref<2x8x8xf32> -> vector<4xf32>
// CHECK-NEXT:      nn_loop.load %in1[%[[C1]], %[[K]], %[[C0]]] : memref<2x8x8xf32> -> vector<4xf32>
// CHECK-NEXT:      nn_loop.load %in1[%[[C1]], %[[K]], %[[C4]]] : memref<2x8x8xf32> -> vector<4xf32>
// CHECK-LABEL: func.func @main
// CHECK:         %[[P:.*]] = nn_loop.weight "w#pack=kn8" : memref<2x8x8xf32>
// CHECK:         nn_loop.launch @k0_matmul(%{{.*}}, %[[P]], %{{.*}})
func.func @main(%x: tensor<3x8xf32>) -> tensor<3x16xf32> {
  %w = nn_tensor.weight "w" : tensor<8x16xf32>
  %m = nn_tensor.matmul %x, %w : (tensor<3x8xf32>, tensor<8x16xf32>) -> tensor<3x16xf32>
  func.return %m : tensor<3x16xf32>
}

/// In Wasm the B vectors of both unrolled k steps come from one pointer (offsets 0, 16 and,
/// one panel (8 x 8 floats) further, 256, 272; then 32, 48, 288, 304), which steps by two
/// panel rows (64 bytes) per iteration.
// WASM-LABEL: nn_wasm.module @k0_matmul
// WASM:         nn_wasm.loop "l
// WASM:           %[[P:.*]] = nn_wasm.local.get "p_in1" : i32
// WASM-NEXT:      nn_wasm.v128.load align=4 %[[P]]
// WASM:           %[[Q:.*]] = nn_wasm.local.get "p_in1" : i32
// WASM-NEXT:      nn_wasm.v128.load offset=16 align=4 %[[Q]]
// WASM:           nn_wasm.v128.load offset=256 align=4
// WASM:           nn_wasm.v128.load offset=272 align=4
// WASM:           nn_wasm.v128.load offset=32 align=4
// WASM:           nn_wasm.v128.load offset=48 align=4
// WASM:           nn_wasm.v128.load offset=288 align=4
// WASM:           nn_wasm.v128.load offset=304 align=4
// WASM:           %[[R:.*]] = nn_wasm.local.get "p_in1" : i32
// WASM-NEXT:      %[[S:.*]] = nn_wasm.i32.const 64
// WASM-NEXT:      nn_wasm.i32.add %[[R]], %[[S]]
