// The worker's side of the queue. A take moves a batch from Recovery, then Normal, into this worker's
// Backup list and starts each task, in one script call (lua/take-tasks.lua); a task leaves Backup only
// when its outcome is written (lua/finish-tasks.lua) or it is given back, so the Backup list is the
// lease: a worker presumed dead loses it whole to Recovery, and its late finishes are refused. Finding
// nothing, a take lists the worker as idle and waits for a handover (./handover.ts).
import type { Lease, StartResult } from "../../backend.js";
import { nowMs, type Outcome, type QueuedTask } from "../../record.js";
import type { Handover } from "./handover.js";
import type { Heartbeat } from "./heartbeat.js";
import type { Layout } from "./layout.js";
import type { Records } from "./records.js";
import type { Scripts } from "./scripts.js";
import type { Sweeper } from "./sweeper.js";
import { takenRows, type RedisLease, type TakenRow } from "./tasks.js";

export class Taker {
  /** taskids this worker has taken and not yet finished or given back */
  readonly held = new Set<string>();
  /** how many of `held` a finish, retry or give-back sent and not yet answered takes out of Backup */
  private leaving = 0;
  /** the last take found some tasks, but fewer than it asked for */
  private drained = false;
  private closed = false;

  constructor(
    private readonly scripts: Scripts,
    private readonly layout: Layout,
    private readonly workerId: string,
    private readonly handover: Handover,
    private readonly heartbeat: Heartbeat,
    private readonly sweeper: Sweeper,
    private readonly records: Records,
    private readonly maxAttempts: number,
    /** publish every end (a cluster: the finish script cannot tell whether a waiter listens on another node) */
    private readonly publishEnds: boolean,
  ) {}

