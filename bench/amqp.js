// AMQP mode against the floor any AMQP task queue pays: raw amqplib with persistent messages, publisher
// confirms, consumed with manual acks, prefetch 32, producer and consumer in one process. On the path
// users take, both issue TASKS tasks BLOCK at a time and wait for each block to be done (jobshell: task()
// then waitfor(); raw: each publish confirmed, then each message consumed and acknowledged); beside it,
// fire-and-forget (every task issued at once, completions counted), jobshell with its worker in a process
// of its own, and task()→waitfor() round trips one at a time. All in turns, REPEAT rounds. jobshell runs
// scripts isolated in its script pool's threads (the default); jobshellInProcess is the same with
// job_in_process, so that what the isolation costs prints as a ratio.
// Run: npm run build && node bench/amqp.js   (AMQP_URL, default amqp://guest:guest@127.0.0.1:5672;
//      REPEAT=5, TASKS=20000, BLOCK=1000, TRIPS=1000)
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { loadavg } from "node:os";
import amqp from "amqplib";
import { open } from "../dist/index.js";
import { deleteAmqpNamespace } from "../dist/backends/amqp/index.js";
import { issueAndWait, median, percentile, printTable, ratio, spread, startWorkerProcess } from "./stats.js";

const url = process.env.AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";
const repeat = Number(process.env.REPEAT ?? 5);
const count = Number(process.env.TASKS ?? 20_000);
const block = Number(process.env.BLOCK ?? 1000);
const trips = Number(process.env.TRIPS ?? 1000);
const prefetch = 32;
const noop = `- {name: noop, topics: [noop], script: "return"}`;

/** Raw amqplib: every message persistent and confirmed, consumed with manual acks, prefetch 32. */
async function rawQueue() {
  const queue = `bench-raw-${randomBytes(4).toString("hex")}`;
  const conn = await amqp.connect(url, { noDelay: true });
  const pub = await conn.createConfirmChannel();
  const sub = await conn.createChannel();
  await pub.assertQueue(queue, { durable: true, arguments: { "x-max-length": 65535, "x-overflow": "reject-publish" } });
  await sub.prefetch(prefetch);
  let consumed = 0;
  /** called as each message is consumed, by its taskid */
  const waiting = new Map();
  const { consumerTag } = await sub.consume(queue, (msg) => {
    if (!msg) return;
    const { taskid } = JSON.parse(msg.content.toString()); // the worker reads the task
    sub.ack(msg);
    consumed++;
    waiting.get(taskid)?.();
    waiting.delete(taskid);
  }, { noAck: false });
  /** Resolves with the taskid once the broker confirmed it; `done` once it has been consumed. */
  const publish = (done) => {
    const taskid = randomBytes(16).toString("hex");
    if (done) waiting.set(taskid, done);
    const body = Buffer.from(JSON.stringify({ taskid, topic: "noop", content: {}, expire: 60 }));
    return new Promise((resolve, reject) => {
      pub.sendToQueue(queue, body, { persistent: true }, (err) => (err ? reject(err) : resolve(taskid)));
    });
  };
  return {
    issueAndWait: (n) =>
      issueAndWait(n, block, () => {
        let consumedNow;
        const ended = new Promise((resolve) => (consumedNow = resolve));
        return publish(consumedNow).then(() => ended);
      }, (ended) => ended),
    async fireAndForget(n) {
      const before = consumed;
      const began = performance.now();
      await Promise.all(Array.from({ length: n }, () => publish()));
      while (consumed - before < n) await new Promise((resolve) => setTimeout(resolve, 2));
      return n / ((performance.now() - began) / 1000);
    },
    async close() {
      await sub.cancel(consumerTag);
      await pub.deleteQueue(queue);
      await conn.close();
    },
  };
}

/** jobshell's AMQP mode: a worker in the same process, or (`cross`) in a process of its own; `options`
 *  on top (job_in_process). */
async function jobshellQueue(cross, options = {}) {
  const namespace = `bench-${randomBytes(4).toString("hex")}`;
  const debugChannel = `${namespace}.debug`;
  const js = await open({ amqpUrl: url, namespace, debugChannel, jobQueueBulkReadSize: prefetch, taskRecordTtl: 600, worker: !cross, log: () => {}, ...options });
  await js.upload(noop);
  const worker = cross ? await startWorkerProcess("amqp", url, namespace) : undefined;
  const completed = (record) => {
    if (record.status !== "completed") throw new Error(`task ${record.taskid} ended ${record.status}`);
  };
  return {
    issueAndWait: (n) => issueAndWait(n, block, () => js.task("noop", {}, 60), (id) => js.waitfor(id, 120).then(completed)),
    fireAndForget: cross
      ? undefined
      : async (n) => {
          const before = js.metrics.totals().completed;
          const began = performance.now();
          await Promise.all(Array.from({ length: n }, () => js.task("noop", {}, 60)));
          while (js.metrics.totals().completed - before < n) await new Promise((resolve) => setTimeout(resolve, 2));
          return n / ((performance.now() - began) / 1000);
        },
    async roundTrips(n) {
      const times = [];
      for (let i = 0; i < n; i++) {
        const began = performance.now();
        await js.waitfor(await js.task("noop"), 10);
        times.push(performance.now() - began);
      }
      return times;
    },
    async close() {
      await worker?.stop();
      await js.close();
      await deleteAmqpNamespace(url, namespace, debugChannel);
    },
  };
}

