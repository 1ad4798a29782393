"""Embed, the model step: simulated inference with reproducible fault knobs.

Environment variables (all optional; defaults give the workshop's behaviour):

- ``SIMULATED_INFER_MS`` (250): mean inference latency;
  ``INFER_JITTER_SIGMA_MS`` (25) and ``INFER_JITTER_CLAMP_MS`` (50) shape the normal
  jitter around it; ``INFER_SEED`` makes the latency draw deterministic per ticket.
- ``MODEL_MEMORY_MB`` (16): memory the "model" really allocates and touches per
  invocation. Above the function's memory size the invocation dies out of memory,
  on AWS Lambda and in the emulator alike.
- ``DEPENDENCY_LATENCY_MS`` (0 = no call) and ``DEPENDENCY_TIMEOUT_MS`` (1000): a call to
  an external feature service; when the latency exceeds the timeout the step waits the
  timeout and fails with ``DependencyTimeout``.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

from pipeline.common import (
    DependencyTimeout,
    count_tokens,
    env_int,
    env_number,
    require_clean_text,
    require_ticket_id,
    run_step,
)
from pipeline.model import MODEL_NAME, embed, embedding_hash, route

PAGE = 4096


def inference_latency_ms(ticket_id: str) -> float:
    mean = env_number("SIMULATED_INFER_MS", 250.0, maximum=900_000.0)
    sigma = env_number("INFER_JITTER_SIGMA_MS", 25.0, maximum=900_000.0)
    clamp = env_number("INFER_JITTER_CLAMP_MS", 50.0, maximum=900_000.0)
    seed = os.environ.get("INFER_SEED", "")
    rng = random.Random(f"{seed}:{ticket_id}") if seed else random
    jitter = rng.gauss(0.0, sigma) if sigma > 0 else 0.0
    return max(0.0, mean + max(-clamp, min(clamp, jitter)))


def call_feature_service() -> float:
    """Simulate the external dependency; returns the time waited in ms."""
    latency = env_number("DEPENDENCY_LATENCY_MS", 0.0, maximum=900_000.0)
    timeout = env_number("DEPENDENCY_TIMEOUT_MS", 1000.0, maximum=900_000.0)
    if latency <= 0:
        return 0.0
    if latency > timeout:
        time.sleep(timeout / 1000.0)
        raise DependencyTimeout(
            f"feature service did not answer within {timeout:g} ms (DEPENDENCY_TIMEOUT_MS); "
            f"its simulated latency is {latency:g} ms (DEPENDENCY_LATENCY_MS)"
        )
    time.sleep(latency / 1000.0)
    return latency


def load_model() -> bytearray:
    """Allocate MODEL_MEMORY_MB and touch every page so the memory is really resident."""
    size = env_int("MODEL_MEMORY_MB", 16, maximum=10_240) * 1024 * 1024
    weights = bytearray(size)
    if size:
        weights[::PAGE] = b"\x01" * len(range(0, size, PAGE))
    return weights


def infer(ticket: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    ticket_id = require_ticket_id(ticket)
    text = require_clean_text(ticket, ticket_id)
    dependency_ms = call_feature_service()
    weights = load_model()
    latency_ms = inference_latency_ms(ticket_id)
    time.sleep(latency_ms / 1000.0)
    vector = embed(text)
    best_route, score = route(vector)
    del weights
    output = {
        "ticket_id": ticket_id,
        "token_count": count_tokens(text),
        "route": best_route,
        "route_score": score,
        "embedding_hash": embedding_hash(vector),
        "model": MODEL_NAME,
    }
    fields = {
        "route": best_route,
        "route_score": score,
        "inference_ms": round(latency_ms, 3),
        "dependency_ms": round(dependency_ms, 3),
    }
    return output, fields


def handler(event: object, context: object = None) -> dict[str, Any]:
    return run_step("embed", event, infer, context)
