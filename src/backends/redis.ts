// Redis mode (the source's design): tasks wait in a Normal list; a worker moves a batch into its own
// Backup list in one atomic step and removes each task from there only when its record is finished;
// tasks of a worker whose heartbeat lapsed are moved, atomically, to the Recovery list, which workers
// take from first. So a task is always in exactly one list until it has ended: none is lost.
// A worker that finds nothing to take lists itself as idle: a push in its own process hands tasks
// straight to it (started, in its Backup), so they start without a take round trip; a push elsewhere
// wakes it on its inbox channel to take them (a worker may have died since it listed itself).
// Keys, all with the namespace as hash tag (`{jobshell}:` unless a namespace is given):
//   <p>normal, <p>recovery, <p>backup:<worker>   lists of taskids
//   <p>idle                                      idle workers (a hash: id → <free slots>:<listing number>)
//   <p>task:<taskid>                             the record (a hash), kept task_record_ttl after its end
//   <p>deletions, <p>deletions:<due>             ended records to delete: due times (ms), their taskids
//   <p>workers, <p>alive:<worker>                 the workers, and their heartbeats (with a TTL)
//   <p>jobs                                      job definitions (name → JSON), shared by every process
//   <p>ended, <p>jobs-changed                    pub/sub: a task ended; the job set changed
//   <p>inbox:<worker>                            pub/sub: wake-ups of that worker, listed idle
// The debug channel is the plain pub/sub channel `debug_channel` (xaas.hotspot.channel).
import { createHash, randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { Command, Redis, type RedisOptions } from "ioredis";
import type { Backend, BackendOptions, JobStore, Lease, StartResult } from "../backend.js";
import { mergeDefinitions, type JobDefinition } from "../definitions.js";
import { ConnectionError, ParameterError, QueueFullError } from "../errors.js";
import { maskUrl, queueServerUrl } from "../params.js";
import { expiresAt, hasEnded, nowMs, type Outcome, type QueuedTask, type TaskRecordData } from "../record.js";
import * as scripts from "./redis/scripts.js";
import { untilWoken } from "./waiters.js";
import { onAbort } from "../abort.js";

export interface RedisBackendOptions extends BackendOptions {
  /** seconds without a heartbeat after which a worker is presumed dead and its tasks rescued (default 10) */
  heartbeatTtl?: number;
  /** reports errors handled by retrying (a lost connection, say) */
  onError?: (err: unknown) => void;
}

/** How long an idle worker waits for a handover before it looks again (ms): a wake-up lost with a
 *  connection, or tasks rescued to Recovery, are found by then. */
const idleLookMs = 1000;
/** A waiter reads the record again this often, in case an end was published while it was reconnecting. */
const recheckMs = 2000;
/** A command with no answer by then is presumed lost with its connection. */
const commandTimeoutMs = 10_000;
/** How long close() may spend saying goodbye (Backup to Recovery, heartbeat removed, QUIT) before it
 *  drops the connections: what a worker leaves behind is rescued by the others all the same. */
const goodbyeMs = 5000;
/** The most tasks one push script call carries. */
const pushChunk = 1000;

interface RedisLease extends Lease {
  /** what take() made of the task */
  started: StartResult;
  /** when take() started it (epoch ms), as the record says */
  startedAt: number;
}

/** The record's `task` field: what a worker needs of the task besides its times. */
interface StoredTask {
  topic: string;
  content: Record<string, unknown>;
  job?: string;
}

/** What the take script (and a push handing tasks over) says of each task: taskid, attempt (0 expired,
 *  -1 gone), the stored task (null when the record is gone), expire, createdAt, startedAt. */
type TakenRow = [string, number, StoredTask | null, number, number, number];

/** The tasks a take (or a push handing tasks over) gives this worker, from its flat text: a header (the
 *  take's listed flag, a handover's listing number), startedAt, then five values a task (see take). */
function takenRows(text: string): { header: number; rows: TakenRow[] } {
  const flat = JSON.parse(text) as [number, number, ...unknown[]];
  const startedAt = flat[1];
  const rows: TakenRow[] = [];
  for (let i = 2; i < flat.length; i += 5) {
    rows.push([flat[i] as string, flat[i + 1] as number, flat[i + 2] as StoredTask | null, flat[i + 3] as number, flat[i + 4] as number, startedAt]);
  }
  return { header: flat[0], rows };
}

/** An idle listing of this worker: its number, the slots it offered, the tasks received under it. */
interface Listing {
  n: number;
  free: number;
  received: number;
  ended: boolean;
}

interface PendingPush {
  task: QueuedTask;
  limit: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

type ScriptName = keyof typeof scripts;

const scriptSources = Object.fromEntries(
  Object.entries(scripts).map(([name, lua]) => [name, { lua, sha: createHash("sha1").update(lua).digest("hex") }]),
) as Record<ScriptName, { lua: string; sha: string }>;

/** A script call (EVALSHA or EVAL), written as one text. ioredis would copy the arguments twice
 *  (flattened, then converted one by one) and write each with its header separately: with the
 *  thousands of arguments of a batch, that was a tenth of node's time. One concatenated text, encoded
 *  once, costs half as much per task (measured). */
class ScriptCall extends Command {
  constructor(
    name: "evalsha" | "eval",
    private readonly script: string,
    private readonly keyNames: string[],
    private readonly values: (string | number)[],
  ) {
    super(name, [], { replyEncoding: "utf8" });
  }

  override toWritable(): Buffer {
    const { script, keyNames: keys, values } = this;
    let text = `*${3 + keys.length + values.length}\r\n$${this.name.length}\r\n${this.name}\r\n`;
    text += `$${Buffer.byteLength(script)}\r\n${script}\r\n$${String(keys.length).length}\r\n${keys.length}\r\n`;
    for (const key of keys) text += `$${Buffer.byteLength(key)}\r\n${key}\r\n`;
    for (const value of values) {
      const arg = typeof value === "string" ? value : String(value);
      text += `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`;
    }
    return Buffer.from(text);
  }
}

export async function createRedisBackend(url: string, options: RedisBackendOptions): Promise<Backend> {
  const backend = new RedisBackend(url, options);
  await backend.connect();
  return backend;
}

export class RedisBackend implements Backend {
  readonly mode = "redis";
  readonly location: string;
  /** the database the URL names (its path), if any */
  private readonly database?: number;
  readonly jobs: JobStore;
  /** this process's worker identity: its Backup list and heartbeat are named after it */
  readonly workerId = `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;

  private readonly client: Redis;
  private readonly subscriber: Redis;
  private readonly prefix: string;
  private readonly keys: { normal: string; recovery: string; backup: string; workers: string; alive: string; idle: string; deletions: string };
  private readonly ttlMs: number;
  /** Ended records are listed for deletion in buckets of this many ms (a sixtieth of task_record_ttl,
   *  within 50 ms to a minute): one is deleted between task_record_ttl and that much later after its end. */
  private readonly bucketMs: number;
  private readonly heartbeatTtlMs: number;
  private readonly channels: { ended: string; jobs: string; debug: string; inbox: string };
  private readonly waiters = new Map<string, Set<(outcome?: Partial<TaskRecordData>) => void>>();
  private readonly debugListeners = new Set<(line: string) => void>();
  private readonly jobWatchers = new Set<() => void>();
  /** taskids this worker has taken and not yet finished or given back */
  private readonly held = new Set<string>();
  /** a connection was lost: Backup may hold a task whose taking reply or handover never arrived */
  private needsReclaim = false;
  /** tasks handed over by pushes (started, in Backup) that take() has not returned yet */
  private handed: TakenRow[] = [];
  /** The idle listing this worker believes it holds: its number, the slots it offered, the tasks handed
   *  over under it so far. It has ended once they fill its slots, or a wake-up came. */
  private listing?: Listing;
  /** Listings are numbered, and so are handovers: the last number given, and the first one not made
   *  stale by a reclaim (which gave back the tasks of those before it). */
  private listings = 0;
  private staleBelow = 0;
  /** Scripts the server has run by their SHA1 since the connection was made. A push resent in full
   *  after NOSCRIPT would come after a finish sent meanwhile: tasks are claimed only by a push whose
   *  script is known (so its finishes cannot overtake it). */
  private readonly scriptsKnown = new Set<ScriptName>();
  /** taskids claimed by this process's pushes and not yet finished (or given back) */
  private readonly claimedHere = new Set<string>();
  /** records of claimed tasks that ended with nobody waiting yet, kept until the next turn of the
   *  event loop: the task() that issued one has likely not returned, and a waitfor() follows */
  private readonly justEnded = new Map<string, TaskRecordData>();
  /** the idle wait timed out: look again even though still listed, to renew the listing */
  private lookNow = false;
  /** wakes a take() waiting as an idle worker */
  private readonly takers = new Set<() => void>();
  private handoverSubscription?: Promise<unknown>;
  /** subscribed to this worker's inbox channel (handoverSubscription has resolved) */
  private hearingHandovers = false;
  /** the last take found some tasks, but fewer than it asked for */
  private drained = false;
  private pending: PendingPush[] = [];
  private heartbeat?: NodeJS.Timeout;
  private sweeper?: NodeJS.Timeout;
  private sweeping = false;
  private endsSubscription?: Promise<unknown>;
  /** subscribed to the ends published (endsSubscription has resolved) */
  private hearingEnds = false;
  private quietTimer?: NodeJS.Timeout;
  private closed = false;

  constructor(url: string, private readonly options: RedisBackendOptions) {
    const parsed = queueServerUrl(url, "redis_url", ["redis", "rediss"]);
    const db = parsed.pathname.replace(/^\//, "");
    if (db !== "" && !/^\d+$/.test(db)) {
      throw new ParameterError(`redis_url's database (after the port) must be a number, got ${JSON.stringify(decodeURIComponent(db))}`);
    }
    this.database = db === "" ? undefined : Number(db);
    this.location = maskUrl(url);
    this.prefix = `{${options.namespace ?? "jobshell"}}:`;
    const p = this.prefix;
    this.keys = {
      normal: `${p}normal`,
      recovery: `${p}recovery`,
      backup: `${p}backup:${this.workerId}`,
      workers: `${p}workers`,
      alive: `${p}alive:${this.workerId}`,
      idle: `${p}idle`,
      deletions: `${p}deletions`,
    };
    this.channels = { ended: `${p}ended`, jobs: `${p}jobs-changed`, debug: options.debugChannel, inbox: `${p}inbox:${this.workerId}` };
    this.ttlMs = Math.round(options.taskRecordTtl * 1000);
    this.bucketMs = Math.min(60_000, Math.max(50, Math.round(this.ttlMs / 60)));
    this.heartbeatTtlMs = (options.heartbeatTtl ?? 10) * 1000;
    const common: RedisOptions = { lazyConnect: true, maxRetriesPerRequest: 20, connectionName: `jobshell:${this.workerId}` };
    // No auto-pipelining: the hot paths already send one script call per batch, and holding every
    // command for the next tick cost more in latency than it saved (measured: bench/redis.js).
    this.client = new Redis(url, { ...common, commandTimeout: commandTimeoutMs });
    this.subscriber = new Redis(url, common);
    this.jobs = new RedisJobStore(this);
  }

  async connect(): Promise<void> {
    // ioredis tells the cause of a failed connection (refused, unknown host) only on its error event.
    let cause: Error | undefined;
    const remember = (err: Error) => (cause = err);
    this.client.on("error", remember);
    this.subscriber.on("error", remember);
    try {
      await this.client.connect();
      await this.client.ping();
      // ioredis reports a database it could not select only as an error event, and goes on in database 0.
      if (this.database !== undefined) await this.client.select(this.database);
      await this.subscriber.connect();
    } catch (err) {
      this.client.disconnect();
      this.subscriber.disconnect();
      const reason = (cause ?? (err as Error)).message.replace(/\/\/([^:/@]*):[^@]*@/, "//$1:***@");
      throw new ConnectionError(`cannot use Redis at ${this.location}: ${reason}`, { cause: cause ?? err });
    }
    this.client.off("error", remember);
    this.subscriber.off("error", remember);
    const report = (err: unknown) => this.options.onError?.(err);
    this.client.on("error", report);
    this.subscriber.on("error", report);
    this.client.on("ready", () => {
      this.needsReclaim = true;
      this.scriptsKnown.clear(); // the server may have restarted without them
    });
    // Messages published while the subscriber was away are lost: waiters look again, watchers reload,
    // and the worker gives back what was handed over in the meantime.
    this.subscriber.on("ready", () => {
      for (const set of this.waiters.values()) for (const wake of set) wake();
      for (const watcher of this.jobWatchers) watcher();
      this.needsReclaim = true;
      for (const wake of this.takers) wake();
    });
    this.subscriber.on("message", (channel: string, message: string) => this.onMessage(channel, message));
    await this.subscriber.subscribe(this.channels.jobs);
    // Every process deletes the records due, so that they go as long as any process of the queue runs;
    // one that starts deletes at once what became due while none ran.
    this.sweeper = setInterval(() => void this.sweep(), Math.min(1000, this.bucketMs));
    this.sweeper.unref();
    void this.sweep();
  }

  /** Run a Lua script of ./redis/scripts.ts: by its SHA1, and by its text when the server does not
   *  know it yet (a new server, or one restarted since). The arguments go in one array, never spread
   *  into a call: a push carries thousands. */
  async run(name: ScriptName, keys: string[], args: (string | number)[], onResend?: () => void): Promise<unknown> {
    const { lua, sha } = scriptSources[name];
    try {
      const reply = await this.client.sendCommand(new ScriptCall("evalsha", sha, keys, args));
      this.scriptsKnown.add(name);
      return reply;
    } catch (err) {
      if (!(err as Error).message?.startsWith("NOSCRIPT")) throw this.unanswered(err);
      this.scriptsKnown.delete(name);
      onResend?.();
      return this.answered(this.client.sendCommand(new ScriptCall("eval", lua, keys, args)) as Promise<unknown>);
    }
  }

  /** A plain command's reply, failing as run() does when Redis does not answer. */
  answered<T>(reply: Promise<T>): Promise<T> {
    return reply.catch((err: unknown) => {
      throw this.unanswered(err);
    });
  }

  /** ioredis's errors for a server that does not answer (a command timed out, retries used up, the
   *  connection closed) as a ConnectionError, which callers know: the REST API answers 503
   *  `unavailable` to it. Other errors (a script's, a reply's) are returned as they are. */
  private unanswered(err: unknown): unknown {
    const e = err as Error | undefined;
    const lost = e?.name === "MaxRetriesPerRequestError" || e?.message === "Command timed out" || e?.message === "Connection is closed.";
    return lost ? new ConnectionError(`Redis at ${this.location} does not answer: ${e.message}`, { cause: err }) : err;
  }

  key(kind: "jobs" | "lease", name = ""): string {
    return kind === "jobs" ? `${this.prefix}jobs` : `${this.prefix}lease:${name}`;
  }

  get commands(): Redis {
    return this.client;
  }

  get jobsChannel(): string {
    return this.channels.jobs;
  }

  addJobWatcher(watcher: () => void): () => void {
    this.jobWatchers.add(watcher);
    return () => this.jobWatchers.delete(watcher);
  }

  // --- the queue ---------------------------------------------------------------------------

  /** The task() calls made in one synchronous step go to Redis in script calls of up to pushChunk
   *  tasks; a full chunk goes at once, so that Redis stores it while this process makes the next. */
  push(task: QueuedTask, limit: number): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.pending.length === 0) queueMicrotask(() => this.flushPushes());
      this.pending.push({ task, limit, resolve, reject });
      if (this.pending.length >= pushChunk) this.flushPushes();
    });
  }

  private flushPushes(): void {
    const pending = this.pending;
    this.pending = [];
    for (let i = 0; i < pending.length; ) {
      let end = i + 1;
      while (end < pending.length && end - i < pushChunk && pending[end].limit === pending[i].limit) end++;
      void this.pushBatch(pending.slice(i, end));
      i = end;
    }
  }

  private async pushBatch(batch: PendingPush[]): Promise<void> {
    const limit = batch[0].limit;
    const now = nowMs();
    const listing = this.listing;
    const claimed = listing ? this.claimable(listing, batch, now) : 0;
    const args: (string | number)[] = [this.prefix, limit, now, this.workerId, claimed, listing?.n ?? 0, this.channels.ended, this.deletionDue(now)];
    const rows: TakenRow[] = [];
    for (let i = 0; i < batch.length; i++) {
      const { task } = batch[i];
      const stored: StoredTask = { topic: task.topic, content: task.content };
      if (task.job !== undefined) stored.job = task.job;
      args.push(task.taskid, JSON.stringify(stored), task.expire, task.createdAt);
      if (i < claimed) rows.push([task.taskid, 1, stored, task.expire, task.createdAt, now]);
    }
    try {
      let resent = false;
      const replying = this.run("push", [this.keys.normal, this.keys.idle, this.keys.deletions], args, () => (resent = true));
      // Sent: the claimed tasks start now, while Redis records them. Their outcomes follow the push on
      // the same connection, so Redis has the records by then (if the push failed, there is none to
      // write: the task() calls were told).
      if (claimed > 0) {
        for (const row of rows) this.claimedHere.add(row[0]);
        this.receive(listing!.n, rows);
      }
      const reply = (await replying) as number | [number, string];
      // Resent in full (after NOSCRIPT), the push may have come after finishes of the tasks it claimed
      // (if the server knew the finish script): refused for want of a record, and answered before this
      // push was, those tasks sit in Backup unheld; a reclaim sends them to Recovery.
      if (resent && claimed > 0) {
        this.needsReclaim = true;
        for (const wake of this.takers) wake();
      }
      // Tasks handed to this process's own worker come back with the reply, not as a message.
      const accepted = typeof reply === "number" ? reply : (this.receiveHandover(reply[1]), reply[0]);
      batch.forEach((p, i) => (i < accepted ? p.resolve() : p.reject(new QueueFullError(limit))));
    } catch (err) {
      for (const p of batch) p.reject(err);
    }
  }

  async take(max: number, signal: AbortSignal): Promise<Lease[]> {
    this.startHeartbeat();
    // Listening before the first take: a take lists this worker as idle, and a push may hand over at
    // once. Awaited only until then: an await here would put the take behind the last batch's outcomes.
    if (!this.hearingHandovers) {
      await (this.handoverSubscription ??= this.subscriber.subscribe(this.channels.inbox));
      this.hearingHandovers = true;
    }
    for (;;) {
      if (this.closed) return [];
      if (signal.aborted || this.needsReclaim) {
        // A lost connection may have lost a reply or a handover with it; a stopping worker will not run
        // what was handed over: either way, what Backup holds beyond `held` goes to Recovery.
        this.needsReclaim = false;
        await this.releaseOrphans();
        if (signal.aborted) return [];
      }
      // Tasks handed over first; then a look, unless this worker is still listed as idle: while it is,
      // there is nothing to look for (a push hands tasks over, or wakes it).
      let rows: TakenRow[] = [];
      if (this.handed.length > 0) {
        rows = this.handed.splice(0, max);
      } else if (!this.listing || this.listing.ended || this.lookNow) {
        if (this.drained) {
          // The queue was empty a moment ago: let the jobs just started run a turn of the event loop
          // before looking again (a look that likely finds nothing), so that quick ones send their
          // outcomes first, and somebody waiting for them is answered sooner.
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
        rows = await this.takeAndStart(max);
      }
      this.drained = rows.length > 0 && rows.length < max;
      this.lookNow = false;
      if (rows.length === 0) {
        if (this.handed.length === 0 && !this.needsReclaim) this.lookNow = await this.idle(signal);
        continue;
      }
      const leases = rows.map(([taskid, attempt, stored, expire, createdAt, startedAt]): RedisLease => {
        const task: QueuedTask = { taskid, topic: stored?.topic ?? "", content: stored?.content ?? {}, expire, createdAt };
        if (stored?.job !== undefined) task.job = stored.job;
        if (attempt < 1) return { task, started: { started: false, why: attempt === 0 ? "expired" : "gone" }, startedAt };
        this.held.add(taskid);
        return { task, started: { started: true, attempt }, startedAt };
      });
      if (leases.length > 0) return leases;
    }
  }

  /** Listed as idle: wait for a handover, a reconnection or a stop, or idleLookMs (then true: look
   *  again anyway, which renews the listing). No blocking command: nothing to hang on a failover. */
  private idle(signal: AbortSignal): Promise<boolean> {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      for (const wake of this.takers) wake();
    }, idleLookMs);
    return untilWoken(this.takers, signal).then(() => {
      clearTimeout(timer);
      return timedOut;
    });
  }

  /** Taking and starting are one script call: a batch costs one round trip. Finding nothing, the
   *  script lists this worker as idle. */
  private async takeAndStart(max: number): Promise<TakenRow[]> {
    const { normal, recovery, backup, alive, workers, idle } = this.keys;
    const n = ++this.listings;
    const before = this.listing;
    const now = nowMs();
    const args = [this.prefix, this.channels.ended, now, this.workerId, max, this.heartbeatTtlMs, n, this.deletionDue(now)];
    const keys = [normal, recovery, backup, alive, workers, idle, this.keys.deletions];
    const { header: listed, rows } = takenRows((await this.run("take", keys, args)) as string);
    // Pushes (or a wake-up) took the listing, and not all of their handovers came: they were lost with
    // the subscriber's connection, and their tasks sit in Backup. Late ones are ignored after the reclaim.
    if (before && !before.ended && listed === 0) this.needsReclaim = true;
    this.listing = rows.length === 0 ? { n, free: max, received: 0, ended: false } : undefined;
    return rows;
  }

  /** Backup's tasks that this worker does not hold go to Recovery; it is unlisted as idle, and the
   *  handovers made before are stale: their tasks are among those given back. */
  private async releaseOrphans(): Promise<void> {
    this.staleBelow = this.listings + 1;
    this.listing = undefined;
    this.handed = [];
    for (const taskid of this.claimedHere) if (!this.held.has(taskid)) this.claimedHere.delete(taskid);
    const { backup, recovery, idle } = this.keys;
    await this.run("releaseOrphans", [backup, recovery, idle], [this.prefix, this.workerId, ...this.held]);
  }

  /** How many of the batch's first tasks this process's worker claims, idle as it is: as many as its
   *  listing has slots left for, fresh ones only. It runs them without waiting for the push's answer,
   *  the longest part of a round trip within one process. */
  private claimable(listing: Listing, batch: PendingPush[], now: number): number {
    if (listing.ended || this.closed || !this.scriptsKnown.has("push")) return 0;
    const room = Math.min(batch.length, listing.free - listing.received);
    let claimed = 0;
    while (claimed < room && now <= expiresAt(batch[claimed].task)) claimed++;
    return claimed;
  }

  /** Already done by take(), in the same atomic step. */
  async start(leases: Lease[]): Promise<StartResult[]> {
    return leases.map((lease) => (lease as RedisLease).started);
  }

  async finish(done: { lease: Lease; outcome: Outcome }[]): Promise<void> {
    const args: (string | number)[] = [this.prefix, this.channels.ended, this.deletionDue(nowMs())];
    for (const { lease, outcome } of done) {
      const { task, started, startedAt } = lease as RedisLease;
      const attempt = started.started ? started.attempt : 0;
      args.push(task.taskid, outcome.status, outcome.completedAt, JSON.stringify(outcome.results), outcome.warning ?? "", startedAt, attempt);
    }
    const written = (await this.run("finish", [this.keys.backup, this.keys.deletions], args)) as number;
    for (const { lease } of done) this.held.delete(lease.task.taskid);
    // Waiters in this process are told here, with the whole record: they may not listen to the ends
    // published (see recordToWaitOn), and need not read it back. If an outcome was refused (which one
    // is not said), they read the record again. A claimed task may end before its task() has returned,
    // so before anybody could wait for it: its record is kept for the rest of this turn (justEnded).
    if (this.waiters.size === 0 && this.claimedHere.size === 0) return;
    if (written !== done.length) {
      for (const { lease } of done) {
        this.claimedHere.delete(lease.task.taskid);
        this.wakeWaiters(lease.task.taskid);
      }
    } else {
      for (const { lease, outcome } of done) {
        const claimed = this.claimedHere.delete(lease.task.taskid);
        const waited = this.waiters.has(lease.task.taskid);
        if (!waited && !claimed) continue;
        const { task, started, startedAt } = lease as RedisLease;
        const { status, completedAt, results, warning } = outcome;
        const { taskid, topic, content, expire, createdAt, job } = task;
        // One literal, not the task spread with the outcome added: a spread copy has a map of its own,
        // and adding to it made five hidden classes per task that the collector had to promote.
        const rec: TaskRecordData = { taskid, topic, content, expire, createdAt, status, attempt: started.started ? started.attempt : 0, startedAt, completedAt, results };
        if (job !== undefined) rec.job = job;
        if (warning) rec.warning = warning;
        if (waited) this.wakeWaiters(task.taskid, rec);
        else this.keepForThisTurn(task.taskid, rec);
      }
    }
  }

  private keepForThisTurn(taskid: string, rec: TaskRecordData): void {
    if (this.justEnded.size === 0) setImmediate(() => this.justEnded.clear());
    this.justEnded.set(taskid, rec);
  }

  async giveBack(leases: Lease[]): Promise<void> {
    const args: string[] = [this.prefix];
    for (const lease of leases) args.push(lease.task.taskid);
    await this.run("giveBack", [this.keys.backup, this.keys.normal, this.keys.idle], args);
    for (const lease of leases) {
      this.held.delete(lease.task.taskid);
      this.claimedHere.delete(lease.task.taskid);
    }
  }

  async depth(): Promise<number> {
    const [normal, recovery] = await this.answered(Promise.all([this.client.llen(this.keys.normal), this.client.llen(this.keys.recovery)]));
    return normal + recovery;
  }

  // --- task records ------------------------------------------------------------------------

  async record(taskid: string): Promise<TaskRecordData | undefined> {
    return (await this.readRecord(taskid)).rec;
  }

  /** The record, and the worker that started it (`owner`), if any. */
  private async readRecord(taskid: string): Promise<{ rec?: TaskRecordData; worker?: string }> {
    const now = nowMs();
    const keys = [`${this.prefix}task:${taskid}`, this.keys.deletions];
    const flat = (await this.run("record", keys, [now, this.channels.ended, this.prefix, this.deletionDue(now), taskid])) as string[];
    if (flat.length === 0) return {};
    const f: Record<string, string> = {};
    for (let i = 0; i < flat.length; i += 2) f[flat[i]] = flat[i + 1];
    const stored = JSON.parse(f.task) as StoredTask;
    const rec: TaskRecordData = {
      taskid,
      topic: stored.topic,
      content: stored.content,
      expire: Number(f.expire),
      createdAt: Number(f.createdAt),
      status: f.status as TaskRecordData["status"],
      attempt: Number(f.attempt ?? 0), // none until first started
      results: f.results ? JSON.parse(f.results) : [],
    };
    if (stored.job !== undefined) rec.job = stored.job;
    if (f.startedAt) rec.startedAt = Number(f.startedAt);
    if (f.completedAt) rec.completedAt = Number(f.completedAt);
    if (f.warning) rec.warning = f.warning;
    return { rec, worker: f.owner };
  }

  async waitEnded(taskid: string, timeoutMs: number, signal?: AbortSignal): Promise<TaskRecordData | undefined> {
    const justEnded = this.justEnded.get(taskid);
    if (justEnded) return justEnded;
    const deadline = nowMs() + timeoutMs;
    for (;;) {
      let rec: TaskRecordData | undefined;
      let ended: TaskRecordData | undefined;
      let wake!: (outcome?: Partial<TaskRecordData>) => void;
      const changed = new Promise<void>((resolve) => {
        wake = (outcome) => {
          // A whole record (from this process's worker), or an outcome to complete the record read with.
          if (outcome && "topic" in outcome) ended = outcome as TaskRecordData;
          else if (outcome && rec) ended = { ...rec, ...outcome };
          resolve();
        };
      });
      let set = this.waiters.get(taskid);
      if (!set) this.waiters.set(taskid, (set = new Set()));
      set.add(wake);
      try {
        if (this.runsHere(taskid) && !signal?.aborted && nowMs() < deadline) {
          // Run by this process's worker, not yet finished: the end is told here (see finish), so the
          // record need not be read first. Waiting was registered before: the end cannot slip past.
          await waitAtMost(changed, Math.min(deadline, nowMs() + recheckMs) - nowMs(), signal);
          if (ended) return ended;
          continue;
        }
        const reading = this.recordToWaitOn(taskid);
        // The worker of this process may end the task during the read: then the read need not be awaited.
        await Promise.race([reading, changed]);
        if (ended) {
          reading.catch(() => {}); // its answer, or its failure, no longer matters
          return ended;
        }
        rec = await reading;
        const now = nowMs();
        if (!rec || hasEnded(rec.status) || signal?.aborted || now >= deadline) return rec;
        // A queued task may expire with nobody touching it: look again then, and every few seconds anyway.
        const expiry = rec.status === "queued" && rec.attempt === 0 ? expiresAt(rec) + 1 : Infinity;
        await waitAtMost(changed, Math.min(deadline, expiry, now + recheckMs) - now, signal);
        if (ended) return ended;
      } finally {
        set.delete(wake);
        if (set.size === 0 && this.waiters.get(taskid) === set) this.waiters.delete(taskid);
        if (this.waiters.size === 0) this.stopListeningSoon();
      }
    }
  }

  /** Whether this process's worker holds the task, or has it handed over: its end will be told here. */
  private runsHere(taskid: string): boolean {
    if (this.held.has(taskid)) return true;
    for (const row of this.handed) if (row[0] === taskid) return true;
    return false;
  }

  /** The record, read so that its end cannot be missed: after subscribing to the ends published,
   *  unless the read shows the task started by this process's worker, which tells waiters here itself
   *  (so a round trip within one process reads no pub/sub message). A waiter is registered before. */
  private async recordToWaitOn(taskid: string): Promise<TaskRecordData | undefined> {
    if (!this.hearingEnds) {
      const { rec, worker } = await this.readRecord(taskid);
      if (!rec || hasEnded(rec.status) || worker === this.workerId) return rec;
      await this.listenForEnds();
    }
    clearTimeout(this.quietTimer);
    return this.record(taskid);
  }

  /** This process hears of ended tasks only while someone in it waits for a task run elsewhere: a busy
   *  queue publishes an end per task, which a producer that never waits should not have to read. */
  private async listenForEnds(): Promise<void> {
    clearTimeout(this.quietTimer);
    await (this.endsSubscription ??= this.subscriber.subscribe(this.channels.ended));
    this.hearingEnds = true;
  }

  private stopListeningSoon(): void {
    clearTimeout(this.quietTimer);
    if (!this.endsSubscription) return;
    this.quietTimer = setTimeout(() => {
      if (this.waiters.size > 0 || !this.endsSubscription || this.closed) return;
      this.endsSubscription = undefined;
      this.hearingEnds = false;
      this.subscriber.unsubscribe(this.channels.ended).catch((err) => this.options.onError?.(err));
    }, 2000);
    this.quietTimer.unref();
  }

  // --- the debug channel -------------------------------------------------------------------

  async publish(line: string): Promise<void> {
    await this.answered(this.client.publish(this.channels.debug, line));
  }

  async subscribe(onLine: (line: string) => void): Promise<() => Promise<void>> {
    const listener = (line: string) => onLine(line);
    if (this.debugListeners.size === 0) await this.subscriber.subscribe(this.channels.debug);
    this.debugListeners.add(listener);
    return async () => {
      if (!this.debugListeners.delete(listener)) return;
      if (this.debugListeners.size === 0 && !this.closed) await this.subscriber.unsubscribe(this.channels.debug);
    };
  }

  // --- leases (one Slack bot per deployment) ------------------------------------------------

  async claim(name: string, owner: string, ttlSeconds: number): Promise<boolean> {
    return (await this.run("claim", [this.key("lease", name)], [owner, Math.round(ttlSeconds * 1000)])) === 1;
  }

  async release(name: string, owner: string): Promise<void> {
    await this.run("release", [this.key("lease", name)], [owner]);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    clearInterval(this.sweeper);
    clearTimeout(this.quietTimer);
    for (const set of this.waiters.values()) for (const wake of set) wake();
    for (const wake of this.takers) wake();
    const goodbye = async () => {
      if (this.heartbeat && this.client.status === "ready") {
        // A clean stop: whatever Backup still holds goes to Recovery now, and nobody needs to rescue it later.
        await this.releaseOrphans().catch(() => {});
        await this.client.multi().del(this.keys.alive).srem(this.keys.workers, this.workerId).exec().catch(() => {});
      }
      // QUIT waits for the server: only where it is connected.
      await Promise.allSettled([this.client, this.subscriber].filter((c) => c.status === "ready").map((c) => c.quit()));
    };
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([goodbye(), new Promise((resolve) => (timer = setTimeout(resolve, goodbyeMs)))]);
    clearTimeout(timer);
    // A server that does not answer leaves a client reconnecting, which would keep the process alive.
    this.client.disconnect();
    this.subscriber.disconnect();
  }

  /** When records ending at `now` are due for deletion (ms): task_record_ttl after the end of the bucket
   *  of time `now` is in. Records of processes with another task_record_ttl go in lists of their own. */
  private deletionDue(now: number): number {
    return (Math.floor(now / this.bucketMs) + 1) * this.bucketMs + this.ttlMs;
  }

  /** Deletes the records that are due, a thousand a script call (Redis stays responsive meanwhile). */
  private async sweep(): Promise<void> {
    if (this.sweeping || this.closed) return;
    this.sweeping = true;
    try {
      for (;;) {
        // 0: nothing was due; otherwise more may be, in the same list or the next.
        const swept = (await this.run("sweep", [this.keys.deletions], [this.prefix, nowMs(), 1000])) as number;
        if (swept === 0 || this.closed) break;
      }
    } catch (err) {
      if (!this.closed) this.options.onError?.(err);
    } finally {
      this.sweeping = false;
    }
  }

  /** A worker keeps a heartbeat (take() renews it too) and rescues the tasks of dead workers. */
  private startHeartbeat(): void {
    if (this.heartbeat) return;
    const beat = async () => {
      await this.client.multi().set(this.keys.alive, "1", "PX", this.heartbeatTtlMs).sadd(this.keys.workers, this.workerId).exec();
      await this.rescueDeadWorkers();
    };
    this.heartbeat = setInterval(() => beat().catch((err) => this.options.onError?.(err)), this.heartbeatTtlMs / 3);
    this.heartbeat.unref();
    beat().catch((err) => this.options.onError?.(err));
  }

  private async rescueDeadWorkers(): Promise<void> {
    const workers = await this.client.smembers(this.keys.workers);
    const p = this.prefix;
    for (const worker of workers) {
      if (worker === this.workerId) continue;
      const keys = [`${p}backup:${worker}`, this.keys.recovery, `${p}alive:${worker}`, this.keys.workers, this.keys.idle];
      await this.run("rescue", keys, [p, worker]);
    }
  }

  private wakeWaiters(taskid: string, outcome?: Partial<TaskRecordData>): void {
    const set = this.waiters.get(taskid);
    if (set) for (const wake of set) wake(outcome);
  }

  /** Tasks its own process's push handed over to this worker, in the push's answer, or a wake-up on its
   *  inbox channel (no tasks): kept for take() under their listing number, unless a reclaim has given
   *  them back already. */
  private receiveHandover(text: string): void {
    const { header, rows } = takenRows(text);
    this.receive(header, rows);
  }

  /** Tasks given to this worker under listing `n`, by a handover or claimed by its own push. */
  private receive(n: number, rows: TakenRow[]): void {
    if (n < this.staleBelow) return;
    const listing = this.listing;
    if (listing?.n === n) {
      listing.received += rows.length;
      if (rows.length === 0 || listing.received >= listing.free) listing.ended = true;
    }
    for (const row of rows) this.handed.push(row);
    for (const wake of this.takers) wake();
  }

  private onMessage(channel: string, message: string): void {
    if (channel === this.channels.inbox) {
      this.receiveHandover(message);
    } else if (channel === this.channels.ended) {
      if (!message.startsWith("[")) return this.wakeWaiters(message);
      // A batch of outcomes: read it only if somebody here waits for one of them.
      if (this.waiters.size === 0) return;
      for (const outcome of parseEnded(message)) this.wakeWaiters(outcome.taskid, outcome);
    } else if (channel === this.channels.debug) {
      for (const listener of this.debugListeners) listener(message);
    } else if (channel === this.channels.jobs) {
      for (const watcher of this.jobWatchers) watcher();
    }
  }
}

