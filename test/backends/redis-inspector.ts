// A plain client for tests to look at a Redis deployment as an operator would with redis-cli: one
// server, a Redis Cluster or a Sentinel-run master, from the URL forms the product takes. Every key
// of a queue carries the queue's hash tag, so its keys are on one node of a cluster and a MULTI or a
// script over them works there too; what reaches beyond one node (SCAN, CLIENT LIST) asks each.
import { Cluster } from "ioredis";
import { RedisConnection, type RedisClient } from "../../src/backends/redis/connection.js";
import { Layout } from "../../src/backends/redis/layout.js";

export type Inspector = RedisClient;

/** Connects on its first command; disconnect() when done. */
export function redisInspector(url: string): Inspector {
  return new RedisConnection(url, "jobshell test inspector").client;
}

/** The keys of a namespace (on a cluster, on whichever master holds its slot). */
export async function keysOf(redis: Inspector, namespace: string): Promise<string[]> {
  const found: string[] = [];
  for (const node of await servers(redis, "master")) {
    let cursor = "0";
    do {
      const [next, keys] = await node.scan(cursor, "MATCH", `{${namespace}}:*`, "COUNT", 1000);
      found.push(...keys);
      cursor = next;
    } while (cursor !== "0");
  }
  return found;
}

/** Kills every connection named `name` (CLIENT SETNAME) on every node; returns how many. */
export async function killClientsNamed(redis: Inspector, name: string): Promise<number> {
  let killed = 0;
  for (const node of await servers(redis, "all")) {
    const list = (await node.client("LIST")) as string;
    for (const line of list.split("\n").filter((l) => l.includes(`name=${name} `))) {
      await node.client("KILL", "ID", /id=(\d+)/.exec(line)![1]);
      killed += 1;
    }
  }
  return killed;
}

/** A namespace's keys by name (the worker id only matters for a worker's own keys). */
export function keysFor(namespace: string, workerId = ""): Layout {
  return new Layout(namespace, workerId, `${namespace}.debug`);
}

/** The nodes of a cluster (known once it has answered a first command), or the one server. */
async function servers(redis: Inspector, role: "master" | "all") {
  if (!(redis instanceof Cluster)) return [redis];
  await redis.ping();
  return redis.nodes(role);
}
