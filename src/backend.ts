// The one interface every queue mode implements (memory, Redis, AMQP). The library, the worker
// and the shell talk only to this; a backend is passed in explicitly, never found globally.
import type { Outcome, QueuedTask, TaskRecordData, TaskStatus } from "./record.js";
import type { JobDefinition } from "./definitions.js";

/** A task a worker has taken and must finish or give back. Backends extend it with their own fencing data. */
export interface Lease {
  readonly task: QueuedTask;
}

export interface Backend {
  /** `memory`, `redis` or `amqp` */
  readonly mode: string;
  /** where it is connected, any password masked: shown in the shell banner and in logs */
  readonly location: string;

  // --- the queue ---------------------------------------------------------------------------
  /** Create the task's record (status `queued`) and enqueue it, in one step.
   *  Throws QueueFullError, with nothing enqueued, when `limit` tasks are already waiting. */
  push(task: QueuedTask, limit: number): Promise<void>;
  /** Wait until tasks are waiting, then take up to `max` of them. Resolves `[]` once `signal` aborts. */
  take(max: number, signal: AbortSignal): Promise<Lease[]>;
  /** Mark taken tasks `started` (queued → started, atomically), saying per lease whether the worker
   *  should run it. A task past its expire ends `expired` here instead; one that is no longer this
   *  worker's (ended, or rescued by another) is `gone`. Either way the queue is done with it. */
  start(leases: Lease[]): Promise<StartResult[]>;
  /** Store each task's final record and remove it from the queue. Fenced by the lease: a lease
   *  that is no longer this worker's (it was presumed dead and the task rescued) changes nothing. */
  finish(done: { lease: Lease; outcome: Outcome }[]): Promise<void>;
  /** Put tasks that were taken but not started back at the head of the queue. */
  giveBack(leases: Lease[]): Promise<void>;
  /** The tries of started tasks ended before their scripts did (the thread a script ran in was
   *  ended), `why` saying how: each task goes back to the head of the queue to be tried again, its
   *  attempt counted; one tried `maxAttempts` times ends `failed` instead, its warning listing how
   *  each try ended (see triedWarning). Fenced by the lease, as finish() is. */
  retry(tries: { lease: Lease; why: string }[]): Promise<void>;
  /** Tasks waiting to be taken. */
  depth(): Promise<number>;
  /** The queues and workers of the deployment as the server sees them (stats(), the web console). */
  deployment?(): Promise<Deployment>;

  // --- task records ------------------------------------------------------------------------
  /** The record, with a queued task past its expire already shown (and stored) as `expired`;
   *  `undefined` for a task never issued or older than task_record_ttl. */
  record(taskid: string): Promise<TaskRecordData | undefined>;
  /** Resolve with the record as soon as the task has ended (from any process), or with the latest
   *  record once `timeoutMs` has passed or `signal` aborted; `undefined` if the task is unknown. */
  waitEnded(taskid: string, timeoutMs: number, signal?: AbortSignal): Promise<TaskRecordData | undefined>;

  /** The records of every process's tasks, newest first, filtered and cursor-paged (see RecordQuery). */
  listRecords(query: RecordQuery): Promise<RecordPage>;
  /** Receive every task's queued, started and ended, from every process on this queue, until the
   *  returned stop(). Resolves once live, as subscribe() does. */
  watchTasks(onEvent: (event: TaskEvent) => void): Promise<() => Promise<void>>;

  // --- the debug channel -------------------------------------------------------------------
  publish(line: string): Promise<void>;
  /** Receive every published line from every process on this queue until the returned stop(). */
  subscribe(onLine: (line: string) => void): Promise<() => Promise<void>>;

  // --- job definitions shared by every process on this queue ------------------------------
  readonly jobs: JobStore;

  // --- leases: one holder per deployment (a Slack bot runs in one process only) -------------
  /** Take or renew the lease `name` for `owner` for `ttlSeconds`: true when `owner` holds it now.
   *  A lease not renewed in time passes to the next process that claims it. */
  claim?(name: string, owner: string, ttlSeconds: number): Promise<boolean>;
  /** Give the lease up at once, if `owner` holds it. */
  release?(name: string, owner: string): Promise<void>;

