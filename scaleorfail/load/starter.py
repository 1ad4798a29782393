"""StartExecution with its timing and AWS error code: what the harness reports to Locust.

The client makes exactly one attempt per call (no hidden SDK retries): a throttled start
is counted as throttled, not silently retried.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError


@dataclass
class StartResult:
    ok: bool
    latency_ms: float
    arn: str = ""
    error: str = ""
    message: str = ""


def error_code(exc: Exception) -> tuple[str, str]:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return str(error.get("Code") or "ClientError"), str(error.get("Message") or exc)
    return type(exc).__name__, str(exc)


def start_execution(client: Any, state_machine_arn: str, name: str, payload: str) -> StartResult:
    began = time.perf_counter()
    try:
        response = client.start_execution(stateMachineArn=state_machine_arn, name=name, input=payload)
    except (ClientError, BotoCoreError, OSError) as exc:
        code, message = error_code(exc)
        return StartResult(False, (time.perf_counter() - began) * 1000.0, error=code, message=message[:500])
    return StartResult(True, (time.perf_counter() - began) * 1000.0, arn=str(response["executionArn"]))
