// Loads the module of the page named by <body data-page> and hands it the page's argument.
import { body, clear, el, showError } from "./common.js";

const PAGES = ["home", "statemachines", "statemachine", "execution", "dashboards", "dashboard", "alarms", "insights", "functions", "runs", "run"];

async function start() {
  const main = document.getElementById("main");
  const page = body.dataset.page;
  const notice = main.querySelector(".notice");
  if (!PAGES.includes(page)) return;
  try {
    const module = await import(`./${page}.js`);
    const root = el("div", { id: "page" });
    clear(main);
    if (notice) main.append(notice);
    main.append(el("div", { id: "errors" }), root);
    await module.render(root, body.dataset.argument || "");
    body.dataset.readyMs = String(Math.round(performance.now())); // since navigation started
    body.dataset.ready = "1";
  } catch (error) {
    showError(error);
    body.dataset.ready = "error";
  }
}

start();
