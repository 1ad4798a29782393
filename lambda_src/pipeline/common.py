"""Shared pieces of the three pipeline handlers: errors, settings, validation, logging.

Stdlib only: this package is zipped as-is and runs on the AWS Lambda Python runtime
and in the embedded emulator's worker processes.

Step Functions reports a failed Lambda task with the Python exception's class name as
the error (``PayloadTooLarge``, ``InvalidTicket`` ...), so the class names below are part
of the pipeline's contract: Retry/Catch rules, Logs Insights queries and the RCA
classifier match on them.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import unicodedata
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

DEFAULT_MAX_TEXT_CHARS = 5000
MAX_TICKET_ID_CHARS = 64
TICKET_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")
LOGGED_ID_CHARS = 80  # how much of an invalid ticket_id a log line repeats


class PipelineError(Exception):
    """Base of every error a handler raises on purpose."""


class InvalidTicket(PipelineError):
    """The input is not a well-formed ticket (type, missing field, empty text)."""


class PayloadTooLarge(PipelineError):
    """The ticket text is longer than the configured limit."""


class DependencyTimeout(PipelineError):
    """The (simulated) external feature service did not answer in time."""


class InvalidConfiguration(PipelineError):
    """An environment variable of the function holds a value it cannot use."""


def env_number(
    name: str,
    default: float,
    *,
    minimum: float = 0.0,
    maximum: float = float("inf"),
    environ: Mapping[str, str] | None = None,
) -> float:
    """Read a numeric setting from the environment, rejecting nonsense loudly."""
    source = os.environ if environ is None else environ
    raw = source.get(name, "").strip()
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidConfiguration(f"{name}={raw!r} is not a number") from None
    if not minimum <= value <= maximum:  # also rejects NaN
        raise InvalidConfiguration(f"{name}={raw} is outside the allowed range {minimum:g}..{maximum:g}")
    return value


def env_int(
    name: str,
    default: int,
    *,
    minimum: int = 0,
    maximum: int = 2**31 - 1,
    environ: Mapping[str, str] | None = None,
) -> int:
    value = env_number(name, default, minimum=minimum, maximum=maximum, environ=environ)
    if value != int(value):
        raise InvalidConfiguration(f"{name}={value:g} must be a whole number")
    return int(value)


def max_text_chars() -> int:
    return env_int("MAX_TEXT_CHARS", DEFAULT_MAX_TEXT_CHARS, minimum=1, maximum=1_000_000)


def describe_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def require_object(event: object) -> dict[str, Any]:
    if not isinstance(event, dict):
        raise InvalidTicket(f"a ticket must be a JSON object, got {describe_type(event)}")
    return event


def require_ticket_id(ticket: Mapping[str, Any]) -> str:
    if "ticket_id" not in ticket:
        raise InvalidTicket("ticket_id is missing")
    ticket_id = ticket["ticket_id"]
    if not isinstance(ticket_id, str):
        raise InvalidTicket(f"ticket_id must be a string, got {describe_type(ticket_id)}")
    if ticket_id == "":
        raise InvalidTicket("ticket_id is empty")
    if len(ticket_id) > MAX_TICKET_ID_CHARS:
        raise InvalidTicket(f"ticket_id has {len(ticket_id)} characters, the limit is {MAX_TICKET_ID_CHARS}")
    if not TICKET_ID_PATTERN.fullmatch(ticket_id):
        raise InvalidTicket(
            f"ticket_id {ticket_id!r} may only contain letters, digits and . _ : - "
            "(and must start with a letter or digit)"
        )
    return ticket_id


def require_text(ticket: Mapping[str, Any], ticket_id: str) -> str:
    """Return the ticket's raw text after the type and size checks."""
    if "text" not in ticket:
        raise InvalidTicket(f"ticket {ticket_id}: text is missing")
    text = ticket["text"]
    if not isinstance(text, str):
        raise InvalidTicket(f"ticket {ticket_id}: text must be a string, got {describe_type(text)}")
    limit = max_text_chars()
    if len(text) > limit:
        raise PayloadTooLarge(
            f"ticket {ticket_id}: text has {len(text)} characters, the limit is {limit} (MAX_TEXT_CHARS)"
        )
    return text


def normalize_text(text: str) -> str:
    """Drop control characters (keeping whitespace), collapse whitespace runs, strip."""
    kept = "".join(ch for ch in text if ch.isspace() or unicodedata.category(ch) != "Cc")
    return " ".join(kept.split())


TOKEN = re.compile(r"\w+|[^\w\s]")


def count_tokens(text: str) -> int:
    """Words and punctuation marks, the way a simple whitespace-and-punctuation tokenizer sees them."""
    return len(TOKEN.findall(text))


def require_clean_text(ticket: Mapping[str, Any], ticket_id: str) -> str:
    """The text checked for type and size, normalised, and required to be non-empty."""
    text = normalize_text(require_text(ticket, ticket_id))
    if not text:
        raise InvalidTicket(f"ticket {ticket_id}: text is empty after removing whitespace and control characters")
    return text


def loggable_ticket_id(event: object) -> str | None:
    """The ticket_id to put in a log line, even when the ticket is invalid."""
    if isinstance(event, dict):
        value = event.get("ticket_id")
        if isinstance(value, str):
            return value[:LOGGED_ID_CHARS]
    return None


# The Lambda context's keys every log line of an invocation carries, named as AWS Lambda
# Powertools' Logger names them (log key, context attribute): a line ties itself to its
# invocation (the REPORT line, the history's RequestId) without START/END brackets.
CONTEXT_KEYS = (("function_name", "function_name"), ("function_request_id", "aws_request_id"))
_invocation: ContextVar[tuple[tuple[str, str], ...]] = ContextVar("invocation", default=())


def context_keys(context: object) -> dict[str, str]:
    """The log keys of a Lambda context (none without one: a SageMaker endpoint, a unit test)."""
    keys: dict[str, str] = {}
    for key, attribute in CONTEXT_KEYS:
        value = getattr(context, attribute, None)
        if isinstance(value, str) and value:
            keys[key] = value
    return keys


def emit_log(record: Mapping[str, Any]) -> None:
    """Write one structured log line (JSON on one line) to stdout, with the invocation's keys."""
    sys.stdout.write(json.dumps({**record, **dict(_invocation.get())}, ensure_ascii=True, default=str) + "\n")
    sys.stdout.flush()


Step = Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, Any]]]


def run_step(step: str, event: object, work: Step, context: object = None) -> dict[str, Any]:
    """Run one step's work and write exactly one structured log line for the invocation.

    ``work`` validates the event itself and returns (output, extra log fields).
    Errors are logged with their name and re-raised, so that Lambda (and Step
    Functions) report the exception class as the error. Every line written while the
    step runs carries the request id and function name of ``context`` (the Lambda
    context object).
    """
    bound = _invocation.set(tuple(context_keys(context).items()))
    try:
        return _logged_step(step, event, work)
    finally:
        _invocation.reset(bound)


def _logged_step(step: str, event: object, work: Step) -> dict[str, Any]:
    started = time.perf_counter()
    record: dict[str, Any] = {"step": step, "ticket_id": loggable_ticket_id(event)}
    try:
        output, fields = work(require_object(event))
    except PipelineError as exc:
        record["duration_ms"] = elapsed_ms(started)
        record.update(status="error", error=type(exc).__name__, message=str(exc)[:500])
        emit_log(record)
        raise
    record["ticket_id"] = output.get("ticket_id", record["ticket_id"])
    record["duration_ms"] = elapsed_ms(started)
    record.update(fields)
    record["status"] = "ok"
    emit_log(record)
    return output


def elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 3)
