"""nnjit/ir/fastir.py builds what xDSL's generic constructors build."""

from xdsl.dialects import arith
from xdsl.dialects.builtin import IndexType, IntegerAttr, MemRefType, ModuleOp, VectorType, i1, i32
from xdsl.ir import Block, Region
from xdsl.traits import MemoryEffectKind, get_effects, is_side_effect_free

from nnjit.dialects import nn_loop, nn_wasm, nn_wgsl
from nnjit.dialects.nn_wasm_numeric import F32AddOp
from nnjit.ir.fastir import (
    append,
    clone_op,
    detach,
    drop_references,
    kernels_under,
    new_op,
    replace_all_uses,
    replace_kernels,
)

NONE = arith.IntegerOverflowAttr("none")


def _fields(op):
    return (
        type(op), tuple(op.operands), tuple(r.type for r in op.results), op.properties,
        op.attributes, op.location, tuple(op.successors), len(op.regions),
    )  # fmt: skip


def _uses(v):
    return [(u.operation, u.index) for u in v.uses]


def test_new_op_matches_create_and_keeps_use_lists():
    block = Block(arg_types=[i32, i32])
    a, b = block.args
    ref = arith.AddiOp.create(
        operands=[a, b], result_types=[i32], properties={"overflowFlags": NONE}
    )
    fast = new_op(arith.AddiOp, [a, b], [i32], {"overflowFlags": NONE})
    assert _fields(fast) == _fields(ref)
    assert fast.results[0].owner is fast and fast.results[0].index == 0
    assert (fast, 0) in _uses(a) and (fast, 1) in _uses(b)
    append(block, ref)
    append(block, fast)
    assert list(block.ops) == [ref, fast] and fast.parent is block
    fast.verify()
    # erasing drops the uses it made
    block.detach_op(fast)
    fast.erase()
    assert _uses(a) == [(ref, 0)]


def test_new_op_with_region_and_append_matches_add_op():
    body = Block()
    body.add_op(nn_wgsl.BarrierOp())
    outer = Block(arg_types=[i1])
    op = new_op(nn_wgsl.IfOp, [outer.args[0]], [], {}, regions=[Region(body)])
    ref_if = nn_wgsl.IfOp.create(operands=[outer.args[0]], regions=[Region(Block())])
    assert _fields(op) == _fields(ref_if)
    assert op.regions[0].parent is op and op.regions[0].block is body
    append(outer, op)
    assert outer.first_op is op and op.parent is outer
    ref = Block()
    c = arith.ConstantOp(IntegerAttr(1, i32))
    ref.add_op(c)
    append(ref, new_op(arith.AddiOp, [c.result, c.result], [i32], {"overflowFlags": NONE}))
    assert [o.name for o in ref.ops] == ["arith.constant", "arith.addi"]
    assert ref.first_op is c and ref.last_op.prev_op is c and c.next_op is ref.last_op


def test_clone_op_matches_clone():
    block = Block(arg_types=[IndexType()])
    c = arith.ConstantOp(IntegerAttr(4, IndexType()))
    add = arith.AddiOp(block.args[0], c.result)
    add.result.name_hint = "x"
    block.add_ops([c, add])
    other = Block(arg_types=[IndexType()])
    m1 = {block.args[0]: other.args[0]}
    m2 = dict(m1)
    ref = add.clone(value_mapper=m1)
    fast = clone_op(add, m2)
    assert _fields(fast) == _fields(ref)
    assert fast.results[0].name_hint == "x"
    assert m2[add.result] is fast.results[0]


def _rauw_case(name_new: str | None):
    """A block where %old has four uses (one op uses it twice) and %new two."""
    block = Block(arg_types=[i32, i32])
    old, new = block.args
    old.name_hint, new.name_hint = "old", name_new
    ops = [
        arith.AddiOp(old, new), arith.MuliOp(old, old), arith.SubiOp(new, old), arith.AddiOp(new, new),
    ]  # fmt: skip
    block.add_ops(ops)
    return block, old, new, ops


def test_replace_all_uses_matches_xdsl():
    for name_new in (None, "n"):
        ref_block, ref_old, ref_new, ref_ops = _rauw_case(name_new)
        ref_old.replace_all_uses_with(ref_new)
        block, old, new, ops = _rauw_case(name_new)
        replace_all_uses(old, new)
        # the same operands, the same use lists in the same order, the same name
        for a, b in zip(ops, ref_ops):
            assert [x is new for x in a.operands] == [x is ref_new for x in b.operands]
        assert old.first_use is None and ref_old.first_use is None
        assert [(ops.index(o), i) for o, i in _uses(new)] == [(ref_ops.index(o), i) for o, i in _uses(ref_new)]
        assert new.name_hint == ref_new.name_hint
        # prev links agree with next links (so removing a use later works)
        use, prev = new.first_use, None
        while use is not None:
            assert use._prev_use is prev
            prev, use = use, use._next_use
        for op in ops:
            op.verify()
    x = Block(arg_types=[i32]).args[0]
    replace_all_uses(x, x)  # (a value replaced by itself: nothing changes)
    assert x.first_use is None


