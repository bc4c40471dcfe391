// View 2, `/console/tasks`: records newest first, one page at a time (the cursor in the query string),
// filtered by status, topic, job and time; text search bounded by the index ("scanned N of M,
// continue"); find by taskid prefix. tasks.js prepends new tasks live on the first page.
import { endStatuses, type TaskStatus } from "../record.js";
import { parseListingTime } from "../record-query.js";
import { shorten } from "./fold.js";
import { html, type SafeHtml } from "./html.js";
import { duration, errorBox, statusBadge, time, viewUrl, type View } from "./view.js";

const statuses = ["queued", "started", ...endStatuses];
const pageSizes = [20, 50, 100, 200];
/** A taskid prefix is looked for in at most this many of the newest records per page of the answer. */
const findScan = 2000;

export interface TasksFilter {
  status?: string;
  topic?: string;
  job?: string;
  since?: string;
  until?: string;
  text?: string;
  find?: string;
  cursor?: string;
  limit: number;
}

export function tasksFilter(query: URLSearchParams): TasksFilter {
  const get = (k: string) => query.get(k)?.trim() || undefined;
  const limit = Number(query.get("limit") ?? 50);
  return {
    status: get("status"),
    topic: get("topic"),
    job: get("job"),
    since: get("since"),
    until: get("until"),
    text: get("text"),
    find: get("find")?.toLowerCase(),
    cursor: get("cursor"),
    limit: Number.isInteger(limit) && limit >= 1 && limit <= 500 ? limit : 50,
  };
}

/** A time from the form: a datetime-local value (read as the server's local time), an ISO time or epoch ms. */
export function parseTime(text: string | undefined, name: string): number | undefined {
  if (text === undefined) return undefined;
  const ms = parseListingTime(text);
  if (!Number.isFinite(ms)) throw new RangeError(`${name} must be a date and time such as 2026-12-07T09:30, got ${JSON.stringify(text)}`);
  return ms;
}

/** A time as a datetime-local field shows it: the server's local time to the second, so that a link
 *  with epoch ms or an ISO time still fills the field and a next Apply keeps the filter. */
function fieldTime(text: string | undefined): string {
  let ms: number | undefined;
  try {
    ms = parseTime(text, "time");
  } catch {
    return text ?? "";
  }
  if (ms === undefined) return "";
  const local = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return local.toISOString().slice(0, 19);
}

