// The producer's side of the queue: task() calls become records and taskids at the tail of Normal, in
// batches of one script call (lua/push-tasks.lua), which refuses what does not fit under
// job_queue_size, and hands tasks to this process's own idle worker (./handover.ts).
import type { QueueView } from "../../backend.js";
import { QueueFullError } from "../../errors.js";
import { nowMs, type QueuedTask } from "../../record.js";
import type { RedisConnection } from "./connection.js";
import type { Handover } from "./handover.js";
import type { Layout } from "./layout.js";
import type { Records } from "./records.js";
import type { Scripts } from "./scripts.js";
import type { Sweeper } from "./sweeper.js";
import type { StoredTask, TakenRow } from "./tasks.js";

/** The most tasks one push script call carries. */
const pushChunk = 1000;

interface PendingPush {
  task: QueuedTask;
  limit: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class Queue {
  private pending: PendingPush[] = [];

  constructor(
    private readonly conn: RedisConnection,
    private readonly scripts: Scripts,
    private readonly layout: Layout,
    private readonly sweeper: Sweeper,
    private readonly handover: Handover,
    private readonly records: Records,
    private readonly workerId: string,
    /** this process's worker runs job scripts in threads */
    private readonly scriptThreads: boolean,
  ) {}

  /** The task() calls made in one synchronous step go to Redis in script calls of up to pushChunk
   *  tasks; a full chunk goes at once, so that Redis stores it while this process makes the next. */
  push(task: QueuedTask, limit: number): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.pending.length === 0) queueMicrotask(() => this.flushPushes(true));
      this.pending.push({ task, limit, resolve, reject });
      if (this.pending.length >= pushChunk) this.flushPushes();
    });
  }

  /** `stepEnded`: the task() calls of the step are all made (else a full chunk goes while they go on). */
  private flushPushes(stepEnded = false): void {
    const pending = this.pending;
    this.pending = [];
    for (let i = 0; i < pending.length; ) {
      let end = i + 1;
      while (end < pending.length && end - i < pushChunk && pending[end].limit === pending[i].limit) end++;
      void this.pushBatch(pending.slice(i, end), stepEnded);
      i = end;
    }
  }

  private async pushBatch(batch: PendingPush[], stepEnded: boolean): Promise<void> {
    const { layout, handover } = this;
    const limit = batch[0].limit;
    const now = nowMs();
    const listing = handover.listing;
    const claimed = listing ? handover.claimable(listing, batch, now, this.scripts.known.has("push-tasks")) : 0;
    const args: (string | number)[] = [layout.prefix, limit, now, this.workerId, claimed, listing?.n ?? 0, layout.channels.ended, this.sweeper.deletionDue(now)];
    const rows: TakenRow[] = [];
    for (let i = 0; i < batch.length; i++) {
      const { task } = batch[i];
      const stored: StoredTask = { topic: task.topic, content: task.content };
      if (task.job !== undefined) stored.job = task.job;
      args.push(task.taskid, JSON.stringify(stored), task.expire, task.createdAt);
      if (i < claimed) rows.push([task.taskid, 1, stored, task.expire, task.createdAt, now]);
    }
    this.records.pushing(batch.map((p) => p.task));
    // The claimed tasks go to the script threads before the push goes to Redis, which is written as the
    // turn ends: writing to Redis lets the server run on this core before the write returns, and the
    // claimed tasks' runs are the longer way to their outcomes (their thread wakes first). Writes keep
    // their order: the outcomes still follow the push. (A full chunk made while task() calls go on is
    // not held: it would wait for the last of them. Jobs run in this thread are better off with Redis
    // woken by the push while they run.)
    if (claimed > 0 && stepEnded && this.scriptThreads) this.conn.holdWrites();
    try {
      let resent = false;
      const replying = this.scripts.pushTasks([layout.normal, layout.idle, layout.deletions], args, () => (resent = true));
      // Sent: the claimed tasks start now, while Redis records them. Their outcomes follow the push on
      // the same connection, so Redis has the records by then (if the push failed, there is none to
      // write: the task() calls were told).
      if (claimed > 0) handover.claimed(listing!.n, rows);
      const reply = await replying;
      // Resent in full (after NOSCRIPT), the push may have come after finishes of the tasks it claimed
      // (if the server knew the finish script): refused for want of a record, and answered before this
      // push was, those tasks sit in Backup unheld; a reclaim sends them to Recovery.
      if (resent && claimed > 0) handover.requestReclaim();
      // Tasks handed to this process's own worker come back with the reply, not as a message.
      const accepted = typeof reply === "number" ? reply : (handover.received(reply[1]), reply[0]);
      batch.forEach((p, i) => (i < accepted ? p.resolve() : p.reject(new QueueFullError(limit))));
    } catch (err) {
      for (const p of batch) p.reject(err);
    }
  }

  /** Tasks waiting to be taken: Normal and Recovery. */
  async depth(): Promise<number> {
    const { client } = this.conn;
    const [normal, recovery] = await this.conn.answered(Promise.all([client.llen(this.layout.normal), client.llen(this.layout.recovery)]));
    return normal + recovery;
  }

  /** Normal, Recovery and the Backup list of each of `workers`, by key, with their lengths. */
  async views(workers: string[]): Promise<QueueView[]> {
    const { layout } = this;
    const names = [layout.normal, layout.recovery, ...workers.map((w) => layout.backupOf(w))];
    const depths = await this.conn.answered(Promise.all(names.map((name) => this.conn.client.llen(name))));
    return names.map((name, i) => ({ name, depth: depths[i]! }));
  }
}
