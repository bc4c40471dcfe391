// The package's public API.
export { open, JobShell, recordMU, type OpenOptions, type Stats, type RecordMU } from "./jobshell.js";
export { MU, isMU } from "./mu.js";
export * from "./errors.js";
export type { Backend, JobStore, Lease, StartResult, BackendOptions } from "./backend.js";
export type { JobDefinition, SlackOptions } from "./definitions.js";
export type { QueuedTask, TaskRecordData, TaskStatus, JobResult, Outcome } from "./record.js";
export { paramSpecs, resolveParams, type Params } from "./params.js";
export { MemoryBackend } from "./backends/memory.js";
