// Memory mode: the path users take (100k no-op tasks issued 1,000 at a time with task(), each block's
// records then awaited with waitfor()), beside fire-and-forget (all issued, completions counted) and all
// issued then all awaited, in turns; then what 100k outstanding waitfor()s cost, the task()→waitfor()
// round trip, and memory over 1M tasks. Scripts run isolated in the script pool's threads, the default;
// the headline and the round trip are measured in the same turns with job_in_process (scripts in the
// worker's own thread), so that what the isolation costs prints as a ratio.
// Run: npm run build && node --expose-gc bench/memory.js   (REPEAT=5 runs of each, TASKS=100000, BLOCK=1000)
import { MemoryBackend, open } from "../dist/index.js";
import { collect, issueAndWait, median, percentile, printTable, ratio, spread, waiterMemory } from "./stats.js";

const repeat = Number(process.env.REPEAT ?? 5);
const tasks = Number(process.env.TASKS ?? 100_000);
const block = Number(process.env.BLOCK ?? 1000);
const noop = `- {name: noop, topics: [noop], script: "return"}`;

async function opened(options = {}) {
  const js = await open({ jobQueueSize: tasks + 1, jobQueueBulkReadSize: 32, taskRecordTtl: 30, log: () => {}, ...options });
  await js.upload(noop);
  return js;
}

/** CPU time this process used per task since `since` (µs): what a run costs a core, whatever else runs. */
function cpuPerTask(since) {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / tasks;
}

/** The headline: issued BLOCK at a time, each block awaited; `cpus` gets the CPU a task. */
async function waitedRun(options, cpus) {
  const js = await opened(options);
  const cpu = process.cpuUsage();
  const rate = await issueAndWait(tasks, block, () => js.task("noop", {}, 60), (id) => js.waitfor(id, 120));
  cpus.push(cpuPerTask(cpu));
  await js.close();
  return rate;
}

/** Every task issued at once, then every record awaited. */
async function allAtOnceRun() {
  const js = await opened();
  const began = performance.now();
  const ids = await Promise.all(Array.from({ length: tasks }, () => js.task("noop", {}, 60)));
  await Promise.all(ids.map((id) => js.waitfor(id, 120)));
  const seconds = (performance.now() - began) / 1000;
  await js.close();
  return tasks / seconds;
}

/** Every task issued at once, completions counted: nobody waits for a record. */
async function firedRun() {
  const js = await opened();
  const cpu = process.cpuUsage();
  const began = performance.now();
  await Promise.all(Array.from({ length: tasks }, () => js.task("noop", {}, 60)));
  while (js.metrics.totals().completed < tasks) await new Promise((resolve) => setImmediate(resolve));
  const seconds = (performance.now() - began) / 1000;
  firedCpu.push(cpuPerTask(cpu));
  await js.close();
  return tasks / seconds;
}

async function roundTrip(count, options) {
  const js = await opened(options);
  const times = [];
  for (let i = 0; i < count; i++) {
    const began = performance.now();
    await js.waitfor(await js.task("noop"), 10);
    times.push(performance.now() - began);
  }
  await js.close();
  return { p50: percentile(times, 50), p99: percentile(times, 99) };
}

/** Memory after a full collection (without --expose-gc it depends on when V8 last collected). */
async function measure() {
  await collect();
  const { rss, heapUsed } = process.memoryUsage();
  return { rss, heapUsed };
}

/** Records live task_record_ttl (`ttl`, short here), so memory holds the records of the last ttl (plus
 *  one sweep interval) of work. Each mark first lets those lapse, so that both marks measure what is left
 *  once nothing is retained by design: past the first 100k, that must not grow however many tasks run. */
async function flatMemory(total, firstMark, chunk = 1000) {
  const ttl = 0.25;
  const js = await opened({ taskRecordTtl: ttl });
  const lapse = () => new Promise((resolve) => setTimeout(resolve, ttl * 1000 * 2 + 100));
  let afterFirst;
  for (let done = 0; done < total; done += chunk) {
    await issueAndWait(chunk, chunk, () => js.task("noop", {}, 60), (id) => js.waitfor(id, 120));
    if (done + chunk === firstMark) {
      await lapse();
      afterFirst = await measure();
    }
  }
  await lapse();
  const atEnd = await measure();
  await js.close();
  return { afterFirst, atEnd };
}

