// The pool of worker_threads that job scripts run in, so that no script can end, block or bloat the
// process that runs it. Each thread runs many scripts at once (they mostly await); the runs of one
// turn go to the thread with the fewest. A thread is limited to job_memory_limit of heap (resourceLimits), and is
// ended (terminate()) when a script blocks it past job_script_timeout or calls process.exit(); its
// runs then end `lost` (the task may be tried again, see Worker) and a new thread takes its place.
// The builtins that belong to this process (qprint, logger, issue, waitfor, transaction) answer the
// threads' messages here. Messages are batched: one postMessage per thread per turn of the event loop
// (the runs given to a pool with none in flight go at once).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker as Thread } from "node:worker_threads";
import type { LogSink, SharedBuiltins } from "./builtins.js";
import { ScriptTimeoutError } from "./errors.js";
import type { MU } from "./mu.js";
import type { RegisteredJob } from "./registry.js";
import type { FromThreadBatch, ThreadData, ToThread, ToThreadBatch, WireError } from "./script-wire.js";
import type { Transaction } from "./transaction.js";

export interface ScriptPoolOptions {
  /** job_threads */
  threads: number;
  /** job_memory_limit, MB of heap per thread */
  memoryLimitMb: number;
  /** job_script_timeout, seconds */
  scriptTimeout: number;
  /** the builtins of this process that scripts reach through messages */
  shared: SharedBuiltins;
  log: LogSink;
  thread: ThreadData;
}

/** How a run ended: `lost` when its thread was ended under it (its task may be tried again). */
export type RunEnd = { status: "completed"; value?: unknown } | { status: "failed"; error: string } | { status: "lost"; why: string };

/** The fields of a task a script sees as `task`. */
export interface TaskFields {
  taskid: string;
  topic: string;
  content: Record<string, unknown>;
  expire: number;
  createdAt: number;
  attempt: number;
}

interface PoolRun {
  id: number;
  job: string;
  taskid: string;
  deadline: number;
  /** when the thread was asked to cancel it (performance.now()), once past its deadline */
  cancelledAt?: number;
  done: (end: RunEnd) => void;
}

/** The end of every run that completed with no value: one object for all. */
const completed: RunEnd = Object.freeze({ status: "completed" });

/** How long a thread has to answer a cancel before it is taken as blocked and ended (ms). */
const cancelGraceMs = 2000;

/** Transactions opened by scripts, kept by xid for their moves: the oldest are forgotten past this. */
const transactionsKept = 10_000;

class ScriptThread {
  readonly runs = new Map<number, PoolRun>();
  /** the script text the thread has of each job */
  readonly scripts = new Map<string, string>();
  outbox: ToThreadBatch = [];
  /** why it is being ended, per run (the rest share `why`); set before terminate() */
  ending?: { why: string; culprits: Map<number, RunEnd> };
  /** the error it died of, if it died of one */
  error?: Error & { code?: string };
  referenced = false;
  constructor(readonly thread: Thread) {}
}

export class ScriptPool {
  private threads: ScriptThread[] = [];
  private nextRun = 0;
  private watchdog?: NodeJS.Timeout;
  private readonly transactions = new Map<string, Transaction>();
  private closed = false;
  private flushQueued = false;
  /** the thread the runs of this turn go to, until the flush */
  private turnThread?: ScriptThread;
  private readonly file = threadFile();

  constructor(private readonly options: ScriptPoolOptions) {}

  /** Run the job's script on the task in a thread; `done` is called once. */
  run(job: RegisteredJob, task: TaskFields, done: (end: RunEnd) => void): void {
    if (this.closed) return done({ status: "failed", error: "the worker is stopping" });
    // Every run of a turn goes to one thread: each thread woken costs a postMessage and, on a busy
    // machine, the core it wakes on; runs spread over the threads as they stay busy across turns.
    const t = (this.turnThread ??= this.pick());
    const name = job.definition.name;
    const script = job.definition.script!;
    if (t.scripts.get(name) !== script) {
      t.scripts.set(name, script);
      this.post(t, ["job", name, script]);
    }
    const id = this.nextRun++;
    const run: PoolRun = { id, job: name, taskid: task.taskid, deadline: performance.now() + this.options.scriptTimeout * 1000, done };
    t.runs.set(id, run);
    if (!t.referenced) {
      // A thread with runs keeps the process up, as the timers of an in-process script would.
      t.thread.ref();
      t.referenced = true;
    }
    t.outbox.push(id, name, task.taskid, task.topic, task.content, task.expire, task.createdAt, task.attempt);
    // With no other run in flight, this step's runs go as soon as the step's calls are made.
    this.flushSoon(t.runs.size === 1 && this.threads.every((other) => other === t || other.runs.size === 0));
    this.armWatchdog();
  }

