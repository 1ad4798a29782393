"""Embed served by a SageMaker endpoint: the model server's four handler functions.

The SageMaker inference toolkit (in the scikit-learn serving container, and the
emulator's endpoint runtime) loads the script named by ``SAGEMAKER_PROGRAM`` - here
``inference.py``, which re-exports these - and calls, per request:
``input_fn(body, content_type)`` -> ``predict_fn(data, model)`` ->
``output_fn(prediction, accept)``; ``model_fn(model_dir)`` runs once per container.

``predict_fn`` runs exactly the Embed step's code (:func:`pipeline.embed.infer` through
the same structured log line), so the Lambda and the endpoint variants share one model,
one set of fault knobs (the container's environment) and one log format.
"""

from __future__ import annotations

import json
from typing import Any

from pipeline.common import InvalidTicket, run_step
from pipeline.embed import infer

JSON = "application/json"
MAX_BODY_BYTES = 256 * 1024  # Step Functions never sends more than its 256 KB payload limit


def model_fn(model_dir: str) -> dict[str, Any]:
    """The "model" is code (a hashed embedding): nothing to load; MODEL_MEMORY_MB is touched per request."""
    return {"model_dir": model_dir}


def input_fn(body: str | bytes, content_type: str = JSON) -> Any:
    if (content_type or JSON).split(";")[0].strip().lower() != JSON:
        raise InvalidTicket(f"content type {content_type!r} is not supported: send {JSON}")
    if len(body) > MAX_BODY_BYTES:
        raise InvalidTicket(f"request body has {len(body)} bytes, the limit is {MAX_BODY_BYTES}")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidTicket(f"request body is not JSON: {exc}") from None


def predict_fn(data: Any, model: dict[str, Any]) -> dict[str, Any]:
    return run_step("embed", data, infer)


def output_fn(prediction: dict[str, Any], accept: str = JSON) -> str:
    if (accept or JSON).split(",")[0].split(";")[0].strip().lower() not in (JSON, "*/*"):
        raise InvalidTicket(f"accept type {accept!r} is not supported: accept {JSON}")
    return json.dumps(prediction, separators=(",", ":"))
