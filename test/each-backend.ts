// The backends the contract suite runs on. A queue mode joins the suite by adding one entry here.
import { randomBytes } from "node:crypto";
import { it } from "vitest";
import type { Backend, BackendOptions } from "../src/backend.js";
import { MemoryBackend } from "../src/backends/memory.js";

export interface BackendUnderTest {
  name: string;
  /** undefined when the server is there; otherwise what is missing */
  unavailable(): Promise<string | undefined>;
  /** A connection to the queue named by options.namespace: two calls with one namespace are two
   *  processes on the same queue. */
  connect(options: BackendOptions): Promise<Backend>;
  /** Delete everything the namespace left on the server. */
  cleanup?(namespace: string): Promise<void>;
}

/** RabbitMQ for the AMQP mode: AMQP_URL, or the local broker. */
export const amqpUrl = process.env.AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";
export const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

const memoryQueues = new Map<string, MemoryBackend>();

export const backends: BackendUnderTest[] = [
  {
    name: "memory",
    unavailable: async () => undefined,
    // One process holds a memory queue: "another process" on it is another JobShell on the same object.
    connect: async (options) => {
      const key = options.namespace ?? "";
      let backend = memoryQueues.get(key);
      if (!backend) memoryQueues.set(key, (backend = new MemoryBackend(options)));
      return backend;
    },
  },
  {
    name: "amqp",
    unavailable: async () => {
      const { AmqpConnection } = await import("../src/backends/amqp/connection.js");
      try {
        const probe = await AmqpConnection.open(amqpUrl, "jobshell test probe");
        await probe.close();
        return undefined;
      } catch (err) {
        return `RabbitMQ at ${amqpUrl}: ${(err as Error).message}`;
      }
    },
    connect: async (options) => (await import("../src/backends/amqp/index.js")).createAmqpBackend(amqpUrl, options),
    cleanup: async (namespace) =>
      (await import("../src/backends/amqp/index.js")).deleteAmqpNamespace(amqpUrl, namespace, `${namespace}.debug`),
  },
  {
    name: "redis",
    unavailable: async () => {
      const { Redis } = await import("ioredis");
      const probe = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      try {
        await probe.connect();
        await probe.ping();
        return undefined;
      } catch (err) {
        return `Redis at ${redisUrl}: ${(err as Error).message}`;
      } finally {
        probe.disconnect();
      }
    },
    connect: async (options) => (await import("../src/backends/redis/index.js")).createRedisBackend(redisUrl, options),
    cleanup: async (namespace) => deleteRedisNamespace(namespace),
  },
];

/** Delete the keys a test's namespace left in Redis (never the whole database: it is shared). */
export async function deleteRedisNamespace(namespace: string): Promise<void> {
  await (await import("../src/backends/redis/index.js")).deleteRedisNamespace(redisUrl, namespace);
}

export function uniqueNamespace(label: string): string {
  return `jstest-${label}-${randomBytes(4).toString("hex")}`;
}

/** Fail under CI when a server is missing; elsewhere, say so loudly and skip. */
export async function requireServer(backend: BackendUnderTest): Promise<boolean> {
  const missing = await backend.unavailable();
  if (!missing) return true;
  if (process.env.CI) throw new Error(`${backend.name}: required server missing under CI: ${missing}`);
  console.warn(`\n!!! SKIPPING the ${backend.name} tests: ${missing}\n`);
  return false;
}

/** A test that runs only once `ready()` is true: a file's server, found by requireServer (which fails
 *  under CI when it is missing, so only a run outside CI skips). */
export const itWhen =
  (ready: () => boolean, defaultTimeout?: number) =>
  (name: string, fn: () => Promise<void>, timeout = defaultTimeout) =>
    it(name, async (ctx) => {
      if (!ready()) return ctx.skip();
      await fn();
    }, timeout);
