// Task records over AMQP: every change of a record (queued, started, ended) is an event appended to
// one RabbitMQ stream per namespace, and every process folds the stream (./fold.ts) into its own view
// of the records. A process that starts reads the stream from task_record_ttl ago, so it also knows the
// records other processes made; a marker it appends and reads back tells it that it has caught up.
// The stream keeps events for task_record_ttl, but a task may wait or run longer than that: a record
// not ended and untouched for half the ttl is appended again as a snapshot (by any process while it is
// queued, by the worker running it once started), so a process that starts later still finds it.
// Reading a snapshot renews the record everywhere, so one process renews it.
// A process sees its own events at once (an overlay on its view) and folds them into the view only
// when it reads them back from the stream, in stream order like everyone else: the views converge.
// The view is also kept in creation order for listRecords(), and its changes are the task events.
// One file past 400 lines: the view, its overlay, the stream and the waiters share one state.
import { randomUUID } from "node:crypto";
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from "amqplib";
import { ConnectionError } from "../../errors.js";
import { expiresAt, hasEnded, nowMs, type QueuedTask, type TaskRecordData } from "../../record.js";
import type { RecordPage, RecordQuery, TaskEvent } from "../../backend.js";
import { eventOf } from "../../record-query.js";
import { CreationOrder } from "../creation-order.js";
import type { AmqpConnection } from "./connection.js";
import { recordStreamOptions, type Layout } from "./layout.js";
import { TaskWaiters } from "../waiters.js";
import { droppable, fold, taskidOf, type RecordEvent, type StoredRecord } from "./fold.js";
import { decodeBatch, encodeBatch, formatVersion } from "./encoding.js";

/** A stream message of format 1 (./encoding.ts has the others): the events one process appended in one turn. */
interface EventBatchV1 {
  events: RecordEvent[];
}

interface Pending {
  batch: number;
  events: RecordEvent[];
  /** one promise for the whole batch: every append() into it shares it */
  confirmed: Promise<void>;
  settle: (err?: Error) => void;
  /** run once the batch is written to the channel, before anything else is: acks that must follow it */
  written: ((ch: ConfirmChannel) => void)[];
}

/** Events per stream message at most: big enough to carry a burst, small enough for one frame set. */
const maxBatch = 500;

export class RecordLog {
  /** every process on the queue has a different one */
  readonly origin = randomUUID();
  /** the records as folded from the stream, in stream order */
  private view = new Map<string, StoredRecord>();
  /** the view's records whose task is known, in creation order */
  private order = new CreationOrder<StoredRecord>((rec) => this.view.get(rec.taskid) === rec);
  private taskWatchers = new Set<(event: TaskEvent) => void>();
  /** the view's tasks still waiting in a queue (queued, task known): when each expires, by taskid */
  private waiting = new Map<string, number>();
  /** none of them expires before this time (a lower bound: it is only raised by a scan) */
  private waitingFloor = Infinity;
  /** this process's events not read back from the stream yet, by taskid */
  private overlay = new Map<string, RecordEvent[]>();
  /** batches sent and not read back, by number */
  private unread = new Map<number, RecordEvent[]>();
  private batches = 0;
  private waiters = new TaskWaiters();
  private markers = new Map<string, () => void>();
  /** formats of the stream's messages this build cannot read, once told */
  private unknownFormats = new Set<unknown>();
  private outbox: Pending[] = [];
  private inflight = new Set<Pending>();
  private flushScheduled = false;
  private publisher?: ConfirmChannel;

  /** The channel events are published on. A worker consumes its tasks on it too, so that a task's
   *  acknowledgement always reaches the broker after the event that ended it. */
  get channel(): ConfirmChannel | undefined {
    return this.publisher;
  }
  private reader?: Channel;
  /** the offset of the last stream message read: a reconnect resumes right after it */
  private offset?: number;
  private sweeper: NodeJS.Timeout;
  private closed = false;
  private readonly ttlMs: number;

