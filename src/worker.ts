// The worker: takes tasks from the backend in batches of job_queue_bulk_read_size, runs every job on
// each task's topic, and records the outcome. At most that many tasks run at once. Scripts run in the
// script pool's threads (script-pool.ts), or in this thread with job_in_process.
import type { Backend, Lease } from "./backend.js";
import { TaskLogger, type LogSink, type ScriptBuiltins, type SharedBuiltins } from "./builtins.js";
import { ScriptTimeoutError } from "./errors.js";
import type { Metrics } from "./metrics.js";
import { MU } from "./mu.js";
import { nowMs, type JobResult, type Outcome, type QueuedTask } from "./record.js";
import type { RegisteredJob, Registry } from "./registry.js";
import { describeScriptError } from "./script.js";
import type { RunEnd, ScriptPool, TaskFields } from "./script-pool.js";
import { onAbort } from "./abort.js";

export interface WorkerOptions {
  /** job_queue_bulk_read_size */
  bulk: number;
  /** job_script_timeout, seconds */
  scriptTimeout: number;
  /** the builtins every script shares */
  shared: SharedBuiltins;
  /** the threads scripts run in; without it they run in this thread (job_in_process) */
  pool?: ScriptPool;
  /** where scripts' logger lines go */
  log: LogSink;
  /** runs a job that has no script of its own (a Slack job with code_injection) */
  runWithoutScript?: (job: RegisteredJob, builtins: ScriptBuiltins) => Promise<unknown>;
  /** reload the job definitions from the shared store: a task may name a job uploaded a moment ago */
  refreshJobs: () => Promise<void>;
  metrics: Metrics;
  /** reports errors of the queue itself (a lost connection, say); the worker retries */
  onError: (err: unknown) => void;
}

/** A job run the watchdog may have to end. */
interface Run {
  deadline: number;
  job: string;
  settle: (result: JobResult) => void;
  /** its place in Worker.runs; -1 once it has ended */
  index: number;
}

export class Worker {
  private running = 0;
  private readonly stopping = new AbortController();
  private slotFreed?: () => void;
  private loopDone?: Promise<void>;
  private toFinish: { lease: Lease; outcome: Outcome }[] = [];
  /** batches of outcomes being written, and who waits for them all to be */
  private writing = 0;
  private written?: () => void;
  private idle?: () => void;
  /** job runs in progress: one timer checks them all, rather than one timer per run. An array
   *  (a run leaves by swapping in the last) because a Set reallocates as runs come and go. */
  private runs: Run[] = [];
  private watchdog?: NodeJS.Timeout;

  constructor(
    private readonly backend: Backend,
    private readonly registry: Registry,
    private readonly options: WorkerOptions,
  ) {}

  /** Tasks being run right now. */
  get inFlight(): number {
    return this.running;
  }

  start(): void {
    this.loopDone ??= this.loop();
  }

