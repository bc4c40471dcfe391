// GET /events over real sockets: what the console's live views rely on. Events arrive with
// increasing ids, filters hold, a reconnect with Last-Event-ID misses nothing, heartbeats come, a
// client that stops reading is told what it missed, and the stream ends when the server closes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { open, type JobShell } from "../../src/jobshell.js";
import { serve, type RunningServer } from "../../src/server/index.js";
import { SseClient } from "./sse.js";

const jobs = `
- name: greet
  topics: [hello]
  script: |-
    qprint("greeting " + task.content.name)
    return "Hello, " + task.content.name
- name: other
  topics: [other]
  script: return 1
- name: chatty
  topics: [chatty]
  script: |-
    const line = "x".repeat(task.content.size)
    for (let i = 0; i < task.content.lines; i++) {
      qprint(i + " " + line)
      if (i % 20 === 19) await sleep(0.005)
    }
`;

const clients: SseClient[] = [];
async function stream(base: string, path = "/events", headers: Record<string, string> = {}): Promise<SseClient> {
  const client = await SseClient.open(base, path, headers);
  clients.push(client);
  await client.until(() => client.status !== 0, 5000, "the response head");
  return client;
}

/** Issue a task and wait until it has ended. */
async function run(js: JobShell, topic: string, content: Record<string, unknown> = {}): Promise<string> {
  const taskid = await js.task(topic, content);
  await js.waitfor(taskid, 10);
  return taskid;
}

describe("GET /events", { timeout: 60_000 }, () => {
  let js: JobShell;
  let server: RunningServer;
  let base: string;

  beforeAll(async () => {
    js = await open({ log: () => {} });
    await js.upload(jobs);
    server = await serve(js, { port: 0, host: "127.0.0.1", events: { heartbeatMs: 200, tickMs: 100 } });
    base = server.url;
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await server.close();
    await js.close();
  });

  it("sends retry, then task and debug events with increasing ids, as the contract says", async () => {
    const client = await stream(base);
    expect(client.status).toBe(200);
    expect(client.headers).toMatch(/content-type: text\/event-stream/i);
    expect(client.headers).toMatch(/content-security-policy: default-src 'self'/i);
    expect(client.retries).toEqual(["1000"]);
    const taskid = await run(js, "hello", { name: "amuro" });
    await client.until(() => client.data("task").some((e) => e.taskid === taskid && e.kind === "ended"));
    await client.until(() => client.data("debug").some((d) => d.line === "greeting amuro"));
    const mine = client.data("task").filter((e) => e.taskid === taskid);
    expect(mine.map((e) => e.kind)).toEqual(["queued", "started", "ended"]);
    expect(mine[2]).toMatchObject({ topic: "hello", status: "completed" });
    expect(typeof mine[2].runMs).toBe("number");
    const ids = client.events.filter((e) => e.id !== undefined).map((e) => Number(e.id));
    for (let i = 1; i < ids.length; i++) expect(ids[i]).toBeGreaterThan(ids[i - 1]);
    // every data line is one line of JSON
    for (const e of client.events) expect(() => JSON.parse(e.data)).not.toThrow();
  });

  it("ticks stats every interval and tells when the jobs change", async () => {
    const client = await stream(base, "/events?types=stats,jobs");
    await client.until(() => client.data("stats").length >= 2);
    expect(client.data("stats")[0]).toMatchObject({ mode: "memory", jobs: 3 });
    await js.upload("- name: added\n  topics: [added]\n  script: return 1");
    await client.until(() => client.data("jobs").length > 0);
    const last = client.data("jobs").at(-1);
    expect(last.jobs).toContainEqual({ name: "added", topics: ["added"] });
    expect(client.events.every((e) => e.event === "stats" || e.event === "jobs")).toBe(true);
  });

  it("filters by type and by topic, and refuses an unknown type", async () => {
    const debugOnly = await stream(base, "/events?types=debug");
    const otherTasks = await stream(base, "/events?types=task&topic=other");
    await run(js, "hello", { name: "filtered" });
    const other = await run(js, "other");
    await debugOnly.until(() => debugOnly.data("debug").some((d) => d.line === "greeting filtered"));
    await otherTasks.until(() => otherTasks.data("task").some((e) => e.taskid === other && e.kind === "ended"));
    expect(debugOnly.events.every((e) => e.event === "debug")).toBe(true);
    expect(otherTasks.events.every((e) => e.event === "task")).toBe(true);
    expect(otherTasks.data("task").every((e) => e.topic === "other")).toBe(true);

    const bad = await stream(base, "/events?types=task,nonsense");
    await bad.until(() => bad.ended || bad.headers.length > 0);
    expect(bad.status).toBe(400);
    const wrongId = await stream(base, "/events?lastEventId=abc");
    expect(wrongId.status).toBe(400);
  });

  it("resumes from Last-Event-ID without a gap: tasks issued while disconnected all arrive, once", async () => {
    const first = await stream(base, "/events?types=task");
    const before = await run(js, "other");
    await first.until(() => first.data("task").some((e) => e.taskid === before && e.kind === "ended"));
    const lastId = first.events.at(-1)!.id!;
    first.close();
    const missed: string[] = [];
    for (let i = 0; i < 5; i++) missed.push(await run(js, "other"));
    const again = await stream(base, "/events?types=task", { "Last-Event-ID": lastId });
    const after = await run(js, "other");
    await again.until(() => again.data("task").some((e) => e.taskid === after && e.kind === "ended"));
    const seen = again.data("task");
    for (const taskid of [...missed, after]) {
      expect(seen.filter((e) => e.taskid === taskid).map((e) => e.kind)).toEqual(["queued", "started", "ended"]);
    }
    expect(seen.some((e) => e.taskid === before)).toBe(false);
    expect(again.events.some((e) => e.event === "reset")).toBe(false);
    // the ids go on from where the first stream stopped
    expect(Number(again.events[0].id)).toBeGreaterThan(Number(lastId));
  });

  it("says reset first when the Last-Event-ID is older than the events kept, or from another server", async () => {
    const old = await stream(base, "/events?types=task", { "Last-Event-ID": "1" });
    const future = await stream(base, "/events?types=task&lastEventId=99999999999999");
    await old.until(() => old.events.length > 0);
    await future.until(() => future.events.length > 0);
    expect(old.events[0].event).toBe("reset");
    expect(old.events[0].id).toBeUndefined();
    expect(future.events[0].event).toBe("reset");
  });

  it("sends a heartbeat comment at its interval", async () => {
    const client = await stream(base, "/events?types=debug");
    await client.until(() => client.comments.includes("heartbeat"), 3000, "a heartbeat");
  });

  it("tells a client that stopped reading how many events it missed; one that keeps up gets them all", async () => {
    // A ring of 500 events: the slow client falls further behind than that.
    const small = await serve(js, { port: 0, host: "127.0.0.1", events: { ringSize: 500 } });
    try {
      const slow = await stream(small.url, "/events?types=debug");
      const watcher = await stream(small.url, "/events?types=debug");
      slow.pause();
      const lines = 4000;
      await js.waitfor(await js.task("chatty", { lines, size: 3000 }, 60), 60);
      await watcher.until(() => watcher.data("debug").some((d) => d.line.startsWith(`${lines - 1} `)), 30_000, "the last line");
      // the watcher read as the lines came: it got everything, in order, and was never told of a gap
      const numbers = watcher.data("debug").map((d) => Number(d.line.split(" ")[0]));
      expect(numbers).toEqual(Array.from({ length: lines }, (_, i) => i));
      expect(watcher.events.some((e) => e.event === "dropped")).toBe(false);

      slow.resume();
      await slow.until(() => slow.data("debug").some((d) => d.line.startsWith(`${lines - 1} `)), 30_000, "the last line, late");
      const dropped = slow.data("dropped");
      expect(dropped).toHaveLength(1);
      const { count, after } = dropped[0];
      expect(count).toBeGreaterThan(0);
      // what it got and what it was told it missed add up to every line: nothing lost in silence
      const got = slow.data("debug").map((d) => Number(d.line.split(" ")[0]));
      expect(got.length + count).toBe(lines);
      // in order, with one gap where the notice stands
      const at = slow.events.findIndex((e) => e.event === "dropped");
      const before = slow.events.slice(0, at).filter((e) => e.event === "debug");
      expect(Number(before.at(-1)!.id)).toBe(after);
      expect(got).toEqual([...got].sort((a, b) => a - b));
      expect(got[before.length] - got[before.length - 1]).toBe(count + 1);
      // the server held no more for it than its ring: the last 500 lines came after the gap
      expect(got.length - before.length).toBeLessThanOrEqual(500);
      // the events it missed are gone: resuming from before the gap starts over
      const late = await stream(small.url, "/events?types=debug", { "Last-Event-ID": String(after) });
      await late.until(() => late.events.length > 0);
      expect(late.events[0].event).toBe("reset");
    } finally {
      await small.close();
    }
  });
});

