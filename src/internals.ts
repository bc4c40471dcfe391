// What the shell, the REST server, the command line and the tests use of a JobShell beyond the
// library's API. These members are JobShell's own, marked @internal there so that the published
// types leave them out; `internals(js)` is how code inside the package reaches them, so that every
// such use reads as one.
import type { ConnectionChange } from "./backend.js";
import type { JobShell, RecordMU } from "./jobshell.js";
import type { Metrics } from "./metrics.js";
import type { Params } from "./params.js";
import type { QueuedTask } from "./record.js";
import type { Transactions } from "./transaction.js";

export interface JobShellInternals {
  /** the parameters the instance was opened with */
  readonly params: Params;
  /** the counters behind stats(), the shell's stats() table and GET /metrics */
  readonly metrics: Metrics;
  /** whether this process runs a worker */
  readonly hasWorker: boolean;
  /** the tasks issued through this instance whose end nobody has seen yet, once trackIssued() was called */
  readonly issued?: ReadonlyMap<string, QueuedTask>;
  trackIssued(): void;
  /** resolves once every task() called so far is queued or has failed */
  issuing(): Promise<void>;
  /** the record once the task has ended, or as it is after `seconds`; undefined for an unknown task */
  recordWhenEnded(taskid: string, seconds: number, signal?: AbortSignal): Promise<RecordMU | undefined>;
  /** remove the job of that name from the queue; false when there is none */
  removeJob(name: string): Promise<boolean>;
  /** whether a job known now runs the tasks of `topic` (as the worker routes them) */
  handlesTopic(topic: string): boolean;
  /** reload the job definitions from the queue */
  refreshJobs(): Promise<void>;
  /** hear once per outage that the queue server was lost, and once that it was regained */
  onConnection(listener: (change: ConnectionChange) => void): () => void;
  /** the transactions this instance knows */
  readonly transactions: Transactions;
}

export function internals(js: JobShell): JobShellInternals {
  return js;
}
