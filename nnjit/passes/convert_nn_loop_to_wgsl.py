"""convert-nn-loop-to-wgsl: each `nn_loop.kernel` with target "wgsl" becomes an `nn_wgsl.module`.

Takes nn_loop IR (docs/ir.md); gives the same module with every wgsl kernel replaced by an
`nn_wgsl.module` of the same symbol name (func.func @main, launches and wasm kernels are left
alone). Loops marked `unroll U` are unrolled with nn-loop-unroll's semantics (while emitting,
or by running that pass first with `unroll_pass=true`). The mapping:

* `workgroup.x|y|z` loops read `workgroup_id` (iv = lb + id * step) and give the dispatch
  grid; a grid with a dimension above `max_workgroups_per_dim` is linearised over x/y, with
  an early `return` for the workgroups past its end.
* `invocation.x|y|z` loops read `local_invocation_id` and give @workgroup_size; serial loops
  become `for` loops; `nn_loop.if` becomes `if`; `index` becomes i32.
* kernel argument i becomes `@binding(i)` (read -> read, write/read_write -> read_write) over
  `array<f32|i32>`, or over `array<vec4<f32|i32>>` when every access to it is a vector<4>
  access whose flat offset is provably a multiple of 4; other vector accesses are assembled
  from (or split into) scalar accesses. The same holds for private allocs (function-scope
  arrays) and workgroup allocs (module-scope `var<workgroup>` arrays), except that a
  workgroup alloc whose vector accesses are all such vec4 accesses is an array of vec4 even
  when it also has scalar accesses: those read or write one lane (`a[i >> 2][i & 3]`, a
  constant lane where the offset's residue is known).
* a workgroup alloc of rank >= 2 is a nested array, one level per dim (`a[i][j][k]`; vec4
  along the innermost dim when 4 divides it and every vector access's innermost index is a
  multiple of 4): a constant index needs no bounds clamp in the driver's code, and a dynamic
  one is the same value for all the unrolled accesses that share it (a staged matmul tile
  read at [buffer][k step][column]: one clamp per tile, constant k steps).
* flat offsets are summed per dim with the constant parts of the indices gathered into one
  constant (`x + c`), so unrolled accesses share `x` (a vec4 index is `(x >> 2) + c / 4`).
* expressions nothing uses are removed at the end.
* math.erf becomes an odd polynomial (|x| < 1) or an erfc rational approximation (|x| >= 1),
  absolute error below 2e-7 in f32; math.tanh clamps its argument to [-10, 10] (tanh of a large
  argument is NaN on some drivers); math.powf keeps the sign of a negative base raised to an
  odd integer; math.rsqrt becomes inverseSqrt.
* NaN propagates as in onnxruntime, although WGSL leaves it to the driver (lavapipe's max and
  clamp drop it, SwiftShader's exp(NaN) is inf): arith.maximumf/minimumf (Relu, Max, Min, Clip,
  reductions), math.tanh, math.powf and the math builtins (exp, log, sqrt, ...) select their
  NaN operand when one is NaN, tested on the bits (`x != x` may be folded away by a driver);
  log and sqrt of a negative number are NaN.
"""

from __future__ import annotations

import math as pymath
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from xdsl.context import Context
from xdsl.dialects import arith, math
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    MemRefType,
    ModuleOp,
    SymbolRefAttr,
    VectorType,
    f32,
    i1,
    i32,
)
from xdsl.ir import Attribute, Block, BlockArgument, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    RewritePattern,
    op_type_rewrite_pattern,
)

from nnjit.dialects import nn_loop
from nnjit.dialects import nn_wgsl as w
from nnjit.errors import UnsupportedError
from nnjit.ir.fastir import (
    IdentityCache,
    block_args_of,
    first_op_of,
    name_of,
    next_op_of,
    operands_of,
    replace_kernels,
    set_name,
    type_of,
)
from nnjit.ir.fastir import append as _append
from nnjit.ir.fastir import i64_attr as _i64
from nnjit.ir.fastir import insert_before as _insert_before
from nnjit.ir.fastir import new_op as _new
from nnjit.ir.fastir import walk as _walk
from nnjit.passes.nn_loop_unroll import unroll_all

MAX_WORKGROUPS_PER_DIM = 65535
"""WebGPU's default maxComputeWorkgroupsPerDimension."""

_DIM = {"x": 0, "y": 1, "z": 2}

# erf(x) = x * P(x^2) for |x| < 1 (least-squares fit, f32 error ~1.3e-7)
_ERF_SMALL = (
    7.882379772087087e-05, -0.0008018822725760785, 0.005189308642787488,
    -0.026854327256203455, 0.11283597431409863, -0.37612626901174545, 1.1283791658812163,
)  # fmt: skip
# erfc(a) = t * exp(-a*a + Q(t)), t = 1 / (1 + a/2), a >= 0 (Numerical Recipes erfcc,
# fractional error < 1.2e-7)
_ERFC_Q = (
    0.17087277, -0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806,
    0.09678418, 0.37409196, 1.00002368, -1.26551223,
)  # fmt: skip
_TANH_CLAMP = 10.0  # tanh(10) rounds to 1 in f32
_TANH_SMALL = 0.0625  # below it, tanh is its odd Taylor polynomial (see _Emitter.tanh)


def _wrap_i32(v: int) -> int:
    return (v + 2**31) % 2**32 - 2**31


_gcd = pymath.gcd


class _Accesses:
    """What `analyse` gathers about the loads and stores of one memref: how many, how many
    of vectors, and whether every vector access fits vec4 storage (a vector<4> at a flat
    offset, or for a nested array an innermost index, that is a multiple of 4)."""

    __slots__ = (
        "buf", "workgroup", "nested", "elem_ok", "count", "vectors", "lanes4", "flat4",
        "inner4",
    )  # fmt: skip

    def __init__(self, buf: SSAValue):
        t: MemRefType = type_of(buf)  # type: ignore[assignment]
        self.buf = buf
        self.workgroup = nn_loop.memory_space(t) == "workgroup"
        self.nested = self.workgroup and len(_shape(t)) >= 2  # one array level per dim
        elem = _facts(_elem(t))
        self.elem_ok = elem.is_f32 or elem.is_i32  # (else never vec4 storage)
        self.count = 0
        self.vectors = 0
        self.lanes4 = True
        self.flat4 = True
        self.inner4 = True


class _ValueMap(dict):
    """id() of an nn_loop value -> the emitted value standing for it; a value not converted
    is an UnsupportedError."""

    def __init__(self, emitter: _Emitter):
        super().__init__()
        self.emitter = emitter

    def __missing__(self, key: int) -> SSAValue:
        raise self.emitter.error("a value was not converted (defined by an unsupported op?)")


@dataclass
class _PrivateState:
    """What one block knows about private arrays: element values (by id() of the array and
    constant index), stores not yet emitted (the array and the value, by the same key), and
    the arrays it writes (ids)."""

    known: dict[tuple[int, int], SSAValue]
    pending: dict[tuple[int, int], tuple[SSAValue, SSAValue]] = field(default_factory=dict)
    written: set[int] = field(default_factory=set)
    anchor: Operation | None = None  # the nested op being built in this block


