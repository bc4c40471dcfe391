// Task records and waiting for their end. A record is a hash (see ./lua.ts for its fields). The reads
// of one turn of the event loop, every waiter's and record()'s, go to Redis together in one script call
// (lua/read-records.lua), which ends a queued task `expired` first if its time to start has passed.
//
// Every waiter of this process sits in one map behind one timer (TaskWaiters), and learns of its
// task's end in one of two ways: from this process's worker, which tells waiters here with the whole
// record as it finishes a task (no read, no message); or from the ended channel, which the finish
// script publishes the outcomes to while anybody subscribes. A waiter whose task this process's worker
// does not hold reads the record only once subscribed, so no end slips between the read and the
// message: one published before the read is in what it reads, one after is heard, also while the read
// is on its way (its outcome is kept for the reply). This process subscribes only while somebody in it
// waits for a task run elsewhere (a busy queue publishes an end per task, which a producer that never
// waits should not have to read).
//
// A task this process pushed while it heard the ends published needs no read at all: every end of it
// comes after the subscription, so until one is told here it has not ended. Such tasks are kept a few
// seconds (`fresh`), with their end if it comes before anybody waits for it; a reconnected subscriber
// (ends may have been lost) or a waiter that comes later reads as above.
// One file past 400 lines: the batched reads, the ended channel and the waiters share one state.
import type { Lease } from "../../backend.js";
import { expiresAt, hasEnded, nowMs, type Outcome, type QueuedTask, type TaskRecordData } from "../../record.js";
import { TaskWaiters, type Waiter } from "../waiters.js";
import type { RedisConnection } from "./connection.js";
import type { Layout } from "./layout.js";
import type { Scripts } from "./scripts.js";
import type { Sweeper } from "./sweeper.js";
import type { RedisLease, StoredTask } from "./tasks.js";

/** A waiter reads the record again this often, in case an end was published while it was reconnecting. */
const recheckMs = 2000;
/** How long this process keeps listening to the ended channel once nobody waits. */
const quietMs = 2000;
/** Taskids per read script call at most: a turn's reads beyond that go in several calls, sent together. */
const readChunk = 1000;

/** What wakes a waiter: the whole record (from this process's worker), an outcome to complete the
 *  record it read (from the ended channel), or nothing (look again). */
type Ended = TaskRecordData | Outcome & { startedAt: number; attempt: number };

/** One waitEnded() call, and its entry among the waiters while it waits: one object a waiter. */
class Wait implements Waiter<Ended> {
  /** the record as last read, or as pushed */
  rec: TaskRecordData | QueuedTask | undefined = undefined;
  answered = false;
  /** it may learn of its task's end only from the ended channel (see Records.listening) */
  listens = false;
  // TaskWaiters' own
  deadline = 0;
  offAbort: (() => void) | undefined = undefined;
  done = false;
  index = 0;

  constructor(
    readonly taskid: string,
    /** epoch ms by which it answers anyway, with the latest record */
    readonly until: number,
    readonly signal: AbortSignal | undefined,
    readonly resolve: (rec: TaskRecordData | undefined) => void,
    readonly reject: (err: unknown) => void,
    private readonly woken: (wait: Wait, ended?: Ended) => void,
  ) {}

  wake(ended?: Ended): void {
    this.woken(this, ended);
  }
}

/** A fresh task's end is not known here yet, or was published without its record: read it. */
const readIt = Symbol("read it");

/** The reads of one turn, by taskid: the waiters' and record()'s. */
interface Batch {
  waits: Map<string, Wait[]>;
  records: Map<string, { resolve: (rec: TaskRecordData | undefined) => void; reject: (err: unknown) => void }[]>;
  /** ends heard for its taskids while it was on its way: the read may come from before them */
  heard: Map<string, Ended | undefined>;
  /** the subscriber reconnected while it was on its way: what it reads may be older than a lost end */
  stale: boolean;
}

