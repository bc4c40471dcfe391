// Memory mode: throughput, task()→waitfor() round trip, and memory over 1M tasks.
// Run: npm run build && node --expose-gc bench/memory.js   (medians of REPEAT runs; REPEAT=5 by default)
import { open } from "../dist/index.js";
import { median, percentile, printTable } from "./stats.js";

const repeat = Number(process.env.REPEAT ?? 5);
const noop = `- {name: noop, topics: [noop], script: "return"}`;

/** `count` no-op tasks issued and awaited with waitfor(), at most `window` of them outstanding. */
async function throughputRun(count, window) {
  const js = await open({ jobQueueSize: count + 1, jobQueueBulkReadSize: 32, taskRecordTtl: 30, log: () => {} });
  await js.upload(noop);
  const began = performance.now();
  for (let done = 0; done < count; done += window) {
    const ids = [];
    for (let i = 0; i < Math.min(window, count - done); i++) ids.push(await js.task("noop", {}, 60));
    await Promise.all(ids.map((id) => js.waitfor(id, 120)));
  }
  const seconds = (performance.now() - began) / 1000;
  await js.close();
  return count / seconds;
}

async function roundTrip(count) {
  const js = await open({ jobQueueBulkReadSize: 32, log: () => {} });
  await js.upload(noop);
  const times = [];
  for (let i = 0; i < count; i++) {
    const began = performance.now();
    await js.waitfor(await js.task("noop"), 10);
    times.push(performance.now() - began);
  }
  await js.close();
  return { p50: percentile(times, 50), p99: percentile(times, 99) };
}

/** A full collection when run with --expose-gc. V8 hands freed pages back to the system from
 *  background threads after a collection: a second one after a pause leaves what is kept rather than
 *  what is still being given back. */
async function collect() {
  globalThis.gc?.();
  await new Promise((resolve) => setTimeout(resolve, 200));
  globalThis.gc?.();
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
  const js = await open({ jobQueueBulkReadSize: 32, taskRecordTtl: ttl, log: () => {} });
  await js.upload(noop);
  const lapse = () => new Promise((resolve) => setTimeout(resolve, ttl * 1000 * 2 + 100));
  let afterFirst;
  for (let done = 0; done < total; done += chunk) {
    const ids = [];
    for (let i = 0; i < chunk; i++) ids.push(await js.task("noop", {}, 60));
    await Promise.all(ids.map((id) => js.waitfor(id, 120)));
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
const allAtOnce = [];
const windowed = [];
// Each run starts from a collected heap: the 100k records a run leaves behind (kept task_record_ttl, so
// promoted to the old generation) are not the next run's to collect. Back to back, a run could pay for a
// full collection of its predecessors' records and read slower than the code it measures.
for (let i = 0; i < repeat; i++) {
  await collect();
  allAtOnce.push(await throughputRun(100_000, 100_000));
  await collect();
  windowed.push(await throughputRun(100_000, 1000));
}
const trips = [];
for (let i = 0; i < Math.min(repeat, 3); i++) trips.push(await roundTrip(10_000));

const mib = (bytes) => (bytes / 2 ** 20).toFixed(1);
printTable("memory mode", [
  ["100k no-op tasks, all issued then all awaited (median tasks/s)", Math.round(median(allAtOnce))],
  ["  runs (tasks/s)", allAtOnce.map((r) => Math.round(r)).join(" ")],
  ["100k no-op tasks, at most 1,000 outstanding (median tasks/s)", Math.round(median(windowed))],
  ["  runs (tasks/s)", windowed.map((r) => Math.round(r)).join(" ")],
  ["round trip task()→waitfor() over 10,000 sequential, p50 ms (median of runs)", median(trips.map((t) => t.p50)).toFixed(3)],
  ["round trip p99 ms (median of runs)", median(trips.map((t) => t.p99)).toFixed(3)],
  [`memory over 1M tasks${globalThis.gc ? ", after full GCs" : " (run with --expose-gc to collect first)"}`, ""],
  ["  heap used after the first 100k / after 1M (MiB)", `${mib(mem.afterFirst.heapUsed)} / ${mib(mem.atEnd.heapUsed)}, ratio ${(mem.atEnd.heapUsed / mem.afterFirst.heapUsed).toFixed(2)}`],
  ["  RSS after the first 100k / after 1M (MiB)", `${mib(mem.afterFirst.rss)} / ${mib(mem.atEnd.rss)}, ratio ${(mem.atEnd.rss / mem.afterFirst.rss).toFixed(2)}`],
]);
