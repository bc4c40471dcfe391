// The issue form: says which jobs the topic fans out to (warning when none; the jobs followed live),
// checks the content as JSON while it is typed, and with "wait" issues by fetch and shows the record
// once the task ends.
import { el, live } from "./live.js";

const form = document.getElementById("issue");
if (form) {
  let jobs = JSON.parse(form.dataset.jobs || "[]");
  const topic = form.elements.topic;
  const content = form.elements.content;
  const fanout = document.getElementById("fanout");
  const check = document.getElementById("content-check");
  const outcome = document.getElementById("outcome");

  const showFanout = () => {
    const names = jobs.filter((j) => j.topics.includes(topic.value.trim())).map((j) => j.name);
    fanout.classList.toggle("warn", topic.value.trim() !== "" && names.length === 0);
    fanout.textContent =
      topic.value.trim() === "" ? "Pick a topic; the jobs it fans out to show here." : names.length ? `Fans out to: ${names.join(", ")}` : "No job handles this topic: the task will end with a warning.";
  };
  const contentProblem = () => {
    const text = content.value.trim();
    if (text === "") return undefined;
    try {
      const value = JSON.parse(text);
      if (value === null || typeof value !== "object" || Array.isArray(value)) return "The content must be a JSON object ({…}).";
    } catch (err) {
      return `Not valid JSON: ${err.message}`;
    }
    return undefined;
  };
  const showCheck = () => {
    const problem = contentProblem();
    content.setCustomValidity(problem ?? "");
    content.setAttribute("aria-invalid", problem ? "true" : "false");
    check.classList.toggle("warn", Boolean(problem));
    check.textContent = problem ?? "Valid JSON.";
  };
  topic.addEventListener("input", showFanout);
  // Jobs uploaded or deleted meanwhile change the suggestions and the fan-out.
  live(["jobs"], {
    jobs(data) {
      jobs = data.jobs;
      const topics = [...new Set(jobs.flatMap((j) => j.topics))].sort();
      document.getElementById("topics").replaceChildren(...topics.map((t) => el("option", { value: t })));
      showFanout();
    },
  });
  content.addEventListener("input", showCheck);
  showFanout();
  showCheck();

  form.addEventListener("submit", async (event) => {
    if (!form.elements.wait.checked) return;
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    outcome.replaceChildren(el("p", { class: "note" }, "Issuing…"));
    try {
      const reply = await fetch(form.action, {
        method: "POST",
        headers: { accept: "application/json", "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(new FormData(form)),
        credentials: "same-origin",
      });
      const answer = await reply.json();
      if (!reply.ok) throw new Error(answer.detail ?? `the server answered ${reply.status}`);
      const link = el("a", { href: `/console/tasks/${answer.taskid}` }, answer.taskid);
      outcome.replaceChildren(el("p", {}, "Issued ", link, "; waiting for it to end…"));
      let record;
      do {
        const waited = await fetch(`/tasks/${answer.taskid}/wait?timeout=60`, { credentials: "same-origin" });
        record = await waited.json();
        if (!waited.ok) throw new Error(record.detail ?? `the server answered ${waited.status}`);
        if (waited.headers.get("x-jobshell-ended") === "true") break;
      } while (true);
      outcome.replaceChildren(el("h2", {}, `Ended ${record.status}`), el("p", {}, link), el("pre", { class: "value", "aria-label": "the record" }, JSON.stringify(record, null, 2)));
    } catch (err) {
      outcome.replaceChildren(el("div", { class: "error", role: "alert" }, err.message));
    } finally {
      button.disabled = false;
    }
  });
}
