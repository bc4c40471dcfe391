// Small helpers shared by the benchmarks: medians, percentiles, one table format, the issue-and-wait
// path every mode is measured on, and a worker in a process of its own.
import { spawn } from "node:child_process";

export function median(values) {
  return percentile(values, 50);
}

export function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

/** `median (min to max)` of rates, rounded */
export function spread(values) {
  const r = (x) => Math.round(x).toLocaleString("en-US");
  return `${r(median(values))} (${r(Math.min(...values))} to ${r(Math.max(...values))})`;
}

/** The median of per-round ratios a[i] / b[i], and the rounds. */
export function ratio(a, b) {
  const rounds = a.map((value, i) => value / b[i]);
  return `${median(rounds).toFixed(2)} (rounds ${rounds.map((r) => r.toFixed(2)).join(" ")})`;
}

export function printTable(title, rows) {
  const width = Math.max(...rows.map(([label]) => label.length));
  console.log(`\n${title}`);
  for (const [label, value] of rows) console.log(`  ${label.padEnd(width)}  ${value}`);
}

/** What users do: `count` tasks issued `block` at a time with `issue()`, then every one awaited with
 *  `wait()` before the next block. Resolves with tasks/s. */
export async function issueAndWait(count, block, issue, wait) {
  const began = performance.now();
  for (let done = 0; done < count; done += block) {
    const ids = await Promise.all(Array.from({ length: Math.min(block, count - done) }, issue));
    await Promise.all(ids.map(wait));
  }
  return count / ((performance.now() - began) / 1000);
}

/** bench/worker.js in a process of its own, on the queue `namespace` (Redis: with `waitReplicas`);
 *  resolves once it takes tasks. Closing its stdin stops it. */
export function startWorkerProcess(mode, url, namespace, waitReplicas = 0) {
  const child = spawn(process.execPath, [new URL("./worker.js", import.meta.url).pathname, mode, url, namespace, String(waitReplicas)], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    child.on("exit", (code) => reject(new Error(`worker process exited with ${code}`)));
    child.stdout.once("data", () =>
      resolve({
        stop: () =>
          new Promise((done) => {
            child.removeAllListeners("exit");
            child.on("exit", done);
            child.stdin.end();
          }),
      }),
    );
  });
}

/** A full collection (run node with --expose-gc). V8 hands freed pages back from background threads
 *  after a collection: a second one after a pause leaves what is kept rather than what is being freed. */
export async function collect() {
  globalThis.gc?.();
  await new Promise((resolve) => setTimeout(resolve, 200));
  globalThis.gc?.();
}

async function heapUsed() {
  await collect();
  return process.memoryUsage().heapUsed;
}

/**
 * What `count` outstanding waitfor()s cost, in bytes each, and what stays once they are over: with
 * `count` tasks queued and no worker, the heap is measured before the waiters, with them all waiting,
 * and after they timed out (the records unchanged, so anything above the first mark was left behind).
 * Then the same again, ended by a worker: what stays then, less what the records themselves gain by
 * ending (the same tasks run with nobody waiting). `openQueue()` opens a JobShell with no worker on a
 * fresh queue ({ js, close }); `openWorker(js)` a JobShell running a worker on the same queue.
 */
export async function waiterMemory(count, openQueue, openWorker) {
  const issue = async (js) => {
    const ids = [];
    for (let done = 0; done < count; done += 1000) {
      ids.push(...(await Promise.all(Array.from({ length: Math.min(1000, count - done) }, () => js.task("noop", {}, 600)))));
    }
    return ids;
  };
  // Timed out: nothing of them may stay.
  let queue = await openQueue();
  let ids = await issue(queue.js);
  const before = await heapUsed();
  let waits = ids.map((id) => queue.js.waitfor(id, 3).catch((err) => err.code));
  const waiting = await heapUsed();
  const outcomes = await Promise.all(waits);
  if (outcomes.some((o) => o !== "TIMEOUT")) throw new Error(`a waitfor() did not time out: ${outcomes.find((o) => o !== "TIMEOUT")}`);
  waits = undefined;
  outcomes.length = 0;
  const timedOut = await heapUsed();
  await queue.close();
  // Ended by a worker, against the same tasks ended with nobody waiting.
  const grown = async (wait) => {
    queue = await openQueue();
    ids = await issue(queue.js);
    const start = await heapUsed();
    let pending = wait ? ids.map((id) => queue.js.waitfor(id, 120)) : undefined;
    const worker = await openWorker(queue.js);
    if (pending) await Promise.all(pending);
    while (worker.metrics.totals().completed < count) await new Promise((resolve) => setTimeout(resolve, 20));
    pending = undefined;
    await worker.close();
    const end = await heapUsed();
    await queue.close();
    return end - start;
  };
  const alone = await grown(false);
  const waited = await grown(true);
  return { perWaiter: (waiting - before) / count, afterTimeout: (timedOut - before) / count, afterResolve: (waited - alone) / count };
}
