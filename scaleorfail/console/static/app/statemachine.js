// A state machine: its graph, its definition, its executions (paged), and Start execution (emulator only).
import { drawGraph } from "./graph.js";
import {
  append, badge, clear, codeBlock, el, executionHref, fmtDuration, fmtTime, get, heading, latest, link, post,
  readOnly, section, showError, table, tabs,
} from "./common.js";

const PAGE = 100;

export async function render(root, arn) {
  const machine = await get("/api/statemachine", { arn });
  const start = el("button", { type: "button", id: "start-execution", class: "primary" }, "Start execution");
  start.hidden = readOnly;
  const dialog = startDialog(arn, machine.sample_input);
  start.addEventListener("click", () => dialog.showModal());
  append(
    root,
    el("p", { class: "crumbs" }, link("/states/statemachines", "State machines"), " › ", machine.name),
    heading(machine.name, start),
    el("dl", { class: "facts" }, el("dt", {}, "ARN"), el("dd", {}, machine.arn), el("dt", {}, "Type"), el("dd", {}, machine.type || "-"), el("dt", {}, "Role"), el("dd", {}, machine.role || "-")),
    dialog,
  );
  const graph = el("div", { class: "graph-canvas", id: "definition-graph" });
  const definition = el("div", { hidden: true }, codeBlock(machine.definition, "definition"));
  const show = (key) => {
    graph.hidden = key !== "graph";
    definition.hidden = key !== "json";
  };
  append(root, section("Definition", tabs([["graph", "Graph"], ["json", "Definition (JSON)"]], show, "graph"), graph, definition));
  drawGraph(graph, machine.graph, null).update({}, {});

  const list = el("div", { id: "executions" });
  const filter = el("select", { id: "status-filter", "aria-label": "status" }, ["", "RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"].map((s) => el("option", { value: s }, s || "all statuses")));
  append(root, section("Executions", el("div", { class: "toolbar" }, filter), list));
  const tokens = [""];
  let index = 0;
  const readExecutions = latest();
  async function load() {
    const page = await readExecutions("/api/statemachine/executions", { arn, status: filter.value, token: tokens[index], limit: PAGE });
    if (!page) return; // a later read (another status or page) renders instead
    tokens[index + 1] = page.next || null;
    const prev = el("button", { type: "button", disabled: index === 0 }, "‹ Newer");
    const next = el("button", { type: "button", disabled: !page.next }, "Older ›");
    prev.addEventListener("click", () => { index -= 1; load(); });
    next.addEventListener("click", () => { index += 1; load(); });
    clear(list).append(
      table(
        [
          [(r) => link(executionHref(r.arn), r.name), "Name"],
          [(r) => badge(r.status), "Status"],
          [(r) => fmtTime(r.start), "Started"],
          [(r) => (r.stop ? fmtTime(r.stop) : "-"), "Ended"],
          [(r) => (r.stop ? fmtDuration(r.stop - r.start) : "-"), "Duration"],
        ],
        page.executions,
      ),
      el("div", { class: "pager" }, prev, el("span", { id: "page-number" }, `page ${index + 1} (${page.executions.length} shown)`), next),
    );
  }
  filter.addEventListener("change", () => { tokens.length = 1; index = 0; load(); });
  await load();
}

function startDialog(arn, sample) {
  const name = el("input", { type: "text", id: "execution-name", placeholder: "(generated)", maxlength: 80, "aria-label": "execution name" });
  const input = el("textarea", { id: "execution-input", rows: 16, cols: 80, spellcheck: "false", "aria-label": "execution input" });
  input.value = sample || "{}";
  const problem = el("div", { id: "start-problem" });
  const go = el("button", { type: "submit", class: "primary" }, "Start");
  const cancel = el("button", { type: "button" }, "Cancel");
  const form = el("form", { method: "dialog" }, el("h2", {}, "Start execution"), el("label", {}, "Name ", name), el("label", {}, "Input (JSON)", input), problem, el("div", { class: "toolbar" }, go, cancel));
  const dialog = el("dialog", { id: "start-dialog" }, form);
  cancel.addEventListener("click", () => dialog.close());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      JSON.parse(input.value);
    } catch (error) {
      showError(new Error(`The input is not JSON: ${error.message}`), problem);
      return;
    }
    try {
      const started = await post("/api/statemachine/executions", { arn }, { name: name.value.trim(), input: input.value });
      window.location.assign(executionHref(started.arn));
    } catch (error) {
      showError(error, problem);
    }
  });
  return dialog;
}
