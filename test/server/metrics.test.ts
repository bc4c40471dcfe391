// What /metrics and the shell's stats() show of the same counters.
import { describe, expect, it } from "vitest";
import { maxTopicsCounted, Metrics, metricsTable, otherTopics } from "../../src/metrics.js";
import { renderPrometheus } from "../../src/prometheus.js";

function sample(): Metrics {
  const m = new Metrics();
  m.countTask("issued", "hello");
  m.countTask("issued", "hello");
  m.countTask("completed", "hello");
  m.countTask("failed", 'we"ird\\topic\nx');
  m.countJobRun("greet", true, 0.002);
  m.countJobRun("greet", true, 0.2);
  m.countJobRun("greet", false, 1000);
  return m;
}

describe("Prometheus text", () => {
  const text = renderPrometheus(sample(), { queueDepth: 7, inFlight: 2, jobs: 3 });

  it("counts tasks per topic, escaping label values", () => {
    expect(text).toContain('jobshell_tasks_issued_total{topic="hello"} 2');
    expect(text).toContain('jobshell_tasks_completed_total{topic="hello"} 1');
    expect(text).toContain('jobshell_tasks_failed_total{topic="we\\"ird\\\\topic\\nx"} 1');
  });

  it("counts at most maxTopicsCounted topics one by one, the rest together, so that no client can grow it without end", () => {
    const m = new Metrics();
    for (let i = 0; i < maxTopicsCounted + 5; i++) m.countTask("issued", `topic-${i}`);
    m.countTask("completed", "topic-0");
    m.countTask("completed", "topic-never-seen");
    const counted = renderPrometheus(m, { queueDepth: 0, inFlight: 0, jobs: 0 });
    expect(counted.match(/^jobshell_tasks_issued_total\{/gm)).toHaveLength(maxTopicsCounted + 1);
    expect(counted).toContain(`jobshell_tasks_issued_total{topic="${otherTopics}"} 5`);
    expect(counted).toContain('jobshell_tasks_completed_total{topic="topic-0"} 1');
    expect(counted).toContain(`jobshell_tasks_completed_total{topic="${otherTopics}"} 1`);
  });

  it("has a cumulative run time histogram per job, with +Inf, sum and count", () => {
    expect(text).toContain('jobshell_job_run_seconds_bucket{job="greet",le="0.001"} 0');
    expect(text).toContain('jobshell_job_run_seconds_bucket{job="greet",le="0.005"} 1');
    expect(text).toContain('jobshell_job_run_seconds_bucket{job="greet",le="0.5"} 2');
    expect(text).toContain('jobshell_job_run_seconds_bucket{job="greet",le="300"} 2');
    expect(text).toContain('jobshell_job_run_seconds_bucket{job="greet",le="+Inf"} 3');
    expect(text).toContain('jobshell_job_run_seconds_count{job="greet"} 3');
    expect(text).toMatch(/^jobshell_job_run_seconds_sum\{job="greet"\} 1000\.20\d*$/m);
    expect(text).toContain('jobshell_job_runs_total{job="greet",status="failed"} 1');
  });

  it("has the gauges, one HELP and TYPE per metric, and ends with a newline", () => {
    expect(text).toContain("jobshell_queue_depth 7");
    expect(text).toContain("jobshell_tasks_in_flight 2");
    expect(text).toContain("jobshell_jobs 3");
    const types = text.split("\n").filter((l) => l.startsWith("# TYPE "));
    expect(new Set(types).size).toBe(types.length);
    expect(text.endsWith("\n")).toBe(true);
  });
});

describe("stats() table", () => {
  it("one aligned row per topic and per job", () => {
    const lines = metricsTable(sample());
    expect(lines[0]).toMatch(/^ {2}topic\s+issued\s+completed\s+failed\s+expired$/);
    expect(lines.find((l) => l.trimStart().startsWith("hello"))).toMatch(/hello\s+2\s+1\s+0\s+0$/);
    expect(lines.find((l) => l.trimStart().startsWith("greet"))).toMatch(/greet\s+3\s+1\s+\d/);
    expect(new Set(lines.filter((l) => l.startsWith("  topic") || l.includes("hello")).map((l) => l.length)).size).toBe(1);
  });

  it("is empty before anything happened", () => {
    expect(metricsTable(new Metrics())).toEqual([]);
  });
});