def test_detach_and_drop_references_match_xdsl():
    for k in range(4):  # the first, a middle, the last op and then all
        ref_block, ref_old, ref_new, ref_ops = _rauw_case(None)
        block, old, new, ops = _rauw_case(None)
        which = [k] if k < 3 else [3, 0, 2, 1]
        for i in which:
            ref_ops[i].detach()
            ref_ops[i].drop_all_references()
            detach(ops[i])
            drop_references(ops[i])
        assert [ops.index(o) for o in block.ops] == [ref_ops.index(o) for o in ref_block.ops]
        assert (block.first_op is None) == (ref_block.first_op is None)
        if block.first_op is not None:
            assert ops.index(block.first_op) == ref_ops.index(ref_block.first_op)
            assert ops.index(block.last_op) == ref_ops.index(ref_block.last_op)
        for v, rv in ((old, ref_old), (new, ref_new)):
            assert [(ops.index(o), i) for o, i in _uses(v)] == [(ref_ops.index(o), i) for o, i in _uses(rv)]
        assert all(ops[i].parent is None and ops[i].next_op is None and ops[i].prev_op is None for i in which)


def test_replace_kernels_keeps_order_and_other_ops():
    text = """
nn_loop.kernel @k0(%a: memref<4xf32> read, %b: memref<4xf32> write) kind "copy" target "wgsl" {
  nn_loop.for %i = 0 to 4 map "invocation.x" {
    %v = nn_loop.load %a[%i] : memref<4xf32> -> f32
    nn_loop.store %v, %b[%i] : f32, memref<4xf32>
  }
}
"""
    from xdsl.parser import Parser

    from nnjit.registry import make_context

    module: ModuleOp = Parser(make_context(), text).parse_module()
    kernels = kernels_under(module)
    assert [k.sym_name.data for k in kernels] == ["k0"]
    assert isinstance(kernels[0], nn_loop.KernelOp)
    from nnjit.passes.convert_nn_loop_to_wgsl import convert_kernel

    replace_kernels(module, "wasm", convert_kernel)  # no wasm kernel: nothing changes
    assert kernels_under(module) == kernels
    replace_kernels(module, "wgsl", convert_kernel)
    assert kernels_under(module) == []
    assert [o.name for o in module.body.block.ops] == ["nn_wgsl.module"]
    module.verify()


def test_fast_built_ops_have_their_class_traits():
    """Traits are class-level, so the hot-path builders (new_op, fast_init) give ops the same
    memory effects as IRDL's constructors: generic cse/dce see them alike."""
    block = Block(arg_types=[MemRefType(i32, [4]), IndexType()])
    buf, i = block.args
    load = new_op(nn_loop.LoadOp, [buf, i], [i32])
    store = nn_loop.StoreOp(load.results[0], buf, [i])
    splat = new_op(nn_loop.SplatOp, [load.results[0]], [VectorType(i32, [4])])
    assert {e.kind for e in get_effects(load)} == {MemoryEffectKind.READ}
    assert {e.kind for e in get_effects(store)} == {MemoryEffectKind.WRITE}
    assert is_side_effect_free(splat)
    (a, b) = Block(arg_types=[nn_wasm.f32, nn_wasm.f32]).args
    add = new_op(nn_wasm.INSTRUCTIONS["f32.add"], [a, b], [nn_wasm.f32])
    assert is_side_effect_free(add) and is_side_effect_free(F32AddOp(a, b))
    (addr,) = Block(arg_types=[nn_wasm.i32]).args
    v128_load = new_op(nn_wasm.V128LoadOp, [addr], [nn_wasm.v128], nn_wasm._memprops(0, None))
    assert {e.kind for e in get_effects(v128_load)} == {MemoryEffectKind.READ}


def test_getters_read_what_the_public_properties_give():
    from xdsl.parser import Parser

    from nnjit.ir import fastir
    from nnjit.registry import make_context

    text = """
func.func @main(%a: f32, %b: f32) -> f32 {
  %s = arith.addf %a, %b : f32
  %m = arith.mulf %s, %s : f32
  func.return %m : f32
}
"""
    module: ModuleOp = Parser(make_context(), text).parse_module()
    f = next(iter(module.body.block.ops))
    region = f.regions[0]
    block = fastir.first_block_of(region)
    assert block is region.first_block
    assert fastir.block_args_of(block) == block.args
    add = fastir.first_op_of(block)
    assert add is block.first_op and fastir.next_op_of(add) is add.next_op
    assert tuple(fastir.operands_of(add)) == tuple(add.operands)
    assert fastir.type_of(add.results[0]) is add.results[0].type
    assert fastir.name_of(add.results[0]) == add.results[0].name_hint == "s"
    use = add.results[0].first_use
    assert use is not None and fastir.use_op_of(use) is use.operation
    assert fastir.next_use_of(use) is not None  # (%s is used twice)
    fastir.set_name(add.results[0], "t")
    assert add.results[0].name_hint == "t"
