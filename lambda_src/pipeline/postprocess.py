"""Postprocess: priority and action from the route and its score.

P1 when the route is billing or delivery and the score is at least
``PRIORITY_SCORE_THRESHOLD`` (default 0.15), else P2; P1 goes to HUMAN_REVIEW,
P2 gets an AUTO_REPLY.
"""

from __future__ import annotations

import math
from typing import Any

from pipeline.common import InvalidTicket, describe_type, env_number, require_ticket_id, run_step
from pipeline.model import ROUTES

URGENT_ROUTES = frozenset({"billing", "delivery"})


def decide(route: str, score: float, threshold: float) -> tuple[str, str]:
    priority = "P1" if route in URGENT_ROUTES and score >= threshold else "P2"
    return priority, "HUMAN_REVIEW" if priority == "P1" else "AUTO_REPLY"


def postprocess(item: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    ticket_id = require_ticket_id(item)
    route = item.get("route")
    if route not in ROUTES:
        raise InvalidTicket(f"ticket {ticket_id}: route must be one of {', '.join(ROUTES)}, got {route!r}"[:300])
    score = item.get("route_score")
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
        raise InvalidTicket(f"ticket {ticket_id}: route_score must be a finite number, got {describe_type(score)}")
    threshold = env_number("PRIORITY_SCORE_THRESHOLD", 0.15, minimum=-1.0, maximum=1.0)
    priority, action = decide(route, float(score), threshold)
    output = {
        "ticket_id": ticket_id,
        "route": route,
        "route_score": score,
        "priority": priority,
        "action": action,
        "status": "OK",
    }
    return output, {"priority": priority, "action": action}


def handler(event: object, context: object = None) -> dict[str, Any]:
    return run_step("postprocess", event, postprocess, context)
