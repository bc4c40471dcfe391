// How record events travel in the stream: one stream message per batch, its format in the `v` header.
// Format 2, a JSON array: the batch's first time, then one positional array per event:
//   [0, at, task]                                      queued
//   [1, at, taskid, attempt]                           started
//   [2, at, task, attempt, status, completedAt, results, warning?]   ended (status 0 completed, 1 failed)
//   [3, at, taskid, attempt, why]                      tried
//   [4, at, task, attempt, startedAt?]                 snapshot
//   [5, at, taskid] refused, [6, at, taskid] expired, [7, at, id] marker
// where task is [taskid, topic, content, expire, createdAt, job?] and a result is [job, status] or,
// with a value or an error, the result's object. Times after the first are in 1/4096 ms from it: an
// epoch time in ms is a multiple of 2^-12, so they are short integers and decode to the same number
// (a time that would not, far from the first, goes as a string of its own).
// Format 1 (no `v` header) is `{ origin, batch, events }` with the events as objects.
import type { JobResult, QueuedTask } from "../../record.js";
import type { RecordEvent } from "./fold.js";

/** The format this build writes. */
export const formatVersion = 2;

const tick = 4096;

type Task = [string, string, Record<string, unknown>, number, number, string?];
type Result = [string, 0 | 1] | JobResult;

/** The body of a stream message of format 2. */
export function encodeBatch(events: RecordEvent[]): Buffer {
  const base = events.length > 0 ? events[0].at : 0;
  const time = (t: number): number => {
    const after = t - base;
    return after + base === t ? after * tick : (String(t) as unknown as number);
  };
  const task = (t: QueuedTask): Task => {
    const out: Task = [t.taskid, t.topic, t.content, t.expire, time(t.createdAt)];
    if (t.job !== undefined) out.push(t.job);
    return out;
  };
  const wire: unknown[] = [base];
  for (const ev of events) {
    const at = time(ev.at);
    switch (ev.t) {
      case "queued":
        wire.push([0, at, task(ev.task)]);
        break;
      case "started":
        wire.push([1, at, ev.taskid, ev.attempt]);
        break;
      case "ended": {
        const { status, results, completedAt, warning } = ev.outcome;
        const out: unknown[] = [2, at, task(ev.task), ev.attempt, status === "completed" ? 0 : 1, time(completedAt), results.map(result)];
        if (warning !== undefined) out.push(warning);
        wire.push(out);
        break;
      }
      case "tried":
        wire.push([3, at, ev.taskid, ev.attempt, ev.why]);
        break;
      case "snapshot":
        wire.push(ev.startedAt === undefined ? [4, at, task(ev.task), ev.attempt] : [4, at, task(ev.task), ev.attempt, time(ev.startedAt)]);
        break;
      case "refused":
        wire.push([5, at, ev.taskid]);
        break;
      case "expired":
        wire.push([6, at, ev.taskid]);
        break;
      case "marker":
        wire.push([7, at, ev.id]);
        break;
    }
  }
  return Buffer.from(JSON.stringify(wire));
}

/** The events of a stream message of format 2; throws on one that is not. */
export function decodeBatch(body: Buffer): RecordEvent[] {
  const wire = JSON.parse(body.toString()) as unknown[];
  const base = wire[0] as number;
  const time = (t: number | string) => (typeof t === "number" ? base + t / tick : Number(t));
  const task = (t: Task): QueuedTask => {
    const out: QueuedTask = { taskid: t[0], topic: t[1], content: t[2], expire: t[3], createdAt: time(t[4]) };
    if (t[5] !== undefined) out.job = t[5];
    return out;
  };
  const events: RecordEvent[] = [];
  for (let i = 1; i < wire.length; i++) {
    const e = wire[i] as any[];
    const at = time(e[1]);
    switch (e[0]) {
      case 0:
        events.push({ t: "queued", task: task(e[2]), at });
        break;
      case 1:
        events.push({ t: "started", taskid: e[2], attempt: e[3], at });
        break;
      case 2: {
        const results = (e[6] as Result[]).map((r) => (Array.isArray(r) ? { job: r[0], status: r[1] === 0 ? "completed" : "failed" } as JobResult : r));
        const outcome = { status: e[4] === 0 ? "completed" : "failed", results, completedAt: time(e[5]) } as const;
        events.push({ t: "ended", task: task(e[2]), attempt: e[3], outcome: e[7] === undefined ? outcome : { ...outcome, warning: e[7] }, at });
        break;
      }
      case 3:
        events.push({ t: "tried", taskid: e[2], attempt: e[3], why: e[4], at });
        break;
      case 4:
        events.push({ t: "snapshot", task: task(e[2]), attempt: e[3], startedAt: e[4] === undefined ? undefined : time(e[4]), at });
        break;
      case 5:
        events.push({ t: "refused", taskid: e[2], at });
        break;
      case 6:
        events.push({ t: "expired", taskid: e[2], at });
        break;
      case 7:
        events.push({ t: "marker", id: e[2], at });
        break;
      default:
        throw new Error(`an event of unknown kind ${JSON.stringify(e[0])} in the record stream`);
    }
  }
  return events;
}

function result(r: JobResult): Result {
  return r.value === undefined && r.error === undefined ? [r.job, r.status === "completed" ? 0 : 1] : r;
}
