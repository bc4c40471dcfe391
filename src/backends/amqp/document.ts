// A small value shared by every process on the broker (the job definitions, the list of task
// queues): one persistent message in a durable queue holds the current value. Reading and changing
// it happen under a lock, the declaration of an exclusive queue, which the broker grants to one
// connection at a time and releases by itself if that connection dies. A fanout exchange tells
// watchers that the value changed.
import type { Channel, ChannelModel, ConfirmChannel, GetMessage } from "amqplib";
import { ConnectionError } from "../../errors.js";
import { AmqpConnection } from "./connection.js";
import { documentQueueOptions, queueTypeMismatch, type Layout, type QueueType } from "./layout.js";

interface Stored<T> {
  version: number;
  value: T;
}

export class SharedDocument<T> {
  private readonly queue: string;
  private readonly lock: string;
  private readonly changed: string;
  private readonly queueType: QueueType;
  private watchers = new Map<() => void, { queue?: string; tag?: string }>();
  private watchChannel?: Channel;
  /** one change at a time from this connection: the broker's lock cannot tell our own callers apart */
  private local: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly conn: AmqpConnection,
    layout: Layout,
    name: string,
    private readonly empty: () => T,
  ) {
    this.queue = layout.documentQueue(name);
    this.lock = layout.documentLock(name);
    this.changed = layout.documentChanged(name);
    this.queueType = layout.queueType;
  }

  /** Declares the queue and exchange; after a reconnect, watches again and reports a possible change. */
  readonly setup = async (model: ChannelModel): Promise<void> => {
    const ch = await this.conn.channel(model, false);
    await ch.assertQueue(this.queue, documentQueueOptions(this.queueType)).catch((err: unknown) => {
      throw queueTypeMismatch(err, this.queue, this.queueType);
    });
    await ch.assertExchange(this.changed, "fanout", { durable: true });
    this.watchChannel = ch;
    for (const [onChange, w] of this.watchers) {
      await this.bind(ch, onChange, w);
      onChange();
    }
  };

  async read(): Promise<T> {
    return this.locked(async (ch, held) => {
      const current = latest<T>(held);
      for (const msg of held) ch.nack(msg, false, true);
      return current ? current.value : this.empty();
    });
  }

  /** Apply `change` to the current value under the lock; `undefined` from it means no change. */
  async update(change: (current: T) => T | undefined): Promise<T> {
    const next = await this.locked(async (ch, held) => {
      const current = latest<T>(held);
      const value = change(current ? current.value : this.empty());
      if (value === undefined) {
        for (const msg of held) ch.nack(msg, false, true);
        return undefined;
      }
      const stored: Stored<T> = { version: (current?.version ?? 0) + 1, value };
      // The new value is safely stored before the old ones go: a crash in between leaves both,
      // and readers take the highest version.
      await publishConfirmed(ch, "", this.queue, Buffer.from(JSON.stringify(stored)));
      for (const msg of held) ch.ack(msg);
      await publishConfirmed(ch, this.changed, "", Buffer.from(String(stored.version)), false);
      return { value };
    });
    return next === undefined ? (await this.read()) : next.value;
  }

  async watch(onChange: () => void): Promise<() => Promise<void>> {
    const w: { queue?: string; tag?: string } = {};
    this.watchers.set(onChange, w);
    if (this.watchChannel) await this.bind(this.watchChannel, onChange, w);
    return async () => {
      this.watchers.delete(onChange);
      if (w.tag) await this.watchChannel?.cancel(w.tag).catch(() => {});
      if (w.queue) await this.watchChannel?.deleteQueue(w.queue).catch(() => {});
    };
  }

  private async bind(ch: Channel, onChange: () => void, w: { queue?: string; tag?: string }): Promise<void> {
    const { queue } = await ch.assertQueue("", { exclusive: true, autoDelete: true, durable: false });
    await ch.bindQueue(queue, this.changed, "");
    const { consumerTag } = await ch.consume(queue, (msg) => msg && onChange(), { noAck: true });
    w.queue = queue;
    w.tag = consumerTag;
  }

  /** Take the lock, get every stored copy (held unacked), run `fn`, release the lock. */
  private locked<R>(fn: (ch: ConfirmChannel, held: GetMessage[]) => Promise<R>): Promise<R> {
    const run = this.local.then(() => this.lockedOnce(fn));
    this.local = run.catch(() => {});
    return run;
  }

  private async lockedOnce<R>(fn: (ch: ConfirmChannel, held: GetMessage[]) => Promise<R>): Promise<R> {
    const deadline = Date.now() + 30_000;
    for (let tries = 0; ; tries++) {
      const model = await this.conn.current();
      const ch = await model.createConfirmChannel();
      let broken = false;
      ch.on("error", () => (broken = true));
      ch.on("close", () => (broken = true));
      try {
        await ch.assertQueue(this.lock, { exclusive: true, autoDelete: true, durable: false });
      } catch (err) {
        if (Date.now() > deadline) throw new ConnectionError(`could not lock ${this.queue}: ${(err as Error).message}`);
        await pause(5 + Math.random() * 20 * Math.min(tries + 1, 5));
        continue;
      }
      try {
        const held: GetMessage[] = [];
        for (;;) {
          const msg = await ch.get(this.queue, { noAck: false });
          if (!msg) break;
          held.push(msg);
        }
        return await fn(ch, held);
      } finally {
        if (!broken) {
          await ch.deleteQueue(this.lock).catch(() => {});
          await AmqpConnection.closeChannel(ch);
        } else {
          await this.conn.scratch((c) => c.deleteQueue(this.lock)).catch(() => {});
        }
      }
    }
  }
}

function latest<T>(held: GetMessage[]): Stored<T> | undefined {
  let best: Stored<T> | undefined;
  for (const msg of held) {
    try {
      const stored = JSON.parse(msg.content.toString()) as Stored<T>;
      if (!best || stored.version > best.version) best = stored;
    } catch {
      // not ours: ignore it
    }
  }
  return best;
}

export function publishConfirmed(
  ch: ConfirmChannel,
  exchange: string,
  routingKey: string,
  body: Buffer,
  persistent = true,
): Promise<void> {
  return new Promise((resolve, reject) => {
    ch.publish(exchange, routingKey, body, { persistent }, (err) => (err ? reject(err) : resolve()));
  });
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
