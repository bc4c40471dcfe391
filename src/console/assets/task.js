// A task's page, live: when an event about this task arrives its record part is fetched again, so
// the timeline and the jobs' results show as they happen. Copy as curl puts the command on the clipboard.
import { live, refreshPart } from "./live.js";

const record = document.getElementById("record");
const taskid = record?.dataset.taskid;
let pending = Promise.resolve();

if (record && record.dataset.ended !== "yes") {
  const source = live(["task"], {
    task(event) {
      if (event.taskid !== taskid) return;
      pending = pending.then(() => refreshPart("record")).then(() => {
        if (document.getElementById("record")?.dataset.ended === "yes") source.close();
      });
    },
  });
  // An event between this page's rendering and the stream's start would be missed: look once more.
  source.addEventListener("open", () => (pending = pending.then(() => refreshPart("record"))), { once: true });
}

const copy = document.getElementById("copy-curl");
if (copy && navigator.clipboard) {
  copy.hidden = false;
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(copy.dataset.curl);
      copy.textContent = "Copied";
    } catch {
      copy.textContent = "Copy failed: select the command below";
    }
    setTimeout(() => (copy.textContent = "Copy as curl"), 2000);
  });
}
