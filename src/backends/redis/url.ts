// What redis_url may name: one server, a Redis Cluster by some of its nodes, or the master a set of
// Sentinels watches.
//   redis://[user:password@]host:port[/db]                    one server (rediss:// for TLS)
//   redis+cluster://[user:password@]host:port,host:port       cluster seed nodes (rediss+cluster://)
//   redis+sentinel://[user:password@]host:port,host:port/name the Sentinels and the master's name,
//                                                             then optionally /db (rediss+sentinel://)
// The password is the servers' (a cluster's nodes, a Sentinel set's master and replicas); Sentinels
// themselves are asked without one.
import { ParameterError } from "../../errors.js";
import { maskUrl, queueServerUrl } from "../../params.js";

export interface RedisTarget {
  kind: "server" | "cluster" | "sentinel";
  tls: boolean;
  /** the server, the seed nodes, or the Sentinels */
  nodes: { host: string; port: number }[];
  username?: string;
  password?: string;
  /** the database (one server, Sentinel) */
  db?: number;
  /** the master's name (Sentinel) */
  masterName?: string;
}

const schemes = ["redis", "rediss", "redis+cluster", "rediss+cluster", "redis+sentinel", "rediss+sentinel"];

export function redisTarget(url: string): RedisTarget {
  const first = queueServerUrl(url, "redis_url", schemes);
  const scheme = first.protocol.slice(0, -1);
  const kind = scheme.endsWith("+cluster") ? "cluster" : scheme.endsWith("+sentinel") ? "sentinel" : "server";
  const bad = (what: string) => new ParameterError(`redis_url${what}, got ${maskUrl(url)}`);
  // new URL() takes one host: the list is read from the text, the rest from the URL of its first host.
  const authority = /^[^:]+:\/\/(?:[^@/?#]*@)?([^/?#]*)/.exec(url)?.[1] ?? "";
  const nodes = authority.split(",").map((hostPort) => {
    const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(hostPort);
    if (!m) throw bad(` must list host:port pairs separated by commas`);
    return { host: m[1].replace(/^\[|\]$/g, ""), port: Number(m[2] ?? (kind === "sentinel" ? 26379 : 6379)) };
  });
  if (kind === "server" && nodes.length > 1) throw bad(" names one server: for several, use redis+cluster:// or redis+sentinel://");
  const target: RedisTarget = { kind, tls: scheme.startsWith("rediss"), nodes };
  if (first.username) target.username = decodeURIComponent(first.username);
  if (first.password) target.password = decodeURIComponent(first.password);
  const path = first.pathname.split("/").filter((p) => p !== "").map(decodeURIComponent);
  const database = (text: string | undefined) => {
    if (text === undefined) return undefined;
    if (!/^\d+$/.test(text)) throw new ParameterError(`redis_url's database (after the ${kind === "sentinel" ? "master's name" : "port"}) must be a number, got ${JSON.stringify(text)}`);
    return Number(text);
  };
  if (kind === "server") {
    if (path.length > 1) throw bad("'s path is the database only");
    target.db = database(path[0]);
  } else if (kind === "cluster") {
    if (path.length > 0) throw bad(" names no database for a cluster (a cluster has database 0 only)");
  } else {
    if (path.length === 0 || path.length > 2) throw bad(" names the master after the Sentinels: redis+sentinel://host:port,host:port/mastername[/db]");
    target.masterName = path[0];
    target.db = database(path[1]);
  }
  return target;
}
