// The embedded default: the queue, the records and the debug channel in this process's memory.
// Nothing survives the process; everything else behaves as in the server-backed modes.
import { triedWarning, tryLine, type Backend, type BackendOptions, type JobStore, type Lease, type RecordPage, type RecordQuery, type StartResult, type TaskEvent } from "../backend.js";
import type { JobDefinition } from "../definitions.js";
import { mergeDefinitions } from "../definitions.js";
import { QueueFullError } from "../errors.js";
import { TaskWaiters, untilWoken, type Waiter } from "./waiters.js";
import { eventOf } from "../record-query.js";
import { CreationOrder } from "./creation-order.js";
import { expiresAt, hasEnded, nowMs, type Outcome, type QueuedTask, type TaskRecordData } from "../record.js";

const settled = Promise.resolve();

/** The longest the worker takes and runs tasks before timers and I/O get a turn (ms). */
const turnMs = 10;

export class MemoryBackend implements Backend {
  readonly mode = "memory";
  readonly location = "in this process";
  readonly jobs: JobStore = new MemoryJobStore();

  /** waiting tasks; `head` is the index of the oldest, so taking is O(1) */
  private queue: QueuedTask[] = [];
  private head = 0;
  /** Map iteration order is insertion order: the oldest record comes first, for the sweep. */
  private records = new Map<string, TaskRecordData>();
  /** the records in creation order, for listRecords() */
  private order = new CreationOrder<TaskRecordData>((rec) => this.records.get(rec.taskid) === rec);
  private taskWatchers = new Set<(event: TaskEvent) => void>();
  private waiters = new TaskWaiters<void>();
  private takers = new Set<() => void>();
  private listeners = new Set<(line: string) => void>();
  private sweeper: NodeJS.Timeout;
  private readonly ttlMs: number;
  private readonly maxAttempts: number;
  /** how each try of a task tried again ended, by taskid, until the task ends */
  private tries = new Map<string, string[]>();

  constructor(options: BackendOptions) {
    this.ttlMs = options.taskRecordTtl * 1000;
    this.maxAttempts = options.maxAttempts ?? 3;
    this.sweeper = setInterval(() => this.dropOldRecords(), Math.min(this.ttlMs, 1000)).unref();
  }

  // Not async: the hot path, and an async function costs allocations a settled promise does not.
  push(task: QueuedTask, limit: number): Promise<void> {
    if (this.depthNow() >= limit) this.dropExpiredAtHead();
    if (this.depthNow() >= limit) return Promise.reject(new QueueFullError(limit));
    // Spelled out: an object spread here costs several times more, and this is the hot path.
    const { taskid, topic, content, expire, createdAt, job } = task;
    // The times to come are in the literal: added later they cost the record a second object.
    const rec: TaskRecordData = {
      taskid,
      topic,
      content,
      expire,
      createdAt,
      status: "queued",
      attempt: 0,
      results: [],
      startedAt: undefined,
      completedAt: undefined,
    };
    if (job !== undefined) rec.job = job;
    this.records.set(taskid, rec);
    this.order.add(rec);
    if (this.taskWatchers.size > 0) this.emit(rec, "queued", createdAt);
    this.queue.push(task);
    if (this.takers.size > 0 && !this.wakeScheduled) {
      // Woken once the producer's synchronous step is over, so a burst of pushes is taken in
      // batches; and no later, so tasks run while a producer awaiting each task() goes on issuing.
      this.wakeScheduled = true;
      queueMicrotask(this.wakeTakers);
    }
    return settled;
  }

  /** when take() next lets the event loop turn (performance.now()) */
  private turnEnds = 0;
  private wakeScheduled = false;
  private readonly wakeTakers = () => {
    this.wakeScheduled = false;
    for (const wake of this.takers) wake();
    this.takers.clear();
  };

  async take(max: number, signal: AbortSignal): Promise<Lease[]> {
    // While tasks wait, taking and running them never leaves the microtask queue: let timers and
    // I/O run now and then. A push wakes the worker sooner: its producer holds the event loop anyway.
    if (performance.now() >= this.turnEnds) {
      const woken = untilWoken(this.takers, signal);
      setImmediate(this.wakeTakers);
      await woken;
      this.turnEnds = performance.now() + turnMs;
    }
    while (this.depthNow() === 0) {
      if (signal.aborted) return [];
      await untilWoken(this.takers, signal);
    }
    const end = Math.min(this.queue.length, this.head + max);
    const leases: Lease[] = [];
    for (let i = this.head; i < end; i++) leases.push({ task: this.queue[i] });
    this.head = end;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return leases;
  }

