// RUN: nnjit-opt %s --split-input-file --allow-unregistered-dialect -p nn-loop-promote-registers | filecheck %s

/// Private buffers at constant indices: loads of known elements become the known values,
/// stores sink to where memory is next needed (tests/test_nn_loop_promote_registers.py runs
/// such kernels against numpy).

/// Stored elements are read back as the stored values; the stores nobody reads (the kernel
/// ends) are dropped, and the alloc with them.
// CHECK-LABEL: nn_loop.kernel @straight_line
// CHECK-NOT:     nn_loop.alloc
// CHECK:         %[[A:.*]] = nn_loop.load %x[%c0] : memref<2xf32> -> f32
// CHECK-NEXT:    %[[B:.*]] = nn_loop.load %x[%c1] : memref<2xf32> -> f32
// CHECK-NEXT:    %[[S:.*]] = arith.addf %[[A]], %[[B]] : f32
// CHECK-NEXT:    nn_loop.store %[[S]], %y[%c0] : f32, memref<2xf32>
// CHECK-NOT:     space private
nn_loop.kernel @straight_line(%x: memref<2xf32> read, %y: memref<2xf32> write) kind "t" target "wgsl" {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  nn_loop.for %i = 0 to 4 map "invocation.x" {
    %acc = nn_loop.alloc : memref<2xf32, #nn_loop<space private>>
    %a = nn_loop.load %x[%c0] : memref<2xf32> -> f32
    nn_loop.store %a, %acc[%c0] : f32, memref<2xf32, #nn_loop<space private>>
    %b = nn_loop.load %x[%c1] : memref<2xf32> -> f32
    nn_loop.store %b, %acc[%c1] : f32, memref<2xf32, #nn_loop<space private>>
    %p = nn_loop.load %acc[%c0] : memref<2xf32, #nn_loop<space private>> -> f32
    %q = nn_loop.load %acc[%c1] : memref<2xf32, #nn_loop<space private>> -> f32
    %s = arith.addf %p, %q : f32
    nn_loop.store %s, %acc[%c0] : f32, memref<2xf32, #nn_loop<space private>>
    %t = nn_loop.load %acc[%c0] : memref<2xf32, #nn_loop<space private>> -> f32
    nn_loop.store %t, %y[%c0] : f32, memref<2xf32>
  }
}

// -----

/// A serial loop body is a region of its own: the value stored before the loop goes to
/// memory just before it, the body reads its element once and writes it once at its end
/// (the store it overwrites is erased), and after the loop the element is read again.
// CHECK-LABEL: nn_loop.kernel @serial_loop
// CHECK:         %acc = nn_loop.alloc : memref<1xf32, #nn_loop<space private>>
// CHECK-NEXT:    %one = arith.constant
// CHECK-NEXT:    nn_loop.store %zero, %acc[%c0] : f32, memref<1xf32, #nn_loop<space private>>
// CHECK-NEXT:    nn_loop.for %k = 0 to 8 {
// CHECK-NEXT:      %v = nn_loop.load %x[%k] : memref<8xf32> -> f32
// CHECK-NEXT:      %a = nn_loop.load %acc[%c0] : memref<1xf32, #nn_loop<space private>> -> f32
// CHECK-NEXT:      %s = arith.addf %a, %v : f32
// CHECK-NEXT:      %s2 = arith.mulf %s, %one : f32
// CHECK-NEXT:      nn_loop.store %s2, %acc[%c0] : f32, memref<1xf32, #nn_loop<space private>>
// CHECK-NEXT:    }
// CHECK-NEXT:    %t = nn_loop.load %acc[%c0] : memref<1xf32, #nn_loop<space private>> -> f32
// CHECK-NEXT:    nn_loop.store %t, %y[%c0] : f32, memref<1xf32>
nn_loop.kernel @serial_loop(%x: memref<8xf32> read, %y: memref<1xf32> write) kind "t" target "wgsl" {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0.0 : f32
  %acc = nn_loop.alloc : memref<1xf32, #nn_loop<space private>>
  nn_loop.store %zero, %acc[%c0] : f32, memref<1xf32, #nn_loop<space private>>
  %one = arith.constant 1.0 : f32
  nn_loop.for %k = 0 to 8 {
    %v = nn_loop.load %x[%k] : memref<8xf32> -> f32
    %a = nn_loop.load %acc[%c0] : memref<1xf32, #nn_loop<space private>> -> f32
    %s = arith.addf %a, %v : f32
    nn_loop.store %s, %acc[%c0] : f32, memref<1xf32, #nn_loop<space private>>
    %a2 = nn_loop.load %acc[%c0] : memref<1xf32, #nn_loop<space private>> -> f32
    %s2 = arith.mulf %a2, %one : f32
    nn_loop.store %s2, %acc[%c0] : f32, memref<1xf32, #nn_loop<space private>>
  }
  %t = nn_loop.load %acc[%c0] : memref<1xf32, #nn_loop<space private>> -> f32
  nn_loop.store %t, %y[%c0] : f32, memref<1xf32>
}