describe("GET /events when the server closes", () => {
  it("ends every stream", async () => {
    const js = await open({ log: () => {} });
    const server = await serve(js, { port: 0, host: "127.0.0.1" });
    const client = await SseClient.open(server.url, "/events");
    await client.until(() => client.retries.length > 0);
    const closing = server.close();
    await client.until(() => client.ended, 3000, "the end of the stream");
    await closing;
    await js.close();
  });
});

describe("GET /events: transactions", () => {
  it("sends each Transaction.* task event again as a transaction event with its xid, in order", async () => {
    const js = await open({ log: () => {}, jobTransactionEvent: true });
    const server = await serve(js, { port: 0, host: "127.0.0.1" });
    try {
      const client = await SseClient.open(server.url, "/events?types=transaction");
      await client.until(() => client.retries.length > 0);
      const tx = await js.transaction("order-9");
      await tx.to("Aborted");
      await tx.to("Cancelling");
      await client.until(() => client.data("transaction").filter((e) => e.kind === "queued").length === 3);
      const queued = client.data("transaction").filter((e) => e.kind === "queued");
      expect(queued.map((e) => [e.transaction, e.xid, e.xname, e.topic])).toEqual([
        ["Processing", tx.xid, "order-9", "Transaction.Processing"],
        ["Aborted", tx.xid, "order-9", "Transaction.Aborted"],
        ["Cancelling", tx.xid, "order-9", "Transaction.Cancelling"],
      ]);
      expect(client.events.every((e) => e.event === "transaction")).toBe(true);
      client.close();
    } finally {
      await server.close();
      await js.close();
    }
  });
});
