// The AMQP mode under faults, with workers as real processes: one killed with SIGKILL mid-batch,
// one whose connection the broker closes under load, and producers bursting past a small
// job_queue_size. Needs the build (`npm run build`, which `npm test` runs first) and rabbitmqctl.
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import amqp from "amqplib";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { createAmqpBackend, deleteAmqpNamespace } from "../../src/backends/amqp/index.js";
import { open, type JobShell } from "../../src/jobshell.js";
import type { TaskRecordData } from "../../src/record.js";
import { amqpUrl, backends, itWhen, requireServer, uniqueNamespace } from "../each-backend.js";
import { faultJobs, pause, runProducer, stopWorker, waitAll } from "./processes.js";

const run = promisify(execFile);
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const built = existsSync(here("../../dist/backends/amqp/index.js"));

let ready = false;
const namespaces: string[] = [];
const children = new Set<ChildProcess>();
const shells: JobShell[] = [];
const opened: { close(): Promise<void> }[] = [];

beforeAll(async () => {
  ready = await requireServer(backends.find((b) => b.name === "amqp")!);
  if (!ready) return;
  const missing = !built ? "the build (npm run build)" : (await hasRabbitmqctl()) ? undefined : "rabbitmqctl";
  if (missing) {
    if (process.env.CI) throw new Error(`AMQP fault tests need ${missing}`);
    console.warn(`\n!!! SKIPPING the AMQP fault tests: ${missing} is missing\n`);
    ready = false;
  }
});

afterAll(async () => {
  for (const child of children) child.kill("SIGKILL");
  await Promise.allSettled(shells.map((js) => js.close()));
  await Promise.allSettled(opened.map((b) => b.close()));
  for (const ns of namespaces) await deleteAmqpNamespace(amqpUrl, ns, `${ns}.debug`);
});

const maybe = itWhen(() => ready, 120_000);

async function hasRabbitmqctl(): Promise<boolean> {
  return run("rabbitmqctl", ["-q", "status"], { timeout: 30_000 }).then(() => true, () => false);
}

/** A shell on a fresh namespace, with the fault tests' job uploaded, and no worker. */
async function producer(label: string): Promise<{ js: JobShell; namespace: string }> {
  const namespace = uniqueNamespace(label);
  namespaces.push(namespace);
  const backend = await createAmqpBackend(amqpUrl, { namespace, taskRecordTtl: 600, debugChannel: `${namespace}.debug` });
  const js = await open({ backend, worker: false, log: () => {} });
  shells.push(js);
  opened.push(backend);
  await js.upload(faultJobs, { replace: true });
  return { js, namespace };
}

