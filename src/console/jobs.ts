// View 5, `/console/jobs` and `/console/jobs/{name}`: the jobs with their topics and source, a job's
// YAML, an editor that uploads YAML all or nothing (as POST /jobs) and shows each problem at its
// line and column, and delete behind a confirmation page.
import YAML from "yaml";
import type { JobDefinition } from "../definitions.js";
import type { DefinitionProblem } from "../errors.js";
import { html, type SafeHtml } from "./html.js";
import { errorBox, type View } from "./view.js";

/** A job as YAML, as it could be uploaded again; Slack tokens are never shown. */
export function jobYaml(d: JobDefinition): string {
  const job: Record<string, unknown> = { name: d.name, topics: d.topics };
  if (d.script !== undefined) job.script = d.script;
  if (d.slack) job.slack = { code_injection: d.slack.code_injection };
  return YAML.stringify([job]);
}

const example = `- name: greet
  topics: [hello]
  script: |
    qprint("greeting", task.content.name)
    return "Hello, " + task.content.name
`;

export interface EditorState {
  yaml: string;
  replace: boolean;
  problems?: DefinitionProblem[];
  /** a refusal that is not about a line (a name in use) */
  message?: string;
}

function problemList(state: EditorState): SafeHtml | "" {
  if (!state.problems?.length) return errorBox(state.message);
  const lines = state.yaml.split("\n");
  const items = state.problems.map((p) => {
    const where = [p.job !== undefined ? `job ${p.job}` : "", p.field ?? "", p.line !== undefined ? `line ${p.line}:${p.column ?? 0}` : ""].filter(Boolean).join(", ");
    // A YAML syntax error's line is the upload's own: show it with a caret under the column.
    const inUpload = p.field === undefined && p.line !== undefined && p.line >= 1 && p.line <= lines.length;
    const excerpt = inUpload
      ? html`<pre class="excerpt">${String(p.line).padStart(4)} | ${lines[p.line! - 1]}\n     | ${" ".repeat(Math.max(0, (p.column ?? 1) - 1))}^</pre>`
      : "";
    return html`<li data-line="${p.line ?? ""}" data-column="${p.column ?? ""}" data-field="${p.field ?? ""}"><strong>${where || "upload"}</strong>: ${p.message}${excerpt}</li>`;
  });
  return html`<div class="error" role="alert"><p>Nothing was changed: the YAML has ${state.problems.length === 1 ? "a problem" : `${state.problems.length} problems`}.</p><ul class="problems">${items}</ul></div>`;
}

function editor(view: View, state: EditorState, heading: string): SafeHtml | "" {
  if (!view.write) return "";
  return html`<section aria-labelledby="editor-h"><h2 id="editor-h">${heading}</h2>
${problemList(state)}
<form method="post" action="/console/jobs" class="stack" id="job-editor">
  <label for="yaml">Job YAML</label>
  <textarea id="yaml" name="yaml" rows="14" spellcheck="false" class="code">${state.yaml}</textarea>
  <label class="check"><input type="checkbox" name="replace" value="1"${state.replace ? html` checked` : ""}> Replace jobs of the same name</label>
  <div><button type="submit">Upload</button></div>
</form></section>`;
}

export function jobsView(view: View, state: EditorState = { yaml: example, replace: false }): SafeHtml {
  const jobs = view.js.jobs();
  const rows = jobs.map(
    (d) => html`<tr><td><a href="/console/jobs/${encodeURIComponent(d.name)}">${d.name}</a></td>
<td>${d.topics.map((t, i) => html`${i > 0 ? ", " : ""}<a href="/console/tasks?topic=${encodeURIComponent(t)}"><code>${t}</code></a>`)}</td>
<td><code>${d.source}</code></td></tr>`,
  );
  const body = html`
<div id="job-list">
<table aria-label="Jobs"><thead><tr><th scope="col">Job</th><th scope="col">Topics</th><th scope="col">Source</th></tr></thead>
<tbody>${rows}</tbody></table>
${jobs.length === 0 ? html`<p class="empty">No jobs are defined.</p>` : ""}
</div>
${editor(view, state, "Upload jobs")}`;
  return view.page({ title: "Jobs", current: "/console/jobs", module: "jobs.js" }, body);
}

export function jobView(view: View, d: JobDefinition, confirmDelete: boolean, state?: EditorState): SafeHtml {
  const yaml = jobYaml(d);
  const remove = !view.write
    ? ""
    : confirmDelete
      ? html`<form method="post" action="/console/jobs/${encodeURIComponent(d.name)}/delete" class="confirm" role="alert">
<p>Delete job <strong>${d.name}</strong>? Tasks on its topics will no longer run it.</p>
<button type="submit" class="danger">Delete ${d.name}</button> <a href="/console/jobs/${encodeURIComponent(d.name)}">Cancel</a></form>`
      : html`<p><a href="/console/jobs/${encodeURIComponent(d.name)}?confirm=delete" class="button danger">Delete…</a></p>`;
  const body = html`
<dl class="facts"><dt>Topics</dt><dd>${d.topics.map((t, i) => html`${i > 0 ? ", " : ""}<a href="/console/tasks?topic=${encodeURIComponent(t)}"><code>${t}</code></a>`)}</dd>
<dt>Source</dt><dd><code>${d.source}</code></dd>
<dt>Tasks</dt><dd><a href="/console/tasks?job=${encodeURIComponent(d.name)}">tasks this job ran</a></dd></dl>
<section aria-labelledby="yaml-h"><h2 id="yaml-h">YAML</h2><pre class="value code" aria-label="YAML of ${d.name}">${yaml}</pre></section>
${remove}
${editor(view, state ?? { yaml, replace: true }, "Edit")}`;
  return view.page({ title: `Job ${d.name}`, current: "/console/jobs", module: "jobs.js" }, body);
}
