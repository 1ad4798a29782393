"""The Terraform expression evaluator, template renderer and type conversion."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from scaleorfail.tf.expr import HclError, Scope, Unknown, evaluate, render_template
from scaleorfail.tf.functions import PURE_FUNCTIONS
from scaleorfail.tf.instance import load_tfvars, root_instance
from scaleorfail.tf.template import parse_expression
from scaleorfail.tf.typeexpr import parse_type
from scaleorfail.tf.types import TypeSpec, convert

VARS = {"n": 3, "s": "abc", "m": {"b": 2, "a": 1}, "l": ["x", "y"], "nums": [4, 2, 9], "flag": True, "nothing": None}


def ev(source: str, **extra: Any) -> Any:
    scope = Scope({"var": VARS, "local": {}, **extra}, PURE_FUNCTIONS)
    return evaluate(parse_expression(source), scope)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("7 / 2", 3.5),
        ("-var.n", -3),
        ("var.n >= 1 && var.n <= 40", True),
        ("!var.flag || false", False),
        ('var.s == "abc" ? "yes" : "no"', "yes"),
        ('"${var.s}-${var.n}"', "abc-3"),
        ('"${var.n}"', 3),  # a lone interpolation keeps the type
        ('"a$${b}"', "a${b}"),
        ("var.m.a", 1),
        ('var.m["b"]', 2),
        ("var.l[1]", "y"),
        ("[for x in var.l : upper(x)]", ["X", "Y"]),
        ("[for k, v in var.m : k if v > 1]", ["b"]),
        ("{ for k, v in var.m : v => k }", {"1": "a", "2": "b"}),
        ('{ for s in ["a", "b", "a"] : s => s... }', {"a": ["a", "a"], "b": ["b"]}),
        ("{ a = 1, b = var.n }", {"a": 1, "b": 3}),
        ("merge({ a = 1 }, { b = 2 }, { a = 3 })", {"a": 3, "b": 2}),
        ("concat(var.l, [1])", ["x", "y", 1]),
        ('jsonencode({ b = [1, true, null], a = "x" })', '{"a":"x","b":[1,true,null]}'),
        ('lookup(var.m, "z", 9)', 9),
        ("length(var.l) + length(var.m)", 4),
        ("keys(var.m)", ["a", "b"]),
        ("values(var.m)", [1, 2]),
        ('contains(["a", "b"], "b")', True),
        ("tostring(0.15)", "0.15"),
        ("tostring(250)", "250"),
        ('format("%s=%03d %q", "a", 7, "q")', 'a=007 "q"'),
        ('can(regex("^[a-z]+$", var.s))', True),
        ('can(regex("^[0-9]+$", var.s))', False),
        ('try(var.m.zzz, "fallback")', "fallback"),
        ('coalesce(var.nothing, "", "z")', "z"),
        ("var.nothing == null", True),
        ("floor(2.7) == 2 && ceil(2.1) == 3", True),
        ('replace("a-b-c", "-", "_")', "a_b_c"),
        ('alltrue([for s in ["a", "b"] : contains(["a", "b", "c"], s)])', True),
        ("[for m in [{ n = 1 }, { n = 2 }] : m][*].n", [1, 2]),
        ('concat(["x"], [for a in ["y"] : "${a}:*"])', ["x", "y:*"]),
        ("max(1, 5, 3)", 5),
        ("max([1, 5, 3]...)", 5),  # a list expanded into the arguments
        ('format("%s-%s", var.l...)', "x-y"),  # after fixed arguments
        ("min(var.nums...)", 2),
        ('"%{ if var.flag }on%{ else }off%{ endif }"', "on"),
        ('"%{ for x in var.l }[${x}]%{ endfor }"', "[x][y]"),
    ],
)
def test_expressions_evaluate_like_terraform(source: str, expected: Any) -> None:
    assert ev(source) == expected


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("var.nope", "no attribute 'nope'"),
        ("max(var.s...)", "only a list can be expanded with ..."),
        ("var.l[5]", "out of range"),
        ("undefined_name", "unknown name"),
        ("nosuchfunction(1)", "not supported"),
        ('1 + "x"', "not a number"),
        ("var.s ? 1 : 2", "bool is required"),
        ('{ for s in ["a", "a"] : s => 1 }', "duplicate key"),
    ],
)
def test_evaluation_errors_say_what_is_wrong(source: str, message: str) -> None:
    with pytest.raises(HclError, match=message):
        ev(source)


def test_unknown_values_propagate_instead_of_failing() -> None:
    value = ev('"prefix-${later.id}"', later={"id": Unknown("id")})
    assert isinstance(value, Unknown)


def test_templates_with_directives_and_strip_markers() -> None:
    text = 'items: [\n%{ for i, x in list ~}\n  "${x}"%{ if i < length(list) - 1 },%{ endif }\n%{ endfor ~}\n]\n'
    scope = Scope({"list": ["a", "b", "c"]}, PURE_FUNCTIONS)
    # like Terraform, "~}" strips the rest of its own line (the newline included), not the next line's indentation
    assert render_template(text, scope) == 'items: [\n  "a",\n  "b",\n  "c"\n]\n'


def test_template_keeps_braces_inside_expression_strings() -> None:
    scope = Scope({"x": {"a": "}"}}, PURE_FUNCTIONS)
    assert render_template('v=${jsonencode(x)} w=${"}"} $${raw} %%{raw}', scope) == 'v={"a":"}"} w=} ${raw} %{raw}'


@pytest.mark.parametrize(
    "text",
    ["%{ if true }x", "%{ endif }", "${unclosed", "%{ while x }%{ endwhile }"],
)
def test_broken_templates_are_reported(text: str) -> None:
    with pytest.raises(HclError):
        render_template(text, Scope({}, PURE_FUNCTIONS))


def test_object_types_apply_optional_defaults_and_convert_values() -> None:
    scope = Scope({}, PURE_FUNCTIONS)
    spec = parse_type(
        parse_expression('object({ a = number, b = optional(string, "dflt"), c = optional(list(number)) })'), scope
    )
    assert convert({"a": "5"}, spec, "v") == {"a": 5, "b": "dflt", "c": None}
    assert convert({"a": 1.5, "b": 7, "extra": 1}, spec, "v") == {"a": 1.5, "b": "7", "c": None}
    with pytest.raises(HclError, match="attribute 'a' is required"):
        convert({}, spec, "v")
    assert convert(["b", "a", "b"], TypeSpec("set", element=TypeSpec("string")), "v") == ["b", "a"]
    with pytest.raises(HclError, match="a number is required"):
        convert(True, TypeSpec("number"), "v")


def test_tfvars_files_override_defaults(tmp_path: Path) -> None:
    from scaleorfail.tf.aws import AwsModel

    tfvars = tmp_path / "lab.tfvars"
    tfvars.write_text('default_max_concurrency = 10\nlambda_retry = { max_attempts = 0 }\ntags = { Team = "ml" }\n')
    values = load_tfvars(str(tfvars))
    terraform = Path(__file__).resolve().parent.parent / "terraform"
    root = root_instance(str(terraform), AwsModel(root_dir=str(terraform), build_archives=False), values)
    assert root.variables["default_max_concurrency"] == 10
    assert root.variables["lambda_retry"]["max_attempts"] == 0
    assert root.variables["lambda_retry"]["interval_seconds"] == 1  # optional() default kept
    assert root.scope.roots["local"]["tags"]["Team"] == "ml"


def test_unknown_variables_and_blocks_in_tfvars_are_refused(tmp_path: Path) -> None:
    from scaleorfail.tf.aws import AwsModel

    terraform = Path(__file__).resolve().parent.parent / "terraform"
    with pytest.raises(HclError, match="no variable named max_concurency"):
        root_instance(str(terraform), AwsModel(build_archives=False), {"max_concurency": 3})
    bad = tmp_path / "bad.tfvars"
    bad.write_text('resource "x" "y" {}\n')
    with pytest.raises(HclError, match="only name = value"):
        load_tfvars(str(bad))


# -- Terraform's numbers, encodings and the oracle's plumbing (no Terraform needed) -----------------------


@pytest.mark.parametrize(
    ("source", "text"),
    [
        # what Terraform 1.11 prints (terraform console), kept here so these run without it
        ("0.1 + 0.2", "0.3"),
        ("0.1 * 3", "0.3"),
        ("1 / 3", "0." + "3" * 154 + "5"),
        ("2e30", "2000000000000000000000000000000"),
        ("-5 % 3", "-2"),
        ("5.5 % 2", "1.5"),
        ("7 / 2", "3.5"),
        ("100 / 4", "25"),
    ],
)
def test_numbers_are_512_bit_binary_floats_printed_shortest(source: str, text: str) -> None:
    from scaleorfail.tf import numbers

    assert numbers.to_text(ev(source)) == text


def test_number_formatting_verbs_follow_go() -> None:
    from scaleorfail.tf import numbers

    third = numbers.divide(1, 3)
    assert numbers.format_verb(third, "f", 2) == "0.33"
    assert numbers.format_verb(numbers.parse("12345.678"), "e", None) == "1.234568e+04"
    assert numbers.format_verb(numbers.parse("0.000001234"), "g", None) == "1.234e-06"
    assert numbers.format_verb(1000000, "g", None) == "1e+06"
    assert numbers.format_verb(numbers.parse("0.006"), "f", 2) == "0.01"
    assert numbers.format_verb(0, "e", 2) == "0.00e+00"
    with pytest.raises(numbers.NumberError):
        numbers.divide(1, 0)


def test_jsonencode_escapes_like_go_and_keeps_numbers_exact() -> None:
    assert ev('jsonencode({ b = "<&>", a = 0.1 + 0.2 })') == '{"a":0.3,"b":"\\u003c\\u0026\\u003e"}'
    assert ev('jsonencode("\\u2028")') == '"\\u2028"'
    assert ev('jsondecode("1e2")') == 100
    assert isinstance(ev("jsonencode([local.u])", local={"u": Unknown("u")}), Unknown)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('true ? 1 : "a"', "1"),  # the results unify to string
        ('tomap({ a = 1, b = "x" })', {"a": "1", "b": "x"}),
        ('regexall("(a)(b)", "abab")', [["a", "b"], ["a", "b"]]),
        ('regexall("(?P<x>a)b", "abab")', [{"x": "a"}, {"x": "a"}]),
        ('title("hello world-foo bar_baz")', "Hello World-Foo Bar_baz"),
        ('replace("abc", "/(b)/", "[$1]")', "a[b]c"),
        ('"a %{ if true ~}  \\n  b%{ endif }"', "a b"),  # a quoted string's literal is one piece
    ],
)
def test_terraform_semantics_the_evaluator_reproduces(source: str, expected: Any) -> None:
    assert ev(source) == expected


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("true || sum([]) == 0", "cannot sum an empty list"),  # no short-circuit, as in Terraform
        ('"\\q"', "invalid escape sequence"),
        ('regex("a(?=b)", "ab")', "look-ahead"),
        ('tomap({ a = [1], b = "x" })', "no common type"),
        ('true ? [1] : "x"', "inconsistent conditional result types"),
    ],
)
def test_what_terraform_rejects_is_rejected(source: str, message: str) -> None:
    with pytest.raises(HclError, match=re.escape(message)):
        ev(source)


def test_can_and_try_of_an_unknown_value_are_unknown() -> None:
    later = {"u": Unknown("id")}
    assert isinstance(ev("can(local.u)", local=later), Unknown)
    assert isinstance(ev('try(local.u, "x")', local=later), Unknown)
    assert ev('can(local.u["x"]["y"].z)', local={"u": "s"}) is False


def test_the_oracle_reads_consoles_output_and_diagnostics() -> None:
    from tools.tf.oracle import parse_diagnostics, parse_tuple, unquote_go

    stdout = 'Warning: x\n\n[\n  "\\"a\\\\u003c\\"",\n  (known after apply),\n  "\\x7f\\u00a0é",\n]\n'
    assert parse_tuple(stdout) == ['"a\\u003c"', None, "\x7f\u00a0é"]
    assert unquote_go('"\\t\\"\\\\\\U0001F600"') == '\t"\\\U0001f600'
    stderr = (
        "\nError: Invalid function argument\n\n  on sof_oracle.tf line 8, in locals:\n"
        "   8:   sof_expr_1 = sum([])\n    ├────────────────\n    │ while calling sum(list)\n\n"
        'Invalid value for "list" parameter: cannot sum an empty list.\n'
    )
    (diag,) = parse_diagnostics(stderr)
    assert (diag.severity, diag.file, diag.line) == ("Error", "sof_oracle.tf", 8)
    assert diag.detail == 'Invalid value for "list" parameter: cannot sum an empty list.'
