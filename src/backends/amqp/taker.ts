// The worker's side of the task queues: one consumer per task queue, each with a prefetch of
// job_queue_bulk_read_size, so the broker hands this worker at most that many tasks of a queue at a
// time and keeps each one (unacknowledged) until the worker is done with it. The channel is the one the
// record events are published on: a task's ack follows the event that ended it on the same channel,
// so the broker never has the ack without the end.
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, Message } from "amqplib";
import type { Lease } from "../../backend.js";
import type { QueuedTask } from "../../record.js";
import type { AmqpConnection } from "./connection.js";
import type { Layout } from "./layout.js";
import { untilWoken } from "../waiters.js";

/** A taken task: the delivery that holds it in the broker until it is acknowledged. */
export interface AmqpLease extends Lease {
  readonly channel: Channel;
  readonly message: ConsumeMessage;
  /** set when the lease is started: its end is accepted only for this attempt */
  attempt?: number;
  /** the same task delivered again after a reconnect while this lease still ran: acknowledged in its place */
  redelivery?: AmqpLease;
}

export class Taker {
  private channel?: Channel;
  private consumed = new Map<number, string>();
  private wanted = new Set<number>();
  private delivered: AmqpLease[] = [];
  private wake = new Set<() => void>();
  /** delivery tags of the live channel not settled yet, in delivery order */
  private outstanding: number[] = [];

  constructor(
    private readonly conn: AmqpConnection,
    /** the record events' channel of the current connection */
    private readonly shared: () => ConfirmChannel | undefined,
    private readonly layout: Layout,
    private readonly prefetch: number,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Consume again on a new connection; deliveries of the old one went back to the queue. */
  readonly setup = async (_model: ChannelModel): Promise<void> => {
    const ch = this.shared();
    if (!ch) throw new Error("the record channel is not open");
    ch.on("close", () => {
      if (this.channel !== ch) return;
      this.channel = undefined;
      this.delivered = [];
      this.outstanding = [];
    });
    // Per consumer, not per channel: a channel-wide limit has every queue ask the channel before each
    // delivery, and cost about a tenth of the throughput (bench/amqp.js). A process that consumes
    // task queues of several job_queue_size may hold that many per queue; it runs at most `prefetch`.
    await ch.prefetch(this.prefetch);
    this.delivered = [];
    this.outstanding = [];
    this.consumed = new Map();
    this.channel = ch;
    for (const size of this.wanted) await this.consumeOn(ch, size);
  };

  /** Consume the task queue of that size too (a process started with another job_queue_size fills it). */
  async add(size: number): Promise<void> {
    if (this.wanted.has(size)) return;
    this.wanted.add(size);
    if (this.channel) await this.consumeOn(this.channel, size);
  }

  /** Up to `max` delivered tasks, waiting for at least one; `[]` once `signal` aborts. */
  async take(max: number, signal: AbortSignal): Promise<AmqpLease[]> {
    while (this.delivered.length === 0) {
      if (signal.aborted) return [];
      await untilWoken(this.wake, signal);
    }
    return this.delivered.splice(0, max);
  }

  /** Whether the lease's delivery still belongs to this worker (its channel is the live one). */
  holds(lease: AmqpLease): boolean {
    return lease.channel === this.channel;
  }

  ack(lease: AmqpLease): void {
    this.ackOn(this.channel, [lease]);
  }

  /** Ack the deliveries that came on `ch` (after a reconnect the broker has given the others back
   *  already). The oldest outstanding ones go in one `multiple` ack, the rest one by one. */
  ackOn(ch: Channel | undefined, leases: AmqpLease[]): void {
    if (!ch || ch !== this.channel) return;
    const done = new Set<number>();
    for (let lease of leases) {
      while (lease.channel !== ch && lease.redelivery) lease = lease.redelivery;
      if (lease.channel === ch) done.add(lease.message.fields.deliveryTag);
    }
    let upTo: number | undefined;
    while (this.outstanding.length > 0 && done.has(this.outstanding[0])) {
      upTo = this.outstanding.shift()!;
      done.delete(upTo);
    }
    if (upTo !== undefined) settle(() => ch.ack(tagged(upTo!), true));
    for (const tag of done) {
      const at = this.outstanding.indexOf(tag);
      if (at < 0) continue; // settled already
      this.outstanding.splice(at, 1);
      settle(() => ch.ack(tagged(tag)));
    }
  }

  /** Back to the queue, where it was: a delivery not yet started keeps its place. */
  requeue(lease: AmqpLease): void {
    if (!this.holds(lease)) return;
    const at = this.outstanding.indexOf(lease.message.fields.deliveryTag);
    if (at < 0) return;
    this.outstanding.splice(at, 1);
    settle(() => lease.channel.nack(lease.message, false, true));
  }

  /** Stop consuming; deliveries nobody took go back to the queue. Taken ones are finished or given back by the worker. */
  async close(): Promise<void> {
    const ch = this.channel;
    this.wanted.clear();
    for (const done of this.wake) done();
    if (!ch) return;
    for (const tag of this.consumed.values()) await ch.cancel(tag).catch(() => {});
    for (const lease of this.delivered.splice(0)) this.requeue(lease);
  }

  private async consumeOn(ch: Channel, size: number): Promise<void> {
    if (this.consumed.has(size)) return;
    this.consumed.set(size, "");
    const { consumerTag } = await ch.consume(this.layout.taskQueue(size), (msg) => msg && this.deliver(ch, msg), { noAck: false });
    this.consumed.set(size, consumerTag);
  }

  private deliver(ch: Channel, message: ConsumeMessage): void {
    if (ch !== this.channel) return;
    this.outstanding.push(message.fields.deliveryTag);
    const task = taskIn(message);
    if (!task) {
      // Not a task of ours: drop it rather than loop on it.
      this.onError(new Error(`dropped a message that is not a task: ${message.content.toString().slice(0, 80)}`));
      this.ackOn(ch, [{ task: undefined as unknown as QueuedTask, channel: ch, message }]);
      return;
    }
    this.delivered.push({ task, channel: ch, message });
    for (const done of this.wake) done();
  }
}

/** The task a message of a task queue carries; `undefined` when it is not JSON. */
export function taskIn(message: Message): QueuedTask | undefined {
  try {
    return JSON.parse(message.content.toString()) as QueuedTask;
  } catch {
    return undefined;
  }
}

/** What amqplib's ack reads of a message: its delivery tag. */
function tagged(deliveryTag: number): Message {
  return { fields: { deliveryTag } } as unknown as Message;
}

/** An ack on a channel that closed a moment ago fails; the broker has given the task back already. */
function settle(fn: () => void): void {
  try {
    fn();
  } catch {
    // the delivery went back to the queue with its channel
  }
}
