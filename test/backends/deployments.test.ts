// Beyond one server: what redis_url may name (a cluster, Sentinels), redis_wait_replicas, and
// amqp_queue_type. The contract suite runs on each deployment (test/each-backend.ts); this file holds
// what only they have.
import amqp from "amqplib";
import { Cluster } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Backend } from "../../src/backend.js";
import { createAmqpBackend, deleteAmqpNamespace } from "../../src/backends/amqp/index.js";
import { RedisConnection } from "../../src/backends/redis/connection.js";
import { createRedisBackend, deleteRedisNamespace } from "../../src/backends/redis/index.js";
import { redisTarget } from "../../src/backends/redis/url.js";
import { ConnectionError, ParameterError } from "../../src/errors.js";
import { resolveParams } from "../../src/params.js";
import { newTask } from "../../src/task.js";
import { amqpUrl, backends, itWhen, redisClusterUrl, redisUrl, requireServer, uniqueNamespace } from "../each-backend.js";

const ready = new Map<string, boolean>();
const opened: Backend[] = [];
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  for (const name of ["redis", "redis-cluster", "amqp"]) ready.set(name, await requireServer(backends.find((b) => b.name === name)!));
});

afterAll(async () => {
  await Promise.allSettled(opened.map((b) => b.close()));
  for (const cleanup of cleanups) await cleanup().catch(() => {});
});

const on = (name: string) => itWhen(() => ready.get(name) === true, 30_000);

async function redisBackend(url: string, label: string, waitReplicas: number): Promise<Backend> {
  const namespace = uniqueNamespace(label);
  cleanups.push(() => deleteRedisNamespace(url, namespace));
  const backend = await createRedisBackend(url, { namespace, taskRecordTtl: 60, debugChannel: `${namespace}.debug`, waitReplicas });
  opened.push(backend);
  return backend;
}

describe("redis_url names one server, a cluster or Sentinels", () => {
  it("a cluster by its seed nodes, Sentinels by theirs and the master's name", () => {
    expect(redisTarget("redis+cluster://127.0.0.1:7000,127.0.0.1:7001")).toEqual({
      kind: "cluster",
      tls: false,
      nodes: [{ host: "127.0.0.1", port: 7000 }, { host: "127.0.0.1", port: 7001 }],
    });
    expect(redisTarget("rediss+sentinel://:s3cret@a:26379,[::1]:26380,b/main/2")).toEqual({
      kind: "sentinel",
      tls: true,
      nodes: [{ host: "a", port: 26379 }, { host: "::1", port: 26380 }, { host: "b", port: 26379 }],
      password: "s3cret",
      masterName: "main",
      db: 2,
    });
    expect(redisTarget("redis://u:p@h:6380/3")).toEqual({ kind: "server", tls: false, nodes: [{ host: "h", port: 6380 }], username: "u", password: "p", db: 3 });
  });

  it("what cannot be followed is a ParameterError naming redis_url, the password masked", () => {
    const wrong = [
      ["redis://a:1,b:2", /names one server/],
      ["redis+sentinel://:pw@a:1,b:2", /names the master after the Sentinels/],
      ["redis+cluster://a:1,b:2/1", /names no database for a cluster/],
      ["redis+sentinel://a:1/main/x", /database \(after the master's name\) must be a number/],
      ["redis+cluster://a:1,b:x", /must list host:port pairs/],
    ] as const;
    for (const [url, message] of wrong) {
      expect(() => redisTarget(url)).toThrow(ParameterError);
      expect(() => redisTarget(url)).toThrow(message);
    }
    expect(() => redisTarget("redis+sentinel://:pw@a:1,b:2")).toThrow(/redis\+sentinel:\/\/:\*\*\*@a:1,b:2/);
  });

  it("a URL listing several hosts is a valid redis_url parameter; redis_wait_replicas and amqp_queue_type are checked", () => {
    const env = {};
    expect(resolveParams({ given: { redisUrl: "redis+cluster://a:1,b:2" }, env, configFile: false }).redisUrl).toBe("redis+cluster://a:1,b:2");
    expect(resolveParams({ given: { redisWaitReplicas: "0" }, env, configFile: false }).redisWaitReplicas).toBe(0);
    expect(() => resolveParams({ given: { redisWaitReplicas: "-1" }, env, configFile: false })).toThrow(/redis_wait_replicas .* must be a whole number/);
    expect(resolveParams({ env, configFile: false }).amqpQueueType).toBe("classic");
    expect(() => resolveParams({ given: { amqpQueueType: "stream" }, env, configFile: false })).toThrow(/amqp_queue_type .* must be one of classic, quorum/);
  });
});

describe("on a Redis Cluster", () => {
  on("redis-cluster")("every key of a queue is on the master of one slot", async () => {
    const backend = await redisBackend(redisClusterUrl!, "slot", 0);
    const namespace = (backend as unknown as { layout: { prefix: string } }).layout.prefix.slice(1, -2);
    await backend.push(newTask("noop", {}, 60), 10);
    const conn = new RedisConnection(redisClusterUrl!, "jobshell test inspector");
    await conn.connect(() => {});
    try {
      const masters = (conn.client as Cluster).nodes("master");
      const counts = await Promise.all(masters.map(async (m) => (await m.keys(`{${namespace}}:*`)).length));
      expect(counts.filter((n) => n > 0)).toHaveLength(1);
    } finally {
      conn.client.disconnect();
      conn.subscriber.disconnect();
    }
  });

  on("redis-cluster")("redis_wait_replicas 1: task() returns once the master's replica has the push", async () => {
    const backend = await redisBackend(redisClusterUrl!, "wait1", 1);
    const task = newTask("noop", {}, 60);
    await backend.push(task, 10);
    expect((await backend.record(task.taskid))?.status).toBe("queued");
  });

  on("redis-cluster")("redis_wait_replicas past the replicas there are: task() fails with ConnectionError", async () => {
    const backend = await redisBackend(redisClusterUrl!, "wait2", 2);
    const err = await backend.push(newTask("noop", {}, 60), 10).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as Error).message).toMatch(/reached 1 of the 2 replica\(s\) redis_wait_replicas asks for/);
  });
});

