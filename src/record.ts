// The task as it travels through a queue, and the record of what became of it.

/** A task as queued: everything a worker on any machine needs to run it. */
export interface QueuedTask {
  /** 32 lowercase hex characters (a uuid4 without dashes) */
  taskid: string;
  topic: string;
  content: Record<string, unknown>;
  /** seconds after `createdAt` by which a job must have started, or the task expires */
  expire: number;
  /** epoch milliseconds, with a fractional part down to the microsecond */
  createdAt: number;
  /** only this job runs it (a Slack bot's direct message), instead of every job on the topic */
  job?: string;
}

export type TaskStatus = "queued" | "started" | "completed" | "failed" | "expired";
export type EndStatus = "completed" | "failed" | "expired";

export const endStatuses: readonly TaskStatus[] = ["completed", "failed", "expired"];

export function hasEnded(status: TaskStatus): status is EndStatus {
  return status === "completed" || status === "failed" || status === "expired";
}

/** What one job made of the task. */
export interface JobResult {
  job: string;
  status: "completed" | "failed";
  value?: unknown;
  /** message and script line:col, when failed */
  error?: string;
}

/** The stored record; times are epoch milliseconds and are formatted only when shown. */
export interface TaskRecordData extends QueuedTask {
  status: TaskStatus;
  /** how many times a worker started it (more than 1 after a worker died mid-run) */
  attempt: number;
  startedAt?: number;
  completedAt?: number;
  results: JobResult[];
  /** set when the topic had no job, or other notes on the outcome */
  warning?: string;
}

/** How a finished task ended, as a worker reports it. */
export interface Outcome {
  status: "completed" | "failed";
  results: JobResult[];
  completedAt: number;
  warning?: string;
}

/** read once: the getter costs as much as the clock itself */
const timeOrigin = performance.timeOrigin;

/** Wall-clock now in epoch milliseconds with microsecond precision. */
export function nowMs(): number {
  return timeOrigin + performance.now();
}

/** The task's deadline to be started, in epoch milliseconds. */
export function expiresAt(task: QueuedTask): number {
  return task.createdAt + task.expire * 1000;
}

const pad = (n: number, width = 2) => String(n).padStart(width, "0");

/** The formatted date, time to the second and offset of the last second formatted: records come in bursts. */
let cachedSecond = Number.NaN;
let cachedHead = "";
let cachedOffset = "";

/** `2026-11-28T09:47:27.512301+09:00`: local offset and microseconds, as in the source. */
export function formatTimestamp(epochMs: number): string {
  const second = Math.floor(epochMs / 1000);
  if (second !== cachedSecond) {
    const d = new Date(second * 1000);
    const offset = -d.getTimezoneOffset();
    const abs = Math.abs(offset);
    cachedSecond = second;
    cachedHead =
      `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}` +
      `T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.`;
    cachedOffset = `${offset >= 0 ? "+" : "-"}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
  }
  const micros = Math.floor(epochMs * 1000 - second * 1_000_000);
  return cachedHead + pad(Math.min(micros, 999_999), 6) + cachedOffset;
}
