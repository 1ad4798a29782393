"""The console's web app: its pages (one HTML shell each, drawn by the page's script) and its JSON API.

Pages live at the AWS console's paths (/states/executions/<arn>, /cloudwatch/dashboards/<name>
...), so they can be bookmarked; each page's script reads /api/... and builds the page with
DOM calls. The API reads AWS through the console's Api (one quota for every page); a page
that is live polls its endpoint (see docs/console.md, "The refresh model").
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify, render_template, request

from scaleorfail.console import security
from scaleorfail.console.aws import ApiError
from scaleorfail.console.context import Console
from scaleorfail.errors import UserError

PAGES = {
    "home": "Lab console",
    "statemachines": "State machines",
    "statemachine": "State machine",
    "execution": "Execution",
    "dashboards": "Dashboards",
    "dashboard": "Dashboard",
    "alarms": "Alarms",
    "insights": "Logs Insights",
    "functions": "Lambda functions",
    "runs": "Runs",
    "run": "Run",
}
NAV = [
    ("/states/statemachines", "Step Functions"),
    ("/cloudwatch/dashboards", "Dashboards"),
    ("/cloudwatch/alarms", "Alarms"),
    ("/logs/insights", "Logs Insights"),
    ("/lambda/functions", "Lambda"),
    ("/runs", "Runs"),
]


def create_app(console: Console) -> Flask:
    app = Flask(__name__, static_folder="static", template_folder="templates")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["sof_console"] = console
    security.install(app, security.allowed_hosts(console.port, console.host))
    _pages(app, console)
    from scaleorfail.console import api

    api.register(app, console)

    @app.get("/favicon.ico")
    def _favicon() -> Response:
        return Response(status=204)

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> tuple[Response, int]:
        return jsonify({"error": error.code, "message": error.message}), error.status

    @app.errorhandler(UserError)
    def _user_error(error: UserError) -> tuple[Response, int]:
        return jsonify({"error": "NotFound", "message": error.cause, "fix": error.fix}), 404

    @app.errorhandler(404)
    def _not_found(_: Any) -> tuple[Response, int]:
        if request.path.startswith("/api/"):
            return jsonify({"error": "NotFound", "message": f"no such endpoint {request.path}"}), 404
        return _page(console, "home", "", "No such page"), 404

    return app


def _page(console: Console, page: str, argument: str = "", notice: str = "") -> Response:
    html = render_template(
        "page.html",
        page=page,
        title=PAGES[page],
        argument=argument,
        notice=notice,
        nav=NAV,
        csrf=security.csrf_token(),
        info=console.info(),
    )
    return Response(html, mimetype="text/html")


def _pages(app: Flask, console: Console) -> None:
    routes: list[tuple[str, str, str | None]] = [
        ("/", "home", None),
        ("/states", "statemachines", None),
        ("/states/statemachines", "statemachines", None),
        ("/states/statemachines/<path:arn>", "statemachine", "arn"),
        ("/states/executions/<path:arn>", "execution", "arn"),
        ("/cloudwatch/dashboards", "dashboards", None),
        ("/cloudwatch/dashboards/<path:name>", "dashboard", "name"),
        ("/cloudwatch/alarms", "alarms", None),
        ("/logs/insights", "insights", None),
        ("/lambda/functions", "functions", None),
        ("/runs", "runs", None),
        ("/runs/<selector>", "run", "selector"),
    ]
    for rule, page, argument in routes:

        def view(page: str = page, argument: str | None = argument, **values: str) -> Response:
            return _page(console, page, values.get(argument, "") if argument else "")

        app.add_url_rule(rule, f"page_{page}_{rule}", view)