export class Records {
  /** waiters that are not reading: until their task ends, or until they must read again */
  private readonly waiters = new TaskWaiters<Ended>();
  /** waitEnded() calls not answered yet */
  private outstanding = 0;
  /** those of them that may learn of their task's end only from the ended channel: the others wait for
   *  a task this process's worker runs, whose end the worker tells here */
  private listening = 0;
  /** the reads asked for in this turn, sent at its end */
  private pending?: Batch;
  /** reads sent, not answered yet */
  private readonly inFlight = new Set<Batch>();
  /** records of claimed tasks that ended with nobody waiting yet, kept until the next turn of the
   *  event loop: the task() that issued one has likely not returned, and a waitfor() follows */
  private readonly justEnded = new Map<string, TaskRecordData>();
  private endsSubscription?: Promise<unknown>;
  /** subscribed to the ends published (endsSubscription has resolved) */
  private hearingEnds = false;
  private quietTimer?: NodeJS.Timeout;
  /** tasks pushed while the ends were heard: the task as pushed until its end is told, then the
   *  record (or readIt); kept from one turn of `freshTimer` to the next, then forgotten */
  private fresh = new Map<string, QueuedTask | TaskRecordData | typeof readIt>();
  private older = new Map<string, QueuedTask | TaskRecordData | typeof readIt>();
  private freshTimer?: NodeJS.Timeout;
  private closed = false;
  /** how the ends published by this process's worker begin (see lua/finish-tasks.lua) */
  private readonly ownEnds: string;

  constructor(
    private readonly conn: RedisConnection,
    private readonly scripts: Scripts,
    private readonly layout: Layout,
    private readonly sweeper: Sweeper,
    workerId: string,
    /** whether this process's worker holds the task (or has it handed over): it tells its end here */
    private readonly runsHere: (taskid: string) => boolean,
    private readonly onError: (err: unknown) => void,
  ) {
    this.ownEnds = `[${JSON.stringify(workerId)},`;
  }

  record(taskid: string): Promise<TaskRecordData | undefined> {
    return new Promise((resolve, reject) => {
      const records = this.batch().records;
      const callers = records.get(taskid);
      if (callers) callers.push({ resolve, reject });
      else records.set(taskid, [{ resolve, reject }]);
    });
  }

  // Not async, and no loop of awaits: tens of thousands of these may be pending at once.
  waitEnded(taskid: string, timeoutMs: number, signal?: AbortSignal): Promise<TaskRecordData | undefined> {
    const justEnded = this.justEnded.get(taskid);
    if (justEnded) return Promise.resolve(justEnded);
    const fresh = this.takeFresh(taskid);
    if (fresh !== undefined && fresh !== readIt && "status" in fresh) return Promise.resolve(fresh);
    return new Promise((resolve, reject) => {
      const now = nowMs();
      const wait = new Wait(taskid, now + timeoutMs, signal, resolve, reject, this.woken);
      this.outstanding += 1;
      if (signal?.aborted || now >= wait.until || fresh === readIt) this.read(wait);
      else if (fresh !== undefined) {
        // Pushed while the ends were heard, and none told since: it has not ended.
        wait.rec = fresh;
        if (!this.runsHere(taskid)) this.listen(wait);
        this.park(wait, Math.min(wait.until, expiresAt(fresh) + 1, now + recheckMs));
      } else if (this.runsHere(taskid)) {
        // Run by this process's worker, not yet finished: the end is told here (see finished), so the
        // record need not be read first.
        this.park(wait, Math.min(wait.until, now + recheckMs));
      } else this.read(wait);
    });
  }

  /** Tasks this process is about to push: fresh if the ends published are heard now. */
  pushing(tasks: QueuedTask[]): void {
    if (!this.hearingEnds) return;
    for (const task of tasks) this.fresh.set(task.taskid, task);
    this.freshTimer ??= setInterval(() => {
      this.older = this.fresh;
      this.fresh = new Map();
      if (this.older.size === 0) this.forgetFresh();
    }, recheckMs).unref();
  }

  private takeFresh(taskid: string): QueuedTask | TaskRecordData | typeof readIt | undefined {
    const fresh = this.fresh.get(taskid) ?? this.older.get(taskid);
    if (fresh !== undefined && !this.fresh.delete(taskid)) this.older.delete(taskid);
    return fresh;
  }

