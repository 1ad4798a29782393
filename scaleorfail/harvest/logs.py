"""The run's log evidence, read at harvest and frozen into the record.

Lambda logs (``/aws/lambda/<function>``): FilterLogEvents over the run's window, then
each line is tied to its invocation by the RequestId it names - START/END/REPORT and the
runtime's failure lines name it in their text, the handlers' JSON lines in their
``function_request_id`` key (the Lambda context's ``aws_request_id``) - and only the
invocations of this run's task attempts are kept (the history carries each attempt's
RequestId). A line that names none (the runtime's ``[ERROR]`` record, a print, a handler
line logged before the handlers wrote the key) is tied to the START..END it falls in, in
its log stream. Where the history has no RequestId for a step (an older history, another
integration), that step's lines are kept by the run's exact window in milliseconds
instead, and the scope says so.

The execution log (the state machine's log group): FilterLogEvents of TaskFailed events,
kept by the run's execution ARNs. And the workshop's duration-by-step Logs Insights query,
run over the run's exact window (a `toMillis(@timestamp)` filter), for the portfolio.

Nothing here is fatal: what cannot be read is named in ``Logs.problems``.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from scaleorfail.pipeline import STEP_FUNCTIONS
from scaleorfail.record import model
from scaleorfail.stats import percentile

SKEW_MS = 1000  # read this much either side when lines are kept by request id (clock skew between services)
MAX_ROWS = 200
MESSAGE_CHARS = 1000
INSIGHTS_TIMEOUT_S = 60.0
INSIGHTS_POLL_S = 0.25
_REQUEST = re.compile(r"RequestId: ([0-9A-Za-z-]+)")
_TIMED_OUT = re.compile(r"^\S+ ([0-9a-f-]{36}) Task timed out")
_REPORT = re.compile(
    r"REPORT RequestId: (?P<id>\S+)\s+Duration: (?P<duration>[\d.]+) ms.*?Memory Size: (?P<size>\d+) MB"
    r"\s+Max Memory Used: (?P<used>\d+) MB"
)
_INIT = re.compile(r"Init Duration: ([\d.]+) ms")
REQUEST_KEY = "function_request_id"  # the handlers' log key for the Lambda context's aws_request_id
NOTABLE = ('"error"', "[ERROR]", "Task timed out", "Runtime exited", "PayloadTooLarge", "Status: timeout")

Call = Callable[..., Any]


@dataclass
class _Invocations:
    """One function's lines, tied to their invocations."""

    by_request: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    unattributed: list[dict[str, Any]] = field(default_factory=list)


def filter_events(call: Call, logs: Any, group: str, start_ms: int, stop_ms: int, pattern: str = "") -> list[Any]:
    events: list[dict[str, Any]] = []
    token = None
    while True:
        kwargs: dict[str, Any] = {"logGroupName": group, "startTime": start_ms, "endTime": stop_ms}
        if pattern:
            kwargs["filterPattern"] = pattern
        if token:
            kwargs["nextToken"] = token
        page = call("FilterLogEvents", logs.filter_log_events, **kwargs)
        events += page.get("events", [])
        token = page.get("nextToken")
        if not token:
            return events


def _logged_request_id(message: str) -> str | None:
    """The ``function_request_id`` of a structured (JSON) handler line."""
    if not message.lstrip().startswith("{"):
        return None
    try:
        line = json.loads(message)
    except ValueError:
        return None
    request = line.get(REQUEST_KEY) if isinstance(line, dict) else None
    return request if isinstance(request, str) and request else None


def own_request_id(message: str) -> str | None:
    """The RequestId a line names: a handler's JSON key, or the runtime's text (START, REPORT, timeouts)."""
    logged = _logged_request_id(message)
    if logged:
        return logged
    match = _REQUEST.search(message) or _TIMED_OUT.search(message)
    return match.group(1) if match else None


def attribute(events: Iterable[dict[str, Any]]) -> _Invocations:
    """Tie each line to its invocation: the RequestId it names, else the START..END it falls in (per log stream)."""
    found = _Invocations()
    current: dict[str, str | None] = {}
    for event in events:
        message = str(event.get("message", ""))
        stream = str(event.get("logStreamName", ""))
        own = own_request_id(message)
        if message.startswith("START RequestId:"):
            current[stream] = own
        request = own or current.get(stream)
        if message.startswith("END RequestId:"):
            current[stream] = None
        if request:
            found.by_request.setdefault(request, []).append(event)
        else:
            found.unattributed.append(event)
    return found


