"""Logs Insights for the console: log groups, saved queries, StartQuery and its results.

A query runs through the ordinary StartQuery / GetQueryResults calls; a query AWS refuses
(MalformedQueryException, an unknown log group ...) comes back with AWS's own code and
message, which the page shows as it is.
"""

from __future__ import annotations

from typing import Any

from scaleorfail.console.aws import Api, ApiError

MAX_QUERY_CHARS = 10_000  # StartQuery's limit on queryString
MAX_GROUPS = 50  # StartQuery's limit on logGroupNames


def groups(api: Api) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = api.call("logs", "DescribeLogGroups", **({"nextToken": token} if token else {}))
        for group in page.get("logGroups", []):
            out.append(
                {
                    "name": group.get("logGroupName"),
                    "stored_bytes": group.get("storedBytes"),
                    "retention_days": group.get("retentionInDays"),
                }
            )
        token = page.get("nextToken")
        if not token or len(out) >= 2000:
            return out


def saved(api: Api) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = api.call("logs", "DescribeQueryDefinitions", **({"nextToken": token} if token else {}))
        for definition in page.get("queryDefinitions", []):
            out.append(
                {
                    "id": definition.get("queryDefinitionId"),
                    "name": definition.get("name"),
                    "query": definition.get("queryString"),
                    "groups": list(definition.get("logGroupNames") or []),
                }
            )
        token = page.get("nextToken")
        if not token:
            return sorted(out, key=lambda d: str(d["name"]))


def start(api: Api, query: str, log_groups: list[str], start_s: int, end_s: int) -> str:
    if not query.strip():
        raise ApiError("InvalidParameterException", "write a query first", 400)
    if len(query) > MAX_QUERY_CHARS:
        raise ApiError("InvalidParameterException", f"a query is at most {MAX_QUERY_CHARS} characters", 400)
    if not log_groups:
        raise ApiError("InvalidParameterException", "choose at least one log group", 400)
    if len(log_groups) > MAX_GROUPS:
        raise ApiError("InvalidParameterException", f"a query reads at most {MAX_GROUPS} log groups", 400)
    found = api.call(
        "logs", "StartQuery", logGroupNames=log_groups, startTime=start_s, endTime=end_s, queryString=query
    )
    return str(found["queryId"])


def results(api: Api, query_id: str) -> dict[str, Any]:
    found = api.call("logs", "GetQueryResults", queryId=query_id)
    rows = [{cell["field"]: cell.get("value") for cell in row} for row in found.get("results", [])]
    fields: list[str] = []
    for row in rows:
        for name in row:
            if name not in fields and name != "@ptr":
                fields.append(name)
    return {
        "status": found.get("status"),
        "fields": fields,
        "rows": [{k: v for k, v in row.items() if k != "@ptr"} for row in rows],
        "statistics": found.get("statistics") or {},
    }
