// The messages between the script pool (script-pool.ts) and its threads (script-thread.ts). Each
// postMessage carries an array of them: one per turn of the sender's event loop, not one per run.
// Tuples rather than objects: a structured clone of an array of scalars is the cheapest there is.
// The two that come once per task go inline, as scalars in the batch itself, not as arrays of their
// own: a run is its 8 fields in a row, led by its number; a run that completed with no value is its
// number alone. Cloning an array costs as much as several scalars, and these are most of what crosses.

/** What a thread is started with. */
export interface ThreadData {
  /** where callout(path=...) goes */
  apiUrl: string;
  apiToken?: string;
}

/** The longest qprint or logger line a script may write (characters). */
export const maxLineBytes = 1024 * 1024;

/** An error as it crosses: rebuilt on the other side with the same name, message and code. */
export interface WireError {
  name: string;
  message: string;
  code?: string;
}

/** A run, inline in a batch to the thread: its number first, then the rest. */
export type RunFields = [
  id: number,
  job: string,
  taskid: string,
  topic: string,
  content: Record<string, unknown>,
  expire: number,
  createdAt: number,
  attempt: number,
];

export type ToThread =
  /** the script of a job, sent before the first run of it (and again when it changes) */
  | ["job", name: string, script: string]
  /** the answer to a call: the value, or a WireError */
  | ["reply", call: number, ok: boolean, value: unknown]
  /** the run is past job_script_timeout: forget it and answer, to show the thread is not blocked */
  | ["cancel", run: number];

/** What a postMessage to a thread carries: messages, and runs inline (RunFields). */
export type ToThreadBatch = (ToThread | RunFields[number])[];

/** What a postMessage from a thread carries: messages, and the number of each run that completed with no value. */
export type FromThreadBatch = (FromThread | number)[];

/** The number of scalars a run takes inline. */
export const runFields = 8;

export type FromThread =
  /** the script's value as JSON text */
  | ["completed", run: number, value: string]
  | ["failed", run: number, error: string]
  /** a builtin of the main thread (issue, waitfor, transaction, to) called with plain arguments */
  | ["call", call: number, run: number, name: string, args: unknown]
  | ["log", run: number, level: "debug" | "info" | "warning" | "error" | "critical", message: string]
  | ["qprint", line: string]
  /** console.log and its kind in a script: printed by this process's console (the shell routes it) */
  | ["console", method: "log" | "info" | "debug" | "warn" | "error", line: string]
  /** the run's script called process.exit() or the like (run -1 when no run is known): end this thread */
  | ["exit", run: number, how: string]
  /** an uncaught error that no running script can answer for: the main thread logs it */
  | ["stray", job: string, taskid: string, message: string]
  | ["cancelled", run: number];