def _row(event: dict[str, Any], group: str, request: str | None) -> model.LogRow:
    return model.LogRow(
        at_ms=int(event.get("timestamp", 0)),
        log_group=group,
        message=str(event.get("message", ""))[:MESSAGE_CHARS],
        stream=str(event.get("logStreamName", "")),
        request_id=request,
    )


def windows(events: Iterable[dict[str, Any]]) -> list[tuple[int, int]]:
    """Each invocation's START .. END (epoch ms), by the RequestId both lines name."""
    starts: dict[str, int] = {}
    ends: dict[str, int] = {}
    for event in events:
        message = str(event.get("message", ""))
        if message.startswith(("START RequestId:", "END RequestId:")) and (request := own_request_id(message)):
            (starts if message.startswith("START") else ends)[request] = int(event.get("timestamp", 0))
    return [(starts[r], ends[r]) for r in starts if r in ends]


def peak(spans: Iterable[tuple[int, int]]) -> int | None:
    """Most spans open at once (one that ends as another starts, in the same millisecond, is not counted twice)."""
    changes = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    if not changes:
        return None
    level = most = 0
    for _, change in changes:  # at the same moment -1 sorts before +1: an end before a start
        level += change
        most = max(most, level)
    return most


def summarise(step: str, group: str, events: list[dict[str, Any]]) -> model.FunctionLogs:
    """What the memory-used and cold-starts queries aggregate, from this run's REPORT lines."""
    reports = [(m, e) for e in events if (m := _REPORT.search(str(e.get("message", ""))))]
    inits = [float(i.group(1)) for m, e in reports if (i := _INIT.search(str(e.get("message", ""))))]
    used = [int(m.group("used")) for m, _ in reports]
    sizes = [int(m.group("size")) for m, _ in reports]
    durations = [float(m.group("duration")) for m, _ in reports]
    return model.FunctionLogs(
        step=step,
        log_group=group,
        invocations=len(reports),
        cold_starts=len(inits),
        init_ms_max=max(inits, default=None),
        max_memory_used_mb=max(used, default=None),
        memory_size_mb=max(sizes, default=None),
        at_memory_limit=sum(1 for m, _ in reports if int(m.group("used")) >= int(m.group("size"))),
        timeouts=sum(1 for _, e in reports if "Status: timeout" in str(e.get("message", ""))),
        peak_concurrency=peak(windows(events)),
        duration_ms_p50=percentile(durations, 50),
        duration_ms_mean=round(statistics.fmean(durations), 3) if durations else None,
        init_ms_mean=round(statistics.fmean(inits), 3) if inits else None,
    )


def _request_ids(executions: Iterable[model.Execution]) -> tuple[dict[str, set[str]], dict[str, int]]:
    """Per step: the RequestIds of the run's attempts that ran, and how many ran without one."""
    ids: dict[str, set[str]] = {}
    unknown: Counter[str] = Counter()
    for execution in executions:
        for item in execution.items:
            for visit in item.visits:
                for attempt in visit.attempts:
                    if not attempt.ran or attempt.error in ("Lambda.TooManyRequestsException",):
                        continue
                    if attempt.request_id:
                        ids.setdefault(visit.step, set()).add(attempt.request_id)
                    else:
                        unknown[visit.step] += 1
    return ids, dict(unknown)


@dataclass
class LambdaLogs:
    """The run's Lambda log evidence: summaries per function, notable rows, concurrency from START..END."""

    scope: model.LogScope | None
    functions: tuple[model.FunctionLogs, ...]
    rows: list[model.LogRow]
    problems: list[str]
    peak_concurrency: int | None  # all the functions together (the account's concurrency)


