// CloudWatch > Alarms: state, reason, and each alarm's history.
import { append, badge, clear, el, fmtTime, get, heading, table } from "./common.js";

export async function render(root) {
  const data = await get("/api/alarms");
  const history = el("div", { id: "alarm-history" });
  const list = table(
    [
      [(r) => el("button", { type: "button", class: "linkish", "data-alarm": r.name }, r.name), "Name"],
      [(r) => badge(r.state), "State"],
      ["metric", "Metric"],
      ["statistic", "Statistic"],
      ["condition", "Condition"],
      [(r) => (r.updated ? fmtTime(Date.parse(r.updated)) : "-"), "Updated"],
      ["reason", "Reason"],
    ],
    data.alarms,
  );
  list.addEventListener("click", async (event) => {
    const target = event.target.closest("[data-alarm]");
    if (!target) return;
    const found = await get("/api/alarm/history", { name: target.dataset.alarm });
    clear(history).append(el("h2", {}, `History: ${target.dataset.alarm}`), table([[(r) => (r.at ? fmtTime(Date.parse(r.at)) : "-"), "When"], ["type", "Type"], ["summary", "Summary"]], found.history));
  });
  append(root, heading("Alarms"), data.alarms.length ? list : el("p", {}, "No alarm in this account."), history);
}