  /** An end told with nobody waiting: kept for a fresh task's waiter to come. */
  private keepFresh(taskid: string, ended: Ended | undefined): void {
    const map = this.fresh.has(taskid) ? this.fresh : this.older.has(taskid) ? this.older : undefined;
    if (!map) return;
    const task = map.get(taskid)!;
    if (ended === undefined || task === readIt) map.set(taskid, readIt);
    else if ("topic" in ended) map.set(taskid, ended);
    else map.set(taskid, "status" in task ? task : withOutcome(task, ended));
  }

  private forgetFresh(): void {
    clearInterval(this.freshTimer);
    this.freshTimer = undefined;
    this.fresh = new Map();
    this.older = new Map();
  }

  /** Wait until `until` (epoch ms), or until the task's end is told. */
  private park(wait: Wait, until: number): void {
    this.waiters.addWaiter(wait, until - nowMs(), wait.signal);
  }

  private readonly woken = (wait: Wait, ended?: Ended): void => {
    if (ended === undefined) this.read(wait);
    else if ("topic" in ended) this.answer(wait, ended);
    else if (wait.rec) this.answer(wait, withOutcome(wait.rec, ended));
    else this.read(wait);
  };

  private listen(wait: Wait): void {
    if (wait.listens) return;
    wait.listens = true;
    this.listening += 1;
    clearTimeout(this.quietTimer);
  }

  private read(wait: Wait): void {
    this.listen(wait);
    const waits = this.batch().waits;
    const same = waits.get(wait.taskid);
    if (same) same.push(wait);
    else waits.set(wait.taskid, [wait]);
  }

  /** What the read found: the answer, or a reason to wait on. */
  private got(wait: Wait, rec: TaskRecordData | undefined): void {
    if (wait.answered) return;
    const now = nowMs();
    if (!rec || hasEnded(rec.status) || wait.signal?.aborted || now >= wait.until) return this.answer(wait, rec);
    wait.rec = rec;
    // A queued task may expire with nobody touching it: look again then, and every few seconds anyway.
    const expiry = rec.status === "queued" && rec.attempt === 0 ? expiresAt(rec) + 1 : Infinity;
    this.park(wait, Math.min(wait.until, expiry, now + recheckMs));
  }

  private answer(wait: Wait, rec: TaskRecordData | undefined): void {
    if (wait.answered) return;
    wait.answered = true;
    wait.resolve(rec);
    this.outstanding -= 1;
    if (wait.listens && --this.listening === 0) this.stopListeningSoon();
  }

  private fail(wait: Wait, err: unknown): void {
    if (wait.answered) return;
    wait.answered = true;
    wait.reject(err);
    this.outstanding -= 1;
    if (wait.listens && --this.listening === 0) this.stopListeningSoon();
  }

  /** This turn's reads, sent once the turn is over. */
  private batch(): Batch {
    if (!this.pending) {
      this.pending = { waits: new Map(), records: new Map(), heard: new Map(), stale: false };
      setImmediate(this.send);
    }
    return this.pending;
  }

  private readonly send = (): void => {
    const batch = this.pending!;
    this.pending = undefined;
    this.inFlight.add(batch);
    // A waiter reads only once the ends published are heard.
    const heard = batch.waits.size > 0 && !this.hearingEnds ? this.listenForEnds() : undefined;
    const sent = heard ? heard.then(() => this.readBatch(batch)) : this.readBatch(batch);
    sent.catch((err) => this.failBatch(batch, err)).finally(() => this.inFlight.delete(batch));
  };

  private async readBatch(batch: Batch): Promise<void> {
    clearTimeout(this.quietTimer);
    const taskids = [...batch.waits.keys()];
    for (const taskid of batch.records.keys()) if (!batch.waits.has(taskid)) taskids.push(taskid);
    const chunks: Promise<void>[] = [];
    for (let at = 0; at < taskids.length; at += readChunk) chunks.push(this.readChunk(batch, taskids.slice(at, at + readChunk)));
    await Promise.all(chunks);
  }

