// Redis mode beyond the contract suite: what an operator sees in Redis. Run on one server and on a
// Redis Cluster (REDIS_CLUSTER_URL, started by scripts/redis-cluster.sh; under CI a missing cluster
// fails), read through an inspector that takes either; what only a single server has is apart, at the end.
import { afterAll, beforeAll, describe, expect } from "vitest";
import { createRedisBackend, deleteRedisNamespace, scriptText, type RedisBackend } from "../../src/backends/redis/index.js";
import { ConnectionError, ParameterError } from "../../src/errors.js";
import { open, type JobShell } from "../../src/jobshell.js";
import { newTask } from "../../src/task.js";
import { backends, itWhen, redisClusterUrl, redisUrl, requireServer, uniqueNamespace } from "../each-backend.js";
import { keysOf, redisInspector, type Inspector } from "./redis-inspector.js";
import { startRedisServer, type OwnRedis } from "./redis-server.js";

const deployments = [
  { name: "redis", url: redisUrl },
  { name: "redis-cluster", url: redisClusterUrl },
];
/** The deployment the running describe block tests: the helpers below open and read there. */
let target = redisUrl;
const namespaces: { url: string; namespace: string }[] = [];
const closers: { close(): Promise<void> }[] = [];

afterAll(async () => {
  for (const c of closers.reverse()) await c.close().catch(() => {});
  // A server of a test's own is gone by then, and its namespaces with it.
  for (const { url, namespace } of namespaces) await deleteRedisNamespace(url, namespace).catch(() => {});
});

async function shell(namespace: string, taskRecordTtl: number, url = target): Promise<JobShell> {
  const backend = await createRedisBackend(url, { namespace, taskRecordTtl, debugChannel: `${namespace}.debug` });
  const js = await open({ backend, log: () => {} });
  closers.push(backend, js);
  return js;
}

/** A namespace of its own for one test, deleted after the tests. */
function newNamespace(label: string, url = target): string {
  const namespace = uniqueNamespace(label);
  namespaces.push({ url, namespace });
  return namespace;
}

/** A plain client to look at the server as an operator would with redis-cli; closed after the tests. */
function inspector(url = target): Inspector {
  const redis = redisInspector(url);
  closers.push({ close: async () => void redis.disconnect() });
  return redis;
}

async function keyCount(redis: Inspector, namespace: string): Promise<number> {
  return (await keysOf(redis, namespace)).length;
}

/** A process without a worker, on a namespace of its own. */
async function producerOnly(label: string, taskRecordTtl = 60): Promise<{ producer: JobShell; namespace: string }> {
  const namespace = newNamespace(label);
  const backend = await createRedisBackend(target, { namespace, taskRecordTtl, debugChannel: `${namespace}.debug` });
  const producer = await open({ backend, worker: false, log: () => {} });
  closers.push(backend, producer);
  backendOf.set(producer, backend);
  return { producer, namespace };
}

/** The backend each producer of producerOnly() was opened on. */
const backendOf = new WeakMap<JobShell, object>();

/** A task that ended `expired` by being read after its expire: its record is listed for deletion. */
async function endedByReading(producer: JobShell): Promise<string> {
  const id = await producer.task("noop", {}, 0.05);
  await new Promise((resolve) => setTimeout(resolve, 100));
  expect((await producer.record(id))?.status).toBe("expired");
  return id;
}

/** The backends of two processes on a namespace of their own, an inspector, and the namespace's key prefix. */
async function twoBackends(label: string): Promise<{ backends: RedisBackend[]; redis: Inspector; p: string }> {
  const namespace = newNamespace(label);
  const options = { namespace, taskRecordTtl: 60, debugChannel: `${namespace}.debug` };
  const backends = (await Promise.all([createRedisBackend(target, options), createRedisBackend(target, options)])) as RedisBackend[];
  closers.push(...backends);
  return { backends, redis: inspector(), p: `{${namespace}}:` };
}

/** The heartbeat of worker `dead` lapses (a long pause, a partition), and a live worker rescues its
 *  Backup with the rescue script, in one step. Returns how many tasks were rescued. */
async function rescueFrom(redis: Inspector, p: string, dead: string): Promise<number> {
  const [, [, rescued]] = (await redis
    .multi()
    .del(`${p}alive:${dead}`)
    .eval(scriptText("rescue-dead-worker"), 6, `${p}backup:${dead}`, `${p}recovery`, `${p}alive:${dead}`, `${p}workers`, `${p}idle`, `${p}deletions`,
      p, dead, `${p}ended`, Date.now(), Date.now() + 60_000, 3)
    .exec())!;
  return rescued as number;
}

/** A process with a worker, listed as idle once it has found nothing to take, and one without. */
async function idleWorkerAndProducer(label: string, jobs: string, url = target) {
  const namespace = newNamespace(label, url);
  const options = { namespace, taskRecordTtl: 60, debugChannel: `${namespace}.debug` };
  const workerBackend = (await createRedisBackend(url, options)) as RedisBackend;
  const worker = await open({ backend: workerBackend, log: () => {} });
  const producerBackend = await createRedisBackend(url, options);
  const producer = await open({ backend: producerBackend, worker: false, log: () => {} });
  closers.push(workerBackend, worker, producerBackend, producer);
  backendOf.set(worker, workerBackend).set(producer, producerBackend);
  await worker.upload(jobs);
  const redis = inspector(url);
  const p = `{${namespace}}:`;
  const me = workerBackend.workerId;
  // Finding nothing to take, the worker lists itself as idle, with all its slots free.
  await expect.poll(() => redis.hget(`${p}idle`, me), { timeout: 5000 }).toMatch(/^32:\d+$/);
  return { worker, producer, redis, p, me };
}

