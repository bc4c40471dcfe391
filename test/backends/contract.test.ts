// Every behaviour of job definitions, tasks, scripts, MU and the library API, specified once and run on every backend of backends.ts.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect } from "vitest";
import { JobDefinitionError, QueueFullError, TimeoutError, UnknownTaskError } from "../../src/errors.js";
import { internals } from "../../src/internals.js";
import type { JobShell } from "../../src/jobshell.js";
import { backendSuite, backends, itWhen } from "../each-backend.js";

const timestamp = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d$/;

const exampleJobs = `
- name: example
  topics: [hello, world]
  script: |-
    if (task.topic == "hello") qprint(\`Hello, \${task.content.name}\`)
    else if (task.topic == "world") qprint(\`Bye, \${task.content.name}\`)
- name: echo
  topics: [echo, fanout]
  script: |-
    return { got: task.content, attempt: task.attempt, topic: task.topic, createdAt: task.createdAt }
- name: second
  topics: [fanout]
  script: return "second ran"
- name: broken
  topics: [fanout, broken]
  script: |-
    const x = 1
    throw new Error("boom at line 2")
- name: slow
  topics: [slow]
  script: await sleep(task.content.seconds); return "slept"
- name: chain
  topics: [chain]
  script: |-
    const id = await issue("echo", { from: "chain" }, 30)
    const r = await waitfor(id, 20)
    return r.results[0].value.got.from
- name: logs
  topics: [logs]
  script: logger.info("hello %s", task.content.name); logger.error("bad")
- name: builtins
  topics: [builtins]
  script: |-
    const m = MU({ a: 1 })
    m.b = 2
    return { keys: [...m], parsed: json.loads('{"x": 5}').x, dumped: json.dumps({ y: 1 }), name: task.content.who.name }
`;

