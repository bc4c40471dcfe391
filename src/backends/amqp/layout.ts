// Every exchange and queue the AMQP mode declares, with its arguments, in one place
// (the README shows the same layout for operators looking at the management UI).
import type { Options } from "amqplib";

/** Names under one namespace (`jobshell` unless told otherwise), so that tenants and test runs never meet. */
export class Layout {
  constructor(readonly namespace: string, readonly debugChannel: string) {}

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

export function taskQueueOptions(size: number): Options.AssertQueue {
  return { durable: true, arguments: { "x-max-length": size, "x-overflow": "reject-publish" } };
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

export const documentQueueOptions: Options.AssertQueue = {
  durable: true,
  // Holds one current value; a stray older copy is dropped from the head.
  arguments: { "x-max-length": 4 },
};
