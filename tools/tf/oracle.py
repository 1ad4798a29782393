"""Terraform itself as the oracle: evaluate expressions with ``terraform console``.

Every expression becomes a local value of a throw-away configuration (with whatever
variables and locals it needs); one ``terraform console`` process evaluates all of them
as ``jsonencode(local.<name>)`` and prints a tuple of JSON texts. Terraform evaluates
every local while it starts, so an expression that fails is reported as a diagnostic
on its own line of the generated file, and the others still print: one process answers
hundreds of expressions. Nothing here needs a provider, so this works offline.

``CHECKPOINT_DISABLE`` keeps Terraform from calling home; the CLI configuration is an
empty file of the work directory, so nothing of the user's Terraform setup applies.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONSOLE_TIMEOUT_S = 120
ORACLE_FILE = "sof_oracle.tf"
VARIABLES_FILE = "sof_oracle.tfvars.json"


class OracleError(Exception):
    """Terraform could not evaluate the configuration at all; the message has its output."""


@dataclass(frozen=True)
class Outcome:
    """What Terraform made of one expression."""

    kind: str  # "value" | "unknown" | "error"
    json: str = ""  # jsonencode() of the value, when kind == "value"
    message: str = ""  # Terraform's diagnostic, when kind == "error"

    @property
    def value(self) -> Any:
        return json.loads(self.json)


@dataclass
class _Diagnostic:
    severity: str
    summary: str
    detail: str
    line: int | None
    file: str | None


@dataclass
class Evaluation:
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    variable_errors: list[str] = field(default_factory=list)  # failed variable validations and conversions
    stderr: str = ""


def find_terraform() -> str | None:
    """The terraform binary: $SOF_TERRAFORM, else the one on PATH."""
    configured = os.environ.get("SOF_TERRAFORM")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    return shutil.which("terraform")


def terraform_required() -> bool:
    """CI (and whoever sets SOF_REQUIRE_TERRAFORM=1) must not skip the differential tests."""
    return os.environ.get("SOF_REQUIRE_TERRAFORM") == "1" or os.environ.get("CI", "").lower() in ("1", "true")


class Terraform:
    def __init__(self, binary: str) -> None:
        self.binary = binary

    def _env(self, workdir: Path) -> dict[str, str]:
        config = workdir / ".terraformrc-empty"
        if not config.exists():
            config.write_text("")
        env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
        env.update(
            {
                "TF_CLI_CONFIG_FILE": str(config),
                "CHECKPOINT_DISABLE": "1",
                "TF_IN_AUTOMATION": "1",
                "TF_INPUT": "0",
                "TF_DATA_DIR": str(workdir / ".terraform"),
            }
        )
        return env

    def version(self, workdir: Path) -> str:
        done = subprocess.run(
            [self.binary, "version", "-json"],
            capture_output=True,
            text=True,
            env=self._env(workdir),
            cwd=workdir,
            timeout=CONSOLE_TIMEOUT_S,
            check=False,
        )
        if done.returncode != 0:
            raise OracleError(f"terraform version failed: {done.stderr.strip()}")
        return str(json.loads(done.stdout)["terraform_version"])

    def evaluate(
        self,
        workdir: Path,
        expressions: Mapping[str, str],
        *,
        preamble: str = "",
        variables: Mapping[str, Any] | str | None = None,
    ) -> Evaluation:
        """Evaluate each expression (HCL source text) in a configuration written to workdir.

        preamble is HCL placed before the expressions (variable blocks, locals they use);
        variables are the variable values (passed as a -var-file; a str is the file's JSON
        text). An expression Terraform cannot even parse stops the whole configuration: it
        is set aside as an error and the rest evaluated again.
        """
        workdir.mkdir(parents=True, exist_ok=True)
        pending = dict(expressions)
        refused: dict[str, Outcome] = {}
        while True:
            result, fatal = self._run(workdir, pending, preamble, variables)
            if not fatal:
                result.outcomes.update(refused)
                result.outcomes = {key: result.outcomes[key] for key in expressions if key in result.outcomes}
                return result
            for key, message in fatal.items():
                refused[key] = Outcome("error", message=message)
                del pending[key]

    def _run(
        self,
        workdir: Path,
        expressions: Mapping[str, str],
        preamble: str,
        variables: Mapping[str, Any] | str | None,
    ) -> tuple[Evaluation, dict[str, str]]:
        """One console process; returns the evaluation, or the expressions that stopped it."""
        names = {key: f"sof_expr_{index}" for index, key in enumerate(expressions)}
        lines = [*preamble.rstrip("\n").split("\n"), "", "locals {"] if preamble.strip() else ["locals {"]
        spans: list[tuple[int, int, str]] = []
        for key, source in expressions.items():
            start = len(lines) + 1
            lines.extend(f"  {names[key]} = {source.strip()}".split("\n"))
            spans.append((start, len(lines), key))
        lines.append("}")
        (workdir / ORACLE_FILE).write_text("\n".join(lines) + "\n")
        command = [self.binary, "console", "-no-color"]
        if variables is not None:
            text = variables if isinstance(variables, str) else json.dumps(dict(variables), indent=1)
            (workdir / VARIABLES_FILE).write_text(text)
            command.append(f"-var-file={VARIABLES_FILE}")
        query = "[" + ", ".join(f"jsonencode(local.{names[key]})" for key in expressions) + "]\n"
        done = subprocess.run(
            command,
            input=query if expressions else "1\n",
            capture_output=True,
            text=True,
            env=self._env(workdir),
            cwd=workdir,
            timeout=CONSOLE_TIMEOUT_S,
            check=False,
        )
        result = Evaluation(stderr=done.stderr)
        errors: dict[str, list[str]] = {}
        for diag in parse_diagnostics(done.stderr):
            if diag.severity != "Error":
                continue
            message = f"{diag.summary}: {diag.detail}".strip(": ")
            if diag.file == ORACLE_FILE and diag.line is not None:
                owner = next((key for start, end, key in spans if start <= diag.line <= end), None)
                if owner is not None:
                    errors.setdefault(owner, []).append(message)
                    continue
            if "variable" in diag.summary.lower() or (diag.file or "").endswith(".tfvars.json"):
                result.variable_errors.append(message)
                continue
            raise OracleError(f"terraform console failed: {message}\n{done.stderr}")
        if result.variable_errors:
            return result, {}
        if done.returncode != 0:
            if errors:
                return result, {key: "\n".join(found) for key, found in errors.items()}
            raise OracleError(f"terraform console exited {done.returncode}:\n{done.stderr}\n{done.stdout}")
        printed = parse_tuple(done.stdout) if expressions else []
        if len(printed) != len(expressions):
            raise OracleError(f"expected {len(expressions)} results, terraform printed:\n{done.stdout}")
        for key, shown in zip(expressions, printed, strict=True):
            if key in errors:
                result.outcomes[key] = Outcome("error", message="\n".join(errors[key]))
            elif shown is None:
                result.outcomes[key] = Outcome("unknown")
            else:
                result.outcomes[key] = Outcome("value", json=shown)
        return result, {}


_DIAG_START = re.compile(r"^(Error|Warning): (.*)$")
_DIAG_WHERE = re.compile(r"^\s*on (\S+) line (\d+)")


def parse_diagnostics(stderr: str) -> list[_Diagnostic]:
    """Terraform's human-readable diagnostics (-no-color), split into severity, summary, detail, position."""
    found: list[_Diagnostic] = []
    current: list[str] | None = None
    header: tuple[str, str] | None = None
    for raw in [*stderr.splitlines(), "Error: <end>"]:
        match = _DIAG_START.match(raw.strip("│╷╵ "))
        if match:
            if header is not None and current is not None:
                found.append(_diagnostic(header, current))
            header, current = (match.group(1), match.group(2)), []
        elif current is not None:
            current.append(raw)
    return found