  /** End every thread; runs still going end `lost`. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.watchdog);
    await Promise.all(this.threads.map((t) => this.end(t, "the worker stopped")));
  }

  private pick(): ScriptThread {
    while (this.threads.length < this.options.threads) this.threads.push(this.spawn());
    let best = this.threads[0];
    for (const t of this.threads) if (t.runs.size < best.runs.size) best = t;
    return best;
  }

  private spawn(): ScriptThread {
    const thread = new Thread(this.file, {
      workerData: this.options.thread,
      resourceLimits: { maxOldGenerationSizeMb: this.options.memoryLimitMb },
    });
    const t = new ScriptThread(thread);
    thread.on("message", (batch: FromThreadBatch) => this.received(t, batch));
    thread.on("error", (err) => (t.error = err));
    thread.on("exit", () => this.died(t));
    // After the listeners: adding a "message" listener refs the thread's port again.
    thread.unref();
    return t;
  }

  /** Messages go as the turn ends, with whatever else the turn brings. A thread busy with runs
   *  answers with their ends, and the worker takes again for each answer: posting every take at once
   *  (in a microtask) would keep the runs split into as many messages, each waking the thread. */
  private post(t: ScriptThread, message: ToThread): void {
    t.outbox.push(message);
    this.flushSoon();
  }