// -----

/// An `if` body starts with what its parent knows (%a is %v); it writes %acc, so the
/// parent's pending stores to %acc go before it, its own store stays at its end, and after it
/// the element is read from memory.
// CHECK-LABEL: nn_loop.kernel @if_body
// CHECK:         %cond = arith.cmpi slt, %i, %c2 : index
// CHECK-NEXT:    nn_loop.store %v, %acc[%c0] : f32, memref<2xf32, #nn_loop<space private>>
// CHECK-NEXT:    nn_loop.store %v, %acc[%c1] : f32, memref<2xf32, #nn_loop<space private>>
// CHECK-NEXT:    nn_loop.if %cond {
// CHECK-NEXT:      %d = arith.addf %v, %v : f32
// CHECK-NEXT:      nn_loop.store %d, %acc[%c1] : f32, memref<2xf32, #nn_loop<space private>>
// CHECK-NEXT:    }
// CHECK-NEXT:    %b = nn_loop.load %acc[%c1] : memref<2xf32, #nn_loop<space private>> -> f32
nn_loop.kernel @if_body(%x: memref<4xf32> read, %y: memref<4xf32> write) kind "t" target "wgsl" {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  nn_loop.for %i = 0 to 4 map "invocation.x" {
    %acc = nn_loop.alloc : memref<2xf32, #nn_loop<space private>>
    %v = nn_loop.load %x[%i] : memref<4xf32> -> f32
    nn_loop.store %v, %acc[%c0] : f32, memref<2xf32, #nn_loop<space private>>
    nn_loop.store %v, %acc[%c1] : f32, memref<2xf32, #nn_loop<space private>>
    %c2 = arith.constant 2 : index
    %cond = arith.cmpi slt, %i, %c2 : index
    nn_loop.if %cond {
      %a = nn_loop.load %acc[%c0] : memref<2xf32, #nn_loop<space private>> -> f32
      %d = arith.addf %a, %a : f32
      nn_loop.store %d, %acc[%c1] : f32, memref<2xf32, #nn_loop<space private>>
    }
    %b = nn_loop.load %acc[%c1] : memref<2xf32, #nn_loop<space private>> -> f32
    nn_loop.store %b, %y[%i] : f32, memref<4xf32>
  }
}

// -----

/// A load at a dynamic index reads memory: the stores it may read stay before it.
// CHECK-LABEL: nn_loop.kernel @negative_dynamic_index
// CHECK:         nn_loop.store %a, %acc[%c0] : f32, memref<2xf32, #nn_loop<space private>>
// CHECK-NEXT:    nn_loop.store %a, %acc[%c1] : f32, memref<2xf32, #nn_loop<space private>>
// CHECK-NEXT:    %d = nn_loop.load %acc[%i] : memref<2xf32, #nn_loop<space private>> -> f32
nn_loop.kernel @negative_dynamic_index(%x: memref<2xf32> read, %y: memref<4xf32> write) kind "t" target "wgsl" {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  nn_loop.for %i = 0 to 2 map "invocation.x" {
    %acc = nn_loop.alloc : memref<2xf32, #nn_loop<space private>>
    %a = nn_loop.load %x[%c0] : memref<2xf32> -> f32
    nn_loop.store %a, %acc[%c0] : f32, memref<2xf32, #nn_loop<space private>>
    nn_loop.store %a, %acc[%c1] : f32, memref<2xf32, #nn_loop<space private>>
    %d = nn_loop.load %acc[%i] : memref<2xf32, #nn_loop<space private>> -> f32
    nn_loop.store %d, %y[%i] : f32, memref<4xf32>
  }
}

// -----

