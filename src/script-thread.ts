// The thread side of the script pool (script-pool.ts): a worker_thread that compiles job scripts and
// runs many of them at once, each in an AsyncLocalStorage scope of its own, so that an error nobody
// catches (a stray rejection, a throw in a timer) is pinned on the run it came from and fails that
// run, never the thread. MU, json, sleep and callout() run here; qprint, logger, issue, waitfor and
// transaction() are the main thread's and cross as messages, batched in both directions.
// `process.exit()` (and abort, reallyExit, kill of this process) is reported to the main thread,
// which ends this thread and tries the run's task again; the call itself throws to unwind the script.
import { AsyncLocalStorage } from "node:async_hooks";
import { format } from "node:util";
import { parentPort, workerData } from "node:worker_threads";
import { json, sleep, type Logger, type LogLevel, type SharedBuiltins } from "./builtins.js";
import { callout, type CalloutRequest } from "./callout.js";
import { isMU, MU } from "./mu.js";
import { compileScript, describeScriptError, type CompiledScript } from "./script.js";
import { maxLineBytes, runFields, type FromThread, type FromThreadBatch, type ThreadData, type ToThread, type ToThreadBatch, type WireError } from "./script-wire.js";

const port = parentPort!;
const { apiUrl, apiToken } = workerData as ThreadData;

interface Run {
  id: number;
  job: string;
  taskid: string;
  /** set once the outcome is known: later errors of the script are only logged */
  ended: boolean;
  /** where its end waits in the outbox, while the batch it is in is `batch` */
  at: number;
  batch: number;
}

const runs = new Map<number, Run>();
const scope = new AsyncLocalStorage<Run>();
const scripts = new Map<string, { script: string; run: CompiledScript }>();
const calls = new Map<number, { resolve: (value: unknown) => void; reject: (err: WireError) => void }>();
let nextCall = 0;

// --- messages out, batched: one postMessage per turn of the event loop ----------------------------
let outbox: FromThreadBatch = [];
/** the number of the batch being gathered */
let batchNo = 0;
function send(message: FromThread | number): void {
  if (outbox.length === 0) setImmediate(flush);
  outbox.push(message);
}
function flush(): void {
  const batch = outbox;
  outbox = [];
  batchNo += 1;
  port.postMessage(batch);
}

/** Sent as the turn ends: a rejection nobody handled in the run's last step, reported before then,
 *  still fails it (see stray). */
function end(run: Run, message: FromThread | number): void {
  if (run.ended) return;
  run.ended = true;
  runs.delete(run.id);
  run.at = outbox.length;
  run.batch = batchNo;
  send(message);
}

function fail(run: Run, error: string): void {
  end(run, ["failed", run.id, error]);
}

/** A builtin of the main thread: resolves with its answer; rejects with an Error made here, inside
 *  the script's await chain, so that its stack shows the script's line. */
async function call(name: string, ...args: unknown[]): Promise<unknown> {
  const run = scope.getStore();
  const id = nextCall++;
  const answer = new Promise<unknown>((resolve, reject) => calls.set(id, { resolve, reject }));
  send(["call", id, run?.id ?? -1, name, plain(args)]);
  try {
    return await answer;
  } catch (wire) {
    throw rebuild(wire as WireError);
  }
}

/** MU and other objects with toJSON, as the JSON data they stand for: what crosses is plain. */
function plain(value: unknown): unknown {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value) ?? "null");
}

function rebuild(wire: WireError): Error {
  const err = new Error(wire.message) as Error & { code?: string };
  err.name = wire.name;
  if (wire.code !== undefined) err.code = wire.code;
  return err;
}

function line(args: unknown[], what: string): string {
  const text = format(...args);
  if (text.length > maxLineBytes) {
    throw new RangeError(`${what} line of ${(text.length / 1024 / 1024).toFixed(1)} MB is over the limit of ${maxLineBytes / 1024 / 1024} MB`);
  }
  return text;
}

/** A run's `logger`: methods on the prototype, as the in-process TaskLogger's, so that a run costs one
 *  small object rather than five closures. */
class RunLogger implements Logger {
  constructor(private readonly run: number) {}
  debug(...args: unknown[]): void {
    log(this.run, "debug", args);
  }
  info(...args: unknown[]): void {
    log(this.run, "info", args);
  }
  warning(...args: unknown[]): void {
    log(this.run, "warning", args);
  }
  error(...args: unknown[]): void {
    log(this.run, "error", args);
  }
  critical(...args: unknown[]): void {
    log(this.run, "critical", args);
  }
}

function log(run: number, level: LogLevel, args: unknown[]): void {
  send(["log", run, level, line(args, "a logger")]);
}

/** A transaction as a script sees it: its state here, its moves made by the main thread. */
class ScriptTransaction {
  xid!: string;
  xname!: string;
  status!: string;
  previousStatus!: string | null;
  data!: Record<string, unknown>;
  next!: string[];
  constructor(state: TransactionState) {
    Object.assign(this, state);
  }
  async to(status: string, data?: Record<string, unknown>): Promise<string | undefined> {
    const { state, taskid } = (await call("to", this.xid, status, data)) as { state: TransactionState; taskid?: string };
    Object.assign(this, state);
    return taskid;
  }
  toJSON(): Record<string, unknown> {
    return { xid: this.xid, xname: this.xname, status: this.status, previousStatus: this.previousStatus, data: this.data };
  }
}
type TransactionState = Pick<ScriptTransaction, "xid" | "xname" | "status" | "previousStatus" | "data" | "next">;