/** A worker of another process ends a task: its record, then its outcome on the ended channel. */
async function endElsewhere(redis: Inspector, p: string, taskid: string): Promise<void> {
  const now = Date.now();
  await redis.hset(`${p}task:${taskid}`, "status", "completed", "startedAt", now, "completedAt", now, "attempt", 1, "results", "[]");
  await redis.publish(`${p}ended`, JSON.stringify(["elsewhere", [taskid, "completed", now, now, 1, [], ""]]));
}

/** The parts of a producer's Redis backend that waiting is made of, for tests that step between them. */
interface WaitingParts {
  records: {
    listenForEnds(): Promise<void>;
    heard(message: string): void;
    outstanding: number;
    inFlight: Set<unknown>;
    waiters: { size: number };
    fresh: Map<string, unknown>;
  };
  scripts: { readRecords(keys: string[], args: (string | number)[]): Promise<string> };
}
const partsOf = (js: JobShell) => backendOf.get(js) as unknown as WaitingParts;

/** Counts the read script calls of a backend from now on. */
function countReads(js: JobShell): { calls: number } {
  const { scripts } = partsOf(js);
  const read = scripts.readRecords.bind(scripts);
  const counter = { calls: 0 };
  scripts.readRecords = (keys, args) => {
    counter.calls += 1;
    return read(keys, args);
  };
  return counter;
}

