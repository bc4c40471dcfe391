// The transaction lifecycle: the ten statuses of the source, the moves allowed between
// them, and, with job_transaction_event on, one `Transaction.<Status>` task per change so that
// jobs can react to it (saga choreography).
import { inspect, type InspectOptions } from "node:util";
import { describe } from "./describe.js";
import { IllegalTransitionError } from "./errors.js";
import { isMU } from "./mu.js";
import { formatTimestamp, nowMs } from "./record.js";
import { uuidHex } from "./task.js";

export const transactionStatuses = [
  "Processing",
  "Complete",
  "Suspending",
  "RecoveryProcessing",
  "RecoveryComplete",
  "ForceRecoveryComplete",
  "Aborted",
  "Cancelling",
  "Cancelled",
  "ForceCancelled",
] as const;

export type TransactionStatus = (typeof transactionStatuses)[number];

/**
 * Where each status may go. A transaction begins in Processing. Forward work ends in Complete; a
 * failure aborts it; from Aborted it is recovered (forward) or cancelled (backward, the saga's
 * compensation), or an operator forces either end. A finished transaction may still be cancelled.
 */
export const transitions: Readonly<Record<TransactionStatus, readonly TransactionStatus[]>> = {
  Processing: ["Complete", "Suspending", "Aborted", "Cancelling"],
  Suspending: ["Processing", "Aborted", "Cancelling"],
  Complete: ["Cancelling"],
  Aborted: ["RecoveryProcessing", "ForceRecoveryComplete", "Cancelling", "ForceCancelled"],
  RecoveryProcessing: ["RecoveryComplete", "Aborted"],
  RecoveryComplete: ["Cancelling"],
  ForceRecoveryComplete: ["Cancelling"],
  Cancelling: ["Cancelled", "Aborted", "ForceCancelled"],
  Cancelled: [],
  ForceCancelled: [],
};

/** The topic of the task issued when a transaction enters `status`. */
export function transactionTopic(status: TransactionStatus): string {
  return `Transaction.${status}`;
}

/**
 * For jobs on `Transaction.*` topics while job_transaction_event is off: one line saying that no such
 * task is issued (a saga loaded without events does nothing, in silence otherwise).
 */
export function transactionEventsOff(definitions: readonly { name: string; topics: readonly string[] }[], eventsOn: boolean): string | undefined {
  if (eventsOn) return undefined;
  const names = definitions.filter((d) => d.topics.some((t) => t.startsWith("Transaction."))).map((d) => d.name);
  if (names.length === 0) return undefined;
  const jobs = names.length === 1 ? `job ${names[0]} answers` : `jobs ${names.join(", ")} answer`;
  return `${jobs} Transaction.* topics, but job_transaction_event is off: no such task is issued (start with --job-transaction-event)`;
}

export function isTransactionStatus(value: unknown): value is TransactionStatus {
  return typeof value === "string" && (transactionStatuses as readonly string[]).includes(value);
}

/** The content of a `Transaction.<Status>` task: the transaction's data, then these fields. */
export interface TransactionEvent {
  xid: string;
  xname: string;
  status: TransactionStatus;
  /** null for the event of Processing at begin */
  previousStatus: TransactionStatus | null;
  /** when the change happened, formatted like a record's times */
  at: string;
  [key: string]: unknown;
}

export interface TransactionsOptions {
  /** issue a task per change (job_transaction_event) */
  events: boolean;
  /** how events are issued: the library's task() */
  issue(topic: string, content: Record<string, unknown>, expire: number): Promise<string>;
  /** expire of the event tasks, in seconds (default 60) */
  eventExpire?: number;
  /** transactions remembered by this process (default 10000); the oldest are forgotten first */
  limit?: number;
}

/** One transaction as this process knows it. */
export class Transaction {
  status: TransactionStatus;
  previousStatus: TransactionStatus | null;
  /** data carried in every event of this transaction (an order id, what was reserved, ...) */
  readonly data: Record<string, unknown>;
  /** when the status last changed (epoch ms): an event taken up later wins only if it is newer */
  changedAt: number;

  constructor(
    private readonly owner: Transactions,
    readonly xid: string,
    readonly xname: string,
    status: TransactionStatus,
    previousStatus: TransactionStatus | null,
    data: Record<string, unknown>,
    changedAt = nowMs(),
  ) {
    this.status = status;
    this.previousStatus = previousStatus;
    this.data = data;
    this.changedAt = changedAt;
  }

  /** The statuses this transaction may go to next. */
  get next(): readonly TransactionStatus[] {
    return transitions[this.status];
  }

  /**
   * Move to `status`, adding `data` to what the transaction carries. Throws IllegalTransitionError
   * (nothing changes) when the current status does not lead there. With events on, resolves with the
   * taskid of the `Transaction.<Status>` task; if that task cannot be issued the change is undone.
   */
  async to(status: TransactionStatus, data?: Record<string, unknown>): Promise<string | undefined> {
    if (!isTransactionStatus(status)) {
      throw new TypeError(`transaction.to(): status must be one of ${transactionStatuses.join(", ")}, got ${describe(status)}`);
    }
    const extra = plainData(data, "transaction.to()");
    const from = this.status;
    if (!transitions[from].includes(status)) throw new IllegalTransitionError(this.xname, from, status, transitions[from]);
    // The status changes before any await, so two concurrent moves from one status cannot both pass.
    const previousBefore = this.previousStatus;
    const changedBefore = this.changedAt;
    this.status = status;
    this.previousStatus = from;
    this.changedAt = nowMs();
    const saved = { ...this.data };
    Object.assign(this.data, extra);
    try {
      return await this.owner.announce(this);
    } catch (err) {
      if (this.status === status) {
        this.status = from;
        this.previousStatus = previousBefore;
        this.changedAt = changedBefore;
        for (const key of Object.keys(this.data)) delete this.data[key];
        Object.assign(this.data, saved);
      }
      throw err;
    }
  }

