// Deleting ended records. A record has no time to live of its own (see lua/include/for-deletion.lua):
// a script that ends a task lists its taskid under the time it is due, and every process of the queue
// deletes what is due, so that records go as long as any process runs; one that starts deletes at
// once what became due while none ran.
import { nowMs } from "../../record.js";
import type { Layout } from "./layout.js";
import type { Scripts } from "./scripts.js";

/** The most records one sweep script call deletes: Redis stays responsive meanwhile. */
const sweepBatch = 1000;

export class Sweeper {
  /** Ended records are listed for deletion in buckets of this many ms (a sixtieth of task_record_ttl,
   *  within 50 ms to a minute): one is deleted between task_record_ttl and that much later after its end. */
  private readonly bucketMs: number;
  private timer?: NodeJS.Timeout;
  private sweeping = false;
  private stopped = false;

  constructor(
    private readonly scripts: Scripts,
    private readonly layout: Layout,
    private readonly ttlMs: number,
    private readonly onError: (err: unknown) => void,
  ) {
    this.bucketMs = Math.min(60_000, Math.max(50, Math.round(ttlMs / 60)));
  }

  /** When records ending at `now` are due for deletion (ms): task_record_ttl after the end of the bucket
   *  of time `now` is in. Records of processes with another task_record_ttl go in lists of their own. */
  deletionDue(now: number): number {
    return (Math.floor(now / this.bucketMs) + 1) * this.bucketMs + this.ttlMs;
  }

  start(): void {
    this.timer = setInterval(() => void this.sweep(), Math.min(1000, this.bucketMs));
    this.timer.unref();
    void this.sweep();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
  }

  /** Deletes the records that are due, sweepBatch a script call. */
  private async sweep(): Promise<void> {
    if (this.sweeping || this.stopped) return;
    this.sweeping = true;
    try {
      for (;;) {
        // 0: nothing was due; otherwise more may be, in the same list or the next.
        const swept = await this.scripts.sweepEndedRecords([this.layout.deletions], [this.layout.prefix, nowMs(), sweepBatch]);
        if (swept === 0 || this.stopped) break;
      }
    } catch (err) {
      if (!this.stopped) this.onError(err);
    } finally {
      this.sweeping = false;
    }
  }
}
