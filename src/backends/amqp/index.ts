// AMQP mode: tasks queued on RabbitMQ (AMQP 0-9-1). The layout is in ./layout.ts and
// docs/amqp.md; in short:
// - a task is one persistent message in a durable queue capped by the broker at job_queue_size
//   (x-max-length, x-overflow reject-publish); task() waits for the publisher confirm, so a refused
//   task throws QueueFullError and a task() that returned is in the broker;
// - a worker consumes with prefetch job_queue_bulk_read_size and acknowledges a task only after all
//   its jobs finished and its record was written: a worker that dies leaves it to be redelivered;
// - the broker never expires a task (no per-message TTL): workers and readers decide expiry from the
//   task and its record, so a started task given back by a dead worker is never dropped;
// - records live in a stream every process reads (./records.ts); job definitions in a shared
//   document (./document.ts); the debug channel is a fanout exchange (./debug.ts).
// One file past 400 lines: publishing (declare, confirm, shed a full queue's head) and starting tasks
// share the queue sizes, the record log and the publisher channel this class holds.
import { hostname } from "node:os";
import { triedWarning, tryLine, type Backend, type BackendOptions, type ConnectionChange, type Deployment, type QueueView, type JobStore, type Lease, type RecordPage, type RecordQuery, type StartResult, type TaskEvent } from "../../backend.js";
import type { JobDefinition } from "../../definitions.js";
import { ConnectionError, ParameterError, QueueFullError } from "../../errors.js";
import { expiresAt, hasEnded, nowMs, type Outcome, type QueuedTask, type TaskRecordData } from "../../record.js";
import { AmqpConnection } from "./connection.js";
import { DebugChannel } from "./debug.js";
import { SharedDocument } from "./document.js";
import { AmqpJobStore } from "./jobs.js";
import { Layout, queueTypeMismatch, taskQueueOptions, type QueueType } from "./layout.js";
import { PublishWindow } from "./publish-window.js";
import { lostDelivery, type RecordEvent, type StoredRecord } from "./fold.js";
import { isNack, RecordLog } from "./records.js";
import { taskIn, Taker, type AmqpLease } from "./taker.js";
import type { Channel, ChannelModel, ConfirmChannel } from "amqplib";

export interface AmqpBackendOptions extends BackendOptions {
  /** shown by the broker (management UI, `rabbitmqctl list_connections name`) */
  connectionName?: string;
  /** the consumer prefetch; by default the `max` of the worker's first take(), job_queue_bulk_read_size */
  prefetch?: number;
  /** errors of the connection that are handled (reconnects): for logs */
  onError?: (err: unknown) => void;
  /** how long task() keeps trying through a lost connection before it throws ConnectionError; 30 s */
  publishPatienceMs?: number;
  /** amqp_queue_type: the type of the task queues and shared documents (default classic) */
  queueType?: QueueType;
}

export async function createAmqpBackend(url: string, options: AmqpBackendOptions): Promise<Backend> {
  const backend = new AmqpBackend(url, options);
  await backend.open();
  return backend;
}

/** How long task() keeps trying through a lost connection before it gives up, unless told otherwise. */
const publishPatienceMs = 30_000;

/** Tasks a full queue sheds from its head at most per refused task(): the next refusal sheds more. */
const shedBatch = 1000;

/** A task message's properties: one object for all of them. */
const persistent = { persistent: true } as const;

/** Tasks published and not yet confirmed by the broker, at most (see ./publish-window.ts). */
const publishWindowSize = 64;

export class AmqpBackend implements Backend {
  readonly mode = "amqp";
  location: string;
  readonly jobs: JobStore;
  readonly layout: Layout;
  private conn!: AmqpConnection;
  /** leases this process holds, and on which connection (a reconnect loses them) */
  private leases = new Map<string, { owner: string; model: ChannelModel }>();
  private records!: RecordLog;
  private debug!: DebugChannel;
  private definitions!: SharedDocument<JobDefinition[]>;
  /** every task queue size any process used, so that workers consume them all */
  private sizes!: SharedDocument<number[]>;
  private declared = new Map<number, Promise<void>>();
  private publisher?: ConfirmChannel;
  private taker?: Taker;
  private takerReady?: Promise<Taker>;
  private stopWatchingSizes?: () => Promise<void>;
  /** leases started here and not finished yet, by taskid */
  private running = new Map<string, AmqpLease>();
  private publishWindow = new PublishWindow(publishWindowSize);
  /** a full queue's sweep of its head, by size (see shedExpired) */
  private shedding = new Map<number, Promise<number>>();
  private readonly onError: (err: unknown) => void;

