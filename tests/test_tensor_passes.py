"""nn-tensor-fold and nn-tensor-fuse: results are preserved, recognitions fire, fusion contract.

* Hand-built IR (one `@main` per case) and random DAGs of nn_tensor ops, evaluated before and
  after the passes by the float64 reference evaluator (`nnjit.interp.evaluate`) on fresh
  random inputs: relative error <= 1e-6 (GELU recognition replaces the float32-rounded
  sqrt(2) by the exact one).
* Constant folding (through the reference interpreter's `eval_op`, in float64, rounded once
  to the result type) against the reference evaluator, op by op; what it refuses to fold
  (integer division by zero, indices out of range) and its size limit on operands.
* The tiny models under tests/models/ (both torch exporters): fold + fuse preserve results,
  GELU recognition fires on BERT/ViT/MiniLM, GPT-2's tanh GELU ends in its Gemm's epilogue,
  every kernel-worthy op ends up inside exactly one fused op, and fused bodies keep the
  contract of nnjit/passes/nn_tensor_fuse.py.
* torch's legacy exporter at opset 16 (decomposed LayerNorm, Div/Erf GELU) on BERT- and
  GPT-2-style blocks: layer-norm and GELU recognition fire.
"""

from __future__ import annotations

import io
import secrets
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp
from xdsl.parser import Parser

from nnjit.dialects import nn_tensor as nt
from nnjit.interp import evaluate as reference_evaluate
from nnjit.interp import nn_tensor_eval
from nnjit.passes import nn_tensor_fold
from nnjit.passes.nn_tensor_fold import NNTensorFoldPass
from nnjit.passes.nn_tensor_fuse import (
    DATA_MOVEMENT_KINDS,
    ROOT_KINDS,
    NNTensorFusePass,
    is_kernel_worthy,
)
from nnjit.registry import make_context
from tests.generation_ref import decoder_param, decoder_shapes

ROOT = Path(__file__).resolve().parent.parent
MODELS = sorted((ROOT / "tests" / "models").glob("*.onnx"))
TOL = 1e-6

# ------------------------------------------------------------------------ evaluation


def evaluate(module: ModuleOp, inputs: Sequence[np.ndarray], weights=None) -> list[np.ndarray]:
    return reference_evaluate(module, inputs, weights or {}, dtype=np.float64)


def rel_err(got: np.ndarray, ref: np.ndarray) -> float:
    got, ref = np.asarray(got), np.asarray(ref)
    assert got.shape == ref.shape
    if ref.dtype.kind != "f":
        return 0.0 if np.array_equal(got, ref) else float("inf")
    got, ref = got.astype(np.float64), ref.astype(np.float64)
    if not np.all(np.isfinite(got) == np.isfinite(ref)):
        return float("inf")
    finite = np.isfinite(ref)
    if not finite.any():
        return 0.0
    scale = max(float(np.abs(ref[finite]).max()), 1e-30)
    return float(np.abs(got[finite] - ref[finite]).max()) / scale


# --------------------------------------------------------------------------- helpers

CTX = make_context()


def parse(text: str) -> ModuleOp:
    module = Parser(CTX, text).parse_module()
    module.verify()
    return module


def _main(module: ModuleOp) -> func.FuncOp:
    return next(op for op in module.walk() if isinstance(op, func.FuncOp))


def fold(module: ModuleOp, **options) -> ModuleOp:
    NNTensorFoldPass(**options).apply(CTX, module)
    module.verify()
    return module


def fuse(module: ModuleOp) -> ModuleOp:
    NNTensorFusePass().apply(CTX, module)
    module.verify()
    return module


def names(module: ModuleOp) -> Counter[str]:
    return Counter(op.name for op in module.walk())


