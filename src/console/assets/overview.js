// The overview, live: its numbers follow the stats events, and two charts of the last hour (tasks
// ended per second by status, mean run time per second) are drawn as inline SVG from GET /stats's
// history, then moved on by the task events of every second.
import { live } from "./live.js";

const span = 3600;
const statuses = ["completed", "failed", "expired"];
/** per second (epoch s): ended count by status, and run time sum and count */
const seconds = new Map();

function bucket(second) {
  let b = seconds.get(second);
  if (!b) {
    b = { completed: 0, failed: 0, expired: 0, runSum: 0, runCount: 0 };
    seconds.set(second, b);
  }
  return b;
}

/** One second of GET /stats history, whatever the names of its fields. */
function takeSample(sample) {
  const at = sample.at ?? sample.t ?? sample.second ?? sample.time;
  if (typeof at !== "number") return;
  const second = Math.floor(at > 1e11 ? at / 1000 : at);
  const b = bucket(second);
  const ended = sample.ended ?? sample;
  for (const s of statuses) b[s] = Math.max(b[s], Number(ended[s]) || 0);
  const mean = sample.runMs ?? sample.meanRunMs ?? sample.runTime;
  if (typeof mean === "number" && b.runCount === 0) {
    b.runSum = mean;
    b.runCount = 1;
  }
}

const svgNs = "http://www.w3.org/2000/svg";
function svgEl(tag, attributes) {
  const node = document.createElementNS(svgNs, tag);
  for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, String(v));
  return node;
}

function draw(svg, series, unit) {
  const [w, h, top] = [600, 160, 14];
  const now = Math.floor(Date.now() / 1000);
  const peak = Math.max(1, ...series.flatMap((s) => s.values));
  const parts = [svgEl("line", { x1: 0, y1: h - 0.5, x2: w, y2: h - 0.5, class: "axis" })];
  for (const s of series) {
    const points = s.values.map((v, i) => `${((i / (span - 1)) * w).toFixed(1)},${(h - (v / peak) * (h - top)).toFixed(1)}`);
    parts.push(svgEl("polyline", { points: points.join(" "), class: `line s-${s.name}` }));
  }
  const label = svgEl("text", { x: 4, y: 11, class: "chart-label" });
  label.textContent = `peak ${peak.toFixed(peak < 10 ? 1 : 0)} ${unit}`;
  const left = svgEl("text", { x: 4, y: h - 4, class: "chart-label" });
  left.textContent = `${new Date((now - span) * 1000).toLocaleTimeString()}`;
  const right = svgEl("text", { x: w - 4, y: h - 4, class: "chart-label end" });
  right.textContent = "now";
  parts.push(label, left, right);
  svg.replaceChildren(...parts);
}

function redraw() {
  const now = Math.floor(Date.now() / 1000);
  for (const second of seconds.keys()) if (second <= now - span) seconds.delete(second);
  const range = Array.from({ length: span }, (_, i) => seconds.get(now - span + 1 + i));
  const throughput = document.getElementById("chart-throughput");
  const runtime = document.getElementById("chart-runtime");
  if (throughput) draw(throughput, statuses.map((name) => ({ name, values: range.map((b) => (b ? b[name] : 0)) })), "per second");
  if (runtime) draw(runtime, [{ name: "runtime", values: range.map((b) => (b && b.runCount ? b.runSum / b.runCount : 0)) }], "ms");
}

function showStats(stats) {
  for (const node of document.querySelectorAll("[data-stat]")) {
    const value = stats[node.dataset.stat];
    if (value !== undefined) node.textContent = String(value);
  }
}

async function start() {
  try {
    const reply = await fetch("/stats", { credentials: "same-origin" });
    if (reply.ok) {
      const stats = await reply.json();
      showStats(stats);
      for (const sample of stats.history ?? []) takeSample(sample);
    }
  } catch {
    // Without the history the charts begin empty and fill from now.
  }
  redraw();
  live(["task", "stats"], {
    stats: showStats,
    task(event) {
      if (event.kind !== "ended") return;
      const b = bucket(Math.floor((event.at ?? Date.now()) / 1000));
      if (statuses.includes(event.status)) b[event.status]++;
      if (typeof event.runMs === "number") {
        b.runSum += event.runMs;
        b.runCount++;
      }
    },
  });
  setInterval(redraw, 1000);
}

start();
