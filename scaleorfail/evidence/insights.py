"""`sof insights`: the workshop's Logs Insights queries (and any other) on either target.

The queries are the files in terraform/queries/ - the same ones Terraform saves as query
definitions - run through StartQuery / GetQueryResults, printed as a table.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from tabulate import tabulate

from scaleorfail import terminal
from scaleorfail.errors import UserError
from scaleorfail.record.model import HarvestRecord
from scaleorfail.target import Target

COMMANDS = "fields, filter, parse, stats, sort, limit, display, dedup"

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
    try:
        query_id = logs.start_query(
            logGroupNames=log_groups,
            startTime=int(start.timestamp()),
            endTime=int(stop.timestamp()) + 1,
            queryString=query,
        )["queryId"]
    except ClientError as error:
        raise refused(error, query) from None
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


def refused(error: ClientError, query: str) -> UserError:
    """StartQuery's refusal as one line: AWS's message and where in the query the error is."""
    response: dict[str, Any] = dict(error.response)
    code = str(response.get("Error", {}).get("Code", ""))
    message = str(response.get("Error", {}).get("Message") or error)
    if code != "MalformedQueryException":
        return UserError(f"StartQuery refused the query ({code}): {message}", "check the log groups and the time range")
    location = (response.get("queryCompileError") or {}).get("location") or {}
    offset = location.get("startCharOffset")
    where = ""
    if isinstance(offset, int) and 0 <= offset < len(query):
        line = query.count("\n", 0, offset) + 1
        column = offset - (query.rfind("\n", 0, offset) + 1) + 1
        symbol = query[offset : max(offset + 1, int(location.get("endCharOffset") or offset) + 1)].strip()
        where = f" (line {line}, column {column}" + (f": {symbol!r})" if symbol else ")")
    return UserError(
        f"the query does not parse: {message}{where}",
        f"commands are {COMMANDS}, joined by '|'; the workshop's queries: {terminal.hint('sof insights --list')}",
    )


def render(rows: list[dict[str, str]], width: int = 160, fmt: str = "simple", columns: int | None = None) -> str:
    """The rows as a table; in the terminal's format ("simple") fitted to `columns` (default: the terminal)."""
    if not rows:
        return "(no rows)"
    names: list[str] = []
    for row in rows:
        names += [c for c in row if c not in names]
    cells = [[" ".join((row.get(c, "") or "")[:width].split()) for c in names] for row in rows]
    if fmt == "simple":
        return terminal.table(cells, names, columns)
    return str(tabulate(cells, headers=names, tablefmt=fmt))
