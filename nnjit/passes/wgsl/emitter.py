"""The core of the WGSL conversion: `Emitter`, the state of one kernel's conversion that the
per-op patterns share (value mapping, scopes, storage decisions), and the builders they call
(expressions shared while visible, folded integer arithmetic, hoisted constants, helper
functions); `emit_block` dispatches each op to its pattern.
"""

from __future__ import annotations

import math as pymath
from collections.abc import Callable, Sequence

from xdsl.dialects.builtin import (
    FloatAttr,
    IndexType,
    IntegerAttr,
    SymbolRefAttr,
    VectorType,
    f16,
    f32,
    i1,
    i32,
)
from xdsl.ir import Attribute, Block, Operation, SSAValue

from nnjit.dialects import nn_loop
from nnjit.dialects import nn_wgsl as w
from nnjit.errors import UnsupportedError
from nnjit.ir.affine import IndexAnalysis
from nnjit.ir.fastir import append as _append
from nnjit.ir.fastir import first_op_of, name_of, next_op_of, set_name, type_of
from nnjit.ir.fastir import i64_attr as _i64
from nnjit.ir.fastir import new_op as _new
from nnjit.passes.wgsl.typefacts import facts, tkey

Pattern = Callable[["Emitter", Operation], None]
"""A per-op pattern: emits the nn_wgsl code for one nn_loop / arith / math op."""


class _ValueMap(dict):
    """id() of an nn_loop value -> the emitted value standing for it; a value not converted
    is an UnsupportedError."""

    def __init__(self, emitter: Emitter):
        super().__init__()
        self.emitter = emitter

    def __missing__(self, key: int) -> SSAValue:
        raise self.emitter.error("a value was not converted (defined by an unsupported op?)")


