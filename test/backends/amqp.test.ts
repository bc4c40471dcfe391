// What the AMQP mode promises beyond the contract suite: its layout on the broker, connection
// errors, and what happens to a task when its worker dies or loses its connection.
import net from "node:net";
import amqp from "amqplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Backend, Lease } from "../../src/backend.js";
import { AmqpBackend, createAmqpBackend, deleteAmqpNamespace } from "../../src/backends/amqp/index.js";
import { corkEachPass, defaultHeartbeat } from "../../src/backends/amqp/connection.js";
import { ConnectionError, ParameterError, QueueFullError } from "../../src/errors.js";
import { open } from "../../src/jobshell.js";
import { fold, type RecordEvent } from "../../src/backends/amqp/fold.js";
import { decodeBatch, encodeBatch, formatVersion } from "../../src/backends/amqp/encoding.js";
import { nowMs, type QueuedTask } from "../../src/record.js";
import { amqpUrl, backends, itWhen, requireServer, uniqueNamespace } from "../each-backend.js";

const amqpEntry = backends.find((b) => b.name === "amqp")!;
let available = false;
const namespaces: string[] = [];
const opened: Backend[] = [];

beforeAll(async () => {
  available = await requireServer(amqpEntry);
});

afterAll(async () => {
  await Promise.allSettled(opened.map((b) => b.close()));
  for (const ns of namespaces) await deleteAmqpNamespace(amqpUrl, ns, `${ns}.debug`);
});

const maybe = itWhen(() => available);

async function connect(namespace: string, extra: { connectionName?: string; taskRecordTtl?: number; maxAttempts?: number } = {}): Promise<AmqpBackend> {
  if (!namespaces.includes(namespace)) namespaces.push(namespace);
  const b = (await createAmqpBackend(amqpUrl, { namespace, taskRecordTtl: 600, debugChannel: `${namespace}.debug`, ...extra })) as AmqpBackend;
  opened.push(b);
  return b;
}

function task(topic = "echo", expire = 60): QueuedTask {
  const taskid = crypto.randomUUID().replaceAll("-", "");
  return { taskid, topic, content: {}, expire, createdAt: nowMs() };
}

/** The broker's side of a backend's connection, to cut it as a network failure would. */
async function dropConnection(b: AmqpBackend): Promise<void> {
  const model = await (b as unknown as { conn: { current(): Promise<{ connection: { stream: { destroy(err: Error): void } } }> } }).conn.current();
  model.connection.stream.destroy(new Error("simulated network failure"));
}

const withTimeout = (ms: number) => AbortSignal.timeout(ms);

/** A record's status as the process stores it, before a reader derives expiry. */
function storedStatus(b: AmqpBackend, taskid: string): string | undefined {
  return (b as unknown as { records: { stored(id: string): { status: string } | undefined } }).records.stored(taskid)?.status;
}

/** A TCP proxy to the broker that can be cut (the broker unreachable, as for a network outage) and
 *  restored on the same port, or whose open connections can hang (their data dropped, nothing closed,
 *  as on a network path that lost its state) while new ones pass. */
async function brokerProxy(): Promise<{ url: string; cut(): Promise<void>; restore(): Promise<void>; hang(): void }> {
  const target = new URL(amqpUrl);
  const sockets = new Set<net.Socket>();
  const hung = new WeakSet<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 5672), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {});
    }
    client.on("data", (data) => hung.has(client) || upstream.write(data));
    upstream.on("data", (data) => hung.has(client) || client.write(data));
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  const listen = (port: number) => new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  await listen(0);
  const { port } = server.address() as net.AddressInfo;
  const url = new URL(amqpUrl);
  url.hostname = "127.0.0.1";
  url.port = String(port);
  return {
    url: url.toString(),
    cut: async () => {
      const closed = new Promise((resolve) => server.close(resolve));
      for (const s of sockets) s.destroy();
      await closed;
    },
    restore: () => listen(port),
    hang: () => {
      for (const s of sockets) hung.add(s);
    },
  };
}