  // --- the server's availability -------------------------------------------------------------
  /** Call `listener` when the queue server is lost and when it is regained, once per outage (not per
   *  connection or retry). Backends without a server have none. Stop with the returned function. */
  onConnection?(listener: (change: ConnectionChange) => void): () => void;

  /** Release connections and timers. Tasks still queued stay queued (except in memory mode). */
  close(): Promise<void>;
}

/** GET /tasks and the console: records newest first (by createdAt, then taskid), filtered, cursor-paged. */
export interface RecordQuery {
  status?: TaskStatus;
  topic?: string;
  /** a job that ran the task (a result's job) or the one job it was addressed to */
  job?: string;
  /** createdAt in [since, until), epoch ms */
  since?: number;
  until?: number;
  /** case-insensitive substring of the content (as JSON), the results' values and errors, the warning; bounded (see scanned) */
  text?: string;
  /** opaque: a previous page's `next` */
  cursor?: string;
  /** 1..500 */
  limit: number;
}

export interface RecordPage {
  records: TaskRecordData[];
  /** the cursor of the next (older) page; absent on the last page */
  next?: string;
  /** records examined for this page: a filter or text search scans at most a bounded number
   *  (scanLimit) before it answers with what it found and a `next` to continue from */
  scanned: number;
  /** records in the index (all of the queue's tasks within task_record_ttl) */
  total: number;
}

/** A task's life as every process on the queue sees it. */
export interface TaskEvent {
  kind: "queued" | "started" | "ended";
  taskid: string;
  topic: string;
  status: TaskStatus;
  /** epoch ms of the change */
  at: number;
  /** for ended: startedAt→completedAt in ms when it started */
  runMs?: number;
}

/** What stats() shows of the whole deployment: every process's, read from the queue server. */
export interface Deployment {
  /** each queue the mode keeps and how many tasks it holds; `consumers` where the broker counts them */
  queues: QueueView[];
  /** the workers known to the server; left out where the server names none (AMQP: see `consumers`) */
  workers?: WorkerView[];
}

export interface QueueView {
  name: string;
  depth: number;
  /** processes consuming it (AMQP: the broker's consumer count; each worker consumes once) */
  consumers?: number;
}

export interface WorkerView {
  id: string;
  /** its last heartbeat (epoch ms) */
  lastSeen: number;
  host?: string;
  pid?: number;
}

/** The queue server was lost (connections dropped; they reconnect by themselves) or regained. */
export type ConnectionChange =
  | { state: "lost"; location: string }
  | { state: "regained"; location: string; /** how long it was lost */ downMs: number };

/** Job definitions as every process on the queue sees them. */
export interface JobStore {
  list(): Promise<JobDefinition[]>;
  /** All or nothing. Without `replace`, a name that exists already is refused (JobDefinitionError). */
  put(definitions: JobDefinition[], replace: boolean): Promise<void>;
  /** `false` if no job had that name. */
  remove(name: string): Promise<boolean>;
  /** Call `onChange` whenever any process changed the set; stop watching with the returned function. */
  watch(onChange: () => void): Promise<() => Promise<void>>;
}

export type StartResult = { started: true; attempt: number } | { started: false; why: "expired" | "gone" };

/** Parameters every backend is opened with. */
export interface BackendOptions {
  /** seconds a task record is kept (task_record_ttl) */
  taskRecordTtl: number;
  /** the debug channel's name (debug_channel) */
  debugChannel: string;
  /** a prefix or namespace for every key, queue and channel, so that tests and tenants never meet */
  namespace?: string;
  /** tries after which a task whose worker died, or whose script's thread was ended, under it ends
   *  `failed` (max_attempts; default 3) */
  maxAttempts?: number;
}

/** The warning of a task that ended `failed` after `attempt` tries, each ended as `tries` says. */
export function triedWarning(attempt: number, maxAttempts: number, tries: string[]): string {
  return `tried ${attempt} times (max_attempts ${maxAttempts}), each try ended before its scripts did: ${tries.join("; ")}`;
}

/** One try in that warning. */
export function tryLine(attempt: number, why: string): string {
  return `attempt ${attempt}: ${why}`;
}