class Emitter:
    """The state of one kernel's conversion, which the patterns share: the values emitted for
    nn_loop values, the storage chosen per memref, the block being built with the expressions
    visible from it (CSE), the hoisted constants; and the builders of expressions."""

    def __init__(self, kernel: nn_loop.KernelOp, max_per_dim: int, patterns: dict[type, Pattern]):
        self.kernel = kernel
        self.patterns = patterns  # op class -> the pattern that converts it
        self.name = kernel.sym_name.data
        self.max_per_dim = max_per_dim
        self.vmap = _ValueMap(self)  # by id() of the nn_loop value (a fast hash)
        self.cvals: dict[int, int | float | bool] = {}  # id() of a constant -> its value
        self.iconsts: dict[int, SSAValue] = {}  # i32 constants by value
        self.uconsts: dict[int, SSAValue] = {}  # u32 constants by value
        self.consts: dict[tuple[int, object], SSAValue] = {}  # by (tkey, value)
        self.const_ops: list[Operation] = []
        self.module_ops: list[Operation] = []
        # nn_loop memrefs by id(): SSAValue's own hash is a Python-level call (the kernel
        # outlives the conversion, so ids are not reused meanwhile)
        self.arrays: dict[int, SSAValue] = {}  # nn_loop memref -> nn_wgsl array
        self.vec4: set[int] = set()  # memrefs stored as arrays of vec4
        self.nested: set[int] = set()  # workgroup memrefs as nested arrays (one per dim)
        # split_const of emitted values by id(): (x, c, the value, kept alive)
        self.splits: dict[int, tuple[SSAValue | None, int, SSAValue]] = {}
        self.private: set[int] = set()  # the private allocs (nn_loop memrefs)
        self.index = IndexAnalysis()  # facts of the kernel's index values (divisors)
        self.wmods: dict[int, int] = {}  # divisors of i32 values of the emitted code
        self.ids: dict[str, SSAValue] = {}  # "workgroup.x" -> i32 id value
        self.block: Block = Block()
        # expressions visible from the current block (CSE): one dict, and per nesting level
        # the keys it added (dropped when the level ends)
        self.avail: dict[tuple, SSAValue] = {}
        self.scopes: list[list[tuple]] = [[]]
        self.helpers: dict[tuple[str, Attribute], str] = {}
        self.function_vars: list[Operation] = []
        self.made: list[Operation] = []  # the expressions and loads emitted, in order
        self.maps: set[str] = set()

    def error(self, msg: str) -> UnsupportedError:
        return UnsupportedError(msg, where=f"nn_loop.kernel @{self.name}")

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
        elif t == f32 or t == i1 or t == f16:
            r = t
        elif isinstance(t, VectorType):
            e = t.get_element_type()
            shape = t.get_shape()
            if len(shape) == 1 and 2 <= shape[0] <= 4 and e in (f32, i32, i1, IndexType(), f16):
                r = VectorType(self.wtype(e), shape)
        if r is None:
            raise self.error(
                f"type {t} has no WGSL counterpart (f32, i32, index, i1, f16, vector<2..4x>)"
            )
        _WTYPES[t] = r
        return r

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

    def push(self, block: Block) -> Block:
        """Enters `block`, the body of a nested for or if (already placed); the block left."""
        outer, self.block = self.block, block
        self.scopes.append([])
        return outer

    def pop(self, outer: Block) -> None:
        """Leaves the body entered by `push`: its expressions are no longer visible."""
        self.block = outer
        avail = self.avail
        for key in self.scopes.pop():
            del avail[key]

    # (a type in a CSE key is its `tkey`: hashing a parametrized type is a recursive
    # Python-level call, and keys are looked up far more often than made)

    def un(self, o: str, a: SSAValue, hint: SSAValue | None = None) -> SSAValue:
        return self.pure(
            ("u", o, id(a)), w.UnaryOp, [a], type_of(a), {"op": w.UNARY_OP_ATTRS[o]}, hint
        )

    def conv(self, a: SSAValue, t: Attribute, hint: SSAValue | None = None) -> SSAValue:
        return self.pure(("cv", id(a), tkey(t)), w.ConvertOp, [a], t, None, hint)

    def bitcast(self, a: SSAValue, t: Attribute, hint: SSAValue | None = None) -> SSAValue:
        return self.pure(("bc", id(a), tkey(t)), w.BitcastOp, [a], t, None, hint)

    def lane(self, a: SSAValue, k: int, hint: SSAValue | None = None) -> SSAValue:
        return self.pure(
            ("l", id(a), k), w.LaneOp, [a], facts(type_of(a)).scalar, {"lane": _i64(k)}, hint
        )

    def construct(
        self, args: Sequence[SSAValue], t: Attribute, hint: SSAValue | None = None
    ) -> SSAValue:
        return self.pure(("v", tkey(t), *map(id, args)), w.ConstructOp, list(args), t, None, hint)

    def builtin(self, b: str, d: str) -> SSAValue:
        key = ("bi", b, d)
        v = self.avail.get(key)
        if v is None:
            v = self.expr(
                key, w.BuiltinOp, [], i32, {"builtin": w.BUILTIN_ATTRS[b], "dim": w.DIM_ATTRS[d]}
            )
            v.name_hint = ("wid_" if b == "workgroup_id" else "lid_") + d
        return v

    def call(self, f: str, args: Sequence[SSAValue], hint: SSAValue | None = None) -> SSAValue:
        key = ("c", f, *map(id, args))
        v = self.avail.get(key)
        if v is not None:
            return v
        t = type_of(args[0])
        rt = t.get_element_type() if f == "dot" else t  # type: ignore[attr-defined]
        return self.expr(key, w.CallOp, list(args), rt, {"callee": w.FUNCTION_ATTRS[f]}, hint)

    def binary(self, o: str, a: SSAValue, b: SSAValue, hint: SSAValue | None = None) -> SSAValue:
        """`a o b`: an equal expression visible from here, or folded (i32 constants, and the
        identities x + 0, x - 0, x * 1, x / 1, x * 0), or a new expression."""
        if o in _COMMUTATIVE and id(b) < id(a):
            key = ("b", o, id(b), id(a))
        else:
            key = ("b", o, id(a), id(b))
        v = self.avail.get(key)
        if v is not None:  # (first: an expression made for these operands did not fold)
            return v
        ta, tb = type_of(a), type_of(b)
        if (ta is i32 or facts(ta).is_i32) and (tb is i32 or facts(tb).is_i32):
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
        return self.expr(
            key, w.BinaryOp, [a, b], _binary_type(o, ta, tb), {"op": w.BINARY_OP_ATTRS[o]}, hint
        )

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
        f = facts(t)
        if isinstance(value, float) and not f.is_float:
            value = int(value)
        if f.is_i32:
            value = wrap_i32(int(value))
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

    def fconst(self, x: float, like: SSAValue) -> SSAValue:
        return self.const(float(x), like.type)

    def helper(
        self,
        name: str,
        x: SSAValue,
        build: Callable[[Emitter, SSAValue], SSAValue],
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
                r = build(self, arg)
                _append(self.block, w.ReturnOp(r))
                first = proto.body.block.first_op
                for c in used_consts(self.const_ops, self.cvals):
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

    def emit_block(self, src: Block) -> None:
        """Emits the ops of `src` into the current block, each through its pattern."""
        patterns = self.patterns
        op = first_op_of(src)
        while op is not None:
            pattern = patterns.get(type(op))
            if pattern is not None:
                pattern(self, op)
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


_WTYPES: dict[Attribute, Attribute] = {}
_WTYPES_BY_ID: dict[int, tuple[Attribute, Attribute]] = {}  # id(t) -> (t, _WTYPES[t])


_HELPERS: dict[tuple[str, Attribute], w.FuncOp] = {}
_CONST_ATTRS: dict[tuple[int, object], Attribute] = {}  # (tkey, value) -> attribute


def _const_attr(value: int | float | bool, t: Attribute) -> Attribute:
    key = (tkey(t), repr(value) if isinstance(value, float) else value)  # -0.0 is not 0.0
    a = _CONST_ATTRS.get(key)
    if a is None:
        if t == f32 or t == f16:
            a = FloatAttr(float(value), t)  # type: ignore[arg-type]
        elif t == i1:
            a = IntegerAttr(1 if value else 0, i1)
        else:
            a = IntegerAttr(int(value), t)  # type: ignore[arg-type]
        if len(_CONST_ATTRS) < 1 << 16:
            _CONST_ATTRS[key] = a
    return a


_COMMUTATIVE = frozenset(("+", "*", "==", "!=", "&", "|", "^", "&&", "||"))


_CMP_OPS = frozenset(w.CMP_OPS)


def _binary_type(o: str, a: Attribute, b: Attribute) -> Attribute:
    if (a is b or tkey(a) == tkey(b)) and o not in _CMP_OPS and not facts(a).is_i1:
        return a  # the common case: same operand types, result of that type
    key = (o, tkey(a), tkey(b))
    r = _BINARY_TYPES.get(key)
    if r is None:  # (raises for operands that do not fit)
        r = _BINARY_TYPES[key] = w.binary_result_type(o, a, b)
    return r


_BINARY_TYPES: dict[tuple[str, int, int], Attribute] = {}  # (operator, tkey, tkey) -> type


def wrap_i32(v: int) -> int:
    """v wrapped to i32 (two's complement)."""
    return (v + 2**31) % 2**32 - 2**31


def _fold_int(o: str, x: int | float | None, y: int | float | None) -> int | None:
    if x is None or y is None:
        return None
    x, y = int(x), int(y)
    if o == "+":
        return wrap_i32(x + y)
    if o == "-":
        return wrap_i32(x - y)
    if o == "*":
        return wrap_i32(x * y)
    if o in ("/", "%") and y != 0:
        q = abs(x) // abs(y) * (1 if (x >= 0) == (y >= 0) else -1)
        return wrap_i32(q if o == "/" else x - q * y)
    if o in ("&", "|", "^"):
        return wrap_i32({"&": x & y, "|": x | y, "^": x ^ y}[o])
    return None


def used_consts(consts: list[Operation], cvals: dict[int, object]) -> list[Operation]:
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