function startWorker(namespace: string, connectionName: string, bulk = 8): Promise<ChildProcess> {
  const child = spawn(process.execPath, [here("./amqp-worker.mjs")], {
    env: { ...process.env, AMQP_URL: amqpUrl, NAMESPACE: namespace, CONNECTION_NAME: connectionName, BULK: String(bulk) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  child.on("exit", () => children.delete(child));
  return new Promise((resolve, reject) => {
    child.stdout!.on("data", (chunk: Buffer) => chunk.toString().includes("ready") && resolve(child));
    child.on("exit", (code) => reject(new Error(`worker exited with ${code} before it was ready`)));
  });
}


describe("AMQP mode under faults (real processes)", () => {
  maybe("a worker killed with SIGKILL mid-batch loses nothing: its tasks end completed on the other worker", async () => {
    const { js, namespace } = await producer("kill9");
    const doomed = await startWorker(namespace, `jobshell fault ${namespace} doomed`);
    const survivor = await startWorker(namespace, `jobshell fault ${namespace} survivor`);
    // Runs of 50-150 ms, spread: the worker's slots end at different times, so whenever the kill
    // comes it holds tasks it has started (equal runs end together, and a kill may fall between batches).
    const ids = await Promise.all(Array.from({ length: 300 }, (_, i) => js.task("work", { ms: 50 + ((i * 37) % 101), i }, 120)));
    await pause(800);
    doomed.kill("SIGKILL");
    const records = await waitAll(js, ids, 90);
    expect(records.filter((r) => r.status !== "completed")).toEqual([]);
    expect(records.map((r) => r.results.length)).toEqual(ids.map(() => 1));
    const rerun = records.filter((r) => r.attempt > 1).length;
    console.log(`kill -9 mid-batch: ${records.length} tasks completed, ${rerun} run again after the kill (attempt 2)`);
    // The killed worker held a batch: those ran again, and the record says so.
    expect(rerun).toBeGreaterThan(0);
    expect(await stopWorker(survivor)).toBe(0);
  });

  maybe("a worker killed with SIGKILL after its task's expire passed: the task is not dropped, another worker runs it (attempt 2)", async () => {
    const { js, namespace } = await producer("kill9late");
    const doomed = await startWorker(namespace, `jobshell fault ${namespace} doomed`);
    const issued = Date.now();
    const id = await js.task("work", { ms: 6000, i: 7 }, 3);
    await expect.poll(async () => (await js.record(id))?.status, { timeout: 10_000 }).toBe("started");
    // The other worker comes only now: the doomed one holds the task.
    const survivor = await startWorker(namespace, `jobshell fault ${namespace} survivor`);
    await pause(issued + 5000 - Date.now());
    doomed.kill("SIGKILL");
    const record = (await js.waitfor(id, 60)).dictionary as TaskRecordData;
    expect(record).toMatchObject({ status: "completed", attempt: 2 });
    expect(record.results.map((r) => r.value)).toEqual([7]);
    expect(await stopWorker(survivor)).toBe(0);
  });

  maybe("a worker whose connection the broker closes under load reconnects; every task ends completed once", async () => {
    const { js, namespace } = await producer("closeconn");
    const name = `jobshell fault ${namespace} closed`;
    const worker = await startWorker(namespace, name);
    const { stdout } = await run("rabbitmqctl", ["-q", "list_connections", "--no-table-headers", "pid", "client_properties"], { timeout: 30_000 });
    const line = stdout.split("\n").find((l) => l.includes(name));
    expect(line, `connection ${name} among:\n${stdout}`).toBeDefined();
    const pid = line!.split("\t")[0];
    const ids = await Promise.all(Array.from({ length: 600 }, (_, i) => js.task("work", { ms: 50, i }, 120)));
    await pause(500);
    await run("rabbitmqctl", ["-q", "close_connection", pid, "fault test: closed by the broker"], { timeout: 30_000 });
    const unfinished = (await Promise.all(ids.map((id) => js.record(id)))).filter((r) => r?.status !== "completed").length;
    console.log(`connection closed with ${unfinished} of ${ids.length} tasks not completed yet`);
    expect(unfinished).toBeGreaterThan(0);
    const records = await waitAll(js, ids, 90);
    expect(records.filter((r) => r.status !== "completed")).toEqual([]);
    expect(records.map((r) => r.results.length)).toEqual(ids.map(() => 1));
    const rerun = records.filter((r) => r.attempt > 1).length;
    console.log(`connection closed under load: ${records.length} tasks completed, ${rerun} run again (attempt 2)`);
    expect(worker.exitCode).toBe(null); // it reconnected rather than died
    expect(await stopWorker(worker)).toBe(0);
  });

  maybe("a burst past a small job_queue_size: every refused task() threw QueueFullError and the queue never exceeded the cap", async () => {
    const { js, namespace } = await producer("burst");
    const cap = 20;
    const worker = await startWorker(namespace, `jobshell fault ${namespace} slow`, 2);
    // Watch the queue's depth all along the burst.
    const conn = await amqp.connect(amqpUrl);
    const ch = await conn.createChannel();
    const queue = `${namespace}.tasks.max-${cap}`;
    await ch.assertQueue(queue, { durable: true, arguments: { "x-max-length": cap, "x-overflow": "reject-publish" } });
    let deepest = 0;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        deepest = Math.max(deepest, (await ch.checkQueue(queue)).messageCount);
        await pause(10);
      }
    })();
    const producers = [0, 1].map(() =>
      runProducer(here("./amqp-producer.mjs"), { AMQP_URL: amqpUrl, NAMESPACE: namespace, COUNT: "150", CAP: String(cap) }),
    );
    const results = await Promise.all(producers);
    watching = false;
    await watcher;
    await conn.close();
    const accepted = results.flatMap((r) => r.accepted);
    const refused = results.reduce((n, r) => n + r.refused, 0);
    console.log(`burst of 300 with job_queue_size ${cap}: ${accepted.length} accepted, ${refused} refused, deepest queue ${deepest}`);
    expect(results.flatMap((r) => r.others)).toEqual([]);
    expect(accepted.length + refused).toBe(300);
    expect(refused).toBeGreaterThan(0);
    expect(deepest).toBeLessThanOrEqual(cap);
    // Accepted tasks run.
    const records = await waitAll(js, accepted, 90);
    expect(records.every((r) => r.status === "completed")).toBe(true);
    expect(await stopWorker(worker)).toBe(0);
  });
});