  constructor(
    private readonly url: string,
    private readonly options: AmqpBackendOptions,
  ) {
    this.layout = new Layout(options.namespace ?? "jobshell", options.debugChannel, options.queueType);
    this.location = url;
    this.onError = options.onError ?? (() => {});
    this.jobs = new AmqpJobStore(() => this.definitions);
  }

  /** max_attempts */
  private get maxAttempts(): number {
    return this.options.maxAttempts ?? 3;
  }

  async open(): Promise<void> {
    const name = this.options.connectionName ?? `jobshell ${this.layout.namespace} ${hostname()} pid ${process.pid}`;
    this.conn = await AmqpConnection.open(this.url, name, this.onError);
    this.location = this.conn.location;
    this.records = new RecordLog(this.conn, this.layout, this.options.taskRecordTtl, this.onError, (taskid) => this.running.has(taskid));
    this.debug = new DebugChannel(this.conn, this.options.debugChannel, () => this.records.channel);
    this.definitions = new SharedDocument(this.conn, this.layout, "jobs", () => []);
    this.sizes = new SharedDocument(this.conn, this.layout, "queues", () => []);
    try {
      await this.conn.addSetup(this.setupPublisher);
      await this.conn.addSetup(this.records.setup);
      await this.conn.addSetup(this.debug.setup);
      await this.conn.addSetup(this.definitions.setup);
      await this.conn.addSetup(this.sizes.setup);
      // Read the records other processes made before answering for them.
      await this.records.sync();
    } catch (err) {
      await this.conn.close();
      throw err instanceof ConnectionError || err instanceof ParameterError ? err : new ConnectionError(`RabbitMQ at ${this.location}: ${(err as Error).message}`, { cause: err });
    }
  }

  private readonly setupPublisher = async (model: ChannelModel): Promise<void> => {
    const ch = await this.conn.channel(model, true);
    ch.on("close", () => {
      if (this.publisher === ch) this.publisher = undefined;
    });
    // Queues may have been deleted while we were away: declare them again.
    for (const size of this.declared.keys()) await ch.assertQueue(this.layout.taskQueue(size), taskQueueOptions(size, this.layout.queueType));
    this.publisher = ch;
  };

  // --- the queue ---------------------------------------------------------------------------

  async push(task: QueuedTask, limit: number): Promise<void> {
    // The patience counts from the call: declaring the queue or waiting for the window uses some of it.
    const giveUp = Date.now() + (this.options.publishPatienceMs ?? publishPatienceMs);
    await this.declare(limit, giveUp);
    const queued = this.records.append([{ t: "queued", task, at: nowMs() }]);
    try {
      await this.publishTask(task, limit, giveUp);
    } catch (err) {
      queued.catch(() => {});
      const refused = this.records.append([{ t: "refused", taskid: task.taskid, at: nowMs() }]).catch(this.onError);
      // Through an outage the refusal goes out on the next connection: task() fails now, not then.
      if (!(err instanceof ConnectionError)) await refused;
      throw err;
    }
    await queued;
  }

  async take(max: number, signal: AbortSignal): Promise<Lease[]> {
    const taker = await (this.takerReady ??= this.startTaking(this.options.prefetch ?? max));
    return taker.take(max, signal);
  }