def _diagnostic(header: tuple[str, str], body: list[str]) -> _Diagnostic:
    file = line = None
    detail: list[str] = []
    in_snippet = False
    for raw in body:
        text = raw.rstrip()
        where = _DIAG_WHERE.match(text)
        if where:
            file, line = where.group(1).rstrip(":,"), int(where.group(2))
            in_snippet = True
            continue
        if in_snippet and (text.startswith(("  ", "    ")) or not text):
            if not text:
                in_snippet = False
            continue
        if text.strip():
            detail.append(text.strip())
    return _Diagnostic(header[0], header[1], " ".join(detail), line, file)


def parse_tuple(stdout: str) -> list[str | None]:
    """The console's rendering of a tuple of strings: each JSON text, or None when unknown."""
    body = [line.strip() for line in stdout.splitlines() if line.strip()]
    if "[" in body:
        body = body[body.index("[") :]  # warnings come first on stdout
    if not body or body[0] != "[" or body[-1] != "]":
        raise OracleError(f"unexpected console output:\n{stdout}")
    out: list[str | None] = []
    for line in body[1:-1]:
        item = line.removesuffix(",")
        if item == "(known after apply)":
            out.append(None)
        elif item.startswith('"') and item.endswith('"'):
            out.append(unquote_go(item))
        else:
            raise OracleError(f"unexpected console output line {line!r}")
    return out


_GO_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"'}


def unquote_go(quoted: str) -> str:
    """Undo Go's strconv.Quote (how the console prints a string)."""
    text = quoted[1:-1]
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        kind = text[i + 1]
        if kind in _GO_ESCAPES:
            out.append(_GO_ESCAPES[kind])
            i += 2
        elif kind in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[kind]
            out.append(chr(int(text[i + 2 : i + 2 + width], 16)))
            i += 2 + width
        else:
            raise OracleError(f"unknown escape \\{kind} in {quoted!r}")
    return "".join(out)
