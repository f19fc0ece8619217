"""Hand-written Wasm kernels of the benchmark (WAT text), with nnjit's kernel ABI
`run(tid, nthreads, ...)` on an imported shared memory:

* `peak_wat(op, chains)`: the Wasm SIMD peak: `chains` independent f32x4 multiply-add chains
  (`relaxed_madd`, or `mul` + `add`), `iters` steps each; args (iters, out) where `out`
  receives the chains' sum (so nothing is dead). FLOPs: 8 per chain step per thread.
* `handmm_wat(M, N, K, mr, nv, relaxed)`: the reference hand-written register-block matmul
  (RECIPES.md's "4x8 register block": mr rows x nv f32x4 columns of accumulators, B read in
  place from a row-major [K, N] matrix, A splat per row; threads split the row blocks).
"""

from __future__ import annotations


def _hdr() -> str:
    return '(module\n  (import "env" "memory" (memory 1 65536 shared))\n'


def peak_wat(op: str, chains: int) -> str:
    assert op in ("relaxed_madd", "mul_add")
    acc = [f"$a{j}" for j in range(chains)]
    lines = [_hdr(), '  (func (export "run") (param $tid i32) (param $n i32) (param $iters i32) (param $out i32)']
    lines.append("    (local $i i32) (local $x v128) (local $y v128)" + "".join(f" (local {a} v128)" for a in acc))
    lines.append("    (local.set $x (v128.const f32x4 0.9999 0.9999 0.9999 0.9999))")
    lines.append("    (local.set $y (v128.const f32x4 0.0001 0.0001 0.0001 0.0001))")
    for j, a in enumerate(acc):
        v = 0.5 + 0.01 * j
        lines.append(f"    (local.set {a} (v128.const f32x4 {v} {v} {v} {v}))")
    lines.append("    (loop $l")
    for a in acc:
        if op == "relaxed_madd":
            lines.append(f"      (local.set {a} (f32x4.relaxed_madd (local.get {a}) (local.get $x) (local.get $y)))")
        else:
            lines.append(f"      (local.set {a} (f32x4.add (f32x4.mul (local.get {a}) (local.get $x)) (local.get $y)))")
    lines.append("      (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $iters))))")
    s = f"(local.get {acc[0]})"
    for a in acc[1:]:
        s = f"(f32x4.add {s} (local.get {a}))"
    lines.append(f"    (v128.store (i32.add (local.get $out) (i32.shl (local.get $tid) (i32.const 4))) {s})")
    lines.append("  )\n)")
    return "\n".join(lines)


def handmm_wat(M: int, N: int, K: int, mr: int = 4, nv: int = 2, relaxed: bool = True) -> str:
    """C[M,N] = A[M,K] B[K,N]; M % mr == 0 and N % (4 nv) == 0 (the benchmark's shapes)."""
    assert M % mr == 0 and N % (4 * nv) == 0
    nr = 4 * nv
    acc = [[f"$c{i}_{j}" for j in range(nv)] for i in range(mr)]
    L = [_hdr(), '  (func (export "run") (param $tid i32) (param $n i32) (param $A i32) (param $B i32) (param $C i32)']
    L.append("    (local $rb i32) (local $rend i32) (local $cb i32) (local $pa i32) (local $pb i32) (local $pend i32) (local $a v128)"
             + "".join(f" (local $b{j} v128)" for j in range(nv))
             + "".join(f" (local {x} v128)" for row in acc for x in row))
    nrb = M // mr
    # row blocks split across threads
    L.append(f"    (local.set $rb (i32.div_u (i32.mul (local.get $tid) (i32.const {nrb})) (local.get $n)))")
    L.append(f"    (local.set $rend (i32.div_u (i32.mul (i32.add (local.get $tid) (i32.const 1)) (i32.const {nrb})) (local.get $n)))")
    L.append("    (block $done (loop $rows")
    L.append("      (br_if $done (i32.ge_u (local.get $rb) (local.get $rend)))")
    L.append("      (local.set $cb (i32.const 0))")
    L.append("      (loop $cols")
    for row in acc:
        for x in row:
            L.append(f"        (local.set {x} (v128.const i32x4 0 0 0 0))")
    L.append(f"        (local.set $pa (i32.add (local.get $A) (i32.mul (local.get $rb) (i32.const {mr * K * 4}))))")
    L.append(f"        (local.set $pend (i32.add (local.get $pa) (i32.const {K * 4})))")
    L.append("        (local.set $pb (i32.add (local.get $B) (i32.shl (local.get $cb) (i32.const 2))))")
    L.append("        (loop $k")
    for j in range(nv):
        L.append(f"          (local.set $b{j} (v128.load offset={16 * j} align=4 (local.get $pb)))")
    for i in range(mr):
        L.append(f"          (local.set $a (v128.load32_splat offset={i * K * 4} align=4 (local.get $pa)))")
        for j in range(nv):
            x = acc[i][j]
            if relaxed:
                L.append(f"          (local.set {x} (f32x4.relaxed_madd (local.get $a) (local.get $b{j}) (local.get {x})))")
            else:
                L.append(f"          (local.set {x} (f32x4.add (f32x4.mul (local.get $a) (local.get $b{j})) (local.get {x})))")
    L.append(f"          (local.set $pb (i32.add (local.get $pb) (i32.const {N * 4})))")
    L.append("          (br_if $k (i32.lt_u (local.tee $pa (i32.add (local.get $pa) (i32.const 4))) (local.get $pend))))")
    L.append(f"        (local.set $pa (i32.add (local.get $C) (i32.add (i32.mul (local.get $rb) (i32.const {mr * N * 4})) (i32.shl (local.get $cb) (i32.const 2)))))")
    for i in range(mr):
        for j in range(nv):
            L.append(f"        (v128.store offset={(i * N + 4 * j) * 4} align=4 (local.get $pa) (local.get {acc[i][j]}))")
    L.append(f"        (br_if $cols (i32.lt_u (local.tee $cb (i32.add (local.get $cb) (i32.const {nr}))) (i32.const {N}))))")
    L.append("      (local.set $rb (i32.add (local.get $rb) (i32.const 1)))")
    L.append("      (br $rows)))")
    L.append("  )\n)")
    return "\n".join(L)
