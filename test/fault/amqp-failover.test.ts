// RabbitMQ failover with quorum queues, on a three-node cluster of the test's own
// (scripts/rabbitmq-cluster.sh: nodes with their own names, ports and cookie, so that nothing here
// touches the broker other tests use). A producer and two workers run a few thousand short tasks while
// a node is killed with SIGKILL, or restarted; no task whose task() returned is lost.
// Needs the build (`npm run build`) and RabbitMQ installed (its nodes are started from it).
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAmqpBackend } from "../../src/backends/amqp/index.js";
import { open } from "../../src/jobshell.js";
import { newTask } from "../../src/task.js";
import { uniqueNamespace } from "../each-backend.js";
import { deploymentDir, report, runThrough, script, stopAll } from "./failover.js";

const built = existsSync(fileURLToPath(new URL("../../dist/backends/amqp/index.js", import.meta.url)));

let ready = false;
let dir = "";
/** the nodes: Erlang name and AMQP URL */
let nodes: { name: string; url: string }[] = [];
const closers: { close(): Promise<void> }[] = [];

beforeAll(() => {
  const missing = !built ? "the build (npm run build)" : !existsSync("/usr/lib/rabbitmq/bin/rabbitmq-server") && spawnSync("rabbitmq-server", ["--help"]).error ? "rabbitmq-server" : undefined;
  if (missing) {
    if (process.env.CI) throw new Error(`the RabbitMQ failover tests need ${missing}`);
    console.warn(`\n!!! SKIPPING the RabbitMQ failover tests: they need ${missing}\n`);
    return;
  }
  dir = deploymentDir("rabbitmq-cluster.sh");
  const started = spawnSync(script("rabbitmq-cluster.sh"), ["start", dir, "3"], { encoding: "utf8" });
  if (started.status !== 0) throw new Error(`rabbitmq-cluster.sh start failed: ${started.stderr}`);
  nodes = readFileSync(join(dir, "nodes"), "utf8").trim().split("\n").map((line) => {
    const [name, port] = line.split(" ");
    return { name, url: `amqp://guest:guest@127.0.0.1:${port}` };
  });
  ready = true;
}, 180_000);

afterAll(async () => {
  for (const c of closers.reverse()) await c.close().catch(() => {});
  stopAll();
});

const maybe = (name: string, fn: () => Promise<void>) =>
  it(name, async (ctx) => {
    if (!ready) return ctx.skip();
    await fn();
  }, 300_000);

function ctl(node: string, ...args: string[]): string {
  const r = spawnSync(script("rabbitmq-cluster.sh"), ["ctl", dir, node, "-q", ...args], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`rabbitmqctl ${args.join(" ")} on ${node}: ${r.stderr}`);
  return r.stdout.trim();
}

async function shellOn(url: string, namespace: string) {
  const backend = await createAmqpBackend(url, { namespace, taskRecordTtl: 600, debugChannel: `${namespace}.debug`, queueType: "quorum", onError: () => {} });
  closers.push(backend);
  const js = await open({ backend, worker: false, log: () => {} });
  closers.push(js);
  return { backend, js };
}

describe("RabbitMQ failover with quorum queues (a three-node cluster of the test's own)", () => {
  maybe("the node leading the quorum queues killed with SIGKILL mid-run: no confirmed task is lost", async () => {
    const [a, b, c] = nodes;
    const namespace = uniqueNamespace("qqkill");
    // The queues are declared from b, so that b leads them; the producer is on a, the workers on c.
    const declarer = await shellOn(b.url, namespace);
    await declarer.backend.push(newTask("work", { ms: 1, i: -1 }, 300), 65535);
    const env = { AMQP_URL: a.url, NAMESPACE: namespace, QUEUE_TYPE: "quorum" };
    const run = await runThrough({
      count: Number(process.env.FAILOVER_COUNT ?? 3000),
      shell: async () => declarer.js,
      producer: env,
      worker: "./amqp-worker.mjs",
      workers: ["w1", "w2"].map((w) => ({ ...env, AMQP_URL: c.url, BULK: "32", CONNECTION_NAME: `jobshell fault ${namespace} ${w}` })),
      kill: async () => {
        // The records are read on a, which stays up (connected before: a process that starts while
        // the stream elects a new leader fails to open, and would have to try again).
        const survivor = await shellOn(a.url, namespace);
        process.kill(Number(JSON.parse(ctl(b.name, "eval", "os:getpid()."))), "SIGKILL");
        return survivor.js;
      },
    });
    report("quorum queues, leader node killed", run);
    spawnSync(script("rabbitmq-cluster.sh"), ["restart", dir, b.name]);
    expect(run.lost).toBe(0);
    expect(run.completed).toBe(run.accepted);
    expect(run.accepted).toBeGreaterThan(run.issued / 2);
  });

  maybe("the node every process is connected to restarted mid-run (stop_app, start_app): no confirmed task is lost", async () => {
    const [a] = nodes;
    const namespace = uniqueNamespace("qqrestart");
    const env = { AMQP_URL: a.url, NAMESPACE: namespace, QUEUE_TYPE: "quorum" };
    const run = await runThrough({
      count: 3000,
      shell: async () => (await shellOn(a.url, namespace)).js,
      producer: env,
      worker: "./amqp-worker.mjs",
      workers: ["w1", "w2"].map((w) => ({ ...env, BULK: "32", CONNECTION_NAME: `jobshell fault ${namespace} ${w}` })),
      kill: async () => {
        ctl(a.name, "stop_app");
        ctl(a.name, "start_app");
      },
    });
    report("quorum queues, node restarted", run);
    expect(run.lost).toBe(0);
    expect(run.completed).toBe(run.accepted);
  });
});
