// RUN: nnjit-translate %s -t nnjit-wat | filecheck %s
// RUN: nnjit-translate %s -t nnjit-wat --wasm %t.dir && test -s %t.dir/ew.wasm

/// Each kernel prints as `;; kernel:`, `;; manifest: {json}` and a flat WAT module: one line
/// per nn_wasm op, structured ops closed by `end`, identifiers from the NameSupply.
// CHECK-LABEL: ;; kernel: ew
// CHECK-NEXT:  ;; manifest: {"export": "run", "features": ["simd128", "threads"], "kind": "elementwise", "name": "ew", "params": [{"access": "read", "bytes": 40, "dtype": "f32", "index": 0, "shape": [10]}, {"access": "write", "bytes": 40, "dtype": "f32", "index": 1, "shape": [10]}], "schedule": {"vec": 4}, "target": "wasm", "thread_chunks": 1}
// CHECK-NEXT:  (module
// CHECK-NEXT:    (import "env" "memory" (memory 1 65536 shared))
// CHECK-NEXT:    (func $run (export "run") (param $tid i32) (param $nthreads i32) (param $b0 i32) (param $b1 i32)
/// Loop-varying addresses are pointer bumps (address streams), not recomputed per iteration.
// CHECK-NEXT:      (local $[[PX:p_x]] i32) (local $[[PY:p_y]] i32) (local $[[PEND:p_end]] i32)
// CHECK-NEXT:      local.get $tid
// CHECK-NEXT:      if $not_thread0
// CHECK-NEXT:        return
// CHECK-NEXT:      end
// CHECK-NEXT:      local.get $b0
// CHECK-NEXT:      local.set $[[PX]]
// CHECK-NEXT:      local.get $b1
// CHECK-NEXT:      local.set $[[PY]]
// CHECK:           loop $l
// CHECK-NEXT:        local.get $[[PY]]
// CHECK-NEXT:        local.get $[[PX]]
// CHECK-NEXT:        v128.load align=4
// CHECK-NEXT:        call $exp_f32x4
// CHECK-NEXT:        v128.store align=4
// CHECK:             i32.const 16
// CHECK-NEXT:        i32.add
// CHECK-NEXT:        local.set $[[PY]]
// CHECK-NEXT:        local.get $[[PX]]
// CHECK-NEXT:        i32.const 16
// CHECK-NEXT:        i32.add
// CHECK-NEXT:        local.tee $[[PX]]
// CHECK-NEXT:        local.get $[[PEND]]
// CHECK-NEXT:        i32.ne
// CHECK-NEXT:        br_if $l
// CHECK-NEXT:      end
/// The scalar remainder (elements 8 and 9) starts 32 bytes in.
// CHECK:           i32.const 32
// CHECK:           f32.load
// CHECK-NEXT:      call $exp_f32
// CHECK-NEXT:      f32.store
// CHECK:           return
// CHECK-NEXT:    )
// CHECK:         (func $exp_f32x4 (param $x v128) (result v128)
// CHECK:           f32x4.nearest
// CHECK:           i32x4.trunc_sat_f32x4_s
// CHECK:           v128.bitselect
// CHECK:           return
// CHECK-NEXT:    )
// CHECK:         (func $exp_f32 (param $x f32) (result f32)
// CHECK:           f32.nearest
// CHECK:           i32.trunc_sat_f32_s
// CHECK:           select
// CHECK:       )
nn_loop.kernel @ew(%x: memref<10xf32> read, %y: memref<10xf32> write) kind "elementwise" target "wasm" schedule {vec = 4 : i64} {
  nn_loop.for %i = 0 to 8 step 4 {
    %v = nn_loop.load %x[%i] : memref<10xf32> -> vector<4xf32>
    %t = math.exp %v : vector<4xf32>
    nn_loop.store %t, %y[%i] : vector<4xf32>, memref<10xf32>
  }
  nn_loop.for %i = 8 to 10 {
    %v = nn_loop.load %x[%i] : memref<10xf32> -> f32
    %t = math.exp %v : f32
    nn_loop.store %t, %y[%i] : f32, memref<10xf32>
  }
}
