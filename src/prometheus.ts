// /metrics: the counters of metrics.ts, the queue depth and the tasks in flight, in the Prometheus
// text exposition format (version 0.0.4).
import { runTimeBuckets, type Metrics, type TaskCounter } from "./metrics.js";

export const prometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

export interface Gauges {
  /** tasks waiting in the queue (every process's) */
  queueDepth: number;
  /** tasks this process's worker is running */
  inFlight: number;
  /** job definitions known */
  jobs: number;
}

const taskHelp: Record<TaskCounter, string> = {
  issued: "Tasks issued through this process, by topic.",
  completed: "Tasks this process's worker ended completed, by topic.",
  failed: "Tasks this process's worker ended failed (a job failed), by topic.",
  expired: "Tasks that expired before any job started them, by topic.",
};

export function renderPrometheus(metrics: Metrics, gauges: Gauges): string {
  const out: string[] = [];
  const head = (name: string, type: "counter" | "gauge" | "histogram", help: string) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  };

  for (const counter of ["issued", "completed", "failed", "expired"] as const) {
    const name = `jobshell_tasks_${counter}_total`;
    head(name, "counter", taskHelp[counter]);
    for (const [topic, row] of metrics.tasks) out.push(`${name}{topic="${label(topic)}"} ${row[counter]}`);
  }

  head("jobshell_job_runs_total", "counter", "Job runs by this process's worker, by job and outcome.");
  for (const [job, row] of metrics.jobs) {
    out.push(`jobshell_job_runs_total{job="${label(job)}",status="completed"} ${row.completed}`);
    out.push(`jobshell_job_runs_total{job="${label(job)}",status="failed"} ${row.failed}`);
  }

  head("jobshell_job_run_seconds", "histogram", "Run time of job scripts, by job.");
  for (const [job, row] of metrics.jobs) {
    const j = label(job);
    let cumulative = 0;
    runTimeBuckets.forEach((le, i) => {
      cumulative += row.buckets[i];
      out.push(`jobshell_job_run_seconds_bucket{job="${j}",le="${le}"} ${cumulative}`);
    });
    cumulative += row.buckets[runTimeBuckets.length];
    out.push(`jobshell_job_run_seconds_bucket{job="${j}",le="+Inf"} ${cumulative}`);
    out.push(`jobshell_job_run_seconds_sum{job="${j}"} ${row.sumSeconds}`);
    out.push(`jobshell_job_run_seconds_count{job="${j}"} ${cumulative}`);
  }

  head("jobshell_queue_depth", "gauge", "Tasks waiting in the queue.");
  out.push(`jobshell_queue_depth ${gauges.queueDepth}`);
  head("jobshell_tasks_in_flight", "gauge", "Tasks this process's worker is running.");
  out.push(`jobshell_tasks_in_flight ${gauges.inFlight}`);
  head("jobshell_jobs", "gauge", "Job definitions known.");
  out.push(`jobshell_jobs ${gauges.jobs}`);
  return `${out.join("\n")}\n`;
}

/** A label value with backslash, double quote and newline escaped. */
function label(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}
