// RUN: nnjit-opt %s --split-input-file -p cse,dce | filecheck %s
// RUN: nnjit-opt %s --split-input-file -p dce | filecheck %s --check-prefix=DCE

/// The web-level dialects declare their memory effects too, so cse and dce see through
/// nn_wgsl expressions; declarations (bindings, memory imports) and control flow stay.

/// Duplicate expressions merge, dead ones and unused scratch go; bindings stay.
// CHECK-LABEL: nn_wgsl.module @wgsl_expressions
// CHECK:         nn_wgsl.binding 0 read
// CHECK:         nn_wgsl.binding 1 write
// CHECK:         nn_wgsl.binding 2 read
// CHECK:         %[[L:.*]] = nn_wgsl.builtin local_invocation_id x
// CHECK-NEXT:    %[[V:.*]] = nn_wgsl.load %a[%[[L]]]
// CHECK-NEXT:    %[[E:.*]] = nn_wgsl.call "exp"(%[[V]])
// CHECK-NEXT:    %[[S:.*]] = nn_wgsl.binary "+" %[[E]], %[[E]]
// CHECK-NEXT:    nn_wgsl.store %[[S]], %out[%[[L]]]
// CHECK-NEXT:  }
nn_wgsl.module @wgsl_expressions kind "t" dispatch [1, 1, 1] {
  %a = nn_wgsl.binding 0 read shape [4] : !nn_wgsl.array<storage, f32>
  %out = nn_wgsl.binding 1 write shape [4] : !nn_wgsl.array<storage, f32>
  %unused = nn_wgsl.binding 2 read shape [4] : !nn_wgsl.array<storage, f32>
  nn_wgsl.entry workgroup_size [4, 1, 1] {
    %l = nn_wgsl.builtin local_invocation_id x : i32
    %l2 = nn_wgsl.builtin local_invocation_id x : i32
    %scratch = nn_wgsl.function_var : !nn_wgsl.array<function, f32, 4>
    %v = nn_wgsl.load %a[%l] : !nn_wgsl.array<storage, f32>, i32
    %w = nn_wgsl.load %a[%l2] : !nn_wgsl.array<storage, f32>, i32
    %e = nn_wgsl.call "exp"(%v) : (f32) -> f32
    %f = nn_wgsl.call "exp"(%w) : (f32) -> f32
    %dead = nn_wgsl.unary "-" %f : f32
    %s = nn_wgsl.binary "+" %e, %f : f32, f32 -> f32
    nn_wgsl.store %s, %out[%l] : !nn_wgsl.array<storage, f32>, i32
  }
}

// -----

/// A barrier or a store between two loads of workgroup memory keeps them apart.
// CHECK-LABEL: nn_wgsl.module @negative_wgsl_barrier
// CHECK-COUNT-3: nn_wgsl.load %tile
nn_wgsl.module @negative_wgsl_barrier kind "t" dispatch [1, 1, 1] {
  %out = nn_wgsl.binding 0 write shape [4] : !nn_wgsl.array<storage, f32>
  %tile = nn_wgsl.workgroup_var : !nn_wgsl.array<workgroup, f32, 4>
  nn_wgsl.entry workgroup_size [4, 1, 1] {
    %l = nn_wgsl.builtin local_invocation_id x : i32
    %x = nn_wgsl.load %tile[%l] : !nn_wgsl.array<workgroup, f32, 4>, i32
    nn_wgsl.barrier
    %y = nn_wgsl.load %tile[%l] : !nn_wgsl.array<workgroup, f32, 4>, i32
    nn_wgsl.store %x, %tile[%l] : !nn_wgsl.array<workgroup, f32, 4>, i32
    %z = nn_wgsl.load %tile[%l] : !nn_wgsl.array<workgroup, f32, 4>, i32
    %s = nn_wgsl.binary "+" %y, %z : f32, f32 -> f32
    nn_wgsl.store %s, %out[%l] : !nn_wgsl.array<storage, f32>, i32
  }
}

// -----

/// dce on a Wasm function: a block without effects goes; loads feeding a local.set, drop,
/// branches and the memory import stay. (A dead pure value cannot occur: stack discipline.)
// DCE-LABEL: nn_wasm.module @wasm_dce
// DCE:         nn_wasm.import_memory
// DCE:         nn_wasm.func @run
// DCE-NEXT:      %[[A:.*]] = nn_wasm.local.get "p"
// DCE-NEXT:      %[[V:.*]] = nn_wasm.f32.load %[[A]]
// DCE-NEXT:      nn_wasm.local.set "x" %[[V]]
// DCE-NEXT:      nn_wasm.block "b" {
// DCE-NEXT:        %[[C:.*]] = nn_wasm.local.get "p"
// DCE-NEXT:        nn_wasm.br_if "b" %[[C]]
// DCE-NEXT:      }
// DCE-NEXT:      %[[D:.*]] = nn_wasm.f32.const 1.0
// DCE-NEXT:      nn_wasm.drop %[[D]]
// DCE-NEXT:    }
nn_wasm.module @wasm_dce manifest {kind = "t", params = [], thread_chunks = 1 : i64, features = []} {
  nn_wasm.import_memory "env" "memory" min 1 max 2 shared
  nn_wasm.func @run("p": i32) locals ("x": f32) {
    %a = nn_wasm.local.get "p" : i32
    %v = nn_wasm.f32.load %a
    nn_wasm.local.set "x" %v : f32
    nn_wasm.block "b" {
      %c = nn_wasm.local.get "p" : i32
      nn_wasm.br_if "b" %c
    }
    nn_wasm.block "empty" {
    }
    %d = nn_wasm.f32.const 1.0
    nn_wasm.drop %d : f32
  }
}