  async start(leases: Lease[]): Promise<StartResult[]> {
    const held = leases as AmqpLease[];
    // A redelivered task may have been started by a worker that died: read its record first.
    if (held.some((l) => l.message.fields.redelivered)) await this.records.sync();
    const now = nowMs();
    const events: RecordEvent[] = [];
    const exhausted: { lease: Lease; outcome: Outcome }[] = [];
    const results = held.map((lease): StartResult => {
      const { task } = lease;
      const rec = this.records.stored(task.taskid);
      let attempt: number;
      const mine = this.running.get(task.taskid);
      if (mine && lease.message.fields.redelivered && !this.taker?.holds(mine)) {
        // Our connection dropped while we ran it and the broker gave it back to us: the run going on
        // finishes it, and acknowledges this delivery instead of the lost one.
        mine.redelivery = lease;
        return { started: false, why: "gone" };
      }
      if (rec && rec.status !== "queued" && rec.status !== "started") {
        this.taker?.ack(lease);
        return { started: false, why: "gone" };
      } else if (rec?.status === "started") {
        // Started already: a redelivery after its worker died runs again; a plain copy is a duplicate.
        if (!lease.message.fields.redelivered) {
          this.taker?.ack(lease);
          return { started: false, why: "gone" };
        }
        if (rec.attempt >= this.maxAttempts) {
          // Tried max_attempts times: it ends failed, acknowledged once its end is written.
          const tries = [...((rec as StoredRecord).tries ?? []), tryLine(rec.attempt, lostDelivery)];
          lease.attempt = rec.attempt;
          this.running.set(task.taskid, lease);
          exhausted.push({ lease, outcome: { status: "failed", results: [], completedAt: now, warning: triedWarning(rec.attempt, this.maxAttempts, tries) } });
          return { started: false, why: "gone" };
        }
        attempt = rec.attempt + 1;
      } else if (now > expiresAt(task)) {
        this.taker?.ack(lease);
        events.push({ t: "expired", taskid: task.taskid, at: now });
        return { started: false, why: "expired" };
      } else {
        attempt = (rec?.attempt ?? 0) + 1;
      }
      lease.attempt = attempt;
      this.running.set(task.taskid, lease);
      events.push({ t: "started", taskid: task.taskid, attempt, at: now });
      return { started: true, attempt };
    });
    // Not awaited: the task's end is written on the same channel after it, and acknowledged only then.
    if (events.length > 0) this.records.append(events).catch(this.onError);
    if (exhausted.length > 0) this.finish(exhausted).catch(this.onError);
    return results;
  }

  async finish(done: { lease: Lease; outcome: Outcome }[]): Promise<void> {
    const now = nowMs();
    const events: RecordEvent[] = done.map(({ lease, outcome }) => {
      const attempt = (lease as AmqpLease).attempt ?? this.records.stored(lease.task.taskid)?.attempt ?? 1;
      return { t: "ended", task: lease.task, attempt, outcome, at: now };
    });
    for (const { lease } of done) {
      if (this.running.get(lease.task.taskid) === lease) this.running.delete(lease.task.taskid);
    }
    // The acks go right after the events on the same channel: not waiting for the broker's confirm
    // keeps the prefetch window moving, and the broker cannot have an ack without its task's end.
    await new Promise<void>((resolve, reject) => {
      this.records
        .appendNow(events, (ch) => {
          this.taker?.ackOn(ch, done.map(({ lease }) => lease as AmqpLease));
          resolve();
        })
        .catch(reject);
    });
  }

  async giveBack(leases: Lease[]): Promise<void> {
    for (const lease of leases) this.taker?.requeue(lease as AmqpLease);
  }

  async retry(tries: { lease: Lease; why: string }[]): Promise<void> {
    const now = nowMs();
    const ended: { lease: Lease; outcome: Outcome }[] = [];
    const again: AmqpLease[] = [];
    const events: RecordEvent[] = [];
    for (const { lease, why } of tries) {
      const held = lease as AmqpLease;
      const attempt = held.attempt ?? 1;
      if (attempt >= this.maxAttempts) {
        const list = [...((this.records.stored(held.task.taskid) as StoredRecord | undefined)?.tries ?? []), tryLine(attempt, why)];
        ended.push({ lease, outcome: { status: "failed", results: [], completedAt: now, warning: triedWarning(attempt, this.maxAttempts, list) } });
      } else {
        events.push({ t: "tried", taskid: held.task.taskid, attempt, why, at: now });
        if (this.running.get(held.task.taskid) === held) this.running.delete(held.task.taskid);
        again.push(held);
      }
    }
    if (ended.length > 0) await this.finish(ended);
    if (again.length === 0) return;
    // Back to the queue right after the event that says so, on the same channel.
    await new Promise<void>((resolve, reject) => {
      this.records
        .appendNow(events, () => {
          for (const lease of again) this.taker?.requeue(lease);
          resolve();
        })
        .catch(reject);
    });
  }

  async listRecords(query: RecordQuery): Promise<RecordPage> {
    return this.records.list(query);
  }