describe("on one server without replicas", () => {
  on("redis")("redis_wait_replicas 1 cannot be met: task() fails with ConnectionError, and 0 waits for none", async () => {
    const none = await redisBackend(redisUrl, "wait0", 0);
    await none.push(newTask("noop", {}, 60), 10);
    const one = await redisBackend(redisUrl, "wait1s", 1);
    const err = await one.push(newTask("noop", {}, 60), 10).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as Error).message).toMatch(/reached 0 of the 1 replica\(s\)/);
  });
});

describe("amqp_queue_type", () => {
  on("amqp")("quorum: the task queue and the shared documents are quorum queues, capped as classic ones are", async () => {
    const namespace = uniqueNamespace("qq");
    cleanups.push(() => deleteAmqpNamespace(amqpUrl, namespace, `${namespace}.debug`));
    const backend = await createAmqpBackend(amqpUrl, { namespace, taskRecordTtl: 60, debugChannel: `${namespace}.debug`, queueType: "quorum" });
    opened.push(backend);
    for (let i = 0; i < 3; i++) await backend.push(newTask("noop", {}, 60), 3);
    await expect(backend.push(newTask("noop", {}, 60), 3)).rejects.toMatchObject({ code: "QUEUE_FULL" });
    const conn = await amqp.connect(amqpUrl);
    try {
      // A declaration as a classic queue fails: the broker tells a queue's type only so.
      const asClassic = [
        [`${namespace}.tasks.max-3`, { "x-max-length": 2, "x-overflow": "reject-publish" }],
        [`${namespace}.jobs`, { "x-max-length": 4 }],
      ] as const;
      for (const [queue, args] of asClassic) {
        const ch = await conn.createChannel();
        ch.on("error", () => {});
        const declared = await ch.assertQueue(queue, { durable: true, arguments: { ...args, "x-queue-type": "classic" } }).catch((e: Error) => e);
        expect(String(declared)).toMatch(/inequivalent arg 'x-queue-type'/);
      }
    } finally {
      await conn.close();
    }
  });

  on("amqp")("a queue of the other type on the broker is a ParameterError saying which, with nothing changed", async () => {
    const namespace = uniqueNamespace("qqmix");
    cleanups.push(() => deleteAmqpNamespace(amqpUrl, namespace, `${namespace}.debug`));
    const classic = await createAmqpBackend(amqpUrl, { namespace, taskRecordTtl: 60, debugChannel: `${namespace}.debug` });
    opened.push(classic);
    await classic.push(newTask("noop", {}, 60), 10);
    const err = await createAmqpBackend(amqpUrl, { namespace, taskRecordTtl: 60, debugChannel: `${namespace}.debug`, queueType: "quorum" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ParameterError);
    expect((err as Error).message).toMatch(`amqp_queue_type is quorum, but the queue ${namespace}.jobs exists on the broker as a classic queue`);
  });
});
