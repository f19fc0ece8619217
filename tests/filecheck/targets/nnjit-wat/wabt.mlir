// RUN: nnjit-translate %s -t nnjit-wat -o %t.wat
// RUN: wat2wasm --enable-relaxed-simd --enable-threads %t.wat -o %t.wasm
// RUN: filecheck %s < %t.wat

/// The printed WAT (comments included) also assembles with wabt's wat2wasm. Names that are
/// WAT keywords in the source IR never reach the text as such.
// CHECK: ;; kernel: k
// CHECK: (func $run (export "run") (param $tid i32) (param $nthreads i32) (param $b0 i32) (param $b1 i32)
// CHECK-NOT: {{\$(loop|local)($|[ )])}}
// CHECK: v128.load32_splat
// CHECK: f32x4.relaxed_madd
nn_loop.kernel @k(%a: memref<4x3xf32> read, %b: memref<3x8xf32> read_write) kind "matmul" target "wasm" {
  nn_loop.for %loop = 0 to 4 map "thread" {
    nn_loop.for %local = 0 to 3 {
      %x = nn_loop.load %a[%loop, %local] : memref<4x3xf32> -> f32
      %s = nn_loop.splat %x : f32 -> vector<4xf32>
      %c4 = arith.constant 4 : index
      %bv = nn_loop.load %b[%local, %c4] : memref<3x8xf32> -> vector<4xf32>
      %f = math.fma %s, %bv, %bv : vector<4xf32>
      nn_loop.store %f, %b[%local, %c4] : vector<4xf32>, memref<3x8xf32>
    }
  }
}