/** Delete every key of a namespace (a test run's, a benchmark's): the server may be shared, so never more. */
export async function deleteRedisNamespace(url: string, namespace: string): Promise<void> {
  const redis = new Redis(url);
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `{${namespace}}:*`, "COUNT", 1000);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}

class RedisJobStore implements JobStore {
  constructor(private readonly backend: RedisBackend) {}

  async list(): Promise<JobDefinition[]> {
    const all = await this.backend.answered(this.backend.commands.hgetall(this.backend.key("jobs")));
    return Object.values(all)
      .map((text) => JSON.parse(text) as JobDefinition)
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async put(definitions: JobDefinition[], replace: boolean): Promise<void> {
    // Checked here for the clear message (every conflict named), and again atomically by the script.
    mergeDefinitions(await this.list(), definitions, replace);
    const args: string[] = [this.backend.jobsChannel, replace ? "1" : "0"];
    for (const d of definitions) args.push(d.name, JSON.stringify(d));
    const taken = (await this.backend.run("putJobs", [this.backend.key("jobs")], args)) as string[];
    if (taken.length > 0) mergeDefinitions(await this.list(), definitions, false);
  }

  async remove(name: string): Promise<boolean> {
    const removed = await this.backend.answered(this.backend.commands.hdel(this.backend.key("jobs"), name));
    if (removed > 0) await this.backend.answered(this.backend.commands.publish(this.backend.jobsChannel, "remove"));
    return removed > 0;
  }

  async watch(onChange: () => void): Promise<() => Promise<void>> {
    const stop = this.backend.addJobWatcher(onChange);
    return async () => {
      stop();
    };
  }
}

/** The outcomes the finish script publishes: [taskid, status, completedAt, startedAt, attempt, results, warning]. */
function parseEnded(message: string): (Partial<TaskRecordData> & { taskid: string })[] {
  const batch = JSON.parse(message) as [string, TaskRecordData["status"], number, number, number, TaskRecordData["results"], string][];
  return batch.map(([taskid, status, completedAt, startedAt, attempt, results, warning]) => {
    const outcome: Partial<TaskRecordData> & { taskid: string } = { taskid, status, completedAt, startedAt, attempt, results };
    if (warning) outcome.warning = warning;
    return outcome;
  });
}

function waitAtMost(promise: Promise<void>, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, Math.max(0, ms));
    const offAbort = signal && onAbort(signal, done);
    promise.then(done);
    function done() {
      clearTimeout(timer);
      offAbort?.();
      resolve();
    }
  });
}
