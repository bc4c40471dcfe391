// View 1, `/console`: where the queue is, its jobs, depth and tasks in flight, the workers when the
// mode has them, warnings an operator should act on, and live charts of the last hour (drawn by
// overview.js from GET /stats and the stats events).
import { html, type SafeHtml } from "./html.js";
import { statusBadge, time, type View } from "./view.js";

/** How many of the newest records are looked at for tasks on topics no job handles. */
const recentForWarnings = 200;
/** A task queued longer than this without a start suggests no worker is running. */
const waitingMs = 30_000;

export async function overview(view: View): Promise<SafeHtml> {
  const { js } = view;
  const stats = await js.stats();
  const jobs = js.jobs();
  const recent = await js.tasks({ limit: recentForWarnings });
  const unhandled = new Map<string, number>();
  for (const r of recent.records) {
    if (r.warning?.startsWith("no job handles topic")) unhandled.set(r.topic, (unhandled.get(r.topic) ?? 0) + 1);
  }
  const warnings: SafeHtml[] = [];
  if (js.mode === "memory" && !js.hasWorker) {
    warnings.push(html`<li>No worker is running: in memory mode only this process could run tasks, and it runs none.</li>`);
  } else if (stats.workers?.length === 0) {
    warnings.push(html`<li>No worker is running: no worker's heartbeat is on the server (<code>jobshell worker</code> starts one).</li>`);
  }
  // Other modes have workers elsewhere: tasks left waiting tell that none is running.
  const waiting = recent.records.filter((r) => r.status === "queued" && Date.now() - r.createdAt > waitingMs).length;
  if (waiting > 0) {
    warnings.push(html`<li>${waiting} of the last ${recent.records.length} tasks have waited over ${waitingMs / 1000} s without being started: is a worker running (<code>jobshell worker</code>)?</li>`);
  }
  if (jobs.length === 0) warnings.push(html`<li>No jobs are defined: every task ends with “no job handles topic”. <a href="/console/jobs">Add a job</a>.</li>`);
  for (const [topic, count] of unhandled) {
    warnings.push(html`<li>${count} of the last ${recent.records.length} tasks went to topic <code>${topic}</code>, which no job handles.</li>`);
  }

  // Memory mode's one queue is the depth above already.
  const queues = stats.queues && js.mode !== "memory"
    ? html`<p class="note" id="queues-h">Queues on the server</p><dl class="cards small" aria-labelledby="queues-h">${stats.queues.map((q) => html`<div><dt>${q.name}</dt><dd>${q.depth}${q.consumers === undefined ? "" : html` <small>(${q.consumers} consuming)</small>`}</dd></div>`)}</dl>`
    : "";
  const workers = stats.workers
    ? html`<section aria-labelledby="workers-h"><h2 id="workers-h">Workers</h2>
        <table><thead><tr><th scope="col">Worker</th><th scope="col">Last heartbeat</th><th scope="col">Host</th><th scope="col">Process</th></tr></thead>
        <tbody>${stats.workers.map((w) => html`<tr><td>${w.id}</td><td>${time(w.lastSeen)}</td><td>${w.host ?? ""}</td><td>${w.pid ?? ""}</td></tr>`)}</tbody></table></section>`
    : "";

  const body = html`
<section aria-label="The queue now" id="numbers">
<dl class="cards">
  <div><dt>Mode</dt><dd>${stats.mode}</dd></div>
  <div><dt>Jobs</dt><dd><a href="/console/jobs">${stats.jobs}</a></dd></div>
  <div><dt>Queue depth</dt><dd data-stat="queueDepth">${stats.queueDepth}</dd></div>
  <div><dt>In flight</dt><dd data-stat="inFlight">${stats.inFlight}</dd></div>
  <div><dt>Issued</dt><dd data-stat="issued">${stats.issued}</dd></div>
  <div><dt>Completed</dt><dd data-stat="completed">${stats.completed}</dd></div>
  <div><dt>Failed</dt><dd data-stat="failed">${stats.failed}</dd></div>
  <div><dt>Expired</dt><dd data-stat="expired">${stats.expired}</dd></div>
</dl>
${queues}
<p class="note">Location: <code>${stats.location}</code>. Counters are this process's since it started.</p>
</section>
${warnings.length > 0 ? html`<section aria-labelledby="warn-h" class="warnings"><h2 id="warn-h">Warnings</h2><ul>${warnings}</ul></section>` : ""}
<section aria-labelledby="charts-h">
<h2 id="charts-h">The last hour</h2>
<figure><figcaption id="tp-cap">Tasks ended per second, by status</figcaption>
<svg id="chart-throughput" class="chart" role="img" aria-labelledby="tp-cap" viewBox="0 0 600 160" preserveAspectRatio="none"></svg>
<p class="axis-labels"><span>an hour ago</span><span id="chart-throughput-peak"></span><span>now</span></p>
<p class="legend"><span class="key s-completed">completed</span> <span class="key s-failed">failed</span> <span class="key s-expired">expired</span></p></figure>
<figure><figcaption id="rt-cap">Run time of ended tasks per minute: median and 95th percentile (ms)</figcaption>
<svg id="chart-runtime" class="chart" role="img" aria-labelledby="rt-cap" viewBox="0 0 600 160" preserveAspectRatio="none"></svg>
<p class="axis-labels"><span>an hour ago</span><span id="chart-runtime-peak"></span><span>now</span></p>
<p class="legend"><span class="key s-runtime">median</span> <span class="key s-p95">95th percentile</span></p></figure>
<noscript><p>The charts need JavaScript; the numbers above are as of this page's load.</p></noscript>
</section>
${workers}
<section aria-labelledby="recent-h"><h2 id="recent-h">Latest tasks</h2>
<ul class="plain">${recent.records.slice(0, 5).map((r) => html`<li>${statusBadge(r.status)} <a href="/console/tasks/${r.taskid}"><code>${r.topic}</code></a> ${time(r.createdAt)}</li>`)}</ul>
<p><a href="/console/tasks">All tasks →</a></p></section>`;
  return view.page({ title: "Overview", current: "/console", module: "overview.js" }, body);
}