def lambda_logs(
    call: Call,
    logs: Any,
    groups: dict[str, str],
    executions: tuple[model.Execution, ...],
    start_ms: int,
    stop_ms: int,
) -> LambdaLogs:
    """The run's Lambda log lines: summaries per function, the notable rows, and what could not be read."""
    ids, unknown = _request_ids(executions)
    summaries: list[model.FunctionLogs] = []
    rows: list[model.LogRow] = []
    problems: list[str] = []
    spans: list[tuple[int, int]] = []
    read = kept = 0
    scopes: list[str] = []
    for step, key in STEP_FUNCTIONS.items():
        group = groups.get(key)
        if not group:
            continue
        by_id = step in ids and not unknown.get(step)
        try:
            events = filter_events(
                call, logs, group, start_ms - (SKEW_MS if by_id else 0), stop_ms + (SKEW_MS if by_id else 0)
            )
        except Exception as error:  # supporting evidence: the record goes on without it
            problems.append(f"{group}: {type(error).__name__}: {error}")
            continue
        read += len(events)
        attributed = attribute(events)
        mine: list[tuple[str | None, dict[str, Any]]]
        if by_id:
            mine = [(r, e) for r, lines in attributed.by_request.items() if r in ids[step] for e in lines]
            scopes.append(f"{step} by request id")
        else:
            mine = [(r, e) for r, lines in attributed.by_request.items() for e in lines]
            mine += [(None, e) for e in attributed.unattributed]
            scopes.append(f"{step} by time window (ms)")
        mine.sort(key=lambda pair: int(pair[1].get("timestamp", 0)))
        kept += len(mine)
        summaries.append(summarise(step, group, [e for _, e in mine]))
        spans += windows(e for _, e in mine)
        rows += [_row(e, group, r) for r, e in mine if any(n in str(e.get("message", "")) for n in NOTABLE)]
    if not scopes:
        return LambdaLogs(None, (), rows, problems, None)
    scope = model.LogScope(
        api="FilterLogEvents",
        log_groups=tuple(s.log_group for s in summaries),
        start_ms=start_ms,
        stop_ms=stop_ms,
        by=", ".join(scopes),
        read=read,
        kept=kept,
    )
    return LambdaLogs(scope, tuple(summaries), rows, problems, peak(spans))


def execution_log(
    call: Call, logs: Any, group: str, arns: set[str], start_ms: int, stop_ms: int
) -> tuple[model.LogScope, dict[str, int]]:
    """TaskFailed events of the run's executions in the execution log, by error."""
    events = filter_events(call, logs, group, start_ms - SKEW_MS, stop_ms + SKEW_MS, '{ $.type = "TaskFailed" }')
    failures: Counter[str] = Counter()
    kept = 0
    for event in events:
        try:
            record = json.loads(str(event.get("message", "")))
        except ValueError:
            continue
        if not isinstance(record, dict) or record.get("execution_arn") not in arns:
            continue
        kept += 1
        failures[str((record.get("details") or {}).get("error") or "unknown")] += 1
    scope = model.LogScope("FilterLogEvents", (group,), start_ms, stop_ms, "execution ARN", len(events), kept)
    return scope, dict(sorted(failures.items()))


def window_filter(start_ms: int, stop_ms: int) -> str:
    """A Logs Insights command keeping the rows of this exact window (StartQuery takes whole seconds)."""
    return f"filter toMillis(@timestamp) >= {start_ms} and toMillis(@timestamp) <= {stop_ms}"


def insights_query(
    call: Call, logs: Any, key: str, title: str, text: str, groups: list[str], start_ms: int, stop_ms: int
) -> model.InsightsResult:
    """A Logs Insights query over the run's exact window; its rows (raises when it does not complete)."""
    query = f"{window_filter(start_ms, stop_ms)}\n| {text.strip()}"
    query_id = call(
        "StartQuery",
        logs.start_query,
        logGroupNames=groups,
        startTime=start_ms // 1000,
        endTime=stop_ms // 1000 + 1,
        queryString=query,
    )["queryId"]
    deadline = time.monotonic() + INSIGHTS_TIMEOUT_S
    while True:
        result = call("GetQueryResults", logs.get_query_results, queryId=query_id)
        if result["status"] in ("Complete", "Failed", "Cancelled", "Timeout"):
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"the {key} query did not finish within {INSIGHTS_TIMEOUT_S:g} s")
        time.sleep(INSIGHTS_POLL_S)
    if result["status"] != "Complete":
        raise RuntimeError(f"the {key} query ended {result['status']}")
    rows = tuple({f["field"]: f["value"] for f in row if f["field"] != "@ptr"} for row in result["results"])
    return model.InsightsResult(key, title, query, start_ms, stop_ms, rows)
