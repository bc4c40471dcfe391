// The debug channel: `qprint` lines go to a fanout exchange named debug_channel
// (`xaas.hotspot.channel` by default, as in the source); every subscriber binds its own exclusive,
// auto-deleted queue to it, so every shell sees every worker's lines.
import type { Channel, ChannelModel } from "amqplib";
import type { AmqpConnection } from "./connection.js";

interface Subscription {
  onLine: (line: string) => void;
  queue?: string;
  tag?: string;
}

export class DebugChannel {
  private channel?: Channel;
  private subscriptions = new Set<Subscription>();

  constructor(
    private readonly conn: AmqpConnection,
    readonly exchange: string,
    /** the record events' channel: a line a job printed goes out before the event that ends its task */
    private readonly shared: () => Channel | undefined,
  ) {}

  readonly setup = async (model: ChannelModel): Promise<void> => {
    // An exchange of that name declared otherwise elsewhere is used as it is.
    await this.conn
      .scratch((ch) => ch.assertExchange(this.exchange, "fanout", { durable: false }), model)
      .catch(() => this.conn.scratch((ch) => ch.checkExchange(this.exchange), model));
    const ch = await this.conn.channel(model, false);
    this.channel = ch;
    for (const sub of this.subscriptions) await this.bind(ch, sub);
  };

  async publish(line: string): Promise<void> {
    const ch = this.shared() ?? this.channel ?? (await this.conn.current().then(() => this.shared() ?? this.channel));
    ch?.publish(this.exchange, "", Buffer.from(line), { contentType: "text/plain" });
  }

  async subscribe(onLine: (line: string) => void): Promise<() => Promise<void>> {
    const sub: Subscription = { onLine };
    this.subscriptions.add(sub);
    await this.conn.current();
    if (this.channel) await this.bind(this.channel, sub);
    return async () => {
      if (!this.subscriptions.delete(sub)) return;
      const ch = this.channel;
      if (sub.tag) await ch?.cancel(sub.tag).catch(() => {});
      if (sub.queue) await ch?.deleteQueue(sub.queue).catch(() => {});
    };
  }

  private async bind(ch: Channel, sub: Subscription): Promise<void> {
    const { queue } = await ch.assertQueue("", { exclusive: true, autoDelete: true, durable: false });
    await ch.bindQueue(queue, this.exchange, "");
    const { consumerTag } = await ch.consume(queue, (msg) => msg && sub.onLine(msg.content.toString()), { noAck: true });
    sub.queue = queue;
    sub.tag = consumerTag;
  }
}