  async start(leases: Lease[]): Promise<StartResult[]> {
    const now = nowMs();
    return leases.map(({ task }): StartResult => {
      const rec = this.records.get(task.taskid);
      if (!rec || rec.status !== "queued") return { started: false, why: "gone" };
      if (now > expiresAt(rec)) {
        this.end(rec, { status: "expired", completedAt: now });
        return { started: false, why: "expired" };
      }
      rec.status = "started";
      rec.startedAt = now;
      rec.attempt += 1;
      if (this.taskWatchers.size > 0) this.emit(rec, "started", now);
      return { started: true, attempt: rec.attempt };
    });
  }

  async finish(done: { lease: Lease; outcome: Outcome }[]): Promise<void> {
    for (const { lease, outcome } of done) {
      const rec = this.records.get(lease.task.taskid);
      if (rec && rec.status === "started") this.end(rec, outcome);
    }
  }

  async retry(tries: { lease: Lease; why: string }[]): Promise<void> {
    const again: QueuedTask[] = [];
    for (const { lease, why } of tries) {
      const rec = this.records.get(lease.task.taskid);
      if (!rec || rec.status !== "started") continue;
      const list = this.tries.get(rec.taskid) ?? [];
      list.push(tryLine(rec.attempt, why));
      if (rec.attempt >= this.maxAttempts) {
        this.end(rec, { status: "failed", results: [], completedAt: nowMs(), warning: triedWarning(rec.attempt, this.maxAttempts, list) });
        continue;
      }
      this.tries.set(rec.taskid, list);
      rec.status = "queued";
      if (this.taskWatchers.size > 0) this.emit(rec, "queued", nowMs());
      again.push(lease.task);
    }
    if (again.length > 0) await this.giveBack(again.map((task) => ({ task })));
  }

  async giveBack(leases: Lease[]): Promise<void> {
    const tasks = leases.map((l) => l.task);
    this.queue = [...tasks, ...this.queue.slice(this.head)];
    this.head = 0;
    if (tasks.length > 0) for (const wake of this.takers) wake();
  }

  async depth(): Promise<number> {
    return this.depthNow();
  }

  async record(taskid: string): Promise<TaskRecordData | undefined> {
    return this.current(taskid);
  }

  async listRecords(query: RecordQuery): Promise<RecordPage> {
    return this.order.page(query, this.records.size, (rec) => this.current(rec.taskid));
  }

  async watchTasks(onEvent: (event: TaskEvent) => void): Promise<() => Promise<void>> {
    const watcher = (event: TaskEvent) => onEvent(event);
    this.taskWatchers.add(watcher);
    return async () => {
      this.taskWatchers.delete(watcher);
    };
  }

  private emit(rec: TaskRecordData, kind: TaskEvent["kind"], at: number): void {
    const event = eventOf(rec, kind, at);
    for (const watcher of this.taskWatchers) watcher(event);
  }

  // Not async, and no loop of awaits: tens of thousands of these may be pending at once.
  waitEnded(taskid: string, timeoutMs: number, signal?: AbortSignal): Promise<TaskRecordData | undefined> {
    const rec = this.current(taskid);
    if (!rec || hasEnded(rec.status)) return Promise.resolve(rec);
    const deadline = nowMs() + timeoutMs;
    if (isAnswer(rec, deadline, signal)) return Promise.resolve(rec);
    return new Promise((resolve) => this.park(new MemoryWait(taskid, deadline, signal, resolve, this.woken), rec));
  }

  /** Wait for the record to change, then answer or wait again. */
  private park(wait: MemoryWait, rec: TaskRecordData): void {
    // A queued task may expire before anyone touches it: wake up then to report it.
    const until = rec.status === "queued" ? Math.min(wait.until, expiresAt(rec) + 1) : wait.until;
    this.waiters.addWaiter(wait, until - nowMs(), wait.signal);
  }

  private readonly woken = (wait: MemoryWait): void => {
    const latest = this.current(wait.taskid);
    if (!latest || isAnswer(latest, wait.until, wait.signal)) wait.answer(latest);
    else this.park(wait, latest);
  };

  async publish(line: string): Promise<void> {
    for (const listener of this.listeners) listener(line);
  }

