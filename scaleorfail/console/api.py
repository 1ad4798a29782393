"""The console's JSON API: what the pages' scripts read, and the few actions a learner takes.

Reads are GET. Actions are POST (security.py checks the CSRF token and the Origin):
starting and stopping executions change the account and are refused when read-only;
running a Logs Insights query and harvesting a run only read it, and are allowed.
"""

from __future__ import annotations

import json
import time
from typing import Any

from flask import Flask, Response, jsonify, request, send_file

from scaleorfail.console import asl, dashboards, labruns, logs, resources
from scaleorfail.console.aws import ApiError
from scaleorfail.console.context import Console
from scaleorfail.console.executions import Tracked
from scaleorfail.console.model import ExecutionModel

MAX_INPUT_BYTES = 256 * 1024  # StartExecution's input limit
PAGE_MAX = 500


def _int(name: str, default: int, low: int = 0, high: int = 10**9) -> int:
    try:
        value = int(request.args.get(name, default))
    except ValueError:
        raise ApiError("InvalidParameter", f"{name} must be a whole number", 400) from None
    return max(low, min(high, value))


def _arn() -> str:
    arn = request.args.get("arn", "")
    if not arn.startswith("arn:") or len(arn) > 2048:
        raise ApiError("InvalidParameter", "arn= must be an ARN", 400)
    return arn


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def error_payload(cause: str | None) -> dict[str, Any] | None:
    """A Lambda error payload (a cause that is JSON with errorType/errorMessage): type, message, stack trace."""
    if not cause:
        return None
    try:
        payload = json.loads(cause)
    except ValueError:
        return None
    if not isinstance(payload, dict) or not ({"errorType", "errorMessage"} & set(payload)):
        return None
    stack = payload.get("stackTrace") or []
    return {
        "type": payload.get("errorType"),
        "message": payload.get("errorMessage"),
        "stack": [str(line) for line in stack] if isinstance(stack, list) else [str(stack)],
        "request_id": payload.get("requestId"),
    }


def _failure(error: str | None, cause: str | None) -> dict[str, Any] | None:
    if not error and not cause:
        return None
    return {"error": error, "cause": cause, "payload": error_payload(cause)}


def execution_summary(tracked: Tracked, full: bool, iteration: tuple[str, int] | None) -> dict[str, Any]:
    model: ExecutionModel = tracked.model
    description = tracked.description
    status = model.status if model.status != "RUNNING" else str(description.get("status", "RUNNING"))
    failed = model.failed_visit()
    out: dict[str, Any] = {
        "arn": tracked.arn,
        "name": description.get("name"),
        "state_machine_arn": tracked.state_machine_arn,
        "status": status,
        "start": model.start or _ms(description.get("startDate")),
        "stop": model.stop or _ms(description.get("stopDate")),
        "events": len(model.events),
        "last_id": model.last_id,
        "transitions": sum(n for kind, n in model.type_counts.items() if kind.endswith("StateEntered")),
        "states": model.state_statuses(iteration),
        "maps": {name: run.counts() | {"status": run.status} for name, run in model.maps.items()},
        "failure": _failure(model.error or description.get("error"), model.cause or description.get("cause")),
        "failed_state": model.failed_state(),
        "failed_visit": failed.to_json(model.states, data=True) if failed else None,
        "live": status == "RUNNING",
        "loading": tracked.loading,
        "problem": tracked.problem,
        "tick": {
            "calls": tracked.last_tick.calls,
            "new_events": tracked.last_tick.new_events,
            "ms": round(tracked.last_tick.seconds * 1000, 2),
            "skipped": tracked.last_tick.skipped,
        },
    }
    if failed and failed.attempts:
        out["failed_visit"]["payload"] = error_payload(failed.attempts[-1].cause)
    if full:
        out["input"] = model.input if model.input is not None else description.get("input")
        out["graph"] = asl.build(tracked.definition).to_json()
        out["definition_states"] = {
            name: {"Type": spec.get("Type"), "Resource": spec.get("Resource")} for name, spec in model.states.items()
        }
    if not out["live"]:
        out["output"] = model.output if model.output is not None else description.get("output")
    return out


def _ms(value: Any) -> float | None:
    return value.timestamp() * 1000.0 if hasattr(value, "timestamp") else None