def random_inputs(module: ModuleOp, rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    for arg in _main(module).body.block.args:
        shape = nt.shape_of(arg)
        elem = str(nt.elem_of(arg))
        if elem == "i1":
            out.append(rng.random(shape) < 0.5)
        elif elem.startswith("i"):
            out.append(rng.integers(-5, 6, size=shape).astype(np.int64))
        else:
            out.append(rng.standard_normal(shape).astype(np.float32))
    return out


def check_preserved(
    module: ModuleOp,
    passes: Callable[[ModuleOp], object],
    weights=None,
    inputs: Sequence[np.ndarray] | None = None,
    tol: float = TOL,
) -> ModuleOp:
    """Runs `passes` on `module` and checks the results are unchanged on random inputs."""
    seed = secrets.randbits(32)
    rng = np.random.default_rng(seed)
    inputs = random_inputs(module, rng) if inputs is None else inputs
    before = evaluate(module, inputs, weights)
    passes(module)
    module.verify()
    after = evaluate(module, inputs, weights)
    assert len(before) == len(after)
    for i, (a, b) in enumerate(zip(after, before)):
        err = rel_err(a, b)
        assert err <= tol, f"output {i}: relative error {err:.3g} (seed {seed})\n{module}"
    return module


def _ops_after_fold(module: ModuleOp) -> Counter[str]:
    return Counter(op.name for op in _main(module).body.block.ops if is_kernel_worthy(op))


def check_fusion_contract(module: ModuleOp, worthy_before: Counter[str]) -> None:
    """The contract in nn_tensor_fuse.py's docstring, and exactly-once coverage of ops."""
    main = _main(module)
    inside: Counter[str] = Counter()
    for op in main.body.block.ops:
        assert not is_kernel_worthy(op), f"{op.name} left outside any nn_tensor.fused"
        if not isinstance(op, nt.FusedOp):
            continue
        kind = op.kind.data
        inputs = list(op.inputs)
        assert len(set(inputs)) == len(inputs), "fused operands must be distinct"
        block = op.body.block
        for v, arg in zip(inputs, block.args):
            c = v.owner
            if isinstance(c, nt.ConstantOp) and c.value.is_splat():
                assert not any(isinstance(u.operation, nt.ElementwiseOp) for u in arg.uses), (
                    "splat constants read by elementwise ops are cloned into the body"
                )
        body = list(block.ops)
        assert isinstance(body[-1], nt.YieldOp)
        consts = [o for o in body[:-1] if isinstance(o, nt.ConstantOp)]
        assert body[: len(consts)] == consts, "cloned constants come first"
        assert all(c.value.is_splat() for c in consts)
        compute = body[len(consts) : -1]
        assert compute, "empty fused body"
        assert body[-1].operands[0] is compute[-1].results[0], "yield the last op's result"
        for o in compute[:-1]:
            for r in o.results:
                assert r.uses, f"dead value in a {kind} body: {o.name}"
        for arg in block.args:
            assert arg.uses, "every operand is read"
        inside.update(o.name for o in compute)
        roots = [o for o in compute if type(o) in ROOT_KINDS]
        if kind in ("matmul", "conv", "softmax", "layer_norm", "reduce"):
            assert len(roots) == 1 and ROOT_KINDS[type(roots[0])] == kind, kind
            root = roots[0]
            i = compute.index(root)
            pro, epi = compute[:i], compute[i + 1 :]
            if kind == "matmul":
                for t in pro:
                    assert isinstance(t, nt.TransposeOp)
                    perm = list(nt.array_values(t.perm))
                    n = len(perm)
                    assert perm == [*range(n - 2), n - 1, n - 2]
                    assert {u.operation for u in t.result.uses} == {root}
            elif kind == "conv":
                assert not pro
            else:
                assert all(isinstance(p, nt.ElementwiseOp) for p in pro)
                for p in pro:
                    for u in p.results[0].uses:
                        assert u.operation in pro or (u.operation is root and u.index == 0)
            depends = {root.results[0]}
            for e in epi:
                assert isinstance(e, nt.ElementwiseOp), f"{e.name} in a {kind} epilogue"
                assert nt.shape_of(e.results[0]) == nt.shape_of(root.results[0])
                assert any(v in depends for v in e.operands), "epilogue op not on the root"
                depends.add(e.results[0])
        elif kind == "elementwise":
            assert all(isinstance(o, nt.ElementwiseOp) for o in compute)
        else:
            assert len(compute) == 1 and DATA_MOVEMENT_KINDS[type(compute[0])] == kind
    assert inside == worthy_before, "each kernel-worthy op inside exactly one fused op"


def fold_and_fuse(module: ModuleOp) -> ModuleOp:
    fold(module)
    worthy = _ops_after_fold(module)
    fuse(module)
    check_fusion_contract(module, worthy)
    again = str(module)
    assert str(fuse(module)) == again, "fusing twice changes nothing"
    return module


# ------------------------------------------------------------------- hand-built IR

GELU_LEGACY = """
func.func @main(%x: tensor<3x7xf32>) -> tensor<3x7xf32> {
  %sqrt2 = nn_tensor.constant dense<1.41421354> : tensor<f32>
  %one = nn_tensor.constant dense<1.0> : tensor<f32>
  %half = nn_tensor.constant dense<0.5> : tensor<f32>
  %d = nn_tensor.div %x, %sqrt2 : (tensor<3x7xf32>, tensor<f32>) -> tensor<3x7xf32>
  %e = nn_tensor.erf %d : tensor<3x7xf32> -> tensor<3x7xf32>
  %a = nn_tensor.add %e, %one : (tensor<3x7xf32>, tensor<f32>) -> tensor<3x7xf32>
  %m = nn_tensor.mul %x, %a : (tensor<3x7xf32>, tensor<3x7xf32>) -> tensor<3x7xf32>
  %r = nn_tensor.mul %m, %half : (tensor<3x7xf32>, tensor<f32>) -> tensor<3x7xf32>
  func.return %r : tensor<3x7xf32>
}
"""

GELU_HALF_FIRST = """
func.func @main(%x: tensor<5x3xf32>) -> tensor<5x3xf32> {
  %half = nn_tensor.constant dense<0.5> : tensor<f32>
  %rsqrt2 = nn_tensor.constant dense<0.707106769> : tensor<f32>
  %one = nn_tensor.constant dense<1.0> : tensor<1xf32>
  %h = nn_tensor.mul %half, %x : (tensor<f32>, tensor<5x3xf32>) -> tensor<5x3xf32>
  %s = nn_tensor.mul %x, %rsqrt2 : (tensor<5x3xf32>, tensor<f32>) -> tensor<5x3xf32>
  %e = nn_tensor.erf %s : tensor<5x3xf32> -> tensor<5x3xf32>
  %a = nn_tensor.add %one, %e : (tensor<1xf32>, tensor<5x3xf32>) -> tensor<5x3xf32>
  %r = nn_tensor.mul %a, %h : (tensor<5x3xf32>, tensor<5x3xf32>) -> tensor<5x3xf32>
  func.return %r : tensor<5x3xf32>
}
"""

LAYER_NORM = """
func.func @main(%x: tensor<2x3x9xf32>, %g: tensor<9xf32>, %b: tensor<1x9xf32>) -> tensor<2x3x9xf32> {
  %m = nn_tensor.reduce_mean %x {axes = array<i64: 2>} : tensor<2x3x9xf32> -> tensor<2x3x1xf32>
  %d = nn_tensor.sub %x, %m : (tensor<2x3x9xf32>, tensor<2x3x1xf32>) -> tensor<2x3x9xf32>
  %two = nn_tensor.constant dense<2.0> : tensor<f32>
  %p = nn_tensor.pow %d, %two : (tensor<2x3x9xf32>, tensor<f32>) -> tensor<2x3x9xf32>
  %v = nn_tensor.reduce_mean %p {axes = array<i64: 2>} : tensor<2x3x9xf32> -> tensor<2x3x1xf32>
  %eps = nn_tensor.constant dense<1.0e-5> : tensor<f32>
  %ve = nn_tensor.add %eps, %v : (tensor<f32>, tensor<2x3x1xf32>) -> tensor<2x3x1xf32>
  %s = nn_tensor.sqrt %ve : tensor<2x3x1xf32> -> tensor<2x3x1xf32>
  %n = nn_tensor.div %d, %s : (tensor<2x3x9xf32>, tensor<2x3x1xf32>) -> tensor<2x3x9xf32>
  %y = nn_tensor.mul %g, %n : (tensor<9xf32>, tensor<2x3x9xf32>) -> tensor<2x3x9xf32>
  %z = nn_tensor.add %b, %y : (tensor<1x9xf32>, tensor<2x3x9xf32>) -> tensor<2x3x9xf32>
  func.return %z : tensor<2x3x9xf32>
}
"""

LAYER_NORM_TWO_AXES = """
func.func @main(%x: tensor<3x4x5xf32>, %g: tensor<4x5xf32>) -> tensor<3x4x5xf32> {
  %m = nn_tensor.reduce_mean %x {axes = array<i64: 1, 2>} : tensor<3x4x5xf32> -> tensor<3x1x1xf32>
  %d = nn_tensor.sub %x, %m : (tensor<3x4x5xf32>, tensor<3x1x1xf32>) -> tensor<3x4x5xf32>
  %p = nn_tensor.mul %d, %d : (tensor<3x4x5xf32>, tensor<3x4x5xf32>) -> tensor<3x4x5xf32>
  %v = nn_tensor.reduce_mean %p {axes = array<i64: 1, 2>} : tensor<3x4x5xf32> -> tensor<3x1x1xf32>
  %eps = nn_tensor.constant dense<1.0e-12> : tensor<f32>
  %ve = nn_tensor.add %v, %eps : (tensor<3x1x1xf32>, tensor<f32>) -> tensor<3x1x1xf32>
  %s = nn_tensor.sqrt %ve : tensor<3x1x1xf32> -> tensor<3x1x1xf32>
  %n = nn_tensor.div %d, %s : (tensor<3x4x5xf32>, tensor<3x1x1xf32>) -> tensor<3x4x5xf32>
  %y = nn_tensor.mul %n, %g : (tensor<3x4x5xf32>, tensor<4x5xf32>) -> tensor<3x4x5xf32>
  func.return %y : tensor<3x4x5xf32>
}
"""

NOOPS_AND_SPLIT = """
func.func @main(%x: tensor<2x3x4xf32>) -> (tensor<4x3x2xf32>, tensor<2x1x4xf32>, tensor<2x2x4xf32>, tensor<2x3x4xf32>) {
  %one = nn_tensor.constant dense<1.0> : tensor<f32>
  %zero = nn_tensor.constant dense<0.0> : tensor<4xf32>
  %a = nn_tensor.mul %x, %one : (tensor<2x3x4xf32>, tensor<f32>) -> tensor<2x3x4xf32>
  %b = nn_tensor.add %zero, %a : (tensor<4xf32>, tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  %c = nn_tensor.div %b, %one : (tensor<2x3x4xf32>, tensor<f32>) -> tensor<2x3x4xf32>
  %t1 = nn_tensor.transpose %c {perm = array<i64: 1, 2, 0>} : tensor<2x3x4xf32> -> tensor<3x4x2xf32>
  %t2 = nn_tensor.transpose %t1 {perm = array<i64: 1, 0, 2>} : tensor<3x4x2xf32> -> tensor<4x3x2xf32>
  %r1 = nn_tensor.reshape %c : tensor<2x3x4xf32> -> tensor<6x4xf32>
  %r2 = nn_tensor.reshape %r1 : tensor<6x4xf32> -> tensor<2x3x4xf32>
  %s:2 = nn_tensor.split %r2 {axis = 1 : i64} : tensor<2x3x4xf32> -> tensor<2x1x4xf32>, tensor<2x2x4xf32>
  %e = nn_tensor.expand %r2 : tensor<2x3x4xf32> -> tensor<2x3x4xf32>
  %k = nn_tensor.concat %e {axis = 0 : i64} : (tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  %q = nn_tensor.slice %k {starts = array<i64: 0, 0, 0>, steps = array<i64: 1, 1, 1>} : tensor<2x3x4xf32> -> tensor<2x3x4xf32>
  func.return %t2, %s#0, %s#1, %q : tensor<4x3x2xf32>, tensor<2x1x4xf32>, tensor<2x2x4xf32>, tensor<2x3x4xf32>
}
"""

SINK_RESHAPE = """
func.func @main(%x: tensor<6x4xf32>, %w: tensor<4x8xf32>, %b: tensor<8xf32>, %r: tensor<2x3x8xf32>, %c: tensor<3x1xf32>) -> (tensor<2x3x8xf32>, tensor<2x3x8xf32>) {
  %half = nn_tensor.constant dense<0.5> : tensor<1x1x1xf32>
  %g = nn_tensor.gemm %x, %w : (tensor<6x4xf32>, tensor<4x8xf32>) -> tensor<6x8xf32>
  %v = nn_tensor.reshape %g : tensor<6x8xf32> -> tensor<2x3x8xf32>
  %m = nn_tensor.mul %v, %half : (tensor<2x3x8xf32>, tensor<1x1x1xf32>) -> tensor<2x3x8xf32>
  %a = nn_tensor.add %m, %b : (tensor<2x3x8xf32>, tensor<8xf32>) -> tensor<2x3x8xf32>
  %t = nn_tensor.tanh %a : tensor<2x3x8xf32> -> tensor<2x3x8xf32>
  %s = nn_tensor.add %r, %t : (tensor<2x3x8xf32>, tensor<2x3x8xf32>) -> tensor<2x3x8xf32>
  %n = nn_tensor.add %s, %c : (tensor<2x3x8xf32>, tensor<3x1xf32>) -> tensor<2x3x8xf32>
  func.return %s, %n : tensor<2x3x8xf32>, tensor<2x3x8xf32>
}
"""


@pytest.mark.parametrize("text", [GELU_LEGACY, GELU_HALF_FIRST], ids=["legacy", "half_first"])
def test_gelu_recognised_and_exact(text: str):
    module = check_preserved(parse(text), fold)
    assert names(module)["nn_tensor.gelu"] == 1
    assert not {"nn_tensor.erf", "nn_tensor.mul", "nn_tensor.div"} & set(names(module))


def test_gelu_wrong_constant_left_alone():
    text = GELU_LEGACY.replace("dense<1.41421354>", "dense<1.4143>")
    module = check_preserved(parse(text), fold, tol=0.0)
    assert names(module)["nn_tensor.gelu"] == 0 and names(module)["nn_tensor.erf"] == 1


@pytest.mark.parametrize("text", [LAYER_NORM, LAYER_NORM_TWO_AXES], ids=["last_axis", "two_axes"])
def test_layer_norm_recognised(text: str):
    module = check_preserved(parse(text), fold)
    n = names(module)
    assert n["nn_tensor.layer_norm"] == 1
    assert n["nn_tensor.reduce_mean"] == 0 and n["nn_tensor.sqrt"] == 0


def test_layer_norm_epsilon_kept():
    module = fold(parse(LAYER_NORM))
    ln = next(op for op in module.walk() if isinstance(op, nt.LayerNormOp))
    assert ln.epsilon.value.data == pytest.approx(1e-5, rel=1e-6)
    assert ln.axis.value.data == 2 and nt.shape_of(ln.bias) == (9,)


def test_noops_and_split_removed():
    module = check_preserved(parse(NOOPS_AND_SPLIT), fold, tol=0.0)
    n = names(module)
    assert n["nn_tensor.split"] == 0 and n["nn_tensor.slice"] == 2
    assert n["nn_tensor.transpose"] == 1 and n["nn_tensor.reshape"] == 0
    for gone in ("mul", "add", "div", "expand", "concat", "constant"):
        assert n[f"nn_tensor.{gone}"] == 0, gone
    t = next(op for op in module.walk() if isinstance(op, nt.TransposeOp))
    assert list(nt.array_values(t.perm)) == [2, 1, 0]


def test_sink_reshape_then_gemm_epilogue():
    module = check_preserved(parse(SINK_RESHAPE), fold_and_fuse, tol=0.0)
    fused = [op for op in module.walk() if isinstance(op, nt.FusedOp)]
    gemm = next(f for f in fused if f.kind.data == "matmul")
    body = Counter(op.name for op in gemm.body.block.ops)
    # scale, bias, tanh and the residual add all run in the gemm's epilogue
    assert body["nn_tensor.tanh"] == 1 and body["nn_tensor.add"] == 2
    # the last add broadcasts over a dim the reshape splits: its own kernel
    assert [f.kind.data for f in fused].count("elementwise") == 1


def test_fold_option_limits_materialised_constants():
    text = """
    func.func @main() -> tensor<3xi64> {
      %a = nn_tensor.constant dense<[1, 2, 3]> : tensor<3xi64>
      %b = nn_tensor.add %a, %a : (tensor<3xi64>, tensor<3xi64>) -> tensor<3xi64>
      func.return %b : tensor<3xi64>
    }
    """
    assert names(fold(parse(text), max_elements=2))["nn_tensor.add"] == 1
    module = fold(parse(text))
    assert names(module)["nn_tensor.add"] == 0
    assert evaluate(module, [])[0].tolist() == [2, 4, 6]
    assert str(NNTensorFoldPass(max_elements=8)) == "nn-tensor-fold{max_elements=8}"
    assert str(NNTensorFusePass()) == "nn-tensor-fuse"


# ---------------------------------------------------------- constant folding op by op

# (op text with %a, %b, %c operands, operand types, result type, value kinds)
CONST_CASES: list[tuple[str, str, list[str], str]] = [
    ("add", "nn_tensor.add %a, %b", ["2x3xf32", "3xf32"], "2x3xf32"),
    ("sub", "nn_tensor.sub %a, %b", ["2x3xf32", "2x3xf32"], "2x3xf32"),
    ("mul", "nn_tensor.mul %a, %b", ["2x3xi64", "1x3xi64"], "2x3xi64"),
    ("div_f", "nn_tensor.div %a, %b", ["2x3xf32", "2x3xf32"], "2x3xf32"),
    ("div_i", "nn_tensor.div %a, %b", ["2x3xi64", "2x3xi64"], "2x3xi64"),
    ("pow", "nn_tensor.pow %a, %b", ["2x3xf32", "f32"], "2x3xf32"),
    ("max", "nn_tensor.max %a, %b", ["2x3xf32", "3xf32"], "2x3xf32"),
    ("min", "nn_tensor.min %a, %b", ["2x3xi64", "2x3xi64"], "2x3xi64"),
    ("and", "nn_tensor.and %a, %b", ["2x3xi1", "2x3xi1"], "2x3xi1"),
    ("or", "nn_tensor.or %a, %b", ["2x3xi1", "3xi1"], "2x3xi1"),
    ("equal", "nn_tensor.equal %a, %b", ["2x3xi64", "2x3xi64"], "2x3xi1"),
    ("less", "nn_tensor.less %a, %b", ["2x3xf32", "2x3xf32"], "2x3xi1"),
    ("greater", "nn_tensor.greater %a, %b", ["2x3xi64", "3xi64"], "2x3xi1"),
    ("sqrt", "nn_tensor.sqrt %a", ["2x3xf32"], "2x3xf32"),
    ("round", "nn_tensor.round %a", ["2x3xf32"], "2x3xf32"),
    ("erf", "nn_tensor.erf %a", ["2x3xf32"], "2x3xf32"),
    ("tanh", "nn_tensor.tanh %a", ["2x3xf32"], "2x3xf32"),
    ("sin", "nn_tensor.sin %a", ["2x3xf32"], "2x3xf32"),
    ("cos", "nn_tensor.cos %a", ["2x3xf32"], "2x3xf32"),
    ("exp", "nn_tensor.exp %a", ["2x3xf32"], "2x3xf32"),
    ("log", "nn_tensor.log %a", ["2x3xf32"], "2x3xf32"),
    ("neg", "nn_tensor.neg %a", ["2x3xi64"], "2x3xi64"),
    ("abs", "nn_tensor.abs %a", ["2x3xf32"], "2x3xf32"),
    ("reciprocal", "nn_tensor.reciprocal %a", ["2x3xf32"], "2x3xf32"),
    ("relu", "nn_tensor.relu %a", ["2x3xf32"], "2x3xf32"),
    ("sigmoid", "nn_tensor.sigmoid %a", ["2x3xf32"], "2x3xf32"),
    ("gelu", "nn_tensor.gelu %a", ["2x3xf32"], "2x3xf32"),
    ("not", "nn_tensor.not %a", ["2x3xi1"], "2x3xi1"),
    ("isnan", "nn_tensor.isnan %a", ["2x3xf32"], "2x3xi1"),
    ("cast_fi", "nn_tensor.cast %a", ["2x3xf32"], "2x3xi64"),
    ("cast_if", "nn_tensor.cast %a", ["2x3xi64"], "2x3xf32"),
    ("cast_ib", "nn_tensor.cast %a", ["2x3xi64"], "2x3xi1"),
    ("where", "nn_tensor.where %a, %b, %c", ["2x3xi1", "2x3xf32", "3xf32"], "2x3xf32"),
    ("matmul", "nn_tensor.matmul %a, %b", ["2x3x4xf32", "4x5xf32"], "2x3x5xf32"),
    ("matmul_i16", "nn_tensor.matmul_i16 %a, %b", ["2x3x5xi32", "3x4xi32"], "2x3x4xi32"),
    ("matmul_i8", "nn_tensor.matmul_i8 %a, %b", ["2x3x5xi32", "3x4xi32"], "2x3x4xi32"),
    ("matmul_q8p", "nn_tensor.matmul_q8p %a, %b", ["2x3x5xi32", "3x8xi8"], "2x3x4xi32"),
    ("gemm", "nn_tensor.gemm %a, %b, %c {alpha = 0.5 : f32, beta = 2.0 : f32, trans_a = 1 : i64, trans_b = 1 : i64}",
     ["4x3xf32", "5x4xf32", "5xf32"], "3x5xf32"),
    ("softmax", "nn_tensor.softmax %a {axis = 1 : i64}", ["2x5xf32"], "2x5xf32"),
    ("layer_norm", "nn_tensor.layer_norm %a, %b, %c {axis = 1 : i64, epsilon = 1.0e-5 : f32}",
     ["3x6xf32", "6xf32", "6xf32"], "3x6xf32"),
    ("reduce_mean", "nn_tensor.reduce_mean %a {axes = array<i64: 1>}", ["3x4xf32"], "3x1xf32"),
    ("reduce_sum", "nn_tensor.reduce_sum %a {axes = array<i64: 0, 2>, keepdims = 0 : i64}",
     ["2x3x4xi64"], "3xi64"),
    ("reduce_max", "nn_tensor.reduce_max %a {axes = array<i64: 0>}", ["3x4xf32"], "1x4xf32"),
    ("transpose", "nn_tensor.transpose %a {perm = array<i64: 2, 0, 1>}", ["2x3x4xi64"], "4x2x3xi64"),
    ("reshape", "nn_tensor.reshape %a", ["2x3x4xf32"], "4x6xf32"),
    ("expand", "nn_tensor.expand %a", ["3x1xf32"], "2x3x4xf32"),
    ("gather", "nn_tensor.gather %a, %b {axis = 1 : i64}", ["3x4xf32", "2x2xi64"], "3x2x2xf32"),
    ("gather_nd", "nn_tensor.gather_nd %a, %b {batch_dims = 1 : i64}", ["2x3x4xf32", "2x1xi64"], "2x4xf32"),
    ("slice", "nn_tensor.slice %a {starts = array<i64: 1, 3>, steps = array<i64: 1, -2>}",
     ["3x5xf32"], "2x2xf32"),
    ("concat", "nn_tensor.concat %a, %b {axis = 1 : i64}", ["2x3xi64", "2x1xi64"], "2x4xi64"),
]  # fmt: skip


def _const_value(type_text: str, rng: np.random.Generator, op_name: str, index: int) -> str:
    shape_text, _, elem = type_text.rpartition("x") if "x" in type_text else ("", "", type_text)
    shape = tuple(int(d) for d in shape_text.split("x")) if shape_text else ()
    if elem == "i1":
        vals = rng.random(shape) < 0.5
        text = np.array2string(vals, separator=", ")
        text = text.replace("True", "true").replace("False", "false")
    elif elem.startswith("i"):
        if op_name.startswith("gather"):
            vals = rng.integers(-2, 2, size=shape)
        elif op_name == "div_i" and index == 1:
            vals = rng.choice([-3, -2, -1, 1, 2, 3], size=shape)
        else:
            vals = rng.integers(-7, 8, size=shape)
        text = np.array2string(vals, separator=", ")
    else:
        vals = rng.standard_normal(shape)
        if op_name in ("sqrt", "log") or (op_name == "pow" and index == 0):
            vals = np.abs(vals) + 0.1
        if op_name == "cast_fi":
            vals = vals * 5
        text = np.array2string(vals, separator=", ", floatmode="unique")
    return f"dense<{text.replace(chr(10), '')}> : tensor<{type_text}>"


@pytest.mark.parametrize("case", CONST_CASES, ids=[c[0] for c in CONST_CASES])
def test_constant_folding_matches_reference(case):
    name, op_text, operand_types, result_type = case
    seed = secrets.randbits(32)
    rng = np.random.default_rng(seed)
    lines = []
    for i, t in enumerate(operand_types):
        lines.append(f"  %{'abc'[i]} = nn_tensor.constant {_const_value(t, rng, name, i)}")
    types = ", ".join(f"tensor<{t}>" for t in operand_types)
    fn_type = f"({types}) -> tensor<{result_type}>"
    if op_text.split()[0] in ("nn_tensor.gemm", "nn_tensor.layer_norm", "nn_tensor.concat"):
        sig = fn_type
    elif len(operand_types) == 1:
        sig = f"tensor<{operand_types[0]}> -> tensor<{result_type}>"
    else:
        sig = fn_type
    lines.append(f"  %r = {op_text} : {sig}")
    text = (
        f"func.func @main() -> tensor<{result_type}> {{\n" + "\n".join(lines)
        + f"\n  func.return %r : tensor<{result_type}>\n}}"
    )  # fmt: skip
    module = parse(text)
    ref = evaluate(module, [])[0]
    fold(module)
    assert names(module)[op_text.split()[0]] == 0, "not folded"
    got = evaluate(module, [])[0]
    err = rel_err(got, ref)
    assert err <= (TOL if ref.dtype.kind == "f" else 0.0), f"{name}: {err} (seed {seed})\n{text}"


def _one_op(op_text: str, operands: Sequence[tuple[str, str]], result_type: str) -> str:
    """@main returning `op_text` applied to constants %a, %b, ... given as (dense, type)."""
    lines = [
        f"  %{'abc'[i]} = nn_tensor.constant {value} : tensor<{t}>"
        for i, (value, t) in enumerate(operands)
    ]
    if len(operands) == 1:
        sig = f"tensor<{operands[0][1]}> -> tensor<{result_type}>"
    else:
        sig = "(" + ", ".join(f"tensor<{t}>" for _, t in operands) + f") -> tensor<{result_type}>"
    lines.append(f"  %r = {op_text} : {sig}")
    return (
        f"func.func @main() -> tensor<{result_type}> {{\n" + "\n".join(lines)
        + f"\n  func.return %r : tensor<{result_type}>\n}}"
    )  # fmt: skip


def test_folding_has_no_semantics_of_its_own():
    """One owner: the fold pass evaluates through the reference interpreter's rules."""
    assert nn_tensor_fold.eval_op is nn_tensor_eval.eval_op
    assert not hasattr(nn_tensor_fold, "_gather_nd") and not hasattr(nn_tensor_fold, "_erf")


def test_folding_rounds_float64_once_to_the_result_type():
    """Folded f32 values are the float64 results rounded once: what IEEE f32 kernels give
    for +, -, *, /, sqrt (correctly rounded), and the closest f32 for exp and sums."""
    a = np.array([[0.1, -2.5, 3.0], [1e-3, 7.25, -0.3]], np.float32)
    b = np.array([[3.0, 7.0, -0.7], [11.0, 0.9, 13.0]], np.float32)

    def dense(x: np.ndarray) -> str:
        return "dense<" + np.array2string(x, separator=", ", floatmode="unique") + ">"

    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    cases = [
        ("nn_tensor.div %a, %b", [a, b], "2x3xf32", a64 / b64),
        ("nn_tensor.exp %a", [a], "2x3xf32", np.exp(a64)),
        ("nn_tensor.reduce_sum %a {axes = array<i64: 1>}", [a], "2x1xf32",
         a64.sum(axis=1, keepdims=True)),
    ]  # fmt: skip
    for op_text, values, result_type, want in cases:
        module = fold(parse(_one_op(op_text, [(dense(v), "2x3xf32") for v in values], result_type)))
        assert names(module)[op_text.split()[0]] == 0
        (got,) = reference_evaluate(module, [], {}, dtype=np.float32)
        assert got.dtype == np.float32
        assert np.array_equal(got, want.astype(np.float32)), op_text
    # an f32 division is correctly rounded: the same bits as numpy's own float32 division
    assert np.array_equal((a64 / b64).astype(np.float32), a / b)


# Ops onnxruntime refuses at run time (and whose kernels trap or give an unspecified
# value): the fold used to give a value (0 for x / 0, a wrapped index for gathers).
REFUSED = [
    ("div_by_zero", "nn_tensor.div %a, %b",
     [("dense<[7, -7, 6]>", "3xi64"), ("dense<[2, 0, 3]>", "3xi64")], "3xi64", ZeroDivisionError),
    ("gather_below_minus_dim", "nn_tensor.gather %a, %b {axis = 0 : i64}",
     [("dense<[1.0, 2.0, 3.0]>", "3xf32"), ("dense<[-4]>", "1xi64")], "1xf32", IndexError),
    ("gather_nd_past_dim", "nn_tensor.gather_nd %a, %b {batch_dims = 0 : i64}",
     [("dense<[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]>", "2x3xf32"), ("dense<[[0, 3]]>", "1x2xi64")],
     "1xf32", IndexError),
    ("gather_nd_below_minus_dim", "nn_tensor.gather_nd %a, %b {batch_dims = 0 : i64}",
     [("dense<[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]>", "2x3xf32"), ("dense<[[0, -4]]>", "1x2xi64")],
     "1xf32", IndexError),
]  # fmt: skip


@pytest.mark.parametrize("case", REFUSED, ids=[c[0] for c in REFUSED])
def test_negative_undefined_results_are_not_folded(case):
    _, op_text, operands, result_type, error = case
    module = fold(parse(_one_op(op_text, operands, result_type)))
    assert names(module)[op_text.split()[0]] == 1
    with pytest.raises(error):
        evaluate(module, [])


def test_folding_gives_no_numpy_warnings():
    text = _one_op(
        "nn_tensor.sigmoid %a", [("dense<[-1000.0, 0.0, 1000.0, 0x7F800000]>", "4xf32")], "4xf32"
    )
    big = _one_op(  # float64 1e60 rounds to f32 inf, as the f32 product does
        "nn_tensor.mul %a, %b", [("dense<1.0e30>", "2xf32"), ("dense<[1.0e30, -1.0e30]>", "2xf32")],
        "2xf32",
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        module = fold(parse(text))
        assert names(module)["nn_tensor.sigmoid"] == 0
        (got,) = evaluate(module, [])
        assert got.tolist() == [0.0, 0.5, 1.0, 1.0]
        module = fold(parse(big))
        assert names(module)["nn_tensor.mul"] == 0
        assert evaluate(module, [])[0].tolist() == [np.inf, -np.inf]


def test_neg_of_i1_folds_to_itself():
    """i1 arithmetic is two's complement in one bit: -true is true (the fold pass's old
    rule; the interpreter raised a TypeError)."""
    module = fold(parse(_one_op("nn_tensor.neg %a", [("dense<[true, false]>", "2xi1")], "2xi1")))
    assert names(module)["nn_tensor.neg"] == 0
    assert evaluate(module, [])[0].tolist() == [True, False]


def test_negative_large_splat_operand_not_materialised():
    """max_elements bounds operands too: a splat constant is not expanded past it."""
    text = _one_op(
        "nn_tensor.reduce_sum %a {axes = array<i64: 0>, keepdims = 0 : i64}",
        [("dense<1.5>", "8192xf32")], "f32",
    )  # fmt: skip
    assert names(fold(parse(text)))["nn_tensor.reduce_sum"] == 1
    module = fold(parse(text), max_elements=8192)
    assert names(module)["nn_tensor.reduce_sum"] == 0
    assert evaluate(module, [])[0].tolist() == 12288.0


# ------------------------------------------------------------------ fusion, hand-built

ATTENTION = """
func.func @main(%x: tensor<1x5x8xf32>, %mask: tensor<1x1x1x5xf32>, %wq: tensor<8x8xf32>, %wk: tensor<8x8xf32>, %wv: tensor<8x8xf32>, %g: tensor<8xf32>, %bb: tensor<8xf32>) -> tensor<1x5x8xf32> {
  %q = nn_tensor.matmul %x, %wq : (tensor<1x5x8xf32>, tensor<8x8xf32>) -> tensor<1x5x8xf32>
  %k = nn_tensor.matmul %x, %wk : (tensor<1x5x8xf32>, tensor<8x8xf32>) -> tensor<1x5x8xf32>
  %v = nn_tensor.matmul %x, %wv : (tensor<1x5x8xf32>, tensor<8x8xf32>) -> tensor<1x5x8xf32>
  %q4 = nn_tensor.reshape %q : tensor<1x5x8xf32> -> tensor<1x5x2x4xf32>
  %k4 = nn_tensor.reshape %k : tensor<1x5x8xf32> -> tensor<1x5x2x4xf32>
  %v4 = nn_tensor.reshape %v : tensor<1x5x8xf32> -> tensor<1x5x2x4xf32>
  %qt = nn_tensor.transpose %q4 {perm = array<i64: 0, 2, 1, 3>} : tensor<1x5x2x4xf32> -> tensor<1x2x5x4xf32>
  %kt = nn_tensor.transpose %k4 {perm = array<i64: 0, 2, 1, 3>} : tensor<1x5x2x4xf32> -> tensor<1x2x5x4xf32>
  %vt = nn_tensor.transpose %v4 {perm = array<i64: 0, 2, 1, 3>} : tensor<1x5x2x4xf32> -> tensor<1x2x5x4xf32>
  %ktt = nn_tensor.transpose %kt {perm = array<i64: 0, 1, 3, 2>} : tensor<1x2x5x4xf32> -> tensor<1x2x4x5xf32>
  %s = nn_tensor.matmul %qt, %ktt : (tensor<1x2x5x4xf32>, tensor<1x2x4x5xf32>) -> tensor<1x2x5x5xf32>
  %c = nn_tensor.constant dense<0.5> : tensor<f32>
  %ss = nn_tensor.div %s, %c : (tensor<1x2x5x5xf32>, tensor<f32>) -> tensor<1x2x5x5xf32>
  %sm = nn_tensor.add %ss, %mask : (tensor<1x2x5x5xf32>, tensor<1x1x1x5xf32>) -> tensor<1x2x5x5xf32>
  %p = nn_tensor.softmax %sm {axis = 3 : i64} : tensor<1x2x5x5xf32> -> tensor<1x2x5x5xf32>
  %o = nn_tensor.matmul %p, %vt : (tensor<1x2x5x5xf32>, tensor<1x2x5x4xf32>) -> tensor<1x2x5x4xf32>
  %ot = nn_tensor.transpose %o {perm = array<i64: 0, 2, 1, 3>} : tensor<1x2x5x4xf32> -> tensor<1x5x2x4xf32>
  %o3 = nn_tensor.reshape %ot : tensor<1x5x2x4xf32> -> tensor<1x5x8xf32>
  %res = nn_tensor.add %o3, %x : (tensor<1x5x8xf32>, tensor<1x5x8xf32>) -> tensor<1x5x8xf32>
  %ln = nn_tensor.layer_norm %res, %g, %bb {axis = 2 : i64, epsilon = 1.0e-5 : f32} : (tensor<1x5x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<1x5x8xf32>
  func.return %ln : tensor<1x5x8xf32>
}
"""


def test_attention_block_fused():
    module = check_preserved(parse(ATTENTION), fold_and_fuse)
    kinds = Counter(op.kind.data for op in module.walk() if isinstance(op, nt.FusedOp))
    # the two K transposes compose into [0, 2, 3, 1]: a transpose kernel of its own
    assert kinds == {"matmul": 5, "transpose": 4, "softmax": 1, "layer_norm": 1}
    scores = next(
        op for op in module.walk()
        if isinstance(op, nt.FusedOp) and any(isinstance(o, nt.DivOp) for o in op.body.block.ops)
    )  # fmt: skip
    assert scores.kind.data == "matmul"  # scale and mask add are the scores' epilogue
    ln = next(op for op in module.walk() if isinstance(op, nt.FusedOp) and op.kind.data == "layer_norm")
    assert [o.name for o in ln.body.block.ops] == [
        "nn_tensor.add", "nn_tensor.layer_norm", "nn_tensor.yield",
    ]  # fmt: skip


def test_softmax_reduce_conv_roots():
    text = """
    func.func @main(%x: tensor<1x2x6x6xf32>, %w: tensor<3x2x3x3xf32>, %b: tensor<3xf32>, %m: tensor<4xf32>) -> (tensor<1x3x4x4xf32>, tensor<1x3x4x1xf32>) {
      %c = nn_tensor.conv %x, %w, %b {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>} : (tensor<1x2x6x6xf32>, tensor<3x2x3x3xf32>, tensor<3xf32>) -> tensor<1x3x4x4xf32>
      %r = nn_tensor.relu %c : tensor<1x3x4x4xf32> -> tensor<1x3x4x4xf32>
      %k = nn_tensor.constant dense<0.25> : tensor<f32>
      %s = nn_tensor.mul %r, %k : (tensor<1x3x4x4xf32>, tensor<f32>) -> tensor<1x3x4x4xf32>
      %sm = nn_tensor.add %s, %m : (tensor<1x3x4x4xf32>, tensor<4xf32>) -> tensor<1x3x4x4xf32>
      %p = nn_tensor.softmax %sm {axis = 3 : i64} : tensor<1x3x4x4xf32> -> tensor<1x3x4x4xf32>
      %e = nn_tensor.exp %c : tensor<1x3x4x4xf32> -> tensor<1x3x4x4xf32>
      %mx = nn_tensor.reduce_max %e {axes = array<i64: 3>} : tensor<1x3x4x4xf32> -> tensor<1x3x4x1xf32>
      %l = nn_tensor.log %mx : tensor<1x3x4x1xf32> -> tensor<1x3x4x1xf32>
      func.return %p, %l : tensor<1x3x4x4xf32>, tensor<1x3x4x1xf32>
    }
    """
    module = check_preserved(parse(text), fold_and_fuse)
    bodies = {
        op.kind.data: [o.name.split(".")[1] for o in op.body.block.ops][:-1]
        for op in module.walk()
        if isinstance(op, nt.FusedOp)
    }
    # the conv result is read twice: no epilogue; relu/scale/mask are the softmax prologue
    assert bodies == {
        "conv": ["conv"],
        "softmax": ["constant", "relu", "mul", "add", "softmax"],
        "reduce": ["exp", "reduce_max", "log"],
    }


# ------------------------------------------------------------------------ random DAGs

N = 5
_UNARY = ["tanh", "neg", "relu", "sigmoid", "abs", "gelu", "erf"]
_BINARY = ["add", "sub", "mul", "max", "min"]


def _random_graph(rng: np.random.Generator) -> str:
    """A random DAG of nn_tensor ops over 5x5 tensors (plus 5x1 / 5-vectors / scalars)."""
    lines: list[str] = []
    pool: dict[str, list[str]] = {"5x5": ["%x", "%y"], "5x1": ["%z"], "5": ["%v"]}
    counter = iter(range(10_000))

    def new(shape: str, text: str) -> str:
        name = f"%t{next(counter)}"
        lines.append(f"  {name} = {text}")
        pool.setdefault(shape, []).append(name)
        return name

    def pick(shape: str) -> str:
        vals = pool[shape]
        # prefer recent values, so chains form, but reuse old ones (shared values)
        i = len(vals) - 1 - min(int(rng.exponential(2.0)), len(vals) - 1)
        return vals[i]

    T = "tensor<5x5xf32>"
    for _ in range(int(rng.integers(8, 22))):
        kind = rng.choice(
            ["unary", "binary", "bcast", "scalar", "matmul", "transpose", "softmax",
             "reduce", "layer_norm", "reshape", "const_mul"],
            p=[0.17, 0.2, 0.08, 0.08, 0.12, 0.07, 0.06, 0.06, 0.05, 0.06, 0.05],
        )  # fmt: skip
        a = pick("5x5")
        if kind == "unary":
            op = rng.choice(_UNARY)
            new("5x5", f"nn_tensor.{op} {a} : {T} -> {T}")
        elif kind == "binary":
            op = rng.choice(_BINARY)
            new("5x5", f"nn_tensor.{op} {a}, {pick('5x5')} : ({T}, {T}) -> {T}")
        elif kind == "bcast":
            small = rng.choice(["5x1", "5"])
            b = pick(small)
            st = f"tensor<{small}xf32>"
            new("5x5", f"nn_tensor.add {b}, {a} : ({st}, {T}) -> {T}")
        elif kind == "scalar":
            c = new("s", f"nn_tensor.constant dense<{rng.uniform(0.5, 2.0):.3f}> : tensor<f32>")
            new("5x5", f"nn_tensor.mul {a}, {c} : ({T}, tensor<f32>) -> {T}")
        elif kind == "const_mul":
            c = new("1", "nn_tensor.constant dense<1.0> : tensor<1xf32>")
            new("5x5", f"nn_tensor.mul {c}, {a} : (tensor<1xf32>, {T}) -> {T}")
        elif kind == "matmul":
            b = pick("5x5")
            if rng.random() < 0.4:
                b = new("5x5", f"nn_tensor.transpose {b} {{perm = array<i64: 1, 0>}} : {T} -> {T}")
            new("5x5", f"nn_tensor.matmul {a}, {b} : ({T}, {T}) -> {T}")
        elif kind == "transpose":
            new("5x5", f"nn_tensor.transpose {a} {{perm = array<i64: 1, 0>}} : {T} -> {T}")
        elif kind == "softmax":
            new("5x5", f"nn_tensor.softmax {a} {{axis = 1 : i64}} : {T} -> {T}")
        elif kind == "reduce":
            op = rng.choice(["reduce_mean", "reduce_sum", "reduce_max"])
            new("5x1", f"nn_tensor.{op} {a} {{axes = array<i64: 1>}} : {T} -> tensor<5x1xf32>")
        elif kind == "layer_norm":
            new("5x5", f"nn_tensor.layer_norm {a}, %v {{axis = 1 : i64, epsilon = 1.0e-5 : f32}}"
                       f" : ({T}, tensor<5xf32>) -> {T}")  # fmt: skip
        elif kind == "reshape":
            flat = new("25", f"nn_tensor.reshape {a} : {T} -> tensor<25xf32>")
            if rng.random() < 0.5:
                flat = new("25", f"nn_tensor.tanh {flat} : tensor<25xf32> -> tensor<25xf32>")
            new("5x5", f"nn_tensor.reshape {flat} : tensor<25xf32> -> {T}")
    outs = sorted({pool["5x5"][-1], pick("5x5"), pick("5x1")})
    types = ", ".join("tensor<5x1xf32>" if o in pool["5x1"] else T for o in outs)
    return (
        "func.func @main(%x: tensor<5x5xf32>, %y: tensor<5x5xf32>, %z: tensor<5x1xf32>, "
        f"%v: tensor<5xf32>) -> ({types}) {{\n" + "\n".join(lines)
        + f"\n  func.return {', '.join(outs)} : {types}\n}}"
    )  # fmt: skip


def test_random_graphs_fold_fuse_preserve_results():
    seed = secrets.randbits(32)
    rng = np.random.default_rng(seed)
    kinds: Counter[str] = Counter()
    for i in range(40):
        text = _random_graph(rng)
        try:
            module = check_preserved(parse(text), fold_and_fuse)
        except AssertionError as e:
            raise AssertionError(f"graph {i} (seed {seed}):\n{text}\n{e}") from None
        kinds.update(op.kind.data for op in module.walk() if isinstance(op, nt.FusedOp))
    # the generator exercises every kind it can produce
    assert set(kinds) >= {"matmul", "softmax", "reduce", "layer_norm", "elementwise"}, kinds


# ------------------------------------------------------------------- the tiny models


def _import():
    try:
        from nnjit.frontend import import_onnx
    except ImportError:
        pytest.skip("nnjit.frontend.import_onnx is not available yet")
    return import_onnx


def _model_feeds(imported, rng: np.random.Generator) -> list[np.ndarray]:
    main = _main(imported.module)
    feeds = []
    for arg, info in zip(main.body.block.args, imported.inputs):
        if "mask" in info.name:
            keep = rng.integers(1, info.shape[-1] + 1)
            a = (np.arange(info.shape[-1]) < keep).astype(info.dtype)
            feeds.append(np.broadcast_to(a, info.shape).copy())
        elif info.dtype.kind == "i" and "position" in info.name and not any(
            isinstance(u.operation, nt.GatherOp) for u in arg.uses
        ):  # positions of a rotary embedding (Llama), not an index: from anywhere below 1024
            pos = rng.integers(0, 1024) + np.arange(info.shape[-1])
            feeds.append(np.broadcast_to(pos, info.shape).astype(info.dtype))
        elif info.dtype.kind == "i":
            vocab = next(
                nt.shape_of(u.operation.data)[u.operation.axis.value.data]
                for u in arg.uses
                if isinstance(u.operation, nt.GatherOp) and u.operation.indices is arg
            )
            feeds.append(rng.integers(0, vocab, size=info.shape).astype(info.dtype))
        else:
            feeds.append(rng.standard_normal(info.shape).astype(info.dtype))
    return feeds


def _load_model(path: Path):
    import_onnx = _import()
    shapes = {"input_ids": (1, 11), "attention_mask": (1, 11)} if "dynamic" in path.name else None
    if "_past" in path.name:  # decoders with a KV cache: 3 new tokens after a past of 5
        shapes = decoder_shapes(path)
    return import_onnx(path, shapes=shapes)


@pytest.mark.skipif(not MODELS, reason="tests/models/ has no models yet")
@pytest.mark.parametrize("path", [decoder_param(p) for p in MODELS])
def test_model_fold_fuse(path: Path):
    imported = _load_model(path)
    module = imported.module
    erf_before = names(module)["nn_tensor.erf"]
    rng = np.random.default_rng(secrets.randbits(32))
    check_preserved(module, fold_and_fuse, imported.weights, _model_feeds(imported, rng))
    n = names(module)
    gelus = n["nn_tensor.gelu"]
    if "gpt2" in path.name:
        # the tanh GELU is not the exact one: it stays a chain, in the MLP gemm's epilogue
        tanhs = [op for op in module.walk() if isinstance(op, nt.TanhOp)]
        assert tanhs and gelus == 0
        for t in tanhs:
            parent = t.parent_op()
            assert isinstance(parent, nt.FusedOp) and parent.kind.data == "matmul"
            assert any(isinstance(o, nt.GemmOp) for o in parent.body.block.ops)
    elif "llama" in path.name:
        # a SiLU MLP and RMSNorm (no GELU, no layer norm); the rotary embedding's cos and sin
        # of positions times frequencies run in kernels
        assert erf_before == 0 and gelus == 0
        trig = [op for op in module.walk() if isinstance(op, nt.SinOp | nt.CosOp)]
        assert len(trig) == 2 and all(isinstance(t.parent_op(), nt.FusedOp) for t in trig)
    else:
        assert erf_before > 0 and gelus == erf_before, "every exact GELU recognised"
        assert n["nn_tensor.erf"] == 0
    assert n["nn_tensor.split"] == 0
    # attention and MLP matmuls all have a kernel; layer norms are kernels of their own
    kinds = Counter(op.kind.data for op in module.walk() if isinstance(op, nt.FusedOp))
    assert kinds["matmul"] >= 8 and kinds["softmax"] >= 2
    assert kinds["layer_norm"] >= 2 or "llama" in path.name


# ------------------------------------------------- torch legacy export at opset < 17


def _torch_export(module, args) -> bytes:
    torch = pytest.importorskip("torch")
    import warnings

    f = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, f, opset_version=16, dynamo=False)
    return f.getvalue()


def _bert_and_gpt2_blocks():
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class BertBlock(nn.Module):
        """Self-attention + post-LN + exact-GELU MLP + post-LN (BERT's layer)."""

        def __init__(self, d=12, heads=2):
            super().__init__()
            self.h, self.dh = heads, d // heads
            self.qkv = nn.ModuleList(nn.Linear(d, d) for _ in range(3))
            self.o, self.ln1 = nn.Linear(d, d), nn.LayerNorm(d, eps=1e-12)
            self.up, self.down = nn.Linear(d, 2 * d), nn.Linear(2 * d, d)
            self.ln2, self.act = nn.LayerNorm(d, eps=1e-12), nn.GELU()

        def forward(self, x):
            b, s, d = x.shape
            q, k, v = (m(x).view(b, s, self.h, self.dh).transpose(1, 2) for m in self.qkv)
            a = torch.softmax(q @ k.transpose(-1, -2) / self.dh**0.5, dim=-1) @ v
            x = self.ln1(x + self.o(a.transpose(1, 2).reshape(b, s, d)))
            return self.ln2(x + self.down(self.act(self.up(x))))

    class Gpt2Block(nn.Module):
        """Pre-LN attention and MLP with the tanh GELU (GPT-2's block)."""

        def __init__(self, d=12):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.attn, self.up = nn.Linear(d, d), nn.Linear(d, 3 * d)
            self.down = nn.Linear(3 * d, d)
            self.act = nn.GELU(approximate="tanh")

        def forward(self, x):
            h = self.ln1(x)
            a = torch.softmax(h @ h.transpose(-1, -2), dim=-1) @ self.attn(h)
            x = x + a
            return x + self.down(self.act(self.up(self.ln2(x))))

    return {"bert": (BertBlock(), 2, 1), "gpt2": (Gpt2Block(), 2, 0)}


@pytest.mark.parametrize("block", ["bert", "gpt2"])
def test_torch_opset16_layer_norm_and_gelu_recognised(block: str):
    torch = pytest.importorskip("torch")
    import_onnx = _import()
    torch.manual_seed(secrets.randbits(31))
    model, n_ln, n_gelu = _bert_and_gpt2_blocks()[block]
    onnx_bytes = _torch_export(model.eval(), (torch.randn(1, 7, 12),))
    imported = import_onnx(onnx_bytes)
    module = imported.module
    assert names(module)["nn_tensor.reduce_mean"] == 2 * n_ln, "the export decomposes LayerNorm"
    rng = np.random.default_rng(secrets.randbits(32))
    check_preserved(module, fold_and_fuse, imported.weights, _model_feeds(imported, rng))
    n = names(module)
    assert n["nn_tensor.layer_norm"] == n_ln
    assert n["nn_tensor.reduce_mean"] == 0 and n["nn_tensor.sqrt"] == 0
    assert n["nn_tensor.gelu"] == n_gelu and n["nn_tensor.erf"] == 0
    kinds = Counter(op.kind.data for op in module.walk() if isinstance(op, nt.FusedOp))
    assert kinds["layer_norm"] == n_ln


def test_split_of_constants_folds():
    text = """
    func.func @main() -> (tensor<2x1xi64>, tensor<2x2xi64>) {
      %a = nn_tensor.constant dense<[[1, 2, 3], [4, 5, 6]]> : tensor<2x3xi64>
      %s:2 = nn_tensor.split %a {axis = 1 : i64} : tensor<2x3xi64> -> tensor<2x1xi64>, tensor<2x2xi64>
      func.return %s#0, %s#1 : tensor<2x1xi64>, tensor<2x2xi64>
    }
    """
    module = fold(parse(text))
    assert set(names(module)) == {
        "builtin.module", "func.func", "nn_tensor.constant", "func.return",
    }  # fmt: skip
    got = evaluate(module, [])
    assert got[0].tolist() == [[1], [4]] and got[1].tolist() == [[2, 3], [5, 6]]


def test_every_foldable_op_has_a_constant_folding_case():
    """Every nn_tensor op but conv (not folded) and the structural ones is tested above."""
    covered = {c[1].split()[0] for c in CONST_CASES} | {"nn_tensor.split"}
    structural = {"nn_tensor.conv", "nn_tensor.fused", "nn_tensor.yield", "nn_tensor.weight",
                  "nn_tensor.constant"}  # fmt: skip
    missing = {c.name for c in nt.NNTensor.operations} - covered - structural
    assert not missing, f"no constant-folding case for {sorted(missing)}"