  async subscribe(onLine: (line: string) => void): Promise<() => Promise<void>> {
    const listener = (line: string) => onLine(line);
    this.listeners.add(listener);
    return async () => {
      this.listeners.delete(listener);
    };
  }

  private leases = new Map<string, { owner: string; until: number }>();

  async claim(name: string, owner: string, ttlSeconds: number): Promise<boolean> {
    const now = nowMs();
    const held = this.leases.get(name);
    if (held && held.owner !== owner && held.until > now) return false;
    this.leases.set(name, { owner, until: now + ttlSeconds * 1000 });
    return true;
  }

  async release(name: string, owner: string): Promise<void> {
    if (this.leases.get(name)?.owner === owner) this.leases.delete(name);
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    for (const wake of this.takers) wake();
  }

  private depthNow(): number {
    return this.queue.length - this.head;
  }

  /** The record with lazy expiry applied: a queued task past its expire is expired from now on. */
  private current(taskid: string): TaskRecordData | undefined {
    const rec = this.records.get(taskid);
    if (rec && rec.status === "queued") {
      const now = nowMs();
      if (now > expiresAt(rec)) this.end(rec, { status: "expired", completedAt: now });
    }
    return rec;
  }

  private end(rec: TaskRecordData, outcome: Outcome | { status: "expired"; completedAt: number }) {
    rec.status = outcome.status;
    rec.completedAt = outcome.completedAt;
    if ("results" in outcome) rec.results = outcome.results;
    if ("warning" in outcome && outcome.warning !== undefined) rec.warning = outcome.warning;
    if (this.tries.size > 0) this.tries.delete(rec.taskid);
    this.waiters.wake(rec.taskid);
    if (this.taskWatchers.size > 0) this.emit(rec, "ended", rec.completedAt ?? nowMs());
  }

  /** A full queue first sheds the tasks at its head that can no longer start. */
  private dropExpiredAtHead(): void {
    const now = nowMs();
    while (this.head < this.queue.length && now > expiresAt(this.queue[this.head])) {
      const rec = this.records.get(this.queue[this.head].taskid);
      if (rec && rec.status === "queued") this.end(rec, { status: "expired", completedAt: now });
      this.head += 1;
    }
  }

  /** A record is dropped task_record_ttl after its task ended, or after it could no longer start;
   *  never while its task runs. */
  private dropOldRecords(): void {
    const now = nowMs();
    for (const rec of this.records.values()) {
      // In creation order: a record younger than the ttl cannot be due, nor can any after it.
      if (rec.createdAt > now - this.ttlMs) break;
      const endedAt = rec.completedAt ?? (rec.status === "queued" ? expiresAt(rec) : undefined);
      if (endedAt !== undefined && endedAt + this.ttlMs < now) this.records.delete(rec.taskid);
    }
    this.order.trim(this.records.size);
  }
}

/** One waitEnded() call, and its entry among the waiters: one object a waiter. */
class MemoryWait implements Waiter<void> {
  deadline = 0;
  offAbort: (() => void) | undefined = undefined;
  done = false;
  index = 0;

  constructor(
    readonly taskid: string,
    /** epoch ms by which it answers anyway */
    readonly until: number,
    readonly signal: AbortSignal | undefined,
    readonly answer: (rec?: TaskRecordData) => void,
    private readonly recheck: (wait: MemoryWait) => void,
  ) {}

  wake(): void {
    this.recheck(this);
  }
}

/** Whether waitEnded() answers now with this record: it ended, or the wait is over. */
function isAnswer(rec: TaskRecordData, deadline: number, signal?: AbortSignal): boolean {
  return hasEnded(rec.status) || signal?.aborted === true || nowMs() >= deadline;
}

class MemoryJobStore implements JobStore {
  private definitions: JobDefinition[] = [];
  private watchers = new Set<() => void>();

  async list(): Promise<JobDefinition[]> {
    return [...this.definitions];
  }

  async put(definitions: JobDefinition[], replace: boolean): Promise<void> {
    this.definitions = mergeDefinitions(this.definitions, definitions, replace);
    this.changed();
  }

  async remove(name: string): Promise<boolean> {
    const before = this.definitions.length;
    this.definitions = this.definitions.filter((d) => d.name !== name);
    if (this.definitions.length === before) return false;
    this.changed();
    return true;
  }

  async watch(onChange: () => void): Promise<() => Promise<void>> {
    this.watchers.add(onChange);
    return async () => {
      this.watchers.delete(onChange);
    };
  }

  private changed() {
    for (const watcher of this.watchers) watcher();
  }
}
