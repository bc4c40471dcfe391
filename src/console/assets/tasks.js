// The tasks view, live: on the first page, new tasks that match the filters are put on top as they
// are queued, and the rows shown follow their task's status. The table never grows past its page
// size plus a bounded number of new rows.
import { el, live, statusBadge, timeElement } from "./live.js";

const table = document.getElementById("tasks");
const body = table?.tBodies[0];
const note = document.getElementById("new-tasks");
const maxRows = 500;
let added = 0;

function matches(event) {
  const { status, topic, job } = table.dataset;
  if (topic && event.topic !== topic) return false;
  // Task events do not say which jobs ran the task: a job filter takes no live rows.
  if (job) return false;
  if (status && event.status !== status) return false;
  return true;
}

function row(event) {
  return el(
    "tr",
    { "data-taskid": event.taskid },
    el("td", {}, el("a", { href: `/console/tasks/${event.taskid}` }, el("code", {}, event.taskid.slice(0, 8)))),
    el("td", { class: "topic" }, event.topic),
    el("td", {}, statusBadge(event.status)),
    // A task event tells when it happened: only a queued one's time is the task's creation.
    el("td", {}, event.kind === "queued" ? timeElement(event.at) : ""),
    el("td", {}, event.runMs !== undefined ? `${event.runMs.toFixed(event.runMs < 10 ? 1 : 0)} ms` : ""),
    el("td", {}, ""),
  );
}

function onTask(event) {
  const existing = body.querySelector(`tr[data-taskid="${CSS.escape(event.taskid)}"]`);
  if (existing) {
    existing.cells[2].replaceChildren(statusBadge(event.status));
    if (event.runMs !== undefined) existing.cells[4].textContent = `${event.runMs.toFixed(event.runMs < 10 ? 1 : 0)} ms`;
    if (table.dataset.status && event.status !== table.dataset.status) existing.classList.add("stale");
    return;
  }
  if (!matches(event)) return;
  body.prepend(row(event));
  added++;
  document.querySelector(".empty")?.remove();
  while (body.rows.length > maxRows) body.rows[body.rows.length - 1].remove();
  note.textContent = `${added} new ${added === 1 ? "task" : "tasks"} since this page was loaded.`;
}

/** Events this page will never see: the list may lack tasks until it is loaded again. */
function onMissed() {
  note.replaceChildren("Some task events were missed while this page was disconnected: ", Object.assign(document.createElement("a"), { href: location.href, textContent: "reload" }), ".");
}

if (table && table.dataset.live === "on") {
  live(["task"], { task: onTask, reset: onMissed, dropped: onMissed }, table.dataset.topic ? { topic: table.dataset.topic } : {});
}