def register(app: Flask, console: Console) -> None:  # noqa: PLR0915 - one route table
    api = console.api

    @app.get("/api/console")
    def _console() -> Response:
        return jsonify(console.info())

    # -- Step Functions --------------------------------------------------------------------------------

    @app.get("/api/statemachines")
    def _machines() -> Response:
        out = []
        token = None
        while True:
            page = api.call("stepfunctions", "ListStateMachines", **({"nextToken": token} if token else {}))
            out += [
                {
                    "name": m["name"],
                    "arn": m["stateMachineArn"],
                    "type": m.get("type"),
                    "created": _iso(m.get("creationDate")),
                }
                for m in page.get("stateMachines", [])
            ]
            token = page.get("nextToken")
            if not token:
                return jsonify({"statemachines": out})

    @app.get("/api/statemachine")
    def _machine() -> Response:
        arn = _arn()
        found = api.call("stepfunctions", "DescribeStateMachine", stateMachineArn=arn)
        try:
            definition = json.loads(found.get("definition") or "{}")
        except ValueError:
            definition = {}
        return jsonify(
            {
                "name": found.get("name"),
                "arn": arn,
                "type": found.get("type"),
                "status": found.get("status"),
                "role": found.get("roleArn"),
                "created": _iso(found.get("creationDate")),
                "definition": found.get("definition"),
                "graph": asl.build(definition if isinstance(definition, dict) else {}).to_json(),
                "sample_input": _sample_input(console, arn),
                "logging": found.get("loggingConfiguration"),
            }
        )

    @app.get("/api/statemachine/executions")
    def _machine_executions() -> Response:
        kwargs: dict[str, Any] = {"stateMachineArn": _arn(), "maxResults": _int("limit", 100, 1, 1000)}
        status = request.args.get("status", "")
        if status:
            kwargs["statusFilter"] = status
        token = request.args.get("token", "")
        if token:
            kwargs["nextToken"] = token
        began = time.perf_counter()
        page = api.call("stepfunctions", "ListExecutions", **kwargs)
        rows = [
            {
                "name": e.get("name"),
                "arn": e.get("executionArn"),
                "status": e.get("status"),
                "start": _ms(e.get("startDate")),
                "stop": _ms(e.get("stopDate")),
            }
            for e in page.get("executions", [])
        ]
        return jsonify({"executions": rows, "next": page.get("nextToken"), "ms": (time.perf_counter() - began) * 1e3})

    @app.post("/api/statemachine/executions")
    def _start() -> Response:
        arn = _arn()
        body = request.get_json(silent=True) or {}
        text = str(body.get("input") or "{}")
        if len(text.encode()) > MAX_INPUT_BYTES:
            raise ApiError("InvalidExecutionInput", "the input is above 256 KB, StartExecution's limit", 400)
        try:
            json.loads(text)
        except ValueError as error:
            raise ApiError("InvalidExecutionInput", f"the input is not JSON: {error}", 400) from None
        kwargs: dict[str, Any] = {"stateMachineArn": arn, "input": text}
        if body.get("name"):
            kwargs["name"] = str(body["name"])[:80]
        started = api.change("stepfunctions", "StartExecution", **kwargs)
        return jsonify({"arn": started["executionArn"]})

    @app.post("/api/execution/stop")
    def _stop() -> Response:
        arn = _arn()
        api.change(
            "stepfunctions",
            "StopExecution",
            executionArn=arn,
            error="Console.Stop",
            cause="stopped from the lab console",
        )
        console.executions.get(arn)  # read the abort into the cache now
        return jsonify({"stopped": arn})

    @app.get("/api/execution")
    def _execution() -> Response:
        tracked = console.executions.get(_arn())
        chosen = request.args.get("iteration", "")
        iteration = None
        if ":" in chosen:
            name, _, index = chosen.rpartition(":")
            iteration = (name, int(index)) if index.isdigit() else None
        with tracked.lock:
            return jsonify(execution_summary(tracked, request.args.get("full") == "1", iteration))

    def _tracked() -> Tracked:
        return console.executions.cached(_arn())

    @app.get("/api/execution/events")
    def _events() -> Response:
        tracked = _tracked()
        with tracked.lock:
            page = tracked.model.events_page(
                _int("offset", 0),
                _int("limit", 100, 1, PAGE_MAX),
                request.args.get("type", ""),
                request.args.get("q", "")[:200],
                newest=request.args.get("order") == "newest",
            )
        return jsonify(page)

    @app.get("/api/execution/table")
    def _table() -> Response:
        tracked = _tracked()
        offset, limit = _int("offset", 0), _int("limit", 100, 1, PAGE_MAX)
        with tracked.lock:
            model = tracked.model
            rows = [v.to_json(model.states) for v in model.visits[offset : offset + limit]]
            return jsonify({"total": len(model.visits), "offset": offset, "rows": rows})

    @app.get("/api/execution/iterations")
    def _iterations() -> Response:
        tracked = _tracked()
        offset, limit = _int("offset", 0), _int("limit", 50, 1, PAGE_MAX)
        wanted = request.args.get("status", "")
        with tracked.lock:
            run = tracked.model.maps.get(request.args.get("map", ""))
            if run is None:
                return jsonify({"total": 0, "iterations": [], "counts": {}})
            chosen = sorted(
                (i for i in run.iterations.values() if not wanted or i.status == wanted), key=lambda i: i.index
            )
            return jsonify(
                {
                    "total": len(chosen),
                    "offset": offset,
                    "iterations": [i.to_json() for i in chosen[offset : offset + limit]],
                    "counts": run.counts(),
                }
            )

    @app.get("/api/execution/iteration")
    def _iteration() -> Response:
        tracked = _tracked()
        index = _int("index", 0)
        with tracked.lock:
            model = tracked.model
            run = model.maps.get(request.args.get("map", ""))
            found = run.iterations.get(index) if run else None
            if run is None or found is None:
                raise ApiError("NotFound", "no such iteration (yet)", 404)
            visits = []
            for visit in found.visits:
                entry = visit.to_json(model.states, data=True)
                entry["payload"] = error_payload(visit.attempts[-1].cause) if visit.attempts else None
                visits.append(entry)
            return jsonify(found.to_json() | {"map": run.name, "visits": visits})

    # -- CloudWatch, Logs, Lambda -----------------------------------------------------------------------

    @app.get("/api/dashboards")
    def _dashboards() -> Response:
        return jsonify({"dashboards": dashboards.listing(api)})

    @app.get("/api/dashboard")
    def _dashboard() -> Response:
        return jsonify(dashboards.describe(api, request.args.get("name", "")))

    @app.get("/api/dashboard/data")
    def _dashboard_data() -> Response:
        end = time.time()
        range_s = _int("range", dashboards.DEFAULT_RANGE_S, 60, 15 * 86400)
        return jsonify(dashboards.data(api, request.args.get("name", ""), end - range_s, end + 60))

    @app.get("/api/alarms")
    def _alarms() -> Response:
        return jsonify({"alarms": resources.alarms(api)})

    @app.get("/api/alarm/history")
    def _alarm_history() -> Response:
        return jsonify({"history": resources.alarm_history(api, request.args.get("name", ""))})

    @app.get("/api/functions")
    def _functions() -> Response:
        return jsonify(resources.functions(api))

    @app.get("/api/logs/groups")
    def _log_groups() -> Response:
        return jsonify({"groups": logs.groups(api), "saved": logs.saved(api)})

    @app.post("/api/logs/insights")
    def _insights_start() -> Response:
        body = request.get_json(silent=True) or {}
        now = int(time.time())
        range_s = max(60, min(int(body.get("range_s") or 3600), 30 * 86400))
        groups = [str(g) for g in body.get("groups") or []]
        query_id = logs.start(api, str(body.get("query") or ""), groups, now - range_s, now + 60)
        return jsonify({"queryId": query_id})

    @app.get("/api/logs/insights")
    def _insights_results() -> Response:
        return jsonify(logs.results(api, request.args.get("id", "")))

    # -- the lab's runs ---------------------------------------------------------------------------------

    @app.get("/api/runs")
    def _runs() -> Response:
        return jsonify({"runs": labruns.listing()})

    @app.get("/api/run")
    def _run() -> Response:
        return jsonify(labruns.detail(request.args.get("run", ""), console.executions, console.paces))

    @app.get("/api/runs/compare")
    def _compare() -> Response:
        return jsonify(labruns.comparison(request.args.getlist("run")))

    @app.get("/runs/<selector>/plots/<name>.png")
    def _plot(selector: str, name: str) -> Response:
        return send_file(labruns.plot(selector, name), mimetype="image/png", max_age=0)


def _sample_input(console: Console, arn: str) -> str:
    """The input editor's start: three dataset tickets for the lab's own state machine, else {}."""
    from scaleorfail import target as targets

    stored = targets.read_outputs_file(console.api.target.name) or {}
    if (stored.get("outputs") or {}).get("state_machine_arn") != arn:
        return "{}"
    try:
        from scaleorfail.executions import sample_tickets

        tickets = sample_tickets(3)
    except Exception:
        tickets = [{"ticket_id": "T-0001", "text": "I was charged twice for my subscription"}]
    return json.dumps({"tickets": tickets, "max_concurrency": 2}, indent=2)
