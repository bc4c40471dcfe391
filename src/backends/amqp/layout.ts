// Every exchange and queue the AMQP mode declares, with its arguments, in one place
// (the README shows the same layout for operators looking at the management UI).
import type { Options } from "amqplib";
import { ParameterError } from "../../errors.js";

/** amqp_queue_type: classic queues live on one node; quorum queues are replicated across a cluster's
 *  nodes (Raft) and survive the loss of a minority of them. */
export type QueueType = "classic" | "quorum";

/** Names under one namespace (`jobshell` unless told otherwise), so that tenants and test runs never meet. */
export class Layout {
  constructor(
    readonly namespace: string,
    readonly debugChannel: string,
    /** the type of the durable queues: the task queues and the shared documents */
    readonly queueType: QueueType = "classic",
  ) {}

  /** Tasks waiting to run, capped at `size`. The cap is part of the name because RabbitMQ fixes a
   *  queue's arguments when it is declared: processes started with another job_queue_size use
   *  another queue rather than failing on a mismatched declaration, and workers consume every one. */
  taskQueue(size: number): string {
    return `${this.namespace}.tasks.max-${size}`;
  }

  /** The stream of task record events (queued, started, ended), read by every process. */
  get records(): string {
    return `${this.namespace}.records`;
  }

  /** A shared document: one message holding its current value (job definitions, known task queues). */
  documentQueue(name: string): string {
    return `${this.namespace}.${name}`;
  }

  /** An exclusive queue: whoever declared it holds the lease `name`. */
  lease(name: string): string {
    return `${this.namespace}.lease.${name}`;
  }

  /** The exclusive queue whose declaration is the lock for changing a shared document. */
  documentLock(name: string): string {
    return `${this.namespace}.${name}.lock`;
  }

  /** Fanout exchange announcing that a shared document changed. */
  documentChanged(name: string): string {
    return `${this.namespace}.${name}.changed`;
  }
}

/** The cap and its refusal: x-max-length with reject-publish. A quorum queue refuses a publish only
 *  once it holds more than x-max-length (it takes one more than a classic queue): it is declared one
 *  lower. It also learns it is full after the fact, so publishes in flight at once may overfill it by
 *  as many (docs/amqp.md). */
export function taskQueueOptions(size: number, type: QueueType): Options.AssertQueue {
  const max = type === "quorum" ? size - 1 : size;
  return { durable: true, arguments: { "x-max-length": max, "x-overflow": "reject-publish", ...typeArgument(type) } };
}

export function recordStreamOptions(ttlSeconds: number): Options.AssertQueue {
  return {
    durable: true,
    arguments: {
      "x-queue-type": "stream",
      "x-max-age": `${Math.max(1, Math.ceil(ttlSeconds))}s`,
      // Retention drops whole segments: small ones keep the stream close to task_record_ttl.
      "x-stream-max-segment-size-bytes": 8_000_000,
    },
  };
}

export function documentQueueOptions(type: QueueType): Options.AssertQueue {
  // Holds one current value; a stray older copy is dropped from the head.
  return { durable: true, arguments: { "x-max-length": 4, ...typeArgument(type) } };
}

/** Classic queues are declared without the argument, as they always were: a queue declared before
 *  amqp_queue_type existed matches. */
function typeArgument(type: QueueType): Record<string, string> {
  return type === "quorum" ? { "x-queue-type": "quorum" } : {};
}

/** A declaration the broker refused because the queue exists with the other type, as a ParameterError
 *  that says so; any other error as it is. The broker names the first argument that differs: the type,
 *  or a task queue's x-max-length (declared one lower on a quorum queue; the size is in the name). */
export function queueTypeMismatch(err: unknown, queue: string, type: QueueType): unknown {
  const message = (err as Error | undefined)?.message ?? "";
  if (!/PRECONDITION.FAILED.*inequivalent arg '(x-queue-type|x-max-length)'/.test(message)) return err;
  const other = type === "quorum" ? "classic" : "quorum";
  return new ParameterError(
    `amqp_queue_type is ${type}, but the queue ${queue} exists on the broker as a ${other} queue: ` +
      `start with amqp_queue_type ${other}, or move its tasks and delete it first (a queue's type is fixed when it is declared)`,
    { cause: err },
  );
}