/** The CPU seconds used so far by the broker, when it runs on this machine (the Erlang VM, beam.smp):
 *  what each system costs it a task, which on a shared machine decides more than any client. */
function brokerCpuSeconds() {
  let total;
  for (const pid of readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() !== "beam.smp") continue;
      // utime and stime, fields 14 and 15, after the command in parentheses
      const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
      total = (total ?? 0) + (Number(fields[11]) + Number(fields[12])) / 100;
    } catch {
      // a process that ended meanwhile, or no /proc
    }
  }
  return total;
}

const loadBefore = loadavg()[0];
const systems = {
  raw: await rawQueue(),
  jobshell: await jobshellQueue(false),
  jobshellInProcess: await jobshellQueue(false, { jobInProcess: true }),
  jobshellCross: await jobshellQueue(true),
};
const labels = Object.keys(systems);
// One warm-up of each, not counted.
for (const label of labels) {
  await systems[label].issueAndWait(count);
  await systems[label].fireAndForget?.(count);
}
const waited = Object.fromEntries(labels.map((label) => [label, []]));
const fired = Object.fromEntries(labels.map((label) => [label, []]));
const brokerCpu = Object.fromEntries(labels.map((label) => [label, []]));
const nodeCpu = Object.fromEntries(labels.map((label) => [label, []]));
for (let i = 0; i < repeat; i++) {
  for (const label of labels) {
    const broker = brokerCpuSeconds();
    const cpu = process.cpuUsage();
    waited[label].push(await systems[label].issueAndWait(count));
    const used = process.cpuUsage(cpu);
    nodeCpu[label].push((used.user + used.system) / count);
    if (broker !== undefined) brokerCpu[label].push(((brokerCpuSeconds() - broker) * 1e6) / count);
    if (systems[label].fireAndForget) fired[label].push(await systems[label].fireAndForget(count));
  }
}
const times = await systems.jobshell.roundTrips(trips);
const inProcessTimes = await systems.jobshellInProcess.roundTrips(trips);
const crossTimes = await systems.jobshellCross.roundTrips(trips);
for (const label of labels) await systems[label].close();

printTable(`AMQP mode vs raw amqplib, ${count} no-op tasks issued ${block} at a time then awaited, prefetch ${prefetch}, ${repeat} rounds: median (range)`, [
  ["raw amqplib (persistent, confirms, manual ack), issued and awaited, tasks/s", spread(waited.raw)],
  ["jobshell, task() then waitfor(), tasks/s", spread(waited.jobshell)],
  ["jobshell with job_in_process, tasks/s", spread(waited.jobshellInProcess)],
  ["jobshell, worker in another process, tasks/s", spread(waited.jobshellCross)],
  ["raw amqplib, fire-and-forget, tasks/s", spread(fired.raw)],
  ["jobshell, fire-and-forget, tasks/s", spread(fired.jobshell)],
  ["jobshell with job_in_process, fire-and-forget, tasks/s", spread(fired.jobshellInProcess)],
  ["issued and awaited: jobshell / raw", ratio(waited.jobshell, waited.raw)],
  ["jobshell issued and awaited / raw fire-and-forget", ratio(waited.jobshell, fired.raw)],
  ["jobshell: issued and awaited / fire-and-forget", ratio(waited.jobshell, fired.jobshell)],
  ["jobshell issued and awaited: isolated / job_in_process", ratio(waited.jobshell, waited.jobshellInProcess)],
  ["jobshell issued and awaited: worker in another process / in the same", ratio(waited.jobshellCross, waited.jobshell)],
  [
    "CPU a task issued and awaited, broker / this process (µs): raw",
    `${median(brokerCpu.raw).toFixed(1)} / ${median(nodeCpu.raw).toFixed(1)}`,
  ],
  ["  jobshell", `${median(brokerCpu.jobshell).toFixed(1)} / ${median(nodeCpu.jobshell).toFixed(1)}`],
  ["  jobshell with job_in_process", `${median(brokerCpu.jobshellInProcess).toFixed(1)} / ${median(nodeCpu.jobshellInProcess).toFixed(1)}`],
  ["  jobshell, worker in another process (this process: the producer only)", `${median(brokerCpu.jobshellCross).toFixed(1)} / ${median(nodeCpu.jobshellCross).toFixed(1)}`],
  [`round trip task()→waitfor(), ${trips} sequential, p50 / p99 ms`, `${percentile(times, 50).toFixed(2)} / ${percentile(times, 99).toFixed(2)}`],
  ["  with job_in_process, p50 / p99 ms", `${percentile(inProcessTimes, 50).toFixed(2)} / ${percentile(inProcessTimes, 99).toFixed(2)}`],
  ["  worker in another process, p50 / p99 ms", `${percentile(crossTimes, 50).toFixed(2)} / ${percentile(crossTimes, 99).toFixed(2)}`],
  ["machine load average (1 min) before / after", `${loadBefore.toFixed(1)} / ${loadavg()[0].toFixed(1)}`],
]);
process.exit(0);
