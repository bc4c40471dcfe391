// View 3, `/console/tasks/{taskid}`: the record as the shell's `yaml_format` shows it (long values
// cut), a timeline, each job's result or error, the content folded, "issue again" and "copy as
// curl". task.js refreshes the page's record part when an event about this task arrives.
import { MU } from "../mu.js";
import { hasEnded } from "../record.js";
import { folded, shorten } from "./fold.js";
import { html, type SafeHtml } from "./html.js";
import { duration, statusBadge, time, type View } from "./view.js";

/** Bodies longer than this are not written into the command: it reads them from the record instead. */
const curlInline = 2048;

/** `curl` that issues the task again through the REST API. */
function curlCommand(origin: string, taskid: string, body: string): string {
  const auth = `-H "authorization: Bearer $JOBSHELL_API_TOKEN"`;
  const post = `curl -X POST ${origin}/tasks -H 'content-type: application/json' ${auth}`;
  if (body.length <= curlInline) return `${post} -d '${body.replaceAll("'", "'\\''")}'`;
  return `curl -s ${auth} ${origin}/tasks/${taskid} | jq -c '{topic, content, expire}' | ${post} -d @-`;
}

/** A time of the record as the library formats it, back to epoch ms for <time> and run time. */
function ms(formatted: unknown): number | undefined {
  if (typeof formatted !== "string") return undefined;
  const t = Date.parse(formatted);
  return Number.isFinite(t) ? t : undefined;
}

export async function taskView(view: View, taskid: string, origin: string): Promise<SafeHtml | undefined> {
  const record = await view.js.record(taskid);
  if (!record) return undefined;
  const data = record.dictionary as Record<string, any>;
  const raw = { createdAt: ms(data.createdAt), startedAt: ms(data.startedAt), completedAt: ms(data.completedAt) };
  const results = (data.results ?? []) as { job: string; status: string; value?: unknown; error?: string }[];
  const yaml = MU(shorten(data) as Record<string, unknown>).yaml_format;
  const curl = curlCommand(origin, taskid, JSON.stringify({ topic: data.topic, content: data.content, expire: data.expire }));

  const timeline = [
    html`<li><span class="step">queued</span> ${time(raw.createdAt)} <span class="note">expire ${data.expire} s</span></li>`,
    data.startedAt !== undefined
      ? html`<li><span class="step">started</span> ${time(raw.startedAt)}${data.attempt > 1 ? html` <span class="warn">attempt ${data.attempt}</span>` : ""}</li>`
      : "",
    hasEnded(data.status)
      ? html`<li><span class="step">${data.status}</span> ${time(raw.completedAt)}${raw.startedAt !== undefined && raw.completedAt !== undefined ? html` <span class="note">ran ${duration(raw.completedAt - raw.startedAt)}</span>` : ""}</li>`
      : html`<li class="pending"><span class="step">waiting</span> for ${data.status === "queued" ? "a worker to start it" : "its jobs to end"}…</li>`,
  ];

  const jobs = results.map(
    (r) => html`<li class="result"><h3>${r.job} ${statusBadge(r.status)}</h3>${
      r.status === "failed" ? html`<pre class="value error-text" aria-label="error of ${r.job}">${shorten(r.error ?? "") as string}</pre>` : folded(`result of ${r.job}`, r.value)
    }</li>`,
  );

  // The server reads topic, content and expire from the record: the page never carries the content.
  const again = view.write
    ? html`<form method="post" action="/console/issue" class="inline"><input type="hidden" name="again" value="${taskid}"><button type="submit">Issue again</button></form>`
    : "";

  const page = html`
<p><code class="taskid">${taskid}</code> on topic <code class="topic">${data.topic}</code></p>
<div id="record" data-taskid="${taskid}" data-ended="${hasEnded(data.status) ? "yes" : "no"}">
<p>${statusBadge(data.status)}${data.warning ? html` <span class="warn">${data.warning}</span>` : ""}</p>
<section aria-labelledby="tl-h"><h2 id="tl-h">Timeline</h2><ol class="timeline">${timeline}</ol></section>
<section aria-labelledby="jobs-h"><h2 id="jobs-h">Jobs</h2>${results.length > 0 ? html`<ul class="plain">${jobs}</ul>` : html`<p class="empty">No job result yet.</p>`}</section>
<section aria-labelledby="content-h"><h2 id="content-h">Content</h2>${folded("content", data.content)}</section>
<section aria-labelledby="yaml-h"><h2 id="yaml-h">Record</h2><details class="fold" open><summary>as <code>yaml_format</code> shows it</summary><pre class="value" aria-label="record as YAML">${yaml}</pre></details></section>
</div>
<section aria-labelledby="act-h"><h2 id="act-h">Actions</h2>
<div class="actions">${again}
<button type="button" id="copy-curl" data-curl="${curl}" hidden>Copy as curl</button>
<a href="/tasks/${taskid}">JSON</a></div>
<details class="fold"><summary>curl command</summary><pre class="value" aria-label="curl command">${curl}</pre></details>
</section>`;
  return view.page({ title: "Task", current: "/console/tasks", module: "task.js" }, page);
}
