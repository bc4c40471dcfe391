// The record index and the task events (tasks(), onTask()), specified once and run on every backend
// of backends.ts: what GET /tasks, GET /events and the console are built on.
import { describe, expect } from "vitest";
import type { TaskEvent } from "../../src/backend.js";
import type { JobShell } from "../../src/jobshell.js";
import { scanLimit } from "../../src/record-query.js";
import { newTask } from "../../src/task.js";
import { backendSuite, backends, itWhen } from "../each-backend.js";

const jobs = `
- name: echo
  topics: [echo, fanout]
  script: |-
    return { got: task.content }
- name: second
  topics: [fanout]
  script: return "second ran"
- name: broken
  topics: [broken]
  script: throw new Error("boom in broken")
`;

for (const backend of backends) {
  describe(`record index on ${backend.name}`, () => {
    const suite = backendSuite(backend);
    /** A JobShell on a fresh queue with the jobs above, or on `namespace` (another process on the same queue). */
    const start = (options: Parameters<typeof suite.start>[0] = {}) => suite.start({ label: "index", yaml: jobs, ...options });

    /** Every taskid of the listing, page by page. */
    async function listAll(js: JobShell, query: Parameters<JobShell["tasks"]>[0] = {}, between?: () => Promise<void>): Promise<string[]> {
      const seen: string[] = [];
      let page = await js.tasks(query);
      for (;;) {
        seen.push(...page.records.map((r) => r.taskid));
        if (!page.next) return seen;
        await between?.();
        page = await js.tasks({ ...query, cursor: page.next });
      }
    }

    const maybe = itWhen(suite.available, 60_000);

    maybe("lists records newest first, paged to the end with no repeat and no gap while tasks arrive", async () => {
      const { js } = await start({ worker: false });
      const issued: string[] = [];
      for (let n = 0; n < 120; n++) issued.push(await js.task("echo", { n }));
      const first = await js.tasks({ limit: 25 });
      expect(first.records.map((r) => r.taskid)).toEqual(issued.slice(-25).reverse());
      expect(first.total).toBe(120);
      expect(first.records[0]).toMatchObject({ topic: "echo", status: "queued", content: { n: 119 } });
      // New tasks issued between pages are newer than the listing's start: they never shift it.
      const seen = await listAll(js, { limit: 25 }, async () => void (await js.task("echo", { late: true })));
      expect(seen).toEqual([...issued].reverse());
      expect((await js.tasks({ limit: 500 })).total).toBe(120 + 4);
    });

    maybe("filters by status, topic, job and time range", async () => {
      const { js, backend: queue } = await start();
      const echo = await js.task("echo", { which: "echo" });
      const fanout = await js.task("fanout", { which: "fanout" });
      const broken = await js.task("broken", { which: "broken" });
      for (const id of [echo, fanout, broken]) await js.waitfor(id, 20);
      // Addressed to one job, as a Slack bot's direct message is (it ends with its job's result).
      const direct = newTask("somewhere", {});
      direct.job = "second";
      await queue.push(direct, 1000);
      const addressed = direct.taskid;
      expect((await js.waitfor(addressed, 20)).dictionary.results).toEqual([{ job: "second", status: "completed", value: "second ran" }]);
      const ids = async (query: Parameters<JobShell["tasks"]>[0]) => (await js.tasks(query)).records.map((r) => r.taskid);
      expect(await ids({ status: "failed" })).toEqual([broken]);
      expect(await ids({ status: "completed" })).toEqual([addressed, fanout, echo]);
      expect(await ids({ topic: "fanout" })).toEqual([fanout]);
      // A job that ran the task, or the one job it was addressed to.
      expect(await ids({ job: "echo" })).toEqual([fanout, echo]);
      expect(await ids({ job: "second" })).toEqual([addressed, fanout]);
      expect(await ids({ topic: "nobody" })).toEqual([]);
      const created = new Map((await js.tasks()).records.map((r) => [r.taskid, r.createdAt]));
      expect(await ids({ since: created.get(fanout), until: created.get(broken) })).toEqual([fanout]);
      expect(await ids({ since: created.get(broken) })).toEqual([addressed, broken]);
      expect(await ids({ until: created.get(fanout) })).toEqual([echo]);
    });

    maybe("a text search scans a bounded number of records and says where to go on", async () => {
      const { js } = await start({ worker: false });
      const needle = await js.task("echo", { note: "the NeedLe is here" });
      await Promise.all(Array.from({ length: scanLimit + 20 }, (_, n) => js.task("echo", { n })));
      const first = await js.tasks({ text: "needle" });
      expect(first.records).toEqual([]);
      expect(first.scanned).toBe(scanLimit);
      expect(first.total).toBe(scanLimit + 21);
      expect(first.next).toBeDefined();
      const second = await js.tasks({ text: "needle", cursor: first.next });
      expect(second.records.map((r) => r.taskid)).toEqual([needle]);
      expect(second.scanned).toBe(21);
      expect(second.next).toBeUndefined();
    }, 120_000);

    maybe("text search looks in results' values and errors and in the warning", async () => {
      const { js } = await start();
      const echo = await js.task("echo", { shout: "Hello THERE" });
      const broken = await js.task("broken", {});
      const nobody = await js.task("nobody.listens", {});
      for (const id of [echo, broken, nobody]) await js.waitfor(id, 20);
      const found = async (text: string) => (await js.tasks({ text })).records.map((r) => r.taskid);
      expect(await found("hello there")).toEqual([echo]);
      expect(await found("BOOM IN BROKEN")).toEqual([broken]);
      expect(await found("nobody.listens")).toEqual([nobody]);
    });

    maybe("a record leaves the listing after task_record_ttl", async () => {
      const { js } = await start({ taskRecordTtl: 1 });
      const taskid = await js.task("echo", {});
      await js.waitfor(taskid, 10);
      expect((await js.tasks()).records.map((r) => r.taskid)).toEqual([taskid]);
      await expect.poll(async () => (await js.tasks()).total, { timeout: 10_000, interval: 250 }).toBe(0);
      expect((await js.tasks()).records).toEqual([]);
    });

    maybe("lists and reports the tasks another process issued and ran", async () => {
      const { js: watcher, namespace } = await start({ worker: false });
      const { js: other } = await start({ namespace, yaml: false });
      const events: TaskEvent[] = [];
      const stop = await watcher.onTask((e) => events.push(e));
      const taskid = await other.task("echo", { from: "other" });
      expect((await other.waitfor(taskid, 20)).status).toBe("completed");
      await expect.poll(() => events.filter((e) => e.taskid === taskid).map((e) => e.kind), { timeout: 10_000 }).toEqual(["queued", "started", "ended"]);
      const ended = events.find((e) => e.kind === "ended")!;
      expect(ended).toMatchObject({ taskid, topic: "echo", status: "completed" });
      expect(ended.runMs).toBeGreaterThanOrEqual(0);
      expect(ended.at).toBeGreaterThan(Date.now() - 60_000);
      await expect.poll(async () => (await watcher.tasks()).records.map((r) => [r.taskid, r.status]), { timeout: 10_000 }).toEqual([[taskid, "completed"]]);
      await stop();
      await other.waitfor(await other.task("echo", { after: "stop" }), 20);
      await new Promise((r) => setTimeout(r, 300));
      expect(events.filter((e) => e.taskid !== taskid)).toEqual([]);
    });

    maybe("refuses a bad query with an error naming the field", async () => {
      const { js } = await start({ worker: false });
      await expect(js.tasks({ limit: 0 })).rejects.toThrow(/limit must be a whole number from 1 to 500/);
      await expect(js.tasks({ limit: 501 })).rejects.toThrow(/limit/);
      await expect(js.tasks({ status: "done" as never })).rejects.toThrow(/status must be one of queued, started, completed, failed, expired/);
      await expect(js.tasks({ cursor: "nonsense" })).rejects.toThrow(/cursor must be a page's "next"/);
      await expect(js.tasks({ since: "yesterday" as never })).rejects.toThrow(/since must be a time/);
      await expect(js.tasks({ since: 2000, until: 1000 })).rejects.toThrow(/since .* must not be after until/);
      await expect(js.tasks({ topic: "" })).rejects.toThrow(/topic must be a non-empty string/);
      await expect(js.tasks({ colour: "red" } as never)).rejects.toThrow(/unknown field colour/);
      await expect(js.onTask("not a function" as never)).rejects.toThrow(/onTask\(\): takes a function/);
      expect((await js.tasks()).records).toEqual([]);
    });
  });
}