  /** The content of the event for the current status. */
  event(): TransactionEvent {
    return {
      ...this.data,
      xid: this.xid,
      xname: this.xname,
      status: this.status,
      previousStatus: this.previousStatus,
      at: formatTimestamp(this.changedAt),
    };
  }

  toJSON(): Record<string, unknown> {
    return { xid: this.xid, xname: this.xname, status: this.status, previousStatus: this.previousStatus, data: this.data };
  }

  /** Shown (in the shell, by console.log) as its name, status and data, not its bookkeeping. */
  [inspect.custom](_depth: number, options: InspectOptions): string {
    const { status, previousStatus, data, xid, next } = this;
    return `Transaction ${this.xname} ${inspect({ status, previousStatus, data, xid, next }, options)}`;
  }
}

/** The transactions of one jobshell instance. */
export class Transactions {
  private readonly byXid = new Map<string, Transaction>();
  private readonly byName = new Map<string, Transaction>();

  constructor(private readonly options: TransactionsOptions) {}

  /** Begin a new transaction in Processing (issuing `Transaction.Processing` when events are on). */
  async begin(xname?: string, data?: Record<string, unknown>): Promise<Transaction> {
    if (xname !== undefined && (typeof xname !== "string" || xname === "")) {
      throw new TypeError(`transaction(): the name must be a non-empty string, got ${describe(xname)}`);
    }
    const extra = plainData(data, "transaction()");
    const xid = uuidHex();
    const tx = new Transaction(this, xid, xname ?? xid, "Processing", null, { ...extra });
    this.remember(tx);
    try {
      await this.announce(tx);
    } catch (err) {
      this.forget(tx);
      throw err;
    }
    return tx;
  }

  /**
   * The `transaction(...)` builtin:
   * - a name: the transaction of that name this process knows, or a new one begun under it;
   * - the content of a `Transaction.<Status>` event (`task.content` in a job): that transaction, at
   *   the status the event tells, so that a job in any process can move it on;
   * - nothing: a new transaction named after its xid.
   */
  async open(what?: unknown, data?: Record<string, unknown>): Promise<Transaction> {
    if (what === undefined || what === null) return this.begin(undefined, data);
    if (typeof what === "string") {
      const known = this.byName.get(what);
      if (known) {
        Object.assign(known.data, plainData(data, "transaction()"));
        return known;
      }
      return this.begin(what, data);
    }
    return this.fromEvent(what);
  }

  /** The transaction an event describes, at the status the event tells: the one this process knows by
   *  its xid (moved to the event's status if another process moved it on since this one last did), or
   *  one rebuilt from the event. */
  fromEvent(event: unknown): Transaction {
    const plain = (isMU(event) ? (event as { dictionary: unknown }).dictionary : event) as Record<string, unknown> | null;
    if (plain === null || typeof plain !== "object" || typeof plain.xid !== "string" || !isTransactionStatus(plain.status)) {
      throw new TypeError("transaction(): give a name, or the content of a Transaction.<Status> task (with xid and status)");
    }
    const { xid, xname, status, previousStatus, at, ...data } = plain;
    const changedAt = typeof at === "string" && Number.isFinite(Date.parse(at)) ? Date.parse(at) : nowMs();
    const previous = isTransactionStatus(previousStatus) ? previousStatus : null;
    const known = this.byXid.get(xid as string);
    if (known) {
      // An event older than this process's own last move is history: the known status stands.
      if (changedAt > known.changedAt) {
        known.status = status as TransactionStatus;
        known.previousStatus = previous;
        known.changedAt = changedAt;
        Object.assign(known.data, data);
      }
      return known;
    }
    const name = typeof xname === "string" && xname !== "" ? xname : (xid as string);
    const tx = new Transaction(this, xid as string, name, status as TransactionStatus, previous, data, changedAt);
    this.remember(tx);
    return tx;
  }

  /** The transaction this process knows under `xname` or `xid`. */
  get(nameOrXid: string): Transaction | undefined {
    return this.byName.get(nameOrXid) ?? this.byXid.get(nameOrXid);
  }

  /** @internal Issue the event of the transaction's current status, when events are on. */
  async announce(tx: Transaction): Promise<string | undefined> {
    if (!this.options.events) return undefined;
    return this.options.issue(transactionTopic(tx.status), tx.event(), this.options.eventExpire ?? 60);
  }

  private remember(tx: Transaction): void {
    this.byXid.set(tx.xid, tx);
    this.byName.set(tx.xname, tx);
    const limit = this.options.limit ?? 10_000;
    for (const oldest of this.byXid.values()) {
      if (this.byXid.size <= limit) break;
      this.forget(oldest);
    }
  }

  private forget(tx: Transaction): void {
    this.byXid.delete(tx.xid);
    if (this.byName.get(tx.xname) === tx) this.byName.delete(tx.xname);
  }
}

function plainData(data: unknown, what: string): Record<string, unknown> {
  if (data === undefined || data === null) return {};
  const plain = isMU(data) ? (data as { dictionary: unknown }).dictionary : data;
  if (typeof plain !== "object" || Array.isArray(plain)) {
    throw new TypeError(`${what}: data must be a plain object, got ${describe(plain)}`);
  }
  const reserved = Object.keys(plain as object).filter((k) => ["xid", "xname", "status", "previousStatus", "at"].includes(k));
  if (reserved.length > 0) throw new TypeError(`${what}: data may not set ${reserved.join(", ")} (the transaction sets them)`);
  return structuredClone(plain as Record<string, unknown>);
}
