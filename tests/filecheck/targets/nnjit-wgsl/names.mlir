// RUN: nnjit-opt %s -p convert-nn-loop-to-wgsl | nnjit-translate -t nnjit-wgsl | filecheck %s

/// Names and strings of the IR never reach WGSL as such: the kernel name, kind and schedule
/// go to the manifest (JSON) only, and every identifier is sanitised by NameSupply (WGSL
/// keywords, builtin functions and the entry point's name get a suffix).

// CHECK:      // kernel: "fn main() {\n}"
// CHECK-NEXT: // manifest: {"bindings": [{"access": "read", "binding": 0, {{.*}}], {{.*}} "kind": "fn x() {} */ @compute", "name": "fn main() {\n}", "schedule": {"fn y() {}": "}; return;"}, {{.*}}}
// CHECK-NEXT: @group(0) @binding(0) var<storage, read> var_: array<f32>;
// CHECK-NEXT: @group(0) @binding(1) var<storage, read_write> let_x_1: array<f32>;
// CHECK-EMPTY:
// CHECK-NEXT: @compute @workgroup_size(4, 1, 1)
// CHECK-NEXT: fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
// CHECK-NEXT:   let lid_x = i32(lid.x);
// CHECK-NEXT:   let fn_ = var_[lid_x];
// CHECK-NEXT:   let {{v.*}} = max(fn_, fn_);
// CHECK:        let max_ = select({{.*}});
// CHECK-NEXT:   let {{v.*}} = exp(max_);
// CHECK:        let main_ = select({{.*}});
// CHECK-NEXT:   let_x_1[lid_x] = main_;
// CHECK-NEXT: }
nn_loop.kernel @"fn main() {\n}"(%var: memref<4xf32> read, %let.x$-1: memref<4xf32> write)
    kind "fn x() {} */ @compute" target "wgsl" schedule {"fn y() {}" = "}; return;"} {
  nn_loop.for %i = 0 to 4 map "invocation.x" {
    %fn = nn_loop.load %var[%i] : memref<4xf32> -> f32
    %max = arith.maximumf %fn, %fn : f32
    %main = math.exp %max : f32
    nn_loop.store %main, %let.x$-1[%i] : f32, memref<4xf32>
  }
}