for (const backend of backends) {
  describe(`contract on ${backend.name}`, () => {
    const suite = backendSuite(backend);
    /** A JobShell on a fresh queue (or on `namespace`, to be a second process on the same queue). */
    const start = (options: Parameters<typeof suite.start>[0] = {}) => suite.start({ yaml: exampleJobs, ...options });

    const maybe = itWhen(suite.available);

    maybe("task() returns a 32-hex taskid and waitfor() the completed task record", async () => {
      const { js } = await start();
      const taskid = await js.task("echo", { name: "amuro" }, { expire: 30 });
      expect(taskid).toMatch(/^[0-9a-f]{32}$/);
      const r = await js.waitfor(taskid, { timeout: 10 });
      expect(r.taskid).toBe(taskid);
      expect(r.topic).toBe("echo");
      expect(r.status).toBe("completed");
      expect(r.createdAt).toMatch(timestamp);
      expect(r.completedAt).toMatch(timestamp);
      expect(r.attempt).toBe(1);
      const { createdAt, ...value } = r.dictionary.results[0].value;
      expect(r.dictionary.results).toEqual([{ job: "echo", status: "completed", value: { ...value, createdAt } }]);
      expect(value).toEqual({ got: { name: "amuro" }, attempt: 1, topic: "echo" });
      // the script saw the task's creation time in epoch milliseconds, the time the record shows
      expect(Math.abs(createdAt - Date.parse(r.createdAt))).toBeLessThan(1);
      expect(r.yaml_format).toContain(`taskid: ${taskid}`);
    });

    maybe("one task runs every job on its topic, and a failing job does not stop the others", async () => {
      const { js } = await start();
      const r = await js.waitfor(await js.task("fanout", { n: 1 }), 10);
      expect(r.status).toBe("failed");
      const results = [...r.dictionary.results].sort((a: { job: string }, b: { job: string }) => a.job.localeCompare(b.job));
      expect(results.map((x: { job: string; status: string }) => [x.job, x.status])).toEqual([
        ["broken", "failed"],
        ["echo", "completed"],
        ["second", "completed"],
      ]);
      expect(results[0].error).toBe("boom at line 2 (line 2:7)");
      expect(results[2].value).toBe("second ran");
    });

    maybe("a topic no job handles completes with no results and a warning", async () => {
      const { js } = await start();
      const r = await js.waitfor(await js.task("nobody.listens"), 10);
      expect(r.status).toBe("completed");
      expect(r.dictionary.results).toEqual([]);
      expect(r.warning).toContain("nobody.listens");
    });

    maybe("qprint lines reach every debug subscriber", async () => {
      const { js, namespace } = await start();
      const { js: other } = await start({ namespace, worker: false, yaml: false });
      const mine: string[] = [];
      const theirs: string[] = [];
      await js.onDebug((line) => mine.push(line));
      const stopTheirs = await other.onDebug((line) => theirs.push(line));
      await js.waitfor(await other.task("hello", { name: "amuro" }), 10);
      await js.waitfor(await other.task("world", { name: "amuro" }), 10);
      await expect.poll(() => theirs, { timeout: 5000 }).toEqual(["Hello, amuro", "Bye, amuro"]);
      await expect.poll(() => mine, { timeout: 5000 }).toEqual(["Hello, amuro", "Bye, amuro"]);
      await stopTheirs();
      await js.waitfor(await js.task("hello", { name: "again" }), 10);
      await expect.poll(() => mine.length, { timeout: 5000 }).toBe(3);
      expect(theirs).toHaveLength(2);
    });

    maybe("await onDebug() resolves once the subscription is live: a task issued right after has its lines seen", async () => {
      const { js } = await start();
      const lines: string[] = [];
      const stop = await js.onDebug((line) => lines.push(line));
      const taskid = await js.task("hello", { name: "first" });
      await js.waitfor(taskid, 10);
      await expect.poll(() => lines, { timeout: 5000 }).toEqual(["Hello, first"]);
      await stop();
      await stop();
    });

    maybe("a task that no job starts within expire ends expired, with no worker running", async () => {
      const { js } = await start({ worker: false });
      const taskid = await js.task("echo", {}, 0.3);
      const r = await js.waitfor(taskid, 10);
      expect(r.status).toBe("expired");
      expect(r.dictionary.results).toEqual([]);
    });

    maybe("a task waiting behind a busy worker expires, and a started job is never cut off by expire", async () => {
      const { js } = await start({ jobQueueBulkReadSize: 1 });
      const busy = await js.task("slow", { seconds: 1.5 }, 0.5);
      await new Promise((r) => setTimeout(r, 200));
      const starved = await js.task("echo", {}, 0.3);
      expect((await js.waitfor(starved, 10)).status).toBe("expired");
      const done = await js.waitfor(busy, 10);
      expect(done.status).toBe("completed");
      expect(done.dictionary.results[0].value).toBe("slept");
    });

    maybe("job_queue_size: a task past the cap throws QueueFullError and nothing is enqueued", async () => {
      const { js } = await start({ worker: false, jobQueueSize: 3 });
      for (let i = 0; i < 3; i++) await js.task("echo", { i }, 60);
      await expect(js.task("echo", { i: 3 }, 60)).rejects.toBeInstanceOf(QueueFullError);
      await expect(js.task("echo", { i: 4 }, 60)).rejects.toMatchObject({ code: "QUEUE_FULL", limit: 3 });
      expect((await js.stats()).queueDepth).toBe(3);
    });

    maybe("stats() shows the deployment: each queue with its depth, and the workers the server knows", async () => {
      const { js, namespace } = await start({ worker: false });
      const ids = [await js.task("echo", { i: 1 }, 60), await js.task("echo", { i: 2 }, 60)];
      const before = await js.stats();
      expect(before.queues!.length).toBeGreaterThan(0);
      expect(before.queues!.reduce((n, q) => n + q.depth, 0)).toBe(2);
      if (js.mode === "amqp") {
        // The broker counts consumers but names none.
        expect(before.workers).toBeUndefined();
        expect(before.queues!.map((q) => q.consumers)).toEqual(before.queues!.map(() => 0));
      } else expect(before.workers).toEqual([]);

      const { js: worker } = await start({ namespace, yaml: false });
      for (const id of ids) expect((await js.waitfor(id, 10)).status).toBe("completed");
      await expect.poll(async () => (await worker.stats()).queues!.reduce((n, q) => n + q.depth, 0), { timeout: 5000 }).toBe(0);
      const after = await js.stats();
      if (js.mode === "amqp") {
        expect(after.queues!.reduce((n, q) => n + q.consumers!, 0)).toBe(1);
      } else {
        expect(after.workers).toHaveLength(1);
        const [seen] = after.workers!;
        expect(seen).toMatchObject({ host: hostname(), pid: process.pid });
        expect(Math.abs(Date.now() - seen!.lastSeen)).toBeLessThan(15_000);
      }
    });

    maybe("job_queue_size counts tasks that wait: with no worker, those past their expire make room, ended expired", async () => {
      const { js } = await start({ worker: false, jobQueueSize: 3 });
      const stale = [];
      for (let i = 0; i < 3; i++) stale.push(await js.task("echo", { i }, 0.2));
      await expect(js.task("echo", { i: 3 }, 60)).rejects.toBeInstanceOf(QueueFullError);
      await new Promise((r) => setTimeout(r, 300));
      const fresh = await js.task("echo", { i: 4 }, 60);
      for (const id of stale) expect((await js.record(id))?.status).toBe("expired");
      expect((await js.record(fresh))?.status).toBe("queued");
      expect((await js.stats()).queueDepth).toBe(1);
    });

    maybe("a script's stray rejection or throw in a timer fails its job, saying which it was; the worker goes on", async () => {
      const { js } = await start({ yaml: false });
      await js.upload(`
- {name: stray, topics: [stray], script: "Promise.reject(new Error('nobody awaits me')); return 1"}
- {name: timer, topics: [timer], script: "setTimeout(() => { throw new Error('thrown in a timer') }, 0); await sleep(1)"}
- {name: fine, topics: [fine], script: "return 'fine'"}
`);
      const [stray, timer] = await Promise.all([js.task("stray"), js.task("timer")].map(async (id) => js.waitfor(await id, 20)));
      expect(stray.results).toEqual([{ job: "stray", status: "failed", error: "a rejected promise nobody handled: nobody awaits me (line 1:16)" }]);
      expect(timer.results[0].error).toMatch(/^an exception thrown outside the script's await chain \(in a timer or callback\): thrown in a timer \(line 1:/);
      expect((await js.waitfor(await js.task("fine"), 20)).results[0].value).toBe("fine");
    });

    maybe("a task whose script calls process.exit() is tried again, then ends failed after max_attempts saying how each try ended", async () => {
      const { js } = await start({ yaml: false, maxAttempts: 2 });
      await js.upload(`
- {name: exits, topics: [exits], script: "process.exit(3)"}
- {name: fine, topics: [fine], script: "return task.attempt"}
`);
      const record = await js.waitfor(await js.task("exits"), 30);
      expect(record.status).toBe("failed");
      expect(record.attempt).toBe(2);
      expect(record.results).toEqual([]);
      expect(record.warning).toBe(
        "tried 2 times (max_attempts 2), each try ended before its scripts did: " +
          "attempt 1: job exits: the script called process.exit(3); attempt 2: job exits: the script called process.exit(3)",
      );
      expect((await js.waitfor(await js.task("fine"), 20)).results[0].value).toBe(1);
    });

    maybe("10,000 tasks issued at once with bulk 32 never run more than 32 at a time", async () => {
      // In process: the scripts count in this process's globalThis.
      const { js } = await start({ jobQueueBulkReadSize: 32, jobInProcess: true, yaml: false });
      const key = `conc_${Math.random().toString(36).slice(2)}`;
      await js.upload(`
- name: counted
  topics: [counted]
  script: |-
    const s = globalThis.${key} ??= { now: 0, max: 0 }
    s.now++; s.max = Math.max(s.max, s.now)
    await sleep(0.001)
    s.now--
`);
      const ids = await Promise.all(Array.from({ length: 10_000 }, () => js.task("counted", {}, 120)));
      const records = await Promise.all(ids.map((id) => js.waitfor(id, 120)));
      expect(records.every((r) => r.status === "completed")).toBe(true);
      const seen = (globalThis as Record<string, unknown>)[key] as { max: number };
      expect(seen.max).toBeLessThanOrEqual(32);
      expect(seen.max).toBeGreaterThan(1);
    }, 180_000);

    maybe("waitfor() throws TimeoutError naming the task and its last status, and rejects an unknown task at once", async () => {
      const { js } = await start({ worker: false });
      const taskid = await js.task("echo", {}, 60);
      const err = await js.waitfor(taskid, 0.3).catch((e) => e);
      expect(err).toBeInstanceOf(TimeoutError);
      expect(err).toMatchObject({ code: "TIMEOUT", taskid, lastStatus: "queued" });
      expect(err.message).toContain(taskid);
      const began = Date.now();
      await expect(js.waitfor("0".repeat(32), 30)).rejects.toBeInstanceOf(UnknownTaskError);
      expect(Date.now() - began).toBeLessThan(5000);
    });

    maybe("task() arguments are checked: a TypeError names the argument and nothing is enqueued", async () => {
      const { js } = await start({ worker: false });
      const bad: [unknown[], RegExp][] = [
        [[""], /topic/],
        [[42], /topic/],
        [["x".repeat(256)], /topic must be at most 255 characters, got 256/],
        [["echo", [1, 2]], /content/],
        [["echo", "text"], /content/],
        [["echo", { f: () => 1 }], /content\.f is a function/],
        [["echo", { d: new Date() }], /content\.d is a Date/],
        [["echo", { n: Number.NaN }], /content\.n/],
        [["echo", {}, 0], /expire/],
        [["echo", {}, -1], /expire/],
        [["echo", {}, "10"], /expire/],
        [["echo", {}, { expire: Number.POSITIVE_INFINITY }], /expire/],
      ];
      const circular: Record<string, unknown> = {};
      circular.self = circular;
      bad.push([["echo", circular], /content\.self refers back/]);
      let deep: Record<string, unknown> = {};
      for (let i = 0; i < 10_000; i++) deep = { deep };
      bad.push([["echo", deep], /nested deeper than 100 levels/]);
      for (const [args, message] of bad) {
        const err = await (js.task as (...a: unknown[]) => Promise<string>)(...args).catch((e) => e);
        expect(err, String(message)).toBeInstanceOf(TypeError);
        expect(err.message).toMatch(message);
      }
      expect((await js.stats()).queueDepth).toBe(0);
    });

    maybe("job scripts get task, logger, MU, json, issue and waitfor", async () => {
      const { js, logs } = await start();
      const r = await js.waitfor(await js.task("builtins", { who: { name: "char" } }), 10);
      expect(r.dictionary.results[0].value).toEqual({ keys: ["a", "b"], parsed: 5, dumped: '{"y":1}', name: "char" });
      const chained = await js.waitfor(await js.task("chain"), 30);
      expect(chained.dictionary.results[0]).toEqual({ job: "chain", status: "completed", value: "chain" });
      const logged = await js.task("logs", { name: "amuro" });
      await js.waitfor(logged, 10);
      expect(logs).toContainEqual({ level: "info", message: "hello amuro", job: "logs", taskid: logged });
      expect(logs).toContainEqual({ level: "error", message: "bad", job: "logs", taskid: logged });
    });

    maybe("a script running past job_script_timeout fails with a timeout", async () => {
      const { js } = await start({ jobScriptTimeout: 0.3 });
      const r = await js.waitfor(await js.task("slow", { seconds: 5 }), 10);
      expect(r.status).toBe("failed");
      expect(r.dictionary.results[0].error).toContain("job_script_timeout");
    });

    maybe("upload() is all or nothing, refuses duplicates and replaces only when asked", async () => {
      const { js } = await start({ worker: false });
      const before = js.jobs().map((j) => j.name).sort();
      const err = await js
        .upload(`
- name: fresh
  topics: [fresh]
  script: return 1
- name: bad
  topics: [bad]
  script: |-
    const ok = 1
    if (ok {
`)
        .catch((e) => e);
      expect(err).toBeInstanceOf(JobDefinitionError);
      expect(err.message).toMatch(/<upload>: job bad: script: line 2:8: /);
      expect(js.jobs().map((j) => j.name).sort()).toEqual(before);
      await expect(js.upload(`- {name: echo, topics: [x], script: "return 2"}`)).rejects.toThrow(/echo.*already exists/);
      await js.upload(`- {name: echo, topics: [echo], script: "return 'replaced'"}`, { replace: true });
      expect(js.jobs().find((j) => j.name === "echo")?.script).toBe("return 'replaced'");
    });

    maybe("job files a process starts with: the same again change nothing, changed ones replace only when asked", async () => {
      const dir = (name: string, script: string) => {
        const folder = mkdtempSync(join(tmpdir(), `jobshell-${name}-`));
        writeFileSync(join(folder, "jobs.yaml"), `- {name: shared, topics: [shared], script: "${script}"}\n`);
        return folder;
      };
      const [current, same, older] = [dir("current", "return 2"), dir("same", "return 2"), dir("older", "return 1")];
      const { js: first, namespace } = await start({ worker: false, yaml: false, jobs: [current] });
      // Another worker with the same files, read from elsewhere: nothing changes, it starts.
      await start({ namespace, worker: false, yaml: false, jobs: [same] });
      // One with older files is refused, naming the job and the flag, and changes nothing.
      const err = await start({ namespace, worker: false, yaml: false, jobs: [older] }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(JobDefinitionError);
      expect((err as Error).message).toMatch(/job shared differs from the one the queue has \(from .*current.*\); start with --replace-jobs/);
      await internals(first).refreshJobs();
      expect(first.jobs().find((j) => j.name === "shared")?.script).toBe("return 2");
      // Asked to replace, it does.
      await start({ namespace, worker: false, yaml: false, jobs: [older], replaceJobs: true });
      await internals(first).refreshJobs();
      expect(first.jobs().find((j) => j.name === "shared")?.script).toBe("return 1");
      for (const folder of [current, same, older]) rmSync(folder, { recursive: true });
    });

    maybe("jobs uploaded in one process run in another process's worker without a restart", async () => {
      const { js: producer, namespace } = await start({ worker: false, yaml: false });
      const { js: worker } = await start({ namespace, yaml: false });
      await producer.upload(`- {name: late, topics: [late], script: "return 'late job ran'"}`);
      const r = await producer.waitfor(await producer.task("late"), 10);
      expect(r.dictionary.results).toEqual([{ job: "late", status: "completed", value: "late job ran" }]);
      await expect.poll(() => worker.jobs().map((j) => j.name), { timeout: 5000 }).toContain("late");
    });

    maybe("waitfor() in one process sees a task another process's worker ran", async () => {
      const { js: waiter, namespace } = await start({ worker: false });
      await start({ namespace, yaml: false });
      const r = await waiter.waitfor(await waiter.task("echo", { from: "afar" }), 10);
      expect(r.status).toBe("completed");
    });

    maybe("close() is graceful: a task being run finishes and its record is written", async () => {
      const { js, namespace } = await start();
      const taskid = await js.task("slow", { seconds: 0.5 }, 30);
      await new Promise((r) => setTimeout(r, 150));
      await js.close();
      const { js: reader } = await start({ namespace, worker: false, yaml: false });
      const r = await reader.record(taskid);
      expect(r?.status).toBe("completed");
    });

    maybe("close() lets the task() calls in flight reach the queue: none is cut off by the close", async () => {
      const { js, namespace, backend: connection } = await start({ worker: false });
      // More than any client-side window or batch holds at once, none of them awaited before close().
      const issued = Array.from({ length: 300 }, (_, n) => js.task("echo", { n }, 60));
      // As the owner of the connection does (the shell, jobshell worker): the connection goes right after.
      await js.close();
      await connection.close();
      const taskids = await Promise.all(issued);
      await start({ namespace, yaml: false });
      const { js: reader } = await start({ namespace, worker: false, yaml: false });
      const records = await Promise.all(taskids.map((id) => reader.waitfor(id, 30)));
      expect(records.filter((r) => r.status === "completed")).toHaveLength(300);
    }, 60_000);

    maybe("a record is kept while its task waits or runs, however short task_record_ttl is", async () => {
      const { js } = await start({ taskRecordTtl: 1, jobQueueBulkReadSize: 1 });
      const running = await js.task("slow", { seconds: 2.5 }, 30);
      const waiting = await js.task("echo", { behind: "slow" }, 30);
      await new Promise((r) => setTimeout(r, 1500));
      // Past task_record_ttl and not ended: still there, and queued: a worker is given no more tasks than
      // it has free slots (in Redis mode, also when it looks again while a handover is on its way to it).
      expect((await js.record(waiting))?.status).toBe("queued");
      const [first, second] = await Promise.all([js.waitfor(running, 20), js.waitfor(waiting, 20)]);
      expect(first.status).toBe("completed");
      expect(second.status).toBe("completed");
    });

    maybe("records are dropped after task_record_ttl", async () => {
      const { js } = await start({ taskRecordTtl: 1 });
      const taskid = await js.task("echo", {});
      expect((await js.waitfor(taskid, 10)).status).toBe("completed");
      await new Promise((r) => setTimeout(r, 3000));
      await expect(js.waitfor(taskid, 1)).rejects.toBeInstanceOf(UnknownTaskError);
    });
  });
}
