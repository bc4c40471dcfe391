// A job can never take its worker down: one job of each kind of fault, run by `jobshell serve` in
// memory mode and by two worker processes in Redis and AMQP modes (`jobshell worker` for Redis; for
// AMQP a worker like it on a namespace of its own, isolation-worker.mjs). Every faulty task ends
// failed with its cause, the processes stay up with their memory back near where it started, and a
// normal task issued after each fault still completes. A poison task (process.exit() in its job) is
// tried max_attempts times, by either of the two workers, then ends failed with both still running.
// Needs the build (`npm run build`).
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAmqpBackend, deleteAmqpNamespace } from "../../src/backends/amqp/index.js";
import { createRedisBackend } from "../../src/backends/redis/index.js";
import { open, type JobShell } from "../../src/jobshell.js";
import { amqpUrl, backends, deleteRedisNamespace, redisUrl, requireServer, uniqueNamespace } from "../each-backend.js";
import { pause } from "./processes.js";

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const cli = here("../../dist/cli.js");
const built = existsSync(cli);

const faultJobs = `
- {name: stray, topics: [stray], script: "Promise.reject(new Error('nobody awaits me')); await sleep(0.2); return 1"}
- {name: timer, topics: [timer], script: "setTimeout(() => { throw new Error('thrown in a timer') }, 0); await sleep(1)"}
- {name: callout, topics: [callout], script: "callout({url: 'http://127.0.0.1:9/'}); await sleep(2)"}
- {name: exits, topics: [exits], script: "process.exit(3)"}
- {name: loops, topics: [loops], script: "while (true) {}"}
- {name: hog, topics: [hog], script: "const keep = []; for (let i = 0; i < 2048; i++) keep.push(new Array(131072).fill(i)); return keep.length"}
- {name: shouts, topics: [shouts], script: "qprint('x'.repeat(50 * 1024 * 1024))"}
- {name: fine, topics: [fine], script: "return 'fine'"}
`;

/** Each fault, and what its record must say: the job's error, or the warning of a task tried max_attempts times. */
const faults: { topic: string; error?: RegExp; warning?: RegExp }[] = [
  { topic: "stray", error: /^a rejected promise nobody handled: nobody awaits me \(line 1:16\)$/ },
  { topic: "timer", error: /^an exception thrown outside the script's await chain \(in a timer or callback\): thrown in a timer \(line 1:/ },
  { topic: "callout", error: /^a rejected promise nobody handled: CalloutError: callout GET http:\/\/127\.0\.0\.1:9\/ failed/ },
  { topic: "exits", warning: /^tried 3 times \(max_attempts 3\).*attempt 3: job exits: the script called process\.exit\(3\)$/ },
  { topic: "loops", error: /^the script ran longer than job_script_timeout \(2 s\), blocking its thread/ },
  { topic: "hog", warning: /^tried 3 times \(max_attempts 3\).*attempt 3: job hog: the script ran out of memory \(job_memory_limit, 256 MB\)$/ },
  { topic: "shouts", error: /^RangeError: a qprint line of 50\.0 MB is over the limit of 1 MB/ },
];

const children = new Set<ChildProcess>();
const cleanups: (() => Promise<void>)[] = [];
let jobsDir = "";

beforeAll(() => {
  if (!built && process.env.CI) throw new Error("the isolation fault tests need the build (npm run build)");
  jobsDir = mkdtempSync(join(tmpdir(), "jobshell-isolation-"));
  writeFileSync(join(jobsDir, "faults.yaml"), faultJobs);
});

afterAll(async () => {
  for (const child of children) child.kill("SIGKILL");
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  rmSync(jobsDir, { recursive: true, force: true });
});

/** A process that prints `ready` (or matches `ready`) on stdout or stderr once it works; its output is kept. */
function startProcess(args: string[], env: Record<string, string>, ready: RegExp): Promise<{ child: ChildProcess; output: () => string; match: RegExpExecArray }> {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  child.on("exit", () => children.delete(child));
  let output = "";
  return new Promise((resolve, reject) => {
    const seen = (chunk: Buffer) => {
      output += chunk.toString();
      const match = ready.exec(output);
      if (match) resolve({ child, output: () => output, match });
    };
    child.stdout!.on("data", seen);
    child.stderr!.on("data", seen);
    child.on("exit", (code) => reject(new Error(`exited with ${code} before it was ready: ${output}`)));
  });
}

/** Resident memory of a process, in MB. */
function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"))!;
  return Number(/(\d+)/.exec(line)![1]) / 1024;
}

interface Queue {
  issue(topic: string): Promise<string>;
  wait(taskid: string): Promise<Record<string, any>>;
}

