// Every error a caller may need to tell apart is a class with a stable `code`:
// nobody should ever have to match on message text.

export class JobshellError extends Error {
  readonly code: string = "JOBSHELL_ERROR";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** `task()` found `job_queue_size` tasks already waiting; nothing was enqueued. */
export class QueueFullError extends JobshellError {
  override readonly code = "QUEUE_FULL";
  constructor(readonly limit: number, options?: { cause?: unknown }) {
    super(`the task queue is full (job_queue_size=${limit}); the task was not enqueued`, options);
  }
}

/** `waitfor()` ran out of time before the task ended. */
export class TimeoutError extends JobshellError {
  override readonly code = "TIMEOUT";
  constructor(readonly taskid: string, readonly timeout: number, readonly lastStatus: string) {
    super(`task ${taskid} did not end within ${timeout} s (last status: ${lastStatus})`);
  }
}

/** `waitfor()` or a record lookup named a task the store does not know (never issued, or past task_record_ttl). */
export class UnknownTaskError extends JobshellError {
  override readonly code = "UNKNOWN_TASK";
  constructor(readonly taskid: string) {
    super(`unknown task ${taskid} (never issued, or its record is older than task_record_ttl)`);
  }
}

export interface DefinitionProblem {
  /** the file the job came from, or "<upload>" for text given directly */
  file: string;
  /** the job's name, or its index in the file when it has no usable name */
  job?: string;
  /** the field at fault (`topics`, `script`, `slack.token`, ...) */
  field?: string;
  /** for script syntax errors: the line and column inside the script */
  line?: number;
  column?: number;
  message: string;
}

export function formatProblem(p: DefinitionProblem): string {
  const where = [p.file];
  if (p.job !== undefined) where.push(`job ${p.job}`);
  if (p.field !== undefined) where.push(p.field);
  if (p.line !== undefined) where.push(`line ${p.line}:${p.column ?? 0}`);
  return `${where.join(": ")}: ${p.message}`;
}

/** One or more job definitions are wrong; nothing was applied. */
export class JobDefinitionError extends JobshellError {
  override readonly code = "JOB_DEFINITION";
  constructor(readonly problems: DefinitionProblem[]) {
    super(problems.map(formatProblem).join("\n"));
  }
}

/** A job script ran longer than job_script_timeout. */
export class ScriptTimeoutError extends JobshellError {
  override readonly code = "SCRIPT_TIMEOUT";
  constructor(readonly seconds: number) {
    super(`the script ran longer than job_script_timeout (${seconds} s)`);
  }
}

/** A parameter (flag, variable, config file or `open()` option) has a bad value. */
export class ParameterError extends JobshellError {
  override readonly code = "BAD_PARAMETER";
}

/** The queue server cannot be reached or refused us. The message never contains a password. */
export class ConnectionError extends JobshellError {
  override readonly code = "CONNECTION";
}

/** The instance was closed; no more tasks may be issued through it. */
export class ClosedError extends JobshellError {
  override readonly code = "CLOSED";
  constructor() {
    super("this jobshell instance is closed");
  }
}

/** A transaction was asked to move to a status its current status does not lead to. */
export class IllegalTransitionError extends JobshellError {
  override readonly code = "ILLEGAL_TRANSITION";
  constructor(
    readonly xname: string,
    readonly from: string,
    readonly to: string,
    readonly allowed: readonly string[],
  ) {
    super(
      `transaction ${xname} cannot go from ${from} to ${to}` +
        (allowed.length > 0 ? ` (from ${from} it may go to ${allowed.join(", ")})` : ` (${from} is final)`),
    );
  }
}