export async function tasksView(view: View, query: URLSearchParams): Promise<SafeHtml> {
  const f = tasksFilter(query);
  let problem: string | undefined;
  let records: Awaited<ReturnType<typeof view.js.tasks>>["records"] = [];
  let next: string | undefined;
  let scanned = 0;
  let total = 0;
  try {
    if (f.find !== undefined && !/^[0-9a-f]{1,32}$/.test(f.find)) throw new RangeError(`a taskid prefix is 1 to 32 hex characters, got ${JSON.stringify(f.find)}`);
    const base = {
      // tasks() checks the status itself and says what is wrong with it.
      status: f.status as TaskStatus | undefined,
      topic: f.topic,
      job: f.job,
      since: parseTime(f.since, "since"),
      until: parseTime(f.until, "until"),
      text: f.text,
    };
    if (f.find !== undefined) {
      // The index has no taskid lookup by prefix: look through the newest records, a bounded number at a time.
      let cursor = f.cursor;
      do {
        const pageOf = await view.js.tasks({ ...base, cursor, limit: 500 });
        scanned += pageOf.scanned;
        total = pageOf.total;
        records.push(...pageOf.records.filter((r) => r.taskid.startsWith(f.find!)));
        cursor = pageOf.next;
      } while (cursor && scanned < findScan && records.length < f.limit);
      next = cursor;
    } else {
      const got = await view.js.tasks({ ...base, cursor: f.cursor, limit: f.limit });
      ({ records, next, scanned, total } = got);
    }
  } catch (err) {
    // A filter or cursor that is wrong is said on the page; anything else is the server's failure.
    if (!(err instanceof TypeError || err instanceof RangeError)) throw err;
    problem = err.message;
  }
  const here = { status: f.status, topic: f.topic, job: f.job, since: f.since, until: f.until, text: f.text, find: f.find, limit: f.limit === 50 ? undefined : f.limit };
  const searching = f.text !== undefined || f.find !== undefined;
  const topics = [...new Set(view.js.jobs().flatMap((d) => d.topics))].sort();
  const jobNames = view.js.jobs().map((d) => d.name).sort();

  const form = html`
<form method="get" action="/console/tasks" class="filters" role="search" aria-label="Filter tasks">
  <label>Status <select name="status"><option value="">any</option>${statuses.map((s) => html`<option${s === f.status ? html` selected` : ""}>${s}</option>`)}</select></label>
  <label>Topic <input name="topic" list="topic-list" value="${f.topic ?? ""}" autocomplete="off"></label>
  <datalist id="topic-list">${topics.map((t) => html`<option value="${t}"></option>`)}</datalist>
  <label>Job <select name="job"><option value="">any</option>${jobNames.map((j) => html`<option${j === f.job ? html` selected` : ""}>${j}</option>`)}</select></label>
  <label>Since <input type="datetime-local" name="since" value="${fieldTime(f.since)}" step="1"></label>
  <label>Until <input type="datetime-local" name="until" value="${fieldTime(f.until)}" step="1"></label>
  <label>Text in content or errors <input type="search" name="text" value="${f.text ?? ""}"></label>
  <label>Taskid prefix <input name="find" value="${f.find ?? ""}" pattern="[0-9a-fA-F]{1,32}" size="12" autocomplete="off"></label>
  <label>Per page <select name="limit">${pageSizes.map((n) => html`<option${n === f.limit ? html` selected` : ""}>${n}</option>`)}</select></label>
  <button type="submit">Apply</button> <a href="/console/tasks">Clear</a>
</form>`;

  const rows = records.map(
    (r) => html`<tr data-taskid="${r.taskid}">
<td><a href="/console/tasks/${r.taskid}"><code>${r.taskid.slice(0, 8)}</code></a></td>
<td class="topic">${shorten(r.topic)}</td><td>${statusBadge(r.status)}</td>
<td>${time(r.createdAt)}</td>
<td>${r.startedAt !== undefined && r.completedAt !== undefined ? duration(r.completedAt - r.startedAt) : ""}</td>
<td>${r.results.map((x) => x.job).join(", ")}${r.warning ? html` <span class="warn">${r.warning}</span>` : ""}</td></tr>`,
  );
  const olderUrl = next ? viewUrl("/console/tasks", { ...here, cursor: next }) : undefined;
  const summary = searching
    ? html`<p class="note" role="status">Scanned ${scanned.toLocaleString("en")} of ${total.toLocaleString("en")} records, ${records.length} found.${olderUrl ? html` <a href="${olderUrl}">Continue the search</a>` : " The search reached the oldest record."}</p>`
    : html`<p class="note">${total.toLocaleString("en")} records kept.</p>`;
  const live = f.cursor === undefined && !searching && f.until === undefined;

  const body = html`${form}${errorBox(problem)}${summary}
<p id="new-tasks" class="note" role="status" aria-live="polite"></p>
<table class="tasks" id="tasks" data-live="${live ? "on" : "off"}" data-status="${f.status ?? ""}" data-topic="${f.topic ?? ""}" data-job="${f.job ?? ""}" aria-label="Tasks, newest first">
<thead><tr><th scope="col">Taskid</th><th scope="col">Topic</th><th scope="col">Status</th><th scope="col">Created</th><th scope="col">Run time</th><th scope="col">Jobs</th></tr></thead>
<tbody>${rows}</tbody></table>
${records.length === 0 && !problem ? html`<p class="empty">No task matches.</p>` : ""}
<nav class="pager" aria-label="Pages">${f.cursor ? html`<a href="${viewUrl("/console/tasks", here)}">← newest</a>` : ""} ${olderUrl && !searching ? html`<a href="${olderUrl}" rel="next">older →</a>` : ""}</nav>`;
  return view.page({ title: "Tasks", current: "/console/tasks", module: "tasks.js" }, body);
}