// console.log in a script prints through the main thread's console, which the shell routes above
// the line being typed.
for (const method of ["log", "info", "debug", "warn", "error"] as const) {
  console[method] = (...args: unknown[]) => send(["console", method, line(args, "a console")]);
}

const shared: SharedBuiltins = {
  qprint: (...args) => send(["qprint", line(args, "a qprint")]),
  MU,
  json,
  sleep,
  issue: (topic, content, expire) => call("issue", topic, content, expire) as Promise<string>,
  waitfor: async (taskid, timeout) => MU((await call("waitfor", taskid, timeout)) as object),
  callout: (request) => callout((isMU(request) ? request.dictionary : request) as CalloutRequest, apiUrl, apiToken),
  transaction: async (what, data) => new ScriptTransaction((await call("transaction", what, data)) as TransactionState) as never,
};

function start(id: number, job: string, taskid: string, topic: string, content: Record<string, unknown>, expire: number, createdAt: number, attempt: number): void {
  const compiled = scripts.get(job);
  const run: Run = { id, job, taskid, ended: false, at: -1, batch: -1 };
  runs.set(id, run);
  if (!compiled) return fail(run, `job ${job} has no script in its thread`);
  scope.run(run, () => {
    let running: Promise<unknown>;
    try {
      running = compiled.run(MU({ taskid, topic, content, expire, createdAt, attempt }), new RunLogger(id), shared);
    } catch (err) {
      running = Promise.reject(err);
    }
    running.then(
      (value) => {
        let text: string | undefined;
        try {
          text = JSON.stringify(value);
        } catch (err) {
          return fail(run, `the script returned a value that is not JSON data: ${(err as Error).message}`);
        }
        end(run, text === undefined ? id : ["completed", id, text]);
      },
      (err: unknown) => fail(run, describeScriptError(job, err)),
    );
  });
}

/** An error nobody caught: it fails the run it came from if that run goes on, else it is logged. */
function stray(kind: string, err: unknown): void {
  if (err instanceof ExitCalled) return; // reported already; the thread is being ended
  const run = scope.getStore();
  if (!run) return send(["stray", "", "", `${kind}: ${describeScriptError("", err)}`]);
  const message = `${kind}: ${describeScriptError(run.job, err)}`;
  if (!run.ended) return fail(run, message);
  const sent = run.batch === batchNo ? outbox[run.at] : undefined;
  if (sent !== undefined && (typeof sent === "number" ? sent : sent[1]) === run.id) {
    outbox[run.at] = ["failed", run.id, message];
    return;
  }
  send(["stray", run.job, run.taskid, `${message} (after the script had ended)`]);
}

process.on("uncaughtException", (err) => stray("an exception thrown outside the script's await chain (in a timer or callback)", err));
process.on("unhandledRejection", (reason) => stray("a rejected promise nobody handled", reason));

/** Thrown by process.exit() and its kind: a script that catches it has been reported already. */
class ExitCalled extends Error {}

function exitCalled(how: string): never {
  const run = scope.getStore();
  send(["exit", run && !run.ended ? run.id : -1, how]);
  // Its end is the main thread's to tell now, whatever the script does with the throw.
  if (run) {
    run.ended = true;
    runs.delete(run.id);
  }
  flush();
  throw new ExitCalled(`${how} is not allowed in a job script`);
}

const realKill = process.kill.bind(process);
process.exit = ((code?: number) => exitCalled(`process.exit(${code ?? ""})`)) as typeof process.exit;
(process as unknown as { reallyExit: (code?: number) => never }).reallyExit = (code?: number) => exitCalled(`process.reallyExit(${code ?? ""})`);
process.abort = (() => exitCalled("process.abort()")) as typeof process.abort;
process.kill = ((pid: number, signal?: string | number) =>
  pid === process.pid || pid === 0 ? exitCalled(`process.kill(${pid}${signal === undefined ? "" : `, ${String(signal)}`})`) : realKill(pid, signal)) as typeof process.kill;

port.on("message", (batch: ToThreadBatch) => {
  for (let i = 0; i < batch.length; i++) {
    if (typeof batch[i] === "number") {
      // Read in place: a slice and a spread would cost two arrays a run.
      const b = batch as unknown[];
      start(b[i] as number, b[i + 1] as string, b[i + 2] as string, b[i + 3] as string, b[i + 4] as Record<string, unknown>, b[i + 5] as number, b[i + 6] as number, b[i + 7] as number);
      i += runFields - 1;
      continue;
    }
    const message = batch[i] as ToThread;
    switch (message[0]) {
      case "job": {
        const [, name, script] = message;
        try {
          scripts.set(name, { script, run: compileScript(name, script) });
        } catch {
          scripts.delete(name); // checked when the definition was read: not expected
        }
        break;
      }
      case "reply": {
        const [, id, ok, value] = message;
        const pending = calls.get(id);
        calls.delete(id);
        if (ok) pending?.resolve(value);
        else pending?.reject(value as WireError);
        break;
      }
      case "cancel": {
        // Past job_script_timeout: what the script does from here is ignored. The answer tells the
        // main thread that this one is not blocked.
        const run = runs.get(message[1]);
        if (run) {
          run.ended = true;
          runs.delete(run.id);
        }
        send(["cancelled", message[1]]);
        break;
      }
    }
  }
});
