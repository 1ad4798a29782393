"""Terraform itself is the oracle: the project's evaluator must agree with `terraform console`.

Two suites run Terraform 1.11 (offline: nothing here needs a provider) and the evaluator
of scaleorfail/tf/ side by side and compare every answer exactly (the jsonencode text of
each value, or "known after apply", or an error):

- every function and operator the evaluator supports, on a corpus of expressions;
- the module tree itself, for every variant the workshop deploys (fail/quarantine x
  retry/no retry x lambda/sagemaker, plus the examples/): every local, output, module
  argument and resource argument that does not depend on what a provider computes
  (those are given to Terraform as the evaluator's values) - the rendered state machine
  definition and the dashboard JSON among them - and every variable validation.

Constructs the evaluator does not support are refused with an error naming them; the
REFUSED list pins that. Terraform must be installed; where it is not, these tests are
skipped with the reason shown, except in CI (CI=true or SOF_REQUIRE_TERRAFORM=1), where
they fail.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from test_terraform_static import VALIDATION_CASES

from scaleorfail.tf.aws import AwsModel
from scaleorfail.tf.expr import HclError, Scope, Unknown
from scaleorfail.tf.functions import PURE_FUNCTIONS, file_functions, functions_for
from scaleorfail.tf.instance import load_tfvars, root_instance
from scaleorfail.tf.template import parse_expression
from tools.tf.differential import agree, compare_instance, evaluator_outcome, mirror, module_instances, probes
from tools.tf.oracle import Evaluation, Outcome, Terraform, find_terraform, terraform_required

ROOT = Path(__file__).resolve().parent.parent
TERRAFORM = ROOT / "terraform"
EXAMPLES = sorted((ROOT / "examples").glob("*.tfvars"))

# Values the corpus can read: the same locals for Terraform and for the evaluator.
PREAMBLE = """resource "terraform_data" "unknown" {}

