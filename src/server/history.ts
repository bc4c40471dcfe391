// The last hour of the queue as the console charts it: tasks ended per second by status, and the
// run time's median and 95th percentile per minute. Fed by task events (js.onTask, every process's),
// kept in fixed rings, so that memory stays bounded however busy the queue is.
import type { TaskEvent } from "../backend.js";

const seconds = 3600;
const minutes = 60;
/** Run times kept per minute for its percentiles: past this, a reservoir sample of them. */
const samplesPerMinute = 1000;

const endStatuses = ["completed", "failed", "expired"] as const;
type EndStatus = (typeof endStatuses)[number];

export interface History {
  /** epoch ms of the first second shown; the arrays hold one entry per second from there */
  from: number;
  step: 1000;
  completed: number[];
  failed: number[];
  expired: number[];
  runTime: {
    /** epoch ms of the first minute shown; one entry per minute */
    from: number;
    step: 60000;
    /** tasks ended in that minute with a run time */
    count: number[];
    /** milliseconds; null for a minute with no run */
    p50: (number | null)[];
    p95: (number | null)[];
  };
}

export class TaskHistory {
  /** per second, by status: the count, in a ring indexed by the epoch second */
  readonly #ended: Record<EndStatus, Uint32Array> = {
    completed: new Uint32Array(seconds),
    failed: new Uint32Array(seconds),
    expired: new Uint32Array(seconds),
  };
  /** the epoch second each slot of #ended holds */
  readonly #second = new Float64Array(seconds).fill(-1);
  readonly #runs: { minute: number; seen: number; samples: number[] }[] = Array.from({ length: minutes }, () => ({ minute: -1, seen: 0, samples: [] }));

  /** Count a task event (only `ended` ones matter). */
  add(event: TaskEvent): void {
    if (event.kind !== "ended" || !(endStatuses as readonly string[]).includes(event.status)) return;
    const second = Math.floor(event.at / 1000);
    const slot = second % seconds;
    if (this.#second[slot] !== second) {
      if (this.#second[slot] > second) return; // older than the hour kept
      this.#second[slot] = second;
      for (const status of endStatuses) this.#ended[status][slot] = 0;
    }
    this.#ended[event.status as EndStatus][slot] += 1;
    if (event.runMs === undefined) return;
    const minute = Math.floor(event.at / 60_000);
    const runs = this.#runs[minute % minutes];
    if (runs.minute !== minute) {
      if (runs.minute > minute) return;
      runs.minute = minute;
      runs.seen = 0;
      runs.samples = [];
    }
    runs.seen += 1;
    if (runs.samples.length < samplesPerMinute) runs.samples.push(event.runMs);
    else {
      // Reservoir sampling: every run of the minute has the same chance to be kept.
      const i = Math.floor(Math.random() * runs.seen);
      if (i < samplesPerMinute) runs.samples[i] = event.runMs;
    }
  }

  /** The last hour up to `now`, oldest first. */
  snapshot(now = Date.now()): History {
    const last = Math.floor(now / 1000);
    const first = last - seconds + 1;
    const history: History = {
      from: first * 1000,
      step: 1000,
      completed: [],
      failed: [],
      expired: [],
      runTime: { from: 0, step: 60000, count: [], p50: [], p95: [] },
    };
    for (let second = first; second <= last; second++) {
      const slot = second % seconds;
      const here = this.#second[slot] === second;
      for (const status of endStatuses) history[status].push(here ? this.#ended[status][slot] : 0);
    }
    const lastMinute = Math.floor(now / 60_000);
    history.runTime.from = (lastMinute - minutes + 1) * 60_000;
    for (let minute = lastMinute - minutes + 1; minute <= lastMinute; minute++) {
      const runs = this.#runs[minute % minutes];
      const here = runs.minute === minute && runs.samples.length > 0;
      const sorted = here ? [...runs.samples].sort((a, b) => a - b) : [];
      history.runTime.count.push(here ? runs.seen : 0);
      history.runTime.p50.push(here ? percentile(sorted, 0.5) : null);
      history.runTime.p95.push(here ? percentile(sorted, 0.95) : null);
    }
    return history;
  }
}

/** The nearest-rank percentile of sorted values. */
function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
}
