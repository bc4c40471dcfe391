// Every error a caller may need to tell apart is a class with a stable `code`:
// nobody should ever have to match on message text. errorReplies, at the end, is how the REST API
// answers each of them, and every refusal it makes of its own.

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

/** How the REST API answers with an error: the HTTP status, and what else goes into the reply. */
export interface ErrorReply {
  status: number;
  /** the error classes answered with this word; none for the refusals the server makes about a
   *  request itself (bad JSON, an unknown route, ...) */
  classes?: readonly (abstract new (...args: never[]) => JobshellError)[];
  /** properties of the error that the JSON reply carries beside `error` and `detail` */
  fields?: readonly string[];
  headers?: Readonly<Record<string, string>>;
}

/**
 * Every refusal of the REST API, by the stable word of its JSON reply `{error, detail}`. Each error
 * class above is answered with one word; anything else thrown while answering is a bug, `internal`.
 * README.md lists every word, and a test holds the two together.
 */
export const errorReplies = {
  // What Node's HTTP parser refuses (a malformed request, an unknown method, a CR or NUL in a header,
  // Content-Length with Transfer-Encoding); the connection is closed after the answer.
  bad_request: { status: 400 },
  invalid_json: { status: 400 },
  invalid_body: { status: 400 },
  invalid_taskid: { status: 400 },
  invalid_path: { status: 400 },
  invalid_query: { status: 400 },
  job_definition: { status: 400, classes: [JobDefinitionError], fields: ["problems"] },
  // A console page asked for by a browser without a session: sent to the sign-in page (Location).
  sign_in: { status: 303 },
  unauthorized: { status: 401, headers: { "www-authenticate": 'Bearer realm="jobshell"' } },
  read_only: { status: 403 },
  forbidden_origin: { status: 403 },
  unknown_task: { status: 404, classes: [UnknownTaskError] },
  unknown_job: { status: 404 },
  not_found: { status: 404 },
  method_not_allowed: { status: 405 },
  request_timeout: { status: 408 },
  job_exists: { status: 409 },
  payload_too_large: { status: 413 },
  unsupported_media_type: { status: 415 },
  headers_too_large: { status: 431 },
  queue_full: { status: 503, classes: [QueueFullError], headers: { "retry-after": "1" } },
  closing: { status: 503, classes: [ClosedError] },
  unavailable: { status: 503, classes: [ConnectionError] },
  // Errors a request never meets: the server waits on records itself, and parameters, scripts and
  // transactions belong to other ways in.
  internal: { status: 500, classes: [TimeoutError, ScriptTimeoutError, ParameterError, IllegalTransitionError] },
} as const satisfies Record<string, ErrorReply>;

export type ErrorWord = keyof typeof errorReplies;

const wordOfClass = new Map<unknown, ErrorWord>(
  Object.entries(errorReplies).flatMap(([word, reply]: [string, ErrorReply]) => (reply.classes ?? []).map((c) => [c, word as ErrorWord] as const)),
);

/** The word an error is answered with: that of its class (or the nearest class it extends), else `internal`. */
export function errorWordOf(err: unknown): ErrorWord {
  for (let c = err instanceof Error ? Object.getPrototypeOf(err) : null; c !== null && c !== Error.prototype; c = Object.getPrototypeOf(c)) {
    const word = wordOfClass.get(c.constructor);
    if (word) return word;
  }
  return "internal";
}
