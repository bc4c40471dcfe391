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

const pad = (n: number) => String(n).padStart(2, "0");

/** The characters of the last timestamp formatted. Records come in bursts: the date, the time to
 *  the second and the offset are kept while the second stays the same. The text is made in one
 *  piece from them: joined from its parts it would be a tree of strings twice its size, held for
 *  as long as the record is. */
const chars: number[] = [];
let charsSecond = Number.NaN;
/** where the six digits of the microseconds begin in `chars` */
let microsAt = 0;

/** `2026-11-28T09:47:27.512301+09:00`: local offset and microseconds, as in the source. */
export function formatTimestamp(epochMs: number): string {
  const second = Math.floor(epochMs / 1000);
  if (second !== charsSecond) {
    const d = new Date(second * 1000);
    const offset = -d.getTimezoneOffset();
    const abs = Math.abs(offset);
    const text =
      `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}` +
      `T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.000000` +
      `${offset >= 0 ? "+" : "-"}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
    chars.length = text.length;
    for (let i = 0; i < text.length; i++) chars[i] = text.charCodeAt(i);
    microsAt = text.length - 12;
    charsSecond = second;
  }
  let micros = Math.min(Math.floor(epochMs * 1000 - second * 1_000_000), 999_999);
  for (let at = microsAt + 5; at >= microsAt; at--) {
    chars[at] = 48 + (micros % 10);
    micros = Math.floor(micros / 10);
  }
  return String.fromCharCode.apply(null, chars);
}