  private flushSoon(now = false): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    if (now) queueMicrotask(this.flush);
    else setImmediate(this.flush);
  }

  private readonly flush = (): void => {
    this.flushQueued = false;
    this.turnThread = undefined;
    for (const t of this.threads) {
      if (t.outbox.length === 0) continue;
      const batch = t.outbox;
      t.outbox = [];
      t.thread.postMessage(batch);
    }
  };

  private received(t: ScriptThread, batch: FromThreadBatch): void {
    for (const message of batch) {
      if (typeof message === "number") {
        this.take(t, message)?.done(completed);
        continue;
      }
      switch (message[0]) {
        case "completed": {
          const run = this.take(t, message[1]);
          run?.done({ status: "completed", value: JSON.parse(message[2]) });
          break;
        }
        case "failed":
          this.take(t, message[1])?.done({ status: "failed", error: message[2] });
          break;
        case "cancelled": {
          const run = this.take(t, message[1]);
          run?.done({ status: "failed", error: new ScriptTimeoutError(this.options.scriptTimeout).message });
          break;
        }
        case "call":
          this.answer(t, message[1], message[3], message[4] as unknown[]);
          break;
        case "log": {
          const run = t.runs.get(message[1]);
          this.options.log({ level: message[2], message: message[3], job: run?.job, taskid: run?.taskid });
          break;
        }
        case "qprint":
          this.options.shared.qprint("%s", message[1]);
          break;
        case "console":
          globalThis.console[message[1]]("%s", message[2]);
          break;
        case "stray":
          this.options.log({ level: "error", message: message[3], job: message[1] || undefined, taskid: message[2] || undefined });
          break;
        case "exit": {
          const run = t.runs.get(message[1]);
          const how = message[2];
          const culprits = new Map<number, RunEnd>();
          if (run) culprits.set(run.id, { status: "lost", why: `the script called ${how}` });
          const by = run ? `job ${run.job} (task ${run.taskid}) called ${how}` : `a script called ${how}`;
          void this.end(t, `its thread was ended: ${by}`, culprits);
          break;
        }
      }
    }
  }

  /** The run's end arrived: off the lists, and the thread may let the process go when it has none. */
  private take(t: ScriptThread, id: number): PoolRun | undefined {
    const run = t.runs.get(id);
    if (!run) return undefined;
    t.runs.delete(id);
    if (t.runs.size === 0 && t.referenced) {
      t.thread.unref();
      t.referenced = false;
    }
    return run;
  }

  private answer(t: ScriptThread, call: number, name: string, args: unknown[]): void {
    let answered: Promise<unknown>;
    try {
      answered = this.callBuiltin(name, args);
    } catch (err) {
      answered = Promise.reject(err);
    }
    answered.then(
      (value) => this.post(t, ["reply", call, true, value]),
      (err: unknown) => this.post(t, ["reply", call, false, wireError(err)]),
    );
  }

  private async callBuiltin(name: string, args: unknown[]): Promise<unknown> {
    const shared = this.options.shared;
    switch (name) {
      case "issue":
        return shared.issue(...(args as Parameters<SharedBuiltins["issue"]>));
      case "waitfor":
        return ((await shared.waitfor(...(args as Parameters<SharedBuiltins["waitfor"]>))) as MU).dictionary;
      case "transaction": {
        if (!shared.transaction) throw new Error("transaction() is not available here");
        const tx = await shared.transaction(...(args as Parameters<NonNullable<SharedBuiltins["transaction"]>>));
        this.keep(tx);
        return transactionState(tx);
      }
      case "to": {
        const [xid, status, data] = args as [string, Parameters<Transaction["to"]>[0], Record<string, unknown> | undefined];
        const tx = this.transactions.get(xid);
        if (!tx) throw new Error(`transaction ${xid} is no longer known to this worker`);
        const taskid = await tx.to(status, data);
        return { state: transactionState(tx), taskid };
      }
      default:
        throw new Error(`no builtin named ${name}`);
    }
  }

  private keep(tx: Transaction): void {
    this.transactions.delete(tx.xid);
    this.transactions.set(tx.xid, tx);
    if (this.transactions.size > transactionsKept) this.transactions.delete(this.transactions.keys().next().value!);
  }

  /** Runs past job_script_timeout are cancelled; a thread that does not answer a cancel is blocked,
   *  and ended: the scripts that blocked it fail with the timeout, the others in it are lost. */
  private armWatchdog(): void {
    if (this.watchdog) return;
    const every = Math.min(1000, Math.max(10, (this.options.scriptTimeout * 1000) / 10));
    this.watchdog = setInterval(() => {
      const now = performance.now();
      for (const t of this.threads) {
        if (t.ending) continue;
        let blocked: Map<number, RunEnd> | undefined;
        for (const run of t.runs.values()) {
          if (now < run.deadline) continue;
          if (run.cancelledAt === undefined) {
            run.cancelledAt = now;
            this.post(t, ["cancel", run.id]);
          } else if (now - run.cancelledAt > cancelGraceMs) {
            blocked ??= new Map();
            const error = `${new ScriptTimeoutError(this.options.scriptTimeout).message}, blocking its thread (a loop that never awaits?): the thread was ended`;
            blocked.set(run.id, { status: "failed", error });
          }
        }
        if (blocked) {
          const first = t.runs.get(blocked.keys().next().value!)!;
          void this.end(t, `its thread was ended: job ${first.job} (task ${first.taskid}) blocked it past job_script_timeout`, blocked);
        }
      }
      if (this.threads.every((t) => t.runs.size === 0)) {
        clearInterval(this.watchdog);
        this.watchdog = undefined;
      }
    }, every);
    this.watchdog.unref();
  }

  /** End a thread on purpose; its runs end as `culprits` says, or lost with `why`. */
  private async end(t: ScriptThread, why: string, culprits = new Map<number, RunEnd>()): Promise<void> {
    if (t.ending) return;
    t.ending = { why, culprits };
    await t.thread.terminate();
  }

  /** A thread ended (on purpose or not): settle its runs, and put a new thread in its place. */
  private died(t: ScriptThread): void {
    this.threads = this.threads.filter((x) => x !== t);
    const runs = [...t.runs.values()];
    for (const run of runs) this.take(t, run.id);
    const why = t.ending?.why ?? this.deathCause(t, runs.length);
    const failedToStart = !t.ending && t.error && t.error.code !== "ERR_WORKER_OUT_OF_MEMORY";
    for (const run of runs) {
      const end = t.ending?.culprits.get(run.id);
      if (end) run.done(end);
      else if (failedToStart) run.done({ status: "failed", error: why });
      else run.done({ status: "lost", why });
    }
    if (!this.closed && !failedToStart) {
      this.options.log({ level: "warning", message: `a job script thread ended (${why}), and with it the ${runs.length} runs it had; a new thread takes its place` });
    }
  }

  private deathCause(t: ScriptThread, runs: number): string {
    if (t.error?.code === "ERR_WORKER_OUT_OF_MEMORY") {
      const limit = `job_memory_limit, ${this.options.memoryLimitMb} MB`;
      return runs === 1 ? `the script ran out of memory (${limit})` : `its thread ran out of memory (${limit}): this script or one of the ${runs - 1} others running in it`;
    }
    if (t.error) return `its script thread failed: ${t.error.message}`;
    return "its script thread ended";
  }
}

function transactionState(tx: Transaction): Record<string, unknown> {
  return { xid: tx.xid, xname: tx.xname, status: tx.status, previousStatus: tx.previousStatus, data: tx.data, next: [...tx.next] };
}

function wireError(err: unknown): WireError {
  if (!(err instanceof Error)) return { name: "Error", message: String(err) };
  const code = (err as { code?: unknown }).code;
  return { name: err.name, message: err.message, code: typeof code === "string" ? code : undefined };
}

/** The compiled thread next to this file; from the TypeScript sources (as the tests run them), the build's. */
function threadFile(): URL {
  const here = new URL("./script-thread.js", import.meta.url);
  if (existsSync(fileURLToPath(here))) return here;
  return new URL("../dist/script-thread.js", import.meta.url);
}
