// The lab's runs (runs/): every run with its label and status; choose some to compare.
import { append, badge, clear, el, get, heading, link, section, table } from "./common.js";

export async function render(root) {
  const chosen = new URLSearchParams(window.location.search).getAll("compare");
  const data = await get("/api/runs");
  const form = el("form", { method: "get", action: "/runs" });
  const list = table(
    [
      [(r) => el("input", { type: "checkbox", name: "compare", value: r.run_id, checked: chosen.includes(r.run_id), "aria-label": `compare ${r.run_id}` }), ""],
      [(r) => link(`/runs/${encodeURIComponent(r.run_id)}`, r.run_id), "Run"],
      ["label", "Label"],
      [(r) => badge(r.status), "Status"],
      ["profile", "Profile"],
      ["target", "Target"],
      ["tickets", "Tickets"],
      ["max_concurrency", "Max conc."],
      ["started_at", "Started"],
      [(r) => (r.harvested ? "yes" : "no"), "Harvested"],
    ],
    data.runs,
  );
  append(form, list, el("button", { type: "submit", class: "primary", id: "compare" }, "Compare selected"));
  append(root, heading("Runs"), data.runs.length ? form : el("p", {}, "No run under runs/ yet: make burst N=500 MAX_CONCURRENCY=2"));
  if (chosen.length) {
    const box = el("div", { id: "comparison" });
    root.prepend(section("Comparison", box));
    const found = await get("/api/runs/compare", { run: chosen });
    clear(box).append(
      table(found.columns, found.rows, { class: "grid comparison" }),
      el("ul", {}, found.notes.map((n) => el("li", {}, n))),
      found.not_harvested.length ? el("p", { class: "muted" }, `Not harvested yet (sof harvest): ${found.not_harvested.join(", ")}`) : "",
    );
  }
}
