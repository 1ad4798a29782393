// CloudWatch Logs Insights: log groups, saved queries, the editor, a time range, results and
// statistics - and AWS's own error when it refuses a query.
import { append, clear, el, fmtNumber, get, heading, post, section, showError, table } from "./common.js";

const RANGES = [[300, "5 minutes"], [900, "15 minutes"], [3600, "1 hour"], [10800, "3 hours"], [43200, "12 hours"], [86400, "1 day"]];

export async function render(root) {
  const data = await get("/api/logs/groups");
  const chosen = new Set();
  const editor = el("textarea", { id: "query", rows: 8, cols: 100, spellcheck: "false", "aria-label": "query" });
  editor.value = new URLSearchParams(window.location.search).get("query") || "fields @timestamp, @message\n| sort @timestamp desc\n| limit 20";
  const range = el("select", { id: "range", "aria-label": "time range" }, RANGES.map(([s, t]) => el("option", { value: s, selected: s === 3600 }, t)));
  const run = el("button", { type: "button", class: "primary", id: "run-query" }, "Run query");
  const statusLine = el("p", { id: "query-status", class: "muted" });
  const problem = el("div", { id: "query-error" });
  const results = el("div", { id: "results" });

  const groupFilter = el("input", { type: "search", placeholder: "filter log groups", "aria-label": "filter log groups" });
  const groupList = el("ul", { class: "checklist", id: "log-groups" });
  const boxes = new Map();
  for (const group of data.groups) {
    const box = el("input", { type: "checkbox", value: group.name });
    box.addEventListener("change", () => (box.checked ? chosen.add(group.name) : chosen.delete(group.name)));
    boxes.set(group.name, box);
    groupList.append(el("li", { "data-group": group.name }, el("label", {}, box, ` ${group.name}`)));
  }
  groupFilter.addEventListener("input", () => {
    for (const li of groupList.children) li.hidden = !li.dataset.group.toLowerCase().includes(groupFilter.value.toLowerCase());
  });
  const choose = (names) => {
    chosen.clear();
    for (const [name, box] of boxes) {
      box.checked = names.includes(name);
      if (box.checked) chosen.add(name);
    }
  };
  const lambdaGroups = data.groups.map((g) => g.name).filter((n) => n.startsWith("/aws/lambda/"));
  choose(lambdaGroups.slice(0, 3));

  const saved = el("ul", { class: "saved", id: "saved-queries" }, data.saved.map((q) => {
    const b = el("button", { type: "button", class: "linkish", "data-query": q.name }, q.name);
    b.addEventListener("click", () => {
      editor.value = q.query;
      if (q.groups.length) choose(q.groups);
    });
    return el("li", {}, b);
  }));

  run.addEventListener("click", async () => {
    clear(problem);
    clear(results);
    statusLine.textContent = "Starting…";
    let started;
    try {
      started = await post("/api/logs/insights", {}, { query: editor.value, groups: [...chosen], range_s: Number(range.value) });
    } catch (error) {
      statusLine.textContent = "Query refused";
      showError(error, problem);
      return;
    }
    for (let i = 0; i < 300; i += 1) {
      const answer = await get("/api/logs/insights", { id: started.queryId });
      statusLine.textContent = `Status: ${answer.status}`;
      if (!["Scheduled", "Running"].includes(answer.status)) {
        show(answer);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  });

  function show(answer) {
    const s = answer.statistics || {};
    append(
      results,
      el("p", { id: "query-stats" }, `${fmtNumber(answer.rows.length)} rows · ${fmtNumber(s.recordsMatched)} records matched · ${fmtNumber(s.recordsScanned)} records scanned · ${fmtNumber(s.bytesScanned)} bytes scanned`),
      answer.rows.length ? table(answer.fields.map((f) => [f, f]), answer.rows, { class: "grid results" }) : el("p", {}, "No rows."),
    );
  }

  append(
    root,
    heading("Logs Insights"),
    el("div", { class: "insights" },
      el("aside", {}, section("Log groups", groupFilter, groupList), section("Saved queries", saved)),
      el("div", {}, editor, el("div", { class: "toolbar" }, range, run), statusLine, problem, results)),
  );
}