/** Every fault in turn, each followed by a normal task; the processes up and their memory back. */
async function runFaults(queue: Queue, workers: ChildProcess[]): Promise<void> {
  expect((await queue.wait(await queue.issue("fine"))).status).toBe("completed");
  await pause(500);
  const before = workers.map((w) => rssMb(w.pid!));
  for (const fault of faults) {
    const record = await queue.wait(await queue.issue(fault.topic));
    expect(record.status, fault.topic).toBe("failed");
    if (fault.error) expect(record.results[0].error, fault.topic).toMatch(fault.error);
    if (fault.warning) {
      expect(record.warning, fault.topic).toMatch(fault.warning);
      expect(record.attempt, fault.topic).toBe(3);
    }
    const after = await queue.wait(await queue.issue("fine"));
    expect(after.results, `a normal task after ${fault.topic}`).toEqual([{ job: "fine", status: "completed", value: "fine" }]);
    for (const w of workers) expect(w.exitCode, `a worker after ${fault.topic}`).toBeNull();
  }
  await pause(1000);
  const after = workers.map((w) => rssMb(w.pid!));
  console.log(`RSS (MB) before the faults ${before.map(Math.round).join(", ")}; after ${after.map(Math.round).join(", ")}`);
  for (let i = 0; i < workers.length; i++) expect(after[i]).toBeLessThan(before[i] + 200);
}

/** A producer of its own on the queue: issues the tasks and reads their records. */
function producerQueue(js: JobShell): Queue {
  return {
    issue: (topic) => js.task(topic, {}, 120),
    wait: async (taskid) => (await js.waitfor(taskid, 120)).dictionary,
  };
}

describe("a job can never take its worker down (real processes)", () => {
  it.skipIf(!built)("memory mode: jobshell serve runs every fault, stays up and serves on", async () => {
    const serve = await startProcess([cli, "serve", "--port", "0", "--jobs", jobsDir, "--job-script-timeout", "2", "--job-memory-limit", "256"], {}, /jobshell serve: (http:\/\/\S+) /);
    const url = serve.match[1];
    const queue: Queue = {
      issue: async (topic) => {
        const res = await fetch(`${url}/tasks`, { method: "POST", body: JSON.stringify({ topic }) });
        return ((await res.json()) as { taskid: string }).taskid;
      },
      wait: async (taskid) => (await fetch(`${url}/tasks/${taskid}/wait?timeout=60`)).json() as Promise<Record<string, any>>,
    };
    await runFaults(queue, [serve.child]);
    expect(serve.output()).not.toMatch(/^\s+at /m); // no stack trace in its log
  }, 120_000);

  it.skipIf(!built)("Redis mode: two jobshell workers run every fault and stay up", async () => {
    if (!(await requireServer(backends.find((b) => b.name === "redis")!))) return;
    const namespace = uniqueNamespace("isolation");
    cleanups.push(() => deleteRedisNamespace(namespace));
    const args = [cli, "worker", "--redis", redisUrl, "--redis-prefix", namespace, "--jobs", jobsDir, "--replace-jobs", "--job-script-timeout", "2", "--job-memory-limit", "256"];
    const workers = await Promise.all([startProcess(args, {}, /jobshell worker: /), startProcess(args, {}, /jobshell worker: /)]);
    const backend = await createRedisBackend(redisUrl, { namespace, taskRecordTtl: 600, debugChannel: `${namespace}.debug` });
    const js = await open({ backend, worker: false, log: () => {} });
    cleanups.push(() => js.close(), () => backend.close());
    await runFaults(producerQueue(js), workers.map((w) => w.child));
  }, 180_000);

  it.skipIf(!built)("AMQP mode: two workers run every fault and stay up", async () => {
    if (!(await requireServer(backends.find((b) => b.name === "amqp")!))) return;
    const namespace = uniqueNamespace("isolation");
    cleanups.push(() => deleteAmqpNamespace(amqpUrl, namespace, `${namespace}.debug`));
    const env = { AMQP_URL: amqpUrl, NAMESPACE: namespace, JOBS: jobsDir };
    const workers = await Promise.all([1, 2].map(() => startProcess([here("./isolation-worker.mjs")], env, /ready/)));
    const backend = await createAmqpBackend(amqpUrl, { namespace, taskRecordTtl: 600, debugChannel: `${namespace}.debug` });
    const js = await open({ backend, worker: false, log: () => {} });
    cleanups.push(() => js.close(), () => backend.close());
    await runFaults(producerQueue(js), workers.map((w) => w.child));
  }, 180_000);
});
