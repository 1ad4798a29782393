// The execution details page: summary, error, Graph view (live Map counts, iterations), Table view,
// Event view, input and output. While the execution runs the page polls /api/execution every
// refresh interval; the server reads only the history events that are new.
import { drawGraph } from "./graph.js";
import {
  append, badge, clear, codeBlock, el, fmtDuration, fmtNumber, fmtTime, get, heading, latest, link, machineHref,
  pager, poll, post, readOnly, refreshMs, section, showError, table, tabs,
} from "./common.js";

const ITERATION_PAGE = 50;
const TABLE_PAGE = 100;
const EVENT_PAGE = 100;
const ITERATION_RETRIES = 3;

export async function render(root, arn) {
  const state = { arn, view: "graph", selected: null, iteration: null, summary: null, graph: null };
  const first = await get("/api/execution", { arn, full: "1" });
  state.summary = first;

  const status = el("span", { id: "status" });
  const stopButton = el("button", { type: "button", class: "danger", id: "stop" }, "Stop execution");
  stopButton.hidden = readOnly || !first.live;
  stopButton.addEventListener("click", async () => {
    if (!window.confirm("Stop this execution?")) return;
    try {
      await post("/api/execution/stop", { arn });
    } catch (error) {
      showError(error);
    }
  });
  const facts = el("dl", { class: "facts", id: "facts" });
  const failure = el("div", { id: "failure" });
  const header = heading(first.name || arn, status, stopButton);
  const crumbs = el("p", { class: "crumbs" }, link("/states/statemachines", "State machines"), " › ", link(machineHref(first.state_machine_arn), first.state_machine_arn.split(":").pop()), " › ", first.name);

  const views = el("div", { id: "views" });
  const graphView = el("div", { class: "view", id: "graph-view" });
  const tableView = el("div", { class: "view", id: "table-view", hidden: true });
  const eventView = el("div", { class: "view", id: "event-view", hidden: true });
  append(views, graphView, tableView, eventView);
  const show = (key) => {
    state.view = key;
    graphView.hidden = key !== "graph";
    tableView.hidden = key !== "table";
    eventView.hidden = key !== "events";
    refreshLists();
  };
  const bar = tabs([["graph", "Graph view"], ["table", "Table view"], ["events", "Event view"]], show, "graph");

  // Graph view: the graph, the selected state's panel, and the Map's iterations
  const canvas = el("div", { class: "graph-canvas" });
  const side = el("aside", { class: "graph-side", id: "state-panel" });
  append(graphView, el("div", { class: "legend" }, ["running", "succeeded", "failed", "caught", "aborted", "not-run"].map((s) => el("span", { class: `key ${s}` }, s.replace("-", " ")))), el("div", { class: "graph-layout" }, canvas, side));
  state.graph = drawGraph(canvas, first.graph, (name) => {
    state.selected = name;
    state.iteration = null;
    state.graph.select(name);
    renderSide();
  });
  const mapName = Object.keys(first.maps)[0] || null;

  const input = section("Input", codeBlock(first.input, "execution input"));
  const output = section("Output", el("div", { id: "output" }, codeBlock(first.output, "execution output")));
  append(root, crumbs, header, facts, failure, bar, views, el("div", { class: "io" }, input, output));

  function renderHeader(summary) {
    clear(status).append(badge(summary.status));
    stopButton.hidden = readOnly || !summary.live;
    const duration = summary.stop ? summary.stop - summary.start : Date.now() - summary.start;
    clear(facts);
    const rows = [
      ["Execution ARN", summary.arn],
      ["Status", summary.status],
      ["Started", fmtTime(summary.start)],
      ["Ended", summary.stop ? fmtTime(summary.stop) : "-"],
      ["Duration", fmtDuration(duration)],
      ["State transitions", fmtNumber(summary.transitions)],
      ["History events", summary.loading ? `${fmtNumber(summary.events)} read so far (reading the rest…)` : fmtNumber(summary.events)],
    ];
    document.body.dataset.historyComplete = summary.loading ? "0" : "1";
    if (summary.problem && !state.problemShown) state.problemShown = showError(new Error(summary.problem));
    for (const [k, v] of rows) append(facts, el("dt", {}, k), el("dd", { "data-fact": k }, v));
    renderFailure(summary);
  }

  function renderFailure(summary) {
    clear(failure);
    if (!summary.failure && !summary.failed_visit) return;
    const panel = el("section", { class: "panel failure", id: "failure-panel", role: "alert" });
    const fv = summary.failed_visit;
    if (summary.failed_state) {
      const where = fv && fv.iteration !== null ? ` (Map iteration ${fv.iteration})` : "";
      append(panel, el("h2", {}, `${summary.failed_state} failed${fv && fv.error ? ` with ${fv.error}` : ""}${where}`));
    } else {
      append(panel, el("h2", {}, "Execution failed"));
    }
    const f = summary.failure || {};
    const payload = (fv && fv.payload) || f.payload;
    const dl = el("dl", { class: "facts" });
    append(dl, el("dt", {}, "Error"), el("dd", { id: "error-name" }, f.error || (fv && fv.error) || "-"));
    if (payload) {
      append(dl, el("dt", {}, "Error type"), el("dd", { id: "error-type" }, payload.type || "-"));
      append(dl, el("dt", {}, "Message"), el("dd", { id: "error-message" }, payload.message || "-"));
      if (payload.request_id) append(dl, el("dt", {}, "Request ID"), el("dd", {}, payload.request_id));
      append(panel, dl, el("h3", {}, "Stack trace"), el("pre", { class: "stack", id: "stack-trace" }, (payload.stack || []).join("\n") || "(none)"));
    } else {
      append(dl, el("dt", {}, "Cause"), el("dd", { id: "error-cause" }, f.cause || "-"));
      append(panel, dl);
    }
    failure.append(panel);
  }

  function mapCounts(counts) {
    const dl = el("dl", { class: "counts", id: "map-counts" });
    for (const key of ["length", "pending", "running", "succeeded", "failed", "aborted"]) {
      append(dl, el("div", { class: `count ${key}` }, el("dt", {}, key === "length" ? "items" : key), el("dd", { "data-count": key }, fmtNumber(counts[key] || 0))));
    }
    return dl;
  }

  const iterationState = { offset: 0, status: "" };
  const iterationBox = el("div", { id: "iterations" });
  const iterationDetail = el("div", { id: "iteration-detail" });

  function renderSide() {
    clear(side);
    const summary = state.summary;
    const name = state.selected || mapName;
    if (!name) {
      side.append(el("p", { class: "hint" }, "Select a state to see its visits."));
      return;
    }
    const info = (summary.definition_states || state.definitionStates || {})[name] || {};
    state.definitionStates = summary.definition_states || state.definitionStates;
    append(side, el("h2", {}, name), el("p", { class: "muted" }, `${info.Type || ""}${info.Resource ? ` · ${info.Resource}` : ""}`));
    const counts = summary.states[name] || {};
    append(side, el("p", { id: "state-counts" }, Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(" · ") || "not run"));
    if (summary.maps[name]) {
      const filter = el("select", { id: "iteration-filter", "aria-label": "iteration status" }, ["", "running", "succeeded", "failed", "aborted"].map((s) => el("option", { value: s, selected: s === iterationState.status }, s || "all iterations")));
      filter.addEventListener("change", () => {
        iterationState.status = filter.value;
        iterationState.offset = 0;
        loadIterations();
      });
      append(side, el("h3", {}, "Map iterations"), mapCounts(summary.maps[name]), filter, iterationBox, iterationDetail);
      loadIterations();
    }
  }

  // A list read that fails (a busy emulator, a restarted console) or that comes back empty while the Map
  // counts say there are iterations is read again, a few times: an ended execution has no poll to do it.
  const readIterations = latest();
  async function loadIterations(attempt = 0) {
    if (!mapName) return;
    let page;
    try {
      page = await readIterations("/api/execution/iterations", { arn, map: mapName, offset: iterationState.offset, limit: ITERATION_PAGE, status: iterationState.status });
      if (!page) return; // a later read (another status, page or tick) renders instead
    } catch (error) {
      showError(error, iterationBox);
      if (attempt < ITERATION_RETRIES) setTimeout(() => loadIterations(attempt + 1), refreshMs);
      return;
    }
    const expected = (state.summary.maps[mapName] || {}).length || 0;
    if (!page.total && expected && !iterationState.status && attempt < ITERATION_RETRIES) {
      setTimeout(() => loadIterations(attempt + 1), refreshMs);
    }
    clear(iterationBox);
    const rows = page.iterations;
    const list = table(
      [
        [(r) => el("button", { type: "button", class: "linkish", "data-iteration": r.index }, `#${r.index}`), "Iteration"],
        [(r) => badge(r.status), "Status"],
        ["state", "Last state"],
        [(r) => fmtDuration(r.duration_ms), "Duration"],
        ["error", "Error"],
      ],
      rows,
      { class: "grid compact" },
    );
    list.addEventListener("click", (event) => {
      const target = event.target.closest("[data-iteration]");
      if (target) openIteration(Number(target.dataset.iteration));
    });
    append(iterationBox, list, pager(page.total, page.offset, ITERATION_PAGE, (offset) => {
      iterationState.offset = offset;
      loadIterations();
    }));
  }

  async function openIteration(index) {
    state.iteration = index;
    const detail = await get("/api/execution/iteration", { arn, map: mapName, index });
    clear(iterationDetail);
    append(iterationDetail, el("h3", {}, `Iteration #${index}`), el("p", {}, badge(detail.status), ` ${fmtDuration(detail.duration_ms)}`));
    for (const visit of detail.visits) {
      const box = el("details", { class: "visit", open: visit.status === "failed" });
      append(box, el("summary", {}, `${visit.state} - ${visit.status} - ${fmtDuration(visit.duration_ms)}${visit.retries ? ` (${visit.retries} retries)` : ""}`));
      append(box, el("p", { class: "muted" }, `entered ${fmtTime(visit.entered)}${visit.exited ? `, exited ${fmtTime(visit.exited)}` : ""}`));
      if (visit.payload) {
        append(box, el("p", {}, el("strong", {}, visit.payload.type || visit.error), `: ${visit.payload.message || ""}`), el("pre", { class: "stack" }, (visit.payload.stack || []).join("\n")));
      } else if (visit.error) {
        append(box, el("p", {}, el("strong", {}, visit.error), `: ${(visit.attempts.at(-1) || {}).cause || ""}`));
      }
      append(box, el("h4", {}, "Input"), codeBlock(visit.input), el("h4", {}, "Output"), codeBlock(visit.output));
      iterationDetail.append(box);
    }
    refresh(false);
  }

  // Table view
  const tableState = { offset: 0 };
  const readTable = latest();
  async function loadTable() {
    const page = await readTable("/api/execution/table", { arn, offset: tableState.offset, limit: TABLE_PAGE });
    if (!page) return;
    clear(tableView);
    append(
      tableView,
      table(
        [
          ["state", "State"],
          ["type", "Type"],
          [(r) => badge(r.status), "Status"],
          ["resource", "Resource"],
          [(r) => (r.iteration === null ? "-" : `#${r.iteration}`), "Iteration"],
          [(r) => fmtTime(r.entered), "Started"],
          [(r) => fmtDuration(r.duration_ms), "Duration"],
          ["retries", "Retries"],
          ["error", "Error"],
        ],
        page.rows,
      ),
      pager(page.total, page.offset, TABLE_PAGE, (offset) => {
        tableState.offset = offset;
        loadTable();
      }),
    );
  }

  // Event view
  const eventState = { offset: 0, type: "", q: "", types: [] };
  const typeSelect = el("select", { id: "event-type", "aria-label": "event type" }, el("option", { value: "" }, "all event types"));
  const textFilter = el("input", { type: "search", id: "event-filter", placeholder: "Filter events (text)", "aria-label": "filter events" });
  const eventBox = el("div", { id: "events" });
  append(eventView, el("div", { class: "toolbar" }, typeSelect, textFilter), eventBox);
  typeSelect.addEventListener("change", () => {
    eventState.type = typeSelect.value;
    eventState.offset = 0;
    loadEvents();
  });
  let debounce = null;
  textFilter.addEventListener("input", () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      eventState.q = textFilter.value;
      eventState.offset = 0;
      loadEvents();
    }, 250);
  });
  const readEvents = latest();
  async function loadEvents() {
    const page = await readEvents("/api/execution/events", { arn, offset: eventState.offset, limit: EVENT_PAGE, type: eventState.type, q: eventState.q });
    document.body.dataset.eventReads = String(Number(document.body.dataset.eventReads || 0) + 1); // answers handled
    if (!page) return; // a tick's read from before the filter changed must not put the unfiltered rows back
    if (page.types.join() !== eventState.types.join()) {
      eventState.types = page.types;
      clear(typeSelect).append(el("option", { value: "" }, "all event types"), ...page.types.map((t) => el("option", { value: t, selected: t === eventState.type }, t)));
    }
    clear(eventBox);
    const rows = page.events.map((e) => ({ ...e, detail: e.details }));
    append(
      eventBox,
      table(
        [
          ["id", "ID"],
          ["type", "Type"],
          ["step", "Step"],
          ["resource", "Resource"],
          [(r) => fmtDuration(r.elapsed_ms), "Started after"],
          [(r) => fmtTime(r.timestamp), "Date and time"],
          [(r) => (Object.keys(r.details || {}).length ? el("details", {}, el("summary", {}, "details"), el("pre", { class: "code" }, JSON.stringify(r.details, null, 2))) : "-"), "Details"],
        ],
        rows,
        { class: "grid events" },
      ),
      pager(page.total, page.offset, EVENT_PAGE, (offset) => {
        eventState.offset = offset;
        loadEvents();
      }),
    );
  }

  function refreshLists() {
    if (state.view === "table") return loadTable();
    if (state.view === "events") return loadEvents();
    return null;
  }

  async function refresh(full) {
    const params = { arn };
    if (state.iteration !== null && mapName) params.iteration = `${mapName}:${state.iteration}`;
    const summary = full ? state.summary : await get("/api/execution", params);
    state.summary = { ...state.summary, ...summary };
    renderHeader(state.summary);
    state.graph.update(state.summary.states, state.summary.maps);
    const counts = document.getElementById("map-counts");
    if (counts && mapName && state.summary.maps[mapName]) counts.replaceWith(mapCounts(state.summary.maps[mapName]));
    if (!state.summary.live && state.summary.output !== undefined) {
      clear(document.getElementById("output")).append(codeBlock(state.summary.output, "execution output"));
    }
    return state.summary;
  }

  await refresh(true);
  renderSide();
  if (first.live || first.loading) {
    poll(async () => {
      const began = performance.now();
      const summary = await refresh(false);
      if (state.view !== "graph") await refreshLists();
      else if (mapName && (state.selected || mapName) === mapName) await loadIterations();
      document.body.dataset.ticks = String(Number(document.body.dataset.ticks || 0) + 1);
      // what this tick cost, for bench/console_bench.py (performance entries stay in this tab)
      const { calls, new_events: newEvents, ms: serverMs, skipped } = summary.tick;
      performance.mark("sof-tick", { detail: { clientMs: performance.now() - began, serverMs, calls, newEvents, skipped, events: summary.events } });
      return summary.live || summary.loading;
    }, refreshMs);
  }
}
