// Redis failover with real processes: a producer and two workers run a few thousand short tasks while
// the master holding the queue is killed with SIGKILL, on a Redis Cluster and under Sentinel, each
// started for the test by scripts/. With redis_wait_replicas 1 every task whose task() returned ends
// in a record; with 0 the test reports how many were lost, as docs/redis.md says can happen.
// Needs the build (`npm run build`) and redis-server on the PATH.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ConnectionChange } from "../../src/backend.js";
import { createRedisBackend } from "../../src/backends/redis/index.js";
import { open } from "../../src/jobshell.js";
import { uniqueNamespace } from "../each-backend.js";
import { deploymentDir, report, runThrough, script, stopAll, until, type Run } from "./failover.js";

const built = existsSync(fileURLToPath(new URL("../../dist/backends/redis/index.js", import.meta.url)));

let ready = false;
const closers: { close(): Promise<void> }[] = [];

beforeAll(() => {
  const missing = !built ? "the build (npm run build)" : spawnSync("redis-server", ["--version"]).error ? "redis-server on the PATH" : undefined;
  if (missing) {
    if (process.env.CI) throw new Error(`the Redis failover tests need ${missing}`);
    console.warn(`\n!!! SKIPPING the Redis failover tests: they need ${missing}\n`);
    return;
  }
  ready = true;
});

afterAll(async () => {
  for (const c of closers.reverse()) await c.close().catch(() => {});
  stopAll();
});

const maybe = (name: string, fn: () => Promise<void>) =>
  it(name, async (ctx) => {
    if (!ready) return ctx.skip();
    await fn();
  }, 240_000);

/** Starts a deployment with one of the scripts: its URL, its folder and its nodes' ports. */
function deploy(name: "redis-cluster.sh" | "redis-sentinel.sh"): { url: string; dir: string; ports: number[] } {
  const dir = deploymentDir(name);
  const started = spawnSync(script(name), ["start", dir], { encoding: "utf8" });
  if (started.status !== 0) throw new Error(`${name} start failed: ${started.stderr}`);
  return { url: started.stdout.trim(), dir, ports: readFileSync(join(dir, "ports"), "utf8").trim().split(" ").map(Number) };
}

function cli(port: number, ...args: string[]): string {
  return spawnSync("redis-cli", ["-p", String(port), ...args], { encoding: "utf8" }).stdout.trim();
}

/** The port of the cluster master serving the namespace's slot, asked of `port`. */
function clusterMasterOf(port: number, namespace: string): number | undefined {
  const slot = Number(cli(port, "cluster", "keyslot", `{${namespace}}`));
  for (const line of cli(port, "cluster", "nodes").split("\n")) {
    const [, address, flags, , , , , state, ...ranges] = line.split(" ");
    if (!flags.includes("master") || flags.includes("fail") || state !== "connected") continue;
    for (const range of ranges) {
      const [from, to = from] = range.split("-").map(Number);
      if (slot >= from && slot <= to) return Number(address.split(":")[1].split("@")[0]);
    }
  }
  return undefined;
}

function killServer(port: number): void {
  const pid = Number(/process_id:(\d+)/.exec(cli(port, "info", "server"))?.[1]);
  process.kill(pid, "SIGKILL");
}

/** A producer and two workers on `url` run 3,000 tasks; `kill` is called once a third are issued. What
 *  the producer's backend says of the server goes to `changes`. */
async function runOn(url: string, waitReplicas: number, kill: (namespace: string) => Promise<void>, changes: ConnectionChange[] = []): Promise<Run> {
  const namespace = uniqueNamespace("failover");
  const env = { REDIS_URL: url, NAMESPACE: namespace, WAIT_REPLICAS: String(waitReplicas) };
  return runThrough({
    count: 3000,
    shell: async () => {
      const backend = await createRedisBackend(url, { namespace, taskRecordTtl: 600, debugChannel: `${namespace}.debug`, onError: () => {} });
      closers.push(backend);
      backend.onConnection!((change) => changes.push(change));
      const js = await open({ backend, worker: false, log: () => {} });
      closers.push(js);
      return js;
    },
    producer: env,
    worker: "./redis-worker.mjs",
    workers: [0, 1].map(() => ({ ...env, BULK: "32", HEARTBEAT: "3" })),
    kill: () => kill(namespace),
  });
}

describe("Redis failover (real processes, a deployment of the test's own)", () => {
  /** Kill the cluster master serving the namespace, wait for its replica to take over, and restart
   *  the killed node (it rejoins as the new master's replica, so that WAIT can be met again). */
  function clusterKill(dir: string, ports: number[]) {
    return async (namespace: string) => {
      const master = clusterMasterOf(ports[0], namespace)!;
      const witness = ports.find((p) => p !== master)!;
      killServer(master);
      await until("a replica took over", () => {
        const now = clusterMasterOf(witness, namespace);
        return now !== undefined && now !== master;
      });
      spawnSync(script("redis-cluster.sh"), ["restart", dir, String(master)]);
    };
  }

  maybe("Redis Cluster, redis_wait_replicas 1: the master of the queue's slot killed mid-run, no task whose task() returned is lost", async () => {
    const { url, dir, ports } = deploy("redis-cluster.sh");
    const changes: ConnectionChange[] = [];
    const run = await runOn(url, 1, clusterKill(dir, ports), changes);
    report("cluster, redis_wait_replicas 1", run);
    // The shell's lines: the master serving the queue lost once, regained once (by its replica).
    expect(changes.map((c) => c.state)).toEqual(["lost", "regained"]);
    expect(run.lost).toBe(0);
    expect(run.completed).toBe(run.accepted);
    expect(run.accepted).toBeGreaterThan(run.issued / 2);
  });

  maybe("Redis Cluster, redis_wait_replicas 0: the same kill; the tasks lost are counted (asynchronous replication may lose some)", async () => {
    const { url, dir, ports } = deploy("redis-cluster.sh");
    const run = await runOn(url, 0, clusterKill(dir, ports));
    report("cluster, redis_wait_replicas 0", run);
    // What a failover without WAIT may lose is any write: tasks, records, and the job definitions too
    // (then later tasks end with "no job handles topic"). Every accepted task is still accounted for:
    // ended one way or another, or reported lost; none is left hanging.
    expect(run.unfinished).toEqual([]);
    expect(run.completed + run.otherwise.length + run.lost).toBe(run.accepted);
  });

  maybe("Sentinel, redis_wait_replicas 1: the master killed mid-run, followed to the new one, no task whose task() returned is lost", async () => {
    const { url, ports } = deploy("redis-sentinel.sh");
    const [master, , , sentinel] = ports;
    const changes: ConnectionChange[] = [];
    const run = await runOn(url, 1, async () => {
      killServer(master);
      await until("the Sentinels promoted a replica", () => !cli(sentinel, "sentinel", "get-master-addr-by-name", "mymaster").endsWith(String(master)));
    }, changes);
    report("sentinel, redis_wait_replicas 1", run);
    // The shell's lines: the server lost once, regained once, however many connections and retries.
    expect(changes.map((c) => c.state)).toEqual(["lost", "regained"]);
    expect(run.lost).toBe(0);
    expect(run.completed).toBe(run.accepted);
    expect(run.accepted).toBeGreaterThan(run.issued / 2);
  });
});
