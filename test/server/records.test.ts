// GET /tasks (the listing), GET /stats and GET /transactions over real HTTP: the routes the console
// reads, which any client may use as documented in docs/rest-api.md.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { open, type JobShell } from "../../src/jobshell.js";
import { serve, type RunningServer } from "../../src/server/index.js";

const jobs = `
- name: greet
  topics: [hello]
  script: return "Hello, " + task.content.name
- name: broken
  topics: [broken]
  script: throw new Error("needle in the error")
`;

async function get(base: string, path: string): Promise<{ status: number; json: any }> {
  const res = await fetch(base + path);
  return { status: res.status, json: await res.json() };
}

describe("GET /tasks, /stats, /transactions", { timeout: 60_000 }, () => {
  let js: JobShell;
  let server: RunningServer;
  let base: string;
  const hello: string[] = [];
  let broken: string;
  let between: number;

  beforeAll(async () => {
    js = await open({ log: () => {}, jobTransactionEvent: true });
    await js.upload(jobs);
    server = await serve(js, { port: 0, host: "127.0.0.1" });
    base = server.url;
    for (let i = 0; i < 5; i++) {
      hello.push(await js.task("hello", { name: `n${i}` }));
      if (i === 1) {
        await new Promise((r) => setTimeout(r, 5));
        between = Date.now();
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    broken = await js.task("broken", { name: "haystack" });
    for (const t of [...hello, broken]) await js.waitfor(t, 10);
  });

  afterAll(async () => {
    await server.close();
    await js.close();
  });

  it("lists every record newest first, each as GET /tasks/{taskid} shows it", async () => {
    const { status, json } = await get(base, "/tasks");
    expect(status).toBe(200);
    expect(json.records.map((r: any) => r.taskid)).toEqual([broken, ...[...hello].reverse()]);
    expect(json).toMatchObject({ next: null, total: 6 });
    const one = await get(base, `/tasks/${hello[0]}`);
    expect(json.records.at(-1)).toEqual(one.json);
  });

  it("filters by status, topic, job, time and text", async () => {
    expect((await get(base, "/tasks?status=failed")).json.records.map((r: any) => r.taskid)).toEqual([broken]);
    expect((await get(base, "/tasks?topic=hello")).json.records).toHaveLength(5);
    expect((await get(base, "/tasks?job=broken")).json.records.map((r: any) => r.taskid)).toEqual([broken]);
    expect((await get(base, "/tasks?text=NEEDLE")).json.records.map((r: any) => r.taskid)).toEqual([broken]);
    expect((await get(base, "/tasks?text=n3")).json.records.map((r: any) => r.taskid)).toEqual([hello[3]]);
    const iso = new Date(between).toISOString();
    expect((await get(base, `/tasks?until=${encodeURIComponent(iso)}`)).json.records.map((r: any) => r.taskid)).toEqual([hello[1], hello[0]]);
    expect((await get(base, `/tasks?since=${between}&topic=hello`)).json.records.map((r: any) => r.taskid)).toEqual([hello[4], hello[3], hello[2]]);
  });

  it("pages with the cursor through every record once, and says when it is done", async () => {
    const seen: string[] = [];
    let path = "/tasks?limit=2";
    for (let pages = 0; pages < 10; pages++) {
      const { json } = await get(base, path);
      expect(json.records.length).toBeLessThanOrEqual(2);
      seen.push(...json.records.map((r: any) => r.taskid));
      if (json.next === null) break;
      path = `/tasks?limit=2&cursor=${encodeURIComponent(json.next)}`;
    }
    expect(seen).toEqual([broken, ...[...hello].reverse()]);
  });

  it("refuses bad values with invalid_query naming the parameter", async () => {
    for (const [query, named] of [
      ["status=done", "status"],
      ["since=yesterday", "since"],
      ["until=2026-13-45T99:00:00Z", "until"],
      ["limit=0", "limit"],
      ["limit=501", "limit"],
      ["limit=ten", "limit"],
      ["cursor=nonsense", "cursor"],
      ["colour=red", "colour"],
      [`since=${between + 1000}&until=${between}`, "since"],
    ]) {
      const { status, json } = await get(base, `/tasks?${query}`);
      expect(status, query).toBe(400);
      expect(json.error, query).toBe("invalid_query");
      expect(json.detail, query).toContain(named);
    }
  });

  it("shows stats() as JSON with the last hour per second and run times per minute", async () => {
    const { status, json } = await get(base, "/stats");
    expect(status).toBe(200);
    const stats = await js.stats();
    for (const key of Object.keys(stats)) expect(json, key).toHaveProperty(key);
    expect(json).toMatchObject({ mode: "memory", jobs: 2 });
    const { history } = json;
    expect(history.step).toBe(1000);
    for (const status of ["completed", "failed", "expired"]) expect(history[status]).toHaveLength(3600);
    const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);
    expect(sum(history.completed)).toBe(5);
    expect(sum(history.failed)).toBe(1);
    expect(history.from).toBeLessThanOrEqual(Date.now() - 3599 * 1000);
    expect(history.runTime.count).toHaveLength(60);
    expect(sum(history.runTime.count)).toBe(6);
    const last = history.runTime.p50.findLastIndex((p: number | null) => p !== null);
    expect(last).toBeGreaterThanOrEqual(58);
    expect(history.runTime.p95[last]).toBeGreaterThanOrEqual(history.runTime.p50[last]);
  });

  it("lists transactions with their status and events in order", async () => {
    const tx = await js.transaction("order-7", { amount: 3 });
    await tx.to("Aborted");
    await tx.to("Cancelling");
    const other = await js.transaction("order-8");
    await other.to("Complete");
    const { status, json } = await get(base, "/transactions");
    expect(status).toBe(200);
    expect(json.transactions.map((t: any) => t.xname)).toEqual(["order-8", "order-7"]);
    const seven = json.transactions[1];
    expect(seven).toMatchObject({ xid: tx.xid, status: "Cancelling" });
    expect(seven.events.map((e: any) => [e.status, e.previousStatus])).toEqual([
      ["Processing", null],
      ["Aborted", "Processing"],
      ["Cancelling", "Aborted"],
    ]);
    expect(json.transactions[0].status).toBe("Complete");
    expect((await get(base, "/transactions?limit=1")).json.transactions).toHaveLength(1);
    expect((await get(base, "/transactions?limit=x")).json.error).toBe("invalid_query");
  });
});
