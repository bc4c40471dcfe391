// AMQP mode against the floor any AMQP task queue pays: raw amqplib with persistent messages,
// publisher confirms, manual acks and prefetch 32, producer and consumer in one process.
// Both sides run 20,000 no-op tasks, alternating, REPEAT times (3 by default), and raw amqplib once
// more with the publish window task() keeps; then the round trip
// task()→waitfor() of jobshell's AMQP mode, one task at a time.
// Run: npm run build && node bench/amqp.js   (AMQP_URL, default amqp://guest:guest@127.0.0.1:5672)
import { randomBytes } from "node:crypto";
import { loadavg } from "node:os";
import amqp from "amqplib";
import { open } from "../dist/index.js";
import { createAmqpBackend, deleteAmqpNamespace } from "../dist/backends/amqp/index.js";
import { median, percentile, printTable } from "./stats.js";

const url = process.env.AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";
const repeat = Number(process.env.REPEAT ?? 3);
const count = Number(process.env.TASKS ?? 20_000);
const trips = Number(process.env.TRIPS ?? 1000);
const prefetch = 32;
const publishWindow = 64;
const noop = `- {name: noop, topics: [noop], script: "return"}`;

/**
 * Raw amqplib: every message persistent and confirmed, consumed with manual acks, prefetch 32.
 * `window` caps the publishes awaiting their confirm, as jobshell's task() does (`publishWindow`); the floor
 * the comparison is made against publishes without a cap, as a naive producer does.
 */
async function rawRun(window = Infinity) {
  const queue = `bench-raw-${randomBytes(4).toString("hex")}`;
  const conn = await amqp.connect(url, { noDelay: true });
  const pub = await conn.createConfirmChannel();
  const sub = await conn.createChannel();
  await pub.assertQueue(queue, { durable: true, arguments: { "x-max-length": 65535, "x-overflow": "reject-publish" } });
  await sub.prefetch(prefetch);
  let consumed = 0;
  let allConsumed;
  const done = new Promise((resolve) => (allConsumed = resolve));
  const { consumerTag } = await sub.consume(queue, (msg) => {
    if (!msg) return;
    JSON.parse(msg.content.toString()); // the worker reads the task
    sub.ack(msg);
    if (++consumed === count) allConsumed();
  }, { noAck: false });
  const cpu = process.cpuUsage();
  const began = performance.now();
  const confirms = [];
  let unconfirmed = 0;
  let slotFreed = () => {};
  for (let i = 0; i < count; i++) {
    if (unconfirmed >= window) await new Promise((resolve) => (slotFreed = resolve));
    const body = Buffer.from(JSON.stringify({ taskid: randomBytes(16).toString("hex"), topic: "noop", content: {}, expire: 60 }));
    unconfirmed++;
    confirms.push(new Promise((resolve, reject) => {
      pub.sendToQueue(queue, body, { persistent: true }, (err) => {
        unconfirmed--;
        slotFreed();
        err ? reject(err) : resolve();
      });
    }));
  }
  await Promise.all(confirms);
  await done;
  const seconds = (performance.now() - began) / 1000;
  if (window === Infinity) rawCpu.push(cpuSeconds(cpu) / seconds);
  await sub.cancel(consumerTag);
  await pub.deleteQueue(queue);
  await conn.close();
  return count / seconds;
}

/** jobshell's AMQP mode: task() for each (confirmed), a worker in the same process, every record awaited. */
async function jobshellRun() {
  const namespace = `bench-${randomBytes(4).toString("hex")}`;
  const backend = await createAmqpBackend(url, { namespace, taskRecordTtl: 600, debugChannel: `${namespace}.debug` });
  const js = await open({ backend, jobQueueBulkReadSize: prefetch, log: () => {} });
  await js.upload(noop);
  const cpu = process.cpuUsage();
  const began = performance.now();
  const ids = await Promise.all(Array.from({ length: count }, () => js.task("noop", {}, 60)));
  const records = await Promise.all(ids.map((id) => js.waitfor(id, 300)));
  const seconds = (performance.now() - began) / 1000;
  oursCpu.push(cpuSeconds(cpu) / seconds);
  const bad = records.filter((r) => r.status !== "completed").length;
  if (bad > 0) throw new Error(`${bad} tasks did not complete`);
  await js.close();
  await backend.close();
  await deleteAmqpNamespace(url, namespace, `${namespace}.debug`);
  return count / seconds;
}

async function roundTrips() {
  const namespace = `bench-${randomBytes(4).toString("hex")}`;
  const backend = await createAmqpBackend(url, { namespace, taskRecordTtl: 600, debugChannel: `${namespace}.debug` });
  const js = await open({ backend, jobQueueBulkReadSize: prefetch, log: () => {} });
  await js.upload(noop);
  const times = [];
  for (let i = 0; i < trips; i++) {
    const began = performance.now();
    await js.waitfor(await js.task("noop"), 10);
    times.push(performance.now() - began);
  }
  await js.close();
  await backend.close();
  await deleteAmqpNamespace(url, namespace, `${namespace}.debug`);
  return times;
}

/** Share of one core this process used (the broker runs on the same machine). */
const rawCpu = [];
const oursCpu = [];
function cpuSeconds(since) {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1e6;
}

const loadBefore = loadavg()[0];
// One warm-up of each, not counted.
await rawRun();
await jobshellRun();
const raw = [];
const rawWindowed = [];
const ours = [];
for (let i = 0; i < repeat; i++) {
  raw.push(await rawRun());
  ours.push(await jobshellRun());
  rawWindowed.push(await rawRun(publishWindow));
}
const times = await roundTrips();

printTable(`AMQP mode vs raw amqplib, ${count} no-op tasks, prefetch ${prefetch}, ${repeat} runs each`, [
  ["raw amqplib (persistent, confirms, manual ack), median tasks/s", Math.round(median(raw))],
  ["  runs", raw.map((r) => Math.round(r)).join(" ")],
  ["jobshell AMQP mode (task() → worker → record), median tasks/s", Math.round(median(ours))],
  ["  runs", ours.map((r) => Math.round(r)).join(" ")],
  ["ratio jobshell / raw (medians)", (median(ours) / median(raw)).toFixed(2)],
  [`raw amqplib with at most ${publishWindow} unconfirmed publishes, as task(), median tasks/s`, Math.round(median(rawWindowed))],
  ["  runs", rawWindowed.map((r) => Math.round(r)).join(" ")],
  ["ratio jobshell / raw with the same window (medians)", (median(ours) / median(rawWindowed)).toFixed(2)],
  ["node CPU, cores busy during a run: raw / jobshell (medians)", `${median(rawCpu.slice(1)).toFixed(2)} / ${median(oursCpu.slice(1)).toFixed(2)}`],
  ["machine load average (1 min) before / after", `${loadBefore.toFixed(1)} / ${loadavg()[0].toFixed(1)}`],
  [`round trip task()→waitfor(), ${trips} sequential, p50 ms`, percentile(times, 50).toFixed(2)],
  [`round trip task()→waitfor(), ${trips} sequential, p99 ms`, percentile(times, 99).toFixed(2)],
]);
