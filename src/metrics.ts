// Counters and a run-time histogram of what this process saw: the shell's stats() and the
// REST API's /metrics read the same numbers.

/** Upper bounds, in seconds, of the job run time histogram. */
export const runTimeBuckets = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300] as const;

export type TaskCounter = "issued" | "completed" | "failed" | "expired";

export interface JobRunStats {
  completed: number;
  failed: number;
  /** counts per bucket of runTimeBuckets, then one for longer runs */
  buckets: number[];
  sumSeconds: number;
}

export class Metrics {
  /** tasks by outcome and topic */
  readonly tasks = new Map<string, Record<TaskCounter, number>>();
  /** job runs by job name */
  readonly jobs = new Map<string, JobRunStats>();

  countTask(counter: TaskCounter, topic: string): void {
    let row = this.tasks.get(topic);
    if (!row) this.tasks.set(topic, (row = { issued: 0, completed: 0, failed: 0, expired: 0 }));
    row[counter] += 1;
  }

  countJobRun(job: string, ok: boolean, seconds: number): void {
    let row = this.jobs.get(job);
    if (!row) {
      row = { completed: 0, failed: 0, buckets: new Array(runTimeBuckets.length + 1).fill(0), sumSeconds: 0 };
      this.jobs.set(job, row);
    }
    if (ok) row.completed += 1;
    else row.failed += 1;
    row.sumSeconds += seconds;
    let i = 0;
    while (i < runTimeBuckets.length && seconds > runTimeBuckets[i]) i++;
    row.buckets[i] += 1;
  }

  /** Totals over every topic. */
  totals(): Record<TaskCounter, number> {
    const sum = { issued: 0, completed: 0, failed: 0, expired: 0 };
    for (const row of this.tasks.values()) {
      sum.issued += row.issued;
      sum.completed += row.completed;
      sum.failed += row.failed;
      sum.expired += row.expired;
    }
    return sum;
  }
}
