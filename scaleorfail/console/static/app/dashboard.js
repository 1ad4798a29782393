// A CloudWatch dashboard drawn from its body: text widgets as Markdown, metric widgets as time
// series or single values, a time range and an auto-refresh.
import { Chart } from "./charts.js";
import { append, body, clear, el, fmtNumber, fmtTime, get, heading, latest, link, markdown, poll, section, showError } from "./common.js";

const RANGES = [[300, "5 minutes"], [900, "15 minutes"], [3600, "1 hour"], [10800, "3 hours"], [43200, "12 hours"], [86400, "1 day"], [604800, "1 week"]];
const REFRESH = [[0, "off"], [2, "2 s"], [10, "10 s"], [60, "1 min"], [300, "5 min"]];

export async function render(root, name) {
  const dashboard = await get("/api/dashboard", { name });
  const rangeSelect = el("select", { id: "range", "aria-label": "time range" }, RANGES.map(([s, t]) => el("option", { value: s, selected: s === (dashboard.range_s || 3600) }, t)));
  const defaultRefresh = Number(body.dataset.dashboardRefreshS || 60);
  const refreshSelect = el("select", { id: "refresh", "aria-label": "auto-refresh" }, REFRESH.map(([s, t]) => el("option", { value: s, selected: s === defaultRefresh }, `auto-refresh ${t}`)));
  const updated = el("span", { class: "muted", id: "updated" });
  append(root, el("p", { class: "crumbs" }, link("/cloudwatch/dashboards", "Dashboards"), " › ", dashboard.name), heading(dashboard.name, rangeSelect, refreshSelect, updated));
  const grid = el("div", { class: "dashboard-grid" });
  root.append(grid);
  const charts = new Map();
  for (const widget of dashboard.widgets) {
    const box = el("section", { class: `widget ${widget.type}`, "data-widget": widget.index, "data-title": widget.title });
    box.style.gridColumn = `${(widget.x ?? 0) + 1} / span ${Math.min(24, widget.width || 6)}`;
    if (widget.y !== null && widget.y !== undefined) box.style.gridRow = `${widget.y + 1} / span ${widget.height || 6}`;
    else box.style.gridRow = `span ${widget.height || 6}`;
    if (widget.title) box.append(el("h3", {}, widget.title));
    if (widget.type === "text") box.append(el("div", { class: "markdown" }, markdown(widget.markdown)));
    else if (widget.type === "metric" && (widget.view === "timeSeries" || widget.view === "bar" || !widget.view)) charts.set(String(widget.index), { chart: new Chart(box, widget), widget, box });
    else if (widget.type === "metric") charts.set(String(widget.index), { widget, box, single: el("div", { class: "single-values" }) });
    else if (widget.type === "log") append(box, el("pre", { class: "code" }, widget.query), link(`/logs/insights?query=${encodeURIComponent(widget.query)}`, "Open in Logs Insights"));
    else if (widget.type === "alarm") append(box, el("ul", {}, widget.alarms.map((a) => el("li", {}, a.split(":").pop()))), link("/cloudwatch/alarms", "Alarms"));
    else box.append(el("p", { class: "muted" }, `(${widget.type} widgets are not drawn by this console)`));
    const single = charts.get(String(widget.index));
    if (single && single.single) box.append(single.single);
    grid.append(box);
  }

  const readData = latest();
  async function load() {
    const began = performance.now();
    const data = await readData("/api/dashboard/data", { name, range: rangeSelect.value });
    if (!data) return; // a later read (another range, or a tick) draws instead
    for (const [index, entry] of Object.entries(data.widgets)) {
      const target = charts.get(index);
      if (!target) continue;
      if (entry.error) {
        showError(new Error(entry.error), target.single || target.chart.legendBox);
        continue;
      }
      if (target.chart) target.chart.draw(entry.series, data.start, data.end - 60);
      else {
        clear(target.single);
        for (const s of entry.series) {
          const v = s.values.length ? s.values[s.values.length - 1] : null;
          append(target.single, el("div", { class: "single", "data-series": s.label }, el("span", { class: "value" }, v === null ? "-" : fmtNumber(v)), el("span", { class: "label" }, s.label)));
        }
      }
    }
    updated.textContent = `updated ${fmtTime(Date.now())}`;
    body.dataset.ticks = String(Number(body.dataset.ticks || 0) + 1);
    performance.mark("sof-dashboard-tick", { detail: { clientMs: performance.now() - began } });
  }
  await load();
  rangeSelect.addEventListener("change", load);
  let loop = null;
  const restart = () => {
    if (loop) loop.stop();
    const seconds = Number(refreshSelect.value);
    loop = seconds ? poll(async () => { await load(); return true; }, seconds * 1000) : null;
  };
  refreshSelect.addEventListener("change", restart);
  restart();
}
