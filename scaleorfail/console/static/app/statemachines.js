// Step Functions > State machines.
import { append, el, fmtTime, get, heading, link, machineHref, table } from "./common.js";

export async function render(root) {
  const data = await get("/api/statemachines");
  append(
    root,
    heading("State machines"),
    data.statemachines.length
      ? table(
          [
            [(r) => link(machineHref(r.arn), r.name), "Name"],
            ["type", "Type"],
            [(r) => (r.created ? fmtTime(Date.parse(r.created)) : "-"), "Created"],
            ["arn", "ARN"],
          ],
          data.statemachines,
        )
      : el("p", {}, "No state machine on this target yet: deploy the pipeline (make deploy)."),
  );
}
