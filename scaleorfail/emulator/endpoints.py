"""SageMaker serverless endpoints, served like the Lambda runtime serves functions.

An endpoint's model bundle (model.tar.gz from S3) is unpacked once; each container is a
``worker.py`` process in SageMaker serving mode (``SOF_SERVING=sagemaker``: the
``SAGEMAKER_PROGRAM`` script's model_fn / input_fn / predict_fn / output_fn), reused
while warm, with the memory limit of the serverless config.

What differs from Lambda is the concurrency rule, which is the point of the variant: an
endpoint serves at most ``MaxConcurrency`` requests at once and refuses the next one
at once with ``ThrottlingException`` - there is no queue in front of it - and it shares
no pool with the Lambda functions. Container output goes to
``/aws/sagemaker/Endpoints/<name>``; metrics to ``AWS/SageMaker`` by EndpointName and
VariantName: Invocations, ModelLatency and OverheadLatency (microseconds), ModelSetupTime
(cold starts), Invocation4XXErrors (model errors, and the throttled requests, which never
reach the model and so are not Invocations) and Invocation5XXErrors (containers that died).
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scaleorfail.emulator.runtime import (
    Datum,
    Environment,
    FunctionSpec,
    LambdaRuntime,
    Outcome,
    ThrottledError,
    check_member,
    staged,
    stream_id,
)
from scaleorfail.emulator.zygote import Spawn

INVOCATION_TIMEOUT_S = 60.0  # SageMaker's limit for a real-time or serverless invocation
SERVING_RUNTIME = "sagemaker-serverless"
VARIANT_ENV = "SOF_VARIANT"


@dataclass(frozen=True)
class ServeResult:
    body: str
    content_type: str
    error: dict[str, Any] | None  # the model's error (ModelError) or None
    died: bool  # the container died or timed out (a 5xx on AWS)
    variant: str


def endpoint_spec(
    *,
    name: str,
    arn: str,
    variant: str,
    max_concurrency: int,
    memory_mb: int,
    environment: dict[str, str],
    code: bytes,
    code_sha256: str,
) -> FunctionSpec:
    """An endpoint variant as the runtime's unit of code and configuration."""
    return FunctionSpec(
        name=name,
        arn=arn,
        version=variant,
        handler=environment.get("SAGEMAKER_PROGRAM", "inference.py"),
        runtime=SERVING_RUNTIME,
        memory_mb=memory_mb,
        timeout_s=INVOCATION_TIMEOUT_S,
        environment={**environment, VARIANT_ENV: variant},
        code_sha256=code_sha256,
        reserved_concurrency=max_concurrency,
        code=code,
    )


class ServingEnvironment(Environment):
    """One serverless container: the model's code folder is the task root."""

    def __init__(self, spec: FunctionSpec, code_dir: Path, endpoint: str, region: str, spawn: Spawn) -> None:
        super().__init__(spec, code_dir / "code", endpoint, region, spawn)
        self.model_dir = code_dir
        self.log_stream = f"{spec.version}/{stream_id()}"

    def environment_variables(self) -> dict[str, str]:
        spec = self.spec
        env = {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "SAGEMAKER_PROGRAM": "inference.py",
        }
        env.update({k: v for k, v in spec.environment.items() if k != VARIANT_ENV})
        env.update(
            {
                "SOF_SERVING": "sagemaker",
                "SM_MODEL_DIR": str(self.model_dir),
                "LAMBDA_TASK_ROOT": str(self.code_dir),  # the worker's import root
                "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region,
                "AWS_ENDPOINT_URL": self.endpoint,
                "AWS_ACCESS_KEY_ID": os.environ.get("SOF_ACCESS_KEY_ID", "test"),
                "AWS_SECRET_ACCESS_KEY": "test",
                "SOF_MEMORY_LIMIT_MB": str(spec.memory_mb),
            }
        )
        return env


def unpack_model(code: bytes, target: Path) -> None:
    """Unpack model.tar.gz safely (regular files and folders only, no escaping paths, size capped)."""

    def fill(folder: Path) -> None:
        with tarfile.open(fileobj=io.BytesIO(code), mode="r:*") as archive:
            members = archive.getmembers()
            total = 0
            for member in members:
                if not (member.isfile() or member.isdir()):
                    raise ValueError(f"model bundle holds a link or device: {member.name}")
                total = check_member(member.name, member.size, total)
            archive.extractall(folder, members=members, filter="data")

    staged(target, fill)


