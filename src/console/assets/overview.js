// The overview, live: its numbers follow the stats events, and two charts of the last hour are drawn
// as inline SVG: tasks ended per second by status, and the run time's median and 95th percentile per
// minute. They start from GET /stats's history and move on with the task events as they come.
import { live } from "./live.js";

const statuses = ["completed", "failed", "expired"];
/** ended per second by status, by epoch second */
const perSecond = new Map();
/** by epoch minute: the run times seen live, or the p50/p95 the server gave */
const perMinute = new Map();

function second(at) {
  let b = perSecond.get(at);
  if (!b) perSecond.set(at, (b = { completed: 0, failed: 0, expired: 0 }));
  return b;
}

function takeHistory(history) {
  const s0 = Math.floor(history.from / 1000);
  for (const status of statuses) (history[status] ?? []).forEach((n, i) => n && (second(s0 + i)[status] = n));
  const rt = history.runTime;
  if (!rt) return;
  const m0 = Math.floor(rt.from / 60000);
  rt.count.forEach((n, i) => n && perMinute.set(m0 + i, { p50: rt.p50[i], p95: rt.p95[i], runs: [] }));
}

function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

const svgNs = "http://www.w3.org/2000/svg";
function svgEl(tag, attributes) {
  const node = document.createElementNS(svgNs, tag);
  for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, String(v));
  return node;
}

function draw(svg, series, unit) {
  const [w, h, top] = [600, 160, 4];
  const peak = Math.max(1, ...series.flatMap((s) => s.values.filter((v) => v !== null)));
  const parts = [svgEl("line", { x1: 0, y1: h - 0.5, x2: w, y2: h - 0.5, class: "axis" })];
  for (const s of series) {
    const n = s.values.length;
    const points = s.values.map((v, i) => `${((i / (n - 1)) * w).toFixed(1)},${(h - ((v ?? 0) / peak) * (h - top)).toFixed(1)}`);
    parts.push(svgEl("polyline", { points: points.join(" "), class: `line s-${s.name}` }));
  }
  // Text stays out of the stretched SVG: the peak is written beside it.
  const label = document.getElementById(`${svg.id}-peak`);
  if (label) label.textContent = `peak ${peak < 10 ? peak.toFixed(1) : Math.round(peak)} ${unit}`;
  svg.replaceChildren(...parts);
}

function redraw() {
  const now = Math.floor(Date.now() / 1000);
  for (const s of perSecond.keys()) if (s <= now - 3600) perSecond.delete(s);
  for (const m of perMinute.keys()) if (m <= Math.floor(now / 60) - 60) perMinute.delete(m);
  const secs = Array.from({ length: 3600 }, (_, i) => perSecond.get(now - 3599 + i));
  const thisMinute = Math.floor(now / 60);
  const mins = Array.from({ length: 60 }, (_, i) => {
    const m = perMinute.get(thisMinute - 59 + i);
    if (!m) return { p50: null, p95: null };
    if (m.runs.length === 0) return m;
    const sorted = [...m.runs].sort((a, b) => a - b);
    return { p50: quantile(sorted, 0.5), p95: quantile(sorted, 0.95) };
  });
  const throughput = document.getElementById("chart-throughput");
  const runtime = document.getElementById("chart-runtime");
  if (throughput) draw(throughput, statuses.map((name) => ({ name, values: secs.map((b) => (b ? b[name] : 0)) })), "per second");
  if (runtime) {
    draw(runtime, [{ name: "p95", values: mins.map((m) => m.p95) }, { name: "runtime", values: mins.map((m) => m.p50) }], "ms");
  }
}

function showStats(stats) {
  for (const node of document.querySelectorAll("[data-stat]")) {
    const value = stats[node.dataset.stat];
    if (value !== undefined) node.textContent = String(value);
  }
}

function onTask(event) {
  if (event.kind !== "ended" || !statuses.includes(event.status)) return;
  second(Math.floor(event.at / 1000))[event.status]++;
  if (typeof event.runMs !== "number") return;
  const minute = Math.floor(event.at / 60000);
  let m = perMinute.get(minute);
  if (!m) perMinute.set(minute, (m = { p50: null, p95: null, runs: [] }));
  // A minute the server summed up keeps its figures; live runs make the minutes after it.
  if (m.runs.length < 1000 && (m.p50 === null || m.runs.length > 0)) m.runs.push(event.runMs);
}

async function start() {
  // The stream first, so that no event falls between the history and the live part.
  const source = live(["task", "stats"], { stats: showStats, task: onTask });
  await new Promise((resolve) => source.addEventListener("open", resolve, { once: true }));
  try {
    const reply = await fetch("/stats", { credentials: "same-origin" });
    if (reply.ok) {
      const stats = await reply.json();
      showStats(stats);
      if (stats.history) {
        perSecond.clear();
        takeHistory(stats.history);
      }
    }
  } catch {
    // Without the history the charts start empty and fill from now.
  }
  redraw();
  setInterval(redraw, 1000);
}

start();
