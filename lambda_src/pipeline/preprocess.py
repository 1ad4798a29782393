"""Preprocess: validate a ticket, normalise its text, count tokens, stamp a receive time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pipeline.common import count_tokens, require_clean_text, require_ticket_id, run_step


def preprocess(ticket: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    ticket_id = require_ticket_id(ticket)
    text = require_clean_text(ticket, ticket_id)
    token_count = count_tokens(text)
    output = {
        "ticket_id": ticket_id,
        "text": text,
        "char_count": len(text),
        "token_count": token_count,
        "received_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }
    return output, {"token_count": token_count, "char_count": len(text)}


def handler(event: object, context: object = None) -> dict[str, Any]:
    return run_step("preprocess", event, preprocess, context)
