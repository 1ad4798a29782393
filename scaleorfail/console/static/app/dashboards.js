// CloudWatch > Dashboards.
import { append, el, fmtTime, get, heading, link, table } from "./common.js";

export async function render(root) {
  const data = await get("/api/dashboards");
  append(
    root,
    heading("Dashboards"),
    data.dashboards.length
      ? table([[(r) => link(`/cloudwatch/dashboards/${encodeURIComponent(r.name)}`, r.name), "Name"], [(r) => (r.modified ? fmtTime(Date.parse(r.modified)) : "-"), "Last modified"], ["size", "Size (bytes)"]], data.dashboards)
      : el("p", {}, "No dashboard in this account."),
  );
}