  /** Take no new tasks; let those held finish and their records be written. */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.slotFreed?.();
    await this.loopDone;
    if (this.running > 0) await new Promise<void>((resolve) => (this.idle = resolve));
    this.flush();
    if (this.writing > 0) await new Promise<void>((resolve) => (this.written = resolve));
    clearInterval(this.watchdog);
    await this.options.pool?.close();
  }

  private async loop(): Promise<void> {
    const signal = this.stopping.signal;
    let failures = 0;
    while (!signal.aborted) {
      if (this.running >= this.options.bulk) {
        await new Promise<void>((resolve) => (this.slotFreed = resolve));
        continue;
      }
      try {
        const leases = await this.backend.take(this.options.bulk - this.running, signal);
        if (signal.aborted) {
          if (leases.length > 0) await this.backend.giveBack(leases);
          break;
        }
        if (leases.length === 0) continue;
        const started = await this.backend.start(leases);
        for (let i = 0; i < leases.length; i++) {
          const s = started[i];
          if (s.started) this.run(leases[i].task, leases[i], s.attempt);
          else if (s.why === "expired") this.options.metrics.countTask("expired", leases[i].task.topic);
        }
        failures = 0;
      } catch (err) {
        this.options.onError(err);
        failures += 1;
        await pause(Math.min(100 * 2 ** failures, 5000), signal);
      }
    }
  }

  // Callbacks rather than async functions from here to the outcome: with thousands of tasks a
  // second, every suspended async function is memory the garbage collector has to walk.
  private run(task: QueuedTask, lease: Lease, attempt: number): void {
    this.running += 1;
    const jobs = this.registry.jobsFor(task.topic, task.job);
    if (jobs.length > 0) return this.runJobs(task, lease, attempt, jobs);
    // A task may name a job another process uploaded a moment ago: look again before giving up.
    this.options
      .refreshJobs()
      .catch(this.options.onError)
      .then(() => this.runJobs(task, lease, attempt, this.registry.jobsFor(task.topic, task.job)));
  }

  private runJobs(task: QueuedTask, lease: Lease, attempt: number, jobs: RegisteredJob[]): void {
    const { taskid, topic, content, expire, createdAt } = task;
    // createdAt in epoch milliseconds, for arithmetic: formatting it as the record shows it would be a
    // noticeable share of a no-op task's time (bench/memory.js measures it).
    const fields: TaskFields = { taskid, topic, content, expire, createdAt, attempt };
    // In this thread, one MU for all the task's jobs.
    const taskMU = this.options.pool ? undefined : MU(fields);
    if (jobs.length === 0) return this.ended(task, lease, []);
    if (jobs.length === 1) return this.runJob(jobs[0], fields, taskMU, (result, lost) => this.ended(task, lease, [result], lost === undefined ? undefined : [lost]));
    const results: JobResult[] = new Array(jobs.length);
    let lostRuns: string[] | undefined;
    let left = jobs.length;
    jobs.forEach((job, i) =>
      this.runJob(job, fields, taskMU, (result, lost) => {
        results[i] = result;
        if (lost) (lostRuns ??= []).push(lost);
        if (--left === 0) this.ended(task, lease, results, lostRuns);
      }),
    );
  }

  /** Every job of the task has a result: queue the outcome to be written, free the slot. A task some
   *  of whose runs were lost with their thread is tried again instead (Backend.retry). */
  private ended(task: QueuedTask, lease: Lease, results: JobResult[], lost?: string[]): void {
    if (lost) return this.tryAgain(lease, lost.join("; "));
    let failed = false;
    for (const r of results) if (r.status === "failed") failed = true;
    const outcome: Outcome = { status: failed ? "failed" : "completed", results, completedAt: nowMs() };
    if (results.length === 0) outcome.warning = task.job ? `no job named ${task.job}` : `no job handles topic ${task.topic}`;
    this.options.metrics.countTask(outcome.status, task.topic);
    this.running -= 1;
    // The loop takes more before these outcomes are written: a queue server answers the take
    // first, and writes the outcomes while this process starts on the new batch.
    this.slotFreed?.();
    this.slotFreed = undefined;
    this.toFinish.push({ lease, outcome });
    // Written as soon as the tasks ending in this step have ended, so that waitfor() answers at once.
    if (this.toFinish.length === 1) queueMicrotask(this.flush);
    if (this.running === 0) this.idle?.();
  }

  /** Free the slot of a task whose try ended before its scripts did, and give it back to be tried again. */
  private tryAgain(lease: Lease, why: string): void {
    this.running -= 1;
    this.slotFreed?.();
    this.slotFreed = undefined;
    this.writing += 1;
    void this.write(() => this.backend.retry([{ lease, why }])).then(this.batchWritten);
    if (this.running === 0) this.idle?.();
  }

  /** One job on one task; `done` is called once, with a failure as a result, and with how the run was
   *  lost when its thread was ended under it. */
  private runJob(job: RegisteredJob, fields: TaskFields, taskMU: MU | undefined, done: (result: JobResult, lost?: string) => void): void {
    const name = job.definition.name;
    const began = performance.now();
    const pool = this.options.pool;
    if (pool && job.run) {
      return pool.run(job, fields, (end: RunEnd) => {
        const result: JobResult =
          end.status === "completed"
            ? end.value === undefined ? { job: name, status: "completed" } : { job: name, status: "completed", value: end.value }
            : { job: name, status: "failed", error: end.status === "failed" ? end.error : end.why };
        this.options.metrics.countJobRun(name, result.status === "completed", (performance.now() - began) / 1000);
        done(result, end.status === "lost" ? `job ${name}: ${end.why}` : undefined);
      });
    }
    const task = taskMU ?? MU(fields);
    const taskid = fields.taskid;
    const settle = (result: JobResult) => {
      if (!this.endRun(run)) return; // the watchdog ended it already
      this.options.metrics.countJobRun(name, result.status === "completed", (performance.now() - began) / 1000);
      done(result);
    };
    const run: Run = { deadline: began + this.options.scriptTimeout * 1000, job: name, settle, index: this.runs.length };
    this.runs.push(run);
    this.armWatchdog();
    let running: Promise<unknown>;
    try {
      const logger = new TaskLogger(this.options.log, name, taskid);
      running = job.run ? job.run(task, logger, this.options.shared) : this.runWithoutScript(job, task, logger);
    } catch (err) {
      running = Promise.reject(err);
    }
    running.then(
      (value) => {
        const result: JobResult = { job: name, status: "completed" };
        try {
          if (value !== undefined) result.value = storable(value);
          settle(result);
        } catch (err) {
          settle({ job: name, status: "failed", error: describeScriptError(name, err) });
        }
      },
      (err: unknown) => settle({ job: name, status: "failed", error: describeScriptError(name, err) }),
    );
  }

  /** Take the run off the list; false if it was off already. */
  private endRun(run: Run): boolean {
    if (run.index < 0) return false;
    const last = this.runs.pop()!;
    if (last !== run) {
      this.runs[run.index] = last;
      last.index = run.index;
    }
    run.index = -1;
    return true;
  }

  private runWithoutScript(job: RegisteredJob, task: MU, logger: TaskLogger): Promise<unknown> {
    if (!this.options.runWithoutScript) throw new Error(`job ${job.definition.name} has no script`);
    return this.options.runWithoutScript(job, { ...this.options.shared, task, logger });
  }

  /** Fails the in-process runs past job_script_timeout (the pool times its own). A script stuck in a
   *  synchronous loop blocks the whole process and cannot be stopped this way; an awaiting one is left
   *  behind and its result ignored. */
  private armWatchdog(): void {
    if (this.watchdog) return;
    const every = Math.min(1000, Math.max(10, (this.options.scriptTimeout * 1000) / 10));
    this.watchdog = setInterval(() => {
      const now = performance.now();
      // From the end: a run that ends is replaced by the last, which has been checked already.
      for (let i = this.runs.length - 1; i >= 0; i--) {
        const run = this.runs[i];
        if (now < run.deadline) continue;
        run.settle({ job: run.job, status: "failed", error: new ScriptTimeoutError(this.options.scriptTimeout).message });
      }
      if (this.runs.length === 0) {
        clearInterval(this.watchdog);
        this.watchdog = undefined;
      }
    }, every);
    this.watchdog.unref();
  }

  /** Outcomes are written in batches: one backend call for all the tasks that ended in one step. */
  private readonly flush = (): void => {
    if (this.toFinish.length === 0) return;
    const batch = this.toFinish;
    this.toFinish = [];
    this.writing += 1;
    void this.write(() => this.backend.finish(batch)).then(this.batchWritten);
  };

  private readonly batchWritten = (): void => {
    if (--this.writing === 0) this.written?.();
  };

  /** A write to the queue (outcomes, or tasks to try again), retried a while if the queue fails. */
  private async write(call: () => Promise<void>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await call();
        return;
      } catch (err) {
        this.options.onError(err);
        // Past this the tasks stay held in the queue server, which hands them to another worker.
        if (attempt >= 8) return;
        await pause(Math.min(100 * 2 ** attempt, 5000));
      }
    }
  }
}

/** A value the script returned, as it will be stored: JSON data. */
function storable(value: unknown): unknown {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new Error(`the script returned a value that is not JSON data: ${(err as Error).message}`);
  }
  return text === undefined ? undefined : JSON.parse(text);
}

function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const offAbort = signal && onAbort(signal, () => {
      clearTimeout(timer);
      resolve();
    });
    const timer = setTimeout(() => {
      offAbort?.();
      resolve();
    }, ms);
  });
}
