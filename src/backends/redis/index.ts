// Redis mode (the source's design): tasks wait in a Normal list; a worker moves a batch into its own
// Backup list in one atomic step and removes each task from there only when its record is finished;
// tasks of a worker whose heartbeat lapsed are moved, atomically, to the Recovery list, which workers
// take from first. So a task is always in exactly one list until it has ended: none is lost.
// A worker that finds nothing to take lists itself as idle: a push in its own process hands tasks
// straight to it, and a push elsewhere wakes it to take them.
//
// The parts, each opening with what it owns:
//   layout.ts      every key and channel of a queue
//   connection.ts  the command and pub/sub connections, and their errors
//   lua.ts, lua/   the Lua scripts, one file per atomic command, with a header giving KEYS and ARGV
//   scripts.ts     calling them: one typed method per script
//   queue.ts       the producer's side: push batching, depth
//   taker.ts       the worker's side: take, finish, give back
//   handover.ts    idle workers and the tasks handed to them, with its state diagram
//   records.ts     task records and waiting for their end
//   heartbeat.ts   workers' heartbeats and the rescue of dead workers' tasks
//   sweeper.ts     deleting ended records after task_record_ttl
//   listing.ts     the index of records, newest first (GET /tasks, the console)
//   task-events.ts tasks queued, started and ended, as every process sees them
//   jobs.ts        the shared job definitions
//   debug.ts       the debug channel
// Leases (one Slack bot per deployment) are two scripts, called from here. A script's whole text, for
// reading it or running it with `redis-cli --eval`, is scriptText(name): see lua.ts.
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { Cluster } from "ioredis";
import type { Backend, BackendOptions, ConnectionChange, Deployment, Lease, RecordPage, RecordQuery, StartResult, TaskEvent } from "../../backend.js";
import type { Outcome, QueuedTask, TaskRecordData } from "../../record.js";
import { RedisConnection, slotOf } from "./connection.js";
import { DebugChannel } from "./debug.js";
import { Handover } from "./handover.js";
import { Heartbeat } from "./heartbeat.js";
import { RedisJobStore } from "./jobs.js";
import { Layout } from "./layout.js";
import { Listing } from "./listing.js";
import { Queue } from "./queue.js";
import { Records } from "./records.js";
import { Scripts } from "./scripts.js";
import { Sweeper } from "./sweeper.js";
import { Taker } from "./taker.js";
import { TaskEvents } from "./task-events.js";

export { scriptText } from "./lua.js";

export interface RedisBackendOptions extends BackendOptions {
  /** seconds without a heartbeat after which a worker is presumed dead and its tasks rescued (default 10) */
  heartbeatTtl?: number;
  /** redis_wait_replicas: a push and a finish resolve once that many replicas have them (default 0) */
  waitReplicas?: number;
  /** reports errors handled by retrying (a lost connection, say) */
  onError?: (err: unknown) => void;
  /** job scripts run in the script pool's threads (not job_in_process): see Queue (default false) */
  scriptThreads?: boolean;
}

export async function createRedisBackend(url: string, options: RedisBackendOptions): Promise<Backend> {
  const backend = new RedisBackend(url, options);
  await backend.connect();
  return backend;
}