  async watchTasks(onEvent: (event: TaskEvent) => void): Promise<() => Promise<void>> {
    const stop = this.records.watch(onEvent);
    return async () => void stop();
  }

  async depth(): Promise<number> {
    return (await this.deployment()).queues.reduce((total, q) => total + q.depth, 0);
  }

  /** Each task queue (one per job_queue_size in use) with its depth and consumer count: the broker
   *  names no consumers on a passive declare, so no workers are listed. */
  async deployment(): Promise<Deployment> {
    const sizes = new Set([...this.declared.keys(), ...(await this.sizes.read())]);
    const queues: QueueView[] = [];
    for (const size of sizes) {
      const name = this.layout.taskQueue(size);
      const q = await this.conn.scratch((ch) => ch.checkQueue(name)).catch(() => undefined);
      if (q) queues.push({ name, depth: q.messageCount, consumers: q.consumerCount });
    }
    return { queues };
  }

  // --- task records ------------------------------------------------------------------------

  async record(taskid: string): Promise<TaskRecordData | undefined> {
    if (!this.records.read(taskid)) await this.records.sync();
    return this.records.read(taskid);
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
  // A lease is an exclusive queue `<ns>.lease.<name>`: the broker grants it to one connection and
  // frees it when that connection dies, so the ttl is the broker's own liveness check.

  async claim(name: string, owner: string, _ttlSeconds: number): Promise<boolean> {
    const holder = this.leases.get(name);
    if (holder && holder.owner !== owner) return false;
    const model = await this.conn.current();
    if (holder?.model === model) return true;
    try {
      await this.conn.scratch((ch) => ch.assertQueue(this.layout.lease(name), { exclusive: true, autoDelete: true, durable: false }), model);
    } catch {
      // RESOURCE_LOCKED: another connection holds it.
      this.leases.delete(name);
      return false;
    }
    this.leases.set(name, { owner, model });
    return true;
  }

  async release(name: string, owner: string): Promise<void> {
    if (this.leases.get(name)?.owner !== owner) return;
    this.leases.delete(name);
    await this.conn.scratch((ch) => ch.deleteQueue(this.layout.lease(name))).catch(() => {});
  }

  onConnection(listener: (change: ConnectionChange) => void): () => void {
    return this.conn.outage.listen(listener);
  }

  async close(): Promise<void> {
    await this.stopWatchingSizes?.().catch(() => {});
    await this.taker?.close();
    await this.records.close();
    await this.conn.close();
  }

  // --- internals ---------------------------------------------------------------------------

  /** Declare the task queue of that size once, and list it for every worker; ConnectionError if
   *  there is no connection by `giveUp`. */
  private declare(size: number, giveUp: number): Promise<void> {
    let declaring = this.declared.get(size);
    if (!declaring) {
      declaring = (async () => {
        const model = await this.conn.currentBy(giveUp);
        const queue = this.layout.taskQueue(size);
        const type = this.layout.queueType;
        await this.conn.scratch((ch) => ch.assertQueue(queue, taskQueueOptions(size, type)), model).catch((err: unknown) => {
          throw queueTypeMismatch(err, queue, type);
        });
        await this.sizes.update((known) => (known.includes(size) ? undefined : [...known, size]));
        await this.taker?.add(size);
      })();
      this.declared.set(size, declaring);
      declaring.catch(() => this.declared.delete(size));
    }
    return declaring;
  }

  /** Publish with a confirm, within the publish window. */
  private async publishTask(task: QueuedTask, limit: number, giveUp: number): Promise<void> {
    await this.publishWindow.acquire();
    try {
      await this.publishConfirmed(task, limit, giveUp);
    } finally {
      this.publishWindow.release();
    }
  }

  /** Through a lost connection it is published again on the next one. */
  private async publishConfirmed(task: QueuedTask, limit: number, giveUp: number): Promise<void> {
    const body = Buffer.from(JSON.stringify(task));
    const queue = this.layout.taskQueue(limit);
    for (;;) {
      // Waiting for a new connection no longer than the patience: past it, the loop gives up below.
      const ch = this.publisher ?? (await this.conn.currentBy(giveUp).then(() => this.publisher, () => undefined));
      if (ch) {
        // No per-message TTL: the broker would drop a started task that went back to the queue when
        // its worker died once past its expire, and it would never run again. Workers decide expiry.
        // No other property either (the taskid is in the body): each costs the broker time a message.
        const outcome = await new Promise<unknown>((resolve) => {
          ch.sendToQueue(queue, body, persistent, (err) => resolve(err));
        });
        if (!outcome) return;
        if (isNack(outcome)) {
          if ((await this.shedExpired(limit)) > 0) continue;
          throw new QueueFullError(limit);
        }
      }
      if (Date.now() >= giveUp) throw new ConnectionError(`could not enqueue the task: no connection to ${this.location}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** A full queue first sheds the tasks at its head that can no longer start, as memory mode does:
   *  the broker does not expire them. One sweep of a queue at a time; resolves to how many went. */
  private shedExpired(size: number): Promise<number> {
    let sweep = this.shedding.get(size);
    if (!sweep) {
      sweep = this.shedHead(size).finally(() => this.shedding.delete(size));
      this.shedding.set(size, sweep);
    }
    return sweep;
  }

  private async shedHead(size: number): Promise<number> {
    // A task at the head may have been started by a worker that died: know its record first.
    await this.records.sync();
    // Looking at the head takes it out of the queue, and one published meanwhile takes its place:
    // put back, it would leave the queue over its cap. So look only when a task may be there to shed.
    if (!this.records.someWaitingExpired()) return 0;
    const expired: RecordEvent[] = [];
    const dropped = await this.conn.scratch(async (ch) => {
      let count = 0;
      while (count < shedBatch) {
        const msg = await ch.get(this.layout.taskQueue(size), { noAck: false });
        if (!msg) break;
        const task = taskIn(msg);
        const fate = task ? this.fateAtHead(task) : "gone";
        if (fate === "runs") {
          ch.nack(msg, false, true); // back to the head, where it was
          break;
        }
        ch.ack(msg);
        if (fate === "expired") expired.push({ t: "expired", taskid: task!.taskid, at: nowMs() });
        count += 1;
      }
      return count;
    });
    if (expired.length > 0) await this.records.append(expired);
    return dropped;
  }

  /** What a task at a full queue's head comes to: it `runs` (waiting still, or started by a worker
   *  that died), it has `expired` (never started, past its expire), or it is `gone` (ended already). */
  private fateAtHead(task: QueuedTask): "runs" | "expired" | "gone" {
    const rec = this.records.stored(task.taskid);
    if (rec?.status === "started") return "runs";
    if (rec && hasEnded(rec.status)) return "gone";
    return nowMs() > expiresAt(task) ? "expired" : "runs";
  }

  private async startTaking(prefetch: number): Promise<Taker> {
    const taker = new Taker(this.conn, () => this.records.channel, this.layout, prefetch, this.onError);
    await this.conn.addSetup(taker.setup);
    this.taker = taker;
    const consumeAll = async () => {
      for (const size of [...this.declared.keys(), ...(await this.sizes.read())]) await taker.add(size);
    };
    this.stopWatchingSizes = await this.sizes.watch(() => void consumeAll().catch(this.onError));
    await consumeAll();
    return taker;
  }
}

/** Delete every queue and exchange a namespace declared (tests; tearing down a tenant). */
export async function deleteAmqpNamespace(url: string, namespace: string, debugChannel?: string): Promise<void> {
  const layout = new Layout(namespace, debugChannel ?? "");
  const conn = await AmqpConnection.open(url, `jobshell cleanup ${namespace}`);
  try {
    const sizes = await new SharedDocument<number[]>(conn, layout, "queues", () => []).read().catch(() => []);
    const drop = (fn: (ch: Channel) => Promise<unknown>) => conn.scratch(fn).catch(() => {});
    for (const size of sizes) await drop((ch) => ch.deleteQueue(layout.taskQueue(size)));
    await drop((ch) => ch.deleteQueue(layout.records));
    for (const doc of ["jobs", "queues"]) {
      await drop((ch) => ch.deleteQueue(layout.documentQueue(doc)));
      await drop((ch) => ch.deleteQueue(layout.documentLock(doc)));
      await drop((ch) => ch.deleteExchange(layout.documentChanged(doc)));
    }
    if (debugChannel) await drop((ch) => ch.deleteExchange(debugChannel));
  } finally {
    await conn.close();
  }
}
