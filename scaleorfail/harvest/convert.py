"""A parsed history (scaleorfail.history.Timeline) as the record's Execution."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from scaleorfail import history
from scaleorfail.record import model

CAUSE_CHARS = 2000


def _offset(value: float | None, origin: float) -> float | None:
    return None if value is None else round(value - origin, 1)


def _visit(visit: history.Visit, origin: float) -> model.Visit:
    return model.Visit(
        step=visit.step,
        entered=_offset(visit.entered, origin),
        exited=_offset(visit.exited, origin),
        attempts=tuple(
            model.Attempt(
                scheduled=_offset(a.scheduled, origin),
                started=_offset(a.started, origin),
                ended=_offset(a.ended, origin),
                error=a.error,
                request_id=a.request_id,
            )
            for a in visit.attempts
        ),
    )


def execution(
    name: str,
    status: dict[str, Any],
    timeline: history.Timeline | None,
    pages: int,
    batch_size: int,
    map_runs: tuple[model.MapRun, ...] = (),
) -> model.Execution:
    """One execution of the run: its listed status, and its history (with its Map Runs' children) when it was read."""
    start: datetime = status["start"]
    stop: datetime | None = status.get("stop")
    start_ms = round(start.timestamp() * 1000.0, 1)
    stop_ms = round(stop.timestamp() * 1000.0, 1) if stop else None
    if timeline is None:
        return model.Execution(
            name, str(status["arn"]), str(status["status"]), start_ms, stop_ms, batch_size, history_pages=pages
        )
    origin = timeline.start
    return model.Execution(
        name=name,
        arn=str(status["arn"]),
        status=str(status["status"]),
        start_ms=round(origin, 1),
        stop_ms=round(timeline.stop, 1) if timeline.stop is not None else stop_ms,
        batch_size=batch_size,
        history_pages=pages,
        history_read=True,
        error=timeline.error,
        cause=(timeline.cause or "")[:CAUSE_CHARS] or None,
        events=timeline.events,
        state_transitions=timeline.state_transitions,
        map_started=_offset(timeline.map_started, origin),
        map_length=timeline.map_length,
        states=tuple(_visit(v, origin) for v in timeline.top),
        items=tuple(
            model.Item(
                index=item.index,
                start=_offset(item.started, origin),
                end=_offset(item.ended, origin),
                status=item.status,
                visits=tuple(_visit(v, origin) for v in item.visits),
            )
            for item in timeline.items
        ),
        map_mode="distributed" if timeline.map_runs else "inline",
        map_runs=map_runs,
    )
