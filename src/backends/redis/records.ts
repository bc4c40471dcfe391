// Task records and waiting for their end. A record is a hash (see ./lua.ts for its fields), read by
// a script that ends it `expired` first if its time to start has passed. A waiter learns of an end in
// one of two ways: from this process's worker, which tells waiters here with the whole record as it
// finishes a task (no read, no message); or from the ended channel, which the finish script publishes
// to while anybody subscribes, and this process subscribes to only while somebody in it waits for a
// task run elsewhere (a busy queue publishes an end per task, which a producer that never waits should
// not have to read).
import type { Lease } from "../../backend.js";
import { onAbort } from "../../abort.js";
import { expiresAt, hasEnded, nowMs, type Outcome, type TaskRecordData } from "../../record.js";
import type { RedisConnection } from "./connection.js";
import type { Layout } from "./layout.js";
import type { Scripts } from "./scripts.js";
import type { Sweeper } from "./sweeper.js";
import type { RedisLease, StoredTask } from "./tasks.js";

/** A waiter reads the record again this often, in case an end was published while it was reconnecting. */
const recheckMs = 2000;
/** How long this process keeps listening to the ended channel once nobody waits. */
const quietMs = 2000;

/** Wakes a waiter: with a whole record (from this process's worker), an outcome to complete the record
 *  it read, or nothing (look again). */
type Wake = (outcome?: Partial<TaskRecordData>) => void;

export class Records {
  private readonly waiters = new Map<string, Set<Wake>>();
  /** records of claimed tasks that ended with nobody waiting yet, kept until the next turn of the
   *  event loop: the task() that issued one has likely not returned, and a waitfor() follows */
  private readonly justEnded = new Map<string, TaskRecordData>();
  private endsSubscription?: Promise<unknown>;
  /** subscribed to the ends published (endsSubscription has resolved) */
  private hearingEnds = false;
  private quietTimer?: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly conn: RedisConnection,
    private readonly scripts: Scripts,
    private readonly layout: Layout,
    private readonly sweeper: Sweeper,
    private readonly workerId: string,
    /** whether this process's worker holds the task (or has it handed over): it tells its end here */
    private readonly runsHere: (taskid: string) => boolean,
    private readonly onError: (err: unknown) => void,
  ) {}

  async record(taskid: string): Promise<TaskRecordData | undefined> {
    return (await this.readRecord(taskid)).rec;
  }

  /** The record, and the worker that started it (`owner`), if any. */
  private async readRecord(taskid: string): Promise<{ rec?: TaskRecordData; worker?: string }> {
    const { layout } = this;
    const now = nowMs();
    const flat = await this.scripts.readRecord([layout.task(taskid), layout.deletions], [now, layout.channels.ended, layout.prefix, this.sweeper.deletionDue(now), taskid]);
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
      let wake!: Wake;
      const changed = new Promise<void>((resolve) => {
        wake = (outcome) => {
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
          // Run by this process's worker, not yet finished: the end is told here (see finished), so the
          // record need not be read first. Waiting was registered before: the end cannot slip past.
          await waitAtMost(changed, Math.min(deadline, nowMs() + recheckMs) - nowMs(), signal);
          if (ended) return ended;
          continue;
        }
        const reading = this.recordToWaitOn(taskid);
        // The worker of this process may end the task during the read: then the read need not be awaited.
        await Promise.race([reading, changed]);
        if (ended) {
          reading.catch(() => {}); // its answer, or its failure, does not matter any more
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

  private async listenForEnds(): Promise<void> {
    clearTimeout(this.quietTimer);
    await (this.endsSubscription ??= this.conn.subscriber.subscribe(this.layout.channels.ended));
    this.hearingEnds = true;
  }

  private stopListeningSoon(): void {
    clearTimeout(this.quietTimer);
    if (!this.endsSubscription) return;
    this.quietTimer = setTimeout(() => {
      if (this.waiters.size > 0 || !this.endsSubscription || this.closed) return;
      this.endsSubscription = undefined;
      this.hearingEnds = false;
      this.conn.subscriber.unsubscribe(this.layout.channels.ended).catch(this.onError);
    }, quietMs);
    this.quietTimer.unref();
  }

  /** A message on the ended channel: a taskid (ended expired), or a batch of outcomes (see lua/finish-tasks.lua). */
  heard(message: string): void {
    if (!message.startsWith("[")) return this.wake(message);
    // A batch of outcomes: read it only if somebody here waits for one of them.
    if (this.waiters.size === 0) return;
    for (const outcome of parseEnded(message)) this.wake(outcome.taskid, outcome);
  }

  /** Tasks this process's worker finished: waiters here are told with the whole record, as they may not
   *  listen to the ends published (see recordToWaitOn), and need not read it back. If an outcome was
   *  refused (`allWritten` false; which one is not said), they read the record again. A claimed task
   *  may end before its task() has returned, so before anybody could wait for it: its record is kept
   *  for the rest of this turn (justEnded). */
  finished(done: { lease: Lease; outcome: Outcome }[], allWritten: boolean, claimedHere: Set<string>): void {
    if (this.waiters.size === 0 && claimedHere.size === 0) return;
    if (!allWritten) {
      for (const { lease } of done) {
        claimedHere.delete(lease.task.taskid);
        this.wake(lease.task.taskid);
      }
      return;
    }
    for (const { lease, outcome } of done) {
      const claimed = claimedHere.delete(lease.task.taskid);
      const waited = this.waiters.has(lease.task.taskid);
      if (!waited && !claimed) continue;
      const { task, started, startedAt } = lease as RedisLease;
      const { status, completedAt, results, warning } = outcome;
      const { taskid, topic, content, expire, createdAt, job } = task;
      // One literal, not the task spread with the outcome added: a spread copy has a map of its own,
      // and adding to it makes five hidden classes per task that the collector has to promote.
      const rec: TaskRecordData = { taskid, topic, content, expire, createdAt, status, attempt: started.started ? started.attempt : 0, startedAt, completedAt, results };
      if (job !== undefined) rec.job = job;
      if (warning) rec.warning = warning;
      if (waited) this.wake(task.taskid, rec);
      else this.keepForThisTurn(task.taskid, rec);
    }
  }

  private keepForThisTurn(taskid: string, rec: TaskRecordData): void {
    if (this.justEnded.size === 0) setImmediate(() => this.justEnded.clear());
    this.justEnded.set(taskid, rec);
  }

  private wake(taskid: string, outcome?: Partial<TaskRecordData>): void {
    const set = this.waiters.get(taskid);
    if (set) for (const wake of set) wake(outcome);
  }

  /** Every waiter looks again: ends published while the subscriber was away are lost. */
  wakeAll(): void {
    for (const set of this.waiters.values()) for (const wake of set) wake();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.quietTimer);
    this.wakeAll();
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
