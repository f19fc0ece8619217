// RUN: nnjit-opt %s --split-input-file -p cse,dce | filecheck %s

/// xDSL's generic cse and dce work on nn_loop because its ops declare their memory effects:
/// value ops are Pure, loads read, stores write, barriers do both, loops and ifs have the
/// effects of their bodies.

/// A splat nobody uses is dead.
// CHECK-LABEL: nn_loop.kernel @dead_splat
// CHECK:         %[[X:.*]] = nn_loop.load %a
// CHECK-NEXT:    nn_loop.store %[[X]], %b
nn_loop.kernel @dead_splat(%a: memref<4xf32> read, %b: memref<4xf32> write) kind "t" target "wgsl" {
  %c0 = arith.constant 0 : index
  %x = nn_loop.load %a[%c0] : memref<4xf32> -> f32
  %s = nn_loop.splat %x : f32 -> vector<4xf32>
  nn_loop.store %x, %b[%c0] : f32, memref<4xf32>
}

// -----

/// Two loads of the same element with no write in between are one load.
// CHECK-LABEL: nn_loop.kernel @duplicate_load
// CHECK:         %[[X:.*]] = nn_loop.load %a[%{{.*}}] : memref<4xf32> -> f32
// CHECK-NOT:     nn_loop.load
// CHECK:         arith.addf %[[X]], %[[X]] : f32
nn_loop.kernel @duplicate_load(%a: memref<4xf32> read, %b: memref<4xf32> write) kind "t" target "wgsl" {
  %c0 = arith.constant 0 : index
  %x = nn_loop.load %a[%c0] : memref<4xf32> -> f32
  %y = nn_loop.load %a[%c0] : memref<4xf32> -> f32
  %s = arith.addf %x, %y : f32
  nn_loop.store %s, %b[%c0] : f32, memref<4xf32>
}

// -----

/// Duplicate pure ops (constants, splats, lanes) are merged; dead loads and allocs go.
// CHECK-LABEL: nn_loop.kernel @duplicate_pure_ops
// CHECK-COUNT-1: arith.constant 0 : index
// CHECK-NOT:     arith.constant 0 : index
// CHECK:         %[[V:.*]] = nn_loop.splat
// CHECK-NOT:     nn_loop.splat
// CHECK:         %[[E:.*]] = nn_loop.extract %[[V]] {lane = 1 : i64}
// CHECK-NOT:     nn_loop.extract
// CHECK:         arith.addf %[[E]], %[[E]]
// CHECK-NOT:     nn_loop.alloc
nn_loop.kernel @duplicate_pure_ops(%a: memref<4xf32> read, %b: memref<4xf32> write) kind "t" target "wgsl" {
  %c0 = arith.constant 0 : index
  %c0b = arith.constant 0 : index
  %x = nn_loop.load %a[%c0] : memref<4xf32> -> f32
  %unused = nn_loop.load %a[%c0b] : memref<4xf32> -> f32
  %scratch = nn_loop.alloc : memref<4xf32, #nn_loop<space private>>
  %v = nn_loop.splat %x : f32 -> vector<4xf32>
  %w = nn_loop.splat %x : f32 -> vector<4xf32>
  %e = nn_loop.extract %v {lane = 1 : i64} : vector<4xf32> -> f32
  %f = nn_loop.extract %w {lane = 1 : i64} : vector<4xf32> -> f32
  %s = arith.addf %e, %f : f32
  nn_loop.store %s, %b[%c0b] : f32, memref<4xf32>
}

// -----

/// A loop whose body only reads is dead (it has no results); one that stores is not.
// CHECK-LABEL: nn_loop.kernel @dead_loop
// CHECK:         nn_loop.for %{{.*}} = 0 to 4 map "invocation.x" {
// CHECK-NEXT:      nn_loop.load %a
// CHECK-NEXT:      nn_loop.store
// CHECK-NEXT:    }
// CHECK-NOT:     nn_loop.for
nn_loop.kernel @dead_loop(%a: memref<4xf32> read, %b: memref<4xf32> write) kind "t" target "wgsl" {
  nn_loop.for %i = 0 to 4 map "invocation.x" {
    %x = nn_loop.load %a[%i] : memref<4xf32> -> f32
    nn_loop.store %x, %b[%i] : f32, memref<4xf32>
  }
  nn_loop.for %j = 0 to 4 {
    %y = nn_loop.load %a[%j] : memref<4xf32> -> f32
  }
}

// -----

