// The task routes: POST /tasks issues one, GET /tasks lists the records newest first,
// GET /tasks/{taskid} reads one, and GET /tasks/{taskid}/wait long-polls until it ends.
import type { RecordQuery } from "../backend.js";
import { UnknownTaskError } from "../errors.js";
import { internals } from "../internals.js";
import { recordMU, type JobShell } from "../jobshell.js";
import { decimalNumber } from "../params.js";
import { hasEnded } from "../record.js";
import { parseListingTime } from "../record-query.js";
import { HttpError, readJsonObject, sendJson, validate, type ObjectSchema, type Route } from "./http.js";

/** The longest `wait?timeout=` accepted, in seconds. */
export const maxWaitSeconds = 3600;

/** The long polls under way, which the server ends when it closes. */
export interface LongPolls {
  readonly waits: Set<AbortController>;
  /** true once the server is closing: a wait it ends answers `closing` */
  readonly closing: boolean;
}

const taskSchema: ObjectSchema = {
  topic: { type: "string", required: true, check: (v: string) => (v.length === 0 ? "must not be empty" : undefined) },
  content: { type: "object" },
  expire: {
    type: "number",
    check: (v: number) => (Number.isFinite(v) && v > 0 ? undefined : `must be a positive number of seconds, got ${v}`),
  },
};

const taskidPattern = /^[0-9a-f]{32}$/;

export function taskRoutes(js: JobShell, polls: LongPolls): Route[] {
  return [
    {
      path: /^\/tasks$/,
      methods: {
        GET: async (_req, res, _params, query) => {
          let page;
          try {
            page = await js.tasks(recordQuery(query));
          } catch (err) {
            if (err instanceof TypeError) throw new HttpError("invalid_query", err.message.replace(/^tasks\(\): /, ""));
            throw err;
          }
          sendJson(res, 200, { records: page.records.map(recordMU), next: page.next ?? null, scanned: page.scanned, total: page.total });
        },
        POST: async (req, res) => {
          const body = await readJsonObject(req);
          validate(body, taskSchema);
          let taskid: string;
          try {
            taskid = await js.task(body.topic as string, (body.content ?? {}) as Record<string, unknown>, body.expire as number | undefined);
          } catch (err) {
            if (err instanceof TypeError) throw new HttpError("invalid_body", err.message);
            throw err;
          }
          sendJson(res, 201, { taskid }, { location: `/tasks/${taskid}` });
        },
      },
    },
    {
      path: /^\/tasks\/([^/]+)$/,
      methods: {
        GET: async (_req, res, [id]) => {
          const record = await js.record(checkTaskid(id));
          if (!record) throw new UnknownTaskError(id);
          sendJson(res, 200, record);
        },
      },
    },
    {
      path: /^\/tasks\/([^/]+)\/wait$/,
      methods: {
        GET: async (_req, res, [id], query) => {
          const taskid = checkTaskid(id);
          const timeout = waitTimeout(query.get("timeout"));
          const controller = new AbortController();
          polls.waits.add(controller);
          // A client that goes away stops the wait.
          res.on("close", () => controller.abort());
          try {
            const record = await internals(js).recordWhenEnded(taskid, timeout, controller.signal);
            if (polls.closing) throw new HttpError("closing", "the server is shutting down; ask again", {}, { connection: "close" });
            if (res.destroyed) return;
            if (!record) throw new UnknownTaskError(taskid);
            // On timeout the record as it is now: its status says the task has not ended.
            sendJson(res, 200, record, { "x-jobshell-ended": String(hasEnded(record.status)) });
          } finally {
            polls.waits.delete(controller);
          }
        },
      },
    },
  ];
}

function checkTaskid(id: string): string {
  if (!taskidPattern.test(id)) throw new HttpError("invalid_taskid", `a taskid is 32 lowercase hex characters, got ${JSON.stringify(id)}`);
  return id;
}

function waitTimeout(raw: string | null): number {
  if (raw === null) return 60;
  const seconds = decimalNumber(raw);
  if (seconds === undefined || seconds > maxWaitSeconds) {
    throw new HttpError("invalid_query", `timeout must be a number of seconds from 0 to ${maxWaitSeconds}, got ${JSON.stringify(raw)}`);
  }
  return seconds;
}

const listFields = ["status", "topic", "job", "since", "until", "text", "cursor", "limit"] as const;

/** GET /tasks's query as js.tasks() takes it; js.tasks() checks the values and names a bad one. */
export function recordQuery(query: URLSearchParams): Partial<RecordQuery> {
  const out: Record<string, unknown> = {};
  for (const key of new Set(query.keys())) {
    if (!(listFields as readonly string[]).includes(key)) {
      throw new HttpError("invalid_query", `unknown query parameter ${JSON.stringify(key)} (known: ${listFields.join(", ")})`);
    }
    const value = query.get(key)!;
    if (value === "") continue;
    if (key === "since" || key === "until") out[key] = timeQuery(value, key);
    else if (key === "limit") {
      const n = decimalNumber(value);
      if (n === undefined || !Number.isInteger(n)) throw new HttpError("invalid_query", `limit must be a whole number, got ${JSON.stringify(value)}`);
      out.limit = n;
    } else out[key] = value;
  }
  return out as Partial<RecordQuery>;
}

/** A time in the query: epoch milliseconds, or an ISO 8601 date and time. */
export function timeQuery(raw: string, name: string): number {
  const ms = parseListingTime(raw);
  if (!Number.isFinite(ms)) {
    throw new HttpError("invalid_query", `${name} must be a time: epoch milliseconds or ISO 8601 such as 2026-11-28T09:47:27Z, got ${JSON.stringify(raw)}`);
  }
  return ms;
}