for (const deployment of deployments) {
  describe(`Redis mode on ${deployment.name}`, () => {
    let ready = false;
    beforeAll(async () => {
      ready = await requireServer(backends.find((b) => b.name === deployment.name)!);
      target = deployment.url!;
    });
    const maybe = itWhen(() => ready, 120_000);

    maybe("a lease is held by one process at a time, and passes on when released or not renewed", async () => {
      const namespace = newNamespace("lease");
      const options = { namespace, taskRecordTtl: 60, debugChannel: `${namespace}.debug` };
      const a = await createRedisBackend(target, options);
      const b = await createRedisBackend(target, options);
      closers.push(a, b);
      expect(await a.claim!("slack-bot:x", "a", 1)).toBe(true);
      expect(await a.claim!("slack-bot:x", "a", 1)).toBe(true); // renewing
      expect(await b.claim!("slack-bot:x", "b", 1)).toBe(false);
      await a.release!("slack-bot:x", "a");
      expect(await b.claim!("slack-bot:x", "b", 1)).toBe(true);
      expect(await a.claim!("slack-bot:x", "a", 1)).toBe(false);
      await expect.poll(() => a.claim!("slack-bot:x", "a", 1), { timeout: 5000, interval: 200 }).toBe(true);
    });

    maybe("keeps every key of a queue under its prefix as hash tag, and the key count returns to a constant", async () => {
      const namespace = newNamespace("keys");
      const js = await shell(namespace, 1);
      await js.upload(`- {name: noop, topics: [noop], script: "return 1"}`);
      const redis = inspector();
      const ids = await Promise.all(Array.from({ length: 5000 }, () => js.task("noop", {}, 60)));
      await Promise.all(ids.map((id) => js.waitfor(id, 60)));
      expect(await keyCount(redis, namespace)).toBeGreaterThan(1000);
      // Past task_record_ttl only the queue's fixed keys are left: the job hash, the worker set, its
      // heartbeat, and the idle workers (this one, waiting for tasks).
      await expect.poll(() => keyCount(redis, namespace), { timeout: 10_000, interval: 250 }).toBeLessThanOrEqual(4);
      const keys = await keysOf(redis, namespace);
      expect(keys.sort()).toEqual(
        [`{${namespace}}:jobs`, `{${namespace}}:workers`, `{${namespace}}:idle`, expect.stringMatching(/:alive:/)].sort(),
      );
    });

    maybe("a task comes out of a take exactly as it went in: quotes, slashes, non-ASCII, numbers", async () => {
      const namespace = newNamespace("roundtrip");
      const backend = await createRedisBackend(target, { namespace, taskRecordTtl: 60, debugChannel: `${namespace}.debug` });
      closers.push(backend);
      const task = {
        taskid: "0123456789abcdef0123456789abcdef",
        topic: 'say "hi"/\\ bye ✓',
        content: { text: "line\nnext \u0000 ✓ 日本", n: 1.5e-7, big: 12345678901234567, list: [null, true, { "a/b": "c\"d" }] },
        expire: 0.25 + 60,
        createdAt: Math.floor(Date.now()) + 0.4567,
        job: "j/ö",
      };
      await backend.push(task, 10);
      const [lease] = await backend.take(1, new AbortController().signal);
      expect(lease.task).toEqual(task);
      expect((await backend.start([lease]))[0]).toEqual({ started: true, attempt: 1 });
    });

    maybe("a record lives as long as its taskid is in a list, then task_record_ttl from its end, then is deleted", async () => {
      const { producer, namespace } = await producerOnly("record-ttl", 1);
      await producer.upload(`- {name: noop, topics: [noop], script: "return 1"}`);
      const redis = inspector();
      const p = `{${namespace}}:`;
      const exists = (taskid: string) => redis.exists(`${p}task:${taskid}`);
      // Waiting in Normal, for longer than task_record_ttl: no time to live, so it cannot vanish before a
      // worker takes it.
      const waiting = await producer.task("noop", {}, 60);
      // Expired by reading it after its expire: it has ended, so it is listed for deletion.
      const lapsing = await endedByReading(producer);
      const [due] = await redis.zrange(`${p}deletions`, "0", "-1");
      expect(await redis.lrange(`${p}deletions:${due}`, 0, -1)).toEqual([lapsing]);
      expect(await redis.pttl(`${p}task:${lapsing}`)).toBe(-1);
      // Deleted by the queue's processes between task_record_ttl and a bucket (50 ms here) and a sweep later.
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect(await exists(lapsing)).toBe(1);
      await expect.poll(() => exists(lapsing), { timeout: 3000, interval: 50 }).toBe(0);
      expect(await exists(waiting)).toBe(1);
      // Run by a worker: deleted task_record_ttl after its end, and the deletions set with it.
      const worker = await shell(namespace, 1);
      const done = await worker.waitfor(waiting, 10);
      expect(done.status).toBe("completed");
      const ended = Date.now();
      await expect.poll(() => exists(waiting), { timeout: 3000, interval: 50 }).toBe(0);
      expect(Date.now() - ended).toBeGreaterThanOrEqual(900);
      expect(await redis.exists(`${p}deletions`)).toBe(0);
    });

    maybe("ended records stay while no process of the queue runs, and the next one to start deletes those due", async () => {
      const namespace = newNamespace("sweep-later");
      const options = { namespace, taskRecordTtl: 0.3, debugChannel: `${namespace}.debug` };
      const redis = inspector();
      const first = await createRedisBackend(target, options);
      const producer = await open({ backend: first, worker: false, log: () => {} });
      const id = await endedByReading(producer);
      await producer.close();
      await first.close();
      // Past due, with no process to delete it.
      await new Promise((resolve) => setTimeout(resolve, 800));
      expect(await redis.exists(`{${namespace}}:task:${id}`)).toBe(1);
      const next = await createRedisBackend(target, options);
      closers.push(next);
      await expect.poll(() => redis.exists(`{${namespace}}:task:${id}`), { timeout: 2000, interval: 25 }).toBe(0);
      expect(await redis.exists(`{${namespace}}:deletions`)).toBe(0);
    });

    maybe("each process's records are deleted after its own task_record_ttl, on a queue shared with another ttl", async () => {
      const namespace = newNamespace("mixed-ttl");
      const redis = inspector();
      const ended = async (taskRecordTtl: number) => {
        const backend = await createRedisBackend(target, { namespace, taskRecordTtl, debugChannel: `${namespace}.debug` });
        const producer = await open({ backend, worker: false, log: () => {} });
        closers.push(backend, producer);
        return endedByReading(producer);
      };
      // Both end at about the same time (most often in the same 50 ms bucket), but are due 0.3 s and 3 s after.
      const [short, long] = await Promise.all([ended(0.3), ended(3)]);
      await expect.poll(() => redis.exists(`{${namespace}}:task:${short}`), { timeout: 2000, interval: 25 }).toBe(0);
      expect(await redis.exists(`{${namespace}}:task:${long}`)).toBe(1);
    });

    maybe("shows the three queues to redis-cli: Normal holds what waits, Backup what a worker holds", async () => {
      const namespace = newNamespace("lists");
      const producer = await shell(namespace, 600);
      await producer.upload(`- {name: hold, topics: [hold], script: "await sleep(1.5)"}`);
      const redis = inspector();
      const p = `{${namespace}}:`;
      // No worker in this process: tasks wait in Normal.
      await producer.close();
      const backend = await createRedisBackend(target, { namespace, taskRecordTtl: 600, debugChannel: `${namespace}.debug` });
      const issuer = await open({ backend, worker: false, log: () => {} });
      closers.push(backend, issuer);
      const ids = await Promise.all(Array.from({ length: 5 }, () => issuer.task("hold", {}, 60)));
      expect(await redis.lrange(`${p}normal`, 0, -1)).toEqual(ids);
      // A worker with bulk 2 moves two of them into its Backup list while it runs them.
      const workerBackend = await createRedisBackend(target, { namespace, taskRecordTtl: 600, debugChannel: `${namespace}.debug` });
      const worker = await open({ backend: workerBackend, jobQueueBulkReadSize: 2, log: () => {} });
      closers.push(workerBackend, worker);
      await expect.poll(() => redis.llen(`${p}normal`), { timeout: 5000 }).toBe(3);
      expect(await redis.lrange(`${p}backup:${(workerBackend as unknown as { workerId: string }).workerId}`, 0, -1)).toEqual(ids.slice(0, 2));
      expect(await redis.hget(`${p}task:${ids[0]}`, "status")).toBe("started");
      const records = await Promise.all(ids.map((id) => issuer.waitfor(id, 30)));
      expect(records.map((r) => r.status)).toEqual(ids.map(() => "completed"));
      expect(await redis.llen(`${p}normal`)).toBe(0);
    });

    maybe("tasks issued in one step, more than one push carries, wait in Normal in the order issued", async () => {
      const { producer, namespace } = await producerOnly("push-chunks");
      const ids = await Promise.all(Array.from({ length: 2500 }, (_, n) => producer.task("noop", { n }, 60)));
      expect(await inspector().lrange(`{${namespace}}:normal`, 0, -1)).toEqual(ids);
    });

    maybe("a queued record has no attempt field until it is first started, and reads as attempt 0", async () => {
      const { producer, namespace } = await producerOnly("queued-attempt");
      const id = await producer.task("noop", {}, 60);
      const key = `{${namespace}}:task:${id}`;
      expect(Object.keys(await inspector().hgetall(key)).sort()).toEqual(["createdAt", "expire", "status", "task"]);
      expect(await producer.record(id)).toMatchObject({ status: "queued", attempt: 0 });
    });

    maybe("a waiting worker of another process is woken, never handed a task: one that died meanwhile holds none", async () => {
      const { producer, namespace } = await producerOnly("wake-not-hand");
      const redis = inspector();
      const p = `{${namespace}}:`;
      // A worker listed idle whose heartbeat still runs, as for up to its ttl after a kill -9.
      await redis.multi().hset(`${p}idle`, "died-just-now", "32:7").set(`${p}alive:died-just-now`, "1", "PX", 10_000).exec();
      const inbox = inspector();
      const woken: string[] = [];
      inbox.on("message", (_channel: string, message: string) => woken.push(message));
      await inbox.subscribe(`${p}inbox:died-just-now`);
      const id = await producer.task("noop", {}, 1);
      expect(await redis.lrange(`${p}normal`, 0, -1)).toEqual([id]);
      expect(await redis.hget(`${p}task:${id}`, "status")).toBe("queued");
      expect(await redis.exists(`${p}backup:died-just-now`, `${p}idle`)).toBe(0);
      await expect.poll(() => woken, { timeout: 2000 }).toEqual(["[7]"]);
      // Nobody takes it: it ends expired on time, as with no worker at all.
      expect(await producer.waitfor(id, 5)).toMatchObject({ status: "expired", attempt: 0 });
    });

    maybe("a batch of waiters, one of whose tasks ends between their subscription and their read, sees that end at once", async () => {
      const { producer, namespace } = await producerOnly("end-before-read");
      const redis = inspector();
      const p = `{${namespace}}:`;
      const ids = await Promise.all(Array.from({ length: 10 }, () => producer.task("nobody", {}, 60)));
      const { records } = partsOf(producer);
      const listen = records.listenForEnds.bind(records);
      records.listenForEnds = async () => {
        await listen();
        await endElsewhere(redis, p, ids[3]);
      };
      const began = Date.now();
      const outcomes = await Promise.all(ids.map((id) => producer.waitfor(id, 1.5).then((r) => [r.status, Date.now() - began], (err) => [err.code, err.lastStatus])));
      expect(outcomes[3][0]).toBe("completed");
      expect(outcomes[3][1]).toBeLessThan(1000); // the read saw it, not a later look
      expect(outcomes.filter((_, i) => i !== 3)).toEqual(Array(9).fill(["TIMEOUT", "queued"]));
      // Nothing of the waiters stays.
      await expect.poll(() => [records.outstanding, records.waiters.size, records.inFlight.size], { timeout: 1000 }).toEqual([0, 0, 0]);
    });

    maybe("an end heard while the read is on its way answers the waiter, though the read saw the task queued", async () => {
      const { producer, namespace } = await producerOnly("end-during-read");
      const redis = inspector();
      const p = `{${namespace}}:`;
      const [target, other] = await Promise.all([producer.task("nobody", {}, 60), producer.task("nobody", {}, 60)]);
      const { scripts } = partsOf(producer);
      const read = scripts.readRecords.bind(scripts);
      scripts.readRecords = async (keys, args) => {
        const reply = await read(keys, args);
        // The read has run; the end comes, and is heard, before its reply is looked at.
        await endElsewhere(redis, p, target);
        await new Promise((resolve) => setTimeout(resolve, 100));
        return reply;
      };
      const [ended, timedOut] = await Promise.allSettled([producer.waitfor(target, 1.5), producer.waitfor(other, 1)]);
      expect(ended).toMatchObject({ status: "fulfilled", value: { status: "completed", attempt: 1 } });
      expect(timedOut).toMatchObject({ status: "rejected", reason: { code: "TIMEOUT", lastStatus: "queued" } });
    });

    maybe("a task pushed while its process hears the ends needs no read, also when it ended before waitfor()", async () => {
      const { worker, producer } = await idleWorkerAndProducer("fresh", `- {name: noop, topics: [noop], script: "return task.content.i"}`);
      // Waiting once subscribes the producer to the ends.
      await producer.waitfor(await producer.task("noop", { i: -1 }, 60), 10);
      const reads = countReads(producer);
      const ids = await Promise.all(Array.from({ length: 50 }, (_, i) => producer.task("noop", { i }, 60)));
      await expect.poll(() => worker.metrics.totals().completed, { timeout: 10_000 }).toBe(51);
      const records = await Promise.all(ids.map((id) => producer.waitfor(id, 10)));
      expect(records.map((r) => [r.status, r.results[0].value])).toEqual(ids.map((_, i) => ["completed", i]));
      expect(records.every((r) => r.attempt === 1 && typeof r.startedAt === "string" && r.content.i >= 0)).toBe(true);
      expect(reads.calls).toBe(0);
      // Known to have ended, each was handed to its waiter and forgotten.
      expect(partsOf(producer).records.fresh.size).toBe(0);
    });

    maybe("a task pushed while a worker of another process waits is taken by it at once, and run", async () => {
      const { worker, producer, redis, p, me } = await idleWorkerAndProducer("wake", `- {name: noop, topics: [noop], script: "return 1"}`);
      const started = Date.now();
      const id = await producer.task("noop", {}, 60);
      expect(await producer.waitfor(id, 10)).toMatchObject({ status: "completed", attempt: 1, results: [{ value: 1 }] });
      expect(Date.now() - started).toBeLessThan(900); // woken, not found by its once-a-second look
      expect(await redis.hget(`${p}task:${id}`, "owner")).toBe(me);
      // A worker that stops is no longer listed.
      await expect.poll(() => redis.hexists(`${p}idle`, me), { timeout: 5000 }).toBe(1);
      await worker.close();
      expect(await redis.hexists(`${p}idle`, me)).toBe(0);
    });

    maybe("a worker's ends are published while a process other than its own listens, not for its own", async () => {
      const { worker, producer, me } = await idleWorkerAndProducer("own-ends", `- {name: noop, topics: [noop], script: "return 1"}`);
      const records = partsOf(worker).records;
      const heard: string[] = [];
      const hear = records.heard.bind(records);
      records.heard = (message) => {
        heard.push(message);
        hear(message);
      };
      await records.listenForEnds();
      expect(await worker.waitfor(await worker.task("noop", {}, 60), 10)).toMatchObject({ status: "completed" });
      // Its own process is told by the worker itself; a cluster publishes every end (a waiter may
      // listen on another node).
      if (deployment.name === "redis") expect(heard).toEqual([]);
      // Both listen: the other process's waiter is told at once, not by its look every 2 s.
      await records.listenForEnds();
      await partsOf(producer).records.listenForEnds();
      const began = Date.now();
      expect(await producer.waitfor(await producer.task("noop", {}, 60), 10)).toMatchObject({ status: "completed" });
      expect(Date.now() - began).toBeLessThan(1500);
      await expect.poll(() => heard.some((message) => message.startsWith(`[${JSON.stringify(me)},`)), { timeout: 1000 }).toBe(true);
    });

    maybe("round trips to a worker of another process are never left to its once-a-second look", async () => {
      const { producer } = await idleWorkerAndProducer("wake-race", `- {name: noop, topics: [noop], script: "return 1"}`);
      // A push's wake-up may reach the worker before the answer of the take that listed it as idle.
      const slow: number[] = [];
      for (let i = 0; i < 300; i++) {
        const began = Date.now();
        await producer.waitfor(await producer.task("noop", {}, 60), 10);
        if (Date.now() - began >= 900) slow.push(i);
      }
      expect(slow).toEqual([]);
    });

    maybe("tasks that end out of the order they were taken leave Backup each when it ends, the others stay", async () => {
      const { producer, redis, p, me } = await idleWorkerAndProducer("backup-order", `- {name: nap, topics: [nap], script: "await sleep(task.content.s)"}`);
      const [a, b, c, d] = await Promise.all([1.2, 0.1, 0.7, 0.4].map((s) => producer.task("nap", { s }, 60)));
      // The push wakes the worker, whose take moves them into its Backup.
      await expect.poll(() => redis.lrange(`${p}backup:${me}`, 0, -1), { timeout: 2000, interval: 5 }).toEqual([a, b, c, d]);
      await producer.waitfor(b, 10);
      expect(await redis.lrange(`${p}backup:${me}`, 0, -1)).toEqual([a, c, d]);
      await producer.waitfor(d, 10);
      expect(await redis.lrange(`${p}backup:${me}`, 0, -1)).toEqual([a, c]);
      await producer.waitfor(c, 10);
      expect(await redis.lrange(`${p}backup:${me}`, 0, -1)).toEqual([a]);
      expect(await producer.waitfor(a, 10)).toMatchObject({ status: "completed" });
      expect(await redis.exists(`${p}backup:${me}`)).toBe(0);
    });

    maybe("a record holds a warning only when its outcome has one, and no copy of its taskid", async () => {
      const { producer, redis, p } = await idleWorkerAndProducer("record-fields", `- {name: noop, topics: [noop], script: "return 1"}`);
      const ran = await producer.task("noop", {}, 60);
      const unhandled = await producer.task("nobody-listens", {}, 60);
      expect(await producer.waitfor(ran, 10)).toMatchObject({ taskid: ran, status: "completed", results: [{ value: 1 }] });
      expect(Object.keys(await redis.hgetall(`${p}task:${ran}`)).sort()).toEqual(
        ["task", "expire", "createdAt", "status", "attempt", "startedAt", "owner", "completedAt", "results"].sort(),
      );
      const record = await producer.waitfor(unhandled, 10);
      expect(record).toMatchObject({ taskid: unhandled, status: "completed", warning: "no job handles topic nobody-listens" });
      expect(await redis.hget(`${p}task:${unhandled}`, "warning")).toBe("no job handles topic nobody-listens");
      expect(await producer.record(ran)).toMatchObject({ taskid: ran, status: "completed" });
    });

    maybe("ends are published to whoever subscribes to the ended channel: one JSON message a batch, with its worker", async () => {
      const { producer, p } = await idleWorkerAndProducer("ended-channel", `- {name: noop, topics: [noop], script: "return 1"}`);
      const listener = inspector();
      const messages: string[] = [];
      listener.on("message", (_channel: string, message: string) => messages.push(message));
      await listener.subscribe(`${p}ended`);
      const topic = 'odd "topic" / é';
      const [ran, unhandled] = await Promise.all([producer.task("noop", {}, 60), producer.task(topic, {}, 60)]);
      const records = [await producer.waitfor(ran, 10), await producer.waitfor(unhandled, 10)];
      // [the worker's id, ...outcomes]
      const outcomesIn = (m: string) => (JSON.parse(m) as [string, ...unknown[][]]).slice(1) as unknown[][];
      await expect.poll(() => messages.flatMap(outcomesIn).length, { timeout: 2000 }).toBe(2);
      for (const m of messages) expect(typeof (JSON.parse(m) as unknown[])[0]).toBe("string");
      // In the order the tasks were issued: the one without a job may end first.
      const order = [ran, unhandled];
      const outcomes = messages.flatMap(outcomesIn).sort((a, b) => order.indexOf(a[0] as string) - order.indexOf(b[0] as string));
      // [taskid, status, completedAt, startedAt, attempt, results, warning], times in epoch ms
      expect(outcomes.map(([id, status, , , attempt, results, warning]) => [id, status, attempt, results, warning])).toEqual(
        records.map((r) => [r.taskid, r.status, r.attempt, r.results, r.warning ?? ""]),
      );
      expect(outcomes.map((o) => [Math.floor(o[2] as number), Math.floor(o[3] as number)])).toEqual(
        records.map((r) => [Date.parse(r.completedAt as string), Date.parse(r.startedAt as string)]),
      );
      expect(outcomes[1][6]).toBe(`no job handles topic ${topic}`);
    });

    maybe("a task issued in a process whose worker is idle is claimed by that worker: started by the push", async () => {
      const { worker, redis, p, me } = await idleWorkerAndProducer("claim", `
  - {name: hold, topics: [hold], script: "await sleep(1)"}
  - {name: noop, topics: [noop], script: "return 1"}`);
      await worker.waitfor(await worker.task("noop", {}, 60), 10); // claims need a push script the server has run
      await expect.poll(() => redis.hget(`${p}idle`, me), { timeout: 5000 }).toMatch(/^\d+:\d+$/);
      const [free, listing] = (await redis.hget(`${p}idle`, me))!.split(":");
      const id = await worker.task("hold", {}, 60);
      // Started as the push stored it: this worker runs it without waiting for the push's answer.
      expect(await redis.hmget(`${p}task:${id}`, "status", "attempt", "owner")).toEqual(["started", "1", me]);
      expect(await redis.llen(`${p}normal`)).toBe(0);
      expect(await redis.lrange(`${p}backup:${me}`, 0, -1)).toEqual([id]);
      // The listing it held lost the slot (unless the once-a-second look renewed it meanwhile).
      const [freeNow, listingNow] = (await redis.hget(`${p}idle`, me))!.split(":");
      if (listingNow === listing) expect(Number(freeNow)).toBe(Number(free) - 1);
      expect(await worker.waitfor(id, 10)).toMatchObject({ status: "completed", attempt: 1 });
    });

    maybe("an idle worker whose heartbeat has lapsed is passed over: the task waits in Normal", async () => {
      const { producer, namespace } = await producerOnly("handover-dead");
      const redis = inspector();
      const p = `{${namespace}}:`;
      await redis.hset(`${p}idle`, "gone-worker", "32:1");
      const id = await producer.task("noop", {}, 60);
      expect(await redis.lrange(`${p}normal`, 0, -1)).toEqual([id]);
      expect(await redis.hget(`${p}task:${id}`, "status")).toBe("queued");
      expect(await redis.exists(`${p}backup:gone-worker`, `${p}idle`)).toBe(0);
    });

    maybe("a worker presumed dead that comes back cannot finish a task rescued from it, nor touch its record", async () => {
      const { backends: [late, rescuer], redis, p } = await twoBackends("fence");
      const signal = new AbortController().signal;
      const task = newTask("noop", {}, 60);
      await late.push(task, 100);
      const [first] = await late.take(32, signal);
      expect(first.task.taskid).toBe(task.taskid);
      // Its heartbeat lapses: a live worker rescues its Backup.
      const dead = late.workerId;
      expect(await rescueFrom(redis, p, dead)).toBe(1);
      const [second] = await rescuer.take(32, signal);
      expect(second.task.taskid).toBe(task.taskid);
      const outcome = (value: string) => ({ status: "completed" as const, completedAt: Date.now(), results: [{ job: "noop", status: "completed" as const, value }] });
      // The late worker finishes its run: refused, the record and both Backup lists untouched.
      await late.finish([{ lease: first, outcome: outcome("late") }]);
      expect(await redis.hmget(`${p}task:${task.taskid}`, "status", "attempt", "owner", "results")).toEqual(["started", "2", rescuer.workerId, null]);
      expect(await redis.lrange(`${p}backup:${rescuer.workerId}`, 0, -1)).toEqual([task.taskid]);
      expect(await redis.ttl(`${p}task:${task.taskid}`)).toBe(-1);
      await rescuer.finish([{ lease: second, outcome: outcome("rescuer") }]);
      expect(await rescuer.record(task.taskid)).toMatchObject({ status: "completed", attempt: 2, results: [{ value: "rescuer" }] });
      expect(await redis.exists(`${p}backup:${rescuer.workerId}`, `${p}backup:${dead}`, `${p}recovery`, `${p}normal`)).toBe(0);
    });

    maybe("a task whose workers died under it max_attempts times ends failed, its warning naming each try", async () => {
      const { backends: [a, b], redis, p } = await twoBackends("poison");
      const signal = new AbortController().signal;
      const task = newTask("noop", {}, 60);
      await a.push(task, 100);
      // Taken three times, each worker presumed dead with it: the first two go back to Recovery.
      for (const [i, worker] of [a, b, a].entries()) {
        const [lease] = await worker.take(32, signal);
        expect(lease.task.taskid).toBe(task.taskid);
        expect(await rescueFrom(redis, p, worker.workerId)).toBe(i < 2 ? 1 : 0);
      }
      const record = await b.record(task.taskid);
      expect(record).toMatchObject({ status: "failed", attempt: 3, results: [] });
      expect(record?.warning).toBe(
        "tried 3 times (max_attempts 3), each try ended before its scripts did: " +
          [a, b, a].map((w, i) => `attempt ${i + 1}: its worker ${w.workerId} stopped answering (its heartbeat lapsed)`).join("; "),
      );
      expect(await redis.exists(`${p}recovery`, `${p}normal`, `${p}backup:${a.workerId}`, `${p}backup:${b.workerId}`)).toBe(0);
    });

    maybe("tasks given back go to the head of Normal, in order, their start undone: the attempt not counted", async () => {
      const { backends: [first, second], redis, p } = await twoBackends("give-back");
      const signal = new AbortController().signal;
      const [once, never, behind] = [1, 2, 3].map((n) => newTask("noop", { n }, 60));
      for (const task of [once, never, behind]) await first.push(task, 100);
      // `once` was started before: taken, then rescued from its worker.
      const [taken] = await first.take(1, signal);
      expect(taken.task.taskid).toBe(once.taskid);
      expect(await rescueFrom(redis, p, first.workerId)).toBe(1);
      const leases = await second.take(2, signal);
      expect(leases.map((l) => l.task.taskid)).toEqual([once.taskid, never.taskid]);
      expect(await second.start(leases)).toEqual([{ started: true, attempt: 2 }, { started: true, attempt: 1 }]);
      await second.giveBack(leases);
      expect(await redis.lrange(`${p}normal`, 0, -1)).toEqual([once.taskid, never.taskid, behind.taskid]);
      expect(await redis.exists(`${p}backup:${second.workerId}`)).toBe(0);
      expect(await redis.hmget(`${p}task:${once.taskid}`, "status", "attempt", "owner", "startedAt")).toEqual(["queued", "1", null, null]);
      expect(await redis.hmget(`${p}task:${never.taskid}`, "status", "attempt", "owner", "startedAt")).toEqual(["queued", "0", null, null]);
      const again = await first.take(3, signal);
      expect(again.map((l) => [l.task.taskid, l.task.content])).toEqual([[once.taskid, { n: 1 }], [never.taskid, { n: 2 }], [behind.taskid, { n: 3 }]]);
      expect(await first.start(again)).toEqual([{ started: true, attempt: 2 }, { started: true, attempt: 1 }, { started: true, attempt: 1 }]);
    });

    maybe("a task in a worker's Backup that it does not hold (a handover or a take's reply lost) is given back and run", async () => {
      const { producer, redis, p, me } = await idleWorkerAndProducer("handover-lost", `- {name: noop, topics: [noop], script: "return 1"}`);
      // What its own push does when it hands a task over, without the answer (as if the connection had
      // dropped it): the listing taken, the record started, the taskid in its Backup.
      const id = "0123456789abcdef0123456789abcdef";
      const now = String(Date.now());
      await redis
        .multi()
        .hdel(`${p}idle`, me)
        .hset(`${p}task:${id}`, { taskid: id, task: JSON.stringify({ topic: "noop", content: {} }), expire: "60", createdAt: now })
        .hset(`${p}task:${id}`, { status: "started", attempt: "1", startedAt: now, owner: me })
        .rpush(`${p}backup:${me}`, id)
        .exec();
      // The worker's next look finds its listing taken with nothing received: it gives the task back to
      // Recovery, its start undone (it never ran), then takes it from there.
      expect(await producer.waitfor(id, 10)).toMatchObject({ status: "completed", attempt: 1, results: [{ value: 1 }] });
      expect(await redis.llen(`${p}backup:${me}`)).toBe(0);
    });

    maybe("tasks handed over but not yet heard of fill a take's slots: it moves only the rest, and lists only those free", async () => {
      const { backends: [worker], redis, p } = await twoBackends("unheard");
      const me = worker.workerId;
      const stop = new AbortController();
      const queued = [1, 2, 3, 4, 5, 6].map((n) => newTask("noop", { n }, 60));
      for (const task of queued) await worker.push(task, 100);
      const held = await worker.take(2, stop.signal);
      // What its own push does when it hands two tasks over, the reply still on its way: the records
      // started, the taskids in its Backup.
      const unheard = [7, 8].map((n) => newTask("noop", { n }, 60));
      const now = String(Date.now());
      for (const { taskid } of unheard) {
        const fields = { task: JSON.stringify({ topic: "noop", content: {} }), expire: "60", createdAt: now, status: "started", attempt: "1", startedAt: now, owner: me };
        await redis.multi().hset(`${p}task:${taskid}`, fields).rpush(`${p}backup:${me}`, taskid).exec();
      }
      // A finish sent just before the take has run when the take does: its task is not one of the unheard.
      const finishing = worker.finish([{ lease: held[0], outcome: { status: "completed", completedAt: Date.now(), results: [] } }]);
      const taken = await worker.take(4, stop.signal);
      await finishing;
      expect(taken.map((l) => l.task.taskid)).toEqual([queued[2].taskid, queued[3].taskid]);
      expect(await redis.llen(`${p}backup:${me}`)).toBe(1 + 2 + 2);
      // The next look, for two, has no slot left: it moves nothing and lists the worker with none free.
      const looking = worker.take(2, stop.signal);
      await expect.poll(() => redis.hget(`${p}idle`, me), { timeout: 5000 }).toMatch(/^0:\d+$/);
      const waiting = [queued[4].taskid, queued[5].taskid];
      expect(await redis.lrange(`${p}normal`, 0, -1)).toEqual(waiting);
      // So its own push hands it nothing: the task waits in Normal, queued (and wakes it).
      const pushed = newTask("noop", { n: 9 }, 60);
      await worker.push(pushed, 100);
      expect(await redis.lrange(`${p}normal`, 0, -1)).toEqual([...waiting, pushed.taskid]);
      expect(await redis.hget(`${p}task:${pushed.taskid}`, "status")).toBe("queued");
      stop.abort();
      expect(await looking).toEqual([]);
    });
  });
}

