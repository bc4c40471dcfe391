// What the fault tests share: their job, stopping a worker process, and waiting for every record of a run.
import { spawn, type ChildProcess } from "node:child_process";
import type { JobShell } from "../../src/jobshell.js";
import type { TaskRecordData } from "../../src/record.js";

/** The fault tests' job: sleeps task.content.ms, returns task.content.i. */
export const faultJobs = `
- name: work
  topics: [work]
  script: await sleep(task.content.ms / 1000); return task.content.i
`;

/** SIGTERM, then the exit code: a graceful stop exits 0. */
export async function stopWorker(child: ChildProcess): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  child.kill("SIGTERM");
  return exited;
}

export async function waitAll(js: JobShell, ids: string[], timeout = 120): Promise<TaskRecordData[]> {
  return Promise.all(ids.map((id) => js.waitfor(id, timeout).then((r) => r.dictionary as TaskRecordData)));
}

export const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface ProducerResult {
  /** the taskids accepted */
  accepted: string[];
  /** how many task() calls threw QueueFullError */
  refused: number;
  /** any other error, as text */
  others: string[];
}

/** Run a producer script (it prints one JSON ProducerResult) as a process of its own. */
export function runProducer(script: string, env: Record<string, string>): Promise<ProducerResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout!.on("data", (chunk: Buffer) => (out += chunk.toString()));
    child.on("exit", (code) => (code === 0 ? resolve(JSON.parse(out) as ProducerResult) : reject(new Error(`producer exited with ${code}`))));
  });
}