/// A buffer some other op uses escapes: left alone.
// CHECK-LABEL: nn_loop.kernel @negative_escaping_buffer
// CHECK:         nn_loop.store %a, %acc[%c0] : f32, memref<1xf32, #nn_loop<space private>>
// CHECK-NEXT:    "test.op"(%acc) : (memref<1xf32, #nn_loop<space private>>) -> ()
// CHECK-NEXT:    %b = nn_loop.load %acc[%c0] : memref<1xf32, #nn_loop<space private>> -> f32
nn_loop.kernel @negative_escaping_buffer(%x: memref<1xf32> read, %y: memref<1xf32> write) kind "t" target "wgsl" {
  %c0 = arith.constant 0 : index
  %acc = nn_loop.alloc : memref<1xf32, #nn_loop<space private>>
  %a = nn_loop.load %x[%c0] : memref<1xf32> -> f32
  nn_loop.store %a, %acc[%c0] : f32, memref<1xf32, #nn_loop<space private>>
  "test.op"(%acc) : (memref<1xf32, #nn_loop<space private>>) -> ()
  %b = nn_loop.load %acc[%c0] : memref<1xf32, #nn_loop<space private>> -> f32
  nn_loop.store %b, %y[%c0] : f32, memref<1xf32>
}

// -----

/// A vector access to scalar elements covers several of them: the buffer is left alone.
// CHECK-LABEL: nn_loop.kernel @negative_aliasing
// CHECK:         nn_loop.store %a, %acc[%c1] : f32, memref<4xf32, #nn_loop<space private>>
// CHECK-NEXT:    %v = nn_loop.load %acc[%c0] : memref<4xf32, #nn_loop<space private>> -> vector<4xf32>
nn_loop.kernel @negative_aliasing(%x: memref<4xf32> read, %y: memref<4xf32> write) kind "t" target "wgsl" {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %acc = nn_loop.alloc : memref<4xf32, #nn_loop<space private>>
  %a = nn_loop.load %x[%c0] : memref<4xf32> -> f32
  nn_loop.store %a, %acc[%c1] : f32, memref<4xf32, #nn_loop<space private>>
  %v = nn_loop.load %acc[%c0] : memref<4xf32, #nn_loop<space private>> -> vector<4xf32>
  nn_loop.store %v, %y[%c0] : vector<4xf32>, memref<4xf32>
}

// -----

/// A `thread` loop iterates (on Wasm one thread runs a chunk of iterations): its body
/// reads what the previous iteration stored, so the stores stay.
// CHECK-LABEL: nn_loop.kernel @negative_thread_loop
// CHECK:         nn_loop.store %zero, %acc[%c0] : f32, memref<1xf32, #nn_loop<space private>>
// CHECK-NEXT:    nn_loop.for %i = 0 to 8 map "thread" {
// CHECK-NEXT:      %a = nn_loop.load %acc[%c0] : memref<1xf32, #nn_loop<space private>> -> f32
// CHECK:           nn_loop.store %b, %acc[%c0] : f32, memref<1xf32, #nn_loop<space private>>
// CHECK-NEXT:    }
nn_loop.kernel @negative_thread_loop(%y: memref<8xf32> write) kind "t" target "wasm" {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0.0 : f32
  %acc = nn_loop.alloc : memref<1xf32, #nn_loop<space private>>
  nn_loop.store %zero, %acc[%c0] : f32, memref<1xf32, #nn_loop<space private>>
  nn_loop.for %i = 0 to 8 map "thread" {
    %a = nn_loop.load %acc[%c0] : memref<1xf32, #nn_loop<space private>> -> f32
    nn_loop.store %a, %y[%i] : f32, memref<8xf32>
    %one = arith.constant 1.0 : f32
    %b = arith.addf %a, %one : f32
    nn_loop.store %b, %acc[%c0] : f32, memref<1xf32, #nn_loop<space private>>
  }
}

// -----

/// Workgroup memory is shared: never forwarded.
// CHECK-LABEL: nn_loop.kernel @negative_workgroup_memory
// CHECK:         nn_loop.store %one, %tile[%c0] : f32, memref<4xf32, #nn_loop<space workgroup>>
// CHECK-NEXT:    nn_loop.barrier
// CHECK-NEXT:    %a = nn_loop.load %tile[%c0] : memref<4xf32, #nn_loop<space workgroup>> -> f32
nn_loop.kernel @negative_workgroup_memory(%y: memref<4xf32> write) kind "t" target "wgsl" {
  %c0 = arith.constant 0 : index
  %one = arith.constant 1.0 : f32
  nn_loop.for %i = 0 to 4 map "invocation.x" {
    %tile = nn_loop.alloc : memref<4xf32, #nn_loop<space workgroup>>
    nn_loop.store %one, %tile[%c0] : f32, memref<4xf32, #nn_loop<space workgroup>>
    nn_loop.barrier
    %a = nn_loop.load %tile[%c0] : memref<4xf32, #nn_loop<space workgroup>> -> f32
    nn_loop.store %a, %y[%i] : f32, memref<4xf32>
  }
}