// A cluster has no numbered databases: only one server can be asked for another than 0.
describe("Redis mode on one server only", () => {
  let ready = false;
  beforeAll(async () => {
    ready = await requireServer(backends.find((b) => b.name === "redis")!);
    target = redisUrl;
  });
  const maybe = itWhen(() => ready, 120_000);

  maybe("a database in the URL must be a number the server has: else one clear error, nothing written to database 0", async () => {
    const options = { namespace: newNamespace("db"), taskRecordTtl: 60, debugChannel: "db.debug" };
    const url = (db: string) => new URL(`/${db}`, redisUrl).toString();
    for (const db of ["abc", "-1"]) {
      await expect(createRedisBackend(url(db), options)).rejects.toThrow(ParameterError);
      await expect(createRedisBackend(url(db), options)).rejects.toThrow(`redis_url's database (after the port) must be a number, got "${db}"`);
    }
    const err = await createRedisBackend(url("99999"), options).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as Error).message).toMatch(/^cannot use Redis at redis:\/\/.*\/99999: ERR DB index is out of range/);
    const other = (await createRedisBackend(url("3"), options)) as RedisBackend;
    closers.push(other);
    await other.push(newTask("noop", {}, 60), 10);
    expect(await inspector().exists(`{${options.namespace}}:normal`)).toBe(0);
    const three = inspector();
    await three.select(3);
    expect(await three.llen(`{${options.namespace}}:normal`)).toBe(1);
    await three.del(`{${options.namespace}}:normal`, ...(await three.keys(`{${options.namespace}}:*`)));
  });
});

