// Redis failover with real processes: a producer and two workers run a few thousand short tasks while
// the master holding the queue is killed with SIGKILL, on a Redis Cluster and under Sentinel, each
// started for the test by scripts/. With redis_wait_replicas 1 every task whose task() returned ends
// in a record; with 0 the test reports how many were lost, as docs/redis.md says can happen.
// Needs the build (`npm run build`) and redis-server on the PATH.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRedisBackend } from "../../src/backends/redis/index.js";
import { UnknownTaskError } from "../../src/errors.js";
import { open, type JobShell } from "../../src/jobshell.js";
import type { TaskRecordData } from "../../src/record.js";
import { uniqueNamespace } from "../each-backend.js";
import { faultJobs, pause, type ProducerResult } from "./processes.js";

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const script = (name: string) => here(`../../scripts/${name}`);
const built = existsSync(here("../../dist/backends/redis/index.js"));

let ready = false;
const children = new Set<ChildProcess>();
const closers: { close(): Promise<void> }[] = [];
const deployments: { script: string; dir: string }[] = [];

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
  for (const child of children) child.kill("SIGKILL");
  for (const c of closers.reverse()) await c.close().catch(() => {});
  for (const { script: s, dir } of deployments) spawnSync(s, ["stop", dir]);
});

const maybe = (name: string, fn: () => Promise<void>) =>
  it(name, async (ctx) => {
    if (!ready) return ctx.skip();
    await fn();
  }, 240_000);

/** Starts a deployment with one of the scripts: its URL, its folder and its nodes' ports. */
function deploy(name: "redis-cluster.sh" | "redis-sentinel.sh"): { url: string; dir: string; ports: number[] } {
  const dir = mkdtempSync(join(tmpdir(), "jobshell-failover-"));
  deployments.push({ script: script(name), dir });
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

async function until(what: string, check: () => boolean, ms = 30_000): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end; await pause(200)) if (check()) return;
  throw new Error(`timed out waiting until ${what}`);
}

function startProcess(file: string, env: Record<string, string>, onLine?: (line: string) => void): { child: ChildProcess; out: Promise<string> } {
  const child = spawn(process.execPath, [here(file)], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
  children.add(child);
  let text = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    text += chunk.toString();
    for (const line of chunk.toString().split("\n")) if (line) onLine?.(line);
  });
  const out = new Promise<string>((resolve, reject) =>
    child.on("exit", (code) => (children.delete(child), code === 0 || code === null ? resolve(text) : reject(new Error(`${file} exited with ${code}`)))),
  );
  return { child, out };
}

interface Run {
  issued: number;
  accepted: number;
  failed: string[];
  completed: number;
  lost: number;
  /** tasks run more than once (attempt > 1): at-least-once allows them */
  rerun: number;
}

/** A producer and two workers on `url` run `count` tasks; `kill` is called once a third are issued. */
async function runThrough(url: string, waitReplicas: number, count: number, kill: (namespace: string) => Promise<void>): Promise<Run> {
  const namespace = uniqueNamespace("failover");
  const env = { REDIS_URL: url, NAMESPACE: namespace, WAIT_REPLICAS: String(waitReplicas) };
  const backend = await createRedisBackend(url, { namespace, taskRecordTtl: 600, debugChannel: `${namespace}.debug`, onError: () => {} });
  closers.push(backend);
  const js: JobShell = await open({ backend, worker: false, log: () => {} });
  closers.push(js);
  await js.upload(faultJobs, { replace: true });
  const workers = [0, 1].map(() => {
    let started!: () => void;
    const up = new Promise<void>((resolve) => (started = resolve));
    const w = startProcess("./redis-worker.mjs", { ...env, BULK: "32", HEARTBEAT: "3" }, (line) => line.startsWith("ready") && started());
    return { ...w, up };
  });
  await Promise.all(workers.map((w) => w.up));
  let third!: () => void;
  const atThird = new Promise<void>((resolve) => (third = resolve));
  const producer = startProcess("./redis-failover-producer.mjs", { ...env, COUNT: String(count), GROUP: "20" }, (line) => {
    if (line.startsWith("issued ") && Number(line.slice(7)) >= count / 3) third();
  });
  await atThird;
  await kill(namespace);
  const lines = (await producer.out).trim().split("\n");
  const result = JSON.parse(lines[lines.length - 1]) as ProducerResult;
  const records = await Promise.all(
    result.accepted.map((id) =>
      js.waitfor(id, 120).then(
        (r) => r.dictionary as TaskRecordData,
        (err: unknown) => {
          if (err instanceof UnknownTaskError) return undefined;
          throw err;
        },
      ),
    ),
  );
  for (const w of workers) w.child.kill("SIGTERM");
  await Promise.all(workers.map((w) => w.out.catch(() => "")));
  const ended = records.filter((r): r is TaskRecordData => r !== undefined);
  return {
    issued: count,
    accepted: result.accepted.length,
    failed: result.others,
    completed: ended.filter((r) => r.status === "completed" && r.results.length === 1).length,
    lost: records.length - ended.length,
    rerun: ended.filter((r) => r.attempt > 1).length,
  };
}

function report(what: string, run: Run): void {
  const failed = new Map<string, number>();
  for (const e of run.failed) {
    const what = e.replace(/Redis at \S+: /, "").replace(/\b[0-9a-f]{32}\b/g, "…").slice(0, 160);
    failed.set(what, (failed.get(what) ?? 0) + 1);
  }
  console.log(
    `${what}: ${run.issued} issued, ${run.accepted} accepted (task() returned), ${run.failed.length} threw, ` +
      `${run.completed} completed, ${run.lost} lost, ${run.rerun} run again` +
      [...failed].map(([e, n]) => `\n  ${n} × ${e}`).join(""),
  );
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
    const run = await runThrough(url, 1, 3000, clusterKill(dir, ports));
    report("cluster, redis_wait_replicas 1", run);
    expect(run.lost).toBe(0);
    expect(run.completed).toBe(run.accepted);
    expect(run.accepted).toBeGreaterThan(run.issued / 2);
  });

  maybe("Redis Cluster, redis_wait_replicas 0: the same kill; the tasks lost are counted (asynchronous replication may lose some)", async () => {
    const { url, dir, ports } = deploy("redis-cluster.sh");
    const run = await runThrough(url, 0, 3000, clusterKill(dir, ports));
    report("cluster, redis_wait_replicas 0", run);
    expect(run.completed + run.lost).toBe(run.accepted);
  });

  maybe("Sentinel, redis_wait_replicas 1: the master killed mid-run, followed to the new one, no task whose task() returned is lost", async () => {
    const { url, ports } = deploy("redis-sentinel.sh");
    const [master, , , sentinel] = ports;
    const run = await runThrough(url, 1, 3000, async () => {
      killServer(master);
      await until("the Sentinels promoted a replica", () => !cli(sentinel, "sentinel", "get-master-addr-by-name", "mymaster").endsWith(String(master)));
    });
    report("sentinel, redis_wait_replicas 1", run);
    expect(run.lost).toBe(0);
    expect(run.completed).toBe(run.accepted);
    expect(run.accepted).toBeGreaterThan(run.issued / 2);
  });
});
