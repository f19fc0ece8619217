"""The parts of convert-nn-loop-to-wgsl (the pass, its options and its docstring are in
`nnjit/passes/convert_nn_loop_to_wgsl.py`), from the bottom up:

* `typefacts`: facts of types and the attributes the conversion builds, cached;
* `emitter`: `Emitter`, the state the patterns share, and the expression builders;
* `access`: the storage of each memref (scalars or vec4, flat or nested) and the launch
  geometry; `offsets`: the index arithmetic of loads and stores;
* `nan`: NaN as onnxruntime propagates it;
* `patterns_control`, `patterns_memory`, `patterns_arith`, `patterns_math`, `patterns_vector`:
  one pattern per op class, gathered in the one table `patterns.PATTERNS`;
* `kernel`: `convert_kernel`, one nn_loop.kernel to one nn_wgsl.module.
"""
