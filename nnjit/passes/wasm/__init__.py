"""The convert-nn-loop-to-wasm conversion as per-op patterns (the pass itself, its options and
docstring are in `nnjit/passes/convert_nn_loop_to_wasm.py`, which re-exports `lower_kernel`).

* `lowering.py`: `KernelContext` (the state the patterns share: value -> local mapping, the
  function's locals, the analyses, block emission), `PATTERNS` (op class -> pattern: one
  function per op kind) and `lower_kernel` (module assembly: params, manifest, helpers);
* `patterns_arith.py`, `patterns_math.py`, `patterns_memory.py`, `patterns_vector.py`,
  `patterns_control.py`: the patterns of arith, math and nn_loop ops (serial loops with
  their address streams in `patterns_control.py`);
* `access.py`: byte offsets of buffer accesses, private-buffer elements, address streams;
* `facts.py`: affine forms, sign facts and constants of index values, and which values are
  folded into their users;
* `math_helpers.py`: the approximations of exp, tanh, erf, log and pow (helper functions);
* `builder.py`: appending nn_wasm instructions to a block, naming locals.
"""