class EndpointRuntime(LambdaRuntime):
    """Serverless endpoints: per-endpoint MaxConcurrency, SageMaker's logs and metrics.

    Construct it with ``reservations=dict``: endpoints share no pool with Lambda.
    """

    def _admit(self, spec: FunctionSpec, reservations: dict[str, int]) -> None:
        limit = spec.reserved_concurrency or 1
        busy = self._busy[spec.name]
        if busy >= limit:
            raise ThrottledError(
                "ThrottlingException",
                f"endpoint {spec.name} has MaxConcurrency {limit} and {busy} requests in progress",
            )

    def _scale(self, spec: FunctionSpec) -> None:
        """A serverless endpoint scales within its MaxConcurrency (``_admit``): no Lambda scaling rate."""

    def _new_environment(self, spec: FunctionSpec, code_dir: Path) -> Environment:
        return ServingEnvironment(spec, code_dir, self.endpoint, self.settings.region, self._spawn)

    def _unpack(self, code: bytes, target: Path) -> None:
        unpack_model(code, target)

    def serve(self, spec: FunctionSpec, body: str, content_type: str, accept: str) -> ServeResult:
        """One InvokeEndpoint; raises ThrottledError above MaxConcurrency."""
        began = time.perf_counter()
        event = {"body": body, "content_type": content_type, "accept": accept}
        result = self.invoke(spec, json.dumps(event).encode("utf-8"))
        payload = result.body
        overhead_ms = max(0.0, (time.perf_counter() - began) * 1000.0 - result.duration_ms - (result.init_ms or 0.0))
        self._overhead_metric(spec, overhead_ms)
        if result.function_error:
            died = str(payload.get("errorType", "")).startswith(("Runtime.", "Sandbox."))
            return ServeResult("", "", payload, died, spec.version)
        return ServeResult(str(payload["body"]), str(payload.get("content_type") or accept), None, False, spec.version)

    # -- logs and metrics ------------------------------------------------------------

    def _write_logs(
        self,
        environment: Environment,
        spec: FunctionSpec,
        request_id: str,
        started: datetime,
        ended: float,
        outcome: Outcome,
        init_ms: float | None,
    ) -> list[str]:
        at = int(started.timestamp() * 1000)
        lines = [line for line in outcome.output.split("\n") if line.strip()]
        if outcome.fatal and outcome.error:
            lines.append(f"{outcome.error.get('errorType')}: {outcome.error.get('errorMessage')}")
        if lines:
            events = [(max(at, int(ended * 1000)), line) for line in lines]
            self.sink.log_events(f"/aws/sagemaker/Endpoints/{spec.name}", environment.log_stream, events)
        return lines

    def _dimensions(self, spec: FunctionSpec) -> dict[str, str]:
        return {"EndpointName": spec.name, "VariantName": spec.version}

    def _concurrency_metric(self, spec: FunctionSpec, when: datetime, busy_function: int, busy_account: int) -> None:
        return None  # SageMaker publishes no concurrency count for serverless endpoints

    def _overhead_metric(self, spec: FunctionSpec, overhead_ms: float) -> None:
        when = datetime.now(UTC)
        datum = Datum("OverheadLatency", round(overhead_ms * 1000.0), "Microseconds", self._dimensions(spec), when)
        self.sink.metrics("AWS/SageMaker", [datum])

    def _metrics(
        self,
        spec: FunctionSpec,
        when: datetime,
        *,
        outcome: Outcome | None = None,
        throttled: bool = False,
        init_ms: float | None = None,
    ) -> None:
        dims = self._dimensions(spec)
        if throttled:
            data = [Datum("Invocation4XXErrors", 1, "Count", dims, when)]  # refused before the model
        elif outcome is not None:
            died = outcome.fatal
            model_error = outcome.error is not None and not died
            data = [
                Datum("Invocations", 1, "Count", dims, when),
                Datum("Invocation4XXErrors", 1 if model_error else 0, "Count", dims, when),
                Datum("Invocation5XXErrors", 1 if died else 0, "Count", dims, when),
                Datum("ModelLatency", round(outcome.duration_ms * 1000.0), "Microseconds", dims, when),
            ]
            if init_ms is not None:
                data.append(Datum("ModelSetupTime", round(init_ms * 1000.0), "Microseconds", dims, when))
        else:
            return
        self.sink.metrics("AWS/SageMaker", data)