describe("AMQP mode", () => {
  maybe("a lease is held by one process at a time and passes on when it is released or its holder's connection dies", async () => {
    const ns = uniqueNamespace("lease");
    const a = await connect(ns);
    const b = await connect(ns);
    expect(await a.claim("slack-bot:x", "a", 30)).toBe(true);
    expect(await a.claim("slack-bot:x", "a", 30)).toBe(true); // renewing
    expect(await b.claim("slack-bot:x", "b", 30)).toBe(false);
    await a.release("slack-bot:x", "a");
    expect(await b.claim("slack-bot:x", "b", 30)).toBe(true);
    expect(await a.claim("slack-bot:x", "a", 30)).toBe(false);
    await b.close();
    await expect.poll(() => a.claim("slack-bot:x", "a", 30), { timeout: 10_000 }).toBe(true);
  });

  it("an unreachable broker is one ConnectionError line, password masked", async () => {
    const err = await createAmqpBackend("amqp://guest:s3cret@127.0.0.1:1", { taskRecordTtl: 60, debugChannel: "x" }).catch((e) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect(err.code).toBe("CONNECTION");
    expect(err.message).not.toContain("s3cret");
    expect(err.message).toContain("guest:***@127.0.0.1:1");
    expect(err.message).toContain("connection refused");
    expect(err.message).not.toContain("\n");
  });

  maybe("wrong credentials are one ConnectionError line, password masked", async () => {
    const url = new URL(amqpUrl);
    url.password = "not-the-password";
    const err = await createAmqpBackend(url.toString(), { taskRecordTtl: 60, debugChannel: "x" }).catch((e) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect(err.message).not.toContain("not-the-password");
    expect(err.message).toMatch(/access refused/);
    expect(err.message).not.toContain("\n");
  });

  maybe("a virtual host that does not exist is one ConnectionError line naming it and the broker's refusal", async () => {
    const url = new URL(amqpUrl);
    url.pathname = `/${uniqueNamespace("novhost")}`;
    const err = await createAmqpBackend(url.toString(), { taskRecordTtl: 60, debugChannel: "x" }).catch((e) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect(err.message).toContain(`virtual host "${url.pathname.slice(1)}" not found, or the user may not use it (NOT_ALLOWED)`);
    expect(err.message).not.toContain("\n");
  });

  it("a URL that is not amqp:// or amqps:// is a ParameterError, tried on no server", async () => {
    for (const url of ["http://guest:s3cret@127.0.0.1:5672", "redis://127.0.0.1:6379", "not a url"]) {
      const err = await createAmqpBackend(url, { taskRecordTtl: 60, debugChannel: "x" }).catch((e) => e);
      expect(err, url).toBeInstanceOf(ParameterError);
      expect(err.message, url).not.toContain("s3cret");
    }
  });

  maybe("the socket is corked for each pass of amqplib's multiplexer (its internals are still there), and every frame still arrives in order", async () => {
    const conn = await amqp.connect(amqpUrl);
    try {
      // false would mean amqplib's internals changed and every frame is a write of its own again
      expect(corkEachPass(conn)).toBe(true);
      const ch = await conn.createConfirmChannel();
      const { queue } = await ch.assertQueue("", { exclusive: true });
      await Promise.all(Array.from({ length: 50 }, (_, n) => new Promise<void>((resolve, reject) =>
        ch.sendToQueue(queue, Buffer.from(String(n)), {}, (err) => (err ? reject(err) : resolve())))));
      const bodies: string[] = [];
      for (let msg = await ch.get(queue, { noAck: true }); msg; msg = await ch.get(queue, { noAck: true })) bodies.push(msg.content.toString());
      expect(bodies).toEqual(Array.from({ length: 50 }, (_, n) => String(n)));
    } finally {
      await conn.close();
    }
  });

  maybe("the task queue is durable, capped by the broker, and tasks are persistent with no TTL the broker would drop them by", async () => {
    const ns = uniqueNamespace("layout");
    const b = await connect(ns);
    await b.push(task("echo", 30), 4);
    const conn = await amqp.connect(amqpUrl);
    try {
      const ch = await conn.createChannel();
      // An equivalent declaration succeeds: these are the queue's arguments.
      await ch.assertQueue(`${ns}.tasks.max-4`, { durable: true, arguments: { "x-max-length": 4, "x-overflow": "reject-publish" } });
      const msg = await ch.get(`${ns}.tasks.max-4`, { noAck: false });
      expect(msg && msg.properties.deliveryMode).toBe(2);
      expect(msg && msg.properties.expiration).toBeUndefined();
      if (msg) ch.nack(msg, false, true);
      await ch.checkExchange(`${ns}.debug`);
      await ch.close();
    } finally {
      await conn.close();
    }
  });

  maybe("processes with different job_queue_size do not clash, and workers run the tasks of both", async () => {
    const ns = uniqueNamespace("sizes");
    const small = await open({ backend: await connect(ns), worker: false, jobQueueSize: 5 });
    const big = await open({ backend: await connect(ns), worker: false, jobQueueSize: 9 });
    const worker = await open({ backend: await connect(ns), worker: true });
    try {
      await small.upload(`- {name: echo, topics: [echo], script: "return task.content.n"}`, { replace: true });
      const ids = [await small.task("echo", { n: 1 }, 30), await big.task("echo", { n: 2 }, 30)];
      const records = await Promise.all(ids.map((id) => small.waitfor(id, 15)));
      expect(records.map((r) => [r.status, r.dictionary.results[0].value])).toEqual([
        ["completed", 1],
        ["completed", 2],
      ]);
    } finally {
      await Promise.all([small.close(), big.close(), worker.close()]);
    }
  });

  maybe("a worker holds job_queue_bulk_read_size tasks of a queue at most: the others stay ready in the broker", async () => {
    const ns = uniqueNamespace("prefetch");
    const queue = await connect(ns);
    const producer = await open({ backend: queue, worker: false, jobQueueSize: 50 });
    const worker = await open({ backend: await connect(ns), worker: true, jobQueueBulkReadSize: 3, jobQueueSize: 50 });
    try {
      await producer.upload(`- {name: nap, topics: [nap], script: "await sleep(2)"}`, { replace: true });
      const ids = await Promise.all(Array.from({ length: 6 }, () => producer.task("nap", {}, 60)));
      await expect.poll(() => queue.depth(), { timeout: 5000 }).toBe(3);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(await queue.depth()).toBe(3);
      expect((await worker.stats()).inFlight).toBe(3);
      await Promise.all(ids.map((id) => producer.waitfor(id, 30)));
    } finally {
      await Promise.all([producer.close(), worker.close()]);
    }
  }, 30_000);

  maybe("a task whose worker died mid-run runs again on another worker, as attempt 2", async () => {
    const ns = uniqueNamespace("rescue");
    const producer = await connect(ns);
    const t = task();
    await producer.push(t, 100);
    const first = await connect(ns);
    const [lease] = await first.take(1, withTimeout(5000));
    expect(await first.start([lease])).toEqual([{ started: true, attempt: 1 }]);
    await first.close(); // without finishing: the broker hands the task to the next worker
    const second = await connect(ns);
    const [again] = await second.take(1, withTimeout(5000));
    expect(again.task.taskid).toBe(t.taskid);
    expect(await second.start([again])).toEqual([{ started: true, attempt: 2 }]);
    await second.finish([{ lease: again, outcome: { status: "completed", results: [], completedAt: nowMs() } }]);
    const reader = await connect(ns);
    expect(await reader.waitEnded(t.taskid, 5000)).toMatchObject({ status: "completed", attempt: 2 });
  });

  maybe("a task whose workers died under it max_attempts times ends failed, its warning naming each try", async () => {
    const ns = uniqueNamespace("poison");
    const producer = await connect(ns);
    const t = task();
    await producer.push(t, 100);
    for (let attempt = 1; attempt <= 2; attempt++) {
      const worker = await connect(ns, { maxAttempts: 2 });
      const [lease] = await worker.take(1, withTimeout(5000));
      expect(await worker.start([lease])).toEqual([{ started: true, attempt }]);
      await worker.close(); // without finishing: the broker hands the task to the next worker
    }
    const last = await connect(ns, { maxAttempts: 2 });
    const [again] = await last.take(1, withTimeout(5000));
    expect(await last.start([again])).toEqual([{ started: false, why: "gone" }]);
    const record = await producer.waitEnded(t.taskid, 5000);
    expect(record).toMatchObject({ status: "failed", attempt: 2, results: [] });
    const lost = "its delivery came back unacknowledged (its worker died or lost its connection)";
    expect(record?.warning).toBe(`tried 2 times (max_attempts 2), each try ended before its scripts did: attempt 1: ${lost}; attempt 2: ${lost}`);
    expect(await producer.depth()).toBe(0);
  });

  maybe("a connection that hangs, neither answering nor closing, is found dead by its heartbeat: a task() on it goes through a new one", async () => {
    const ns = uniqueNamespace("hang");
    namespaces.push(ns);
    const proxy = await brokerProxy();
    const b = (await createAmqpBackend(`${proxy.url}?heartbeat=1`, { namespace: ns, taskRecordTtl: 600, debugChannel: `${ns}.debug` })) as AmqpBackend;
    const js = await open({ backend: b, worker: false, log: () => {} });
    const reader = await connect(ns);
    try {
      await js.task("echo", {}, 60);
      proxy.hang();
      const began = Date.now();
      await js.task("echo", {}, 60);
      // Two missed heartbeats, a reconnect, the publish again: seconds, not the minutes of a hang.
      expect(Date.now() - began).toBeLessThan(10_000);
      expect(await reader.depth()).toBe(2);
    } finally {
      await js.close();
      await b.close();
      await proxy.cut();
    }
  }, 20_000);

  maybe("connections carry a heartbeat of defaultHeartbeat seconds unless the URL names one", async () => {
    const heartbeatOf = async (b: AmqpBackend) =>
      ((await (b as unknown as { conn: { current(): Promise<{ connection: { heartbeat: number } }> } }).conn.current()).connection.heartbeat);
    const ns = uniqueNamespace("heartbeat");
    expect(defaultHeartbeat).toBe(10);
    expect(await heartbeatOf(await connect(ns))).toBe(defaultHeartbeat);
    const named = (await createAmqpBackend(`${amqpUrl}${amqpUrl.includes("?") ? "&" : "?"}heartbeat=3`, { namespace: ns, taskRecordTtl: 600, debugChannel: `${ns}.debug` })) as AmqpBackend;
    opened.push(named);
    expect(await heartbeatOf(named)).toBe(3);
  });

  maybe("task() with the broker unreachable throws ConnectionError after its patience, and is not enqueued when the broker is back", async () => {
    const ns = uniqueNamespace("patience");
    namespaces.push(ns);
    const proxy = await brokerProxy();
    const cut = (await createAmqpBackend(proxy.url, { namespace: ns, taskRecordTtl: 600, debugChannel: `${ns}.debug`, publishPatienceMs: 1500 })) as AmqpBackend;
    const js = await open({ backend: cut, worker: false, log: () => {} });
    const reader = await connect(ns);
    try {
      const first = await js.task("echo", {}, 60);
      await proxy.cut();
      const began = Date.now();
      const err = await js.task("echo", {}, 60).catch((e) => e);
      const waited = Date.now() - began;
      expect(err).toBeInstanceOf(ConnectionError);
      expect(err.message).toMatch(/could not enqueue the task: no connection/);
      expect(waited).toBeGreaterThanOrEqual(1000);
      expect(waited).toBeLessThan(5000);
      await proxy.restore();
      await (cut as unknown as { conn: { current(): Promise<unknown> } }).conn.current();
      // Back on a new connection, tasks flow again, and the one given up on was never published.
      const second = await js.task("echo", {}, 60);
      expect(await reader.depth()).toBe(2);
      const queue = await amqp.connect(amqpUrl);
      try {
        const ch = await queue.createChannel();
        const ids: string[] = [];
        for (let msg = await ch.get(`${ns}.tasks.max-65535`, { noAck: false }); msg; msg = await ch.get(`${ns}.tasks.max-65535`, { noAck: false })) {
          ids.push((JSON.parse(msg.content.toString()) as QueuedTask).taskid);
        }
        expect(ids).toEqual([first, second]);
      } finally {
        await queue.close();
      }
    } finally {
      await js.close();
      await cut.close();
      await proxy.cut();
    }
  });

  maybe("a task whose worker died after its expire passed is still in the queue and runs again, as attempt 2", async () => {
    const ns = uniqueNamespace("rescuelate");
    const producer = await connect(ns);
    const t = task("echo", 1);
    await producer.push(t, 100);
    const first = await connect(ns);
    const [lease] = await first.take(1, withTimeout(5000));
    expect(await first.start([lease])).toEqual([{ started: true, attempt: 1 }]);
    await new Promise((resolve) => setTimeout(resolve, 1500)); // past its expire, still running
    await first.close(); // without finishing
    await expect.poll(() => producer.depth(), { timeout: 5000 }).toBe(1);
    const second = await connect(ns);
    const [again] = await second.take(1, withTimeout(5000));
    expect(again.task.taskid).toBe(t.taskid);
    expect(await second.start([again])).toEqual([{ started: true, attempt: 2 }]);
    await second.finish([{ lease: again, outcome: { status: "completed", results: [], completedAt: nowMs() } }]);
    expect(await producer.waitEnded(t.taskid, 5000)).toMatchObject({ status: "completed", attempt: 2 });
  });

  maybe("a full queue sheds the expired tasks at its head that never started, and then takes the new task", async () => {
    const ns = uniqueNamespace("shed");
    const producer = await connect(ns);
    const stale = [task("echo", 1), task("echo", 1)];
    for (const t of stale) await producer.push(t, 3);
    const waiting = task("echo", 60);
    await producer.push(waiting, 3);
    await expect(producer.push(task("echo", 60), 3)).rejects.toBeInstanceOf(QueueFullError);
    await new Promise((resolve) => setTimeout(resolve, 1200));
    const fresh = task("echo", 60);
    await producer.push(fresh, 3);
    expect(await producer.depth()).toBe(2);
    for (const t of stale) expect(await producer.record(t.taskid)).toMatchObject({ status: "expired" });
    // The shed ones are gone from the broker; the others are still in order.
    const worker = await connect(ns);
    const taken = await worker.take(2, withTimeout(5000));
    expect(taken.map((l) => l.task.taskid)).toEqual([waiting.taskid, fresh.taskid]);
    // The sweep said so in the records: the next refusal does not look at the head again.
    for (const t of stale) expect(storedStatus(producer, t.taskid)).toBe("expired");
  });

  maybe("a full queue with no expired task waiting refuses without taking its head out: put back, it could leave the queue over its cap", async () => {
    const ns = uniqueNamespace("nolook");
    const producer = await connect(ns);
    const head = task("echo", 60);
    await producer.push(head, 2);
    await producer.push(task("echo", 60), 2);
    for (let i = 0; i < 3; i++) await expect(producer.push(task("echo", 60), 2)).rejects.toBeInstanceOf(QueueFullError);
    const worker = await connect(ns);
    const [lease] = await worker.take(1, withTimeout(5000));
    expect(lease.task.taskid).toBe(head.taskid);
    expect((lease as unknown as { message: { fields: { redelivered: boolean } } }).message.fields.redelivered).toBe(false);
  });

  maybe("a worker that discards an expired task records it as expired, for every process", async () => {
    const ns = uniqueNamespace("discard");
    const producer = await connect(ns);
    const stale = task("echo", 1);
    await producer.push(stale, 10);
    await new Promise((resolve) => setTimeout(resolve, 1200));
    const worker = await connect(ns);
    const [lease] = await worker.take(1, withTimeout(5000));
    expect(await worker.start([lease])).toEqual([{ started: false, why: "expired" }]);
    await expect.poll(() => storedStatus(producer, stale.taskid), { timeout: 5000 }).toBe("expired");
    expect(await producer.record(stale.taskid)).toMatchObject({ status: "expired", completedAt: stale.createdAt + 1000 });
  });

  maybe("a worker that lost its connection mid-run reconnects, and its task is finished once", async () => {
    const ns = uniqueNamespace("reconnect");
    const w = await connect(ns);
    const t = task();
    await w.push(t, 100);
    const [lease] = await w.take(1, withTimeout(5000));
    await w.start([lease]);
    await dropConnection(w);
    await w.finish([{ lease, outcome: { status: "completed", results: [{ job: "j", status: "completed", value: 1 }], completedAt: nowMs() } }]);
    // The broker gave the unacknowledged task back; this worker gets it again and drops it as done.
    const [back] = await w.take(1, withTimeout(10_000));
    expect(back.task.taskid).toBe(t.taskid);
    expect(await w.start([back])).toEqual([{ started: false, why: "gone" }]);
    const reader = await connect(ns);
    expect(await reader.waitEnded(t.taskid, 5000)).toMatchObject({ status: "completed", attempt: 1, results: [{ value: 1 }] });
    await expect.poll(() => w.depth(), { timeout: 5000 }).toBe(0);
    // and new tasks flow on the new connection
    await w.push(task(), 100);
    expect(await w.take(1, withTimeout(5000))).toHaveLength(1);
  });

  maybe("an end reported by a worker presumed dead changes nothing once the task was rescued", async () => {
    const ns = uniqueNamespace("fence");
    const p = await connect(ns);
    const t = task();
    await p.push(t, 100);
    const stale = await connect(ns);
    const [old] = (await stale.take(1, withTimeout(5000))) as Lease[];
    await stale.start([old]);
    const rescuer = await connect(ns);
    // The rescuer is consuming already when the stale worker's connection drops: the task goes to it.
    const taking = rescuer.take(1, withTimeout(10_000));
    await new Promise((r) => setTimeout(r, 300));
    await dropConnection(stale);
    const [fresh] = await taking;
    expect(fresh.task.taskid).toBe(t.taskid);
    expect(await rescuer.start([fresh])).toEqual([{ started: true, attempt: 2 }]);
    await stale.finish([{ lease: old, outcome: { status: "failed", results: [], completedAt: nowMs() } }]);
    await rescuer.finish([{ lease: fresh, outcome: { status: "completed", results: [], completedAt: nowMs() } }]);
    for (const b of [p, stale, rescuer]) {
      await expect.poll(async () => (await b.record(t.taskid))?.status, { timeout: 5000 }).toBe("completed");
    }
  });

  maybe("tasks finished after one still running are acknowledged without it: only the running one is redelivered", async () => {
    const ns = uniqueNamespace("acks");
    const p = await connect(ns);
    const tasks = [task(), task(), task()];
    for (const t of tasks) await p.push(t, 100);
    const w = await connect(ns);
    const leases: Lease[] = [];
    while (leases.length < 3) leases.push(...(await w.take(3 - leases.length, withTimeout(5000))));
    await w.start(leases);
    const byId = new Map(leases.map((l) => [l.task.taskid, l]));
    const [slow, ...fast] = tasks.map((t) => byId.get(t.taskid)!);
    await w.finish(fast.map((lease) => ({ lease, outcome: { status: "completed", results: [], completedAt: nowMs() } })));
    await w.close(); // dies holding the slow one
    const other = await connect(ns);
    const [again] = await other.take(3, withTimeout(5000));
    expect(again.task.taskid).toBe(slow.task.taskid);
    expect(await other.take(3, withTimeout(1000))).toEqual([]);
  });

  maybe("a record that waits or runs past half task_record_ttl is appended again, so a late reader still finds it", async () => {
    const ns = uniqueNamespace("renew");
    const b = await connect(ns, { taskRecordTtl: 2 });
    const running = task();
    const waiting = task("echo", 60);
    await b.push(running, 100);
    const [lease] = await b.take(1, withTimeout(5000));
    expect(await b.start([lease])).toEqual([{ started: true, attempt: 1 }]);
    await b.push(waiting, 100);
    const since = nowMs();
    await new Promise((resolve) => setTimeout(resolve, 2600));

    // What a process would read once the stream's retention had let the first events go: only these.
    const conn = await amqp.connect(amqpUrl);
    const ch = await conn.createChannel();
    await ch.prefetch(100);
    const recent: RecordEvent[] = [];
    await ch.consume(`${ns}.records`, (msg) => {
      if (!msg) return;
      for (const ev of decodeBatch(msg.content)) if (ev.at > since + 500) recent.push(ev);
      ch.ack(msg);
    }, { arguments: { "x-stream-offset": "first" } });
    await new Promise((resolve) => setTimeout(resolve, 500));
    await conn.close();

    const rebuilt = (taskid: string) => recent.filter((ev) => ev.t === "snapshot" && ev.task.taskid === taskid).reduce(fold, undefined);
    expect(rebuilt(waiting.taskid)).toMatchObject({ status: "queued", attempt: 0, topic: "echo", expire: 60 });
    expect(rebuilt(running.taskid)).toMatchObject({ status: "started", attempt: 1 });
    expect(rebuilt(running.taskid)?.startedAt).toBeLessThan(since);

    // A snapshot never undoes an end that came before it.
    await b.finish([{ lease, outcome: { status: "completed", results: [], completedAt: nowMs() } }]);
    const ended = await b.waitEnded(running.taskid, 5000);
    expect(ended).toMatchObject({ status: "completed" });
    const snapshot = recent.find((ev) => ev.t === "snapshot" && ev.task.taskid === running.taskid)!;
    expect(fold({ ...ended!, touchedAt: nowMs() } as Parameters<typeof fold>[0], snapshot)).toMatchObject({ status: "completed" });
  }, 15_000);

  it("the stream's encoding gives back every event as it was written, times to the last bit", () => {
    const t = task();
    const bot = { ...task(), job: "bot", content: { text: "é", n: [1, null] }, createdAt: 5 };
    const at = nowMs();
    const events: RecordEvent[] = [
      { t: "queued", task: t, at },
      { t: "queued", task: bot, at: at + 0.001 },
      { t: "started", taskid: t.taskid, attempt: 1, at: nowMs() },
      { t: "ended", task: t, attempt: 1, at: nowMs(), outcome: { status: "completed", completedAt: nowMs(), results: [
        { job: "noop", status: "completed" }, { job: "v", status: "completed", value: null }, { job: "e", status: "failed", error: "boom at 1:2" },
      ] } },
      { t: "ended", task: bot, attempt: 2, at: nowMs(), outcome: { status: "failed", results: [], completedAt: nowMs(), warning: "tried twice" } },
      { t: "tried", taskid: t.taskid, attempt: 1, why: "its thread was ended", at: nowMs() },
      { t: "snapshot", task: t, attempt: 0, startedAt: undefined, at: nowMs() },
      { t: "snapshot", task: t, attempt: 2, startedAt: at - 3_600_000.123, at: nowMs() },
      { t: "refused", taskid: "r", at: 0.5 },
      { t: "expired", taskid: t.taskid, at: nowMs() },
      { t: "marker", id: "m", at: nowMs() },
    ];
    const body = encodeBatch(events);
    expect(decodeBatch(body)).toStrictEqual(events);
    expect(body.length).toBeLessThan(JSON.stringify(events).length / 2);
  });

  maybe("a batch of format 1 (before the version header) is folded; one of an unknown format is skipped, said once", async () => {
    const ns = uniqueNamespace("format");
    const errors: string[] = [];
    namespaces.push(ns);
    const b = await createAmqpBackend(amqpUrl, { namespace: ns, taskRecordTtl: 600, debugChannel: `${ns}.debug`, onError: (err) => errors.push((err as Error).message) });
    opened.push(b);
    const old = task();
    const conn = await amqp.connect(amqpUrl);
    const ch = await conn.createConfirmChannel();
    const send = (body: unknown, headers: Record<string, unknown>) =>
      new Promise((resolve, reject) => ch.sendToQueue(`${ns}.records`, Buffer.from(JSON.stringify(body)), { headers }, (err) => (err ? reject(err) : resolve(undefined))));
    await send({ origin: "old", batch: 1, events: [{ t: "queued", task: old, at: nowMs() }] }, { origin: "old", batch: 1 });
    const future = task();
    for (const batch of [1, 2]) await send({ events: [{ t: "queued", task: future, at: nowMs() }] }, { v: formatVersion + 1, origin: "new", batch });
    await conn.close();
    expect(await b.record(old.taskid)).toMatchObject({ status: "queued", topic: "echo" });
    expect(await b.record(future.taskid)).toBeUndefined();
    expect(errors).toEqual([expect.stringContaining(`format ${formatVersion + 1}, which this jobshell (format ${formatVersion}) cannot read`)]);
  });

  it("folds a discard as expired only into a record still queued: a start it did not know of wins", () => {
    const t = task("echo", 5);
    const queued = fold(undefined, { t: "queued", task: t, at: t.createdAt });
    expect(fold({ ...queued! }, { t: "expired", taskid: t.taskid, at: t.createdAt + 9000 })).toMatchObject({
      status: "expired",
      results: [],
      completedAt: t.createdAt + 5000,
    });
    const started = fold({ ...queued! }, { t: "started", taskid: t.taskid, attempt: 1, at: t.createdAt + 10 });
    expect(fold({ ...started! }, { t: "expired", taskid: t.taskid, at: t.createdAt + 9000 })).toMatchObject({ status: "started", attempt: 1 });
    // The discard read before the task's queued event: the task stays expired.
    const early = fold(undefined, { t: "expired", taskid: t.taskid, at: t.createdAt + 9000 });
    expect(fold(early, { t: "queued", task: t, at: t.createdAt })).toMatchObject({ status: "expired", topic: "echo" });
  });
});
