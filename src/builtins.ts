// What a job script may use, declared once. The shell builds its own context from the
// same list plus its commands, so the two never drift apart.
import { format } from "node:util";
import { MU } from "./mu.js";
import type { Transaction } from "./transaction.js";

export interface Logger {
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warning(...args: unknown[]): void;
  error(...args: unknown[]): void;
  critical(...args: unknown[]): void;
}

export const logLevels = ["debug", "info", "warning", "error", "critical"] as const;
export type LogLevel = (typeof logLevels)[number];

/** Where log lines go: one call per line, with the job and task it came from. */
export type LogSink = (entry: { level: LogLevel; message: string; job?: string; taskid?: string }) => void;

/** The default sink: one line per entry on stderr. */
export const stderrLogSink: LogSink = ({ level, message, job, taskid }) => {
  const where = [job && `job=${job}`, taskid && `taskid=${taskid}`].filter(Boolean).join(" ");
  process.stderr.write(`${new Date().toISOString()} ${level.toUpperCase()} ${where ? `${where} ` : ""}${message}\n`);
};

/** A logger that stamps every line with the job and the task it came from. */
export class TaskLogger implements Logger {
  constructor(
    private readonly sink: LogSink,
    private readonly job?: string,
    private readonly taskid?: string,
  ) {}
  debug(...args: unknown[]): void {
    this.sink({ level: "debug", message: format(...args), job: this.job, taskid: this.taskid });
  }
  info(...args: unknown[]): void {
    this.sink({ level: "info", message: format(...args), job: this.job, taskid: this.taskid });
  }
  warning(...args: unknown[]): void {
    this.sink({ level: "warning", message: format(...args), job: this.job, taskid: this.taskid });
  }
  error(...args: unknown[]): void {
    this.sink({ level: "error", message: format(...args), job: this.job, taskid: this.taskid });
  }
  critical(...args: unknown[]): void {
    this.sink({ level: "critical", message: format(...args), job: this.job, taskid: this.taskid });
  }
}

/** `json.loads` / `json.dumps`, as in the source. */
export const json = {
  loads: (text: string): unknown => {
    const value = JSON.parse(text);
    return value !== null && typeof value === "object" && !Array.isArray(value) ? MU(value) : value;
  },
  dumps: (value: unknown, indent?: number): string => JSON.stringify(value, null, indent),
};

export function sleep(seconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, seconds * 1000));
}

/** The builtins that are the same for every task, in the order the compiled script takes them. */
export const sharedBuiltinNames = ["qprint", "MU", "json", "sleep", "issue", "waitfor", "callout", "transaction"] as const;

export interface SharedBuiltins {
  /** console.log-style formatting, published to the debug channel */
  qprint: (...args: unknown[]) => void;
  MU: typeof MU;
  json: typeof json;
  sleep: typeof sleep;
  /** issue a new task (the shell's `task(...)`), so that jobs chain */
  issue: (topic: string, content?: Record<string, unknown>, expire?: number | { expire?: number }) => Promise<string>;
  waitfor: (taskid: string, timeout?: number | { timeout?: number }) => Promise<MU>;
  callout: (...args: unknown[]) => Promise<unknown>;
  /** begin or take up a transaction: `transaction("order-42")`, `transaction(task.content)` */
  transaction?: (what?: unknown, data?: Record<string, unknown>) => Promise<Transaction>;
}

/** Everything in scope of a job script: the shared builtins, the task being processed and its logger. */
export interface ScriptBuiltins extends SharedBuiltins {
  task: MU;
  logger: Logger;
}
