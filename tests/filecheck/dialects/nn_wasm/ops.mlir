// RUN: nnjit-opt %s | filecheck %s
// RUN: nnjit-opt %s --print-op-generic | nnjit-opt | filecheck %s

/// nn_wasm round-trips through its custom and its generic form: one op per WAT instruction,
/// immediates before operands, types only where the instruction does not fix them.

// CHECK-LABEL: nn_wasm.module @k0 manifest {kind = "matmul", schedule = {reg = array<i64: 4, 8>}, params = [{index = 0 : i64, access = "read", dtype = "f32", shape = [4 : i64], bytes = 16 : i64}], thread_chunks = 2 : i64, features = ["simd128", "relaxed-simd", "threads"]} {
nn_wasm.module @k0 manifest {kind = "matmul", schedule = {reg = array<i64: 4, 8>}, params = [{index = 0 : i64, access = "read", dtype = "f32", shape = [4 : i64], bytes = 16 : i64}], thread_chunks = 2 : i64, features = ["simd128", "relaxed-simd", "threads"]} {
  // CHECK-NEXT: nn_wasm.import_memory "env" "memory" min 1 max 65536 shared
  nn_wasm.import_memory "env" "memory" min 1 max 65536 shared
  // CHECK-NEXT: nn_wasm.func @sq("x": f32) -> (f32) {
  nn_wasm.func @sq("x": f32) -> (f32) {
    %0 = nn_wasm.local.get "x" : f32
    %1 = nn_wasm.local.get "x" : f32
    // CHECK: %{{.*}} = nn_wasm.f32.mul %{{.*}}, %{{.*}}
    %2 = nn_wasm.f32.mul %0, %1
    // CHECK-NEXT: nn_wasm.return %{{.*}} : f32
    nn_wasm.return %2 : f32
  }
  // CHECK: nn_wasm.func @run export "run" ("tid": i32, "nthreads": i32, "b0": i32) locals ("i": i32, "acc": !nn_wasm.v128) {
  nn_wasm.func @run export "run" ("tid": i32, "nthreads": i32, "b0": i32) locals ("i": i32, "acc": !nn_wasm.v128) {
    %t = nn_wasm.local.get "tid" : i32
    // CHECK: nn_wasm.if "idle" %{{.*}} {
    // CHECK-NEXT: nn_wasm.return
    nn_wasm.if "idle" %t {
      nn_wasm.return
    }
    %z = nn_wasm.i32.const 0
    nn_wasm.local.set "i" %z : i32
    // CHECK: nn_wasm.block "done" {
    // CHECK-NEXT: nn_wasm.loop "l" {
    nn_wasm.block "done" {
      nn_wasm.loop "l" {
        %a3 = nn_wasm.local.get "b0" : i32
        // CHECK: nn_wasm.v128.const f32x4 [1.0, -2.5, inf, nan]
        %c = nn_wasm.v128.const f32x4 [1.0, -2.5, inf, nan]
        %a = nn_wasm.local.get "b0" : i32
        // CHECK: nn_wasm.v128.load32_splat offset=4 %{{.*}}
        %s = nn_wasm.v128.load32_splat offset=4 %a
        %a2 = nn_wasm.local.get "b0" : i32
        // CHECK: nn_wasm.v128.load align=4 %{{.*}}
        %v = nn_wasm.v128.load align=4 %a2
        %acc = nn_wasm.local.get "acc" : !nn_wasm.v128
        // CHECK: nn_wasm.f32x4.relaxed_madd %{{.*}}, %{{.*}}, %{{.*}}
        %f = nn_wasm.f32x4.relaxed_madd %s, %v, %acc
        // CHECK: nn_wasm.local.tee "acc" %{{.*}} : !nn_wasm.v128
        %f2 = nn_wasm.local.tee "acc" %f : !nn_wasm.v128
        // CHECK-NEXT: nn_wasm.f32x4.extract_lane 3 %{{.*}}
        %e = nn_wasm.f32x4.extract_lane 3 %f2
        // CHECK-NEXT: nn_wasm.call @sq(%{{.*}}) : (f32) -> (f32)
        %q = nn_wasm.call @sq(%e) : (f32) -> (f32)
        %r = nn_wasm.f32x4.replace_lane 0 %c, %q
        // CHECK: nn_wasm.v128.store offset=16 align=4 %{{.*}}, %{{.*}}
        nn_wasm.v128.store offset=16 align=4 %a3, %r
        %i = nn_wasm.local.get "i" : i32
        %one = nn_wasm.i32.const 1
        %n = nn_wasm.i32.add %i, %one
        %n2 = nn_wasm.local.tee "i" %n : i32
        %lim = nn_wasm.i32.const -3
        %x = nn_wasm.f32.const 0.5
        %y = nn_wasm.f32.const 2.0
        %ge = nn_wasm.f32.ge %x, %y
        // CHECK: nn_wasm.select %{{.*}}, %{{.*}}, %{{.*}} : i32
        %sel = nn_wasm.select %n2, %lim, %ge : i32
        // CHECK: nn_wasm.br_if "done" %{{.*}}
        nn_wasm.br_if "done" %sel
        // CHECK-NEXT: nn_wasm.br "l"
        nn_wasm.br "l"
      }
    }
    nn_wasm.return
  }
}