/// A store between two loads of the same buffer may change what the second load reads.
// CHECK-LABEL: nn_loop.kernel @negative_load_after_store
// CHECK:         %[[X:.*]] = nn_loop.load %a[%[[C:.*]]]
// CHECK-NEXT:    %[[D:.*]] = arith.addf %[[X]], %[[X]]
// CHECK-NEXT:    nn_loop.store %[[D]], %a[%[[C]]]
// CHECK-NEXT:    %[[Y:.*]] = nn_loop.load %a[%[[C]]]
// CHECK-NEXT:    nn_loop.store %[[Y]], %b
nn_loop.kernel @negative_load_after_store(%a: memref<4xf32> read_write, %b: memref<4xf32> write) kind "t" target "wgsl" {
  %c0 = arith.constant 0 : index
  %x = nn_loop.load %a[%c0] : memref<4xf32> -> f32
  %d = arith.addf %x, %x : f32
  nn_loop.store %d, %a[%c0] : f32, memref<4xf32>
  %y = nn_loop.load %a[%c0] : memref<4xf32> -> f32
  nn_loop.store %y, %b[%c0] : f32, memref<4xf32>
}

// -----

/// A loop that writes, between the loads, counts as a store (its effects are its body's).
// CHECK-LABEL: nn_loop.kernel @negative_load_after_loop_store
// CHECK-COUNT-2: nn_loop.load %acc
nn_loop.kernel @negative_load_after_loop_store(%b: memref<4xf32> write) kind "t" target "wgsl" {
  %c0 = arith.constant 0 : index
  %acc = nn_loop.alloc : memref<1xf32, #nn_loop<space private>>
  %x = nn_loop.load %acc[%c0] : memref<1xf32, #nn_loop<space private>> -> f32
  nn_loop.for %k = 0 to 4 {
    %z = arith.constant 1.0 : f32
    nn_loop.store %z, %acc[%c0] : f32, memref<1xf32, #nn_loop<space private>>
  }
  %y = nn_loop.load %acc[%c0] : memref<1xf32, #nn_loop<space private>> -> f32
  %s = arith.addf %x, %y : f32
  nn_loop.store %s, %b[%c0] : f32, memref<4xf32>
}

// -----

/// A barrier orders workgroup memory: loads on either side of it stay apart, and the
/// barrier itself is never dead.
// CHECK-LABEL: nn_loop.kernel @negative_barrier
// CHECK:         nn_loop.load %w
// CHECK-NEXT:    nn_loop.barrier
// CHECK-NEXT:    nn_loop.load %w
nn_loop.kernel @negative_barrier(%b: memref<4xf32> write) kind "t" target "wgsl" {
  nn_loop.for %i = 0 to 4 map "invocation.x" {
    %w = nn_loop.alloc : memref<4xf32, #nn_loop<space workgroup>>
    %x = nn_loop.load %w[%i] : memref<4xf32, #nn_loop<space workgroup>> -> f32
    nn_loop.barrier
    %y = nn_loop.load %w[%i] : memref<4xf32, #nn_loop<space workgroup>> -> f32
    %s = arith.addf %x, %y : f32
    nn_loop.store %s, %b[%i] : f32, memref<4xf32>
    nn_loop.barrier
  }
}

// -----

/// Stores are never dead, even to scratch memory nobody reads (dce keeps writes), so
/// neither is the scratch.
// CHECK-LABEL: nn_loop.kernel @negative_store
// CHECK:         %[[P:.*]] = nn_loop.alloc
// CHECK:         nn_loop.store %{{.*}}, %[[P]]
nn_loop.kernel @negative_store(%a: memref<4xf32> read) kind "t" target "wgsl" {
  %c0 = arith.constant 0 : index
  %p = nn_loop.alloc : memref<1xf32, #nn_loop<space private>>
  %x = nn_loop.load %a[%c0] : memref<4xf32> -> f32
  nn_loop.store %x, %p[%c0] : f32, memref<1xf32, #nn_loop<space private>>
}

// -----

/// At the model level: a duplicate view and an unused weight go, launches stay.
// CHECK-LABEL: func.func @main
// CHECK-NOT:     nn_loop.weight "unused"
// CHECK:         %[[V:.*]] = nn_loop.view %in
// CHECK-NOT:     nn_loop.view
// CHECK:         nn_loop.launch @k(%[[V]], %out)
// CHECK-NEXT:    nn_loop.launch @k(%[[V]], %out)
nn_loop.kernel @k(%a: memref<4xf32> read, %b: memref<4xf32> write) kind "t" target "wgsl" {
}
func.func @main(%in: memref<2x2xf32>, %out: memref<4xf32>) {
  %w = nn_loop.weight "unused" : memref<4xf32>
  %v = nn_loop.view %in : memref<2x2xf32> -> memref<4xf32>
  %u = nn_loop.view %in : memref<2x2xf32> -> memref<4xf32>
  nn_loop.launch @k(%v, %out) : memref<4xf32>, memref<4xf32>
  nn_loop.launch @k(%u, %out) : memref<4xf32>, memref<4xf32>
  func.return
}
