// Time series charts (uPlot) for dashboard metric widgets, with a legend that says each series'
// latest and largest value as text.
import uPlot from "../vendor/uPlot.esm.js";
import { append, clear, el, fmtNumber } from "./common.js";

const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

function align(series) {
  const times = [...new Set(series.flatMap((s) => s.times))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const columns = series.map((s) => {
    const column = new Array(times.length).fill(null);
    s.times.forEach((t, i) => { column[index.get(t)] = s.values[i]; });
    return column;
  });
  return [times, columns];
}

function stack(columns) {
  const out = [];
  let running = null;
  for (const column of columns) {
    running = column.map((v, i) => (v === null && (!running || running[i] === null) ? null : (v || 0) + ((running && running[i]) || 0)));
    out.push(running);
  }
  return out;
}

function range(axis) {
  return (u, min, max) => {
    const low = axis && typeof axis.min === "number" ? axis.min : Math.min(0, min ?? 0);
    let high = axis && typeof axis.max === "number" ? axis.max : max ?? 1;
    if (high <= low) high = low + 1;
    return [low, high + (axis && typeof axis.max === "number" ? 0 : (high - low) * 0.08)];
  };
}

export function legend(spec, series) {
  const rows = series.map((s, i) => {
    const values = s.values.filter((v) => v !== null && v !== undefined);
    const meta = (spec.series.find((x) => x.id === s.id) || {});
    return el(
      "tr",
      { "data-series": s.label },
      el("td", {}, el("span", { class: "swatch", "data-color": i % COLORS.length })),
      el("td", { class: "series-label" }, s.label),
      el("td", { class: "series-latest" }, values.length ? fmtNumber(values[values.length - 1]) : "-"),
      el("td", { class: "series-max" }, values.length ? fmtNumber(Math.max(...values)) : "-"),
      el("td", {}, meta.yAxis === "right" ? "right" : "left"),
    );
  });
  return el("table", { class: "legend-table" }, el("thead", {}, el("tr", {}, el("th", {}), el("th", {}, "series"), el("th", {}, "latest"), el("th", {}, "max"), el("th", {}, "axis"))), el("tbody", {}, rows));
}

export class Chart {
  constructor(host, spec) {
    this.host = host;
    this.spec = spec;
    this.plot = null;
    this.shape = "";
    this.box = el("div", { class: "chart" });
    this.legendBox = el("div", { class: "chart-legend" });
    append(host, this.box, this.legendBox);
  }

  draw(series, start, end) {
    const spec = this.spec;
    this.window = [start, end];
    const [times, raw] = align(series);
    const columns = spec.stacked ? stack(raw) : raw;
    const right = series.map((s) => (spec.series.find((x) => x.id === s.id) || {}).yAxis === "right");
    const shape = series.map((s, i) => `${s.label}/${right[i]}`).join("|");
    const data = [times, ...columns];
    clear(this.legendBox).append(legend(spec, series));
    if (this.plot && shape === this.shape) {
      this.plot.setData(data);
      return;
    }
    if (this.plot) this.plot.destroy();
    this.shape = shape;
    const width = Math.max(260, this.host.clientWidth - 16);
    const axes = [{ stroke: "#555", grid: { stroke: "#eee" } }, { scale: "y", stroke: "#555", grid: { stroke: "#eee" }, label: (spec.yAxis.left || {}).label || "" }];
    if (right.some(Boolean)) axes.push({ scale: "y2", side: 1, stroke: "#555", grid: { show: false }, label: (spec.yAxis.right || {}).label || "" });
    this.plot = new uPlot(
      {
        width,
        height: 190,
        legend: { show: false },
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: true, range: () => this.window }, y: { range: range(spec.yAxis.left) }, y2: { range: range(spec.yAxis.right) } },
        axes,
        series: [
          {},
          ...series.map((s, i) => ({
            label: s.label,
            scale: right[i] ? "y2" : "y",
            stroke: COLORS[i % COLORS.length],
            width: 2,
            fill: spec.stacked ? `${COLORS[i % COLORS.length]}33` : undefined,
            spanGaps: false,
            points: { show: times.length < 40 },
          })),
        ],
      },
      data,
      this.box,
    );
  }
}
