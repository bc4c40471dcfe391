// View 4, `/console/issue`: a form for a task. Topic with suggestions from the jobs' topics (and which
// jobs it fans out to, checked live by issue.js), content as JSON, expire, and an optional wait that
// shows the record once the task ends. Posted without JavaScript it goes to the task's page.
import { defaultExpire } from "../task.js";
import { html, type SafeHtml } from "./html.js";
import { errorBox, type View } from "./view.js";

export interface IssueForm {
  topic: string;
  content: string;
  expire: string;
}

export function issueView(view: View, form: IssueForm = { topic: "", content: "{}", expire: "" }, problem?: string): SafeHtml {
  const jobs = view.js.jobs().map((d) => ({ name: d.name, topics: d.topics }));
  const topics = [...new Set(jobs.flatMap((j) => j.topics))].sort();
  const fanout = jobs.filter((j) => j.topics.includes(form.topic)).map((j) => j.name);
  if (!view.write) {
    return view.page(
      { title: "Issue a task", current: "/console/issue" },
      html`<p class="note" role="status">This console is read-only: tasks cannot be issued from it.</p>`,
    );
  }
  const body = html`${errorBox(problem)}
<form method="post" action="/console/issue" id="issue" class="stack" data-jobs="${JSON.stringify(jobs)}">
  <label for="topic">Topic</label>
  <input id="topic" name="topic" list="topics" required value="${form.topic}" autocomplete="off" aria-describedby="fanout">
  <datalist id="topics">${topics.map((t) => html`<option value="${t}"></option>`)}</datalist>
  <p id="fanout" class="note" aria-live="polite">${form.topic ? (fanout.length ? `Fans out to: ${fanout.join(", ")}` : "No job handles this topic: the task will end with a warning.") : "Pick a topic; the jobs it fans out to show here."}</p>
  <label for="content">Content (JSON object)</label>
  <textarea id="content" name="content" rows="8" spellcheck="false" aria-describedby="content-check">${form.content}</textarea>
  <p id="content-check" class="note" aria-live="polite"></p>
  <label for="expire">Expire (seconds within which a job must start it)</label>
  <input id="expire" name="expire" type="number" min="0.001" step="any" value="${form.expire}" placeholder="${defaultExpire}">
  <label class="check"><input type="checkbox" id="wait" name="wait" value="1"> Wait and show the record when the task ends</label>
  <div><button type="submit">Issue</button></div>
</form>
<section id="outcome" aria-live="polite" aria-label="Outcome"></section>`;
  return view.page({ title: "Issue a task", current: "/console/issue", module: "issue.js" }, body);
}

/** The form's fields as a task: what is wrong with them is thrown as a RangeError naming the field. */
export function taskOfForm(form: IssueForm): { topic: string; content: Record<string, unknown>; expire?: number } {
  const topic = form.topic.trim();
  if (topic === "") throw new RangeError("the topic is required");
  let content: unknown;
  try {
    content = JSON.parse(form.content.trim() === "" ? "{}" : form.content);
  } catch (err) {
    throw new RangeError(`the content is not valid JSON: ${(err as Error).message}`);
  }
  if (content === null || typeof content !== "object" || Array.isArray(content)) {
    throw new RangeError(`the content must be a JSON object, got ${Array.isArray(content) ? "an array" : JSON.stringify(content)}`);
  }
  let expire: number | undefined;
  if (form.expire.trim() !== "") {
    expire = Number(form.expire);
    if (!Number.isFinite(expire) || expire <= 0) throw new RangeError(`expire must be a positive number of seconds, got ${JSON.stringify(form.expire)}`);
  }
  return { topic, content: content as Record<string, unknown>, expire };
}
