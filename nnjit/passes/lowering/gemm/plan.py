"""The GEMM problem (`GemmSpec`, what matmul.py and conv.py describe) and its schedule: the
options of one kernel checked and completed into a `Plan` (`plan_wgsl`, `plan_wasm`).

Schedules (`Schedule` options; the effective values are recorded in the kernel's `schedule`,
so a kernel replays from them). Options read here: `reg` = (reg_m, reg_n), `tile` =
(tile_m, tile_n[, tile_k]), `workgroup` = (x, y[, z]) (z: k slices, WGSL), `vec` (1 or 4),
`kstep`, `shared` (0, 1 or 2), `f16` (WGSL: 1 reads the B weight as float16 and computes in
f32, 2 also multiplies and accumulates in f16; `GemmSpec.read_b_half`). Values of another arity (e.g. a 1-D `workgroup` meant for
elementwise kernels in the same pass run) are ignored for matmuls, i.e. take the default;
inconsistent or impossible combinations (tile not a multiple of reg, > 256 invocations,
> 32 KiB of workgroup memory, tile_k not a multiple of the k slices, vec 4 with
reg_n % 4 != 0, f16 on Wasm, f16 2 with shared tiles, int8 weights (`GemmSpec.b_int8`) with
vec 1 or reg_n % 8 != 0) raise NNJitError. In mode k (vectors along k: gemm/wgsl.py) reg counts k-vector accumulators (rows x
columns) and kstep unrolls the 4-wide k steps.

The defaults and what the options mean per target: gemm/wgsl.py and gemm/wasm.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from xdsl.dialects.builtin import MemRefType
from xdsl.ir import Attribute, SSAValue

from nnjit.errors import NNJitError
from nnjit.passes.lowering.common import ceil_div
from nnjit.passes.lowering.gemm.builder import KB
from nnjit.passes.lowering.schedule import MAX_GRID, MAX_INVOCATIONS

MAX_SHARED_BYTES = 32768
"""The most workgroup memory a matmul schedule may ask for (desktop adapters grant 32 KiB;
the runtime checks the device's own limit, the tuner asks only for what fits)."""
PORTABLE_SHARED_BYTES = 16384
"""WebGPU's default maxComputeWorkgroupStorageSize: default tile_k choices stay within it."""


def _roundup(a: int, b: int) -> int:
    return ceil_div(a, b) * b


class GemmSpec:
    """A GEMM-like problem: out[b, r, c] = finish(sum_k A[b, r, k] * B[b, k, c]).

    Subclasses set the sizes and capabilities and implement the access hooks. `rows`/`cols`/
    `batch`/`kinfo` return opaque per-row/column/batch/k data (index values hoisted out of
    the inner loops); loads get them back.
    """

    kind = "matmul"
    nbatch = 1  # trip count of the batch loop (1: no batch loop)
    M = N = K = 1
    a_vec_k = False  # A[r, k..k+3] is contiguous in memory
    a_vec_m = False  # A[r..r+3, k] is contiguous (load_a with vec reads it; r % 4 == 0)
    b_vec_n = False  # B[k, c..c+3] is contiguous
    b_vec_k = False  # B[k..k+3, c] is contiguous
    a_fast = "k"  # the logical dim of A that is contiguous ("k" or "m")
    b_fast = "n"  # the logical dim of B that is contiguous ("n" or "k")
    integer = False  # A and B are i16 pairs (a k step is two k), accumulated in i32 (Wasm only)
    int8 = False  # (with integer) B is byte quads (a k step is four k): nn_tensor.matmul_i8
    b_int8 = False  # B is int8 weights read 8 columns a load (load_b_int8), scaled in finish (Wasm only)
    arg_types: list[MemRefType]
    access: list[str]
    bufs: Sequence[SSAValue] = ()

    def n_vec_ok(self, vec: int) -> bool:
        """Whether outputs may be finished and stored as vectors along c (groups aligned to vec)."""
        return True

    def batch(self, kb: KB, bz: SSAValue | None) -> Any:
        return None

    def row(self, kb: KB, bi: Any, r: SSAValue) -> Any:
        raise NotImplementedError

    def col(self, kb: KB, bi: Any, c: SSAValue) -> Any:
        raise NotImplementedError

    def kinfo(self, kb: KB, k: SSAValue) -> Any:
        return k

    def load_a(self, kb: KB, bi: Any, ri: Any, ki: Any, vec: int) -> SSAValue:
        """A[r, k] (vec > 1: A[r, k..k+vec), needs a_vec_k)."""
        raise NotImplementedError

    def load_b(self, kb: KB, bi: Any, ki: Any, ci: Any, vec: int, along: str) -> SSAValue:
        """B[k, c]; vec > 1: B[k, c..c+vec) (along "n") or B[k..k+vec, c] (along "k")."""
        raise NotImplementedError

    def load_b_int8(self, kb: KB, bi: Any, ki: Any, cis: list[Any]) -> list[SSAValue]:
        """With b_int8: B[k, c..c+4) as f32 vectors for the groups `cis` (an even number,
        each pair 8 consecutive columns), read as bytes and widened."""
        raise NotImplementedError

    def finish(self, kb: KB, bi: Any, ri: Any, ci: Any, acc: SSAValue, vec: int) -> None:
        """Applies bias/scaling/epilogue to the accumulated value(s) and stores them."""
        raise NotImplementedError

    def read_b_half(self, keep: bool) -> None:
        """Makes B's buffer f16 (schedule f16): `load_b` then gives f16 values when `keep`,
        else f32 ones (widened in registers). Only a weight read by nothing but the
        contraction can be stored so (the launch checks that it is a weight)."""
        raise NNJitError(f"schedule f16: a {self.kind} kernel has no B weight to read as float16",
                         hint="f16 applies to matmul and gemm kernels")  # fmt: skip


@dataclass
class Plan:
    """The effective schedule of one kernel."""

    target: str
    mode: str  # "n": vectors along the output columns; "k": vectors along k
    vec: int
    rm: int
    rn: int  # register tile columns (elements; a multiple of vec in mode n)
    tile_m: int
    tile_n: int
    tile_k: int = 0  # wgsl shared only
    tx: int = 1
    ty: int = 1
    kstep: int = 1
    shared: int = 0
    tz: int = 1  # wgsl: k slices (invocation.z) per workgroup
    integer: bool = False  # i32 accumulators, nn_loop.dot_i16x2 per k step (GemmSpec.integer)
    int8: bool = False  # two i32 accumulator sets (A's 7-bit planes), nn_loop.dot_i8x4 (GemmSpec.int8)
    f16: int = 0  # wgsl: 1: B stored as f16, f32 arithmetic; 2: f16 arithmetic

    def record(self, sched: Any) -> dict[str, Attribute]:
        if self.target == "wgsl":
            tile = (self.tile_m, self.tile_n) + ((self.tile_k,) if self.shared else ())
            wg = (self.tx, self.ty) + ((self.tz,) if self.tz > 1 else ())
            eff = dict(
                workgroup=wg, tile=tile, reg=(self.rm, self.rn),
                vec=self.vec, kstep=self.kstep, shared=self.shared,
            )  # fmt: skip
        else:
            eff = dict(
                workgroup=(), tile=(self.tile_m, self.tile_n), reg=(self.rm, self.rn),
                vec=self.vec, kstep=self.kstep, shared=-1,
            )  # fmt: skip
        return replace(sched, target=self.target, rows=0, **eff).as_dict()


def _opt(t: Sequence[int] | None, n: int) -> tuple[int, ...] | None:
    """A tuple option with n positive values, or None (default)."""
    if t is None:
        return None
    t = tuple(int(x) for x in t)
    if len(t) != n or any(x <= 0 for x in t):
        return None
    return t


def _int(x: int | None) -> int | None:
    return None if x is None or int(x) <= 0 else int(x)


def _bad(msg: str) -> NNJitError:
    return NNJitError(msg, hint="pick schedule options that satisfy it")


def _pick_mode(
    spec: GemmSpec, vec: int | None, shared: bool, aligned_default: bool
) -> tuple[str, int]:
    """(mode, vec): vectors along n when B (or the shared tile) is contiguous along n,
    along k when both operands are contiguous along k; else scalar. With `aligned_default`,
    the default (vec unset) is 4 only when the vectorised dim is a multiple of 4."""
    want = 4 if vec is None else vec
    if want not in (1, 4):
        raise _bad(f"matmul vec must be 1 or 4, got {want}")
    if want == 1:
        return "n", 1
    can_n = spec.N >= 4 and (shared or spec.b_vec_n) and spec.n_vec_ok(4)
    can_k = spec.K >= 4 and (shared or (spec.a_vec_k and spec.b_vec_k))
    prefer_k = not shared and spec.b_fast == "k"
    order = ("k", "n") if prefer_k else ("n", "k")
    mode = next((m for m in order if (can_k if m == "k" else can_n)), "")
    if not mode:
        return "n", 1
    if vec is None and aligned_default and (spec.N if mode == "n" else spec.K) % 4:
        return "n", 1
    return mode, 4


def _reg_vec(mode: str, vec: int, rn: int, asked: int | None) -> int:
    """vec once reg is known: in mode n the register tile holds whole vectors, so a reg_n
    that is not a multiple of 4 turns the default vec 4 into 1 (and an explicit 4 into an
    error)."""
    if mode == "n" and rn % vec:
        if asked is not None:
            raise _bad(f"matmul reg_n ({rn}) must be a multiple of vec ({vec})")
        return 1
    return vec


def plan_wgsl(spec: GemmSpec, s: Any) -> Plan:
    if spec.integer or spec.b_int8:
        what = "an integer (i16 pair)" if spec.integer else "an int8-weight"
        raise NNJitError(f"{what} matmul has no WGSL kernel",
                         hint="nn-tensor-integer-matmul and nn-tensor-int8-weights are Wasm passes")  # fmt: skip
    shared = min(2, _int(getattr(s, "shared", 0)) or 0)
    f16 = _int(getattr(s, "f16", 0)) or 0
    if f16 == 2 and shared:
        raise _bad("matmul f16 2 (f16 arithmetic) keeps its tiles in registers: use shared 0")
    tile = _opt(s.tile, 3) or _opt(s.tile, 2)
    mode, vec = _pick_mode(spec, _int(s.vec), bool(shared), True)
    if mode == "k" and shared and tile is not None and len(tile) == 3 and tile[2] % 4:
        if _int(s.vec) is not None:
            raise _bad(f"matmul tile_k ({tile[2]}) must be a multiple of 4 with vec 4")
        mode, vec = "n", 1  # k vectors do not fit the staged k tile: scalar by default
    if shared and mode == "k":
        shared = 1  # k-vector tiles (N < 4 or no vector groups along n): no double buffer
    rm, rn = _opt(s.reg, 2) or ((4, 8) if mode == "n" else (2, 4))
    vec = _reg_vec(mode, vec, rn, _int(s.vec))
    wg3 = _opt(s.workgroup, 3)
    wg = _opt(s.workgroup, 2) or (wg3[:2] if wg3 is not None else None)
    tz = wg3[2] if wg3 is not None else 1
    if shared and mode == "k":
        tz = 1  # k-vector tiles: no k slices
    if wg is not None:
        tx, ty = wg[0], wg[1]
        tile_m, tile_n = ty * rm, tx * rn
        if tile is not None and tile[:2] != (tile_m, tile_n):
            raise _bad(
                f"matmul tile {tile[:2]} != workgroup (x={tx}, y={ty}) * reg ({rm}, {rn})"
            )
    elif tile is not None:
        tile_m, tile_n = tile[0], tile[1]
        if tile_m % rm or tile_n % rn:
            raise _bad(f"matmul tile {tile[:2]} must be a multiple of reg ({rm}, {rn})")
        ty, tx = tile_m // rm, tile_n // rn
    else:
        # an 8x8 invocation grid, fewer where the problem is smaller
        tile_m = min(8 * rm, _roundup(spec.M, rm))
        tile_n = min(8 * rn, _roundup(spec.N, rn))
        ty, tx = tile_m // rm, tile_n // rn
    if tx * ty * tz > MAX_INVOCATIONS:
        size = f"{tx}x{ty}" + (f"x{tz}" if tz > 1 else "")
        raise _bad(f"matmul workgroup {size} has more than {MAX_INVOCATIONS} invocations")
    if tz > 64:
        raise _bad(f"matmul k slices (workgroup z = {tz}) exceed WebGPU's 64")
    grid = (spec.nbatch, ceil_div(spec.M, tile_m), ceil_div(spec.N, tile_n))
    if max(grid) > MAX_GRID:
        raise _bad(f"matmul dispatch grid {grid} exceeds {MAX_GRID} workgroups in a dimension")
    # the k slices' partial sums meet in workgroup memory (one accumulator set at a time)
    red = 0 if tz == 1 else 4 * rm * ceil_div(rn, vec if mode == "n" else 1) * vec * tx * ty
    tile_k = 0
    if shared and mode == "n":  # staged tiles, k-major, one or two buffers
        nbuf = shared
        explicit = tile is not None and len(tile) == 3
        cands = [tile[2]] if explicit else [  # type: ignore[index]
            _roundup(min(t, _roundup(spec.K, 4)), tz) for t in (16, 8, 4, 2, 1)
        ]
        cap = MAX_SHARED_BYTES if explicit else PORTABLE_SHARED_BYTES
        for tile_k in cands:
            nbytes = 4 * nbuf * tile_k * (tile_m + tile_n) + red
            if nbytes <= cap:
                break
        if tile_k % tz:
            raise _bad(f"matmul tile_k ({tile_k}) must be a multiple of the k slices ({tz})")
        kstep = _int(s.kstep) or tile_k // tz
    else:
        kstep = _int(s.kstep) or (4 if mode == "n" else 1)
        nbytes = red
        if shared:
            if tile is not None and len(tile) == 3:
                tile_k = tile[2]
            else:
                tile_k = min(16, _roundup(spec.K, vec if mode == "k" else 1))
            nbytes += 4 * tile_k * (tile_m + tile_n)
    if nbytes > MAX_SHARED_BYTES:
        what = "shared tiles" if shared else "k-slice partial sums"
        raise _bad(f"matmul {what} need {nbytes} bytes (> {MAX_SHARED_BYTES})")
    return Plan("wgsl", mode, vec, rm, rn, tile_m, tile_n, tile_k, tx, ty, kstep, shared, tz, f16=f16)


def _even_tile(total: int, tile: int, unit: int) -> int:
    """A multiple of `unit` splitting `total` into the same number of tiles as `tile` does,
    as evenly as possible (fixed point, so replaying the result gives itself)."""
    tile = max(unit, min(tile, _roundup(total, unit)))
    while True:
        nt = ceil_div(total, tile)
        t = _roundup(ceil_div(total, nt), unit)
        if t == tile:
            return t
        tile = t


WASM_A_BLOCK_BYTES = 2 << 20  # default tile_m: the A block tile_m x K stays in L2
WASM_MIN_CHUNKS = 16  # default tile_m: enough macro tiles to balance the threads


def _wasm_default_tile(spec: GemmSpec, rm: int, rn: int) -> tuple[int, int]:
    """rn columns of B per macro tile (they stay in cache while every row block of the tile
    streams past them), and as many rows as keep the A block in L2 while leaving at least
    WASM_MIN_CHUNKS macro tiles for the threads."""
    M, N, K = spec.M, spec.N, spec.K
    tile_m = max(rm, WASM_A_BLOCK_BYTES // (4 * K) // rm * rm)
    col_tiles = spec.nbatch * ceil_div(N, rn)
    if col_tiles < WASM_MIN_CHUNKS:
        row_tiles = min(ceil_div(WASM_MIN_CHUNKS, col_tiles), ceil_div(M, rm))
        tile_m = min(tile_m, _roundup(ceil_div(M, row_tiles), rm))
    return tile_m, rn


def plan_wasm(spec: GemmSpec, s: Any) -> Plan:
    if _int(getattr(s, "f16", 0)):
        raise _bad("matmul f16 is a WGSL option (Wasm kernels read weights as f32)")
    mode, vec = _pick_mode(spec, _int(s.vec), False, False)
    default_reg = (2, 16) if mode == "n" and vec == 4 else (2, 4) if mode == "k" else (4, 4)
    if spec.int8:  # (two accumulator sets: 1x16 holds 8 accumulators, as 2x16 does for floats)
        default_reg = (1, 16)
    rm, rn = _opt(s.reg, 2) or default_reg
    vec = _reg_vec(mode, vec, rn, _int(s.vec))
    rm = min(rm, spec.M)
    if spec.b_int8:  # bytes are read 8 columns at a time
        if (mode, vec) != ("n", 4) or rn % 8:
            raise _bad(f"a matmul of int8 weights needs vec 4 and reg_n a multiple of 8, got vec {vec}, reg_n {rn}")
        rn = min(rn, spec.N // 8 * 8)
    rn = min(rn, spec.N // vec * vec) if mode == "n" else min(rn, spec.N)  # mode k: vec runs along K
    tm, tn = _opt(s.tile, 2) or _wasm_default_tile(spec, rm, rn)
    tile_m = _even_tile(spec.M, tm, rm)
    tile_n = _even_tile(spec.N, tn, rn)
    kstep = _int(s.kstep) or (2 if mode == "n" and vec == 4 else 1)
    if spec.integer and (mode, vec) != ("n", 4):
        raise _bad("an integer matmul needs vec 4 along the output columns (N >= 4)")
    return Plan("wasm", mode, vec, rm, rn, tile_m, tile_n, 0, 1, 1, kstep, 0, integer=spec.integer,
                int8=spec.int8)


__all__ = [
    "MAX_SHARED_BYTES", "PORTABLE_SHARED_BYTES", "GemmSpec", "Plan", "plan_wgsl", "plan_wasm",
]
