"""`sof insights`: the workshop's Logs Insights queries (and any other) on either target.

The queries are the files in terraform/queries/ - the same ones Terraform saves as query
definitions - run through StartQuery / GetQueryResults, printed as a table.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from typing import Any

from tabulate import tabulate

from scaleorfail.errors import UserError
from scaleorfail.record.model import HarvestRecord
from scaleorfail.target import Target

POLL_S = 0.5
TIMEOUT_S = 120.0


def groups_for(kind: str, outputs: dict[str, Any]) -> list[str]:
    names = outputs["log_group_names"]
    if kind == "lambda":
        return [names[s] for s in ("preprocess", "embed", "postprocess")]
    if kind == "state_machine":
        return [names["state_machine"]]
    return [g.strip() for g in kind.split(",") if g.strip()]


def parse_since(text: str) -> timedelta:
    match = re.fullmatch(r"(\d+)\s*([smhd])", text.strip())
    if not match:
        raise UserError(f"--since {text!r} is not a duration", "use e.g. 15m, 2h, 1d")
    return timedelta(seconds=int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)])


def record_window(record: HarvestRecord) -> tuple[datetime, datetime]:
    """The exact window of a harvested run's executions, with 2 s either side for clock skew."""
    return record.window.start - timedelta(seconds=2), record.window.stop + timedelta(seconds=2)


def run(target: Target, query: str, log_groups: list[str], start: datetime, stop: datetime) -> list[dict[str, str]]:
    logs = target.client("logs")
    existing = {
        g["logGroupName"] for name in log_groups for g in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    }
    missing = [g for g in log_groups if g not in existing]
    if missing:
        raise UserError(f"no log group {', '.join(missing)} in the target", "deploy first: make deploy TARGET=...")
    query_id = logs.start_query(
        logGroupNames=log_groups,
        startTime=int(start.timestamp()),
        endTime=int(stop.timestamp()) + 1,
        queryString=query,
    )["queryId"]
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        result = logs.get_query_results(queryId=query_id)
        if result["status"] in ("Complete", "Failed", "Cancelled", "Timeout"):
            break
        if time.monotonic() > deadline:
            raise UserError(f"the query did not finish within {TIMEOUT_S:g} s", "narrow the time range with --since")
        time.sleep(POLL_S)
    if result["status"] != "Complete":
        raise UserError(f"the query ended {result['status']}", "check the query text")
    return [{f["field"]: f["value"] for f in row if f["field"] != "@ptr"} for row in result["results"]]


def render(rows: list[dict[str, str]], width: int = 160, fmt: str = "simple") -> str:
    if not rows:
        return "(no rows)"
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    cells = [[(row.get(c, "") or "")[:width].replace("\n", " ") for c in columns] for row in rows]
    return tabulate(cells, headers=columns, tablefmt=fmt)
