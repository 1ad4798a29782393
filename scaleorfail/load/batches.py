"""Ticket batches for executions, drawn from the dataset in order and cycling."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scaleorfail.errors import UserError
from scaleorfail.pipeline import BATCHES_PREFIX

MAX_INPUT_BYTES = 256 * 1024


def read_tickets(path: Path, limit: int | None = None) -> list[Any]:
    """The tickets of a JSON-lines file (the first `limit`); objects keep only ticket_id and text."""
    if not path.exists():
        raise UserError(f"no ticket file at {path}", "pass --tickets FILE (JSON lines with ticket_id and text)")
    tickets: list[Any] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                raise UserError(f"{path}:{number} is not JSON", "each line must be one JSON ticket") from None
            if isinstance(row, dict) and "ticket_id" in row and "text" in row:
                row = {"ticket_id": row["ticket_id"], "text": row["text"]}  # labels stay out of the input
            tickets.append(row)
            if len(tickets) == limit:
                break
    if not tickets:
        raise UserError(f"{path} holds no tickets", "add JSON lines with ticket_id and text")
    return tickets


class TicketPool:
    def __init__(self, path: Path) -> None:
        self.tickets = read_tickets(path)

    def batch(self, seq: int, size: int) -> list[Any]:
        """Batch number `seq`: the next `size` tickets, cycling; repeats get a unique .N suffix."""
        out = []
        for offset in range(size):
            position = seq * size + offset
            ticket = self.tickets[position % len(self.tickets)]
            cycle = position // len(self.tickets)
            if cycle and isinstance(ticket, dict) and isinstance(ticket.get("ticket_id"), str):
                ticket = {**ticket, "ticket_id": f"{ticket['ticket_id']}.{cycle}"}
            out.append(ticket)
        return out

    def largest_input_bytes(self, size: int, max_concurrency: int | None) -> int:
        """Size of the largest execution input a batch of `size` tickets can have.

        Batches are runs of consecutive tickets (cycling), so the answer is the largest
        cyclic window of `size` encoded tickets, plus separators, suffixes and the envelope.
        """
        lengths = [len(json.dumps(t, separators=(",", ":"))) for t in self.tickets]
        count = len(lengths)
        full_cycles, rest = divmod(size, count)
        doubled = lengths + lengths
        window = max(sum(doubled[start : start + rest]) for start in range(count)) if rest else 0
        suffix = 8 * size  # repeats carry ".N" (N < 10^7), however long the run
        body = full_cycles * sum(lengths) + window + suffix + size
        return body + len(json.dumps({"tickets": [], "max_concurrency": max_concurrency}, separators=(",", ":")))


def batch_key(execution_name: str) -> str:
    """Where a Distributed Map execution's tickets go in the map bucket (the ItemReader's object)."""
    return f"{BATCHES_PREFIX}{execution_name}.jsonl"


def jsonl(tickets: list[Any]) -> bytes:
    return "".join(json.dumps(t, separators=(",", ":")) + "\n" for t in tickets).encode("utf-8")


def distributed_input(key: str, max_concurrency: int | None) -> str:
    """A Distributed Map execution's input: the S3 key of its tickets (the 256 KB input limit no longer binds)."""
    payload: dict[str, Any] = {"tickets_key": key}
    if max_concurrency is not None:
        payload["max_concurrency"] = max_concurrency
    return json.dumps(payload, separators=(",", ":"))


def map_bucket(outputs: dict[str, Any]) -> str | None:
    """The stack's Distributed Map bucket, None when its Map is inline."""
    if outputs.get("map_mode") != "distributed":
        return None
    return str(outputs.get("map_bucket_name") or "") or None


def execution_input(tickets: list[Any], max_concurrency: int | None) -> str:
    payload: dict[str, Any] = {"tickets": tickets}
    if max_concurrency is not None:
        payload["max_concurrency"] = max_concurrency
    return json.dumps(payload, separators=(",", ":"))
