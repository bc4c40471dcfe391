// What the failover tests share: a producer and two worker processes running a few thousand tasks on
// a deployment of the test's own while a server is killed, and counting what became of the tasks
// whose task() returned.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { TimeoutError, UnknownTaskError } from "../../src/errors.js";
import type { JobShell } from "../../src/jobshell.js";
import type { TaskRecordData } from "../../src/record.js";
import { faultJobs, pause, type ProducerResult } from "./processes.js";

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
export const script = (name: string) => here(`../../scripts/${name}`);

const children = new Set<ChildProcess>();
const deployments: { script: string; dir: string }[] = [];

/** A new folder for a deployment that `stopAll` stops with `name stop DIR`. */
export function deploymentDir(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), "jobshell-failover-"));
  deployments.push({ script: script(name), dir });
  return dir;
}

/** Kills the processes started here and stops the deployments. */
export function stopAll(): void {
  for (const child of children) child.kill("SIGKILL");
  for (const { script: s, dir } of deployments) spawnSync(s, ["stop", dir]);
}

export async function until(what: string, check: () => boolean, ms = 30_000): Promise<void> {
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

export interface Run {
  issued: number;
  accepted: number;
  /** the errors of the task() calls that threw */
  failed: string[];
  completed: number;
  /** accepted, but no record any more */
  lost: number;
  /** accepted, and not ended in time: taskid and last status */
  unfinished: string[];
  /** ended, but not completed by the one job: status and warning (a job definition lost with the
   *  server's writes leaves tasks completed with "no job handles topic") */
  otherwise: string[];
  /** tasks run more than once (attempt > 1): at-least-once allows them */
  rerun: number;
}

export interface FailoverRun {
  count: number;
  /** a JobShell without a worker on the deployment, for uploading the job and waiting for the records */
  shell: () => Promise<JobShell>;
  /** the producer's environment (REDIS_URL or AMQP_URL, NAMESPACE, ...) */
  producer: Record<string, string>;
  /** the worker script (./redis-worker.mjs, ./amqp-worker.mjs) and each worker's environment */
  worker: string;
  workers: Record<string, string>[];
  /** called once a third of the tasks are issued; a JobShell it returns waits for the records in place
   *  of `shell`'s (whose server it may have killed) */
  kill: () => Promise<JobShell | void>;
}

export async function runThrough(run: FailoverRun): Promise<Run> {
  let js = await run.shell();
  await js.upload(faultJobs, { replace: true });
  const workers = run.workers.map((env) => {
    let started!: () => void;
    const up = new Promise<void>((resolve) => (started = resolve));
    const w = startProcess(run.worker, env, (line) => line.startsWith("ready") && started());
    return { ...w, up };
  });
  await Promise.all(workers.map((w) => w.up));
  let third!: () => void;
  const atThird = new Promise<void>((resolve) => (third = resolve));
  const producer = startProcess("./failover-producer.mjs", { ...run.producer, COUNT: String(run.count), GROUP: "20" }, (line) => {
    if (line.startsWith("issued ") && Number(line.slice(7)) >= run.count / 3) third();
  });
  await Promise.race([atThird, producer.out]);
  js = (await run.kill()) ?? js;
  const lines = (await producer.out).trim().split("\n");
  const result = JSON.parse(lines[lines.length - 1]) as ProducerResult;
  const unfinished: string[] = [];
  const records = await Promise.all(
    result.accepted.map((id) =>
      js.waitfor(id, 90).then(
        (r) => r.dictionary as TaskRecordData,
        (err: unknown) => {
          if (err instanceof UnknownTaskError) return undefined;
          if (!(err instanceof TimeoutError)) throw err;
          unfinished.push(`${id} ${err.lastStatus}`);
          return null;
        },
      ),
    ),
  );
  for (const w of workers) w.child.kill("SIGTERM");
  await Promise.all(workers.map((w) => w.out.catch(() => "")));
  const ended = records.filter((r): r is TaskRecordData => r !== undefined && r !== null);
  return {
    issued: run.count,
    accepted: result.accepted.length,
    failed: result.others,
    completed: ended.filter(completedByTheJob).length,
    otherwise: ended.filter((r) => !completedByTheJob(r)).map((r) => `${r.status} ${r.warning ?? r.results.map((x) => x.error ?? x.status).join(", ")}`.trim()),
    lost: records.filter((r) => r === undefined).length,
    unfinished,
    rerun: ended.filter((r) => r.attempt > 1).length,
  };
}

function completedByTheJob(r: TaskRecordData): boolean {
  return r.status === "completed" && r.results.length === 1;
}

/** One line of figures, and the errors of the task() calls that threw, counted. */
export function report(what: string, run: Run): void {
  const failed = count(run.failed.map((e) => e.replace(/(Redis|RabbitMQ) at \S+: /, "").replace(/\b[0-9a-f]{32}\b/g, "…").slice(0, 160)));
  console.log(
    `${what}: ${run.issued} issued, ${run.accepted} accepted (task() returned), ${run.failed.length} threw, ` +
      `${run.completed} completed, ${run.otherwise.length} ended otherwise, ${run.lost} lost, ${run.unfinished.length} not ended in time, ` +
      `${run.rerun} run again` +
      [...count(run.otherwise)].map(([how, n]) => `\n  ${n} ended ${how}`).join("") +
      run.unfinished.slice(0, 5).map((u) => `\n  not ended: ${u}`).join("") +
      [...failed].map(([e, n]) => `\n  ${n} × ${e}`).join(""),
  );
}

/** How many times each text occurs. */
function count(texts: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const t of texts) counts.set(t, (counts.get(t) ?? 0) + 1);
  return counts;
}
