// The jobs view: the list follows the queue's jobs live (another process may upload or delete), and
// in the editor a problem the server reported at a line of the upload puts the caret there.
import { live, refreshPart } from "./live.js";

if (document.getElementById("job-list")) live(["jobs"], { jobs: () => refreshPart("job-list") });

const editor = document.getElementById("yaml");
if (editor) {
  for (const item of document.querySelectorAll(".problems li[data-line]")) {
    const line = Number(item.dataset.line);
    if (!line || item.dataset.field) continue;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link";
    button.textContent = `Go to line ${line}`;
    button.addEventListener("click", () => {
      const lines = editor.value.split("\n");
      const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0) + Math.max(0, Number(item.dataset.column || 1) - 1);
      editor.focus();
      editor.setSelectionRange(start, start + Math.max(1, (lines[line - 1] ?? "").length - Number(item.dataset.column || 1) + 1));
    });
    item.append(" ", button);
  }
}
