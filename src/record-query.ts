// Listing records: what every backend's listRecords() shares. The order (newest first: createdAt,
// then taskid, both descending), the cursor that continues it, the filters and the bounded scan.
import type { RecordPage, RecordQuery, TaskEvent } from "./backend.js";
import { describe } from "./task.js";
import type { TaskRecordData, TaskStatus } from "./record.js";

/** A filtered page examines at most this many records before it answers with what it found. */
export const scanLimit = 10_000;
export const maxLimit = 500;
export const defaultLimit = 50;

const statuses: readonly TaskStatus[] = ["queued", "started", "completed", "failed", "expired"];

/** A time as GET /tasks and the console's filters take it: epoch milliseconds, or an ISO 8601 date and
 *  time (`2026-11-28T09:47:27Z`, `2026-12-07T09:30`); NaN for anything else. */
export function parseListingTime(text: string): number {
  return /^\d+$/.test(text) ? Number(text) : /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : Number.NaN;
}

/** Where a record stands in the listing: records are listed by this key, descending. */
export interface RecordKey {
  createdAt: number;
  taskid: string;
}

/** Negative when `a` comes before `b` in time (so after it in the listing). */
export function compareKeys(a: RecordKey, b: RecordKey): number {
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? -1 : 1;
  return a.taskid < b.taskid ? -1 : a.taskid > b.taskid ? 1 : 0;
}

/** The cursor of the page after the record `key`: `<createdAt>_<taskid>`, opaque to callers. */
export function encodeCursor(key: RecordKey): string {
  return `${key.createdAt}_${key.taskid}`;
}

export function decodeCursor(cursor: string): RecordKey {
  const at = cursor.indexOf("_");
  const createdAt = at > 0 ? Number(cursor.slice(0, at)) : Number.NaN;
  const taskid = cursor.slice(at + 1);
  if (!Number.isFinite(createdAt) || taskid === "" || /\s/.test(taskid)) {
    throw new TypeError(`tasks(): cursor must be a page's "next", got ${describe(cursor)}`);
  }
  return { createdAt, taskid };
}

/** The listing starts below this key (exclusive): the cursor's record, or `until`, whichever is older. */
export function startKey(query: RecordQuery): RecordKey | undefined {
  const cursor = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
  // Every taskid sorts after "", so (until, "") is below every record created at `until`.
  const until = query.until === undefined ? undefined : { createdAt: query.until, taskid: "" };
  if (!cursor) return until;
  if (!until) return cursor;
  return compareKeys(cursor, until) < 0 ? cursor : until;
}

/** Whether the query filters on more than the time range (so a page may scan past what it returns). */
export function filters(query: RecordQuery): boolean {
  return query.status !== undefined || query.topic !== undefined || query.job !== undefined || query.text !== undefined;
}

/** Builds a page from records offered newest first: offer() each, until it returns false. */
export class PageBuilder {
  readonly records: TaskRecordData[] = [];
  scanned = 0;
  next: string | undefined = undefined;
  private readonly needle: string | undefined;

  constructor(private readonly query: RecordQuery) {
    this.needle = query.text?.toLowerCase();
  }

  /** Take the next older record into account; false once the page is complete. */
  offer(rec: TaskRecordData): boolean {
    if (this.query.since !== undefined && rec.createdAt < this.query.since) return false;
    this.scanned += 1;
    if (this.matches(rec)) this.records.push(rec);
    if (this.records.length >= this.query.limit || this.scanned >= scanLimit) {
      this.next = encodeCursor(rec);
      return false;
    }
    return true;
  }

  /** The page; `more` false once the listing has reached its end (no record older than the last offered). */
  page(total: number, more = true): RecordPage {
    const page: RecordPage = { records: this.records, scanned: this.scanned, total };
    if (this.next !== undefined && more) page.next = this.next;
    return page;
  }

  private matches(rec: TaskRecordData): boolean {
    const q = this.query;
    if (q.status !== undefined && rec.status !== q.status) return false;
    if (q.topic !== undefined && rec.topic !== q.topic) return false;
    if (q.job !== undefined && rec.job !== q.job && !rec.results.some((r) => r.job === q.job)) return false;
    if (this.needle !== undefined && !textOf(rec).includes(this.needle)) return false;
    return true;
  }
}

/** What a text search looks in, lower-cased: the content as JSON, each result's value and error, the warning. */
function textOf(rec: TaskRecordData): string {
  let text = JSON.stringify(rec.content);
  for (const r of rec.results) {
    if (r.value !== undefined) text += "\n" + JSON.stringify(r.value);
    if (r.error !== undefined) text += "\n" + r.error;
  }
  if (rec.warning !== undefined) text += "\n" + rec.warning;
  return text.toLowerCase();
}

/** Check a query given by a caller and fill in its defaults: a TypeError names the field at fault. */
export function checkQuery(input: unknown = {}): RecordQuery {
  if (input === null || typeof input !== "object" || Array.isArray(input)) throw new TypeError(`tasks(): takes an object of filters, got ${describe(input)}`);
  const given = input as Record<string, unknown>;
  const known = ["status", "topic", "job", "since", "until", "text", "cursor", "limit"];
  for (const key of Object.keys(given)) {
    if (!known.includes(key) && given[key] !== undefined) throw new TypeError(`tasks(): unknown field ${key} (known: ${known.join(", ")})`);
  }
  const query: RecordQuery = { limit: defaultLimit };
  const { status, topic, job, since, until, text, cursor, limit } = given;
  if (limit !== undefined) {
    if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1 || limit > maxLimit) {
      throw new TypeError(`tasks(): limit must be a whole number from 1 to ${maxLimit}, got ${describe(limit)}`);
    }
    query.limit = limit;
  }
  if (status !== undefined) {
    if (!statuses.includes(status as TaskStatus)) throw new TypeError(`tasks(): status must be one of ${statuses.join(", ")}, got ${describe(status)}`);
    query.status = status as TaskStatus;
  }
  for (const [name, value] of [["topic", topic], ["job", job], ["text", text]] as const) {
    if (value === undefined) continue;
    if (typeof value !== "string" || value === "") throw new TypeError(`tasks(): ${name} must be a non-empty string, got ${describe(value)}`);
    query[name] = value;
  }
  for (const [name, value] of [["since", since], ["until", until]] as const) {
    if (value === undefined) continue;
    const ms = value instanceof Date ? value.getTime() : value;
    if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) throw new TypeError(`tasks(): ${name} must be a time in epoch milliseconds (or a Date), got ${describe(value)}`);
    query[name] = ms;
  }
  if (query.since !== undefined && query.until !== undefined && query.since > query.until) {
    throw new TypeError(`tasks(): since (${query.since}) must not be after until (${query.until})`);
  }
  if (cursor !== undefined) {
    if (typeof cursor !== "string") throw new TypeError(`tasks(): cursor must be a page's "next", got ${describe(cursor)}`);
    decodeCursor(cursor);
    query.cursor = cursor;
  }
  return query;
}

/** The event of a record as it is now. */
export function eventOf(rec: TaskRecordData, kind: TaskEvent["kind"], at: number): TaskEvent {
  const event: TaskEvent = { kind, taskid: rec.taskid, topic: rec.topic, status: rec.status, at };
  if (kind === "ended" && rec.startedAt !== undefined && rec.completedAt !== undefined) event.runMs = rec.completedAt - rec.startedAt;
  return event;
}
