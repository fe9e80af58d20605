"""The expression language: what parses, what is refused (and why), how it evaluates."""
import builtins

import numpy as np
import pytest

from graphspec.autodiff import Variable, backward, recording
from graphspec.errors import GraphspecError
from graphspec.expr import (FUNCTIONS, MAX_DEPTH, MAX_LENGTH, Expression, ExprError,
                            parse_expression)


def run(text, names=("x",), rng=None, **bindings):
    bindings = bindings or {"x": Variable(np.arange(20, dtype=np.float32).reshape(2, 10))}
    return parse_expression(text, set(names)).evaluate(bindings, rng=rng)


# -- hostile input ------------------------------------------------------------------------
MARKER = "MARKER_FILE"

HOSTILE = {
    "subclasses_escape": ("().__class__.__bases__[0].__subclasses__()",
                          "attribute access (.__class__) is not allowed"),
    "import_system": ("__import__('os').system('touch {marker}')",
                      "function '__import__' is not allowed"),
    "comprehension": ("[c for c in x]", "comprehensions are not allowed"),
    "generator": ("sum(c for c in x)", "comprehensions (generator expressions)"),
    "lambda": ("lambda: 1", "lambda functions are not allowed"),
    "attribute_data": ("x.data", "attribute access (.data) is not allowed"),
    "open": ("open('{marker}', 'w')", "function 'open' is not allowed"),
    "eval": ("eval('1')", "function 'eval' is not allowed"),
    "exec": ("exec('open(\"{marker}\", \"w\")')", "function 'exec' is not allowed"),
    "getattr": ("getattr(x, 'a')", "function 'getattr' is not allowed"),
    "fstring": ("f'{{x}}'", "strings are not allowed"),
    "string_bomb": ("'a'*10**9", "strings are not allowed"),
    "bytes": ("b'a'", "strings are not allowed"),
    "huge_power": ("10**10**10", "is too large"),
    "walrus": ("(x:=1)", "assignment expressions (:=) are not allowed"),
    "too_long": ("x+" * 5000 + "x", "expression is too long"),
    "deep_brackets": ("(" * 1000 + "x" + ")" * 1000, "expression is"),
    "deep_brackets_short": ("(" * 300 + "x" + ")" * 300, "nested too deeply"),
    "deep_calls": ("abs(" * 60 + "x" + ")" * 60, "nested too deeply"),
    "deep_unary": ("-" * 1500 + "x", "nested too deeply"),
    "kwargs_unpacking": ("abs(**{{}})", "keyword unpacking (**kwargs) is not allowed"),
    "star_args": ("abs(*x)", "star-unpacking"),
    "unknown_call": ("system('touch {marker}')", "function 'system' is not allowed"),
    "globals": ("globals()", "function 'globals' is not allowed"),
    "builtins_name": ("__builtins__", "name '__builtins__' is not allowed here"),
    "dunder_import_name": ("__import__", "name '__import__' is not allowed here"),
    "call_a_bound_name": ("x(1)", "'x' is not a function"),
    "call_result_of_call": ("abs(x)(1)", "only functions from the table can be called"),
    "subscript_call": ("x[0](1)", "only functions from the table can be called"),
    "dict_literal": ("{{'a': x}}", "dict literals are not allowed"),
    "set_literal": ("{{x}}", "set literals are not allowed"),
    "comparison": ("x < 1", "comparisons"),
    "conditional": ("x if 1 else x", "conditional expressions"),
    "boolean_ops": ("x or x", "'and' / 'or' are not allowed"),
    "bit_shift": ("1 << 10**6", "operator '<<' is not allowed"),
    "invert": ("~x", "operator '~' is not allowed"),
    "not": ("not x", "operator 'not' is not allowed"),
    "complex": ("x * 1j", "complex numbers are not allowed"),
    "await": ("await x", "'await' is not allowed"),
    "yield": ("(yield x)", "'yield' is not allowed"),
    "null_byte": ("x\x00", "syntax error"),
    "statement": ("import os", "syntax error"),
    "assignment": ("x = 1", "syntax error"),
    "semicolon": ("x; open('{marker}', 'w')", "syntax error"),
    "huge_literal": ("x * 1" + "0" * 200, "integer literal is too large"),
    "tuple_repetition": ("(1,) * 10**9", "cannot combine"),
    "huge_random": ("random_normal((10**6, 10**6))", "elements; the limit is"),
    "huge_one_hot": ("one_hot(x, 10**9)", "num_classes must be in"),
    "huge_broadcast": ("reshape(x, (20, 1, 1, 1)) * reshape(x, (1, 20, 1, 1)) * "
                       "reshape(x, (1, 1, 20, 1)) * random_normal((1, 1, 1, 10**6))",
                       "the limit is"),
    "bare_function": ("abs", "function 'abs' must be called"),
    "unknown_keyword": ("sum(x, axes=1)", "sum() has no argument 'axes'"),
    "none_in_arithmetic": ("x + None", "None is only allowed"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_expression_is_refused(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / MARKER
    text, message = HOSTILE[case]
    text = text.replace("{marker}", str(marker)).replace("{{", "{").replace("}}", "}")
    with pytest.raises(ExprError) as info:
        run(text, rng=np.random.default_rng(0))
    assert message in info.value.message, info.value.message
    assert isinstance(info.value, GraphspecError)
    assert 0 <= info.value.col <= max(len(text), MAX_LENGTH)
    assert not marker.exists()
    assert not list(tmp_path.iterdir())


def test_huge_slice_bounds_are_fine_because_slicing_clamps():
    out = run("x[0:10**12, -10**12:10**12]")
    np.testing.assert_array_equal(out.data, np.arange(20).reshape(2, 10))


def test_nothing_is_evaluated_with_eval_or_exec(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("eval/exec must never be called")
    monkeypatch.setattr(builtins, "eval", refuse)
    monkeypatch.setattr(builtins, "exec", refuse)
    out = run("sum(softmax(x[:, :5] * pi) + square(x[:, 5:]), axis=-1, keepdims=True)")
    assert out.shape == (2, 1)


def test_the_package_source_calls_no_eval_exec_or_compile():
    import pathlib
    import re

    import graphspec.expr as package
    for path in pathlib.Path(package.__file__).parent.glob("*.py"):
        source = path.read_text()
        assert not re.search(r"(?<![\w.])(eval|exec|compile|__import__|getattr)\(", source), path


def test_error_columns_point_at_the_offending_construct():
    cases = {"x + os": 4, "x.data": 1, "abs(x) + x.__class__": 10, "x[:, 1] + 'a'": 10,
             "sum(x, axes=1)": 7, "  x + y": 6, "(x +\n 'a')": 6, "x + )": 4,
             "abs(x,": 3}
    for text, col in cases.items():
        with pytest.raises(ExprError) as info:
            parse_expression(text, {"x"})
        assert info.value.col == col, (text, info.value.col, info.value.message)


def test_first_error_in_the_text_is_reported():
    with pytest.raises(ExprError, match=r"function '__import__' is not allowed"):
        parse_expression("__import__('os').system('ls')", {"x"})
    with pytest.raises(ExprError, match=r"\.__class__"):
        parse_expression("().__class__.__bases__[0].__subclasses__()", {"x"})


def test_name_errors_list_what_is_allowed_and_suggest():
    with pytest.raises(ExprError) as info:
        parse_expression("mena(y_pred)", {"y_true", "y_pred"})
    assert "did you mean 'mean'?" in info.value.message
    with pytest.raises(ExprError) as info:
        parse_expression("y_tru - y_pred", {"y_true", "y_pred"})
    message = info.value.message
    assert "name 'y_tru' is not allowed here (did you mean 'y_true'?)" in message
    assert "allowed: y_pred, y_true, batch, e, pi" in message and "abs" in message


def test_bound_names_cannot_shadow_functions_or_constants():
    for name in ("sum", "pi", "e", "abs"):
        with pytest.raises(ExprError, match="cannot be bound"):
            parse_expression("x", {"x", name})


def test_call_arguments_are_checked_at_parse_time():
    with pytest.raises(ExprError, match=r"clip\(\) is missing argument\(s\) min_value, max_value"):
        parse_expression("clip(x)", {"x"})
    with pytest.raises(ExprError, match=r"takes at most 3 argument"):
        parse_expression("sum(x, 1, True, 4)", {"x"})
    with pytest.raises(ExprError, match=r"got argument 'axis' twice"):
        parse_expression("sum(x, 1, axis=1)", {"x"})


def test_limits_are_what_the_docs_say():
    parse_expression("abs(" * (MAX_DEPTH - 3) + "x" + ")" * (MAX_DEPTH - 3), {"x"})
    parse_expression("x" + " " * (MAX_LENGTH - 1), {"x"})
    with pytest.raises(ExprError, match="too long"):
        parse_expression("x" + " " * MAX_LENGTH, {"x"})
    with pytest.raises(ExprError, match="too large"):
        parse_expression("(" + ", ".join(["x"] * 600) + ")", {"x"})


# -- evaluation ---------------------------------------------------------------------------
def test_expression_records_names_and_functions():
    expr = parse_expression("mean(abs(x[0] - x[1]), axis=-1) * batch + pi", {"x", "unused"})
    assert isinstance(expr, Expression)
    assert expr.names == {"x", "batch"}
    assert expr.functions == {"mean", "abs"}
    assert not expr.uses_random and parse_expression("random_normal((2,))", set()).uses_random


def test_numbers_and_constants_keep_the_tensor_dtype():
    for dtype in (np.float32, np.float64):
        x = Variable(np.ones((2, 3), dtype=dtype))
        c = np.array([1.0, 2.0, 3.0])  # float64 constant array
        out = parse_expression("x * 0.5 + pi - c * 2 + e ** 2 + [1, 2, 3]", {"x", "c"}
                               ).evaluate({"x": x, "c": c})
        assert out.dtype == dtype
        np.testing.assert_allclose(out.data[0], 0.5 + np.pi - np.array([2, 4, 6]) +
                                   np.e ** 2 + np.array([1, 2, 3]), rtol=1e-6)
        noise = parse_expression("random_normal((batch, 4))", {"x"}).evaluate(
            {"x": x}, rng=np.random.default_rng(0))
        assert noise.dtype == dtype and noise.shape == (2, 4)


def test_shape_arithmetic_with_unknown_dimensions():
    expr = parse_expression("(s[0], s[1] // 2, s[2] * 2) + s[3:]", {"s"})
    assert expr.evaluate({"s": (None, 10, None, 4, 5)}) == (None, 5, None, 4, 5)
    assert run("shape(x)[1] // 3 + shape(x)[0]") == 5
    assert run("int_shape(x)") == (2, 10)


def test_multi_input_list_indexing_and_errors():
    a, b = Variable(np.array([[1.0, 2.0]])), Variable(np.array([[3.0, 4.0]]))
    expr = parse_expression("concatenate(x[:2], axis=-1) * sum(x[-1])", {"x"})
    np.testing.assert_array_equal(expr.evaluate({"x": [a, b]}).data, [[7, 14, 21, 28]])
    with pytest.raises(ExprError, match=r"index 2 is out of range for a list of 2 tensors"):
        parse_expression("x[2]", {"x"}).evaluate({"x": [a, b]})
    with pytest.raises(ExprError, match=r"pick one with x\[0\]"):
        parse_expression("x * 2", {"x"}).evaluate({"x": [a, b]})
    with pytest.raises(ExprError, match=r"takes one integer index"):
        parse_expression("x[0, 1]", {"x"}).evaluate({"x": [a, b]})


def test_evaluation_errors_are_expr_errors_with_columns():
    cases = {
        "x[:, :3] + x[:, :4]": ("do not broadcast", 0),
        "sum(x, axis=2)": ("axis 2 is out of range for a tensor of rank 2", 0),
        "1 + squeeze(x, 1)": ("has size 10, not 1", 4),
        "x[:, 99]": ("cannot index a tensor of shape (2, 10) in x[:, 99]", 0),
        "x[1.5]": ("an index must be an integer", 2),
        "1 / 0": ("division by zero", 0),
        "x @ x": ("'@'", 0),
        "dot(x, x)": ("differ in size", 0),
        "reshape(x, (3, -1))": ("reshape()", 0),
        "permute_dimensions(x, (0, 0))": ("must list each of the 2 axes", 0),
        "random_normal((2, 3))": ("needs a random generator", 0),
        "batch_dot(x, x, axes=0)": ("cannot contract the batch axis", 0),
        "clip(x, 1, 0)": ("min_value 1.0 is larger than max_value 0.0", 0),
        "sum(x, keepdims=1)": ("keepdims must be True or False", 0),
        "gather(x, [0.5])": ("whole numbers", 0),
    }
    for text, (message, col) in cases.items():
        with pytest.raises(ExprError) as info:
            run(text)
        assert message in info.value.message, (text, info.value.message)
        assert info.value.col == col, (text, info.value.col)


def test_every_function_has_a_signature_and_doc():
    for name, spec in FUNCTIONS.items():
        assert spec.signature().startswith(name + "(") and spec.doc
    assert FUNCTIONS["sum"].signature() == "sum(x, axis=None, keepdims=False)"


def test_batch_comes_from_the_first_tensor_unless_bound():
    y = Variable(np.zeros((3, 2), dtype=np.float32))
    assert parse_expression("batch * 2", {"y"}).evaluate({"y": y}) == 6
    assert parse_expression("batch", {"y"}).evaluate({"y": y, "batch": 5}) == 5
    with pytest.raises(ExprError, match="'batch' is not known here"):
        parse_expression("batch", set()).evaluate({})


def test_expression_for_a_loss_is_differentiable():
    """How the trainer uses it: per-sample loss of y_true, y_pred."""
    expr = parse_expression("mean(abs(y_pred - y_true), axis=(1, 2, 3))", {"y_true", "y_pred"})
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.standard_normal((2, 3, 4, 2)), rng.standard_normal((2, 3, 4, 2))
    with recording():
        pred = Variable(y_pred, requires_grad=True)
        loss = expr.evaluate({"y_true": Variable(y_true), "y_pred": pred})
        assert loss.shape == (2,)
        np.testing.assert_allclose(loss.data, np.abs(y_pred - y_true).mean(axis=(1, 2, 3)))
        from graphspec import ops
        backward(ops.sum_(loss))
    np.testing.assert_allclose(pred.grad, np.sign(y_pred - y_true) / 24)


def test_one_hot_out_of_range_gives_zero_rows_without_n_squared_memory():
    out = run("one_hot(x, 1000)", x=Variable(np.array([1.0, -1.0, 1000.0])))
    assert out.shape == (3, 1000)
    assert out.data[0, 1] == 1 and out.data.sum() == 1


def test_advanced_indexing_and_new_axes():
    out = run("x[:, [0, 0, 3]]")
    np.testing.assert_array_equal(out.data, [[0, 0, 3], [10, 10, 13]])
    assert run("x[:, None, ..., None]").shape == (2, 1, 10, 1)
    assert run("x[..., -1]").shape == (2,)