class _Emitter:
    """Translates one nn_loop.kernel into one nn_wgsl.module."""

    def __init__(self, kernel: nn_loop.KernelOp, max_per_dim: int):
        self.kernel = kernel
        self.name = kernel.sym_name.data
        self.max_per_dim = max_per_dim
        self.vmap = _ValueMap(self)  # by id() of the nn_loop value (a fast hash)
        self.cvals: dict[int, int | float | bool] = {}  # id() of a constant -> its value
        self.iconsts: dict[int, SSAValue] = {}  # i32 constants by value
        self.uconsts: dict[int, SSAValue] = {}  # u32 constants by value
        self.consts: dict[tuple[int, object], SSAValue] = {}  # by (_tkey, value)
        self.const_ops: list[Operation] = []
        self.module_ops: list[Operation] = []
        # nn_loop memrefs by id(): SSAValue's own hash is a Python-level call (the kernel
        # outlives the conversion, so ids are not reused meanwhile)
        self.arrays: dict[int, SSAValue] = {}  # nn_loop memref -> nn_wgsl array
        self.vec4: set[int] = set()  # memrefs stored as arrays of vec4
        self.nested: set[int] = set()  # workgroup memrefs as nested arrays (one per dim)
        # split_const of emitted values by id(): (x, c, the value, kept alive)
        self.splits: dict[int, tuple[SSAValue | None, int, SSAValue]] = {}
        self.private: set[int] = set()  # the function-scope arrays (ids)
        self.mods: dict[int, int] = {}  # by id() of the value
        self.wmods: dict[int, int] = {}  # the same for values of the emitted code
        self.ids: dict[str, SSAValue] = {}  # "workgroup.x" -> i32 id value
        self.block: Block = Block()
        # expressions visible from the current block (CSE): one dict, and per nesting level
        # the keys it added (dropped when the level ends)
        self.avail: dict[tuple, SSAValue] = {}
        self.scopes: list[list[tuple]] = [[]]
        self.helpers: dict[tuple[str, Attribute], str] = {}
        self.mem: list[_PrivateState] = [_PrivateState({})]
        self.function_vars: list[Operation] = []
        self.made: list[Operation] = []  # the expressions and loads emitted, in order
        self.maps: set[str] = set()

    # ------------------------------------------------------------------ errors

    def error(self, msg: str) -> UnsupportedError:
        return UnsupportedError(msg, where=f"nn_loop.kernel @{self.name}")

    # -------------------------------------------------------------- analysis

    def mod(self, v: SSAValue) -> int:
        """The largest g known to divide every value of index value `v` (0: v is 0)."""
        g = self.mods.get(id(v))
        if g is not None:
            return g
        g = 1
        if type(v) is BlockArgument:
            loop = v.owner.parent_op()
            if type(loop) is nn_loop.ForOp:
                props = loop.properties
                g = _gcd(props["lb"].value.data, props["step"].value.data)
        else:
            op = v.owner
            t = type(op)
            if t is arith.ConstantOp:
                value = op.properties["value"]
                if isinstance(value, IntegerAttr):
                    g = abs(value.value.data)
            elif t in _MOD_GCD:
                x, y = operands_of(op)
                g = _gcd(self.mod(x), self.mod(y))
            elif t is arith.MuliOp:
                x, y = operands_of(op)
                g = self.mod(x) * self.mod(y)
            elif t is arith.IndexCastOp:
                (x,) = operands_of(op)
                g = self.mod(x)
        self.mods[id(v)] = g
        return g

    def flat_mod(self, t: MemRefType, indices: Sequence[SSAValue]) -> int:
        shape = _shape(t)
        g, stride = 0, 1
        for k in range(len(shape) - 1, -1, -1):
            g = _gcd(g, self.mod(indices[k]) * stride)
            stride *= shape[k]
        return g

    def analyse(self) -> tuple[list[int], list[int], list[nn_loop.ForOp]]:
        """Grid and workgroup size from the mapped loops; picks vec4 storage per memref."""
        grid, ws = [1, 1, 1], [1, 1, 1]
        seen: set[str] = set()
        mapped: list[nn_loop.ForOp] = []
        accesses: dict[int, _Accesses] = {}  # by id() of the memref
        for op in _walk(self.kernel):
            cls = type(op)
            if cls is nn_loop.ForOp and op.properties["map"].data != "serial":
                m = op.properties["map"].data
                if m == "thread":
                    raise self.error('map "thread" is for target wasm, not wgsl')
                if m in seen:
                    raise self.error(f'two loops are mapped to "{m}"')
                seen.add(m)
                self.maps.add(m)
                p = op.parent_op()
                while isinstance(p, nn_loop.ForOp) and p.properties["map"].data != "serial":
                    p = p.parent_op()
                if p is not self.kernel:
                    raise self.error(
                        f'the loop mapped to "{m}" is inside a serial loop or an nn_loop.if; '
                        "mapped loops must be perfectly nested at the top of the kernel"
                    )
                kind, dim = m.split(".")
                (grid if kind == "workgroup" else ws)[_DIM[dim]] = (
                    op.trip_count // op.properties["unroll"].value.data
                )
                mapped.append(op)
            elif cls is nn_loop.LoadOp or cls is nn_loop.StoreOp:
                if cls is nn_loop.LoadOp:
                    buf, *indices = operands_of(op)
                    (r,) = op.results
                    t = type_of(r)
                else:
                    value, buf, *indices = operands_of(op)
                    t = type_of(value)
                acc = accesses.get(id(buf))
                if acc is None:
                    acc = accesses[id(buf)] = _Accesses(buf)
                acc.count += 1
                if _facts(t).is_vector:
                    acc.vectors += 1
                    if acc.elem_ok:  # (else vec4 storage is out of the question)
                        acc.lanes4 = acc.lanes4 and _shape(t) == (4,)
                        if acc.nested:
                            acc.inner4 = acc.inner4 and self.mod(indices[-1]) % 4 == 0
                        else:
                            acc.flat4 = acc.flat4 and self.flat_mod(type_of(buf), indices) % 4 == 0
        for acc in accesses.values():
            buf = acc.buf
            if acc.nested:
                self.nested.add(id(buf))
            if not acc.elem_ok:
                continue
            if acc.nested:  # vectors along the innermost dim, which 4 divides
                ok = _shape(type_of(buf))[-1] % 4 == 0 and acc.inner4
            else:
                ok = acc.flat4
            if not ok or not acc.lanes4:
                continue
            if acc.vectors == acc.count:
                self.vec4.add(id(buf))
            elif acc.vectors and acc.workgroup:
                # vec4 accesses stay vec4; scalar ones address one lane (a[i >> 2][i & 3])
                self.vec4.add(id(buf))
        return grid, ws, mapped

    # ---------------------------------------------------------------- types

    def wtype(self, t: Attribute) -> Attribute:
        e = _WTYPES_BY_ID.get(id(t))
        if e is not None:
            return e[1]
        r = self.wtype_of(t)
        if len(_WTYPES_BY_ID) > 4096:
            _WTYPES_BY_ID.clear()
        _WTYPES_BY_ID[id(t)] = (t, r)  # (keeps t alive, so its id is not reused)
        return r

    def wtype_of(self, t: Attribute) -> Attribute:
        """wtype without the identity cache (equal types give the same object)."""
        r = _WTYPES.get(t)
        if r is not None:
            return r
        if isinstance(t, IndexType) or t == i32:
            r = i32
        elif t == f32 or t == i1:
            r = t
        elif isinstance(t, VectorType):
            e = t.get_element_type()
            shape = t.get_shape()
            if len(shape) == 1 and 2 <= shape[0] <= 4 and e in (f32, i32, i1, IndexType()):
                r = VectorType(self.wtype(e), shape)
        if r is None:
            raise self.error(
                f"type {t} has no WGSL counterpart (f32, i32, index, i1, vector<2..4x>)"
            )
        _WTYPES[t] = r
        return r

    def array_type(self, mem: SSAValue, space: str) -> w.ArrayType:
        t = mem.type
        assert isinstance(t, MemRefType)
        n = pymath.prod(t.get_shape())
        elem = t.get_element_type()
        if id(mem) in self.nested:  # one array level per dim
            shape = list(t.get_shape())
            if id(mem) in self.vec4:
                leaf: Attribute = _vec4(elem)
                shape[-1] //= 4
            else:
                leaf = self.wtype(elem)
            at = _array_type(space, leaf, shape[-1])
            for d in reversed(shape[:-1]):
                at = _array_type(space, at, d)
            return at
        if id(mem) in self.vec4:
            count = 0 if space == "storage" else -(-n // 4)
            return _array_type(space, _vec4(elem), count)
        et = self.wtype(elem)
        if w.is_bool(et):
            raise self.error(f"buffers of {elem} are not supported (store bools as i32)")
        return _array_type(space, et, 0 if space == "storage" else n)

    # ------------------------------------------------------------ building

    def add(self, op: Operation, hint: SSAValue | None = None) -> SSAValue:
        """Appends the one-result op `op` (a load: not an expression to share); its result."""
        _append(self.block, op)
        self.made.append(op)
        (r,) = op.results
        if hint is not None and name_of(hint) is not None:
            set_name(r, name_of(hint))  # (a valid name already)
        return r

    def pure(
        self,
        key: tuple,
        cls: type[Operation],
        operands: list[SSAValue],
        rt: Attribute,
        props: dict[str, Attribute] | None = None,
        hint: SSAValue | None = None,
    ) -> SSAValue:
        """An expression op (`cls` with `operands`, result type `rt`, properties `props`: a
        fresh dict), reusing an equal one (same `key`) already visible from the current
        block."""
        v = self.avail.get(key)
        if v is not None:
            return v
        return self.expr(key, cls, operands, rt, props, hint)

    def expr(
        self,
        key: tuple,
        cls: type[Operation],
        operands: list[SSAValue],
        rt: Attribute,
        props: dict[str, Attribute] | None = None,
        hint: SSAValue | None = None,
    ) -> SSAValue:
        """A new expression op (as `pure` builds it), visible from here on under `key` (no
        visible op has that key)."""
        op = _new(cls, operands, (rt,), props)
        _append(self.block, op)
        self.made.append(op)
        (r,) = op.results
        if hint is not None and name_of(hint) is not None:
            set_name(r, name_of(hint))  # (a valid name already)
        self.avail[key] = r
        self.scopes[-1].append(key)
        return r

    def push(self, op: Operation, block: Block, inherit: bool) -> Block:
        """Enters the body `block` of the nested op `op` (a for or if, already placed).
        Private-array values known before it stay known inside an if body (`inherit`), not
        inside a loop body."""
        outer, self.block = self.block, block
        self.scopes.append([])
        self.mem[-1].anchor = op
        self.mem.append(_PrivateState(dict(self.mem[-1].known) if inherit else {}))
        return outer

    def pop(self, outer: Block) -> None:
        inner = self.mem.pop()
        self.flush_level(inner, None, None)
        self.block = outer
        avail = self.avail
        for key in self.scopes.pop():
            del avail[key]
        state = self.mem[-1]
        state.anchor = None
        if inner.written:
            state.known = {k: v for k, v in state.known.items() if k[0] not in inner.written}
            state.written |= inner.written

    # Private (function-scope) arrays at constant indices: a store is delayed until the
    # array is next accessed in a way that needs memory (a computed index, an element
    # whose value is not known here, a write from a nested block) or its block ends, and a
    # load of a known element reuses the value. Unrolled register tiles then need no
    # load/store per use, and stores nobody reads are never emitted.

    def flush_level(
        self, state: _PrivateState, arr: SSAValue | None, before: Operation | None
    ) -> None:
        if not state.pending:
            return
        keep = {}
        for key, (a, v) in state.pending.items():
            if arr is not None and a is not arr:
                keep[key] = (a, v)
                continue
            store = _new(w.StoreOp, [v, a, self.const(key[1], i32)])
            if before is not None:
                _insert_before(before.parent, store, before)  # type: ignore[arg-type]
            else:
                _append(self.block, store)
        state.pending = keep

    def flush(self, arr: SSAValue, outer_only: bool = False) -> None:
        """Emits the pending stores to `arr`: those of enclosing blocks before the nested op
        being built there, those of the current block here (unless `outer_only`)."""
        mem = self.mem
        for i in range(len(mem) - 1):
            state = mem[i]
            if state.pending:
                self.flush_level(state, arr, state.anchor)
        if not outer_only and mem[-1].pending:
            self.flush_level(mem[-1], arr, None)

    def private_load(self, arr: SSAValue, c: int, hint: SSAValue | None) -> SSAValue:
        """Element `c` (a constant index) of private array `arr`."""
        state = self.mem[-1]
        key = (id(arr), c)
        v = state.known.get(key)
        if v is None:
            self.flush(arr, outer_only=True)
            v = state.known[key] = self.raw_load(arr, self.const(c, i32), hint)
        return v

    def private_store(self, value: SSAValue, arr: SSAValue, index: SSAValue) -> None:
        c = self.cvals.get(id(index))
        if c is not None:
            self.private_store_at(value, arr, int(c))
            return
        state = self.mem[-1]
        a = id(arr)
        state.written.add(a)
        self.flush(arr, outer_only=True)
        self.flush(arr)
        state.known = {k: v for k, v in state.known.items() if k[0] != a}
        _append(self.block, _new(w.StoreOp, [value, arr, index]))

    def private_store_at(self, value: SSAValue, arr: SSAValue, c: int) -> None:
        """Stores `value` to element `c` (a constant index) of private array `arr`."""
        state = self.mem[-1]
        key = (id(arr), c)
        state.written.add(key[0])
        self.flush(arr, outer_only=True)
        state.known[key] = value
        state.pending[key] = (arr, value)

    def const_offset(self, t: MemRefType, indices: Sequence[SSAValue]) -> int | None:
        """The flat offset of an access whose indices are all constants (None otherwise):
        what `flat` would give, without building it (a register tile's elements)."""
        vmap, cvals = self.vmap, self.cvals
        shape = _shape(t)
        off, stride = 0, 1
        for k in range(len(indices) - 1, -1, -1):
            c = cvals.get(id(vmap[id(indices[k])]))
            if c is None:
                return None
            off += int(c) * stride
            stride *= shape[k]
        return off if -(2**31) <= off < 2**31 else None

    # (a type in a CSE key is its `_tkey`: hashing a parametrized type is a recursive
    # Python-level call, and keys are looked up far more often than made)

    def un(self, o: str, a: SSAValue, hint: SSAValue | None = None) -> SSAValue:
        return self.pure(("u", o, id(a)), w.UnaryOp, [a], type_of(a), {"op": w.UNARY_OP_ATTRS[o]}, hint)

    def conv(self, a: SSAValue, t: Attribute, hint: SSAValue | None = None) -> SSAValue:
        return self.pure(("cv", id(a), _tkey(t)), w.ConvertOp, [a], t, None, hint)

    def bitcast(self, a: SSAValue, t: Attribute, hint: SSAValue | None = None) -> SSAValue:
        return self.pure(("bc", id(a), _tkey(t)), w.BitcastOp, [a], t, None, hint)

    def lane(self, a: SSAValue, k: int, hint: SSAValue | None = None) -> SSAValue:
        return self.pure(
            ("l", id(a), k), w.LaneOp, [a], _facts(type_of(a)).scalar, {"lane": _i64(k)}, hint
        )

    def construct(
        self, args: Sequence[SSAValue], t: Attribute, hint: SSAValue | None = None
    ) -> SSAValue:
        return self.pure(("v", _tkey(t), *map(id, args)), w.ConstructOp, list(args), t, None, hint)

    def builtin(self, b: str, d: str) -> SSAValue:
        key = ("bi", b, d)
        v = self.avail.get(key)
        if v is None:
            v = self.expr(key, w.BuiltinOp, [], i32, {"builtin": w.BUILTIN_ATTRS[b], "dim": w.DIM_ATTRS[d]})
            v.name_hint = ("wid_" if b == "workgroup_id" else "lid_") + d
        return v

    def load_op(self, arr: SSAValue, index: SSAValue, hint: SSAValue | None = None) -> SSAValue:
        if id(arr) in self.private:
            c = self.cvals.get(id(index))
            if c is not None:
                return self.private_load(arr, int(c), hint)
            self.flush(arr)
        return self.raw_load(arr, index, hint)

    def raw_load(self, arr: SSAValue, index: SSAValue, hint: SSAValue | None = None) -> SSAValue:
        t: w.ArrayType = type_of(arr)  # type: ignore[assignment]
        return self.add(_new(w.LoadOp, [arr, index], (t.element,)), hint)

    def store_op(self, value: SSAValue, arr: SSAValue, index: SSAValue) -> None:
        if id(arr) in self.private:
            self.private_store(value, arr, index)
            return
        _append(self.block, _new(w.StoreOp, [value, arr, index]))

    def helper(
        self,
        name: str,
        x: SSAValue,
        build: Callable[[SSAValue], SSAValue],
        hint: SSAValue | None = None,
    ) -> SSAValue:
        """`name(x)` through an nn_wgsl.func built once per module and argument type."""
        t = x.type
        sym = self.helpers.get((name, t))
        if sym is None:
            sym = f"{name}_{w.type_name(t).replace('<', '').replace('>', '')}"
            proto = _HELPERS.get((name, t))
            if proto is None:  # built once per process, cloned into each module
                proto = w.FuncOp(sym, [t], t)
                saved = (
                    self.block, self.scopes, self.avail, self.consts, self.const_ops,
                    self.iconsts, self.uconsts, self.made,
                )  # fmt: skip
                self.block, self.scopes, self.avail = proto.body.block, [[]], {}
                self.made = []
                self.consts, self.const_ops, self.iconsts, self.uconsts = {}, [], {}, {}
                arg = proto.body.block.args[0]
                arg.name_hint = "x"
                r = build(arg)
                _append(self.block, w.ReturnOp(r))
                first = proto.body.block.first_op
                for c in _used(self.const_ops, self.cvals):
                    proto.body.block.insert_op_before(c, first)  # type: ignore[arg-type]
                (
                    self.block, self.scopes, self.avail, self.consts, self.const_ops,
                    self.iconsts, self.uconsts, self.made,
                ) = saved  # fmt: skip
                _HELPERS[(name, t)] = proto
            self.module_ops.append(proto.clone())
            self.helpers[(name, t)] = sym
        key = ("cf", sym, id(x))
        v = self.avail.get(key)
        if v is None:
            v = self.expr(key, w.CallFuncOp, [x], t, {"callee": SymbolRefAttr(sym)}, hint)
        return v

    def const(self, value: int | float | bool, t: Attribute) -> SSAValue:
        """A constant of scalar or vector type (vectors are splats), hoisted to the entry."""
        if type(value) is int and -(2**31) <= value < 2**31:  # the common cases
            if t is i32:
                v = self.iconsts.get(value)
                if v is None:
                    v = self.iconsts[value] = self.const_slow(value, i32)
                return v
            if t is w.u32 and value >= 0:
                v = self.uconsts.get(value)
                if v is None:
                    v = self.uconsts[value] = self.const_slow(value, w.u32)
                return v
        return self.const_slow(value, t)

    def const_slow(self, value: int | float | bool, t: Attribute) -> SSAValue:
        f = _facts(t)
        if isinstance(value, float) and not f.is_float:
            value = int(value)
        if f.is_i32:
            value = _wrap_i32(int(value))
        elif f.is_u32:
            value = int(value) % 2**32
        key = (f.key, repr(value) if isinstance(value, float) else value)
        v = self.consts.get(key)
        if v is not None:
            return v
        if f.is_vector:
            s = self.const_slow(value, f.scalar)
            op: Operation = _new(w.ConstructOp, [s], [t])
        else:
            if f.is_f32 and not pymath.isfinite(float(value)):
                if value != value:
                    raise self.error("NaN constants cannot be written in WGSL")
                # WGSL has no infinity literal: the largest finite f32 stands for it
                value = pymath.copysign(3.4028234663852886e38, float(value))
            attr = _const_attr(value, t)
            op = _new(w.ConstOp, (), [t], {"value": attr})
            (r,) = op.results
            self.cvals[id(r)] = value
        self.const_ops.append(op)
        (r,) = op.results
        self.consts[key] = r
        return r

    def cval(self, v: SSAValue) -> int | float | None:
        """The value of a scalar constant made by `const` (None for anything else)."""
        return self.cvals.get(id(v))

    def binary(self, o: str, a: SSAValue, b: SSAValue, hint: SSAValue | None = None) -> SSAValue:
        ta, tb = type_of(a), type_of(b)
        if (ta is i32 or _facts(ta).is_i32) and (tb is i32 or _facts(tb).is_i32):
            cvals = self.cvals
            x, y = cvals.get(id(a)), cvals.get(id(b))
            if x is not None or y is not None:  # fold, or an identity
                if x is not None and y is not None:
                    folded = _fold_int(o, x, y)
                    if folded is not None:
                        return self.const(folded, i32)
                if (o in ("+", "-") and y == 0) or (o in ("*", "/") and y == 1):
                    return a
                if (o == "+" and x == 0) or (o == "*" and x == 1):
                    return b
                if o == "*" and (x == 0 or y == 0):
                    return self.const(0, i32)
        if o in _COMMUTATIVE and id(b) < id(a):
            key = ("b", o, id(b), id(a))
        else:
            key = ("b", o, id(a), id(b))
        v = self.avail.get(key)
        if v is not None:
            return v
        return self.expr(key, w.BinaryOp, [a, b], _binary_type(o, ta, tb), {"op": w.BINARY_OP_ATTRS[o]}, hint)

    def call(self, f: str, args: Sequence[SSAValue], hint: SSAValue | None = None) -> SSAValue:
        key = ("c", f, *map(id, args))
        v = self.avail.get(key)
        if v is not None:
            return v
        t = type_of(args[0])
        rt = t.get_element_type() if f == "dot" else t  # type: ignore[attr-defined]
        return self.expr(key, w.CallOp, list(args), rt, {"callee": w.FUNCTION_ATTRS[f]}, hint)

    def fconst(self, x: float, like: SSAValue) -> SSAValue:
        return self.const(float(x), like.type)

    # ------------------------------------------------------------- emission

    def run(self) -> w.ModuleOp:
        k = self.kernel
        grid, ws, _ = self.analyse()
        # bindings
        for i, (arg, mode) in enumerate(zip(k.body.block.args, k.access.data)):
            t = arg.type
            assert isinstance(t, MemRefType)
            if t.get_element_type() not in (f32, i32):
                raise self.error(f"argument {i}: buffer elements must be f32 or i32, got {t}")
            b = w.BindingOp(i, mode.data, t.get_shape(), self.array_type(arg, "storage"))
            b.result.name_hint = arg.name_hint or f"b{i}"
            self.module_ops.append(b)
            self.arrays[id(arg)] = b.result
        entry = w.EntryOp(ws)
        self.block = entry.body.block
        dispatch = self.grid_ids(grid)
        for d in "xyz":
            if f"invocation.{d}" in self.maps:
                self.ids[f"invocation.{d}"] = self.builtin("local_invocation_id", d)
        self.emit_block(k.body.block)
        _erase_dead(self.made)
        # stores still pending at the end of the entry function are dead (private memory)
        for var in self.function_vars:  # every access was forwarded
            if var.results[0].first_use is None:
                var.detach()
                var.erase()
        # constants first, in creation order (those still used)
        block = entry.body.block
        first = block.first_op
        for op in _used(self.const_ops, self.cvals):
            if first is not None:
                _insert_before(block, op, first)
            else:
                _append(block, op)
        module = w.ModuleOp(self.name, k.kind.data, dispatch, k.schedule)
        module.attributes |= {
            a: v for a, v in k.attributes.items() if a not in ("sym_name",)
        }
        mblock = module.body.block
        for op in self.module_ops:
            _append(mblock, op)
        _append(mblock, entry)
        return module

    def grid_ids(self, grid: list[int]) -> list[int]:
        """Emits the workgroup ids (linearising a large grid); returns the dispatch grid."""
        used = [d for d in "xyz" if f"workgroup.{d}" in self.maps]
        if all(g <= self.max_per_dim for g in grid):
            for d in used:
                self.ids[f"workgroup.{d}"] = self.builtin("workgroup_id", d)
            return grid
        total = grid[0] * grid[1] * grid[2]
        dy = -(-total // self.max_per_dim)
        dx = -(-total // dy)
        if dy > self.max_per_dim or total >= 2**31:
            raise self.error(f"the grid {tuple(grid)} has too many workgroups ({total})")
        wx = self.builtin("workgroup_id", "x")
        wy = self.builtin("workgroup_id", "y")
        lin = self.binary("+", wx, self.binary("*", wy, self.const(dx, i32)))
        if dx * dy != total:
            cond = self.binary(">=", lin, self.const(total, i32))
            guard = w.IfOp(cond)
            guard.body.block.add_op(w.ReturnOp())
            _append(self.block, guard)
        below = 1
        for d in "xyz":
            g = grid[_DIM[d]]
            if d in used:
                v = self.binary("/", lin, self.const(below, i32)) if below > 1 else lin
                if below * g < total:
                    v = self.binary("%", v, self.const(g, i32))
                self.ids[f"workgroup.{d}"] = v
            below *= g
        return [dx, dy, 1]

    def emit_block(self, src: Block) -> None:
        op = first_op_of(src)
        while op is not None:
            handler = _HANDLERS.get(type(op))
            if handler is not None:
                handler(self, op)
            elif type(op) is not nn_loop.YieldOp:
                raise self.error(f"{op.name} cannot be converted to WGSL")
            op = next_op_of(op)

    def v(self, value: SSAValue) -> SSAValue:
        """The emitted value standing for nn_loop value `value` (hot handlers read
        `self.vmap[id(value)]` themselves)."""
        return self.vmap[id(value)]

    def set(self, old: SSAValue, new: SSAValue) -> None:
        if (
            name_of(old) is not None and name_of(new) is None
            and type(new.owner) not in (w.ConstOp, w.BindingOp)
        ):  # fmt: skip
            set_name(new, name_of(old))  # a valid name already
        self.vmap[id(old)] = new

    # ------------------------------------------------------------------ ops

    def for_(self, op: nn_loop.ForOp) -> None:
        """A mapped loop is inlined (its iv read from a builtin id), a serial one becomes a
        `for`. `unroll U` is applied here, as nn-loop-unroll defines it: U copies of the
        body with ivs iv, iv + S, ... in a loop of step S*U, or with constant ivs and no
        loop when U is the trip count."""
        props = op.properties
        lb, ub, step = props["lb"].value.data, props["ub"].value.data, props["step"].value.data
        u = props["unroll"].value.data
        m = props["map"].data
        trip = max(0, (ub - lb + step - 1) // step)  # (op.trip_count)
        if trip == 0:
            return
        body = op.regions[0].block
        iv = block_args_of(body)[0]
        if m != "serial":
            wid = self.ids[m]
            base = self.binary("*", wid, self.const(step * u, i32))
            base = self.binary("+", base, self.const(lb, i32))
            if base.name_hint is None and iv.name_hint is None:
                base.name_hint = m.replace(".", "_")
            self.unrolled(iv, body, base, u, step)
            return
        if u == trip:
            for k in range(u):
                self.vmap[id(iv)] = self.const(lb + k * step, i32)
                self.emit_block(body)
            return
        for b in (lb, ub):
            if not -(2**31) <= b < 2**31 - step * u:
                raise self.error(f"loop bounds {lb} to {ub} do not fit in i32")
        loop = w.ForOp(lb, ub, step * u)
        _append(self.block, loop)
        loop.iv.name_hint = iv.name_hint or "i"
        outer = self.push(loop, loop.body.block, inherit=False)
        self.unrolled(iv, body, loop.iv, u, step)
        self.pop(outer)

    def unrolled(self, old_iv: SSAValue, body: Block, iv: SSAValue, u: int, step: int) -> None:
        for k in range(u):
            ivk = self.binary("+", iv, self.const(k * step, i32)) if k else iv
            self.set(old_iv, ivk)
            self.emit_block(body)

    def if_(self, op: nn_loop.IfOp) -> None:
        cond = self.v(op.cond)
        c = self.cval(cond)
        if c is not None:
            if c:
                self.emit_block(op.body.block)
            return
        guard = w.IfOp(cond)
        _append(self.block, guard)
        outer = self.push(guard, guard.body.block, inherit=True)
        self.emit_block(op.body.block)
        self.pop(outer)

    def alloc(self, op: nn_loop.AllocOp) -> None:
        space = nn_loop.memory_space(op.result.type)  # type: ignore[arg-type]
        if space == "workgroup":
            var: Operation = w.WorkgroupVarOp(self.array_type(op.result, "workgroup"))
            var.results[0].name_hint = op.result.name_hint or "wg"
            self.module_ops.append(var)
        else:
            var = w.FunctionVarOp(self.array_type(op.result, "function"))
            var.results[0].name_hint = op.result.name_hint or "p"
            _append(self.block, var)
            self.function_vars.append(var)
            self.private.add(id(var.results[0]))
        self.arrays[id(op.result)] = var.results[0]

    def split_const(self, v: SSAValue) -> tuple[SSAValue | None, int]:
        """(x, c) with v == x + c for an i32 value (x None: v is the constant c)."""
        e = self.splits.get(id(v))
        if e is None:
            e = self.splits[id(v)] = (*self.split(v), v)  # (v kept alive: ids stay unique)
        return e[0], e[1]

    def split(self, v: SSAValue) -> tuple[SSAValue | None, int]:
        """split_const, uncached."""
        c = self.cvals.get(id(v))
        if c is not None:
            return None, int(c)
        op = v.owner
        if type(op) is w.BinaryOp and (type_of(v) is i32 or type_of(v) == i32):
            o = op.properties["op"].data
            if o != "+" and o != "-":
                return v, 0
            lhs, rhs = operands_of(op)
            cr = self.cval(rhs)
            if cr is not None:
                x, c = self.split_const(lhs)
                return x, c + int(cr) if o == "+" else c - int(cr)
            cl = self.cval(lhs)
            if cl is not None and o == "+":
                x, c = self.split_const(rhs)
                return x, c + int(cl)
        return v, 0

    def wmod(self, v: SSAValue) -> int:
        """The largest g known to divide i32 value `v` of the emitted code (0: v is 0)."""
        g = self.wmods.get(id(v))
        if g is not None:
            return g
        g = 1
        c = self.cval(v)
        op = v.owner
        if c is not None:
            g = abs(int(c))
        elif type(op) is w.BinaryOp and v.type == i32:
            o = op.properties["op"].data
            if o in ("+", "-"):
                g = _gcd(self.wmod(operands_of(op)[0]), self.wmod(operands_of(op)[1]))
            elif o == "*":
                g = self.wmod(operands_of(op)[0]) * self.wmod(operands_of(op)[1])
        self.wmods[id(v)] = g
        return g

    def flat_parts(
        self, t: MemRefType, indices: Sequence[SSAValue]
    ) -> tuple[SSAValue | None, int]:
        """The flat (row-major) offset of an access as x + c: the constant parts of the
        indices are gathered into c, so that unrolled accesses share x."""
        shape = _shape(t)
        vmap, splits = self.vmap, self.splits
        const, stride = 0, 1
        terms: list[SSAValue] = []
        for k in range(len(indices) - 1, -1, -1):
            v = vmap[id(indices[k])]
            e = splits.get(id(v))
            x, c = (e[0], e[1]) if e is not None else self.split_const(v)
            const += c * stride
            if x is not None:
                terms.append(x if stride == 1 else self.binary("*", x, self.const(stride, i32)))
            stride *= shape[k]
        dyn: SSAValue | None = None
        for term in reversed(terms):  # outermost dim first
            dyn = term if dyn is None else self.binary("+", dyn, term)
        return dyn, const

    def flat(self, t: MemRefType, indices: Sequence[SSAValue]) -> SSAValue:
        dyn, c = self.flat_parts(t, indices)
        if dyn is None:
            return self.const(c, i32)
        return self.binary("+", dyn, self.const(c, i32))

    def element(self, flat: SSAValue, k: int) -> SSAValue:
        return self.binary("+", flat, self.const(k, i32)) if k else flat

    def vec_index(self, t: MemRefType, indices: Sequence[SSAValue]) -> SSAValue:
        """The vec4 element index of a vector access (its flat offset is a multiple of 4)."""
        return self.vec_parts(*self.flat_parts(t, indices))

    def vec_parts(self, dyn: SSAValue | None, c: int) -> SSAValue:
        """(dyn + c) / 4 for a multiple of 4."""
        if dyn is None:
            return self.const(c // 4, i32)
        if c % 4 == 0:  # dyn is a multiple of 4 too: (dyn >> 2) + c / 4
            q = self.binary(">>", dyn, self.const(2, w.u32))
            return self.binary("+", q, self.const(c // 4, i32))
        return self.binary(">>", self.binary("+", dyn, self.const(c, i32)), self.const(2, w.u32))

    def lane_index(self, t: MemRefType, indices: Sequence[SSAValue]) -> tuple[SSAValue, SSAValue]:
        """(vec4 element, lane) of a scalar access to an array stored as vec4."""
        return self.lane_parts(*self.flat_parts(t, indices))

    def lane_parts(self, dyn: SSAValue | None, c: int) -> tuple[SSAValue, SSAValue]:
        """((dyn + c) >> 2, (dyn + c) & 3), the lane a constant where dyn's residue is known."""
        if dyn is None:
            return self.const(c // 4, i32), self.const(c % 4, i32)
        if self.wmod(dyn) % 4 == 0:
            q = self.binary(">>", dyn, self.const(2, w.u32))
            return self.binary("+", q, self.const(c // 4, i32)), self.const(c % 4, i32)
        flat = self.binary("+", dyn, self.const(c, i32))
        q = self.binary(">>", flat, self.const(2, w.u32))
        return q, self.binary("&", flat, self.const(3, i32))

    def array(self, mem: SSAValue) -> SSAValue:
        a = self.arrays.get(id(mem))
        if a is None:
            raise self.error(
                "a load or store uses a buffer that is neither an argument nor an alloc"
            )
        return a

    def nested_index(
        self, mem: SSAValue, t: MemRefType, indices: Sequence[SSAValue], lanes: int
    ) -> list[list[SSAValue]]:
        """The index lists of an access to a nested (workgroup) array: one list, or one per
        lane when a vector access is split into scalar ones."""
        outer = [self.v(i) for i in indices[:-1]]
        dyn, c = self.split_const(self.v(indices[-1]))
        if id(mem) in self.vec4:
            if lanes == 4:
                return [[*outer, self.vec_parts(dyn, c)]]
            return [[*outer, *self.lane_parts(dyn, c + k)] for k in range(lanes)]
        return [
            [*outer, self.const(c + k, i32) if dyn is None else self.binary(
                "+", dyn, self.const(c + k, i32))]
            for k in range(lanes)
        ]  # fmt: skip

    def load(self, op: nn_loop.LoadOp) -> None:
        (r,) = op.results
        mem, *indices = operands_of(op)
        rt = type_of(r)
        t: MemRefType = type_of(mem)  # type: ignore[assignment]
        arr = self.array(mem)
        elem = _elem(t)
        scalar = rt is elem or _tkey(rt) == _tkey(elem)  # (else a vector of elements)
        if id(mem) in self.nested:
            lanes = 1 if scalar else _shape(rt)[0]
            ilists = self.nested_index(mem, t, indices, lanes)
            lt = self.wtype(rt if len(ilists) == 1 else elem)
            parts = [
                self.add(_new(w.LoadOp, [arr, *ix], [lt]), r)
                for ix in ilists
            ]
            if len(parts) > 1:
                self.set(r, self.construct(parts, self.wtype(rt), r))
            else:
                self.set(r, parts[0])
            return
        if scalar:
            if id(mem) in self.vec4:  # one lane of a vec4 (workgroup) array
                q, lane = self.lane_index(t, indices)
                load = _new(w.LoadOp, [arr, q, lane], [self.wtype(rt)])
                self.set(r, self.add(load, r))
                return
            if id(arr) in self.private:  # a register tile element: no index arithmetic
                c = self.const_offset(t, indices)
                if c is not None:
                    self.set(r, self.private_load(arr, c, r))
                    return
            self.set(r, self.load_op(arr, self.flat(t, indices), r))
        elif id(mem) in self.vec4:
            self.set(r, self.load_op(arr, self.vec_index(t, indices), r))
        else:
            flat = self.flat(t, indices)
            parts = [self.load_op(arr, self.element(flat, k)) for k in range(_shape(rt)[0])]
            self.set(r, self.construct(parts, self.wtype(rt), r))

    def store(self, op: nn_loop.StoreOp) -> None:
        value, mem, *indices = operands_of(op)
        vt = type_of(value)
        t: MemRefType = type_of(mem)  # type: ignore[assignment]
        arr = self.array(mem)
        val = self.vmap[id(value)]
        elem = _elem(t)
        scalar = vt is elem or _tkey(vt) == _tkey(elem)  # (else a vector of elements)
        if id(mem) in self.nested:
            lanes = 1 if scalar else _shape(vt)[0]
            ilists = self.nested_index(mem, t, indices, lanes)
            for k, ix in enumerate(ilists):
                v = val if len(ilists) == 1 else self.lane(val, k)
                _append(self.block, _new(w.StoreOp, [v, arr, *ix]))
            return
        if scalar:
            if id(mem) in self.vec4:  # one lane of a vec4 (workgroup) array
                q, lane = self.lane_index(t, indices)
                _append(self.block, _new(w.StoreOp, [val, arr, q, lane]))
                return
            if id(arr) in self.private:  # a register tile element: no index arithmetic
                c = self.const_offset(t, indices)
                if c is not None:
                    self.private_store_at(val, arr, c)
                    return
            self.store_op(val, arr, self.flat(t, indices))
        elif id(mem) in self.vec4:
            self.store_op(val, arr, self.vec_index(t, indices))
        else:
            flat = self.flat(t, indices)
            for k in range(_shape(vt)[0]):
                lane = self.lane(val, k)
                self.store_op(lane, arr, self.element(flat, k))

    def constant(self, op: arith.ConstantOp) -> None:
        val = op.properties["value"]
        (r,) = op.results
        t = self.wtype(type_of(r))
        if isinstance(val, IntegerAttr | FloatAttr):
            x = val.value.data
            self.set(r, self.const(bool(x) if t == i1 else x, t))
            return
        if isinstance(val, DenseIntOrFPElementsAttr) and isinstance(t, VectorType):
            values = list(val.get_values())
            e = t.get_element_type()
            if e == i1:
                values = [bool(x) for x in values]
            if len(set(values)) == 1:
                self.set(op.result, self.const(values[0], t))
            else:
                parts = [self.const(x, e) for x in values]
                c = w.ConstructOp(parts, t)
                self.const_ops.append(c)
                self.set(op.result, c.result)
            return
        raise self.error(f"constant {val} is not supported")

    def int_binary(self, op: Operation) -> None:
        x, y = operands_of(op)
        vmap = self.vmap
        a, b = vmap[id(x)], vmap[id(y)]
        (r,) = op.results
        t = type_of(a)
        cls = type(op)
        if cls is arith.MinSIOp or cls is arith.MaxSIOp:
            f = "min" if cls is arith.MinSIOp else "max"
            x, y = self.cval(a), self.cval(b)
            if x is not None and y is not None:
                self.set(r, self.const((min if f == "min" else max)(x, y), t))
                return
            self.set(r, self.call(f, [a, b], r))
            return
        o = _INT_BINARY[cls]
        if t is not i32 and _facts(t).is_bool:  # (i32: the common case)
            o = {"&": "&", "|": "|", "^": "!="}[o]
        self.set(r, self.binary(o, a, b, r))

    def unsigned(self, op: Operation) -> None:
        x, y = operands_of(op)
        a, b = self.v(x), self.v(y)
        (r,) = op.results
        ut = _unsigned(a.type)
        ua = self.bitcast(a, ut)
        ub = self.bitcast(b, ut)
        if isinstance(op, arith.ShLIOp | arith.ShRSIOp):
            o = "<<" if isinstance(op, arith.ShLIOp) else ">>"
            self.set(r, self.binary(o, a, ub, r))
            return
        o = {arith.ShRUIOp: ">>", arith.DivUIOp: "/", arith.RemUIOp: "%"}[type(op)]
        res = self.binary(o, ua, ub)
        self.set(r, self.bitcast(res, a.type, r))

    def floor_ceil_div(self, op: Operation) -> None:
        x, y = operands_of(op)
        a, b = self.v(x), self.v(y)
        (r,) = op.results
        q = self.binary("/", a, b)
        rem = self.binary("%", a, b)
        zero = self.const(0, a.type)
        nz = self.binary("!=", rem, zero)
        if isinstance(op, arith.FloorDivSIOp):
            # signs differ: (rem < 0) != (b < 0)
            adj = self.binary("!=", self.binary("<", rem, zero), self.binary("<", b, zero))
            delta = -1
        else:
            adj = self.binary("==", self.binary("<", rem, zero), self.binary("<", b, zero))
            delta = 1
        fix = self.binary("&&", nz, adj)
        adjusted = self.binary("+", q, self.const(delta, a.type))
        self.set(r, self.call("select", [q, adjusted, fix], r))

    def float_binary(self, op: Operation) -> None:
        x, y = operands_of(op)
        a, b = self.v(x), self.v(y)
        (r,) = op.results
        o = _FLOAT_BINARY[type(op)]
        if o in ("max", "min"):
            m = self.call(o, [a, b], None if type(op) in _NAN_PROPAGATING else r)
            self.set(r, self.keep_nan(m, [a, b], r) if type(op) in _NAN_PROPAGATING else m)
        else:
            self.set(r, self.binary(o, a, b, r))

    def cmpi(self, op: arith.CmpiOp) -> None:
        pred = arith.CMPI_COMPARISON_OPERATIONS[op.properties["predicate"].value.data]
        x, y = operands_of(op)
        a, b = self.v(x), self.v(y)
        if pred.startswith("u"):
            ut = _unsigned(a.type)
            if not w.is_bool(a.type):
                a, b = self.bitcast(a, ut), self.bitcast(b, ut)
            pred = "s" + pred[1:]
        o = {"eq": "==", "ne": "!=", "slt": "<", "sle": "<=", "sgt": ">", "sge": ">="}[pred]
        x, y = self.cval(a), self.cval(b)
        if x is not None and y is not None and a.type == i32:
            self.set(op.result, self.const(bool(_CMP_PY[o](x, y)), i1))
            return
        self.set(op.result, self.binary(o, a, b, op.result))

    def cmpf(self, op: arith.CmpfOp) -> None:
        pred = arith.CMPF_COMPARISON_OPERATIONS[op.predicate.value.data]
        a, b = self.v(op.lhs), self.v(op.rhs)
        rt = self.wtype(op.result.type)
        if pred in ("false", "true"):
            self.set(op.result, self.const(pred == "true", rt))
            return
        if pred in ("ord", "uno"):
            x = self.binary("|", self.is_nan(a), self.is_nan(b)) if a is not b else self.is_nan(a)
            self.set(op.result, self.un("!", x, op.result) if pred == "ord" else x)
            return
        o = {"eq": "==", "gt": ">", "ge": ">=", "lt": "<", "le": "<=", "ne": "!="}[pred[1:]]
        self.set(op.result, self.binary(o, a, b, op.result))

    def select(self, op: arith.SelectOp) -> None:
        c, t, f = (self.v(x) for x in operands_of(op))
        cv = self.cval(c)
        if cv is not None:
            self.set(op.result, t if cv else f)
            return
        self.set(op.result, self.call("select", [f, t, c], op.result))

    def cast(self, op: Operation) -> None:
        (x,) = operands_of(op)
        a = self.v(x)
        (r,) = op.results
        rt = self.wtype(r.type)
        if a.type == rt:
            self.set(r, a)
            return
        if isinstance(op, arith.ExtSIOp) and w.is_bool(a.type):
            self.set(r, self.call("select", [self.const(0, rt), self.const(-1, rt), a], r))
            return
        if isinstance(op, arith.TruncIOp) and w.is_bool(rt):
            one = self.const(1, a.type)
            bit = self.binary("&", a, one)
            self.set(r, self.binary("!=", bit, self.const(0, a.type), r))
            return
        if isinstance(op, arith.UIToFPOp) and not w.is_bool(a.type):
            ut = _unsigned(a.type)
            a = self.bitcast(a, ut)
        if isinstance(op, arith.BitcastOp):
            self.set(r, self.bitcast(a, rt, r))
            return
        c = self.cval(a)
        if c is not None and rt in (i32, f32):
            self.set(r, self.const(int(c) if rt == i32 else float(c), rt))
            return
        self.set(r, self.conv(a, rt, r))

    def negf(self, op: arith.NegfOp) -> None:
        self.set(op.result, self.un("-", self.v(op.operand), op.result))

    def unary_math(self, op: Operation) -> None:
        a = self.v(operands_of(op)[0])
        r = op.results[0]
        f = _MATH_UNARY[type(op)]
        if f not in _KEEP_NAN or not w.is_float(a.type):
            self.set(r, self.call(f, [a], r))
            return
        v = self.call(f, [a])
        if f in _NEGATIVE_NAN:  # log, sqrt of a negative: NaN (WGSL leaves it to the driver)
            v = self.call("select", [v, self.nan(a), self.binary("<", a, self.fconst(0.0, a))])
        self.set(r, self.keep_nan(v, [a], r))

    def is_nan(self, a: SSAValue) -> SSAValue:
        """a is NaN (per lane), from its bits: exponent all ones, mantissa not zero."""
        ut = _unsigned(a.type)
        bits = self.binary("&", self.bitcast(a, ut), self.const(0x7FFFFFFF, ut))
        return self.binary(">", bits, self.const(0x7F800000, ut))

    def keep_nan(self, r: SSAValue, args: Sequence[SSAValue], hint: SSAValue | None = None) -> SSAValue:
        """r, or the first NaN among `args` (constants are not NaN: not tested)."""
        tested = [a for n, a in enumerate(args) if not self.is_const(a) and a not in args[:n]]
        for n, a in enumerate(reversed(tested)):
            r = self.call("select", [r, a, self.is_nan(a)], hint if n == len(tested) - 1 else None)
        return r

    def is_finite(self, a: SSAValue) -> SSAValue:
        """a is neither infinite nor NaN (per lane), from its bits."""
        ut = _unsigned(a.type)
        bits = self.binary("&", self.bitcast(a, ut), self.const(0x7FFFFFFF, ut))
        return self.binary("<", bits, self.const(0x7F800000, ut))

    def nan(self, like: SSAValue) -> SSAValue:
        """A quiet NaN of like's type: like's bits with exponent and quiet bit set (WGSL has no
        NaN literal, and Tint rejects a NaN constant expression, so it depends on `like`)."""
        ut = _unsigned(like.type)
        return self.bitcast(self.binary("|", self.bitcast(like, ut), self.const(0x7FC00000, ut)), like.type)

    def is_const(self, v: SSAValue) -> bool:
        if self.cval(v) is not None:
            return True
        o = v.owner
        return isinstance(o, w.ConstructOp) and all(self.cval(x) is not None for x in o.args)

    def tanh(self, op: math.TanhOp) -> None:
        a = self.v(op.operand)
        c = self.call("clamp", [a, self.fconst(-_TANH_CLAMP, a), self.fconst(_TANH_CLAMP, a)])
        t = self.keep_nan(self.call("tanh", [c]), [a])
        # WGSL's tanh is only absolutely accurate (lavapipe: 3e-8 near 0, so tanh(1e-30) was
        # 3e-8): below _TANH_SMALL, x (1 - x^2/3 + 2 x^4/15), relative error < 4e-9
        x2 = self.binary("*", a, a)
        p = self.binary("*", a, self.horner([2.0 / 15.0, -1.0 / 3.0, 1.0], x2))
        small = self.binary("<", self.call("abs", [a]), self.fconst(_TANH_SMALL, a))
        self.set(op.result, self.call("select", [t, p, small], op.result))

    def horner(self, coeffs: Sequence[float], x: SSAValue) -> SSAValue:
        acc = self.fconst(coeffs[0], x)
        for c in coeffs[1:]:
            acc = self.binary("+", self.binary("*", acc, x), self.fconst(c, x))
        return acc

    def erf_body(self, x: SSAValue) -> SSAValue:
        a = self.call("abs", [x])
        # |x| < 1: x * P(x^2)
        x2 = self.binary("*", x, x)
        small = self.binary("*", x, self.horner(_ERF_SMALL, x2))
        # |x| >= 1: sign(x) * (1 - erfc(|x|))
        one = self.fconst(1.0, x)
        t = self.binary("/", one, self.binary("+", one, self.binary("*", a, self.fconst(0.5, x))))
        q = self.horner(_ERFC_Q, t)
        arg = self.binary("-", q, self.binary("*", a, a))
        erfc = self.binary("*", t, self.call("exp", [arg]))
        big_abs = self.binary("-", one, erfc)
        neg = self.un("-", big_abs)
        big = self.call("select", [neg, big_abs, self.binary(">=", x, self.fconst(0.0, x))])
        is_small = self.binary("<", a, one)
        return self.call("select", [big, small, is_small])

    def erf(self, op: math.ErfOp) -> None:
        self.set(op.result, self.helper("erf", self.v(op.operand), self.erf_body, op.result))

    def powf(self, op: math.PowFOp) -> None:
        a, b = self.v(op.lhs), self.v(op.rhs)
        c = self.cval(b)
        if c is None and isinstance(b.owner, w.ConstructOp) and len(b.owner.args) == 1:
            c = self.cval(b.owner.args[0])
        r = op.result
        if c == 1.0:
            self.set(r, a)
            return
        if c == 0.0:
            self.set(r, self.fconst(1.0, a))
            return
        if c == 2.0:
            self.set(r, self.binary("*", a, a, r))
            return
        if c == 0.5:
            self.set(r, self.call("sqrt", [a], r))
            return
        if c == -0.5:
            self.set(r, self.call("inverseSqrt", [a], r))
            return
        if c == -1.0:
            self.set(r, self.binary("/", self.fconst(1.0, a), a, r))
            return
        if c is not None and c < 0:
            # 1 / pow(|a|, -c): WGSL's pow(0, negative) is not defined (lavapipe gives 0, C's
            # pow +inf)
            mag = self.binary("/", self.fconst(1.0, a),
                              self.call("pow", [self.call("abs", [a]), self.fconst(-c, b)]))
        else:
            mag = self.call("pow", [self.call("abs", [a]), b])
        if c is not None:
            if c != 0.0:  # pow(NaN, y) is NaN but for y = 0
                mag = self.keep_nan(mag, [a])
            if not float(c).is_integer():  # a finite negative base to a fractional power: NaN
                neg_base = self.binary("&", self.binary("<", a, self.fconst(0.0, a)), self.is_finite(a))
                mag = self.call("select", [mag, self.nan(a), neg_base])
            if float(c).is_integer() and int(c) % 2 == 1:
                neg = self.un("-", mag)
                sel = self.binary("<", a, self.fconst(0.0, a))
                self.set(r, self.call("select", [mag, neg, sel], r))
            else:
                self.set(r, mag)
            return
        # b odd integer: b - 2*floor(b/2) == 1
        half = self.call("floor", [self.binary("*", b, self.fconst(0.5, b))])
        twice = self.binary("*", half, self.fconst(2.0, b))
        odd = self.binary("==", self.binary("-", b, twice), self.fconst(1.0, b))
        negbase = self.binary("<", a, self.fconst(0.0, a))
        flip = self.binary("&", odd, negbase)
        neg = self.un("-", mag)
        res = self.call("select", [mag, neg, flip])
        frac = self.binary("!=", b, self.call("floor", [b]))
        finite_neg = self.binary("&", negbase, self.is_finite(a))
        res = self.call("select", [res, self.nan(a), self.binary("&", finite_neg, frac)])
        # as C's pow: NaN in, NaN out, but pow(x, 0) = pow(1, y) = pow(-1, +-inf) = 1
        res = self.call("select", [res, self.binary("+", a, b), self.binary("|", self.is_nan(a), self.is_nan(b))])
        one = self.fconst(1.0, a)
        is_one = self.binary("|", self.binary("==", b, self.fconst(0.0, b)), self.binary("==", a, one))
        inf_b = self.binary("&", self.un("!", self.is_finite(b)), self.un("!", self.is_nan(b)))
        minus_one = self.binary("&", self.binary("==", a, self.un("-", one)), inf_b)
        self.set(r, self.call("select", [res, one, self.binary("|", is_one, minus_one)], r))

    def fma(self, op: math.FmaOp) -> None:
        (r,) = op.results
        vmap = self.vmap
        self.set(r, self.call("fma", [vmap[id(x)] for x in operands_of(op)], r))

    def barrier(self, op: nn_loop.BarrierOp) -> None:
        _append(self.block, w.BarrierOp())

    def splat(self, op: nn_loop.SplatOp) -> None:
        (x,), (r,) = operands_of(op), op.results
        self.set(r, self.construct([self.vmap[id(x)]], self.wtype(type_of(r)), r))

    def extract(self, op: nn_loop.ExtractOp) -> None:
        (x,), (r,) = operands_of(op), op.results
        self.set(r, self.lane(self.vmap[id(x)], op.properties["lane"].value.data, r))

    def reduce_lanes(self, op: nn_loop.ReduceLanesOp) -> None:
        v = self.v(op.input)
        n = w.lanes(v.type)
        if op.kind.data == "add" and w.is_float(v.type):
            self.set(op.result, self.call("dot", [v, self.fconst(1.0, v)], op.result))
            return
        parts = [self.lane(v, k) for k in range(n)]
        while len(parts) > 1:
            nxt = []
            for k in range(0, len(parts) - 1, 2):
                x, y = parts[k], parts[k + 1]
                if op.kind.data == "add":
                    nxt.append(self.binary("+", x, y))
                else:
                    m = self.call("max", [x, y])
                    nxt.append(self.keep_nan(m, [x, y]) if w.is_float(x.type) else m)
            if len(parts) % 2:
                nxt.append(parts[-1])
            parts = nxt
        self.set(op.result, parts[0])


_MOD_GCD = frozenset((arith.AddiOp, arith.SubiOp, arith.MinSIOp, arith.MaxSIOp))

_shape: Callable[[Attribute], tuple[int, ...]] = IdentityCache(lambda t: t.get_shape())  # type: ignore
"""t.get_shape() of a memref type."""
_elem: Callable[[Attribute], Attribute] = IdentityCache(lambda t: t.get_element_type())  # type: ignore
"""t.get_element_type() of a memref type."""


_PURE = frozenset((
    w.BinaryOp, w.UnaryOp, w.CallOp, w.CallFuncOp, w.ConstructOp, w.LaneOp, w.ConvertOp,
    w.BitcastOp, w.LoadOp,
))  # fmt: skip
"""The expression ops (one result each)."""


def _erase_dead(made: list[Operation]) -> None:
    """Erases the expressions nothing uses (index parts that flat offsets folded into
    constants, say) among the ops `made`, users before their operands (an op is made after
    its operands), so one pass in reverse finds them all."""
    for op in reversed(made):
        if type(op) in _PURE:
            (r,) = op.results
            if r.first_use is None:
                op.detach()
                op.erase()


def _used(consts: list[Operation], cvals: dict[int, object]) -> list[Operation]:
    """The constants (scalars and splats of them) that something uses, in order; the others
    are erased (and forgotten by `cvals`, whose keys are ids)."""
    keep: list[Operation] = []
    for op in reversed(consts):
        (r,) = op.results
        if r.first_use is not None:
            keep.append(op)
        else:
            cvals.pop(id(r), None)
            op.erase()  # drops its use of a scalar constant (splats come after their scalar)
    keep.reverse()
    return keep


def _unsigned(t: Attribute) -> Attribute:
    """u32, or vecN<u32> for a vector type."""
    return VectorType(w.u32, t.get_shape()) if isinstance(t, VectorType) else w.u32


_WTYPES: dict[Attribute, Attribute] = {}
_WTYPES_BY_ID: dict[int, tuple[Attribute, Attribute]] = {}  # id(t) -> (t, _WTYPES[t])


class _TypeFacts(NamedTuple):
    """What the conversion asks of a WGSL value type, computed once per type object."""

    type: Attribute  # (kept alive by the cache, so its id() is not reused)
    key: int  # the same for equal types (id() of the first of them seen): for CSE keys
    scalar: Attribute  # the lane type (a scalar type is its own)
    is_vector: bool
    is_i1: bool  # bool (a scalar)
    is_bool: bool  # bool or a vector of bools
    is_i32: bool
    is_u32: bool
    is_f32: bool
    is_float: bool  # f32 or a vector of f32


_FACTS: dict[int, _TypeFacts] = {}
_CANONICAL: dict[Attribute, Attribute] = {}  # (value types: a handful of entries)


def _facts(t: Attribute) -> _TypeFacts:
    """The facts of value type `t`, cached by identity (hashing and comparing parametrized
    attributes are recursive Python-level calls; the IR shares its type objects)."""
    f = _FACTS.get(id(t))
    if f is None:
        if len(_FACTS) > 4096:
            _FACTS.clear()
        f = _FACTS[id(t)] = _TypeFacts(
            type=t,
            key=id(_CANONICAL.setdefault(t, t)),
            scalar=w.lane_type(t),
            is_vector=isinstance(t, VectorType),
            is_i1=type(t) is IntegerType and t == i1,
            is_bool=w.is_bool(t),
            is_i32=t == i32,
            is_u32=t == w.u32,
            is_f32=t == f32,
            is_float=w.is_float(t),
        )
    return f


def _tkey(t: Attribute) -> int:
    """A cheap stand-in for value type `t` in CSE keys: equal for equal types."""
    f = _FACTS.get(id(t))
    return (f if f is not None else _facts(t)).key
_HELPERS: dict[tuple[str, Attribute], w.FuncOp] = {}
_CONST_ATTRS: dict[tuple[int, object], Attribute] = {}  # (_tkey, value) -> attribute


def _const_attr(value: int | float | bool, t: Attribute) -> Attribute:
    key = (_tkey(t), repr(value) if isinstance(value, float) else value)  # -0.0 is not 0.0
    a = _CONST_ATTRS.get(key)
    if a is None:
        if t == f32:
            a = FloatAttr(float(value), f32)
        elif t == i1:
            a = IntegerAttr(1 if value else 0, i1)
        else:
            a = IntegerAttr(int(value), t)  # type: ignore[arg-type]
        if len(_CONST_ATTRS) < 1 << 16:
            _CONST_ATTRS[key] = a
    return a


_ARRAYS: dict[tuple[str, Attribute, int], w.ArrayType] = {}
_VEC4: dict[Attribute, VectorType] = {}


def _vec4(elem: Attribute) -> VectorType:
    """VectorType(elem, [4]), cached (a checked attribute costs ~50 us to build)."""
    t = _VEC4.get(elem)
    if t is None:
        t = _VEC4[elem] = VectorType(elem, [4])
    return t


def _array_type(space: str, elem: Attribute, count: int) -> w.ArrayType:
    """w.ArrayType(space, elem, count), cached (attribute construction is slow)."""
    key = (space, elem, count)
    t = _ARRAYS.get(key)
    if t is None:
        t = w.ArrayType(space, elem, count)
        if len(_ARRAYS) < 4096:
            _ARRAYS[key] = t
    return t


_COMMUTATIVE = frozenset(("+", "*", "==", "!=", "&", "|", "^", "&&", "||"))


_CMP_OPS = frozenset(w.CMP_OPS)


def _binary_type(o: str, a: Attribute, b: Attribute) -> Attribute:
    if (a is b or _tkey(a) == _tkey(b)) and o not in _CMP_OPS and not _facts(a).is_i1:
        return a  # the common case: same operand types, result of that type
    key = (o, _tkey(a), _tkey(b))
    r = _BINARY_TYPES.get(key)
    if r is None:  # (raises for operands that do not fit)
        r = _BINARY_TYPES[key] = w.binary_result_type(o, a, b)
    return r


_BINARY_TYPES: dict[tuple[str, int, int], Attribute] = {}  # (operator, _tkey, _tkey) -> type


def _fold_int(o: str, x: int | float | None, y: int | float | None) -> int | None:
    if x is None or y is None:
        return None
    x, y = int(x), int(y)
    if o == "+":
        return _wrap_i32(x + y)
    if o == "-":
        return _wrap_i32(x - y)
    if o == "*":
        return _wrap_i32(x * y)
    if o in ("/", "%") and y != 0:
        q = abs(x) // abs(y) * (1 if (x >= 0) == (y >= 0) else -1)
        return _wrap_i32(q if o == "/" else x - q * y)
    if o in ("&", "|", "^"):
        return _wrap_i32({"&": x & y, "|": x | y, "^": x ^ y}[o])
    return None


_CMP_PY: dict[str, Callable[[int, int], bool]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}  # fmt: skip

_INT_BINARY: dict[type, str] = {
    arith.AddiOp: "+", arith.SubiOp: "-", arith.MuliOp: "*", arith.DivSIOp: "/",
    arith.RemSIOp: "%", arith.AndIOp: "&", arith.OrIOp: "|", arith.XOrIOp: "^",
}  # fmt: skip
_FLOAT_BINARY: dict[type, str] = {
    arith.AddfOp: "+", arith.SubfOp: "-", arith.MulfOp: "*", arith.DivfOp: "/",
    arith.MaximumfOp: "max", arith.MinimumfOp: "min", arith.MaxnumfOp: "max",
    arith.MinnumfOp: "min",
}  # fmt: skip
_NAN_PROPAGATING = frozenset((arith.MaximumfOp, arith.MinimumfOp))
# builtins whose result for NaN (or a negative argument) WGSL leaves to the driver: SwiftShader
# gives exp(NaN) = inf and a number for log(-1)
_KEEP_NAN = frozenset(("exp", "exp2", "log", "log2", "sqrt", "inverseSqrt", "sin", "cos"))
_NEGATIVE_NAN = frozenset(("log", "log2", "sqrt", "inverseSqrt"))
_MATH_UNARY: dict[type, str] = {
    math.ExpOp: "exp", math.Exp2Op: "exp2", math.LogOp: "log", math.Log2Op: "log2",
    math.SqrtOp: "sqrt", math.RsqrtOp: "inverseSqrt", math.AbsFOp: "abs", math.AbsIOp: "abs",
    math.FloorOp: "floor", math.CeilOp: "ceil", math.SinOp: "sin", math.CosOp: "cos",
}  # fmt: skip

_HANDLERS: dict[type, Callable[[_Emitter, Operation], None]] = {
    nn_loop.ForOp: _Emitter.for_,
    nn_loop.IfOp: _Emitter.if_,
    nn_loop.AllocOp: _Emitter.alloc,
    nn_loop.LoadOp: _Emitter.load,
    nn_loop.StoreOp: _Emitter.store,
    nn_loop.BarrierOp: _Emitter.barrier,
    nn_loop.SplatOp: _Emitter.splat,
    nn_loop.ExtractOp: _Emitter.extract,
    nn_loop.ReduceLanesOp: _Emitter.reduce_lanes,
    arith.ConstantOp: _Emitter.constant,
    arith.CmpiOp: _Emitter.cmpi,
    arith.CmpfOp: _Emitter.cmpf,
    arith.SelectOp: _Emitter.select,
    arith.NegfOp: _Emitter.negf,
    arith.MinSIOp: _Emitter.int_binary,
    arith.MaxSIOp: _Emitter.int_binary,
    arith.FloorDivSIOp: _Emitter.floor_ceil_div,
    arith.CeilDivSIOp: _Emitter.floor_ceil_div,
    math.TanhOp: _Emitter.tanh,
    math.ErfOp: _Emitter.erf,
    math.PowFOp: _Emitter.powf,
    math.FmaOp: _Emitter.fma,
    **{t: _Emitter.int_binary for t in _INT_BINARY},
    **{t: _Emitter.float_binary for t in _FLOAT_BINARY},
    **{t: _Emitter.unary_math for t in _MATH_UNARY},
    **{
        t: _Emitter.unsigned
        for t in (arith.ShLIOp, arith.ShRSIOp, arith.ShRUIOp, arith.DivUIOp, arith.RemUIOp)
    },
    **{
        t: _Emitter.cast
        for t in (
            arith.IndexCastOp, arith.SIToFPOp, arith.UIToFPOp, arith.FPToSIOp, arith.ExtUIOp,
            arith.ExtSIOp, arith.TruncIOp, arith.BitcastOp,
        )
    },
}  # fmt: skip


def convert_kernel(
    kernel: nn_loop.KernelOp, max_workgroups_per_dim: int = MAX_WORKGROUPS_PER_DIM
) -> w.ModuleOp:
    """The nn_wgsl.module for one (already unrolled) wgsl kernel; the kernel is not modified."""
    return _Emitter(kernel, max_workgroups_per_dim).run()


@dataclass
class ConvertKernel(RewritePattern):
    """nn_loop.kernel (target wgsl) -> nn_wgsl.module of the same name."""

    max_workgroups_per_dim: int = MAX_WORKGROUPS_PER_DIM

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn_loop.KernelOp, rewriter: PatternRewriter) -> None:
        if op.target.data != "wgsl":
            return
        rewriter.replace(op, convert_kernel(op, self.max_workgroups_per_dim), [])


def _unroll(kernel: nn_loop.KernelOp) -> None:
    if not any(isinstance(o, nn_loop.ForOp) and o.unroll.value.data > 1 for o in kernel.walk()):
        return

    unroll_all(kernel)


@dataclass(frozen=True)
class ConvertNNLoopToWgslPass(ModulePass):
    """Replaces every nn_loop.kernel with target "wgsl" by an nn_wgsl.module (see the module
    docstring); loops marked `unroll U` are unrolled as nn-loop-unroll defines it.

    `max_workgroups_per_dim`: grid dimensions above it are linearised over x and y.
    """

    name = "convert-nn-loop-to-wgsl"

    max_workgroups_per_dim: int = MAX_WORKGROUPS_PER_DIM
    unroll_pass: bool = False
    """Run nn-loop-unroll on the kernels first (by default the conversion unrolls while it
    emits WGSL, with the same semantics, without cloning the nn_loop IR)."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.unroll_pass:
            for k in [o for o in op.walk() if isinstance(o, nn_loop.KernelOp)]:
                if k.target.data == "wgsl":
                    _unroll(k)
        replace_kernels(op, "wgsl", lambda k: convert_kernel(k, self.max_workgroups_per_dim))


__all__ = ["ConvertNNLoopToWgslPass", "ConvertKernel", "convert_kernel", "MAX_WORKGROUPS_PER_DIM"]
