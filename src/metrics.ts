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

/** Topics counted one by one; past them, tasks count under otherTopics. Any client may issue a task of
 *  any topic, and every topic is a row kept for the life of the process (a label value in /metrics). */
export const maxTopicsCounted = 1000;
export const otherTopics = "(other topics)";

export class Metrics {
  /** tasks by outcome and topic */
  readonly tasks = new Map<string, Record<TaskCounter, number>>();
  /** job runs by job name */
  readonly jobs = new Map<string, JobRunStats>();

  countTask(counter: TaskCounter, topic: string): void {
    let row = this.tasks.get(topic);
    if (!row && this.tasks.size >= maxTopicsCounted) row = this.tasks.get((topic = otherTopics));
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

/** The counters as a small table for people (the shell's stats()): one row per topic, one per job. */
export function metricsTable(metrics: Metrics): string[] {
  const rows: string[][] = [];
  if (metrics.tasks.size > 0) {
    rows.push(["topic", "issued", "completed", "failed", "expired"]);
    for (const [topic, c] of [...metrics.tasks].sort(([a], [b]) => a.localeCompare(b))) {
      rows.push([topic, String(c.issued), String(c.completed), String(c.failed), String(c.expired)]);
    }
  }
  const jobRows: string[][] = [];
  if (metrics.jobs.size > 0) {
    jobRows.push(["job", "runs", "failed", "mean run"]);
    for (const [job, r] of [...metrics.jobs].sort(([a], [b]) => a.localeCompare(b))) {
      const runs = r.completed + r.failed;
      jobRows.push([job, String(runs), String(r.failed), formatSeconds(runs > 0 ? r.sumSeconds / runs : 0)]);
    }
  }
  return [...alignColumns(rows), ...(rows.length > 0 && jobRows.length > 0 ? [""] : []), ...alignColumns(jobRows)];
}

function alignColumns(rows: string[][]): string[] {
  if (rows.length === 0) return [];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => `  ${r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join("  ")}`);
}

function formatSeconds(seconds: number): string {
  if (seconds < 1) return `${(seconds * 1000).toFixed(seconds < 0.01 ? 2 : 1)} ms`;
  return `${seconds.toFixed(2)} s`;
}