  private async readChunk(batch: Batch, taskids: string[]): Promise<void> {
    const { layout } = this;
    const now = nowMs();
    let rows: (Row | null)[];
    try {
      const reply = await this.scripts.readRecords([layout.deletions], [layout.prefix, now, layout.channels.ended, this.sweeper.deletionDue(now), ...taskids]);
      rows = JSON.parse(reply) as (Row | null)[];
    } catch (err) {
      this.failBatch(batch, err, taskids);
      return;
    }
    for (let i = 0; i < taskids.length; i++) {
      const taskid = taskids[i];
      const rec = rows[i] ? toRecord(taskid, rows[i]!) : undefined;
      for (const { resolve } of batch.records.get(taskid) ?? []) resolve(rec);
      const waits = batch.waits.get(taskid);
      if (!waits) continue;
      const stillOn = rec && !hasEnded(rec.status);
      const ended = stillOn ? batch.heard.get(taskid) : undefined;
      for (const wait of waits) {
        if (wait.answered) continue;
        if (stillOn && (batch.stale || batch.heard.has(taskid))) {
          // An end came while the read was on its way: what it read may be from before it.
          if (ended && "topic" in ended) this.answer(wait, ended);
          else if (ended) this.answer(wait, withOutcome(rec, ended));
          else this.read(wait);
        } else this.got(wait, rec);
      }
    }
  }

  private failBatch(batch: Batch, err: unknown, taskids?: string[]): void {
    for (const taskid of taskids ?? [...batch.waits.keys(), ...batch.records.keys()]) {
      for (const wait of batch.waits.get(taskid) ?? []) this.fail(wait, err);
      for (const { reject } of batch.records.get(taskid) ?? []) reject(err);
      batch.waits.delete(taskid);
      batch.records.delete(taskid);
    }
  }

  private listenForEnds(): Promise<void> {
    clearTimeout(this.quietTimer);
    // One command for both, so that the server has both or neither (see lua/finish-tasks.lua).
    const { ended, endedHere } = this.layout.channels;
    this.endsSubscription ??= this.conn.subscriber.subscribe(ended, endedHere).catch((err: unknown) => {
      this.endsSubscription = undefined;
      throw err;
    });
    return this.endsSubscription.then(() => {
      this.hearingEnds = true;
    });
  }

  private stopListeningSoon(): void {
    clearTimeout(this.quietTimer);
    if (!this.endsSubscription) return;
    this.quietTimer = setTimeout(() => {
      if (this.listening > 0 || !this.endsSubscription || this.closed) return;
      this.endsSubscription = undefined;
      this.hearingEnds = false;
      this.forgetFresh();
      this.conn.subscriber.unsubscribe(this.layout.channels.ended, this.layout.channels.endedHere).catch(this.onError);
    }, quietMs);
    this.quietTimer.unref();
  }

  /** A message on the ended channel: a taskid (ended expired), or a worker's batch of outcomes (see
   *  lua/finish-tasks.lua). This process's own worker has told its waiters already. */
  heard(message: string): void {
    if (!message.startsWith("[")) return void this.tell(message, undefined);
    if ((this.outstanding === 0 && this.fresh.size + this.older.size === 0) || message.startsWith(this.ownEnds)) return;
    const [, ...batch] = JSON.parse(message) as [string, ...EndedRow[]];
    for (const [taskid, status, completedAt, startedAt, attempt, results, warning] of batch) {
      const outcome: Ended = { status: status as Outcome["status"], completedAt, startedAt, attempt, results };
      if (warning) outcome.warning = warning;
      this.tell(taskid, outcome);
    }
  }

  /** Tell the task's waiters of its end, or (`undefined`) to look again. False if nobody waits for it. */
  private tell(taskid: string, ended: Ended | undefined): boolean {
    let found = this.waiters.wake(taskid, ended);
    const whole = ended !== undefined && "topic" in ended;
    // Reads not sent yet will see the end; reads on their way may not.
    for (const batch of whole && this.pending ? [this.pending, ...this.inFlight] : this.inFlight) {
      const waits = batch.waits.get(taskid);
      if (!waits) continue;
      found = true;
      if (whole) {
        for (const wait of waits) this.answer(wait, ended);
        batch.waits.delete(taskid);
      } else if (batch !== this.pending) batch.heard.set(taskid, ended);
    }
    if (!found) this.keepFresh(taskid, ended);
    return found;
  }