// SCRIPT FLUSH empties the script cache of the whole server: only on a server of this file's own.
describe("Redis mode, on a server that forgets its scripts", () => {
  let own: OwnRedis | undefined;
  beforeAll(async () => {
    own = await startRedisServer("the tests that flush Redis's scripts");
  });
  afterAll(async () => {
    for (const c of closers.splice(0).reverse()) await c.close().catch(() => {});
    own?.stop();
  });
  const onOwn = itWhen(() => own !== undefined, 120_000);

  onOwn("a server that does not know the scripts (new, restarted, or flushed) is sent them in full", async () => {
    const namespace = newNamespace("noscript");
    const js = await shell(namespace, 60, own!.url);
    await js.upload(`- {name: echo, topics: [echo], script: "return task.content.n"}`);
    const redis = inspector(own!.url);
    await redis.script("FLUSH");
    expect(await js.waitfor(await js.task("echo", { n: 7 }), 10)).toMatchObject({ status: "completed", results: [{ value: 7 }] });
  });

  onOwn("a claimed task whose finish overtook its push (resent after NOSCRIPT) is run again, not stuck", async () => {
    const { worker, redis, p } = await idleWorkerAndProducer("claim-noscript", `- {name: noop, topics: [noop], script: "return 1"}`, own!.url);
    await worker.waitfor(await worker.task("noop", {}, 60), 10);
    // The server forgets the scripts, and another process has the finish script loaded again at once:
    // this process's push is refused and resent, its finish is not.
    await redis.script("FLUSH");
    await redis.script("LOAD", scriptText("finish-tasks"));
    const id = await worker.task("noop", {}, 60);
    expect(await worker.waitfor(id, 20)).toMatchObject({ status: "completed" });
    expect(await redis.llen(`${p}recovery`)).toBe(0);
  });
});
