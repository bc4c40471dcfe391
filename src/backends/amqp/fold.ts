// The fold of record events into a record, the same in every process, so that every process that
// reads the same stream comes to the same record:
// - a record is created by whichever of its events arrives first (queued and ended events carry
//   the whole task; a record known only from a started event is not shown until one of them comes);
// - `started` raises the attempt; an end is accepted only for the attempt that was started last,
//   and only the first end counts, so a task is never finished twice in its record;
// - a try that ended before its scripts did is noted in `tries`: `tried` (its script's thread was
//   ended) puts the task back to queued; a start over a start that never ended notes a lost delivery;
// - a queued task past its expire *is* expired: readers derive it, with no worker needed; a worker
//   or a full queue that discards one appends `expired`, so that nobody counts it as waiting still;
// - a snapshot sums up a record appended again to outlive the stream's retention (./records.ts).
import { tryLine } from "../../backend.js";
import { expiresAt, hasEnded, type Outcome, type QueuedTask, type TaskRecordData } from "../../record.js";

/** How a try ended whose delivery the broker handed out again while it was started. */
export const lostDelivery = "its delivery came back unacknowledged (its worker died or lost its connection)";

export type RecordEvent =
  | { t: "queued"; task: QueuedTask; at: number }
  /** the task itself is in its queued event: started events are many and small */
  | { t: "started"; taskid: string; attempt: number; at: number }
  | { t: "ended"; task: QueuedTask; attempt: number; outcome: Outcome; at: number }
  /** the try `attempt` ended before its scripts did, as `why` says: the task is queued again */
  | { t: "tried"; taskid: string; attempt: number; why: string; at: number }
  /** the record as it stands, appended again so that it outlives the stream's retention */
  | { t: "snapshot"; task: QueuedTask; attempt: number; startedAt?: number; at: number }
  /** the queue refused the task: it never existed */
  | { t: "refused"; taskid: string; at: number }
  /** a worker or a full queue discarded it: never started, past its expire */
  | { t: "expired"; taskid: string; at: number }
  /** a process's own marker: once it reads it back, it has read everything appended before */
  | { t: "marker"; id: string; at: number };

export interface StoredRecord extends TaskRecordData {
  /** the time of its latest event: the record is dropped task_record_ttl after it */
  touchedAt: number;
  /** how each try that ended before its scripts did ended (not carried by snapshots) */
  tries?: string[];
}

/** Kept while its task waits or runs; dropped task_record_ttl after it ended (or expired). */
export function droppable(rec: StoredRecord, now: number, ttlMs: number): boolean {
  if (rec.topic === undefined) return rec.touchedAt + ttlMs < now; // only ever seen start: a stray event
  const endedAt = rec.completedAt ?? (rec.status === "queued" ? expiresAt(rec) : undefined);
  return endedAt !== undefined && endedAt + ttlMs < now;
}

/** The task's own fields, spelled out: a spread costs several times more on this hot path. */
function setTask(rec: StoredRecord, task: QueuedTask): void {
  rec.topic = task.topic;
  rec.content = task.content;
  rec.expire = task.expire;
  rec.createdAt = task.createdAt;
  if (task.job !== undefined) rec.job = task.job;
}

export function taskidOf(ev: RecordEvent): string | undefined {
  if (ev.t === "marker") return undefined;
  return "task" in ev ? ev.task.taskid : ev.taskid;
}

/** One event applied to a record (changed in place, or created); `undefined` when the task never existed. */
export function fold(rec: StoredRecord | undefined, ev: RecordEvent): StoredRecord | undefined {
  if (ev.t === "marker") return rec;
  if (ev.t === "refused") return undefined;
  if (!rec) {
    const fresh = { taskid: "task" in ev ? ev.task.taskid : ev.taskid, status: "queued", attempt: 0, results: [], touchedAt: ev.at };
    rec = fresh as unknown as StoredRecord;
    if ("task" in ev) setTask(rec, ev.task);
  } else if ("task" in ev && rec.topic === undefined) {
    // known so far only from a started event: now the task itself is here
    setTask(rec, ev.task);
  }
  if (hasEnded(rec.status)) return rec;
  if (ev.t === "snapshot") {
    // Only news to a reader that missed the events it sums up: it never undoes a later start.
    if (ev.attempt > rec.attempt) {
      rec.status = "started";
      rec.attempt = ev.attempt;
      rec.startedAt = ev.startedAt;
    }
  } else if (ev.t === "started") {
    if (ev.attempt <= rec.attempt) return rec;
    if (rec.status === "started") (rec.tries ??= []).push(tryLine(rec.attempt, lostDelivery));
    rec.status = "started";
    rec.attempt = ev.attempt;
    rec.startedAt = ev.at;
  } else if (ev.t === "tried") {
    if (rec.status !== "started" || ev.attempt !== rec.attempt) return rec;
    (rec.tries ??= []).push(tryLine(ev.attempt, ev.why));
    rec.status = "queued";
  } else if (ev.t === "expired") {
    // A discard decided on a record that was queued: a start it did not know of wins.
    if (rec.status !== "queued") return rec;
    rec.status = "expired";
    rec.results = [];
    rec.completedAt = rec.topic === undefined ? ev.at : expiresAt(rec);
  } else if (ev.t === "ended") {
    // An end from an attempt that is no longer the latest was made by a worker presumed dead.
    if (rec.status === "started" && ev.attempt !== rec.attempt) return rec;
    rec.attempt = Math.max(rec.attempt, ev.attempt);
    rec.status = ev.outcome.status;
    rec.results = ev.outcome.results;
    rec.completedAt = ev.outcome.completedAt;
    if (ev.outcome.warning !== undefined) rec.warning = ev.outcome.warning;
  }
  return rec;
}
