// The console's front page: the target, and where to go.
import { append, el, get, heading, link, machineHref, section, table } from "./common.js";

export async function render(root) {
  const [info, machines, dashboards, runs] = await Promise.all([
    get("/api/console"),
    get("/api/statemachines"),
    get("/api/dashboards"),
    get("/api/runs"),
  ]);
  append(
    root,
    heading("Lab console"),
    el("p", {}, `Target ${info.target} (${info.region})${info.endpoint ? ` at ${info.endpoint}` : ""}. `, info.read_only ? "Read-only: executions cannot be started or stopped here." : "Executions can be started and stopped from their pages."),
    section("State machines", machines.statemachines.length ? el("ul", {}, machines.statemachines.map((m) => el("li", {}, link(machineHref(m.arn), m.name)))) : el("p", {}, "none yet: make deploy")),
    section("Dashboards", dashboards.dashboards.length ? el("ul", {}, dashboards.dashboards.map((d) => el("li", {}, link(`/cloudwatch/dashboards/${encodeURIComponent(d.name)}`, d.name)))) : el("p", {}, "none yet")),
    section("Latest runs", runs.runs.length ? table([[(r) => link(`/runs/${encodeURIComponent(r.run_id)}`, r.label || r.run_id), "Run"], ["status", "Status"], ["tickets", "Tickets"], ["max_concurrency", "Max conc."]], runs.runs.slice(0, 8)) : el("p", {}, "No run in runs/ yet: make burst")),
    section("Other pages", el("ul", {}, [["/logs/insights", "Logs Insights"], ["/cloudwatch/alarms", "Alarms"], ["/lambda/functions", "Lambda functions"]].map(([h, t]) => el("li", {}, link(h, t))))),
  );
}
