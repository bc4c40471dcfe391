// The package's public API: open() and what its options, the JobShell it returns and the errors it
// throws are made of. The Backend types are here for open()'s `backend` option.
export { open, type JobShell, type OpenOptions, type Stats, type RecordMU } from "./jobshell.js";
export { MU, isMU } from "./mu.js";
export {
  JobshellError,
  QueueFullError,
  TimeoutError,
  UnknownTaskError,
  JobDefinitionError,
  ScriptTimeoutError,
  ParameterError,
  ConnectionError,
  ClosedError,
  IllegalTransitionError,
  type DefinitionProblem,
} from "./errors.js";
export type { Transaction, TransactionStatus } from "./transaction.js";
export type { Backend, JobStore, Lease, StartResult, BackendOptions, RecordQuery, RecordPage, TaskEvent, Deployment, QueueView, WorkerView } from "./backend.js";
export type { JobDefinition, SlackOptions } from "./definitions.js";
export type { QueuedTask, TaskRecordData, TaskStatus, JobResult, Outcome } from "./record.js";
export type { LogSink, LogLevel } from "./builtins.js";
export { MemoryBackend } from "./backends/memory.js";
