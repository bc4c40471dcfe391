// GET /transactions: the transactions with their status and each one's `Transaction.*` events in
// order, read from the records of the tasks those events are (every process's, within
// task_record_ttl), grouped by the xid in their content. Bounded: the newest records of each status.
import type { JobShell } from "../jobshell.js";
import type { TaskRecordData } from "../record.js";
import { transactionStatuses, transactionTopic } from "../transaction.js";
import { HttpError, sendJson, type Route } from "./http.js";

/** Records read per transaction status. */
const perStatus = 500;
const defaultLimit = 50;
const maxLimit = 500;

export interface TransactionView {
  xid: string;
  xname: string;
  /** the status of its newest event */
  status: string;
  /** epoch ms of its newest event */
  updatedAt: number;
  events: { status: string; previousStatus: string | null; at: unknown; taskid: string; taskStatus: string }[];
}

export function transactionRoutes(js: JobShell): Route[] {
  return [
    {
      path: /^\/transactions$/,
      methods: {
        GET: async (_req, res, _params, query) => {
          for (const key of query.keys()) {
            if (key !== "limit") throw new HttpError("invalid_query", `unknown query parameter ${JSON.stringify(key)} (known: limit)`);
          }
          const raw = query.get("limit");
          const limit = raw === null || raw === "" ? defaultLimit : Number(raw);
          if (!Number.isInteger(limit) || limit < 1 || limit > maxLimit || !/^\d+$/.test(raw ?? "1")) {
            throw new HttpError("invalid_query", `limit must be a whole number from 1 to ${maxLimit}, got ${JSON.stringify(raw)}`);
          }
          const pages = await Promise.all(transactionStatuses.map((status) => js.tasks({ topic: transactionTopic(status), limit: perStatus })));
          const transactions = group(pages.flatMap((p) => p.records));
          sendJson(res, 200, {
            transactions: transactions.slice(0, limit),
            total: transactions.length,
            // the oldest events of a busy deployment were left out: each status reads its newest records only
            truncated: pages.some((p) => p.next !== undefined),
          });
        },
      },
    },
  ];
}

/** The records of Transaction.* tasks as transactions, the most recently changed first. */
export function group(records: TaskRecordData[]): TransactionView[] {
  const byXid = new Map<string, TransactionView>();
  const sorted = [...records].sort((a, b) => a.createdAt - b.createdAt || (a.taskid < b.taskid ? -1 : 1));
  for (const record of sorted) {
    const content = (record.content ?? {}) as Record<string, unknown>;
    if (typeof content.xid !== "string") continue; // a task on such a topic issued by hand
    const status = record.topic.slice("Transaction.".length);
    let tx = byXid.get(content.xid);
    if (!tx) {
      tx = { xid: content.xid, xname: typeof content.xname === "string" ? content.xname : content.xid, status, updatedAt: record.createdAt, events: [] };
      byXid.set(content.xid, tx);
    }
    tx.status = status;
    tx.updatedAt = record.createdAt;
    tx.events.push({
      status,
      previousStatus: typeof content.previousStatus === "string" ? content.previousStatus : null,
      at: content.at,
      taskid: record.taskid,
      taskStatus: record.status,
    });
  }
  return [...byXid.values()].sort((a, b) => b.updatedAt - a.updatedAt);
}
