// One run: what its manifest says, its live progress (the progress line's numbers), and once
// harvested its comparison row, its RCA report and its plots.
import { append, badge, clear, el, executionHref, get, heading, link, markdown, poll, section, table } from "./common.js";

export async function render(root, selector) {
  let data = await get("/api/run", { run: selector });
  const progress = el("div", { id: "progress" });
  const facts = el("dl", { class: "facts" });
  const status = el("span", { id: "status" });
  append(root, el("p", { class: "crumbs" }, link("/runs", "Runs"), " › ", data.run_id), heading(data.label || data.run_id, status), facts, progress);
  const draw = () => {
    clear(status).append(badge(data.status));
    clear(facts);
    for (const [k, v] of [["Run id", data.run_id], ["Label", data.label], ["Profile", data.profile], ["Target", `${data.target} (${data.region})`], ["Started", data.started_at], ["Stopped", data.stopped_at || "-"], ["Max concurrency", (data.parameters || {}).max_concurrency], ["Tickets per execution", (data.parameters || {}).batch_size]]) {
      append(facts, el("dt", {}, k), el("dd", {}, v === undefined || v === null ? "-" : String(v)));
    }
    clear(progress);
    if (data.progress) append(progress, section("Progress", el("pre", { class: "progress-line", id: "progress-line" }, data.progress.line)));
  };
  draw();
  if (data.status === "unreadable") return;
  append(
    root,
    section(
      `Executions (${data.executions_total}, ${data.failed_starts} failed to start)`,
      table([[(r) => link(executionHref(r.arn), r.name), "Execution"], ["tickets", "Tickets"], ["started_at", "Started"], [(r) => data.finished[r.name] || "-", "Seen finishing"]], data.executions),
    ),
  );
  if (data.harvested) {
    const row = data.columns.map(([key, title]) => el("tr", {}, el("th", { scope: "row" }, title), el("td", { "data-column": key }, data.row[key])));
    append(
      root,
      section("Comparison row", el("table", { class: "grid vertical", id: "run-row" }, el("tbody", {}, row)), el("ul", {}, data.notes.map((n) => el("li", {}, n))), link(`/runs?compare=${encodeURIComponent(data.run_id)}`, "Compare with other runs")),
      section("Root-cause analysis", el("div", { class: "markdown", id: "rca" }, markdown(data.rca.markdown))),
      section("Plots", data.plots.map((p) => el("figure", {}, el("img", { src: `/runs/${encodeURIComponent(data.run_id)}/plots/${p}.png`, alt: `${p} plot`, loading: "lazy" }), el("figcaption", {}, p)))),
    );
  } else {
    root.append(section("Evidence", el("p", {}, `Not harvested yet: sof harvest ${data.run_id} (or sof rca ${data.label || data.run_id}).`)));
  }
  if (data.status === "running") {
    poll(async () => {
      data = await get("/api/run", { run: selector });
      draw();
      return data.status === "running";
    });
  }
}