// Memory first, while nothing else has grown the heap.
const mem = await flatMemory(1_000_000, 100_000);
// The queue and the worker are two JobShells over one backend, which the queue's side opens.
const queues = new WeakMap();
const waiters = await waiterMemory(
  100_000,
  async () => {
    const backend = new MemoryBackend({ taskRecordTtl: 600 });
    const js = await opened({ backend, worker: false, jobQueueSize: 200_000, taskRecordTtl: 600 });
    queues.set(js, backend);
    return {
      js,
      async close() {
        await js.close();
        await backend.close();
      },
    };
  },
  (js) => open({ backend: queues.get(js), jobQueueBulkReadSize: 32, log: () => {} }),
);
const inProcess = { jobInProcess: true };
const waited = [];
const waitedCpu = [];
const waitedInProcess = [];
const waitedInProcessCpu = [];
const firedCpu = [];
const allAtOnce = [];
const fired = [];
// In turns, each run from a collected heap: the 100k records a run leaves behind (kept task_record_ttl,
// so promoted to the old generation) are not the next run's to collect.
for (let i = 0; i < repeat; i++) {
  await collect();
  waited.push(await waitedRun({}, waitedCpu));
  await collect();
  waitedInProcess.push(await waitedRun(inProcess, waitedInProcessCpu));
  await collect();
  fired.push(await firedRun());
  await collect();
  allAtOnce.push(await allAtOnceRun());
}
const trips = [];
const tripsInProcess = [];
for (let i = 0; i < Math.min(repeat, 3); i++) {
  trips.push(await roundTrip(10_000));
  tripsInProcess.push(await roundTrip(10_000, inProcess));
}
const tasksACore = (cpus) => Math.round(1e6 / median(cpus)).toLocaleString("en-US");

const mib = (bytes) => (bytes / 2 ** 20).toFixed(1);
const rounds = waited.map((w, i) => w / fired[i]);
printTable(`memory mode, ${tasks} no-op tasks, ${repeat} runs each in turns: median (range)`, [
  [`issued ${block} at a time, each block awaited with waitfor() (tasks/s)`, spread(waited)],
  ["  the same with job_in_process (tasks/s)", spread(waitedInProcess)],
  ["  isolated / in process, median of runs", ratio(waited, waitedInProcess)],
  [
    "  CPU a task, isolated / in process (µs, median; tasks/s a core)",
    `${median(waitedCpu).toFixed(2)} / ${median(waitedInProcessCpu).toFixed(2)} (${tasksACore(waitedCpu)} / ${tasksACore(waitedInProcessCpu)})`,
  ],
  ["fire-and-forget: all issued, completions counted (tasks/s)", spread(fired)],
  ["  issued and awaited / fire-and-forget, median of runs", `${median(rounds).toFixed(2)} (runs ${rounds.map((r) => r.toFixed(2)).join(" ")})`],
  [
    "CPU a task, issued and awaited / fire-and-forget (µs, median; tasks/s a core)",
    `${median(waitedCpu).toFixed(2)} / ${median(firedCpu).toFixed(2)} (${tasksACore(waitedCpu)} / ${tasksACore(firedCpu)})`,
  ],
  ["all issued, then all awaited (tasks/s)", spread(allAtOnce)],
  ["round trip task()→waitfor() over 10,000 sequential, p50 ms (median of runs)", median(trips.map((t) => t.p50)).toFixed(3)],
  ["round trip p99 ms (median of runs)", median(trips.map((t) => t.p99)).toFixed(3)],
  ["  with job_in_process, p50 / p99 ms", `${median(tripsInProcess.map((t) => t.p50)).toFixed(3)} / ${median(tripsInProcess.map((t) => t.p99)).toFixed(3)}`],
  [`100,000 outstanding waitfor()s${globalThis.gc ? "" : " (run with --expose-gc for these)"}: heap bytes each`, waiters.perWaiter.toFixed(0)],
  ["  left per waiter once they timed out / once their tasks ran (bytes)", `${waiters.afterTimeout.toFixed(1)} / ${waiters.afterResolve.toFixed(1)}`],
  [`memory over 1M tasks${globalThis.gc ? ", after full GCs" : " (run with --expose-gc to collect first)"}`, ""],
  ["  heap used after the first 100k / after 1M (MiB)", `${mib(mem.afterFirst.heapUsed)} / ${mib(mem.atEnd.heapUsed)}, ratio ${(mem.atEnd.heapUsed / mem.afterFirst.heapUsed).toFixed(2)}`],
  ["  RSS after the first 100k / after 1M (MiB)", `${mib(mem.afterFirst.rss)} / ${mib(mem.atEnd.rss)}, ratio ${(mem.atEnd.rss / mem.afterFirst.rss).toFixed(2)}`],
]);