  /** Tasks this process's worker finished: waiters here are told with the whole record, as they may not
   *  listen to the ends published, and need not read it back. If an outcome was refused (`allWritten`
   *  false; which one is not said), they read the record again. A claimed task may end before its
   *  task() has returned, so before anybody could wait for it: its record is kept for the rest of this
   *  turn (justEnded). */
  finished(done: { lease: Lease; outcome: Outcome }[], allWritten: boolean, claimedHere: Set<string>): void {
    const freshOnes = this.fresh.size + this.older.size > 0;
    if (this.outstanding === 0 && claimedHere.size === 0 && !freshOnes) return;
    for (const { lease, outcome } of done) {
      const claimed = claimedHere.delete(lease.task.taskid);
      if (!allWritten) {
        this.tell(lease.task.taskid, undefined);
        continue;
      }
      if (!claimed && this.outstanding === 0 && !freshOnes) continue;
      const { task, started, startedAt } = lease as RedisLease;
      const { status, completedAt, results, warning } = outcome;
      const { taskid, topic, content, expire, createdAt, job } = task;
      // One literal, not the task spread with the outcome added: a spread copy has a map of its own,
      // and adding to it makes five hidden classes per task that the collector has to promote.
      const rec: TaskRecordData = { taskid, topic, content, expire, createdAt, status, attempt: started.started ? started.attempt : 0, startedAt, completedAt, results };
      if (job !== undefined) rec.job = job;
      if (warning) rec.warning = warning;
      if (!this.tell(taskid, rec) && claimed) this.keepForThisTurn(taskid, rec);
    }
  }

  private keepForThisTurn(taskid: string, rec: TaskRecordData): void {
    if (this.justEnded.size === 0) setImmediate(() => this.justEnded.clear());
    this.justEnded.set(taskid, rec);
  }

  /** Every waiter looks again: ends published while the subscriber was away are lost. */
  wakeAll(): void {
    this.forgetFresh();
    for (const batch of this.inFlight) batch.stale = true;
    this.waiters.wakeAll();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.quietTimer);
    this.forgetFresh();
    this.wakeAll();
  }
}

/** A record as lua/read-records.lua returns it: [status, attempt, createdAt, expire, startedAt,
 *  completedAt, task, results, warning]. */
type Row = [TaskRecordData["status"], number, number, number, number | null, number | null, StoredTask | null, TaskRecordData["results"] | null, string | null];

function toRecord(taskid: string, [status, attempt, createdAt, expire, startedAt, completedAt, stored, results, warning]: Row): TaskRecordData | undefined {
  if (!stored) return undefined;
  const rec: TaskRecordData = {
    taskid,
    topic: stored.topic,
    content: stored.content,
    expire,
    createdAt,
    status,
    attempt,
    results: results ?? [],
    startedAt: startedAt ?? undefined,
    completedAt: completedAt ?? undefined,
  };
  if (stored.job !== undefined) rec.job = stored.job;
  if (warning !== null) rec.warning = warning;
  return rec;
}

/** An outcome the finish script publishes: [taskid, status, completedAt, startedAt, attempt, results, warning]. */
type EndedRow = [string, string, number, number, number, TaskRecordData["results"], string];

/** The record read (or the task as pushed) with its outcome. */
function withOutcome(rec: TaskRecordData | QueuedTask, ended: Ended): TaskRecordData {
  const { status, completedAt, startedAt, attempt, results, warning } = ended;
  const { taskid, topic, content, expire, createdAt, job } = rec;
  const whole: TaskRecordData = { taskid, topic, content, expire, createdAt, status, attempt, results, startedAt, completedAt };
  if (job !== undefined) whole.job = job;
  if (warning !== undefined) whole.warning = warning;
  else if ("warning" in rec && rec.warning !== undefined) whole.warning = rec.warning;
  return whole;
}