  async take(max: number, signal: AbortSignal): Promise<Lease[]> {
    const { handover } = this;
    this.heartbeat.start();
    // Awaited only until the inbox is heard: an await here would put the take behind the last batch's outcomes.
    if (!handover.hearing) await handover.listen();
    for (;;) {
      if (this.closed) return [];
      if (signal.aborted || handover.needsReclaim) {
        // A lost connection may have lost a reply or a handover with it; a stopping worker will not run
        // what was handed over: either way, what Backup holds beyond `held` goes to Recovery.
        handover.needsReclaim = false;
        await this.releaseOrphans();
        if (signal.aborted) return [];
      }
      // Tasks handed over first; then a look, unless this worker is still listed as idle.
      let rows: TakenRow[] = [];
      if (handover.handed.length > 0) {
        rows = handover.handed.splice(0, max);
      } else if (handover.mustLook) {
        if (this.drained) {
          // The queue was empty a moment ago: let the jobs just started run a turn of the event loop
          // before looking again (a look that likely finds nothing), so that quick ones send their
          // outcomes first, and somebody waiting for them is answered sooner.
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
        rows = await this.takeAndStart(max);
      }
      this.drained = rows.length > 0 && rows.length < max;
      handover.lookNow = false;
      if (rows.length === 0) {
        // Idle unless a wake-up for this listing came before the take's answer.
        if (handover.handed.length === 0 && !handover.needsReclaim && !handover.mustLook) handover.lookNow = await handover.idle(signal);
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

  /** Taking and starting are one script call: a batch costs one round trip. Finding nothing, the
   *  script lists this worker as idle. It is told how many tasks in Backup this worker knows of: the
   *  others were handed over by a push whose reply is on its way here, and take slots of the `max`. */
  private async takeAndStart(max: number): Promise<TakenRow[]> {
    const { layout, handover } = this;
    const n = handover.nextListing();
    const before = handover.listing;
    const now = nowMs();
    // The releases sent are before this take on the connection: their tasks have left Backup when it runs.
    const known = this.held.size - this.leaving + handover.handed.length;
    const args = [layout.prefix, layout.channels.ended, now, this.workerId, max, this.heartbeat.ttlMs, n, this.sweeper.deletionDue(now), known];
    const keys: Parameters<Scripts["takeTasks"]>[0] = [layout.normal, layout.recovery, layout.backup, layout.alive, layout.workers, layout.idle, layout.deletions];
    const { header: listed, rows, free } = takenRows(await this.scripts.takeTasks(keys, args));
    handover.took(n, before, listed, rows.length, free);
    return rows;
  }

  /** A call that takes held tasks out of Backup: sent, they count no more for a take sent after it;
   *  answered, they are held no more (failed, they stay held: it may not have run). */
  private async release<T>(taskids: string[], call: Promise<T>): Promise<T> {
    let counted = 0;
    for (const taskid of taskids) if (this.held.has(taskid)) counted++;
    this.leaving += counted;
    try {
      const reply = await call;
      for (const taskid of taskids) this.held.delete(taskid);
      return reply;
    } finally {
      this.leaving -= counted;
    }
  }

  /** Backup's tasks that this worker does not hold go to Recovery; it is unlisted as idle, and the
   *  handovers made before are stale: their tasks are among those given back. */
  async releaseOrphans(): Promise<void> {
    this.handover.reclaim(this.held);
    const { backup, recovery, idle, prefix } = this.layout;
    await this.scripts.releaseOrphans([backup, recovery, idle], [prefix, this.workerId, ...this.held]);
  }

  /** Already done by take(), in the same atomic step. */
  async start(leases: Lease[]): Promise<StartResult[]> {
    return leases.map((lease) => (lease as RedisLease).started);
  }

  async finish(done: { lease: Lease; outcome: Outcome }[]): Promise<void> {
    const { layout } = this;
    const args: (string | number)[] = [layout.prefix, layout.channels.ended, this.sweeper.deletionDue(nowMs()), this.workerId, this.publishEnds ? 1 : 0];
    for (const { lease, outcome } of done) {
      const { task, started, startedAt } = lease as RedisLease;
      const attempt = started.started ? started.attempt : 0;
      args.push(task.taskid, outcome.status, outcome.completedAt, JSON.stringify(outcome.results), outcome.warning ?? "", startedAt, attempt);
    }
    const written = await this.release(
      done.map(({ lease }) => lease.task.taskid),
      this.scripts.finishTasks([layout.backup, layout.deletions], args),
    );
    this.records.finished(done, written === done.length, this.handover.claimedHere);
  }

  async retry(tries: { lease: Lease; why: string }[]): Promise<void> {
    const { layout } = this;
    const now = nowMs();
    const args: (string | number)[] = [layout.prefix, layout.channels.ended, now, this.sweeper.deletionDue(now), this.maxAttempts];
    for (const { lease, why } of tries) args.push(lease.task.taskid, why);
    await this.release(
      tries.map(({ lease }) => lease.task.taskid),
      this.scripts.retryTasks([layout.backup, layout.recovery, layout.idle, layout.deletions], args),
    );
    // Waiters here take this worker's tasks' ends from it, not from the channel: they read the record
    // again (queued to be tried again, or failed after max_attempts).
    const outcome: Outcome = { status: "failed", results: [], completedAt: now };
    this.records.finished(tries.map(({ lease }) => ({ lease, outcome })), false, this.handover.claimedHere);
  }

  async giveBack(leases: Lease[]): Promise<void> {
    const { layout } = this;
    const args: string[] = [layout.prefix];
    for (const lease of leases) args.push(lease.task.taskid);
    await this.release(args.slice(1), this.scripts.giveBackTasks([layout.backup, layout.normal, layout.idle], args));
    for (const lease of leases) this.handover.claimedHere.delete(lease.task.taskid);
  }

  /** Whether this worker holds the task, or has it handed over: its end will be told in this process. */
  runsHere(taskid: string): boolean {
    return this.held.has(taskid) || this.handover.has(taskid);
  }

  close(): void {
    this.closed = true;
  }
}
