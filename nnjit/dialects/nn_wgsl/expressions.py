"""nn_wgsl's expressions, each printed as one `let` (constants inline as literals): operators,
builtin and helper function calls, vector construction and lanes, conversions, builtin ids.
All are `Pure`.
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects.builtin import (
    I64,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    SymbolRefAttr,
    VectorType,
    f32,
    i1,
    i32,
)
from xdsl.ir import (
    Attribute,
    SSAValue,
)
from xdsl.irdl import (
    IRDLOperation,
    irdl_op_definition,
    operand_def,
    prop_def,
    result_def,
    traits_def,
    var_operand_def,
)
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.traits import (
    Pure,
)
from xdsl.utils.exceptions import VerifyException

from nnjit.dialects.nn_wgsl.attributes import (
    BINARY_OP_ATTRS,
    BUILTIN_ATTRS,
    CALLS,
    DIM_ATTRS,
    FUNCTION_ATTRS,
    UNARY_OP_ATTRS,
    BinaryOperator,
    BinaryOperatorAttr,
    Builtin,
    BuiltinAttr,
    BuiltinFunction,
    BuiltinFunctionAttr,
    Dim,
    DimAttr,
    UnaryOperator,
    UnaryOperatorAttr,
    _check_value_type,
    _scalar,
    binary_result_type,
    bool_like,
    is_bool,
    is_float,
    is_int,
    is_scalar_type,
    lanes,
)
from nnjit.dialects.nn_wgsl.declarations import (
    FuncOp,
    ModuleOp,
    _check_in_entry,
)
from nnjit.ir.fastir import fast_init as _fast_init

# ------------------------------------------------------------------------- expressions


@irdl_op_definition
class ConstOp(IRDLOperation):
    """A scalar literal (f32, i32, u32 or bool); printed inline where it is used."""

    name = "nn_wgsl.const"
    value = prop_def(Attribute)
    result = result_def()
    traits = traits_def(Pure())

    def __init__(self, value: IntegerAttr | FloatAttr):
        _fast_init(self, properties={"value": value}, result_types=[value.type])

    @staticmethod
    def from_value(v: int | float | bool, type: Attribute) -> ConstOp:
        if type == f32:
            return ConstOp(FloatAttr(float(v), f32))
        assert isinstance(type, IntegerType)
        if type == i1:
            return ConstOp(IntegerAttr(1 if v else 0, i1))
        return ConstOp(IntegerAttr(int(v), type))

    def verify_(self) -> None:
        v = self.value
        if not isinstance(v, IntegerAttr | FloatAttr) or not is_scalar_type(v.type):
            raise VerifyException(
                f"nn_wgsl.const: value must be an f32, i32, u32 or i1 literal, got {v}"
            )
        if self.result.type != v.type:
            raise VerifyException("nn_wgsl.const: result type must equal the literal's type")

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        v = self.value
        if isinstance(v, IntegerAttr) and v.type == i1:
            printer.print_string("true" if v.value.data else "false")
        else:
            printer.print_attribute(v)
        printer.print_op_attributes(self.attributes)

    @classmethod
    def parse(cls, parser: Parser) -> ConstOp:
        if parser.parse_optional_keyword("true"):
            op = cls(IntegerAttr(1, i1))
        elif parser.parse_optional_keyword("false"):
            op = cls(IntegerAttr(0, i1))
        else:
            v = parser.parse_attribute()
            if not isinstance(v, IntegerAttr | FloatAttr):
                parser.raise_error("nn_wgsl.const: expected an integer or float literal")
            op = cls(v)
        op.attributes |= parser.parse_optional_attr_dict()
        return op


@irdl_op_definition
class BuiltinOp(IRDLOperation):
    """`let v = i32(builtin.dim);` for builtin workgroup_id or local_invocation_id."""

    name = "nn_wgsl.builtin"
    builtin = prop_def(BuiltinAttr)
    dim = prop_def(DimAttr)
    result = result_def(i32)
    traits = traits_def(Pure())

    def __init__(self, builtin: str, dim: str):
        _fast_init(self,
            properties={"builtin": BUILTIN_ATTRS[builtin], "dim": DIM_ATTRS[dim]},
            result_types=[i32],
        )

    def verify_(self) -> None:
        _check_in_entry(self)

    def print(self, printer: Printer) -> None:
        printer.print_string(f" {self.builtin.data} {self.dim.data}")
        printer.print_op_attributes(self.attributes)
        printer.print_string(" : i32")

    @classmethod
    def parse(cls, parser: Parser) -> BuiltinOp:
        b = parser.parse_str_enum(Builtin)
        d = parser.parse_str_enum(Dim)
        attrs = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        parser.parse_keyword("i32")
        op = cls(b, d)
        op.attributes |= attrs
        return op


@irdl_op_definition
class BinaryOp(IRDLOperation):
    """`let v = lhs OP rhs;` for a WGSL binary operator (arithmetic, bitwise, shift,
    comparison, logical). Arithmetic accepts a vector with a scalar of its element type;
    shifts take an unsigned right-hand side; comparisons give bool (vecN<bool>)."""

    name = "nn_wgsl.binary"
    op = prop_def(BinaryOperatorAttr)
    lhs = operand_def()
    rhs = operand_def()
    result = result_def()
    traits = traits_def(Pure())

    def __init__(self, op: str, lhs: SSAValue, rhs: SSAValue, result_type: Attribute | None = None):
        if result_type is None:
            result_type = binary_result_type(op, lhs.type, rhs.type)
        _fast_init(self,
            properties={"op": BINARY_OP_ATTRS[op]}, operands=[lhs, rhs], result_types=[result_type]
        )

    def verify_(self) -> None:
        o = self.op.data
        a, b = self.lhs.type, self.rhs.type
        _check_value_type(self.name, "the left operand", a)
        _check_value_type(self.name, "the right operand", b)
        try:
            expected = binary_result_type(o, a, b)
        except ValueError as e:
            raise VerifyException(f"nn_wgsl.binary: {e}") from None
        if self.result.type != expected:
            raise VerifyException(
                f"nn_wgsl.binary: '{o}' on {a} and {b} gives {expected}, not {self.result.type}"
            )

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_string_literal(self.op.data)
        printer.print_string(" ")
        printer.print_ssa_value(self.lhs)
        printer.print_string(", ")
        printer.print_ssa_value(self.rhs)
        printer.print_op_attributes(self.attributes)
        printer.print_string(" : ")
        printer.print_attribute(self.lhs.type)
        printer.print_string(", ")
        printer.print_attribute(self.rhs.type)
        printer.print_string(" -> ")
        printer.print_attribute(self.result.type)

    @classmethod
    def parse(cls, parser: Parser) -> BinaryOp:
        o = parser.parse_str_enum(BinaryOperator)
        a = parser.parse_unresolved_operand()
        parser.parse_punctuation(",")
        b = parser.parse_unresolved_operand()
        attrs = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        ta = parser.parse_type()
        parser.parse_punctuation(",")
        tb = parser.parse_type()
        parser.parse_punctuation("->")
        tr = parser.parse_type()
        op = cls(o, parser.resolve_operand(a, ta), parser.resolve_operand(b, tb), tr)
        op.attributes |= attrs
        return op



@irdl_op_definition
class UnaryOp(IRDLOperation):
    """`let v = OP x;` for `-` (numbers), `!` (bool) or `~` (integers)."""

    name = "nn_wgsl.unary"
    op = prop_def(UnaryOperatorAttr)
    input = operand_def()
    result = result_def()
    traits = traits_def(Pure())

    def __init__(self, op: str, input: SSAValue):
        _fast_init(self,
            properties={"op": UNARY_OP_ATTRS[op]}, operands=[input], result_types=[input.type]
        )

    def verify_(self) -> None:
        o, t = self.op.data, self.input.type
        _check_value_type(self.name, "the operand", t)
        ok = (
            (o == "-" and (is_float(t) or _scalar(t) == i32))
            or (o == "!" and is_bool(t))
            or (o == "~" and is_int(t))
        )
        if not ok:
            raise VerifyException(f"nn_wgsl.unary: '{o}' is not defined on {t}")
        if self.result.type != t:
            raise VerifyException("nn_wgsl.unary: result type must equal the operand type")

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_string_literal(self.op.data)
        printer.print_string(" ")
        printer.print_ssa_value(self.input)
        printer.print_op_attributes(self.attributes)
        printer.print_string(" : ")
        printer.print_attribute(self.input.type)

    @classmethod
    def parse(cls, parser: Parser) -> UnaryOp:
        o = parser.parse_str_enum(UnaryOperator)
        a = parser.parse_unresolved_operand()
        attrs = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        t = parser.parse_type()
        op = cls(o, parser.resolve_operand(a, t))
        op.attributes |= attrs
        return op


def _print_call_like(printer: Printer, op: IRDLOperation, head: str, args: Sequence[SSAValue]):
    printer.print_string(head)
    printer.print_string("(")
    printer.print_list(args, printer.print_ssa_value)
    printer.print_string(")")
    printer.print_op_attributes(op.attributes)
    printer.print_string(" : (")
    printer.print_list([a.type for a in args], printer.print_attribute)
    printer.print_string(") -> ")
    printer.print_attribute(op.results[0].type)


def _parse_call_like(parser: Parser) -> tuple[list[SSAValue], Attribute, dict[str, Attribute]]:
    args = parser.parse_comma_separated_list(
        Parser.Delimiter.PAREN, parser.parse_unresolved_operand
    )
    attrs = parser.parse_optional_attr_dict()
    parser.parse_punctuation(":")
    types = parser.parse_comma_separated_list(Parser.Delimiter.PAREN, parser.parse_type)
    parser.parse_punctuation("->")
    rt = parser.parse_type()
    if len(types) != len(args):
        parser.raise_error(f"{len(args)} operands but {len(types)} operand types")
    return [parser.resolve_operand(a, t) for a, t in zip(args, types)], rt, attrs


@irdl_op_definition
class CallOp(IRDLOperation):
    """`let v = f(args);` for a WGSL builtin function f (exp, tanh, max, fma, select, ...)."""

    name = "nn_wgsl.call"
    callee = prop_def(BuiltinFunctionAttr)
    args = var_operand_def()
    result = result_def()
    traits = traits_def(Pure())

    def __init__(self, callee: str, args: Sequence[SSAValue], result_type: Attribute | None = None):
        if result_type is None:
            result_type = args[0].type
            if callee == "select":
                result_type = args[0].type
            elif callee == "dot":
                result_type = _scalar(args[0].type)
        _fast_init(self,
            properties={"callee": FUNCTION_ATTRS[callee]}, operands=[args], result_types=[result_type]
        )

    def verify_(self) -> None:
        f = self.callee.data
        args = self.args
        if len(args) != CALLS[f]:
            raise VerifyException(f"nn_wgsl.call: {f} takes {CALLS[f]} arguments, got {len(args)}")
        for a in args:
            _check_value_type(self.name, "an argument", a.type)
        t0, rt = args[0].type, self.result.type
        if f == "select":
            if args[1].type != t0 or args[2].type not in (i1, bool_like(t0)):
                raise VerifyException(
                    "nn_wgsl.call: select(f, t, cond) needs f and t of one type and a bool "
                    "(or matching vector of bool) condition"
                )
            expected = t0
        elif f == "dot":
            if not isinstance(t0, VectorType) or args[1].type != t0 or is_bool(t0):
                raise VerifyException("nn_wgsl.call: dot needs two numeric vectors of one type")
            expected = _scalar(t0)
        else:
            if any(a.type != t0 for a in args):
                raise VerifyException(f"nn_wgsl.call: the arguments of {f} must have one type")
            if is_bool(t0):
                raise VerifyException(f"nn_wgsl.call: {f} is not defined on bool")
            if f not in ("abs", "max", "min", "clamp", "sign") and not is_float(t0):
                raise VerifyException(f"nn_wgsl.call: {f} needs floating-point arguments")
            expected = t0
        if rt != expected:
            raise VerifyException(f"nn_wgsl.call: {f} gives {expected}, not {rt}")

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_string_literal(self.callee.data)
        _print_call_like(printer, self, "", self.args)

    @classmethod
    def parse(cls, parser: Parser) -> CallOp:
        f = parser.parse_str_enum(BuiltinFunction)
        args, rt, attrs = _parse_call_like(parser)
        op = cls(f, args, rt)
        op.attributes |= attrs
        return op


@irdl_op_definition
class ConstructOp(IRDLOperation):
    """`let v = vecN<T>(a, b, ...)`: a vector from N scalars, or from one scalar (splat)."""

    name = "nn_wgsl.construct"
    args = var_operand_def()
    result = result_def(VectorType)
    traits = traits_def(Pure())

    def __init__(self, args: Sequence[SSAValue], result_type: VectorType):
        _fast_init(self, operands=[args], result_types=[result_type])

    def verify_(self) -> None:
        t = self.result.type
        _check_value_type(self.name, "the result", t)
        n, e = lanes(t), _scalar(t)
        if len(self.args) not in (1, n):
            raise VerifyException(
                f"nn_wgsl.construct: {t} needs 1 or {n} scalars, got {len(self.args)}"
            )
        if any(a.type != e for a in self.args):
            raise VerifyException(f"nn_wgsl.construct: the operands of {t} must be {e}")

    def print(self, printer: Printer) -> None:
        _print_call_like(printer, self, " ", self.args)

    @classmethod
    def parse(cls, parser: Parser) -> ConstructOp:
        args, rt, attrs = _parse_call_like(parser)
        if not isinstance(rt, VectorType):
            parser.raise_error("nn_wgsl.construct: the result must be a vector type")
        op = cls(args, rt)
        op.attributes |= attrs
        return op


@irdl_op_definition
class LaneOp(IRDLOperation):
    """`let v = x.y;`: lane `lane` (0..N-1) of a vector."""

    name = "nn_wgsl.lane"
    input = operand_def(VectorType)
    lane = prop_def(IntegerAttr[I64])
    result = result_def()
    traits = traits_def(Pure())

    def __init__(self, input: SSAValue, lane: int):
        _fast_init(self,
            operands=[input],
            properties={"lane": IntegerAttr(lane, 64)},
            result_types=[_scalar(input.type)],
        )

    def verify_(self) -> None:
        t = self.input.type
        _check_value_type(self.name, "the operand", t)
        if not 0 <= self.lane.value.data < lanes(t):
            raise VerifyException(f"nn_wgsl.lane: lane {self.lane.value.data} out of range for {t}")
        if self.result.type != _scalar(t):
            raise VerifyException("nn_wgsl.lane: the result type must be the lane type")

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_ssa_value(self.input)
        printer.print_string(f" {self.lane.value.data}")
        printer.print_op_attributes(self.attributes)
        printer.print_string(" : ")
        printer.print_attribute(self.input.type)

    @classmethod
    def parse(cls, parser: Parser) -> LaneOp:
        a = parser.parse_unresolved_operand()
        lane = parser.parse_integer(allow_negative=False, allow_boolean=False)
        attrs = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        t = parser.parse_type()
        op = cls(parser.resolve_operand(a, t), lane)
        op.attributes |= attrs
        return op


class _CastBase(IRDLOperation):
    input = operand_def()
    result = result_def()
    traits = traits_def(Pure())

    def __init__(self, input: SSAValue, result_type: Attribute):
        _fast_init(self, operands=[input], result_types=[result_type])

    def _check_types(self) -> tuple[Attribute, Attribute]:
        a, r = self.input.type, self.result.type
        _check_value_type(self.name, "the operand", a)
        _check_value_type(self.name, "the result", r)
        if lanes(a) != lanes(r):
            raise VerifyException(f"{self.name}: {a} and {r} have different lane counts")
        return a, r

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_ssa_value(self.input)
        printer.print_op_attributes(self.attributes)
        printer.print_string(" : ")
        printer.print_attribute(self.input.type)
        printer.print_string(" -> ")
        printer.print_attribute(self.result.type)

    @classmethod
    def parse(cls, parser: Parser):
        a = parser.parse_unresolved_operand()
        attrs = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        t = parser.parse_type()
        parser.parse_punctuation("->")
        rt = parser.parse_type()
        op = cls(parser.resolve_operand(a, t), rt)
        op.attributes |= attrs
        return op


@irdl_op_definition
class ConvertOp(_CastBase):
    """`let v = T(x);`: value conversion between f32, i32, u32 and bool (WGSL semantics:
    f32 -> i32 truncates toward zero and saturates; bool -> number gives 0 or 1)."""

    name = "nn_wgsl.convert"

    def verify_(self) -> None:
        self._check_types()


@irdl_op_definition
class BitcastOp(_CastBase):
    """`let v = bitcast<T>(x);`: reinterprets the 32 bits of f32 / i32 / u32 (lane-wise)."""

    name = "nn_wgsl.bitcast"

    def verify_(self) -> None:
        a, r = self._check_types()
        if is_bool(a) or is_bool(r):
            raise VerifyException("nn_wgsl.bitcast: bool has no bit representation")



@irdl_op_definition
class CallFuncOp(IRDLOperation):
    """`let v = f(args);` for a helper function @f (an nn_wgsl.func of the same module)."""

    name = "nn_wgsl.call_func"
    callee = prop_def(SymbolRefAttr)
    args = var_operand_def()
    result = result_def()
    traits = traits_def(Pure())

    def __init__(self, callee: str, args: Sequence[SSAValue], result_type: Attribute):
        _fast_init(self,
            properties={"callee": SymbolRefAttr(callee)},
            operands=[args],
            result_types=[result_type],
        )

    def verify_(self) -> None:
        _check_in_entry(self)
        name = self.callee.string_value()
        f = None
        m = self.parent_op()
        while m is not None and not isinstance(m, ModuleOp):
            m = m.parent_op()
        if m is not None:
            f = next(
                (o for o in m.body.block.ops if isinstance(o, FuncOp) and o.sym_name.data == name),
                None,
            )
        if m is None:
            return  # detached: checked once placed in a module
        if not isinstance(f, FuncOp):
            raise VerifyException(f"nn_wgsl.call_func: @{name} is not an nn_wgsl.func")
        arg_types = [a.type for a in f.body.block.args]
        if [a.type for a in self.args] != arg_types or self.result.type != f.result_type:
            raise VerifyException(
                f"nn_wgsl.call_func: the operand or result types do not match @{name}"
            )

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_attribute(self.callee)
        _print_call_like(printer, self, "", self.args)

    @classmethod
    def parse(cls, parser: Parser) -> CallFuncOp:
        callee = parser.parse_symbol_name().data
        args, rt, attrs = _parse_call_like(parser)
        op = cls(callee, args, rt)
        op.attributes |= attrs
        return op
