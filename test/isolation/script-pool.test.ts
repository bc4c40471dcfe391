// Job scripts run in the script pool's threads (memory mode, through open()): what crosses between a
// script and its worker, and what becomes of the other scripts of a thread that is ended. The pool
// loads the compiled thread (`npm run build`).
import { afterEach, describe, expect, it } from "vitest";
import { open, type JobShell } from "../../src/jobshell.js";

let js: JobShell | undefined;
afterEach(async () => {
  await js?.close();
  js = undefined;
});

type LogEntry = { level: string; message: string; job?: string; taskid?: string };

async function shell(options: Parameters<typeof open>[0] = {}): Promise<{ js: JobShell; logs: LogEntry[] }> {
  const logs: LogEntry[] = [];
  js = await open({ log: (e) => logs.push(e), ...options });
  return { js, logs };
}

describe("the script pool", () => {
  it("gives a script the builtins of its worker: logger and qprint lines, issue and waitfor, errors with their line", async () => {
    const { js, logs } = await shell();
    await js.upload(`
- {name: child, topics: [child], script: "return task.content.n * 2"}
- name: parent
  topics: [parent]
  script: |-
    logger.info("parent of %d", task.content.n)
    qprint("qprinted", task.content.n)
    const id = await issue("child", MU({ n: task.content.n }))
    const record = await waitfor(id, 10)
    return { doubled: record.results[0].value, attempt: task.attempt }
- name: unknown
  topics: [unknown]
  script: |-
    const x = 1
    await waitfor("0123456789abcdef0123456789abcdef", 1)
`);
    const lines: string[] = [];
    await js.onDebug((line) => lines.push(line));
    const parent = await js.waitfor(await js.task("parent", { n: 21 }), 20);
    expect(parent.results).toEqual([{ job: "parent", status: "completed", value: { doubled: 42, attempt: 1 } }]);
    expect(logs).toContainEqual({ level: "info", message: "parent of 21", job: "parent", taskid: parent.taskid });
    await expect.poll(() => lines).toContain("qprinted 21");
    const unknown = await js.waitfor(await js.task("unknown"), 20);
    expect(unknown.results[0].error).toMatch(/^UnknownTaskError: unknown task 0123456789abcdef0123456789abcdef .*\(line 2:\d+\)$/);
  });

  it("logs a rejection that comes after its script ended, with the job and the taskid; the job keeps its result", async () => {
    const { js, logs } = await shell();
    await js.upload(`- {name: late, topics: [late], script: "setTimeout(() => Promise.reject(new Error('too late')), 50); return 'done'"}`);
    const record = await js.waitfor(await js.task("late"), 20);
    expect(record.results).toEqual([{ job: "late", status: "completed", value: "done" }]);
    await expect.poll(() => logs.find((e) => e.job === "late")).toMatchObject({
      level: "error",
      taskid: record.taskid,
      message: expect.stringMatching(/^a rejected promise nobody handled: too late .*after the script had ended/),
    });
  });

  it("tries again the tasks of the other scripts of a thread that a script ended", async () => {
    const { js } = await shell({ jobThreads: 1 });
    await js.upload(`
- {name: waits, topics: [waits], script: "if (task.attempt === 1) await sleep(2); return task.attempt"}
- {name: exits, topics: [exits], script: "await sleep(0.2); process.exit(1)"}
`);
    const waits = await js.task("waits");
    const exits = await js.task("exits");
    const record = await js.waitfor(waits, 20);
    expect(record.status).toBe("completed");
    expect(record.attempt).toBe(2);
    expect(record.results[0].value).toBe(2);
    expect((await js.waitfor(exits, 20)).warning).toMatch(/^tried 3 times .*attempt 1: job exits: the script called process\.exit\(1\)/);
  });

  it("with job_in_process runs scripts in the worker's own thread, sharing its globalThis", async () => {
    const { js } = await shell({ jobInProcess: true });
    const key = `inProcess${Date.now()}`;
    await js.upload(`- {name: mark, topics: [mark], script: "globalThis.${key} = task.taskid"}`);
    const taskid = await js.task("mark");
    await js.waitfor(taskid, 10);
    expect((globalThis as Record<string, unknown>)[key]).toBe(taskid);
  });
});