  constructor(
    private readonly conn: AmqpConnection,
    private readonly layout: Layout,
    private readonly ttlSeconds: number,
    private readonly onError: (err: unknown) => void,
    /** whether this process's worker is running the task now */
    private readonly runsHere: (taskid: string) => boolean = () => false,
  ) {
    this.ttlMs = ttlSeconds * 1000;
    this.sweeper = setInterval(() => {
      this.dropOld();
      this.renew();
    }, Math.min(this.ttlMs, 1000)).unref();
  }

  /** Declare the stream, read it from where this process stopped, and send what was not confirmed. */
  readonly setup = async (model: ChannelModel): Promise<void> => {
    await ensureStream(this.conn, model, this.layout.records, this.ttlSeconds);
    const publisher = await this.conn.channel(model, true);
    const reader = await this.conn.channel(model, false);
    await reader.prefetch(2000);
    publisher.on("close", () => {
      if (this.publisher === publisher) this.publisher = undefined;
    });
    // From the start of what the stream keeps: a task may wait or run longer than task_record_ttl.
    const from = this.offset === undefined ? "first" : this.offset + 1;
    await reader.consume(this.layout.records, (msg) => msg && this.receive(reader, msg), {
      noAck: false,
      arguments: { "x-stream-offset": from },
    });
    this.publisher = publisher;
    this.reader = reader;
    // What was sent but not confirmed on the lost connection is sent again: the fold ignores repeats.
    const unconfirmed = [...this.inflight];
    this.inflight.clear();
    this.outbox.unshift(...unconfirmed);
    this.scheduleFlush();
  };