locals {
  n       = 3
  s       = "abc"
  m       = { b = 2, a = 1 }
  l       = ["x", "y"]
  flag    = true
  nothing = null
  objs    = [{ n = 1 }, { n = 2 }]
  u       = terraform_data.unknown.id
}
"""
LOCALS: dict[str, Any] = {
    "n": 3,
    "s": "abc",
    "m": {"b": 2, "a": 1},
    "l": ["x", "y"],
    "flag": True,
    "nothing": None,
    "objs": [{"n": 1}, {"n": 2}],
    "u": Unknown("terraform_data.unknown.id"),
}
FILES = {
    "files/hello.txt": "hello\n",
    "files/other.txt": "o",
    "files/greeting.tftpl": "Hi ${name}!\n%{ for i in items ~}\n- ${i}\n%{ endfor ~}\nn=${n}\n",
    "files/strip.tftpl": "a\n%{ if on ~}\n  X\n%{ endif ~}\n   b\n%{ for i in items ~}\n   ${i}\n%{ endfor ~}\n"
    "c  \n%{~ if on }Y%{ endif }\n",
}

# Expressions both evaluate to the same value (or both to "known after apply"), one per
# line; a heredoc runs to its EOT.
CORPUS = r"""
1 + 2 * 3
(1 + 2) * 3
7 / 2
1 / 3
0.1 + 0.2
0.1 * 3
2 - 0.3
1e3
2.5e-3
123456789012345678901234567890 * 10
5 % 3
-5 % 3
5.5 % 2
-local.n
local.n >= 1 && local.n <= 40
!local.flag || false
1 < 2
2 <= 2
3 > 4
3 >= 3.0
1 == 1.0
1 == "1"
"a" == "a"
[1, 2] == [1, 2]
{ a = 1 } == { a = 1 }
null == null
local.nothing == null
local.nothing != null
true && false
true || false
local.s == "abc" ? "yes" : "no"
true ? 1 : "a"
false ? 1 : "a"
true ? "a" : 1
true ? null : 1
false ? null : 1
true ? [] : ["a"]
false ? [] : ["a"]
"${local.s}-${local.n}"
"${local.n}"
"${1/3}"
"x${0.1 + 0.2}y"
"a$${b}"
"a%%{b}"
"tab\there \"q\" back\\slash \u00e9 \U0001F600"
"%{ if local.flag }on%{ else }off%{ endif }"
"%{ for x in local.l }[${x}]%{ endfor }"
"%{ for k, v in local.m }${k}=${v};%{ endfor }"
"%{ for i, x in local.l ~} ${i}:${x} %{~ endfor }"
local.m.a
local.m["b"]
local.l[1]
local.l[0]
local.objs[*].n
local.objs.*.n
[for x in local.l : upper(x)]
[for i, x in local.l : "${i}${x}"]
[for k, v in local.m : k if v > 1]
{ for k, v in local.m : v => k }
{ for s in ["a", "b", "a"] : s => s... }
{ for k, v in local.m : upper(k) => v * 2 if k != "z" }
{ a = 1, b = local.n }
{ "quoted key" = 1 }
{ (local.s) = 1 }
[1, "a", true, null]
merge({ a = 1 }, { b = 2 }, { a = 3 })
merge({ a = 1 }, null)
merge()
concat(local.l, [1])
concat([], [])
jsonencode({ b = [1, true, null], a = "x" })
jsonencode("<>&")
jsonencode("\u2028\u2029")
jsonencode(0.1 + 0.2)
jsonencode(1 / 3)
jsonencode(12345678901234567890)
jsonencode([])
jsonencode({})
jsonencode(null)
jsondecode("{\"a\": [1, 2.5, \"x\", true, null], \"b\": {}}")
jsondecode("0.1")
jsondecode("1e2")
lookup(local.m, "z", 9)
lookup(local.m, "a", 9)
length(local.l) + length(local.m)
length("hello")
length("")
keys(local.m)
values(local.m)
contains(["a", "b"], "b")
contains(["a", "b"], "c")
contains([1, 2], 2)
tostring(0.15)
tostring(250)
tostring(true)
tostring("x")
tostring(null)
tonumber("42")
tonumber("0.25")
tonumber(7)
tonumber(null)
tobool("true")
tobool(false)
tobool(null)
format("%s=%03d %q", "a", 7, "q")
format("%d", 42)
format("%5d|%-5d|", 42, 42)
format("%.2f", 1 / 3)
format("%f", 2.5)
format("%e", 12345.678)
format("%g", 0.000001234)
format("%g", 100000)
format("%g", 1000000)
format("%.3g", 3.14159)
format("%v", 0.1 + 0.2)
format("%v", [1, "a"])
format("%v", { b = 1, a = 2 })
format("%v", "s")
format("%v", true)
format("%t", true)
format("%s", 12)
format("%s", true)
format("%%")
format("%5s|%-5s|", "a", "b")
format("%q", "a\"b")
can(regex("^[a-z]+$", local.s))
can(regex("^[0-9]+$", local.s))
can(local.m.zzz)
try(local.m.zzz, "fallback")
try(local.m.a, "fallback")
try(local.m.zzz, local.m.yyy, 3)
coalesce(local.nothing, "", "z")
coalesce(1, 2)
coalescelist([], ["a"], ["b"])
compact(["a", "", "b"])
flatten([[1, [2, 3]], 4, []])
flatten([])
distinct(["a", "b", "a"])
distinct([1, 2, 1])
sort(["b", "a", "c"])
reverse([1, 2, 3])
toset(["b", "a", "b"])
tolist(["a", "b"])
tomap({ a = "x" })
tomap({ a = 1, b = "x" })
tomap({ a = 1, b = 2 })
tolist([1, "a"])
toset([1, "a"])
zipmap(["a", "b"], [1, 2])
element(["a", "b", "c"], 1)
element(["a", "b", "c"], 4)
one([])
one(["x"])
range(3)
range(1, 4)
range(0, 1, 0.25)
range(5, 1, -2)
alltrue([])
alltrue([true, true])
anytrue([])
anytrue([false, true])
sum([1, 2, 3])
sum([0.1, 0.2])
slice([1, 2, 3, 4], 1, 3)
index(["a", "b"], "b")
join(",", ["a", "b"])
join("-", [])
join(",", [1, true])
split(",", "a,,b")
split(",", "")
replace("a-b-c", "-", "_")
replace("hello world", "/o(r?)/", "0$1")
replace("aaa", "/a/", "b")
lower("ABC")
upper("abc")
title("hello world")
trimspace("  x  \n")
trimprefix("hello", "he")
trimsuffix("hello", "lo")
trim("?!hello?!", "!?")
startswith("hello", "he")
endswith("hello", "lo")
strcontains("hello", "ell")
substr("hello", 1, 3)
substr("hello", -3, -1)
substr("hello", 1, 100)
regex("a(b+)c", "xabbbc")
regex("(?P<first>[a-z]+)-(?P<second>[0-9]+)", "abc-123")
regex("[0-9]+", "ab12cd")
regexall("[0-9]+", "a1b22c333")
regexall("(a)(b)", "abab")
regexall("(?P<x>a)b", "abab")
regexall("z", "abc")
basename("a/b/c.txt")
dirname("a/b/c.txt")
base64encode("hello")
base64decode("aGVsbG8=")
sha256("hello")
base64sha256("hello")
md5("hello")
min(3, 1, 2)
max(1, 5, 3)
max(0.5, 0.25)
abs(-1.5)
abs(3)
floor(2.7)
floor(-1.5)
ceil(2.1)
ceil(-1.5)
file("files/hello.txt")
fileexists("files/hello.txt")
fileexists("files/nope.txt")
fileset("files", "*.txt")
filebase64("files/hello.txt")
filesha256("files/hello.txt")
filebase64sha256("files/hello.txt")
filemd5("files/hello.txt")
templatefile("files/greeting.tftpl", { name = "Ada", items = ["x", "y"], n = 0.5 })
<<EOT
heredoc ${local.s}
  kept
