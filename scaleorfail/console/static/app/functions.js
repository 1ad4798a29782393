// Lambda > Functions: configuration, reserved concurrency, the account's settings, and the last
// hour's invocations, throttles, errors and peak concurrency (CloudWatch).
import { append, el, fmtNumber, get, heading, section, table } from "./common.js";

export async function render(root) {
  const data = await get("/api/functions");
  const a = data.account;
  const recent = (key) => (r) => fmtNumber(r.recent[key]);
  append(
    root,
    heading("Lambda functions"),
    section("Account", el("dl", { class: "facts", id: "account" },
      el("dt", {}, "Concurrency limit"), el("dd", {}, fmtNumber(a.concurrency)),
      el("dt", {}, "Unreserved concurrency"), el("dd", {}, fmtNumber(a.unreserved)),
      el("dt", {}, "Functions"), el("dd", {}, fmtNumber(a.functions)))),
    section(
      "Functions",
      table(
        [
          ["name", "Name"],
          ["runtime", "Runtime"],
          ["memory_mb", "Memory (MB)"],
          ["timeout_s", "Timeout (s)"],
          [(r) => (r.reserved === null || r.reserved === undefined ? "unreserved" : String(r.reserved)), "Reserved concurrency"],
          [recent("Invocations"), "Invocations (1 h)"],
          [recent("Throttles"), "Throttles (1 h)"],
          [recent("Errors"), "Errors (1 h)"],
          [recent("ConcurrentExecutions"), "Peak concurrency (1 h)"],
          ["handler", "Handler"],
          [(r) => el("details", {}, el("summary", {}, `${Object.keys(r.environment).length} variables`), el("pre", { class: "code" }, Object.entries(r.environment).map(([k, v]) => `${k}=${v}`).join("\n"))), "Environment"],
        ],
        data.functions,
      ),
    ),
  );
}