export class RedisBackend implements Backend {
  readonly mode = "redis";
  readonly location: string;
  readonly jobs: RedisJobStore;
  /** this process's worker identity: its Backup list and heartbeat are named after it */
  readonly workerId = `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;

  private readonly conn: RedisConnection;
  private readonly layout: Layout;
  private readonly scripts: Scripts;
  private readonly sweeper: Sweeper;
  private readonly heartbeat: Heartbeat;
  private readonly handover: Handover;
  private readonly records: Records;
  private readonly queue: Queue;
  private readonly taker: Taker;
  private readonly debug: DebugChannel;
  private readonly listing: Listing;
  private readonly taskEvents: TaskEvents;
  private readonly onError: (err: unknown) => void;
  private closed = false;

  constructor(url: string, options: RedisBackendOptions) {
    const { workerId } = this;
    const onError = (this.onError = (err: unknown) => options.onError?.(err));
    const conn = (this.conn = new RedisConnection(url, `jobshell:${workerId}`));
    this.location = conn.location;
    const layout = (this.layout = new Layout(options.namespace ?? "jobshell", workerId, options.debugChannel));
    const slot = slotOf(layout.prefix);
    const scripts = (this.scripts = new Scripts(conn, slot, options.waitReplicas ?? 0));
    const sweeper = (this.sweeper = new Sweeper(scripts, layout, Math.round(options.taskRecordTtl * 1000), onError));
    const maxAttempts = options.maxAttempts ?? 3;
    const heartbeat = (this.heartbeat = new Heartbeat(conn, scripts, layout, workerId, (options.heartbeatTtl ?? 10) * 1000, sweeper, maxAttempts, onError));
    const handover = (this.handover = new Handover(conn.subscriber, layout.channels.inbox));
    const records = (this.records = new Records(conn, scripts, layout, sweeper, workerId, (taskid) => this.taker.runsHere(taskid), onError));
    this.queue = new Queue(conn, scripts, layout, sweeper, handover, records, workerId, options.scriptThreads ?? false);
    this.taker = new Taker(scripts, layout, workerId, handover, heartbeat, sweeper, records, maxAttempts, conn.client instanceof Cluster);
    this.jobs = new RedisJobStore(conn, scripts, layout);
    this.debug = new DebugChannel(conn, layout.channels.debug, slot);
    this.listing = new Listing(conn, layout, (taskid) => records.record(taskid));
    this.taskEvents = new TaskEvents(conn, layout, onError);
  }

  async connect(): Promise<void> {
    const { conn, layout } = this;
    await conn.connect(this.onError);
    conn.watchSlot(layout.normal);
    conn.onClientRenewed(() => {
      this.handover.needsReclaim = true;
      this.scripts.known.clear(); // the server may have restarted without them (or be another)
    });
    // Messages published while the subscriber was away are lost: waiters look again, watchers reload,
    // and the worker gives back what was handed over in the meantime.
    conn.onSubscriberRenewed(() => {
      this.records.wakeAll();
      this.jobs.changed();
      this.handover.requestReclaim();
    });
    const { inbox, ended, debug, jobs, tasks } = layout.channels;
    conn.subscriber.on("message", (channel: string, message: string) => {
      if (channel === inbox) this.handover.received(message);
      else if (channel === ended) this.records.heard(message);
      else if (channel === debug) this.debug.heard(message);
      else if (channel === jobs) this.jobs.changed();
      else if (channel === tasks) this.taskEvents.heard(message);
    });
    await conn.subscriber.subscribe(jobs);
    this.sweeper.start();
  }

  // --- the queue ---------------------------------------------------------------------------

  push(task: QueuedTask, limit: number): Promise<void> {
    return this.queue.push(task, limit);
  }

  take(max: number, signal: AbortSignal): Promise<Lease[]> {
    return this.taker.take(max, signal);
  }

  start(leases: Lease[]): Promise<StartResult[]> {
    return this.taker.start(leases);
  }

  finish(done: { lease: Lease; outcome: Outcome }[]): Promise<void> {
    return this.taker.finish(done);
  }

  giveBack(leases: Lease[]): Promise<void> {
    return this.taker.giveBack(leases);
  }

  retry(tries: { lease: Lease; why: string }[]): Promise<void> {
    return this.taker.retry(tries);
  }

  listRecords(query: RecordQuery): Promise<RecordPage> {
    return this.listing.list(query);
  }

  watchTasks(onEvent: (event: TaskEvent) => void): Promise<() => Promise<void>> {
    return this.taskEvents.watch(onEvent);
  }

  depth(): Promise<number> {
    return this.queue.depth();
  }

  async deployment(): Promise<Deployment> {
    const workers = await this.heartbeat.workers();
    return { queues: await this.queue.views(workers.ids), workers: workers.alive };
  }

  // --- task records ------------------------------------------------------------------------

  record(taskid: string): Promise<TaskRecordData | undefined> {
    return this.records.record(taskid);
  }

  waitEnded(taskid: string, timeoutMs: number, signal?: AbortSignal): Promise<TaskRecordData | undefined> {
    return this.records.waitEnded(taskid, timeoutMs, signal);
  }

  // --- the debug channel -------------------------------------------------------------------

  publish(line: string): Promise<void> {
    return this.debug.publish(line);
  }

  subscribe(onLine: (line: string) => void): Promise<() => Promise<void>> {
    return this.debug.subscribe(onLine);
  }

  // --- leases (one Slack bot per deployment) ------------------------------------------------

  async claim(name: string, owner: string, ttlSeconds: number): Promise<boolean> {
    return (await this.scripts.claimLease([this.layout.lease(name)], [owner, Math.round(ttlSeconds * 1000)])) === 1;
  }

  async release(name: string, owner: string): Promise<void> {
    await this.scripts.releaseLease([this.layout.lease(name)], [owner]);
  }

  onConnection(listener: (change: ConnectionChange) => void): () => void {
    return this.conn.outage.listen(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.taker.close();
    this.heartbeat.stop();
    this.sweeper.stop();
    this.debug.close();
    this.taskEvents.close();
    this.records.close();
    this.handover.close();
    await this.conn.close(async () => {
      if (!this.heartbeat.started) return;
      // A clean stop: whatever Backup still holds goes to Recovery now, and nobody needs to rescue it later.
      await this.taker.releaseOrphans().catch(() => {});
      await this.heartbeat.forget().catch(() => {});
    });
  }
}

/** Delete every key of a namespace (a test run's, a benchmark's): the server may be shared, so never more. */
export async function deleteRedisNamespace(url: string, namespace: string): Promise<void> {
  const conn = new RedisConnection(url, "jobshell:cleanup");
  await conn.connect(() => {});
  try {
    // On a cluster the namespace's keys are on the master of its slot: each master is asked.
    const servers = conn.client instanceof Cluster ? conn.client.nodes("master") : [conn.client];
    for (const redis of servers) {
      let cursor = "0";
      do {
        const [next, keys] = await redis.scan(cursor, "MATCH", `{${namespace}}:*`, "COUNT", 1000);
        if (keys.length > 0) await redis.del(...keys);
        cursor = next;
      } while (cursor !== "0");
    }
  } finally {
    conn.client.disconnect();
    conn.subscriber.disconnect();
  }
}