  /** Resolves once every event appended to the stream before now has been read. */
  async sync(): Promise<void> {
    const id = randomUUID();
    const seen = new Promise<void>((resolve) => this.markers.set(id, resolve));
    await this.append([{ t: "marker", id, at: nowMs() }]);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ConnectionError("the record stream did not answer within 30 s")), 30_000);
    });
    try {
      await Promise.race([seen, late]);
    } finally {
      clearTimeout(timer);
      this.markers.delete(id);
    }
  }

  /** Apply events here at once and append them to the stream; resolves when the broker has them.
   *  `written` runs right after they are written to the channel (again, on a new channel, if the
   *  connection is lost before the broker confirms them). */
  append(events: RecordEvent[], written?: (ch: ConfirmChannel) => void): Promise<void> {
    const done = this.enqueue(events, written);
    this.scheduleFlush();
    return done;
  }

  /** As append(), but written to the channel now rather than with the rest of this turn's events:
   *  for a worker's ends, whose acks hold the broker's prefetch window. */
  appendNow(events: RecordEvent[], written?: (ch: ConfirmChannel) => void): Promise<void> {
    const done = this.enqueue(events, written);
    this.flush();
    return done;
  }

  private enqueue(events: RecordEvent[], written?: (ch: ConfirmChannel) => void): Promise<void> {
    for (const ev of events) {
      const id = taskidOf(ev);
      if (id === undefined) continue;
      if (ev.t === "queued") {
        // A record's first event is the same in any order: it goes to the view at once.
        this.apply(ev);
        continue;
      }
      const pending = this.overlay.get(id);
      if (pending) pending.push(ev);
      else this.overlay.set(id, [ev]);
      // waitEnded() waits for an end only (a queued task's expiry it times itself)
      if (ev.t === "ended" || ev.t === "refused" || ev.t === "expired") this.waiters.wake(id);
    }
    if (this.closed) return Promise.reject(new ConnectionError("the record stream is closed"));
    const last = this.outbox[this.outbox.length - 1];
    if (last && last.events.length + events.length <= maxBatch) {
      for (const ev of events) last.events.push(ev);
      if (written) last.written.push(written);
      return last.confirmed;
    }
    let settle!: (err?: Error) => void;
    const confirmed = new Promise<void>((resolve, reject) => (settle = (err) => (err ? reject(err) : resolve())));
    // Nobody may wait for it (a worker's started events): its failure is reported where awaited.
    confirmed.catch(() => {});
    const pending: Pending = { batch: ++this.batches, events: [...events], confirmed, settle, written: written ? [written] : [] };
    this.unread.set(pending.batch, pending.events);
    this.outbox.push(pending);
    return confirmed;
  }

  /** The record as stored, without derived expiry: what a worker decides on. */
  stored(taskid: string): TaskRecordData | undefined {
    let rec = this.view.get(taskid);
    const pending = this.overlay.get(taskid);
    if (pending) {
      let copy: StoredRecord | undefined = rec && { ...rec };
      for (const ev of pending) copy = fold(copy, ev);
      rec = copy;
    }
    if (!rec || droppable(rec, nowMs(), this.ttlMs)) return undefined;
    return rec;
  }

  /** The record as shown: a queued task past its expire is expired. */
  read(taskid: string): TaskRecordData | undefined {
    const rec = this.stored(taskid);
    if (!rec || rec.topic === undefined) return undefined;
    if (rec.status !== "queued") return { ...rec };
    const deadline = expiresAt(rec);
    if (nowMs() <= deadline) return { ...rec };
    return { ...rec, status: "expired", completedAt: deadline, results: [] };
  }

  // Not async, and no loop of awaits: tens of thousands of these may be pending at once.
  waitEnded(taskid: string, timeoutMs: number, signal?: AbortSignal): Promise<TaskRecordData | undefined> {
    const deadline = nowMs() + timeoutMs;
    const known = this.stored(taskid);
    if (known && known.topic !== undefined) {
      if (hasEnded(known.status)) return Promise.resolve(this.read(taskid));
      return new Promise((resolve) => this.park(taskid, deadline, signal, resolve));
    }
    // Not known here: read the stream up to now first.
    return this.sync().then(() => new Promise((resolve) => this.park(taskid, deadline, signal, resolve)));
  }

  /** Answer with the record if it has ended or the wait is over; else wait for it to change, and again. */
  private park(taskid: string, deadline: number, signal: AbortSignal | undefined, answer: (rec?: TaskRecordData) => void): void {
    const rec = this.read(taskid);
    const now = nowMs();
    if (!rec || hasEnded(rec.status) || signal?.aborted || now >= deadline) return answer(rec);
    // A queued task may expire with nobody touching it: wake up then to report it.
    const until = rec.status === "queued" ? Math.min(deadline, expiresAt(rec) + 1) : deadline;
    this.waiters.add(taskid, until - now, signal, () => this.park(taskid, deadline, signal, answer));
  }

  /** A page of the records, as read() shows them. */
  list(query: RecordQuery): RecordPage {
    return this.order.page(query, this.view.size, (rec) => this.read(rec.taskid));
  }

  /** Every change of the view from now on, as a task event. */
  watch(onEvent: (event: TaskEvent) => void): () => void {
    const watcher = (event: TaskEvent) => onEvent(event);
    this.taskWatchers.add(watcher);
    return () => this.taskWatchers.delete(watcher);
  }

  async close(): Promise<void> {
    // Let what is already sent be confirmed: a worker's last outcomes must reach the stream.
    const deadline = Date.now() + 5000;
    while ((this.outbox.length > 0 || this.inflight.size > 0) && Date.now() < deadline && this.publisher) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    this.closed = true;
    clearInterval(this.sweeper);
    for (const p of [...this.outbox, ...this.inflight]) p.settle(new ConnectionError("closed"));
    this.waiters.wakeAll();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    const ch = this.publisher;
    if (!ch) return;
    while (this.outbox.length > 0) {
      const pending = this.outbox.shift()!;
      this.inflight.add(pending);
      // The origin and the batch's number: reading it back retires its events from the overlay.
      const headers = { v: formatVersion, origin: this.origin, batch: pending.batch };
      ch.sendToQueue(this.layout.records, encodeBatch(pending.events), { persistent: true, headers }, (err) => {
        if (!this.inflight.has(pending)) return; // sent again on a new connection
        if (err && !isNack(err)) return; // the channel went: setup sends it again on the next one
        this.inflight.delete(pending);
        pending.settle(err ? new ConnectionError(`the record stream refused an event: ${err.message ?? err}`) : undefined);
      });
      for (const after of pending.written) {
        try {
          after(ch);
        } catch (err) {
          this.onError(err);
        }
      }
    }
  }

  private receive(ch: Channel, msg: ConsumeMessage): void {
    const headers = msg.properties.headers ?? {};
    if (typeof headers["x-stream-offset"] === "number") this.offset = headers["x-stream-offset"];
    try {
      if (headers.origin === this.origin) {
        // Our own batch: we still have its events, no need to parse them. A copy sent again after
        // a reconnect finds them applied already.
        const events = this.unread.get(headers.batch);
        if (events) {
          for (const ev of events) {
            if (ev.t === "marker") this.markers.get(ev.id)?.();
            else if (ev.t !== "queued") this.apply(ev); // queued ones went to the view when appended
          }
          this.retire(headers.batch);
        }
      } else {
        for (const ev of this.decode(headers.v, msg.content)) this.apply(ev);
      }
    } catch (err) {
      this.onError(err);
    }
    if (ch === this.reader) ch.ack(msg);
  }

  /** The events of another process's batch; none, said once, from a format this build does not know. */
  private decode(version: unknown, body: Buffer): RecordEvent[] {
    if (version === formatVersion) return decodeBatch(body);
    if (version === undefined) return (JSON.parse(body.toString()) as EventBatchV1).events;
    if (!this.unknownFormats.has(version)) {
      this.unknownFormats.add(version);
      this.onError(new Error(`the record stream ${this.layout.records} holds events of format ${String(version)}, which this jobshell (format ${formatVersion}) cannot read: they are skipped; upgrade this process`));
    }
    return [];
  }

  private apply(ev: RecordEvent): void {
    if (ev.t === "marker") return;
    const id = taskidOf(ev)!;
    const before = this.view.get(id);
    const was = before && { status: before.status, attempt: before.attempt, known: before.topic !== undefined };
    const rec = fold(before, ev);
    if (!rec || droppable(rec, nowMs(), this.ttlMs)) {
      // never existed, or an old event read when catching up: the record is past its time already
      this.forget(id);
      return;
    }
    this.noteWaiting(rec);
    if (rec.topic !== undefined) {
      if (!was?.known) this.order.add(rec);
      if (this.taskWatchers.size > 0) this.tellWatchers(rec, was, ev.at);
    }
    if (!before) {
      this.view.set(id, rec);
      if (hasEnded(rec.status)) this.waiters.wake(id);
    } else if (was!.status !== rec.status || was!.attempt !== rec.attempt || ev.t === "snapshot") {
      this.touch(rec, ev.at);
    }
  }

  /** The event of a change of the record, if it made one watchers are told of. */
  private tellWatchers(rec: StoredRecord, was: { status: string; attempt: number; known: boolean } | undefined, at: number): void {
    const changed = !was?.known || was.status !== rec.status || was.attempt !== rec.attempt;
    if (!changed) return;
    const kind = hasEnded(rec.status) ? "ended" : rec.status === "started" ? "started" : "queued";
    // A record first known started (its queued event came from before this process read) is both.
    const event = eventOf(rec, kind, kind === "ended" ? rec.completedAt ?? at : kind === "started" ? rec.startedAt ?? at : at);
    for (const watcher of this.taskWatchers) watcher(event);
  }

  /** Our own batch came back from the stream: its events are in the view now. */
  private retire(batch: number): void {
    const events = this.unread.get(batch);
    if (!events) return;
    this.unread.delete(batch);
    for (const ev of events) {
      const id = taskidOf(ev);
      const pending = id === undefined ? undefined : this.overlay.get(id);
      if (!pending) continue;
      const at = pending.indexOf(ev);
      if (at >= 0) pending.splice(at, 1);
      if (pending.length === 0) this.overlay.delete(id!);
    }
  }

  private touch(rec: StoredRecord, at: number): void {
    rec.touchedAt = Math.max(rec.touchedAt, at);
    // Re-insert so that the map stays ordered by touchedAt for the sweep.
    this.view.delete(rec.taskid);
    this.view.set(rec.taskid, rec);
    if (hasEnded(rec.status)) this.waiters.wake(rec.taskid);
  }

  /** Append a snapshot of every record still waiting or running here that no event touched for
   *  half the ttl, before the stream's retention lets its events go. */
  private renew(): void {
    const now = nowMs();
    const due: { stored: StoredRecord; rec: TaskRecordData }[] = [];
    for (const stored of this.view.values()) {
      // In order of last event: once one is recent, so are all after it.
      if (stored.touchedAt > now - this.ttlMs / 2) break;
      // As this process knows it, with its own events not read back yet.
      const rec = this.stored(stored.taskid);
      if (!rec || rec.topic === undefined || hasEnded(rec.status)) continue;
      // A queued one matters until it expires; a started one only while its worker lives.
      if (rec.status === "queued" ? now > expiresAt(rec) : !this.runsHere(rec.taskid)) continue;
      due.push({ stored, rec });
    }
    if (due.length === 0) return;
    const events: RecordEvent[] = due.map(({ stored, rec }) => {
      this.touch(stored, now);
      const { taskid, topic, content, expire, createdAt, job } = rec;
      const task: QueuedTask = { taskid, topic, content, expire, createdAt };
      if (job !== undefined) task.job = job;
      return { t: "snapshot", task, attempt: rec.attempt, startedAt: rec.startedAt, at: now };
    });
    this.append(events).catch(this.onError);
  }

  private dropOld(): void {
    const now = nowMs();
    for (const rec of this.view.values()) {
      // In order of last event: a record touched within the ttl cannot be due, nor any after it.
      if (rec.touchedAt > now - this.ttlMs) break;
      if (droppable(rec, now, this.ttlMs)) this.forget(rec.taskid);
    }
    this.order.trim(this.view.size);
  }

  private forget(taskid: string): void {
    this.view.delete(taskid);
    this.waiting.delete(taskid);
  }

  private noteWaiting(rec: StoredRecord): void {
    if (rec.status !== "queued" || rec.topic === undefined) {
      this.waiting.delete(rec.taskid);
      return;
    }
    const at = expiresAt(rec);
    this.waiting.set(rec.taskid, at);
    if (at < this.waitingFloor) this.waitingFloor = at;
  }

  /** Whether a task the view shows waiting in a queue is past its expire: only then can a full
   *  queue have one at its head to shed. Scans only once the earliest known expire has passed. */
  someWaitingExpired(now = nowMs()): boolean {
    if (now <= this.waitingFloor) return false;
    let floor = Infinity;
    for (const at of this.waiting.values()) {
      if (now > at) return true; // the floor stays where it is: the next call scans again
      if (at < floor) floor = at;
    }
    this.waitingFloor = floor;
    return false;
  }
}

/** Declare the stream; one declared already with another task_record_ttl is used as it is. */
async function ensureStream(conn: AmqpConnection, model: ChannelModel, name: string, ttlSeconds: number): Promise<void> {
  try {
    await conn.scratch((ch) => ch.assertQueue(name, recordStreamOptions(ttlSeconds)), model);
  } catch {
    await conn.scratch((ch) => ch.checkQueue(name), model);
  }
}

/** amqplib reports a broker's refusal (basic.nack) so; anything else means the channel closed first. */
export function isNack(err: unknown): boolean {
  return (err as Error)?.message === "message nacked";
}
