// What the fault tests share: stopping a worker process, and waiting for every record of a run.
import type { ChildProcess } from "node:child_process";
import type { JobShell } from "../../src/jobshell.js";
import type { TaskRecordData } from "../../src/record.js";

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