EOT
<<-EOT
    indented ${local.n}
      more
    EOT
local.u
can(local.u)
try(local.u, "f")
"p-${local.u}"
local.u == "a"
jsonencode(local.u)
length([local.u])
[local.u, 1]
substr("hello", 10, 1)
substr("hello", -10, 2)
substr("hello", 5, 1)
true || local.u == "a"
false && local.u == "a"
false || local.u == "a"
true && local.u == "a"
!local.flag
regex("a(b)?", "a")
regex("(?P<x>a)(?P<y>b)?", "a")
title("hELLO wORLD")
upper("straße")
lower("ÀÉÎ")
true ? { a = 1 } : { a = "x" }
true ? { a = 1 } : { b = 2 }
true ? [1, 2] : ["a"]
local.flag ? local.objs : []
[for o in local.objs : o.n if o.n > 1]
length(local.objs)
flatten([local.l, ["z"]])
join(", ", local.l, ["z"])
keys({})
values({})
merge(local.m, { c = "x" })
min([3, 1]...)
toset([3, 1, 2])
distinct(concat(local.l, local.l))
sort(["b", "B", "a", "_"])
format("%08.3f", 3.14159)
format("%+d", 5)
tostring(1e21)
tostring(-0.5)
0.1 + 0.7
1 / 7
100 / 4
2 * 0.5
-(1.5)
-local.n * 2
"${true}"
"${-1.25}"
trimspace("\t x \u00a0")
split("", "abc")
replace("a.b.c", ".", "-")
replace("abc", "/(?P<x>b)/", "[$${x}]")
replace("abc", "/b/", "$$")
regexall("a$", "a\na")
regex("^\\d+$", "123")
regex("(?i)ABC", "xabcx")
jsonencode({ "z" = 1, "a" = { "y" = [1, { b = 2, a = 1 }] } })
jsonencode("é\u0001\t")
jsondecode("[1, 2.50, 1e-2]")
templatefile("files/strip.tftpl", { on = true, items = ["a", "b"] })
templatefile("files/strip.tftpl", { on = false, items = [] })
"a %{~ if true ~} b %{~ endif ~} c"
"a %{ if true ~}  \n  b%{ endif }"
upper(local.u)
length(local.u)
local.u == null
local.flag ? local.u : "x"
local.u ? 1 : 2
startswith(abspath("files/hello.txt"), "/")
"""

# Expressions both refuse with an error.
ERRORS = r"""
sum([])
true || sum([]) == 0
false && sum([]) == 0
1 + "x"
local.s ? 1 : 2
local.nope
local.l[5]
local.m["zz"]
lookup(local.m, "z")
one([1, 2])
element([], 0)
index(["a"], "b")
true ? [1] : "x"
tonumber("abc")
tobool("yes")
tostring([1])
format("%d", 3.5)
format("%s")
regex("z", "abc")
{ for s in ["a", "a"] : s => 1 }
try(local.m.zzz)
coalesce(null, "")
min()
"\q"
zipmap(["a"], [1, 2])
tomap({ a = [1], b = "x" })
jsondecode("{")
base64decode("!!")
file("files/nope.txt")
range(1, 2, 0)
"\u12"
regex("a(?=b)", "ab")
regex("(a)\\1", "aa")
local.objs[*].missing
merge({ a = 1 }, [1])
length(5)
keys([1])
concat([1], "x")
slice([1, 2], 1, 5)
coalescelist([], [])
max(local.l...)
"""

# What Terraform evaluates and the evaluator refuses, with the words its error must contain.
REFUSED = {
    'format("%x", 255)': "the verb %x is not supported",
    'regex("[[:alpha:]]+", "abc")': "[[:class:]] is not supported",
    'regex("\\\\pL+", "abc")': "p{...} classes is not supported",
    'cidrhost("10.0.0.0/8", 2)': "function cidrhost() is not supported",
    "1 / 0 > 5": "division by zero",
    'length("e\\u0301")': "combining characters",
}

OPERATORS = ["+", "-", "*", "/", "%", "==", "!=", "<", ">", "<=", ">=", "&&", "||", "!", "?", "[*]", ".*", "..."]


def expressions(text: str) -> list[str]:
    out: list[str] = []
    heredoc: list[str] = []
    for line in text.strip("\n").split("\n"):
        if heredoc:
            heredoc.append(line)
            if line.strip() == "EOT":
                out.append("\n".join(heredoc))
                heredoc = []
        elif line.startswith("<<"):
            heredoc = [line]
        else:
            out.append(line)
    return out


@pytest.fixture(scope="session")
def terraform() -> Terraform:
    binary = find_terraform()
    if binary is None:
        if terraform_required():
            pytest.fail("terraform is not installed, and CI requires the differential tests (install Terraform 1.11)")
        pytest.skip("terraform is not installed: the Terraform-vs-evaluator differential tests did NOT run")
    return Terraform(binary)


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("corpus")
    for name, content in FILES.items():
        (workdir / name).parent.mkdir(parents=True, exist_ok=True)
        (workdir / name).write_text(content)
    return workdir


@pytest.fixture(scope="module")
def corpus_results(terraform: Terraform, corpus_dir: Path) -> Evaluation:
    cases = expressions(CORPUS) + expressions(ERRORS) + list(REFUSED)
    return terraform.evaluate(corpus_dir, {e: e for e in cases}, preamble=PREAMBLE)


def ours(source: str, workdir: Path) -> Outcome:
    scope: Scope | None = None

    def current() -> Scope:
        assert scope is not None
        return scope

    scope = Scope({"local": LOCALS}, functions_for(str(workdir), current))
    return evaluator_outcome(parse_expression(source), scope)


def test_terraform_is_the_version_the_project_documents(terraform: Terraform, tmp_path: Path) -> None:
    assert terraform.version(tmp_path).startswith("1.")


@pytest.mark.parametrize("source", expressions(CORPUS))
def test_expressions_evaluate_as_terraform_does(source: str, corpus_results: Evaluation, corpus_dir: Path) -> None:
    theirs, mine = corpus_results.outcomes[source], ours(source, corpus_dir)
    assert theirs.kind in ("value", "unknown"), f"terraform: {theirs.message}"
    assert agree(theirs, mine), f"terraform: {theirs}\nevaluator: {mine}"


@pytest.mark.parametrize("source", expressions(ERRORS))
def test_what_terraform_rejects_the_evaluator_rejects(
    source: str, corpus_results: Evaluation, corpus_dir: Path
) -> None:
    theirs, mine = corpus_results.outcomes[source], ours(source, corpus_dir)
    assert theirs.kind == "error", f"terraform accepted it: {theirs}"
    assert mine.kind == "error", f"the evaluator accepted it: {mine}"


@pytest.mark.parametrize(("source", "words"), REFUSED.items())
def test_unsupported_constructs_are_refused_by_name(
    source: str, words: str, corpus_results: Evaluation, corpus_dir: Path
) -> None:
    theirs, mine = corpus_results.outcomes[source], ours(source, corpus_dir)
    assert theirs.kind == "value", f"terraform does not evaluate it either: {theirs}"
    assert mine.kind == "error" and words in mine.message, mine


def test_the_corpus_exercises_every_function_and_operator() -> None:
    text = CORPUS + ERRORS
    functions = {*PURE_FUNCTIONS, *file_functions("."), "templatefile", "can", "try"}
    missing = sorted(f for f in functions if f"{f}(" not in text)
    assert missing == [], f"functions the evaluator supports but the corpus never calls: {missing}"
    assert [op for op in OPERATORS if op not in text] == []
    for construct in ("%{ if", "%{ for", "~}", "${", "<<EOT", "<<-EOT", " for ", "s...", "=>"):
        assert construct in text, construct


# -- the module tree, variant by variant ------------------------------------------------------------

VARIANTS: dict[str, dict[str, Any]] = {
    f"{policy}+{'retry' if retry else 'no-retry'}+{backend}": {
        "bad_input_policy": policy,
        "embed_backend": backend,
        **({} if retry else {"lambda_retry": {"max_attempts": 0}}),
    }
    for policy in ("fail", "quarantine")
    for retry in (True, False)
    for backend in ("lambda", "sagemaker")
}
VARIANTS["everything-on"] = {
    "enable_xray": True,
    "alarm_email": "oncall@example.com",
    "embed_reserved_concurrency": 5,
    "state_machine_include_execution_data": True,
    "emulator_endpoint": "http://127.0.0.1:4566",
    "tags": {"Owner": "lab"},
    "priority_score_threshold": 0.35,
    "embed_p95_alarm_threshold_ms": 999.5,
    "sagemaker_throttle_retry_attempts": 3,
}
VARIANTS["custom-image"] = {
    "embed_backend": "sagemaker",
    "sagemaker_image_uri": "111122223333.dkr.ecr.eu-west-1.amazonaws.com/s:v1",
}
VARIANTS["distributed-batched-express"] = {
    "map_mode": "distributed",
    "bad_input_policy": "quarantine",
    "distributed_map": {
        "execution_type": "EXPRESS",
        "max_concurrency": 100,
        "max_items_per_batch": 10,
        "max_input_bytes_per_batch": 65536,
        "tolerated_failure_percentage": 2.5,
        "tolerated_failure_count": 3,
        "write_results": False,
    },
}
VARIANTS.update({f"examples/{p.name}": {"__tfvars__": str(p)} for p in EXAMPLES})


@pytest.fixture(scope="module")
def mirror_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mirror(ROOT, TERRAFORM, tmp_path_factory.mktemp("mirror") / "repo")


def variant_values(variables: dict[str, Any]) -> dict[str, Any]:
    if "__tfvars__" in variables:
        return load_tfvars(variables["__tfvars__"])
    return variables


@pytest.mark.parametrize("variables", list(VARIANTS.values()), ids=list(VARIANTS))
def test_the_module_tree_evaluates_as_terraform_does(
    variables: dict[str, Any], terraform: Terraform, mirror_dir: Path
) -> None:
    root = root_instance(str(TERRAFORM), AwsModel(root_dir=str(TERRAFORM)), variant_values(variables))
    compared, problems = 0, []
    for instance in module_instances(root):
        count, differences = compare_instance(terraform, mirror_dir, instance, root_module=instance is root)
        compared += count
        problems += [str(d) for d in differences]
    assert problems == []
    assert compared > 200  # locals, outputs, module and resource arguments of five modules


def test_the_definition_and_the_dashboard_are_among_what_is_compared() -> None:
    """The state machine definition is compared as Terraform renders it (whitespace included), so is the dashboard."""
    root = root_instance(str(TERRAFORM), AwsModel(root_dir=str(TERRAFORM), build_archives=False))
    compared = {
        probe.where.split(": ", 1)[1]: probe.text
        for instance in module_instances(root)
        for probe in probes(instance, root_module=instance is root)[1]
    }
    assert compared["module.state_machine.definition"].startswith(
        'templatefile("${path.module}/templates/pipeline.asl.json.tftpl"'
    )
    assert compared["aws_cloudwatch_dashboard.this.dashboard_body"] == "jsonencode(local.dashboard)"
    assert "local.lambda_retry" in compared and "local.functions" in compared


@pytest.mark.parametrize(("variables", "message"), VALIDATION_CASES, ids=[str(v) for v, _ in VALIDATION_CASES])
def test_variable_validations_reject_what_terraform_rejects(
    variables: dict[str, Any], message: str, terraform: Terraform, mirror_dir: Path
) -> None:
    from scaleorfail.tf.encoding import json_encode
    from tools.tf.differential import variable_blocks

    with pytest.raises(HclError) as raised:
        root_instance(str(TERRAFORM), AwsModel(root_dir=str(TERRAFORM), build_archives=False), variables)
    ours_message = re.sub(r"^invalid value for variable .*?\): ", "", str(raised.value))
    defaults = root_instance(str(TERRAFORM), AwsModel(build_archives=False))
    result = terraform.evaluate(
        mirror_dir, {}, preamble=variable_blocks(defaults), variables=str(json_encode(variables))
    )
    assert result.variable_errors, "terraform accepted the value"
    assert any(ours_message in e for e in result.variable_errors), (ours_message, result.variable_errors)
